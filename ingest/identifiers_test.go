package ingest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// Person identifiers as Italian FHIR and CDA carry them are accepted; a valid codice
// fiscale under a system the guides do not name is accepted with a warning that names
// the system; when nothing valid is found, the reason says what was found (system and
// shape), never the value.
func TestPersonIdentifiers(t *testing.T) {
	ps, _ := testKey(t)
	const cf = "GTWGWY82B42G920M"
	const stp = "STP1701051234567"
	const eni = "ENI1201051234567"
	lab := readFixture(t, "FHIR/LAB.json")
	if !strings.Contains(lab, `"system": "urn:oid:2.16.840.1.113883.2.9.4.3.2",`) {
		t.Fatal("fixture has no codice fiscale identifier to rewrite")
	}
	fhirWith := func(system, value string) string {
		s := strings.Replace(lab, `"system": "urn:oid:2.16.840.1.113883.2.9.4.3.2",`, `"system": "`+system+`",`, 1)
		return strings.Replace(s, `"value": "`+cf+`"`, `"value": "`+value+`"`, 1)
	}
	cda := readFixture(t, "CDA/LAB.xml")
	const cdaID = `<id root="2.16.840.1.113883.2.9.4.3.2" extension="` + cf + `" assigningAuthorityName="MEF"/>`
	if !strings.Contains(cda, cdaID) {
		t.Fatal("fixture has no codice fiscale id to rewrite")
	}
	cdaWith := func(ids ...string) string {
		var b strings.Builder
		for i := 0; i+1 < len(ids); i += 2 {
			b.WriteString(`<id root="` + ids[i] + `" extension="` + ids[i+1] + `"/>`)
		}
		return strings.Replace(cda, cdaID, b.String(), 1)
	}
	team, _ := pseudonymize.ParseTEAM("DE1234567890")
	type want struct {
		pid, warning, reason string
	}
	cases := map[string]struct {
		content string
		want    want
	}{
		"fhir-hl7it-cf.json":    {fhirWith("http://hl7.it/sid/codiceFiscale", cf), want{pid: pidOf(t, ps, cf)}},
		"fhir-stp.json":         {fhirWith("http://hl7.it/sid/lazio/stp", stp), want{pid: pidOf(t, ps, stp)}},
		"fhir-eni-oid.json":     {fhirWith("urn:oid:2.16.840.1.113883.2.9.4.3.18", eni), want{pid: pidOf(t, ps, eni)}},
		"fhir-team.json":        {fhirWith("urn:oid:2.16.840.1.113883.2.9.4.3.3", "DE 1234567890"), want{pid: ps.PID(team).String()}},
		"fhir-nre-root-cf.json": {fhirWith("urn:oid:2.16.840.1.113883.2.9.4.3.8", cf), want{pid: pidOf(t, ps, cf), warning: "identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.4.3.8"}},
		"fhir-uuid.json": {fhirWith("urn:oid:2.16.840.1.113883.2.9.4.3.2", "3f2c5d1e-9abc-4d3e-8f10-2a3b4c5d6e7f"),
			want{reason: "patient identifier: identifier is not a codice fiscale, STP/ENI or temporary code (found urn:oid:2.16.840.1.113883.2.9.4.3.2 9a9a9a9a-9a{3}-9a9a-9a9{2}-9a9a9a9a9a9a)"}},
		"cda-stp-regional.xml": {cdaWith("2.16.840.1.113883.2.9.2.170105.4.1", stp, "2.16.840.1.113883.2.9.2.90.4.1", "83741345"), want{pid: pidOf(t, ps, stp)}},
		"cda-team.xml":         {cdaWith("2.16.840.1.113883.2.9.4.3.7", "DE1234567890"), want{pid: ps.PID(team).String()}},
		"cda-ig-typo-root.xml": {cdaWith("2.16.840.1.113883.2.9.2.4.3.2", cf), want{pid: pidOf(t, ps, cf), warning: "identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.2.4.3.2"}},
		"cda-regional-only.xml": {cdaWith("2.16.840.1.113883.2.9.2.90.4.1", "83741345"),
			want{reason: "patient identifier: no person identifier (found urn:oid:2.16.840.1.113883.2.9.2.90.4.1 9{8})"}},
		"cda-bad-check-other-root.xml": {cdaWith("2.16.840.1.113883.2.9.2.4.3.2", cf[:15]+"X", "2.16.840.1.113883.9.9.9.9.9.9", "99999htttt"),
			want{reason: "patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.2.4.3.2 A{6}9{2}A9{2}A9{3}A; urn:oid:2.16.840.1.113883.9.9.9.9.9.9 9{5}a{5})"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			in := t.TempDir()
			writeFile(t, in, name, c.content)
			dir := filepath.Join(t.TempDir(), "data")
			man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
			db := openDB(t)
			assertReconciles(t, db, dir, man)
			var got want
			if p := queryStrings(t, db, "SELECT pid::VARCHAR FROM "+table(dir, "person")); len(p) == 1 {
				got.pid = p[0]
			}
			for w := range man.Batches[0].Warnings {
				if strings.HasPrefix(w, "identifier_unexpected_system") {
					got.warning = w
				}
			}
			for _, q := range quarantineLines(t, dir, man) {
				if q["table"] == "person" {
					got.reason = q["reason"]
				}
			}
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// No identifier in any byte of DATA, quarantine and manifest included.
			out := outputText(t, db, dir)
			for _, v := range []string{cf, cf[:15] + "X", stp, eni, "DE1234567890", "3f2c5d1e-9abc", "83741345"} {
				if strings.Contains(string(out), v) {
					t.Errorf("DATA holds the identifier %.4s...", v)
				}
			}
		})
	}
}

// The Ministry's own samples: the codice fiscale under the root the CDA guides' own VPS
// example misprints (2.16.840.1.113883.2.9.2.4.3.2) is read, with the warning; the
// mapping engine's bundle carries it under the NRE's OID.
func TestPersonIdentifiersMinistrySamples(t *testing.T) {
	ps, _ := testKey(t)
	for file, warning := range map[string]string{
		"gtw-validator/schematronVPS/OK/CDA2_Verbale_Pronto_Soccorso_v1.2.xml": "identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.2.4.3.2",
		"gtw-fhir-mapping/FHIR_Referto_di_Medicina_di_Laboratorio1.0.json":     "identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.4.3.8",
	} {
		dir := filepath.Join(t.TempDir(), "data")
		man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(ministry(t), file)}})
		if n := man.Batches[0].Warnings[warning]; n != 1 {
			t.Errorf("%s: warning %q counted %d times: %v", file, warning, n, man.Batches[0].Warnings)
		}
		if p := queryStrings(t, openDB(t), "SELECT count(*) FROM "+table(dir, "person")); p[0] != "1" {
			t.Errorf("%s: %s persons, want 1", file, p[0])
		}
	}
}
