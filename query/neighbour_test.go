package query

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ledger"
)

// neighbours returns datasets D and D' = D plus one person (index 2000) with many
// bookings across every region, priority and service, and waits beyond every bound.
func neighbours(t *testing.T) (d, dPlus string) {
	t.Helper()
	var base []string
	for i := 0; i < 300; i++ {
		r := fse.Regions[i%len(fse.Regions)].Code
		p := string(fse.Priorities[i%len(fse.Priorities)])
		base = append(base, booking(i, cfOf(t, i), fse.Services[i%len(fse.Services)].Code, p, r, "2024-03-04", i%40))
		base = append(base, booking(10000+i, cfOf(t, i), fse.Services[(i+3)%len(fse.Services)].Code, p, r, "2024-06-04", i%90))
	}
	extra := append([]string{}, base...)
	n := 0
	for _, r := range fse.Regions {
		for _, p := range fse.Priorities {
			for k := 0; k < 3; k++ {
				n++
				extra = append(extra, booking(50000+n, cfOf(t, 2000), fse.Services[n%len(fse.Services)].Code, string(p), r.Code, "2024-09-02", 300+n*7))
			}
		}
	}
	return csvDataset(t, base...), csvDataset(t, extra...)
}

// runRewrite runs rw in a fresh sandbox over the dataset in dir and returns its groups.
func runRewrite(t *testing.T, dir string, cat *dataset.Catalog, rw rewritten, nkeys int) map[string]*groupRow {
	t.Helper()
	ctx := context.Background()
	sb, err := openSandbox(ctx, dir, cat, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	groups, err := sb.run(ctx, rw, nkeys)
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

// Adding one person with many rows across many groups changes each pre-noise group
// total by at most the sensitivity package dp is told, in at most max_groups_contributed
// groups.
func TestNeighbouringDatasetsSensitivity(t *testing.T) {
	d, dPlus := neighbours(t)
	ctx := context.Background()
	cat := testCatalog(t)
	plan, err := checkSQL(ctx, testParser(t), cat,
		"SELECT region, priority, COUNT(*) AS n, COUNT(DISTINCT pid) AS people, SUM(wait_days) AS s, AVG(wait_days) AS a, VAR_POP(wait_days) AS v, MEDIAN(wait_days) AS m FROM booking GROUP BY region, priority",
		allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	rw := rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	g0, g1 := runRewrite(t, d, cat, rw, len(plan.Keys)), runRewrite(t, dPlus, cat, rw, len(plan.Keys))
	// The scaled bound dp is told for aggregate j: ⌈max(|lo|, |hi|)·scale⌉ over the values
	// noised (the variance's centred on the middle of its range).
	bound := func(j int) float64 {
		lo, hi, _ := plan.Aggs[j].noisedBounds()
		return math.Ceil(math.Max(math.Abs(lo), math.Abs(hi)) * rw.Scales[j])
	}
	m, mv := bound(2), bound(4)
	if lo, hi, _ := plan.Aggs[4].noisedBounds(); lo != -hi || mv >= m {
		t.Fatalf("the variance's values are not centred: [%v, %v], bound %v against the sum's %v", lo, hi, mv, m)
	}
	C := float64(rw.MaxRows)
	// Columns read per group: n; people; s (count, scaled sum); a (count, scaled sum);
	// v (count, scaled centred sum, scaled centred sum of squares); m (count).
	limits := []float64{C, 1, C, C * m, C, C * m, C, C * mv, C * mv * mv, C}
	changed := 0
	for id, after := range g1 {
		before := g0[id]
		if before == nil {
			before = &groupRow{vals: make([]int64, len(after.vals)), tree: map[int]treeCounts{}}
		}
		diff := false
		if d := after.persons - before.persons; d < 0 || d > 1 {
			t.Errorf("group %q: persons changed by %d", id, d)
		}
		for i, lim := range limits {
			delta := math.Abs(float64(after.vals[i] - before.vals[i]))
			if delta > lim {
				t.Errorf("group %q column %d changed by %v, sensitivity %v", id, i, delta, lim)
			}
			diff = diff || delta > 0
		}
		// The quantile tree: per level, the node counts change by at most C in total.
		for level := int64(1); level <= int64(dp.DefaultTree.Height); level++ {
			var l1 float64
			for node, n := range after.tree[7] {
				if node[0] == level {
					l1 += math.Abs(float64(n - before.tree[7][node]))
				}
			}
			for node, n := range before.tree[7] {
				if _, ok := after.tree[7][node]; !ok && node[0] == level {
					l1 += float64(n)
				}
			}
			if l1 > C {
				t.Errorf("group %q tree level %d changed by %v, sensitivity %v", id, level, l1, C)
			}
		}
		if diff {
			changed++
		}
	}
	if changed == 0 || changed > rw.MaxGroups {
		t.Errorf("the added person changed %d groups, want 1..%d", changed, rw.MaxGroups)
	}
	if len(g1) < len(g0) {
		t.Errorf("groups disappeared")
	}
}

// The bitmask form of the L0 step (maskL0, COUNT(DISTINCT pid) over at most 63 public
// groups) on the same neighbours: the added person, in all 21 regions and more than G of
// them, changes the persons of exactly G regions, by 1 each, and nothing else.
func TestNeighbouringDatasetsSensitivityMaskL0(t *testing.T) {
	d, dPlus := neighbours(t)
	ctx := context.Background()
	cat := testCatalog(t)
	plan, err := checkSQL(ctx, testParser(t), cat, "SELECT region, COUNT(DISTINCT pid) AS people FROM booking GROUP BY region", allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	if !maskApplies(plan) {
		t.Fatal("the query does not take the bitmask form: the test checks less than it says")
	}
	g, r := contributionBounds(plan)
	rw := rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	g0, g1 := runRewrite(t, d, cat, rw, len(plan.Keys)), runRewrite(t, dPlus, cat, rw, len(plan.Keys))
	changed := 0
	for id, after := range g1 {
		before := g0[id]
		if before == nil {
			before = &groupRow{vals: make([]int64, len(after.vals))}
		}
		if after.vals[0] != after.persons {
			t.Errorf("group %q: COUNT(DISTINCT pid) total %d, persons %d", id, after.vals[0], after.persons)
		}
		switch after.persons - before.persons {
		case 0:
		case 1:
			changed++
		default:
			t.Errorf("group %q: persons changed by %d", id, after.persons-before.persons)
		}
	}
	for id := range g0 {
		if g1[id] == nil {
			t.Errorf("group %q disappeared", id)
		}
	}
	if changed != g {
		t.Errorf("the added person, in 21 regions, changed %d groups, want G = %d", changed, g)
	}
}

// Errors do not depend on the data: for a pair of neighbouring datasets where one row
// would make an untotal expression fail in plain SQL (division by zero, a failing cast,
// an integer overflow), every accepted query gives the same outcome on both: a release.
func TestErrorsAreDataIndependent(t *testing.T) {
	var base []string
	for i := 0; i < 200; i++ {
		base = append(base, booking(i, cfOf(t, i), "89.7A.3", "B", "120", "2024-03-04", 10+i%50))
	}
	poison := strings.Replace(booking(999, cfOf(t, 999), "89.7A.3", "B", "120", "2024-03-04", 5), "120901", "X12345", 1)
	huge := booking(998, cfOf(t, 998), "89.7A.3", "B", "120", "2024-03-04", 4000)
	d := csvDataset(t, base...)
	dPlus := csvDataset(t, append(append([]string{}, base...), poison, huge)...)
	queries := []string{
		"SELECT COUNT(*) AS n FROM booking WHERE 100 / (wait_days - 5) > 1",
		"SELECT SUM(CAST(provider_id AS INTEGER), contribution_bounds_per_group => (0, 1000000)) AS s FROM booking",
		"SELECT SUM(wait_days * 3000000000000000, contribution_bounds_per_group => (0, 1)) AS s FROM booking",
		"SELECT AVG(wait_days * 1000000, contribution_bounds_per_group => (-1, 1)) AS a FROM booking",
		"SELECT COUNT(*) AS n FROM booking WHERE CAST(provider_id AS INTEGER) > 0",
	}
	// The pair is a real test: in plain DuckDB each query fails on D' and not on D.
	plain := func(dir, q string) error {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(fmt.Sprintf("CREATE VIEW booking AS SELECT * FROM read_parquet('%s')", filepath.Join(dir, "booking", "*.parquet"))); err != nil {
			t.Fatal(err)
		}
		q = strings.ReplaceAll(q, ", contribution_bounds_per_group => (0, 1000000)", "")
		q = strings.ReplaceAll(q, ", contribution_bounds_per_group => (0, 1)", "")
		q = strings.ReplaceAll(q, ", contribution_bounds_per_group => (-1, 1)", "")
		var x any
		return db.QueryRow(q).Scan(&x)
	}
	for _, q := range queries[1:] {
		if err := plain(d, q); err != nil {
			t.Fatalf("plain DuckDB on D fails: %s: %v", q, err)
		}
		if err := plain(dPlus, q); err == nil {
			t.Fatalf("plain DuckDB on D' does not fail, so the pair tests nothing: %s", q)
		}
	}
	for _, dir := range []string{d, dPlus} {
		eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 100}, nil)
		for _, q := range queries {
			if _, err := eng.Query(context.Background(), Request{SQL: q, Project: "wl", Actor: "user:test", Epsilon: f64(1)}); err != nil {
				t.Errorf("%s on %s: %v", q, filepath.Base(filepath.Dir(dir)), err)
			}
		}
	}
}
