package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// TestClockBackwards: the ledger's clock is stepped back by a day, twice, in the middle of a
// run of charges and releases, and once while the ledger is closed. Entries keep their order
// and never go back in time, the budgets sum, Verify passes, a warning names the skew, and a
// clock stepped back cannot reopen an expired project.
func TestClockBackwards(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	logs := &syncBuffer{}
	opts := ledger.Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logs, nil)), CheckpointEvery: 5}
	l := open(t, dir, opts)
	start := clk.Now()
	p := project("wl", 100, 0)
	p.Expires = start.Add(time.Hour)
	createProject(t, l, p)

	var charged float64
	run := func(l *ledger.Ledger, from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			c, err := l.Charge(ctx, chargeReq("wl", fmt.Sprintf("SELECT %d", i), 0.25, 0))
			if err != nil {
				t.Fatalf("charge %d: %v", i, err)
			}
			charged += 0.25
			if err := l.Release(ctx, c, []byte(fmt.Sprintf(`{"rows":[[%d]]}`, i))); err != nil {
				t.Fatalf("release %d: %v", i, err)
			}
		}
	}
	run(l, 0, 4)
	if err := l.Active("wl"); err != nil {
		t.Fatalf("Active before the expiry: %v", err)
	}
	clk.Set(start.Add(-24 * time.Hour)) // stepped back a day
	run(l, 4, 4)
	clk.Set(start.Add(-48 * time.Hour)) // and another
	run(l, 8, 4)
	closeLedger(t, l)
	l = open(t, dir, opts) // reopened while the clock is still behind
	run(l, 12, 4)
	clk.Set(start.Add(10 * time.Minute)) // caught up
	run(l, 16, 4)

	entries := l.Entries("", 0)
	if len(entries) != 1+2*20 {
		t.Fatalf("%d entries, want 41", len(entries))
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq != entries[i-1].Seq+1 {
			t.Fatalf("entry %d follows %d", entries[i].Seq, entries[i-1].Seq)
		}
		if entries[i].Time.Before(entries[i-1].Time) {
			t.Fatalf("entry %d at %s is earlier than entry %d at %s", entries[i].Seq, entries[i].Time, entries[i-1].Seq, entries[i-1].Time)
		}
	}
	if last := entries[len(entries)-1].Time; !last.After(start.Add(10*time.Minute - time.Second)) {
		t.Errorf("after the clock caught up the last entry is at %s", last)
	}
	if n := strings.Count(logs.String(), "the clock reads earlier than the ledger's last entry"); n != 2 {
		t.Errorf("%d clock warnings, want one per episode (the two steps, then the reopen):\n%s", n, logs)
	}
	st, err := l.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	if st.Spent.Epsilon != charged || st.Queries != 20 || st.Left.Epsilon != 100-charged {
		t.Errorf("spent %v over %d queries, left %v; charged %v", st.Spent, st.Queries, st.Left, charged)
	}

	// Past the expiry, then back before it: the project stays expired.
	clk.Set(p.Expires.Add(time.Minute))
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 'late'", 0.25, 0)); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Fatalf("charge after expiry: %v", err)
	}
	if err := l.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 1}, "marks the time"); err != nil {
		t.Fatal(err)
	}
	clk.Set(p.Expires.Add(-30 * time.Minute))
	if _, err := l.Charge(ctx, chargeReq("wl", "SELECT 'early'", 0.25, 0)); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Errorf("charge with the clock stepped back before the expiry: %v, want ErrProjectExpired", err)
	}
	if err := l.Active("wl"); !errors.Is(err, ledger.ErrProjectExpired) {
		t.Errorf("Active with the clock stepped back before the expiry: %v, want ErrProjectExpired", err)
	}
	if err := l.Active("nope"); !errors.Is(err, ledger.ErrUnknownProject) {
		t.Errorf("Active(nope): %v", err)
	}
	closeLedger(t, l)

	rep := mustVerify(t, dir)
	if rep.Entries != 42 || rep.Projects[0].Spent.Epsilon != charged || rep.Projects[0].Total.Epsilon != 101 {
		t.Errorf("verify: %d entries, projects %+v", rep.Entries, rep.Projects)
	}
	if rep.Signed != uint64(rep.Entries) {
		t.Errorf("checkpoints sign %d of %d entries", rep.Signed, rep.Entries)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes: a ledger's log under test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
