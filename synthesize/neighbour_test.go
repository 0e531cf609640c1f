package synthesize

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestNeighbourSensitivity checks the derivation the accounting rests on, on real tables:
// removing one person with at most k rows changes every marginal by at most k in L1 and in
// L2, and every selection score (MST's ‖M − x̂‖₁, AIM's w·(‖M − x̂‖₁ − bias)) by at most k
// (times w), for any fixed estimate x̂.
func TestNeighbourSensitivity(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 34))
	base := plantedTable(3000, 9)
	sets := [][]int{{0}, {1, 7}, {0, 1}, {2, 3, 4}, {5, 6}, {0, 1, 2, 3}}
	for _, k := range []int{1, 2, 5} {
		for trial := range 200 {
			// person = k rows; half the trials put all k rows in one cell (the L2 worst case)
			person := NewTable(base.Domain, k)
			src := r.IntN(base.Rows())
			for a := range person.Columns {
				for i := range k {
					row := src
					if trial%2 == 1 {
						row = r.IntN(base.Rows())
					}
					person.Columns[a][i] = base.Columns[a][row]
				}
			}
			with := &Table{Domain: base.Domain, Columns: make([][]int32, len(base.Columns))}
			for a := range base.Columns {
				with.Columns[a] = append(append([]int32{}, base.Columns[a]...), person.Columns[a]...)
			}
			for _, s := range sets {
				x, _ := base.Marginal(s)
				y, _ := with.Marginal(s)
				l1d, l2d := 0.0, 0.0
				for i := range x.Values {
					d := math.Abs(x.Values[i] - y.Values[i])
					l1d += d
					l2d += d * d
				}
				if l1d > float64(k) || math.Sqrt(l2d) > float64(k)+1e-12 {
					t.Fatalf("k=%d: marginal %v changed by L1 %v, L2 %v", k, s, l1d, math.Sqrt(l2d))
				}
				est := make([]float64, len(x.Values))
				for i := range est {
					est[i] = r.Float64() * 100
				}
				if dq := math.Abs(l1(x.Values, est) - l1(y.Values, est)); dq > float64(k)+1e-9 {
					t.Fatalf("k=%d: score of %v changed by %v", k, s, dq)
				}
			}
		}
	}
}
