package twin_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/twin"
)

var (
	realOnce sync.Once
	realDir  string
	realErr  error
)

// realData is a small pseudonymized CUP extract, ingested once per test binary.
func realData(t *testing.T) string { return realDataTB(t) }

func realDataTB(t testing.TB) string {
	t.Helper()
	realOnce.Do(func() {
		scratch, err := os.MkdirTemp("", "velo-twin-test-")
		if err != nil {
			realErr = err
			return
		}
		k, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
		if err != nil {
			realErr = err
			return
		}
		realDir, realErr = apitest.MakeDataset(context.Background(), scratch, 400, 11, k)
	})
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realDir != "" {
		os.RemoveAll(filepath.Dir(realDir))
	}
	os.Exit(code)
}

// catalogOnly copies the real dataset's catalog.json alone into a new directory and reads
// it from there.
func catalogOnly(t *testing.T, data string) *dataset.Catalog {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(dataset.CatalogPath(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataset.CatalogPath(dir), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := dataset.ReadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// readTree returns every file under dir by path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwinReadsNoData generates the twin while the real data directory is absent (moved
// away), then searches every byte of the twin's Parquet for each pseudonym and each
// identifier or free-text value the real data holds and the catalog does not: none is there.
func TestTwinReadsNoData(t *testing.T) {
	data := realData(t)
	cat := catalogOnly(t, data)
	hidden := data + ".away"
	if err := os.Rename(data, hidden); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "twin")
	twinCat, genErr := twin.Generate(context.Background(), cat, out, twin.Options{Persons: 500})
	if err := os.Rename(hidden, data); err != nil {
		t.Fatal(err)
	}
	if genErr != nil {
		t.Fatalf("generate with the data directory absent: %v", genErr)
	}
	if !strings.HasPrefix(twinCat.DatasetVersion, "dummy_") || twinCat.DatasetVersion == cat.DatasetVersion {
		t.Fatalf("twin version %q: want a dummy_ version of its own", twinCat.DatasetVersion)
	}

	files := readTree(t, out)
	var parquet [][]byte
	for name, b := range files {
		if strings.HasSuffix(name, ".parquet") {
			parquet = append(parquet, b)
		}
	}
	if len(parquet) != len(cat.Tables) {
		t.Fatalf("%d Parquet files for %d tables", len(parquet), len(cat.Tables))
	}
	catText, err := os.ReadFile(dataset.CatalogPath(data))
	if err != nil {
		t.Fatal(err)
	}

	db := openDB(t)
	// Every value of a text or UUID column of the real data, as text; pids also as the 16
	// bytes Parquet stores.
	var secrets [][]byte
	pids := 0
	for _, tb := range cat.Tables {
		for _, c := range tb.Columns {
			if c.Type != "VARCHAR" && c.Type != "UUID" {
				continue
			}
			rows, err := db.Query(fmt.Sprintf("SELECT DISTINCT CAST(%q AS VARCHAR) FROM read_parquet('%s') WHERE %q IS NOT NULL", c.Name, dataset.TableGlob(data, tb.Name), c.Name))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v string
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				// Values the catalog publishes (domain codes) are no secret; short ones
				// are no evidence either way.
				if len(v) < 5 || bytes.Contains(catText, []byte(`"`+v+`"`)) {
					continue
				}
				secrets = append(secrets, []byte(v))
				if c.Type == "UUID" {
					pids++
					raw, err := hex.DecodeString(strings.ReplaceAll(v, "-", ""))
					if err != nil {
						t.Fatal(err)
					}
					secrets = append(secrets, raw)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
	}
	if pids < 200 || len(secrets) < 1000 {
		t.Fatalf("only %d values (%d pids) to look for: the real extract is not what the test expects", len(secrets), pids)
	}
	for _, s := range secrets {
		for _, p := range parquet {
			if bytes.Contains(p, s) {
				t.Fatalf("the twin holds %q, a value of the real data", s)
			}
		}
	}
	// The probe works: a twin pid is found in the twin's bytes the same way.
	var twinPID string
	if err := db.QueryRow(fmt.Sprintf("SELECT CAST(pid AS VARCHAR) FROM read_parquet('%s') LIMIT 1", dataset.TableGlob(out, "person"))).Scan(&twinPID); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range parquet {
		raw, _ := hex.DecodeString(strings.ReplaceAll(twinPID, "-", ""))
		found = found || bytes.Contains(p, raw) || bytes.Contains(p, []byte(twinPID))
	}
	if !found {
		t.Fatal("the byte search does not find the twin's own pid: it proves nothing")
	}
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTwinFollowsCatalog: the twin has the catalog's tables and column types, every value
// in its column's domain, bounds or period, at most min(L0, rows per group) rows per
// person, pids shared across tables, and the same catalog with its own version.
func TestTwinFollowsCatalog(t *testing.T) {
	cat := catalogOnly(t, realData(t))
	out := t.TempDir()
	twinCat, err := twin.Generate(context.Background(), cat, out, twin.Options{Persons: 300})
	if err != nil {
		t.Fatal(err)
	}
	read, err := dataset.ReadCatalog(out)
	if err != nil {
		t.Fatal(err)
	}
	man, err := dataset.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if read.DatasetVersion != twinCat.DatasetVersion || man.DatasetVersion != twinCat.DatasetVersion || man.Format != twin.Format {
		t.Fatalf("catalog %s, manifest %s (%s), generated %s", read.DatasetVersion, man.DatasetVersion, man.Format, twinCat.DatasetVersion)
	}
	if len(read.Tables) != len(cat.Tables) || len(read.Domains) != len(cat.Domains) {
		t.Fatalf("twin catalog has %d tables and %d domains, the catalog %d and %d", len(read.Tables), len(read.Domains), len(cat.Tables), len(cat.Domains))
	}
	db := openDB(t)
	q := func(format string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(fmt.Sprintf(format, args...)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
		}
		return n
	}
	person := dataset.TableGlob(out, "person")
	if n := q("SELECT count(DISTINCT pid) FROM read_parquet('%s')", person); n != 300 {
		t.Fatalf("%d persons, want 300", n)
	}
	for _, tb := range cat.Tables {
		glob := dataset.TableGlob(out, tb.Name)
		types := map[string]string{}
		rows, err := db.Query(fmt.Sprintf("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('%s'))", glob))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, ty string
			if err := rows.Scan(&n, &ty); err != nil {
				t.Fatal(err)
			}
			types[n] = ty
		}
		rows.Close()
		if q("SELECT count(*) FROM read_parquet('%s')", glob) == 0 {
			t.Errorf("%s: no rows", tb.Name)
		}
		limit := 1
		if tb.Name != "person" {
			limit = min(tb.MaxGroupsContributed, tb.MaxRowsPerGroup)
		}
		if n := q("SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM read_parquet('%s') GROUP BY pid)", glob); n > int64(limit) {
			t.Errorf("%s: a person has %d rows, over %d", tb.Name, n, limit)
		}
		if tb.PersonRank {
			// Each person's rows ranked 1..n, as ingest ranks them (in another order).
			if n := q("SELECT count(*) FROM (SELECT pid, count(*) AS n, max(%s) AS hi, count(DISTINCT %s) AS d FROM read_parquet('%s') GROUP BY pid) WHERE hi <> n OR d <> n", dataset.PersonRankColumn, dataset.PersonRankColumn, glob); n != 0 {
				t.Errorf("%s: %d persons whose ranks are not 1..n", tb.Name, n)
			}
		} else if _, ok := types[dataset.PersonRankColumn]; ok {
			t.Errorf("%s: person ranks in a table whose catalog has none", tb.Name)
		}
		if n := q("SELECT count(*) FROM read_parquet('%s') WHERE pid NOT IN (SELECT pid FROM read_parquet('%s'))", glob, person); n != 0 {
			t.Errorf("%s: %d rows of persons not in person", tb.Name, n)
		}
		for _, c := range tb.Columns {
			if got := types[c.Name]; got != c.Type {
				t.Errorf("%s.%s is %s in the twin, %s in the catalog", tb.Name, c.Name, got, c.Type)
			}
			col := fmt.Sprintf("%q", c.Name)
			if d, ok := cat.Domains[c.Domain]; ok && len(d.Values) > 0 {
				var vals []string
				for _, v := range d.Values {
					vals = append(vals, fmt.Sprintf("'%v'", v))
				}
				if n := q("SELECT count(*) FROM read_parquet('%s') WHERE CAST(%s AS VARCHAR) NOT IN (%s)", glob, col, strings.Join(vals, ",")); n != 0 {
					t.Errorf("%s.%s: %d values outside the domain %s", tb.Name, c.Name, n, c.Domain)
				}
			}
			if c.Bounds != nil {
				if n := q("SELECT count(*) FROM read_parquet('%s') WHERE %s < %g OR %s > %g", glob, col, c.Bounds.Lo, col, c.Bounds.Hi); n != 0 {
					t.Errorf("%s.%s: %d values outside [%g, %g]", tb.Name, c.Name, n, c.Bounds.Lo, c.Bounds.Hi)
				}
			}
			if c.Type == "DATE" && cat.Period != nil {
				if n := q("SELECT count(*) FROM read_parquet('%s') WHERE %s < DATE '%s' OR %s > DATE '%s'", glob, col, cat.Period.From.Format("2006-01-02"), col, cat.Period.To.Format("2006-01-02")); n != 0 {
					t.Errorf("%s.%s: %d dates outside the period", tb.Name, c.Name, n)
				}
			}
		}
	}
}

// TestTwinDeterministic: the same catalog and options give the same bytes; another seed
// gives other data and another version.
func TestTwinDeterministic(t *testing.T) {
	cat := catalogOnly(t, realData(t))
	gen := func(seed uint64) (map[string][]byte, string) {
		out := t.TempDir()
		c, err := twin.Generate(context.Background(), cat, out, twin.Options{Persons: 200, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return readTree(t, out), c.DatasetVersion
	}
	a, va := gen(0)
	b, vb := gen(twin.DefaultSeed)
	c, vc := gen(42)
	if va != vb || va == vc {
		t.Fatalf("versions %s, %s (same seed), %s (another)", va, vb, vc)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
	})
	if len(names) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for _, n := range names {
		if !bytes.Equal(a[n], b[n]) {
			t.Errorf("%s differs between two generations with the same seed", n)
		}
	}
	if bytes.Equal(a["person/part-0.parquet"], c["person/part-0.parquet"]) {
		t.Error("another seed gave the same persons")
	}
}

// BenchmarkGenerate measures a default twin (2,000 persons) of the test extract's catalog.
func BenchmarkGenerate(b *testing.B) {
	data := realDataTB(b)
	cat, err := dataset.ReadCatalog(data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := twin.Generate(context.Background(), cat, b.TempDir(), twin.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
