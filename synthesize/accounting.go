package synthesize

import (
	"fmt"
	"math"

	"github.com/velo-fse/velo/dp"
)

// Accounting under zero-concentrated differential privacy (zCDP, Bun and Steinke 2016).
//
// A mechanism is ρ-zCDP when the Rényi divergence of order α between its output
// distributions on neighbouring datasets is at most ρ·α for every α > 1. zCDP composes by
// adding ρ, and converts to (ε, δ)-DP for every δ > 0 (dp.CDPDelta, dp.CDPEpsilon,
// dp.CDPRho; the Gaussian mechanism's cost is dp.GaussianRho). This file has the
// exponential mechanism's cost and the synthesizer's budget.

// ExponentialRho is the zCDP cost of an ε-DP exponential mechanism. The exponential
// mechanism with probabilities ∝ exp(ε·q/(2Δ)) is ε-bounded-range, and an ε-bounded-range
// mechanism is ε²/8-zCDP (Cesar and Rogers 2021, Lemma 3.2 and Thm. 3.4).
func ExponentialRho(epsilon float64) float64 {
	return epsilon * epsilon / 8
}

// ExponentialEpsilon is the inverse of ExponentialRho: ε = √(8ρ).
func ExponentialEpsilon(rho float64) float64 {
	return math.Sqrt(8 * rho)
}

// Budget is a zCDP budget with its (ε, δ) equivalent.
type Budget struct {
	Epsilon float64 // the ε the ledger charges
	Delta   float64 // the δ the ledger charges
	Rho     float64 // dp.CDPRho(Epsilon, Delta): the zCDP budget the synthesizer spends at most
}

// NewBudget converts an (ε, δ) charge to the largest ρ that implies it.
func NewBudget(epsilon, delta float64) (Budget, error) {
	if !(epsilon > 0) || math.IsInf(epsilon, 0) {
		return Budget{}, fmt.Errorf("synthesize: epsilon must be a positive finite number, got %v", epsilon)
	}
	if !(delta > 0) || !(delta < 1) {
		return Budget{}, fmt.Errorf("synthesize: delta must be in (0, 1), got %v: zCDP needs a positive delta to convert to (epsilon, delta)", delta)
	}
	rho := dp.CDPRho(epsilon, delta)
	if !(rho > 0) {
		return Budget{}, fmt.Errorf("synthesize: epsilon %v and delta %v leave no zCDP budget", epsilon, delta)
	}
	return Budget{Epsilon: epsilon, Delta: delta, Rho: rho}, nil
}
