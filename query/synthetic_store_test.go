package query

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/velo-fse/velo/ledger"
)

// parquetOf is a synthetic release's Parquet file.
func parquetOf(t *testing.T, s *Synthetic) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteParquet(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The same synthesis request again is answered by the first release, its rows read back
// from the release directory: the same release id, rows and report, marked cached, no
// second charge; identical requests at once are charged once. A request that differs is a
// new release; rows changed or lost on disk are never served: the request is then charged
// as a new release. Without a release directory every request is charged (the rows are not
// kept).
func TestSynthesizeReleaseCached(t *testing.T) {
	ctx := context.Background()
	eng, led, state := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 20, Delta: 1e-4}, nil)
	eng.releaseDir = filepath.Join(state, "releases")
	req := SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Method: "mst",
		Columns: []string{"priority", "region", "wait_days"}, Rows: 500, Epsilon: f64(1), Delta: f64(1e-6)}
	charges := func() int { return len(entriesOf(led, ledger.KindCharge)) }
	first, err := eng.Synthesize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || len(first.RowsSHA256) != 64 {
		t.Fatalf("first release: cached %v, rows digest %q", first.Cached, first.RowsSHA256)
	}
	kept := syntheticRowsFile(eng.releaseDir, first.ReleaseID)
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("rows not kept: %v", err)
	}
	again, err := eng.Synthesize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.ReleaseID != first.ReleaseID || again.BudgetLeft != first.BudgetLeft || charges() != 1 {
		t.Fatalf("again: cached %v, release %s (first %s), budget left %+v (first %+v), %d charges",
			again.Cached, again.ReleaseID, first.ReleaseID, again.BudgetLeft, first.BudgetLeft, charges())
	}
	if !reflect.DeepEqual(again.data.Columns, first.data.Columns) {
		t.Fatal("the cached release's rows differ from the first's")
	}
	again.Cached = false
	if !reflect.DeepEqual(jsonOf(t, again), jsonOf(t, first)) {
		t.Errorf("the cached release differs from the first:\n%s\n%s", jsonOf(t, again), jsonOf(t, first))
	}
	if !bytes.Equal(parquetOf(t, again), parquetOf(t, first)) {
		t.Error("the cached release's Parquet differs from the first's")
	}

	// Each of these differs in what it releases: a new release, charged.
	for i, r := range []SynthesizeRequest{
		{Method: "mst", Columns: []string{"priority", "region", "wait_days"}, Rows: 501},
		{Method: "aim", Columns: []string{"priority", "region", "wait_days"}, Rows: 500},
		{Method: "mst", Columns: []string{"priority", "region"}, Rows: 500},
		{Method: "mst", Columns: []string{"priority", "region", "wait_days"}, Rows: 500, Bins: 5},
	} {
		r.Project, r.Actor, r.Table, r.Epsilon, r.Delta = "wl", "user:test", "booking", f64(1), f64(1e-6)
		s, err := eng.Synthesize(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cached || s.ReleaseID == first.ReleaseID || charges() != 2+i {
			t.Errorf("request %d: cached %v, release %s, %d charges", i, s.Cached, s.ReleaseID, charges())
		}
	}

	// Identical requests at once, one of them between its charge and its synthesis: one
	// charge, one release for all.
	n := charges()
	entered, gate, waiting := make(chan struct{}, 8), make(chan struct{}), make(chan struct{}, 8)
	eng.afterCharge = func() { entered <- struct{}{}; <-gate }
	eng.onWait = func() { waiting <- struct{}{} }
	same := req
	same.Rows = 300
	type answer struct {
		s   *Synthetic
		err error
	}
	answers := make(chan answer, 4)
	ask := func() { s, err := eng.Synthesize(ctx, same); answers <- answer{s, err} }
	go ask()
	<-entered
	for range 3 {
		go ask()
		<-waiting
	}
	close(gate)
	var ids []string
	for range 4 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		ids = append(ids, a.s.ReleaseID)
	}
	eng.afterCharge, eng.onWait = nil, nil
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 1 || charges() != n+1 {
		t.Errorf("identical requests at once: releases %v, %d charges (want one release, one charge)", ids, charges()-n)
	}

	// The kept rows changed: not served; the request is a new release, charged.
	b, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(kept, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n = charges()
	changed, err := eng.Synthesize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Cached || changed.ReleaseID == first.ReleaseID || charges() != n+1 {
		t.Errorf("rows changed on disk: cached %v, release %s, %d new charges", changed.Cached, changed.ReleaseID, charges()-n)
	}
	// ... and lost: the same.
	if err := os.Remove(kept); err != nil {
		t.Fatal(err)
	}
	if lost, err := eng.Synthesize(ctx, req); err != nil || lost.Cached || charges() != n+2 {
		t.Errorf("rows lost: %+v, %v, %d new charges", lost, err, charges()-n)
	}

	// No release directory: nothing kept, each request charged.
	eng.releaseDir = ""
	other := req
	other.Rows = 200
	n = charges()
	for range 2 {
		s, err := eng.Synthesize(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cached || s.RowsSHA256 != "" {
			t.Errorf("without a release directory: cached %v, rows digest %q", s.Cached, s.RowsSHA256)
		}
	}
	if charges() != n+2 {
		t.Errorf("without a release directory: %d charges for the same request twice, want 2", charges()-n)
	}
}
