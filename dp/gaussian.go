package dp

import "math"

// GaussianDelta is the smallest δ for which the Gaussian mechanism with standard deviation
// sigma, on data of L2 sensitivity l2, is (ε, δ)-DP: Balle and Wang's exact curve (2018,
// Thm. 8), δ = Φ(l2/(2σ) − εσ/l2) − e^ε·Φ(−l2/(2σ) − εσ/l2), computed as the google library
// computes it when it calibrates σ (noise.SigmaForGaussian). Given the δ this returns for
// some σ, the library's σ for (ε, δ) is the smallest it finds with δ(σ) ≤ δ: never below σ.
func GaussianDelta(sigma, l2, eps float64) float64 {
	a, b, c := l2/(2*sigma), eps*sigma/l2, math.Exp(eps)
	if math.IsInf(c, 1) || math.IsInf(b, 1) {
		return 0
	}
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	return phi(a-b) - c*phi(-a-b)
}

// GaussianSigma is the σ the library gives a Gaussian mechanism with sensitivities (l0, lInf)
// at budget b (noise.SigmaForGaussian; b.Delta > 0).
func GaussianSigma(l0 int64, lInf float64, b Budget) float64 {
	return Gaussian.scale(l0, lInf, b)
}
