package dp

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// KeepPartition decides whether a group whose key is not from a public domain may be released.
// persons is the number of distinct persons in the group, each of whom is in at most maxGroups
// groups. The decision is dpagg.PreAggSelectPartition's: for maxGroups ≤ 3 the optimal
// randomized rule of Desfontaines et al. (2020), which keeps a group with n persons with a
// probability rising from δ/maxGroups at n = 1 to 1 at a hard threshold; for maxGroups > 3 a
// Gaussian-noised count of persons against a threshold (δ split between noise and threshold).
// It is (ε, δ)-DP with ε, δ = b, and needs δ > 0. persons is never checked, so the error cannot
// depend on the data; persons ≤ 0 is never kept.
func KeepPartition(persons int64, maxGroups int64, b Budget) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	if b.Delta == 0 {
		return false, fmt.Errorf("dp.KeepPartition: %w", argErr("delta", "is 0, partition selection needs delta > 0"))
	}
	if maxGroups < 1 {
		return false, fmt.Errorf("dp.KeepPartition: %w", argErr("maxGroups", "is %d, must be >= 1", maxGroups))
	}
	s, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
		Epsilon:                  b.Epsilon,
		Delta:                    b.Delta,
		MaxPartitionsContributed: maxGroups,
	})
	if err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	if err := s.IncrementBy(persons); err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	keep, err := s.ShouldKeepPartition()
	if err != nil {
		return false, fmt.Errorf("dp.KeepPartition: %w", err)
	}
	return keep, nil
}

// KeepProbability is the probability that KeepPartition keeps a group of persons persons,
// each in at most maxGroups groups, with budget b: a function of its arguments only, never
// of data. For maxGroups ≤ 3 it is the closed form of dpagg's keepPartitionProbability (the
// optimal rule of Desfontaines et al. 2020, with ε and δ split over the maxGroups groups);
// for maxGroups > 3 it is the probability that the library's Gaussian count of persons
// (σ for L0 = maxGroups, L∞ = 1, ε and δ/2; rounded to an integer) reaches its threshold
// (for δ/2), ⌈1 + σ·Φ⁻¹((1 − δ/2)^(1/maxGroups))⌉.
func KeepProbability(persons, maxGroups int64, b Budget) (float64, error) {
	s, err := newSelectionRule(maxGroups, b)
	if err != nil {
		return 0, fmt.Errorf("dp.KeepProbability: %w", err)
	}
	return s.keep(persons), nil
}

// PersonsToKeep is the smallest number of persons a group needs to be kept by KeepPartition
// with probability at least p (0 < p < 1): with p = 1/2, the group size released with even
// odds. It is computed from maxGroups and b only, so it may be published with a release.
func PersonsToKeep(p float64, maxGroups int64, b Budget) (int64, error) {
	if !(p > 0 && p < 1) {
		return 0, fmt.Errorf("dp.PersonsToKeep: %w", argErr("p", "is %v, must be in (0, 1)", p))
	}
	s, err := newSelectionRule(maxGroups, b)
	if err != nil {
		return 0, fmt.Errorf("dp.PersonsToKeep: %w", err)
	}
	if s.gaussian {
		// P(n + Z ≥ T) with Z ~ N(0, σ²) rounded to an integer is P(N ≥ T − n − 1/2) ≥ p
		// exactly when n ≥ T − 1/2 − σ·Φ⁻¹(1 − p).
		return max(1, int64(math.Ceil(s.threshold-0.5-s.sigma*math.Sqrt2*math.Erfinv(1-2*p)))), nil
	}
	// The rule's probability rises with n: double, then bisect.
	hi := int64(1)
	for s.keep(hi) < p {
		if hi > 1<<61 {
			return 0, fmt.Errorf("dp.PersonsToKeep: no group size reaches probability %v", p)
		}
		hi *= 2
	}
	lo := hi / 2 // keep(lo) < p, or lo = 0
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if s.keep(mid) >= p {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// selectionRule is KeepPartition's rule for one maxGroups and budget.
type selectionRule struct {
	gaussian bool
	// The optimal rule (maxGroups ≤ 3): per-group ε and δ.
	eps, delta float64
	// Gaussian thresholding (maxGroups > 3): the noise's σ and the integer threshold.
	sigma, threshold float64
}

func newSelectionRule(maxGroups int64, b Budget) (selectionRule, error) {
	if err := b.Validate(); err != nil {
		return selectionRule{}, err
	}
	if b.Delta == 0 {
		return selectionRule{}, argErr("delta", "is 0, partition selection needs delta > 0")
	}
	if maxGroups < 1 {
		return selectionRule{}, argErr("maxGroups", "is %d, must be >= 1", maxGroups)
	}
	if maxGroups <= 3 {
		return selectionRule{eps: b.Epsilon / float64(maxGroups), delta: b.Delta / float64(maxGroups)}, nil
	}
	// As dpagg.PreAggSelectPartition: a dpagg.Count (L∞ 1) with δ/2 for the noise, and
	// ThresholdedResult(δ/2), which keeps a noisy count of at least ⌈threshold⌉.
	t, err := noise.Gaussian().Threshold(maxGroups, 1, b.Epsilon, b.Delta/2, b.Delta/2)
	if err != nil {
		return selectionRule{}, err
	}
	return selectionRule{gaussian: true, sigma: noise.SigmaForGaussian(maxGroups, 1, b.Epsilon, b.Delta/2), threshold: math.Ceil(t)}, nil
}

// keep is the probability that a group of n persons is kept.
func (s selectionRule) keep(n int64) float64 {
	if n <= 0 {
		return 0
	}
	if s.gaussian {
		return 0.5 * math.Erfc((s.threshold-float64(n)-0.5)/(s.sigma*math.Sqrt2))
	}
	// dpagg's keepPartitionProbability: the recurrence p(n) = min(e^ε·p(n−1) + δ,
	// 1 − e^(−ε)·(1 − δ − p(n−1)), 1), p(0) = 0, in closed form. The first term rules up to
	// nCr, the second after it, until 1.
	eps, delta := s.eps, s.delta
	nCr := int64(1 + math.Floor(math.Log((1+math.Exp(-eps)*(2*delta-1))/(delta*(1+math.Exp(-eps))))/eps))
	if n <= nCr {
		return math.Min(delta*sumExp(eps, 0, n), 1)
	}
	pCr := delta * sumExp(eps, 0, nCr)
	m := n - nCr
	return math.Min(1+math.Exp(-float64(m)*eps)*(pCr-1)+delta*sumExp(eps, -m, m), 1)
}

// sumExp is Σ_{k=minPower}^{minPower+count−1} e^(k·ε) for ε > 0 and count > 0 (dpagg's
// sumExpPowers), +Inf when it overflows, never NaN.
func sumExp(eps float64, minPower, count int64) float64 {
	if math.Exp(-eps) == 1 {
		return float64(count)
	}
	if math.IsInf(math.Exp(float64(minPower)*eps), 1) {
		return math.Inf(1)
	}
	if minPower >= 1 {
		return math.Exp(float64(minPower-1)*eps) * (math.Exp(float64(count)*eps) - 1) / (1 - math.Exp(-eps))
	}
	return (math.Exp(float64(count+minPower-1)*eps) - math.Exp(float64(minPower-1)*eps)) / (1 - math.Exp(-eps))
}

// ThresholdCountPersons releases a group's count of persons and decides from that same
// noisy count whether the group is released at all (Laplace thresholding, the library's
// dpagg.Count.ThresholdedResult): exact plus Laplace noise for L0 = maxGroups, L∞ = 1 at
// b.Epsilon (delta 0), kept when it reaches ⌈noise.Laplace().Threshold(maxGroups, 1,
// b.Epsilon, 0, b.Delta)⌉. A person changes at most maxGroups groups' counts, each by 1;
// where a group exists in one dataset only (its count is then at most 1 there) it is kept
// with probability at most δ_p, with 1 − (1 − δ_p)^maxGroups ≤ b.Delta over the person's
// groups; everywhere else the count is the Laplace mechanism's, ε-DP. So the release of the
// kept groups' counts is (ε, δ)-DP with ε, δ = b, the whole budget on one noisy count. The
// Released's Budget is the noise's, (b.Epsilon, 0).
func ThresholdCountPersons(exact, maxGroups int64, b Budget, confidence float64) (Released, bool, error) {
	t, err := personsThreshold(maxGroups, b)
	if err != nil {
		return Released{}, false, fmt.Errorf("dp.ThresholdCountPersons: %w", err)
	}
	r, err := CountPersons(exact, maxGroups, Budget{Epsilon: b.Epsilon}, confidence)
	if err != nil {
		return Released{}, false, fmt.Errorf("dp.ThresholdCountPersons: %w", err)
	}
	return r, r.Value >= t, nil
}

// ThresholdPersonsToKeep is the smallest number of persons a group needs to be released by
// ThresholdCountPersons with probability at least p (0 < p < 1), from maxGroups and b only.
// The library's integer Laplace noise is a Laplace sample of scale λ = maxGroups/ε rounded
// to an integer (at a granularity far below 1 for these scales), so a count of n reaches the
// threshold T with probability P(L ≥ T − n − 1/2): ½·e^(−d/λ) for d = T − n − 1/2 ≥ 0, and
// 1 − ½·e^(d/λ) below.
func ThresholdPersonsToKeep(p float64, maxGroups int64, b Budget) (int64, error) {
	if !(p > 0 && p < 1) {
		return 0, fmt.Errorf("dp.ThresholdPersonsToKeep: %w", argErr("p", "is %v, must be in (0, 1)", p))
	}
	t, err := personsThreshold(maxGroups, b)
	if err != nil {
		return 0, fmt.Errorf("dp.ThresholdPersonsToKeep: %w", err)
	}
	lambda := float64(maxGroups) / b.Epsilon
	// The largest d = T − n − 1/2 with P(L ≥ d) ≥ p.
	d := lambda * math.Log(2*(1-p))
	if p <= 0.5 {
		d = -lambda * math.Log(2*p)
	}
	return max(1, int64(math.Ceil(t-0.5-d))), nil
}

// personsThreshold is the integer threshold ThresholdCountPersons keeps a noisy count at.
func personsThreshold(maxGroups int64, b Budget) (float64, error) {
	if err := b.Validate(); err != nil {
		return 0, err
	}
	if b.Delta == 0 {
		return 0, argErr("delta", "is 0, partition selection needs delta > 0")
	}
	if maxGroups < 1 {
		return 0, argErr("maxGroups", "is %d, must be >= 1", maxGroups)
	}
	t, err := noise.Laplace().Threshold(maxGroups, 1, b.Epsilon, 0, b.Delta)
	if err != nil {
		return 0, err
	}
	return math.Ceil(t), nil
}

// ThresholdKeepProbability is the probability that ThresholdCountPersons releases a group
// of persons persons (ThresholdPersonsToKeep's P(L ≥ T − n − 1/2)), from its arguments only.
func ThresholdKeepProbability(persons, maxGroups int64, b Budget) (float64, error) {
	t, err := personsThreshold(maxGroups, b)
	if err != nil {
		return 0, fmt.Errorf("dp.ThresholdKeepProbability: %w", err)
	}
	lambda := float64(maxGroups) / b.Epsilon
	if d := t - float64(persons) - 0.5; d >= 0 {
		return 0.5 * math.Exp(-d/lambda), nil
	} else {
		return 1 - 0.5*math.Exp(d/lambda), nil
	}
}
