package synthesize

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestProjectMatchesCounting(t *testing.T) {
	tab := plantedTable(2000, 7)
	full, err := tab.Marginal([]int{0, 2, 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range [][]int{{0}, {2}, {5}, {0, 2}, {0, 5}, {2, 5}, {5, 0}} {
		p, err := full.Project(sub)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tab.Marginal(sub)
		if !slices.Equal(p.Values, want.Values) || !slices.Equal(p.Attrs, want.Attrs) {
			t.Errorf("projection onto %v differs from counting", sub)
		}
	}
	if _, err := full.Project([]int{1}); err == nil {
		t.Error("projection onto an attribute outside the table was accepted")
	}
}

// bruteForce enumerates every cell of the domain and returns the normalised joint
// exp(Σ θ_C) as a factor over all attributes.
func bruteForce(t *testing.T, m *Model, theta []*Factor) *Factor {
	t.Helper()
	all := make([]int, len(m.Domain.Sizes))
	for i := range all {
		all[i] = i
	}
	joint, err := NewFactor(m.Domain, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range theta {
		for cell, c := range joint.subIndex(th.Attrs) {
			joint.Values[cell] += th.Values[c]
		}
	}
	s := 0.0
	for i, v := range joint.Values {
		joint.Values[i] = math.Exp(v)
		s += joint.Values[i]
	}
	for i := range joint.Values {
		joint.Values[i] /= s
	}
	return joint
}

// TestBeliefPropagationExact: on a graph with a cycle (so triangulation adds a fill edge) and
// a separate component, the calibrated clique marginals and marginals across cliques equal the
// brute-force joint's.
func TestBeliefPropagationExact(t *testing.T) {
	d := Domain{Names: []string{"a", "b", "c", "d", "e", "f"}, Sizes: []int{2, 3, 2, 3, 2, 4}}
	sets := [][]int{{0, 1}, {1, 2}, {2, 3}, {3, 0}, {3, 4}, {5}}
	m, err := newModel(d, sets)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, th := range m.theta {
		for i := range th.Values {
			th.Values[i] = 2 * r.NormFloat64()
		}
	}
	m.Total = 1000
	m.marginals = m.propagate(m.theta, m.Total)
	joint := bruteForce(t, m, m.theta)
	for i, c := range m.jt.cliques {
		want, _ := joint.Project(c)
		for j := range want.Values {
			if math.Abs(m.marginals[i].Values[j]/m.Total-want.Values[j]) > 1e-9 {
				t.Fatalf("clique %v cell %d: BP %v, brute force %v", c, j, m.marginals[i].Values[j]/m.Total, want.Values[j])
			}
		}
	}
	for _, s := range [][]int{{0, 4}, {1, 3}, {0, 5}, {1, 4, 5}, {0, 2, 4}, {2}, {0, 1, 2, 3, 4, 5}} {
		got, err := m.Project(s)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := joint.Project(s)
		for j := range want.Values {
			if math.Abs(got.Values[j]/m.Total-want.Values[j]) > 1e-9 {
				t.Fatalf("marginal %v cell %d: model %v, brute force %v", s, j, got.Values[j]/m.Total, want.Values[j])
			}
		}
	}
	// the junction tree has the running intersection property: every attribute's cliques are
	// connected, i.e. each clique containing it other than the topmost has its parent
	// containing it too.
	for a := range d.Sizes {
		tops := 0
		for i, c := range m.jt.cliques {
			if slices.Contains(c, a) && (m.jt.parent[i] < 0 || !slices.Contains(m.jt.cliques[m.jt.parent[i]], a)) {
				tops++
			}
		}
		if tops != 1 {
			t.Errorf("attribute %d's cliques form %d subtrees", a, tops)
		}
	}
}

// TestFitMatchesConsistentMeasurements: noise-free measurements of a table's 1-ways and of a
// tree of 2-ways are consistent, and the fitted model reproduces them.
func TestFitMatchesConsistentMeasurements(t *testing.T) {
	tab := plantedTable(20000, 11)
	var ms []Measurement
	for _, s := range [][]int{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {0, 1}, {2, 3}, {4, 5}, {1, 7}, {1, 2}, {5, 6}, {3, 4}} {
		f, _ := tab.Marginal(s)
		ms = append(ms, Measurement{Attrs: f.Attrs, Noisy: f, Sigma: 1})
	}
	m, err := fit(tab.Domain, ms, nil, nil, fitOptions{iters: 500})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Total-20000) > 1e-6 {
		t.Errorf("estimated total %v, want 20000", m.Total)
	}
	for _, mm := range ms {
		p, err := m.Project(mm.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		if tv := TVD(p.Values, mm.Noisy.Values); tv > 0.002 {
			t.Errorf("model marginal %v is %v from its measurement", mm.Attrs, tv)
		}
	}
}

func TestSampleDeterministicAndFaithful(t *testing.T) {
	tab := plantedTable(20000, 5)
	var ms []Measurement
	for _, s := range [][]int{{0, 1}, {1, 7}, {2, 3}, {4, 5}, {6}} {
		f, _ := tab.Marginal(s)
		ms = append(ms, Measurement{Attrs: f.Attrs, Noisy: f, Sigma: 1})
	}
	m, err := fit(tab.Domain, ms, nil, nil, fitOptions{iters: 300})
	if err != nil {
		t.Fatal(err)
	}
	seed := [32]byte{1, 2, 3}
	a, err := m.Sample(30000, seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Sample(30000, seed)
	for i := range a.Columns {
		if !slices.Equal(a.Columns[i], b.Columns[i]) {
			t.Fatalf("column %d differs between two samples with the same seed", i)
		}
	}
	c, _ := m.Sample(30000, [32]byte{9})
	if slices.Equal(a.Columns[1], c.Columns[1]) {
		t.Error("different seeds gave the same column")
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	// the sample follows the model: rounding keeps each clique's cell counts within one row
	// per separator group of the model's (the model itself is within 0.002 of the
	// measurements, TestFitMatchesConsistentMeasurements), so every measured marginal is
	// within 0.005 (independent draws would give about ½·√(42/30000) ≈ 0.019).
	for _, mm := range ms {
		s, _ := a.Marginal(mm.Attrs)
		if tv := TVD(s.Values, mm.Noisy.Values); tv > 0.005 {
			t.Errorf("sampled marginal %v is %v from the model's", mm.Attrs, tv)
		}
	}
}

// TestModelMemoryBoundedByDomain: the model holds only tables over its cliques: fitting the
// same structure to 1,000 and to 50,000 rows gives the same footprint, bounded by the cliques'
// cells.
func TestModelMemoryBoundedByDomain(t *testing.T) {
	footprint := func(rows int) (int, float64) {
		tab := plantedTable(rows, 2)
		var ms []Measurement
		for _, s := range [][]int{{0, 1}, {1, 7}, {2, 3}, {4, 5}, {6}} {
			f, _ := tab.Marginal(s)
			ms = append(ms, Measurement{Attrs: f.Attrs, Noisy: f, Sigma: 1})
		}
		m, err := fit(tab.Domain, ms, nil, nil, fitOptions{iters: 5})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := range m.theta {
			n += len(m.theta[i].Values) + len(m.marginals[i].Values) + len(m.toSep[i]) + len(m.parentToSep[i])
		}
		cells := 0.0
		for _, c := range m.jt.cliques {
			cells += tab.Domain.size(c)
		}
		return n, cells
	}
	small, cells := footprint(1000)
	large, _ := footprint(50000)
	if small != large {
		t.Errorf("model footprint grows with rows: %d values for 1000 rows, %d for 50000", small, large)
	}
	if float64(large) > 4*cells {
		t.Errorf("model holds %d values for %v clique cells", large, cells)
	}
}

func TestRoundCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 1 + r.IntN(12)
		w := make([]float64, n)
		for i := range w {
			if r.IntN(4) > 0 {
				w[i] = r.Float64() * 10
			}
		}
		if trial%50 == 0 {
			clear(w)
		}
		g := r.IntN(1000)
		c := roundCounts(r, w, g, nil)
		total, sum := 0.0, 0
		for _, x := range w {
			total += x
		}
		for i, x := range c {
			sum += x
			p := 1 / float64(n)
			if total > 0 {
				p = w[i] / total
			}
			if e := p * float64(g); float64(x) < math.Floor(e) || float64(x) > math.Ceil(e) {
				t.Fatalf("weights %v, %d rows: cell %d got %d, expected ⌊%v⌋ or ⌈%v⌉", w, g, i, x, e, e)
			}
		}
		if sum != g {
			t.Fatalf("weights %v: %d rows allocated of %d", w, sum, g)
		}
	}
	// the remainders are drawn with probability ∝ the fractional parts: weights 1.25 and 0.75
	// over 1 row give P(first) = 0.625 (seeded; band of 6 standard errors over 20000 draws)
	first := 0
	for range 20000 {
		if roundCounts(r, []float64{1.25, 0.75}, 1, nil)[0] == 1 {
			first++
		}
	}
	if p := float64(first) / 20000; math.Abs(p-0.625) > 6*math.Sqrt(0.625*0.375/20000) {
		t.Errorf("P(first) = %v, want 0.625", p)
	}
}

func TestFactorIndexCodes(t *testing.T) {
	tab := plantedTable(500, 3)
	f, _ := tab.Marginal([]int{7, 0, 3})
	g, _ := NewFactor(tab.Domain, []int{0, 3, 7})
	for r := range tab.Rows() {
		c := g.Index([]int{int(tab.Columns[0][r]), int(tab.Columns[3][r]), int(tab.Columns[7][r])})
		g.Values[c]++
		if codes := g.Codes(c); codes[0] != int(tab.Columns[0][r]) || codes[1] != int(tab.Columns[3][r]) || codes[2] != int(tab.Columns[7][r]) {
			t.Fatalf("Codes(Index(x)) = %v", codes)
		}
	}
	if !slices.Equal(f.Values, g.Values) {
		t.Error("counts placed with Index differ from Marginal")
	}
	if g.Index([]int{4, 0, 0}) != -1 || g.Index([]int{0, 0}) != -1 {
		t.Error("Index accepted a code outside the domain or a short combination")
	}
}
