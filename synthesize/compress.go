package synthesize

import (
	"math/rand/v2"
)

// Domain compression (MST, McKenna, Miklau and Sheldon 2021, §4): after the 1-way marginals
// are measured, the categories of each attribute whose noisy count is below 3σ are merged into
// one category, so that the rest of the algorithm (selection, 2-way measurements, model) works
// on smaller tables and spends no noise on near-empty cells. The merge is a function of noisy
// outputs only (post-processing) and is released with the result. A merged marginal is a sum
// of cells of the original one, so a person still changes it by at most k in L1 and L2.

// AttributeCompression says how one attribute's categories were merged.
type AttributeCompression struct {
	Attr   string
	Kept   []int // original codes kept, in order: compressed code i is Kept[i]
	Merged []int // original codes merged into compressed code len(Kept) (none: no merge)
}

type compression struct {
	attrs []AttributeCompression
	toNew [][]int32 // per attribute: original code → compressed code
	orig  Domain
	comp  Domain
}

// newCompression merges, per attribute, the categories whose noisy 1-way count is below
// 3·σ. oneWays[a] is attribute a's noisy 1-way measurement.
func newCompression(d Domain, oneWays []Measurement) *compression {
	c := &compression{orig: d, comp: Domain{Names: d.Names, Sizes: make([]int, len(d.Sizes))}}
	for a, m := range oneWays {
		ac := AttributeCompression{Attr: d.Names[a]}
		toNew := make([]int32, d.Sizes[a])
		for code, y := range m.Noisy.Values {
			if y >= 3*m.Sigma {
				toNew[code] = int32(len(ac.Kept))
				ac.Kept = append(ac.Kept, code)
			} else {
				ac.Merged = append(ac.Merged, code)
			}
		}
		for _, code := range ac.Merged {
			toNew[code] = int32(len(ac.Kept))
		}
		c.comp.Sizes[a] = len(ac.Kept)
		if len(ac.Merged) > 0 {
			c.comp.Sizes[a]++
		}
		c.attrs = append(c.attrs, ac)
		c.toNew = append(c.toNew, toNew)
	}
	return c
}

// fold maps a factor over the original domain onto the compressed one (summing merged cells).
func (c *compression) fold(f *Factor) (*Factor, error) {
	g, err := NewFactor(c.comp, f.Attrs)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(f.Attrs))
	strides := make([]int, len(f.Attrs))
	s := 1
	for i := len(f.Attrs) - 1; i >= 0; i-- {
		strides[i] = s
		s *= g.Shape[i]
	}
	for cell := range f.Values {
		t := 0
		for i, a := range f.Attrs {
			t += int(c.toNew[a][idx[i]]) * strides[i]
		}
		g.Values[t] += f.Values[cell]
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < f.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return g, nil
}

// foldOneWay re-expresses a noisy 1-way measurement over the compressed domain: kept cells as
// they are, merged cells summed, with noise variance σ² times the number of cells summed.
func (c *compression) foldOneWay(m Measurement) (Measurement, error) {
	g, err := c.fold(m.Noisy)
	if err != nil {
		return Measurement{}, err
	}
	a := m.Attrs[0]
	ac := c.attrs[a]
	var vs []float64
	if len(ac.Merged) > 1 {
		vs = make([]float64, len(g.Values))
		for i := range vs {
			vs[i] = 1
		}
		vs[len(ac.Kept)] = float64(len(ac.Merged))
	}
	return Measurement{Attrs: m.Attrs, Noisy: g, Sigma: m.Sigma, Rho: m.Rho, varScale: vs}, nil
}

// compressedCounts reads the source's marginals and folds them.
type compressedCounts struct {
	src Counts
	c   *compression
}

func (cc compressedCounts) Marginal(attrs []int) (*Factor, error) {
	f, err := cc.src.Marginal(attrs)
	if err != nil {
		return nil, err
	}
	want, err := NewFactor(cc.c.orig, attrs)
	if err != nil {
		return nil, err
	}
	if len(f.Values) != len(want.Values) {
		return nil, errShape(cc.c.orig, attrs)
	}
	return cc.c.fold(f)
}

// expand maps a table over the compressed domain back to the original one: a row in an
// attribute's merged category gets one of the merged codes, uniformly at random (MST's
// reverse_data).
func (c *compression) expand(t *Table, rng *rand.Rand) *Table {
	out := &Table{Domain: c.orig, Columns: make([][]int32, len(t.Columns))}
	for a, col := range t.Columns {
		ac := c.attrs[a]
		o := make([]int32, len(col))
		for r, v := range col {
			if int(v) < len(ac.Kept) {
				o[r] = int32(ac.Kept[v])
			} else {
				o[r] = int32(ac.Merged[rng.IntN(len(ac.Merged))])
			}
		}
		out.Columns[a] = o
	}
	return out
}
