package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Input formats, detected by content.
const (
	formatNDJSON = "fhir-ndjson"
	formatBundle = "fhir-bundle"
	formatCSV    = "cup-csv"
	formatCDA    = "cda-r2"
	formatCDAZip = "cda-r2-zip" // a zip archive of CDA documents, one per entry
	formatPDF    = "pdf-cda"    // a PDF (PDF/A) with a CDA document attached (pdf.go)
)

// sniff detects a file's format from its first bytes, a CUP extract by the built-in
// profile. firstType is the resourceType of an NDJSON file's first line (Patient files are
// read first).
func sniff(head []byte) (format, firstType string) { return sniffWith(head, DefaultCUPProfile()) }

// sniffWith is sniff with the CUP extracts of profile p.
func sniffWith(head []byte, p *CUPProfile) (format, firstType string) {
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
		return formatCDAZip, ""
	}
	if bytes.HasPrefix(head, []byte("%PDF-")) {
		return formatPDF, ""
	}
	if _, ok := utf16Order(head); ok {
		// A UTF-16 CDA (the Gateway accepts them): the CDA reader transcodes it.
		if namesClinicalDocument(head) {
			return formatCDA, ""
		}
		return "", ""
	}
	s := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(s) == 0:
		return "", ""
	case s[0] != '{' && s[0] != '<' && bytes.Contains(head[:min(len(head), 1024)], []byte("%PDF-")):
		// PDF readers look for the header anywhere in the first 1024 bytes.
		return formatPDF, ""
	case s[0] == '{':
		line, _, _ := bytes.Cut(s, []byte("\n"))
		var probe struct {
			ResourceType string `json:"resourceType"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.ResourceType != "" {
			return formatNDJSON, probe.ResourceType
		}
		if bytes.Contains(s, []byte(`"resourceType"`)) && bytes.Contains(s, []byte(`"Bundle"`)) {
			return formatBundle, "Bundle"
		}
	case s[0] == '<':
		// The namespace is checked by the CDA reader, which quarantines a
		// ClinicalDocument outside urn:hl7-org:v3 rather than skipping it unseen.
		if bytes.Contains(s, []byte("ClinicalDocument")) {
			return formatCDA, ""
		}
	default:
		if p.looksLikeBookings(head) {
			return formatCSV, ""
		}
	}
	return "", ""
}

// unit is one piece of parallel work: a chunk of NDJSON lines or CSV records, or a
// bundle. Its records are applied to the stage in unit order, so output is the same
// whatever the number of workers.
type unit struct {
	idx     int
	lines   [][]byte
	lineNos []int // 1-based line number of each of lines
	csv     []csvRecord
	// One CDA document: its bytes (nil when it could not be read: cdaReason says why)
	// and the prefix of its records' positions.
	cda       []byte
	cdaPrefix string
	cdaReason string
	cdaNotCDA bool // a zip entry that is not a CDA document at all
	pdf       bool // cda holds a PDF, whose CDA attachments are the documents
}

// runPipeline reads units with produce, maps them with work on several goroutines and
// applies the results in order. At most 2×workers units are in flight, so memory does
// not grow with the input.
func runPipeline(ctx context.Context, workers int, produce func(emit func(unit) error) error, work func(unit) []record, apply func([]record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		idx  int
		recs []record
		err  error // the work panicked
	}
	units := make(chan unit, workers)
	results := make(chan result, workers)
	slots := make(chan struct{}, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range units {
				recs, err := safeWork(work, u)
				results <- result{u.idx, recs, err}
			}
		}()
	}
	prodErr := make(chan error, 1)
	go func() {
		n := 0
		err := produce(func(u unit) error {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			u.idx = n
			n++
			select {
			case units <- u:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(units)
		prodErr <- err
	}()
	go func() { wg.Wait(); close(results) }()

	pending := map[int]result{}
	next := 0
	var applyErr error
	for r := range results {
		pending[r.idx] = r
		for {
			res, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if applyErr == nil && res.err != nil {
				applyErr = res.err
				cancel()
			}
			if applyErr == nil {
				if applyErr = apply(res.recs); applyErr != nil {
					cancel()
				}
			}
		}
	}
	if err := <-prodErr; err != nil && applyErr == nil {
		return err
	}
	return applyErr
}

// safeWork runs work on one unit, turning a panic into an error (the mapping of each
// document recovers on its own: this is the net below it).
func safeWork(work func(unit) []record, u unit) (recs []record, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errWorkPanicked{reason: panicReason(r)}
		}
	}()
	return work(u), nil
}

// A unit of NDJSON holds at most chunkLines lines and, but for its last line, at most
// chunkBytes bytes, so the units in flight hold at most 2×workers×(chunkBytes +
// maxRecordBytes) bytes of input whatever the lines' lengths.
const (
	chunkLines = 1024
	chunkBytes = 16 << 20
)

// maxRecordBytes bounds one FHIR record: an NDJSON line, or a Bundle file. Decoding takes
// up to about a hundred bytes per byte of a hostile record (an array of empty objects
// becomes an array of structs), so a record beyond it is quarantined, never decoded, as a
// CDA document beyond maxCDABytes is.
const maxRecordBytes = maxCDABytes

var reasonRecordTooLarge = fmt.Sprintf("record larger than %d MiB", maxRecordBytes>>20)

// produceLines splits r, of size bytes, into chunks of lines. Blank lines are skipped but
// counted in line numbers. A line longer than maxRecordBytes is read past, not held: it
// is a nil line in its unit.
func produceLines(r io.Reader, size int64, emit func(unit) error) error {
	// A small file needs no 1 MiB buffer: allocating (and clearing) one costs more than
	// reading the file.
	br := bufio.NewReaderSize(r, int(min(max(size, 4<<10), 1<<20)))
	var u unit
	lineNo, held := 0, 0
	for {
		line, long, err := readLine(br, maxRecordBytes)
		if len(line) > 0 || long {
			lineNo++
			if t := bytes.TrimSpace(line); len(t) > 0 || long {
				u.lines = append(u.lines, t) // nil when long: TrimSpace(nil) is nil
				u.lineNos = append(u.lineNos, lineNo)
				held += len(t)
				if len(u.lines) == chunkLines || held >= chunkBytes {
					if err := emit(u); err != nil {
						return err
					}
					u, held = unit{}, 0
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(u.lines) > 0 {
		return emit(u)
	}
	return nil
}

// readLine reads one line, its '\n' included, holding at most limit bytes of it: the rest
// of a longer line is read and dropped, and long reports it (line is then nil).
func readLine(br *bufio.Reader, limit int) (line []byte, long bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !long && len(line)+len(frag) > limit {
			line, long = nil, true
		}
		if !long {
			line = append(line, frag...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, long, err
		}
	}
}

// ndjsonWork maps a chunk of NDJSON lines.
func (m *mapper) ndjsonWork(u unit, resolve patientResolver) []record {
	recs := make([]record, 0, len(u.lines))
	for i, line := range u.lines {
		pos := fmt.Sprintf("line %d", u.lineNos[i])
		if line == nil {
			recs = append(recs, record{outcome: outQuarantined, reason: reasonRecordTooLarge, pos: pos, docLocal: -1})
			continue
		}
		recs = append(recs, m.mapLine(line, pos, resolve)...)
	}
	return recs
}

// mapLine maps one NDJSON line: a resource, or a whole Bundle on one line.
func (m *mapper) mapLine(line []byte, pos string, resolve patientResolver) (recs []record) {
	defer recoverDocument(pos, &recs)
	m.hook(pos)
	if b := bytes.TrimLeft(line, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		// Not an object: the same error as decoding a resource gives, without one on
		// the heap for each torn line.
		var none struct{}
		return []record{m.undecodable(line, pos, json.Unmarshal(line, &none))}
	}
	var r resource
	if err := decodeJSON(line, &r); err != nil {
		return []record{m.undecodable(line, pos, err)}
	}
	if r.ResourceType == "Bundle" {
		return m.mapBundle(line, pos, resolve)
	}
	var rec record
	if r.ResourceType == "Patient" {
		rec = m.mapPatient(&r, nil)
		rec.isPatient, rec.patientKey = true, patientRefKey("Patient/"+r.ID)
	} else {
		rec = m.mapClinical(&r, resolve, nil, -1)
	}
	rec.pos = pos
	return []record{rec}
}

// undecodable classifies a record that did not decode: quarantined when it is (or may
// be) a resource Velo maps, ignored when it is a type Velo never reads.
func (m *mapper) undecodable(raw []byte, pos string, err error) record {
	var probe struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.ResourceType != "" {
		if t := tableOfType(probe.ResourceType); t == "" {
			return record{outcome: outIgnored, reason: notMapped(probe.ResourceType), pos: pos, docLocal: -1}
		} else {
			return record{outcome: outQuarantined, table: t, reason: "malformed " + probe.ResourceType + ": " + jsonErrorKind(err), pos: pos, docLocal: -1}
		}
	}
	return record{outcome: outQuarantined, reason: "malformed JSON: " + jsonErrorKind(err), pos: pos, docLocal: -1}
}

// jsonErrorKind describes a JSON error without quoting the input.
func jsonErrorKind(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s has the wrong type", te.Field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	return "invalid"
}

func tableOfType(t string) string {
	switch t {
	case "Patient":
		return "person"
	case "Observation":
		return "lab_result"
	case "Condition":
		return "diagnosis"
	case "Procedure", "ImagingStudy":
		return "procedure"
	case "MedicationRequest", "MedicationStatement", "MedicationAdministration":
		return "medication"
	case "Immunization":
		return "vaccination"
	case "ServiceRequest":
		return "prescription"
	case "DocumentReference", "Composition":
		return "document"
	}
	return ""
}

// globalPatients resolves references against the Patients read from NDJSON files.
func globalPatients(p *patientIndex) patientResolver {
	return func(ref string) (patientRef, bool) {
		if p.empty() {
			return patientRef{}, false
		}
		if i := strings.LastIndex(ref, "Patient/"); i >= 0 {
			ref = ref[i:]
		}
		return p.find(patientRefKey(ref))
	}
}
