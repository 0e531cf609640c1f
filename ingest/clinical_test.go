package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// A discharge letter with three discharge diagnoses — 428.0, then 25000 (250.00), then a
// template's XXX — gives the principal (the first), a secondary one and no row for the
// placeholder (ignored, its warning counted), beside the admission diagnosis; read as CDA
// or as the Gateway's FHIR alike. In FHIR the letter's order is the Composition section's,
// not the Bundle's: the added Observations come first in the Bundle.
func TestDischargeDiagnosisRoles(t *testing.T) {
	cda := readFixture(t, "CDA/LDO.xml")
	i := strings.Index(cda, `code="428.0"`)
	j := strings.Index(cda[i:], "</entry>") + i + len("</entry>")
	extra := ""
	for _, code := range []string{"25000", "XXX"} {
		extra += `<entry><observation classCode="OBS" moodCode="EVN"><code code="8651-2" codeSystem="2.16.840.1.113883.6.1"/>` +
			`<value xsi:type="CD" code="` + code + `" codeSystem="2.16.840.1.113883.6.103"/></observation></entry>`
	}
	cda = cda[:j] + extra + cda[j:]

	var b map[string]any
	if err := json.Unmarshal([]byte(readFixture(t, "FHIR/LDO.json")), &b); err != nil {
		t.Fatal(err)
	}
	entries := b["entry"].([]any)
	var first map[string]any // the existing discharge diagnosis
	var added []any
	for _, e := range entries {
		r := e.(map[string]any)["resource"].(map[string]any)
		if r["id"] == "9f3f3a89-d483-41af-81b7-d6f8e28ddce9" {
			first = r
		}
	}
	for n, code := range []string{"25000", "XXX"} {
		id := "added-discharge-" + string(rune('a'+n))
		added = append(added, map[string]any{"fullUrl": "https://example/Observation/" + id, "resource": map[string]any{
			"resourceType": "Observation", "id": id, "status": "final",
			"code":                 map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8651-2"}}},
			"subject":              first["subject"],
			"encounter":            first["encounter"],
			"valueCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-9", "code": code}}},
		}})
	}
	b["entry"] = append(added, entries...)
	for _, e := range entries {
		r := e.(map[string]any)["resource"].(map[string]any)
		if r["resourceType"] != "Composition" {
			continue
		}
		for _, s := range r["section"].([]any) {
			s := s.(map[string]any)
			if s["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] == "11535-2" {
				s["entry"] = append(s["entry"].([]any),
					map[string]any{"reference": "https://example/Observation/added-discharge-a"},
					map[string]any{"reference": "https://example/Observation/added-discharge-b"})
			}
		}
	}
	fhir, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}

	ps, _ := testKey(t)
	gtw := pidOf(t, ps, "GTWGWY82B42G920M")
	db := openDB(t)
	for name, src := range map[string]string{"LDO.xml": cda, "LDO.json": string(fhir)} {
		t.Run(name, func(t *testing.T) {
			in := t.TempDir()
			writeFile(t, in, name, src)
			dir := filepath.Join(t.TempDir(), "data")
			man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
			assertReconciles(t, db, dir, man)
			got := queryStrings(t, db, "SELECT pid::VARCHAR, code_system, code, onset_date::VARCHAR FROM "+table(dir, "diagnosis")+" WHERE role IN ('admission', 'principal', 'secondary') ORDER BY role, code")
			got = append(got, queryStrings(t, db, "SELECT role FROM "+table(dir, "diagnosis")+" WHERE role IN ('admission', 'principal', 'secondary') ORDER BY role, code")...)
			want := []string{
				gtw + "|icd9cm|300.01|2022-03-17", // admission: the stay's start
				gtw + "|icd9cm|428.0|2022-04-17",  // principal: the stay's end
				gtw + "|icd9cm|250.00|2022-04-17", // secondary
				"admission", "principal", "secondary",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("admission and discharge diagnoses (-want +got):\n%s", diff)
			}
			b := man.Batches[0]
			if b.Warnings["diagnosis_code_not_icd9cm"] != 1 || b.Inputs[0].IgnoredWhy["diagnosis code under ICD-9-CM that is not an ICD-9-CM code (a template placeholder)"] != 1 {
				t.Errorf("the placeholder: warnings %v, ignored %v", b.Warnings, b.Inputs[0].IgnoredWhy)
			}
		})
	}
}

// A dataset written before diagnosis.role and the observation table existed still takes
// appends and opt-out removals: its diagnoses read with a NULL role, the observation
// table is created (empty if no batch has any), and counts reconcile.
func TestAppendToDatasetBeforeRolesAndObservations(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(gateway(t), "FHIR", "LDO.json")}})
	db := openDB(t)
	path := filepath.Join(dir, "diagnosis", "part-0.parquet")
	old := filepath.Join(dir, "diagnosis", "old.parquet")
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * EXCLUDE (role) FROM read_parquet('%s')) TO '%s' (FORMAT parquet)", path, old)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(old, path); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "observation")); err != nil {
		t.Fatal(err)
	}
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Append: true, Inputs: []string{filepath.Join(gateway(t), "FHIR", "RSA.json")}})
	assertReconciles(t, db, dir, man)
	got := queryStrings(t, db, "SELECT coalesce(role, 'NULL') || ':' || count(*) FROM "+table(dir, "diagnosis")+" GROUP BY role ORDER BY 1")
	// LDO's five diagnoses, written without a role; RSA's problem, diagnosis and reason.
	if want := []string{"NULL:5", "diagnosis:1", "problem:1", "reason:1"}; !cmp.Equal(got, want) {
		t.Errorf("diagnosis roles %v, want %v", got, want)
	}
	if got := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, "observation")); !cmp.Equal(got, []string{"0"}) {
		t.Errorf("observation rows %v, want an empty table", got)
	}
	if err := os.RemoveAll(filepath.Join(dir, "observation")); err != nil {
		t.Fatal(err)
	}
	reg, _ := pseudonymize.ReadOptOut(strings.NewReader("GTWGWY82B42G920M\n"), "later.txt")
	if _, err := ingest.RemoveOptedOut(context.Background(), ingest.RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: dir}); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, "observation")); !cmp.Equal(got, []string{"0"}) {
		t.Errorf("observation rows after removal %v, want an empty table", got)
	}
}

// The emergency-room report's visit is read from FHIR as from CDA: the Composition's
// encounter, dated by its start, with the triage of the triage section (54094-8) and the
// outcome of the discharge encounter's dischargeDisposition (the EMUR lists), wherever
// the Composition stands in the Bundle; a code outside a list is NULL with its warning.
func TestFHIRERVisit(t *testing.T) {
	vps := strings.ReplaceAll(readFixture(t, "FHIR/VPS.json"), "\r\n", "\n")
	const rosso = `"system": "urn:oid:2.16.840.1.113883.2.9.6.1.54.4",
              "code": "R",
              "display": "Rosso"`
	if !strings.Contains(vps, rosso) {
		t.Fatal("the Gateway's VPS.json changed: no triage coded R (Rosso)")
	}
	compositionLast := func(src string) string {
		var b map[string]any
		if err := json.Unmarshal([]byte(src), &b); err != nil {
			t.Fatal(err)
		}
		entries := b["entry"].([]any)
		for i, e := range entries {
			if e.(map[string]any)["resource"].(map[string]any)["resourceType"] == "Composition" {
				entries = append(append(entries[:i:i], entries[i+1:]...), e)
				break
			}
		}
		b["entry"] = entries
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	ps, _ := testKey(t)
	gtw := pidOf(t, ps, "GTWGWY82B42G920M")
	db := openDB(t)
	for _, tc := range []struct {
		name, src, want, warning string
	}{
		{"as the Gateway writes it", vps, gtw + "|R|1|2022-03-30", ""},
		{"the Composition last", compositionLast(vps), gtw + "|R|1|2022-03-30", ""},
		{"a triage outside the list", strings.Replace(vps, rosso, strings.Replace(rosso, `"R"`, `"XXX"`, 1), 1), gtw + "|NULL|1|2022-03-30", "er_visit_triage_not_in_code_list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := t.TempDir()
			writeFile(t, in, "VPS.json", tc.src)
			dir := filepath.Join(t.TempDir(), "data")
			man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
			assertReconciles(t, db, dir, man)
			got := queryStrings(t, db, "SELECT pid::VARCHAR, coalesce(triage, 'NULL'), coalesce(outcome, 'NULL'), visit_date::VARCHAR FROM "+table(dir, "er_visit"))
			if diff := cmp.Diff([]string{tc.want}, got); diff != "" {
				t.Errorf("er_visit (-want +got):\n%s", diff)
			}
			if tc.warning != "" && man.Batches[0].Warnings[tc.warning] != 1 {
				t.Errorf("warnings %v, want %s once", man.Batches[0].Warnings, tc.warning)
			}
		})
	}
}

// An ImagingStudy with a procedure code is the exam performed: a procedure dated by its
// start; one not performed (registered, cancelled) or without a code is ignored with
// its reason.
func TestFHIRImagingStudy(t *testing.T) {
	ps, _ := testKey(t)
	in := t.TempDir()
	mario := "RSSMRA85T10A562S"
	study := func(id, status, codes string) string {
		return `{"resourceType":"ImagingStudy","id":"` + id + `","status":"` + status + `","subject":{"reference":"Patient/p1"},"started":"2022-02-03T09:22:05+02:00","procedureCode":[` + codes + `]}` + "\n"
	}
	const xray = `{"coding":[{"system":"urn:oid:2.16.840.1.113883.6.104","code":"873"},{"system":"http://loinc.org","code":"36554-4"}]}`
	writeFile(t, in, "ImagingStudy.ndjson",
		study("s1", "available", `{"text":"no code"},`+xray)+
			study("s2", "registered", xray)+
			study("s3", "available", ""))
	writeFile(t, in, "Patient.ndjson", `{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"`+mario+`"}],"gender":"male","birthDate":"1985-12-10"}`+"\n")
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	got := queryStrings(t, db, "SELECT pid::VARCHAR, code_system, code, performed_date::VARCHAR FROM "+table(dir, "procedure"))
	if diff := cmp.Diff([]string{pidOf(t, ps, mario) + "|icd9cm|87.3|2022-02-03"}, got); diff != "" {
		t.Errorf("procedure (-want +got):\n%s", diff)
	}
	why := map[string]int64{}
	for _, f := range man.Batches[0].Inputs {
		for r, n := range f.IgnoredWhy {
			why[r] += n
		}
	}
	if why["imaging study not performed (status registered)"] != 1 || why["imaging study without a procedure code"] != 1 {
		t.Errorf("ignored: %v", why)
	}
}
