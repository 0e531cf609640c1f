package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
)

// A laboratory result coded by LOINC's OID (as the Ministry's mapping engine writes it,
// urn:oid:2.16.840.1.113883.6.1) is a laboratory result: it used to be dropped, and the
// document typed by the same OID ignored.
func TestFHIRCodesByOID(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(ministry(t), "gtw-fhir-mapping", "FHIR_Referto_di_Medicina_di_Laboratorio1.0.json")}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	// The Observation has no subject: in a document it is about the document's subject.
	person := queryStrings(t, db, "SELECT pid::VARCHAR FROM "+table(dir, "person"))
	if len(person) != 1 {
		t.Fatalf("persons %v", person)
	}
	cf := person[0]
	got := queryStrings(t, db, "SELECT pid::VARCHAR, loinc, value, unit, coalesce(interpretation, '-'), effective_date::VARCHAR FROM "+table(dir, "lab_result"))
	if diff := cmp.Diff([]string{cf + "|14957-5|16|mg/L|N|2022-03-22"}, got); diff != "" {
		t.Errorf("lab_result (-want +got):\n%s", diff)
	}
	got = queryStrings(t, db, "SELECT doc_type, doc_date::VARCHAR, version FROM "+table(dir, "document"))
	if diff := cmp.Diff([]string{"11502-2|2022-03-22|1"}, got); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
}

// ICD-9-CM codes written without their dot (4280, as the validator's LDO sample writes
// them) are the same codes as the dotted ones (428.0): the diagnosis table holds one form.
func TestICD9CMOneForm(t *testing.T) {
	ldo := string(mustRead(t, filepath.Join(ministry(t), "gtw-test-container", "xml", "LDO.xml")))
	undotted := strings.NewReplacer(`code="428.0"`, `code="4280"`, `code="300.01"`, `code="30001"`, `code="153.5"`, `code="1535"`).Replace(ldo)
	if undotted == ldo {
		t.Fatal("fixture edit did not apply")
	}
	dotted := ingestReadCDA(t, writeFile(t, t.TempDir(), "ldo.xml", ldo))
	plain := ingestReadCDA(t, writeFile(t, t.TempDir(), "ldo.xml", undotted))
	if diff := cmp.Diff(dotted["diagnosis"], plain["diagnosis"]); diff != "" {
		t.Errorf("diagnosis (-dotted +undotted):\n%s", diff)
	}
	if !strings.Contains(strings.Join(plain["diagnosis"], "\n"), "|153.5|") {
		t.Errorf("no 153.5 diagnosis: %v", plain["diagnosis"])
	}
}

// A triage or outcome code outside the national list (the validator's VPS sample keeps
// the template's XXX) is not kept: the visit is, with the warning counted.
func TestERVisitCodeList(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(ministry(t), "gtw-validator", "schematronVPS", "OK", "CDA2_Verbale_Pronto_Soccorso_v1.2.xml")}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	got := queryStrings(t, db, "SELECT coalesce(triage, '-'), coalesce(outcome, '-'), visit_date::VARCHAR FROM "+table(dir, "er_visit"))
	if diff := cmp.Diff([]string{"R|-|2022-03-30"}, got); diff != "" {
		t.Errorf("er_visit (-want +got):\n%s", diff)
	}
	w := man.Batches[0].Warnings
	if w["er_visit_triage_not_in_code_list"] != 0 || w["er_visit_outcome_not_in_code_list"] != 1 {
		t.Errorf("warnings %v", w)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
