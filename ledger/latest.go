package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// SignedCheckpoint is the latest signed checkpoint, for a DPO to keep outside Velo: the
// signed note (velo/ledger/v1, the number of entries, the head hash, the Ed25519
// signature) and the verifier key that checks it (golang.org/x/mod/sumdb/note).
type SignedCheckpoint struct {
	Entries     uint64 `json:"entries"`
	Note        string `json:"note"`
	VerifierKey string `json:"verifier_key"`
}

// ErrNoCheckpoint: no checkpoint has been signed yet (one is signed every
// Options.CheckpointEvery entries, and at Close).
var ErrNoCheckpoint = errors.New("no signed checkpoint yet")

// latestCheckpoint picks the last note of checkpoints data, checked with the verifier key.
func latestCheckpoint(data []byte, vkey string) (SignedCheckpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("ledger: verifier key: %w", err)
	}
	cps, complete, err := parseCheckpoints(data, note.VerifierList(v))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("%w: checkpoints: %s", ErrCorrupt, err)
	}
	if len(cps) == 0 {
		return SignedCheckpoint{}, ErrNoCheckpoint
	}
	last := cps[len(cps)-1]
	text := bytes.TrimLeft(data[last.offset:complete], "\n")
	return SignedCheckpoint{Entries: last.size, Note: strings.TrimRight(string(text), "\n") + "\n", VerifierKey: strings.TrimSpace(vkey)}, nil
}

// LatestCheckpoint returns the latest signed checkpoint of STATE/checkpoints with the
// verifier key of STATE/checkpoint.pub.
func (l *Ledger) LatestCheckpoint() (SignedCheckpoint, error) {
	l.syncMu.Lock() // checkpoints are appended under syncMu: read whole notes only
	data, err := os.ReadFile(filepath.Join(l.dir, checkpointsFile))
	l.syncMu.Unlock()
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("ledger: %w", err)
	}
	vkey, err := os.ReadFile(filepath.Join(l.dir, pubFile))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("ledger: %w", err)
	}
	return latestCheckpoint(data, string(vkey))
}

// LatestCheckpoint returns the latest signed checkpoint of the PostgreSQL ledger with the
// verifier key of this replica's signing key (the one the database records).
func (l *PG) LatestCheckpoint() (SignedCheckpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, err := pgCheckpointsData(ctx, l.pool)
	if err != nil {
		return SignedCheckpoint{}, l.dbError("read checkpoints", err)
	}
	vkey, err := verifierKeyOf(l.opts.KeyFile)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return latestCheckpoint(data, vkey)
}
