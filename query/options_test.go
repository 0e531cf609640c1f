package query

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// Epsilon and delta have documented ranges, one canonical value each, and a release
// states exactly what the ledger charged for it.
func TestOptionRangesAndCanonicalValues(t *testing.T) {
	data := twoRegions(t)
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 100, Delta: 1e-3}, nil)
	ctx := context.Background()
	const sql = "SELECT region, count(*) AS n FROM booking GROUP BY region"
	ask := func(eps, delta *float64, text string) (*release.Release, error) {
		if text == "" {
			text = sql
		}
		return eng.Query(ctx, Request{SQL: text, Project: "wl", Actor: "user:test", Epsilon: eps, Delta: delta})
	}
	refused := []struct {
		name       string
		eps, delta *float64
		sql        string
		want       string
	}{
		{"epsilon 1e-15", f64(1e-15), nil, "", "the request's epsilon is 1e-15, outside the range"},
		{"epsilon below the range", f64(9.99e-7), nil, "", "outside the range"},
		{"epsilon above the range", f64(1000.5), nil, "", "outside the range"},
		// The project has a default epsilon: the message names the request's value, never
		// "no default".
		{"negative epsilon", f64(-1), nil, "", "the request's epsilon is -1, outside the range Velo accepts: epsilon must be a number from 1e-06 to 1000"},
		{"delta 1e-320", f64(1), f64(1e-320), "", "the request's delta is 1e-320, outside the range"},
		{"delta below the range", f64(1), f64(1e-13), "", "outside the range"},
		{"delta 0.5", f64(1), f64(0.5), "", "outside the range"},
		{"negative delta", f64(1), f64(-1e-6), "", "outside the range"},
		{"clause epsilon NaN", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = NaN) count(*) AS n FROM booking", "not a decimal number"},
		{"clause epsilon Inf", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = '+Inf') count(*) AS n FROM booking", "not a decimal number"},
		{"clause hex float", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = '0x1p-3') count(*) AS n FROM booking", "not a decimal number"},
		{"clause delta tiny", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 1e-320) count(*) AS n FROM booking", "delta in OPTIONS(...) is 1e-320, outside the range"},
		{"clause epsilon huge", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1e308) count(*) AS n FROM booking", "epsilon in OPTIONS(...) is 1e+308, outside the range"},
		{"clause epsilon zero", nil, nil, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0) count(*) AS n FROM booking", "epsilon in OPTIONS(...) is 0, outside the range"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ask(tt.eps, tt.delta, tt.sql)
			var qe *Error
			if !errors.As(err, &qe) || qe.Code != CodeOptions || !strings.Contains(qe.Msg, tt.want) {
				t.Fatalf("got %v, want %s containing %q", err, CodeOptions, tt.want)
			}
		})
	}
	if st, _ := led.Project("wl"); st.Queries != 0 {
		t.Fatalf("refused options were charged: %d charges", st.Queries)
	}

	// Only a project without a default says epsilon is required.
	if err := led.CreateProject(ctx, "dpo:test", ledger.Project{
		ID: "nodefault", Purpose: "no default epsilon", LegalBasis: "test", Allow: map[string][]string{"booking": nil},
		EpsilonBudget: 10, DeltaBudget: 1e-5,
	}); err != nil {
		t.Fatal(err)
	}
	rel, err := eng.Query(ctx, Request{SQL: sql, Project: "nodefault", Actor: "user:test"})
	var qe *Error
	if !errors.As(err, &qe) || qe.Code != CodeOptions || !strings.Contains(qe.Msg, "epsilon is required: the project has no default epsilon") {
		t.Fatalf("no epsilon and no default: got %v, %v", rel, err)
	}

	// More digits than the ledger keeps: the release states what is charged, exactly.
	rel, err = ask(f64(0.1234567890123456), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var charge ledger.Entry
	for _, e := range led.Entries("wl", 0) {
		if e.Kind == ledger.KindCharge {
			charge = e
		}
	}
	if rel.Epsilon != 0.123456789013 || charge.Epsilon != rel.Epsilon {
		t.Fatalf("released epsilon %v, charged %v; want both 0.123456789013 (rounded up to the ledger's unit)", rel.Epsilon, charge.Epsilon)
	}
	var split float64
	for _, s := range rel.BudgetSplit {
		split += s.Epsilon
	}
	if split > rel.Epsilon {
		t.Fatalf("the split spends %v of %v", split, rel.Epsilon)
	}

	// -0 and 0 are one delta: the second is the first's release, from the cache.
	negZero := f64(0)
	*negZero = -*negZero
	first, err := ask(f64(1), f64(0), "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := ask(f64(1), negZero, "")
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.ReleaseID != first.ReleaseID || second.Delta != 0 {
		t.Fatalf("delta -0: cached %v, release %s (first %s), delta %v", second.Cached, second.ReleaseID, first.ReleaseID, second.Delta)
	}
	// The bounds of the ranges are accepted.
	for _, b := range [][2]float64{{MinEpsilon, 0}, {MaxEpsilon / 100, MinDelta}, {1, MaxDelta}} {
		if _, err := eng.Query(ctx, Request{SQL: sql, Project: "wl", Actor: "user:test", Epsilon: f64(b[0]), Delta: f64(b[1]), DryRun: true}); err != nil {
			t.Errorf("epsilon %g, delta %g: %v", b[0], b[1], err)
		}
	}
}
