package ledger

import (
	"math"
	"testing"
)

func TestToUnits(t *testing.T) {
	tests := []struct {
		name string
		x    float64
		up   bool
		want int64
	}{
		{"tenth is exact", 0.1, false, 100_000_000_000},
		{"tenth rounding up is still exact", 0.1, true, 100_000_000_000},
		{"integer", 5, false, 5_000_000_000_000},
		{"below the unit rounds up for charges", 1e-13, true, 1},
		{"below the unit rounds down for budgets", 1e-13, false, 0},
		{"many digits round up", 0.1234567890123, true, 123_456_789_013},
		{"many digits round down", 0.1234567890123, false, 123_456_789_012},
		{"zero", 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toEps(tt.x, tt.up)
			if err != nil || int64(got) != tt.want {
				t.Errorf("toEps(%v, %v) = %d, %v; want %d", tt.x, tt.up, got, err, tt.want)
			}
		})
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), -0.5, 2e6} {
		if _, err := toEps(bad, true); err == nil {
			t.Errorf("toEps(%v) accepted", bad)
		}
	}
	if d, err := toDelta(1e-15, true); err != nil || d != 1000 {
		t.Errorf("toDelta(1e-15) = %d, %v; want 1000", d, err)
	}
	if _, err := toDelta(1, false); err == nil {
		t.Error("toDelta(1) accepted; delta must stay below 1")
	}
}

func TestUnitsDecimal(t *testing.T) {
	for _, tt := range []struct {
		u    int64
		text string
	}{{0, "0"}, {1, "0.000000000001"}, {100_000_000_000, "0.1"}, {5_000_000_000_000, "5"}, {12_345_000_000_000, "12.345"}} {
		if got := formatUnits(tt.u, epsilonScale); got != tt.text {
			t.Errorf("formatUnits(%d) = %q, want %q", tt.u, got, tt.text)
		}
		if got, err := parseUnits(tt.text, epsilonScale); err != nil || got != tt.u {
			t.Errorf("parseUnits(%q) = %d, %v; want %d", tt.text, got, err, tt.u)
		}
		if f := unitsFloat(tt.u, epsilonScale); formatUnits(int64(math.Round(f*1e12)), epsilonScale) != tt.text {
			t.Errorf("unitsFloat(%d) = %v", tt.u, f)
		}
	}
	for _, bad := range []string{"", "00", "01", "0.10", "1.", ".5", "-1", "1e5", "0.0000000000001", "1,5", "99999999999"} {
		if _, err := parseUnits(bad, epsilonScale); err == nil {
			t.Errorf("parseUnits(%q) accepted a non-canonical amount", bad)
		}
	}
}

func TestFixedPointSumIsExact(t *testing.T) {
	var sum epsUnits
	for range 50 {
		e, _ := toEps(0.1, true)
		sum += e
	}
	if sum.float() != 5 {
		t.Errorf("fifty charges of 0.1 sum to %v, want exactly 5", sum.float())
	}
}
