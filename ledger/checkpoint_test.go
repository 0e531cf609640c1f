package ledger_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ledger"
	"golang.org/x/mod/sumdb/note"
)

// grants builds a ledger of one project and n-1 grants.
func grants(t *testing.T, dir string, every, n int) {
	t.Helper()
	l := open(t, dir, ledger.Options{CheckpointEvery: every})
	createProject(t, l, project("wl", 1, 0))
	for i := 1; i < n; i++ {
		if err := l.Grant(context.Background(), "dpo", "wl", ledger.Budget{Epsilon: 0.25}, "grant "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	closeLedger(t, l)
}

func TestCheckpointsAreSigned(t *testing.T) {
	dir := t.TempDir()
	grants(t, dir, 4, 10)
	if fi, err := os.Stat(filepath.Join(dir, "checkpoint.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint.key: %v, mode %v", err, fi.Mode())
	}
	pub, err := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := ledger.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "checkpoints"))
	// Notes are "text\n\n— sig\n", each followed by a blank line.
	parts := strings.Split(strings.TrimSuffix(string(data), "\n\n"), "\n\n")
	var sizes []int
	for i := 0; i+1 < len(parts); i += 2 {
		n, err := note.Open([]byte(parts[i]+"\n\n"+parts[i+1]+"\n"), note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint %d: %v", i/2+1, err)
		}
		lines := strings.Split(n.Text, "\n")
		size, _ := strconv.Atoi(lines[1])
		head, _ := hex.DecodeString(entries[size-1].Hash)
		if lines[0] != "velo/ledger/v1" || lines[2] != base64.StdEncoding.EncodeToString(head) {
			t.Errorf("checkpoint %q does not sign entry %d's hash", n.Text, size)
		}
		sizes = append(sizes, size)
	}
	if want := []int{4, 8, 10}; !equalInts(sizes, want) {
		t.Errorf("checkpoints at %v, want %v (every 4 and at Close)", sizes, want)
	}
	if rep := mustVerify(t, dir); rep.Checkpoints != 3 || rep.Signed != 10 {
		t.Errorf("verify report = %+v", rep)
	}
}

func TestVerifyAgainstCheckpoints(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	grants(t, dir, 4, 10)
	grants(t, other, 4, 12) // another ledger, another key

	t.Run("checkpoints signed by another key", func(t *testing.T) {
		_, err := ledger.Verify(dir, ledger.VerifyOptions{CheckpointsFile: filepath.Join(other, "checkpoints")})
		if !errors.Is(err, ledger.ErrCorrupt) {
			t.Errorf("Verify: %v, want ErrCorrupt", err)
		}
		_, err = ledger.Verify(dir, ledger.VerifyOptions{PublicKeyFile: filepath.Join(other, "checkpoint.pub")})
		if !errors.Is(err, ledger.ErrCorrupt) {
			t.Errorf("Verify with another public key: %v, want ErrCorrupt", err)
		}
	})
	t.Run("missing named checkpoints file", func(t *testing.T) {
		if _, err := ledger.Verify(dir, ledger.VerifyOptions{CheckpointsFile: filepath.Join(dir, "nope")}); err == nil {
			t.Error("Verify passed without the named checkpoints file")
		}
	})

	// The DPO's copies, kept outside STATE.
	dpo := t.TempDir()
	for _, name := range []string{"checkpoints", "checkpoint.pub"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		os.WriteFile(filepath.Join(dpo, name), b, 0o644)
	}
	dpoOpts := ledger.VerifyOptions{CheckpointsFile: filepath.Join(dpo, "checkpoints"), PublicKeyFile: filepath.Join(dpo, "checkpoint.pub")}
	if _, err := ledger.Verify(dir, dpoOpts); err != nil {
		t.Fatalf("Verify with the DPO's copies: %v", err)
	}

	t.Run("history rewritten with a valid chain", func(t *testing.T) {
		forged := t.TempDir()
		grants(t, forged, 100, 12) // a complete, self-consistent chain and checkpoints of its own
		b, _ := os.ReadFile(filepath.Join(forged, "ledger"))
		victim := snapshot(t, dir)
		os.WriteFile(filepath.Join(victim, "ledger"), b, 0o600)
		_, err := ledger.Verify(victim, dpoOpts)
		var ce *ledger.CorruptError
		if !errors.As(err, &ce) || ce.Seq != 4 || !strings.Contains(err.Error(), "rewritten") {
			t.Errorf("Verify: %v, want a mismatch at the checkpoint of entry 4", err)
		}
	})
	t.Run("entries cut at a frame boundary", func(t *testing.T) {
		victim := snapshot(t, dir)
		path := filepath.Join(victim, "ledger")
		b, _ := os.ReadFile(path)
		offs := frameOffsets(t, b)
		os.WriteFile(path, b[:offs[6]], 0o600) // six entries left, checkpoints cover 8 and 10
		_, err := ledger.Verify(victim, dpoOpts)
		if !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), "removed") {
			t.Errorf("Verify: %v, want removed entries", err)
		}
		if _, err := ledger.Open(victim, ledger.Options{}); !errors.Is(err, ledger.ErrCorrupt) {
			t.Errorf("Open: %v, want ErrCorrupt", err)
		}
	})
}

func TestUnfinishedCheckpointIsCut(t *testing.T) {
	dir := t.TempDir()
	grants(t, dir, 4, 6)
	path := filepath.Join(dir, "checkpoints")
	orig, _ := os.ReadFile(path)
	cut := strings.Index(string(orig), "\n\n") + 7 // the second note, cut inside its signature line
	os.WriteFile(path, append(orig, orig[:cut]...), 0o644)
	if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); err == nil {
		t.Error("Verify passed with an unfinished checkpoint")
	}
	l := open(t, dir, ledger.Options{})
	closeLedger(t, l)
	if after, _ := os.ReadFile(path); string(after) != string(orig) {
		t.Errorf("Open left the checkpoints file as\n%s", after)
	}
	mustVerify(t, dir)
}

func TestCheckpointKeyElsewhere(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	key := filepath.Join(keys, "ledger.key")
	l := open(t, dir, ledger.Options{KeyFile: key})
	createProject(t, l, project("wl", 1, 0))
	closeLedger(t, l)
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a key was written into STATE although KeyFile was set")
	}
	if rep := mustVerify(t, dir); rep.Checkpoints != 1 {
		t.Errorf("verify report = %+v", rep)
	}
	// Without the key, Open must not mint a new one over the existing public key.
	pub, _ := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	if _, err := ledger.Open(dir, ledger.Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open without the key: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "checkpoint.pub")); string(after) != string(pub) {
		t.Error("Open without the key replaced checkpoint.pub")
	}
	os.Remove(filepath.Join(dir, "checkpoint.pub"))
	if _, err := ledger.Open(dir, ledger.Options{}); err == nil || !strings.Contains(err.Error(), "restore the key") {
		t.Errorf("Open without the key and its public key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed Open minted a new key")
	}
	// With another key, the existing checkpoints no longer verify.
	other := filepath.Join(keys, "other.key")
	if _, err := ledger.Open(dir, ledger.Options{KeyFile: other}); err == nil {
		t.Error("Open with another key accepted the existing checkpoints")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
