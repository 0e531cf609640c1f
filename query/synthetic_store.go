package query

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/velo-fse/velo/synthesize"
)

// A synthetic release's rows are kept (Config.ReleaseDir) so that the same request again is
// answered by the same release at no cost, as queries and marginals are from the ledger,
// which records everything of the release but its rows. One file per release,
// RELEASE_DIR/<release id>.rows: zstd of a header (syntheticRowsMagic, then the columns and
// the rows as uint32 little-endian) followed by each column's level indices (int32
// little-endian), column after column. The release records the SHA-256 of that payload
// (rows_sha256), checked when the file is read back: a file changed or lost is not served.

const syntheticRowsMagic = "velo/synthetic-rows/v1\n"

// syntheticRowsFile is where a release's rows are kept.
func syntheticRowsFile(dir, releaseID string) string {
	return filepath.Join(dir, releaseID+".rows")
}

// syntheticRowsPayload is the kept form of t's rows, before compression.
func syntheticRowsPayload(t *synthesize.Table) []byte {
	n := t.Rows()
	b := make([]byte, 0, len(syntheticRowsMagic)+8+4*n*len(t.Columns))
	b = append(b, syntheticRowsMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Columns)))
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, col := range t.Columns {
		for _, v := range col {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
	}
	return b
}

func rowsDigest(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:])
}

// keepSyntheticRows writes a release's rows to dir (created if missing), durably, and
// returns their digest for the release record.
func keepSyntheticRows(dir, releaseID string, t *synthesize.Table) (string, error) {
	payload := syntheticRowsPayload(t)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return "", err
	}
	packed := enc.EncodeAll(payload, nil)
	enc.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".rows-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.Write(packed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, syntheticRowsFile(dir, releaseID))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return "", err
	}
	return rowsDigest(payload), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// errRowsChanged: a kept release's rows do not match the digest its release records.
var errRowsChanged = errors.New("the rows do not match the digest the release records (changed since they were kept)")

// readSyntheticRows reads back the rows of release s, kept in dir, as a table of domain d:
// the digest must be the one s records, the shape s's (its attributes and rows), and every
// level index one of its attribute's levels.
func readSyntheticRows(dir string, s *Synthetic, d synthesize.Domain) (*synthesize.Table, error) {
	if s.RowsSHA256 == "" {
		return nil, errors.New("the release records no digest of its rows (they were not kept)")
	}
	f, err := os.Open(syntheticRowsFile(dir, s.ReleaseID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := len(syntheticRowsMagic) + 8 + 4*s.Rows*len(d.Sizes)
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(want)+1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	payload, err := io.ReadAll(io.LimitReader(dec, int64(want)+1))
	if err != nil {
		return nil, err
	}
	if rowsDigest(payload) != s.RowsSHA256 {
		return nil, errRowsChanged
	}
	// The digest matched what was written: the shape is checked all the same, against the
	// attributes this request resolved.
	if len(payload) != want || !bytes.HasPrefix(payload, []byte(syntheticRowsMagic)) {
		return nil, fmt.Errorf("%d bytes of rows, want %d for %d rows of %d columns", len(payload), want, s.Rows, len(d.Sizes))
	}
	body := payload[len(syntheticRowsMagic):]
	if c, n := binary.LittleEndian.Uint32(body), binary.LittleEndian.Uint32(body[4:]); int(c) != len(d.Sizes) || int(n) != s.Rows {
		return nil, fmt.Errorf("rows of %d columns and %d rows, want %d and %d", c, n, len(d.Sizes), s.Rows)
	}
	body = body[8:]
	t := synthesize.NewTable(d, s.Rows)
	for j, col := range t.Columns {
		for i := range col {
			v := int32(binary.LittleEndian.Uint32(body))
			body = body[4:]
			if v < 0 || int(v) >= d.Sizes[j] {
				return nil, fmt.Errorf("row %d of %s: level %d of %d", i, d.Names[j], v, d.Sizes[j])
			}
			col[i] = v
		}
	}
	return t, nil
}

// ErrRowsNotKept: a synthetic release's rows are not kept (no release directory, pruned,
// kept by another replica) or no longer match the digest its release records.
var ErrRowsNotKept = errors.New("the rows of this synthetic release are not kept here")

// SyntheticRelease rebuilds a synthetic release from its record (the JSON the ledger
// holds, as GET /v1/projects/{id}/releases/{release_id} reads it) and the rows kept for
// it, so that WriteParquet writes the same rows again; no budget, nothing read but the
// kept rows. It fails with ErrRowsNotKept when they cannot be served.
func (e *Engine) SyntheticRelease(recorded json.RawMessage) (*Synthetic, error) {
	s := new(Synthetic)
	if err := json.Unmarshal(recorded, s); err != nil {
		return nil, fmt.Errorf("synthetic release record: %w", err)
	}
	d := synthesize.Domain{}
	for _, a := range s.Attributes {
		if err := a.restoreValues(); err != nil {
			return nil, fmt.Errorf("synthetic release %s: %w", s.ReleaseID, err)
		}
		d.Names = append(d.Names, a.Name)
		d.Sizes = append(d.Sizes, len(a.values))
	}
	if e.releaseDir == "" {
		return nil, ErrRowsNotKept
	}
	tab, err := readSyntheticRows(e.releaseDir, s, d)
	if err != nil {
		e.log.Warn("the rows of a synthetic release cannot be served", "release_id", s.ReleaseID, "err", err)
		return nil, ErrRowsNotKept
	}
	s.data = tab
	return s, nil
}

// restoreValues rebuilds a recorded attribute's levels as the engine resolved them, from
// what the record holds (Levels, Edges, Type), for Mid: a bin's index, a month's first day,
// a domain value in the Go type WriteParquet writes for Type; NULL stays NULL.
func (a *MarginalAttribute) restoreValues() error {
	a.values = make([]any, len(a.Levels))
	for i, l := range a.Levels {
		if l == nil {
			continue
		}
		var ok bool
		switch {
		case a.Kind == AttrBins:
			a.values[i], ok = int64(i), i+1 < len(a.Edges)
		case a.Kind == AttrMonth:
			var s string
			if s, ok = l.(string); ok {
				t, err := time.Parse(time.DateOnly, s)
				a.values[i], ok = t, err == nil
			}
		case a.Type == "BIGINT":
			var f float64
			if f, ok = l.(float64); ok {
				a.values[i], ok = int64(f), f == math.Trunc(f) && math.Abs(f) < 1<<53
			}
		case a.Type == "BOOLEAN":
			a.values[i], ok = l.(bool)
		default:
			a.values[i], ok = l, true
		}
		if !ok {
			return fmt.Errorf("attribute %s: level %d (%v) is not a %s level", a.Name, i, l, a.Type)
		}
	}
	return nil
}
