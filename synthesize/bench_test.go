package synthesize

import (
	"runtime"
	"testing"
)

func plantedModel(tb testing.TB) *Model {
	tb.Helper()
	real := plantedTable(50000, 42)
	res, err := MST(real.Domain, real, 0.024, Options{noise: newSeededNoise(1), Iterations: 300})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Model
}

// TestSampleMemoryPerRowIsTheOutput: what Sample allocates beyond the output columns (4 bytes
// per attribute per row) grows by at most its two int32 index arrays (8 bytes per row): the
// sampler keeps no per-row model state.
func TestSampleMemoryPerRowIsTheOutput(t *testing.T) {
	m := plantedModel(t)
	extra := func(n int) int64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		tab, err := m.Sample(n, [32]byte{})
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&b)
		runtime.KeepAlive(tab)
		return int64(b.TotalAlloc-a.TotalAlloc) - int64(4*n*len(m.Domain.Sizes)) - int64(8*n)
	}
	small, large := extra(20000), extra(400000)
	t.Logf("allocated beyond the output: %d bytes for 20000 rows, %d for 400000", small, large)
	// each column's allocation is rounded up to a whole 8 KiB page (at most 8 KiB per column),
	// plus 64 KiB of slack for the runtime's own allocations
	if large-small > int64(len(m.Domain.Sizes)+2)*8<<10+64<<10 {
		t.Errorf("Sample allocates %d more bytes beyond its output for 380000 more rows", large-small)
	}
}

func BenchmarkSample1M(b *testing.B) {
	m := plantedModel(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Sample(1_000_000, [32]byte{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAlg(b *testing.B, alg func(Domain, Counts, float64, Options) (*Result, error)) {
	real := plantedTable(50000, 42)
	bud, _ := NewBudget(1, 1e-6)
	b.ReportAllocs()
	for b.Loop() {
		res, err := alg(real.Domain, real, bud.Rho, Options{})
		if err != nil {
			b.Fatal(err)
		}
		synth, _ := res.Sample(50000, [32]byte{})
		b.ReportMetric(mean(twoWayTVDsB(real, synth)), "avgTVD")
	}
}

func twoWayTVDsB(real, synth *Table) map[[2]int]float64 {
	out := map[[2]int]float64{}
	n := len(real.Domain.Sizes)
	for a := range n {
		for c := a + 1; c < n; c++ {
			x, _ := real.Marginal([]int{a, c})
			y, _ := synth.Marginal([]int{a, c})
			out[[2]int{a, c}] = TVD(x.Values, y.Values)
		}
	}
	return out
}

// BenchmarkMST and BenchmarkAIM: 50,000 planted rows, ε = 1, δ = 1e-6, production noise and
// default iterations; avgTVD is the synthetic data's average 2-way TVD against the real rows.
func BenchmarkMST(b *testing.B) { benchAlg(b, MST) }
func BenchmarkAIM(b *testing.B) { benchAlg(b, AIM) }

// BenchmarkMST1M: MST end to end on 1,000,000 planted source rows (counts read from the
// in-memory table), 1,000,000 synthetic rows sampled.
func BenchmarkMST1M(b *testing.B) {
	real := plantedTable(1_000_000, 42)
	bud, _ := NewBudget(1, 1e-6)
	b.ReportAllocs()
	for b.Loop() {
		res, err := MST(real.Domain, real, bud.Rho, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.Sample(1_000_000, [32]byte{}); err != nil {
			b.Fatal(err)
		}
	}
}
