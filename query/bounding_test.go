package query

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/fse"
)

// The bounded rows the sandbox computes (as it runs them: its settings, its DuckDB) keep,
// for every person, exactly the min(groups, G) groups with the smallest keyed hash, and the
// quantile tree counts min(values, C) values of each person in each kept group and none
// elsewhere: what docs/privacy.md derives the sensitivities from, checked on DuckDB's
// output against an independent selection in Go.
func TestBoundedKeepsDeclaredContribution(t *testing.T) {
	// 200 people with one or two bookings; person 2000 with 7 bookings (distinct waits) in
	// each of 6 region × priority groups: more groups than G, more values than C.
	var rows0 []string
	for i := 0; i < 200; i++ {
		r := fse.Regions[i%len(fse.Regions)].Code
		p := string(fse.Priorities[i%len(fse.Priorities)])
		rows0 = append(rows0, booking(i, cfOf(t, i), fse.Services[i%len(fse.Services)].Code, p, r, "2024-03-04", i%40))
		if i%2 == 0 {
			rows0 = append(rows0, booking(10000+i, cfOf(t, i), fse.Services[(i+3)%len(fse.Services)].Code, p, r, "2024-06-04", i%90))
		}
	}
	for gi := 0; gi < 6; gi++ {
		for k := 0; k < 7; k++ {
			rows0 = append(rows0, booking(50000+gi*10+k, cfOf(t, 2000), fse.Services[k].Code, string(fse.Priorities[gi%len(fse.Priorities)]), fse.Regions[gi].Code, "2024-09-02", 5+gi*20+k))
		}
	}
	dPlus := csvDataset(t, rows0...)
	ctx := context.Background()
	cat := testCatalog(t)
	plan, err := checkSQL(ctx, testParser(t), cat,
		"SELECT region, priority, COUNT(*) AS n, MEDIAN(wait_days) AS m FROM booking GROUP BY region, priority", allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	const seed = 7
	rw := rewrite(plan, seed, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	sb, err := openSandbox(ctx, dPlus, cat, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	conn, err := sb.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type unit struct {
		pid, k0, k1 string
		h           uint64
		values      int64 // non-NULL median inputs
	}
	// Every (person, group) before L0, with its keyed hash and its number of values.
	all := map[string][]unit{}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("WITH %s SELECT CAST(pid AS VARCHAR), k0, k1, hash(pid, k0, k1, %d), count(*) FILTER (WHERE v1 IS NOT NULL) FROM base GROUP BY ALL", rw.ctes, uint64(seed)>>1))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u unit
		if err := rows.Scan(&u.pid, &u.k0, &u.k1, &u.h, &u.values); err != nil {
			t.Fatal(err)
		}
		all[u.pid] = append(all[u.pid], u)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	// What the sandbox keeps.
	kept := map[string]map[[2]string]int64{}
	rows, err = conn.QueryContext(ctx, "SELECT CAST(pid AS VARCHAR), k0, k1, c1 FROM ("+rw.Bounded+")")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid, k0, k1 string
		var n int64
		if err := rows.Scan(&pid, &k0, &k1, &n); err != nil {
			t.Fatal(err)
		}
		if kept[pid] == nil {
			kept[pid] = map[[2]string]int64{}
		}
		kept[pid][[2]string{k0, k1}] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	// The tree's leaf counts per group, as the sandbox computes them.
	if _, err := conn.ExecContext(ctx, rw.createBounded(false)); err != nil {
		t.Fatal(err)
	}
	treeTotal := map[[2]string]int64{}
	rows, err = conn.QueryContext(ctx, "SELECT k0, k1, sum(n) FROM ("+rw.Tree[1]+") GROUP BY ALL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k0, k1 string
		var n int64
		if err := rows.Scan(&k0, &k1, &n); err != nil {
			t.Fatal(err)
		}
		treeTotal[[2]string{k0, k1}] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	wantTree := map[[2]string]int64{}
	heavy, manyValues := 0, false
	for pid, units := range all {
		slices.SortFunc(units, func(a, b unit) int { return cmp.Compare(a.h, b.h) })
		want := units[:min(len(units), g)]
		if len(units) > g {
			heavy++
		}
		if len(kept[pid]) != len(want) {
			t.Errorf("a person with %d groups keeps %d, want %d (G = %d)", len(units), len(kept[pid]), len(want), g)
			continue
		}
		for _, u := range want {
			n, ok := kept[pid][[2]string{u.k0, u.k1}]
			if !ok {
				t.Errorf("a person with %d groups does not keep one of its %d with the smallest keyed hash", len(units), g)
				continue
			}
			if n != u.values {
				t.Errorf("a kept group counts %d values, want %d", n, u.values)
			}
			wantTree[[2]string{u.k0, u.k1}] += min(u.values, int64(r))
			manyValues = manyValues || u.values > int64(r)
		}
	}
	for k, n := range wantTree {
		if treeTotal[k] != n {
			t.Errorf("group %v: the quantile tree counts %d values, want %d (at most C = %d per kept person)", k, treeTotal[k], n, r)
		}
	}
	for k, n := range treeTotal {
		if _, ok := wantTree[k]; !ok {
			t.Errorf("group %v: the quantile tree counts %d values of no kept person", k, n)
		}
	}
	if heavy == 0 || !manyValues {
		t.Fatal("no person has more groups than G or more values than C in a group: the test checks less than it says")
	}
}

// A value's clamp is left out only where its types and constants alone keep it within the
// clamping bounds (typeBounds), never on the catalog's declared range, which the data may
// leave: there it is a CASE, NULL for NULL, so the sum needs no filter.
func TestIntegralClampTypeBounds(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	tests := []struct {
		agg      string
		typed    bool    // typeBounds knows a range
		lo, hi   float64 // that range
		integral bool    // integralClamp applies (a CASE is not of integer type to the checker)
		clamped  bool
	}{
		{"SUM(CAST(within_target AS INTEGER))", true, 0, 1, true, false},
		{"AVG(CAST(first_access AS BIGINT))", true, 0, 1, true, false},
		{"SUM(CASE WHEN first_access THEN 2 WHEN within_target THEN 1 END, contribution_bounds_per_group => (0, 1))", true, 1, 2, false, true},
		{"SUM(CAST(within_target AS INTEGER), contribution_bounds_per_group => (1, 3))", true, 0, 1, true, true},
		{"SUM(wait_days)", false, 0, 0, true, true},
		{"SUM(CAST(wait_days AS INTEGER))", false, 0, 0, true, true},
		{"SUM(wait_days, contribution_bounds_per_group => (-5, 20))", false, 0, 0, true, true},
		{"SUM(wait_days, contribution_bounds_per_group => (2, 20))", false, 0, 0, true, true},
		{"SUM(wait_days, contribution_bounds_per_group => (-20, -2))", false, 0, 0, true, true},
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range tests {
		sqlText := tt.agg
		plan, err := checkSQL(ctx, testParser(t), cat, "SELECT region, "+sqlText+" AS x FROM booking GROUP BY region", allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", sqlText, err)
		}
		a := plan.Aggs[0]
		lo, hi, ok := typeBounds(a.Arg)
		if ok != tt.typed || ok && (lo != tt.lo || hi != tt.hi) {
			t.Errorf("%s: typeBounds %v, %v, %v; want %v, %v, %v", sqlText, lo, hi, ok, tt.lo, tt.hi, tt.typed)
		}
		ix, ok := integralClamp(a, 0, 100)
		if ok != tt.integral {
			t.Fatalf("%s: integral clamp %v, want %v", sqlText, ok, tt.integral)
		}
		if !ok {
			continue
		}
		if got := ix != "v0"; got != tt.clamped {
			t.Errorf("%s: clamp %q, want clamped %v", sqlText, ix, tt.clamped)
		}
		// Whatever its form, the clamp's sum in DuckDB is the sum of the clamped non-NULL
		// values, and count(v0) counts those only.
		vals := []any{nil, int64(-30), int64(-5), int64(-1), int64(0), int64(1), int64(3), int64(20), int64(400), nil, int64(math.MaxInt32)}
		var want, n int64
		var rows []string
		for _, v := range vals {
			if v == nil {
				rows = append(rows, "(NULL)")
				continue
			}
			x := float64(v.(int64))
			if !tt.typed || tt.clamped {
				x = math.Min(math.Max(x, a.Lo), a.Hi)
			}
			want += int64(x)
			n++
			rows = append(rows, fmt.Sprintf("(%d)", v))
		}
		if tt.typed && !tt.clamped {
			continue // the type keeps the value in [0, 1]: no integer outside it to sum
		}
		var got, count int64
		q := fmt.Sprintf("SELECT coalesce(sum(%s), 0), count(v0) FROM (SELECT CAST(v AS INTEGER) AS v0 FROM (VALUES %s) t(v))", ix, strings.Join(rows, ", "))
		if err := db.QueryRow(q).Scan(&got, &count); err != nil {
			t.Fatalf("%s: %v\n%s", sqlText, err, q)
		}
		if got != want || count != n {
			t.Errorf("%s: clamp %q sums to %d over %d values in DuckDB, want %d over %d", sqlText, ix, got, count, want, n)
		}
	}
}
