package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// An NDJSON file longer than one chunk that holds Patients and then resources about them
// is read the same whatever the number of workers: resources resolve against the Patients
// of earlier files only, never against those of their own file, which some workers would
// have seen and others not (and reading them while they were added crashed the process:
// "concurrent map read and map write").
func TestNDJSONPatientsAcrossChunks(t *testing.T) {
	ps, _ := testKey(t)
	in := t.TempDir()
	var b strings.Builder
	const n = 1500 // more than one chunk of lines each
	for i := range n {
		first15 := fmt.Sprintf("TSTPRS%02dA%02dH501", i/28%100, i%28+1)
		ch, err := pseudonymize.CheckLetter(first15)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `{"resourceType":"Patient","id":"p%d","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"%s"}],"birthDate":"1980"}`+"\n", i, first15+string(ch))
	}
	for i := range n {
		fmt.Fprintf(&b, `{"resourceType":"Condition","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-9-cm","code":"250.00"}]},"subject":{"reference":"Patient/p%d"},"onsetDateTime":"2024-05-01"}`+"\n", i)
	}
	src := writeFile(t, in, "mixed.ndjson", b.String())
	var counts []dataset.TableCounts
	for _, workers := range []int{1, 4} {
		dir := filepath.Join(t.TempDir(), "data")
		man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, Workers: workers})
		assertReconciles(t, openDB(t), dir, man)
		counts = append(counts, man.Tables["diagnosis"])
	}
	want := dataset.TableCounts{Read: n, Quarantined: n}
	for i, c := range counts {
		if c != want {
			t.Errorf("run %d: diagnosis counts %+v, want %+v", i, c, want)
		}
	}
}

// A header that names every column when split at commas (which is how a file is taken for
// a booking extract) but not when parsed as CSV is refused, naming the file and the
// column: its records would be read into the wrong columns.
func TestCUPHeaderParsedAsCSV(t *testing.T) {
	ps, _ := testKey(t)
	src := writeFile(t, t.TempDir(), "cup.csv", strings.Replace(bookingHeader, "booking_id,rx_id", `"booking_id,rx_id"`, 1)+
		`"B1,120A00000000001",RSSMRA85T10A562S,89.7A.3,U,true,2024-03-01,2024-03-01,2024-03-03,2024-03-03,2024-03-03,true,120901,120201,120,cup,delivered`+"\n")
	_, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: ps, Out: filepath.Join(t.TempDir(), "data"), Inputs: []string{src}, MemoryLimit: "256MB"})
	if err == nil || !strings.Contains(err.Error(), "cup.csv") || !strings.Contains(err.Error(), "no column booking_id") {
		t.Fatalf("Run: %v, want the header refused", err)
	}
}

// A document Bundle on an NDJSON line after other lines links its facts to its own
// document: its records used to point at their Composition by index within the Bundle,
// which, once the chunk's earlier lines came before them, named another line's record.
func TestBundleOnNDJSONLineLinksItsDocument(t *testing.T) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(readFixture(t, "FHIR/LAB.json"))); err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, t.TempDir(), "lines.ndjson", `{"resourceType":"Encounter","id":"e1"}`+"\n"+`{"resourceType":"Encounter","id":"e2"}`+"\n"+compact.String()+"\n")
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{src}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	got := queryStrings(t, db, "SELECT count(*), count(d.doc_key) FROM "+table(dir, "lab_result")+" l LEFT JOIN "+table(dir, "document")+" d USING (pid, doc_key)")
	if len(got) != 1 || got[0] == "0|0" || strings.Split(got[0], "|")[0] != strings.Split(got[0], "|")[1] {
		t.Errorf("lab results, and those whose doc_key is their document's: %v, want all", got)
	}
}
