package query

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
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

// When the keys' public domains hold at most G groups in all, per_group prints no L0 step
// (publicGroupsWithin): each person is in at most that many groups whatever the data (the
// queries count rows beside persons, so that the window form is the one printed). The
// decision reads the plan only; on DuckDB's output every person keeps every one of their
// groups, at most G of them, each counted once among its persons, and everyone keeps
// their rows in each (at most C counted) — the same bounds as with the L0 step, which
// would have kept all of them too.
func TestPublicGroupsWithinG(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	parser := testParser(t)
	decisions := []struct {
		sql  string
		want bool
	}{
		{"SELECT priority, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY priority", true},                                     // 4 values, G = 4
		{"SELECT service_kind, first_access, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY service_kind, first_access", true}, // 2 × 2
		{"SELECT priority, first_access, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY priority, first_access", false},        // 4 × 2 > G
		{"SELECT region, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY region", false},                                        // 21 values
		{"SELECT region, COUNT(*) AS n FROM booking WHERE region IN ('010', '020') GROUP BY region", true},                                    // restricted by WHERE to 2
		{"SELECT provider_id, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY provider_id", false},                              // partition selection
		{"SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 2) priority, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY priority", false},
		{"SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 8) priority, first_access, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY priority, first_access", true},
	}
	for _, d := range decisions {
		plan, err := checkSQL(ctx, parser, cat, d.sql, allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", d.sql, err)
		}
		g, r := contributionBounds(plan)
		rw := rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
		if got := publicGroupsWithin(plan, g); got != d.want {
			t.Errorf("%s: publicGroupsWithin = %v, want %v", d.sql, got, d.want)
		}
		if hasL0 := strings.Contains(rw.Bounded, "row_number()"); hasL0 == d.want {
			t.Errorf("%s: L0 step printed %v, want %v:\n%s", d.sql, hasL0, !d.want, rw.Bounded)
		}
	}

	// 60 people, each with bookings in 1 to 4 priorities; person 100 with 3 bookings in
	// every priority (more rows than C = 4 in none, 4 groups = G).
	var rows0 []string
	for i := 0; i < 60; i++ {
		for k := 0; k <= i%4; k++ {
			rows0 = append(rows0, booking(i*10+k, cfOf(t, i), fse.Services[k].Code, string(fse.Priorities[(i+k)%4]), fse.Regions[i%5].Code, "2024-03-04", i%40))
		}
	}
	for k := 0; k < 12; k++ {
		rows0 = append(rows0, booking(5000+k, cfOf(t, 100), fse.Services[k%3].Code, string(fse.Priorities[k%4]), fse.Regions[k%3].Code, "2024-05-06", k))
	}
	data := csvDataset(t, rows0...)
	plan, err := checkSQL(ctx, parser, cat, "SELECT priority, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY priority", allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	rw := rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	sb, err := openSandbox(ctx, data, cat, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	// Independently: each group's distinct persons and rows (at most C a person) in base.
	type tot struct{ persons, rows int64 }
	want := map[string]tot{}
	q := fmt.Sprintf("WITH %s SELECT k0, count(*), sum(least(n, %d)), max(groups) FROM (SELECT pid, k0, count(*) AS n, count(*) OVER (PARTITION BY pid) AS groups FROM base GROUP BY pid, k0) GROUP BY k0", rw.ctes, r)
	res, err := sb.db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	maxGroups := int64(0)
	for res.Next() {
		var k string
		var w tot
		var mg int64
		if err := res.Scan(&k, &w.persons, &w.rows, &mg); err != nil {
			t.Fatal(err)
		}
		want[k], maxGroups = w, max(maxGroups, mg)
	}
	res.Close()
	if maxGroups != int64(g) {
		t.Fatalf("the most groups a person is in is %d, want G = %d: the test checks less than it says", maxGroups, g)
	}
	res, err = sb.db.QueryContext(ctx, rw.Inline())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tot{}
	for res.Next() {
		var k string
		var w tot
		var p int64
		if err := res.Scan(&k, &w.persons, &p, &w.rows); err != nil {
			t.Fatal(err)
		}
		if p != w.persons {
			t.Errorf("group %s: COUNT(DISTINCT pid) total %d, persons %d", k, p, w.persons)
		}
		got[k] = w
	}
	res.Close()
	if len(want) != 4 || !maps.Equal(got, want) {
		t.Errorf("groups %v, want every person in every one of their groups: %v", got, want)
	}
}

// COUNT(DISTINCT pid) over at most 63 public groups runs per_group's L0 step as a
// per-person bitmask (maskL0). On DuckDB's output each person keeps exactly the min(groups,
// G) of their groups whose keyed hash hash(pid, group number, seed) is smallest, and each
// group counts the persons who kept it, once each — checked against a selection in Go from
// base's (person, group) units; the window form keeps as many groups of every person.
func TestMaskL0KeepsDeclaredContribution(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	parser := testParser(t)
	for _, d := range []struct {
		sql  string
		want bool
	}{
		{"SELECT region, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region", true},
		{"SELECT region, service_kind, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region, service_kind", true}, // 42 groups
		{"SELECT region, priority, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region, priority", false},        // 84 groups
		{"SELECT asl, COUNT(DISTINCT pid) AS p FROM booking GROUP BY asl", false},                                  // 110 values
		{"SELECT provider_id, COUNT(DISTINCT pid) AS p FROM booking GROUP BY provider_id", false},                  // partition selection
		{"SELECT region, COUNT(DISTINCT pid) AS p, COUNT(*) AS n FROM booking GROUP BY region", false},             // rows counted too
		{"SELECT date_trunc('month', d_contact) AS m, COUNT(DISTINCT pid) AS p FROM booking GROUP BY m", false},    // not a text or boolean column
		{"SELECT first_access, COUNT(DISTINCT pid) AS p FROM booking GROUP BY first_access", true},
	} {
		plan, err := checkSQL(ctx, parser, cat, d.sql, allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", d.sql, err)
		}
		if got := maskApplies(plan); got != d.want {
			t.Errorf("%s: maskApplies = %v, want %v", d.sql, got, d.want)
		}
		g, r := contributionBounds(plan)
		if got := strings.Contains(rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale).Bounded, "row_number()"); got == d.want {
			t.Errorf("%s: window printed %v, want %v", d.sql, got, !d.want)
		}
		if got := strings.Contains(rewriteIn2(t, plan, g, r), "bit_or"); got {
			t.Errorf("%s: the portable dialect printed the bitmask", d.sql)
		}
	}

	// 80 people with one to three bookings; people 100 to 104 with bookings in 3 to 11
	// regions, of both kinds of service, some twice.
	var rows0 []string
	for i := 0; i < 80; i++ {
		for k := 0; k <= i%3; k++ {
			rows0 = append(rows0, booking(i*10+k, cfOf(t, i), fse.Services[(i+k)%len(fse.Services)].Code, "B", fse.Regions[(i+k*7)%len(fse.Regions)].Code, "2024-03-04", i%40))
		}
	}
	for h := 0; h < 5; h++ {
		for k := 0; k < 3+2*h; k++ {
			for rep := 0; rep <= k%2; rep++ {
				rows0 = append(rows0, booking(5000+h*100+k*2+rep, cfOf(t, 100+h), fse.Services[(k+rep)%len(fse.Services)].Code, "D", fse.Regions[(h+k*3)%len(fse.Regions)].Code, "2024-05-06", k))
			}
		}
	}
	data := csvDataset(t, rows0...)
	sb, err := openSandbox(ctx, data, cat, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.close()
	for _, sqlText := range []string{
		"SELECT region, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region",
		"SELECT region, service_kind, COUNT(DISTINCT pid) AS p FROM booking GROUP BY region, service_kind",
	} {
		plan, err := checkSQL(ctx, parser, cat, sqlText, allowAll(cat))
		if err != nil {
			t.Fatal(err)
		}
		g, r := contributionBounds(plan)
		const seed = 7
		rw := rewrite(plan, seed, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
		// The group number of a unit's keys: their places in the domains, the last key's
		// varying fastest.
		number := func(keys []any) int64 {
			n := int64(0)
			for i, k := range plan.Keys {
				n = n*int64(len(k.Domain.Values)) + int64(slices.Index(k.Domain.Values, keys[i]))
			}
			return n
		}
		// Every (person, group) unit of base, with the keyed hash of its group number.
		keyCols := "k0"
		if len(plan.Keys) == 2 {
			keyCols = "k0, k1"
		}
		res, err := sb.db.QueryContext(ctx, fmt.Sprintf("WITH %s SELECT DISTINCT CAST(pid AS VARCHAR), %s FROM base", rw.ctes, keyCols))
		if err != nil {
			t.Fatal(err)
		}
		type unit struct {
			n int64
			h uint64
		}
		units := map[string][]unit{}
		for res.Next() {
			var pid string
			keys := make([]any, len(plan.Keys))
			ptrs := []any{&pid}
			for i := range keys {
				ptrs = append(ptrs, &keys[i])
			}
			if err := res.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			n := number(keys)
			if n < 0 {
				t.Fatalf("a unit's keys %v are not in their domains", keys)
			}
			units[pid] = append(units[pid], unit{n: n})
		}
		res.Close()
		heavy := 0
		want := map[int64]int64{}
		wantKept := map[string]uint64{}
		for pid, us := range units {
			for i := range us {
				if err := sb.db.QueryRowContext(ctx, fmt.Sprintf("SELECT hash(CAST('%s' AS UUID), CAST(%d AS BIGINT), %d)", pid, us[i].n, uint64(seed)>>1)).Scan(&us[i].h); err != nil {
					t.Fatal(err)
				}
			}
			slices.SortFunc(us, func(a, b unit) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.n, b.n)) })
			if len(us) > g {
				heavy++
			}
			for _, u := range us[:min(len(us), g)] {
				wantKept[pid] |= 1 << u.n
				want[u.n]++
			}
		}
		if heavy == 0 {
			t.Fatalf("%s: no person is in more than G = %d groups: the test checks less than it says", sqlText, g)
		}
		// What the sandbox keeps of each person.
		res, err = sb.db.QueryContext(ctx, "SELECT CAST(pid AS VARCHAR), m FROM ("+rw.Bounded+")")
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]uint64{}
		for res.Next() {
			var pid string
			var m int64
			if err := res.Scan(&pid, &m); err != nil {
				t.Fatal(err)
			}
			kept[pid] = uint64(m)
		}
		res.Close()
		if !maps.Equal(kept, wantKept) {
			t.Errorf("%s: kept groups (bits by person) %v, want the min(groups, G) with the smallest keyed hash %v", sqlText, kept, wantKept)
		}
		// Each group's persons, as the sandbox totals them.
		res, err = sb.db.QueryContext(ctx, rw.Inline())
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for res.Next() {
			keys := make([]any, len(plan.Keys))
			var persons, a0 int64
			ptrs := []any{}
			for i := range keys {
				ptrs = append(ptrs, &keys[i])
			}
			if err := res.Scan(append(ptrs, &persons, &a0)...); err != nil {
				t.Fatal(err)
			}
			if persons != a0 || persons == 0 {
				t.Errorf("%s: group %v: persons %d, COUNT(DISTINCT pid) total %d", sqlText, keys, persons, a0)
			}
			got[number(keys)] = persons
		}
		res.Close()
		if !maps.Equal(got, want) {
			t.Errorf("%s: persons by group number %v, want %v", sqlText, got, want)
		}
	}
}

// rewriteIn2 is plan p's per_group Bounded statement in the portable dialect (duckPortable).
func rewriteIn2(t *testing.T, p *plan, g, r int) string {
	t.Helper()
	rw, err := rewriteIn(duckPortable, p, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	if err != nil {
		t.Fatal(err)
	}
	return rw.Bounded
}
