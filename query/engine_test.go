package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// The questions a waiting-list analyst asks all work on synthetic data, public keys are
// all released (empty groups included), and each query is charged what it declared.
func TestWaitingListQueries(t *testing.T) {
	data := synthDataset(t)
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 10, Delta: 1e-4}, nil)
	ctx := context.Background()
	tests := []struct {
		name, sql string
		eps       float64
		rows      int // -1: do not check
		cols      []string
	}{
		{"share within target by region and priority",
			"SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking WHERE first_access GROUP BY region, priority",
			1, len(fse.Regions) * len(fse.Priorities), []string{"region", "priority", "n", "share"}},
		{"median wait by service",
			"SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking WHERE first_access GROUP BY service_code ORDER BY median_wait DESC",
			1, len(fse.Services), []string{"service_code", "median_wait"}},
		{"monthly trend",
			"SELECT date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY month ORDER BY month",
			0.5, 24, []string{"month", "share"}},
		{"restricted to two regions",
			"SELECT region, COUNT(DISTINCT pid) AS people FROM booking WHERE region IN ('120', '030') GROUP BY region",
			0.5, 2, []string{"region", "people"}},
	}
	spent := 0.0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := eng.Query(ctx, Request{SQL: tt.sql, Project: "wl", Actor: "user:test", Epsilon: f64(tt.eps)})
			if err != nil {
				t.Fatal(err)
			}
			spent += tt.eps
			var names []string
			for _, c := range rel.Columns {
				names = append(names, c.Name)
			}
			if diff := cmp.Diff(tt.cols, names); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if tt.rows >= 0 && len(rel.Rows) != tt.rows {
				t.Errorf("%d rows, want %d (every public key)", len(rel.Rows), tt.rows)
			}
			if len(rel.CI) != len(rel.Rows) || rel.Epsilon != tt.eps || rel.Cached || rel.ReleaseID == "" {
				t.Errorf("release %+v", rel)
			}
			for i, row := range rel.Rows {
				for j, c := range rel.Columns {
					if c.Kind == "dp" {
						if _, ok := row[j].(float64); !ok {
							t.Fatalf("row %d column %s is %T, want a number", i, c.Name, row[j])
						}
					} else if rel.CI[i][j] != nil {
						t.Fatalf("a key cell has a confidence interval")
					}
				}
			}
		})
	}
	st, err := led.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(st.Spent.Epsilon-spent) > 1e-9 || st.Queries != len(tests) {
		t.Errorf("spent %v in %d queries, want %v in %d", st.Spent.Epsilon, st.Queries, spent, len(tests))
	}
}

// twoRegions is 400 bookings of 400 people: every fourth in region 030, the others in 120,
// booking i waiting i%20 days.
func twoRegions(t *testing.T) string {
	t.Helper()
	var rows []string
	for i := 0; i < 400; i++ {
		region := "120"
		if i%4 == 0 {
			region = "030"
		}
		rows = append(rows, booking(i, cfOf(t, i), "89.7A.3", "B", region, "2024-05-02", i%20))
	}
	return csvDataset(t, rows...)
}

// With a high epsilon the released numbers are close to the truth: the rewrite computes
// the right totals (the rest of the error is the stated noise).
func TestAccuracyAtHighEpsilon(t *testing.T) {
	data := twoRegions(t)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 1e6, Delta: 1e-4}, nil)
	eng.maxEpsilon = 1e6
	rel, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:test", Epsilon: f64(2000),
		SQL: "SELECT region, COUNT(*) AS n, AVG(wait_days) AS mean_wait, MEDIAN(wait_days) AS median_wait, SUM(wait_days) AS total FROM booking WHERE region IN ('030', '120') GROUP BY region ORDER BY region"})
	if err != nil {
		t.Fatal(err)
	}
	// True values: region 030 has i = 0, 4, ..., 396 (100 bookings, waits i%20 ∈ {0,4,8,12,16}).
	want := [][]float64{{100, 8, 8, 800}, {300, 10.0 * 300 / 300, 10, 0}}
	var tot120 float64
	for i := 0; i < 400; i++ {
		if i%4 != 0 {
			tot120 += float64(i % 20)
		}
	}
	want[1] = []float64{300, tot120 / 300, 10, tot120}
	// HAVING, ORDER BY and LIMIT act on the released values.
	having, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:test", Epsilon: f64(2000),
		SQL: "SELECT region, COUNT(*) AS n FROM booking WHERE region IN ('030', '120', '150') GROUP BY region HAVING n > 150 OR region = '150' ORDER BY n DESC LIMIT 1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(having.Rows) != 1 || having.Rows[0][0] != "120" {
		t.Errorf("HAVING n > 150 ... ORDER BY n DESC LIMIT 1 gave %v, want region 120 only", having.Rows)
	}
	for r, row := range rel.Rows {
		// Tolerances are 14 Laplace scales or more (P(|noise| > 14b) = e^-14 < 1e-6), with
		// ε = 2000/6 per mechanism, L0 = G = 4, C = 4, scale = 100 for [0, 365]:
		// count b = 4·4/ε ≈ 0.05; sum b = 4·(4·36500)/ε ≈ 1752 units = 17.5 days; mean: the
		// centred sum's b = 4·(4·36500)/ε units of 1/200 = 8.8 days, over 100 bookings
		// ≈ 0.09 days; the median's tree nodes b = 16·4/ε ≈ 0.2 rows.
		for j, tol := range []float64{2, 1.5, 2, 300} {
			if got := row[j+1].(float64); math.Abs(got-want[r][j]) > tol {
				t.Errorf("row %v column %s = %v, want %v ± %v", row[0], rel.Columns[j+1].Name, got, want[r][j], tol)
			}
		}
	}
}

// The same query again returns the same release at no new cost, also after a restart;
// a dry run prices without charging.
func TestReleaseCache(t *testing.T) {
	data := synthDataset(t)
	eng, led, state := openEngine(t, data, ledger.Budget{Epsilon: 5, Delta: 0}, nil)
	ctx := context.Background()
	q := "SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority"
	dry, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || len(dry.Rows) != 0 || dry.Epsilon != 0.5 || dry.BudgetLeft.Epsilon != 5 {
		t.Fatalf("dry run %+v", dry)
	}
	first, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := eng.Query(ctx, Request{SQL: "SELECT priority,   COUNT(*) AS n\nFROM booking GROUP BY priority;", Project: "wl", Actor: "user:b"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.ReleaseID != first.ReleaseID || !cmp.Equal(fmt.Sprint(again.Rows), fmt.Sprint(first.Rows)) || !cmp.Equal(fmt.Sprint(again.CI), fmt.Sprint(first.CI)) {
		t.Fatalf("second release differs:\n%+v\n%+v", first, again)
	}
	if st, _ := led.Project("wl"); st.Spent.Epsilon != 0.5 || again.BudgetLeft.Epsilon != 4.5 {
		t.Fatalf("spent %v, budget left reported %v", st.Spent.Epsilon, again.BudgetLeft)
	}
	// Other options are another release.
	other, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a", Epsilon: f64(0.25)})
	if err != nil || other.Cached || other.ReleaseID == first.ReleaseID {
		t.Fatalf("different epsilon: %v %+v", err, other)
	}
	eng.Close()
	led.Close()
	led2, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led2.Close()
	eng2, err := Open(ctx, Config{DataDir: data, Ledger: led2})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	after, err := eng2.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:c"})
	if err != nil {
		t.Fatal(err)
	}
	if !after.Cached || after.ReleaseID != first.ReleaseID || fmt.Sprint(after.Rows) != fmt.Sprint(first.Rows) {
		t.Fatalf("after restart: %+v", after)
	}
	if st, _ := led2.Project("wl"); st.Spent.Epsilon != 0.75 {
		t.Fatalf("spent %v after restart, want 0.75", st.Spent.Epsilon)
	}
}

// 200 concurrent, different queries against a budget that allows 50: exactly 50 are
// charged and released, the rest refused; the budget is never overdrawn.
func TestConcurrentQueriesNeverOverdraw(t *testing.T) {
	data := synthDataset(t)
	eng, led, state := openEngine(t, data, ledger.Budget{Epsilon: 5, Delta: 0}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, exhausted := 0, 0
	var other []error
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:load", Epsilon: f64(0.1),
				SQL: fmt.Sprintf("SELECT priority, COUNT(*) FROM booking WHERE wait_days > %d GROUP BY priority", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ledger.ErrBudgetExhausted):
				exhausted++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if ok != 50 || exhausted != 150 || len(other) > 0 {
		t.Fatalf("%d released, %d refused for budget, other errors %v; want 50 and 150", ok, exhausted, other)
	}
	st, _ := led.Project("wl")
	if math.Abs(st.Spent.Epsilon-5) > 1e-9 || st.Left.Epsilon < 0 {
		t.Fatalf("spent %v, left %v", st.Spent.Epsilon, st.Left.Epsilon)
	}
	if _, err := ledger.Verify(state, ledger.VerifyOptions{}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// Groups without a public domain go through DP partition selection: a group of one
// person is not released, a group of hundreds is.
func TestPartitionSelectionSuppressesRareGroups(t *testing.T) {
	var rows []string
	for i := 0; i < 600; i++ {
		rows = append(rows, booking(i, cfOf(t, i), "89.7A.3", "B", "120", "2024-05-02", 5))
	}
	rare := booking(9999, cfOf(t, 700), "89.7A.3", "B", "150", "2024-05-02", 5) // provider 150901: one person
	data := csvDataset(t, append(rows, rare)...)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 100, Delta: 1e-3}, nil)
	// With δ = 1e-9 (half of it for selection, and G = 4), a one-person group is kept with
	// probability at most about 1e-10 per query; a 600-person group is dropped with far
	// less.
	for i := 0; i < 3; i++ {
		rel, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:test", Epsilon: f64(1), Delta: f64(1e-9),
			SQL: fmt.Sprintf("SELECT provider_id, COUNT(*) AS n FROM booking WHERE wait_days >= %d GROUP BY provider_id", -i)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rel.Rows) != 1 || rel.Rows[0][0] != "120901" {
			t.Fatalf("released groups %v, want only the large provider", rel.Rows)
		}
		if !rel.Bounding.PartitionSelection || rel.BudgetSplit[len(rel.BudgetSplit)-1].For != "partition selection" {
			t.Fatalf("budget split %+v does not show partition selection", rel.BudgetSplit)
		}
	}
}

// A query that fails after its data was read (here: interrupted by the per-query
// timeout) keeps its charge and gets the generic error; epsilon or delta over the
// project's caps, and an exhausted budget, are refused without charge.
// copyDataset copies a dataset directory, so a test may damage its copy.
func copyDataset(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestChargeStandsAndCaps(t *testing.T) {
	data := synthDataset(t)
	state := t.TempDir()
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	ctx := context.Background()
	if err := led.CreateProject(ctx, "dpo:test", ledger.Project{ID: "wl", Purpose: "p", LegalBasis: "l",
		Allow: map[string][]string{"booking": nil}, EpsilonBudget: 1.2, DeltaBudget: 1e-6, DefaultEpsilon: 0.5,
		MaxEpsilonPerQuery: 1, MaxDeltaPerQuery: 1e-7}); err != nil {
		t.Fatal(err)
	}
	eng, err := Open(ctx, Config{DataDir: data, Ledger: led, Limits: Limits{Timeout: time.Nanosecond}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	_, err = eng.Query(ctx, Request{SQL: "SELECT region, COUNT(*) FROM booking GROUP BY region", Project: "wl", Actor: "user:t"})
	if !errors.Is(err, ErrExecution) && !errors.Is(err, ErrInternal) {
		t.Fatalf("interrupted query: %v, want the generic error", err)
	}
	st, _ := led.Project("wl")
	if errors.Is(err, ErrExecution) && st.Spent.Epsilon != 0.5 {
		t.Fatalf("interrupted after reading data: spent %v, want the charge to stand", st.Spent.Epsilon)
	}
	if errors.Is(err, ErrInternal) && st.Spent.Epsilon != 0 {
		t.Fatalf("failed before reading data: spent %v, want a refund", st.Spent.Epsilon)
	}
	// A failure once the rewrite runs: the data vanishes between charge and execution.
	eng2, err := Open(ctx, Config{DataDir: copyDataset(t, data), Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	eng2.afterCharge = func() {
		if err := os.RemoveAll(filepath.Join(eng2.dataDir, "booking")); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := led.Project("wl")
	_, err = eng2.Query(ctx, Request{SQL: "SELECT priority, COUNT(*) FROM booking GROUP BY priority", Project: "wl", Actor: "user:t"})
	if !errors.Is(err, ErrExecution) || strings.Contains(err.Error(), "parquet") {
		t.Fatalf("failure during execution: %v, want the generic error", err)
	}
	st, _ = led.Project("wl")
	if st.Spent.Epsilon != before.Spent.Epsilon+0.5 {
		t.Fatalf("spent %v after a failure during execution, want the charge (%v) to stand", st.Spent.Epsilon, before.Spent.Epsilon+0.5)
	}
	spent := st.Spent.Epsilon
	for _, req := range []Request{
		{SQL: "SELECT COUNT(*) FROM booking", Epsilon: f64(1.5)},
		{SQL: "SELECT COUNT(*) FROM booking", Epsilon: f64(0.9)}, // within the cap, beyond the budget left
		{SQL: "SELECT COUNT(*) FROM booking", Epsilon: f64(0.5), Delta: f64(1e-6)},
		{SQL: "SELECT COUNT(*) FROM booking", Epsilon: f64(-1)},
	} {
		req.Project, req.Actor = "wl", "user:t"
		var qe *Error
		_, err := eng.Query(ctx, req)
		if !errors.As(err, &qe) && !errors.Is(err, ledger.ErrBudgetExhausted) {
			t.Errorf("%+v: %v, want a refusal", req, err)
		}
	}
	if st, _ := led.Project("wl"); st.Spent.Epsilon != spent {
		t.Fatalf("refusals were charged: spent %v, was %v", st.Spent.Epsilon, spent)
	}
}

// Identical queries arriving together (dashboard panels refreshing at once) are charged
// once: the others wait for the first release and get it from the cache.
func TestIdenticalConcurrentQueriesChargedOnce(t *testing.T) {
	data := synthDataset(t)
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 5}, nil)
	var wg sync.WaitGroup
	ids := make([]string, 20)
	errs := make([]error, 20)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "official:grafana",
				SQL: "SELECT region, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY region"})
			errs[i] = err
			if err == nil {
				ids[i] = rel.ReleaseID
			}
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("query %d: %v, release %s (first %s)", i, errs[i], ids[i], ids[0])
		}
	}
	if st, _ := led.Project("wl"); st.Queries != 1 || st.Spent.Epsilon != 0.5 {
		t.Fatalf("%d charges, spent %v; want 1 and 0.5", st.Queries, st.Spent.Epsilon)
	}
}

// Variances and standard deviations come out right through the centred sums (the engine
// shifts values by the middle of their bounds; the variance is shift-invariant).
func TestVarianceAccuracy(t *testing.T) {
	eng, _, _ := openEngine(t, twoRegions(t), ledger.Budget{Epsilon: 1e6, Delta: 1e-4}, nil)
	eng.maxEpsilon = 1e6
	rel, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:test", Epsilon: f64(1e5),
		SQL: "SELECT region, VAR_POP(wait_days) AS v, STDDEV_POP(wait_days) AS sd FROM booking WHERE region IN ('030', '120') GROUP BY region ORDER BY region"})
	if err != nil {
		t.Fatal(err)
	}
	variance := func(keep func(i int) bool) float64 {
		var n, s, q float64
		for i := 0; i < 400; i++ {
			if keep(i) {
				x := float64(i % 20)
				n, s, q = n+1, s+x, q+x*x
			}
		}
		return q/n - (s/n)*(s/n)
	}
	want := []float64{variance(func(i int) bool { return i%4 == 0 }), variance(func(i int) bool { return i%4 != 0 })}
	// ε = 1e5/6 per mechanism; the centred values lie in [-182.5, 182.5], so the sum of
	// squares' Laplace scale is G·C·182.5²/ε ≈ 32 days², about 0.32 (region 030, 100 rows)
	// or 0.11 (120, 300 rows) on the variance; the tolerance 6 is over 18 scales
	// (P < 1e-8), and the standard deviation's 0.5 is wider than its share of that.
	for r, row := range rel.Rows {
		if got := row[1].(float64); math.Abs(got-want[r]) > 6 {
			t.Errorf("region %v: variance %v, want %v ± 6", row[0], got, want[r])
		}
		if got := row[2].(float64); math.Abs(got-math.Sqrt(want[r])) > 0.5 {
			t.Errorf("region %v: standard deviation %v, want %v ± 0.5", row[0], got, math.Sqrt(want[r]))
		}
	}
}

// Every variance and standard deviation a release holds carries its interval, end to end: in
// the release and in its CSV form, holding the value and within the column's range. With a
// large epsilon it also holds the true variance and is a few days² wide; for a small group at
// a small epsilon it is (nearly always) the whole range, flagged uninformative.
func TestVarianceIntervals(t *testing.T) {
	eng, _, _ := openEngine(t, twoRegions(t), ledger.Budget{Epsilon: 1e6, Delta: 1e-4}, nil)
	eng.maxEpsilon = 1e6
	const sql = "SELECT region, VAR_POP(wait_days) AS v, VAR_SAMP(wait_days) AS vs, STDDEV_POP(wait_days) AS sd, STDDEV_SAMP(wait_days) AS sds FROM booking WHERE region IN ('030', '120') GROUP BY region ORDER BY region"
	// The true values: region 030 holds i = 0, 4, ..., 396 (waits i%20), 120 the other 300.
	truth := func(keep func(i int) bool) []float64 {
		var n, s, q float64
		for i := 0; i < 400; i++ {
			if keep(i) {
				x := float64(i % 20)
				n, s, q = n+1, s+x, q+x*x
			}
		}
		v := q/n - (s/n)*(s/n)
		return []float64{v, v * n / (n - 1), math.Sqrt(v), math.Sqrt(v * n / (n - 1))}
	}
	want := [][]float64{truth(func(i int) bool { return i%4 == 0 }), truth(func(i int) bool { return i%4 != 0 })}

	check := func(t *testing.T, epsilon float64) *release.Release {
		rel, err := eng.Query(context.Background(), Request{Project: "wl", Actor: "user:test", Epsilon: f64(epsilon), SQL: sql})
		if err != nil {
			t.Fatal(err)
		}
		if len(rel.Rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rel.Rows))
		}
		for i, row := range rel.Rows {
			for j := 1; j < len(row); j++ {
				col := rel.Columns[j]
				lo, hi, ok := release.CIBounds(rel.CI[i][j])
				v := row[j].(float64)
				if !ok || !(lo <= v && v <= hi) || !col.Range.Contains(lo) || !col.Range.Contains(hi) {
					t.Fatalf("region %v %s: value %v, interval %v, range %s", row[0], col.Name, v, rel.CI[i][j], col.Range)
				}
			}
		}
		var csv strings.Builder
		if err := rel.WriteCSV(&csv); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"v", "vs", "sd", "sds"} {
			if !strings.Contains(csv.String(), ","+name+"_ci_lower,"+name+"_ci_upper,") {
				t.Fatalf("the CSV has no interval columns for %s:\n%s", name, csv.String())
			}
		}
		return rel
	}

	t.Run("large epsilon", func(t *testing.T) {
		// ε = 9·10⁵ over 12 mechanisms. The waits are integers, so the centred values scale
		// (×100) to integers and the engine rounds nothing: the interval holds the truth
		// unless the noise moves the variance by more than the rounding allowance (about
		// 2·173/100 = 3.5 days², the mean being 173 from the middle of [0, 365]) plus the
		// totals' interval widths. In region 030 (100 values, the noisier) one Laplace scale
		// of the sum moves the variance by about 0.14 days² (through the squared mean), one of
		// the sum of squares by 0.07, the count's by less: a miss takes a noise of over 25
		// scales (P < 10⁻⁹ for the eight intervals). The width is that allowance on both
		// sides plus what the totals' intervals add, about 8.7 days² for region 030, 7.5 for
		// region 120, whatever the draw: 10 is asserted.
		rel := check(t, 9e5)
		for i, row := range rel.Rows {
			for j := 1; j < len(row); j++ {
				lo, hi, _ := release.CIBounds(rel.CI[i][j])
				if w := want[i][j-1]; !(lo <= w && w <= hi) {
					t.Errorf("region %v %s: interval [%v, %v] misses the true %v", row[0], rel.Columns[j].Name, lo, hi, w)
				}
				if j <= 2 && hi-lo > 10 {
					t.Errorf("region %v %s: interval [%v, %v] is %v days² wide", row[0], rel.Columns[j].Name, lo, hi, hi-lo)
				}
				if f := rel.FlagsOf(i, j); len(f) > 0 {
					t.Errorf("region %v %s: flags %v", row[0], rel.Columns[j].Name, f)
				}
			}
		}
		t.Logf("intervals %v", rel.CI)
	})

	t.Run("small epsilon", func(t *testing.T) {
		// ε = 0.3 over 12 mechanisms: the sum of squares' noise is thousands of times the
		// range on a variance of 100 or 300 values, and the count's interval reaches 1 (2 for
		// the sample forms), where one value (two) can have any variance, unless its noise
		// falls beyond its own interval's end: each interval is the whole range, flagged
		// uninformative, with probability 0.97–0.98 (measured with dp.Variance at these
		// parameters: 1.6% of population and 2.5–3.1% of sample intervals fall short of it).
		// The eight are drawn independently, so at least one is flagged except with
		// probability below 0.031⁸ < 10⁻¹².
		rel := check(t, 0.3)
		flagged := 0
		for i, row := range rel.Rows {
			for j := 1; j < len(row); j++ {
				col := rel.Columns[j]
				lo, hi, _ := release.CIBounds(rel.CI[i][j])
				whole := lo == *col.Range.Lo && hi >= *col.Range.Hi
				if f := rel.FlagsOf(i, j); slices.Contains(f, release.FlagUninformative) != whole {
					t.Errorf("region %v %s: interval [%v, %v] of the range %s, flags %v", row[0], col.Name, lo, hi, col.Range, f)
				} else if whole {
					flagged++
				}
			}
		}
		if flagged == 0 {
			t.Errorf("no interval is the whole range: %v", rel.CI)
		}
		t.Logf("%d of 8 intervals flagged uninformative", flagged)
	})
}

// A cached release is decoded once and reused: post-processing one answer (clamping its
// negative counts) must not change the next. 84 groups with no bookings: their noisy
// counts fall below 0 about half the time each, so clamping changes some of them.
func TestCachedReleaseReuseIsolated(t *testing.T) {
	data := synthDataset(t)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 5, Delta: 0}, nil)
	ctx := context.Background()
	q := "SELECT region, priority, COUNT(*) AS n FROM booking WHERE wait_days > 1000000 GROUP BY region, priority"
	first, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a"})
	if err != nil {
		t.Fatal(err)
	}
	want, wantCI := fmt.Sprint(first.Rows), fmt.Sprint(first.CI)
	clamped, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a", ClampToRange: true})
	if err != nil {
		t.Fatal(err)
	}
	if !clamped.Cached || fmt.Sprint(clamped.Rows) == want {
		t.Fatalf("clamped cached answer: cached %v, rows unchanged by clamping", clamped.Cached)
	}
	for range 2 {
		again, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:b"})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Cached || fmt.Sprint(again.Rows) != want || fmt.Sprint(again.CI) != wantCI || again.ClampToRange || len(again.Flags) > 0 {
			t.Fatalf("cached answer after a clamped one differs from the release:\n%v\n%v", want, again.Rows)
		}
	}
}
