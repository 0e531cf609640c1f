package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/velo-fse/velo/ledger"
)

// TestDummyRun: a dummy run is recorded with its release, changes no budget, is no cached
// release, survives a reopen and passes Verify; one on an unknown project is refused.
func TestDummyRun(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	clk := newClock()
	l := open(t, dir, ledger.Options{Now: clk.Now})
	createProject(t, l, project("wl", 5, 1e-5))
	before, err := l.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	sql := "SELECT count(*) FROM booking"
	rel := json.RawMessage(`{"dummy": true, "rows": [[42]]}`)
	e, err := l.Dummy(ctx, ledger.DummyRequest{Actor: "user:rita", Project: "wl", SQL: sql, Text: sql, Options: "engine=5", DatasetVersion: "dummy_abc", Release: rel})
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != ledger.KindDummy || e.Epsilon != 0 || e.Delta != 0 || e.ResultHash == "" || string(e.Release) != `{"dummy":true,"rows":[[42]]}` {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := l.Dummy(ctx, ledger.DummyRequest{Actor: "user:rita", Project: "nope", SQL: sql, DatasetVersion: "dummy_abc", Release: rel}); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Errorf("dummy run on an unknown project: %v", err)
	}
	var fe *ledger.FieldError
	if _, err := l.Dummy(ctx, ledger.DummyRequest{Actor: "user:rita", Project: "wl", SQL: sql, Release: rel}); !errors.As(err, &fe) || fe.Field != "dataset_version" {
		t.Errorf("dummy run without a dataset version: %v", err)
	}
	check := func(l *ledger.Ledger) {
		t.Helper()
		after, err := l.Project("wl")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("a dummy run changed the project (-before +after):\n%s", diff)
		}
		if _, ok := l.Cached("wl", ledger.SQLHash(sql), "engine=5", "dummy_abc"); ok {
			t.Error("a dummy release is in the release cache")
		}
		es := l.Entries("wl", 0)
		if last := es[len(es)-1]; last.Kind != ledger.KindDummy || last.DatasetVersion != "dummy_abc" || last.Actor != "user:rita" {
			t.Errorf("last entry = %+v", last)
		}
	}
	check(l)
	closeLedger(t, l)
	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kinds[ledger.KindDummy] != 1 {
		t.Errorf("verify counted %v", rep.Kinds)
	}
	check(open(t, dir, ledger.Options{Now: clk.Now}))
}
