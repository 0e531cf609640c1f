package ledger

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Amounts are fixed-point integers so that sums are exact: 0.1 charged fifty times is exactly 5.
// Delta gets a finer unit than epsilon because deltas of 1e-10 and below are common.
const (
	epsilonScale = 12 // one epsilon unit is 1e-12
	deltaScale   = 18 // one delta unit is 1e-18
)

const (
	maxEpsilonUnits = 1_000_000 * 1_000_000_000_000 // epsilon totals are at most 1e6
	oneDeltaUnits   = 1_000_000_000_000_000_000     // delta totals stay below 1
)

// epsUnits is an epsilon in units of 1e-12; it is written to JSON as an exact decimal.
type epsUnits int64

// deltaUnits is a delta in units of 1e-18; it is written to JSON as an exact decimal.
type deltaUnits int64

// MarshalJSON writes the exact decimal.
func (u epsUnits) MarshalJSON() ([]byte, error) {
	return []byte(formatUnits(int64(u), epsilonScale)), nil
}

// MarshalJSON writes the exact decimal.
func (u deltaUnits) MarshalJSON() ([]byte, error) {
	return []byte(formatUnits(int64(u), deltaScale)), nil
}

// UnmarshalJSON reads only the canonical decimal MarshalJSON writes.
func (u *epsUnits) UnmarshalJSON(b []byte) error {
	v, err := parseUnits(string(b), epsilonScale)
	*u = epsUnits(v)
	return err
}

// UnmarshalJSON reads only the canonical decimal MarshalJSON writes.
func (u *deltaUnits) UnmarshalJSON(b []byte) error {
	v, err := parseUnits(string(b), deltaScale)
	*u = deltaUnits(v)
	return err
}

// String is the exact decimal.
func (u epsUnits) String() string { return formatUnits(int64(u), epsilonScale) }

// String is the exact decimal.
func (u deltaUnits) String() string { return formatUnits(int64(u), deltaScale) }

func (u epsUnits) float() float64   { return unitsFloat(int64(u), epsilonScale) }
func (u deltaUnits) float() float64 { return unitsFloat(int64(u), deltaScale) }

// amount is a privacy cost or budget in fixed point.
type amount struct {
	eps   epsUnits
	delta deltaUnits
}

func (a amount) add(b amount) amount { return amount{a.eps + b.eps, a.delta + b.delta} }
func (a amount) sub(b amount) amount { return amount{a.eps - b.eps, a.delta - b.delta} }

// covers reports whether a is at least b in both epsilon and delta.
func (a amount) covers(b amount) bool { return a.eps >= b.eps && a.delta >= b.delta }

func (a amount) budget() Budget { return Budget{Epsilon: a.eps.float(), Delta: a.delta.float()} }

// String is "epsilon E delta D", for messages.
func (a amount) String() string { return fmt.Sprintf("epsilon %s delta %s", a.eps, a.delta) }

// and is "epsilon E and delta D", for sentences.
func (a amount) and() string { return fmt.Sprintf("epsilon %s and delta %s", a.eps, a.delta) }

// toEps converts a user's epsilon to units. The float is read as the shortest decimal that
// rounds to it (what the user typed), so 0.1 is exactly 1e11 units; digits beyond the unit
// round up when up is set (charges) and down otherwise (budgets).
func toEps(x float64, up bool) (epsUnits, error) {
	u, err := toUnits(x, epsilonScale, up, maxEpsilonUnits)
	return epsUnits(u), err
}

func toDelta(x float64, up bool) (deltaUnits, error) {
	u, err := toUnits(x, deltaScale, up, oneDeltaUnits-1)
	return deltaUnits(u), err
}

var (
	errNotFinite = errors.New("must be a finite number")
	errNegative  = errors.New("must not be negative")
)

func toUnits(x float64, scale int, up bool, limit int64) (int64, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errNotFinite
	}
	if x < 0 {
		return 0, errNegative
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(x, 'g', -1, 64))
	if !ok {
		return 0, errNotFinite
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if up && m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() || q.Int64() > limit {
		return 0, fmt.Errorf("must be at most %s", formatUnits(limit, scale))
	}
	return q.Int64(), nil
}

// formatUnits writes u·10^-scale as the shortest exact decimal in plain notation ("0.1", "5",
// "0.00001"), never an exponent.
func formatUnits(u int64, scale int) string {
	if u < 0 { // amounts stored are never negative; this only serves messages
		return "-" + formatUnits(-u, scale)
	}
	s := strconv.FormatInt(u, 10)
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	ip, fp := s[:len(s)-scale], strings.TrimRight(s[len(s)-scale:], "0")
	if fp == "" {
		return ip
	}
	return ip + "." + fp
}

// parseUnits reads what formatUnits writes, and nothing else, so stored amounts are canonical.
func parseUnits(s string, scale int) (int64, error) {
	ip, fp, dot := strings.Cut(s, ".")
	bad := func() (int64, error) { return 0, fmt.Errorf("amount %q is not a canonical decimal", s) }
	if ip == "" || (len(ip) > 1 && ip[0] == '0') || !digits(ip) || (dot && (fp == "" || !digits(fp) || fp[len(fp)-1] == '0')) || len(fp) > scale {
		return bad()
	}
	v, err := strconv.ParseInt(ip+fp+strings.Repeat("0", scale-len(fp)), 10, 64)
	if err != nil {
		return bad()
	}
	return v, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// unitsFloat converts through the exact decimal, so 1e11 epsilon units is the float 0.1.
func unitsFloat(u int64, scale int) float64 {
	f, _ := strconv.ParseFloat(formatUnits(u, scale), 64)
	return f
}

// Charged is what the ledger records for a cost b: each amount rounded up to the ledger's
// units (epsilon 1e-12, delta 1e-18), as floats that convert back to exactly those units.
// A caller that releases with these values states exactly what it is charged. It fails for
// a negative or non-finite amount, or one whose units do not survive the round trip
// through float64 (more than 15 significant digits of units).
func Charged(b Budget) (Budget, error) {
	e, err := toEps(b.Epsilon, true)
	if err != nil {
		return Budget{}, &FieldError{"epsilon", err.Error()}
	}
	d, err := toDelta(b.Delta, true)
	if err != nil {
		return Budget{}, &FieldError{"delta", err.Error()}
	}
	out := Budget{Epsilon: e.float(), Delta: d.float()}
	if e2, _ := toEps(out.Epsilon, true); e2 != e {
		return Budget{}, &FieldError{"epsilon", "has more digits than the ledger keeps"}
	}
	if d2, _ := toDelta(out.Delta, true); d2 != d {
		return Budget{}, &FieldError{"delta", "has more digits than the ledger keeps"}
	}
	return out, nil
}
