package ingest_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// classesPersonRows are the person table of TestClassSizes: over the default
// quasi-identifiers they form a class of 3, a class of 2, a class of 2 whose province
// is NULL, and two classes of 1.
const classesPersonRows = `
	(1980, 'F', '120', '201', '058'),
	(1980, 'F', '120', '201', '058'),
	(1980, 'F', '120', '201', '058'),
	(1980, 'M', '120', '201', '058'),
	(1980, 'M', '120', '201', '058'),
	(1990, 'F', '120', '202', NULL),
	(1990, 'F', '120', '202', NULL),
	(1990, 'F', '120', '202', '058'),
	(2001, 'M', '030', NULL, '015')`

// writePersonParquet writes DATA/person/part-0.parquet from VALUES rows of (birth_year,
// sex, region, asl, province), with a fresh UUID pid per row, and returns DATA.
func writePersonParquet(t *testing.T, rows string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "person"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := strings.ReplaceAll(filepath.Join(dir, "person", "part-0.parquet"), "'", "''")
	q := `COPY (
		SELECT uuid()::UUID AS pid, birth_year::SMALLINT AS birth_year, sex::VARCHAR AS sex,
		       region::VARCHAR AS region, asl::VARCHAR AS asl, province::VARCHAR AS province
		FROM (VALUES ` + rows + `) t(birth_year, sex, region, asl, province)
	) TO '` + out + `' (FORMAT parquet)`
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("write person parquet: %v", err)
	}
	return dir
}

func TestClassSizes(t *testing.T) {
	dir := writePersonParquet(t, classesPersonRows)
	tests := []struct {
		name string
		qis  []string
		want []pseudonymize.ClassSize
	}{
		{
			name: "default quasi-identifiers, NULL a value of its own",
			qis:  ingest.DefaultQuasiIdentifiers,
			want: []pseudonymize.ClassSize{{Size: 1, Classes: 2}, {Size: 2, Classes: 2}, {Size: 3, Classes: 1}},
		},
		{
			name: "sex only",
			qis:  []string{"sex"},
			want: []pseudonymize.ClassSize{{Size: 3, Classes: 1}, {Size: 6, Classes: 1}},
		},
		{
			name: "asl and province: NULL ASL and NULL province are classes too",
			qis:  []string{"asl", "province"},
			want: []pseudonymize.ClassSize{{Size: 1, Classes: 2}, {Size: 2, Classes: 1}, {Size: 5, Classes: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ingest.ClassSizes(context.Background(), dir, tt.qis)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ClassSizes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassSizesRefusesNonQuasiIdentifiers(t *testing.T) {
	dir := writePersonParquet(t, classesPersonRows)
	tests := []struct {
		name    string
		qis     []string
		mention string
	}{
		{name: "the pseudonym", qis: []string{"pid"}, mention: `"pid"`},
		{name: "the pseudonym among others", qis: []string{"sex", "pid"}, mention: `"pid"`},
		{name: "unknown column", qis: []string{"birth_year", "comune"}, mention: `"comune"`},
		{name: "SQL in a name", qis: []string{"sex) FROM x; --"}, mention: `"sex) FROM x; --"`},
		{name: "twice", qis: []string{"sex", "sex"}, mention: `"sex"`},
		{name: "none", qis: nil, mention: "no quasi-identifiers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ingest.CheckQuasiIdentifiers(tt.qis); err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("CheckQuasiIdentifiers(%q) = %v, want an error naming %s", tt.qis, err, tt.mention)
			}
			got, err := ingest.ClassSizes(context.Background(), dir, tt.qis)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("ClassSizes(%q) = %v, %v; want an error naming %s", tt.qis, got, err, tt.mention)
			}
		})
	}
}

func TestClassSizesMissingDataset(t *testing.T) {
	for name, dir := range map[string]string{
		"no directory":    filepath.Join(t.TempDir(), "nowhere"),
		"no person table": t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ingest.ClassSizes(context.Background(), dir, ingest.DefaultQuasiIdentifiers)
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no dataset in "+dir) {
				t.Errorf("ClassSizes(%s) error = %v, want a not-exist error naming the directory", dir, err)
			}
		})
	}
}
