package dp

import (
	"errors"
	"fmt"
	"math"
	"math/big"
)

// Count releases a row count. exact is the bounded count of the group: each person has at most
// bnd.MaxContributionsPerGroup rows in it and rows in at most bnd.MaxGroups groups, so adding
// or removing one person changes at most L0 = MaxGroups counts by at most LInf =
// MaxContributionsPerGroup each. CI is the library's interval at the given confidence for the
// exact bounded count. Value is not clamped at 0, so sums of released counts stay unbiased.
func Count(exact int64, bnd Bounding, b Budget, confidence float64) (Released, error) {
	if err := firstErr(b.Validate(), bnd.Validate(), checkConfidence(confidence)); err != nil {
		return Released{}, fmt.Errorf("dp.Count: %w", err)
	}
	if err := checkSensitivity(bnd.MaxGroups, bnd.MaxContributionsPerGroup, "bounding"); err != nil {
		return Released{}, fmt.Errorf("dp.Count: %w", err)
	}
	return countRelease(exact, bnd.MaxGroups, bnd.MaxContributionsPerGroup, b, confidence)
}

// CountPersons releases COUNT(DISTINCT pid): a person adds at most 1 to each of at most
// maxGroups groups, so L0 = maxGroups and LInf = 1 whatever their number of rows.
func CountPersons(exact int64, maxGroups int64, b Budget, confidence float64) (Released, error) {
	if maxGroups < 1 {
		return Released{}, fmt.Errorf("dp.CountPersons: %w", argErr("maxGroups", "is %d, must be >= 1", maxGroups))
	}
	if err := firstErr(b.Validate(), checkConfidence(confidence)); err != nil {
		return Released{}, fmt.Errorf("dp.CountPersons: %w", err)
	}
	if err := checkSensitivity(maxGroups, 1, "maxGroups"); err != nil {
		return Released{}, fmt.Errorf("dp.CountPersons: %w", err)
	}
	return countRelease(exact, maxGroups, 1, b, confidence)
}

func countRelease(exact, l0, lInf int64, b Budget, confidence float64) (Released, error) {
	_, ci, r, err := noisyInt(exact, l0, lInf, b, confidence)
	if err != nil {
		return Released{}, fmt.Errorf("dp: noise: %w", err)
	}
	r.CI = &Interval{Lower: ci.LowerBound, Upper: ci.UpperBound}
	return r, nil
}

// sumTarget is the largest scaled magnitude SumScale aims for: M·scale ≤ 10⁵.
const sumTarget = 1e5

// SumScale returns the default integer scale for values clamped to [lo, hi]: the largest power
// of ten 10^k with M·10^k ≤ 10⁵, where M = max(|lo|, |hi|). Then each scaled value has
// magnitude at most 10⁵ and resolution 10^-k ≤ M/10⁴ (rounding moves a value by at most
// 0.005% of the bound), and int64 holds a scaled sum of 9.2·10¹³ rows and a sum of squares
// (each ≤ 10¹⁰) of 9.2·10⁸ rows before overflow. The library also needs L0·LInf ≤ 2⁵³: for
// Variance's sum of squares that is MaxGroups·MaxContributionsPerGroup ≤ 9·10⁵.
// SumScale returns 1 when lo or hi is not finite; Sum then rejects the bounds.
func SumScale(lo, hi float64) float64 {
	m := math.Max(math.Abs(lo), math.Abs(hi))
	if math.IsNaN(m) || math.IsInf(m, 0) || m == 0 {
		return 1
	}
	k := int(math.Floor(math.Log10(sumTarget / m)))
	k = min(max(k, -300), 300)
	for k > -300 && m*math.Pow10(k) > sumTarget {
		k--
	}
	for k < 300 && m*math.Pow10(k+1) <= sumTarget {
		k++
	}
	return math.Pow10(k)
}

// Sum releases SUM(x) over values clamped to [lo, hi]. exactScaled is the group's bounded sum
// in units of 1/scale, an integer, so the noise is added to an integer and floating-point
// attacks on sums (Mironov 2012) do not apply. Each person's share of it is an integer of
// magnitude at most MaxContributionsPerGroup·m, m = ⌈fl(max(|lo|,|hi|)·scale)⌉ (doc.go: "Sums
// as scaled integers", which also says how the engine computes it), so in scaled units
// L0 = MaxGroups and LInf = MaxContributionsPerGroup·m. Value and CI are unscaled
// (divided by scale); L0, LInf and Scale stay in scaled units, Unit = scale.
func Sum(exactScaled int64, scale, lo, hi float64, bnd Bounding, b Budget, confidence float64) (Released, error) {
	if err := firstErr(b.Validate(), bnd.Validate(), checkBounds(lo, hi), checkScale(scale), checkConfidence(confidence)); err != nil {
		return Released{}, fmt.Errorf("dp.Sum: %w", err)
	}
	m, err := scaledBound(lo, hi, scale)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Sum: %w", err)
	}
	lInf, err := mulSens(bnd.MaxContributionsPerGroup, m, "scale")
	if err != nil {
		return Released{}, fmt.Errorf("dp.Sum: %w", err)
	}
	if err := checkSensitivity(bnd.MaxGroups, lInf, "scale"); err != nil {
		return Released{}, fmt.Errorf("dp.Sum: %w", err)
	}
	noised, ci, r, err := noisyInt(exactScaled, bnd.MaxGroups, lInf, b, confidence)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Sum: noise: %w", err)
	}
	r.Value = float64(noised) / scale
	r.Unit = scale
	lower, upper := ci.LowerBound/scale, ci.UpperBound/scale
	r.CI = &Interval{Lower: down(lower, lower), Upper: up(upper, upper)}
	return r, nil
}

// Mean releases AVG(x) over values clamped to [lo, hi] from exactScaledSum (as for Sum) and
// exactCount (as for Count), each noised with its own budget.
//
// As dpagg.BoundedMean does, the sum is centred before noise: a person's share of
// exactScaledSum lies in [k·a, k·b] for the k rows they add to exactCount, with
// a = ⌊fl(lo·scale)⌋ and b = ⌈fl(hi·scale)⌉, so their share of T = 2·exactScaledSum −
// (a+b)·exactCount lies in [−k·(b−a), k·(b−a)], and T has LInf =
// MaxContributionsPerGroup·(b−a) in units of 1/(2·scale) — about half of Sum's when lo ≥ 0,
// never more. Value = ((a+b) + T̃/max(Ñ, 1)) / (2·scale), clamped to [lo, hi].
//
// CI (sound, conservative): intervals for T and for the count at level (1+confidence)/2 each,
// so both hold with probability ≥ confidence (union bound); on that event the mean of the
// scaled values lies in the quotient of the two intervals (count interval floored at 1, since
// a group with a mean has at least one row); the result is widened by float64 rounding and
// by 1/scale (so it covers the mean of the clamped values too) and clamped to [lo, hi]; an
// interval that misses [lo, hi] altogether (a failure to cover) becomes [lo, hi].
// See doc.go.
func Mean(exactScaledSum, exactCount int64, scale, lo, hi float64, bnd Bounding, sumBudget, countBudget Budget, confidence float64) (Released, error) {
	if err := firstErr(prefixed("sumBudget", sumBudget.Validate()), prefixed("countBudget", countBudget.Validate()),
		bnd.Validate(), checkBounds(lo, hi), checkScale(scale), checkConfidence(confidence)); err != nil {
		return Released{}, fmt.Errorf("dp.Mean: %w", err)
	}
	if ChooseMechanism(sumBudget) != ChooseMechanism(countBudget) {
		return Released{}, fmt.Errorf("dp.Mean: %w", argErr("countBudget.delta", "must be 0 exactly when sumBudget.delta is 0 (both parts use one mechanism)"))
	}
	a, b, err := scaledRange(lo, hi, scale)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Mean: %w", err)
	}
	width := max(b-a, 1)
	lInf, err := mulSens(bnd.MaxContributionsPerGroup, width, "scale")
	if err != nil {
		return Released{}, fmt.Errorf("dp.Mean: %w", err)
	}
	if err := firstErr(checkSensitivity(bnd.MaxGroups, lInf, "scale"), checkSensitivity(bnd.MaxGroups, bnd.MaxContributionsPerGroup, "bounding")); err != nil {
		return Released{}, fmt.Errorf("dp.Mean: %w", err)
	}
	c := a + b // |a|, |b| ≤ 2⁵³, so c is exact in int64 and float64 up to a factor 2
	centred := saturate(new(big.Int).Sub(
		new(big.Int).Mul(big.NewInt(2), big.NewInt(exactScaledSum)),
		new(big.Int).Mul(big.NewInt(c), big.NewInt(exactCount))))

	half := 1 - (1-confidence)/2
	tNoised, tCI, sumR, err := noisyInt(centred, bnd.MaxGroups, lInf, sumBudget, half)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Mean: noise: %w", err)
	}
	nNoised, nCI, countR, err := noisyInt(exactCount, bnd.MaxGroups, bnd.MaxContributionsPerGroup, countBudget, half)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Mean: noise: %w", err)
	}
	sumR.Unit = 2 * scale

	fc := float64(c)
	n := math.Max(float64(nNoised), 1)
	value := clamp((fc+float64(tNoised)/n)/(2*scale), lo, hi)

	ci := Interval{Lower: lo, Upper: hi}
	if nCI.UpperBound >= 1 {
		n1, n2 := math.Max(nCI.LowerBound, 1), nCI.UpperBound
		t1, t2 := tCI.LowerBound, tCI.UpperBound
		q1, q2 := t1/n2, t2/n1
		if t1 < 0 {
			q1 = t1 / n1
		}
		if t2 < 0 {
			q2 = t2 / n2
		}
		// Widen by float64 rounding and by 1/scale, more than rounding each person's scaled
		// total to an integer moves the mean, so the interval covers the mean of the clamped
		// values, which lies in [lo, hi].
		mag := math.Abs(fc) + math.Abs(q1) + math.Abs(q2)
		lower := down((fc+q1)/(2*scale), mag/(2*scale)) - 1/scale
		upper := up((fc+q2)/(2*scale), mag/(2*scale)) + 1/scale
		ci = Interval{Lower: clamp(lower, lo, hi), Upper: clamp(upper, lo, hi)}
		if upper < lo || lower > hi {
			// The interval missed [lo, hi], where the mean lies: it failed to cover (the
			// event its confidence allows for). Clamped, it would be a point claiming
			// certainty; the whole range covers, and says the value tells nothing.
			ci = Interval{Lower: lo, Upper: hi}
		}
	}
	return Released{
		Value:     value,
		CI:        &ci,
		Mechanism: sumR.Mechanism,
		Budget:    sumBudget.add(countBudget),
		Parts:     []Part{sumR.part("centred_sum"), countR.part("count")},
	}, nil
}

// Variance releases VAR_POP(x) (VAR_SAMP when sample is true) over values clamped to [lo, hi]
// from three noisy totals, with budgets[0] for exactCount (as for Count), budgets[1] for
// exactScaledSum (as for Sum) and budgets[2] for exactScaledSumSq, the sum of squares in
// units of 1/scale², to which a person adding k rows to exactCount adds an integer in
// [0, k·m²] with m as in Sum (doc.go), so the sum of squares has LInf =
// MaxContributionsPerGroup·m².
// With Ñ = max(noisy count, 1), mean = S̃/(scale·Ñ) clamped to [lo, hi] and mean of squares =
// Q̃/(scale²·Ñ) clamped to the range of x², the population variance is their difference
// clamped to [0, ((hi−lo)/2)²] (Popoviciu's bound). The sample variance multiplies it by
// n/(n−1) with n = max(noisy count, 2).
//
// CI (sound, conservative; post-processing of the three noisy totals, no extra budget): the
// library's interval for each total at level 1 − (1−confidence)/3, so all three hold with
// probability ≥ confidence (union bound), propagated through the variance formula by
// VarianceInterval. It covers the variance of the bounded values (see VarianceInterval), and
// is widened to hold the released value.
func Variance(exactCount, exactScaledSum, exactScaledSumSq int64, scale, lo, hi float64, bnd Bounding, budgets [3]Budget, sample bool, confidence float64) (Released, error) {
	if err := firstErr(prefixed("budgets[0]", budgets[0].Validate()), prefixed("budgets[1]", budgets[1].Validate()),
		prefixed("budgets[2]", budgets[2].Validate()), bnd.Validate(), checkBounds(lo, hi), checkScale(scale), checkConfidence(confidence)); err != nil {
		return Released{}, fmt.Errorf("dp.Variance: %w", err)
	}
	mech := ChooseMechanism(budgets[0])
	if ChooseMechanism(budgets[1]) != mech || ChooseMechanism(budgets[2]) != mech {
		return Released{}, fmt.Errorf("dp.Variance: %w", argErr("budgets", "must all have delta == 0 or all delta > 0 (the parts use one mechanism)"))
	}
	m, err := scaledBound(lo, hi, scale)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: %w", err)
	}
	lInfSum, err := mulSens(bnd.MaxContributionsPerGroup, m, "scale")
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: %w", err)
	}
	lInfSq, err := mulSens(lInfSum, m, "scale")
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: %w", err)
	}
	if err := firstErr(checkSensitivity(bnd.MaxGroups, bnd.MaxContributionsPerGroup, "bounding"),
		checkSensitivity(bnd.MaxGroups, lInfSq, "scale")); err != nil {
		return Released{}, fmt.Errorf("dp.Variance: %w", err)
	}
	third := 1 - (1-confidence)/3
	nNoised, nCI, countR, err := noisyInt(exactCount, bnd.MaxGroups, bnd.MaxContributionsPerGroup, budgets[0], third)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: noise: %w", err)
	}
	sNoised, sCI, sumR, err := noisyInt(exactScaledSum, bnd.MaxGroups, lInfSum, budgets[1], third)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: noise: %w", err)
	}
	qNoised, qCI, sqR, err := noisyInt(exactScaledSumSq, bnd.MaxGroups, lInfSq, budgets[2], third)
	if err != nil {
		return Released{}, fmt.Errorf("dp.Variance: noise: %w", err)
	}
	sumR.Unit, sqR.Unit = scale, scale*scale

	n := math.Max(float64(nNoised), 1)
	mean := clamp(float64(sNoised)/scale/n, lo, hi)
	minSq, maxSq := 0.0, math.Max(lo*lo, hi*hi)
	if lo > 0 || hi < 0 {
		minSq = math.Min(lo*lo, hi*hi)
	}
	meanSq := clamp(float64(qNoised)/scale/scale/n, minSq, maxSq)
	half := (hi - lo) / 2
	v := clamp(meanSq-mean*mean, 0, half*half)
	if sample {
		ns := math.Max(float64(nNoised), 2)
		v *= ns / (ns - 1)
	}
	ci := VarianceInterval(
		Interval{Lower: nCI.LowerBound, Upper: nCI.UpperBound},
		Interval{Lower: sCI.LowerBound, Upper: sCI.UpperBound},
		Interval{Lower: qCI.LowerBound, Upper: qCI.UpperBound},
		scale, lo, hi, sample)
	ci.Lower, ci.Upper = math.Min(ci.Lower, v), math.Max(ci.Upper, v)
	return Released{
		Value:     v,
		CI:        &ci,
		Mechanism: mech,
		Budget:    budgets[0].add(budgets[1]).add(budgets[2]),
		Parts:     []Part{countR.part("count"), sumR.part("sum"), sqR.part("sum_of_squares")},
	}, nil
}

// StdDev releases STDDEV_POP(x) (STDDEV_SAMP when sample is true): the square root of
// Variance's value, with the same arguments, parts and cost (post-processing is free). CI is
// the square root of Variance's interval (the root is increasing), so it covers the standard
// deviation of the bounded values whenever Variance's covers their variance.
func StdDev(exactCount, exactScaledSum, exactScaledSumSq int64, scale, lo, hi float64, bnd Bounding, budgets [3]Budget, sample bool, confidence float64) (Released, error) {
	r, err := Variance(exactCount, exactScaledSum, exactScaledSumSq, scale, lo, hi, bnd, budgets, sample, confidence)
	if err != nil {
		return Released{}, fmt.Errorf("dp.StdDev: %w", errors.Unwrap(err))
	}
	// The root is correctly rounded: one step outward covers the exact roots, within the
	// root of the range's end.
	half := (hi - lo) / 2
	top := half * half
	if sample {
		top *= 2
	}
	r.Value = math.Sqrt(r.Value)
	r.CI = &Interval{
		Lower: math.Min(math.Nextafter(math.Sqrt(r.CI.Lower), 0), r.Value),
		Upper: math.Max(math.Min(math.Nextafter(math.Sqrt(r.CI.Upper), math.Inf(1)), math.Sqrt(top)), r.Value),
	}
	return r, nil
}

func checkBounds(lo, hi float64) error {
	if math.IsNaN(lo) || math.IsInf(lo, 0) {
		return argErr("lo", "is %v, must be finite", lo)
	}
	if math.IsNaN(hi) || math.IsInf(hi, 0) {
		return argErr("hi", "is %v, must be finite", hi)
	}
	if !(lo < hi) {
		return argErr("lo", "is %v, must be less than hi (%v)", lo, hi)
	}
	if math.IsInf(hi-lo, 0) {
		return argErr("hi", "minus lo overflows float64")
	}
	return nil
}

func checkScale(scale float64) error {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return argErr("scale", "is %v, must be positive and finite", scale)
	}
	return nil
}

// scaledBound returns m = ⌈fl(max(|lo|,|hi|)·scale)⌉ (at least 1): for x in [lo, hi],
// |fl(x·scale)| ≤ fl(M·scale) because rounding is monotone, so any integer rounding of it has
// magnitude at most m.
func scaledBound(lo, hi, scale float64) (int64, error) {
	m := math.Ceil(math.Max(math.Abs(lo), math.Abs(hi)) * scale)
	if !(m <= maxExact) {
		return 0, argErr("scale", "is %v, max(|lo|,|hi|)*scale = %v exceeds 2^53 (see SumScale)", scale, m)
	}
	return max(int64(m), 1), nil
}

// scaledRange returns [a, b] = [⌊fl(lo·scale)⌋, ⌈fl(hi·scale)⌉]: a person who adds k rows to
// a group's count adds an integer in [k·a, k·b] to its scaled sum.
func scaledRange(lo, hi, scale float64) (int64, int64, error) {
	if _, err := scaledBound(lo, hi, scale); err != nil {
		return 0, 0, err
	}
	return int64(math.Floor(lo * scale)), int64(math.Ceil(hi * scale)), nil
}

// mulSens returns x·y or an error naming param when it exceeds 2⁵³.
func mulSens(x, y int64, param string) (int64, error) {
	if y > maxExact/x {
		return 0, argErr(param, "gives a sensitivity %d*%d above 2^53; use a smaller scale (see SumScale), tighter bounds or fewer contributions", x, y)
	}
	return x * y, nil
}

// checkSensitivity keeps L0·LInf ≤ 2⁵³ so the library's int64 L1 cannot overflow.
func checkSensitivity(l0, lInf int64, param string) error {
	_, err := mulSens(l0, lInf, param)
	return err
}

// saturate converts to int64, clamping out-of-range values. Clamping is 1-Lipschitz, so it
// never raises a sensitivity, and it keeps dp from failing on the data.
func saturate(x *big.Int) int64 {
	if x.IsInt64() {
		return x.Int64()
	}
	if x.Sign() < 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// prefixed renames an ArgumentError's parameter to the argument it came from ("sumBudget.epsilon").
func prefixed(prefix string, err error) error {
	var ae *ArgumentError
	if errors.As(err, &ae) {
		return &ArgumentError{Param: prefix + "." + ae.Param, Reason: ae.Reason}
	}
	return err
}
