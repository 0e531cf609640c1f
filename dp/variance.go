package dp

import "math"

// VarianceInterval is the confidence interval Variance releases, from intervals for its three
// exact totals: n for the count N, s for the scaled sum S (units 1/scale) and q for the scaled
// sum of squares Q (units 1/scale²), of values clamped to [lo, hi]. It reads nothing but
// those intervals and public parameters, so it is post-processing. Whenever N, S and Q lie in
// n, s and q (with N ≥ 1, or N ≥ 2 when sample is true), the result holds the variance of the
// bounded values: the variance of the group's clamped values (as DOUBLE) with each person's
// values weighted to count as the rows kept for them (a person with c values of which k ≤ C
// are kept counts each value k/c times, so with c ≤ C it is the plain variance of the clamped
// values), times N/(N−1) when sample is true. Derivation (doc.go, "Variance", and
// docs/privacy.md):
//
//  1. θ(N, S, Q) = (Q/N − S²/N²)/scale² (times N/(N−1) for the sample variance) is, for
//     N > 0 (N > 1), increasing in Q and decreasing in |S|; so over the box its maximum has
//     Q = q.Upper and S the point of s nearest 0, its minimum Q = max(q.Lower, 0) and S the
//     end of s farthest from 0. In N it is not monotone: each extreme is taken over the ends
//     of [max(n.Lower, 1 or 2), n.Upper] and the stationary points inside (closed forms).
//  2. The engine rounds each person's scaled totals to integers once per group (by at most
//     ½, and each rounded person adds at least one row to N), so μ̂ = S/(scale·N) is within
//     1/scale of the bounded mean μ and Q/(scale²·N) within 1/scale² of the bounded mean of
//     squares; θ is then within 1/scale² + (|μ̂| + |μ|)/scale ≤ 2M/scale + 2/scale² of the
//     bounded variance, M = max(|lo|, |hi|), with |μ̂| and |μ| bounded by the mean's interval
//     of step 3 (times N/(N−1) ≤ n₁/(n₁−1) for the sample variance). The interval is widened
//     by that, and by float64 rounding.
//  3. It is intersected with [0, (hi − μ)(μ − lo)] maximised over the interval for μ (the
//     quotient of s by n, widened by 1/scale, within [lo, hi]): the Bhatia–Davis bound, no
//     distribution on [lo, hi] with mean μ has a larger variance, of which Popoviciu's
//     ((hi−lo)/2)² is the worst case μ = (lo+hi)/2.
//
// When the box holds no non-empty group (n.Upper < 1, or < 2 for the sample variance) or is
// inconsistent with any data, the interval is the whole range: [0, ((hi−lo)/2)²], twice that
// for the sample variance.
func VarianceInterval(n, s, q Interval, scale, lo, hi float64, sample bool) Interval {
	half := (hi - lo) / 2
	rangeMax := half * half
	minN := 1.0
	if sample {
		rangeMax *= 2 // n/(n−1) ≤ 2
		minN = 2
	}
	whole := Interval{Lower: 0, Upper: rangeMax}
	n1, n2 := math.Max(n.Lower, minN), n.Upper
	if !(n2 >= n1) || !(q.Upper >= 0) || math.IsNaN(s.Lower+s.Upper+q.Lower) {
		return whole
	}
	factor := func(N float64) float64 { // N/(N−1) for the sample variance
		if sample {
			return N / (N - 1)
		}
		return 1
	}
	k1 := factor(n1) // the largest factor over [n1, n2]

	// 1. θ over the box, in units of 1/scale².
	sNear := 0.0 // the point of s nearest 0
	switch {
	case s.Lower > 0:
		sNear = s.Lower
	case s.Upper < 0:
		sNear = s.Upper
	}
	sFar := math.Max(math.Abs(s.Lower), math.Abs(s.Upper))
	qLo, qHi := math.Max(q.Lower, 0), q.Upper
	theta := func(N, S, Q float64) (v, mag float64) {
		a, b := Q/N, (S/N)*(S/N)
		k := factor(N)
		return (a - b) * k, (math.Abs(a) + b) * k
	}
	extreme := func(S, Q float64, better func(x, y float64) bool) (v, mag float64) {
		cands := []float64{n1, n2}
		if Q > 0 {
			if sample {
				// d/dN (QN − S²)/(N(N−1)) = 0  ⇔  Q·N² − 2S²·N + S² = 0.
				if d := S*S - Q; d >= 0 {
					r := math.Abs(S) * math.Sqrt(d)
					cands = append(cands, (S*S-r)/Q, (S*S+r)/Q)
				}
			} else {
				// d/dN (Q/N − S²/N²) = 0  ⇔  N = 2S²/Q.
				cands = append(cands, 2*S*S/Q)
			}
		}
		first := true
		for _, N := range cands {
			if !(N >= n1 && N <= n2) {
				continue
			}
			x, m := theta(N, S, Q)
			if first || better(x, v) {
				v, first = x, false
			}
			mag = math.Max(mag, m)
		}
		return v, mag
	}
	tMax, magMax := extreme(sNear, qHi, func(x, y float64) bool { return x > y })
	tMin, magMin := extreme(sFar, qLo, func(x, y float64) bool { return x < y })
	sc2 := scale * scale

	// The mean's interval: μ̂ = S/(scale·N) lies in [mu1, mu2]/scale on E, and the bounded
	// mean μ within 1/scale of it and in [lo, hi].
	mu1, mu2 := s.Lower/n2, s.Upper/n1
	if s.Lower < 0 {
		mu1 = s.Lower / n1
	}
	if s.Upper < 0 {
		mu2 = s.Upper / n2
	}
	mag := (math.Abs(mu1) + math.Abs(mu2)) / scale
	muHat := up(math.Max(math.Abs(mu1), math.Abs(mu2))/scale, mag) // bounds |μ̂|
	mu1 = clamp(down(mu1/scale, mag)-1/scale, lo, hi)
	mu2 = clamp(up(mu2/scale, mag)+1/scale, lo, hi)

	// 2. Rounding of the engine's per-person totals: |μ̂ − μ| ≤ 1/scale and the mean squares
	// within 1/scale², so |θ − V| ≤ 1/scale² + (|μ̂| + |μ|)/scale ≤ 2M/scale + 2/scale².
	M := math.Max(math.Abs(lo), math.Abs(hi))
	muAbs := math.Max(math.Abs(mu1), math.Abs(mu2))
	r := math.Min(muHat+muAbs, 2*M+1/scale)/scale + 1/sc2
	slack := up(r*k1, r*k1)
	lower := down(tMin/sc2, magMin/sc2) - slack
	upper := up(tMax/sc2, magMax/sc2) + slack

	// 3. Bhatia–Davis over the mean's interval.
	mu := clamp(lo+half, mu1, mu2)
	bd := up((hi-mu)*(mu-lo)*k1, rangeMax)
	upper = math.Min(math.Min(upper, bd), rangeMax)
	lower = math.Max(lower, 0)
	if !(lower <= upper) {
		return whole // no data gives these totals: the event failed
	}
	return Interval{Lower: lower, Upper: upper}
}
