package query

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// A project's output policy is applied to every release it is sent, fresh or cached, on
// top of the release the ledger recorded: a row with a noisy count below the threshold has
// every value withheld, other counts are rounded to the base with intervals widened outward
// (so each still contains the recorded interval), and what is not a count is left alone.
func TestOutputPolicy(t *testing.T) {
	data := synthDataset(t)
	led, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	ctx := context.Background()
	policy := &ledger.OutputPolicy{SuppressBelow: 40, RoundTo: 5}
	if err := led.CreateProject(ctx, "dpo:test", ledger.Project{ID: "wl", Purpose: "p", LegalBasis: "l",
		Allow: map[string][]string{"booking": nil}, EpsilonBudget: 100, OutputPolicy: policy}); err != nil {
		t.Fatal(err)
	}
	if st, _ := led.Project("wl"); st.OutputPolicy == nil || *st.OutputPolicy != *policy {
		t.Fatalf("policy as recorded: %+v", st.OutputPolicy)
	}
	eng, err := Open(ctx, Config{DataDir: data, Ledger: led, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	q := "SELECT region, COUNT(*) AS n, AVG(wait_days) AS w FROM booking GROUP BY region"
	// At epsilon 50 the counts' noise is about 1 (95% half-width 3): the smallest region's
	// count (about 18) stays below the threshold of 40 and the large ones above it, so the
	// policy acts on some rows and not on others except with probability below 1e-9. At
	// epsilon 1 (half-width 144) no region fell below 40 in a few runs in a thousand.
	eps := 50.0
	fresh, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a", Epsilon: &eps})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := eng.Query(ctx, Request{SQL: q, Project: "wl", Actor: "user:a", Epsilon: &eps})
	if err != nil {
		t.Fatal(err)
	}
	if !cached.Cached {
		t.Fatal("second answer not from the cache")
	}
	var recorded release.Release
	for _, e := range led.Entries("wl", 0) {
		if e.Kind == ledger.KindRelease {
			if err := json.Unmarshal(e.Release, &recorded); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(recorded.Rows) == 0 || recorded.OutputPolicy != nil {
		t.Fatalf("recorded release: %d rows, policy %+v", len(recorded.Rows), recorded.OutputPolicy)
	}
	for _, rel := range []*release.Release{fresh, cached} {
		suppressed := 0
		for i, row := range rel.Rows {
			raw, _ := toFloat(recorded.Rows[i][1])
			if row[0] != recorded.Rows[i][0] {
				t.Fatalf("row %d: key %v, recorded %v", i, row[0], recorded.Rows[i][0])
			}
			if raw < policy.SuppressBelow {
				suppressed++
				if row[1] != nil || row[2] != nil || rel.CI[i][1] != nil || rel.CI[i][2] != nil ||
					!slices.Equal(rel.Flags[i][1], []string{release.FlagSuppressed}) {
					t.Errorf("region %v: recorded count %v below %v, sent %v %v, flags %v", row[0], raw, policy.SuppressBelow, row, rel.CI[i], rel.Flags[i])
				}
				continue
			}
			n, _ := toFloat(row[1])
			if n != math.Round(raw/5)*5 {
				t.Errorf("region %v: count %v sent as %v", row[0], raw, n)
			}
			lo, hi, _ := release.CIBounds(rel.CI[i][1])
			rlo, rhi, _ := release.CIBounds(recorded.CI[i][1])
			if math.Mod(lo, 5) != 0 || math.Mod(hi, 5) != 0 || lo > rlo || hi < rhi || hi-lo >= rhi-rlo+10 {
				t.Errorf("region %v: interval [%v, %v] from [%v, %v]", row[0], lo, hi, rlo, rhi)
			}
			if w, _ := toFloat(row[2]); w != mustFloat(t, recorded.Rows[i][2]) {
				t.Errorf("region %v: average %v changed from %v", row[0], w, recorded.Rows[i][2])
			}
		}
		if rel.OutputPolicy == nil || rel.OutputPolicy.RowsSuppressed != suppressed || rel.OutputPolicy.RoundTo != 5 {
			t.Errorf("release says %+v, %d rows withheld", rel.OutputPolicy, suppressed)
		}
		if suppressed == 0 || suppressed == len(rel.Rows) {
			t.Fatalf("%d of %d rows withheld: the test's threshold no longer splits the regions", suppressed, len(rel.Rows))
		}
	}
}

func mustFloat(t *testing.T, v any) float64 {
	t.Helper()
	f, ok := toFloat(v)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	return f
}

// A policy with nothing to act on says so; bad settings are refused by field.
func TestOutputPolicyEdges(t *testing.T) {
	rel := &release.Release{Columns: []release.Column{{Name: "region", Kind: "key"}, {Name: "w", Kind: "dp", Aggregate: string(aggAvg)}},
		Rows: [][]any{{"120", 3.5}}, CI: [][]any{{nil, []float64{1, 6}}}}
	applyPolicy(rel, &ledger.OutputPolicy{SuppressBelow: 10, RoundTo: 5})
	if rel.Rows[0][1] != 3.5 || len(rel.Notes) != 1 || rel.OutputPolicy == nil {
		t.Errorf("no count: rows %v, notes %q", rel.Rows, rel.Notes)
	}
	led, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	for _, p := range []ledger.OutputPolicy{{SuppressBelow: -1}, {RoundTo: 2.5}, {SuppressBelow: math.NaN()}, {RoundTo: 1e9}} {
		err := led.CreateProject(context.Background(), "dpo:test", ledger.Project{ID: "x", Purpose: "p", LegalBasis: "l",
			Allow: map[string][]string{"booking": nil}, EpsilonBudget: 1, OutputPolicy: &p})
		var fe *ledger.FieldError
		if !errors.As(err, &fe) || fe.Field[:14] != "output_policy." {
			t.Errorf("policy %+v: %v", p, err)
		}
	}
}
