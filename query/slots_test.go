package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// At most Limits.MaxConcurrent queries read data at once: the next one waits for a slot,
// then is refused, uncharged, with a *BusyError. A query answered from the release cache,
// a dry run and a query identical to one in flight take no slot.
func TestConcurrencyLimit(t *testing.T) {
	eng, led, _ := openEngine(t, twoRegions(t), ledger.Budget{Epsilon: 10}, nil)
	var err error
	if eng.slots, err = newSlots(Limits{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := func(sql string) Request { return Request{SQL: sql, Project: "wl", Actor: "user:t"} }
	cachedSQL := "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"
	if _, err := eng.Query(ctx, req(cachedSQL)); err != nil {
		t.Fatal(err)
	}

	// One query holds the only slot, between its charge and its execution.
	entered, gate := make(chan struct{}, 4), make(chan struct{})
	eng.afterCharge = func() { entered <- struct{}{}; <-gate }
	heldSQL := "SELECT region, SUM(wait_days) AS s FROM booking GROUP BY region"
	held := make(chan error, 2)
	go func() { _, err := eng.Query(ctx, req(heldSQL)); held <- err }()
	<-entered
	if n, limit := eng.Slots(); n != 1 || limit != 1 {
		t.Errorf("slots: %d of %d in use, want 1 of 1", n, limit)
	}
	// The same query again waits for that one's release.
	go func() { _, err := eng.Query(ctx, req(heldSQL)); held <- err }()

	_, err = eng.Query(ctx, req("SELECT region, AVG(wait_days) AS a FROM booking GROUP BY region"))
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Limit != 1 {
		t.Errorf("with the slot taken: %v, want a *BusyError with limit 1", err)
	}
	if rel, err := eng.Query(ctx, req(cachedSQL)); err != nil || !rel.Cached {
		t.Errorf("cached query with the slot taken: %v", err)
	}
	dry := req("SELECT COUNT(*) AS n FROM booking")
	dry.DryRun = true
	if rel, err := eng.Query(ctx, dry); err != nil || !rel.DryRun {
		t.Errorf("dry run with the slot taken: %v", err)
	}

	close(gate)
	for range 2 {
		if err := <-held; err != nil {
			t.Errorf("held query: %v", err)
		}
	}
	if st, _ := led.Project("wl"); st.Queries != 2 || st.Spent.Epsilon != 1 {
		t.Errorf("%d charges, epsilon %v spent; want 2 and 1 (the refused, cached and dry-run queries are free)", st.Queries, st.Spent.Epsilon)
	}
	if n, _ := eng.Slots(); n != 0 {
		t.Errorf("%d slots still in use", n)
	}
}
