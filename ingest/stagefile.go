package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"
)

// Columnar staging. The rows of the booking table, which only the parallel CUP CSV
// mappers produce, are staged as Parquet files (parquet-go's columnar writer of
// stagedBooking; plain, uncompressed pages) that the mapping workers write themselves,
// each into its own file, instead of through DuckDB's appender on the one goroutine that
// applies the units in order (one cgo call per value). finalize then
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

// columnarStage stages the booking table's rows in Parquet files written by the mapping
// workers.
type columnarStage struct {
	t   Table
	dir string

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
	w    *parquet.GenericWriter[stagedBooking]
	rows []stagedBooking
	held int
}

// stagedBooking is a staged row of the booking table: its columns in the table's order
// (TestStagedBookingHasTheTableColumns), then _seq and _doc_seq. A NULL string is the
// empty string (ingest never writes an empty one: mapBooking gives nil instead), a NULL
// of another type a nil pointer.
type stagedBooking struct {
	PID             [16]byte `parquet:"pid,uuid"`
	BookingKey      string   `parquet:"booking_key,optional"`
	RxKey           string   `parquet:"rx_key,optional"`
	ServiceCode     string   `parquet:"service_code,optional"`
	ServiceKind     string   `parquet:"service_kind,optional"`
	Priority        string   `parquet:"priority,optional"`
	FirstAccess     *bool    `parquet:"first_access"`
	DPrescription   *int32   `parquet:"d_prescription,date"`
	DContact        *int32   `parquet:"d_contact,date"`
	DFirstAvailable *int32   `parquet:"d_first_available,date"`
	DAppointment    *int32   `parquet:"d_appointment,date"`
	DDelivered      *int32   `parquet:"d_delivered,date"`
	Garanzia        *bool    `parquet:"garanzia"`
	ProviderID      string   `parquet:"provider_id,optional"`
	ASL             string   `parquet:"asl,optional"`
	Region          string   `parquet:"region,optional"`
	Channel         string   `parquet:"channel,optional"`
	Status          string   `parquet:"status,optional"`
	WaitDays        *int32   `parquet:"wait_days"`
	WithinTarget    *bool    `parquet:"within_target"`
	Seq             int64    `parquet:"_seq"`
	DocSeq          *int64   `parquet:"_doc_seq"`
}

var boolValues = [2]bool{false, true}

// stageBooking converts a row as mapBooking gives it (the values DuckDB's appender
// takes) to a staged row; ints holds its dates and wait_days.
func stageBooking(row []any, seq int64, ints []int32) (stagedBooking, error) {
	if len(row) != 20 {
		return stagedBooking{}, fmt.Errorf("a booking row of %d values", len(row))
	}
	var err error
	str := func(i int) string {
		switch v := row[i].(type) {
		case nil:
		case string:
			if v != "" {
				return v
			}
			err = fmt.Errorf("column %d: an empty string", i)
		default:
			err = fmt.Errorf("column %d: a %T", i, v)
		}
		return ""
	}
	boolean := func(i int) *bool {
		switch v := row[i].(type) {
		case nil:
		case bool:
			if v {
				return &boolValues[1]
			}
			return &boolValues[0]
		default:
			err = fmt.Errorf("column %d: a %T", i, v)
		}
		return nil
	}
	k := 0
	integer := func(i int) *int32 {
		switch v := row[i].(type) {
		case nil:
			return nil
		case time.Time:
			// As DuckDB's appender converts a time.Time to a DATE.
			ints[k] = int32(v.Unix() / (24 * 60 * 60))
		case int32:
			ints[k] = v
		default:
			err = fmt.Errorf("column %d: a %T", i, v)
			return nil
		}
		k++
		return &ints[k-1]
	}
	pid, ok := row[0].(duckdb.UUID)
	if !ok {
		return stagedBooking{}, fmt.Errorf("column 0: a %T", row[0])
	}
	b := stagedBooking{
		PID: pid, BookingKey: str(1), RxKey: str(2), ServiceCode: str(3), ServiceKind: str(4),
		Priority: str(5), FirstAccess: boolean(6), DPrescription: integer(7), DContact: integer(8),
		DFirstAvailable: integer(9), DAppointment: integer(10), DDelivered: integer(11),
		Garanzia: boolean(12), ProviderID: str(13), ASL: str(14), Region: str(15),
		Channel: str(16), Status: str(17), WaitDays: integer(18), WithinTarget: boolean(19),
		Seq: seq,
	}
	return b, err
}

// stagedIntsPerRow is how many of a staged booking's values are int32s (five dates and
// wait_days).
const stagedIntsPerRow = 6

func newColumnarStage(t Table, dir string) (*columnarStage, error) {
	if t.Name != "booking" {
		return nil, fmt.Errorf("stage %s: only bookings are staged as Parquet", t.Name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &columnarStage{t: t, dir: dir}, nil
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
	// Plain, uncompressed pages without statistics or column index: the files are read
	// once, whole, by finalize.
	opts := []parquet.WriterOption{parquet.PageBufferSize(1 << 20), parquet.DataPageStatistics(false)}
	for _, c := range stagedBookingSchema.Columns() {
		opts = append(opts, parquet.SkipPageBounds(c...))
	}
	return &stageWriter{f: f, w: parquet.NewGenericWriter[stagedBooking](f, opts...)}, nil
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

var stagedBookingSchema = parquet.SchemaOf(stagedBooking{})

func (w *stageWriter) add(cs *columnarStage, base int64, recs []record) error {
	w.rows = w.rows[:0]
	var ints []int32
	for i := range recs {
		rec := &recs[i]
		if rec.outcome != outRow || rec.table != cs.t.Name {
			continue
		}
		if len(ints) < stagedIntsPerRow {
			ints = make([]int32, stagedIntsPerRow*len(recs))
		}
		b, err := stageBooking(rec.row, base|int64(i), ints[:stagedIntsPerRow])
		if err != nil {
			return err
		}
		ints = ints[stagedIntsPerRow:]
		w.rows = append(w.rows, b)
		rec.row = nil
		rec.staged = true
	}
	if len(w.rows) == 0 {
		return nil
	}
	if _, err := w.w.Write(w.rows); err != nil {
		return err
	}
	clear(w.rows) // drop the strings' references
	cs.mu.Lock()
	cs.rows += int64(len(w.rows))
	cs.mu.Unlock()
	if w.held += len(w.rows); w.held >= stageRowGroup {
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
