package ingest

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// bookingColumns is the CUP booking extract's header (docs/domain.md#waiting-lists). Columns may come in
// any order; extra columns are never read (default-deny).
var bookingColumns = []string{
	"booking_id", "rx_id", "patient_cf", "service_code", "priority", "first_access",
	"d_prescription", "d_contact", "d_first_available", "d_appointment", "d_delivered",
	"garanzia", "provider_id", "asl", "region", "channel", "status",
}

// bookingColumnIndex is the position of a column in bookingColumns (-1: none); a switch
// rather than a map, as mapBooking looks up every column of every record.
func bookingColumnIndex(name string) int {
	switch name {
	case "booking_id":
		return 0
	case "rx_id":
		return 1
	case "patient_cf":
		return 2
	case "service_code":
		return 3
	case "priority":
		return 4
	case "first_access":
		return 5
	case "d_prescription":
		return 6
	case "d_contact":
		return 7
	case "d_first_available":
		return 8
	case "d_appointment":
		return 9
	case "d_delivered":
		return 10
	case "garanzia":
		return 11
	case "provider_id":
		return 12
	case "asl":
		return 13
	case "region":
		return 14
	case "channel":
		return 15
	case "status":
		return 16
	}
	return -1
}

type csvRecord struct {
	line   int
	fields []string
	err    error
}

const chunkRecords = 2048

// maxCSVRecordBytes bounds one CSV record (a booking is a few hundred bytes). csv.Reader
// holds a whole record, and a quote left open runs it to the end of the file: past the
// bound the file is refused, naming the record's offset, as no later record can be
// told apart from it.
const maxCSVRecordBytes = 1 << 20

// csvLimit fails the reads of a record that has grown beyond maxCSVRecordBytes. start
// is the input offset of the record being read; the slack covers csv.Reader's read-ahead.
type csvLimit struct {
	r        io.Reader
	n, start int64
}

var errCSVRecordTooLong = fmt.Errorf("longer than %d KiB (a quote left open?)", maxCSVRecordBytes>>10)

func (l *csvLimit) Read(p []byte) (int, error) {
	if l.n-l.start > maxCSVRecordBytes+64<<10 {
		return 0, errCSVRecordTooLong
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// produceCSVWith reads CSV records in chunks, in the dialect the profile declares or
// the file's first line shows; onHeader gets the header's column positions and width
// before any record is emitted. A header that does not name every booking column is an
// error naming the missing columns, the dialect and the profile.
func produceCSVWith(r io.Reader, p *CUPProfile, onHeader func(map[string]int, int), emit func(unit) error) (colIdx map[string]int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(64 << 10) // less at the end of a small file
	d := p.dialect(head)
	lim := &csvLimit{r: d.decode(br)}
	cr := csv.NewReader(lim)
	cr.Comma = d.sep
	cr.FieldsPerRecord = -1
	// The fields of a unit's records share one slice (the strings themselves are the
	// reader's, one per record): the reader's own slice is reused.
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read CSV header (%s): %w", d, err)
	}
	lim.start = cr.InputOffset()
	colIdx, missing, unknown := p.mapHeader(header)
	// The file was taken for a booking extract from its first line; a header that lacks
	// a column (or that parses differently as CSV: "a,b" quoted is one column) would map
	// records to the wrong columns, or to none.
	if len(missing) > 0 {
		return nil, fmt.Errorf("read %w", p.headerError(d, missing, unknown))
	}
	onHeader(colIdx, len(header))
	var u unit
	var fieldArena []string
	for {
		fields, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			u.csv = append(u.csv, csvRecord{line: pe.StartLine, err: err})
		} else if errors.Is(err, errCSVRecordTooLong) {
			return colIdx, fmt.Errorf("CSV record at byte %d: %w", lim.start, err)
		} else if err != nil {
			return colIdx, err
		} else {
			// FieldPos only after a record was read: after a parse error it panics.
			line, _ := cr.FieldPos(0)
			if len(fieldArena)+len(fields) > cap(fieldArena) {
				fieldArena = make([]string, 0, max(chunkRecords*len(header), len(fields)))
			}
			start := len(fieldArena)
			fieldArena = append(fieldArena, fields...)
			u.csv = append(u.csv, csvRecord{line: line, fields: fieldArena[start:len(fieldArena):len(fieldArena)]})
		}
		lim.start = cr.InputOffset()
		if len(u.csv) == chunkRecords {
			if err := emit(u); err != nil {
				return colIdx, err
			}
			u = unit{}
		}
	}
	if len(u.csv) > 0 {
		return colIdx, emit(u)
	}
	return colIdx, nil
}

// bookingMapper maps CUP booking records.
type bookingMapper struct {
	*mapper
	p       *CUPProfile
	col     map[string]int
	pos     [17]int // the header position of each of bookingColumns
	ncols   int
	aslSet  map[string]bool
	regions map[string]bool
}

func newBookingMapper(m *mapper, p *CUPProfile, col map[string]int, ncols int) *bookingMapper {
	bm := &bookingMapper{mapper: m, p: p, col: col, ncols: ncols, aslSet: map[string]bool{}, regions: map[string]bool{}}
	for i, c := range bookingColumns {
		bm.pos[i] = col[c]
	}
	for _, a := range fse.ASLCodes() {
		bm.aslSet[a] = true
	}
	for _, r := range fse.RegionCodes() {
		bm.regions[r] = true
	}
	return bm
}

// work maps a unit's records, each row as the []any DuckDB's appender takes.
func (bm *bookingMapper) work(u unit) []record {
	recs := bm.workValues(u)
	for i := range recs {
		if v := recs[i].booking; v != nil {
			recs[i].row, recs[i].booking = v.row(), nil
			recs[i].pos = "line " + strconv.Itoa(u.csv[i].line)
		}
	}
	return recs
}

// workValues maps a unit's records, each row as its typed values (record.booking), for
// the bucket stage.
func (bm *bookingMapper) workValues(u unit) []record {
	recs := make([]record, len(u.csv))
	vals := make([]bookingValues, len(u.csv))
	for i, cr := range u.csv {
		recs[i] = bm.mapBooking(cr, &vals[i])
		if recs[i].outcome != outRow {
			recs[i].pos = "line " + strconv.Itoa(cr.line) // a row staged here needs none
		}
	}
	return recs
}

// Positions of the booking table's columns (bookingValues).
const (
	bcPID = iota
	bcBookingKey
	bcRxKey
	bcServiceCode
	bcServiceKind
	bcPriority
	bcFirstAccess
	bcDPrescription
	bcDContact
	bcDFirstAvailable
	bcDAppointment
	bcDDelivered
	bcGaranzia
	bcProviderID
	bcASL
	bcRegion
	bcChannel
	bcStatus
	bcWaitDays
	bcWithinTarget
	bookingValueColumns
)

// bookingValues are a booking row's values, typed, by column position (a DATE as days
// since 1970-01-01, in i32); bit j of null is set while column j is NULL. The mapping
// workers encode them into the bucket stage as they are, no value boxed in an interface;
// row gives the []any DuckDB's appender takes.
type bookingValues struct {
	null uint32
	pid  duckdb.UUID
	str  [bookingValueColumns]string
	i32  [bookingValueColumns]int32
	flag [bookingValueColumns]bool
}

func (v *bookingValues) setStr(j int, s string) { v.str[j] = s; v.null &^= 1 << j }

// setDate sets a DATE column to t's day, as DuckDB's appender converts a time.Time.
func (v *bookingValues) setDate(j int, t time.Time) {
	v.i32[j] = int32(t.Unix() / (24 * 60 * 60))
	v.null &^= 1 << j
}

func (v *bookingValues) setFlag(j int, b bool) { v.flag[j] = b; v.null &^= 1 << j }

func (v *bookingValues) isNull(j int) bool { return v.null&(1<<j) != 0 }

// row is the booking as DuckDB's appender takes it.
func (v *bookingValues) row() []any {
	row := make([]any, bookingValueColumns)
	for j, c := range bookingTable().Columns {
		if v.isNull(j) {
			continue
		}
		switch c.Type {
		case "UUID":
			row[j] = v.pid
		case "VARCHAR":
			row[j] = v.str[j]
		case "DATE":
			row[j] = time.Unix(int64(v.i32[j])*24*60*60, 0).UTC()
		case "BOOLEAN":
			row[j] = v.flag[j]
		case "INTEGER":
			row[j] = v.i32[j]
		}
	}
	return row
}

func init() {
	names := []string{"pid", "booking_key", "rx_key", "service_code", "service_kind", "priority", "first_access",
		"d_prescription", "d_contact", "d_first_available", "d_appointment", "d_delivered", "garanzia",
		"provider_id", "asl", "region", "channel", "status", "wait_days", "within_target"}
	cols := bookingTable().Columns
	if len(cols) != bookingValueColumns || len(names) != bookingValueColumns {
		panic("ingest: bookingValues does not match the booking table")
	}
	for i, c := range cols {
		if c.Name != names[i] {
			panic("ingest: bookingValues does not match the booking table at " + c.Name)
		}
	}
}

// fieldError is a validation failure naming the column, never the value.
type fieldError struct{ col, what string }

func (e fieldError) Error() string { return e.col + ": " + e.what }

func (bm *bookingMapper) mapBooking(cr csvRecord, v *bookingValues) record {
	rec := record{table: "booking", docLocal: -1}
	if cr.err != nil {
		return quarantine(rec, "malformed CSV record")
	}
	if len(cr.fields) != bm.ncols {
		return quarantine(rec, fmt.Sprintf("expected %d fields, got %d (truncated or extra fields)", bm.ncols, len(cr.fields)))
	}
	f := func(name string) string { return strings.TrimSpace(cr.fields[bm.pos[bookingColumnIndex(name)]]) }
	id, err := pseudonymize.ParseIdentifier(f("patient_cf"))
	if err != nil {
		return quarantine(rec, "patient_cf: "+err.Error())
	}
	pid := bm.ps.PID(id)
	if bm.optOut.Contains(id) {
		rec.outcome = outOptedOut
		rec.patient = patientRef{pid: pid, state: outOptedOut}
		return rec
	}
	if id.Omocode {
		rec.warnings = append(rec.warnings, warnIdentifierOmocode)
	}
	*v = bookingValues{null: 1<<bookingValueColumns - 1}
	var bad error
	date := func(j int, name string, required bool) (time.Time, bool) {
		s := f(name)
		if s == "" {
			if required && bad == nil {
				bad = fieldError{name, "missing"}
			}
			return time.Time{}, false
		}
		t, ok := bm.p.parseDate(s)
		if !ok && bad == nil {
			bad = fieldError{name, "malformed date (want " + bm.p.want + ")"}
		}
		if !ok {
			return time.Time{}, false
		}
		v.setDate(j, t)
		return t, true
	}
	// boolean sets column j and says whether it is true.
	boolean := func(j int, name string) bool {
		switch strings.ToLower(f(name)) {
		case "true", "1", "s", "si", "y":
			v.setFlag(j, true)
			return true
		case "false", "0", "n", "no":
			v.setFlag(j, false)
			return false
		case "":
			return false
		}
		if bad == nil {
			bad = fieldError{name, "not a boolean"}
		}
		return false
	}
	code := func(j int, name string, ok func(string) bool, required bool) (string, bool) {
		s := f(name)
		if s == "" {
			if required && bad == nil {
				bad = fieldError{name, "missing"}
			}
			return "", false
		}
		if !ok(s) && bad == nil {
			bad = fieldError{name, "unknown code"}
		}
		v.setStr(j, s)
		return s, true
	}
	svc, svcOK := fse.ServiceByCode(bm.p.serviceCode(f("service_code")))
	if !svcOK {
		return quarantine(rec, fieldError{"service_code", "unknown code"}.Error())
	}
	v.setStr(bcServiceCode, svc.Code)
	v.setStr(bcServiceKind, string(svc.Kind))
	priority, hasPriority := code(bcPriority, "priority", func(s string) bool { return slicesContains(fse.Priorities, fse.Priority(s)) }, false)
	firstAccess := boolean(bcFirstAccess, "first_access")
	date(bcDPrescription, "d_prescription", false)
	dContact, hasContact := date(bcDContact, "d_contact", true)
	date(bcDFirstAvailable, "d_first_available", false)
	dAppointment, hasAppointment := date(bcDAppointment, "d_appointment", false)
	date(bcDDelivered, "d_delivered", false)
	garanzia := boolean(bcGaranzia, "garanzia")
	code(bcASL, "asl", func(s string) bool { return bm.aslSet[s] }, false)
	code(bcRegion, "region", func(s string) bool { return bm.regions[s] }, true)
	code(bcChannel, "channel", func(s string) bool { return slicesContains(fse.Channels, s) }, false)
	code(bcStatus, "status", func(s string) bool { return slicesContains(fse.BookingStatuses, s) }, true)
	if bad != nil {
		return quarantine(rec, bad.Error())
	}
	if hasContact && hasAppointment {
		w := int32(dAppointment.Sub(dContact).Hours() / 24)
		if w < 0 {
			return quarantine(rec, "d_appointment is before d_contact")
		}
		v.i32[bcWaitDays] = w
		v.null &^= 1 << bcWaitDays
		// Ex-ante monitoring: first-access bookings with a class where the patient took
		// the first date offered; everything else is excluded (null), not "late".
		if firstAccess && hasPriority && garanzia {
			max, _ := fse.MaxWaitDays(fse.Priority(priority), svc.Kind)
			v.setFlag(bcWithinTarget, int(w) <= max)
		}
	}
	if bm.period != nil && !bm.period.Contains(dContact) {
		rec.outcome = outOutsidePeriod
		return rec
	}
	if rx := f("rx_id"); rx != "" {
		v.setStr(bcRxKey, bm.ps.PrescriptionKey(rx))
	}
	if b := f("booking_id"); b != "" {
		v.setStr(bcBookingKey, bm.ps.BookingKey(b))
	}
	if p := f("provider_id"); p != "" {
		v.setStr(bcProviderID, p)
	}
	v.pid = duckdb.UUID(pid)
	v.null &^= 1 << bcPID
	rec.booking = v
	return rec
}
