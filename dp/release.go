package dp

import (
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Bounding is the per-person contribution bound the query engine enforced before aggregating.
// MaxGroups bounds how many groups one person's rows reach (the L0 sensitivity);
// MaxContributionsPerGroup bounds how many rows one person has in one group (the L∞ of a
// count). Both must be at least 1. For a bounding that truncates each person to k rows in
// total, pass MaxGroups 1 and MaxContributionsPerGroup k: L1 = k and L2 = k, which is exactly
// what that truncation guarantees (see doc.go, "Row truncation").
type Bounding struct {
	MaxGroups                int64 // L0: groups a person may contribute to
	MaxContributionsPerGroup int64 // rows a person may contribute to one group
}

// Validate reports whether both bounds are at least 1; the error names the field.
func (b Bounding) Validate() error {
	if b.MaxGroups < 1 {
		return argErr("bounding.MaxGroups", "is %d, must be >= 1", b.MaxGroups)
	}
	if b.MaxContributionsPerGroup < 1 {
		return argErr("bounding.MaxContributionsPerGroup", "is %d, must be >= 1", b.MaxContributionsPerGroup)
	}
	return nil
}

// CountNorms are the L1 and L2 sensitivities of a vector of counts (a contingency table)
// under the bounding: one person changes at most MaxGroups cells, each by at most
// MaxContributionsPerGroup, so L1 ≤ G·C and L2 ≤ √G·C (both attained when the person has C
// rows in each of G cells).
func (b Bounding) CountNorms() (l1, l2 float64) {
	g, c := float64(b.MaxGroups), float64(b.MaxContributionsPerGroup)
	return g * c, math.Sqrt(g) * c
}

// Interval is a confidence interval [Lower, Upper].
type Interval struct{ Lower, Upper float64 }

// Released is one differentially private number together with the parameters that produced
// it. Value is noisy; nothing in Released is an un-noised statistic.
//
// For a single-mechanism aggregate (Count, CountPersons, Sum, quantiles) the top-level
// Mechanism, Budget, L0, LInf, Scale and Unit describe that mechanism: L0 and LInf are the
// sensitivities handed to the library, in the mechanism's input units; Scale is the noise
// scale in the same units (Laplace b = L0·LInf/ε, Gaussian σ); Unit is how many input units
// make one unit of Value (1 for counts, the integer scale for sums), so Scale/Unit is the noise
// scale in the Value's units.
//
// A composite aggregate (Mean, Variance, StdDev) lists its mechanisms in Parts; its top-level
// Budget is their sum, Mechanism is theirs (they must agree), and L0, LInf, Scale and Unit
// are zero.
type Released struct {
	Value     float64
	CI        *Interval // nil when there is no sound interval
	Mechanism Mechanism
	Budget    Budget
	L0, LInf  float64 // sensitivities used, in input units
	Scale     float64 // noise scale in input units: Laplace b or Gaussian σ
	Unit      float64 // input units per unit of Value; 0 for composites
	Parts     []Part  // the mechanisms of a composite aggregate; nil otherwise
}

// Part is one mechanism inside a composite aggregate, with the same meaning for each field as
// in Released. Of says what it noised: "count", "sum", "centred_sum", "sum_of_squares".
type Part struct {
	Of        string
	Mechanism Mechanism
	Budget    Budget
	L0, LInf  float64
	Scale     float64
	Unit      float64
}

func (r Released) part(of string) Part {
	return Part{Of: of, Mechanism: r.Mechanism, Budget: r.Budget, L0: r.L0, LInf: r.LInf, Scale: r.Scale, Unit: r.Unit}
}

func checkConfidence(c float64) error {
	if !(c > 0 && c < 1) {
		return argErr("confidence", "is %v, must be in (0, 1)", c)
	}
	return nil
}

// maxExact is 2⁵³: sensitivities are kept at or below it so they are exact in float64 and the
// library's int64 products L0·LInf cannot overflow.
const maxExact = 1 << 53

// maxTotal bounds the exact totals handed to the library's int64 noise (see noisyInt).
const maxTotal = 1 << 62

// noisyInt noises an exact int64 aggregate with the library and, when confidence > 0, attaches
// the library's interval (in input units). Arguments are already validated.
//
// exact is first clamped to ±2⁶² (1-Lipschitz, so no sensitivity grows): the library adds noise
// in int64 and would wrap around near the ends of the range, which would make the output
// depend on the data in a way the noise does not cover. No real total comes near 2⁶².
func noisyInt(exact, l0, lInf int64, b Budget, confidence float64) (noised int64, ci *noise.ConfidenceInterval, r Released, err error) {
	exact = min(max(exact, -maxTotal), maxTotal)
	m := ChooseMechanism(b)
	nz := m.noise()
	noised, err = nz.AddNoiseInt64(exact, l0, lInf, b.Epsilon, b.Delta)
	if err != nil {
		return 0, nil, Released{}, err
	}
	r = Released{
		Value:     float64(noised),
		Mechanism: m,
		Budget:    b,
		L0:        float64(l0),
		LInf:      float64(lInf),
		Scale:     m.scale(l0, float64(lInf), b),
		Unit:      1,
	}
	if confidence > 0 {
		c, err := nz.ComputeConfidenceIntervalInt64(noised, l0, lInf, b.Epsilon, b.Delta, 1-confidence)
		if err != nil {
			return 0, nil, Released{}, err
		}
		ci = &c
	}
	return noised, ci, r, nil
}

func clamp(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }

// down and up move x outward by a relative margin covering a few float64 roundings of numbers
// of magnitude mag, so an interval computed in floating point still contains the exact one.
func down(x, mag float64) float64 { return x - 8*0x1p-52*math.Abs(mag) - math.SmallestNonzeroFloat64 }
func up(x, mag float64) float64   { return x + 8*0x1p-52*math.Abs(mag) + math.SmallestNonzeroFloat64 }
