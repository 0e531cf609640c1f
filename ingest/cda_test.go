package ingest_test

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
)

func readFixture(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gateway(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The nine Gateway CDA examples ingest with nothing quarantined, from a directory and
// from a zip of them alike, and yield the persons, documents and facts they carry.
func TestGatewayCDAExamples(t *testing.T) {
	ps, _ := testKey(t)
	dir, _, db := ingestGateway(t, ps, "CDA", "cda-r2")
	gtw := pidOf(t, ps, "GTWGWY82B42G920M")
	rss := pidOf(t, ps, "RSSMRA22A01A399Z")
	prova := pidOf(t, ps, "PROVAX00X00X000Y")
	// One row per person, from the most recent document: PSS (2022-05-10) for RSS here
	// (the CDA of the PSS names RSSMRA22A01A399Z), VPS (2022-04-18) for GTW.
	got := queryStrings(t, db, "SELECT pid::VARCHAR, birth_year, sex, coalesce(region, '-'), coalesce(asl, '-'), coalesce(province, '-') FROM "+table(dir, "person"))
	want := sortedLines(
		gtw+"|1960|M|120|-|058",
		rss+"|1990|F|120|-|058",
		prova+"|1993|M|120|-|058",
	)
	if diff := cmp.Diff(want, sortedLines(got...)); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}
	got = queryStrings(t, db, "SELECT doc_type, doc_date::VARCHAR, version FROM "+table(dir, "document"))
	if diff := cmp.Diff(sortedLines(gatewayDocuments...), sortedLines(got...)); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
	got = queryStrings(t, db, "SELECT pid::VARCHAR, triage, outcome, visit_date::VARCHAR FROM "+table(dir, "er_visit"))
	if diff := cmp.Diff([]string{gtw + "|R|1|2022-03-30"}, got); diff != "" {
		t.Errorf("er_visit (-want +got):\n%s", diff)
	}
	assertSortedByPID(t, db, dir)

	// A zip of the same documents gives the same tables; positions name the entry.
	zdir := filepath.Join(t.TempDir(), "zdata")
	zipPath := filepath.Join(t.TempDir(), "cda.zip")
	files, _ := filepath.Glob(filepath.Join(gateway(t), "CDA", "*.xml"))
	entries := map[string]string{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		entries["docs/"+filepath.Base(f)] = string(b)
	}
	writeZip(t, zipPath, entries)
	zman := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: zdir, Inputs: []string{zipPath}})
	assertReconciles(t, db, zdir, zman)
	if in := zman.Batches[0].Inputs; len(in) != 1 || in[0].Format != "cda-r2-zip" || in[0].Quarantined != 0 {
		t.Fatalf("zip input %+v", in)
	}
	for _, tb := range ingest.Tables {
		q := "SELECT * FROM "
		a := queryStrings(t, db, q+table(dir, tb.Name))
		z := queryStrings(t, db, q+table(zdir, tb.Name))
		if diff := cmp.Diff(sortedLines(a...), sortedLines(z...)); diff != "" {
			t.Errorf("%s from the zip differs from the directory (-dir +zip):\n%s", tb.Name, diff)
		}
	}
}

func writeZip(t *testing.T, path string, entries map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, entries[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A later version of a document (same setId, higher versionNumber) replaces the earlier
// one and its facts, whichever arrives first.
func TestCDANewVersionReplacesOld(t *testing.T) {
	v1 := readFixture(t, "CDA/LAB.xml")
	v2 := strings.Replace(v1, `<versionNumber value="1"/>`, `<versionNumber value="2"/>`, 1)
	v2 = strings.Replace(v2, `extension="030702.TSTSMN63A01F205H.20220325112426.OQlvTq1J" assigningAuthorityName="Regione Lazio"/>`+"\t\n", `extension="030702.TSTSMN63A01F205H.20220401000000.V2V2V2V2" assigningAuthorityName="Regione Lazio"/>`+"\t\n", 1)
	v2 = strings.Replace(v2, `<value xsi:type="PQ" value="16.00" unit="mg/L"/>`, `<value xsi:type="PQ" value="18.5" unit="mg/L"/>`, 1)
	if v2 == v1 || !strings.Contains(v2, "V2V2V2V2") || !strings.Contains(v2, `value="18.5"`) {
		t.Fatal("fixture edit did not apply")
	}
	in := t.TempDir()
	writeFile(t, in, "1-LAB-v2.xml", v2)
	writeFile(t, in, "2-LAB-v1.xml", v1) // the older version arrives later
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{in}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	assertOnlyVersion2(t, db, dir)
	if c := man.Tables["lab_result"]; c.Superseded != 1 {
		t.Errorf("lab_result counts %+v, want 1 superseded", c)
	}
}

// Bad documents are quarantined as a whole, with file, line and a reason that never
// quotes them, and the rest of the batch goes on: truncated, wrong namespace, missing
// patient id, bad check letter, entity expansion, over-deep nesting, unknown document
// type, unsupported encoding, a document over the size limit (as a file and as a zip
// entry that decompresses past it) and an unreadable archive.
func TestCDAMalformedCorpus(t *testing.T) {
	lab := readFixture(t, "CDA/LAB.xml")
	const cf = "GTWGWY82B42G920M"
	bad := func(old, new string) string {
		if !strings.Contains(lab, old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(lab, old, new, 1)
	}
	lol := `<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>
`
	deep := `<ClinicalDocument xmlns="urn:hl7-org:v3">` + strings.Repeat("<component>", 300) + strings.Repeat("</component>", 300) + `</ClinicalDocument>`
	in := t.TempDir()
	docs := map[string]string{
		"good.xml":           lab,
		"truncated.xml":      lab[:len(lab)/2],
		"namespace.xml":      bad(`<ClinicalDocument xmlns="urn:hl7-org:v3"`, `<ClinicalDocument xmlns="urn:example:not-hl7"`),
		"no-patient-id.xml":  bad(`<id root="2.16.840.1.113883.2.9.4.3.2" extension="`+cf+`" assigningAuthorityName="MEF"/>`, ``),
		"check-letter.xml":   bad(`extension="`+cf+`"`, `extension="`+cf[:15]+`X"`),
		"lol.xml":            lol,
		"lol-nodtd.xml":      bad(`<title> REFERTO DI LABORATORIO</title>`, `<title>&lol9;</title>`),
		"deep.xml":           deep,
		"unknown-type.xml":   bad(`code="11502-2"	codeSystem`, `code="99999-9"	codeSystem`),
		"not-loinc-type.xml": bad(`code="11502-2"	codeSystem="2.16.840.1.113883.6.1"`, `code="11502-2"	codeSystem="2.16.840.1.113883.2.9.99"`),
		"text-type.xml":      bad(`code="11502-2"	codeSystem`, `code="Mario Rossi"	codeSystem`),
		// An OID of identifier shape (the fuzzer's 0000000000) is not quoted.
		"digits-type.xml":    bad(`code="11502-2"	codeSystem="2.16.840.1.113883.6.1"`, `code="11502-2"	codeSystem="0000000000"`),
		"encoding.xml":       `<?xml version="1.0" encoding="EBCDIC-CP-US"?>` + "\n" + lab,
		"latin1.xml":         `<?xml version="1.0" encoding="ISO-8859-1"?>` + "\n" + strings.Replace(lab, "Maura", "Ma\xf9ra", 1),
		"garbage.zip":        "PK\x03\x04 this is not a zip archive",
		"huge.xml":           "", // written below
		"bomb.zip":           "", // written below
		"notes.txt":          "not a document",
		"two-roots.xml":      lab + "\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>",
		"bad-date.xml":       bad(`<effectiveTime value="20220330112426+0100"/>`+"\n\t\t\t\t\t\t\t\t\t\t\t<value", `<effectiveTime value="20220230112426+0100"/>`+"\n\t\t\t\t\t\t\t\t\t\t\t<value"),
		"bad-lab-value.xml":  bad(`value="16.00"`, `value="sixteen"`),
		"not-cda-docs.zip":   "", // written below
		"zip-good-entry.zip": "", // written below
	}
	for name, content := range docs {
		if content != "" {
			writeFile(t, in, name, content)
		}
	}
	// Huge: a real header, then 65 MiB of comment.
	head := lab[:strings.Index(lab, "<realmCode")]
	var huge bytes.Buffer
	huge.WriteString(head)
	huge.WriteString("<!--")
	huge.Write(bytes.Repeat([]byte("x"), 65<<20))
	huge.WriteString("-->\n" + lab[strings.Index(lab, "<realmCode"):])
	if err := os.WriteFile(filepath.Join(in, "huge.xml"), huge.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	huge = bytes.Buffer{}
	// A zip whose one entry inflates past the limit (from a few hundred KiB).
	{
		f, err := os.Create(filepath.Join(in, "bomb.zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		w, _ := zw.Create("bomb.xml")
		io.WriteString(w, head+"<!--")
		zero := make([]byte, 1<<20)
		for range 65 {
			w.Write(zero)
		}
		zw.Close()
		f.Close()
	}
	writeZip(t, filepath.Join(in, "not-cda-docs.zip"), map[string]string{"readme.txt": "hello", "doc.xml": lab})
	writeZip(t, filepath.Join(in, "zip-good-entry.zip"), map[string]string{"a/" + cf + ".xml": lab})

	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{in}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	got := map[string][]string{}
	for _, q := range quarantineLines(t, dir, man) {
		file := q["file"][strings.LastIndex(q["file"], "/")+1:]
		got[file] = append(got[file], q["position"]+": "+q["reason"])
		for _, leak := range []string{cf, cf[:15] + "X", "lol", "EBCDIC", "example"} {
			if strings.Contains(q["reason"], leak) || strings.Contains(q["position"], leak) || strings.Contains(q["file"], cf) {
				t.Errorf("quarantine line quotes the input: %v", q)
			}
		}
	}
	for f := range got {
		slices.Sort(got[f])
	}
	// The first quarantined line of each: the patient's own, or the whole document's.
	want := map[string]string{
		"truncated.xml":      "malformed XML: truncated",
		"namespace.xml":      "not an HL7 CDA R2 document: the root element is not ClinicalDocument in namespace urn:hl7-org:v3",
		"no-patient-id.xml":  "patient identifier: no person identifier (found none)",
		"check-letter.xml":   "patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.4.3.2 A{6}9{2}A9{2}A9{3}A)",
		"lol.xml":            "DTD/entities not allowed",
		"lol-nodtd.xml":      "malformed XML: undefined entity (DTD/entities not allowed)",
		"deep.xml":           "XML nested deeper than 256 elements",
		"unknown-type.xml":   "unknown document type (ClinicalDocument/code 99999-9 is not an FSE document type)",
		"not-loinc-type.xml": "unknown document type (ClinicalDocument/code is not in LOINC but in 2.16.840.1.113883.2.9.99)",
		"text-type.xml":      "unknown document type (ClinicalDocument/code is not an FSE document type)",
		"digits-type.xml":    "unknown document type (ClinicalDocument/code is not in LOINC)",
		"encoding.xml":       "unsupported character encoding (UTF-8, UTF-16, ISO-8859-1, ISO-8859-15 and windows-1252 are read)",
		"garbage.zip":        "not a readable zip archive",
		"huge.xml":           "document larger than 64 MiB",
		"bomb.zip":           "document larger than 64 MiB",
		"two-roots.xml":      "more than one root element",
		"bad-date.xml":       "date: malformed date",
		"bad-lab-value.xml":  "value/@value is not a number",
		"not-cda-docs.zip":   "",
		"zip-good-entry.zip": "",
		"good.xml":           "",
		"latin1.xml":         "",
	}
	for file, reason := range want {
		lines := got[file]
		switch {
		case reason == "" && len(lines) > 0:
			t.Errorf("%s: quarantined %v, want nothing", file, lines)
		case reason == "":
		case len(lines) == 0:
			t.Errorf("%s: nothing quarantined, want %q", file, reason)
		case !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, ": "+reason) }):
			t.Errorf("%s: quarantined %v, want %q", file, lines, reason)
		}
		for _, l := range lines {
			if !strings.Contains(l, "line ") && !strings.HasPrefix(l, "document:") && !strings.HasPrefix(l, "archive:") && !strings.HasPrefix(l, "entry ") {
				t.Errorf("%s: position without a line: %q", file, l)
			}
		}
	}
	// A bad patient takes the document and its facts with it, each with its line.
	if diff := cmp.Diff([]string{
		"line 15: patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.4.3.2 A{6}9{2}A9{2}A9{3}A)",
		"line 2: patient quarantined",
		"line 360: patient quarantined",
	}, got["check-letter.xml"]); diff != "" {
		t.Errorf("check-letter.xml quarantine (-want +got):\n%s", diff)
	}
	if l := got["truncated.xml"]; len(l) != 1 || !strings.HasPrefix(l[0], fmt.Sprintf("line %d:", strings.Count(lab[:len(lab)/2], "\n")+1)) {
		t.Errorf("truncated.xml: %v, want the line where it ends", l)
	}
	// The good documents (a file, a Latin-1 file, a zip entry, the zip's one real
	// document) are all read in full: the bad ones stopped nothing. (They are the same
	// document, so three of the four are then superseded by the last read.)
	rows := map[string]int64{}
	for _, in := range man.Batches[0].Inputs {
		rows[in.Path[strings.LastIndex(in.Path, "/")+1:]] = in.Rows
		if strings.HasSuffix(in.Path, "notes.txt") && in.Skipped == "" {
			t.Errorf("notes.txt not skipped: %+v", in)
		}
	}
	for _, f := range []string{"good.xml", "latin1.xml", "zip-good-entry.zip", "not-cda-docs.zip"} {
		if rows[f] != 3 {
			t.Errorf("%s: %d rows, want 3 (person, document, lab result)", f, rows[f])
		}
	}
	// A zip entry that is not a CDA document (the readme) is counted as ignored.
	for _, in := range man.Batches[0].Inputs {
		if strings.HasSuffix(in.Path, "not-cda-docs.zip") && in.IgnoredWhy["zip entry is not an HL7 CDA R2 document"] != 1 {
			t.Errorf("not-cda-docs.zip: ignored %v, want the readme", in.IgnoredWhy)
		}
	}
	if c := man.Tables["lab_result"]; c.Written != 1 || c.Superseded < 3 {
		t.Errorf("lab_result counts %+v, want 1 written and the copies superseded", c)
	}
}

// No identifier of the CDA examples appears in any byte of DATA: every codice fiscale,
// name, street line, telecom value and document id (every text and attribute value of 8
// or more characters that is not a code) is searched for in the raw files and in every
// decoded value.
func TestNoIdentifierLeavesFromCDAExamples(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	runIngest(t, ingest.Config{Out: dir, Inputs: []string{filepath.Join(gateway(t), "CDA")}})
	out := outputText(t, openDB(t), dir)
	files, _ := filepath.Glob(filepath.Join(gateway(t), "CDA", "*.xml"))
	needles := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		collectCDASensitive(t, b, needles)
	}
	assertNeedlesAbsent(t, needles, []string{"GTWGWY82B42G920M", "PROVAX00X00X000Y", "RSSMRA22A01A399Z", "FCCGDI86H50I470K", "mailto:prova.provax@example.com", "Via Aurora 12", "Giuseppe", "030702.TSTSMN63A01F205H.20220325112426.OQlvTq1J", "030702.LCNLDE90L47H501Q.20220420112426.0009rty", "19930619", "2011008159"}, out)
}

// collectCDASensitive adds every character-data run and attribute value of 8 or more
// characters but codes, code systems and units (which output columns and the catalog's
// descriptions do hold).
func collectCDASensitive(t *testing.T, doc []byte, out map[string]bool) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			hasExt := slices.ContainsFunc(tok.Attr, func(a xml.Attr) bool { return a.Name.Local == "extension" })
			for _, a := range tok.Attr {
				switch {
				case a.Name.Local == "root" && hasExt:
					// The namespace of an identifier (a public OID), which reasons and
					// warnings name; a root alone is the identifier and stays a needle.
				case a.Name.Local == "code", a.Name.Local == "codeSystem", a.Name.Local == "codeSystemName", a.Name.Local == "unit", a.Name.Local == "schemaLocation":
				default:
					if len(a.Value) >= 8 {
						out[a.Value] = true
					}
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); len(s) >= 8 {
				out[s] = true
			}
		}
	}
}
