package synthesize

import (
	"math"
	"math/rand/v2"
	"testing"
)

// seededNoise is the test seam: Gaussian noise and uniforms from a seeded PRNG, so that a
// test's outcome is a fixed function of its seed (no flaky failures). Production code never
// uses it (Options.noise is unexported).
type seededNoise struct{ r *rand.Rand }

func newSeededNoise(seed uint64) seededNoise {
	return seededNoise{rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (s seededNoise) gaussian(x []float64, sigma float64) ([]float64, float64, error) {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v + sigma*s.r.NormFloat64()
	}
	return out, sigma, nil
}

func (s seededNoise) uniform() float64 { return s.r.Float64() }

// plantedTable generates n rows over 8 attributes with planted dependencies (the issue's
// examples): priority → wait, region → within target, age band → diagnoses band, wait →
// weekday (weak), and sex independent of everything.
func plantedTable(n int, seed uint64) *Table {
	d := Domain{
		Names: []string{"priority", "wait", "region", "within_target", "age_band", "diagnoses", "sex", "weekday"},
		Sizes: []int{4, 6, 5, 2, 6, 5, 2, 7},
	}
	r := rand.New(rand.NewPCG(seed, 1))
	t := NewTable(d, n)
	pick := func(w []float64) int32 {
		s := 0.0
		for _, x := range w {
			s += x
		}
		u := r.Float64() * s
		for i, x := range w {
			u -= x
			if u < 0 {
				return int32(i)
			}
		}
		return int32(len(w) - 1)
	}
	peaked := func(size, centre int, sharp float64) []float64 {
		w := make([]float64, size)
		for i := range w {
			w[i] = math.Exp(-sharp * math.Abs(float64(i-centre)))
		}
		return w
	}
	for i := range n {
		pr := pick([]float64{1, 2, 3, 4})
		wait := pick(peaked(6, int(pr)+1, 1.5))
		reg := pick([]float64{3, 2, 2, 1, 1})
		within := pick([]float64{0.2 + 0.15*float64(reg), 0.8 - 0.15*float64(reg)})
		age := pick([]float64{1, 2, 3, 3, 2, 1})
		diag := pick(peaked(5, int(age)*4/5, 1.2))
		sex := pick([]float64{1, 1})
		wd := pick(peaked(7, int(wait), 0.4))
		for a, v := range []int32{pr, wait, reg, within, age, diag, sex, wd} {
			t.Columns[a][i] = v
		}
	}
	return t
}

// twoWayTVDs is, for every pair of attributes, the TVD between the two tables' marginals.
func twoWayTVDs(t *testing.T, real, synth *Table) map[[2]int]float64 {
	t.Helper()
	out := map[[2]int]float64{}
	n := len(real.Domain.Sizes)
	for a := range n {
		for b := a + 1; b < n; b++ {
			x, err := real.Marginal([]int{a, b})
			if err != nil {
				t.Fatal(err)
			}
			y, err := synth.Marginal([]int{a, b})
			if err != nil {
				t.Fatal(err)
			}
			out[[2]int{a, b}] = TVD(x.Values, y.Values)
		}
	}
	return out
}

// independenceTVDs is, for every pair, the TVD between the real 2-way marginal and the product
// of the real 1-way marginals: the best any model without dependencies can do.
func independenceTVDs(t *testing.T, real *Table) map[[2]int]float64 {
	t.Helper()
	out := map[[2]int]float64{}
	n := len(real.Domain.Sizes)
	N := float64(real.Rows())
	for a := range n {
		for b := a + 1; b < n; b++ {
			x, _ := real.Marginal([]int{a, b})
			pa, _ := real.Marginal([]int{a})
			pb, _ := real.Marginal([]int{b})
			ind := make([]float64, len(x.Values))
			for i := range pa.Values {
				for j := range pb.Values {
					ind[i*len(pb.Values)+j] = pa.Values[i] * pb.Values[j] / N
				}
			}
			out[[2]int{a, b}] = TVD(x.Values, ind)
		}
	}
	return out
}

func mean(m map[[2]int]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s / float64(len(m))
}
