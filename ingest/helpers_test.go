package ingest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

// gateway is the folder of the FSE Gateway's examples (CDA/ and FHIR/, nine documents of
// each) in the fixtures the VELO_FIXTURES setting names: a test that reads them skips
// loudly without them (fails under CI=true).
func gateway(t testing.TB) string {
	t.Helper()
	return testenv.Fixtures(t, "fse-gateway-examples")
}

// ministry is the Ministry of Health's FSE Gateway test corpus in the fixtures the
// VELO_FIXTURES setting names (skips loudly without it, fails under CI=true).
func ministry(t testing.TB) string {
	t.Helper()
	return testenv.Fixtures(t, "ministero-salute")
}

// readOptOutFile reads an opt-out registry.
func readOptOutFile(t *testing.T, path string) *pseudonymize.OptOut {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := pseudonymize.ReadOptOut(f, filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// testKey is a fixed key so tests can recompute pids.
func testKey(t *testing.T) (*pseudonymize.Pseudonymizer, string) {
	t.Helper()
	k, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return pseudonymize.New(k), k.ID
}

func pidOf(t *testing.T, ps *pseudonymize.Pseudonymizer, code string) string {
	t.Helper()
	id, err := pseudonymize.ParseIdentifier(code)
	if err != nil {
		t.Fatal(err)
	}
	return ps.PID(id).String()
}

func runIngest(t *testing.T, cfg ingest.Config) *dataset.Manifest {
	t.Helper()
	if cfg.Out == "" {
		cfg.Out = filepath.Join(t.TempDir(), "data")
	}
	if cfg.Pseudonymizer == nil {
		cfg.Pseudonymizer, _ = testKey(t)
	}
	cfg.MemoryLimit = "512MB"
	man, err := ingest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return man
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

// queryStrings runs a query and renders every row as its columns joined by "|".
func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = fmt.Sprintf("%x", v)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func table(dir, name string) string {
	return fmt.Sprintf("read_parquet('%s')", filepath.Join(dir, name, "*.parquet"))
}

// assertReconciles checks every count of the manifest adds up, and that Written equals
// the rows DuckDB reads back.
func assertReconciles(t *testing.T, db *sql.DB, dir string, man *dataset.Manifest) {
	t.Helper()
	for _, b := range man.Batches {
		for _, in := range b.Inputs {
			if !in.Reconciles() {
				t.Errorf("input %s does not reconcile: %+v", in.Path, in)
			}
		}
		for name, c := range b.Tables {
			if !c.Reconciles() {
				t.Errorf("batch %d table %s does not reconcile: %+v", b.Seq, name, c)
			}
		}
	}
	for name, c := range man.Tables {
		if !c.Reconciles() {
			t.Errorf("table %s does not reconcile: %+v", name, c)
		}
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM " + table(dir, name)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if len(man.Batches) == 1 && n != c.Written {
			t.Errorf("table %s: manifest says %d written, Parquet holds %d", name, c.Written, n)
		}
	}
	var inputs, tables, unparsed int64
	b := man.Batches[len(man.Batches)-1]
	for _, in := range b.Inputs {
		inputs += in.Records - in.Ignored
	}
	for _, c := range b.Tables {
		tables += c.Read
	}
	unparsed = b.Warnings["records_unparsed"]
	if inputs != tables+unparsed {
		t.Errorf("records of inputs (%d, less ignored) != records read by tables (%d) + unparsed (%d)", inputs, tables, unparsed)
	}
}

// quarantineLines reads the last batch's quarantine file.
func quarantineLines(t *testing.T, dir string, man *dataset.Manifest) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, man.Batches[len(man.Batches)-1].Quarantine))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// outputText is everything a reader of DATA could see: the raw bytes of every file
// (footers, statistics, JSON) and every value of every table decoded by DuckDB.
func outputText(t *testing.T, db *sql.DB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		buf.Write(b)
		buf.WriteByte(0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
		if m, _ := filepath.Glob(filepath.Join(dir, tb.Name, "*.parquet")); len(m) == 0 && strings.HasPrefix(tb.Name, "_") {
			continue // an internal table of a dataset written before it existed
		}
		for _, row := range queryStrings(t, db, "SELECT * FROM "+table(dir, tb.Name)) {
			buf.WriteString(row)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// ingestGateway ingests the nine Gateway examples of one format (fixtures/CDA or
// fixtures/FHIR) and checks what holds for both: counts reconcile, nothing is
// quarantined, every file is read in that format and yields rows, and the examples'
// data-quality problems (test code, conflicting birth dates and sexes, reused document
// ids) are counted warnings, not rejections (docs/domain.md#the-codice-fiscale).
func ingestGateway(t *testing.T, ps *pseudonymize.Pseudonymizer, sub, format string) (string, *dataset.Manifest, *sql.DB) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(gateway(t), sub)}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	if q := quarantineLines(t, dir, man); len(q) != 0 {
		t.Fatalf("quarantined %d records, want none: %v", len(q), q)
	}
	b := man.Batches[0]
	if len(b.Inputs) != 9 {
		t.Fatalf("inputs = %d, want 9", len(b.Inputs))
	}
	for _, in := range b.Inputs {
		if in.Format != format || in.Skipped != "" || len(in.SHA256) != 64 || in.Rows == 0 {
			t.Errorf("input %+v", in)
		}
	}
	for _, w := range []string{"identifier_structure_odd", "identifier_birthdate_mismatch", "identifier_sex_mismatch", "person_conflicting_facts", "document_id_reused"} {
		if b.Warnings[w] == 0 {
			t.Errorf("warning %s not counted: %v", w, b.Warnings)
		}
	}
	return dir, man, db
}

// synthExtract generates cfg's synthetic extract over 2024-01..2025-12 into a temporary
// folder (cfg's Out, From and To are set here) and returns the folder and the period.
func synthExtract(t *testing.T, cfg synth.Config) (string, *fse.Period) {
	t.Helper()
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Out, cfg.From, cfg.To = filepath.Join(t.TempDir(), "synth"), period.From, period.To
	if _, err := synth.Generate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Out, period
}

// assertSameDatasets checks that two ingests of the same extracts, a and b with their
// manifests, wrote the same: the manifests (but for their times), and every table's
// rows in the same order.
func assertSameDatasets(t *testing.T, db *sql.DB, a, b string, ma, mb *dataset.Manifest) {
	t.Helper()
	zeroTimes(ma, mb)
	if d := cmp.Diff(ma, mb); d != "" {
		t.Errorf("manifests differ (-%s +%s):\n%s", filepath.Base(a), filepath.Base(b), d)
	}
	for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
		q := "SELECT * FROM read_parquet('%s')"
		ra := queryStrings(t, db, strings.Replace(q, "%s", dataset.TableGlob(a, tb.Name), 1))
		rb := queryStrings(t, db, strings.Replace(q, "%s", dataset.TableGlob(b, tb.Name), 1))
		if !slices.Equal(ra, rb) {
			t.Errorf("table %s differs: %d rows in %s, %d in %s, or in another order", tb.Name, len(ra), filepath.Base(a), len(rb), filepath.Base(b))
		}
	}
}

// zeroTimes clears the times of manifests, which differ between two runs of one ingest.
func zeroTimes(ms ...*dataset.Manifest) {
	for _, m := range ms {
		m.CreatedAt = time.Time{}
		for i := range m.Batches {
			m.Batches[i].At = time.Time{}
		}
	}
}

// readZipFile reads one file of a zip.
func readZipFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return b
}
