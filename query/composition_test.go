package query

import (
	"math"
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
