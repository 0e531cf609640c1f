package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// groupLedger opens a ledger on the fault seam with one project of the given epsilon budget.
func groupLedger(t *testing.T, eps float64) (*Ledger, *faults, string) {
	t.Helper()
	dir := t.TempDir()
	flt := &faults{}
	l, err := Open(dir, Options{openFile: flt.open, CheckpointEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	err = l.CreateProject(context.Background(), "dpo", Project{ID: "wl", Purpose: "p", LegalBasis: "b", Allow: map[string][]string{"booking": {}}, EpsilonBudget: eps})
	if err != nil {
		t.Fatal(err)
	}
	return l, flt, dir
}

type chargeResult struct {
	c   Charge
	err error
}

// pileUp holds the next fsync of the ledger file, starts n charges at once (testCharge(first),
// testCharge(first+1), ...), and returns once writes of them have reached the file: every
// charge that fits the budget has been written behind the held fsync. release lets the fsync
// go on; the results arrive on the channel.
func pileUp(t *testing.T, l *Ledger, flt *faults, first, n, writes int) (release func(), results chan chargeResult) {
	t.Helper()
	hold, wrote := make(chan struct{}), make(chan struct{}, n)
	flt.mu.Lock()
	flt.hold, flt.wrote = hold, wrote
	flt.mu.Unlock()
	results = make(chan chargeResult, n)
	for i := range n {
		go func() {
			c, err := l.Charge(context.Background(), testCharge(first+i))
			results <- chargeResult{c, err}
		}()
	}
	for range writes {
		<-wrote
	}
	flt.mu.Lock()
	flt.wrote = nil
	flt.mu.Unlock()
	return func() { close(hold) }, results
}

func syncCount(flt *faults) int {
	flt.mu.Lock()
	defer flt.mu.Unlock()
	return flt.syncs
}

// TestGroupCommitSharesFsyncs: 32 charges written while one fsync is held are made durable by
// at most two fsyncs, none returns before its fsync, readers see none of them until then, and
// after a reopen every acknowledged charge is there, in one verified chain.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	const n = 32
	l, flt, dir := groupLedger(t, 100)
	syncs := syncCount(flt)
	release, results := pileUp(t, l, flt, 0, n, n)

	// All n entries are written; the held fsync keeps every one of them undurable.
	if len(results) != 0 {
		t.Fatalf("%d charges returned before any fsync finished", len(results))
	}
	if st := mustProject(t, l); st.Queries != 0 || st.Spent.Epsilon != 0 {
		t.Errorf("readers see %d charges (epsilon %v spent) before they are durable", st.Queries, st.Spent.Epsilon)
	}
	if got := len(l.Entries("", 0)); got != 1 {
		t.Errorf("%d entries visible before the fsync, want the project's 1", got)
	}
	release()
	seqs := map[uint64]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("charge: %v", r.err)
		}
		seqs[r.c.Seq] = true
	}
	if len(seqs) != n {
		t.Errorf("%d distinct seqs for %d charges", len(seqs), n)
	}
	if got := syncCount(flt) - syncs; got < 1 || got > 2 {
		t.Errorf("%d fsyncs for %d concurrent charges, want 1 or 2", got, n)
	}
	if st := mustProject(t, l); st.Queries != n || st.Spent.Epsilon != n*0.5 {
		t.Errorf("after the fsync: %d queries, epsilon %v spent; want %d and %v", st.Queries, st.Spent.Epsilon, n, n*0.5)
	}
	live := l.Entries("", 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(live) || len(entries) != n+1 {
		t.Fatalf("%d entries on file, %d live, want %d", len(entries), len(live), n+1)
	}
	for i := range entries {
		if entries[i].Hash != live[i].Hash {
			t.Fatalf("entry %d: hash %s on file, %s live", i+1, entries[i].Hash, live[i].Hash)
		}
	}
	rep, err := Verify(dir, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signed != uint64(rep.Entries) {
		t.Errorf("%d of %d entries signed", rep.Signed, rep.Entries)
	}
}

// TestGroupCommitBudget: charges written behind a held fsync count against the budget before
// they are durable. With room for exactly 20 charges and 60 asking at once, 20 are written,
// 40 are refused without waiting for the fsync, and the 20 then succeed.
func TestGroupCommitBudget(t *testing.T) {
	l, flt, _ := groupLedger(t, 10) // 20 × 0.5
	release, results := pileUp(t, l, flt, 0, 60, 20)
	for range 40 {
		r := <-results // the refusals arrive while the fsync is still held
		if !errors.Is(r.err, ErrBudgetExhausted) {
			t.Fatalf("got %v, want ErrBudgetExhausted", r.err)
		}
	}
	release()
	for range 20 {
		if r := <-results; r.err != nil {
			t.Fatalf("charge: %v", r.err)
		}
	}
	if st := mustProject(t, l); st.Queries != 20 || st.Left.Epsilon != 0 {
		t.Errorf("%d queries, epsilon %v left; want 20 and 0", st.Queries, st.Left.Epsilon)
	}
}

// TestGroupCommitFsyncFails: the shared fsync fails. Every charge it was to make durable
// fails with ErrWriteFailed and the cause, none is visible, the file is as before, and after
// a reopen the ledger verifies without them.
func TestGroupCommitFsyncFails(t *testing.T) {
	const n = 16
	l, flt, dir := groupLedger(t, 100)
	before := l.Entries("", 0)
	fileBefore, _ := os.ReadFile(filepath.Join(dir, ledgerFile))
	release, results := pileUp(t, l, flt, 0, n, n)
	flt.set(nil, syscall.EIO, nil)
	release()
	for range n {
		r := <-results
		if !errors.Is(r.err, ErrWriteFailed) || !errors.Is(r.err, syscall.EIO) {
			t.Fatalf("charge: %v, want ErrWriteFailed wrapping EIO", r.err)
		}
	}
	flt.set(nil, nil, nil)
	if st := mustProject(t, l); st.Queries != 0 || len(l.Entries("", 0)) != len(before) {
		t.Errorf("%d queries and %d entries after the failed fsync, want 0 and %d", st.Queries, len(l.Entries("", 0)), len(before))
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ledgerFile)); string(after) != string(fileBefore) {
		t.Errorf("the ledger file holds %d bytes after the failed fsync, %d before", len(after), len(fileBefore))
	}
	if _, err := l.Charge(context.Background(), testCharge(n)); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("charge after the failure: %v, want ErrWriteFailed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("Close: %v, want ErrWriteFailed", err)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Entries("", 0); len(got) != len(before) {
		t.Errorf("%d entries after the reopen, want %d", len(got), len(before))
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitWriteFailsBehindPending: a write fails while earlier entries wait for their
// fsync. The failed entry is cut and refused; the earlier ones are complete and still become
// durable; no later append is taken.
func TestGroupCommitWriteFailsBehindPending(t *testing.T) {
	const n = 8
	l, flt, dir := groupLedger(t, 100)
	release, results := pileUp(t, l, flt, 0, n, n)
	flt.set(syscall.ENOSPC, nil, nil)
	if _, err := l.Charge(context.Background(), testCharge(n)); !errors.Is(err, ErrWriteFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("charge on a full disk: %v", err)
	}
	flt.set(nil, nil, nil)
	release()
	for range n {
		if r := <-results; r.err != nil {
			t.Fatalf("charge written before the failure: %v", r.err)
		}
	}
	if st := mustProject(t, l); st.Queries != n {
		t.Errorf("%d queries, want %d", st.Queries, n)
	}
	if _, err := l.Charge(context.Background(), testCharge(n+1)); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("charge after the failure: %v, want ErrWriteFailed", err)
	}
	l.Close()
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if st := mustProject(t, l2); st.Queries != n {
		t.Errorf("%d queries after the reopen, want %d", st.Queries, n)
	}
	if got := l2.Entries("", 0); got[len(got)-1].Kind != KindCharge {
		t.Errorf("last entry after the reopen: %s", got[len(got)-1].Kind)
	}
}

// TestGroupCommitStress: 200 goroutines charge, then refund or release, on a real file (run
// with -race). Spend never passes the budget, it equals the charges not refunded, fsyncs
// are fewer than appends, and the reopened ledger has the same entries.
func TestGroupCommitStress(t *testing.T) {
	l, flt, dir := groupLedger(t, 50)
	syncs := syncCount(flt)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		appends int
	)
	start := make(chan struct{})
	for g := range 200 {
		wg.Go(func() {
			<-start
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 5 {
				req := testCharge(g*10 + i)
				req.Cost.Epsilon = 0.1
				c, err := l.Charge(context.Background(), req)
				if errors.Is(err, ErrBudgetExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(2) == 0 {
					err = l.Refund(context.Background(), c, "failed before reading")
				} else {
					err = l.Release(context.Background(), c, json.RawMessage(fmt.Sprintf(`{"rows":[[%d]]}`, g)))
				}
				if err != nil {
					t.Error(err)
					return
				}
				if st := mustProject(t, l); st.Spent.Epsilon > 50 {
					t.Errorf("spent %v of 50", st.Spent.Epsilon)
				}
				mu.Lock()
				appends += 2
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	var sum float64
	var n int
	for _, e := range l.Entries("", 0) {
		switch e.Kind {
		case KindCharge:
			sum += e.Epsilon
			n++
		case KindRefund:
			sum -= e.Epsilon
			n--
		}
	}
	st := mustProject(t, l)
	if st.Queries != n || fmt.Sprintf("%.6f", st.Spent.Epsilon) != fmt.Sprintf("%.6f", sum) || st.Spent.Epsilon > 50 {
		t.Errorf("spent %v in %d queries; the entries sum to %v in %d", st.Spent.Epsilon, st.Queries, sum, n)
	}
	if got := syncCount(flt) - syncs; got >= appends {
		t.Errorf("%d fsyncs for %d appends", got, appends)
	} else {
		t.Logf("%d fsyncs for %d appends", got, appends)
	}
	live := l.Entries("", 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(live) || entries[len(entries)-1].Hash != live[len(live)-1].Hash {
		t.Errorf("%d entries on file, %d live", len(entries), len(live))
	}
	if _, err := Verify(dir, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
