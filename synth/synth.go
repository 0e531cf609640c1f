// Package synth writes a deterministic synthetic extract of the Italian FSE (FHIR R4
// NDJSON and transaction Bundles, and optionally HL7 CDA R2 documents of the same people)
// and of CUP bookings (CSV), with an opt-out list and a report of what ingest must make of
// every file.
//
// Invariants: the people are fake — every name, code and date is drawn from a seeded
// generator and the public reference data of package fse, never from real records — and
// the output is a pure function of Config without Workers and OnProgress: the same seed,
// size and period give byte-identical files on any machine and with any number of
// workers. Each person is drawn from a generator seeded by (Seed, person index) alone, so
// people render in parallel chunks that a single writer appends in order, and memory does
// not grow with the number of people.
package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/velo-fse/velo/fse"
)

// Config says what to generate. The zero value of every field but Persons and Out has a
// default; see Generate.
type Config struct {
	// Persons is the number of people, 1..MaxPersons.
	Persons int
	// Seed selects the extract: two runs with the same Seed, Persons, Bundles and period
	// write the same bytes.
	Seed uint64
	// Bundles is how many of the first people also get a FHIR transaction Bundle (a
	// laboratory report), 0..Persons.
	Bundles int
	// Out is the output directory; it is created, and must not exist or be empty.
	Out string
	// From and To bound the extract period (whole days, inclusive): event dates fall
	// inside it except the few records written to exercise ingest's period check. Zero
	// values default to 2024-01-01 and 2025-12-31.
	From, To time.Time
	// OnProgress, if not nil, is called with the number of people written so far.
	OnProgress func(done int64)
	// Workers is the number of goroutines rendering people; 0 means runtime.NumCPU().
	// It never changes the output.
	Workers int
	// Formats selects what is written: FormatFHIR (NDJSON, and the Bundles), FormatCSV
	// (CUP bookings) and FormatCDA (HL7 CDA R2 documents, see cda.go). Empty means FHIR
	// and CSV. optout.txt is always written. The people and their facts do not depend on
	// the formats: each format renders the same draws, so the FHIR and CSV files are the
	// same bytes with or without CDA.
	Formats []Format
}

// Format is an output of Generate.
type Format string

// The formats Generate writes.
const (
	FormatFHIR Format = "fhir"
	FormatCSV  Format = "csv"
	FormatCDA  Format = "cda"
)

// DefaultFormats are written when Config.Formats is empty.
var DefaultFormats = []Format{FormatFHIR, FormatCSV}

// ParseFormats parses a comma-separated list of formats (fhir, csv, cda).
func ParseFormats(s string) ([]Format, error) {
	var out []Format
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch Format(f) {
		case FormatFHIR, FormatCSV, FormatCDA:
			if !slices.Contains(out, Format(f)) {
				out = append(out, Format(f))
			}
		default:
			return nil, fmt.Errorf("unknown format %q (want a comma-separated list of fhir, csv, cda)", f)
		}
	}
	return out, nil
}

// DefaultFrom and DefaultTo bound the extract period when Config leaves it zero.
var (
	DefaultFrom = fse.Date(2024, time.January, 1)
	DefaultTo   = fse.Date(2025, time.December, 31)
)

// Report describes what Generate wrote; it is also saved as OUT/synth.json. Paths are
// relative to Out, with forward slashes.
type Report struct {
	// Seed, Persons, Bundles and Formats repeat the Config.
	Seed    uint64   `json:"seed"`
	Persons int      `json:"persons"`
	Bundles int      `json:"bundles"`
	Formats []Format `json:"formats"`
	// Period is the extract period the files were generated for.
	Period Period `json:"period"`
	// Files has one entry per file written except synth.json.
	Files map[string]FileStats `json:"files"`
	// Expected is, for every data file (all but optout.txt), what ingest must count.
	Expected map[string]Outcome `json:"expected"`
	// Identifiers counts people by the kind of identifier their records carry.
	Identifiers IdentifierCounts `json:"identifiers"`
	// OptedOut is the number of people listed in optout.txt.
	OptedOut int64 `json:"opted_out_persons"`
	// CDADocuments is the number of CDA documents in the archives under cda/.
	CDADocuments int64 `json:"cda_documents,omitempty"`
	// Faults counts the deliberately bad records by kind.
	Faults FaultCounts `json:"faults"`
	// Variants counts valid records written in an unusual but acceptable form.
	Variants VariantCounts `json:"variants"`
}

// Period is the extract period as ISO dates (YYYY-MM-DD), both ends included.
type Period struct {
	From string `json:"from"` // first day
	To   string `json:"to"`   // last day
}

// FileStats counts a file's lines (newline-terminated), data records, and bytes.
type FileStats struct {
	Lines   int64 `json:"lines"`   // newline characters, a CSV header and pretty-printed JSON included
	Records int64 `json:"records"` // data records; 0 for optout.txt, whose lines are people
	Bytes   int64 `json:"bytes"`   // file size
}

// Outcome is what ingest must make of a file's records: Records in all (the CSV header
// is not a record; a Bundle's records are its entries), of which Quarantined, OptedOut
// and OutsidePeriod are set aside and the rest are accepted. The three are disjoint:
//
//   - quarantined: malformed (unparsable JSON or CSV line, wrong field count, malformed
//     date, unknown service code or priority class) or carrying an invalid patient
//     identifier, and every record that references a quarantined Patient;
//   - opted_out: any other record of a person in optout.txt (matched on the canonical
//     identifier: optout.txt mixes case and omocode variants);
//   - outside_period: any other record whose main date (Encounter period.start,
//     Condition onsetDateTime, Observation effectiveDateTime, MedicationRequest and
//     ServiceRequest authoredOn, Immunization occurrenceDateTime, DocumentReference and Composition date,
//     booking d_contact) is outside the period.
//
// The generator never gives an opted-out or quarantined person a malformed or
// out-of-period record, so the counts do not depend on the order ingest applies the rules.
type Outcome struct {
	Records       int64 `json:"records"`        // data records in the file
	Quarantined   int64 `json:"quarantined"`    // malformed, bad identifier, or of a quarantined Patient
	OptedOut      int64 `json:"opted_out"`      // of a person in optout.txt
	OutsidePeriod int64 `json:"outside_period"` // main date outside the period
}

func (o *Outcome) add(x Outcome) {
	o.Records += x.Records
	o.Quarantined += x.Quarantined
	o.OptedOut += x.OptedOut
	o.OutsidePeriod += x.OutsidePeriod
}

// IdentifierCounts counts people by the identifier their Patient resource carries.
type IdentifierCounts struct {
	CodiceFiscale  int64 `json:"codice_fiscale"`   // a plain, valid codice fiscale
	Omocode        int64 `json:"omocode"`          // a valid omocode variant
	STP            int64 `json:"stp"`              // STP + 13 digits
	ENI            int64 `json:"eni"`              // ENI + 13 digits
	Temporary      int64 `json:"temporary"`        // 11-digit temporary code
	BadCheckLetter int64 `json:"bad_check_letter"` // a codice fiscale with a wrong check letter
}

// FaultCounts counts deliberately bad records; each is bad in exactly one way.
type FaultCounts struct {
	// PatientBadCheckLetter is the number of Patient resources whose codice fiscale has
	// a wrong check letter (every other record of those people is quarantined too).
	PatientBadCheckLetter int64 `json:"patient_bad_check_letter"`
	// BookingBadDate: one of d_prescription..d_appointment is 30 February or DD/MM/YYYY.
	BookingBadDate int64 `json:"booking_bad_date"`
	// BookingUnknownService: a nomenclatore code that is not in fse.Services.
	BookingUnknownService int64 `json:"booking_unknown_service"`
	// BookingUnknownPriority: priority class "X".
	BookingUnknownPriority int64 `json:"booking_unknown_priority"`
	// BookingTruncated: a CSV line with 4 to 15 of its 17 fields.
	BookingTruncated int64 `json:"booking_truncated"`
	// ObservationTruncated: an Observation.ndjson line cut in half (invalid JSON).
	ObservationTruncated int64 `json:"observation_truncated_json"`
	// ObservationBadDate: an effectiveDateTime on 30 February or in DD/MM/YYYY hh:mm form.
	ObservationBadDate int64 `json:"observation_bad_date"`
	// CDATruncated: an extra CDA document cut short (malformed XML), one record.
	CDATruncated int64 `json:"cda_truncated,omitempty"`
}

// VariantCounts counts valid records in a form ingest must normalise.
type VariantCounts struct {
	// BookingOmocode is the number of bookings whose patient_cf is an omocode variant of
	// the code the person's Patient carries.
	BookingOmocode int64 `json:"booking_omocode_cf"`
	// BookingNoRx is the number of bookings without a prescription number.
	BookingNoRx int64 `json:"booking_no_rx"`
	// OptOutLowercase and OptOutOmocode count optout.txt lines in lower case or as an
	// omocode variant (or, for a person whose Patient carries a variant, the plain code).
	OptOutLowercase int64 `json:"optout_lowercase"`
	OptOutOmocode   int64 `json:"optout_omocode"`
	// PatientRegionalID is the number of Patients with a second, regional identifier.
	PatientRegionalID int64 `json:"patient_regional_id"`
}

// Output files, relative to Out.
const (
	fPatient = iota
	fEncounter
	fCondition
	fObservation
	fMedicationRequest
	fImmunization
	fServiceRequest
	fDocumentReference
	fBookings
	fOptOut
	nFiles
)

var fileNames = [nFiles]string{
	"fhir/ndjson/Patient.ndjson",
	"fhir/ndjson/Encounter.ndjson",
	"fhir/ndjson/Condition.ndjson",
	"fhir/ndjson/Observation.ndjson",
	"fhir/ndjson/MedicationRequest.ndjson",
	"fhir/ndjson/Immunization.ndjson",
	"fhir/ndjson/ServiceRequest.ndjson",
	"fhir/ndjson/DocumentReference.ndjson",
	"cup/bookings.csv",
	"optout.txt",
}

// BookingsHeader is the header line of cup/bookings.csv.
const BookingsHeader = "booking_id,rx_id,patient_cf,service_code,priority,first_access,d_prescription,d_contact,d_first_available,d_appointment,d_delivered,garanzia,provider_id,asl,region,channel,status"

const chunkSize = 500 // people per unit of parallel work

// Generate writes the extract described by cfg and returns its report. It refuses an
// output directory that exists and is not empty. On error or cancellation the directory
// is left with whatever was written so far.
func Generate(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return Report{}, err
	}
	pl := newPlan(cfg)
	if err := prepareOut(cfg.Out, cfg.Bundles > 0, pl.formats); err != nil {
		return Report{}, err
	}
	rep := Report{
		Seed: cfg.Seed, Persons: cfg.Persons, Bundles: cfg.Bundles, Formats: cfg.Formats,
		Period:   Period{From: pl.from.String(), To: pl.to.String()},
		Files:    map[string]FileStats{},
		Expected: map[string]Outcome{},
	}

	var files [nFiles]*os.File
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var stats [nFiles]FileStats
	var expected [nFiles]Outcome
	for i, name := range fileNames {
		if !pl.formats[fileFormat(i)] {
			continue
		}
		f, err := os.Create(filepath.Join(cfg.Out, filepath.FromSlash(name)))
		if err != nil {
			return Report{}, fmt.Errorf("synth: create output file: %w", err)
		}
		files[i] = f
	}
	if files[fBookings] != nil {
		if _, err := files[fBookings].WriteString(BookingsHeader + "\n"); err != nil {
			return Report{}, fmt.Errorf("synth: write %s: %w", fileNames[fBookings], err)
		}
		stats[fBookings] = FileStats{Lines: 1, Bytes: int64(len(BookingsHeader) + 1)}
	}

	err = pl.run(ctx, func(c *chunk) error {
		for i := range nFiles {
			if len(c.data[i]) == 0 || files[i] == nil {
				continue
			}
			if _, err := files[i].Write(c.data[i]); err != nil {
				return fmt.Errorf("synth: write %s: %w", fileNames[i], err)
			}
			stats[i].Bytes += int64(len(c.data[i]))
			stats[i].Lines += c.lines[i]
			stats[i].Records += c.expected[i].Records
			expected[i].add(c.expected[i])
		}
		for _, b := range c.bundles {
			name := fmt.Sprintf("fhir/bundles/bundle-%06d.json", b.seq)
			if err := os.WriteFile(filepath.Join(cfg.Out, filepath.FromSlash(name)), b.data, 0o644); err != nil {
				return fmt.Errorf("synth: write bundle: %w", err)
			}
			rep.Files[name] = FileStats{Lines: int64(bytes.Count(b.data, []byte{'\n'})), Records: b.outcome.Records, Bytes: int64(len(b.data))}
			rep.Expected[name] = b.outcome
		}
		if len(c.cdaZip) > 0 {
			name := fmt.Sprintf("cda/cda-%06d.zip", c.first/chunkSize+1)
			if err := os.WriteFile(filepath.Join(cfg.Out, filepath.FromSlash(name)), c.cdaZip, 0o644); err != nil {
				return fmt.Errorf("synth: write CDA archive: %w", err)
			}
			rep.Files[name] = FileStats{Lines: int64(bytes.Count(c.cdaZip, []byte{'\n'})), Records: c.cdaOutcome.Records, Bytes: int64(len(c.cdaZip))}
			rep.Expected[name] = c.cdaOutcome
			rep.CDADocuments += c.cdaDocs
		}
		addIdentifiers(&rep.Identifiers, c.idents)
		addFaults(&rep.Faults, c.faults)
		addVariants(&rep.Variants, c.variants)
		rep.OptedOut += c.optedOut
		if cfg.OnProgress != nil {
			cfg.OnProgress(int64(c.first + c.n))
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	for i, f := range files {
		if f == nil {
			continue
		}
		files[i] = nil
		if err := f.Close(); err != nil {
			return Report{}, fmt.Errorf("synth: close %s: %w", fileNames[i], err)
		}
	}
	for i, name := range fileNames {
		if !pl.formats[fileFormat(i)] {
			continue
		}
		rep.Files[name] = stats[i]
		if i != fOptOut {
			rep.Expected[name] = expected[i]
		}
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return Report{}, fmt.Errorf("synth: encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "synth.json"), append(js, '\n'), 0o644); err != nil {
		return Report{}, fmt.Errorf("synth: write report: %w", err)
	}
	return rep, nil
}

func (cfg Config) normalize() (Config, error) {
	switch {
	case cfg.Persons < 1 || cfg.Persons > MaxPersons:
		return cfg, fmt.Errorf("synth: Persons must be between 1 and %d, got %d", MaxPersons, cfg.Persons)
	case cfg.Bundles < 0 || cfg.Bundles > cfg.Persons:
		return cfg, fmt.Errorf("synth: Bundles must be between 0 and Persons (%d), got %d", cfg.Persons, cfg.Bundles)
	case cfg.Out == "":
		return cfg, errors.New("synth: Out (the output directory) is required")
	case cfg.Workers < 0:
		return cfg, fmt.Errorf("synth: Workers must not be negative, got %d", cfg.Workers)
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = DefaultFormats
	}
	for _, f := range cfg.Formats {
		if f != FormatFHIR && f != FormatCSV && f != FormatCDA {
			return cfg, fmt.Errorf("synth: unknown format %q (want fhir, csv or cda)", f)
		}
	}
	if cfg.Bundles > 0 && !slices.Contains(cfg.Formats, FormatFHIR) {
		return cfg, errors.New("synth: Bundles are FHIR: they need the fhir format")
	}
	if cfg.From.IsZero() {
		cfg.From = DefaultFrom
	}
	if cfg.To.IsZero() {
		cfg.To = DefaultTo
	}
	if cfg.To.Before(cfg.From) {
		return cfg, fmt.Errorf("synth: period ends (To %s) before it starts (From %s)", cfg.To.Format(time.DateOnly), cfg.From.Format(time.DateOnly))
	}
	if y := cfg.From.Year(); y < 1930 || cfg.To.Year() > 9999 {
		return cfg, fmt.Errorf("synth: period %s..%s is outside the years 1930-9999", cfg.From.Format(time.DateOnly), cfg.To.Format(time.DateOnly))
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	return cfg, nil
}

// fileFormat is the format a file of fileNames belongs to ("" for optout.txt, which is
// always written).
func fileFormat(i int) Format {
	switch i {
	case fBookings:
		return FormatCSV
	case fOptOut:
		return ""
	}
	return FormatFHIR
}

func prepareOut(dir string, bundles bool, formats map[Format]bool) error {
	switch entries, err := os.ReadDir(dir); {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("synth: output directory %s is not empty; synth never overwrites, choose a new or empty directory", dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("synth: output directory: %w", err)
	}
	var sub []string
	if formats[FormatFHIR] {
		sub = append(sub, "fhir/ndjson")
	}
	if formats[FormatCSV] {
		sub = append(sub, "cup")
	}
	if bundles {
		sub = append(sub, "fhir/bundles")
	}
	if formats[FormatCDA] {
		sub = append(sub, "cda")
	}
	for _, s := range sub {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(s)), 0o755); err != nil {
			return fmt.Errorf("synth: create output directory: %w", err)
		}
	}
	return nil
}

// chunk is the rendered output of people [first, first+n).
type chunk struct {
	first, n int
	data     [nFiles][]byte
	lines    [nFiles]int64
	expected [nFiles]Outcome
	bundles  []bundleOut
	// The chunk's CDA documents as one zip archive, and what ingest must make of it.
	cdaZip     []byte
	cdaOutcome Outcome
	cdaDocs    int64
	idents     IdentifierCounts
	faults     FaultCounts
	variants   VariantCounts
	optedOut   int64
	done       chan struct{}
}

type bundleOut struct {
	seq     int
	data    []byte
	outcome Outcome
}

func (c *chunk) reset(first, n int) {
	c.first, c.n = first, n
	for i := range nFiles {
		c.data[i] = c.data[i][:0]
	}
	c.lines = [nFiles]int64{}
	c.expected = [nFiles]Outcome{}
	c.bundles = c.bundles[:0]
	c.cdaZip, c.cdaOutcome, c.cdaDocs = c.cdaZip[:0], Outcome{}, 0
	c.idents, c.faults, c.variants, c.optedOut = IdentifierCounts{}, FaultCounts{}, VariantCounts{}, 0
	c.done = make(chan struct{})
}

// run renders chunks on cfg.Workers goroutines and hands them to write in order. At most
// a fixed number of chunks exist at once, so memory is flat in the number of people.
func (pl *plan) run(ctx context.Context, write func(*chunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := pl.cfg.Workers
	pool := sync.Pool{New: func() any { return new(chunk) }}
	ordered := make(chan *chunk, workers+2) // bounds the chunks in flight
	jobs := make(chan *chunk)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ordered)
		defer close(jobs)
		for first := 0; first < pl.cfg.Persons; first += chunkSize {
			c := pool.Get().(*chunk)
			c.reset(first, min(chunkSize, pl.cfg.Persons-first))
			select {
			case ordered <- c:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- c:
			case <-ctx.Done():
				close(c.done) // the writer may be waiting on it
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			g := newGen(pl)
			for c := range jobs {
				g.render(c)
				close(c.done)
			}
		})
	}
	var err error
	written := 0
	for c := range ordered {
		if err != nil {
			continue // drain, so the dispatcher can stop
		}
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("synth: %w", ctxErr)
		} else if err = write(c); err == nil {
			written += c.n
			pool.Put(c)
			continue
		}
		cancel()
	}
	wg.Wait()
	if err == nil && written < pl.cfg.Persons { // the dispatcher saw the cancellation first
		err = fmt.Errorf("synth: %w", context.Cause(ctx))
	}
	return err
}

// plan holds what every worker shares, read-only, derived from the Config.
type plan struct {
	cfg                    Config
	formats                map[Format]bool
	from, to               day
	fromYear               int
	scale                  float64 // period length relative to the default two years
	seedA, seedB           uint64  // per-person generators are seeded from these and the index
	slots                  perm
	ageBands, regions      weighted
	comuni                 []weighted // per region
	mobility               []weighted // per region of residence: where else people book
	foreignP               [nCountries]float64
	services               []service
	serviceW               [2][nAgeBands]weighted // [female][age band]
	priorities, channels   weighted
	bookingID, nre         perm
	progressive, temporary perm
	chronicDrugs           [][]int // per chronic diagnosis, indices into drugs
	acuteDrugs             []int
	docNames               map[string]string
}

// service is a monitored service with its waiting-time model.
type service struct {
	fse.Service
	serviceModel
}

func newPlan(cfg Config) *plan {
	pl := &plan{cfg: cfg, from: dayOf(cfg.From), to: dayOf(cfg.To), fromYear: cfg.From.Year(), formats: map[Format]bool{"": true}}
	for _, f := range cfg.Formats {
		pl.formats[f] = true
	}
	pl.scale = float64(pl.to-pl.from+1) / 730.5
	s := mix64(cfg.Seed ^ 0x5eed5eed5eed5eed)
	pl.seedA, pl.seedB = mix64(s), mix64(s^0xa5a5a5a5a5a5a5a5)
	pl.slots = newPerm(mix64(s^5), nSlots)
	pl.bookingID = newPerm(mix64(s^1), 1e12)
	pl.nre = newPerm(mix64(s^2), 1e11)
	pl.progressive = newPerm(mix64(s^3), 1e7)
	pl.temporary = newPerm(mix64(s^4), 1e10)

	pl.ageBands = newWeighted(ageBands[:])
	pops := make([]float64, len(fse.Regions))
	for i, r := range fse.Regions {
		pops[i] = float64(r.Population)
		cw := make([]float64, len(r.Comuni))
		for j := range cw {
			cw[j] = 1
		}
		cw[0] = 2.5 // the first comune listed is the regional capital
		pl.comuni = append(pl.comuni, newWeighted(cw))
	}
	pl.regions = newWeighted(pops)
	for i := range fse.Regions {
		w := make([]float64, len(fse.Regions))
		for j, r := range fse.Regions {
			if j != i {
				f := regionWaitFactor(r.Code)
				w[j] = pops[j] / (f * f * f)
			}
		}
		pl.mobility = append(pl.mobility, newWeighted(w))
	}
	var tot float64
	for _, c := range countries {
		tot += c.Weight
	}
	for i, c := range countries {
		pl.foreignP[i] = 0.09 * nCountries * c.Weight / tot
	}

	for _, s := range fse.Services {
		m, ok := serviceModels[s.Code]
		if !ok { // a service added to fse later: book it rarely, with average waits
			m = serviceModel{Weight: 1, Wait: 1, MinAge: 18, Doc: docRSA}
		}
		pl.services = append(pl.services, service{s, m})
	}
	for f := range 2 {
		for band := range nAgeBands {
			age := band*5 + 2
			w := make([]float64, len(pl.services))
			for i, s := range pl.services {
				switch {
				case s.Sex == 'F' && f == 0, s.Sex == 'M' && f == 1:
				case age < 14 && !s.Child:
				case age < s.MinAge:
				default:
					w[i] = s.Weight
					if s.Code == "87.37.1" && (age < 45 || age > 74) {
						w[i] /= 3 // screening age
					}
					if s.Code == "45.23" && age >= 50 {
						w[i] *= 2
					}
				}
			}
			pl.serviceW[f][band] = newWeighted(w)
		}
	}
	pl.priorities = newWeighted([]float64{5, 25, 35, 35}) // fse.Priorities order: U B D P
	pl.channels = newWeighted([]float64{45, 25, 20, 10})  // fse.Channels order

	atc := map[string]int{}
	for i, d := range drugs {
		atc[d.ATC] = i
	}
	for _, c := range chronic {
		var idx []int
		for _, code := range c.Drugs {
			i, ok := atc[code]
			if !ok {
				panic("synth: drug " + code + " missing from the drug table")
			}
			idx = append(idx, i)
		}
		pl.chronicDrugs = append(pl.chronicDrugs, idx)
	}
	for _, code := range acuteDrugs {
		pl.acuteDrugs = append(pl.acuteDrugs, atc[code])
	}
	pl.docNames = map[string]string{}
	for _, d := range fse.DocumentTypes {
		pl.docNames[d.LOINC] = d.Name
	}
	return pl
}

func regionWaitFactor(code string) float64 {
	if f, ok := regionWait[code]; ok {
		return f
	}
	return 1
}

// randDay draws a day of the period uniformly.
func (pl *plan) randDay(r *rand.Rand) day { return pl.from + day(r.IntN(int(pl.to-pl.from)+1)) }

// inPeriod reports whether d falls in the extract period.
func (pl *plan) inPeriod(d day) bool { return d >= pl.from && d <= pl.to }

// weighted draws an index with probability proportional to its weight.
type weighted struct{ cum []float64 }

func newWeighted(w []float64) weighted {
	cum := make([]float64, len(w))
	var s float64
	for i, x := range w {
		s += x
		cum[i] = s
	}
	return weighted{cum}
}

func (w weighted) pick(r *rand.Rand) int {
	u := r.Float64() * w.cum[len(w.cum)-1]
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if w.cum[m] > u {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

func addIdentifiers(a *IdentifierCounts, b IdentifierCounts) {
	a.CodiceFiscale += b.CodiceFiscale
	a.Omocode += b.Omocode
	a.STP += b.STP
	a.ENI += b.ENI
	a.Temporary += b.Temporary
	a.BadCheckLetter += b.BadCheckLetter
}

func addFaults(a *FaultCounts, b FaultCounts) {
	a.PatientBadCheckLetter += b.PatientBadCheckLetter
	a.BookingBadDate += b.BookingBadDate
	a.BookingUnknownService += b.BookingUnknownService
	a.BookingUnknownPriority += b.BookingUnknownPriority
	a.BookingTruncated += b.BookingTruncated
	a.ObservationTruncated += b.ObservationTruncated
	a.ObservationBadDate += b.ObservationBadDate
	a.CDATruncated += b.CDATruncated
}

func addVariants(a *VariantCounts, b VariantCounts) {
	a.BookingOmocode += b.BookingOmocode
	a.BookingNoRx += b.BookingNoRx
	a.OptOutLowercase += b.OptOutLowercase
	a.OptOutOmocode += b.OptOutOmocode
	a.PatientRegionalID += b.PatientRegionalID
}
