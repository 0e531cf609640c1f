//go:build unix

package ingest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBusy: another ingest holds DATA's lock.
var ErrBusy = errors.New("another ingest is writing this dataset")

// lockDataDir takes an exclusive flock on DATA/.ingest.lock for one ingest: the kernel drops
// it when the process dies, so a killed ingest never leaves a stale lock. The file holds the
// holder's pid and start, for the error message.
func lockDataDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock dataset: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(f, 256))
		return nil, fmt.Errorf("%w: %s is held by %s", ErrBusy, path, strings.TrimSpace(string(b)))
	}
	holder := "pid " + strconv.Itoa(os.Getpid()) + " since " + time.Now().UTC().Format(time.RFC3339) + "\n"
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holder), 0)
	}
	return f.Close, nil
}
