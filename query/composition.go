package query

import (
	"math"

	"github.com/velo-fse/velo/dp"
)

// budgetPlan is how one query's budget is divided among its mechanisms.
type budgetPlan struct {
	// Per is the budget each aggregate mechanism is given (what package dp calibrates its
	// noise and intervals from) and Selection partition selection's share.
	Per, Selection dp.Budget
	// ZCDP: the query's Gaussian mechanisms compose under zero-concentrated DP, each
	// Rho-zCDP, and Per is an (ε, δ) pair the Gaussian of that ρ satisfies exactly.
	ZCDP bool
	Rho  float64
	// Share is each mechanism's part of the charged total, as the release's budget split
	// shows it: the shares and the selection's add up to the total.
	Share dp.Budget
}

// zcdpMargin keeps the planned ρ below what the conversion allows, and each σ above what
// the plan needs, by far more than floating-point rounding.
const zcdpMargin = 1e-9

// planBudget divides plan p's budget total: with Laplace thresholding (p.Thresholded) the
// count of persons is noised with all of epsilon (Laplace, delta 0) and delta goes to its
// threshold; otherwise splitBudget.
func planBudget(p *plan, total dp.Budget) (budgetPlan, error) {
	if !p.Thresholded() {
		return splitBudget(total, p.Mechanisms(), p.Selection())
	}
	// One mechanism that is its own selection: dp.Split's whole share, with its checks.
	_, whole, err := dp.Split(total, 0, true)
	if err != nil {
		return budgetPlan{}, err
	}
	per := dp.Budget{Epsilon: whole.Epsilon}
	return budgetPlan{Per: per, Selection: dp.Budget{Delta: whole.Delta}, Share: per}, nil
}

// splitBudget divides a query's budget among its mechanisms (from the query and the
// budget alone, never from the data). By default the shares are equal (dp.Split: basic
// composition). With δ > 0 every aggregate mechanism is Gaussian, and several Gaussians
// compose more tightly under zCDP: their part of the budget, (ε_g, δ_g) = m equal shares, is
// converted to the largest ρ with ρ-zCDP ⇒ (ε_g, δ_g)-DP (Canonne, Kamath and Steinke 2020;
// dp.CDPRho), and each of the m gets ρ/m, so σ = L2/√(2ρ/m). That is used when it
// gives a smaller σ than the equal (ε, δ) shares (from two mechanisms on; docs/privacy.md,
// "Composition within a query"). Partition selection keeps its equal (ε, δ) share, composed
// with the rest by basic composition.
func splitBudget(total dp.Budget, mechanisms int, selection bool) (budgetPlan, error) {
	per, sel, err := dp.Split(total, mechanisms, selection)
	if err != nil {
		return budgetPlan{}, err
	}
	bp := budgetPlan{Per: per, Selection: sel, Share: per}
	if total.Delta == 0 || mechanisms < 2 {
		return bp, nil
	}
	m := float64(mechanisms)
	rho := dp.CDPRho(per.Epsilon*m, per.Delta*m) * (1 - zcdpMargin) / m
	// σ/L2 of each Gaussian: under zCDP, and under the equal (ε, δ) shares.
	s := 1 / math.Sqrt(2*rho) * (1 + zcdpMargin)
	if s >= dp.GaussianSigma(1, 1, per) {
		return bp, nil
	}
	// The library calibrates σ from (ε, δ): give it the δ that σ = s·L2 has at the share's ε.
	// It returns the smallest σ it finds with δ(σ) ≤ that δ, so never below s·L2, for any L2.
	d := dp.GaussianDelta(s, 1, per.Epsilon)
	if !(d > per.Delta && d < 1) {
		return bp, nil
	}
	bp.Per, bp.ZCDP, bp.Rho = dp.Budget{Epsilon: per.Epsilon, Delta: d}, true, rho
	return bp, nil
}
