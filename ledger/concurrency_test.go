package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/velo-fse/velo/ledger"
)

// TestConcurrentCharges: a budget that allows exactly 50 charges, 200 goroutines charging
// different queries at once: exactly 50 succeed, the rest get ErrBudgetExhausted.
func TestConcurrentCharges(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{CheckpointEvery: 16})
	createProject(t, l, project("wl", 5, 1e-5))
	const cost = 0.1 // 50 × 0.1 is exactly 5 in the ledger's fixed point

	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		mu        sync.Mutex
		ok, empty int
		other     []error
		seqs      = map[uint64]bool{}
	)
	for i := range 200 {
		wg.Go(func() {
			<-start
			c, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT count(*) FROM bookings WHERE x = %d", i), cost, 2e-7))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				seqs[c.Seq] = true
			case errors.Is(err, ledger.ErrBudgetExhausted):
				empty++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 50 || empty != 150 || len(other) > 0 || len(seqs) != 50 {
		t.Fatalf("%d charged, %d exhausted, other errors %v, %d distinct seqs; want 50/150/none/50", ok, empty, other, len(seqs))
	}
	st, err := l.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	if st.Spent != (ledger.Budget{Epsilon: 5, Delta: 1e-5}) || st.Left != (ledger.Budget{}) || st.Queries != 50 {
		t.Errorf("spent %v left %v queries %d; want 5/1e-05, 0, 50", st.Spent, st.Left, st.Queries)
	}
	closeLedger(t, l)
	rep := mustVerify(t, dir)
	if rep.Entries != 51 || rep.Kinds[ledger.KindCharge] != 50 || rep.Signed != 51 || rep.Projects[0].Spent.Epsilon != 5 {
		t.Errorf("verify report = %+v", rep)
	}
}

// TestVerifyWhileWriting: Verify needs no lock and never mistakes an append in flight for
// damage.
func TestVerifyWhileWriting(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{CheckpointEvery: 3})
	createProject(t, l, project("wl", 1000, 0))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				c, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT %d, %d", g, i), 0.01, 0))
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Release(context.Background(), c, []byte(`{"rows":[]}`)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 30 {
		if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); err != nil {
			t.Errorf("Verify during writes: %v", err)
		}
	}
	close(done)
	wg.Wait()
}
