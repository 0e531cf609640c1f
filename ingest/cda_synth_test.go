package ingest_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"index/suffixarray"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// synthCDA generates a small extract with every format.
func synthCDA(t *testing.T, persons int) (string, synthReport, *fse.Period) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "synth")
	period, _ := fse.ParsePeriod("2024-01..2025-12")
	cfg := synth.Config{Persons: persons, Seed: 7, Out: src, From: period.From, To: period.To,
		Formats: []synth.Format{synth.FormatFHIR, synth.FormatCSV, synth.FormatCDA}}
	if _, err := synth.Generate(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var rep synthReport
	b, err := os.ReadFile(filepath.Join(src, "synth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return src, rep, period
}

// A synthetic extract with CDA documents ingests like the FHIR one: every CDA archive's
// counts are what synth planted (bad identifiers and truncated documents quarantined,
// opted-out people and out-of-period facts counted), the manifest reconciles, and no
// identifier of the documents (codice fiscale, name, street, telecom, document id, NRE)
// is in any byte of DATA.
func TestSynthCDAExtractIngests(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests an extract")
	}
	src, rep, period := synthCDA(t, 1200)
	optOut := readOptOutFile(t, filepath.Join(src, "optout.txt"))
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, OptOut: optOut, Period: period})
	db := openDB(t)
	assertReconciles(t, db, dir, man)

	var zips int
	var truncated int
	for _, in := range man.Batches[0].Inputs {
		_, rel, _ := strings.Cut(in.Path, "/synth/")
		if !strings.HasPrefix(rel, "cda/") {
			continue
		}
		zips++
		want, ok := rep.Expected[rel]
		if !ok {
			t.Errorf("ingest read %s, which synth did not write", rel)
			continue
		}
		if in.Format != "cda-r2-zip" || in.Records != want.Records || in.Quarantined != want.Quarantined || in.OptedOut != want.OptedOut || in.OutsidePeriod != want.OutsidePeriod || in.Ignored != 0 {
			t.Errorf("%s: %+v; synth planted %+v", rel, in, want)
		}
	}
	if zips == 0 || zips != len(slices.DeleteFunc(mapsKeys(rep.Expected), func(k string) bool { return !strings.HasPrefix(k, "cda/") })) {
		t.Errorf("read %d CDA archives", zips)
	}
	for _, q := range quarantineLines(t, dir, man) {
		if strings.Contains(q["file"], "/cda/") {
			if !strings.HasPrefix(q["position"], "entry ") || q["reason"] == "" {
				t.Errorf("CDA quarantine line without an entry position or reason: %v", q)
			}
			if strings.HasPrefix(q["reason"], "malformed XML") {
				truncated++
			}
		}
	}
	if truncated == 0 {
		t.Error("no truncated CDA document was quarantined")
	}
	if n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, "er_visit")); n[0] == "0" {
		t.Error("no ER visit ingested")
	}
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
	out := outputText(t, db, dir)
	assertNoSynthIdentifiers(t, src, out)
	assertNoCDAIdentifiers(t, src, out)
}

func mapsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertNoCDAIdentifiers searches DATA for every identifier-like value of the synthetic
// CDA documents.
func assertNoCDAIdentifiers(t *testing.T, src string, out []byte) {
	t.Helper()
	needles := map[string]bool{}
	zips, _ := filepath.Glob(filepath.Join(src, "cda", "*.zip"))
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			b := readZipFile(t, f)
			if strings.HasSuffix(string(b), "</ClinicalDocument>\n") {
				collectCDASensitive(t, b, needles)
			} else { // a document synth cut short
				collectCDAValues(b, needles)
			}
		}
		zr.Close()
	}
	for _, tb := range ingest.Tables {
		delete(needles, tb.Name)
		for _, c := range tb.Columns {
			delete(needles, c.Name)
		}
	}
	// A birth time is 8 digits, which Parquet's packed digit codes can contain by
	// chance: search it in the date form DATA would hold it in (the extract's birth
	// dates all fall before its period, so no event date can match).
	for n := range needles {
		if len(n) == 8 && strings.Trim(n, "0123456789") == "" {
			delete(needles, n)
			needles[n[:4]+"-"+n[4:6]+"-"+n[6:]] = true
		}
	}
	if len(needles) < 1000 {
		t.Fatalf("only %d CDA needles collected", len(needles))
	}
	idx := suffixarray.New(out)
	leaks := 0
	for n := range needles {
		if len(idx.Lookup([]byte(n), 1)) > 0 {
			if leaks++; leaks < 5 {
				t.Errorf("a CDA value of %d characters (%.4s...) is in DATA", len(n), n)
			}
		}
	}
	if leaks > 0 {
		t.Errorf("%d of %d CDA values found in DATA", leaks, len(needles))
	}
}

// collectCDAValues collects the attribute values of a document that may not parse (a
// truncated one): extension="..." and value="..." of 8 or more characters.
func collectCDAValues(b []byte, out map[string]bool) {
	s := string(b)
	for _, attr := range []string{` extension="`, ` value="mailto:`, ` value="tel:`} {
		for rest := s; ; {
			i := strings.Index(rest, attr)
			if i < 0 {
				break
			}
			rest = rest[i+len(attr):]
			j := strings.IndexByte(rest, '"')
			if j < 0 {
				break
			}
			v := rest[:j]
			if strings.HasPrefix(attr, ` value="`) {
				v = attr[len(` value="`):] + v
			}
			if len(v) >= 8 {
				out[v] = true
			}
		}
	}
}

// The CDA rendering of a synthetic extract says what its FHIR rendering says: ingesting
// fhir/ndjson alone and cda/ alone with the same key gives the same laboratory results,
// vaccinations, specialist and drug prescriptions, and for every person the CDA names,
// the same person row; the ER reports' diagnoses are among the FHIR conditions.
func TestSynthCDAMatchesFHIR(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests an extract twice")
	}
	src, _, period := synthCDA(t, 800)
	ps, _ := testKey(t)
	fhirDir := filepath.Join(t.TempDir(), "fhir")
	cdaDir := filepath.Join(t.TempDir(), "cda")
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: fhirDir, Inputs: []string{filepath.Join(src, "fhir", "ndjson")}, Period: period})
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: cdaDir, Inputs: []string{filepath.Join(src, "cda")}, Period: period})
	db := openDB(t)
	// Facts are compared without their link to a document: the FHIR NDJSON sends them
	// outside documents.
	// Nor their person ranks: a hash of all a row's columns, doc_key included.
	facts := "SELECT * EXCLUDE (doc_key, " + dataset.PersonRankColumn + ") FROM "
	for _, name := range []string{"lab_result", "vaccination", "prescription", "medication"} {
		q := "SELECT * EXCLUDE (" + dataset.PersonRankColumn + ") FROM "
		if tb, _ := ingest.TableByName(name); ingest.IsFactTable(tb) {
			q = facts
		}
		f := sortedLines(queryStrings(t, db, q+table(fhirDir, name))...)
		c := sortedLines(queryStrings(t, db, q+table(cdaDir, name))...)
		if len(f) == 0 {
			t.Errorf("%s: no rows", name)
		}
		if diff := cmp.Diff(f, c); diff != "" {
			t.Errorf("%s differs (-fhir +cda):\n%s", name, diff)
		}
	}
	onlyCDA := queryStrings(t, db, "SELECT count(*) FROM (SELECT * FROM "+table(cdaDir, "person")+" EXCEPT SELECT * FROM "+table(fhirDir, "person")+")")
	if onlyCDA[0] != "0" {
		t.Errorf("%s CDA person rows are not the FHIR ones", onlyCDA[0])
	}
	onlyCDA = queryStrings(t, db, "SELECT count(*) FROM ("+facts+table(cdaDir, "diagnosis")+" EXCEPT "+facts+table(fhirDir, "diagnosis")+")")
	if n := queryStrings(t, db, "SELECT count(*) FROM "+table(cdaDir, "diagnosis")); onlyCDA[0] != "0" || n[0] == "0" {
		t.Errorf("%s of %s ER diagnoses are not FHIR conditions", onlyCDA[0], n[0])
	}
	// The chapter both readers derive, against the classification's ranges spelt out in SQL.
	chapterSQL := `CASE WHEN code_system <> 'icd9cm' OR NOT regexp_matches(code, '^([0-9]{3}|V[0-9]{2}|E[0-9]{3})(\.[0-9]{1,2})?$') THEN NULL
		WHEN code[1] IN ('V', 'E') THEN code[1]
		ELSE (SELECT lo || '-' || hi FROM (VALUES ('001', '139'), ('140', '239'), ('240', '279'), ('280', '289'), ('290', '319'), ('320', '389'),
			('390', '459'), ('460', '519'), ('520', '579'), ('580', '629'), ('630', '679'), ('680', '709'), ('710', '739'), ('740', '759'),
			('760', '779'), ('780', '799'), ('800', '999')) r(lo, hi) WHERE code[1:3] BETWEEN lo AND hi) END`
	for _, dir := range []string{fhirDir, cdaDir} {
		got := strings.Split(queryStrings(t, db, "SELECT count(chapter), count(*) FILTER (WHERE chapter IS DISTINCT FROM "+chapterSQL+"), count(*) FROM "+table(dir, "diagnosis"))[0], "|")
		if got[0] == "0" || got[1] != "0" {
			t.Errorf("%s: of %s diagnoses, %s have a chapter and %s the wrong one", filepath.Base(dir), got[2], got[0], got[1])
		}
	}
}
