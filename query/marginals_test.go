package query

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
)

// testCounter is a marginalCounter over booking's attributes named, with a fixed seed.
func testCounter(t *testing.T, eng *Engine, names ...string) *marginalCounter {
	t.Helper()
	cat := eng.Catalog()
	tab := cat.Tables[slices.IndexFunc(cat.Tables, func(c dataset.CatalogTable) bool { return c.Name == "booking" })]
	mc := &marginalCounter{e: eng, table: "booking", allow: allowAll(cat), seed: 7}
	for _, n := range names {
		a, err := resolveAttribute(cat, &tab, n, 8)
		if err != nil {
			t.Fatal(err)
		}
		mc.attrs = append(mc.attrs, a)
	}
	return mc
}

func countOf(t *testing.T, mc *marginalCounter, attrs ...int) ([]float64, *preparedMarginal) {
	t.Helper()
	pm, err := mc.prepare(context.Background(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mc.count(context.Background(), pm)
	if err != nil {
		t.Fatal(err)
	}
	return c, pm
}

// Where no person reaches the bounds, the bounded contingency table is plain DuckDB's GROUP
// BY over the domain: every domain cell present (empty ones 0), rows outside it (a NULL
// priority) dropped, numeric columns binned by the catalog bounds, dates by month.
func TestMarginalCountsAreTheBoundedGroupBy(t *testing.T) {
	var rows []string
	for i := 0; i < 120; i++ {
		p := []string{"U", "B", "D", "P", ""}[i%5]
		rows = append(rows, booking(i, cfOf(t, i), "89.7A.3", p, []string{"120", "030"}[i%2], []string{"2024-03-04", "2024-07-15"}[i%3/2], i*3%400))
	}
	data := csvDataset(t, rows...)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 10}, nil)
	mc := testCounter(t, eng, "priority", "wait_days", "d_contact")
	got, pm := countOf(t, mc, 0, 1, 2)
	if g, r := pm.bounds(); g != 4 || r != 4 {
		t.Fatalf("bounds %d, %d: want the catalog's 4, 4", g, r)
	}
	months := len(mc.attrs[2].values)
	if want := 4 * 8 * months; len(got) != want || months != 24 {
		t.Fatalf("%d cells (%d months): want every domain cell, %d", len(got), months, 4*8*24)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(fmt.Sprintf(`SELECT priority, least(greatest(floor(wait_days / (365.0 / 8)), 0), 7)::INT AS bin,
		date_trunc('month', d_contact)::DATE AS m, count(*) FROM read_parquet('%s') WHERE priority IS NOT NULL GROUP BY ALL`, dataset.TableGlob(data, "booking")))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	want := make([]float64, len(got))
	total := 0.0
	for rs.Next() {
		var priority string
		var bin int
		var m time.Time
		var n int64
		if err := rs.Scan(&priority, &bin, &m, &n); err != nil {
			t.Fatal(err)
		}
		cell := 0
		for i, v := range []any{priority, int64(bin), time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC)} {
			j, ok := mc.attrs[i].index[groupID([]any{v})]
			if !ok {
				t.Fatalf("value %v of %s is not a level", v, mc.attrs[i].Name)
			}
			cell = cell*len(mc.attrs[i].values) + j
		}
		want[cell] += float64(n)
		total += float64(n)
	}
	if total != 96 {
		t.Fatalf("plain DuckDB counted %v rows with a priority, want 96", total)
	}
	if !slices.Equal(got, want) {
		t.Errorf("bounded counts differ from the plain GROUP BY")
	}
	// The levels are the catalog's, in its order; bins are labelled by their edges.
	if mc.attrs[1].Levels[0] != "[0, 45.625)" || mc.attrs[1].Levels[7] != "[319.375, 365]" {
		t.Errorf("bin labels %v", mc.attrs[1].Levels)
	}
	if mc.attrs[2].Levels[0] != "2024-01-01" || !slices.Equal(mc.attrs[0].Levels, []any{"U", "B", "D", "P"}) {
		t.Errorf("levels %v, %v", mc.attrs[0].Levels, mc.attrs[2].Levels[0])
	}
}

// Columns without a public domain, and identifiers, are refused before any data is read.
func TestMarginalAttributesNeedPublicDomains(t *testing.T) {
	cat := testCatalog(t)
	tab := cat.Tables[slices.IndexFunc(cat.Tables, func(c dataset.CatalogTable) bool { return c.Name == "booking" })]
	for _, name := range []string{"pid", "booking_key", "provider_id", "d_appointment", "nope"} {
		if _, err := resolveAttribute(cat, &tab, name, 10); err == nil {
			t.Errorf("%s accepted as an attribute", name)
		}
	}
	if _, err := resolveAttribute(cat, &tab, "wait_days", 1); err == nil {
		t.Errorf("1 bin accepted")
	}
}

// The sensitivity derived in docs/privacy.md#sensitivity-of-a-contingency-table: adding one
// person with many rows in many cells changes a bounded contingency table in at most C cells,
// each by at most R, never downwards (the others' kept cells do not move), so by at most C·R
// in L1 and √C·R in L2; the heavy person attains the L2 bound in the 1-way table.
func TestMarginalNeighbourSensitivity(t *testing.T) {
	d, dPlus := neighbours(t)
	sets := [][]int{{0}, {0, 1}, {0, 1, 2}, {2, 3}}
	counts := func(dir string) ([][]float64, int, int) {
		eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 10}, nil)
		mc := testCounter(t, eng, "region", "priority", "wait_days", "d_contact")
		var out [][]float64
		var g, r int
		for _, s := range sets {
			c, pm := countOf(t, mc, s...)
			out = append(out, c)
			g, r = pm.bounds()
		}
		return out, g, r
	}
	c0, g, r := counts(d)
	c1, _, _ := counts(dPlus)
	l1Bound, l2Bound := sensitivity(g, r)
	for i, s := range sets {
		var l1, l2 float64
		changed := 0
		for j := range c0[i] {
			diff := c1[i][j] - c0[i][j]
			if diff < 0 || diff > float64(r) {
				t.Errorf("set %v cell %d changed by %v (allowed 0..%d)", s, j, diff, r)
			}
			if diff != 0 {
				changed++
			}
			l1 += diff
			l2 += diff * diff
		}
		l2 = math.Sqrt(l2)
		if changed == 0 || changed > g || l1 > l1Bound || l2 > l2Bound+1e-12 {
			t.Errorf("set %v: %d cells changed, L1 %v, L2 %v; bounds %d cells, %v, %v", s, changed, l1, l2, g, l1Bound, l2Bound)
		}
		if i == 0 && l2 != l2Bound {
			t.Errorf("the heavy person moves the region table by %v in L2, not the bound %v: the test is not tight", l2, l2Bound)
		}
	}
}
