package ingest_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

func cf(t *testing.T, first15 string) string {
	t.Helper()
	ch, err := pseudonymize.CheckLetter(first15)
	if err != nil {
		t.Fatal(err)
	}
	return first15 + string(ch)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const bookingHeader = "booking_id,rx_id,patient_cf,service_code,priority,first_access,d_prescription,d_contact,d_first_available,d_appointment,d_delivered,garanzia,provider_id,asl,region,channel,status\n"

// CUP bookings: derived waiting-time measures, identifier rules, bad records quarantined
// with reasons naming the field (never the value), opt-out and period applied.
func TestBookingsCSV(t *testing.T) {
	ps, _ := testKey(t)
	mario := "RSSMRA85T10A562S"
	marioOmocode, _ := pseudonymize.Omocode(mario, 2)
	giuseppe := cf(t, "VRDGPP80A01H501")
	anna := cf(t, "BNCNNA70A41F205")
	badCheck := mario[:15] + "X"
	in := t.TempDir()
	csv := bookingHeader +
		"B1,120A00000000001," + mario + ",89.7A.3,U,true,2024-03-01,2024-03-01,2024-03-03,2024-03-03,2024-03-03,true,120901,120201,120,cup,delivered\n" + // visit U, 2 days: within
		"B2,120A00000000002," + marioOmocode + ",87.41,D,true,2024-03-01,2024-03-02,2024-04-16,2024-04-16,,true,120901,120201,120,online,booked\n" + // test D, 45 days: within 60
		"B3,,\"" + giuseppe + "\",89.13,D,true,2024-03-01,2024-03-02,2024-04-16,2024-04-16,,true,120901,120202,120,phone,booked\n" + // visit D, 45 days: beyond 30
		"B4,," + giuseppe + ",89.13,,false,2024-03-01,2024-03-02,2024-03-20,2024-03-20,,true,120901,120202,120,cup,booked\n" + // follow-up: excluded
		"B5,," + giuseppe + ",89.13,B,true,2024-03-01,2024-03-02,2024-03-05,2024-03-30,,false,120901,120202,120,cup,booked\n" + // refused first date: excluded
		"B6,," + badCheck + ",89.13,B,true,2024-03-01,2024-03-02,2024-03-05,2024-03-05,,true,120901,120202,120,cup,booked\n" +
		"B7,," + giuseppe + ",89.13,B,true,2024-03-01,2024-02-30,2024-03-05,2024-03-05,,true,120901,120202,120,cup,booked\n" +
		"B8,," + giuseppe + ",99.99,B,true,2024-03-01,2024-03-02,2024-03-05,2024-03-05,,true,120901,120202,120,cup,booked\n" +
		"B9,," + giuseppe + ",89.13,B,true,2024-03-01\n" +
		"B10,," + giuseppe + ",89.13,X,true,2024-03-01,2024-03-02,2024-03-05,2024-03-05,,true,120901,120202,120,cup,booked\n" +
		"B11,," + anna + ",89.13,B,true,2024-03-01,2024-03-02,2024-03-05,2024-03-05,,true,030901,030201,030,cup,booked\n" + // opted out
		"B12,," + giuseppe + ",89.13,B,true,2023-11-01,2023-11-02,2023-11-05,2023-11-05,,true,120901,120202,120,cup,delivered\n" // before the period
	src := writeFile(t, in, "cup/extract-"+mario+".csv", csv)
	optOut, err := pseudonymize.ReadOptOut(strings.NewReader(strings.ToLower(anna)+"\n"), "optout.txt")
	if err != nil {
		t.Fatal(err)
	}
	period, _ := fse.ParsePeriod("2024-01..2025-12")
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, OptOut: optOut, Period: period})
	db := openDB(t)
	assertReconciles(t, db, dir, man)

	bc := man.Tables["booking"]
	if diff := cmp.Diff(dataset.TableCounts{Read: 12, Written: 5, Quarantined: 5, OptedOut: 1, OutsidePeriod: 1}, bc); diff != "" {
		t.Errorf("booking counts (-want +got):\n%s", diff)
	}
	if b := man.Batches[0]; b.OptedOut.People != 1 || b.Warnings["identifier_omocode"] != 1 {
		t.Errorf("opted out %+v, warnings %v", b.OptedOut, b.Warnings)
	}
	got := queryStrings(t, db, "SELECT pid::VARCHAR, service_kind, coalesce(priority, '-'), wait_days, within_target FROM "+table(dir, "booking"))
	pm, pg := pidOf(t, ps, mario), pidOf(t, ps, giuseppe)
	want := sortedLines(
		pm+"|visit|U|2|true",
		pm+"|test|D|45|true",
		pg+"|visit|D|45|false",
		pg+"|visit|-|18|NULL",
		pg+"|visit|B|28|NULL",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("bookings (-want +got):\n%s", diff)
	}
	reasons := map[string]string{}
	for _, q := range quarantineLines(t, dir, man) {
		reasons[q["position"]] = q["reason"]
		if strings.Contains(q["file"], mario) {
			t.Errorf("quarantine names the source file with its identifier: %s", q["file"])
		}
	}
	wantReasons := map[string]string{
		"line 7":  "patient_cf: codice fiscale check letter is wrong",
		"line 8":  "d_contact: malformed date (want YYYY-MM-DD)",
		"line 9":  "service_code: unknown code",
		"line 10": "expected 17 fields, got 7 (truncated or extra fields)",
		"line 11": "priority: unknown code",
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("quarantine reasons (-want +got):\n%s", diff)
	}
	out := outputText(t, db, dir)
	for _, id := range []string{mario, marioOmocode, giuseppe, anna, badCheck, "120A00000000001"} {
		if strings.Contains(string(out), id) {
			t.Errorf("identifier found in DATA")
		}
	}
}

// NDJSON: patients first whatever the file order, references resolved, a quarantined
// patient takes its resources with it, a torn line is quarantined and the rest goes on.
func TestNDJSON(t *testing.T) {
	ps, _ := testKey(t)
	in := t.TempDir()
	mario := "RSSMRA85T10A562S"
	bad := mario[:15] + "X"
	writeFile(t, in, "a/Observation.ndjson",
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-05-01T10:00:00+02:00","valueQuantity":{"value":98.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`+"\n"+
			`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p2"},"effectiveDateTime":"2024-05-01","valueQuantity":{"value":120,"unit":"mg/dL"}}`+"\n"+
			"\n"+
			`{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"http://loinc.org","co`+"\n"+
			`{"resourceType":"Observation","id":"o4","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-13-01","valueQuantity":{"value":1,"unit":"mg/dL"}}`+"\n"+
			`{"resourceType":"Observation","id":"o5","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/nobody"},"effectiveDateTime":"2024-05-01","valueQuantity":{"value":1,"unit":"mg/dL"}}`+"\n"+
			`{"resourceType":"Practitioner","id":"x","name":[{"family":"Bianchi"}]}`+"\n")
	writeFile(t, in, "b/Patient.ndjson",
		`{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"`+mario+`"},{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.7","value":"1234567890"}],"name":[{"family":"Rossi","given":["Mario"]}],"gender":"male","birthDate":"1985-12-10","address":[{"use":"home","line":["Via Roma 1"],"_line":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-censusTract","valueString":"058091"}]}],"state":"120","postalCode":"00100"}],"managingOrganization":{"identifier":{"system":"urn:oid:2.16.840.1.113883.2.9.4.1.1","value":"120201"}}}`+"\n"+
			`{"resourceType":"Patient","id":"p2","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"`+bad+`"}],"gender":"male","birthDate":"1985-12-10"}`+"\n")
	writeFile(t, in, "optout.txt", mario+"\n")
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)

	got := queryStrings(t, db, "SELECT pid::VARCHAR, birth_year, sex, region, asl, province FROM "+table(dir, "person"))
	if diff := cmp.Diff([]string{pidOf(t, ps, mario) + "|1985|M|120|120201|058"}, got); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}
	got = queryStrings(t, db, "SELECT loinc, value, unit, effective_date::VARCHAR FROM "+table(dir, "lab_result"))
	if diff := cmp.Diff([]string{"2345-7|98.5|mg/dL|2024-05-01"}, got); diff != "" {
		t.Errorf("lab_result (-want +got):\n%s", diff)
	}
	reasons := map[string]bool{}
	for _, q := range quarantineLines(t, dir, man) {
		reasons[q["file"][strings.LastIndex(q["file"], "/")+1:]+" "+q["position"]+": "+q["reason"]] = true
	}
	want := map[string]bool{
		"Patient.ndjson line 2: patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.4.3.2 A{6}9{2}A9{2}A9{3}A)": true,
		"Observation.ndjson line 2: patient quarantined":                                   true,
		"Observation.ndjson line 4: malformed JSON: syntax error at byte 107":              true,
		"Observation.ndjson line 5: date: malformed date":                                  true,
		"Observation.ndjson line 6: subject references a patient that is not in the input": true,
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("quarantine (-want +got):\n%s", diff)
	}
	var skipped, ignored int
	for _, f := range man.Batches[0].Inputs {
		if strings.HasSuffix(f.Path, "optout.txt") && f.Skipped != "" {
			skipped++
		}
		ignored += int(f.Ignored)
	}
	if skipped != 1 || ignored != 1 {
		t.Errorf("optout.txt skipped %d times, %d records ignored; want 1 and 1", skipped, ignored)
	}
}

// labDocumentVersions is the Gateway's LAB bundle as version 1, and as version 2 with one
// result changed (18.5 instead of 16).
func labDocumentVersions(t *testing.T) (v1, v2 string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(gateway(t), "FHIR", "LAB.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b["entry"].([]any) {
		r := e.(map[string]any)["resource"].(map[string]any)
		switch r["resourceType"] {
		case "Composition":
			r["extension"] = []any{map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber", "valueInteger": 2}}
		case "Observation":
			r["valueQuantity"].(map[string]any)["value"] = 18.5
		}
	}
	b2, _ := json.Marshal(b)
	return string(raw), string(b2)
}

// A document sent again as a new version replaces the earlier one and its facts.
func TestDocumentNewVersionReplacesOld(t *testing.T) {
	v1, v2 := labDocumentVersions(t)
	in := t.TempDir()
	writeFile(t, in, "1-LAB-v2.json", v2)
	writeFile(t, in, "2-LAB-v1.json", v1) // the older version arrives later
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{in}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	assertOnlyVersion2(t, db, dir)
	if c := man.Tables["lab_result"]; c.Superseded != 1 {
		t.Errorf("lab_result counts %+v, want 1 superseded", c)
	}
}

// assertOnlyVersion2 checks that the LAB document's version 2 and its one result (18.5)
// are all the dataset holds of it.
func assertOnlyVersion2(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	if got := queryStrings(t, db, "SELECT version FROM "+table(dir, "document")); !cmp.Equal(got, []string{"2"}) {
		t.Errorf("documents %v, want only version 2", got)
	}
	if got := queryStrings(t, db, "SELECT value FROM "+table(dir, "lab_result")); !cmp.Equal(got, []string{"18.5"}) {
		t.Errorf("lab values %v, want only version 2's", got)
	}
}

// The same across batches: a new version appended later retracts the old version's facts
// from the dataset; an old version appended after the new one is superseded with its
// facts. Either way the dataset holds version 2 and its one result, and counts reconcile.
func TestDocumentNewVersionAcrossBatches(t *testing.T) {
	v1, v2 := labDocumentVersions(t)
	for _, order := range [][2]string{{v1, v2}, {v2, v1}} {
		dir := filepath.Join(t.TempDir(), "data")
		first, second := t.TempDir(), t.TempDir()
		writeFile(t, first, "LAB.json", order[0])
		writeFile(t, second, "LAB.json", order[1])
		ps, _ := testKey(t)
		runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{first}})
		man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Append: true, Inputs: []string{second}})
		db := openDB(t)
		assertReconciles(t, db, dir, man)
		assertOnlyVersion2(t, db, dir)
		// Every fact is linked to the surviving document.
		if got := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, "lab_result")+" f ANTI JOIN "+table(dir, "document")+" d USING (pid, doc_key)"); !cmp.Equal(got, []string{"0"}) {
			t.Errorf("%v facts without their document", got)
		}
		batch := man.Batches[len(man.Batches)-1].Tables["lab_result"]
		if order[0] == v1 && batch.ReplacedExisting != 1 {
			t.Errorf("new version appended: lab_result %+v, want the old result replaced", batch)
		}
		if order[0] == v2 && batch.Superseded != 1 {
			t.Errorf("old version appended: lab_result %+v, want its result superseded", batch)
		}
	}
}

// Ingest into an existing dataset is refused unless --append, which makes a new
// dataset version; a later opt-out removes the person from every table.
func TestAppendAndRemoveOptedOut(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	first := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(gateway(t), "FHIR", "LAB.json")}})
	_, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(gateway(t), "FHIR", "CERT_VACC.json")}})
	if !errors.Is(err, ingest.ErrDatasetExists) {
		t.Fatalf("second ingest without --append: %v", err)
	}
	other, _ := pseudonymize.GenerateKey(nil)
	if _, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: pseudonymize.New(other), Out: dir, Append: true, Inputs: []string{filepath.Join(gateway(t), "FHIR", "CERT_VACC.json")}}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("append with another key: %v", err)
	}
	second := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Append: true, Inputs: []string{filepath.Join(gateway(t), "FHIR", "CERT_VACC.json"), filepath.Join(gateway(t), "FHIR", "PSS.json")}})
	if second.DatasetVersion == first.DatasetVersion || len(second.Batches) != 2 {
		t.Fatalf("append: version %s (was %s), %d batches", second.DatasetVersion, first.DatasetVersion, len(second.Batches))
	}
	db := openDB(t)
	gtw, rss := pidOf(t, ps, "GTWGWY82B42G920M"), pidOf(t, ps, "RSSMRA22A01A399Z")
	got := queryStrings(t, db, "SELECT pid::VARCHAR, birth_year, sex FROM "+table(dir, "person"))
	// PSS (the newer batch) restates GTWGWY's facts: one row per pid, the newer wins.
	if diff := cmp.Diff(sortedLines(gtw+"|1990|F", rss+"|1993|M"), sortedLines(got...)); diff != "" {
		t.Errorf("person after append (-want +got):\n%s", diff)
	}

	reg, _ := pseudonymize.ReadOptOut(strings.NewReader("GTWGWY82B42G920M\n"), "later.txt")
	man, err := ingest.RemoveOptedOut(context.Background(), ingest.RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	if man.DatasetVersion == second.DatasetVersion || len(man.Removals) != 1 || man.Removals[0].RemovedPeople != 1 {
		t.Fatalf("removal manifest: %+v", man.Removals)
	}
	for _, tb := range ingest.Tables {
		if n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, tb.Name)+" WHERE pid = ?::UUID", gtw); n[0] != "0" {
			t.Errorf("table %s still holds the person who opted out", tb.Name)
		}
	}
	for name, c := range man.Tables {
		if !c.Reconciles() {
			t.Errorf("table %s does not reconcile after removal: %+v", name, c)
		}
	}
	for _, tb := range ingest.Tables {
		n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, tb.Name))
		if want := fmt.Sprint(man.Tables[tb.Name].Written); n[0] != want {
			t.Errorf("table %s holds %s rows, manifest says %s", tb.Name, n[0], want)
		}
	}
}

// Removing the people who opted out later keeps every other row where it was: each
// table's file, read in order, is the one before without their rows, so it stays sorted
// by pid and person rank.
func TestRemoveOptedOutKeepsTheOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests a synthetic extract")
	}
	src, period := synthExtract(t, synth.Config{Persons: 400, Seed: 4, Formats: []synth.Format{synth.FormatFHIR, synth.FormatCSV}})
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	// The extract's opt-out registry is not given at ingest: its people are removed later.
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, Period: period})
	reg := readOptOutFile(t, filepath.Join(src, "optout.txt"))
	var gone []string
	for _, id := range reg.Identifiers() {
		gone = append(gone, "'"+ps.PID(id).String()+"'")
	}
	db := openDB(t)
	kept := func(tb string) []string {
		return queryStrings(t, db, "SELECT * FROM "+table(dir, tb)+" WHERE pid IS NULL OR pid::VARCHAR NOT IN ("+strings.Join(gone, ", ")+")")
	}
	before := map[string][]string{}
	for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
		before[tb.Name] = kept(tb.Name)
	}
	man, err := ingest.RemoveOptedOut(context.Background(), ingest.RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	if man.Removals[0].RemovedPeople == 0 {
		t.Fatal("the extract's opt-out registry named nobody in the dataset")
	}
	for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
		after := queryStrings(t, db, "SELECT * FROM "+table(dir, tb.Name))
		if !slices.Equal(before[tb.Name], after) {
			t.Errorf("table %s: %d rows after the removal, %d before without the people removed, or in another order", tb.Name, len(after), len(before[tb.Name]))
		}
	}
}

// The catalog's domains come from reference data and the declared period, never from
// the data: two different extracts give the same catalog but for the version.
func TestCatalogIndependentOfData(t *testing.T) {
	period, _ := fse.ParsePeriod("2022-01..2023-12")
	d1 := filepath.Join(t.TempDir(), "d1")
	d2 := filepath.Join(t.TempDir(), "d2")
	m1 := runIngest(t, ingest.Config{Out: d1, Period: period, Inputs: []string{filepath.Join(gateway(t), "FHIR", "LAB.json")}})
	m2 := runIngest(t, ingest.Config{Out: d2, Period: period, Inputs: []string{filepath.Join(gateway(t), "FHIR")}})
	read := func(dir string) dataset.Catalog {
		b, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c dataset.Catalog
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2 := read(d1), read(d2)
	if c1.DatasetVersion != m1.DatasetVersion || c2.DatasetVersion != m2.DatasetVersion {
		t.Fatal("catalog does not carry the dataset version")
	}
	c1.DatasetVersion, c2.DatasetVersion = "", ""
	if diff := cmp.Diff(c1, c2); diff != "" {
		t.Errorf("catalogs differ with the data (-d1 +d2):\n%s", diff)
	}
	if c1.Domains["period"].From.Format("2006-01-02") != "2022-01-01" || c1.Domains["period"].To.Format("2006-01-02") != "2023-12-31" {
		t.Errorf("period domain %+v", c1.Domains["period"])
	}
	if len(c1.Domains["region"].Values) != 21 {
		t.Errorf("region domain has %d values, want 21", len(c1.Domains["region"].Values))
	}
}

// A dataset written before facts carried doc_key still takes appends: its facts read as
// unlinked (they cannot be retracted), the new batch's are linked.
func TestAppendToDatasetWithoutFactDocKeys(t *testing.T) {
	v1, v2 := labDocumentVersions(t)
	dir := filepath.Join(t.TempDir(), "data")
	first, second := t.TempDir(), t.TempDir()
	writeFile(t, first, "LAB.json", v1)
	writeFile(t, second, "LAB.json", v2)
	ps, _ := testKey(t)
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{first}})
	db := openDB(t)
	for _, tb := range ingest.Tables {
		if !ingest.IsFactTable(tb) {
			continue
		}
		path := filepath.Join(dir, tb.Name, "part-0.parquet")
		old := filepath.Join(dir, tb.Name, "old.parquet")
		if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * EXCLUDE (doc_key) FROM read_parquet('%s')) TO '%s' (FORMAT parquet)", path, old)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(old, path); err != nil {
			t.Fatal(err)
		}
	}
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Append: true, Inputs: []string{second}})
	assertReconciles(t, db, dir, man)
	if got := queryStrings(t, db, "SELECT value || ':' || (doc_key IS NULL) FROM "+table(dir, "lab_result")+" ORDER BY value"); !cmp.Equal(got, []string{"16.0:true", "18.5:false"}) {
		t.Errorf("lab values %v, want the old one unlinked and the new one linked", got)
	}
}
