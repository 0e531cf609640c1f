package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// readFile reads one input file as Run does (ingestFile, or ingestCDAFiles for CDA) into
// fr's stage and returns its manifest entry, the error, and the bytes the Go heap
// allocated meanwhile (cumulative: what was allocated, garbage included).
func (fr *fuzzReader) readFile(t *testing.T, format, path string) (dataset.InputFile, error, uint64) {
	t.Helper()
	st := fr.stage(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Workers: 2}
	cfg.defaults()
	f := inputFile{path: path, size: fi.Size(), format: format}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var in dataset.InputFile
	if format == formatCDA {
		var ins []dataset.InputFile
		if ins, err = st.ingestCDAFiles(context.Background(), cfg, fr.m, []inputFile{f}, func(int64) {}); err == nil {
			in = ins[0]
		}
	} else {
		in, err = st.ingestFile(context.Background(), cfg, fr.m, f, nil)
	}
	runtime.ReadMemStats(&after)
	return in, err, after.TotalAlloc - before.TotalAlloc
}

// Memory grows linearly with the input, whatever its shape: reading N bytes of the most
// hostile inputs we know of (deep nesting, huge arrays of empty objects, many tiny
// records, huge attributes and fields) allocates at most allocPerByte·N + allocConst,
// and four times the input allocates about four times as much. The worst is a file of
// tiny malformed records (each a quarantined record with its position, reason and
// quarantine line: ~1.5 KB for 2 bytes of input), all of it garbage as soon as its unit
// is applied; what is held at once is bounded by the pipeline (units in flight, chunkBytes,
// maxRecordBytes, maxCDABytes) — TestRecordCaps holds the readers to their caps.
func TestReaderMemoryLinear(t *testing.T) {
	const (
		allocPerByte = 1024
		allocConst   = 16 << 20
	)
	fr := newFuzzReader(t)
	fill := func(prefix, unit, suffix string) func(n int) string {
		return func(n int) string {
			return prefix + strings.Repeat(unit, max(1, (n-len(prefix)-len(suffix))/len(unit))) + suffix
		}
	}
	deep := func(k int) string { return strings.Repeat("[", k) + strings.Repeat("]", k) }
	tests := []struct {
		name, format string
		gen          func(n int) string
	}{
		{"NDJSON: tiny malformed lines", formatNDJSON, fill("", "[\n", "")},
		{"NDJSON: tiny lines", formatNDJSON, fill("", "{}\n", "")},
		{"NDJSON: one line of empty extensions", formatNDJSON, fill(`{"resourceType":"Patient","extension":[`, `{},`, `{}]}`)},
		{"NDJSON: codings of a mapped resource", formatNDJSON, fill(`{"resourceType":"Condition","subject":{"reference":"Patient/p1"},"code":{"coding":[`, `{},`, `{}]}}`)},
		{"NDJSON: nesting 9000 deep, line after line", formatNDJSON, fill("", `{"resourceType":"Observation","category":`+deep(9000)+"}\n", "")},
		{"NDJSON: nesting beyond the decoder's limit", formatNDJSON, func(n int) string { return deep(n / 2) }},
		{"NDJSON: one long string", formatNDJSON, fill(`{"resourceType":"Observation","id":"`, "x", `"}`)},
		{"Bundle: many empty entries", formatBundle, fill(`{"resourceType":"Bundle","entry":[`, `{"resource":{}},`, `{}]}`)},
		{"Bundle: many Patients", formatBundle, fill(`{"resourceType":"Bundle","entry":[`, `{"resource":{"resourceType":"Patient"}},`, `{}]}`)},
		{"Bundle: deep entries", formatBundle, fill(`{"resourceType":"Bundle","entry":[`, `{"resource":`+deep(9000)+`},`, `{}]}`)},
		{"CSV: tiny records", formatCSV, fill(fuzzBookingHeader, "x\n", "")},
		{"CSV: records of many fields", formatCSV, fill(fuzzBookingHeader, strings.Repeat(",", 4095)+"\n", "")},
		{"CSV: empty records", formatCSV, fill(fuzzBookingHeader, ",,,,,,,,,,,,,,,,\n", "")},
		{"CDA: nesting", formatCDA, func(n int) string {
			return `<ClinicalDocument xmlns="urn:hl7-org:v3">` + strings.Repeat("<a>", n/7) + strings.Repeat("</a>", n/7)
		}},
		{"CDA: many elements", formatCDA, fill(`<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody>`, `<component/>`, `</structuredBody></component></ClinicalDocument>`)},
		{"CDA: many entries", formatCDA, fill(`<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/><component><structuredBody><component><section>`, `<entry><act/></entry>`, `</section></component></structuredBody></component></ClinicalDocument>`)},
		{"CDA: many attributes", formatCDA, func(n int) string {
			var b strings.Builder
			b.WriteString(`<ClinicalDocument xmlns="urn:hl7-org:v3"><code `)
			for i := 0; b.Len() < n-64; i++ {
				b.WriteString("a" + strings.Repeat("b", i%7) + `="" `)
			}
			return b.String() + `/></ClinicalDocument>`
		}},
		{"CDA: many namespaces", formatCDA, fill(`<ClinicalDocument xmlns="urn:hl7-org:v3"><code `, `xmlns:a="b" `, `/></ClinicalDocument>`)},
		{"CDA: many skipped elements", formatCDA, fill(`<ClinicalDocument xmlns="urn:hl7-org:v3"><text>`, `<b/>`, `</text></ClinicalDocument>`)},
	}
	n := 1 << 20
	if testing.Short() {
		n = 256 << 10
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var allocs [2]uint64
			for i, size := range []int{n, 4 * n} {
				path := filepath.Join(t.TempDir(), "input")
				if err := os.WriteFile(path, []byte(tt.gen(size)), 0o600); err != nil {
					t.Fatal(err)
				}
				in, err, alloc := fr.readFile(t, tt.format, path)
				if err != nil {
					t.Fatal(err)
				}
				if !in.Reconciles() || in.Records == 0 && tt.format != formatBundle {
					t.Errorf("%d bytes read as %+v", size, in)
				}
				if alloc > allocPerByte*uint64(size)+allocConst {
					t.Errorf("reading %d bytes allocated %d (%.0f per byte), want at most %d per byte + %d", size, alloc, float64(alloc)/float64(size), allocPerByte, allocConst)
				}
				allocs[i] = alloc
			}
			t.Logf("%.1f bytes allocated per byte of input at %d KiB, %.1f at %d KiB", float64(allocs[0])/float64(n), n>>10, float64(allocs[1])/float64(4*n), 4*n>>10)
			if allocs[1] > 5*allocs[0]+allocConst {
				t.Errorf("4× the input allocated %d bytes, %.1f× what 1× did (%d): growth is not linear", allocs[1], float64(allocs[1])/float64(allocs[0]), allocs[0])
			}
		})
	}
}

// writeBig writes prefix, n repetitions of unit and suffix to a new file.
func writeBig(t *testing.T, prefix, unit string, n int, suffix string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "input")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	block := []byte(strings.Repeat(unit, max(1, (1<<20)/len(unit))))
	f.WriteString(prefix)
	for written := 0; written < n; written += len(block) / len(unit) {
		if _, err := f.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	f.WriteString(suffix)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readLine holds at most limit bytes of a line: reading past a longer one allocates
// nothing for its bytes beyond the limit.
func TestReadLineHoldsAtMostLimit(t *testing.T) {
	const limit = 1 << 10
	input := "short\n" + strings.Repeat("x", 4<<20) + "\nlast"
	br := bufio.NewReaderSize(strings.NewReader(input), 4<<10)
	var got []string
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for {
		line, long, err := readLine(br, limit)
		switch {
		case long:
			got = append(got, fmt.Sprintf("long %d", len(line)))
		case len(line) > 0:
			got = append(got, string(line))
		}
		if err != nil {
			break
		}
	}
	runtime.ReadMemStats(&after)
	if want := []string{"short\n", "long 0", "last"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 64<<10 {
		t.Errorf("reading past a 4 MiB line allocated %d bytes", a)
	}
}

// Records beyond the readers' caps are quarantined (or, for CUP CSV, the file refused)
// by position, and reading past them holds at most the cap.
func TestRecordCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("writes files of 65 MiB")
	}
	fr := newFuzzReader(t)
	good := `{"resourceType":"Encounter"}`

	t.Run("NDJSON line", func(t *testing.T) {
		path := writeBig(t, good+"\n"+`{"resourceType":"Observation","id":"`, "x", maxRecordBytes, `"}`+"\n"+good+"\n")
		in, err, alloc := fr.readFile(t, formatNDJSON, path)
		if err != nil {
			t.Fatal(err)
		}
		if in.Records != 3 || in.Quarantined != 1 || in.Ignored != 2 {
			t.Errorf("read as %+v, want the long line quarantined and the two around it read", in)
		}
		assertQuarantined(t, fr.st, "line 2", reasonRecordTooLarge)
		// Up to the cap, the line is held (append's growth allocating about 5× it).
		if alloc > 6*maxRecordBytes {
			t.Errorf("reading past a %d MiB line allocated %d MiB", maxRecordBytes>>20, alloc>>20)
		}
	})
	t.Run("Bundle entry", func(t *testing.T) {
		// A Bundle is read entry by entry (TestBundleStreamsEntries); one entry beyond
		// the cap cannot be read past by the JSON decoder, so the Bundle is quarantined
		// as a whole, naming the entry, before any of its records is applied.
		path := writeBig(t, `{"resourceType":"Bundle","entry":[{"resource":`+good+`},{"resource":{"resourceType":"Observation","id":"`, "x", maxRecordBytes+1<<20, `"}},{"resource":`+good+`}]}`)
		in, err, alloc := fr.readFile(t, formatBundle, path)
		if err != nil {
			t.Fatal(err)
		}
		if in.Records != 1 || in.Quarantined != 1 {
			t.Errorf("read as %+v, want the bundle quarantined", in)
		}
		assertQuarantined(t, fr.st, "bundle entry 1", fmt.Sprintf("entry larger than %d MiB: the bundle is not read", maxRecordBytes>>20))
		// The splitter's buffer doubles as it grows, to at most twice the cap.
		if alloc > 4*maxRecordBytes {
			t.Errorf("reading a bundle entry beyond %d MiB allocated %d MiB", maxRecordBytes>>20, alloc>>20)
		}
	})
	t.Run("CSV record", func(t *testing.T) {
		// A quote left open on line 3 runs to the end of the file.
		path := writeBig(t, fuzzBookingHeader+"B1\n"+`B2,"`, "x\n", 4*maxCSVRecordBytes, "")
		_, err, alloc := fr.readFile(t, formatCSV, path)
		at := fmt.Sprintf("CSV record at byte %d", len(fuzzBookingHeader+"B1\n"))
		if err == nil || !strings.Contains(err.Error(), pseudonymize.MaskIdentifiers(path)) || !strings.Contains(err.Error(), at) {
			t.Errorf("err = %v, want the file refused naming it and the record's offset", err)
		}
		if alloc > 16<<20 {
			t.Errorf("refusing a long record allocated %d MiB", alloc>>20)
		}
	})
}

// assertQuarantined checks the last line of the stage's quarantine file.
func assertQuarantined(t *testing.T, st *stage, pos, reason string) {
	t.Helper()
	if err := st.qbuf.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(st.qname)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	last := string(lines[len(lines)-1])
	if !strings.Contains(last, `"position":"`+pos+`"`) || !strings.Contains(last, `"reason":"`+reason+`"`) {
		t.Errorf("last quarantine line %s, want position %q and reason %q", last, pos, reason)
	}
}

// peakHeapDuring runs f and returns the most the Go heap's objects held meanwhile,
// sampled every millisecond (garbage not yet collected included).
func peakHeapDuring(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	runtime.GC()
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return peak
}

// A Bundle is read entry by entry: one larger than the old whole-file cap (64 MiB, which
// quarantined it unread; below it, decoding took about six times the file) is read whole
// while the heap holds a small fraction of it. Its Patient comes last and its Composition
// first, chunks apart from most of the facts: every fact still finds its patient and its
// document.
func TestBundleStreamsEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a bundle of 80 MiB")
	}
	const obs = `{"fullUrl":"urn:uuid:o","resource":{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose [Mass/volume] in Serum or Plasma"}]},"subject":{"reference":"urn:uuid:p"},"effectiveDateTime":"2024-03-01T08:30:00+01:00","valueQuantity":{"value":5.4,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}},`
	const n = (80 << 20) / len(obs)
	path := writeBig(t, `{"resourceType":"Bundle","type":"document","entry":[`+
		`{"fullUrl":"urn:uuid:c","resource":{"resourceType":"Composition","identifier":{"system":"urn:oid:2.16.840.1.113883.2.9.2.120.4.4","value":"DOC1"},"type":{"coding":[{"system":"http://loinc.org","code":"11502-2"}]},"subject":{"reference":"urn:uuid:p"},"date":"2024-05-02T10:00:00+02:00"}},`,
		obs, n,
		`{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"`+fuzzCF+`"}],"birthDate":"1985"}}]}`)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fr := newFuzzReader(t)
	var in dataset.InputFile
	peak := peakHeapDuring(func() { in, err, _ = fr.readFile(t, formatBundle, path) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a bundle of %d MiB (%d entries) read with the heap's objects at most %d MiB", fi.Size()>>20, in.Records, peak>>20)
	if in.Quarantined != 0 || in.Rows != in.Records || in.Records < int64(n)+2 {
		t.Fatalf("read as %+v, want all %d entries written", in, n+2)
	}
	if limit := uint64(fi.Size() / 2); peak > limit {
		t.Errorf("the heap held up to %d MiB reading a bundle of %d MiB, want at most half of it", peak>>20, fi.Size()>>20)
	}
	if err := fr.st.apps["lab_result"].Flush(); err != nil {
		t.Fatal(err)
	}
	var facts, keyed, linked int64
	if err := fr.st.db.QueryRow("SELECT count(*), count(doc_key), count("+stagingDocSeq+") FROM stage_lab_result").Scan(&facts, &keyed, &linked); err != nil {
		t.Fatal(err)
	}
	if facts < int64(n) || keyed != facts || linked != facts {
		t.Errorf("%d lab results, %d with their document's key, %d linked to its staged row: want all", facts, keyed, linked)
	}
}
