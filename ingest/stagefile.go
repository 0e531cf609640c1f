package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"
)

// Columnar staging. The rows of a table that only the parallel mappers produce (the
// booking table, from CUP CSV) are staged as Parquet files that the mapping workers write
// themselves, each into its own file, instead of through DuckDB's appender on the one
// goroutine that applies the units in order (one cgo call per value). finalize then
// reads them with read_parquet, in parallel, through the view stage_<table>
// (columnarStage.view), exactly as it reads the rows the appender staged.
//
// A staged row's _seq orders it among the table's rows as the appender's running
// sequence would: seq = file<<seqFileShift | unit<<seqUnitShift | record within the
// unit. The booking table's _seq is compared only with other bookings (the "last sent
// wins" of a booking sent twice, and the -1 of an append's existing rows), never with
// another table's, and _doc_seq is NULL for every booking, so the same rows survive.

const (
	seqUnitShift = 12 // a unit holds at most chunkRecords (2,048) records
	seqFileShift = 44 // 2^32 units of a file, 2^19 files of a run
)

func init() {
	if chunkRecords > 1<<seqUnitShift {
		panic("ingest: chunkRecords does not fit the staged sequence")
	}
}

// stageRowGroup is the number of rows a worker's file buffers before writing them out as
// a row group: about 20 MiB of booking rows per worker.
const stageRowGroup = 64 << 10

// columnarStage stages one table's rows in Parquet files written by the mapping workers.
type columnarStage struct {
	t      Table
	dir    string
	schema *parquet.Schema
	// src is, for each column of the schema (in name order), the index of the table's
	// column it holds, or len(t.Columns) for _seq and len(t.Columns)+1 for _doc_seq.
	src  []int
	conv []func(any) (parquet.Value, bool)

	mu    sync.Mutex
	files []string
	err   error
	pool  chan *stageWriter
	n     int // files opened
	file  int // the input file being read (the high bits of _seq)
	rows  int64
	close bool
}

// stageWriter is one worker's open staging file.
type stageWriter struct {
	f    *os.File
	w    *parquet.Writer
	rows []parquet.Row
	buf  []parquet.Value
	held int
}

func newColumnarStage(t Table, dir string) (*columnarStage, error) {
	cs := &columnarStage{t: t, dir: dir}
	g := parquet.Group{}
	for _, c := range t.Columns {
		leaf, conv, err := stageLeaf(c.Type)
		if err != nil {
			return nil, fmt.Errorf("stage %s.%s: %w", t.Name, c.Name, err)
		}
		g[c.Name] = parquet.Optional(leaf)
		cs.conv = append(cs.conv, conv)
	}
	g[stagingSeq] = parquet.Int(64)
	g[stagingDocSeq] = parquet.Optional(parquet.Int(64))
	cs.schema = parquet.NewSchema("stage_"+t.Name, g)
	pos := map[string]int{stagingSeq: len(t.Columns), stagingDocSeq: len(t.Columns) + 1}
	for i, c := range t.Columns {
		pos[c.Name] = i
	}
	for _, f := range cs.schema.Fields() {
		cs.src = append(cs.src, pos[f.Name()])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return cs, nil
}

// stageLeaf is the Parquet type of a staged DuckDB column and the conversion of the Go
// values the mappers give it (the types DuckDB's appender takes for it), false for NULL.
func stageLeaf(typ string) (parquet.Node, func(any) (parquet.Value, bool), error) {
	switch typ {
	case "UUID":
		return parquet.UUID(), func(v any) (parquet.Value, bool) {
			u, ok := v.(duckdb.UUID)
			if !ok {
				return parquet.Value{}, false
			}
			return parquet.FixedLenByteArrayValue(u[:]), true
		}, nil
	case "VARCHAR":
		return parquet.String(), func(v any) (parquet.Value, bool) {
			s, ok := v.(string)
			if !ok {
				return parquet.Value{}, false
			}
			return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s))), true
		}, nil
	case "DATE":
		return parquet.Date(), func(v any) (parquet.Value, bool) {
			t, ok := v.(time.Time)
			if !ok {
				return parquet.Value{}, false
			}
			// As DuckDB's appender converts a time.Time to a DATE.
			return parquet.Int32Value(int32(t.Unix() / (24 * 60 * 60))), true
		}, nil
	case "BOOLEAN":
		return parquet.Leaf(parquet.BooleanType), func(v any) (parquet.Value, bool) {
			b, ok := v.(bool)
			if !ok {
				return parquet.Value{}, false
			}
			return parquet.BooleanValue(b), true
		}, nil
	case "INTEGER":
		return parquet.Int(32), func(v any) (parquet.Value, bool) {
			switch n := v.(type) {
			case int32:
				return parquet.Int32Value(n), true
			case int:
				return parquet.Int32Value(int32(n)), true
			}
			return parquet.Value{}, false
		}, nil
	}
	return nil, nil, fmt.Errorf("type %s is not staged as Parquet", typ)
}

// startFile starts the rows of input file n (its _seq's high bits).
func (cs *columnarStage) startFile(n int) {
	cs.mu.Lock()
	cs.file = n
	cs.mu.Unlock()
}

// write stages the unit's rows (outcome outRow) and drops them from the records, which
// apply then only counts. Safe for concurrent use by the mapping workers.
func (cs *columnarStage) write(idx int, recs []record) {
	cs.mu.Lock()
	if cs.err != nil {
		cs.mu.Unlock()
		return
	}
	base := int64(cs.file)<<seqFileShift | int64(idx)<<seqUnitShift
	cs.mu.Unlock()
	w, err := cs.writer()
	if err != nil {
		cs.fail(err)
		return
	}
	defer cs.release(w)
	if err := w.add(cs, base, recs); err != nil {
		cs.fail(err)
	}
}

func (cs *columnarStage) fail(err error) {
	cs.mu.Lock()
	if cs.err == nil {
		cs.err = fmt.Errorf("stage %s rows: %w", cs.t.Name, err)
	}
	cs.mu.Unlock()
}

// failed is the first error of a worker's write, if any.
func (cs *columnarStage) failed() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.err
}

func (cs *columnarStage) writer() (*stageWriter, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.pool == nil {
		cs.pool = make(chan *stageWriter, 64)
	}
	select {
	case w := <-cs.pool:
		return w, nil
	default:
	}
	name := filepath.Join(cs.dir, fmt.Sprintf("%s-%03d.parquet", cs.t.Name, cs.n))
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	cs.n++
	cs.files = append(cs.files, name)
	return &stageWriter{f: f, w: parquet.NewWriter(f, cs.schema, parquet.PageBufferSize(1<<20))}, nil
}

func (cs *columnarStage) release(w *stageWriter) {
	select {
	case cs.pool <- w:
	default:
		// More writers than the pool holds: never with the pipeline's bounded workers.
		cs.fail(closeWriter(w))
		cs.fail(fmt.Errorf("too many staging writers"))
	}
}

func (w *stageWriter) add(cs *columnarStage, base int64, recs []record) error {
	ncols := len(cs.t.Columns)
	w.rows = w.rows[:0]
	w.buf = slices.Grow(w.buf[:0], len(recs)*len(cs.src))
	for i := range recs {
		rec := &recs[i]
		if rec.outcome != outRow || rec.table != cs.t.Name {
			continue
		}
		if len(rec.row) != len(cs.t.Columns) {
			return fmt.Errorf("a row of %d values for %d columns", len(rec.row), len(cs.t.Columns))
		}
		start := len(w.buf)
		// The writer wants each row's values in schema order.
		for p, j := range cs.src {
			switch {
			case j == ncols:
				w.buf = append(w.buf, parquet.Int64Value(base|int64(i)).Level(0, 0, p))
			case j > ncols || rec.row[j] == nil:
				w.buf = append(w.buf, parquet.NullValue().Level(0, 0, p))
			default:
				pv, ok := cs.conv[j](rec.row[j])
				if !ok {
					return fmt.Errorf("column %s: a %T", cs.t.Columns[j].Name, rec.row[j])
				}
				w.buf = append(w.buf, pv.Level(0, 1, p))
			}
		}
		w.rows = append(w.rows, w.buf[start:len(w.buf):len(w.buf)])
		rec.row = nil
		rec.staged = true
	}
	return w.write(cs)
}

// write writes the rows held in w.rows, each with its values in schema order.
func (w *stageWriter) write(cs *columnarStage) error {
	if len(w.rows) == 0 {
		return nil
	}
	if _, err := w.w.WriteRows(w.rows); err != nil {
		return err
	}
	cs.mu.Lock()
	cs.rows += int64(len(w.rows))
	cs.mu.Unlock()
	w.held += len(w.rows)
	w.rows = w.rows[:0]
	if w.held >= stageRowGroup {
		w.held = 0
		return w.w.Flush()
	}
	return nil
}

func closeWriter(w *stageWriter) error {
	err := w.w.Close()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// finish closes every worker's file; the stage takes no more rows.
func (cs *columnarStage) finish() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.close {
		return cs.err
	}
	cs.close = true
	if cs.pool != nil {
		for {
			select {
			case w := <-cs.pool:
				if err := closeWriter(w); err != nil && cs.err == nil {
					cs.err = fmt.Errorf("stage %s rows: %w", cs.t.Name, err)
				}
				continue
			default:
			}
			break
		}
	}
	return cs.err
}

// view is the DDL that makes stage_<table> the union of the rows the appender staged
// (renamed stage_<table>_appended) and those of the Parquet files, with the staging
// table's columns and types; empty when no row was staged as Parquet.
func (cs *columnarStage) view() []string {
	if cs.rows == 0 {
		return nil
	}
	files := make([]string, len(cs.files))
	for i, f := range cs.files {
		files[i] = quote(f)
	}
	cols := make([]string, 0, len(cs.t.Columns)+2)
	for _, c := range cs.t.Columns {
		cols = append(cols, fmt.Sprintf("%s::%s AS %s", c.Name, c.Type, c.Name))
	}
	cols = append(cols, stagingSeq+"::BIGINT AS "+stagingSeq, stagingDocSeq+"::BIGINT AS "+stagingDocSeq)
	name := "stage_" + cs.t.Name
	return []string{
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s_appended", name, name),
		fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM %s_appended UNION ALL BY NAME SELECT %s FROM read_parquet([%s])",
			name, name, strings.Join(cols, ", "), strings.Join(files, ", ")),
	}
}
