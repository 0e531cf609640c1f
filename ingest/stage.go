package ingest

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// stage collects one batch's rows in a scratch DuckDB database on disk (so memory stays
// bounded whatever the input size) before they are rewritten as pid-sorted Parquet.
type stage struct {
	connector *duckdb.Connector
	db        *sql.DB
	conn      driver.Conn
	apps      map[string]*duckdb.Appender
	facts     map[string]bool // tables whose rows get the doc_key of their document
	seq       int64
	// bookings stages the booking rows of CUP CSV files from the mapping workers
	// (stagefile.go); nil: every row goes through the appenders. csvFiles counts the CSV
	// files read, the high bits of their rows' staging sequence.
	bookings *columnarStage
	csvFiles int
	// sorted stages the booking rows of CUP CSV files in pid-range buckets (sortstage.go),
	// which finalize sorts, ranks and writes itself, or hands to bookings for an append.
	sorted  *bucketStage
	workers int

	// dir is the stage's folder in DATA's temporary folder; memBytes DuckDB's memory
	// limit, which sizes finalize's pid ranges (pidranges.go); pidRangesFixed, when
	// positive, is the number of ranges every table is written in (tests).
	dir            string
	memBytes       int64
	pidRangesFixed int

	tables   map[string]*dataset.TableCounts
	warnings map[string]int64
	optedOut map[pseudonymize.PID]struct{}
	optedRec int64
	// seeds derives the secret seeds of the person ranks finalize writes.
	seeds    *pseudonymize.Pseudonymizer
	unparsed int64

	qfile *os.File
	qbuf  *bufio.Writer
	qenc  *json.Encoder
	qname string

	// patients are the Patients of the NDJSON files read so far, which resources of later
	// files resolve against; newPatients those of the file being read, added to patients
	// when it ends. The pipeline's workers read patients while apply runs: were apply to
	// add to it, a read would race with the write, and whether a resource found a Patient
	// of its own file would depend on how far the other workers had got.
	patients    *patientIndex
	newPatients *patientIndex
}

// duckDBSettings are the resource limits of Velo's own DuckDB work (never user SQL).
type duckDBSettings struct {
	MemoryLimit string
	Threads     int
	TempDir     string
}

// duckDBShareNum/duckDBShareDen is the share of an ingest's memory limit (velo ingest
// --memory-limit, the process's budget) that DuckDB's buffer manager gets, and
// goShareNum/goShareDen the Go heap's soft limit (tuneGC). The rest, 42%, is for what
// DuckDB allocates outside its buffer manager (its sorts and Parquet writes: 200-300 MB
// beside a limit of 300 to 500 MB, staging and writing the tables of a 200,000-person
// FHIR and CUP extract) and the binary. With half for DuckDB and no limit on the Go heap,
// that extract peaked at 975-1,131 MiB under the default 1GB (its append at 1,411 MiB);
// with these shares, 766-850 MiB (756-929 MiB) in the same time (docs/ingest.md, Memory).
const (
	duckDBShareNum, duckDBShareDen = 1, 3
	goShareNum, goShareDen         = 1, 4
)

// duckDBMemoryLimit is DuckDB's memory_limit for an ingest's memory limit: its DuckDB
// share, in whole megabytes. A limit that does not parse as a size ("1GB", "512 MiB") is
// given to DuckDB as it is, which names what is wrong with it.
func duckDBMemoryLimit(limit string) string {
	n, ok := parseBytes(limit)
	if !ok {
		return limit
	}
	return fmt.Sprintf("%dMB", max(1, n*duckDBShareNum/duckDBShareDen/1_000_000))
}

// ingestGCPercent is the Go collector's GOGC during an ingest. The readers and mappers
// allocate short-lived garbage (CSV records, typed rows, pseudonyms) at a high rate for a
// small live heap, so Go's default of 100 spends about 8% of the CPU collecting; at 400 it
// spends less than a third of that, and the soft memory limit tuneGC sets keeps the heap
// within the Go side's share of the budget (goShareNum/goShareDen). The live heap stays
// well below that share at any input size: what grows with the number of people, the
// index of the NDJSON Patients, keeps at most a twelfth of the budget in memory
// (patientIndexShareDen; two such indexes while a Patient file is read) and the rest on
// disk.
const ingestGCPercent = 400

// tuneGC sets the Go collector for an ingest under the memory limit limit and returns
// what restores the previous settings: GOGC ingestGCPercent (unless it was set higher,
// or off), and a soft memory limit of the Go side's share of the budget (unless one at
// most that was set already). A limit that does not parse changes nothing.
func tuneGC(limit string) (restore func()) {
	n, ok := parseBytes(limit)
	if !ok {
		return func() {}
	}
	share := n * goShareNum / goShareDen
	prevLimit := debug.SetMemoryLimit(-1)
	if share < prevLimit {
		debug.SetMemoryLimit(share)
	}
	prevGC := debug.SetGCPercent(ingestGCPercent)
	if prevGC < 0 || prevGC > ingestGCPercent {
		debug.SetGCPercent(prevGC)
	}
	return func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	}
}

// parseBytes reads a size as DuckDB's memory_limit takes it: a number and a unit, B, KB,
// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case.
func parseBytes(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || num < 0 {
		return 0, false
	}
	unit := map[string]float64{
		"b": 1, "bytes": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}[strings.ToLower(strings.TrimSpace(s[i:]))]
	if unit == 0 || num*unit > 1<<62 {
		return 0, false
	}
	return int64(num * unit), true
}

func openDuckDB(ctx context.Context, path string, s duckDBSettings) (*duckdb.Connector, *sql.DB, error) {
	connector, err := duckdb.NewConnector(path, func(execer driver.ExecerContext) error {
		stmts := []string{
			fmt.Sprintf("SET memory_limit = '%s'", s.MemoryLimit),
			fmt.Sprintf("SET threads = %d", s.Threads),
			fmt.Sprintf("SET temp_directory = '%s'", strings.ReplaceAll(s.TempDir, "'", "''")),
			"SET preserve_insertion_order = true",
			"SET autoinstall_known_extensions = false",
			"SET autoload_known_extensions = false",
		}
		for _, q := range stmts {
			if _, err := execer.ExecContext(ctx, q, nil); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	return connector, db, nil
}

// rankSeed is the secret seed of a use's person ranks, derived from the key.
func (st *stage) rankSeed(use string) uint64 { return st.seeds.Seed(use) }

// newStage opens a stage in dir; patientEntries is how many NDJSON Patients each of its
// indexes holds in memory (patientIndexEntries), the rest on disk in dir.
func newStage(ctx context.Context, dir string, s duckDBSettings, quarantinePath string, bookingBytes int64, patientEntries int) (*stage, error) {
	// In a database file of the stage's own folder, removed with it: DuckDB can then evict
	// the staged tables' blocks, already on disk, to make room for finalize's queries. An
	// in-memory database must write them to its temporary directory first, and at a few
	// million people it held its whole share with them and failed finalize's first
	// aggregate for want of memory (docs/ingest.md#memory).
	connector, db, err := openDuckDB(ctx, filepath.Join(dir, "stage.duckdb"), s)
	if err != nil {
		return nil, err
	}
	memBytes, _ := parseBytes(s.MemoryLimit)
	st := &stage{
		dir: dir, memBytes: memBytes,
		connector: connector, db: db, apps: map[string]*duckdb.Appender{}, facts: map[string]bool{},
		tables: map[string]*dataset.TableCounts{}, warnings: map[string]int64{},
		optedOut:    map[pseudonymize.PID]struct{}{},
		patients:    newPatientIndex(filepath.Join(dir, "patients"), patientEntries),
		newPatients: newPatientIndex(filepath.Join(dir, "patients"), patientEntries),
		qname:       quarantinePath,
	}
	for _, t := range Tables {
		if _, err := db.ExecContext(ctx, stagingDDL(t)); err != nil {
			st.close()
			return nil, fmt.Errorf("create staging table %s: %w", t.Name, err)
		}
		st.tables[t.Name] = &dataset.TableCounts{}
		st.facts[t.Name] = IsFactTable(t)
	}
	st.conn, err = connector.Connect(ctx)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("connect duckdb: %w", err)
	}
	for _, t := range Tables {
		app, err := duckdb.NewAppenderFromConn(st.conn, "", "stage_"+t.Name)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("appender %s: %w", t.Name, err)
		}
		st.apps[t.Name] = app
	}
	if st.bookings, err = newColumnarStage(bookingTable(), filepath.Join(dir, "stage")); err != nil {
		st.close()
		return nil, err
	}
	if st.sorted, err = newBucketStage(bookingTable(), filepath.Join(dir, "buckets"), bookingBytes); err != nil {
		st.close()
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(quarantinePath), 0o755); err != nil {
		st.close()
		return nil, err
	}
	st.qfile, err = os.Create(quarantinePath)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("create quarantine file: %w", err)
	}
	st.qbuf = bufio.NewWriterSize(st.qfile, 1<<16)
	st.qenc = json.NewEncoder(st.qbuf)
	return st, nil
}

// quarantined is one line of DATA/quarantine/*.ndjson: where and why, never what.
type quarantined struct {
	File     string `json:"file"`
	Position string `json:"position"`
	Table    string `json:"table,omitempty"`
	Reason   string `json:"reason"`
}

// apply adds one unit's records to the stage and to the counts, in order.
func (st *stage) apply(file *dataset.InputFile, recs []record) error {
	if st.sorted != nil {
		if err := st.sorted.failed(); err != nil {
			return err
		}
	}
	docSeq := make(map[int]int64)
	for i := range recs {
		rec := &recs[i]
		file.Records++
		for _, w := range rec.warnings {
			st.warnings[w]++
		}
		if rec.isPatient {
			p := rec.patient
			if rec.outcome == outQuarantined {
				p.state = outQuarantined
			}
			if err := st.newPatients.add(rec.patientKey, p); err != nil {
				return err
			}
		}
		var tc *dataset.TableCounts
		if rec.table != "" {
			tc = st.tables[rec.table]
			tc.Read++
		}
		switch rec.outcome {
		case outRow:
			st.seq++
			file.Rows++
			if rec.staged {
				continue // written by the mapping worker (stagefile.go)
			}
			if rec.isDoc {
				docSeq[i] = st.seq
				if rec.doc != nil {
					rec.doc.seq = st.seq
				}
			}
			var ds any
			if s, ok := docSeq[rec.docLocal]; ok {
				ds = s
			}
			docKey := docKeyOf(recs, rec.docLocal)
			if d := rec.doc; d != nil && !rec.isDoc {
				// Its document was applied before it, maybe in an earlier unit.
				if docKey = d.key; d.seq != 0 {
					ds = d.seq
				}
			}
			vals := rec.row
			if st.facts[rec.table] {
				vals = append(vals, docKey)
			}
			vals = append(vals, st.seq, ds)
			switch rec.table {
			case "person":
				vals = append(vals, rec.asOf)
			case "document":
				vals = append(vals, rec.meta.lists()...)
			}
			if err := st.apps[rec.table].AppendRow(toDriver(vals)...); err != nil {
				return fmt.Errorf("stage %s row (%s %s): %w", rec.table, file.Path, rec.pos, err)
			}
		case outQuarantined:
			file.Quarantined++
			if tc != nil {
				tc.Quarantined++
			} else {
				st.unparsed++
			}
			if err := st.qenc.Encode(quarantined{File: file.Path, Position: rec.pos, Table: rec.table, Reason: rec.reason}); err != nil {
				return fmt.Errorf("write quarantine: %w", err)
			}
		case outOptedOut:
			file.OptedOut++
			tc.OptedOut++
			st.optedRec++
			if rec.table == "person" || rec.table == "booking" {
				st.optedOut[rec.patient.pid] = struct{}{}
			}
		case outOutsidePeriod:
			file.OutsidePeriod++
			tc.OutsidePeriod++
		case outIgnored:
			file.Ignored++
			if file.IgnoredWhy == nil {
				file.IgnoredWhy = map[string]int64{}
			}
			file.IgnoredWhy[rec.reason]++
		}
	}
	return nil
}

// docKeyOf is the doc_key of the unit's document record i (-1: none).
func docKeyOf(recs []record, i int) any {
	if i < 0 || i >= len(recs) || len(recs[i].row) < 2 {
		return nil
	}
	return recs[i].row[1] // document: pid, doc_key, ...
}

func bookingTable() Table {
	t, _ := TableByName("booking")
	return t
}

func toDriver(vals []any) []driver.Value {
	out := make([]driver.Value, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}

// flush closes the appenders and the quarantine file; the stage stays queryable.
func (st *stage) flush() error {
	for name, app := range st.apps {
		if err := app.Close(); err != nil {
			return fmt.Errorf("flush staging %s: %w", name, err)
		}
		delete(st.apps, name)
	}
	if st.sorted != nil {
		if err := st.sorted.finish(); err != nil {
			return err
		}
	}
	if st.qbuf != nil {
		if err := st.qbuf.Flush(); err != nil {
			return err
		}
		if err := st.qfile.Sync(); err != nil {
			return err
		}
		if err := st.qfile.Close(); err != nil {
			return err
		}
		st.qbuf = nil
	}
	return nil
}

// stageBookingsForSQL moves the bucketed bookings into the staging Parquet files and
// makes stage_booking read them beside the appender's rows, for finalize's SQL.
func (st *stage) stageBookingsForSQL() error {
	if st.sorted != nil {
		if err := st.sorted.toColumnar(st.bookings); err != nil {
			return err
		}
	}
	if err := st.bookings.finish(); err != nil {
		return err
	}
	for _, q := range st.bookings.view() {
		if _, err := st.db.Exec(q); err != nil {
			return fmt.Errorf("stage booking: %w", err)
		}
	}
	return nil
}

// dropPatients empties the indexes of the NDJSON Patients and removes their runs.
func (st *stage) dropPatients() {
	for _, x := range []*patientIndex{st.patients, st.newPatients} {
		if x != nil {
			x.reset()
		}
	}
}

func (st *stage) close() {
	if st.bookings != nil {
		st.bookings.finish()
	}
	if st.sorted != nil {
		st.sorted.finish()
		st.sorted.close()
	}
	for _, app := range st.apps {
		app.Close()
	}
	if st.qfile != nil {
		st.qfile.Close()
	}
	st.dropPatients()
	if st.conn != nil {
		st.conn.Close()
	}
	if st.db != nil {
		st.db.Close()
	}
	if st.connector != nil {
		st.connector.Close()
	}
}
