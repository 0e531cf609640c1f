package synthesize

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// withCodes adds a 200-category attribute to the planted table: 10 common codes whose choice
// depends on the age band, and 190 rare ones (about 5 rows each out of 50,000).
func withCodes(t *Table, seed uint64) *Table {
	r := rand.New(rand.NewPCG(seed, 9))
	d := Domain{Names: append(slices.Clone(t.Domain.Names), "code"), Sizes: append(slices.Clone(t.Domain.Sizes), 200)}
	col := make([]int32, t.Rows())
	for i := range col {
		if r.Float64() < 0.02 {
			col[i] = int32(10 + r.IntN(190))
		} else {
			age := int(t.Columns[4][i])
			col[i] = int32((age + r.IntN(2)*r.IntN(10)) % 10)
		}
	}
	return &Table{Domain: d, Columns: append(slices.Clone(t.Columns), col)}
}

func TestFoldMatchesRecodedCounts(t *testing.T) {
	tab := withCodes(plantedTable(3000, 1), 1)
	var ones []Measurement
	for a := range tab.Domain.Sizes {
		f, _ := tab.Marginal([]int{a})
		ones = append(ones, Measurement{Attrs: f.Attrs, Noisy: f, Sigma: 10})
	}
	c := newCompression(tab.Domain, ones)
	recoded := &Table{Domain: c.comp, Columns: make([][]int32, len(tab.Columns))}
	for a, col := range tab.Columns {
		recoded.Columns[a] = make([]int32, len(col))
		for r, v := range col {
			recoded.Columns[a][r] = c.toNew[a][v]
		}
	}
	for _, s := range [][]int{{8}, {4, 8}, {0, 1}, {1, 8, 3}} {
		f, _ := tab.Marginal(s)
		got, err := c.fold(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := recoded.Marginal(s)
		if !slices.Equal(got.Values, want.Values) {
			t.Errorf("folding the marginal over %v differs from counting recoded rows", s)
		}
	}
	if got := c.comp.Sizes[8]; got >= 200 {
		t.Errorf("no codes merged: %d categories left", got)
	}
}

func TestMSTCompressesRareCategories(t *testing.T) {
	real := withCodes(plantedTable(50000, 42), 4)
	b, _ := NewBudget(1, 1e-6)
	res, err := MST(real.Domain, real, b.Rho, Options{noise: newSeededNoise(8), SelectionIterations: 100, Iterations: 400})
	if err != nil {
		t.Fatal(err)
	}
	code := res.Compression[8]
	t.Logf("code: %d kept, %d merged", len(code.Kept), len(code.Merged))
	// common codes have about 4900 rows, rare ones about 5, and σ ≈ 24 (ρ/3 over 9 1-way
	// marginals): every common code is kept and every rare one merged (3σ ≈ 72)
	if !slices.Equal(code.Kept, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) || len(code.Merged) != 190 {
		t.Errorf("code compression kept %v and merged %d", code.Kept, len(code.Merged))
	}
	synth, err := res.Sample(50000, [32]byte{3})
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synth.Domain.Sizes, real.Domain.Sizes) {
		t.Fatalf("synthetic domain %v, source %v", synth.Domain.Sizes, real.Domain.Sizes)
	}
	got := twoWayTVDs(t, real, synth)
	base := independenceTVDs(t, real)
	t.Logf("with a 200-code attribute: average 2-way TVD %.4f, independence %.4f; age×code %.4f vs %.4f", mean(got), mean(base), got[[2]int{4, 8}], base[[2]int{4, 8}])
	if mean(got) > 0.5*mean(base) {
		t.Errorf("average 2-way TVD %.4f vs independence %.4f", mean(got), mean(base))
	}
	if got[[2]int{4, 8}] > 0.3*base[[2]int{4, 8}] {
		t.Errorf("age × code: TVD %.4f vs independence %.4f", got[[2]int{4, 8}], base[[2]int{4, 8}])
	}
	// the rare codes together keep their share (2%, 1000 rows) and are spread over all 190.
	// The merged cell's noisy count alone has σ ≈ 24·√190 ≈ 330 rows; the 2-way measurements
	// with the code add information. The band is wide and the noise seeded.
	rare, seen := 0, map[int32]bool{}
	for _, v := range synth.Columns[8] {
		if v >= 10 {
			rare++
			seen[v] = true
		}
	}
	if share := float64(rare) / 50000; math.Abs(share-0.02) > 0.01 {
		t.Errorf("rare codes' share %v, want about 0.02", share)
	}
	if len(seen) < 150 {
		t.Errorf("only %d of 190 rare codes appear", len(seen))
	}
	u, err := res.Utility(synth)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("utility: mean TVD %.4f, max %.4f", u.MeanTVD, u.MaxTVD)
}
