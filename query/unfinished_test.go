package query

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/velo-fse/velo/dataset"
)

// A dataset whose replacement by a new version is unfinished (an ingest committing, or
// killed while committing) may mix the two versions' tables: Open refuses it and says what
// to do.
func TestOpenRefusesUnfinishedCommit(t *testing.T) {
	data := t.TempDir()
	if err := os.Mkdir(dataset.CommitPath(data), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{DataDir: data})
	if !errors.Is(err, dataset.ErrUnfinishedCommit) {
		t.Fatalf("Open: %v, want ErrUnfinishedCommit", err)
	}
}
