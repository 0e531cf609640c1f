package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/synth"
)

// wlQuery is one of the waiting-list queries the issue names: the plain SELECT a
// researcher would write, cut at the point where a WHERE condition can be added.
type wlQuery struct {
	name    string
	head    string // SELECT ... FROM booking
	where   string // the query's own row filter, "" for none
	groupBy string
}

// The waiting-list queries. bench/cmd/querybench holds the same list for the at-scale run;
// keep the two in step.
var wlQueries = []wlQuery{
	{"share_by_region_priority", "SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking", "first_access", "GROUP BY region, priority"},
	{"median_wait_by_service", "SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking", "first_access", "GROUP BY service_code"},
	{"monthly_trend", "SELECT date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share FROM booking", "", "GROUP BY month"},
	{"people_per_region", "SELECT region, COUNT(DISTINCT pid) AS people FROM booking", "", "GROUP BY region"},
}

// sql is the query as written, without the varying literal.
func (q wlQuery) sql() string { return q.build("") }

// variant is the query with a condition that no booking fails, whose literal changes
// with i: each variant is a different query to the release cache (so Velo runs it
// rather than answering from the ledger) with the same result.
func (q wlQuery) variant(i int) string {
	return q.build(fmt.Sprintf("(wait_days IS NULL OR wait_days >= %d)", -1_000_000-i))
}

func (q wlQuery) build(extra string) string {
	conds := []string{}
	for _, c := range []string{q.where, extra} {
		if c != "" {
			conds = append(conds, c)
		}
	}
	s := q.head
	if len(conds) > 0 {
		s += " WHERE " + strings.Join(conds, " AND ")
	}
	return s + " " + q.groupBy
}

var scratch string

func TestMain(m *testing.M) {
	var err error
	if scratch, err = os.MkdirTemp("", "velo-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// benchThreads is the DuckDB threads setting of both Velo's sandbox and plain DuckDB.
var benchThreads = runtime.NumCPU()

// buildDataset synthesises persons people and ingests their CUP bookings (the FHIR part
// of the extract is not needed by these queries) into DIR/data.
func buildDataset(ctx context.Context, dir string, persons int) (string, error) {
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "synth")
	if _, err := synth.Generate(ctx, synth.Config{Persons: persons, Seed: 1, Out: src, From: period.From, To: period.To, Formats: []synth.Format{synth.FormatCSV}}); err != nil {
		return "", err
	}
	key, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	if _, err := ingest.Run(ctx, ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{filepath.Join(src, "cup")}, Period: period, MemoryLimit: "1GB"}); err != nil {
		return "", err
	}
	// The extract is not read again.
	return data, os.RemoveAll(src)
}

var (
	benchOnce sync.Once
	benchData string
	benchRows int64
	benchErr  error
)

// benchDataset is the benchmarks' 20,000-person dataset, built on first use: go test
// without -bench never builds it.
func benchDataset(b *testing.B) (dir string, rows int64) {
	b.Helper()
	if testing.Short() {
		b.Skip("builds a 20,000-person dataset")
	}
	benchOnce.Do(func() {
		dir := filepath.Join(scratch, "bench")
		if benchData, benchErr = buildDataset(context.Background(), dir, 20_000); benchErr != nil {
			return
		}
		var m *dataset.Manifest
		if m, benchErr = dataset.ReadManifest(benchData); benchErr == nil {
			benchRows = m.Tables["booking"].Written
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchData, benchRows
}

// openVelo opens an engine over data with a new ledger holding one project whose budget
// no benchmark can spend.
func openVelo(tb testing.TB, data string) *query.Engine {
	tb.Helper()
	led, err := ledger.Open(tb.TempDir(), ledger.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := led.CreateProject(context.Background(), "dpo:bench", ledger.Project{
		ID: "bench", Purpose: "query benchmark", LegalBasis: "none: synthetic data",
		Allow: map[string][]string{"booking": nil}, EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 1,
	}); err != nil {
		tb.Fatal(err)
	}
	eng, err := query.Open(context.Background(), query.Config{DataDir: data, Ledger: led, Limits: query.Limits{Threads: benchThreads, MemoryLimit: "2GB"}})
	if err != nil {
		led.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		eng.Close()
		led.Close()
	})
	return eng
}

// openPlain opens plain DuckDB over the same Parquet, with the sandbox's threads and
// memory settings.
func openPlain(tb testing.TB, data string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one connection: the settings and the view live in it
	tb.Cleanup(func() { db.Close() })
	abs, err := filepath.Abs(data)
	if err != nil {
		tb.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("SET threads = %d", benchThreads),
		"SET memory_limit = '2GB'",
		fmt.Sprintf("CREATE VIEW booking AS SELECT * FROM read_parquet('%s')", filepath.Join(abs, "booking", "*.parquet")),
	} {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// plainRows runs q and returns its rows as strings, sorted.
func plainRows(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals...))
	}
	sort.Strings(out)
	return out, rows.Err()
}

// BenchmarkQuery runs each waiting-list query end to end through Velo (check, charge,
// bounded rewrite, noise, release, all on a fresh ledger) and as plain SQL in DuckDB on
// the same Parquet. Compare velo with duckdb per query: docs/design.md#performance expects the ratio to
// be the cost of one extra GROUP BY pid, keys.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	for _, q := range wlQueries {
		b.Run(q.name+"/velo", func(b *testing.B) {
			data, n := benchDataset(b)
			eng := openVelo(b, data)
			i := 0
			for b.Loop() {
				i++
				rel, err := eng.Query(ctx, query.Request{SQL: q.variant(i), Project: "bench", Actor: "user:bench"})
				if err != nil {
					b.Fatal(err)
				}
				if rel.Cached {
					b.Fatal("answered from the release cache")
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(q.name+"/duckdb", func(b *testing.B) {
			data, n := benchDataset(b)
			db := openPlain(b, data)
			i := 0
			for b.Loop() {
				i++
				if _, err := plainRows(ctx, db, q.variant(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// The benchmark's queries are ones Velo accepts and runs, and the condition that makes each
// iteration a new query changes nothing in the result (checked on plain DuckDB, which
// gives exact results).
func TestQueryBenchmarkQueries(t *testing.T) {
	ctx := context.Background()
	data, err := buildDataset(ctx, filepath.Join(t.TempDir(), "tiny"), 300)
	if err != nil {
		t.Fatal(err)
	}
	eng := openVelo(t, data)
	db := openPlain(t, data)
	for _, q := range wlQueries {
		t.Run(q.name, func(t *testing.T) {
			for _, s := range []string{q.sql(), q.variant(0), q.variant(7)} {
				if err := eng.Check(ctx, s, map[string][]string{"booking": nil}); err != nil {
					t.Errorf("Velo rejects %s: %v", s, err)
				}
			}
			want, err := plainRows(ctx, db, q.sql())
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatal("no groups on the test data")
			}
			got, err := plainRows(ctx, db, q.variant(3))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the varying condition changes the result (-without +with):\n%s", diff)
			}
			if _, err := eng.Query(ctx, query.Request{SQL: q.variant(1), Project: "bench", Actor: "user:test"}); err != nil {
				t.Errorf("Velo fails to run %s: %v", q.variant(1), err)
			}
		})
	}
}
