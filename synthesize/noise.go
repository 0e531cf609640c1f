package synthesize

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// randomness is where the mechanisms draw their noise. The production source (libraryNoise)
// draws Gaussian noise from github.com/google/differential-privacy/go/v3/noise (discretised,
// crypto/rand-backed, resistant to floating-point attacks) and the exponential mechanism's
// uniforms from crypto/rand. Tests substitute a seeded source through Options.noise (an
// unexported seam: no caller outside the package can weaken the noise).
type randomness interface {
	// gaussian returns x plus Gaussian noise of standard deviation at least sigma, and the
	// standard deviation actually used.
	gaussian(x []float64, sigma float64) (noisy []float64, used float64, err error)
	// uniform is a uniform draw in [0, 1).
	uniform() float64
}

// The library calibrates σ from (L0, LInf, ε, δ) with Balle and Wang's analytic bound rather
// than taking σ. That bound depends on σ/LInf only, so σ scales linearly in LInf: with a
// fixed reference (ε, δ) and s₁ = SigmaForGaussian(1, 1, ε, δ), LInf = σ/s₁ yields σ. The
// (ε, δ) given to the library are only this calibration device; the privacy of the
// measurement is accounted for by GaussianRho on the σ the library actually uses, which
// libraryNoise computes exactly as the library does and raises until it is ≥ the σ asked for.
const (
	refEpsilon = 1.0
	refDelta   = 1e-5
)

type libraryNoise struct{}

// librarySigma finds LInf such that the library's σ for (1, LInf, refEpsilon, refDelta) is at
// least sigma, and returns both.
func librarySigma(sigma float64) (lInf, used float64, err error) {
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return 0, 0, fmt.Errorf("synthesize: noise scale must be positive and finite, got %v", sigma)
	}
	s1 := noise.SigmaForGaussian(1, 1, refEpsilon, refDelta)
	lInf = sigma / s1
	for range 64 {
		used = noise.SigmaForGaussian(1, lInf, refEpsilon, refDelta)
		if used >= sigma {
			return lInf, used, nil
		}
		lInf *= 1 + 1e-9
	}
	return 0, 0, fmt.Errorf("synthesize: cannot calibrate Gaussian noise of scale %v", sigma)
}

func (libraryNoise) gaussian(x []float64, sigma float64) ([]float64, float64, error) {
	lInf, used, err := librarySigma(sigma)
	if err != nil {
		return nil, 0, err
	}
	g := noise.Gaussian()
	out := make([]float64, len(x))
	for i, v := range x {
		out[i], err = g.AddNoiseFloat64(v, 1, lInf, refEpsilon, refDelta)
		if err != nil {
			return nil, 0, fmt.Errorf("synthesize: Gaussian noise: %w", err)
		}
	}
	return out, used, nil
}

func (libraryNoise) uniform() float64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		// crypto/rand.Read never returns an error on supported platforms (Go ≥ 1.24 crashes
		// the program instead); keep the invariant explicit.
		panic("synthesize: crypto/rand failed: " + err.Error())
	}
	return float64(binary.LittleEndian.Uint64(b[:])>>11) / (1 << 53)
}

// exponentialMechanism picks index i with probability ∝ exp(ε·q[i]/(2Δ)), which is ε-DP (and
// ε-bounded-range, hence ε²/8-zCDP) when every q[i] has sensitivity at most Δ. The weights
// are computed relative to the maximum score (the normalisation does not change the
// distribution) and the draw inverts the cumulative distribution with one uniform.
func exponentialMechanism(r randomness, q []float64, eps, sensitivity float64) int {
	mx := math.Inf(-1)
	for _, v := range q {
		mx = math.Max(mx, v)
	}
	w := make([]float64, len(q))
	total := 0.0
	for i, v := range q {
		w[i] = math.Exp(eps / (2 * sensitivity) * (v - mx))
		total += w[i]
	}
	u := r.uniform() * total
	for i, x := range w {
		u -= x
		if u < 0 {
			return i
		}
	}
	return len(q) - 1
}
