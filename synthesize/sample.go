package synthesize

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Sample draws n rows from the model, over the model's domain (after MST's domain compression
// that is the compressed domain: Result.Sample maps the rows back). The rows depend on the source data only through the
// model, which is a function of the noisy measurements; the randomness is a ChaCha8 stream
// seeded with seed (callers pass 32 bytes from crypto/rand; tests fix it to check
// determinism). It walks the junction tree from the root: the root clique's attributes are
// drawn from its marginal, and each further clique's new attributes from their conditional
// distribution given its separator with the parent, which is already drawn. Memory is the
// output plus one cumulative table per clique (the clique's cells).
func (m *Model) Sample(n int, seed [32]byte) (*Table, error) {
	if n < 0 {
		return nil, fmt.Errorf("synthesize: cannot sample %d rows", n)
	}
	return m.sample(n, rand.New(rand.NewChaCha8(seed)))
}

func (m *Model) sample(n int, rng *rand.Rand) (*Table, error) {
	if n < 0 {
		return nil, fmt.Errorf("synthesize: cannot sample %d rows", n)
	}
	t := NewTable(m.Domain, n)
	jt := m.jt
	for _, c := range jt.order {
		attrs := jt.cliques[c]
		mu := m.marginals[c]
		sep := jt.sep[c]
		var sepIdx []int32
		nSep := 1
		if jt.parent[c] >= 0 {
			sepIdx = m.toSep[c]
			for _, a := range sep {
				nSep *= m.Domain.Sizes[a]
			}
		} else {
			sepIdx = make([]int32, len(mu.Values))
			sep = nil
		}
		// group the clique's cells by separator value (counting sort), cumulative weights
		offsets := make([]int, nSep+1)
		for _, s := range sepIdx {
			offsets[s+1]++
		}
		for s := range nSep {
			offsets[s+1] += offsets[s]
		}
		cells := make([]int32, len(mu.Values))
		cum := make([]float64, len(mu.Values))
		pos := make([]int, nSep)
		copy(pos, offsets[:nSep])
		for cell, s := range sepIdx {
			cells[pos[s]] = int32(cell)
			pos[s]++
		}
		for s := range nSep {
			acc := 0.0
			for i := offsets[s]; i < offsets[s+1]; i++ {
				v := mu.Values[cells[i]]
				if v > 0 {
					acc += v
				}
				cum[i] = acc
			}
		}
		// strides of the clique's and the separator's cells
		strides := make([]int, len(attrs))
		st := 1
		for i := len(attrs) - 1; i >= 0; i-- {
			strides[i] = st
			st *= mu.Shape[i]
		}
		sepStrides := make([]int, len(sep))
		st = 1
		for i := len(sep) - 1; i >= 0; i-- {
			sepStrides[i] = st
			st *= m.Domain.Sizes[sep[i]]
		}
		for r := range n {
			s := 0
			for i, a := range sep {
				s += int(t.Columns[a][r]) * sepStrides[i]
			}
			lo, hi := offsets[s], offsets[s+1]
			var cell int
			if total := cum[hi-1]; total > 0 {
				u := rng.Float64() * total
				i := lo + sort.SearchFloat64s(cum[lo:hi], u)
				for i < hi-1 && cum[i] <= u {
					i++
				}
				cell = int(cells[i])
			} else {
				cell = int(cells[lo+rng.IntN(hi-lo)])
			}
			for i, a := range attrs {
				t.Columns[a][r] = int32(cell / strides[i] % mu.Shape[i])
			}
		}
	}
	return t, nil
}
