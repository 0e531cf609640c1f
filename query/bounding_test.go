package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/velo-fse/velo/dp"
)

// The bounded rows the sandbox computes (as it runs them: its settings, its DuckDB) keep,
// for every person, exactly the min(groups, G) groups with the smallest keyed hash, and in
// each kept group a quantile's list holds min(values, C) leaves: what docs/privacy.md
// derives the sensitivities from, checked on DuckDB's output against an independent
// selection in Go.
func TestBoundedKeepsDeclaredContribution(t *testing.T) {
	_, dPlus := neighbours(t)
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
	rows, err = conn.QueryContext(ctx, "SELECT CAST(pid AS VARCHAR), k0, k1, len(l1) FROM ("+rw.Bounded+")")
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
	heavy := 0
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
			if n != min(u.values, int64(r)) {
				t.Errorf("a kept group's quantile list holds %d leaves of %d values, want %d (C = %d)", n, u.values, min(u.values, int64(r)), r)
			}
		}
	}
	if heavy == 0 {
		t.Fatal("no person has more groups than G: the test checks nothing")
	}
}
