package ledger_test

import (
	"context"
	"testing"

	"github.com/velo-fse/velo/ledger"
)

func TestReleaseCache(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{})
	createProject(t, l, project("wl", 5, 0))
	req := chargeReq("wl", "SELECT region, count(*) FROM bookings GROUP BY region", 0.5, 0)
	runs := 0
	run := func() string { runs++; return `{"release_id":"r_1","rows":[["120",5321.4]]}` }

	first, cached := query(t, l, req, run)
	if cached {
		t.Fatal("first query came from the cache")
	}
	second, cached := query(t, l, req, run)
	if !cached || string(second) != string(first) || runs != 1 {
		t.Fatalf("second query: cached=%v, runs=%d, %s vs %s", cached, runs, second, first)
	}
	st, _ := l.Project("wl")
	if st.Spent.Epsilon != 0.5 || st.Queries != 1 {
		t.Errorf("charged %v over %d queries, want 0.5 once", st.Spent, st.Queries)
	}

	closeLedger(t, l)
	l = open(t, dir, ledger.Options{})
	third, cached := query(t, l, req, run)
	if !cached || string(third) != string(first) || runs != 1 {
		t.Fatalf("after restart: cached=%v, runs=%d", cached, runs)
	}
	if st, _ := l.Project("wl"); st.Spent.Epsilon != 0.5 {
		t.Errorf("after restart spent %v, want 0.5", st.Spent)
	}

	misses := []struct{ name, project, sqlHash, options, version string }{
		{"dataset version", "wl", ledger.SQLHash(req.SQL), req.Options, "v2"},
		{"options", "wl", ledger.SQLHash(req.SQL), "epsilon=1,delta=0", "v1"},
		{"query", "wl", ledger.SQLHash(req.SQL + " "), req.Options, "v1"},
		{"project", "other", ledger.SQLHash(req.SQL), req.Options, "v1"},
	}
	for _, m := range misses {
		if _, ok := l.Cached(m.project, m.sqlHash, m.options, m.version); ok {
			t.Errorf("a different %s hit the cache", m.name)
		}
	}
	// A refunded charge caches nothing.
	req2 := chargeReq("wl", "SELECT 2", 0.5, 0)
	c, err := l.Charge(context.Background(), req2)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refund(context.Background(), c, "rejected before execution"); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Cached("wl", c.SQLHash, c.Options, c.DatasetVersion); ok {
		t.Error("a refunded query hit the cache")
	}
}
