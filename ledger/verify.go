package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// VerifyOptions names the DPO's copies of the checkpoints and the verifier key. Pointing them
// at copies kept outside STATE is what makes a rewritten history detectable by someone who
// could also rewrite STATE.
type VerifyOptions struct {
	CheckpointsFile string // default STATE/checkpoints; when named, it must exist
	PublicKeyFile   string // default STATE/checkpoint.pub
}

// VerifyReport is what Verify checked.
type VerifyReport struct {
	Entries     int            // entries in the chain
	Bytes       int64          // size of the ledger file
	Head        string         // hash of the last entry
	Kinds       map[string]int // entries per kind
	Checkpoints int            // signed checkpoints that matched the chain
	// Signed is the number of entries covered by the last checkpoint; entries after it are
	// chained but not yet signed.
	Signed     uint64
	Recoveries int // torn tails cut by Open
	// Projects holds the re-summed budgets: total, spent, left and queries per project.
	Projects []ProjectStatus
}

// Verify checks the ledger in dir offline and read-only, without taking the lock (a running
// server may hold it): every frame's length and checksum, the hash chain, the canonical form
// of every entry, every budget rule (no charge above the caps or the remaining budget, after
// expiry, or on an unknown project; every refund and release settles one open charge; every
// result hash matches its release), and every signed checkpoint against the chain. Any
// anomaly, a torn tail included, is a *CorruptError naming the entry and the reason; the
// report covers what was read up to it.
func Verify(dir string, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	cpPath, pubPath := opts.CheckpointsFile, opts.PublicKeyFile
	if cpPath == "" {
		cpPath = filepath.Join(dir, checkpointsFile)
	}
	if pubPath == "" {
		pubPath = filepath.Join(dir, pubFile)
	}
	path := filepath.Join(dir, ledgerFile)
	// Checkpoints first: a server writes a checkpoint only after the entries it covers, so
	// reading the ledger second sees every entry a checkpoint we read can name.
	cpData, data, err := readBoth(cpPath, path, opts.CheckpointsFile != "")
	if err != nil {
		return rep, err
	}
	var verifiers note.Verifiers
	if len(cpData) > 0 {
		v, err := readVerifier(pubPath)
		if err != nil {
			return rep, err
		}
		verifiers = note.VerifierList(v)
	}
	st, tail, err := replay(path, data)
	rep.fill(st, int64(len(data)))
	if err != nil {
		return rep, err
	}
	cps, complete, cpErr := parseCheckpoints(cpData, verifiers)
	cpTail := cpErr == nil && complete < int64(len(cpData))

	// A torn tail in either file may be an append in flight in the process holding the lock.
	// It was, if a later read shows that append completed; one left by a crash never completes,
	// as only Open (which cuts it first) appends.
	for attempt := 0; (tail != nil || cpTail) && attempt < 5; attempt++ {
		time.Sleep(20 * time.Millisecond)
		cpData2, data2, err := readBoth(cpPath, path, opts.CheckpointsFile != "")
		if err != nil {
			return rep, err
		}
		if tail != nil {
			if st2, _, err := replay(path, data2); err == nil && st2.size > tail.offset {
				tail = nil
			}
		}
		if cpTail {
			if _, complete2, err := parseCheckpoints(cpData2, verifiers); err == nil && complete2 > complete {
				cpTail = false
			}
		}
	}
	if tail != nil {
		return rep, &CorruptError{File: path, Seq: st.seq + 1, Offset: tail.offset, Torn: true,
			Reason: "torn tail (" + tail.reason + "); opening the ledger cuts it and records the cut"}
	}
	if cpTail {
		cpErr = fmt.Errorf("unfinished checkpoint at offset %d", complete)
	}
	if cpErr != nil {
		return rep, &CorruptError{File: cpPath, Offset: complete, Reason: fmt.Sprintf("after %d good checkpoints: %v", len(cps), cpErr)}
	}
	if err := checkCheckpoints(cpPath, st, cps); err != nil {
		return rep, err
	}
	rep.Checkpoints = len(cps)
	for _, cp := range cps {
		rep.Signed = max(rep.Signed, cp.size)
	}
	return rep, nil
}

// readBoth reads the checkpoints, then the ledger. A missing checkpoints file is empty unless
// it was named.
func readBoth(cpPath, path string, named bool) (cpData, data []byte, err error) {
	cpData, err = os.ReadFile(cpPath)
	if errors.Is(err, fs.ErrNotExist) && !named {
		cpData, err = nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: read checkpoints: %w", err)
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	return cpData, data, nil
}

func (rep *VerifyReport) fill(st *state, size int64) {
	rep.Entries = int(st.seq)
	rep.Bytes = size
	rep.Head = fmt.Sprintf("%x", st.head)
	rep.Kinds = make(map[string]int)
	for _, e := range st.entries {
		rep.Kinds[e.Kind]++
	}
	rep.Recoveries = rep.Kinds[KindRecovery]
	rep.Projects = st.statuses()
}

// Read loads the ledger in dir read-only, without the lock, for display and export: the
// entries and the per-project budgets. It checks the chain as Verify does but not the
// checkpoints, and ignores a torn tail (an append never acknowledged, which Open will cut).
func Read(dir string) ([]Entry, []ProjectStatus, error) {
	st, _, err := readLedger(filepath.Join(dir, ledgerFile))
	if err != nil {
		return nil, nil, err
	}
	return st.entries, st.statuses(), nil
}

// readLedger reads and replays the ledger file.
func readLedger(path string) (*state, *torn, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	return replay(path, data)
}
