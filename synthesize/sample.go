package synthesize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sample draws n rows from the model, over the model's domain (after MST's domain compression
// that is the compressed domain: Result.Sample maps the rows back). The rows depend on the
// source data only through the model, which is a function of the noisy measurements; the
// randomness is a ChaCha8 stream seeded with seed (callers pass 32 bytes from crypto/rand;
// tests fix it to check determinism).
//
// It walks the junction tree from the root, as Private-PGM's synthetic_data does attribute by
// attribute ("round" method): the root clique's n rows are given cell counts n·p rounded
// (floors, then the remaining rows to distinct cells drawn with probability ∝ the fractional
// parts), assigned in random order; for each further clique the rows are grouped by their
// already drawn separator values, and each group of g rows gets the clique's conditional
// distribution given that separator value rounded to g the same way. This keeps every
// clique marginal within one row per cell of the model's, where independent draws would add
// sampling noise. Memory is the output, two index arrays of n int32, and tables over the
// cliques.
func (m *Model) Sample(n int, seed [32]byte) (*Table, error) {
	return m.sample(n, rand.New(rand.NewChaCha8(seed)))
}

func (m *Model) sample(n int, rng *rand.Rand) (*Table, error) {
	if n < 0 {
		return nil, fmt.Errorf("synthesize: cannot sample %d rows", n)
	}
	t := NewTable(m.Domain, n)
	jt := m.jt
	rowSep := make([]int32, n) // each row's separator value
	order := make([]int32, n)  // rows grouped by separator value
	for _, c := range jt.order {
		attrs := jt.cliques[c]
		mu := m.marginals[c]
		var sep []int
		var sepIdx []int32
		nSep := 1
		if jt.parent[c] >= 0 {
			sep, sepIdx = jt.sep[c], m.toSep[c]
			for _, a := range sep {
				nSep *= m.Domain.Sizes[a]
			}
		} else {
			sepIdx = make([]int32, len(mu.Values))
		}
		// the clique's cells grouped by separator value (counting sort)
		cellOff := make([]int, nSep+1)
		for _, s := range sepIdx {
			cellOff[s+1]++
		}
		for s := range nSep {
			cellOff[s+1] += cellOff[s]
		}
		cells := make([]int32, len(mu.Values))
		pos := slices.Clone(cellOff[:nSep])
		for cell, s := range sepIdx {
			cells[pos[s]] = int32(cell)
			pos[s]++
		}
		// the rows grouped by separator value
		sepStrides := make([]int, len(sep))
		st := 1
		for i := len(sep) - 1; i >= 0; i-- {
			sepStrides[i] = st
			st *= m.Domain.Sizes[sep[i]]
		}
		rowOff := make([]int, nSep+1)
		for r := range n {
			s := 0
			for i, a := range sep {
				s += int(t.Columns[a][r]) * sepStrides[i]
			}
			rowSep[r] = int32(s)
			rowOff[s+1]++
		}
		for s := range nSep {
			rowOff[s+1] += rowOff[s]
		}
		rpos := slices.Clone(rowOff[:nSep])
		for r := range n {
			s := rowSep[r]
			order[rpos[s]] = int32(r)
			rpos[s]++
		}
		strides := make([]int, len(attrs))
		st = 1
		for i := len(attrs) - 1; i >= 0; i-- {
			strides[i] = st
			st *= mu.Shape[i]
		}
		var w []float64
		var counts []int
		for s := range nSep {
			rows := order[rowOff[s]:rowOff[s+1]]
			if len(rows) == 0 {
				continue
			}
			group := cells[cellOff[s]:cellOff[s+1]]
			w = w[:0]
			for _, cell := range group {
				w = append(w, max(mu.Values[cell], 0))
			}
			counts = roundCounts(rng, w, len(rows), counts)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			next := 0
			for i, cnt := range counts {
				cell := int(group[i])
				for _, r := range rows[next : next+cnt] {
					for j, a := range attrs {
						t.Columns[a][r] = int32(cell / strides[j] % mu.Shape[j])
					}
				}
				next += cnt
			}
		}
	}
	return t, nil
}

// roundCounts splits g rows over cells with weights w: ⌊g·pᵢ⌋ each, and the remaining rows one
// each to distinct cells drawn without replacement with probability ∝ the fractional parts
// (Efraimidis–Spirakis keys u^(1/f)). All-zero weights are taken as uniform.
func roundCounts(rng *rand.Rand, w []float64, g int, counts []int) []int {
	counts = slices.Grow(counts[:0], len(w))[:len(w)]
	total := 0.0
	for _, x := range w {
		total += x
	}
	uniform := !(total > 0) || math.IsInf(total, 0)
	left := g
	frac := make([]float64, len(w))
	for i, x := range w {
		p := 1 / float64(len(w))
		if !uniform {
			p = x / total
		}
		e := p * float64(g)
		f := math.Floor(e)
		counts[i] = int(f)
		frac[i] = e - f
		left -= counts[i]
	}
	if left <= 0 {
		// float rounding can make the floors sum above g by a row or so: take them back
		for i := len(counts) - 1; left < 0 && i >= 0; i-- {
			d := min(counts[i], -left)
			counts[i] -= d
			left += d
		}
		return counts
	}
	type kv struct {
		key float64
		i   int
	}
	keys := make([]kv, 0, len(w))
	for i, f := range frac {
		if f > 0 {
			keys = append(keys, kv{math.Log(1-rng.Float64()) / f, i})
		}
	}
	slices.SortFunc(keys, func(a, b kv) int {
		if a.key > b.key {
			return -1
		}
		if a.key < b.key {
			return 1
		}
		return a.i - b.i
	})
	for _, k := range keys {
		if left == 0 {
			break
		}
		counts[k.i]++
		left--
	}
	// fewer positive fractions than rows left (rounding): spread the rest uniformly
	for ; left > 0; left-- {
		counts[rng.IntN(len(counts))]++
	}
	return counts
}
