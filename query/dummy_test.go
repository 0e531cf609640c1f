package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// openDummyEngine opens an engine over the synthetic extract whose twin goes to a known
// directory.
func openDummyEngine(t *testing.T) (*Engine, *ledger.Ledger, string, string) {
	t.Helper()
	data := synthDataset(t)
	state := t.TempDir()
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := led.CreateProject(context.Background(), "dpo:test", ledger.Project{
		ID: "wl", Purpose: "waiting-list reduction, region by region", LegalBasis: "art. 2-sexies c.1-bis",
		Allow: map[string][]string{"booking": nil, "person": nil}, EpsilonBudget: 10, DeltaBudget: 1e-5, DefaultEpsilon: 0.5,
	}); err != nil {
		t.Fatal(err)
	}
	twinDir := filepath.Join(t.TempDir(), "twin")
	eng, err := Open(context.Background(), Config{DataDir: data, Ledger: led, Logger: testLogger(t), DummyDir: twinDir, DummyPersons: 1500})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Close()
		led.Close()
	})
	return eng, led, state, twinDir
}

// plainRows runs sqlText with plain DuckDB over the Parquet tables of dir, by the text of
// the query's first nkeys columns.
func plainRows(t *testing.T, dir, sqlText string, nkeys int) map[string][]any {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range []string{"booking", "person"} {
		if _, err := db.Exec(fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s')", tb, dataset.TableGlob(dir, tb))); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query(sqlText)
	if err != nil {
		t.Fatalf("%s: %v", sqlText, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string][]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out[keyText(vals[:nkeys])] = vals
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func keyText(keys []any) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%v|", jsonKey(normaliseKey(k)))
	}
	return b.String()
}

// TestDummyExactOnTwin: a dummy query's values are plain DuckDB's on the twin's Parquet
// (quantiles to a leaf of the tree), every interval holds its value, nothing is charged,
// the ledger has a dummy entry per run, and the same SQL then runs for real, charged once.
func TestDummyExactOnTwin(t *testing.T) {
	eng, led, state, twinDir := openDummyEngine(t)
	ctx := context.Background()
	before, _ := led.Project("wl")
	leaf := 365.0 / math.Pow(float64(quantileTree.Branching), float64(quantileTree.Height)) // the engine's leaves
	cases := []struct {
		sql   string
		nkeys int
		tol   []float64 // per aggregate column: absolute tolerance
		delta *float64
	}{
		{"SELECT count(*) AS n, count(DISTINCT pid) AS people, avg(wait_days) AS w, sum(wait_days) AS s FROM booking", 0, []float64{0, 0, 1e-9, 1e-6}, nil},
		{"SELECT region, count(*) AS n, avg(wait_days) AS w, var_pop(wait_days) AS v, stddev_samp(wait_days) AS sd FROM booking GROUP BY region ORDER BY region", 1, []float64{0, 1e-9, 1e-6, 1e-6}, nil},
		{"SELECT priority, first_access, count(*) AS n FROM booking WHERE status = 'delivered' GROUP BY priority, first_access", 2, []float64{0}, nil},
		{"SELECT p.sex, count(DISTINCT b.pid) AS people, avg(b.wait_days) AS w FROM booking b JOIN person p ON b.pid = p.pid GROUP BY p.sex", 1, []float64{0, 1e-9}, nil},
		// Quantiles are read off the tree's leaves: within two leaves of quantile_cont.
		{"SELECT service_code, median(wait_days) AS m, quantile_cont(wait_days, 0.9) AS p90 FROM booking GROUP BY service_code", 1, []float64{-2 * leaf, -2 * leaf}, nil},
		// No public domain: partition selection, which the twin answers with every group it has.
		{"SELECT provider_id, count(*) AS n FROM booking GROUP BY provider_id", 1, []float64{0}, f64(1e-7)},
	}
	methods := map[string]bool{}
	for _, c := range cases {
		rel, err := eng.Query(ctx, Request{SQL: c.sql, Project: "wl", Actor: "user:rita", Dummy: true, Delta: c.delta})
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		methods[rel.Bounding.Method] = true
		if !rel.Dummy || rel.Epsilon != 0 || rel.Delta != 0 || rel.Price == nil || rel.Price.Epsilon <= 0 || rel.Cached || !strings.HasPrefix(rel.DatasetVersion, "dummy_") {
			t.Fatalf("%s: release dummy=%v epsilon=%g delta=%g price=%v cached=%v version=%s", c.sql, rel.Dummy, rel.Epsilon, rel.Delta, rel.Price, rel.Cached, rel.DatasetVersion)
		}
		want := plainRows(t, twinDir, c.sql, c.nkeys)
		if len(want) == 0 {
			t.Fatalf("%s: plain DuckDB has no rows on the twin", c.sql)
		}
		seen := 0
		for i, row := range rel.Rows {
			w, ok := want[keyText(row[:c.nkeys])]
			for j := c.nkeys; j < len(row); j++ {
				got := row[j]
				if !ok { // a domain group the twin has no row in
					if got != nil && got != 0.0 {
						t.Errorf("%s: group %v absent from the twin released %v", c.sql, row[:c.nkeys], got)
					}
					continue
				}
				wv, _ := toFloat(normaliseKey(w[j]))
				gv, isNum := got.(float64)
				if w[j] == nil {
					if got != nil {
						t.Errorf("%s: %v col %d = %v, plain DuckDB NULL", c.sql, row[:c.nkeys], j, got)
					}
					continue
				}
				// A negative tolerance is a quantile's: its interval spans leaves, and
				// holds the exact value; any other interval is the value itself.
				tol := math.Abs(c.tol[j-c.nkeys])
				if !isNum || math.Abs(gv-wv) > tol {
					t.Errorf("%s: %v col %d = %v, plain DuckDB %v", c.sql, row[:c.nkeys], j, got, w[j])
				}
				lo, hi, ok := release.CIBounds(rel.CI[i][j])
				slack := 1e-9 * math.Max(1, math.Abs(wv)) // float64 rounding of a different order of sums
				if !ok || lo > gv || hi < gv || lo > wv+slack || hi < wv-slack || c.tol[j-c.nkeys] >= 0 && hi-lo > 2*tol+slack {
					t.Errorf("%s: %v col %d interval [%v, %v] for %v (plain DuckDB %v)", c.sql, row[:c.nkeys], j, lo, hi, gv, wv)
				}
			}
			if ok {
				seen++
			}
		}
		if seen != len(want) {
			t.Errorf("%s: %d of plain DuckDB's %d groups released", c.sql, seen, len(want))
		}
	}
	// The twin carries person ranks where the data does, so a dummy run takes the bounding
	// the real run takes: both kinds were exercised above.
	if !methods[boundingPersonRank] || !methods[boundingPerGroup] {
		t.Errorf("boundings of the dummy runs: %v, want both %s and %s", methods, boundingPersonRank, boundingPerGroup)
	}
	after, _ := led.Project("wl")
	if after.Spent != before.Spent || after.Queries != before.Queries {
		t.Fatalf("dummy runs spent %+v (%d queries), before %+v (%d)", after.Spent, after.Queries, before.Spent, before.Queries)
	}
	dummies := 0
	for _, e := range led.Entries("wl", 0) {
		switch e.Kind {
		case ledger.KindDummy:
			dummies++
		case ledger.KindCharge, ledger.KindRelease:
			t.Fatalf("a dummy run wrote a %s entry", e.Kind)
		}
	}
	if dummies != len(cases) {
		t.Fatalf("%d dummy entries for %d runs", dummies, len(cases))
	}

	// The same SQL for real: charged once, not served from anything the dummy run made.
	q := cases[1].sql
	real1, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:rita"})
	if err != nil {
		t.Fatal(err)
	}
	real2, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:rita"})
	if err != nil {
		t.Fatal(err)
	}
	if real1.Dummy || real1.Cached || !real2.Cached || real1.DatasetVersion != eng.DatasetVersion() {
		t.Fatalf("real runs: dummy=%v cached=%v, then cached=%v; version %s", real1.Dummy, real1.Cached, real2.Cached, real1.DatasetVersion)
	}
	final, _ := led.Project("wl")
	if final.Queries != before.Queries+1 || math.Abs(final.Spent.Epsilon-before.Spent.Epsilon-0.5) > 1e-12 {
		t.Fatalf("after the real runs: %d queries, spent %+v", final.Queries, final.Spent)
	}
	// A dummy run after the real one is a dummy run again, never the cached release.
	again, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:rita", Dummy: true})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Dummy || again.Cached {
		t.Fatalf("dummy after real: dummy=%v cached=%v", again.Dummy, again.Cached)
	}
	if _, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:rita", Dummy: true, DryRun: true}); err == nil {
		t.Fatal("dummy and dry run together accepted")
	}
	// The same checks: a table the project may not read is refused on the twin too.
	var qe *Error
	if _, err := eng.Query(ctx, Request{SQL: "SELECT count(*) FROM prescription", Project: "wl", Actor: "user:rita", Dummy: true}); !errors.As(err, &qe) {
		t.Fatalf("dummy query of a table outside the allow-list: %v", err)
	}
	if err := led.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Verify(state, ledger.VerifyOptions{}); err != nil {
		t.Fatalf("ledger verify after dummy runs: %v", err)
	}
}

// TestDummyConcurrent: dummy queries arriving together on a fresh engine make the twin once
// and all get the same exact answer; none is charged (run with -race).
func TestDummyConcurrent(t *testing.T) {
	eng, led, _, _ := openDummyEngine(t)
	before, _ := led.Project("wl")
	const n = 6
	sqls := []string{"SELECT region, count(*) AS n FROM booking GROUP BY region", "SELECT sex, count(*) AS n FROM person GROUP BY sex"}
	out := make([]*release.Release, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			rel, err := eng.Query(context.Background(), Request{SQL: sqls[i%2], Project: "wl", Actor: "user:rita", Dummy: true})
			out[i] = rel
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	version := eng.DummyVersion()
	for i, rel := range out {
		if rel.DatasetVersion != version || !rel.Dummy {
			t.Fatalf("query %d: version %s (engine's twin %s), dummy %v", i, rel.DatasetVersion, version, rel.Dummy)
		}
		if fmt.Sprint(rel.Rows) != fmt.Sprint(out[i%2].Rows) {
			t.Errorf("query %d answered %v, query %d %v", i, rel.Rows, i%2, out[i%2].Rows)
		}
	}
	if after, _ := led.Project("wl"); after.Spent != before.Spent || after.Queries != before.Queries {
		t.Errorf("concurrent dummy runs spent %v", after.Spent)
	}
}
