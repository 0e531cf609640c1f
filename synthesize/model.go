package synthesize

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Measurement is one noisy marginal: the exact counts over Attrs plus independent Gaussian
// noise of standard deviation Sigma in every cell. Rho is its zCDP cost.
type Measurement struct {
	Attrs []int
	Noisy *Factor
	Sigma float64
	Rho   float64

	// varScale, when not nil, multiplies the noise variance per cell (a cell that sums
	// several noisy cells, after domain compression).
	varScale []float64
	// onCompressed: Noisy is over the compressed domain of the Result's compression.
	onCompressed bool
}

// junctionTree is a tree of the maximal cliques of a triangulation of the graph that links
// the attributes measured together. Every attribute of the domain is in some clique.
type junctionTree struct {
	cliques [][]int // sorted attributes of each maximal clique
	parent  []int   // parent clique, −1 for the root
	order   []int   // breadth-first order from the root (parents before children)
	sep     [][]int // separator with the parent (sorted; empty for the root or across components)
}

// buildJunctionTree triangulates the graph whose edges join attributes that appear together
// in one of the given sets (plus every attribute alone) by greedy elimination (each step
// removes the attribute whose elimination clique has the fewest cells), keeps the maximal
// elimination cliques and joins them by a maximum spanning tree on separator size, which for
// the cliques of a chordal graph is a junction tree (running intersection property).
func buildJunctionTree(d Domain, sets [][]int) *junctionTree {
	n := len(d.Sizes)
	adj := make([]map[int]bool, n)
	for i := range adj {
		adj[i] = map[int]bool{}
	}
	for _, s := range sets {
		for _, a := range s {
			for _, b := range s {
				if a != b {
					adj[a][b] = true
				}
			}
		}
	}
	eliminated := make([]bool, n)
	var cliques [][]int
	for range n {
		best, bestCost := -1, math.Inf(1)
		for v := range n {
			if eliminated[v] {
				continue
			}
			cost := float64(d.Sizes[v])
			for u := range adj[v] {
				cost *= float64(d.Sizes[u])
			}
			if cost < bestCost {
				best, bestCost = v, cost
			}
		}
		cl := []int{best}
		for u := range adj[best] {
			cl = append(cl, u)
		}
		slices.Sort(cl)
		cliques = append(cliques, cl)
		for _, a := range cl {
			for _, b := range cl {
				if a != b && a != best && b != best {
					adj[a][b] = true
				}
			}
		}
		for u := range adj[best] {
			delete(adj[u], best)
		}
		adj[best] = nil
		eliminated[best] = true
	}
	// keep maximal cliques
	var maximal [][]int
	for i, c := range cliques {
		dominated := false
		for j, o := range cliques {
			if i != j && len(o) >= len(c) && isSubset(c, o) && (len(o) > len(c) || j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			maximal = append(maximal, c)
		}
	}
	// maximum spanning tree (Kruskal) on |Ci ∩ Cj|; weight-0 edges join components.
	type edge struct{ i, j, w int }
	var edges []edge
	for i := range maximal {
		for j := i + 1; j < len(maximal); j++ {
			edges = append(edges, edge{i, j, len(intersect(maximal[i], maximal[j]))})
		}
	}
	sort.SliceStable(edges, func(a, b int) bool { return edges[a].w > edges[b].w })
	root := make([]int, len(maximal))
	for i := range root {
		root[i] = i
	}
	var find func(int) int
	find = func(x int) int {
		for root[x] != x {
			root[x] = root[root[x]]
			x = root[x]
		}
		return x
	}
	nbr := make([][]int, len(maximal))
	for _, e := range edges {
		a, b := find(e.i), find(e.j)
		if a == b {
			continue
		}
		root[a] = b
		nbr[e.i] = append(nbr[e.i], e.j)
		nbr[e.j] = append(nbr[e.j], e.i)
	}
	jt := &junctionTree{cliques: maximal, parent: make([]int, len(maximal)), sep: make([][]int, len(maximal))}
	seen := make([]bool, len(maximal))
	jt.parent[0] = -1
	seen[0] = true
	queue := []int{0}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		jt.order = append(jt.order, c)
		for _, x := range nbr[c] {
			if !seen[x] {
				seen[x] = true
				jt.parent[x] = c
				jt.sep[x] = intersect(maximal[x], maximal[c])
				queue = append(queue, x)
			}
		}
	}
	return jt
}

func intersect(a, b []int) []int {
	out := []int{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// modelCells is the number of cells of the junction tree's cliques: the model's size.
func modelCells(d Domain, sets [][]int) float64 {
	jt := buildJunctionTree(d, sets)
	s := 0.0
	for _, c := range jt.cliques {
		s += d.size(c)
	}
	return s
}

// Model is a graphical model over the domain: log-potentials on the cliques of a junction
// tree, fitted to noisy measurements (Private-PGM, McKenna, Sheldon and Miklau 2019). Its
// memory is the cells of its cliques; it holds nothing per row of the source.
type Model struct {
	Domain    Domain
	Total     float64 // estimated number of rows
	jt        *junctionTree
	theta     []*Factor // log-potentials per clique
	marginals []*Factor // calibrated clique marginals (counts, summing to Total)

	// index maps, per clique: cells → separator with parent (in the clique), and parent's
	// cells → the same separator.
	toSep       [][]int32
	parentToSep [][]int32
}

// newModel allocates a model whose junction tree covers the sets.
func newModel(d Domain, sets [][]int) (*Model, error) {
	jt := buildJunctionTree(d, sets)
	m := &Model{Domain: d, jt: jt}
	for _, c := range jt.cliques {
		f, err := NewFactor(d, c)
		if err != nil {
			return nil, fmt.Errorf("synthesize: the model's clique %v is too large: %w", d.names(c), err)
		}
		m.theta = append(m.theta, f)
	}
	m.toSep = make([][]int32, len(jt.cliques))
	m.parentToSep = make([][]int32, len(jt.cliques))
	for i, p := range jt.parent {
		if p >= 0 {
			m.toSep[i] = m.theta[i].subIndex(jt.sep[i])
			m.parentToSep[i] = m.theta[p].subIndex(jt.sep[i])
		}
	}
	return m, nil
}

// cliqueOf is the first clique containing attrs.
func (m *Model) cliqueOf(attrs []int) int {
	for i, c := range m.jt.cliques {
		if isSubset(attrs, c) {
			return i
		}
	}
	return -1
}

// propagate runs sum-product belief propagation (log space) on the junction tree with the
// potentials theta and returns the clique marginals scaled to total.
func (m *Model) propagate(theta []*Factor, total float64) []*Factor {
	jt := m.jt
	k := len(jt.cliques)
	up := make([]*Factor, k)   // message from clique to its parent
	down := make([]*Factor, k) // message from parent to clique
	belief := make([]*Factor, k)
	// upward: children before parents
	upBelief := make([]*Factor, k)
	for i := range k {
		upBelief[i] = theta[i].Clone()
	}
	for x := k - 1; x >= 0; x-- {
		c := jt.order[x]
		p := jt.parent[c]
		if p < 0 {
			continue
		}
		up[c] = upBelief[c].logSumExpProject(jt.sep[c], m.toSep[c])
		pv := upBelief[p].Values
		for cell, t := range m.parentToSep[c] {
			pv[cell] += up[c].Values[t]
		}
	}
	// downward: parents before children; upBelief[root] is the root's full belief
	for _, c := range jt.order {
		p := jt.parent[c]
		if p < 0 {
			belief[c] = upBelief[c]
			continue
		}
		// parent's belief without the child's own message
		pb := belief[p].Clone()
		for cell, t := range m.parentToSep[c] {
			pb.Values[cell] -= up[c].Values[t]
		}
		down[c] = pb.logSumExpProject(jt.sep[c], m.parentToSep[c])
		b := upBelief[c]
		for cell, t := range m.toSep[c] {
			b.Values[cell] += down[c].Values[t]
		}
		belief[c] = b
	}
	out := make([]*Factor, k)
	for i, b := range belief {
		mx := math.Inf(-1)
		for _, v := range b.Values {
			mx = math.Max(mx, v)
		}
		s := 0.0
		for _, v := range b.Values {
			s += math.Exp(v - mx)
		}
		lz := mx + math.Log(s)
		f := &Factor{Attrs: b.Attrs, Shape: b.Shape, Values: make([]float64, len(b.Values))}
		for j, v := range b.Values {
			f.Values[j] = total * math.Exp(v-lz)
		}
		out[i] = f
	}
	return out
}

// Project is the model's marginal over attrs. attrs must lie within one clique of the model
// (every measured set does); otherwise Project returns an error.
func (m *Model) Project(attrs []int) (*Factor, error) {
	s := slices.Clone(attrs)
	slices.Sort(s)
	i := m.cliqueOf(s)
	if i < 0 {
		return m.projectOutOfClique(s)
	}
	return m.marginals[i].Project(s)
}

// projectOutOfClique computes a marginal over attributes spread over several cliques by
// exact variable elimination on the junction tree. The model's distribution is
// Π_C μ_C / Π_S μ_S (clique marginals over separator marginals, normalised). From the leaves
// up, each clique multiplies its marginal by its children's messages, sums out every
// attribute that is neither wanted nor in its separator with its parent (by the running
// intersection property such an attribute appears nowhere else), and divides by its
// separator's marginal. Subtrees without a wanted attribute contribute a factor of one and are
// skipped. Memory is at most a clique's cells times the wanted marginal's cells.
func (m *Model) projectOutOfClique(attrs []int) (*Factor, error) {
	jt := m.jt
	k := len(jt.cliques)
	relevant := make([]bool, k)
	for x := k - 1; x >= 0; x-- {
		c := jt.order[x]
		if len(intersect(jt.cliques[c], attrs)) > 0 {
			relevant[c] = true
		}
		if relevant[c] && jt.parent[c] >= 0 {
			relevant[jt.parent[c]] = true
		}
	}
	msgs := make([]*Factor, k)
	for x := k - 1; x >= 0; x-- {
		c := jt.order[x]
		if !relevant[c] {
			continue
		}
		f := m.marginals[c].Clone()
		for i := range f.Values {
			f.Values[i] /= m.Total
		}
		for y := k - 1; y > x; y-- {
			ch := jt.order[y]
			if jt.parent[ch] == c && msgs[ch] != nil {
				var err error
				if f, err = product(m.Domain, f, msgs[ch]); err != nil {
					return nil, err
				}
				msgs[ch] = nil
			}
		}
		keep := []int{}
		for _, a := range f.Attrs {
			if slices.Contains(attrs, a) || (jt.parent[c] >= 0 && slices.Contains(jt.sep[c], a)) {
				keep = append(keep, a)
			}
		}
		g, err := f.Project(keep)
		if err != nil {
			return nil, err
		}
		if jt.parent[c] >= 0 && len(jt.sep[c]) > 0 {
			sepm, err := m.marginals[c].Project(jt.sep[c])
			if err != nil {
				return nil, err
			}
			for i := range sepm.Values {
				sepm.Values[i] /= m.Total
			}
			for cell, t := range g.subIndex(jt.sep[c]) {
				if sepm.Values[t] > 0 {
					g.Values[cell] /= sepm.Values[t]
				} else {
					g.Values[cell] = 0
				}
			}
		}
		msgs[c] = g
	}
	root := jt.order[0]
	out, err := msgs[root].Project(attrs)
	if err != nil {
		return nil, err
	}
	for i := range out.Values {
		out.Values[i] *= m.Total
	}
	return out, nil
}

// product multiplies two factors into one over the union of their attributes.
func product(d Domain, a, b *Factor) (*Factor, error) {
	u := slices.Clone(a.Attrs)
	for _, x := range b.Attrs {
		if !slices.Contains(u, x) {
			u = append(u, x)
		}
	}
	f, err := NewFactor(d, u)
	if err != nil {
		return nil, err
	}
	ia, ib := f.subIndex(a.Attrs), f.subIndex(b.Attrs)
	for c := range f.Values {
		f.Values[c] = a.Values[ia[c]] * b.Values[ib[c]]
	}
	return f, nil
}

// fitOptions control mirror descent.
type fitOptions struct {
	iters int
}

// estimateTotal is the inverse-variance weighted mean of the measurements' noisy totals
// (each an unbiased estimate of the row count with variance σ²·cells), at least 1.
func estimateTotal(ms []Measurement) float64 {
	num, den := 0.0, 0.0
	for _, mm := range ms {
		v := mm.Sigma * mm.Sigma * float64(len(mm.Noisy.Values))
		if mm.varScale != nil {
			v = 0
			for _, x := range mm.varScale {
				v += mm.Sigma * mm.Sigma * x
			}
		}
		num += mm.Noisy.Sum() / v
		den += 1 / v
	}
	if den == 0 {
		return 1
	}
	return math.Max(1, num/den)
}

// fit estimates a model over the junction tree of the measured sets (plus extra sets, whose
// cliques the model must contain) minimising Σ ‖(μ_r − y_r)/σ_r‖²/2 over the model's
// marginals μ by mirror descent on the log-potentials with an Armijo line search (Private-PGM's
// FactoredInference, "MD"). warm, when not nil, is a previous model whose potentials
// initialise those cliques of the new tree that contain a previous clique.
func fit(d Domain, ms []Measurement, extra [][]int, warm *Model, opt fitOptions) (*Model, error) {
	sets := make([][]int, 0, len(ms)+len(extra))
	for _, mm := range ms {
		sets = append(sets, mm.Attrs)
	}
	sets = append(sets, extra...)
	m, err := newModel(d, sets)
	if err != nil {
		return nil, err
	}
	m.Total = estimateTotal(ms)
	if warm != nil {
		for j, wc := range warm.jt.cliques {
			if i := m.cliqueOf(wc); i >= 0 {
				idx := m.theta[i].subIndex(wc)
				for cell, t := range idx {
					m.theta[i].Values[cell] += warm.theta[j].Values[t]
				}
			}
		}
	}
	// per measurement: its clique and the clique-cell → measurement-cell map
	type bound struct {
		clique int
		idx    []int32
	}
	bs := make([]bound, len(ms))
	for r, mm := range ms {
		i := m.cliqueOf(mm.Noisy.Attrs)
		bs[r] = bound{i, m.theta[i].subIndex(mm.Noisy.Attrs)}
	}
	lossGrad := func(mu []*Factor) (float64, []*Factor) {
		loss := 0.0
		grad := make([]*Factor, len(mu))
		for i, f := range mu {
			grad[i] = &Factor{Attrs: f.Attrs, Shape: f.Shape, Values: make([]float64, len(f.Values))}
		}
		for r, mm := range ms {
			b := bs[r]
			proj := make([]float64, len(mm.Noisy.Values))
			for cell, t := range b.idx {
				proj[t] += mu[b.clique].Values[cell]
			}
			w := 1 / (mm.Sigma * mm.Sigma)
			diff := make([]float64, len(proj))
			for t := range proj {
				wt := w
				if mm.varScale != nil {
					wt /= mm.varScale[t]
				}
				diff[t] = wt * (proj[t] - mm.Noisy.Values[t])
				loss += 0.5 * diff[t] * (proj[t] - mm.Noisy.Values[t])
			}
			g := grad[b.clique].Values
			for cell, t := range b.idx {
				g[cell] += diff[t]
			}
		}
		return loss, grad
	}
	mu := m.propagate(m.theta, m.Total)
	loss, grad := lossGrad(mu)
	alpha := 1 / (m.Total * m.Total)
	for range opt.iters {
		alpha *= 2
		var nTheta, nMu []*Factor
		var nLoss float64
		var nGrad []*Factor
		for range 25 {
			nTheta = make([]*Factor, len(m.theta))
			for i, t := range m.theta {
				f := t.Clone()
				for c := range f.Values {
					f.Values[c] -= alpha * grad[i].Values[c]
				}
				nTheta[i] = f
			}
			nMu = m.propagate(nTheta, m.Total)
			nLoss, nGrad = lossGrad(nMu)
			dot := 0.0
			for i := range grad {
				for c := range grad[i].Values {
					dot += grad[i].Values[c] * (mu[i].Values[c] - nMu[i].Values[c])
				}
			}
			if loss-nLoss >= 0.5*alpha*dot {
				break
			}
			alpha *= 0.5
		}
		m.theta, mu, loss, grad = nTheta, nMu, nLoss, nGrad
	}
	m.marginals = mu
	return m, nil
}
