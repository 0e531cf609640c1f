package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// The facts of one document of each national type in the Ministry's corpus, written by
// hand from the XML (not by running the code under test): every row of every table, with
// its values, codes, dates and roles. "-" is NULL; a pid is its patient's.

// factColumns render each table's rows for the comparisons.
var factColumns = map[string]string{
	"person":       "pid::VARCHAR, birth_year, sex, coalesce(region, '-'), coalesce(asl, '-'), coalesce(province, '-')",
	"booking":      "pid::VARCHAR",
	"prescription": "pid::VARCHAR, service_code, coalesce(priority, '-'), coalesce(authored_date::VARCHAR, '-')",
	"document":     "pid::VARCHAR, doc_type, doc_date::VARCHAR, version",
	"diagnosis":    "pid::VARCHAR, code_system, code, role, coalesce(onset_date::VARCHAR, '-')",
	"procedure":    "pid::VARCHAR, code_system, code, coalesce(performed_date::VARCHAR, '-')",
	"lab_result":   "pid::VARCHAR, loinc, value, coalesce(unit, '-'), coalesce(interpretation, '-'), coalesce(effective_date::VARCHAR, '-')",
	"observation":  "pid::VARCHAR, category, code, value, coalesce(unit, '-'), coalesce(effective_date::VARCHAR, '-')",
	"medication":   "pid::VARCHAR, kind, coalesce(aic, '-'), coalesce(atc, '-'), coalesce(med_date::VARCHAR, '-')",
	"vaccination":  "pid::VARCHAR, coalesce(aic, '-'), coalesce(atc, '-'), coalesce(dose::VARCHAR, '-'), coalesce(vacc_date::VARCHAR, '-')",
	"er_visit":     "pid::VARCHAR, coalesce(triage, '-'), coalesce(outcome, '-'), coalesce(visit_date::VARCHAR, '-')",
}

// ingestFacts ingests the files into a new dataset and checks that its tables hold
// exactly want's rows (a table want does not name holds none) and that counts reconcile.
func ingestFacts(t *testing.T, ps *pseudonymize.Pseudonymizer, want map[string][]string, files ...string) *dataset.Manifest {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: files})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	for name := range want {
		if _, ok := ingest.TableByName(name); !ok {
			t.Fatalf("facts listed for unknown table %s", name)
		}
	}
	for _, tb := range ingest.Tables {
		q, ok := factColumns[tb.Name]
		if !ok {
			t.Fatalf("no rendering of table %s", tb.Name)
		}
		got := queryStrings(t, db, "SELECT "+q+" FROM "+table(dir, tb.Name))
		if diff := cmp.Diff(sortedLines(want[tb.Name]...), sortedLines(got...)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tb.Name, diff)
		}
	}
	return man
}

func containerXML(t testing.TB, name string) string {
	return filepath.Join(ministry(t), "gtw-test-container", "xml", name)
}

// The test container's discharge letter (LDO.xml): patient TSTSMN63A01F205H, male, born
// 1980, no residence address (the only addr is the birthplace's); the letter of
// 2022-04-17, version 1; the stay from 2022-03-17 to 2022-04-17 (encompassingEncounter);
// the admission diagnosis 300.01 (section 46241-6, observation 8646-2, undated: the
// admission) and the discharge diagnosis 428.0 (section 11535-2, observation 8651-2, the
// letter's only one and so the principal, undated: the discharge; its LOINC translation
// 67502-5 is not the code); the anamnesis problems 153.5 (from 2021-10-17) and 03.21
// (2011-02-17, a procedure-shaped code written under the diagnosis code system, kept as
// given), the complication 97835-3 (LOINC, 2022-03-20); the procedure 2341-6 (LOINC,
// 2022-03-20); the drug given during the stay (AIC 035606033, ATC B01AX05, from
// 2022-03-21) and the one prescribed at discharge (AIC 043348022, ATC C08CA01, a request
// dated by its participant time, 2022-04-26); no vital sign.
func TestMinistryLDOFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "TSTSMN63A01F205H")
	ingestFacts(t, ps, map[string][]string{
		"person":   {p + "|1980|M|-|-|-"},
		"document": {p + "|34105-7|2022-04-17|1"},
		"diagnosis": {
			p + "|icd9cm|300.01|admission|2022-03-17", p + "|icd9cm|428.0|principal|2022-04-17",
			p + "|icd9cm|153.5|problem|2021-10-17", p + "|icd9cm|03.21|problem|2011-02-17", p + "|loinc|97835-3|problem|2022-03-20",
		},
		"procedure":  {p + "|loinc|2341-6|2022-03-20"},
		"medication": {p + "|administration|035606033|B01AX05|2022-03-21", p + "|request|043348022|C08CA01|2022-04-26"},
	}, containerXML(t, "LDO.xml"))
}

// The dispatcher's laboratory report (LAB_v6_OK.xml): patient RSSMRA22A01A399Z, male,
// born 1993, resident in region 120, comune 058091 (province 058); the report of
// 2022-03-30, version 2 of its setId, replacing (relatedDocument RPLC) a version whose id
// no file of the corpus has: kept, and counted; one result, urine albumin 14957-5, 16.00
// mg/L, interpretation N, 2022-03-30. CDA-UTF-8.xml is the same document byte for byte
// but the last line: read together, the two are one version (the later read holds) with
// one result.
func TestMinistryLABFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "RSSMRA22A01A399Z")
	want := map[string][]string{
		"person":     {p + "|1993|M|120|-|058"},
		"document":   {p + "|11502-2|2022-03-30|2"},
		"lab_result": {p + "|14957-5|16|mg/L|N|2022-03-30"},
	}
	dispatcher := filepath.Join(ministry(t), "gtw-dispatcher")
	man := ingestFacts(t, ps, want, filepath.Join(dispatcher, "LAB_v6_OK.xml"))
	if w := man.Batches[0].Warnings["document_replaces_unknown_parent"]; w != 1 {
		t.Errorf("document_replaces_unknown_parent = %d, want 1", w)
	}
	man = ingestFacts(t, ps, want, filepath.Join(dispatcher, "LAB_v6_OK.xml"), filepath.Join(dispatcher, "CDA-UTF-8.xml"))
	if c := man.Tables["lab_result"]; c.Superseded != 1 {
		t.Errorf("lab_result %+v, want the copy's result superseded", c)
	}
}

// The test container's patient summary (PSS.xml): patient GTWGWY82B42G920M, female, born
// 1990, resident in 120 / 058091; the summary of 2022-05-10, version 1. Problem list: Q13.1
// (under the national problem code system 2.16.840.1.113883.2.9.77.22.11.17: "other"), from
// 2022-02-01. Family history (410.00, 369.2 and the relatives' ages) is about relatives:
// none. The drug in use: AIC 035606033 / ATC B01AX05 from 2022-02-01 (a statement); the one
// the plan of care requests (RQO), undated. The vaccination: AIC 035911015 / ATC N01AX10,
// dose 3, 2021-04-20. Lifestyle: alcoholic drinks per day 74013-4, 5 {drink}/d,
// 2022-05-20 (social history). Vital signs: systolic 8480-6 129 mm[Hg] and diastolic
// 8462-4 90 mm[Hg], 2022-05-10. Laboratory: creatinine 2161-8 1.1 mg/dL, N, 2022-04-12. The
// procedure 88.72 (written under the diagnosis code system, kept as given) from
// 2020-04-20; the plan's requested procedures (INT, RQO) are not procedures. The
// pregnancy count (an INT), the device (a supply) and the functional status are not mapped.
func TestMinistryPSSFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "GTWGWY82B42G920M")
	ingestFacts(t, ps, map[string][]string{
		"person":      {p + "|1990|F|120|-|058"},
		"document":    {p + "|60591-5|2022-05-10|1"},
		"diagnosis":   {p + "|other|Q13.1|problem|2022-02-01"},
		"procedure":   {p + "|icd9cm|88.72|2020-04-20"},
		"medication":  {p + "|statement|035606033|B01AX05|2022-02-01", p + "|request|035606033|B01AX05|-"},
		"vaccination": {p + "|035911015|N01AX10|3|2021-04-20"},
		"observation": {
			p + "|social-history|74013-4|5|{drink}/d|2022-05-20",
			p + "|vital-signs|8480-6|129|mm[Hg]|2022-05-10",
			p + "|vital-signs|8462-4|90|mm[Hg]|2022-05-10",
		},
		"lab_result": {p + "|2161-8|1.1|mg/dL|N|2022-04-12"},
	}, containerXML(t, "PSS.xml"))
}

// The test container's radiology report (RAD.xml): patient GTWGWY82B42G920M (beside a
// hospital id, dropped), male, born 1993, resident in 120 / 058091; the report of
// 2022-03-30, version 1. The clinical question's diagnosis 770.0 (observation 29308-4,
// undated: the report's date; its local translation is not the code); the history's
// problem 60975-0 (LOINC) from 2022-03-30; the mother's history is a relative's; the
// complication has no code. The exam performed (section 55111-9: an act coded 87.3 under
// the diagnoses' ICD-9-CM root, kept as given) of 2022-02-03; the DICOM catalogue's acts
// (study, series) are not procedures.
func TestMinistryRADFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "GTWGWY82B42G920M")
	ingestFacts(t, ps, map[string][]string{
		"person":    {p + "|1993|M|120|-|058"},
		"document":  {p + "|68604-8|2022-03-30|1"},
		"diagnosis": {p + "|icd9cm|770.0|diagnosis|2022-03-30", p + "|loinc|60975-0|problem|2022-03-30"},
		"procedure": {p + "|icd9cm|87.3|2022-02-03"},
	}, containerXML(t, "RAD.xml"))
}

// The validator's specialist report sample (schematronRSA/OK, v.1.2), with its test
// codice fiscale's check letter corrected (RSSGDU80H23C467G has the wrong one; the
// corpus quarantines it for that) and nothing else changed: male, born 1960, resident in
// 120 / 058091, the code under the misprinted MEF root (read, with the counted warning);
// the report of 2022-05-09, version 2, replacing a version no file has (counted). The
// reason for the visit 2512 = 251.2 (29298-7) and the diagnosis 79021 = 790.21 (29308-4),
// both undated: the report's date; the history's problem 60975-0 from 2022-03-30; the
// mother's history is a relative's. The service performed: procedure 012311B under the
// Lazio catalogue ("other"), 2022-05-09. The drug in use (AIC 023993013 / ATC C03CA01, a
// statement, undated) and the one advised (PRP: a request, undated; ATC C02LA01).
func TestMinistryRSAFacts(t *testing.T) {
	src := filepath.Join(ministry(t), "gtw-validator", "schematronRSA", "OK", "CDA2_Referto_Specialistica_Ambulatoriale_v.1.2.xml")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fixed := cf(t, "RSSGDU80H23C467")
	if fixed == "RSSGDU80H23C467G" || strings.Count(string(b), "RSSGDU80H23C467G") != 1 {
		t.Fatal("the sample's codice fiscale is not what this test corrects")
	}
	in := writeFile(t, t.TempDir(), "RSA.xml", strings.Replace(string(b), "RSSGDU80H23C467G", fixed, 1))
	ps, _ := testKey(t)
	p := pidOf(t, ps, fixed)
	man := ingestFacts(t, ps, map[string][]string{
		"person":   {p + "|1960|M|120|-|058"},
		"document": {p + "|11488-4|2022-05-09|2"},
		"diagnosis": {
			p + "|icd9cm|251.2|reason|2022-05-09", p + "|icd9cm|790.21|diagnosis|2022-05-09",
			p + "|loinc|60975-0|problem|2022-03-30",
		},
		"procedure":  {p + "|other|012311B|2022-05-09"},
		"medication": {p + "|statement|023993013|C03CA01|-", p + "|request|023993013|C02LA01|-"},
	}, in)
	for w, n := range map[string]int64{"identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.2.4.3.2": 1, "document_replaces_unknown_parent": 1} {
		if got := man.Batches[0].Warnings[w]; got != n {
			t.Errorf("warning %s = %d, want %d", w, got, n)
		}
	}
}

// The test container's ER report (VPS.xml): patient GTWGWY82B42G920M, male, born 1960,
// resident in 120 / 058091; the report of 2022-04-18, version 1; the visit from
// 2022-03-30 (encompassingEncounter), triage R (the triage section), outcome 1 (the
// discharge's 11302-7). Diagnoses: the history's problem 153.5 from 2022-04-10, the
// complication 97835-3 (LOINC) from 2017-01-01, the discharge's diagnosis 162.3 (29308-4)
// of 2022-04-27; the reason for the visit is free text; the mother's history is a
// relative's. The vital sign 86678-0 (its section: vital signs), 10 kg, undated. The drug
// given in the ER (AIC 035606033 / ATC B01AX05 from 2022-04-21: an administration) and the
// one prescribed at discharge (AIC 043348022 / ATC C08CA01, INT: a request dated by its
// participant, 2022-04-26). The intervention (section 62387-6: an act, the cardiac stress
// test 76645-1 of 2022-04-17) is a procedure; the tests' results are text.
func TestMinistryVPSFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "GTWGWY82B42G920M")
	ingestFacts(t, ps, map[string][]string{
		"person":   {p + "|1960|M|120|-|058"},
		"document": {p + "|59258-4|2022-04-18|1"},
		"diagnosis": {
			p + "|icd9cm|153.5|problem|2022-04-10", p + "|loinc|97835-3|problem|2017-01-01",
			p + "|icd9cm|162.3|diagnosis|2022-04-27",
		},
		"observation": {p + "|vital-signs|86678-0|10|kg|-"},
		"medication":  {p + "|administration|035606033|B01AX05|2022-04-21", p + "|request|043348022|C08CA01|2022-04-26"},
		"er_visit":    {p + "|R|1|2022-03-30"},
		"procedure":   {p + "|loinc|76645-1|2022-04-17"},
	}, containerXML(t, "VPS.xml"))
}

// The test container's vaccinations. SING_VACC.xml: patient GTWGWY82B42G920M, male, born
// 1993, resident in 120 / 058091; the record of 2022-02-10, version 1; one vaccination, AIC
// 035606033 / ATC B01AX05, dose 3, 2022-03-30 (its risk category, reaction and
// indications are about the vaccination, not facts of their own). CERT_VACC.xml: the
// certificate of 2022-02-10, version 2 of its setId replacing a version 1 no file has
// (counted), the same vaccination, and a second one whose statusCode is cancelled: not a
// vaccination.
func TestMinistryVaccinationFacts(t *testing.T) {
	ps, _ := testKey(t)
	p := pidOf(t, ps, "GTWGWY82B42G920M")
	ingestFacts(t, ps, map[string][]string{
		"person":      {p + "|1993|M|120|-|058"},
		"document":    {p + "|87273-9|2022-02-10|1"},
		"vaccination": {p + "|035606033|B01AX05|3|2022-03-30"},
	}, containerXML(t, "SING_VACC.xml"))
	man := ingestFacts(t, ps, map[string][]string{
		"person":      {p + "|1993|M|120|-|058"},
		"document":    {p + "|82593-5|2022-02-10|2"},
		"vaccination": {p + "|035606033|B01AX05|3|2022-03-30"},
	}, containerXML(t, "CERT_VACC.xml"))
	if w := man.Batches[0].Warnings["document_replaces_unknown_parent"]; w != 1 {
		t.Errorf("document_replaces_unknown_parent = %d, want 1", w)
	}
}
