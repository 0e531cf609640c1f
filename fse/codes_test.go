package fse_test

import (
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
