package ingest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// DefaultQuasiIdentifiers are the person table's columns the risk report groups by
// unless told otherwise: every column but the pseudonym.
var DefaultQuasiIdentifiers = []string{"birth_year", "sex", "region", "asl", "province"}

// CheckQuasiIdentifiers reports whether qis may be used as quasi-identifiers of the
// person table: one or more distinct columns of the table, none of them an identifier
// (grouping by the pseudonym would put every person in a class of one). The error names
// the offending column.
func CheckQuasiIdentifiers(qis []string) error {
	person, ok := TableByName("person")
	if !ok {
		panic("ingest: no person table in the schema")
	}
	if len(qis) == 0 {
		return errors.New("no quasi-identifiers given")
	}
	var allowed []string
	for _, c := range person.Columns {
		if !c.Identifier {
			allowed = append(allowed, c.Name)
		}
	}
	seen := make(map[string]bool, len(qis))
	for _, name := range qis {
		i := slices.IndexFunc(person.Columns, func(c Column) bool { return c.Name == name })
		switch {
		case i < 0:
			return fmt.Errorf("quasi-identifier %q: the person table has no such column (quasi-identifiers: %s)", name, strings.Join(allowed, ", "))
		case person.Columns[i].Identifier:
			return fmt.Errorf("quasi-identifier %q: it is an identifier column, not a quasi-identifier", name)
		case seen[name]:
			return fmt.Errorf("quasi-identifier %q: given twice", name)
		}
		seen[name] = true
	}
	return nil
}

// ClassSizes reads the person table of the dataset in dataDir and returns the size
// histogram of its equivalence classes over qis (see CheckQuasiIdentifiers): how many
// classes hold exactly n people, by increasing n. A NULL is a value of its own, so the
// people with no ASL, say, form their own classes. Only counts leave DuckDB, never a
// quasi-identifier value.
func ClassSizes(ctx context.Context, dataDir string, qis []string) ([]pseudonymize.ClassSize, error) {
	if err := CheckQuasiIdentifiers(qis); err != nil {
		return nil, fmt.Errorf("class sizes: %w", err)
	}
	glob := dataset.TableGlob(dataDir, "person")
	files, err := filepath.Glob(glob)
	if err != nil {
		return nil, fmt.Errorf("class sizes: %w", err)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dataDir); err != nil {
			return nil, fmt.Errorf("class sizes: no dataset in %s: %w", dataDir, err)
		}
		return nil, fmt.Errorf("class sizes: no dataset in %s: no person table (%s): %w", dataDir, glob, fs.ErrNotExist)
	}
	connector, db, err := openDuckDB(ctx, "", duckDBSettings{MemoryLimit: "1GB", Threads: 2, TempDir: os.TempDir()})
	if err != nil {
		return nil, err
	}
	defer connector.Close()
	defer db.Close()
	// The names were checked against the schema above; quoting keeps them column names
	// whatever the schema grows to hold.
	keys := make([]string, len(qis))
	for i, name := range qis {
		keys[i] = `"` + name + `"`
	}
	q := fmt.Sprintf("SELECT size, count(*) FROM (SELECT count(*) AS size FROM read_parquet(%s) GROUP BY %s) GROUP BY size ORDER BY size",
		quote(glob), strings.Join(keys, ", "))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("class sizes of %s: %w", glob, err)
	}
	defer rows.Close()
	var hist []pseudonymize.ClassSize
	for rows.Next() {
		var c pseudonymize.ClassSize
		if err := rows.Scan(&c.Size, &c.Classes); err != nil {
			return nil, fmt.Errorf("class sizes of %s: %w", glob, err)
		}
		hist = append(hist, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("class sizes of %s: %w", glob, err)
	}
	return hist, nil
}
