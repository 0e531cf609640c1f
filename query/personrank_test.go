package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
)

// On datasets written by the real ingest (ranks assigned by its finalize step), adding one
// person with 252 bookings across every region and priority changes the person_rank
// bounding's exact totals by at most what package dp is told (L0 = 1, L∞ = K = G·C): in
// L1 norm over all groups, for every total, and per level of the quantile tree.
func TestPersonRankNeighbours(t *testing.T) {
	d, dPlus := neighbours(t)
	ctx := context.Background()
	cat := testCatalog(t)
	for _, tb := range cat.Tables {
		if !tb.PersonRank {
			t.Fatalf("the ingest's catalog does not rank table %s", tb.Name)
		}
	}
	plan, err := checkSQL(ctx, testParser(t), cat,
		"SELECT region, priority, COUNT(*) AS n, SUM(wait_days) AS s, AVG(wait_days) AS a, VAR_POP(wait_days) AS v, MEDIAN(wait_days) AS m FROM booking GROUP BY region, priority",
		allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	br := boundingByMethod(boundingPersonRank)
	if !br.Applies(plan) {
		t.Fatal("person_rank does not apply to a one-table query with public keys")
	}
	g, c := contributionBounds(plan)
	rw := br.Rewrite(plan, 7, g, c, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	K := float64(g * c)
	if rw.Method != boundingPersonRank || rw.MaxGroups != 1 || float64(rw.MaxRows) != K {
		t.Fatalf("rewrite %s with bounds (%d, %d), want person_rank (1, %v)", rw.Method, rw.MaxGroups, rw.MaxRows, K)
	}
	g0, g1 := runRewrite(t, d, cat, rw, len(plan.Keys)), runRewrite(t, dPlus, cat, rw, len(plan.Keys))
	bound := func(j int) float64 {
		lo, hi, _ := plan.Aggs[j].noisedBounds()
		return math.Ceil(math.Max(math.Abs(lo), math.Abs(hi)) * rw.Scales[j])
	}
	m, mv := bound(1), bound(3)
	// Columns per group: n; s (count, scaled sum); a (count, scaled sum); v (count, scaled
	// centred sum, scaled centred sum of squares); m (count). L1 over all groups ≤ K·bound.
	limits := []float64{K, K, K * m, K, K * m, K, K * mv, K * mv * mv, K}
	l1 := make([]float64, len(limits))
	treeL1 := map[int64]float64{}
	changed := 0
	for id, after := range g1 {
		before := g0[id]
		if before == nil {
			before = &groupRow{vals: make([]int64, len(after.vals)), tree: map[int]treeCounts{}}
		}
		diff := false
		for i := range limits {
			delta := math.Abs(float64(after.vals[i] - before.vals[i]))
			l1[i] += delta
			diff = diff || delta > 0
		}
		for node, n := range after.tree[4] {
			treeL1[node[0]] += math.Abs(float64(n - before.tree[4][node]))
		}
		for node, n := range before.tree[4] {
			if _, ok := after.tree[4][node]; !ok {
				treeL1[node[0]] += float64(n)
			}
		}
		if diff {
			changed++
		}
	}
	for i, lim := range limits {
		if l1[i] > lim {
			t.Errorf("column %d changed by %v over all groups, sensitivity %v", i, l1[i], lim)
		}
	}
	if l1[0] != K {
		t.Errorf("the added person's rows counted: %v, want exactly K = %v of their 252 bookings", l1[0], K)
	}
	for level, d := range treeL1 {
		if d > K {
			t.Errorf("tree level %d changed by %v, sensitivity %v", level, d, K)
		}
	}
	if changed < 2 || float64(changed) > K {
		t.Errorf("the added person changed %d groups, want 2..%v (K rows across many groups)", changed, K)
	}
}

// The engine takes person_rank where its noise is no larger (public keys with Laplace: the
// same L0·L∞; partition selection: K = G rows, G < √G·C) and per_group where it is (public
// keys with Gaussian and G > 1: √G·C < G·C), never person_rank for COUNT(DISTINCT pid), a
// join of two tables of many rows or a global aggregate; the release says which, and its
// selection's L0 is G either way.
func TestBoundingChoice(t *testing.T) {
	data := synthDataset(t)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 100, Delta: 1e-3}, nil)
	ctx := context.Background()
	tests := []struct {
		name, sql string
		delta     float64
		want      string
	}{
		{"public keys, Laplace", "SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY region, priority", 0, boundingPersonRank},
		{"public keys and a median, Laplace", "SELECT service_code, MEDIAN(wait_days) AS m FROM booking WHERE first_access GROUP BY service_code", 0, boundingPersonRank},
		{"public keys, Gaussian", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", 1e-6, boundingPerGroup},
		{"persons", "SELECT region, COUNT(DISTINCT pid) AS people FROM booking GROUP BY region", 0, boundingPerGroup},
		// Partition selection keeps each person's G rows of lowest rank: the same L0 as
		// per_group, L1 and L2 G where per_group's are G·C and √G·C.
		{"partition selection", "SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id", 1e-6, boundingPersonRank},
		{"partition selection with a sum", "SELECT provider_id, COUNT(*) AS n, SUM(wait_days) AS w FROM booking GROUP BY provider_id", 1e-6, boundingPersonRank},
		{"partition selection, persons", "SELECT provider_id, COUNT(DISTINCT pid) AS people FROM booking GROUP BY provider_id", 1e-6, boundingPerGroup},
		{"partition selection, join", "SELECT b.provider_id, AVG(b.wait_days) AS w FROM booking b JOIN person p ON b.pid = p.pid WHERE p.birth_year < 1960 GROUP BY b.provider_id", 1e-6, boundingPersonRank},
		{"global aggregate", "SELECT COUNT(*) AS n FROM booking WHERE region = '120'", 0, boundingPerGroup},
		{"join with person, Laplace", "SELECT b.region, p.sex, COUNT(*) AS n, AVG(b.wait_days) AS w FROM booking b JOIN person p ON b.pid = p.pid GROUP BY b.region, p.sex", 0, boundingPersonRank},
		{"join with person first", "SELECT b.region, COUNT(*) AS n FROM person p JOIN booking b ON p.pid = b.pid GROUP BY b.region", 0, boundingPersonRank},
		{"join, Gaussian", "SELECT b.region, COUNT(*) AS n FROM booking b JOIN person p ON b.pid = p.pid GROUP BY b.region", 1e-6, boundingPerGroup},
		{"join of two tables of many rows", "SELECT b.region, COUNT(*) AS n FROM booking b JOIN booking b2 ON b.pid = b2.pid GROUP BY b.region", 0, boundingPerGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, err := eng.Query(ctx, Request{SQL: tt.sql, Project: "wl", Actor: "user:test", Epsilon: f64(1), Delta: f64(tt.delta)})
			if err != nil {
				t.Fatal(err)
			}
			b := rel.Bounding
			if b.Method != tt.want {
				t.Fatalf("bounding %q, want %q", b.Method, tt.want)
			}
			wantK := 0
			if tt.want == boundingPersonRank {
				wantK = b.MaxGroupsContributed * b.MaxRowsPerGroup
				if b.PartitionSelection {
					wantK = b.MaxGroupsContributed
				}
			}
			if (rel.Selection != nil) != b.PartitionSelection || rel.Selection != nil && rel.Selection.MaxGroupsContributed != b.MaxGroupsContributed {
				t.Errorf("selection %+v with bounding %+v: want L0 = max_groups_contributed", rel.Selection, b)
			}
			if rel.Selection != nil {
				// COUNT(DISTINCT pid) alone: the released count is its own selection, all of
				// epsilon on it and delta on its threshold; the split adds up either way.
				want := "preagg_select_partition"
				if strings.Contains(tt.sql, "COUNT(DISTINCT pid)") {
					want = thresholdMechanism
				}
				var eps, delta float64
				for _, e := range rel.BudgetSplit {
					eps, delta = eps+e.Epsilon, delta+e.Delta
				}
				if rel.Selection.Mechanism != want || math.Abs(eps-1) > 1e-12 || math.Abs(delta-tt.delta) > 1e-18 {
					t.Errorf("selection %s, budget split %+v (ε %v, δ %v); want %s adding up to (1, %v)", rel.Selection.Mechanism, rel.BudgetSplit, eps, delta, want, tt.delta)
				}
			}
			if b.MaxRowsPerPerson != wantK {
				t.Errorf("max_rows_per_person %d, want %d", b.MaxRowsPerPerson, wantK)
			}
			if len(rel.Rows) == 0 && !b.PartitionSelection {
				t.Error("no rows released for public keys")
			}
		})
	}
}

// A table whose catalog declares ranks its files lack is refused before any charge: the
// filter on the rank does not bind.
func TestPersonRankMissingColumnNotCharged(t *testing.T) {
	data := copyDataset(t, synthDataset(t))
	// Drop the rank column from the booking files, as a dataset written before ranks
	// with a catalog that claims them would be.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	part := dataset.TablePart(data, "booking")
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * EXCLUDE (%s) FROM read_parquet(%s)) TO %s (FORMAT parquet)", dataset.PersonRankColumn, quoteString(part), quoteString(part+".new"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part+".new", part); err != nil {
		t.Fatal(err)
	}
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 10, Delta: 1e-4}, nil)
	_, err = eng.Query(context.Background(), Request{SQL: "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", Project: "wl", Actor: "user:test", Epsilon: f64(1), Delta: f64(0)})
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("a query over files without ranks: %v, want ErrInternal", err)
	}
	st, _ := led.Project("wl")
	if st.Spent.Epsilon != 0 || st.Queries != 0 {
		t.Errorf("charged %v in %d queries for a query that could not be prepared", st.Spent.Epsilon, st.Queries)
	}
}
