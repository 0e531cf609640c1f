//go:build !unix

package ledger

import (
	"errors"
	"os"
	"time"
)

func acquireLock(path string, now time.Time) (*os.File, error) {
	return nil, errors.New("ledger: file locking is only implemented on Unix")
}

func releaseLock(f *os.File) error { return f.Close() }
