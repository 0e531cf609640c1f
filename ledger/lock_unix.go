//go:build unix

package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// lockHolder is written into the lock file so that the next process can say who holds it.
type lockHolder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// acquireLock takes an exclusive flock on path. The kernel drops it when the process dies, so
// a crash never leaves a stale lock; the file's contents only serve the error message.
func acquireLock(path string, now time.Time) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("ledger: lock %s: %w", path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(f, 4096))
		var h lockHolder
		if json.Unmarshal(b, &h) != nil || h.PID == 0 {
			return nil, fmt.Errorf("%w: %s is held by another process (holder not yet recorded)", ErrLocked, path)
		}
		return nil, fmt.Errorf("%w: %s is held by pid %d on host %s since %s", ErrLocked, path, h.PID, h.Host, h.Since.Format(time.RFC3339))
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockHolder{PID: os.Getpid(), Host: host, Since: now.UTC().Truncate(time.Second)})
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
	}
	if err != nil {
		releaseLock(f)
		return nil, fmt.Errorf("ledger: write lock holder: %w", err)
	}
	return f, nil
}

func releaseLock(f *os.File) error {
	// Closing the descriptor drops the flock; the holder text stays, harmless once unlocked.
	return f.Close()
}
