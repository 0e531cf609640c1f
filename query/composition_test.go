package query

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dp"
)

// splitBudget composes a query's Gaussian mechanisms under zCDP exactly when that gives each
// a smaller σ than equal (ε, δ) shares, and never spends more than the total: the Gaussians'
// ρ converts to at most their (ε, δ) part, each Gaussian the library calibrates from Per is
// at least as noisy as its ρ needs, whatever its sensitivities, and the shares add up.
func TestSplitBudgetZCDP(t *testing.T) {
	for _, tc := range []struct {
		total      dp.Budget
		mechanisms int
		selection  bool
		zcdp       bool
	}{
		{dp.Budget{Epsilon: 1}, 3, false, false},              // pure ε: Laplace, equal shares
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 1, false, false}, // one Gaussian: nothing to compose
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 1, true, false},
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 2, false, true},
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 2, true, true},
		{dp.Budget{Epsilon: 0.1, Delta: 1e-9}, 3, false, true},
		{dp.Budget{Epsilon: 5, Delta: 1e-5}, 6, true, true},
	} {
		bp, err := splitBudget(tc.total, tc.mechanisms, tc.selection)
		if err != nil {
			t.Fatal(err)
		}
		basic, sel, _ := dp.Split(tc.total, tc.mechanisms, tc.selection)
		if bp.ZCDP != tc.zcdp || bp.Selection != sel || bp.Share != basic {
			t.Fatalf("%+v: zcdp %v, selection %+v, share %+v; want zcdp %v, the equal shares %+v and %+v", tc, bp.ZCDP, bp.Selection, bp.Share, tc.zcdp, basic, sel)
		}
		if !bp.ZCDP {
			if bp.Per != basic {
				t.Errorf("%+v: per %+v without zCDP, want the equal share %+v", tc, bp.Per, basic)
			}
			continue
		}
		m := float64(tc.mechanisms)
		// The Gaussians' ρ in all converts to at most their part of the total.
		if d := dp.CDPDelta(m*bp.Rho, m*basic.Epsilon); d > m*basic.Delta {
			t.Errorf("%+v: ρ = %g each converts to δ %g at ε %g, over the Gaussians' %g", tc, bp.Rho, d, m*basic.Epsilon, m*basic.Delta)
		}
		for _, sens := range []struct {
			l0   int64
			lInf float64
		}{{1, 1}, {4, 3}, {1, 100000}, {12, 0.5}} {
			l2 := sens.lInf * math.Sqrt(float64(sens.l0))
			sigma := dp.GaussianSigma(sens.l0, sens.lInf, bp.Per)
			if need := l2 / math.Sqrt(2*bp.Rho); sigma < need {
				t.Errorf("%+v, L0 %d, L∞ %g: σ %g below the %g that ρ %g needs", tc, sens.l0, sens.lInf, sigma, need, bp.Rho)
			}
			if old := dp.GaussianSigma(sens.l0, sens.lInf, basic); sigma >= old {
				t.Errorf("%+v: σ %g under zCDP, not below the equal shares' %g", tc, sigma, old)
			}
		}
	}
}

// At the budget the zCDP split narrows every Gaussian: by the ratios the analytic
// Gaussian and the zCDP conversion give (0.77 for two mechanisms at ε = 1, δ = 10⁻⁶, 0.63 for
// three).
func TestSplitBudgetZCDPGain(t *testing.T) {
	for _, tc := range []struct {
		m    int
		want float64
	}{{2, 0.77}, {3, 0.63}, {4, 0.55}} {
		total := dp.Budget{Epsilon: 1, Delta: 1e-6}
		bp, _ := splitBudget(total, tc.m, false)
		basic, _, _ := dp.Split(total, tc.m, false)
		got := dp.GaussianSigma(1, 1, bp.Per) / dp.GaussianSigma(1, 1, basic)
		if math.Abs(got-tc.want) > 0.01 {
			t.Errorf("%d mechanisms: σ ratio %.3f, want %.2f", tc.m, got, tc.want)
		}
	}
}

// Quantiles of one value within the same bounds read one noisy tree: the tree is one
// mechanism (one share of the budget, named once in the split), and every release of a
// group hands its quantiles the same tree, each at its own rank; a quantile of other bounds,
// and every other aggregate, keeps its own mechanisms.
func TestQuantilesShareOneTree(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	p, err := checkSQL(ctx, testParser(t), cat, `SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 0) region,
		MEDIAN(wait_days) AS m, QUANTILE_CONT(wait_days, 0.9) AS p90, AVG(wait_days) AS a,
		MEDIAN(wait_days, contribution_bounds_per_group => (0, 120)) AS m120, PERCENTILE_CONT(wait_days, 0.1) AS p10
		FROM booking GROUP BY region`, allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.treeOwners(); !slices.Equal(got, []int{0, 0, 2, 3, 0}) {
		t.Fatalf("tree owners %v, want [0 0 2 3 0]", got)
	}
	if n := p.Mechanisms(); n != 4 {
		t.Fatalf("%d mechanisms, want 4: one tree for m, p90 and p10, avg's sum and count, m120's tree", n)
	}
	bp, err := splitBudget(dp.Budget{Epsilon: 1}, p.Mechanisms(), p.Selection())
	if err != nil {
		t.Fatal(err)
	}
	split := budgetSplit(p, bp)
	var shared []string
	for _, e := range split {
		if strings.HasSuffix(e.For, "(one quantile tree)") {
			shared = append(shared, e.For)
		}
		if e.Epsilon != 0.25 {
			t.Errorf("%s: epsilon %v, want 0.25", e.For, e.Epsilon)
		}
	}
	if len(split) != 4 || len(shared) != 1 {
		t.Fatalf("split %+v: want 4 entries, one naming the shared tree", split)
	}
	rw := rewrite(p, 1, 1, 1, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	if rw.Tree[1] != "" || rw.Tree[4] != "" || rw.Tree[0] == "" || rw.Tree[3] == "" {
		t.Errorf("tree statements: want one per tree, for m and m120 only")
	}
	type seen struct {
		share *treeShare
		at    int
	}
	var got []seen
	_, _, err = releaseRows(p, rw, [][]any{{"010"}}, map[string]*groupRow{}, bp.Per, Confidence, dp.DefaultTree, func(in releaseInput) (dp.Released, error) {
		got = append(got, seen{in.share, in.shareAt})
		if in.share != nil {
			return in.agg.Kind.rule().Release(in)
		}
		return dp.Released{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].share == nil || got[1].share != got[0].share || got[4].share != got[0].share || got[2].share != nil || got[3].share != nil {
		t.Fatalf("shares %+v: m, p90 and p10 should read one tree, the others none", got)
	}
	if s := got[0].share; !slices.Equal(s.ranks, []float64{0.5, 0.9, 0.1}) || got[1].at != 1 || got[4].at != 2 || !s.done || s.r.Budget != bp.Per {
		t.Errorf("shared tree: ranks %v, places %d %d, noised %v at %+v (want the share %+v)", s.ranks, got[1].at, got[4].at, s.done, s.r.Budget, bp.Per)
	}
}
