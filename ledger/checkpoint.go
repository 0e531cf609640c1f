package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const (
	checkpointOrigin = "velo/ledger/v1"
	keyName          = "velo-ledger"
)

// checkpoint is one signed (size, head hash) pair from a checkpoints file.
type checkpoint struct {
	size   uint64
	hash   [32]byte
	offset int64
}

func signCheckpoint(s note.Signer, size uint64, head [32]byte) ([]byte, error) {
	text := fmt.Sprintf("%s\n%d\n%s\n", checkpointOrigin, size, base64.StdEncoding.EncodeToString(head[:]))
	return note.Sign(&note.Note{Text: text}, s)
}

// parseCheckpoints reads the notes of a checkpoints file (each followed by a blank line) and
// verifies each signature. complete is the length of the prefix made of whole notes: anything
// after it is an append that never finished.
func parseCheckpoints(data []byte, v note.Verifiers) (cps []checkpoint, complete int64, err error) {
	pos := 0
	for pos < len(data) {
		if data[pos] == '\n' {
			pos++
			continue
		}
		start := pos
		split := bytes.Index(data[start:], []byte("\n\n"))
		if split < 0 {
			complete, err = unfinished(data, start)
			return cps, complete, err
		}
		end := start + split + 2
		for bytes.HasPrefix(data[end:], []byte("— ")) {
			nl := bytes.IndexByte(data[end:], '\n')
			if nl < 0 {
				complete, err = unfinished(data, start)
				return cps, complete, err
			}
			end += nl + 1
		}
		if end == start+split+2 {
			if bytes.IndexByte(data[end:], '\n') < 0 { // cut inside the signature line
				complete, err = unfinished(data, start)
				return cps, complete, err
			}
			return cps, 0, fmt.Errorf("checkpoint at offset %d: no signature", start)
		}
		n, err := note.Open(data[start:end], v)
		if err != nil {
			return cps, 0, fmt.Errorf("checkpoint at offset %d: %w", start, err)
		}
		for _, sig := range n.Sigs {
			// note decodes leniently: base64 with non-zero padding bits would verify too, and
			// a checkpoint must have exactly one spelling.
			if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil {
				return cps, 0, fmt.Errorf("checkpoint at offset %d: signature is not canonical base64", start)
			}
		}
		cp, err := parseCheckpointText(n.Text)
		if err != nil {
			return cps, 0, fmt.Errorf("checkpoint at offset %d: %w", start, err)
		}
		cp.offset = int64(start)
		cps = append(cps, cp)
		pos = end
	}
	return cps, int64(len(data)), nil
}

// unfinished returns start as the end of the complete notes if what follows could be a note
// that a crash cut short, and an error if it could not: damage is not a torn append.
func unfinished(data []byte, start int) (int64, error) {
	lines := strings.Split(string(data[start:]), "\n")
	sig := "— " + keyName + " "
	for i, line := range lines {
		last := i == len(lines)-1
		var ok bool
		switch i {
		case 0:
			ok = line == checkpointOrigin || last && strings.HasPrefix(checkpointOrigin, line)
		case 1:
			ok = digits(line) && (last || line != "")
		case 2:
			ok = base64Chars(line) && (last || len(line) == 44)
		case 3:
			ok = line == ""
		case 4:
			ok = last && (strings.HasPrefix(sig, line) || strings.HasPrefix(line, sig) && base64Chars(line[len(sig):]))
		}
		if !ok {
			return 0, fmt.Errorf("checkpoint at offset %d is damaged (line %d)", start, i+1)
		}
	}
	return int64(start), nil
}

func base64Chars(s string) bool {
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func parseCheckpointText(text string) (checkpoint, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != checkpointOrigin {
		return checkpoint{}, fmt.Errorf("not a %s checkpoint", checkpointOrigin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || size == 0 || lines[1] != strconv.FormatUint(size, 10) {
		return checkpoint{}, fmt.Errorf("bad size %q", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != 32 {
		return checkpoint{}, fmt.Errorf("bad hash %q", lines[2])
	}
	cp := checkpoint{size: size}
	copy(cp.hash[:], h)
	return cp, nil
}

// checkCheckpoints compares signed checkpoints with the replayed chain.
func checkCheckpoints(path string, st *state, cps []checkpoint) error {
	for _, cp := range cps {
		if cp.size > st.seq {
			return &CorruptError{File: path, Seq: cp.size, Offset: cp.offset,
				Reason: fmt.Sprintf("a signed checkpoint covers %d entries but the ledger has %d: entries were removed", cp.size, st.seq)}
		}
		if got := st.entries[cp.size-1].Hash; got != fmt.Sprintf("%x", cp.hash) {
			return &CorruptError{File: path, Seq: cp.size, Offset: cp.offset,
				Reason: "the chain's hash differs from the signed checkpoint: history was rewritten"}
		}
	}
	return nil
}

// loadOrCreateKey returns the checkpoint signer from keyPath, creating the key (0600) and its
// verifier key file on first use.
func loadOrCreateKey(keyPath, pubPath string, log *slog.Logger) (note.Signer, note.Verifier, error) {
	b, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		// A verifier key without its signing key means the key was moved or lost; a new key
		// would orphan every checkpoint signed so far.
		if _, err := os.Stat(pubPath); err == nil {
			return nil, nil, fmt.Errorf("ledger: checkpoint key %s is missing but %s exists: restore the key, or move %s away to start a new one", keyPath, pubPath, pubPath)
		}
		skey, vkey, err := note.GenerateKey(rand.Reader, keyName)
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: generate checkpoint key: %w", err)
		}
		if err := writeNew(keyPath, []byte(skey+"\n"), 0o600); err != nil {
			return nil, nil, fmt.Errorf("ledger: write checkpoint key: %w", err)
		}
		if err := os.WriteFile(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("ledger: write checkpoint public key: %w", err)
		}
		if err := syncDir(filepath.Dir(keyPath)); err != nil {
			return nil, nil, err
		}
		log.Info("created checkpoint key", "key", keyPath, "public_key", pubPath)
		b = []byte(skey)
	} else if err != nil {
		return nil, nil, fmt.Errorf("ledger: read checkpoint key: %w", err)
	} else if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("checkpoint key is readable by others", "key", keyPath, "mode", fi.Mode().Perm().String())
	}
	skey := strings.TrimSpace(string(b))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: checkpoint key %s: %w", keyPath, err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: checkpoint key %s: %w", keyPath, err)
	}
	pub, err := os.ReadFile(pubPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.WriteFile(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("ledger: write checkpoint public key: %w", err)
		}
	case err != nil:
		return nil, nil, fmt.Errorf("ledger: read checkpoint public key: %w", err)
	case strings.TrimSpace(string(pub)) != vkey:
		return nil, nil, fmt.Errorf("ledger: %s does not match the key in %s", pubPath, keyPath)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, err
	}
	return signer, verifier, nil
}

// verifierKey derives the public verifier key from a note signer key
// (PRIVATE+KEY+name+hash+base64(0x01 || Ed25519 seed)).
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // base64 may contain "+"
	if len(parts) != 5 {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// readVerifier loads a verifier key file (as written next to the ledger: checkpoint.pub).
func readVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: read public key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("ledger: public key %s: %w", path, err)
	}
	return v, nil
}

// writeNew creates path with data and fsyncs it; it never overwrites.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
