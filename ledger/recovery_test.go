package ledger_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ledger"
)

// frameOffsets returns the offset of each frame in a ledger file: 4-byte length, 4-byte CRC, body.
func frameOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for off := 0; off < len(data); {
		offs = append(offs, off)
		off += 8 + int(binary.BigEndian.Uint32(data[off:]))
	}
	return offs
}

// snapshot copies a ledger's files (not its lock) into a new directory: the state a crash
// would leave, taken while the ledger is still open.
func snapshot(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"ledger", "checkpoints", "checkpoint.key", "checkpoint.pub"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// crashedLedger builds a ledger (project, three charges), never checkpointed, and returns a
// snapshot of it as a crash would leave it.
func crashedLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{CheckpointEvery: 1000})
	createProject(t, l, project("wl", 5, 0))
	for i := range 3 {
		if _, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT %d", i), 0.5, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return snapshot(t, dir)
}

func TestTornTailRecovery(t *testing.T) {
	tests := []struct {
		name    string
		cut     func(data []byte, last int) []byte // returns the damaged file
		lost    int                                // charges lost with the tail
		tornSeq uint64
	}{
		{"cut mid-body", func(d []byte, last int) []byte { return d[:last+8+10] }, 1, 4},
		{"cut mid-header", func(d []byte, last int) []byte { return d[:last+3] }, 1, 4},
		{"zeros after the last frame", func(d []byte, _ int) []byte { return append(d, make([]byte, 4096)...) }, 0, 5},
		{"half a frame written after the last", func(d []byte, last int) []byte { return append(d, d[last:last+40]...) }, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := crashedLedger(t)
			path := filepath.Join(dir, "ledger")
			data, _ := os.ReadFile(path)
			offs := frameOffsets(t, data)
			damaged := tt.cut(data, offs[len(offs)-1])
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}

			_, err := ledger.Verify(dir, ledger.VerifyOptions{})
			var ce *ledger.CorruptError
			if !errors.As(err, &ce) || !ce.Torn || ce.Seq != tt.tornSeq {
				t.Fatalf("Verify of a torn ledger: %v, want a torn tail at entry %d", err, tt.tornSeq)
			}

			l := open(t, dir, ledger.Options{})
			es := l.Entries("", 0)
			rec := es[len(es)-1]
			wantAt := int64(len(data))
			if tt.lost > 0 {
				wantAt = int64(offs[len(offs)-1])
			}
			if rec.Kind != ledger.KindRecovery || rec.TruncatedAt != wantAt || rec.TruncatedBytes != int64(len(damaged))-wantAt || !strings.Contains(rec.Reason, "torn tail") {
				t.Errorf("last entry = %+v, want a recovery cutting %d bytes at %d", rec, int64(len(damaged))-wantAt, wantAt)
			}
			if st, _ := l.Project("wl"); st.Queries != 3-tt.lost {
				t.Errorf("%d charges survived, want %d", st.Queries, 3-tt.lost)
			}
			if _, err := l.Charge(context.Background(), chargeReq("wl", "SELECT after", 0.5, 0)); err != nil {
				t.Fatalf("charge after recovery: %v", err)
			}
			closeLedger(t, l)
			if rep := mustVerify(t, dir); rep.Recoveries != 1 {
				t.Errorf("verify after recovery: %+v", rep)
			}
		})
	}
}

func TestDamagedFrameRefusesToStart(t *testing.T) {
	tests := []struct {
		name   string
		damage func(data []byte, offs []int)
		seq    uint64
	}{
		{"flipped byte in the second entry", func(d []byte, offs []int) { d[offs[1]+20] ^= 0x01 }, 2},
		{"flipped checksum of the last entry", func(d []byte, offs []int) { d[offs[3]+5] ^= 0x80 }, 4},
		// The file then ends inside the frame, as a torn write would; the checksum tells them apart.
		{"last frame's length grown past the end", func(d []byte, offs []int) {
			n := binary.BigEndian.Uint32(d[offs[3]:])
			binary.BigEndian.PutUint32(d[offs[3]:], n+1000)
		}, 4},
		{"huge length", func(d []byte, offs []int) { d[offs[2]] = 0xff }, 3},
		{"frames swapped", func(d []byte, offs []int) {
			a, b := bytes.Clone(d[offs[2]:offs[3]]), bytes.Clone(d[offs[3]:])
			if len(a) == len(b) {
				copy(d[offs[2]:], b)
				copy(d[offs[3]:], a)
			} else {
				d[offs[2]+9] ^= 1 // keep the case meaningful if sizes differ
			}
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := crashedLedger(t)
			path := filepath.Join(dir, "ledger")
			data, _ := os.ReadFile(path)
			tt.damage(data, frameOffsets(t, data))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := ledger.Open(dir, ledger.Options{})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a damaged ledger")
			}
			var ce *ledger.CorruptError
			if !errors.Is(err, ledger.ErrCorrupt) || !errors.As(err, &ce) || ce.Torn || ce.Seq != tt.seq {
				t.Fatalf("Open: %v, want ErrCorrupt at entry %d", err, tt.seq)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("entry %d", tt.seq)) {
				t.Errorf("message %q does not name entry %d", err, tt.seq)
			}
			if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); !errors.As(err, &ce) || ce.Seq != tt.seq {
				t.Errorf("Verify: %v", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Error("a refused Open changed the ledger file")
			}
		})
	}
}

// TestEveryByteFlipFailsVerify is the acceptance test: flip each byte of a small, closed and
// checkpointed ledger in turn; Verify must fail every time, and Open must refuse every time
// (no flip may pass for a torn tail to be cut). The checkpoints file gets the same treatment.
func TestEveryByteFlipFailsVerify(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{CheckpointEvery: 2})
	createProject(t, l, project("wl", 1, 0))
	c, err := l.Charge(context.Background(), chargeReq("wl", "SELECT count(*) FROM bookings", 0.5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(context.Background(), c, []byte(`{"rows":[[5321.4]]}`)); err != nil {
		t.Fatal(err)
	}
	closeLedger(t, l)
	mustVerify(t, dir)

	for _, name := range []string{"ledger", "checkpoints"} {
		path := filepath.Join(dir, name)
		orig, _ := os.ReadFile(path)
		t.Logf("%s: %d bytes", name, len(orig))
		for i := range orig {
			for _, mask := range []byte{0x01, 0xff} { // the lowest bit, and the whole byte
				flipped := bytes.Clone(orig)
				flipped[i] ^= mask
				if err := os.WriteFile(path, flipped, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); err == nil {
					t.Errorf("%s: Verify passed with byte %d ^ %#x", name, i, mask)
				}
				if mask == 0xff {
					if l, err := ledger.Open(dir, ledger.Options{Logger: nil}); err == nil {
						l.Close()
						t.Errorf("%s: Open accepted byte %d ^ %#x", name, i, mask)
					} else if !errors.Is(err, ledger.ErrCorrupt) {
						t.Errorf("%s: Open with byte %d flipped: %v, want ErrCorrupt", name, i, err)
					}
				}
			}
		}
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, dir)
}

var _ = io.EOF
