package ingest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/zeebo/xxh3"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// Bucketed staging of the bookings, and their final write without DuckDB.
//
// The mapping workers encode each booking row (a compact binary form of its values, with
// its staging sequence) into one of B buckets by the leading bits of its pid, appending
// each bucket to a file of its own in DATA's temporary folder. The buckets partition the
// pids into ranges, in pid order, each small enough to sort in memory (bucketBytes).
// finalize then reads the buckets in parallel, one per worker: it orders each bucket's
// rows by (pid, rank hash, _seq), drops a booking sent twice but the last sent, numbers
// each person's rows 1..n (_velo_rank) and encodes them as zstd row groups, which are
// committed to the table's one Parquet file in bucket order: the file is sorted by pid and
// rank, as DuckDB's window and sort wrote it, with no window, no global sort, and without
// copying the rows into DuckDB.
// An append stages the existing table's rows in the buckets too (addExisting), each with
// a _seq below every new row's, so that the same dedupe replaces a booking sent again and
// all are ranked again. Bookings staged through DuckDB's appender instead (tests) are
// written out as the staging Parquet files of columnarStage for finalize's SQL.
//
// The rank hash is a keyed pseudo-random function of the row's values (rankHasher): equal
// rows hash alike, and tie.

// bucketBytes is the target size of a bucket's encoded rows: about 160,000 bookings.
const bucketBytes = 24 << 20

// bucketBuffers is the most a worker buffers of all buckets' encoded rows: it appends a
// bucket's to its file at bucketBuffers / buckets, between 4 and 128 KiB.
const bucketBuffers = 16 << 20

// Value kinds of the encoded columns.
const (
	kindUUID = iota
	kindVarchar
	kindDate
	kindBool
	kindInt
)

func kindOf(typ string) (int, error) {
	switch typ {
	case "UUID":
		return kindUUID, nil
	case "VARCHAR":
		return kindVarchar, nil
	case "DATE":
		return kindDate, nil
	case "BOOLEAN":
		return kindBool, nil
	case "INTEGER":
		return kindInt, nil
	}
	return 0, fmt.Errorf("type %s is not staged in buckets", typ)
}

// bucketStage stages one table's rows, from the mapping workers, in pid-range buckets.
type bucketStage struct {
	t     Table
	kinds []int
	dir   string
	files []*os.File
	locks []sync.Mutex
	flush int // a worker's buffered rows of a bucket at which it appends them to the file

	mu   sync.Mutex
	err  error
	pool chan [][]byte
	file int // the input file being read (the high bits of _seq)
	rows int64
	done bool
}

// newBucketStage stages t's rows in enough buckets for size bytes of input.
func newBucketStage(t Table, dir string, size int64) (*bucketStage, error) {
	if t.Columns[0].Name != "pid" || t.Columns[0].Type != "UUID" {
		return nil, fmt.Errorf("stage %s: the first column is not the pid", t.Name)
	}
	bs := &bucketStage{t: t, dir: dir}
	for _, c := range t.Columns {
		k, err := kindOf(c.Type)
		if err != nil {
			return nil, fmt.Errorf("stage %s.%s: %w", t.Name, c.Name, err)
		}
		bs.kinds = append(bs.kinds, k)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := int(min(1<<12, max(1, size/bucketBytes+1)))
	bs.locks = make([]sync.Mutex, n)
	bs.flush = min(128<<10, max(4<<10, bucketBuffers/n))
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-bucket-%04d", t.Name, i)))
		if err != nil {
			bs.close()
			return nil, err
		}
		bs.files = append(bs.files, f)
	}
	return bs, nil
}

// bucketOf is the bucket of a pid: its leading 16 bits scaled to the buckets, so the
// buckets hold consecutive pid ranges. A row without a pid goes last, as NULLs sort.
func bucketOf(pid []byte, n int) int {
	if pid == nil {
		return n - 1
	}
	return int((uint32(pid[0])<<8 | uint32(pid[1])) * uint32(n) >> 16)
}

// startFile starts the rows of input file n (its _seq's high bits).
func (bs *bucketStage) startFile(n int) {
	bs.mu.Lock()
	bs.file = n
	bs.mu.Unlock()
}

func (bs *bucketStage) fail(err error) {
	bs.mu.Lock()
	if bs.err == nil {
		bs.err = fmt.Errorf("stage %s rows: %w", bs.t.Name, err)
	}
	bs.mu.Unlock()
}

// failed is the first error of a worker's write, if any.
func (bs *bucketStage) failed() error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.err
}

// write stages the unit's rows (outcome outRow) and drops them from the records, which
// apply then only counts. Safe for concurrent use by the mapping workers.
func (bs *bucketStage) write(idx int, recs []record) {
	bs.mu.Lock()
	if bs.err != nil || bs.done {
		bs.mu.Unlock()
		return
	}
	base := int64(bs.file)<<seqFileShift | int64(idx)<<seqUnitShift
	if bs.pool == nil {
		bs.pool = make(chan [][]byte, 64)
	}
	var bufs [][]byte
	select {
	case bufs = <-bs.pool:
	default:
		bufs = make([][]byte, len(bs.files))
	}
	bs.mu.Unlock()
	n := int64(0)
	for i := range recs {
		rec := &recs[i]
		if rec.outcome != outRow || rec.table != bs.t.Name {
			continue
		}
		var pid []byte
		var err error
		b := 0
		if v := rec.booking; v != nil {
			if !v.isNull(0) {
				pid = v.pid[:]
			}
			b = bucketOf(pid, len(bs.files))
			bufs[b] = bs.encodeValues(bufs[b], base|int64(i), v)
		} else {
			if len(rec.row) != len(bs.t.Columns) {
				bs.fail(fmt.Errorf("a row of %d values for %d columns", len(rec.row), len(bs.t.Columns)))
				break
			}
			if u, ok := rec.row[0].(duckdb.UUID); ok {
				pid = u[:]
			}
			b = bucketOf(pid, len(bs.files))
			if bufs[b], err = bs.encode(bufs[b], base|int64(i), rec.row); err != nil {
				bs.fail(err)
				break
			}
		}
		rec.row, rec.booking = nil, nil
		rec.staged = true
		n++
		if len(bufs[b]) >= bs.flush {
			if err := bs.flushBucket(b, bufs[b]); err != nil {
				bs.fail(err)
				break
			}
			bufs[b] = bufs[b][:0]
		}
	}
	bs.mu.Lock()
	bs.rows += n
	select {
	case bs.pool <- bufs:
	default:
		// More buffers than the pool holds: never with the pipeline's bounded workers.
		bs.err = errors.Join(bs.err, fmt.Errorf("stage %s rows: too many staging buffers", bs.t.Name))
	}
	bs.mu.Unlock()
}

func (bs *bucketStage) flushBucket(b int, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	bs.locks[b].Lock()
	defer bs.locks[b].Unlock()
	_, err := bs.files[b].Write(buf)
	return err
}

// encode appends a row: its _seq (8 bytes), then per column 0 for NULL or 1 and the
// value: a UUID's 16 bytes, a VARCHAR's length (uvarint) and bytes, a DATE's days since
// 1970 and an INTEGER as 4 bytes, a BOOLEAN as 1 byte. The values are those the mappers
// give DuckDB's appender (stageLeaf's conversions).
func (bs *bucketStage) encode(dst []byte, seq int64, row []any) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(seq))
	for j, v := range row {
		if v == nil {
			dst = append(dst, 0)
			continue
		}
		ok := true
		switch bs.kinds[j] {
		case kindUUID:
			var u duckdb.UUID
			if u, ok = v.(duckdb.UUID); ok {
				dst = appendFixed(dst, u[:])
			}
		case kindVarchar:
			var s string
			if s, ok = v.(string); ok {
				dst = appendVarchar(dst, s)
			}
		case kindDate:
			var t time.Time
			if t, ok = v.(time.Time); ok {
				// As DuckDB's appender converts a time.Time to a DATE.
				dst = appendInt32(dst, int32(t.Unix()/(24*60*60)))
			}
		case kindBool:
			var b bool
			if b, ok = v.(bool); ok {
				dst = appendBool(dst, b)
			}
		case kindInt:
			switch n := v.(type) {
			case int32:
				dst = appendInt32(dst, n)
			case int:
				dst = appendInt32(dst, int32(n))
			default:
				ok = false
			}
		}
		if !ok {
			return dst, fmt.Errorf("column %s: a %T", bs.t.Columns[j].Name, v)
		}
	}
	return dst, nil
}

// encodeValues appends a row given as typed values (the booking table's), encoded as
// encode encodes the same values given as a row.
func (bs *bucketStage) encodeValues(dst []byte, seq int64, v *bookingValues) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(seq))
	for j, k := range bs.kinds {
		if v.isNull(j) {
			dst = append(dst, 0)
			continue
		}
		switch k {
		case kindUUID:
			dst = appendFixed(dst, v.pid[:])
		case kindVarchar:
			dst = appendVarchar(dst, v.str[j])
		case kindDate, kindInt:
			dst = appendInt32(dst, v.i32[j])
		case kindBool:
			dst = appendBool(dst, v.flag[j])
		}
	}
	return dst
}

// rowEnd is the end of the row whose values (after its _seq) start at off.
func (bs *bucketStage) rowEnd(buf []byte, off int) (int, error) {
	for _, k := range bs.kinds {
		if off >= len(buf) {
			return 0, io.ErrUnexpectedEOF
		}
		if buf[off] == 0 {
			off++
			continue
		}
		off++
		switch k {
		case kindUUID:
			off += 16
		case kindVarchar:
			n, w := binary.Uvarint(buf[off:])
			if w <= 0 {
				return 0, io.ErrUnexpectedEOF
			}
			off += w + int(n)
		case kindDate, kindInt:
			off += 4
		case kindBool:
			off++
		}
	}
	if off > len(buf) {
		return 0, io.ErrUnexpectedEOF
	}
	return off, nil
}

// values appends the parquet values of the row whose values start at off, the j-th as
// leaf column col[j]; strings and UUIDs refer to buf.
func (bs *bucketStage) values(dst []parquet.Value, buf []byte, off int, col []int) []parquet.Value {
	for j, k := range bs.kinds {
		var v parquet.Value
		v, off = decodeValue(buf, off, k, col[j])
		dst = append(dst, v)
	}
	return dst
}

// finish flushes every worker's buffers; the stage takes no more rows.
func (bs *bucketStage) finish() error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.done {
		return bs.err
	}
	bs.done = true
	for bs.pool != nil {
		select {
		case bufs := <-bs.pool:
			for b, buf := range bufs {
				if err := bs.flushBucket(b, buf); err != nil && bs.err == nil {
					bs.err = fmt.Errorf("stage %s rows: %w", bs.t.Name, err)
				}
			}
			continue
		default:
		}
		break
	}
	return bs.err
}

// close closes the bucket files.
func (bs *bucketStage) close() {
	for _, f := range bs.files {
		f.Close()
	}
	bs.files = nil
}

// read returns bucket b's encoded rows.
func (bs *bucketStage) read(b int) ([]byte, error) {
	bs.locks[b].Lock()
	defer bs.locks[b].Unlock()
	f := bs.files[b]
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, info.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// toColumnar writes the buckets' rows into cs's staging Parquet files, for finalize's SQL
// (an append). Each row keeps its _seq.
func (bs *bucketStage) toColumnar(cs *columnarStage) error {
	if err := bs.finish(); err != nil {
		return err
	}
	w, err := cs.writer()
	if err != nil {
		return err
	}
	defer cs.release(w)
	// The staging file's leaf column of each of the table's columns, and of _seq and
	// _doc_seq.
	col := make([]int, len(bs.kinds)+2)
	for p, j := range cs.src {
		col[j] = p
	}
	for b := range bs.files {
		buf, err := bs.read(b)
		if err != nil {
			return err
		}
		for off := 0; off < len(buf); {
			seq := int64(binary.LittleEndian.Uint64(buf[off:]))
			start := off + 8
			end, err := bs.rowEnd(buf, start)
			if err != nil {
				return fmt.Errorf("stage %s rows: bucket %d: %w", bs.t.Name, b, err)
			}
			vals := bs.values(make([]parquet.Value, 0, len(col)), buf, start, col)
			vals = append(vals, parquet.Int64Value(seq).Level(0, 0, col[len(bs.kinds)]),
				parquet.NullValue().Level(0, 0, col[len(bs.kinds)+1]))
			// The writer wants each row's values in schema order.
			slices.SortFunc(vals, func(a, b parquet.Value) int { return a.Column() - b.Column() })
			w.rows = append(w.rows, vals)
			if len(w.rows) == 4096 {
				if err := w.write(cs); err != nil {
					return err
				}
			}
			off = end
		}
	}
	return w.write(cs)
}

// rankHasher is the keyed hash that orders a person's rows for _velo_rank: AES-128, under a
// key derived from the pseudonymization key for the table, of the row's 128-bit XXH3
// digest (seeded by the key too). Equal rows hash alike; without the key the order cannot
// be predicted from the rows.
type rankHasher struct {
	block cipher.Block
	seed  uint64
}

func newRankHasher(ps *pseudonymize.Pseudonymizer, table string) (*rankHasher, error) {
	use := "person-rank-aes/" + table
	var key [16]byte
	binary.LittleEndian.PutUint64(key[:8], ps.Seed(use+"/k0"))
	binary.LittleEndian.PutUint64(key[8:], ps.Seed(use+"/k1"))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return &rankHasher{block: block, seed: ps.Seed(use + "/digest")}, nil
}

// sum is the rank hash of an encoded row; scratch is 16 bytes of the caller's (the
// block cipher's buffers escape to the heap).
func (h *rankHasher) sum(row, scratch []byte) uint64 {
	d := xxh3.Hash128Seed(row, h.seed)
	binary.BigEndian.PutUint64(scratch[:8], d.Hi)
	binary.BigEndian.PutUint64(scratch[8:16], d.Lo)
	h.block.Encrypt(scratch[:16], scratch[:16])
	return binary.BigEndian.Uint64(scratch[:8])
}

// sortedRow is one row of a bucket being written: its pid (as two big-endian halves;
// null: NULL, sorted last), rank hash and _seq, by which the rows are ordered, where its
// values start in the bucket's buffer, and its rank (-1: dropped, a booking sent again
// later).
type sortedRow struct {
	p0, p1, h uint64
	seq       int64
	off       int
	rank      int64
	null      bool
}

func compareRows(x, y *sortedRow) int {
	switch {
	case x.null != y.null:
		return boolCmp(x.null, y.null)
	case x.p0 != y.p0:
		return cmpU64(x.p0, y.p0)
	case x.p1 != y.p1:
		return cmpU64(x.p1, y.p1)
	case x.h != y.h:
		return cmpU64(x.h, y.h)
	}
	return cmpU64(uint64(x.seq), uint64(y.seq))
}

func samePerson(x, y *sortedRow) bool {
	return x.null == y.null && x.p0 == y.p0 && x.p1 == y.p1
}

// writeSorted writes the staged rows as the table's Parquet file out, sorted by pid and
// rank, with the person ranks (the column dataset.PersonRankColumn) by hasher. It returns
// the rows written, the staged rows dropped as a booking sent again later, and the
// existing rows (addExisting) dropped as a booking the staged rows send again.
func (bs *bucketStage) writeSorted(ctx context.Context, out string, hasher *rankHasher, workers int) (written, dropped, replaced int64, err error) {
	if err := bs.finish(); err != nil {
		return 0, 0, 0, err
	}
	schema, err := finalSchema(bs.t)
	if err != nil {
		return 0, 0, 0, err
	}
	f, err := os.Create(out)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := parquet.NewWriter(f, schema,
		parquet.Compression(&zstdCodec{}),
		parquet.MaxRowsPerRowGroup(finalRowGroup),
		// No statistics in each page's header (DuckDB neither writes nor reads them); the
		// column chunks' statistics and the page index stay.
		parquet.DataPageStatistics(false),
		parquet.CreatedBy("velo", "", ""))
	keyCol := -1
	if bs.t.Name == "booking" {
		keyCol = slices.IndexFunc(bs.t.Columns, func(c Column) bool { return c.Name == "booking_key" })
	}
	type result struct {
		groups                     []*parquet.ConcurrentRowGroupWriter
		written, dropped, replaced int64
		err                        error
	}
	n := len(bs.files)
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	// At most workers buckets are read and encoded ahead of the one being committed.
	slots := make(chan struct{}, max(1, workers))
	go func() {
		for b := range n {
			slots <- struct{}{}
			go func() {
				var r result
				if r.err = ctx.Err(); r.err == nil {
					r.groups, r.written, r.dropped, r.replaced, r.err = bs.prepare(w, b, hasher, keyCol)
				}
				results[b] <- r
			}()
		}
	}()
	for b := range n {
		r := <-results[b]
		if r.err == nil && err == nil {
			for _, g := range r.groups {
				if _, cerr := g.Commit(); cerr != nil {
					r.err = cerr
					break
				}
			}
		}
		if r.err != nil && err == nil {
			err = fmt.Errorf("write %s: %w", bs.t.Name, r.err)
		}
		written += r.written
		dropped += r.dropped
		replaced += r.replaced
		<-slots
	}
	if err != nil {
		return 0, 0, 0, err
	}
	if err := w.Close(); err != nil {
		return 0, 0, 0, fmt.Errorf("write %s: %w", bs.t.Name, err)
	}
	return written, dropped, replaced, nil
}

// finalRowGroup is the row group size of a table's Parquet, as DuckDB's COPY writes it.
const finalRowGroup = 122880

// prepare reads bucket b, orders and ranks its rows and encodes them as row groups of w.
// It counts the rows written, and the staged and the existing rows dropped.
func (bs *bucketStage) prepare(w *parquet.Writer, b int, hasher *rankHasher, keyCol int) (groups []*parquet.ConcurrentRowGroupWriter, written, dropped, replaced int64, err error) {
	buf, err := bs.read(b)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	rows := make([]sortedRow, 0, len(buf)/100)
	scratch := make([]byte, 16)
	for off := 0; off < len(buf); {
		r := sortedRow{seq: int64(binary.LittleEndian.Uint64(buf[off:])), off: off + 8}
		end, err := bs.rowEnd(buf, r.off)
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("bucket %d: %w", b, err)
		}
		r.h = hasher.sum(buf[r.off:end], scratch)
		if r.null = buf[r.off] == 0; !r.null {
			r.p0 = binary.BigEndian.Uint64(buf[r.off+1:])
			r.p1 = binary.BigEndian.Uint64(buf[r.off+9:])
		}
		rows = append(rows, r)
		off = end
	}
	slices.SortFunc(rows, func(x, y sortedRow) int { return compareRows(&x, &y) })
	// Each person's rows: a booking sent twice keeps only the version sent last (the
	// highest _seq of its (pid, booking_key)); the rest are numbered in order.
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && samePerson(&rows[j], &rows[i]) {
			j++
		}
		group := rows[i:j]
		if keyCol > 0 && len(group) > 1 {
			bs.dropResent(buf, group, keyCol)
		}
		rank := int64(0)
		for k := range group {
			switch {
			case group[k].rank >= 0:
				rank++
				group[k].rank = rank
			case group[k].seq < 0:
				replaced++ // an existing row (existingSeq)
			default:
				dropped++
			}
		}
		i = j
	}
	// The rows go to the row groups column by column, chunk by chunk; each row group is
	// compressed here, in parallel with the other buckets, not at its commit. The bucket's
	// row groups are of even size, at most finalRowGroup rows.
	kept := 0
	for i := range rows {
		if rows[i].rank > 0 {
			kept++
		}
	}
	groupRows := kept
	if n := (kept + finalRowGroup - 1) / finalRowGroup; n > 1 {
		groupRows = (kept + n - 1) / n
	}
	const chunk = 4096
	cols := make([][]parquet.Value, len(bs.kinds)+1)
	for j := range cols {
		cols[j] = make([]parquet.Value, 0, chunk)
	}
	var g *parquet.ConcurrentRowGroupWriter
	inChunk, inGroup := 0, 0
	flush := func() error {
		if inChunk == 0 {
			return nil
		}
		if g == nil {
			g = w.BeginRowGroup()
			groups = append(groups, g)
		}
		for j, cw := range g.ColumnWriters() {
			if _, err := cw.WriteRowValues(cols[j]); err != nil {
				return err
			}
			cols[j] = cols[j][:0]
		}
		inGroup += inChunk
		inChunk = 0
		if inGroup >= groupRows {
			if err := g.Flush(); err != nil {
				return err
			}
			g, inGroup = nil, 0
		}
		return nil
	}
	rankCol := len(bs.kinds)
	for i := range rows {
		r := &rows[i]
		if r.rank <= 0 {
			continue
		}
		bs.columnValues(cols, buf, r.off)
		cols[rankCol] = append(cols[rankCol], parquet.Int64Value(r.rank).Level(0, 1, rankCol))
		written++
		if inChunk++; inChunk == chunk || inGroup+inChunk == groupRows {
			if err := flush(); err != nil {
				return nil, 0, 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, 0, 0, 0, err
	}
	if g != nil {
		if err := g.Flush(); err != nil {
			return nil, 0, 0, 0, err
		}
	}
	return groups, written, dropped, replaced, nil
}

// columnValues appends the values of the row whose values start at off to cols, the j-th
// column's to cols[j], as leaf column j; strings and UUIDs refer to buf.
func (bs *bucketStage) columnValues(cols [][]parquet.Value, buf []byte, off int) {
	for j, k := range bs.kinds {
		var v parquet.Value
		v, off = decodeValue(buf, off, k, j)
		cols[j] = append(cols[j], v)
	}
}

// decodeValue is the encoded value of kind k at off in buf as leaf column col's parquet
// value (a NULL at definition level 0; strings and UUIDs refer to buf), and the offset of
// the value after it.
func decodeValue(buf []byte, off int, k, col int) (parquet.Value, int) {
	if buf[off] == 0 {
		return parquet.NullValue().Level(0, 0, col), off + 1
	}
	off++
	var v parquet.Value
	switch k {
	case kindUUID:
		v = parquet.FixedLenByteArrayValue(buf[off : off+16 : off+16])
		off += 16
	case kindVarchar:
		n, w := binary.Uvarint(buf[off:])
		off += w
		v = parquet.ByteArrayValue(buf[off : off+int(n) : off+int(n)])
		off += int(n)
	case kindDate, kindInt:
		v = parquet.Int32Value(int32(binary.LittleEndian.Uint32(buf[off:])))
		off += 4
	case kindBool:
		v = parquet.BooleanValue(buf[off] == 1)
		off++
	}
	return v.Level(0, 1, col), off
}

// dropResent marks (rank -1) each of one person's rows whose non-NULL booking_key
// (column keyCol) another of the rows, sent later (a higher _seq), has too.
func (bs *bucketStage) dropResent(buf []byte, group []sortedRow, keyCol int) {
	keys := make([][]byte, len(group))
	for i := range group {
		keys[i] = bs.field(buf, group[i].off, keyCol)
	}
	if len(group) <= 16 {
		for i := range group {
			if keys[i] == nil {
				continue
			}
			for j := range group {
				if j != i && group[j].seq > group[i].seq && bytes.Equal(keys[j], keys[i]) {
					group[i].rank = -1
					break
				}
			}
		}
		return
	}
	last := map[string]int64{}
	for i, k := range keys {
		if k == nil {
			continue
		}
		// Existing rows' _seq are negative (existingSeq): no zero value to start from.
		if s, ok := last[string(k)]; !ok || group[i].seq > s {
			last[string(k)] = group[i].seq
		}
	}
	for i, k := range keys {
		if k != nil && last[string(k)] != group[i].seq {
			group[i].rank = -1
		}
	}
}

// field is the bytes of a VARCHAR column's value in the row whose values start at off,
// nil for NULL.
func (bs *bucketStage) field(buf []byte, off, col int) []byte {
	for j, k := range bs.kinds {
		null := buf[off] == 0
		off++
		if null {
			if j == col {
				return nil
			}
			continue
		}
		var n int
		switch k {
		case kindUUID:
			n = 16
		case kindVarchar:
			l, w := binary.Uvarint(buf[off:])
			off += w
			n = int(l)
		case kindDate, kindInt:
			n = 4
		case kindBool:
			n = 1
		}
		if j == col {
			return buf[off : off+n : off+n]
		}
		off += n
	}
	return nil
}

// The encoding of a non-NULL value (encode): its presence byte 1, then the value. The
// three encoders (of a mapper's row, of typed booking values, of an existing file's row)
// write every value through these.
func appendFixed(dst, b []byte) []byte { return append(append(dst, 1), b...) }

func appendVarchar[S ~string | ~[]byte](dst []byte, s S) []byte {
	return append(binary.AppendUvarint(append(dst, 1), uint64(len(s))), s...)
}

func appendInt32(dst []byte, v int32) []byte {
	return binary.LittleEndian.AppendUint32(append(dst, 1), uint32(v))
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1, 1)
	}
	return append(dst, 1, 0)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// finalSchema is the Parquet schema of a table's file as DuckDB's COPY writes it: its
// columns in order, every one optional, then dataset.PersonRankColumn (BIGINT); UUID and
// DATE with their logical types; dictionary encoding but for identifiers, pids and
// booleans (as DuckDB chooses for them).
func finalSchema(t Table) (*parquet.Schema, error) {
	var fields []reflect.StructField
	for i, c := range append(slices.Clone(t.Columns), Column{Name: dataset.PersonRankColumn, Type: "BIGINT"}) {
		var typ reflect.Type
		tag := c.Name + ",optional"
		switch c.Type {
		case "UUID":
			typ, tag = reflect.TypeFor[[16]byte](), tag+",uuid"
		case "VARCHAR":
			typ = reflect.TypeFor[string]()
		case "DATE":
			typ, tag = reflect.TypeFor[int32](), tag+",date"
		case "BOOLEAN":
			typ = reflect.TypeFor[bool]()
		case "INTEGER":
			typ = reflect.TypeFor[int32]()
		case "BIGINT":
			typ = reflect.TypeFor[int64]()
		default:
			return nil, fmt.Errorf("%s.%s: type %s is not written by Go", t.Name, c.Name, c.Type)
		}
		if c.Type != "UUID" && c.Type != "BOOLEAN" && !c.Identifier {
			tag += ",dict"
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: typ, Tag: reflect.StructTag(`parquet:"` + tag + `"`)})
	}
	schema := parquet.SchemaOf(reflect.New(reflect.StructOf(fields)).Elem().Interface())
	for i, f := range schema.Fields() {
		want := dataset.PersonRankColumn
		if i < len(t.Columns) {
			want = t.Columns[i].Name
		}
		if f.Name() != want {
			return nil, fmt.Errorf("%s: the Parquet schema has %s as column %d, not %s", t.Name, f.Name(), i, want)
		}
	}
	return schema, nil
}

// zstdCodec is Parquet's ZSTD codec at zstd's default level, as DuckDB writes it. Unlike
// parquet-go's own it entropy-codes the literals of a page without matches, as the C
// library does: the re-keyed identifiers (hexadecimal, no repeats) compress to half.
type zstdCodec struct {
	encoders, decoders sync.Pool
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.encoders.Get().(*zstd.Encoder)
	if e == nil {
		var err error
		if e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false), zstd.WithAllLitEntropyCompression(true)); err != nil {
			return nil, err
		}
	}
	defer c.encoders.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}

func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	d, _ := c.decoders.Get().(*zstd.Decoder)
	if d == nil {
		var err error
		if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)); err != nil {
			return nil, err
		}
	}
	defer c.decoders.Put(d)
	return d.DecodeAll(src, dst[:0])
}

// existingBytesPerRow is what an existing row counts for in sizing the buckets: about the
// CSV bytes of a booking (bucketBytes holds about 160,000).
const existingBytesPerRow = bucketBytes / 160_000

// existingRows is the number of rows of the Parquet files, from their footers.
func existingRows(files []string) (int64, error) {
	var n int64
	for _, path := range files {
		f, pf, err := openParquet(path)
		if err != nil {
			return 0, err
		}
		n += pf.NumRows()
		f.Close()
	}
	return n, nil
}

// openParquet opens an existing table file for its footer and row groups (not its page
// index nor bloom filters); the caller closes the file.
func openParquet(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	var pf *parquet.File
	if err == nil {
		pf, err = parquet.OpenFile(f, info.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, pf, nil
}

// existingSeq is the _seq of the existing table's i-th row (in file order) when an append
// merges it: below every staged row's, so that a booking sent again in the append replaces
// it, and distinct, so that of two existing rows with one booking key one is kept, as
// finalize's SQL keeps one.
func existingSeq(i int64) int64 { return math.MinInt64 + i }

// addExisting stages the rows of the table's existing Parquet files (an append merges
// them with the new rows, ranks them all again and writes them out with writeSorted),
// reading their row groups on up to workers goroutines. A column the files lack is NULL in
// every row; the person rank and any other column the table does not have are not read.
// It returns the rows staged.
func (bs *bucketStage) addExisting(ctx context.Context, files []string, workers int) (int64, error) {
	type group struct {
		file   *parquet.File
		path   string
		rg     parquet.RowGroup
		first  int64 // the ordinal of its first row among the files' rows
		cols   []int // the file's leaf column of each of the table's columns, -1: none
		leaves int   // the file's leaf columns: a row's values, one per column
	}
	var groups []group
	var total int64
	for _, path := range files {
		f, pf, err := openParquet(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cols, err := bs.existingColumns(pf.Schema())
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		for _, rg := range pf.RowGroups() {
			groups = append(groups, group{pf, path, rg, total, cols, len(pf.Schema().Columns())})
			total += rg.NumRows()
		}
	}
	next := make(chan group)
	errs := make(chan error, max(1, workers))
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs := make([][]byte, len(bs.files))
			var err error
			for g := range next {
				if err == nil {
					if err = bs.stageGroup(ctx, g.rg, g.first, g.cols, g.leaves, bufs); err != nil {
						err = fmt.Errorf("read %s: %w", g.path, err)
					}
				}
			}
			for b, buf := range bufs {
				if err == nil {
					err = bs.flushBucket(b, buf)
				}
			}
			errs <- err
		}()
	}
	for _, g := range groups {
		next <- g
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, fmt.Errorf("stage existing %s rows: %w", bs.t.Name, err)
		}
	}
	return total, nil
}

// existingColumns is the leaf column of a file's schema that holds each of the table's
// columns (-1 where it has none), each checked to have the physical type the column is
// written with.
func (bs *bucketStage) existingColumns(schema *parquet.Schema) ([]int, error) {
	cols := make([]int, len(bs.t.Columns))
	for j, c := range bs.t.Columns {
		leaf, ok := schema.Lookup(c.Name)
		if !ok {
			cols[j] = -1
			continue
		}
		typ := leaf.Node.Type()
		var ok2 bool
		switch bs.kinds[j] {
		case kindUUID:
			ok2 = typ.Kind() == parquet.FixedLenByteArray && typ.Length() == 16
		case kindVarchar:
			ok2 = typ.Kind() == parquet.ByteArray
		case kindDate, kindInt:
			ok2 = typ.Kind() == parquet.Int32
		case kindBool:
			ok2 = typ.Kind() == parquet.Boolean
		}
		if !ok2 || leaf.MaxRepetitionLevel > 0 {
			return nil, fmt.Errorf("column %s is %s, not the %s the table holds", c.Name, typ, c.Type)
		}
		cols[j] = leaf.ColumnIndex
	}
	if cols[0] < 0 {
		return nil, errors.New("no pid column")
	}
	return cols, nil
}

// stageGroup encodes a row group's rows into the workers' bucket buffers bufs, appending
// a bucket's to its file when it reaches bs.flush; first is the ordinal of its first row.
func (bs *bucketStage) stageGroup(ctx context.Context, rg parquet.RowGroup, first int64, cols []int, leaves int, bufs [][]byte) error {
	rows := rg.Rows()
	defer rows.Close()
	batch := make([]parquet.Row, 1024)
	ord := first
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := rows.ReadRows(batch)
		for _, row := range batch[:n] {
			if len(row) != leaves {
				return fmt.Errorf("row %d has %d values for %d columns (a repeated column)", ord, len(row), leaves)
			}
			var pid []byte
			if v := row[cols[0]]; !v.IsNull() {
				pid = v.ByteArray()
			}
			b := bucketOf(pid, len(bufs))
			bufs[b] = bs.encodeExisting(bufs[b], existingSeq(ord), row, cols)
			ord++
			if len(bufs[b]) >= bs.flush {
				if err := bs.flushBucket(b, bufs[b]); err != nil {
					return err
				}
				bufs[b] = bufs[b][:0]
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// encodeExisting appends a row read from an existing file (its values by leaf column),
// encoded as encode encodes the same values given as a row.
func (bs *bucketStage) encodeExisting(dst []byte, seq int64, row parquet.Row, cols []int) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(seq))
	for j, k := range bs.kinds {
		if cols[j] < 0 || row[cols[j]].IsNull() {
			dst = append(dst, 0)
			continue
		}
		v := row[cols[j]]
		switch k {
		case kindUUID:
			dst = appendFixed(dst, v.ByteArray())
		case kindVarchar:
			dst = appendVarchar(dst, v.ByteArray())
		case kindDate, kindInt:
			dst = appendInt32(dst, v.Int32())
		case kindBool:
			dst = appendBool(dst, v.Boolean())
		}
	}
	return dst
}
