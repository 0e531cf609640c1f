package synthesize

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Domain is the public schema of the table: one categorical attribute per column, each with
// a finite, public number of categories coded 0..Sizes[i]−1. Numeric columns are binned by the
// caller (with public bin edges) before they reach this package.
type Domain struct {
	Names []string
	Sizes []int
}

// maxCells bounds the number of cells of any one table this package allocates (a marginal,
// a clique of the model): 2²⁸ float64 values are 2 GiB.
const maxCells = 1 << 28

// Validate checks that the domain is usable.
func (d Domain) Validate() error {
	if len(d.Names) != len(d.Sizes) {
		return fmt.Errorf("synthesize: domain has %d names but %d sizes", len(d.Names), len(d.Sizes))
	}
	if len(d.Sizes) == 0 {
		return errors.New("synthesize: the domain has no attributes")
	}
	seen := map[string]bool{}
	for i, s := range d.Sizes {
		if s < 1 {
			return fmt.Errorf("synthesize: attribute %q has %d categories; it needs at least one", d.Names[i], s)
		}
		if seen[d.Names[i]] {
			return fmt.Errorf("synthesize: attribute %q appears twice", d.Names[i])
		}
		seen[d.Names[i]] = true
	}
	return nil
}

// Cells is the number of cells of the marginal over attrs, or an error when it exceeds
// maxCells.
func (d Domain) Cells(attrs []int) (int, error) {
	n := 1
	for _, a := range attrs {
		n *= d.Sizes[a]
		if n > maxCells {
			return 0, fmt.Errorf("synthesize: the marginal over %v has more than %d cells", d.names(attrs), maxCells)
		}
	}
	return n, nil
}

// size is Cells without the bound (callers have checked it), as float64 to be overflow-free.
func (d Domain) size(attrs []int) float64 {
	n := 1.0
	for _, a := range attrs {
		n *= float64(d.Sizes[a])
	}
	return n
}

func (d Domain) names(attrs []int) []string {
	out := make([]string, len(attrs))
	for i, a := range attrs {
		out[i] = d.Names[a]
	}
	return out
}

// Factor is a dense table over a sorted set of attributes: a contingency table (counts), a
// noisy measurement, a model marginal or a log-potential. Values are in row-major order with
// the last attribute varying fastest.
type Factor struct {
	Attrs  []int // sorted ascending, distinct
	Shape  []int // Shape[i] = domain size of Attrs[i]
	Values []float64
}

// NewFactor is a zero factor over attrs (which it sorts).
func NewFactor(d Domain, attrs []int) (*Factor, error) {
	a := slices.Clone(attrs)
	slices.Sort(a)
	if len(slices.Compact(slices.Clone(a))) != len(a) {
		return nil, fmt.Errorf("synthesize: attribute set %v repeats an attribute", attrs)
	}
	for _, x := range a {
		if x < 0 || x >= len(d.Sizes) {
			return nil, fmt.Errorf("synthesize: attribute index %d is outside the domain", x)
		}
	}
	n, err := d.Cells(a)
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(a))
	for i, x := range a {
		shape[i] = d.Sizes[x]
	}
	return &Factor{Attrs: a, Shape: shape, Values: make([]float64, n)}, nil
}

// Clone copies f.
func (f *Factor) Clone() *Factor {
	return &Factor{Attrs: slices.Clone(f.Attrs), Shape: slices.Clone(f.Shape), Values: slices.Clone(f.Values)}
}

// Sum is the total of the values.
func (f *Factor) Sum() float64 {
	s := 0.0
	for _, v := range f.Values {
		s += v
	}
	return s
}

// subIndex maps every cell of f to the cell of the factor over sub ⊆ f.Attrs (sorted) that it
// projects to.
func (f *Factor) subIndex(sub []int) []int32 {
	// stride in the sub factor of each attribute of f (0 when not in sub)
	strides := make([]int, len(f.Attrs))
	s := 1
	for i := len(f.Attrs) - 1; i >= 0; i-- {
		if slices.Contains(sub, f.Attrs[i]) {
			strides[i] = s
			s *= f.Shape[i]
		}
	}
	out := make([]int32, len(f.Values))
	idx := make([]int, len(f.Attrs))
	cur := 0
	for c := range out {
		out[c] = int32(cur)
		// increment the mixed-radix counter
		for i := len(f.Attrs) - 1; i >= 0; i-- {
			idx[i]++
			cur += strides[i]
			if idx[i] < f.Shape[i] {
				break
			}
			cur -= strides[i] * idx[i]
			idx[i] = 0
		}
	}
	return out
}

func isSubset(sub, set []int) bool {
	for _, a := range sub {
		if !slices.Contains(set, a) {
			return false
		}
	}
	return true
}

func shapeOf(f *Factor, sub []int) []int {
	shape := make([]int, 0, len(sub))
	for i, a := range f.Attrs {
		if slices.Contains(sub, a) {
			shape = append(shape, f.Shape[i])
		}
	}
	return shape
}

// Project sums f onto the attributes sub ⊆ f.Attrs (the marginal of a contingency table).
func (f *Factor) Project(sub []int) (*Factor, error) {
	s := slices.Clone(sub)
	slices.Sort(s)
	if !isSubset(s, f.Attrs) {
		return nil, fmt.Errorf("synthesize: cannot project a table over %v onto %v", f.Attrs, sub)
	}
	shape := shapeOf(f, s)
	n := 1
	for _, x := range shape {
		n *= x
	}
	out := &Factor{Attrs: s, Shape: shape, Values: make([]float64, n)}
	for c, t := range f.subIndex(s) {
		out.Values[t] += f.Values[c]
	}
	return out, nil
}

// logSumExpProject is Project in log space: out[t] = log Σ_{c→t} exp(f[c]).
func (f *Factor) logSumExpProject(s []int, idx []int32) *Factor {
	shape := shapeOf(f, s)
	n := 1
	for _, x := range shape {
		n *= x
	}
	out := &Factor{Attrs: s, Shape: shape, Values: make([]float64, n)}
	mx := make([]float64, n)
	for i := range mx {
		mx[i] = math.Inf(-1)
	}
	for c, t := range idx {
		if f.Values[c] > mx[t] {
			mx[t] = f.Values[c]
		}
	}
	for c, t := range idx {
		if !math.IsInf(mx[t], -1) {
			out.Values[t] += math.Exp(f.Values[c] - mx[t])
		}
	}
	for t := range out.Values {
		if math.IsInf(mx[t], -1) {
			out.Values[t] = math.Inf(-1)
		} else {
			out.Values[t] = mx[t] + math.Log(out.Values[t])
		}
	}
	return out
}

// TVD is the total-variation distance between two non-negative tables over the same cells,
// each normalised to sum 1 (negative values are treated as 0). An all-zero table is the
// uniform distribution.
func TVD(a, b []float64) float64 {
	na, nb := normalised(a), normalised(b)
	s := 0.0
	for i := range na {
		s += math.Abs(na[i] - nb[i])
	}
	return s / 2
}

func normalised(v []float64) []float64 {
	out := make([]float64, len(v))
	t := 0.0
	for i, x := range v {
		if x > 0 {
			out[i] = x
			t += x
		}
	}
	if t == 0 {
		for i := range out {
			out[i] = 1 / float64(len(out))
		}
		return out
	}
	for i := range out {
		out[i] /= t
	}
	return out
}

// Index is the cell of the combination codes (one code per attribute of f.Attrs, in that
// order), for callers filling a Factor from grouped counts; −1 when a code is outside its
// domain.
func (f *Factor) Index(codes []int) int {
	if len(codes) != len(f.Attrs) {
		return -1
	}
	c := 0
	for i, v := range codes {
		if v < 0 || v >= f.Shape[i] {
			return -1
		}
		c = c*f.Shape[i] + v
	}
	return c
}

// Codes is the inverse of Index: the codes of cell, one per attribute of f.Attrs.
func (f *Factor) Codes(cell int) []int {
	out := make([]int, len(f.Attrs))
	for i := len(f.Attrs) - 1; i >= 0; i-- {
		out[i] = cell % f.Shape[i]
		cell /= f.Shape[i]
	}
	return out
}
