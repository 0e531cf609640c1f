package ingest_test

import (
	"encoding/json"
	"index/suffixarray"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// synthReport is the part of synth.json the test reads.
type synthReport struct {
	Expected map[string]struct {
		Records       int64 `json:"records"`
		Quarantined   int64 `json:"quarantined"`
		OptedOut      int64 `json:"opted_out"`
		OutsidePeriod int64 `json:"outside_period"`
	} `json:"expected"`
	OptedOutPersons int64 `json:"opted_out_persons"`
}

// The acceptance run: synth 2000 persons with seed 7, a new key, ingest with the
// opt-out list and the period. Every count matches what synth says it planted, the
// manifest reconciles, the people who opted out are nowhere, every bad record is in the
// quarantine with a reason, and no identifier of the extract is in any byte of DATA.
func TestSynthExtractIngests(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests a 2000-person extract")
	}
	src, period := synthExtract(t, synth.Config{Persons: 2000, Seed: 7, Bundles: 20})
	var rep synthReport
	b, err := os.ReadFile(filepath.Join(src, "synth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	optOut := readOptOutFile(t, filepath.Join(src, "optout.txt"))
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, OptOut: optOut, Period: period})
	db := openDB(t)
	assertReconciles(t, db, dir, man)

	batch := man.Batches[0]
	seen := map[string]bool{}
	for _, in := range batch.Inputs {
		// Paths in the manifest are masked where they hold long digit runs (the test's
		// temporary directory has one): match on the part inside the extract.
		_, rel, ok := strings.Cut(in.Path, "/synth/")
		if !ok {
			t.Fatalf("input path %s is not under the extract", in.Path)
		}
		if rel == "optout.txt" || rel == "synth.json" {
			if in.Skipped == "" {
				t.Errorf("%s was not skipped", rel)
			}
			continue
		}
		want, ok := rep.Expected[rel]
		if !ok {
			t.Errorf("ingest read %s, which synth did not write", rel)
			continue
		}
		seen[rel] = true
		if in.Records != want.Records {
			t.Errorf("%s: %d records, synth wrote %d", rel, in.Records, want.Records)
		}
		if strings.HasSuffix(rel, "Encounter.ndjson") {
			// Encounters map to no table: every one is ignored, whatever its patient.
			if in.Ignored != in.Records {
				t.Errorf("%s: %d of %d encounters ignored", rel, in.Ignored, in.Records)
			}
			continue
		}
		if strings.Contains(rel, "bundles/") {
			// A bundle's Encounter entry is ignored too, even for a quarantined patient.
			if in.Quarantined > want.Quarantined || in.OptedOut > want.OptedOut || in.OutsidePeriod != want.OutsidePeriod {
				t.Errorf("%s: quarantined %d opted out %d outside %d; synth planted %+v", rel, in.Quarantined, in.OptedOut, in.OutsidePeriod, want)
			}
			continue
		}
		if in.Quarantined != want.Quarantined || in.OptedOut != want.OptedOut || in.OutsidePeriod != want.OutsidePeriod {
			t.Errorf("%s: quarantined %d opted out %d outside %d; synth planted %+v", rel, in.Quarantined, in.OptedOut, in.OutsidePeriod, want)
		}
	}
	for rel := range rep.Expected {
		if !seen[rel] {
			t.Errorf("synth wrote %s, ingest did not read it", rel)
		}
	}
	if batch.OptedOut.People != rep.OptedOutPersons {
		t.Errorf("opted-out people: ingest %d, synth %d", batch.OptedOut.People, rep.OptedOutPersons)
	}
	// The people who opted out are absent from every table.
	var optedPIDs []string
	for _, id := range optOut.Identifiers() {
		optedPIDs = append(optedPIDs, "'"+ps.PID(id).String()+"'")
	}
	for _, tb := range ingest.Tables {
		n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, tb.Name)+" WHERE pid IN ("+strings.Join(optedPIDs, ",")+")")
		if n[0] != "0" {
			t.Errorf("table %s holds %s rows of people who opted out", tb.Name, n[0])
		}
	}
	// Every quarantined record has a position and a reason.
	q := quarantineLines(t, dir, man)
	var quarantined int64
	for _, in := range batch.Inputs {
		quarantined += in.Quarantined
	}
	if int64(len(q)) != quarantined || quarantined == 0 {
		t.Errorf("quarantine has %d lines, the manifest counts %d", len(q), quarantined)
	}
	for _, line := range q {
		if line["position"] == "" || line["reason"] == "" || line["file"] == "" {
			t.Errorf("quarantine line without file, position or reason: %v", line)
		}
	}
	// Derived measures are those of the PNGLA rules.
	bad := queryStrings(t, db, `SELECT count(*) FROM `+table(dir, "booking")+` WHERE
		wait_days <> date_diff('day', d_contact, d_appointment)
		OR (within_target IS NOT NULL AND NOT (first_access AND garanzia AND priority IS NOT NULL))
		OR (within_target IS NULL AND first_access AND garanzia AND priority IS NOT NULL)`)
	if bad[0] != "0" {
		t.Errorf("%s bookings with wrong derived measures", bad[0])
	}
	for _, p := range fse.Priorities {
		share := queryStrings(t, db, "SELECT avg(CAST(within_target AS INTEGER)) FROM "+table(dir, "booking")+" WHERE priority = ?", string(p))
		if share[0] == "NULL" {
			t.Errorf("no monitored bookings of class %s", p)
		}
	}
	assertNoSynthIdentifiers(t, src, outputText(t, db, dir))
}

// assertNoSynthIdentifiers searches DATA for every codice fiscale, phone, email, street
// line, NRE, booking id and document id of the synthetic extract.
func assertNoSynthIdentifiers(t *testing.T, src string, out []byte) {
	t.Helper()
	needles := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(src, "fhir"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			var v any
			if json.Unmarshal([]byte(line), &v) == nil {
				collectSensitive(v, "", needles)
			}
		}
		var v any
		if json.Unmarshal(b, &v) == nil {
			collectSensitive(v, "", needles)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile(filepath.Join(src, "cup", "bookings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(csv), "\n")[1:] {
		f := strings.Split(line, ",")
		for _, i := range []int{0, 1, 2} { // booking_id, rx_id, patient_cf
			if i < len(f) && len(f[i]) >= 8 {
				needles[f[i]] = true
			}
		}
	}
	for _, tb := range ingest.Tables {
		delete(needles, tb.Name)
		for _, c := range tb.Columns {
			delete(needles, c.Name)
		}
	}
	if len(needles) < 1000 {
		t.Fatalf("only %d identifier needles collected", len(needles))
	}
	leaks := 0
	idx := suffixarray.New(out)
	for n := range needles {
		if len(idx.Lookup([]byte(n), 1)) > 0 {
			leaks++
			if leaks < 5 {
				t.Errorf("an input value of %d characters (%.4s...) is in DATA", len(n), n)
			}
		}
	}
	if leaks > 0 {
		t.Errorf("%d of %d identifier-like input values found in DATA", leaks, len(needles))
	}
}
