package synthesize

import (
	"math"
	"testing"
)

func relErrOf(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }

func TestMechanismRho(t *testing.T) {
	if got := ExponentialRho(2); got != 0.5 {
		t.Errorf("ExponentialRho(2) = %v, want 0.5", got)
	}
	if got := ExponentialRho(ExponentialEpsilon(0.07)); relErrOf(got, 0.07) > 1e-15 {
		t.Errorf("ExponentialRho(ExponentialEpsilon(0.07)) = %v", got)
	}
	b, err := NewBudget(1, 1e-6)
	if err != nil || relErrOf(b.Rho, 0.024355970359538373) > 1e-9 {
		t.Errorf("NewBudget(1, 1e-6) = %+v, %v", b, err)
	}
	for _, c := range []struct{ e, d float64 }{{0, 1e-6}, {1, 0}, {1, 1}, {math.Inf(1), 1e-6}, {math.NaN(), 1e-6}} {
		if _, err := NewBudget(c.e, c.d); err == nil {
			t.Errorf("NewBudget(%v, %v) accepted", c.e, c.d)
		}
	}
}
