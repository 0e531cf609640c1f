package dp_test

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/velo-fse/velo/dp"
)

// The library's noise cannot be seeded, so these tests are statistical. Each is sized so that
// a correct implementation fails with probability below 10⁻⁶ (a z = 5 band, two-sided 5.7·10⁻⁷,
// or an exact tail bound stated at the test). They are skipped with -short and under the race
// detector; otherwise they take a few seconds in total.
func skipLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("statistical test: skipped with -short")
	}
	if raceEnabled {
		t.Skip("statistical test: skipped under the race detector")
	}
}

// (a) Laplace: X = noisy − exact has E[X²] = 2b² and Var[X²] = E[X⁴] − (2b²)² = 24b⁴ − 4b⁴ =
// 20b⁴, so the mean of n squares lies within 5·√(20/n)·b² of 2b² except with probability
// < 10⁻⁶ (CLT; n = 200 000 gives a band of ±2.5%). b = 10 keeps the discretisation of the
// integer noise (variance 2b² + O(1/12)) far inside the band. The scale is the one Released
// reports, so this checks Released.Scale against the noise actually drawn.
func TestLaplaceCountNoiseVariance(t *testing.T) {
	skipLong(t)
	const n = 200_000
	const exact = 1000
	bd := dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}
	b := dp.Budget{Epsilon: 0.1}
	var sumSq float64
	var scale float64
	for range n {
		r, err := dp.Count(exact, bd, b, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		x := r.Value - exact
		sumSq += x * x
		scale = r.Scale
	}
	if scale != 10 {
		t.Fatalf("Scale = %v, want L0·LInf/ε = 10", scale)
	}
	want := 2 * scale * scale
	band := 5 * math.Sqrt(20.0/n) * scale * scale
	if got := sumSq / n; math.Abs(got-want) > band {
		t.Errorf("empirical E[X²] = %.2f, want 2b² = %.2f ± %.2f (z = 5)", got, want, band)
	}
}

// (b) Gaussian: E[X²] = σ², Var[X²] = 2σ⁴; n = 100 000 gives a z = 5 band of ±2.2%. With
// L0 = 4 this also checks that the library's σ follows L2 = LInf·√L0.
func TestGaussianCountNoiseVariance(t *testing.T) {
	skipLong(t)
	const n = 100_000
	bd := dp.Bounding{MaxGroups: 4, MaxContributionsPerGroup: 2}
	b := dp.Budget{Epsilon: 0.5, Delta: 1e-6}
	var sumSq, sigma float64
	for range n {
		r, err := dp.Count(0, bd, b, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		sumSq += r.Value * r.Value
		sigma = r.Scale
	}
	want := sigma * sigma
	band := 5 * math.Sqrt(2.0/n) * want
	if got := sumSq / n; math.Abs(got-want) > band {
		t.Errorf("empirical E[X²] = %.2f, want σ² = %.2f ± %.2f (z = 5)", got, want, band)
	}
}

// (c) Coverage of 95% intervals for the exact bounded aggregate. The intervals are
// conservative, so only a lower bound is tested: with n repetitions the empirical coverage of
// an interval whose true coverage is ≥ 0.95 falls below 0.95 − 5·√(0.95·0.05/n) with
// probability < 3·10⁻⁷ (one-sided z = 5). n = 20 000: the bound is 0.9423.
func TestConfidenceIntervalCoverage(t *testing.T) {
	skipLong(t)
	const n = 20_000
	const conf = 0.95
	minCoverage := conf - 5*math.Sqrt(conf*(1-conf)/n)

	const (
		exactCount = 400
		lo, hi     = 0.0, 50.0
		scale      = 1000.0
		exactSum   = 7_654_321 // scaled: Σ values = 7654.321, mean 19.1358…
	)
	bd := dp.Bounding{MaxGroups: 2, MaxContributionsPerGroup: 2}
	for _, b := range []dp.Budget{{Epsilon: 0.5}, {Epsilon: 0.5, Delta: 1e-6}} {
		mech := string(dp.ChooseMechanism(b))
		cases := []struct {
			name  string
			truth float64
			draw  func() (dp.Released, error)
		}{
			{"count", exactCount, func() (dp.Released, error) { return dp.Count(exactCount, bd, b, conf) }},
			{"sum", exactSum / scale, func() (dp.Released, error) { return dp.Sum(exactSum, scale, lo, hi, bd, b, conf) }},
			// A small group, so that the count's interval matters as much as the sum's.
			{"mean", 3_000_000.0 / scale / 150, func() (dp.Released, error) {
				return dp.Mean(3_000_000, 150, scale, lo, hi, bd, b, b, conf)
			}},
		}
		for _, tc := range cases {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				covered := 0
				for range n {
					r, err := tc.draw()
					if err != nil {
						t.Fatal(err)
					}
					if r.CI == nil {
						t.Fatal("no interval")
					}
					if r.CI.Lower <= tc.truth && tc.truth <= r.CI.Upper {
						covered++
					}
				}
				if got := float64(covered) / n; got < minCoverage {
					t.Errorf("coverage %.4f < %.4f (0.95 − 5·SE)", got, minCoverage)
				} else {
					t.Logf("coverage %.4f", got)
				}
			})
		}
	}
}

// quantileCounts builds the exact node counts of values with NodeOf, as the engine does in SQL.
func quantileCounts(values []float64, lo, hi float64, tr dp.Tree) func(int, int64) int64 {
	type key struct {
		level int
		index int64
	}
	m := make(map[key]int64)
	for _, v := range values {
		for level := 1; level <= tr.Height; level++ {
			m[key{level, dp.NodeOf(v, lo, hi, tr, level)}]++
		}
	}
	return func(level int, index int64) int64 { return m[key{level, index}] }
}

// (d) With ε = 100 the Laplace scale per node is b = H·G·C/ε = 0.04, so every noisy count the
// search reads (at most 3 ranks × 4 levels × 16 children = 192) is within ±1 of the exact one
// except with probability 192·e^(−25) < 3·10⁻⁹. Errors of ±1 on nodes holding hundreds of values
// move the search by less than one level-3 node (width 100/16³ ≈ 0.024) from the exact
// quantile, plus interpolation inside it; the stated tolerance, 0.05, is two such nodes.
func TestQuantilesKnownDistribution(t *testing.T) {
	skipLong(t)
	const N = 100_000
	const lo, hi = 0.0, 100.0
	values := make([]float64, N)
	for i := range values {
		u := (float64(i) + 0.5) / N
		values[i] = hi * math.Pow(u, 1.5) // quantile function 100·r^1.5
	}
	tr := dp.DefaultTree
	counts := quantileCounts(values, lo, hi, tr)
	ranks := []float64{0.1, 0.5, 0.9}
	bd := dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}
	const tolerance = 0.05
	for rep := range 20 {
		got, r, err := dp.Quantiles(ranks, counts, tr, lo, hi, bd, dp.Budget{Epsilon: 100})
		if err != nil {
			t.Fatal(err)
		}
		if r.Scale != 0.04 {
			t.Fatalf("Scale = %v, want 0.04", r.Scale)
		}
		for i, rank := range ranks {
			want := hi * math.Pow(rank, 1.5)
			if math.Abs(got[i]-want) > tolerance {
				t.Errorf("rep %d: quantile %.1f = %.4f, want %.4f ± %v", rep, rank, got[i], want, tolerance)
			}
		}
	}
}

// Monotone and in range whatever the noise: a post-processing guarantee, so no tolerance. With
// ε = 0.05 and 30 values the noise dominates and the raw search is far from monotone.
func TestQuantilesMonotoneAndBounded(t *testing.T) {
	const lo, hi = -10.0, 40.0
	values := make([]float64, 30)
	for i := range values {
		values[i] = lo + float64(i*i)/20
	}
	reps := 20
	if testing.Short() || raceEnabled {
		reps = 3
	}
	for _, tr := range []dp.Tree{dp.DefaultTree, {Branching: 3, Height: 5}} {
		counts := quantileCounts(values, lo, hi, tr)
		ranks := []float64{0.9, 0.1, 0.5, 0.5, 0, 1, 0.3, 0.31, 0.7, 0.05, 0.95, 0.6}
		for _, b := range []dp.Budget{{Epsilon: 0.05}, {Epsilon: 0.05, Delta: 1e-6}} {
			for range reps {
				got, _, err := dp.Quantiles(ranks, counts, tr, lo, hi, dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}, b)
				if err != nil {
					t.Fatal(err)
				}
				order := make([]int, len(ranks))
				for i := range order {
					order[i] = i
				}
				sort.SliceStable(order, func(i, j int) bool { return ranks[order[i]] < ranks[order[j]] })
				for k, i := range order {
					if got[i] < lo || got[i] > hi {
						t.Fatalf("quantile %v = %v outside [%v, %v]", ranks[i], got[i], lo, hi)
					}
					if k > 0 && got[i] < got[order[k-1]] {
						t.Fatalf("not monotone: q(%v) = %v < q(%v) = %v", ranks[i], got[i], ranks[order[k-1]], got[order[k-1]])
					}
				}
				if got[2] != got[3] {
					t.Fatalf("equal ranks gave %v and %v", got[2], got[3])
				}
			}
		}
	}
}

// (e) Partition selection at ε = 1, δ = 10⁻⁵. One person: kept with probability δ/maxGroups =
// 10⁻⁵ (maxGroups = 1, the exact rule) or at most δ/2 (maxGroups = 5, Gaussian thresholding), so
// in 2 000 trials the number kept is Poisson with mean ≤ 0.02, and ≥ 4 keeps happen with
// probability < 0.02⁴/24 < 10⁻⁸. 1 000 persons: kept with probability 1 for maxGroups = 1 (past
// the rule's hard threshold), and for maxGroups = 5 unless Gaussian noise of σ ≈ 10 falls
// below −900, which has probability far below 10⁻¹⁰⁰. Zero persons: never.
func TestKeepPartition(t *testing.T) {
	skipLong(t)
	b := dp.Budget{Epsilon: 1, Delta: 1e-5}
	for _, maxGroups := range []int64{1, 5} {
		kept := 0
		for range 2000 {
			k, err := dp.KeepPartition(1, maxGroups, b)
			if err != nil {
				t.Fatal(err)
			}
			if k {
				kept++
			}
		}
		if kept > 3 {
			t.Errorf("maxGroups %d: a 1-person group was kept %d times in 2000", maxGroups, kept)
		}
		for range 500 {
			k, err := dp.KeepPartition(1000, maxGroups, b)
			if err != nil {
				t.Fatal(err)
			}
			if !k {
				t.Fatalf("maxGroups %d: a 1000-person group was dropped", maxGroups)
			}
			if k, _ := dp.KeepPartition(0, maxGroups, b); k {
				t.Fatalf("maxGroups %d: an empty group was kept", maxGroups)
			}
		}
	}
}

// (f) The probability that partition selection keeps a group, and the group size kept with
// even odds, are what the library's own rule gives. KeepProbability's closed form (maxGroups
// ≤ 3) is checked against the recurrence that defines the rule, exactly; then for both rules
// (maxGroups ≤ 3 and Gaussian thresholding) the rate at which dp.KeepPartition — the
// library's PreAggSelectPartition — keeps groups of n50 − 1 and n50 persons is compared with
// KeepProbability: 20 000 draws give a standard error ≤ 0.0036, and a 5.5σ band fails with
// probability 3.8·10⁻⁸ per check (8 checks: < 10⁻⁶).
func TestKeepProbability(t *testing.T) {
	for _, tc := range []struct {
		b         dp.Budget
		maxGroups int64
	}{{dp.Budget{Epsilon: 1, Delta: 1e-6}, 1}, {dp.Budget{Epsilon: 0.5, Delta: 1e-5}, 2}, {dp.Budget{Epsilon: 0.1, Delta: 1e-8}, 3}} {
		eps, delta := tc.b.Epsilon/float64(tc.maxGroups), tc.b.Delta/float64(tc.maxGroups)
		p := 0.0
		for n := int64(1); p < 1 && n < 100_000; n++ {
			p = math.Min(math.Min(math.Exp(eps)*p+delta, 1-math.Exp(-eps)*(1-delta-p)), 1)
			got, err := dp.KeepProbability(n, tc.maxGroups, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-p) > 1e-9 {
				t.Fatalf("%+v maxGroups %d: KeepProbability(%d) = %v, the recurrence gives %v", tc.b, tc.maxGroups, n, got, p)
			}
		}
	}
	skipLong(t)
	const draws = 20_000
	for _, tc := range []struct {
		b         dp.Budget
		maxGroups int64
	}{
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 1}, {dp.Budget{Epsilon: 0.5, Delta: 1e-5}, 3},
		{dp.Budget{Epsilon: 1, Delta: 1e-6}, 4}, {dp.Budget{Epsilon: 0.3, Delta: 1e-6}, 10},
	} {
		n50, err := dp.PersonsToKeep(0.5, tc.maxGroups, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		n95, _ := dp.PersonsToKeep(0.95, tc.maxGroups, tc.b)
		p50, _ := dp.KeepProbability(n50, tc.maxGroups, tc.b)
		below, _ := dp.KeepProbability(n50-1, tc.maxGroups, tc.b)
		if p50 < 0.5 || below >= 0.5 || n95 < n50 {
			t.Fatalf("%+v maxGroups %d: n50 = %d keeps with %v, n50 − 1 with %v; n95 = %d", tc.b, tc.maxGroups, n50, p50, below, n95)
		}
		t.Logf("epsilon %v, delta %v, max_groups_contributed %d: even odds at %d persons (P = %.3f), 95%% at %d", tc.b.Epsilon, tc.b.Delta, tc.maxGroups, n50, p50, n95)
		for _, n := range []int64{n50 - 1, n50} {
			want, _ := dp.KeepProbability(n, tc.maxGroups, tc.b)
			kept := 0
			for range draws {
				k, err := dp.KeepPartition(n, tc.maxGroups, tc.b)
				if err != nil {
					t.Fatal(err)
				}
				if k {
					kept++
				}
			}
			got := float64(kept) / draws
			if band := 5.5*math.Sqrt(max(want*(1-want), 1e-4)/draws) + 1e-3; math.Abs(got-want) > band {
				t.Errorf("%+v maxGroups %d: %d persons kept in %.4f of %d draws, KeepProbability says %.4f (± %.4f)", tc.b, tc.maxGroups, n, got, draws, want, band)
			}
		}
	}
}

// quantileCont is DuckDB's quantile_cont of sorted values at rank q: interpolation between
// the order statistics around (n−1)·q.
func quantileCont(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// (g) Coverage of the quantiles' 95% intervals for the exact quantile_cont of the bounded
// values, for a small group (the noise dominates) and a large one, three ranks, both
// mechanisms. The intervals are conservative, so only a lower bound is tested: with n = 2 000
// repetitions the empirical coverage of an interval whose coverage is ≥ 0.95 falls below
// 0.95 − 5.5·√(0.95·0.05/n) = 0.923 with probability < 1.9·10⁻⁸ (one-sided z = 5.5); 12
// checks: < 2.3·10⁻⁷. Every interval also holds the released value and lies in [lo, hi].
func TestQuantileIntervalCoverage(t *testing.T) {
	skipLong(t)
	const n = 2000
	const conf = 0.95
	minCoverage := conf - 5.5*math.Sqrt(conf*(1-conf)/n)
	const lo, hi = 0.0, 365.0
	tr := dp.DefaultTree
	ranks := []float64{0.1, 0.5, 0.9}
	bd := dp.Bounding{MaxGroups: 2, MaxContributionsPerGroup: 1}
	for _, size := range []int{40, 3000} {
		values := make([]float64, size)
		for i := range values {
			u := (float64(i) + 0.5) / float64(size)
			values[i] = math.Round(hi * u * u) // skewed, with ties, as waits in days are
		}
		sort.Float64s(values)
		counts := quantileCounts(values, lo, hi, tr)
		for _, b := range []dp.Budget{{Epsilon: 0.5}, {Epsilon: 0.5, Delta: 1e-6}} {
			t.Run(fmt.Sprintf("%s/%d", dp.ChooseMechanism(b), size), func(t *testing.T) {
				t.Parallel()
				covered := make([]int, len(ranks))
				width := make([]float64, len(ranks))
				for range n {
					vals, cis, _, err := dp.QuantilesWithIntervals(ranks, counts, tr, lo, hi, bd, b, conf)
					if err != nil {
						t.Fatal(err)
					}
					for i, rank := range ranks {
						ci := cis[i]
						if !(lo <= ci.Lower && ci.Lower <= vals[i] && vals[i] <= ci.Upper && ci.Upper <= hi) {
							t.Fatalf("rank %v: value %v, interval %+v", rank, vals[i], ci)
						}
						if truth := quantileCont(values, rank); ci.Lower <= truth && truth <= ci.Upper {
							covered[i]++
						}
						width[i] += (ci.Upper - ci.Lower) / n
					}
				}
				for i, rank := range ranks {
					got := float64(covered[i]) / n
					if got < minCoverage {
						t.Errorf("rank %v: coverage %.4f < %.4f (0.95 − 5.5·SE)", rank, got, minCoverage)
					}
					t.Logf("rank %v: coverage %.4f, mean width %.1f of %v", rank, got, width[i], hi-lo)
				}
			})
		}
	}
}

// A large group gets a narrow interval: the noise bound is a few dozen ranks (ε = 1), so
// the median of 100 000 evenly spread values is bracketed within a few level-2 nodes
// (365/256 ≈ 1.4 days each). Not statistical in effect: the bound is sound at 97.5% per
// side, and the width asserted, 12 days, is more than six times what it implies.
func TestQuantileIntervalNarrowForLargeGroups(t *testing.T) {
	const lo, hi = 0.0, 365.0
	values := make([]float64, 100_000)
	for i := range values {
		values[i] = hi * (float64(i) + 0.5) / float64(len(values))
	}
	tr := dp.DefaultTree
	counts := quantileCounts(values, lo, hi, tr)
	b := dp.Budget{Epsilon: 1}
	bd := dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}
	rankErr, err := dp.QuantileRankError(tr, 0.5, bd, b, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if rankErr <= 0 || rankErr > 200 {
		t.Fatalf("rank error %v for b = 4", rankErr)
	}
	_, cis, _, err := dp.QuantilesWithIntervals([]float64{0.5}, counts, tr, lo, hi, bd, b, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if w := cis[0].Upper - cis[0].Lower; w > 12 {
		t.Errorf("median interval %+v is %.1f wide; the rank error is %.0f of 100 000", cis[0], w, rankErr)
	}
	t.Logf("median interval %+v, rank error %.1f", cis[0], rankErr)
}

// (g) Laplace thresholding on the released count of persons: the rate at which
// dp.ThresholdCountPersons keeps groups of n50 − 1, n50 and n95 persons is
// ThresholdKeepProbability's, and n50 and n95 are the smallest sizes reaching 1/2 and 0.95.
// 20 000 draws, a 5.5σ band (+10⁻³ for the rounding model): 3.8·10⁻⁸ per check, 9 checks.
func TestThresholdKeepProbability(t *testing.T) {
	skipLong(t)
	const draws = 20_000
	for _, tc := range []struct {
		b         dp.Budget
		maxGroups int64
	}{{dp.Budget{Epsilon: 1, Delta: 1e-6}, 1}, {dp.Budget{Epsilon: 1, Delta: 1e-6}, 4}, {dp.Budget{Epsilon: 0.3, Delta: 1e-5}, 10}} {
		n50, err := dp.ThresholdPersonsToKeep(0.5, tc.maxGroups, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		n95, _ := dp.ThresholdPersonsToKeep(0.95, tc.maxGroups, tc.b)
		for _, c := range []struct {
			n int64
			p float64
		}{{n50, 0.5}, {n95, 0.95}} {
			at, _ := dp.ThresholdKeepProbability(c.n, tc.maxGroups, tc.b)
			below, _ := dp.ThresholdKeepProbability(c.n-1, tc.maxGroups, tc.b)
			if at < c.p || below >= c.p {
				t.Fatalf("%+v maxGroups %d: %d persons kept with %v, one fewer with %v; want the smallest size reaching %v", tc.b, tc.maxGroups, c.n, at, below, c.p)
			}
		}
		t.Logf("Laplace thresholding, epsilon %v, delta %v, max_groups_contributed %d: even odds at %d persons, 95%% at %d", tc.b.Epsilon, tc.b.Delta, tc.maxGroups, n50, n95)
		for _, n := range []int64{n50 - 1, n50, n95} {
			want, _ := dp.ThresholdKeepProbability(n, tc.maxGroups, tc.b)
			kept := 0
			for range draws {
				r, k, err := dp.ThresholdCountPersons(n, tc.maxGroups, tc.b, 0.95)
				if err != nil {
					t.Fatal(err)
				}
				if r.Mechanism != dp.Laplace || r.Budget.Delta != 0 || r.L0 != float64(tc.maxGroups) || r.LInf != 1 {
					t.Fatalf("released %+v, want Laplace noise at delta 0 with L0 %d and L∞ 1", r, tc.maxGroups)
				}
				if k {
					kept++
				}
			}
			got := float64(kept) / draws
			if band := 5.5*math.Sqrt(max(want*(1-want), 1e-4)/draws) + 1e-3; math.Abs(got-want) > band {
				t.Errorf("%+v maxGroups %d: %d persons kept in %.4f of %d draws, ThresholdKeepProbability says %.4f (± %.4f)", tc.b, tc.maxGroups, n, got, draws, want, band)
			}
		}
	}
}
