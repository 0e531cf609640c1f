package dp

import "math"

// Accounting under zero-concentrated differential privacy (zCDP, Bun and Steinke 2016),
// shared by the engine's composition within a query (query/composition.go) and the
// synthesizers (package synthesize).
//
// A mechanism is ρ-zCDP when the Rényi divergence of order α between its output
// distributions on neighbouring datasets is at most ρ·α for every α > 1. zCDP composes by
// adding ρ, and converts to (ε, δ)-DP for every δ > 0 (CDPDelta, CDPEpsilon, CDPRho).

// GaussianRho is the zCDP cost of the Gaussian mechanism N(0, σ²) applied to a vector whose
// L2 sensitivity is l2: ρ = l2²/(2σ²) (Bun and Steinke 2016, Prop. 1.6).
func GaussianRho(l2, sigma float64) float64 {
	return l2 * l2 / (2 * sigma * sigma)
}

// ZCDPSigma is the inverse of GaussianRho: the σ for which the Gaussian mechanism on a
// vector of L2 sensitivity l2 is ρ-zCDP, σ = l2/√(2ρ).
func ZCDPSigma(l2, rho float64) float64 {
	return l2 / math.Sqrt(2*rho)
}

// cdpDeltaAt is the δ for which ρ-zCDP implies (ε, δ)-DP, evaluated at one Rényi order α > 1
// (Canonne, Kamath and Steinke 2020, Prop. 7 / Cor. 13):
//
//	δ = exp((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α.
//
// Any α > 1 gives a valid δ; CDPDelta searches for the best one.
func cdpDeltaAt(rho, eps, alpha float64) float64 {
	return math.Exp((alpha-1)*(alpha*rho-eps)+alpha*math.Log1p(-1/alpha)) / (alpha - 1)
}

// CDPDelta is the smallest δ (to the search's precision, and never below the true optimum:
// every α gives a valid bound) such that ρ-zCDP implies (ε, δ)-DP. It follows the
// reference implementation of Private-PGM's cdp2adp (used by MST and AIM): bisection on the
// derivative of the exponent over α in [1.01, (ε+1)/(2ρ)+2].
func CDPDelta(rho, eps float64) float64 {
	if rho <= 0 {
		return 0
	}
	if math.IsInf(rho, 1) {
		return 1
	}
	amin, amax := 1.01, (eps+1)/(2*rho)+2
	var alpha float64
	for range 1000 {
		alpha = (amin + amax) / 2
		if alpha == amin || alpha == amax {
			break
		}
		derivative := (2*alpha-1)*rho - eps + math.Log1p(-1/alpha)
		if derivative < 0 {
			amin = alpha
		} else {
			amax = alpha
		}
	}
	d := cdpDeltaAt(rho, eps, alpha)
	if math.IsNaN(d) || d > 1 {
		return 1
	}
	return d
}

// CDPEpsilon is the smallest ε (rounded up by the bisection) such that ρ-zCDP implies
// (ε, δ)-DP. It starts from the classical bound ε ≤ ρ + 2√(ρ·log(1/δ)) (Bun and Steinke
// 2016, Prop. 1.3) and bisects on CDPDelta, returning the upper end: CDPDelta(ρ, result) ≤ δ.
func CDPEpsilon(rho, delta float64) float64 {
	if rho <= 0 || delta >= 1 {
		return 0
	}
	lo, hi := 0.0, rho+2*math.Sqrt(rho*math.Log(1/delta))
	for range 1000 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if CDPDelta(rho, mid) <= delta {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// CDPRho is the largest ρ (rounded down by the bisection) such that ρ-zCDP implies
// (ε, δ)-DP: CDPDelta(result, ε) ≤ δ. This is the budget a synthesizer may spend when the
// ledger charges (ε, δ).
func CDPRho(eps, delta float64) float64 {
	if delta >= 1 {
		return math.Inf(1)
	}
	lo, hi := 0.0, eps+1
	for range 1000 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if CDPDelta(mid, eps) <= delta {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}
