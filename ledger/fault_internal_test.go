package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faults makes the ledger file's writes, fsyncs or truncations fail while set, as a full
// disk or a failing device would.
type faults struct {
	mu                    sync.Mutex
	write, sync, truncate error
	writes                int // WriteAt calls on the ledger file
	syncs                 int // Sync calls on the ledger file
	// hold, when set, stops the next Sync of the ledger file until it is closed (the
	// group-commit tests use it to let appenders pile up behind one fsync); wrote, when set,
	// receives after every WriteAt.
	hold  chan struct{}
	wrote chan struct{}
}

func (fs *faults) set(write, sync, truncate error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write, fs.sync, fs.truncate = write, sync, truncate
}

func (fs *faults) get() (write, sync, truncate error, writes int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.write, fs.sync, fs.truncate, fs.writes
}

func (fs *faults) open(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if filepath.Base(name) != ledgerFile {
		return f, nil
	}
	return &faultyFile{File: f, faults: fs}, nil
}

type faultyFile struct {
	*os.File
	faults *faults
}

// WriteAt writes half of p and fails, as a write that fills the disk does.
func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	f.faults.mu.Lock()
	f.faults.writes++
	err, wrote := f.faults.write, f.faults.wrote
	f.faults.mu.Unlock()
	if wrote != nil {
		defer func() { wrote <- struct{}{} }()
	}
	if err != nil {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.File.WriteAt(p, off)
}

func (f *faultyFile) Sync() error {
	f.faults.mu.Lock()
	f.faults.syncs++
	hold := f.faults.hold
	f.faults.hold = nil
	f.faults.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if _, err, _, _ := f.faults.get(); err != nil {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if _, _, err, _ := f.faults.get(); err != nil {
		return &fs.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return f.File.Truncate(size)
}

func testCharge(i int) ChargeRequest {
	return ChargeRequest{Actor: "user:ana", Project: "wl", SQL: fmt.Sprintf("SELECT %d FROM booking", i), Options: "epsilon=0.5",
		DatasetVersion: "v1", Cost: Budget{Epsilon: 0.5}}
}

// TestWriteFaults: a full disk or a failing fsync while a charge or a release is written.
// The call fails with ErrWriteFailed and the cause, nothing is released, the ledger's state
// and file stay as they were, every later append is refused without touching the file, and
// after a reopen the ledger verifies, its budgets re-sum and it charges again. Where even the
// cut of the failed append fails, the reopen settles it: a torn tail is cut and recorded, a
// complete but unacknowledged charge is kept (spend over-counted, never under).
func TestWriteFaults(t *testing.T) {
	enospc, eio := syscall.ENOSPC, syscall.EIO
	tests := []struct {
		name                  string
		release               bool // the fault hits the release of a charge that was written
		write, sync, truncate error
		cause                 error
		// after the reopen:
		recovered   bool // a torn tail was cut and recorded
		extraCharge bool // the unacknowledged charge is in the ledger
	}{
		{name: "disk full on a charge", write: enospc, cause: enospc},
		{name: "fsync fails on a charge", sync: eio, cause: eio},
		{name: "disk full on a release", release: true, write: enospc, cause: enospc},
		{name: "fsync fails on a release", release: true, sync: eio, cause: eio},
		{name: "disk full and the cut fails", write: enospc, truncate: eio, cause: enospc, recovered: true},
		{name: "fsync and the cut fail", sync: eio, truncate: eio, cause: eio, extraCharge: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			flt := &faults{}
			l, err := Open(dir, Options{openFile: flt.open, CheckpointEvery: 1000})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			err = l.CreateProject(ctx, "dpo", Project{ID: "wl", Purpose: "p", LegalBasis: "b", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 10})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				c, err := l.Charge(ctx, testCharge(i))
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Release(ctx, c, json.RawMessage(fmt.Sprintf(`{"rows":[[%d]]}`, i))); err != nil {
					t.Fatal(err)
				}
			}
			var open Charge
			if tt.release {
				if open, err = l.Charge(ctx, testCharge(3)); err != nil {
					t.Fatal(err)
				}
			}
			before := l.Entries("", 0)
			spent := mustProject(t, l).Spent
			fileBefore, _ := os.ReadFile(filepath.Join(dir, ledgerFile))

			flt.set(tt.write, tt.sync, tt.truncate)
			if tt.release {
				err = l.Release(ctx, open, json.RawMessage(`{"rows":[[3]]}`))
			} else {
				_, err = l.Charge(ctx, testCharge(3))
			}
			if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, tt.cause) || !strings.Contains(err.Error(), tt.cause.Error()) {
				t.Fatalf("failed append: %v, want ErrWriteFailed wrapping %v", err, tt.cause)
			}
			if got := l.Entries("", 0); len(got) != len(before) {
				t.Errorf("%d entries after the failure, %d before", len(got), len(before))
			}
			if got := mustProject(t, l).Spent; got != spent {
				t.Errorf("spent %v after the failure, %v before", got, spent)
			}
			if _, ok := l.Cached("wl", SQLHash(testCharge(3).SQL), "epsilon=0.5", "v1"); ok {
				t.Error("the failed query has a cached release")
			}
			if tt.truncate == nil {
				if after, _ := os.ReadFile(filepath.Join(dir, ledgerFile)); string(after) != string(fileBefore) {
					t.Errorf("the ledger file changed: %d bytes, %d before", len(after), len(fileBefore))
				}
				if _, err := Verify(dir, VerifyOptions{}); err != nil {
					t.Errorf("Verify beside the failed ledger: %v", err)
				}
			}

			// The fault clears (space freed), but the ledger stays stopped until reopened.
			flt.set(nil, nil, nil)
			_, _, _, writes := flt.get()
			if _, err := l.Charge(ctx, testCharge(4)); !errors.Is(err, ErrWriteFailed) {
				t.Errorf("charge after the failure: %v, want ErrWriteFailed", err)
			}
			if err := l.Grant(ctx, "dpo", "wl", Budget{Epsilon: 1}, ""); !errors.Is(err, ErrWriteFailed) {
				t.Errorf("grant after the failure: %v, want ErrWriteFailed", err)
			}
			if _, _, _, w := flt.get(); w != writes {
				t.Errorf("%d writes after the failure", w-writes)
			}
			if err := l.Close(); !errors.Is(err, ErrWriteFailed) || !strings.Contains(err.Error(), "without a final checkpoint") {
				t.Errorf("Close: %v, want ErrWriteFailed: no final checkpoint", err)
			}

			l2, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer l2.Close()
			got := l2.Entries("", 0)
			want := len(before)
			if tt.recovered || tt.extraCharge {
				want++
			}
			if len(got) != want {
				t.Fatalf("%d entries after the reopen, want %d", len(got), want)
			}
			if last := got[len(got)-1]; tt.recovered && last.Kind != KindRecovery || tt.extraCharge && last.Kind != KindCharge {
				t.Errorf("last entry after the reopen: %s", last.Kind)
			}
			var sum float64
			for _, e := range got {
				switch e.Kind {
				case KindCharge:
					sum += e.Epsilon
				case KindRefund:
					sum -= e.Epsilon
				}
			}
			if st := mustProject(t, l2); st.Spent.Epsilon != sum || st.Spent.Epsilon < spent.Epsilon {
				t.Errorf("spent %v after the reopen: charges sum to %v, %v before the failure", st.Spent.Epsilon, sum, spent.Epsilon)
			}
			if c, err := l2.Charge(ctx, testCharge(5)); err != nil {
				t.Errorf("charge after the reopen: %v", err)
			} else if err := l2.Release(ctx, c, json.RawMessage(`{"rows":[[5]]}`)); err != nil {
				t.Errorf("release after the reopen: %v", err)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(dir, VerifyOptions{})
			if err != nil {
				t.Fatalf("Verify after the reopen: %v", err)
			}
			if rep.Signed != uint64(rep.Entries) || (rep.Recoveries == 1) != tt.recovered {
				t.Errorf("verify report: %d entries, %d signed, %d recoveries", rep.Entries, rep.Signed, rep.Recoveries)
			}
		})
	}
}

func mustProject(t *testing.T, l *Ledger) ProjectStatus {
	t.Helper()
	st, err := l.Project("wl")
	if err != nil {
		t.Fatal(err)
	}
	return st
}
