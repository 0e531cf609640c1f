package query

import (
	"fmt"
	"math"
	"testing"

	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/synthesize"
)

// The measurement step of synthesis under person_rows, checked empirically in the style of
// TestEmpiricalPrivacy (empirical_test.go, whose tolerances it reuses).
//
// D and D' are the neighbours of the assurance tests (D' adds one person with 252 bookings
// over every region and priority). The engine counts the (region, priority) marginal over
// each with the person_rows bounding, k rows per person by the keyed hash, on real Parquet
// through DuckDB: c and c'. The measurement is what every MST and AIM measurement is:
// synthesize.Gaussian, the library's discretised Gaussian at σ, accounted as
// ρ = GaussianRho(k, σ used) (L2 sensitivity k, personRowsBounding). Two checks:
//
//   - Noise scale: over n/10 releases of c, every cell's noise (y − c)/σ_used is a standard
//     normal, so S = Σ ((y − c)/σ)² over N values is χ²_N, and (Laurent and Massart 2000)
//     P(S ≤ N − 2√(N·L)) ≤ e^(−L) and P(S ≥ N + 2√(N·L) + 2L) ≤ e^(−L). A noise smaller
//     than recorded (an accounting that charges less than it spends) fails the first.
//   - Privacy: the release is reduced to the privacy-loss statistic T = ⟨y − c, v⟩/‖v‖²,
//     v = c' − c (the Neyman–Pearson test between D and D', so the tightest one-number view
//     of the release; cells equal in c and c' cancel from it and are not drawn). T is
//     N(0, s²) under D and N(1, s²) under D', s = σ/‖v‖. Its n draws per dataset fall in 10
//     buckets fixed by s before any draw, and every bucket and every upper and lower tail is
//     checked against (ε, δ) = (1, CDPDelta(ρ, 1)), the guarantee the recorded ρ converts to,
//     with checkDP's exact Chernoff bounds.
//
// False failures: 2 cases × 28 events × 4 bounds + 2 cases × 2 scale bounds = 228 bounds,
// each wrong with probability e^(−L), L = ln(4·10⁸) (empiricalL): under 10⁻⁶ in all.
//
// A negative control releases D and D' with half the noise while recording the same ρ (the
// accounting of σ with the noise of σ/2): its tail T > s is flagged with probability at least
// 1 − 10⁻⁶ at n = 20 000 (detectionPower), and the test requires that it is.
func TestPersonRowsMeasurementEmpirical(t *testing.T) {
	skipEmpirical(t)
	n := empiricalSamples(t)
	d, dPlus := neighbours(t)
	zs := []float64{-2, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5} // bucket edges, in units of s
	for _, k := range []int{1, 3} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			counts := func(dir string) []float64 {
				eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 10}, nil)
				mc := personRowsCounter(t, eng, k, false, "region", "priority")
				c, pm := countOf(t, mc, 0, 1)
				if pm.rw.Method != boundingPersonRows || pm.rw.MaxRows != k {
					t.Fatalf("bounding %s with %d rows, want person_rows with k = %d", pm.rw.Method, pm.rw.MaxRows, k)
				}
				return c
			}
			c, cPlus := counts(d), counts(dPlus)
			b := personRowsBounding(k)
			var changed []int
			var l1, norm2 float64
			for j := range c {
				if v := cPlus[j] - c[j]; v != 0 {
					changed = append(changed, j)
					l1 += math.Abs(v)
					norm2 += v * v
				}
			}
			if len(changed) == 0 || l1 > b.L1 || math.Sqrt(norm2) > b.L2+1e-12 {
				t.Fatalf("the neighbour moves %d cells by L1 %v, L2 %v; want some, within %v and %v", len(changed), l1, math.Sqrt(norm2), b.L1, b.L2)
			}
			// The measurement as the synthesizer makes it, and what it records.
			sigma := 1.5 * float64(k)
			_, used, err := synthesize.Gaussian(c, sigma)
			if err != nil {
				t.Fatal(err)
			}
			rho := dp.GaussianRho(b.L2, used)
			budget := dp.Budget{Epsilon: 1, Delta: dp.CDPDelta(rho, 1)}

			// Noise scale.
			draws := max(n/10, 100)
			var S float64
			for range draws {
				y, u, err := synthesize.Gaussian(c, sigma)
				if err != nil || u != used {
					t.Fatalf("σ used %v (%v), want %v", u, err, used)
				}
				for j := range y {
					z := (y[j] - c[j]) / used
					S += z * z
				}
			}
			N := float64(draws * len(c))
			lo, hi := N-2*math.Sqrt(N*empiricalL), N+2*math.Sqrt(N*empiricalL)+2*empiricalL
			if S < lo || S > hi {
				t.Errorf("Σ((y − c)/σ)² = %.0f over %.0f values, outside [%.0f, %.0f]: the noise's scale is not the σ = %v recorded", S, N, lo, hi, used)
			}

			// Privacy: T's buckets under D and D'.
			s := used / math.Sqrt(norm2)
			edges := make([]float64, len(zs))
			for i, z := range zs {
				edges[i] = z * s
			}
			events := tailEvents(len(edges)+1, budget)
			release := func(from []float64, sd float64) func() float64 {
				x := make([]float64, len(changed))
				for i, j := range changed {
					x[i] = from[j]
				}
				return func() float64 {
					y, _, err := synthesize.Gaussian(x, sd)
					if err != nil {
						t.Fatal(err)
					}
					var dot float64
					for i, j := range changed {
						dot += (y[i] - c[j]) * (cPlus[j] - c[j])
					}
					return dot / norm2
				}
			}
			hD, hP := tHistogram(release(c, sigma), edges, n), tHistogram(release(cPlus, sigma), edges, n)
			for _, v := range checkDP(events, hD, hP, n) {
				t.Errorf("DP violated beyond the tolerance: %s", v)
			}
			t.Logf("k = %d: %d cells changed, ‖v‖ = %.3f, σ = %.4f, ρ = %.4f, (ε, δ) = (1, %.4f); noise scale Σz² / N = %.4f; n = %d; D: %v; D': %v; %s",
				k, len(changed), math.Sqrt(norm2), used, rho, budget.Delta, S/N, n, hD, hP, observedEpsilon(events, hD, hP, n))

			if k != 1 {
				return
			}
			// Negative control: half the noise, the same record.
			broken := s / 2
			pPlus := 1 - normalCDF((s-1)/broken)
			pD := 1 - normalCDF(s/broken)
			power, lo2, bound := detectionPower(n, pPlus, pD, budget)
			if power < 1-empiricalFailure {
				t.Logf("control skipped: no power of 1 − 10⁻⁶ at n = %d (Lo = %.4f ≤ %.4f)", n, lo2, bound)
				return
			}
			hD, hP = tHistogram(release(c, sigma/2), edges, n), tHistogram(release(cPlus, sigma/2), edges, n)
			bad := checkDP(events, hD, hP, n)
			if len(bad) == 0 {
				t.Errorf("half the noise recorded as σ was not detected (power ≥ %.7f): D %v, D' %v", power, hD, hP)
			}
			t.Logf("control (σ/2 recorded as σ): power ≥ %.7f, P_D'(T > s) = %.4f, P_D(T > s) = %.4f; flagged %d events; %s", power, pPlus, pD, len(bad), observedEpsilon(events, hD, hP, n))
		})
	}
}

// tailEvents are, over outcomes 0..m−1 (ordered), every single outcome, every upper tail
// {o ≥ i} and every lower tail {o < i}: 3m − 2 events, all against b.
func tailEvents(m int, b dp.Budget) []dpEvent {
	var out []dpEvent
	for i := range m {
		out = append(out, dpEvent{name: fmt.Sprintf("T in bucket %d", i), in: func(o int) bool { return o == i }, b: b})
	}
	for i := 1; i < m; i++ {
		out = append(out,
			dpEvent{name: fmt.Sprintf("T in buckets ≥ %d", i), in: func(o int) bool { return o >= i }, b: b},
			dpEvent{name: fmt.Sprintf("T in buckets < %d", i), in: func(o int) bool { return o < i }, b: b})
	}
	return out
}

// tHistogram draws T n times and counts it in the buckets the sorted edges make.
func tHistogram(draw func() float64, edges []float64, n int) []int {
	h := make([]int, len(edges)+1)
	for range n {
		v := draw()
		o := 0
		for o < len(edges) && v > edges[o] {
			o++
		}
		h[o]++
	}
	return h
}

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
