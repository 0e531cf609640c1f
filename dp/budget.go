package dp

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Mechanism names the noise distribution that produced a released number.
type Mechanism string

// The two mechanisms dp uses, both from github.com/google/differential-privacy/go/v3/noise
// (discretised, floating-point safe samplers; see that package).
const (
	Laplace  Mechanism = "laplace"  // pure ε-DP; scale b = L0·LInf/ε (the L1 sensitivity over ε)
	Gaussian Mechanism = "gaussian" // (ε,δ)-DP; σ calibrated to L2 = LInf·√L0 (Balle and Wang 2018)
)

// Budget is an (ε, δ) differential-privacy budget. Delta == 0 means pure ε-DP.
type Budget struct{ Epsilon, Delta float64 }

// minEpsilon is the smallest ε the library's samplers accept (noise.checks: 2⁻⁵⁰).
var minEpsilon = math.Exp2(-50)

// Validate reports whether b is usable by a mechanism: ε finite and at least 2⁻⁵⁰ (the google
// library's floor; anything smaller is no release at all), 0 ≤ δ < 1. The error names the field.
func (b Budget) Validate() error {
	if math.IsNaN(b.Epsilon) || math.IsInf(b.Epsilon, 0) || b.Epsilon < minEpsilon {
		return argErr("epsilon", "is %v, must be positive and finite (at least 2^-50)", b.Epsilon)
	}
	if math.IsNaN(b.Delta) || b.Delta < 0 || b.Delta >= 1 {
		return argErr("delta", "is %v, must be in [0, 1)", b.Delta)
	}
	return nil
}

// add is used only to report what a composite aggregate cost in total.
func (b Budget) add(o Budget) Budget {
	return Budget{Epsilon: b.Epsilon + o.Epsilon, Delta: b.Delta + o.Delta}
}

// ChooseMechanism picks the mechanism from the budget alone, never from the data: Laplace when
// δ == 0 (pure ε-DP, the only option without δ), Gaussian when δ > 0 (a declared δ is then
// spent on noise calibrated to the L2 sensitivity LInf·√L0, which beats Laplace's L1 = LInf·L0
// as soon as a person can touch several groups or tree nodes).
func ChooseMechanism(b Budget) Mechanism {
	if b.Delta == 0 {
		return Laplace
	}
	return Gaussian
}

func (m Mechanism) noise() noise.Noise {
	if m == Laplace {
		return noise.Laplace()
	}
	return noise.Gaussian()
}

// scale is the noise scale the library uses for these parameters: Laplace b = L0·LInf/ε
// (noise.laplaceLambda), Gaussian σ = noise.SigmaForGaussian(L0, LInf, ε, δ).
func (m Mechanism) scale(l0 int64, lInf float64, b Budget) float64 {
	if m == Laplace {
		return lInf * float64(l0) / b.Epsilon
	}
	return noise.SigmaForGaussian(l0, lInf, b.Epsilon, b.Delta)
}

// CountScale is the noise scale (Laplace b or Gaussian σ) a count gets under bnd at budget b,
// in counts: how the query engine compares two boundings for the same query. Every other
// aggregate's sensitivities grow with L0 and L∞ as a count's do, so the bounding with the
// smaller CountScale gives every aggregate the smaller noise.
func CountScale(bnd Bounding, b Budget) (float64, error) {
	if err := firstErr(bnd.Validate(), b.Validate(), checkSensitivity(bnd.MaxGroups, bnd.MaxContributionsPerGroup, "bounding")); err != nil {
		return 0, err
	}
	return ChooseMechanism(b).scale(bnd.MaxGroups, float64(bnd.MaxContributionsPerGroup), b), nil
}

// Split divides a query's budget equally among its mechanisms plus, when selection is true,
// one more share for partition selection (as ZetaSQL does). Both ε and δ are split, so with
// δ > 0 every mechanism receives δ/n and ChooseMechanism gives Gaussian noise. Composite
// aggregates count each of their mechanisms (AVG = 2, VAR/STDDEV = 3, quantiles = 1 however
// many ranks). Shares are rounded down so that, in exact arithmetic, n·share ≤ total: the sum
// of what is spent never exceeds what was charged. selectionShare is zero when selection is
// false; perMechanism is zero when mechanisms is 0.
func Split(total Budget, mechanisms int, selection bool) (perMechanism Budget, selectionShare Budget, err error) {
	if err := total.Validate(); err != nil {
		return Budget{}, Budget{}, fmt.Errorf("dp.Split: %w", err)
	}
	if mechanisms < 0 {
		return Budget{}, Budget{}, fmt.Errorf("dp.Split: %w", argErr("mechanisms", "is %d, must be >= 0", mechanisms))
	}
	n := mechanisms
	if selection {
		n++
	}
	if n == 0 {
		return Budget{}, Budget{}, fmt.Errorf("dp.Split: %w", argErr("mechanisms", "is 0 and no partition selection: nothing to spend the budget on"))
	}
	if selection && total.Delta == 0 {
		return Budget{}, Budget{}, fmt.Errorf("dp.Split: %w", argErr("delta", "is 0, partition selection needs delta > 0"))
	}
	share := Budget{Epsilon: splitDown(total.Epsilon, n), Delta: splitDown(total.Delta, n)}
	if share.Epsilon < minEpsilon {
		return Budget{}, Budget{}, fmt.Errorf("dp.Split: %w", argErr("epsilon", "is %v, too small to split %d ways", total.Epsilon, n))
	}
	if mechanisms > 0 {
		perMechanism = share
	}
	if selection {
		selectionShare = share
	}
	return perMechanism, selectionShare, nil
}

// splitDown returns the largest float64 s ≤ x/n with n·s ≤ x exactly (checked in big.Float,
// which multiplies a float64 by a small integer without rounding at 128 bits).
func splitDown(x float64, n int) float64 {
	s := x / float64(n)
	limit := new(big.Float).SetPrec(128).SetFloat64(x)
	for s > 0 {
		prod := new(big.Float).SetPrec(128).SetFloat64(s)
		prod.Mul(prod, new(big.Float).SetPrec(128).SetInt64(int64(n)))
		if prod.Cmp(limit) <= 0 {
			return s
		}
		s = math.Nextafter(s, 0)
	}
	return s
}

// ArgumentError is returned for an invalid argument. Param names it as the API documents it
// ("epsilon", "lo", "bounding.MaxGroups", ...), so callers can point a user at the field. dp's
// errors depend only on parameters, never on the exact aggregates it is given (an error that
// fires for one dataset and not its neighbour would itself leak).
type ArgumentError struct {
	Param  string
	Reason string
}

// Error reads "<param> <reason>", e.g. "epsilon is 0, must be positive and finite (at least 2^-50)".
func (e *ArgumentError) Error() string { return e.Param + " " + e.Reason }

// ErrInvalidArgument matches every *ArgumentError with errors.Is.
var ErrInvalidArgument = errors.New("dp: invalid argument")

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func argErr(param, format string, args ...any) error {
	return &ArgumentError{Param: param, Reason: fmt.Sprintf(format, args...)}
}
