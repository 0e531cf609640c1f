package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CommitDir is DATA/.commit: while it exists, an ingest is committing a new dataset version
// into DATA, or was interrupted while doing so, and DATA's tables may be a mix of two
// versions. Package ingest writes and settles it (ingest/commit.go); readers refuse a DATA
// that holds it (CheckCommitted).
const CommitDir = ".commit"

// CommitPath is DATA/.commit.
func CommitPath(dir string) string { return filepath.Join(dir, CommitDir) }

// ErrUnfinishedCommit: DATA holds a dataset version being committed, or whose commit was
// interrupted; its tables may be a mix of two versions.
var ErrUnfinishedCommit = errors.New("the dataset has an unfinished commit")

// CheckCommitted returns ErrUnfinishedCommit, with what to do, if DATA holds an unfinished
// commit. Readers call it before reading the dataset.
func CheckCommitted(dir string) error {
	_, err := os.Lstat(CommitPath(dir))
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s is being replaced by a new version, or an ingest was interrupted while replacing it (%s exists): wait for the ingest to finish, or run velo ingest --recover --out %s",
			ErrUnfinishedCommit, dir, CommitPath(dir), dir)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return fmt.Errorf("dataset %s: %w", dir, err)
}
