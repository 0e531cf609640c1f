package ingest_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/velo-fse/velo/ingest"
)

// The nine Gateway example bundles ingest with nothing quarantined and yield the
// persons and clinical facts they carry.
func TestGatewayFHIRExamples(t *testing.T) {
	ps, keyID := testKey(t)
	dir, man, db := ingestGateway(t, ps, "FHIR", "fhir-bundle")
	if man.KeyID != keyID {
		t.Errorf("manifest key id %s, want %s", man.KeyID, keyID)
	}

	gtw := pidOf(t, ps, "GTWGWY82B42G920M")
	rss := pidOf(t, ps, "RSSMRA22A01A399Z")
	prova := pidOf(t, ps, "PROVAX00X00X000Y")

	// One row per person: the most recent document's facts (PSS, 2022-05-10, for the
	// person the seven other examples share).
	got := queryStrings(t, db, "SELECT pid::VARCHAR, birth_year, sex, region, asl, province FROM "+table(dir, "person")+" ORDER BY birth_year, pid")
	want := sortedLines(
		gtw+"|1990|F|120|NULL|058",
		rss+"|1993|M|120|NULL|058",
		prova+"|1993|M|120|NULL|058",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}

	got = queryStrings(t, db, "SELECT pid::VARCHAR, loinc, value, unit, interpretation, effective_date::VARCHAR FROM "+table(dir, "lab_result"))
	want = sortedLines(
		gtw+"|14957-5|16|mg/L|N|2022-03-30",
		gtw+"|2161-8|1.1|mg/dL|N|2022-04-12",
		prova+"|33738-6|3|mm|NULL|2023-02-03",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("lab_result (-want +got):\n%s", diff)
	}
	// Vital signs (the PSS's vital-signs section, the VPS's vital-signs panel) and social
	// history (the PSS's lifestyle section) are observations, not laboratory results.
	got = queryStrings(t, db, "SELECT pid::VARCHAR, category, code, value, unit, coalesce(effective_date::VARCHAR, 'NULL') FROM "+table(dir, "observation"))
	want = sortedLines(
		gtw+"|vital-signs|8480-6|129|mm[Hg]|2022-05-10",
		gtw+"|vital-signs|8462-4|90|mm[Hg]|2022-05-10",
		gtw+"|social-history|74013-4|5|{drink}/d|2022-05-20",
		gtw+"|vital-signs|70962-6|10|kg|NULL",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("observation (-want +got):\n%s", diff)
	}

	got = queryStrings(t, db, "SELECT code_system, code, role FROM "+table(dir, "diagnosis"))
	want = sortedLines(
		"icd9cm|03.21|problem", "icd9cm|153.5|problem", "icd9cm|153.5|problem", "other|Q13.1|problem",
		"loinc|60975-0|problem", "loinc|60975-0|problem", "loinc|60975-0|problem", "loinc|11450-4|problem",
		"loinc|97835-3|problem", "loinc|97835-3|problem", // LDO's and VPS's complications
		"icd9cm|300.01|admission", "icd9cm|428.0|principal", // LDO
		"icd9cm|790.21|diagnosis", "icd9cm|251.2|reason", // RSA
		"icd9cm|770.0|diagnosis", // RAD
		"icd9cm|251.2|diagnosis", // RAP
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("diagnosis (-want +got):\n%s", diff)
	}

	// CERT_VACC's second Immunization is not-done: not a vaccination. Doses come as
	// doseNumberString in the Gateway examples.
	got = queryStrings(t, db, "SELECT pid::VARCHAR, aic, atc, dose, vacc_date::VARCHAR FROM "+table(dir, "vaccination"))
	want = sortedLines(
		rss+"|035606033|B01AX05|3|2022-03-30",
		gtw+"|035911015|N01AX10|3|2021-04-20",
		gtw+"|035606033|B01AX05|3|2022-03-30",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("vaccination (-want +got):\n%s", diff)
	}

	got = queryStrings(t, db, "SELECT doc_type, doc_date::VARCHAR, version FROM "+table(dir, "document"))
	if diff := cmp.Diff(sortedLines(gatewayDocuments...), sortedLines(got...)); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
	if n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, "medication")+" WHERE atc IS NOT NULL OR aic IS NOT NULL"); n[0] == "0" {
		t.Errorf("no coded medication ingested")
	}
	assertSortedByPID(t, db, dir)
}

// gatewayDocuments are the nine Gateway examples' documents (type, date, version), the
// same whether they are read as FHIR or as CDA.
var gatewayDocuments = []string{
	"82593-5|2022-02-10|2", "11502-2|2022-03-30|1", "34105-7|2022-04-17|1",
	"60591-5|2022-05-10|1", "68604-8|2022-03-30|1", "11526-1|2023-03-30|2",
	"11488-4|2022-05-09|1", "87273-9|2022-02-10|1", "59258-4|2022-04-18|1",
}

// assertSortedByPID checks every table of DATA is clustered by pid.
func assertSortedByPID(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	for _, tb := range ingest.Tables {
		rows := queryStrings(t, db, "SELECT pid::VARCHAR FROM "+table(dir, tb.Name))
		if !slices.IsSorted(rows) {
			t.Errorf("table %s is not sorted by pid", tb.Name)
		}
	}
}

func sortedLines(s ...string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// pid is written as 16 bytes with the Parquet UUID logical type, and those bytes are the
// HMAC of the canonical identifier: checked with an independent Parquet reader.
func TestPIDIsUUIDLogicalType(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(gateway(t), "FHIR", "CERT_VACC.json")}})
	f, err := os.Open(filepath.Join(dir, "person", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := pf.Schema().Lookup("pid")
	if !ok {
		t.Fatal("no pid column")
	}
	if lt := leaf.Node.Type().LogicalType(); lt == nil || lt.String() != (&format.UUIDType{}).String() {
		t.Fatalf("pid logical type = %v, want UUID", lt)
	}
	if leaf.Node.Type().Length() != 16 {
		t.Fatalf("pid length = %d, want 16", leaf.Node.Type().Length())
	}
	rows := make([]parquet.Row, 10)
	r := parquet.NewReader(pf)
	n, _ := r.ReadRows(rows)
	if n != 1 {
		t.Fatalf("person rows = %d, want 1", n)
	}
	id := pidOf(t, ps, "RSSMRA22A01A399Z")
	got := rows[0][leaf.ColumnIndex].ByteArray()
	want := strings.ReplaceAll(id, "-", "")
	if hexs := strings.ToLower(strings.TrimSpace(toHex(got))); hexs != want {
		t.Fatalf("pid bytes %s, want %s", hexs, want)
	}
}

func toHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// No identifier of the inputs appears in any byte of DATA: every string value of 8 or
// more characters that is not a code, a code system or an event date is searched for in
// the raw files and in every decoded value.
func TestNoIdentifierLeavesFromGatewayExamples(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	runIngest(t, ingest.Config{Out: dir, Inputs: []string{filepath.Join(gateway(t), "FHIR")}})
	out := outputText(t, openDB(t), dir)
	files, _ := filepath.Glob(filepath.Join(gateway(t), "FHIR", "*.json"))
	needles := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		collectSensitive(v, "", needles)
	}
	assertNeedlesAbsent(t, needles, []string{"GTWGWY82B42G920M", "PROVAX00X00X000Y", "prova.provax@example.com", "Via Aurora 12", "030702.TSTSMN63A01F205H.20220325112426.OQlvTq1J", "1993-06-19"}, out)
}

// assertNeedlesAbsent checks that none of the identifier-like input values is in out.
// The values in must have to be among the needles, or the test proves nothing. Short
// values (postcodes, first names) are shown absent by the schema instead.
func assertNeedlesAbsent(t *testing.T, needles map[string]bool, must []string, out []byte) {
	t.Helper()
	for _, m := range must {
		if !needles[m] {
			t.Fatalf("needle %q not collected", m)
		}
	}
	// Velo's own vocabulary (table and column names) is not an identifier even when a
	// narrative happens to use the same word ("medication").
	for _, tb := range ingest.Tables {
		delete(needles, tb.Name)
		for _, c := range tb.Columns {
			delete(needles, c.Name)
		}
	}
	for n := range needles {
		if bytes.Contains(out, []byte(n)) {
			t.Errorf("identifier-like input value of %d characters found in DATA (%.3s...)", len(n), n)
		}
	}
	assertNoSensitiveColumns(t)
}

// eventDateKeys hold dates of events, which Velo keeps at day precision by design.
var eventDateKeys = map[string]bool{
	"effectiveDateTime": true, "onsetDateTime": true, "recordedDate": true, "authoredOn": true,
	"occurrenceDateTime": true, "date": true, "start": true, "end": true, "performedDateTime": true,
	"lastUpdated": true, "issued": true, "time": true, "dateAsserted": true, "effectiveInstant": true,
	"expirationDate": true, // a drug batch's expiry
}

func collectSensitive(v any, key string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			collectSensitive(x, k, out)
		}
	case []any:
		for _, x := range v {
			collectSensitive(x, key, out)
		}
	case string:
		switch {
		case key == "code" || key == "system" || key == "url" || key == "resourceType" || key == "unit" || key == "status":
		case eventDateKeys[key]:
		case len(v) >= 8:
			out[v] = true
		}
	}
}

func assertNoSensitiveColumns(t *testing.T) {
	t.Helper()
	banned := []string{"name", "family", "given", "telecom", "phone", "email", "address", "line", "street", "postal", "postcode", "cap", "birth_date", "birthdate", "comune", "text", "narrative", "cf", "codice_fiscale"}
	for _, tb := range ingest.Tables {
		for _, c := range tb.Columns {
			if slices.Contains(banned, c.Name) {
				t.Errorf("table %s has a column %s", tb.Name, c.Name)
			}
		}
	}
}
