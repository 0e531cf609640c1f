package dp

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Tree is the shape of the quantile tree: Branching children per node, Height levels below the
// root. Its Branching^Height leaves split [lo, hi] into equal buckets.
type Tree struct{ Branching, Height int }

// DefaultTree is dpagg.BoundedQuantiles' default shape: 16⁴ = 65536 leaves.
var DefaultTree = Tree{Branching: 16, Height: 4}

// maxLeaves keeps leaf indices exact in float64 and the tree's node indices in int64.
const maxLeaves = 1 << 48

// Validate reports whether the tree is usable: Branching ≥ 2, Height ≥ 1 and at most 2⁴⁸ leaves.
func (t Tree) Validate() error {
	if t.Branching < 2 {
		return argErr("tree.Branching", "is %d, must be >= 2", t.Branching)
	}
	if t.Height < 1 {
		return argErr("tree.Height", "is %d, must be >= 1", t.Height)
	}
	n := int64(1)
	for range t.Height {
		if n > maxLeaves/int64(t.Branching) {
			return argErr("tree", "has %d^%d leaves, more than 2^48", t.Branching, t.Height)
		}
		n *= int64(t.Branching)
	}
	return nil
}

// pow returns Branching^k for a validated tree and 0 ≤ k ≤ Height.
func (t Tree) pow(k int) int64 {
	n := int64(1)
	for range k {
		n *= int64(t.Branching)
	}
	return n
}

// Quantiles releases the quantiles at ranks (each in [0, 1]) of values clamped to [lo, hi] by
// the tree mechanism, exactly as dpagg.BoundedQuantiles.Result does but over counts the engine
// computed: counts(level, index) must return the exact bounded number of rows whose value falls
// in node index (0 ≤ index < Branching^level) at level (1 ≤ level ≤ Height), with nodes as
// NodeOf and NodeSQL compute them (0 for an empty node). The search descends from the root;
// only the children of nodes it visits are noised, each once (memoized, so every rank sees the
// same noisy tree and counts is called at most once per node).
//
// Sensitivity: each row adds 1 to one node per level, so a person with at most C =
// MaxContributionsPerGroup rows in each of at most G = MaxGroups groups changes the node counts
// by L1 ≤ Height·G·C and L2 ≤ C·√(Height·G) (all C rows in one leaf). The library's L0 =
// Height·G and LInf = C give exactly these: Laplace b = L0·LInf/ε = Height·G·C/ε and Gaussian σ
// for L2 = LInf·√L0. Released carries these parameters; its Value is unused and CI is nil.
//
// The results are made monotone in rank (a running maximum in rank order, post-processing)
// and lie in [lo, hi]. As in the library, ranks are first clamped to [0.005, 0.995].
func Quantiles(ranks []float64, counts func(level int, index int64) int64, t Tree, lo, hi float64, bnd Bounding, b Budget) ([]float64, Released, error) {
	if err := firstErr(b.Validate(), bnd.Validate(), t.Validate(), checkBounds(lo, hi)); err != nil {
		return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", err)
	}
	if counts == nil {
		return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", argErr("counts", "is nil"))
	}
	for i, r := range ranks {
		if !(r >= 0 && r <= 1) {
			return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", argErr("ranks["+strconv.Itoa(i)+"]", "is %v, must be in [0, 1]", r))
		}
	}
	l0, err := mulSens(int64(t.Height), bnd.MaxGroups, "bounding.MaxGroups")
	if err != nil {
		return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", err)
	}
	if err := checkSensitivity(l0, bnd.MaxContributionsPerGroup, "bounding"); err != nil {
		return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", err)
	}
	m := ChooseMechanism(b)
	q := quantileTree{
		t: t, lo: lo, hi: hi, counts: counts,
		noise: m.noise(), l0: l0, lInf: float64(bnd.MaxContributionsPerGroup), b: b,
		noised: make(map[node]float64),
	}
	out := make([]float64, len(ranks))
	for i, r := range ranks {
		v, err := q.result(r)
		if err != nil {
			return nil, Released{}, fmt.Errorf("dp.Quantiles: noise: %w", err)
		}
		out[i] = clamp(v, lo, hi)
	}
	order := make([]int, len(ranks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return ranks[order[i]] < ranks[order[j]] })
	for k := 1; k < len(order); k++ {
		out[order[k]] = math.Max(out[order[k]], out[order[k-1]])
	}
	return out, Released{
		Mechanism: m,
		Budget:    b,
		L0:        float64(l0),
		LInf:      q.lInf,
		Scale:     m.scale(l0, q.lInf, b),
		Unit:      1,
	}, nil
}

// The library's post-processing constants (dpagg/quantiles.go).
const (
	treeAlpha     = 0.0075 // a child under this share of its siblings' noisy total counts as empty
	treeTolerance = 1e-6
)

type node struct {
	level int
	index int64
}

type quantileTree struct {
	t      Tree
	lo, hi float64
	counts func(level int, index int64) int64
	noise  interface {
		AddNoiseFloat64(x float64, l0 int64, lInf, eps, delta float64) (float64, error)
	}
	l0     int64
	lInf   float64
	b      Budget
	noised map[node]float64
}

func (q *quantileTree) count(n node) (float64, error) {
	if c, ok := q.noised[n]; ok {
		return c, nil
	}
	c, err := q.noise.AddNoiseFloat64(float64(q.counts(n.level, n.index)), q.l0, q.lInf, q.b.Epsilon, q.b.Delta)
	if err != nil {
		return 0, err
	}
	q.noised[n] = c
	return c, nil
}

// result mirrors dpagg.BoundedQuantiles.Result, with nodes named by (level, index) instead of
// breadth-first numbers.
func (q *quantileTree) result(rank float64) (float64, error) {
	rank = math.Max(math.Min(rank, 0.995), 0.005)
	cur := node{}
	B := int64(q.t.Branching)
	for cur.level < q.t.Height {
		first := node{level: cur.level + 1, index: cur.index * B}
		children := make([]float64, B)
		total := 0.0
		for j := range children {
			c, err := q.count(node{first.level, first.index + int64(j)})
			if err != nil {
				return 0, err
			}
			children[j] = c
			total += math.Max(0, c)
		}
		corrected := 0.0
		for _, c := range children {
			if c >= total*treeAlpha {
				corrected += c
			}
		}
		if corrected == 0 {
			break // every child looks empty: interpolate inside the current node
		}
		partial, chosen, found := 0.0, -1, false
		for j, c := range children {
			if c < total*treeAlpha {
				continue
			}
			partial += c
			chosen = j
			if partial/corrected >= rank-treeTolerance {
				rank = (rank - (partial-c)/corrected) / (c / corrected)
				found = true
				break
			}
		}
		if !found { // only rounding gets here (the library would loop on); take the last child whole
			rank = 1
		}
		rank = math.Min(math.Max(0, rank), 1)
		cur = node{level: first.level, index: first.index + int64(chosen)}
	}
	below := q.t.pow(q.t.Height - cur.level)
	leaves := float64(q.t.pow(q.t.Height))
	left := (q.hi-q.lo)*(float64(cur.index*below)/leaves) + q.lo
	right := (q.hi-q.lo)*(float64((cur.index+1)*below)/leaves) + q.lo
	return (1-rank)*left + rank*right, nil
}

// NodeOf returns the index of the node holding v at level (1..t.Height) of the tree over
// [lo, hi]: leaf = ⌊(v − lo)/(hi − lo)·N⌋ with N = Branching^Height leaves, clamped to
// [0, N−1] (so hi falls in the last leaf, as in dpagg), then index = leaf / Branching^(Height−level)
// in integer division. Deriving every level from the one leaf makes the levels nest exactly
// (a node's children are the only nodes whose parent it is), which floating point applied level
// by level would not guarantee for every branching factor. NaN sorts above every number, as in
// DuckDB, and lands in the last leaf. NodeOf panics if t, level or the bounds are invalid
// (Tree.Validate, lo < hi finite): those are the caller's parameters, never data.
func NodeOf(v, lo, hi float64, t Tree, level int) int64 {
	mustNodeArgs(lo, hi, t, level)
	n := t.pow(t.Height)
	x := math.Floor((v - lo) / (hi - lo) * float64(n))
	var leaf int64
	switch {
	case math.IsNaN(x) || x >= float64(n-1):
		leaf = n - 1
	case x <= 0:
		leaf = 0
	default:
		leaf = int64(x)
	}
	return leaf / t.pow(t.Height-level)
}

// NodeSQL returns the DuckDB expression computing NodeOf(expr, lo, hi, t, level) with the same
// float64 operations in the same order:
//
//	CAST(least(greatest(floor((CAST((expr) AS DOUBLE) - lo) / w * N), 0), N-1) AS BIGINT) // D
//
// where w = hi − lo is computed in Go and written, like lo, as an exact DOUBLE literal,
// N = Branching^Height and D = Branching^(Height−level) (omitted when 1). DuckDB's greatest and
// least order NaN above every number, as NodeOf does. It panics on invalid parameters, as
// NodeOf does.
func NodeSQL(expr string, lo, hi float64, t Tree, level int) string {
	mustNodeArgs(lo, hi, t, level)
	n := t.pow(t.Height)
	s := fmt.Sprintf("CAST(least(greatest(floor((CAST((%s) AS DOUBLE) - %s) / %s * %s), 0), %d) AS BIGINT)",
		expr, sqlFloat(lo), sqlFloat(hi-lo), sqlFloat(float64(n)), n-1)
	if d := t.pow(t.Height - level); d > 1 {
		s = fmt.Sprintf("(%s // %d)", s, d)
	}
	return s
}

func mustNodeArgs(lo, hi float64, t Tree, level int) {
	if err := firstErr(t.Validate(), checkBounds(lo, hi)); err != nil {
		panic("dp: " + err.Error())
	}
	if level < 1 || level > t.Height {
		panic(fmt.Sprintf("dp: level is %d, must be in [1, %d]", level, t.Height))
	}
}

// sqlFloat writes x as a DuckDB DOUBLE literal that parses back to exactly x. (A bare 0.1 would
// be a DECIMAL, whose conversion to DOUBLE is not correctly rounded for long literals.)
func sqlFloat(x float64) string {
	return "CAST('" + strconv.FormatFloat(x, 'g', -1, 64) + "' AS DOUBLE)"
}
