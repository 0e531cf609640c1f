package dp_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dp"
)

var (
	lap   = dp.Budget{Epsilon: 1}
	gauss = dp.Budget{Epsilon: 1, Delta: 1e-6}
	bnd   = dp.Bounding{MaxGroups: 2, MaxContributionsPerGroup: 3}
	inf   = math.Inf(1)
	nan   = math.NaN()
)

func zeroCounts(int, int64) int64 { return 0 }

func TestArgumentValidation(t *testing.T) {
	count := func(b dp.Budget, bd dp.Bounding, conf float64) func() error {
		return func() error { _, err := dp.Count(10, bd, b, conf); return err }
	}
	sum := func(scale, lo, hi float64) func() error {
		return func() error { _, err := dp.Sum(10, scale, lo, hi, bnd, lap, 0.95); return err }
	}
	mean := func(sb, cb dp.Budget, conf float64) func() error {
		return func() error { _, err := dp.Mean(10, 5, 1, 0, 10, bnd, sb, cb, conf); return err }
	}
	variance := func(bs [3]dp.Budget, scale float64) func() error {
		return func() error { _, err := dp.Variance(5, 10, 30, scale, 0, 100, bnd, bs, false, 0.95); return err }
	}
	quant := func(ranks []float64, counts func(int, int64) int64, tr dp.Tree, lo, hi float64) func() error {
		return func() error { _, _, err := dp.Quantiles(ranks, counts, tr, lo, hi, bnd, lap); return err }
	}
	keep := func(maxGroups int64, b dp.Budget) func() error {
		return func() error { _, err := dp.KeepPartition(5, maxGroups, b); return err }
	}
	split := func(total dp.Budget, n int, sel bool) func() error {
		return func() error { _, _, err := dp.Split(total, n, sel); return err }
	}
	three := [3]dp.Budget{lap, lap, lap}

	tests := []struct {
		name      string
		call      func() error
		wantParam string // "" means the call must succeed
	}{
		{"count ok laplace", count(lap, bnd, 0.95), ""},
		{"count ok gaussian", count(gauss, bnd, 0.95), ""},
		{"epsilon zero", count(dp.Budget{Epsilon: 0}, bnd, 0.95), "epsilon"},
		{"epsilon negative", count(dp.Budget{Epsilon: -1}, bnd, 0.95), "epsilon"},
		{"epsilon NaN", count(dp.Budget{Epsilon: nan}, bnd, 0.95), "epsilon"},
		{"epsilon infinite", count(dp.Budget{Epsilon: inf}, bnd, 0.95), "epsilon"},
		{"epsilon below 2^-50", count(dp.Budget{Epsilon: 1e-20}, bnd, 0.95), "epsilon"},
		{"delta negative", count(dp.Budget{Epsilon: 1, Delta: -1e-9}, bnd, 0.95), "delta"},
		{"delta one", count(dp.Budget{Epsilon: 1, Delta: 1}, bnd, 0.95), "delta"},
		{"delta NaN", count(dp.Budget{Epsilon: 1, Delta: nan}, bnd, 0.95), "delta"},
		{"max groups zero", count(lap, dp.Bounding{MaxGroups: 0, MaxContributionsPerGroup: 1}, 0.95), "bounding.MaxGroups"},
		{"contributions zero", count(lap, dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 0}, 0.95), "bounding.MaxContributionsPerGroup"},
		{"contributions negative", count(lap, dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: -3}, 0.95), "bounding.MaxContributionsPerGroup"},
		{"bounding overflows", count(lap, dp.Bounding{MaxGroups: 1 << 40, MaxContributionsPerGroup: 1 << 20}, 0.95), "bounding"},
		{"confidence zero", count(lap, bnd, 0), "confidence"},
		{"confidence one", count(lap, bnd, 1), "confidence"},
		{"confidence NaN", count(lap, bnd, nan), "confidence"},
		{"confidence above one", count(lap, bnd, 1.5), "confidence"},
		{"persons max groups zero", func() error { _, err := dp.CountPersons(3, 0, lap, 0.9); return err }, "maxGroups"},

		{"sum ok", sum(100, -1, 2.5), ""},
		{"sum lo NaN", sum(1, nan, 1), "lo"},
		{"sum hi infinite", sum(1, 0, inf), "hi"},
		{"sum lo infinite", sum(1, -inf, 0), "lo"},
		{"sum lo equals hi", sum(1, 3, 3), "lo"},
		{"sum lo above hi", sum(1, 4, 3), "lo"},
		{"sum range overflows", sum(1e-300, -math.MaxFloat64, math.MaxFloat64), "hi"},
		{"sum scale zero", sum(0, 0, 1), "scale"},
		{"sum scale negative", sum(-10, 0, 1), "scale"},
		{"sum scale NaN", sum(nan, 0, 1), "scale"},
		{"sum scale infinite", sum(inf, 0, 1), "scale"},
		{"sum scale too large", sum(1e300, 0, 1), "scale"},

		{"mean ok", mean(lap, lap, 0.95), ""},
		{"mean sum budget", mean(dp.Budget{}, lap, 0.95), "sumBudget.epsilon"},
		{"mean count budget", mean(lap, dp.Budget{Epsilon: 1, Delta: 2}, 0.95), "countBudget.delta"},
		{"mean mixed mechanisms", mean(lap, gauss, 0.95), "countBudget.delta"},
		{"mean confidence", mean(lap, lap, -0.5), "confidence"},

		{"variance ok", variance(three, 1000), ""},
		{"variance budget", variance([3]dp.Budget{lap, lap, {Epsilon: nan}}, 1), "budgets[2].epsilon"},
		{"variance mixed mechanisms", variance([3]dp.Budget{lap, gauss, lap}, 1), "budgets"},
		{"variance squares overflow", variance(three, 1e6), "scale"},
		{"variance confidence", func() error {
			_, err := dp.Variance(5, 10, 30, 1, 0, 100, bnd, three, false, 1)
			return err
		}, "confidence"},
		{"stddev budget", func() error {
			_, err := dp.StdDev(5, 10, 30, 1, 0, 100, bnd, [3]dp.Budget{{}, lap, lap}, true, 0.95)
			return err
		}, "budgets[0].epsilon"},

		{"quantiles ok", quant([]float64{0, 0.5, 1}, zeroCounts, dp.DefaultTree, 0, 1), ""},
		{"quantiles no ranks", quant(nil, zeroCounts, dp.DefaultTree, 0, 1), ""},
		{"quantiles rank above one", quant([]float64{0.5, 1.5}, zeroCounts, dp.DefaultTree, 0, 1), "ranks[1]"},
		{"quantiles rank NaN", quant([]float64{nan}, zeroCounts, dp.DefaultTree, 0, 1), "ranks[0]"},
		{"quantiles rank negative", quant([]float64{-0.1}, zeroCounts, dp.DefaultTree, 0, 1), "ranks[0]"},
		{"quantiles nil counts", quant([]float64{0.5}, nil, dp.DefaultTree, 0, 1), "counts"},
		{"quantiles branching", quant([]float64{0.5}, zeroCounts, dp.Tree{Branching: 1, Height: 4}, 0, 1), "tree.Branching"},
		{"quantiles height", quant([]float64{0.5}, zeroCounts, dp.Tree{Branching: 16, Height: 0}, 0, 1), "tree.Height"},
		{"quantiles tree too big", quant([]float64{0.5}, zeroCounts, dp.Tree{Branching: 16, Height: 13}, 0, 1), "tree"},
		{"quantiles bounds", quant([]float64{0.5}, zeroCounts, dp.DefaultTree, 1, 0), "lo"},

		{"keep ok", keep(1, gauss), ""},
		{"keep needs delta", keep(1, lap), "delta"},
		{"keep max groups", keep(0, gauss), "maxGroups"},
		{"keep epsilon", keep(1, dp.Budget{Delta: 1e-5}), "epsilon"},

		{"split ok", split(gauss, 3, true), ""},
		{"split laplace without selection", split(lap, 3, false), ""},
		{"split selection only", split(gauss, 0, true), ""},
		{"split negative mechanisms", split(lap, -1, false), "mechanisms"},
		{"split nothing", split(lap, 0, false), "mechanisms"},
		{"split selection needs delta", split(lap, 2, true), "delta"},
		{"split epsilon", split(dp.Budget{Epsilon: -1}, 2, false), "epsilon"},

		{"tree ok", dp.DefaultTree.Validate, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.wantParam == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got nil", tc.wantParam)
			}
			var ae *dp.ArgumentError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *ArgumentError", err)
			}
			if diff := cmp.Diff(tc.wantParam, ae.Param); diff != "" {
				t.Errorf("Param mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if !errors.Is(err, dp.ErrInvalidArgument) {
				t.Errorf("errors.Is(%v, ErrInvalidArgument) = false", err)
			}
			if !strings.Contains(err.Error(), tc.wantParam) {
				t.Errorf("error %q does not name %q", err, tc.wantParam)
			}
		})
	}
}

// NodeOf, NodeSQL and IntegerNodeSQL have no error result: invalid parameters are programming errors and panic.
func TestNodePanicsOnInvalidParameters(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi float64
		tree   dp.Tree
		level  int
	}{
		{"level zero", 0, 1, dp.DefaultTree, 0},
		{"level above height", 0, 1, dp.DefaultTree, 5},
		{"bounds reversed", 1, 0, dp.DefaultTree, 1},
		{"bound NaN", nan, 1, dp.DefaultTree, 1},
		{"branching one", 0, 1, dp.Tree{Branching: 1, Height: 2}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, f := range map[string]func(){
				"NodeOf":  func() { dp.NodeOf(0.5, tc.lo, tc.hi, tc.tree, tc.level) },
				"NodeSQL": func() { dp.NodeSQL("x", tc.lo, tc.hi, tc.tree, tc.level) },
				"IntegerNodeSQL": func() {
					dp.IntegerNodeSQL("x", tc.lo, tc.hi, tc.tree, tc.level, func(a, b string) string { return a + " // " + b })
				},
			} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s did not panic", name)
						}
					}()
					f()
				}()
			}
		})
	}
}

// Errors may depend on parameters only: no exact aggregate, however extreme, makes a call fail.
func TestNoDataDependentErrors(t *testing.T) {
	extremes := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}
	for _, b := range []dp.Budget{lap, gauss} {
		for _, x := range extremes {
			for _, y := range extremes {
				if _, err := dp.Count(x, bnd, b, 0.95); err != nil {
					t.Errorf("Count(%d): %v", x, err)
				}
				if _, err := dp.CountPersons(x, 3, b, 0.95); err != nil {
					t.Errorf("CountPersons(%d): %v", x, err)
				}
				if _, err := dp.Sum(x, 10, -3, 7, bnd, b, 0.95); err != nil {
					t.Errorf("Sum(%d): %v", x, err)
				}
				if _, err := dp.Mean(x, y, 10, -3, 7, bnd, b, b, 0.95); err != nil {
					t.Errorf("Mean(%d, %d): %v", x, y, err)
				}
				if _, err := dp.Variance(y, x, x, 10, -3, 7, bnd, [3]dp.Budget{b, b, b}, true, 0.95); err != nil {
					t.Errorf("Variance(%d, %d): %v", y, x, err)
				}
				if _, err := dp.KeepPartition(x, 2, gauss); err != nil {
					t.Errorf("KeepPartition(%d): %v", x, err)
				}
			}
			counts := func(int, int64) int64 { return x }
			if _, _, err := dp.Quantiles([]float64{0.5}, counts, dp.Tree{Branching: 4, Height: 2}, 0, 1, bnd, b); err != nil {
				t.Errorf("Quantiles(counts %d): %v", x, err)
			}
		}
	}
}

// CountNorms: a person in G cells with C rows in each moves a table of counts by G·C in L1
// and √(G·C²) in L2; with G = 1 (row truncation to k) both are k.
func TestBoundingCountNorms(t *testing.T) {
	for _, c := range []struct {
		b      dp.Bounding
		l1, l2 float64
	}{
		{dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: 7}, 7, 7},
		{dp.Bounding{MaxGroups: 4, MaxContributionsPerGroup: 3}, 12, 6},
		{dp.Bounding{MaxGroups: 9, MaxContributionsPerGroup: 1}, 9, 3},
	} {
		// The extreme person, cell by cell: C in each of G cells.
		var l1, l2 float64
		for range c.b.MaxGroups {
			l1 += float64(c.b.MaxContributionsPerGroup)
			l2 += float64(c.b.MaxContributionsPerGroup * c.b.MaxContributionsPerGroup)
		}
		g1, g2 := c.b.CountNorms()
		if g1 != c.l1 || g2 != c.l2 || g1 != l1 || math.Abs(g2-math.Sqrt(l2)) > 1e-12 {
			t.Errorf("%+v: CountNorms %v, %v; want %v, %v", c.b, g1, g2, c.l1, c.l2)
		}
	}
}
