package synth_test

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/velo-fse/velo/synth"
)

var allFormats = []synth.Format{synth.FormatFHIR, synth.FormatCSV, synth.FormatCDA}

// CDA output is a pure function of the config like the rest, and adding it changes no
// byte of the FHIR and CSV files.
func TestCDADeterministicAndIndependent(t *testing.T) {
	cfg := synth.Config{Persons: 1100, Seed: 5, Bundles: 2, Workers: 1, Formats: allFormats}
	dirA, repA := generate(t, cfg)
	cfg.Workers = 4
	dirB, repB := generate(t, cfg)
	a, b := readTree(t, dirA), readTree(t, dirB)
	if len(a) != len(b) {
		t.Fatalf("runs wrote %d and %d files", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between 1 and 4 workers", name)
		}
	}
	if !reflect.DeepEqual(repA, repB) {
		t.Error("reports differ between 1 and 4 workers")
	}
	var zips int
	for name := range a {
		if strings.HasPrefix(name, "cda/") {
			zips++
		}
	}
	if zips != 3 { // 1100 people: chunks of 500
		t.Errorf("%d CDA archives, want 3", zips)
	}

	cfg.Formats = nil
	dirC, repC := generate(t, cfg)
	c := readTree(t, dirC)
	for name, data := range c {
		if name == "synth.json" {
			continue
		}
		if !bytes.Equal(data, a[name]) {
			t.Errorf("%s changes when CDA is written too", name)
		}
	}
	if !reflect.DeepEqual(repC.Formats, synth.DefaultFormats) || repC.CDADocuments != 0 {
		t.Errorf("default run: formats %v, %d CDA documents", repC.Formats, repC.CDADocuments)
	}
}

// Every archive entry is one HL7 CDA R2 document of a known type, well formed but for
// the planted truncations, and the archives' counts add up.
func TestCDADocuments(t *testing.T) {
	dir, rep := generate(t, synth.Config{Persons: 1500, Seed: 8, Formats: allFormats})
	types := map[string]int{}
	var docs, truncated, records int64
	zips, _ := filepath.Glob(filepath.Join(dir, "cda", "*.zip"))
	for _, z := range zips {
		rel := "cda/" + filepath.Base(z)
		st, ok := rep.Files[rel]
		o := rep.Expected[rel]
		if !ok || o.Records != st.Records || o.Quarantined+o.OptedOut+o.OutsidePeriod > o.Records {
			t.Errorf("%s: stats %+v, expected %+v", rel, st, o)
		}
		records += o.Records
		zr, err := zip.OpenReader(z)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			docs++
			rc, _ := f.Open()
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			code, err := docType(b)
			if err != nil {
				truncated++
				continue
			}
			types[code]++
			if !strings.HasPrefix(f.Name, map[string]string{
				"11502-2": "LAB-", "82593-5": "CERT_VACC-", "57832-8": "RX_SPEC-", "57833-6": "RX_DRUG-", "59258-4": "VPS-",
			}[code]) {
				t.Errorf("entry %s is a %s document", f.Name, code)
			}
		}
		zr.Close()
	}
	if docs != rep.CDADocuments || truncated != rep.Faults.CDATruncated || truncated == 0 {
		t.Errorf("%d documents (%d truncated); report says %d (%d)", docs, truncated, rep.CDADocuments, rep.Faults.CDATruncated)
	}
	for _, code := range []string{"11502-2", "82593-5", "57832-8", "57833-6", "59258-4"} {
		if types[code] == 0 {
			t.Errorf("no %s documents among %v", code, types)
		}
	}
	if records < 3*docs {
		t.Errorf("%d records for %d documents", records, docs)
	}
}

// docType parses a document and returns its LOINC type.
func docType(b []byte) (string, error) {
	var doc struct {
		XMLName xml.Name
		Code    struct {
			Code string `xml:"code,attr"`
		} `xml:"code"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	if doc.XMLName.Space != "urn:hl7-org:v3" || doc.XMLName.Local != "ClinicalDocument" {
		return "", errors.New("not a ClinicalDocument")
	}
	return doc.Code.Code, nil
}

func TestParseFormats(t *testing.T) {
	for in, want := range map[string][]synth.Format{
		"fhir,csv":        {synth.FormatFHIR, synth.FormatCSV},
		"cda":             {synth.FormatCDA},
		" FHIR , cda,cda": {synth.FormatFHIR, synth.FormatCDA},
	} {
		got, err := synth.ParseFormats(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseFormats(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "xml", "fhir,,csv"} {
		if _, err := synth.ParseFormats(in); err == nil {
			t.Errorf("ParseFormats(%q) accepted", in)
		}
	}
	// Only the chosen outputs are written; Bundles need FHIR.
	dir, rep := generate(t, synth.Config{Persons: 40, Seed: 1, Formats: []synth.Format{synth.FormatCDA}})
	for name := range readTree(t, dir) {
		if name != "synth.json" && name != "optout.txt" && !strings.HasPrefix(name, "cda/") {
			t.Errorf("a CDA-only run wrote %s", name)
		}
	}
	for name := range rep.Expected {
		if !strings.HasPrefix(name, "cda/") {
			t.Errorf("a CDA-only report expects %s", name)
		}
	}
	_, err := synth.Generate(t.Context(), synth.Config{Persons: 10, Bundles: 1, Out: filepath.Join(t.TempDir(), "x"), Formats: []synth.Format{synth.FormatCSV}})
	if err == nil {
		t.Error("Bundles without FHIR accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "fhir")); err == nil {
		t.Error("a CDA-only run created fhir/")
	}
}
