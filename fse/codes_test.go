package fse_test

import (
	"fmt"
	"testing"

	"github.com/velo-fse/velo/fse"
)

func TestNormalizeICD9CM(t *testing.T) {
	for _, c := range []struct {
		in   string
		proc bool
		want string
		ok   bool
	}{
		{"4280", false, "428.0", true}, {"428.0", false, "428.0", true}, {" 428 ", false, "428", true},
		{"30001", false, "300.01", true}, {"300.01", false, "300.01", true}, {"1535", false, "153.5", true},
		{"v1052", false, "V10.52", true}, {"V10.52", false, "V10.52", true}, {"E8490", false, "E849.0", true},
		{"4523", true, "45.23", true}, {"45.23", true, "45.23", true}, {"0321", true, "03.21", true},
		{"03.21", false, "03.21", false}, {"Q13.1", false, "Q13.1", false}, {"12345678", false, "12345678", false},
	} {
		got, ok := fse.NormalizeICD9CM(c.in, c.proc)
		if got != c.want || ok != c.ok {
			t.Errorf("NormalizeICD9CM(%q, %v) = %q, %v; want %q, %v", c.in, c.proc, got, ok, c.want, c.ok)
		}
	}
}

func TestICD9CMChapter(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Each chapter's first and last category, in the forms ingest meets.
		{"001", "001-139"}, {"139.8", "001-139"}, {"1400", "140-239"}, {"239.9", "140-239"},
		{"250.00", "240-279"}, {"279", "240-279"}, {"280.9", "280-289"}, {"289", "280-289"},
		{"290", "290-319"}, {"300.00", "290-319"}, {"319", "290-319"}, {"320", "320-389"}, {"389.9", "320-389"},
		{"401.9", "390-459"}, {"427.31", "390-459"}, {"459", "390-459"}, {"460", "460-519"}, {"519", "460-519"},
		{"520", "520-579"}, {"579", "520-579"}, {"580", "580-629"}, {"629", "580-629"}, {"630", "630-679"},
		{"679", "630-679"}, {"680", "680-709"}, {"709", "680-709"}, {"715.90", "710-739"}, {"739", "710-739"},
		{"740", "740-759"}, {"759", "740-759"}, {"760", "760-779"}, {"779", "760-779"}, {"780", "780-799"},
		{"799", "780-799"}, {"800", "800-999"}, {"999", "800-999"}, {"v1052", "V"}, {"E8490", "E"},
		// Not diagnosis codes: no chapter.
		{"000", ""}, {"45.23", ""}, {"Q13.1", ""}, {"", ""}, {"12345678", ""},
	} {
		got, ok := fse.ICD9CMChapter(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("ICD9CMChapter(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	// Every chapter is reached, and the ranges tile 001-999 in order.
	seen := map[string]bool{}
	for n := 1; n <= 999; n++ {
		ch, ok := fse.ICD9CMChapter(fmt.Sprintf("%03d", n))
		if !ok {
			t.Fatalf("category %03d has no chapter", n)
		}
		seen[ch] = true
	}
	if len(seen) != len(fse.ICD9CMChapters)-2 {
		t.Errorf("categories 001-999 reach %d chapters, want %d", len(seen), len(fse.ICD9CMChapters)-2)
	}
}

func TestCanonicalSystem(t *testing.T) {
	for _, names := range [][]string{
		{"http://loinc.org", "urn:oid:2.16.840.1.113883.6.1", "2.16.840.1.113883.6.1", "HTTP://LOINC.ORG"},
		{fse.SystemICD9CM, "http://hl7.org/fhir/sid/icd-9", "urn:oid:2.16.840.1.113883.6.103", "2.16.840.1.113883.6.103", "2.16.840.1.113883.6.2"},
		{fse.SystemATC, "urn:oid:2.16.840.1.113883.6.73", "2.16.840.1.113883.6.73"},
		{fse.SystemAIC, "2.16.840.1.113883.2.9.6.1.5"},
		{"http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"},
		// An OID Velo has no name for (the EMUR triage list) matches with or without urn:oid:.
		{"2.16.840.1.113883.2.9.6.1.54.4", "urn:oid:2.16.840.1.113883.2.9.6.1.54.4", "URN:OID:2.16.840.1.113883.2.9.6.1.54.4"},
	} {
		for _, n := range names[1:] {
			if !fse.SameSystem(names[0], n) {
				t.Errorf("%s and %s are not the same system", names[0], n)
			}
		}
	}
	if fse.SameSystem(fse.SystemICD9CM, fse.SystemICD9CMProcedure) || fse.SameSystem("http://loinc.org", "urn:oid:2.16.840.1.113883.6.73") ||
		fse.SameSystem("urn:oid:2.16.840.1.113883.2.9.6.1.54.4", "2.16.840.1.113883.2.9.6.1.54.5") {
		t.Error("different systems compare equal")
	}
	// Only an OID's shape loses its urn:oid: prefix.
	for _, s := range []string{"urn:oid:1..2", "urn:oid:x.1", "urn:oid:"} {
		if got := fse.CanonicalSystem(s); got != s {
			t.Errorf("CanonicalSystem(%q) = %q, want it as given", s, got)
		}
	}
}
