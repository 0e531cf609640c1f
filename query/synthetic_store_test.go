package query

import (
	"bytes"
	"context"
	"errors"
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

// A synthetic release rebuilt from its ledger record and its kept rows writes the same
// rows as the release did, whatever its attributes' kinds: domain codes (VARCHAR), a
// BOOLEAN, bins (DOUBLE midpoints; the joined person's birth year too), months (DATE),
// NULL levels. Rows not kept, or changed, are ErrRowsNotKept. (No catalog column has a
// numeric domain, a BIGINT attribute: its levels are checked on their own.)
func TestSyntheticReleaseFromRecord(t *testing.T) {
	ctx := context.Background()
	eng, led, state := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 10, Delta: 1e-4}, nil)
	eng.releaseDir = filepath.Join(state, "releases")
	s, err := eng.Synthesize(ctx, SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Join: []string{"person"}, Method: "mst",
		Columns: []string{"priority", "region", "within_target", "wait_days", "d_contact", "person.birth_year"}, Rows: 700, Epsilon: f64(1), Delta: f64(1e-6)})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, a := range s.Attributes {
		kinds[a.Kind+"/"+a.Type] = true
	}
	for _, k := range []string{"domain/VARCHAR", "domain/BOOLEAN", "bins/DOUBLE", "month/DATE"} {
		if !kinds[k] {
			t.Fatalf("the release has no %s attribute: %v", k, kinds)
		}
	}
	rels := entriesOf(led, ledger.KindRelease)
	recorded := rels[len(rels)-1].Release
	again, err := eng.SyntheticRelease(recorded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.data.Columns, s.data.Columns) {
		t.Fatal("the rebuilt release's rows differ")
	}
	for i, a := range again.Attributes {
		for j := range a.values {
			if got, want := a.Mid(j), s.Attributes[i].Mid(j); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s level %d: %#v rebuilt, %#v released", a.Name, j, got, want)
			}
		}
	}
	// The record is the release as answered but for the budget left then, which it does
	// not hold.
	again.BudgetLeft = s.BudgetLeft
	if !bytes.Equal(parquetOf(t, again), parquetOf(t, s)) {
		t.Error("the rebuilt release's Parquet differs from the release's")
	}
	kept := syntheticRowsFile(eng.releaseDir, s.ReleaseID)
	b, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 1
	if err := os.WriteFile(kept, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SyntheticRelease(recorded); !errors.Is(err, ErrRowsNotKept) {
		t.Errorf("rows changed: %v, want ErrRowsNotKept", err)
	}
	eng.releaseDir = ""
	if _, err := eng.SyntheticRelease(recorded); !errors.Is(err, ErrRowsNotKept) {
		t.Errorf("no release directory: %v, want ErrRowsNotKept", err)
	}
}

func TestRestoreValues(t *testing.T) {
	a := &MarginalAttribute{Name: "n", Kind: AttrDomain, Type: "BIGINT", Levels: []any{float64(1990), float64(-3), nil}}
	if err := a.restoreValues(); err != nil || !reflect.DeepEqual(a.values, []any{int64(1990), int64(-3), nil}) {
		t.Errorf("BIGINT levels: %#v, %v", a.values, err)
	}
	for _, bad := range []*MarginalAttribute{
		{Name: "n", Kind: AttrDomain, Type: "BIGINT", Levels: []any{1.5}},
		{Name: "b", Kind: AttrDomain, Type: "BOOLEAN", Levels: []any{"true"}},
		{Name: "m", Kind: AttrMonth, Type: "DATE", Levels: []any{"2024-13-01"}},
		{Name: "w", Kind: AttrBins, Type: "DOUBLE", Levels: []any{"[0, 1)", "[1, 2]"}, Edges: []float64{0, 1}},
	} {
		if err := bad.restoreValues(); err == nil {
			t.Errorf("%s levels %v restored as %#v", bad.Name, bad.Levels, bad.values)
		}
	}
}
