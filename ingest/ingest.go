// Package ingest reads FSE and CUP extracts (FHIR R4 bundles and bulk NDJSON, HL7 CDA R2
// documents one per file, in zip archives or attached to PDFs, CUP booking CSV),
// pseudonymizes them and writes Velo's canonical tables as pid-sorted Parquet with a
// catalog, a manifest and a quarantine (docs/ingest.md, docs/pseudonymization.md), in the
// layout package dataset describes; readers of a dataset need only package dataset.
//
// Invariants: no direct identifier reaches DATA (a source field not named in the mapping
// is never decoded, identifiers are re-keyed with HMAC); every source record is
// accounted for — written, quarantined with file, position and reason, opted out, out of
// the declared period, or ignored by reason — and the manifest's counts reconcile.
package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// Config is one ingest run.
type Config struct {
	Pseudonymizer *pseudonymize.Pseudonymizer
	OptOut        *pseudonymize.OptOut // may be nil
	Out           string               // the DATA directory
	Inputs        []string             // files or directories
	Period        *fse.Period          // may be nil: then dates have no public domain
	CUPProfile    *CUPProfile          // the dialect of CUP CSV extracts; nil: DefaultCUPProfile
	// Append adds this extract to an existing dataset as a new dataset version. Without
	// it, ingest into a DATA that already holds a dataset is refused.
	Append bool

	Workers     int    // parsing goroutines; 0 = number of CPUs
	MemoryLimit string // the memory budget of staging and sorting, DuckDB's and the rest; default DefaultMemoryLimit
	ToolVersion string
	Logger      *slog.Logger
	Now         func() time.Time
	// OnProgress reports bytes read so far and the total bytes of all inputs.
	OnProgress func(done, total int64)

	crashAfter   int              // tests: stop the commit before this step, as a crash would (0: never)
	appenderOnly bool             // tests: stage every row through DuckDB's appender (no stagefile.go)
	stagedRows   *int64           // tests: set to the number of rows staged as Parquet
	onDocument   func(pos string) // tests: called before each document is mapped
	// tests: the NDJSON Patients each index holds in memory; 0: patientIndexEntries
	patientEntries int
	pidRanges      int // tests: the pid ranges finalize writes every table in; 0: by size
}

// DefaultMemoryLimit is the memory budget of an ingest when none is given (velo ingest
// --memory-limit). DuckDB's buffers get a third of it (duckDBMemoryLimit) and spill to
// disk beyond, the Go heap a quarter (tuneGC); the rest is for DuckDB's allocations
// outside its buffer manager and the binary (docs/ingest.md#memory).
const DefaultMemoryLimit = "1GB"

// ErrDatasetExists is returned when DATA already holds a dataset and Append is not set.
var ErrDatasetExists = errors.New("the output directory already holds a dataset")

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.MemoryLimit == "" {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.CUPProfile == nil {
		c.CUPProfile = DefaultCUPProfile()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OnProgress == nil {
		c.OnProgress = func(int64, int64) {}
	}
}

type inputFile struct {
	path   string
	size   int64
	format string
	first  string // first resource type of an NDJSON file
	hint   string // why a file of no known format was skipped, when there is more to say
}

// Run ingests the inputs into cfg.Out and returns the manifest it wrote.
func Run(ctx context.Context, cfg Config) (*dataset.Manifest, error) {
	cfg.defaults()
	if cfg.Pseudonymizer == nil {
		return nil, errors.New("ingest: no pseudonymization key")
	}
	defer tuneGC(cfg.MemoryLimit)()
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Out, err)
	}
	unlock, err := lockDataDir(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := recoverLocked(cfg.Out, cfg.Logger); err != nil {
		return nil, err
	}
	prev, err := dataset.ReadManifest(cfg.Out)
	switch {
	case err == nil && !cfg.Append:
		return nil, fmt.Errorf("%w (%s, version %s): pass --append to add this extract as a new dataset version, or choose another --out", ErrDatasetExists, cfg.Out, prev.DatasetVersion)
	case err == nil && prev.KeyID != cfg.Pseudonymizer.KeyID():
		return nil, fmt.Errorf("append: the dataset in %s was pseudonymized with key %s, not %s: pids would not match", cfg.Out, prev.KeyID, cfg.Pseudonymizer.KeyID())
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case err != nil:
		prev = nil
	}
	if prev != nil && !samePeriod(prev.Period, cfg.Period) {
		return nil, fmt.Errorf("append: the dataset's period is %v, this run declares %v: they must match", prev.Period, cfg.Period)
	}
	files, err := collectInputs(cfg.Inputs, cfg.CUPProfile)
	if err != nil {
		return nil, err
	}
	// Everything is written under tmp (a killed run leaves only tmp, which the next ingest
	// removes), then committed (commit.go).
	tmp, err := os.MkdirTemp(cfg.Out, ".ingest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	next := filepath.Join(tmp, "next")

	batchSeq := 1
	if prev != nil {
		batchSeq = len(prev.Batches) + 1
	}
	qrel := dataset.QuarantineFile(batchSeq)
	// What the booking buckets are sized for: the CSV files' bytes, and an append's
	// existing bookings at about a CSV record's size each.
	var bookingBytes int64
	for _, f := range files {
		if f.format == formatCSV {
			bookingBytes += f.size
		}
	}
	if prev != nil {
		// An append stages the existing bookings in the buckets too (finalizeBookings).
		existing, err := filepath.Glob(dataset.TableGlob(cfg.Out, bookingTable().Name))
		if err != nil {
			return nil, err
		}
		n, err := existingRows(existing)
		if err != nil {
			return nil, err
		}
		bookingBytes += n * existingBytesPerRow
	}
	st, err := newStage(ctx, tmp, duckDBSettings{MemoryLimit: duckDBMemoryLimit(cfg.MemoryLimit), Threads: cfg.Workers, TempDir: filepath.Join(tmp, "spill")}, filepath.Join(next, qrel), bookingBytes, cmp.Or(cfg.patientEntries, patientIndexEntries(cfg.MemoryLimit)))
	if err != nil {
		return nil, err
	}
	defer st.close()
	st.workers = cfg.Workers
	st.pidRangesFixed = cfg.pidRanges
	st.seeds = cfg.Pseudonymizer

	m := &mapper{ps: cfg.Pseudonymizer, optOut: cfg.OptOut, period: cfg.Period, onDocument: cfg.onDocument}
	var total, done int64
	for _, f := range files {
		total += f.size
	}
	batch := dataset.Batch{Seq: batchSeq, At: cfg.Now().UTC(), Quarantine: qrel}
	// Patients first, so every other resource can find its patient: resources resolve
	// against the Patients of the NDJSON files read before their own.
	sort.SliceStable(files, func(i, j int) bool { return rank(files[i]) < rank(files[j]) })
	for i := 0; i < len(files); {
		var ins []dataset.InputFile
		if isDocumentFormat(files[i].format) {
			// A run of CDA files and PDFs carrying them (typically a directory of
			// them) is read as one pipeline, so that many small documents parse in
			// parallel.
			j := i
			var size int64
			for j < len(files) && isDocumentFormat(files[j].format) {
				size += files[j].size
				j++
			}
			ins, err = st.ingestCDAFiles(ctx, cfg, m, files[i:j], func(n int64) { cfg.OnProgress(done+n, total) })
			done += size
			i = j
		} else {
			var in dataset.InputFile
			in, err = st.ingestFile(ctx, cfg, m, files[i], func(n int64) { cfg.OnProgress(done+n, total) })
			ins = []dataset.InputFile{in}
			done += files[i].size
			i++
		}
		if err != nil {
			return nil, err
		}
		cfg.OnProgress(done, total)
		for _, in := range ins {
			batch.Inputs = append(batch.Inputs, in)
			cfg.Logger.Info("ingested file", "file", in.Path, "format", in.Format, "records", in.Records, "rows", in.Rows, "quarantined", in.Quarantined)
		}
	}
	if err := st.flush(); err != nil {
		return nil, err
	}
	if cfg.stagedRows != nil {
		*cfg.stagedRows = st.sorted.rows
	}
	// What the readers and mappers allocated is garbage now, and so is the index of the
	// NDJSON Patients (up to 84 MB a million in memory): give it back to the system before
	// DuckDB's sort takes its share of the memory limit.
	st.dropPatients()
	debug.FreeOSMemory()
	if err := st.finalize(ctx, cfg.Out, next, prev != nil, batchSeq); err != nil {
		return nil, err
	}
	batch.Tables = map[string]dataset.TableCounts{}
	for name, tc := range st.tables {
		batch.Tables[name] = *tc
	}
	batch.Warnings = st.warnings
	if st.unparsed > 0 {
		batch.Warnings[warnRecordsUnparsed] = st.unparsed
	}
	batch.OptedOut = dataset.OptOutCounts{People: int64(len(st.optedOut)), Records: st.optedRec}

	man := &dataset.Manifest{Format: "velo-manifest/v1", KeyID: cfg.Pseudonymizer.KeyID(), ToolVersion: cfg.ToolVersion, Period: cfg.Period}
	prevVersion := ""
	if prev != nil {
		man.Batches = prev.Batches
		man.Removals = prev.Removals
		prevVersion = prev.DatasetVersion
	}
	man.Batches = append(man.Batches, batch)
	man.OptOutRegistrySize = cfg.OptOut.Len()
	man.CreatedAt = cfg.Now().UTC()
	man.Tables = map[string]dataset.TableCounts{}
	for _, r := range man.Removals {
		for name, n := range r.RemovedRows {
			t := man.Tables[name]
			t.RemovedLater += n
			t.Written -= n
			man.Tables[name] = t
		}
	}
	for _, b := range man.Batches {
		for name, c := range b.Tables {
			t := man.Tables[name]
			t.Read += c.Read
			t.Written += c.Written
			t.Quarantined += c.Quarantined
			t.OptedOut += c.OptedOut
			t.OutsidePeriod += c.OutsidePeriod
			t.Superseded += c.Superseded
			t.Merged += c.Merged + c.ReplacedExisting
			t.Written -= c.ReplacedExisting
			man.Tables[name] = t
		}
	}
	man.DatasetVersion = datasetVersion(prevVersion, man.KeyID, batch.Inputs, batch.Tables, "")
	return man, commit(cfg.Out, next, man, cfg.crashAfter)
}

func samePeriod(a, b *fse.Period) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.From.Equal(b.From) && a.To.Equal(b.To)
}

func rank(f inputFile) int {
	if f.format == formatNDJSON && f.first == "Patient" {
		return 0
	}
	return 1
}

// collectInputs expands directories (sorted, recursively) and sniffs each file.
func collectInputs(inputs []string, p *CUPProfile) ([]inputFile, error) {
	if len(inputs) == 0 {
		return nil, errors.New("no input files or directories given")
	}
	var out []inputFile
	for _, in := range inputs {
		err := filepath.WalkDir(in, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("input %s: %w", pseudonymize.MaskIdentifiers(path), err)
			}
			if d.IsDir() {
				if path != in && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			f := inputFile{path: path, size: info.Size()}
			head := make([]byte, 64<<10)
			fh, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("input %s: %w", pseudonymize.MaskIdentifiers(path), err)
			}
			n, _ := io.ReadFull(fh, head)
			fh.Close()
			f.format, f.first = sniffWith(head[:n], p)
			if f.format == "" {
				f.hint = p.skipHint(head[:n])
			}
			out = append(out, f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hashingReader hashes what is read through it and reports progress.
type hashingReader struct {
	r        io.Reader
	h        interface{ Write([]byte) (int, error) }
	n        int64
	progress func(int64)
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	if hr.progress != nil && n > 0 {
		hr.progress(hr.n)
	}
	return n, err
}

// ingestFile reads one input file into the stage.
func (st *stage) ingestFile(ctx context.Context, cfg Config, m *mapper, f inputFile, progress func(int64)) (dataset.InputFile, error) {
	in := dataset.InputFile{Path: pseudonymize.MaskIdentifiers(f.path), Format: f.format}
	fh, err := os.Open(f.path)
	if err != nil {
		return in, fmt.Errorf("open %s: %w", in.Path, err)
	}
	defer fh.Close()
	h := sha256.New()
	hr := &hashingReader{r: fh, h: h, progress: progress}
	resolve := globalPatients(st.patients)
	apply := func(recs []record) error { return st.apply(&in, recs) }
	switch f.format {
	case formatNDJSON:
		err = runPipeline(ctx, cfg.Workers,
			func(emit func(unit) error) error { return produceLines(hr, f.size, emit) },
			func(u unit) []record { return m.ndjsonWork(u, resolve) },
			apply)
	case formatBundle:
		// Read twice, entry by entry (bundle.go): the first pass hashes the file.
		err = m.readBundle(ctx, cfg.Workers, hr, fh, f.size, "bundle", resolve, apply)
	case formatCSV:
		var bm *bookingMapper
		st.csvFiles++
		cs := st.sorted
		if cfg.appenderOnly {
			cs = nil
		} else {
			cs.startFile(st.csvFiles)
		}
		err = runPipeline(ctx, cfg.Workers,
			func(emit func(unit) error) error {
				// The header is read before the first unit is emitted, so bm is set
				// before any worker runs.
				_, err := produceCSVWith(hr, cfg.CUPProfile, func(col map[string]int, n int) { bm = newBookingMapper(m, cfg.CUPProfile, col, n) }, emit)
				return err
			},
			func(u unit) []record {
				if cs == nil {
					return bm.work(u)
				}
				recs := bm.workValues(u)
				cs.write(u.idx, recs)
				return recs
			},
			apply)
	case formatCDAZip:
		err = st.ingestCDAZip(ctx, cfg, m, f, &in)
	default:
		// CDA files and PDFs never get here: Run reads them in batches (ingestCDAFiles).
		in.Skipped = "no known format (FHIR Bundle, FHIR NDJSON, CUP booking CSV, HL7 CDA R2 document, PDF with one attached, or zip of them)"
		if f.hint != "" {
			in.Skipped = f.hint
			cfg.Logger.Warn("skipped a file", "file", in.Path, "reason", f.hint)
		}
	}
	if err != nil {
		return in, fmt.Errorf("ingest %s: %w", in.Path, err)
	}
	// A resource whose Patient could not be read from disk found none: the ingest stops
	// rather than quarantine it.
	if err := st.patients.failed(); err != nil {
		return in, fmt.Errorf("ingest %s: %w", in.Path, err)
	}
	// The file's Patients join the earlier files'.
	if err := st.patients.absorb(st.newPatients); err != nil {
		return in, fmt.Errorf("ingest %s: %w", in.Path, err)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return in, fmt.Errorf("read %s: %w", in.Path, err)
	}
	in.Bytes = hr.n
	in.SHA256 = hex.EncodeToString(h.Sum(nil))
	return in, nil
}
