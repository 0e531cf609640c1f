package dp_test

import (
	"math"
	"testing"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/velo-fse/velo/dp"
)

// libraryScale recovers the noise scale the library uses for (l0, lInf, b) from its own
// confidence interval around 0 rather than from our formula: for Laplace the interval at α is
// ±λ·ln(1/α); for Gaussian it is ±σ·√2·erfcinv(α).
func libraryScale(t *testing.T, l0 int64, lInf float64, b dp.Budget) float64 {
	t.Helper()
	const alpha = 0.05
	nz := noise.Laplace()
	if b.Delta > 0 {
		nz = noise.Gaussian()
	}
	ci, err := nz.ComputeConfidenceIntervalFloat64(0, l0, lInf, b.Epsilon, b.Delta, alpha)
	if err != nil {
		t.Fatalf("library interval: %v", err)
	}
	if b.Delta > 0 {
		return ci.UpperBound / (math.Sqrt2 * math.Erfcinv(alpha))
	}
	return ci.UpperBound / math.Log(1/alpha)
}

// checkPart compares a mechanism's bookkeeping with the formulas of doc.go and with the scale
// the library itself uses for those sensitivities.
func checkPart(t *testing.T, name string, got dp.Part, b dp.Budget, l0, lInf, unit float64) {
	t.Helper()
	want := dp.Part{Of: got.Of, Mechanism: dp.ChooseMechanism(b), Budget: b, L0: l0, LInf: lInf, Unit: unit, Scale: got.Scale}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: parameters (-want +got):\n%s", name, diff)
	}
	lib := libraryScale(t, int64(l0), lInf, b)
	if math.Abs(got.Scale-lib) > 1e-9*lib {
		t.Errorf("%s: Scale = %v, the library's noise has scale %v", name, got.Scale, lib)
	}
	if b.Delta == 0 {
		if wantB := l0 * lInf / b.Epsilon; math.Abs(got.Scale-wantB) > 1e-12*wantB {
			t.Errorf("%s: Laplace Scale = %v, want L0*LInf/eps = %v", name, got.Scale, wantB)
		}
	} else if sigma := noise.SigmaForGaussian(int64(l0), lInf, b.Epsilon, b.Delta); got.Scale != sigma {
		t.Errorf("%s: Gaussian Scale = %v, want SigmaForGaussian = %v", name, got.Scale, sigma)
	}
}

func single(r dp.Released) dp.Part {
	return dp.Part{Mechanism: r.Mechanism, Budget: r.Budget, L0: r.L0, LInf: r.LInf, Scale: r.Scale, Unit: r.Unit}
}

func TestSensitivityBookkeeping(t *testing.T) {
	const (
		G     = 2
		C     = 3
		lo    = -5.0
		hi    = 20.0
		scale = 1000.0 // SumScale(-5, 20): 20·10³ ≤ 10⁵ < 20·10⁴
	)
	bd := dp.Bounding{MaxGroups: G, MaxContributionsPerGroup: C}
	if got := dp.SumScale(lo, hi); got != scale {
		t.Fatalf("SumScale(%v, %v) = %v, want %v", lo, hi, got, scale)
	}
	const m = 20 * scale                // ⌈max(|lo|,|hi|)·scale⌉
	const a, b = lo * scale, hi * scale // the scaled range, already integers
	for _, bud := range []dp.Budget{{Epsilon: 0.7}, {Epsilon: 0.7, Delta: 1e-7}} {
		name := string(dp.ChooseMechanism(bud))
		t.Run(name, func(t *testing.T) {
			r, err := dp.Count(100, bd, bud, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			checkPart(t, "Count", single(r), bud, G, C, 1)

			r, err = dp.CountPersons(100, G, bud, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			checkPart(t, "CountPersons", single(r), bud, G, 1, 1)

			r, err = dp.Sum(12345, scale, lo, hi, bd, bud, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			checkPart(t, "Sum", single(r), bud, G, C*m, scale)

			half := dp.Budget{Epsilon: bud.Epsilon / 2, Delta: bud.Delta / 2}
			r, err = dp.Mean(12345, 100, scale, lo, hi, bd, half, half, 0.95)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Parts) != 2 {
				t.Fatalf("Mean has %d parts, want 2", len(r.Parts))
			}
			checkPart(t, "Mean centred sum", r.Parts[0], half, G, C*(b-a), 2*scale)
			checkPart(t, "Mean count", r.Parts[1], half, G, C, 1)
			checkComposite(t, "Mean", r, []string{"centred_sum", "count"}, half, 2)

			third := dp.Budget{Epsilon: bud.Epsilon / 3, Delta: bud.Delta / 3}
			for _, f := range []func(int64, int64, int64, float64, float64, float64, dp.Bounding, [3]dp.Budget, bool, float64) (dp.Released, error){dp.Variance, dp.StdDev} {
				r, err = f(100, 12345, 1234567, scale, lo, hi, bd, [3]dp.Budget{third, third, third}, true, 0.95)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Parts) != 3 {
					t.Fatalf("Variance has %d parts, want 3", len(r.Parts))
				}
				checkPart(t, "Variance count", r.Parts[0], third, G, C, 1)
				checkPart(t, "Variance sum", r.Parts[1], third, G, C*m, scale)
				checkPart(t, "Variance sum of squares", r.Parts[2], third, G, C*m*m, scale*scale)
				checkComposite(t, "Variance", r, []string{"count", "sum", "sum_of_squares"}, third, 3)
			}

			tree := dp.DefaultTree
			_, r, err = dp.Quantiles([]float64{0.5}, zeroCounts, tree, lo, hi, bd, bud)
			if err != nil {
				t.Fatal(err)
			}
			checkPart(t, "Quantiles", single(r), bud, float64(tree.Height)*G, C, 1)
			if r.CI != nil {
				t.Errorf("Quantiles CI = %v, want nil", r.CI)
			}
		})
	}
}

func checkComposite(t *testing.T, name string, r dp.Released, of []string, share dp.Budget, n int) {
	t.Helper()
	var gotOf []string
	for _, p := range r.Parts {
		gotOf = append(gotOf, p.Of)
	}
	if diff := cmp.Diff(of, gotOf); diff != "" {
		t.Errorf("%s parts (-want +got):\n%s", name, diff)
	}
	want := dp.Budget{Epsilon: float64(n) * share.Epsilon, Delta: float64(n) * share.Delta}
	if diff := cmp.Diff(want, r.Budget, cmpopts.EquateApprox(1e-12, 0)); diff != "" {
		t.Errorf("%s total budget (-want +got):\n%s", name, diff)
	}
	if r.L0 != 0 || r.LInf != 0 || r.Scale != 0 || r.Unit != 0 {
		t.Errorf("%s: composite top-level L0/LInf/Scale/Unit = %v/%v/%v/%v, want zeros", name, r.L0, r.LInf, r.Scale, r.Unit)
	}
	if r.Mechanism != dp.ChooseMechanism(share) {
		t.Errorf("%s: Mechanism = %q, want %q", name, r.Mechanism, dp.ChooseMechanism(share))
	}
}

// Centring never costs sensitivity: for lo ≥ 0 the mean's sum has half of Sum's, for a
// symmetric range the same.
func TestMeanCentringHalvesSensitivity(t *testing.T) {
	bd := dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}
	for _, tc := range []struct {
		lo, hi, scale float64
		ratio         float64 // Mean's noise scale in value units over Sum's
	}{
		{0, 100, 1000, 0.5},
		{-100, 100, 1000, 1},
		{1900, 2025, 10, 125.0 / 2 / 2025},
	} {
		s, err := dp.Sum(0, tc.scale, tc.lo, tc.hi, bd, lap, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		m, err := dp.Mean(0, 1, tc.scale, tc.lo, tc.hi, bd, lap, lap, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		got := (m.Parts[0].Scale / m.Parts[0].Unit) / (s.Scale / s.Unit)
		if math.Abs(got-tc.ratio) > 1e-9 {
			t.Errorf("[%v, %v]: mean/sum noise ratio = %v, want %v", tc.lo, tc.hi, got, tc.ratio)
		}
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		total         dp.Budget
		n             int
		selection     bool
		per, selShare dp.Budget
	}{
		{"laplace three", dp.Budget{Epsilon: 0.9}, 3, false, dp.Budget{Epsilon: 0.3}, dp.Budget{}},
		{"gaussian with selection", dp.Budget{Epsilon: 1, Delta: 1e-5}, 1, true, dp.Budget{Epsilon: 0.5, Delta: 5e-6}, dp.Budget{Epsilon: 0.5, Delta: 5e-6}},
		{"selection only", dp.Budget{Epsilon: 1, Delta: 1e-5}, 0, true, dp.Budget{}, dp.Budget{Epsilon: 1, Delta: 1e-5}},
		{"avg plus var", dp.Budget{Epsilon: 1, Delta: 1e-6}, 5, false, dp.Budget{Epsilon: 0.2, Delta: 2e-7}, dp.Budget{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per, sel, err := dp.Split(tc.total, tc.n, tc.selection)
			if err != nil {
				t.Fatal(err)
			}
			opt := cmpopts.EquateApprox(1e-15, 0)
			if diff := cmp.Diff(tc.per, per, opt); diff != "" {
				t.Errorf("per mechanism (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.selShare, sel, opt); diff != "" {
				t.Errorf("selection share (-want +got):\n%s", diff)
			}
			// Never more than the total, even after float64 rounding of each share.
			n := float64(tc.n)
			if tc.selection {
				n++
			}
			share := per
			if tc.n == 0 {
				share = sel
			}
			if share.Epsilon*n > tc.total.Epsilon || share.Delta*n > tc.total.Delta {
				t.Errorf("%v × %v exceeds %v", n, share, tc.total)
			}
		})
	}
	// Shares are rounded down: 0.3/3 in float64 is 0.09999999999999999, never above 0.1·3.
	for n := 1; n <= 1000; n++ {
		total := dp.Budget{Epsilon: 0.3, Delta: 1e-5}
		per, _, err := dp.Split(total, n, false)
		if err != nil {
			t.Fatal(err)
		}
		if per.Epsilon*float64(n) > total.Epsilon || per.Delta*float64(n) > total.Delta {
			t.Fatalf("n=%d: %v × n exceeds %v", n, per, total)
		}
	}
}

func TestChooseMechanism(t *testing.T) {
	if got := dp.ChooseMechanism(dp.Budget{Epsilon: 1}); got != dp.Laplace {
		t.Errorf("delta 0: got %q, want laplace", got)
	}
	if got := dp.ChooseMechanism(dp.Budget{Epsilon: 1, Delta: 1e-9}); got != dp.Gaussian {
		t.Errorf("delta > 0: got %q, want gaussian", got)
	}
}

func TestSumScale(t *testing.T) {
	for _, tc := range []struct{ lo, hi, want float64 }{
		{0, 1, 1e5},
		{0, 100, 1000},
		{-5, 20, 1000},
		{0, 365, 100},
		{1900, 2025, 10},
		{0, 1e5, 1},
		{0, 1e9, 1e-4},
		{-0.001, 0.001, 1e8},
		{0, 99999, 1},
		{0, 100001, 0.1},
	} {
		got := dp.SumScale(tc.lo, tc.hi)
		if got != tc.want {
			t.Errorf("SumScale(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
		if m := math.Max(math.Abs(tc.lo), math.Abs(tc.hi)); m*got > 1e5 || m*got*10 <= 1e5 {
			t.Errorf("SumScale(%v, %v) = %v is not the largest power of ten with M·scale ≤ 1e5", tc.lo, tc.hi, got)
		}
	}
}

// Count and Sum intervals are the library's, centred on the released value; Mean's lies within
// the range; composite and quantile intervals follow their documented rules.
func TestIntervalsShape(t *testing.T) {
	r, err := dp.Count(100, bnd, lap, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := noise.Laplace().ComputeConfidenceIntervalInt64(int64(r.Value), bnd.MaxGroups, bnd.MaxContributionsPerGroup, lap.Epsilon, 0, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&dp.Interval{Lower: lib.LowerBound, Upper: lib.UpperBound}, r.CI); diff != "" {
		t.Errorf("Count CI is not the library's (-want +got):\n%s", diff)
	}
	m, err := dp.Mean(50*1000, 10, 1000, 0, 10, bnd, lap, lap, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if m.CI == nil || m.CI.Lower < 0 || m.CI.Upper > 10 || m.CI.Lower > m.CI.Upper || m.Value < 0 || m.Value > 10 {
		t.Errorf("Mean = %v, CI %v: want both within [0, 10]", m.Value, m.CI)
	}
	v, err := dp.Variance(10, 50*1000, 300*1000*1000, 1000, 0, 10, bnd, [3]dp.Budget{lap, lap, lap}, false, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if v.CI == nil || v.CI.Lower < 0 || v.CI.Upper > 25 || v.CI.Lower > v.Value || v.Value > v.CI.Upper {
		t.Errorf("Variance = %v, CI %v: want an interval within [0, 25] holding the value", v.Value, v.CI)
	}
}

// A mean's interval that misses [lo, hi] altogether — it failed to cover, since the mean
// of the clamped values lies in [lo, hi] — is released as [lo, hi], never as the point a
// clamp would leave (an interval of width 0 claims certainty). The totals here are a
// mean of -1000 over [0, 1] (no clamped data has it: only a failed interval can land
// there), a billion noise scales from the range.
func TestMeanIntervalThatMissesTheRangeIsTheRange(t *testing.T) {
	lo, hi := 0.0, 1.0
	scale := dp.SumScale(lo, hi)
	n := int64(1_000_000)
	for _, b := range []dp.Budget{{Epsilon: 1}, {Epsilon: 1, Delta: 1e-6}} {
		r, err := dp.Mean(int64(-1000*scale)*n, n, scale, lo, hi, dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 1}, b, b, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		if r.CI == nil || r.CI.Lower != lo || r.CI.Upper != hi || r.Value != lo {
			t.Errorf("%v: value %v, interval %+v; want %v in [%v, %v]", b, r.Value, r.CI, lo, lo, hi)
		}
	}
}
