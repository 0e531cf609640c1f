package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/pseudonymize"
)

// The readers' fuzz targets (go test -run '^$' -fuzz '^FuzzCDA$' ./ingest; `make fuzz`
// runs them all). Each reads one fuzzer-made file as Run reads an input of its format —
// the same reader, mapper and stage — and checks what the package promises of any input:
//
//   - no panic, and no error: a bad record is quarantined, it never fails the run (the
//     one exception: a CUP file whose header cannot be read is refused as a whole, by an
//     error naming the file);
//   - every record is accounted for: the file's counts reconcile with each other and
//     with the tables' (a record read by a table is written, quarantined, opted out or
//     outside the period there), and every quarantined record has a line in the
//     quarantine file with a position and a reason;
//   - no reason, position or ignore reason carries identifier-shaped text.
//
// Seeds: the f.Add calls below, the committed corpora under testdata/fuzz/, and the FSE
// Gateway examples when the fixtures are there (the VELO_FIXTURES setting; they are not
// copied into the repository, and a fuzz target runs without them).

// Codici fiscali of the seeds: fuzzCF is an ordinary person, fuzzOptedOutCF opted out.
const (
	fuzzCF         = "RSSMRA85T10A562S"
	fuzzOptedOutCF = "BNCNNA70A41F205S"
)

// fuzzReader reads fuzz inputs into a staging database shared by the inputs of one
// process: opening DuckDB for every input would cost far more than the reading fuzzed.
type fuzzReader struct {
	dir    string
	m      *mapper
	st     *stage
	stages int // stages opened so far
	// patients are the NDJSON Patients every input may refer to: Patient/p1 is mapped,
	// Patient/p2 opted out, Patient/p3 quarantined.
	patients map[refKey]patientRef
	staged   int // inputs read into st
}

// fuzzStageInputs is how many inputs share a stage before it is replaced: the staged rows
// are never read, and a fresh stage keeps a long run's memory flat.
const fuzzStageInputs = 2000

func newFuzzReader(tb testing.TB) *fuzzReader {
	tb.Helper()
	k, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	optOut, err := pseudonymize.ReadOptOut(strings.NewReader(fuzzOptedOutCF+"\n"), "optout.txt")
	if err != nil {
		tb.Fatal(err)
	}
	period, err := fse.ParsePeriod("2020-01..2025-12")
	if err != nil {
		tb.Fatal(err)
	}
	fr := &fuzzReader{
		dir: tb.TempDir(),
		m:   &mapper{ps: pseudonymize.New(k), optOut: optOut, period: period},
	}
	pid := func(cf string) pseudonymize.PID {
		id, err := pseudonymize.ParseIdentifier(cf)
		if err != nil {
			tb.Fatal(err)
		}
		return fr.m.ps.PID(id)
	}
	fr.patients = map[refKey]patientRef{
		patientRefKey("Patient/p1"): {pid: pid(fuzzCF), state: outRow},
		patientRefKey("Patient/p2"): {pid: pid(fuzzOptedOutCF), state: outOptedOut},
		patientRefKey("Patient/p3"): {state: outQuarantined},
	}
	tb.Cleanup(fr.closeStage)
	return fr
}

func (fr *fuzzReader) closeStage() {
	if fr.st != nil {
		fr.st.close()
		os.RemoveAll(filepath.Join(fr.dir, fmt.Sprintf("stage-%d", fr.stages)))
		fr.st = nil
	}
}

func (fr *fuzzReader) stage(tb testing.TB) *stage {
	tb.Helper()
	if fr.st != nil && fr.staged >= fuzzStageInputs {
		fr.closeStage()
	}
	if fr.st == nil {
		fr.stages++
		dir := filepath.Join(fr.dir, fmt.Sprintf("stage-%d", fr.stages))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			tb.Fatal(err)
		}
		st, err := newStage(context.Background(), dir, duckDBSettings{MemoryLimit: "256MB", Threads: 1, TempDir: filepath.Join(dir, "spill")}, filepath.Join(dir, "quarantine.ndjson"), 0, patientIndexEntries("256MB"))
		if err != nil {
			tb.Fatal(err)
		}
		fr.st, fr.staged = st, 0
	}
	fr.staged++
	// Each input stands alone: Patients staged by an earlier input would make the outcome
	// of this one depend on what ran before it. Every input sees the same Patients of
	// "earlier files", so that resources need not carry their own to be mapped.
	fr.st.dropPatients()
	maps.Copy(fr.st.patients.mem, fr.patients)
	return fr.st
}

// quarantineSize flushes the quarantine file and returns its size.
func quarantineSize(tb testing.TB, st *stage) int64 {
	tb.Helper()
	if err := st.qbuf.Flush(); err != nil {
		tb.Fatal(err)
	}
	fi, err := st.qfile.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// read ingests data as one input file of format, with the readers and mappers ingestFile
// and ingestCDAFiles use, and checks the promises above. The pieces are called in turn
// rather than through runPipeline and a file: on a loaded machine the goroutine handoffs
// and file writes would cost more than the reading fuzzed (TestFuzzCorpusIngests runs the
// corpora through Run itself). ok is false when the file was refused as a whole.
func (fr *fuzzReader) read(tb testing.TB, format string, data []byte) (in dataset.InputFile, ok bool) {
	tb.Helper()
	st := fr.stage(tb)
	before := map[string]dataset.TableCounts{}
	for name, tc := range st.tables {
		before[name] = *tc
	}
	unparsed := st.unparsed
	qoff := quarantineSize(tb, st)

	in = dataset.InputFile{Path: "input", Format: format}
	apply := func(recs []record) error { return st.apply(&in, recs) }
	resolve := globalPatients(st.patients)
	var err error
	switch format {
	case formatNDJSON:
		err = produceLines(bytes.NewReader(data), int64(len(data)), func(u unit) error { return apply(fr.m.ndjsonWork(u, resolve)) })
	case formatBundle:
		err = fr.m.readBundle(context.Background(), 1, bytes.NewReader(data), bytes.NewReader(data), int64(len(data)), "bundle", resolve, apply)
	case formatCSV:
		var bm *bookingMapper
		_, err = produceCSVWith(bytes.NewReader(data), DefaultCUPProfile(),
			func(col map[string]int, n int) { bm = newBookingMapper(fr.m, DefaultCUPProfile(), col, n) },
			func(u unit) error { return apply(bm.work(u)) })
		if err != nil && strings.Contains(err.Error(), "CSV header") {
			return in, false
		}
	case formatCDA:
		err = apply(fr.m.cdaWork(unit{cda: data}))
	case formatPDF:
		err = apply(fr.m.cdaWork(unit{cda: data, pdf: true}))
	default:
		tb.Fatalf("format %s", format)
	}
	if err != nil {
		tb.Fatalf("%s input refused: %v", format, err)
	}

	if !in.Reconciles() {
		tb.Errorf("file counts do not reconcile: %+v", in)
	}
	// What the file says it did, the tables must have seen.
	var read, rows, quar int64
	for name, tc := range st.tables {
		b := before[name]
		read += tc.Read - b.Read
		rows += (tc.Read - b.Read) - (tc.Quarantined - b.Quarantined) - (tc.OptedOut - b.OptedOut) - (tc.OutsidePeriod - b.OutsidePeriod)
		quar += tc.Quarantined - b.Quarantined
	}
	if got := read + st.unparsed - unparsed; got != in.Records-in.Ignored {
		tb.Errorf("tables read %d records (unparsed included), the file %d not ignored", got, in.Records-in.Ignored)
	}
	if rows != in.Rows {
		tb.Errorf("tables got %d rows, the file says %d", rows, in.Rows)
	}
	if got := quar + st.unparsed - unparsed; got != in.Quarantined {
		tb.Errorf("tables quarantined %d records (unparsed included), the file %d", got, in.Quarantined)
	}
	var ignored int64
	for why, n := range in.IgnoredWhy {
		if why == "" || pseudonymize.MaskIdentifiers(why) != why {
			tb.Errorf("ignore reason %q", why)
		}
		ignored += n
	}
	if ignored != in.Ignored {
		tb.Errorf("ignored by reason sums to %d, ignored is %d", ignored, in.Ignored)
	}

	// Every quarantined record has its line: where and why, never what.
	qend := quarantineSize(tb, st)
	qf, err := os.Open(st.qname)
	if err != nil {
		tb.Fatal(err)
	}
	defer qf.Close()
	sc := bufio.NewScanner(io.NewSectionReader(qf, qoff, qend-qoff))
	sc.Buffer(nil, 1<<20)
	var lines int64
	for sc.Scan() {
		lines++
		var q quarantined
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			tb.Fatalf("quarantine line %q: %v", sc.Text(), err)
		}
		if q.File != in.Path || q.Position == "" || q.Reason == "" {
			tb.Errorf("quarantine line %+v", q)
		}
		if q.Table != "" && st.tables[q.Table] == nil {
			tb.Errorf("quarantine line names table %q", q.Table)
		}
		for _, s := range []string{q.Position, q.Reason} {
			if pseudonymize.MaskIdentifiers(s) != s {
				tb.Errorf("identifier-shaped text in quarantine line %+v", q)
			}
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if lines != in.Quarantined {
		tb.Errorf("%d quarantine lines, %d quarantined", lines, in.Quarantined)
	}
	return in, true
}

// addFixtures adds the FSE Gateway examples of one kind as seeds, when the fixtures are
// there; oneLine compacts JSON examples to one line, as NDJSON holds them.
func addFixtures(f *testing.F, sub string, oneLine bool) {
	gw, err := testenv.LookupFixtures("fse-gateway-examples")
	if err != nil {
		f.Logf("seeds without the Gateway examples: %v", err)
		return
	}
	paths, _ := filepath.Glob(filepath.Join(gw, sub, "*"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if oneLine {
			var buf bytes.Buffer
			if json.Compact(&buf, b) != nil {
				continue
			}
			b = append(buf.Bytes(), '\n')
		}
		f.Add(b)
	}
}

func FuzzFHIRNDJSON(f *testing.F) {
	p := `{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"` + fuzzCF + `"}],"gender":"male","birthDate":"1985-12-10","address":[{"use":"home","state":"120"}]}`
	o := `{"resourceType":"Observation","status":"final","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-03-01","valueQuantity":{"value":5.4,"unit":"mmol/L"}}`
	f.Add([]byte(p + "\n" + o + "\n"))
	f.Add([]byte(o + "\n\n" + p + "\r\n"))
	f.Add([]byte(`{"resourceType":"Encounter","id":"e1"}` + "\n" + `{"resourceType":"Observation",` + "\n" + `[1,2]` + "\n"))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":` + p + `},{"resource":` + o + `}]}` + "\n"))
	// addFixtures(f, "FHIR", true) // a whole Bundle on one line is an NDJSON record too
	fr := newFuzzReader(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr.read(t, formatNDJSON, data)
	})
}

func FuzzFHIRBundle(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"document","entry":[` +
		`{"fullUrl":"urn:uuid:c","resource":{"resourceType":"Composition","identifier":{"system":"urn:oid:2.16.840.1.113883.2.9.2.120.4.4","value":"DOC1"},"type":{"coding":[{"system":"http://loinc.org","code":"11502-2"}]},"subject":{"reference":"urn:uuid:p"},"date":"2024-05-02T10:00:00+02:00"}},` +
		`{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"` + fuzzCF + `"}],"birthDate":"1985"}},` +
		`{"resource":{"resourceType":"Condition","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-9-cm","code":"250.00"}]},"subject":{"reference":"urn:uuid:p"},"onsetDateTime":"2024-04"}},` +
		`{"resource":{"resourceType":"MedicationStatement","medicationReference":{"reference":"urn:uuid:m"},"subject":{"reference":"urn:uuid:p"}}},` +
		`{"fullUrl":"urn:uuid:m","resource":{"resourceType":"Medication","code":{"coding":[{"system":"http://www.whocc.no/atc","code":"A10BA02"}]}}},` +
		`{"resource":{"resourceType":"Immunization","vaccineCode":{"coding":[{"system":"http://www.whocc.no/atc","code":"J07BX03"}]},"patient":{"reference":"urn:uuid:p"},"occurrenceDateTime":"2021-05-01","protocolApplied":[{"doseNumberString":"2"}]}},` +
		`{"resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"` + fuzzOptedOutCF + `"}]}},` +
		`{"resource":[]}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/x"}}},{"resource":{"resourceType":"ServiceRequest","code":{"coding":[{"system":"urn:oid:2.16.840.1.113883.2.9.6.1.11","code":"89.13"}]},"identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.8","value":"120A00000000001"}],"extension":[{"url":"http://velo.invalid/fhir/StructureDefinition/priority-class","valueCode":"Z"}]}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":{}}`))
	addFixtures(f, "FHIR", false)
	fr := newFuzzReader(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr.read(t, formatBundle, data)
	})
}

func FuzzCDA(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<id root="2.16.840.1.113883.2.9.2.120.4.4" extension="DOC1"/>
<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>
<effectiveTime value="20240502100000+0200"/>
<versionNumber value="2"/>
<recordTarget><patientRole>
<id root="2.16.840.1.113883.2.9.4.3.2" extension="` + fuzzCF + `"/>
<addr use="H"><state>120</state><censusTract>058091</censusTract><city>Roma</city></addr>
<patient><name><family>Rossi</family></name><administrativeGenderCode code="M"/><birthTime value="19851210"/></patient>
</patientRole></recordTarget>
<component><structuredBody><component><section><code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/><text>narrative</text>
<entry><observation classCode="OBS" moodCode="EVN"><code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><effectiveTime value="20240501"/><value xsi:type="PQ" value="5.4" unit="mmol/L"/></observation></entry>
<entry><act classCode="ACT" moodCode="EVN" negationInd="true"/></entry>
</section></component></structuredBody></component>
</ClinicalDocument>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><ClinicalDocument xmlns="urn:hl7-org:v3"><code code="57833-6" codeSystem="2.16.840.1.113883.6.1"/><recordTarget><patientRole><id root="2.16.840.1.113883.2.9.4.3.2" extension="` + fuzzOptedOutCF + `"/></patientRole></recordTarget><setId root="1.2.3" extension="\xe8"/></ClinicalDocument>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>`))
	f.Add([]byte(`<ClinicalDocument xmlns="urn:other"/>`))
	addFixtures(f, "CDA", false)
	fr := newFuzzReader(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, _ := fr.read(t, formatCDA, data)
		if in.Records < 1 {
			t.Errorf("a document gave %d records, want at least one (its document row, or its quarantine)", in.Records)
		}
	})
}

// FuzzPDF reads PDFs as a PDF with an injected CDA is read: a hostile PDF is the PDF
// parser's (pdfcpu's) input, so a panic or a runaway allocation there must end as a
// quarantined record, never as a crash of the run.
func FuzzPDF(f *testing.F) {
	var paths []string
	if dir, err := testenv.LookupFixtures("ministero-salute"); err == nil {
		paths, _ = filepath.Glob(filepath.Join(dir, "gtw-dispatcher", "*.pdf"))
	}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	fr := newFuzzReader(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, _ := fr.read(t, formatPDF, data)
		if in.Records < 1 {
			t.Errorf("a PDF gave %d records, want at least one (its CDA's, or its quarantine)", in.Records)
		}
	})
}

const fuzzBookingHeader = "booking_id,rx_id,patient_cf,service_code,priority,first_access,d_prescription,d_contact,d_first_available,d_appointment,d_delivered,garanzia,provider_id,asl,region,channel,status\n"

func FuzzCUPCSV(f *testing.F) {
	f.Add([]byte("B1,120A00000000001," + fuzzCF + ",89.7A.3,U,true,2024-03-01,2024-03-01,2024-03-03,2024-03-03,2024-03-03,true,120901,120201,120,cup,delivered\n" +
		"B2,,\"" + fuzzOptedOutCF + "\",87.41,D,true,2024-03-01,2024-03-02,2024-04-16,2024-04-16,,true,120901,120201,120,online,booked\n" +
		"B3,," + fuzzCF + ",89.13,B,true,2019-03-01,2019-03-02,2019-03-05,2019-03-05,,true,120901,120202,120,cup,booked\n" +
		"B4,," + fuzzCF + ",89.13,B,si\n" +
		"B5,\"a\"b,x\n"))
	f.Add([]byte("\ufeffstatus,region,channel,asl,provider_id,garanzia,d_delivered,d_appointment,d_first_available,d_contact,d_prescription,first_access,priority,service_code,patient_cf,rx_id,booking_id,extra\r\n" +
		"booked,120,cup,120201,120901,N,,2024-05-01,2024-05-01,2024-04-01,,1,P,89.13," + fuzzCF + ",,B9,\"multi\nline\"\r\n"))
	fr := newFuzzReader(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Run reads a file as CUP CSV only when its first line is the booking header:
		// inputs that do not start with one get the standard header.
		if format, _ := sniff(data); format != formatCSV {
			data = append([]byte(fuzzBookingHeader), data...)
		}
		fr.read(t, formatCSV, data)
	})
}
