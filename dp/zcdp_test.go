package dp

import (
	"math"
	"testing"
)

// Reference values computed with mpmath at 50 significant digits: the optimal Rényi order α
// found by 400 bisection steps on the exact derivative (2α−1)ρ − ε + log(1 − 1/α) (Canonne,
// Kamath and Steinke 2020, Prop. 7), δ evaluated there, and ε and ρ by 300 bisection steps on
// that δ. (The script is reproduced in NOTES; it shares no code with this package.)
var cdpDeltaRefs = []struct{ rho, eps, delta float64 }{
	{0.1, 1.0, 0.0089332457718183635},
	{0.5, 3.0, 0.0051431840638621493},
	{0.01, 0.5, 3.5058780600523915e-5},
	{1.0, 5.0, 0.002612034506620487},
}

var cdpEpsRefs = []struct{ rho, delta, eps float64 }{
	{0.1, 1e-6, 2.1419389283854737},
	{0.5, 1e-9, 6.4740700207264861},
	{0.01, 1e-5, 0.5457255482740024},
}

var cdpRhoRefs = []struct{ eps, delta, rho float64 }{
	{1.0, 1e-6, 0.024355970359538373},
	{1.0, 1e-9, 0.014973057673588526},
	{0.1, 1e-6, 0.00032104769034574013},
	{10.0, 1e-6, 1.5392787638667285},
}

// TestCDPPublishedOpenDP checks the values OpenDP's own tests assert for the same conversion
// (the Rust crate opendp, src/combinators/measure_cast/zCDP_to_approxDP/test.rs,
// test_zCDP_to_approxDP_nontrivial): a Gaussian mechanism of scale 4 on sensitivity 1,
// ρ = 1/32, has ε = 0.6880024554878086 at δ = 10⁻³, δ = 0.1508457845622862 at ε = 0, and
// δ = 10⁻³ at ε = 0.6880024554878085.
func TestCDPPublishedOpenDP(t *testing.T) {
	rho := GaussianRho(1, 4)
	if got := CDPEpsilon(rho, 1e-3); relErr(got, 0.6880024554878086) > 1e-12 {
		t.Errorf("CDPEpsilon(1/32, 1e-3) = %.17g, OpenDP 0.6880024554878086", got)
	}
	if got := CDPDelta(rho, 0); relErr(got, 0.1508457845622862) > 1e-12 {
		t.Errorf("CDPDelta(1/32, 0) = %.17g, OpenDP 0.1508457845622862", got)
	}
	if got := CDPDelta(rho, 0.6880024554878085); relErr(got, 1e-3) > 1e-12 {
		t.Errorf("CDPDelta(1/32, 0.6880024554878085) = %.17g, OpenDP 1e-3", got)
	}
}

func relErr(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

func TestCDPDeltaReference(t *testing.T) {
	for _, c := range cdpDeltaRefs {
		got := CDPDelta(c.rho, c.eps)
		if relErr(got, c.delta) > 1e-9 {
			t.Errorf("CDPDelta(%v, %v) = %.17g, reference %.17g", c.rho, c.eps, got, c.delta)
		}
		if got < c.delta*(1-1e-12) {
			t.Errorf("CDPDelta(%v, %v) = %.17g is below the optimum %.17g: not a valid bound", c.rho, c.eps, got, c.delta)
		}
	}
}

func TestCDPEpsilonReference(t *testing.T) {
	for _, c := range cdpEpsRefs {
		got := CDPEpsilon(c.rho, c.delta)
		if relErr(got, c.eps) > 1e-9 {
			t.Errorf("CDPEpsilon(%v, %v) = %.17g, reference %.17g", c.rho, c.delta, got, c.eps)
		}
		if CDPDelta(c.rho, got) > c.delta {
			t.Errorf("CDPEpsilon(%v, %v) = %v is too small: δ there is %v", c.rho, c.delta, got, CDPDelta(c.rho, got))
		}
		// the conversion is never worse than the classical ε = ρ + 2√(ρ log 1/δ)
		if classical := c.rho + 2*math.Sqrt(c.rho*math.Log(1/c.delta)); got > classical {
			t.Errorf("CDPEpsilon(%v, %v) = %v exceeds the classical bound %v", c.rho, c.delta, got, classical)
		}
	}
}

func TestCDPRhoReference(t *testing.T) {
	for _, c := range cdpRhoRefs {
		got := CDPRho(c.eps, c.delta)
		if relErr(got, c.rho) > 1e-9 {
			t.Errorf("CDPRho(%v, %v) = %.17g, reference %.17g", c.eps, c.delta, got, c.rho)
		}
		if d := CDPDelta(got, c.eps); d > c.delta {
			t.Errorf("CDPRho(%v, %v) = %v is too large: δ there is %v", c.eps, c.delta, got, d)
		}
		// round trip
		if e := CDPEpsilon(got, c.delta); relErr(e, c.eps) > 1e-9 {
			t.Errorf("CDPEpsilon(CDPRho(%v, %v)) = %v", c.eps, c.delta, e)
		}
	}
}

// TestCDPDeltaIndependentScan checks CDPDelta against a minimisation that shares nothing with
// it: the log of δ(α) on a dense logarithmic grid of α in (1, 10⁶], refined by golden-section
// search, over a sweep of (ρ, ε).
func TestCDPDeltaIndependentScan(t *testing.T) {
	logDelta := func(rho, eps, a float64) float64 {
		return (a-1)*(a*rho-eps) + a*math.Log(1-1/a) - math.Log(a-1)
	}
	for _, rho := range []float64{0.001, 0.01, 0.05, 0.2, 1, 3} {
		for _, eps := range []float64{0.1, 0.5, 1, 2, 5, 10} {
			if eps <= rho {
				continue
			}
			best, bestA := math.Inf(1), 0.0
			for i := range 200000 {
				a := 1 + math.Pow(10, -6+12*float64(i)/200000)
				if v := logDelta(rho, eps, a); v < best {
					best, bestA = v, a
				}
			}
			lo, hi := 1+(bestA-1)/1.001, 1+(bestA-1)*1.001
			g := (math.Sqrt(5) - 1) / 2
			for range 200 {
				x1, x2 := hi-g*(hi-lo), lo+g*(hi-lo)
				if logDelta(rho, eps, x1) < logDelta(rho, eps, x2) {
					hi = x2
				} else {
					lo = x1
				}
			}
			want := math.Min(1, math.Exp(logDelta(rho, eps, (lo+hi)/2)))
			got := CDPDelta(rho, eps)
			if relErr(got, want) > 1e-7 {
				t.Errorf("CDPDelta(%v, %v) = %.12g, independent scan %.12g", rho, eps, got, want)
			}
		}
	}
}

// TestCDPDeltaBoundsGaussianProfile: the Gaussian mechanism with sensitivity 1 and σ is
// exactly ρ = 1/(2σ²)-zCDP, and its exact privacy profile (Balle and Wang 2018, Thm. 8)
// δ(ε) = Φ(1/(2σ) − εσ) − e^ε Φ(−1/(2σ) − εσ) must lie below the zCDP conversion, which holds
// for every ρ-zCDP mechanism; the conversion is also not loose by more than a small factor.
func TestCDPDeltaBoundsGaussianProfile(t *testing.T) {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	for _, sigma := range []float64{0.5, 1, 2, 5} {
		rho := GaussianRho(1, sigma)
		for _, eps := range []float64{0.5, 1, 2, 4} {
			exact := phi(1/(2*sigma)-eps*sigma) - math.Exp(eps)*phi(-1/(2*sigma)-eps*sigma)
			conv := CDPDelta(rho, eps)
			if exact > conv*(1+1e-9) {
				t.Errorf("σ=%v ε=%v: exact Gaussian δ %v exceeds the zCDP conversion %v", sigma, eps, exact, conv)
			}
			if exact > 1e-12 && conv > 10*exact {
				t.Errorf("σ=%v ε=%v: conversion %v is more than 10× the exact δ %v", sigma, eps, conv, exact)
			}
		}
	}
}

func TestGaussianRho(t *testing.T) {
	if got := GaussianRho(1, ZCDPSigma(1, 0.3)); relErr(got, 0.3) > 1e-15 {
		t.Errorf("GaussianRho(ZCDPSigma(0.3)) = %v", got)
	}
	if got := GaussianRho(3, 3); got != 0.5 {
		t.Errorf("GaussianRho(3, 3) = %v, want 0.5", got)
	}
}
