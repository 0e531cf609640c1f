package ledger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/velo-fse/velo/ledger"
)

// ledgerTemplate is a valid ledger, as a crash would leave it: files and what Open read.
type ledgerTemplate struct {
	files   map[string][]byte // ledger, checkpoints, checkpoint.key, checkpoint.pub
	entries []ledger.Entry
	ends    []int  // end offset of each entry's frame in the ledger file
	signed  uint64 // entries covered by the last checkpoint
}

var templateFiles = []string{"ledger", "checkpoints", "checkpoint.key", "checkpoint.pub"}

// buildTemplate writes a ledger of every kind of entry but recovery, checkpointed every
// three entries and snapshotted before Close: entries 1–6 are signed, 7 and 8 are not.
func buildTemplate(tb testing.TB) *ledgerTemplate {
	tb.Helper()
	dir := tb.TempDir()
	// A fixed signing key (Ed25519 signs deterministically) and clock make the template the
	// same bytes in every process, so an input means the same damage everywhere.
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)), "velo-ledger")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint.key"), []byte(skey+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	l, err := ledger.Open(dir, ledger.Options{CheckpointEvery: 3, Now: newClock().Now})
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(l.CreateProject(ctx, "dpo", project("wl", 1, 1e-6)))
	must(l.Grant(ctx, "dpo", "wl", ledger.Budget{Epsilon: 0.5}, "second phase"))
	c, err := l.Charge(ctx, chargeReq("wl", "SELECT region, COUNT(*) FROM booking GROUP BY region -- è", 0.25, 0))
	must(err)
	must(l.Release(ctx, c, json.RawMessage(`{"rows":[["120",5321.4]],"ci":[[null,[5200.1,5442.7]]]}`)))
	c, err = l.Charge(ctx, chargeReq("wl", "SELECT AVG(wait_days) FROM booking", 0.1, 1e-7))
	must(err)
	must(l.Refund(ctx, c, "failed before reading data"))
	_, err = l.Charge(ctx, chargeReq("wl", "SELECT COUNT(DISTINCT pid) FROM person", 0.05, 0))
	must(err)
	must(l.CreateProject(ctx, "dpo", project("er", 2, 0)))

	tmpl := &ledgerTemplate{files: map[string][]byte{}, entries: l.Entries("", 0), signed: 6}
	for _, name := range templateFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.files[name] = b
	}
	data := tmpl.files["ledger"]
	for off := 0; off < len(data); {
		off += 8 + int(binary.BigEndian.Uint32(data[off:]))
		tmpl.ends = append(tmpl.ends, off)
	}
	if len(tmpl.entries) != 8 || len(tmpl.ends) != 8 {
		tb.Fatalf("template: %d entries, %d frames", len(tmpl.entries), len(tmpl.ends))
	}
	return tmpl
}

// FuzzLedgerRecovery damages a valid ledger — cuts bytes off the end of the ledger or of
// its checkpoints, flips bytes, appends bytes — and opens it. Open either refuses with a
// *CorruptError, leaving the files as they were, or accepts a prefix of the original
// entries, byte for byte, followed by at most one recovery entry that records exactly the
// bytes it cut; it never accepts fewer entries than the checkpoints sign, and after Close
// Verify passes on what remains. Verify never passes a ledger Open refused.
//
// Arguments: cut is how many bytes to cut off the end (modulo the file's size + 1);
// flips is a list of (16-bit offset modulo the size, xor mask) triples; tail is appended;
// the low bit of target picks the checkpoints file instead of the ledger.
func FuzzLedgerRecovery(f *testing.F) {
	f.Add(uint16(0), []byte{}, []byte{}, uint8(0))                        // intact
	f.Add(uint16(10), []byte{}, []byte{}, uint8(0))                       // cut inside the last frame
	f.Add(uint16(1251), []byte{}, []byte{}, uint8(0))                     // cut into the signed entries
	f.Add(uint16(0), []byte{0x00, 0x30, 0x01}, []byte{}, uint8(0))        // a flipped bit in entry 1
	f.Add(uint16(0), []byte{0x00, 0x02, 0x80}, []byte{}, uint8(0))        // a damaged length
	f.Add(uint16(0), []byte{}, make([]byte, 64), uint8(0))                // zeros after the last frame
	f.Add(uint16(0), []byte{}, []byte{0, 0, 1, 0, 0xde, 0xad}, uint8(0))  // half a frame after the last
	f.Add(uint16(7), []byte{}, []byte{}, uint8(1))                        // an unfinished checkpoint
	f.Add(uint16(0), []byte{0x00, 0x20, 0x02}, []byte{}, uint8(1))        // a damaged checkpoint
	f.Add(uint16(0), []byte{}, []byte("velo/ledger/v1\n9\n\n"), uint8(1)) // a checkpoint without signature
	f.Add(uint16(1), []byte{0x01, 0x00, 0xff, 0x02, 0x00, 0x01}, []byte{0}, uint8(0))
	tmpl := buildTemplate(f)
	f.Fuzz(func(t *testing.T, cut uint16, flips, tail []byte, target uint8) {
		files := map[string][]byte{}
		for name, b := range tmpl.files {
			files[name] = bytes.Clone(b)
		}
		victim := "ledger"
		if target&1 == 1 {
			victim = "checkpoints"
		}
		v := files[victim]
		v = v[:len(v)-int(cut)%(len(v)+1)]
		for i := 0; i+3 <= len(flips) && len(v) > 0; i += 3 {
			v[int(binary.BigEndian.Uint16(flips[i:]))%len(v)] ^= flips[i+2]
		}
		files[victim] = append(v, tail...)
		dir := t.TempDir()
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data := files["ledger"]

		l, err := ledger.Open(dir, ledger.Options{Now: newClock().Now})
		if err != nil {
			var ce *ledger.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ledger.ErrCorrupt) {
				t.Fatalf("Open: %v, want a *CorruptError", err)
			}
			for name, b := range files {
				if after, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(after, b) {
					t.Errorf("a refused Open changed %s", name)
				}
			}
			if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); err == nil {
				t.Errorf("Verify passed a ledger Open refused (%v)", ce)
			}
			return
		}
		entries := l.Entries("", 0)
		kept := len(entries)
		recovered := kept > 0 && entries[kept-1].Kind == ledger.KindRecovery
		if recovered {
			kept--
		}
		if kept > len(tmpl.entries) {
			t.Fatalf("Open accepted %d entries, the ledger had %d", kept, len(tmpl.entries))
		}
		for i := range kept {
			if !reflect.DeepEqual(entries[i], tmpl.entries[i]) {
				t.Fatalf("Open accepted a modified entry %d:\n got %+v\nwant %+v", i+1, entries[i], tmpl.entries[i])
			}
		}
		if victim == "ledger" && uint64(kept) < tmpl.signed {
			t.Errorf("Open accepted %d entries, the checkpoints sign %d", kept, tmpl.signed)
		}
		prefix := 0
		if kept > 0 {
			prefix = tmpl.ends[kept-1]
		}
		switch {
		case recovered:
			rec := entries[kept]
			if rec.Seq != uint64(kept+1) || rec.TruncatedAt != int64(prefix) || rec.TruncatedBytes != int64(len(data)-prefix) {
				t.Errorf("recovery %+v after %d entries, want the %d bytes from offset %d cut", rec, kept, len(data)-prefix, prefix)
			}
		case !bytes.Equal(data, tmpl.files["ledger"][:prefix]):
			t.Errorf("Open accepted %d entries of a %d-byte ledger without cutting anything", kept, len(data))
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
		if err != nil {
			t.Fatalf("Verify after recovery: %v", err)
		}
		if rep.Entries != len(entries) {
			t.Errorf("Verify read %d entries, Open %d", rep.Entries, len(entries))
		}
	})
}
