package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/encoding/charmap"

	"github.com/velo-fse/velo/ingest"
)

// allRows renders every table of a dataset, for comparing two datasets.
func allRows(t *testing.T, dir string) map[string][]string {
	t.Helper()
	db := openDB(t)
	out := map[string][]string{}
	for _, tb := range ingest.Tables {
		out[tb.Name] = sortedLines(queryStrings(t, db, "SELECT * FROM "+table(dir, tb.Name))...)
	}
	return out
}

// ingestOne ingests files into a new dataset, checks each was read as a CDA with nothing
// quarantined and some rows, and returns the dataset's rows.
func ingestReadCDA(t *testing.T, files ...string) map[string][]string {
	t.Helper()
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: files})
	assertReconciles(t, openDB(t), dir, man)
	for _, in := range man.Batches[0].Inputs {
		if in.Format != "cda-r2" && in.Format != "cda-r2-zip" || in.Quarantined != 0 || in.Rows == 0 || in.Skipped != "" {
			t.Errorf("%s not read: %+v", in.Path, in)
		}
	}
	return allRows(t, dir)
}

// The dispatcher's UTF-16 documents (little- and big-endian, with a byte order mark)
// are the UTF-8 document transcoded: they give the same rows, from a file and from a
// zip entry alike. They used to be skipped as "no known format".
func TestCDAUTF16(t *testing.T) {
	utf8Rows := ingestReadCDA(t, filepath.Join(ministry(t), "gtw-dispatcher", "CDA-UTF-8.xml"))
	if len(utf8Rows["document"]) != 1 {
		t.Fatalf("UTF-8 document: %v", utf8Rows["document"])
	}
	for _, name := range []string{"CDA-utf-16-LE.xml", "CDA-utf-16-BE.xml"} {
		path := filepath.Join(ministry(t), "gtw-dispatcher", name)
		if diff := cmp.Diff(utf8Rows, ingestReadCDA(t, path)); diff != "" {
			t.Errorf("%s differs from the UTF-8 document (-utf8 +utf16):\n%s", name, diff)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		zipPath := filepath.Join(t.TempDir(), "docs.zip")
		writeZip(t, zipPath, map[string]string{name: string(b)})
		if diff := cmp.Diff(utf8Rows, ingestReadCDA(t, zipPath)); diff != "" {
			t.Errorf("%s in a zip differs from the UTF-8 document (-utf8 +utf16):\n%s", name, diff)
		}
		// Without its byte order mark, by its NUL-padded '<'.
		noBOM := filepath.Join(t.TempDir(), "nobom-"+name)
		if err := os.WriteFile(noBOM, b[2:], 0o644); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(utf8Rows, ingestReadCDA(t, noBOM)); diff != "" {
			t.Errorf("%s without BOM differs from the UTF-8 document (-utf8 +utf16):\n%s", name, diff)
		}
	}
}

// A CDA that declares ISO-8859-1, ISO-8859-15 or windows-1252 is transcoded: the same
// rows as the UTF-8 original, whose narrative has accented letters and typographic
// quotes (bytes that are not UTF-8 in those encodings).
func TestCDADeclared8BitEncodings(t *testing.T) {
	orig := readFixture(t, "CDA/LAB.xml")
	body := orig[strings.Index(orig, "<ClinicalDocument"):]
	body = strings.Replace(body, `displayName="Referto di laboratorio"`, `displayName="Referto d’analisi è più €"`, 1)
	if !strings.Contains(body, "’") {
		t.Fatal("fixture edit did not apply")
	}
	want := ingestReadCDA(t, writeFile(t, t.TempDir(), "utf8.xml", body))
	for label, cm := range map[string]*charmap.Charmap{"ISO-8859-1": charmap.ISO8859_1, "windows-1252": charmap.Windows1252, "ISO-8859-15": charmap.ISO8859_15} {
		text := body
		if label != "windows-1252" {
			text = strings.NewReplacer("’", "'", "€", "E").Replace(body) // not in Latin-1
		}
		enc, err := cm.NewEncoder().String(`<?xml version="1.0" encoding="` + label + `"?>` + "\n" + text)
		if err != nil {
			t.Fatal(err)
		}
		if got := ingestReadCDA(t, writeFile(t, t.TempDir(), "doc.xml", enc)); !cmp.Equal(want, got) {
			t.Errorf("%s: %s", label, cmp.Diff(want, got))
		}
	}
}

// Encodings Velo does not read are quarantined with a reason that names the problem
// (never the declared label: the producer's text is not quoted).
func TestCDAEncodingRefused(t *testing.T) {
	body := readFixture(t, "CDA/LAB.xml")
	body = body[strings.Index(body, "<ClinicalDocument"):]
	latin1, _ := charmap.ISO8859_1.NewEncoder().String(strings.Replace(body, `displayName="Referto di laboratorio"`, `displayName="Referto è"`, 1))
	utf16, _ := os.ReadFile(filepath.Join(ministry(t), "gtw-dispatcher", "CDA-utf-16-LE.xml"))
	// A UTF-16 document whose declaration names another encoding.
	decl, _ := asciiUTF16LE(`<?xml version="1.0" encoding="ISO-8859-1"?>`)
	cases := map[string]struct{ content, reason string }{
		"shift-jis.xml":  {`<?xml version="1.0" encoding="Shift_JIS"?>` + "\n" + body, "unsupported character encoding (UTF-8, UTF-16, ISO-8859-1, ISO-8859-15 and windows-1252 are read)"},
		"undeclared.xml": {latin1, "malformed XML: invalid UTF-8 (and no other encoding declared)"},
		"odd-label.xml":  {`<?xml version="1.0" encoding="x y&#34;z"?>` + "\n" + body, "unsupported character encoding (UTF-8, UTF-16, ISO-8859-1, ISO-8859-15 and windows-1252 are read)"},
		"utf16-decl.xml": {string(utf16[:2]) + decl + string(utf16[2:]), "unsupported character encoding: a UTF-16 document declares another encoding"},
		"odd-utf16.xml":  {string(utf16[:len(utf16)-1]), "malformed UTF-16 (odd length)"},
	}
	in := t.TempDir()
	for name, c := range cases {
		writeFile(t, in, name, c.content)
	}
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}})
	assertReconciles(t, openDB(t), dir, man)
	got := map[string]string{}
	for _, l := range quarantineLines(t, dir, man) {
		got[filepath.Base(l["file"])] = l["reason"]
	}
	want := map[string]string{}
	for name, c := range cases {
		want[name] = c.reason
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quarantine reasons (-want +got):\n%s", diff)
	}
}

func asciiUTF16LE(s string) (string, error) {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return string(b), nil
}
