package query

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/synthesize"
)

func entriesOf(led *ledger.Ledger, kind string) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range led.Entries("wl", 0) {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// A marginals release: one charge and one release in the ledger, every domain cell with its
// interval from the noise actually used, refusals (budget, allow-list, delta 0, no domain)
// before any charge.
func TestMarginalsRelease(t *testing.T) {
	ctx := context.Background()
	eng, led, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 3, Delta: 1e-5}, nil)
	rel, err := eng.Marginals(ctx, MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking",
		Sets: [][]string{{"region"}, {"priority", "wait_days"}, {"priority", "within_target", "d_contact"}}, Epsilon: f64(1), Delta: f64(1e-6)})
	if err != nil {
		t.Fatal(err)
	}
	if len(entriesOf(led, ledger.KindCharge)) != 1 || len(entriesOf(led, ledger.KindRelease)) != 1 {
		t.Fatalf("want one charge and one release")
	}
	if c := entriesOf(led, ledger.KindCharge)[0]; c.Epsilon != 1 || c.Delta != 1e-6 || !strings.HasPrefix(c.SQL, "MARGINALS booking (region) (priority, wait_days bins(10, 0, 365))") {
		t.Errorf("charge %v %v %q", c.Epsilon, c.Delta, c.SQL)
	}
	if rel.BudgetLeft.Epsilon != 2 {
		t.Errorf("budget left %v, want 2", rel.BudgetLeft.Epsilon)
	}
	wantCells := []int{21, 4 * 10, 4 * 2 * 24}
	total := 0.0
	for i, tab := range rel.Tables {
		if len(tab.Cells) != wantCells[i] {
			t.Errorf("table %v: %d cells, want %d", tab.Attributes, len(tab.Cells), wantCells[i])
		}
		// σ at least the planned one, and the table's cost at most its share of ρ
		planned := rel.Bounding.L2 / math.Sqrt(2*rel.Rho/3)
		if tab.Sigma < planned || tab.Rho > rel.Rho/3*(1+1e-12) {
			t.Errorf("table %v: σ %v (planned %v), ρ %v of %v", tab.Attributes, tab.Sigma, planned, tab.Rho, rel.Rho/3)
		}
		for _, c := range tab.Cells {
			if math.Abs((c.CIUpper-c.CILower)/2-1.959963984540054*tab.Sigma) > 1e-9 || c.Count < c.CILower || c.Count > c.CIUpper {
				t.Fatalf("cell %v: interval [%v, %v] around %v, σ %v", c.Levels, c.CILower, c.CIUpper, c.Count, tab.Sigma)
			}
			if i == 0 {
				total += c.Count
			}
		}
	}
	if rel.Bounding.MaxGroupsContributed != 4 || rel.Bounding.MaxRowsPerGroup != 4 || rel.Bounding.L2 != 8 || rel.Bounding.L1 != 16 {
		t.Errorf("bounding %+v", rel.Bounding)
	}
	// the synthetic extract has thousands of bookings: the noisy total is far from 0
	if total < 1000 {
		t.Errorf("noisy total of the region table %v", total)
	}
	var csv bytes.Buffer
	if err := rel.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(csv.String(), "\n"); lines != 1+21+40+192 {
		t.Errorf("CSV has %d lines", lines)
	}
	for _, bad := range []struct {
		req  MarginalsRequest
		want string
	}{
		{MarginalsRequest{Table: "booking", Sets: [][]string{{"region"}}, Epsilon: f64(5), Delta: f64(1e-6)}, "budget"},
		{MarginalsRequest{Table: "booking", Sets: [][]string{{"region"}}, Epsilon: f64(1)}, "delta > 0"},
		{MarginalsRequest{Table: "booking", Sets: [][]string{{"provider_id"}}, Epsilon: f64(1), Delta: f64(1e-6)}, "no public domain"},
		{MarginalsRequest{Table: "booking", Sets: [][]string{{"booking_key"}}, Epsilon: f64(1), Delta: f64(1e-6)}, "identifier"},
		{MarginalsRequest{Table: "booking", Sets: [][]string{{"region", "priority", "status", "channel"}}, Epsilon: f64(1), Delta: f64(1e-6)}, "1 to 3"},
	} {
		bad.req.Project, bad.req.Actor = "wl", "user:test"
		_, err := eng.Marginals(ctx, bad.req)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: got %v, want %q", bad.req.Sets, err, bad.want)
		}
	}
	if n := len(entriesOf(led, ledger.KindCharge)); n != 1 {
		t.Errorf("refusals charged: %d charges", n)
	}
	// The project's allow-list applies.
	eng2, led2, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 3, Delta: 1e-5}, map[string][]string{"booking": {"region"}})
	_, err = eng2.Marginals(ctx, MarginalsRequest{Project: "wl", Table: "booking", Sets: [][]string{{"priority"}}, Epsilon: f64(1), Delta: f64(1e-6)})
	var qe *Error
	if !errors.As(err, &qe) || qe.Code != CodeForbidden {
		t.Errorf("column outside the allow-list: %v", err)
	}
	if len(entriesOf(led2, ledger.KindCharge)) != 0 {
		t.Errorf("refusal charged")
	}
}

// Synthetic data: one charge for the whole synthesis, the synthesizer within its ρ, the
// Parquet readable by DuckDB with exactly the attribute columns, codes within their
// domains, and no identifier of the source in its bytes.
func TestSynthesizeRelease(t *testing.T) {
	ctx := context.Background()
	data := synthDataset(t)
	eng, led, state := openEngine(t, data, ledger.Budget{Epsilon: 3, Delta: 1e-5}, nil)
	for _, method := range []string{"mst", "aim"} {
		s, err := eng.Synthesize(ctx, SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Method: method,
			Columns: []string{"priority", "region", "within_target", "wait_days", "d_contact"}, Rows: 2000, Epsilon: f64(1), Delta: f64(1e-6)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Rows != 2000 || s.data.Rows() != 2000 || s.RhoSpent > s.Rho || s.RhoSpent < 0.99*s.Rho || s.RowsPerPerson != 1 {
			t.Errorf("%s: %d rows, ρ %v of %v, k %d", method, s.Rows, s.RhoSpent, s.Rho, s.RowsPerPerson)
		}
		if err := s.data.Validate(); err != nil {
			t.Error(err)
		}
		if len(s.Utility.Marginals) == 0 || s.Utility.MeanTVD <= 0 || s.Utility.MeanTVD >= 1 {
			t.Errorf("%s: utility %+v", method, s.Utility)
		}
		path := filepath.Join(t.TempDir(), "synthetic.parquet")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteParquet(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		rs, err := db.Query("SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('" + path + "'))")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var c string
			rs.Scan(&c)
			cols = append(cols, c)
		}
		rs.Close()
		if !slices.Equal(cols, []string{"priority", "region", "within_target", "wait_days", "d_contact"}) {
			t.Errorf("columns %v", cols)
		}
		var n, badPriority, badMonth int
		if err := db.QueryRow("SELECT count(*), count(*) FILTER (WHERE priority NOT IN ('U','B','D','P')), count(*) FILTER (WHERE day(d_contact) <> 1 OR d_contact < DATE '2024-01-01' OR d_contact > DATE '2025-12-31') FROM read_parquet('"+path+"')").Scan(&n, &badPriority, &badMonth); err != nil {
			t.Fatal(err)
		}
		if n != 2000 || badPriority != 0 || badMonth != 0 {
			t.Errorf("%s: %d rows, %d priorities and %d dates outside their domains", method, n, badPriority, badMonth)
		}
		// priority is NULL on a third of the bookings (follow-ups): NULL is one of its
		// levels, written as NULL.
		var nullPriority int
		if err := db.QueryRow("SELECT count(*) FILTER (WHERE priority IS NULL) FROM read_parquet('" + path + "')").Scan(&nullPriority); err != nil {
			t.Fatal(err)
		}
		if nullPriority < 200 || nullPriority > 1200 {
			t.Errorf("%s: %d of 2000 synthetic rows have no priority; the source has about a third", method, nullPriority)
		}
		db.Close()
		b, _ := os.ReadFile(path)
		src, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		rs, err = src.Query("SELECT DISTINCT pid FROM read_parquet('" + filepath.Join(data, "booking", "*.parquet") + "') LIMIT 200")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var pid string
			rs.Scan(&pid)
			if len(pid) < 8 || bytes.Contains(b, []byte(pid)) {
				t.Fatalf("pid %q found in the synthetic Parquet", pid)
			}
		}
		rs.Close()
		src.Close()
	}
	// A pair of attributes too fine for the engine is refused before any charge: 110 ASLs
	// and 100 bins, each with NULL as a level.
	if _, err := eng.Synthesize(ctx, SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Columns: []string{"asl", "wait_days"}, Bins: 100,
		Epsilon: f64(1), Delta: f64(1e-6)}); err == nil || !strings.Contains(err.Error(), "11211 cells") {
		t.Errorf("asl × 100 bins: %v", err)
	}
	if c, r := len(entriesOf(led, ledger.KindCharge)), len(entriesOf(led, ledger.KindRelease)); c != 2 || r != 2 {
		t.Errorf("%d charges and %d releases for two syntheses", c, r)
	}
	led.Close()
	if _, err := ledger.Verify(state, ledger.VerifyOptions{}); err != nil {
		t.Errorf("ledger verify: %v", err)
	}
}

// On the synthetic extract, whose waits depend on the priority class by construction (a
// multiple of the PNGLA maximum wait: 3 days for U, 120 or 180 for P), synthetic data at
// epsilon 1 with the default bounding (person_rows: one row per person, the same in every
// marginal, NULL a level) shows the dependency: its (priority, wait_days) marginal is within
// half the distance from the real one (every booking, NULLs as a level) that the
// independence baseline (the product of the real 1-way marginals) is. The TVDs of every pair
// are logged, also with the per_group bounding (one cell per person in each marginal, NULLs
// dropped, against the real marginals without NULLs): the figures the docs quote.
func TestSynthesizePlantedDependency(t *testing.T) {
	ctx := context.Background()
	eng, _, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 20, Delta: 1e-5}, nil)
	cols := []string{"priority", "region", "within_target", "wait_days"}
	perGroup := testCounter(t, eng)
	perGroup.maxGroups, perGroup.maxRows = 100, 100 // no person has more: the real marginals
	for _, c := range cols {
		a, err := resolveAttribute(eng.Catalog(), &eng.Catalog().Tables[slices.IndexFunc(eng.Catalog().Tables, func(c dataset.CatalogTable) bool { return c.Name == "booking" })], c, DefaultBins)
		if err != nil {
			t.Fatal(err)
		}
		perGroup.attrs = append(perGroup.attrs, a)
	}
	withNull := testCounter(t, eng) // every booking (no person has more than 100), NULL a level
	for _, c := range cols {
		a, err := resolveAttribute(eng.Catalog(), &eng.Catalog().Tables[slices.IndexFunc(eng.Catalog().Tables, func(c dataset.CatalogTable) bool { return c.Name == "booking" })], c, DefaultBins)
		if err != nil {
			t.Fatal(err)
		}
		withNull.attrs = append(withNull.attrs, a)
	}
	if err := withNull.usePersonRows(ctx, 100); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"aim", "mst"} {
		for _, bounding := range []string{boundingPersonRows, boundingPerGroup} {
			req := SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Method: method, Columns: cols, Epsilon: f64(1), Delta: f64(1e-6)}
			mc := withNull
			if bounding == boundingPerGroup {
				req.MaxRowsPerGroup, mc = 1, perGroup
			}
			s, err := eng.Synthesize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if s.Bounding.Method != bounding {
				t.Fatalf("bounding %s, want %s", s.Bounding.Method, bounding)
			}
			var synthMean, indepMean float64
			pairs := 0
			for a := range cols {
				for b := a + 1; b < len(cols); b++ {
					real, _ := countOf(t, mc, a, b)
					ra, _ := countOf(t, mc, a)
					rb, _ := countOf(t, mc, b)
					indep := make([]float64, len(real))
					for i := range ra {
						for j := range rb {
							indep[i*len(rb)+j] = ra[i] * rb[j]
						}
					}
					f, err := s.data.Marginal([]int{a, b})
					if err != nil {
						t.Fatal(err)
					}
					if len(f.Values) != len(real) {
						t.Fatalf("%s %s: the synthetic (%s, %s) has %d cells, the real %d", method, bounding, cols[a], cols[b], len(f.Values), len(real))
					}
					ts, ti := synthesize.TVD(f.Values, real), synthesize.TVD(indep, real)
					synthMean += ts
					indepMean += ti
					pairs++
					t.Logf("%s %s: (%s, %s): TVD synthetic %.3f, independence %.3f", method, bounding, cols[a], cols[b], ts, ti)
					if bounding == boundingPersonRows && cols[a] == "priority" && cols[b] == "wait_days" && ts >= ti/2 {
						t.Errorf("%s %s: the synthetic (priority, wait_days) is not within half the independence baseline's TVD of the real one: %.3f against %.3f", method, bounding, ts, ti)
					}
				}
			}
			t.Logf("%s %s: %d rows; mean TVD over the %d pairs: synthetic %.3f, independence %.3f; utility report mean TVD %.3f", method, bounding, s.Rows, pairs, synthMean/float64(pairs), indepMean/float64(pairs), s.Utility.MeanTVD)
		}
	}
}

// The released intervals cover the exact bounded counts at their stated 95%: 40 releases of
// the 21-cell region table (840 intervals; misses expected 42, standard deviation 6.3),
// accepted from 13 to 76 misses (outside it with probability 4·10⁻⁷ at 95%). Each asks a
// slightly different epsilon: the same request again would be the same release (cached).
func TestMarginalIntervalsCover(t *testing.T) {
	ctx := context.Background()
	eng, _, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 10, Delta: 1e-5}, nil)
	mc := testCounter(t, eng, "region")
	exact, _ := countOf(t, mc, 0)
	misses, n := 0, 0
	for i := range 40 {
		rel, err := eng.Marginals(ctx, MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking", Sets: [][]string{{"region"}}, Epsilon: f64(0.1 + float64(i)*1e-6), Delta: f64(1e-7)})
		if err != nil {
			t.Fatal(err)
		}
		if rel.Cached {
			t.Fatalf("release %d cached", i)
		}
		for i, c := range rel.Tables[0].Cells {
			if c.Levels[0] != mc.attrs[0].Levels[i] {
				t.Fatalf("cell %d is %v, want %v", i, c.Levels[0], mc.attrs[0].Levels[i])
			}
			n++
			if exact[i] < c.CILower || exact[i] > c.CIUpper {
				misses++
			}
		}
	}
	if n != 840 || misses < 13 || misses > 76 {
		t.Errorf("%d of %d intervals missed the exact count (95%% intervals: about 42)", misses, n)
	}
	t.Logf("%d of %d intervals missed", misses, n)
}

// The same marginals request again is answered by the release recorded for it, at no cost
// (same release id, same noisy cells, budget unchanged); identical requests arriving while
// the first is answered wait for it rather than being charged again; a request differing
// in its bins, budget or attribute sets is a new release, charged.
func TestMarginalsReleaseCached(t *testing.T) {
	ctx := context.Background()
	eng, led, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 10, Delta: 1e-4}, nil)
	req := MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking",
		Sets: [][]string{{"region"}, {"priority", "wait_days"}}, Epsilon: f64(1), Delta: f64(1e-6)}
	first, err := eng.Marginals(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached {
		t.Fatal("a first release marked cached")
	}
	again, err := eng.Marginals(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.ReleaseID != first.ReleaseID || again.BudgetLeft != first.BudgetLeft {
		t.Errorf("again: cached %v, release %s (first %s), budget left %+v (first %+v)", again.Cached, again.ReleaseID, first.ReleaseID, again.BudgetLeft, first.BudgetLeft)
	}
	again.Cached = false
	if !reflect.DeepEqual(jsonOf(t, again), jsonOf(t, first)) {
		t.Errorf("the cached release differs from the first:\n%s\n%s", jsonOf(t, again), jsonOf(t, first))
	}
	if n := len(entriesOf(led, ledger.KindCharge)); n != 1 {
		t.Errorf("%d charges after the same request twice, want 1", n)
	}

	// Each of these differs in what it releases: charged.
	for i, r := range []MarginalsRequest{
		{Sets: [][]string{{"region"}, {"priority", "wait_days"}}, Bins: 5, Epsilon: f64(1), Delta: f64(1e-6)},
		{Sets: [][]string{{"region"}, {"priority", "wait_days"}}, Epsilon: f64(0.5), Delta: f64(1e-6)},
		{Sets: [][]string{{"region"}, {"priority", "wait_days"}}, MaxRowsPerGroup: 2, Epsilon: f64(1), Delta: f64(1e-6)},
		{Sets: [][]string{{"region"}}, Epsilon: f64(1), Delta: f64(1e-6)},
	} {
		r.Project, r.Actor, r.Table = "wl", "user:test", "booking"
		rel, err := eng.Marginals(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if rel.Cached || rel.ReleaseID == first.ReleaseID {
			t.Errorf("request %d answered from the cache", i)
		}
		if n := len(entriesOf(led, ledger.KindCharge)); n != 2+i {
			t.Errorf("request %d: %d charges, want %d", i, n, 2+i)
		}
	}

	// Four identical requests while a fifth is between its charge and its counts.
	charges := len(entriesOf(led, ledger.KindCharge))
	entered, gate, waiting := make(chan struct{}, 8), make(chan struct{}), make(chan struct{}, 8)
	eng.afterCharge = func() { entered <- struct{}{}; <-gate }
	eng.onWait = func() { waiting <- struct{}{} }
	same := MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking", Sets: [][]string{{"status"}}, Epsilon: f64(1), Delta: f64(1e-6)}
	type answer struct {
		rel *MarginalsRelease
		err error
	}
	answers := make(chan answer, 5)
	ask := func() { rel, err := eng.Marginals(ctx, same); answers <- answer{rel, err} }
	go ask()
	<-entered
	for range 4 {
		go ask()
	}
	for i := range 4 {
		select {
		case <-waiting:
		case <-entered:
			t.Fatalf("an identical request was charged while the first was answered (%d waiting)", i)
		}
	}
	close(gate)
	ids := map[string]int{}
	cached := 0
	for range 5 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		ids[a.rel.ReleaseID]++
		if a.rel.Cached {
			cached++
		}
	}
	if len(ids) != 1 || cached != 4 {
		t.Errorf("five identical requests: releases %v, %d cached; want one release, 4 cached", ids, cached)
	}
	if n := len(entriesOf(led, ledger.KindCharge)); n != charges+1 {
		t.Errorf("%d charges for five identical requests, want 1", n-charges)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A marginals dry run validates and prices the request and gives each table's planned
// noise and interval half-width, with no cells, no ledger entry and the budget untouched;
// the release then made uses that noise (or, calibrated, a hair more). Refusals are the
// same as a real request's.
func TestMarginalsDryRun(t *testing.T) {
	ctx := context.Background()
	eng, led, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 3, Delta: 1e-5}, nil)
	req := MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking",
		Sets: [][]string{{"region"}, {"priority", "wait_days"}}, Epsilon: f64(1), Delta: f64(1e-6), DryRun: true}
	entries := len(led.Entries("", 0))
	dry, err := eng.Marginals(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.ReleaseID != "" || dry.BudgetLeft.Epsilon != 3 || len(dry.Tables) != 2 || len(dry.Attributes) != 3 {
		t.Fatalf("dry run: %+v", dry)
	}
	if n := len(led.Entries("", 0)); n != entries {
		t.Errorf("the dry run wrote %d ledger entries", n-entries)
	}
	planned := dry.Bounding.L2 / math.Sqrt(2*dry.Rho/2)
	for i, tab := range dry.Tables {
		if len(tab.Cells) != 0 || math.Abs(tab.Sigma-planned) > 1e-9*planned || math.Abs(tab.CIHalfWidth-z95*tab.Sigma) > 1e-12 {
			t.Errorf("dry table %d: %d cells, σ %v (planned %v), half-width %v", i, len(tab.Cells), tab.Sigma, planned, tab.CIHalfWidth)
		}
	}
	if !slices.Equal(dry.Tables[1].Attributes, []string{"priority", "wait_days"}) || len(dry.Attributes[2].Levels) != 10 {
		t.Errorf("dry run attributes: %v, levels %v", dry.Tables[1].Attributes, dry.Attributes[2].Levels)
	}
	req.DryRun = false
	rel, err := eng.Marginals(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, tab := range rel.Tables {
		if tab.Sigma < dry.Tables[i].Sigma || tab.Sigma > dry.Tables[i].Sigma*1.001 || tab.CIHalfWidth != z95*tab.Sigma {
			t.Errorf("table %d: σ %v, the dry run's %v; half-width %v", i, tab.Sigma, dry.Tables[i].Sigma, tab.CIHalfWidth)
		}
	}
	bad := MarginalsRequest{Project: "wl", Actor: "user:test", Table: "booking", Sets: [][]string{{"provider_id"}}, Epsilon: f64(1), Delta: f64(1e-6), DryRun: true}
	if _, err := eng.Marginals(ctx, bad); err == nil || !strings.Contains(err.Error(), "no public domain") {
		t.Errorf("dry run of a refused request: %v", err)
	}
}
