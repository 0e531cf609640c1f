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
	vals, _, r, err := quantiles(ranks, counts, t, lo, hi, bnd, b, 0)
	if err != nil {
		return nil, Released{}, fmt.Errorf("dp.Quantiles: %w", err)
	}
	return vals, r, nil
}

// QuantilesWithIntervals is Quantiles with, for each rank q, an interval that holds the exact
// quantile_cont at q of the bounded values with probability at least confidence. It is
// post-processing of the same noisy tree (no budget beyond Quantiles'): the noisy counts of the
// nodes tiling [lo, b), minus q times the noisy total, estimate how many values lie below a
// node boundary b minus q times how many there are, with an error that is a sum of at most
// B + (B−1)(k−1) node noises, bounded by QuantileRankError. The interval's ends are the
// boundaries where that estimate crosses ∓(2 + the bound), found level by level down to level
// k, the first level with at least 256 nodes (or Height); see quantileTree.interval for why
// each side fails with probability at most (1 − confidence)/2. It is widened by one leaf for
// the tree's floating-point bucketing and to include the released value, lies in [lo, hi], and
// has the resolution of the level-k nodes, (hi − lo)/B^k. It noises at most B more nodes per
// level and side than the search does.
func QuantilesWithIntervals(ranks []float64, counts func(level int, index int64) int64, t Tree, lo, hi float64, bnd Bounding, b Budget, confidence float64) ([]float64, []Interval, Released, error) {
	if err := checkConfidence(confidence); err != nil {
		return nil, nil, Released{}, fmt.Errorf("dp.QuantilesWithIntervals: %w", err)
	}
	vals, cis, r, err := quantiles(ranks, counts, t, lo, hi, bnd, b, confidence)
	if err != nil {
		return nil, nil, Released{}, fmt.Errorf("dp.QuantilesWithIntervals: %w", err)
	}
	return vals, cis, r, nil
}

// QuantileRankError is the bound QuantilesWithIntervals puts on the error of its noisy
// estimate of how many values lie below a node boundary, minus rank times the total: at any
// one boundary the estimate is off by more than this with probability at most
// (1 − confidence)/(2k), k the interval level. It depends on the tree, the rank, the
// bounding and the budget only, so it may be published: a quantile's interval brackets the
// values whose rank among the group's is within about this many of the quantile's.
func QuantileRankError(t Tree, rank float64, bnd Bounding, b Budget, confidence float64) (float64, error) {
	if err := firstErr(b.Validate(), bnd.Validate(), t.Validate(), checkConfidence(confidence)); err != nil {
		return 0, fmt.Errorf("dp.QuantileRankError: %w", err)
	}
	if !(rank >= 0 && rank <= 1) {
		return 0, fmt.Errorf("dp.QuantileRankError: %w", argErr("rank", "is %v, must be in [0, 1]", rank))
	}
	l0, err := mulSens(int64(t.Height), bnd.MaxGroups, "bounding.MaxGroups")
	if err != nil {
		return 0, fmt.Errorf("dp.QuantileRankError: %w", err)
	}
	m := ChooseMechanism(b)
	return rankBound(t, rank, m, m.scale(l0, float64(bnd.MaxContributionsPerGroup), b), (1-confidence)/float64(2*t.intervalLevel())), nil
}

func quantiles(ranks []float64, counts func(level int, index int64) int64, t Tree, lo, hi float64, bnd Bounding, b Budget, confidence float64) ([]float64, []Interval, Released, error) {
	if err := firstErr(b.Validate(), bnd.Validate(), t.Validate(), checkBounds(lo, hi)); err != nil {
		return nil, nil, Released{}, err
	}
	if counts == nil {
		return nil, nil, Released{}, argErr("counts", "is nil")
	}
	for i, r := range ranks {
		if !(r >= 0 && r <= 1) {
			return nil, nil, Released{}, argErr("ranks["+strconv.Itoa(i)+"]", "is %v, must be in [0, 1]", r)
		}
	}
	l0, err := mulSens(int64(t.Height), bnd.MaxGroups, "bounding.MaxGroups")
	if err != nil {
		return nil, nil, Released{}, err
	}
	if err := checkSensitivity(l0, bnd.MaxContributionsPerGroup, "bounding"); err != nil {
		return nil, nil, Released{}, err
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
			return nil, nil, Released{}, fmt.Errorf("noise: %w", err)
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
	r := Released{
		Mechanism: m,
		Budget:    b,
		L0:        float64(l0),
		LInf:      q.lInf,
		Scale:     m.scale(l0, q.lInf, b),
		Unit:      1,
	}
	if confidence == 0 {
		return out, nil, r, nil
	}
	cis := make([]Interval, len(ranks))
	for i, rank := range ranks {
		ci, err := q.interval(rank, rankBound(t, rank, m, r.Scale, (1-confidence)/float64(2*t.intervalLevel())))
		if err != nil {
			return nil, nil, Released{}, fmt.Errorf("noise: %w", err)
		}
		cis[i] = Interval{Lower: math.Min(ci.Lower, out[i]), Upper: math.Max(ci.Upper, out[i])}
	}
	return out, cis, r, nil
}

// intervalLevel is the tree level whose node boundaries a quantile's interval is read at: the
// first with at least 256 nodes, or the leaves.
func (t Tree) intervalLevel() int {
	for k := 1; k < t.Height; k++ {
		if t.pow(k) >= 256 {
			return k
		}
	}
	return t.Height
}

// rankBound bounds, at one-sided level alpha, the noise in the estimate D̂(b) = Ĉ(b) − rank·N̂
// of a boundary b at the interval level k: Ĉ(b) sums the noisy nodes that tile [lo, b) (at most
// B − 1 per level, levels 1..k) and N̂ the B noisy level-1 nodes, so the error is Σ aᵢZᵢ over
// i.i.d. node noises Zᵢ with weights 1 − rank (level-1 nodes below b), −rank (level-1 nodes
// above) and 1 (deeper nodes). The bound is the largest over every boundary's weights.
// Laplace (scale b): the Chernoff bound min over λ of (ln(1/alpha) − Σ ln(1 − λ²b²aᵢ²))/λ,
// sound for the library's discretised Laplace up to the margin added. Gaussian (σ): the normal
// quantile of σ·√Σaᵢ², as the library's own intervals use.
func rankBound(t Tree, rank float64, m Mechanism, scale, alpha float64) float64 {
	B, k := t.Branching, t.intervalLevel()
	deeper := float64((B - 1) * (k - 1))
	worst := 0.0
	for below := 0; below <= B; below++ {
		w := []weight{{1 - rank, float64(below)}, {rank, float64(B - below)}}
		if below < B { // the boundary hi has no deeper nodes
			w = append(w, weight{1, deeper})
		}
		worst = math.Max(worst, tailBound(w, m, scale*(1+1e-6), alpha))
	}
	return worst
}

// weight is a noise weight and how many noises carry it.
type weight struct{ w, n float64 }

// tailBound is a t with P(Σ wᵢZᵢ > t) ≤ alpha for i.i.d. noises of the mechanism and scale
// (symmetric, so the lower tail is the same). The factor 1 + 10⁻⁶ rankBound puts on the
// scale covers the library's discretisation: its Laplace noise is within one granularity
// (≤ scale·2⁻⁴⁰) of a continuous one of scale (1 + 2⁻⁴⁰)·b.
func tailBound(ws []weight, m Mechanism, scale, alpha float64) float64 {
	sumSq, maxW := 0.0, 0.0
	for _, x := range ws {
		if x.n > 0 {
			sumSq += x.n * x.w * x.w
			maxW = math.Max(maxW, math.Abs(x.w))
		}
	}
	if sumSq == 0 {
		return 0
	}
	if m == Gaussian {
		return scale * math.Sqrt(sumSq) * math.Sqrt2 * math.Erfinv(1-2*alpha)
	}
	// Laplace: E[e^{λZ}] = 1/(1 − λ²b²) for |λ|b < 1, so P(Σ wᵢZᵢ > t) ≤
	// e^{−λt}·Π 1/(1 − λ²b²wᵢ²); the t making it alpha, minimised over λ = u/(b·maxW) with u in
	// (0, 1) by golden-section search (the log-MGF is convex in λ).
	f := func(u float64) float64 {
		lambda := u / (scale * maxW)
		s := math.Log(1 / alpha)
		for _, x := range ws {
			if x.n > 0 {
				s -= x.n * math.Log1p(-lambda*lambda*scale*scale*x.w*x.w)
			}
		}
		return s / lambda
	}
	a, c := 1e-9, 1-1e-12
	const g = 0.6180339887498949
	x1, x2 := c-g*(c-a), a+g*(c-a)
	f1, f2 := f(x1), f(x2)
	for range 100 {
		if f1 < f2 {
			c, x2, f2 = x2, x1, f1
			x1 = c - g*(c-a)
			f1 = f(x1)
		} else {
			a, x1, f1 = x1, x2, f2
			x2 = a + g*(c-a)
			f2 = f(x2)
		}
	}
	return math.Min(f1, f2)
}

// interval reads the noisy tree down to the interval level k (see QuantilesWithIntervals).
// With D̂(j) = Ĉ(b_j) − rank·N̂ at the level-k boundaries b_j and tb the noise bound, the lower
// end is found level by level: at level 1 the first boundary whose D̂ exceeds −2 − tb, then
// among the level-2 boundaries inside the level-1 node before it the first that does, and so
// on to level k; the lower end is the boundary before the last one found. The upper end
// mirrors it from the right with D̂ < 2 + tb. Each level's choice is wrong only if the noise
// at one boundary that the data fixes (the one after the last with D ≤ −2, or before the
// first with D ≥ 2; D rises with b) exceeds tb, so each side fails with probability at most
// k times the per-boundary level (rankBound's alpha, (1−confidence)/(2k)). The margins of 2
// make the ends hold for quantile_cont's interpolation between neighbouring order
// statistics: fewer than q(N−1) − 1 values below b put the quantile at or above b; at least
// q(N−1) + 2 put it below. Only the level-1 nodes and, per level and side, the B children of
// one node are noised.
func (q *quantileTree) interval(rank, tb float64) (Interval, error) {
	k := q.t.intervalLevel()
	M := q.t.pow(k)
	B := int64(q.t.Branching)
	total := 0.0
	for i := range B {
		c, err := q.count(node{1, i})
		if err != nil {
			return Interval{}, err
		}
		total += c
	}
	// d(j) is D̂ at level-k boundary j: the noisy nodes tiling [0, j) at levels 1..k, minus
	// rank times the total.
	d := func(j int64) (float64, error) {
		if j == M {
			return total - rank*total, nil
		}
		sum := 0.0
		for level := 1; level <= k; level++ {
			prefix := j / q.t.pow(k-level+1) // the level-(level−1) ancestor's index
			digit := j / q.t.pow(k-level) % B
			for dg := int64(0); dg < digit; dg++ {
				c, err := q.count(node{level, prefix*B + dg})
				if err != nil {
					return 0, err
				}
				sum += c
			}
		}
		return sum - rank*total, nil
	}
	step := func(level int) int64 { return q.t.pow(k - level) } // boundary spacing, level-k units
	width := (q.hi - q.lo) / float64(M)
	leaf := (q.hi - q.lo) / float64(q.t.pow(q.t.Height))
	lower, upper := q.lo, q.hi // also what a search that finds no crossing gives

	// Lower end.
	first := int64(-1)
	for j := int64(0); j <= M; j += step(1) {
		v, err := d(j)
		if err != nil {
			return Interval{}, err
		}
		if v > -2-tb {
			first = j
			break
		}
	}
	if first > 0 {
		a := first - step(1) // the last level-1 boundary below the crossing
		for level := 2; level <= k; level++ {
			for i := int64(1); i <= B; i++ {
				j := a + i*step(level)
				v, err := d(j)
				if err != nil {
					return Interval{}, err
				}
				if v > -2-tb || i == B { // i == B is the boundary that crossed a level up
					a = j - step(level)
					break
				}
			}
		}
		lower = q.lo + float64(a)*width - leaf
	}

	// Upper end.
	last := int64(-1)
	for j := M; j >= 0; j -= step(1) {
		v, err := d(j)
		if err != nil {
			return Interval{}, err
		}
		if v < 2+tb {
			last = j
			break
		}
	}
	if last >= 0 && last < M {
		c := last + step(1) // the first level-1 boundary above the crossing
		for level := 2; level <= k; level++ {
			for i := int64(1); i <= B; i++ {
				j := c - i*step(level)
				v, err := d(j)
				if err != nil {
					return Interval{}, err
				}
				if v < 2+tb || i == B {
					c = j + step(level)
					break
				}
			}
		}
		upper = q.lo + float64(c)*width + leaf
	}
	lower, upper = clamp(lower, q.lo, q.hi), clamp(upper, q.lo, q.hi)
	if lower > upper {
		lower, upper = upper, lower
	}
	return Interval{Lower: lower, Upper: upper}, nil
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

// IntegerNodeSQL returns an expression computing NodeOf(v, lo, hi, t, level) for a v of an
// integer SQL type (SMALLINT to BIGINT, or NULL) in integer arithmetic, with div(a, b) the
// engine's integer division of non-negative BIGINTs; ok is false where it does not apply, and
// NodeSQL is then the expression:
//
//	CASE WHEN v <= lo THEN 0 WHEN v >= hi THEN N−1 ELSE div((CAST(v AS BIGINT) − lo)·N, hi − lo) END
//
// (then div(…, D) for a level above the leaves). It applies when lo and hi are whole numbers,
// N = Branching^Height is a power of two and (hi − lo)·N < 2⁵³. Then it equals NodeOf on every
// integer v: below lo and above hi both clamp; within, with w = hi − lo and r = (v − lo)·N/w,
// NodeOf's (v − lo)/w is within a relative 2⁻⁵³ of r/N (exact when r is a whole number, since
// r/N is then a dyadic rational of fewer than 53 bits) and its product by N is exact, so it is
// within r·2⁻⁵³ < N·2⁻⁵³ < 1/w of r, while a non-whole r is at least 1/w from every whole
// number: both floors are ⌊r⌋. A NULL v gives NULL (every WHEN is unknown). DuckDB computes
// it about twice as fast as NodeSQL's doubles.
func IntegerNodeSQL(v string, lo, hi float64, t Tree, level int, div func(a, b string) string) (expr string, ok bool) {
	mustNodeArgs(lo, hi, t, level)
	n := t.pow(t.Height)
	w := hi - lo
	if lo != math.Trunc(lo) || hi != math.Trunc(hi) || n&(n-1) != 0 || w*float64(n) >= 1<<53 ||
		math.Abs(lo) >= 1<<53 || math.Abs(hi) >= 1<<53 {
		return "", false
	}
	l, h := strconv.FormatInt(int64(lo), 10), strconv.FormatInt(int64(hi), 10)
	s := fmt.Sprintf("CASE WHEN %s <= %s THEN 0 WHEN %s >= %s THEN %d ELSE %s END", v, l, v, h, n-1,
		div(fmt.Sprintf("(CAST(%s AS BIGINT) - (%s)) * %d", v, l, n), strconv.FormatInt(int64(w), 10)))
	if d := t.pow(t.Height - level); d > 1 {
		s = div("("+s+")", strconv.FormatInt(d, 10))
	}
	return s, true
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
