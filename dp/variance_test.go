package dp_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/velo-fse/velo/dp"
)

// varianceGroup is one group's data as the engine bounds it: each person's values, clamped to
// [lo, hi] and centred on its middle as query's rewrite does, at most C rows kept per person.
type varianceGroup struct {
	lo, hi, scale float64 // the centred bounds handed to dp, and the scale for them
	N, S, Q       int64   // the exact bounded totals, as the engine computes them
	pop, samp     float64 // the variance of the bounded values (population, sample)
}

// boundGroup computes the exact totals the engine's per_group step computes (query/aggregates.go,
// scaledTotals: each person's mean times the rows kept, rounded half away from zero and
// clamped) and, independently, the statistic the interval must cover: the variance of the
// clamped values with each person's c values weighted k/c, k = min(c, C).
func boundGroup(persons [][]float64, lo, hi float64, C int64) varianceGroup {
	mid := lo + (hi-lo)/2
	g := varianceGroup{lo: lo - mid, hi: hi - mid}
	g.scale = dp.SumScale(g.lo, g.hi)
	a, b := math.Floor(g.lo*g.scale), math.Ceil(g.hi*g.scale)
	m := math.Max(math.Abs(a), math.Abs(b))
	var w, ws, wq float64
	for _, vals := range persons {
		c := int64(len(vals))
		if c == 0 {
			continue
		}
		k := min(c, C)
		var s, q float64
		for _, v := range vals {
			x := math.Min(math.Max(v, lo), hi) - mid
			s, q = s+x, q+x*x
		}
		fk, fc := float64(k), float64(c)
		g.N += k
		g.S += min(max(int64(math.Round(s/fc*fk*g.scale)), k*int64(a)), k*int64(b))
		g.Q += min(max(int64(math.Round(q/fc*fk*g.scale*g.scale)), 0), k*int64(m*m))
		w, ws, wq = w+fk, ws+s/fc*fk, wq+q/fc*fk
	}
	g.pop = wq/w - (ws/w)*(ws/w)
	g.samp = g.pop * w / (w - 1)
	return g
}

// skewedGroup is persons people with 1 to 3 values each (so C = 2 cuts some), skewed towards
// lo as waits are, a few beyond hi (clamped).
func skewedGroup(persons int, lo, hi float64) [][]float64 {
	out := make([][]float64, persons)
	for i := range out {
		for j := range 1 + i%3 {
			u := (float64(i) + 0.5 + 0.37*float64(j)) / float64(persons)
			u -= math.Floor(u)
			out[i] = append(out[i], lo+(hi-lo)*1.1*u*u)
		}
	}
	return out
}

// (h) Coverage of the variance's and standard deviation's 95% intervals for the variance
// (standard deviation) of the bounded values, from a group of 3 persons, where the noise
// swamps everything and the interval must be the whole range, to 20 000, at three ranges
// (one far from zero, which the engine centres), four epsilons, both mechanisms, population
// and sample variance and the sample standard deviation. The intervals are conservative, so only a lower bound is tested. Tolerance: with
// k intervals covering out of n, P(k/n ≤ x) ≤ exp(−n·KL(x ‖ p)) ≤ exp(−n·KL(x ‖ 0.95)) for
// any coverage p ≥ 0.95 ≥ x (Chernoff–Hoeffding, relative-entropy form). x is set so that
// this is 10⁻⁶/checks: all the checks together fail falsely with probability < 10⁻⁶. Every
// interval must also hold its released value and lie in the aggregate's range (no
// tolerance).
func TestVarianceIntervalCoverage(t *testing.T) {
	skipLong(t)
	const n = 10_000
	const conf = 0.95
	type setting struct {
		persons int
		lo, hi  float64
		eps     float64
	}
	settings := []setting{
		{3, 0, 365, 1},          // tiny: the interval is the whole range
		{100, 0, 365, 1},        // small
		{2000, 0, 365, 1},       // informative
		{1000, 1920, 2024, 0.3}, // birth years: far from zero, centred
		{20000, -5, 5, 0.1},     // large, low epsilon
		{300, 0.5, 1.5, 3},      // narrow range, high epsilon
	}
	mechs := []float64{0, 1e-6} // delta: Laplace, Gaussian
	// The standard deviation's interval is the root of the variance's, so one form of it
	// per setting checks the wiring: population and sample variance, sample deviation.
	forms := []struct{ sample, std bool }{{false, false}, {true, false}, {true, true}}
	checks := len(settings) * len(mechs) * len(forms)
	L := math.Log(float64(checks) / 1e-6)
	minCoverage := klLowerThreshold(conf, L/n)
	bd := dp.Bounding{MaxGroups: 2, MaxContributionsPerGroup: 2}
	for _, st := range settings {
		g := boundGroup(skewedGroup(st.persons, st.lo, st.hi), st.lo, st.hi, bd.MaxContributionsPerGroup)
		for _, delta := range mechs {
			part := dp.Budget{Epsilon: st.eps / 3, Delta: delta / 3}
			for _, form := range forms {
				sample, std := form.sample, form.std
				name := fmt.Sprintf("%s/n%d/eps%g/[%g,%g]/sample=%v/std=%v", dp.ChooseMechanism(part), g.N, st.eps, st.lo, st.hi, sample, std)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					f, truth := dp.Variance, g.pop
					if sample {
						truth = g.samp
					}
					rangeMax := (g.hi - g.lo) * (g.hi - g.lo) / 4
					if sample {
						rangeMax *= 2
					}
					if std {
						f, truth, rangeMax = dp.StdDev, math.Sqrt(truth), math.Sqrt(rangeMax)
					}
					covered, whole := 0, 0
					var width float64
					for range n {
						r, err := f(g.N, g.S, g.Q, g.scale, g.lo, g.hi, bd, [3]dp.Budget{part, part, part}, sample, conf)
						if err != nil {
							t.Fatal(err)
						}
						ci := r.CI
						if ci == nil || !(0 <= ci.Lower && ci.Lower <= r.Value && r.Value <= ci.Upper && ci.Upper <= rangeMax*(1+1e-12)) {
							t.Fatalf("value %v, interval %+v, range [0, %v]", r.Value, ci, rangeMax)
						}
						if ci.Lower <= truth && truth <= ci.Upper {
							covered++
						}
						if ci.Lower == 0 && ci.Upper >= rangeMax {
							whole++
						}
						width += (ci.Upper - ci.Lower) / n
					}
					got := float64(covered) / n
					if got < minCoverage {
						t.Errorf("coverage %.4f < %.4f (truth %v)", got, minCoverage, truth)
					}
					t.Logf("%s: truth %.4g: coverage %.4f (bound %.4f), mean width %.3g of %.3g, whole range %.1f%%", name, truth, got, minCoverage, width, rangeMax, 100*float64(whole)/n)
				})
			}
		}
	}
}

// klLowerThreshold is the x < p with KL(x ‖ p) = l (bisection): a Binomial(n, p') proportion
// with p' ≥ p falls to x or below with probability at most e^(−n·l).
func klLowerThreshold(p, l float64) float64 {
	kl := func(x float64) float64 {
		return x*math.Log(x/p) + (1-x)*math.Log((1-x)/(1-p))
	}
	lo, hi := 0.0, p
	for range 100 {
		mid := (lo + hi) / 2
		if kl(mid) > l {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// The interval arithmetic itself, without noise: for random groups and random boxes around
// their exact totals, the interval holds the bounded variance (the event of the proof holds
// by construction, so this is no statistical test); and for random points (N, S, Q) of a
// box, it holds θ(N, S, Q) wherever θ is a variance some data could have (up to the
// Bhatia–Davis bound of the point's own mean: a θ above it is no data's), so the extremes over the box — where the
// variance is not monotone in S, nor in N — are taken properly, not at the corners.
func TestVarianceIntervalArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	for trial := range 2000 {
		lo := math.Round(rng.NormFloat64() * 100)
		hi := lo + math.Round(1+rng.ExpFloat64()*200)
		persons := make([][]float64, 1+rng.IntN(60))
		for i := range persons {
			for range 1 + rng.IntN(4) {
				persons[i] = append(persons[i], lo-10+(hi-lo+20)*rng.Float64())
			}
		}
		C := int64(1 + rng.IntN(3))
		g := boundGroup(persons, lo, hi, C)
		widen := func(x int64, w float64) dp.Interval {
			return dp.Interval{Lower: float64(x) - w*rng.Float64(), Upper: float64(x) + w*rng.Float64()}
		}
		wn := []float64{0, 1, 5, 50}[rng.IntN(4)]
		ws := []float64{0, 10, 1e3, 1e5}[rng.IntN(4)] * g.scale
		wq := []float64{0, 10, 1e3, 1e6}[rng.IntN(4)] * g.scale * g.scale
		nI, sI, qI := widen(g.N, wn), widen(g.S, ws), widen(g.Q, wq)
		for _, sample := range []bool{false, true} {
			truth := g.pop
			if sample {
				if g.N < 2 {
					continue
				}
				truth = g.samp
			}
			ci := dp.VarianceInterval(nI, sI, qI, g.scale, g.lo, g.hi, sample)
			if !(ci.Lower <= truth && truth <= ci.Upper) {
				t.Fatalf("trial %d (sample %v): N=%d S=%d Q=%d in %+v %+v %+v, scale %v, [%v, %v]: interval %+v misses %v",
					trial, sample, g.N, g.S, g.Q, nI, sI, qI, g.scale, g.lo, g.hi, ci, truth)
			}
			if wn == 0 && ws == 0 && wq == 0 {
				// A box of one point: only the rounding allowance remains.
				M := math.Max(math.Abs(g.lo), math.Abs(g.hi))
				if w, allow := ci.Upper-ci.Lower, 2*(2*M/g.scale+2/(g.scale*g.scale))*2+1e-9*M*M; w > allow {
					t.Fatalf("trial %d: a point box gives an interval %v wide, allowance %v", trial, w, allow)
				}
			}
			// Points of the box: the interval holds each one's θ, capped by what data with
			// that mean could reach.
			minN := 1.0
			if sample {
				minN = 2
			}
			n1 := math.Max(nI.Lower, minN)
			if n1 > nI.Upper {
				continue
			}
			pick := func(iv dp.Interval, special ...float64) float64 {
				if k := rng.IntN(4 + len(special)); k < len(special) && special[k] >= iv.Lower && special[k] <= iv.Upper {
					return special[k]
				} else if k == len(special) {
					return iv.Lower
				} else if k == len(special)+1 {
					return iv.Upper
				}
				return iv.Lower + (iv.Upper-iv.Lower)*rng.Float64()
			}
			for range 50 {
				S := pick(sI, 0)
				Q := pick(dp.Interval{Lower: math.Max(qI.Lower, 0), Upper: qI.Upper})
				// The stationary points in N: 2S²/Q (population), (S² ± |S|·√(S² − Q))/Q (sample).
				r := math.Abs(S) * math.Sqrt(S*S-Q)
				N := pick(dp.Interval{Lower: n1, Upper: nI.Upper}, 2*S*S/Q, (S*S-r)/Q, (S*S+r)/Q, n1+1)
				mu := S / (g.scale * N)
				k := 1.0
				if sample {
					k = N / (N - 1)
				}
				th := (Q/N - (S/N)*(S/N)) / (g.scale * g.scale) * k
				if mu < g.lo || mu > g.hi || th < 0 || th > (g.hi-mu)*(mu-g.lo)*k {
					continue // no data on [lo, hi] has these totals
				}
				tol := 1e-9 * (g.hi - g.lo) * (g.hi - g.lo)
				if !(ci.Lower <= th+tol && th-tol <= ci.Upper) {
					t.Fatalf("trial %d (sample %v): box %+v %+v %+v: the point N=%v S=%v Q=%v has θ %v outside %+v",
						trial, sample, nI, sI, qI, N, S, Q, th, ci)
				}
			}
		}
	}
}

// A count interval that allows no row (or, for the sample variance, fewer than two) gives the
// whole range; so does a box no data can produce.
func TestVarianceIntervalEmpty(t *testing.T) {
	const lo, hi, scale = -5.0, 5.0, 1e4
	s, q := dp.Interval{Lower: -10, Upper: 10}, dp.Interval{Lower: 0, Upper: 1e6}
	for _, tc := range []struct {
		n      dp.Interval
		q      dp.Interval
		sample bool
		want   float64
	}{
		{dp.Interval{Lower: -30, Upper: 0.5}, q, false, 25},
		{dp.Interval{Lower: -30, Upper: 1.5}, q, true, 50},
		{dp.Interval{Lower: 10, Upper: 20}, dp.Interval{Lower: -9, Upper: -1}, false, 25}, // Q < 0: impossible
	} {
		if got := dp.VarianceInterval(tc.n, s, tc.q, scale, lo, hi, tc.sample); got != (dp.Interval{Lower: 0, Upper: tc.want}) {
			t.Errorf("n %+v q %+v sample %v: %+v, want [0, %v]", tc.n, tc.q, tc.sample, got, tc.want)
		}
	}
}

// A large group gets a narrow interval: 20 000 values spread over [0, 365] (variance about
// 11 100 days²) at epsilon 1 over the three parts. Not statistical in effect: the width hardly
// depends on the draw (the sum of squares' Laplace scale is 5 days² on the variance, its
// interval ±21, the count's adds ±7, rounding ±3.7: about 60 days² in all, whatever the noise
// within the intervals), some 35 times below the width asserted, a fifth of the variance.
func TestVarianceIntervalNarrowForLargeGroups(t *testing.T) {
	persons := make([][]float64, 20_000)
	for i := range persons {
		persons[i] = []float64{365 * (float64(i) + 0.5) / float64(len(persons))}
	}
	g := boundGroup(persons, 0, 365, 1)
	bd := dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}
	part := dp.Budget{Epsilon: 1.0 / 3}
	r, err := dp.Variance(g.N, g.S, g.Q, g.scale, g.lo, g.hi, bd, [3]dp.Budget{part, part, part}, false, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if w := r.CI.Upper - r.CI.Lower; w > g.pop/5 {
		t.Errorf("variance %v (true %v): interval %+v is %.0f wide", r.Value, g.pop, r.CI, w)
	}
	t.Logf("variance %.1f (true %.1f): interval [%.1f, %.1f]", r.Value, g.pop, r.CI.Lower, r.CI.Upper)
}
