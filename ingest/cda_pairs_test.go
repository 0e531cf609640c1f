package ingest_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ingest"
)

// knownDiff is one expected difference between the canonical rows of a pair: rows only
// the CDA dataset has, rows only the FHIR dataset has, and why. Rows render every
// column as text, the pid as the name of its patient ("patient" in a pair that names
// different patients) and re-keyed ids as "=" when the other dataset has the same.
type knownDiff struct {
	table     string
	cda, fhir []string
	why       string
}

type cdaPair struct {
	name string
	// otherPatient, when set, says why the pair names two different patients: rows are
	// then compared without their pid.
	otherPatient string
	diffs        []knownDiff
}

// "FHIR reader:" marks a gap of fhir.go on a field the Gateway's conversion does carry:
// fixing it there removes the entries.
var cdaPairs = []cdaPair{
	{name: "LAB"},
	{name: "CERT_VACC", diffs: []knownDiff{}},
	{name: "SING_VACC", diffs: []knownDiff{}},
	{name: "LDO", diffs: []knownDiff{
		{table: "medication", fhir: []string{"GTW|request|035606033|B01AX05|2022-03-01"}, why: "the Gateway derives a second resource, a MedicationRequest dated by the DIR participant, from the one in-stay administration"},
	}},
	{name: "PSS", otherPatient: "the CDA names RSSMRA22A01A399Z, the FHIR bundle GTWGWY82B42G920M (with the same sex and birth date)", diffs: []knownDiff{
		{table: "procedure", fhir: []string{"patient|loinc|68692-3|2022-07-09"}, why: "the plan of care's requested procedure (moodCode RQO) becomes a FHIR Procedure dated by its planned time; only performed procedures (EVN) are procedures"},
		{table: "observation", cda: []string{"patient|social-history|11295-3|5.0|{drink}/d|2022-05-20"}, fhir: []string{"patient|social-history|74013-4|5.0|{drink}/d|2022-05-20"}, why: "the documents disagree on the code: the Gateway recodes the alcohol-use observation 11295-3 as 74013-4"},
		{table: "observation", cda: []string{"patient|vital-signs|8302-2|170.0|cm|2022-05-09"}, why: "the Gateway's FHIR leaves out the vital-signs section's standalone height observation"},
	}},
	{name: "RAD", diffs: []knownDiff{
		{table: "procedure", cda: []string{"GTW|icd9cm|87.3|2022-02-03"}, why: "the Gateway's FHIR leaves out the exam performed (section 55111-9's act): its ImagingStudy has no procedureCode"},
	}},
	{name: "RAP", diffs: []knownDiff{
		{table: "lab_result", cda: []string{
			"PROVA|42032-3|3.0|NULL|NULL|2022-02-03",
			"PROVA|92830-9|10.0|NULL|NULL|2023-01-01",
			"PROVA|85351-5|5.0|g|NULL|2023-01-01",
			"PROVA|21892-5|5.0|g|NULL|2023-01-01",
		}, why: "the Gateway's FHIR leaves out the quantities measured in the diagnosis section's organizers"},
		{table: "diagnosis", cda: []string{"PROVA|icd9cm|191.0|140-239|diagnosis|2023-03-30"}, why: "the Gateway's FHIR leaves out the final-diagnosis section's (22637-3) Diagnosis observation; it keeps the reason-for-consult section's"},
	}},
	{name: "RSA", diffs: []knownDiff{}},
	{name: "VPS", diffs: []knownDiff{
		{table: "diagnosis", cda: []string{"GTW|icd9cm|162.3|140-239|diagnosis|2022-04-27"}, why: "the Gateway's FHIR leaves out the discharge note's (28574-2) Diagnosis observation"},
		{table: "diagnosis", fhir: []string{"GTW|loinc|11450-4|NULL|problem|NULL"}, why: "the Gateway makes a Condition coded with the section code of the empty problem-list section (11450-4): the document states no problem there"},
		{table: "procedure", cda: []string{"GTW|loinc|76645-1|2022-04-17"}, why: "the Gateway writes the intervention performed (section 62387-6's act, moodCode EVN) as a ServiceRequest, an order, which is no procedure"},
	}},
}

// Every pair of Gateway examples, CDA/X.xml and FHIR/X.json, ingested into two datasets
// with the same key, gives the same canonical rows, table by table, but for the
// differences listed for it. A difference not listed fails, and so does a listed one
// that no longer occurs, so the list stays true.
func TestCDAPairsMatchFHIR(t *testing.T) {
	gw := gateway(t)
	ps, _ := testKey(t)
	labels := map[string]string{}
	for cf, label := range map[string]string{"GTWGWY82B42G920M": "GTW", "RSSMRA22A01A399Z": "RSS", "PROVAX00X00X000Y": "PROVA"} {
		labels[pidOf(t, ps, cf)] = label
	}
	db := openDB(t)
	names := map[string]bool{}
	for _, pair := range cdaPairs {
		names[pair.name] = true
		t.Run(pair.name, func(t *testing.T) {
			cdaDir := filepath.Join(t.TempDir(), "cda")
			fhirDir := filepath.Join(t.TempDir(), "fhir")
			cdaMan := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: cdaDir, Inputs: []string{filepath.Join(gw, "CDA", pair.name+".xml")}})
			runIngest(t, ingest.Config{Pseudonymizer: ps, Out: fhirDir, Inputs: []string{filepath.Join(gw, "FHIR", pair.name+".json")}})
			assertReconciles(t, db, cdaDir, cdaMan)
			if in := cdaMan.Batches[0].Inputs[0]; in.Format != "cda-r2" || in.Quarantined != 0 {
				t.Fatalf("CDA input %+v", in)
			}
			listed := map[string][]knownDiff{}
			for _, d := range pair.diffs {
				if _, ok := ingest.TableByName(d.table); !ok {
					t.Fatalf("listed difference on unknown table %s", d.table)
				}
				listed[d.table] = append(listed[d.table], d)
			}
			if pair.otherPatient != "" {
				c := queryStrings(t, db, "SELECT pid::VARCHAR FROM "+table(cdaDir, "person"))
				f := queryStrings(t, db, "SELECT pid::VARCHAR FROM "+table(fhirDir, "person"))
				if slices.Equal(c, f) {
					t.Errorf("listed as naming different patients (%s), but both name %v", pair.otherPatient, c)
				}
			}
			for _, tb := range ingest.Tables {
				c, f := pairRows(t, db, tb, cdaDir, fhirDir, labels, pair.otherPatient != "")
				onlyC, onlyF := multisetDiff(c, f)
				for _, d := range listed[tb.Name] {
					var missing []string
					onlyC, missing = removeRows(onlyC, d.cda, missing)
					onlyF, missing = removeRows(onlyF, d.fhir, missing)
					if len(missing) > 0 {
						t.Errorf("%s: a listed difference no longer occurs (%s): %q", tb.Name, d.why, missing)
					}
				}
				if len(onlyC) > 0 || len(onlyF) > 0 {
					t.Errorf("%s: unlisted difference\n  only in CDA:  %q\n  only in FHIR: %q", tb.Name, onlyC, onlyF)
				}
			}
		})
	}
	// Every pair of the fixtures is compared.
	files, _ := filepath.Glob(filepath.Join(gw, "CDA", "*.xml"))
	if len(files) != 9 {
		t.Fatalf("%d CDA examples, want 9", len(files))
	}
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".xml"); !names[n] {
			t.Errorf("pair %s is not compared", n)
		}
	}
}

// pairRows renders a table of both datasets for comparison. A fact's link to its
// document (doc_key) is left out: the document table compares the documents themselves.
func pairRows(t *testing.T, db *sql.DB, tb ingest.Table, cdaDir, fhirDir string, labels map[string]string, anyPatient bool) (cda, fhir []string) {
	t.Helper()
	if ingest.IsFactTable(tb) {
		tb.Columns = tb.Columns[:len(tb.Columns)-1]
	}
	cols := make([]string, len(tb.Columns))
	for i, c := range tb.Columns {
		cols[i] = "coalesce(" + c.Name + "::VARCHAR, 'NULL')"
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM "
	read := func(dir string) [][]string {
		var out [][]string
		for _, r := range queryStrings(t, db, q+table(dir, tb.Name)) {
			out = append(out, strings.Split(r, "|"))
		}
		return out
	}
	c, f := read(cdaDir), read(fhirDir)
	// Re-keyed ids are opaque: what matters is whether both datasets have the same.
	shared := map[string]int{}
	for _, side := range [][][]string{c, f} {
		seen := map[string]bool{}
		for _, r := range side {
			for i, col := range tb.Columns {
				if col.Identifier && col.Name != "pid" && !seen[r[i]] {
					seen[r[i]] = true
					shared[r[i]]++
				}
			}
		}
	}
	render := func(rows [][]string) []string {
		var out []string
		for _, r := range rows {
			for i, col := range tb.Columns {
				switch {
				case col.Name == "pid" && anyPatient:
					r[i] = "patient"
				case col.Name == "pid":
					if l, ok := labels[r[i]]; ok {
						r[i] = l
					}
				case col.Identifier && shared[r[i]] == 2:
					r[i] = "="
				case col.Identifier && len(r[i]) > 8:
					r[i] = r[i][:8]
				}
			}
			out = append(out, strings.Join(r, "|"))
		}
		slices.Sort(out)
		return out
	}
	return render(c), render(f)
}

// multisetDiff returns the rows of a not in b and of b not in a, counting repeats.
func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, r := range a {
		count[r]++
	}
	for _, r := range b {
		count[r]--
	}
	for _, r := range a {
		if count[r] > 0 {
			onlyA = append(onlyA, r)
			count[r]--
		}
	}
	for _, r := range b {
		if count[r] < 0 {
			onlyB = append(onlyB, r)
			count[r]++
		}
	}
	return onlyA, onlyB
}

// removeRows removes one occurrence of each of rows from have; rows it cannot find are
// added to missing.
func removeRows(have, rows, missing []string) ([]string, []string) {
	for _, r := range rows {
		if i := slices.Index(have, r); i >= 0 {
			have = slices.Delete(have, i, i+1)
		} else {
			missing = append(missing, r)
		}
	}
	return have, missing
}
