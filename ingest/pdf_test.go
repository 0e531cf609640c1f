package ingest_test

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/internal/pdftest"
)

// pdfAttachment is a file to embed in a generated PDF.
type pdfAttachment struct {
	name   string
	data   []byte
	flate  bool // compress the stream with FlateDecode
	afOnly bool // a PDF/A-3 associated file of the catalog (/AF), not in the EmbeddedFiles tree
}

// makePDF writes a PDF by hand: one page showing text, an Info dictionary naming it, and
// the attachments. Its cross-reference table is exact, so any conforming reader reads it.
func makePDF(text string, atts ...pdfAttachment) []byte {
	objs := []string{
		"", // the catalog, once the attachments' objects are numbered
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		pdfStream("", []byte("BT /F1 12 Tf 72 712 Td ("+text+") Tj ET")),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		"<< /Title (" + text + ") /Author (" + text + ") >>",
	}
	var tree, af []string
	for _, a := range atts {
		spec := len(objs) + 1
		objs = append(objs,
			fmt.Sprintf("<< /Type /Filespec /F (%s) /UF (%s) /AFRelationship /Source /EF << /F %d 0 R >> >>", a.name, a.name, spec+1))
		data, dict := a.data, "/Type /EmbeddedFile /Subtype /text#2Fxml"
		if a.flate {
			var buf bytes.Buffer
			zw := zlib.NewWriter(&buf)
			zw.Write(a.data)
			zw.Close()
			data, dict = buf.Bytes(), dict+" /Filter /FlateDecode"
		}
		objs = append(objs, pdfStream(dict, data))
		ref := fmt.Sprintf("%d 0 R", spec)
		if a.afOnly {
			af = append(af, ref)
		} else {
			tree = append(tree, fmt.Sprintf("(%s) %s", a.name, ref))
		}
	}
	objs[0] = "<< /Type /Catalog /Pages 2 0 R"
	if len(tree) > 0 {
		objs[0] += " /Names << /EmbeddedFiles << /Names [" + strings.Join(tree, " ") + "] >> >>"
	}
	if len(af) > 0 {
		objs[0] += " /AF [" + strings.Join(af, " ") + "]"
	}
	objs[0] += " >>"
	return pdftest.Write(objs, " /Info 6 0 R")
}

func pdfStream(dict string, data []byte) string {
	return fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data)
}

// encryptPDF encrypts a PDF with pdfcpu (AES-256), with an empty user password when
// user is "" (anyone may open it; the owner password restricts what they may do).
func encryptPDF(t *testing.T, pdf []byte, user string) []byte {
	t.Helper()
	api.DisableConfigDir()
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(pdf), &out, model.NewAESConfiguration(user, "owner-secret", 256)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// pdfFixtures are the Ministry's PDFs with an injected CDA: the Gateway dispatcher's
// (signed and unsigned) and the test container's (all PAdES-signed).
func pdfFixtures(t *testing.T) []string {
	t.Helper()
	var pdfs []string
	for _, sub := range []string{"gtw-dispatcher", filepath.Join("gtw-test-container", "pdf")} {
		p, _ := filepath.Glob(filepath.Join(ministry(t), sub, "*.pdf"))
		pdfs = append(pdfs, p...)
	}
	if len(pdfs) != 16 {
		t.Fatalf("found %d PDFs in %s, want the 16 of the Ministry's corpus", len(pdfs), ministry(t))
	}
	return pdfs
}

// extractAttachments is pdfcpu's own extraction (with its validation), independent of
// the reader under test.
func extractAttachments(t *testing.T, path string) []model.Attachment {
	t.Helper()
	api.DisableConfigDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aa, err := api.ExtractAttachmentsRaw(f, "", nil, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return aa
}

// Every PDF of the Ministry's corpus, signed or not, is read as the CDA it carries: the
// tables, counts and quarantine of ingesting the PDFs are those of ingesting their CDA
// attachments (extracted by pdfcpu's own tool) as files, but for the positions, which name
// the attachment. Before PDFs were read, every one of them was skipped as of no known format.
func TestPDFFixturesReadAsTheirCDA(t *testing.T) {
	ps, _ := testKey(t)
	pdfs := pdfFixtures(t)
	pdfIn, xmlIn := t.TempDir(), t.TempDir()
	attachment := map[string]string{} // PDF base name → its attachment's name
	for i, p := range pdfs {
		// The two folders share names (LAB.pdf): number them apart.
		base := fmt.Sprintf("%02d-%s", i, strings.TrimSuffix(filepath.Base(p), ".pdf"))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, pdfIn, base+".pdf", string(b))
		aa := extractAttachments(t, p)
		if len(aa) != 1 {
			t.Fatalf("%s has %d attachments, want 1", p, len(aa))
		}
		cda, err := io.ReadAll(aa[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, xmlIn, base+".xml", string(cda))
		attachment[base] = aa[0].FileName
	}
	pdfDir, xmlDir := filepath.Join(t.TempDir(), "pdf"), filepath.Join(t.TempDir(), "xml")
	pdfMan := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: pdfDir, Inputs: []string{pdfIn}})
	xmlMan := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: xmlDir, Inputs: []string{xmlIn}})
	db := openDB(t)
	assertReconciles(t, db, pdfDir, pdfMan)

	for _, in := range pdfMan.Batches[0].Inputs {
		if in.Format != "pdf-cda" || in.Skipped != "" || in.Records == 0 || len(in.SHA256) != 64 {
			t.Errorf("input %+v, want a PDF read for its CDA", in)
		}
	}
	if got := pdfMan.Tables["document"].Read; got != int64(len(pdfs)) {
		t.Errorf("%d document records read, want one per PDF (%d)", got, len(pdfs))
	}
	if diff := cmp.Diff(xmlMan.Tables, pdfMan.Tables); diff != "" {
		t.Errorf("table counts, CDA files (-) against PDFs (+):\n%s", diff)
	}
	for _, tb := range ingest.Tables {
		want := sortedLines(queryStrings(t, db, "SELECT * FROM "+table(xmlDir, tb.Name))...)
		got := sortedLines(queryStrings(t, db, "SELECT * FROM "+table(pdfDir, tb.Name))...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("table %s, CDA files (-) against PDFs (+):\n%s", tb.Name, diff)
		}
	}
	// All document types of the corpus come through.
	types := queryStrings(t, db, "SELECT DISTINCT doc_type FROM "+table(pdfDir, "document"))
	for _, want := range []string{"11502-2", "34105-7", "60591-5", "68604-8", "11488-4", "59258-4", "87273-9", "82593-5"} {
		if !slices.Contains(types, want) {
			t.Errorf("no document of type %s read from the PDFs (got %v)", want, types)
		}
	}
	// The quarantine names the PDF and, in the position, its attachment.
	norm := func(lines []map[string]string, ext string) []string {
		var out []string
		for _, l := range lines {
			base := strings.TrimSuffix(filepath.Base(l["file"]), ext)
			pos := l["position"]
			if ext == ".pdf" {
				prefix := "attachment " + attachment[base]
				if !strings.HasPrefix(pos, prefix) {
					t.Errorf("quarantine position %q of %s does not name the attachment (%q)", pos, l["file"], prefix)
				}
				pos = strings.TrimSpace(strings.TrimPrefix(pos, prefix))
			}
			out = append(out, strings.Join([]string{base, pos, l["table"], l["reason"]}, "|"))
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(norm(quarantineLines(t, xmlDir, xmlMan), ".xml"), norm(quarantineLines(t, pdfDir, pdfMan), ".pdf")); diff != "" {
		t.Errorf("quarantine, CDA files (-) against PDFs (+):\n%s", diff)
	}
}

// What is not a PDF with a readable CDA attachment is quarantined with a reason that says
// which it is, naming the PDF and the attachment; a PDF's other attachments are ignored,
// counted by reason; PDF/A-3 associated files and PDFs inside zip archives are read too.
func TestPDFEdgeCases(t *testing.T) {
	lab := []byte(readFixture(t, "CDA/LAB.xml"))
	cdaPDF := makePDF("Referto", pdfAttachment{name: "cda.xml", data: lab})
	readme := pdfAttachment{name: "readme.txt", data: []byte("istruzioni per il paziente")}
	in := t.TempDir()
	files := map[string][]byte{
		"no-attachment.pdf":   makePDF("Referto"),
		"readme-only.pdf":     makePDF("Referto", readme),
		"cda-and-readme.pdf":  makePDF("Referto", pdfAttachment{name: "cda.xml", data: lab, flate: true}, readme),
		"associated-file.pdf": makePDF("Referto", pdfAttachment{name: "cda.xml", data: lab, afOnly: true}),
		"encrypted.pdf":       encryptPDF(t, cdaPDF, "user-secret"),
		"owner-password.pdf":  encryptPDF(t, cdaPDF, ""),
		"garbage.pdf":         append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("not a pdf object "), 200)...),
		"truncated.pdf":       cdaPDF[:len(cdaPDF)/2],
		// A stream of 65 MiB of zeros, 65 KiB compressed: read up to the limit, no further.
		"bomb.pdf": makePDF("Referto", pdfAttachment{name: "cda.xml", data: make([]byte, 65<<20), flate: true}),
		// A producer names the attachment after the patient: positions mask it.
		"named.pdf": makePDF("Referto", pdfAttachment{name: "RSSMRA85T10A562S.xml", data: []byte(`<ClinicalDocument xmlns="urn:other"/>`)}),
	}
	for name, b := range files {
		writeFile(t, in, name, string(b))
	}
	writeZip(t, filepath.Join(in, "archive.zip"), map[string]string{"lab.pdf": string(cdaPDF)})
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Out: dir, Inputs: []string{in}})
	assertReconciles(t, openDB(t), dir, man)

	inputs := map[string]dataset.InputFile{}
	for _, f := range man.Batches[0].Inputs {
		inputs[filepath.Base(f.Path)] = f
	}
	quarantine := map[string][]string{}
	for _, l := range quarantineLines(t, dir, man) {
		quarantine[filepath.Base(l["file"])] = append(quarantine[filepath.Base(l["file"])], l["position"]+": "+l["reason"])
	}
	noCDA := "document: PDF carries no HL7 CDA R2 attachment (no embedded file is a ClinicalDocument)"
	encrypted := "document: encrypted PDF (PDF/A forbids encryption): its attachments are not read"
	unreadable := "document: not a readable PDF (damaged or truncated: its cross-reference table or objects cannot be parsed)"
	tests := []struct {
		file       string
		rows       bool // the CDA's rows were written
		ignored    int64
		quarantine []string
	}{
		{"no-attachment.pdf", false, 0, []string{noCDA}},
		{"readme-only.pdf", false, 1, []string{noCDA}},
		{"cda-and-readme.pdf", true, 1, nil},
		{"associated-file.pdf", true, 0, nil},
		{"encrypted.pdf", false, 0, []string{encrypted}},
		{"owner-password.pdf", false, 0, []string{encrypted}},
		{"garbage.pdf", false, 0, []string{unreadable}},
		{"bomb.pdf", false, 0, []string{"attachment cda.xml: PDF attachment larger than 64 MiB"}},
		{"archive.zip", true, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, ok := inputs[tt.file]
			if !ok {
				t.Fatalf("no manifest entry for %s", tt.file)
			}
			if f.Skipped != "" || (f.Rows > 0) != tt.rows || f.Ignored != tt.ignored {
				t.Errorf("read as %+v, want rows %v and %d ignored", f, tt.rows, tt.ignored)
			}
			if diff := cmp.Diff(tt.quarantine, quarantine[tt.file]); diff != "" {
				t.Errorf("quarantine (-want +got):\n%s", diff)
			}
		})
	}
	if f := inputs["cda-and-readme.pdf"]; f.IgnoredWhy["PDF attachment is not an HL7 CDA R2 document"] != 1 {
		t.Errorf("cda-and-readme.pdf: ignored %v, want the readme", f.IgnoredWhy)
	}
	// A truncated PDF gives nothing, and says why.
	if f := inputs["truncated.pdf"]; f.Rows != 0 || f.Quarantined == 0 {
		t.Errorf("truncated.pdf read as %+v, want quarantined", f)
	}
	// The invalid CDA attached under a patient's codice fiscale is quarantined, the
	// position naming the attachment with the code masked.
	q := quarantine["named.pdf"]
	if len(q) != 1 || !strings.HasPrefix(q[0], "attachment ") || !strings.Contains(q[0], ".xml") || strings.Contains(q[0], "RSSMRA85T10A562S") {
		t.Errorf("named.pdf quarantine %q, want the attachment named, its code masked", q)
	}
	if z := inputs["archive.zip"]; z.Format != "cda-r2-zip" || z.Rows != inputs["cda-and-readme.pdf"].Rows {
		t.Errorf("archive.zip read as %+v, want the PDF entry's CDA rows", z)
	}
}

// Reading PDFs leaves nothing in the user's home: pdfcpu's configuration directory, which
// it would create (with fonts and certificates) under the user's configuration folder, is
// disabled.
func TestPDFReadWritesNoConfiguration(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	in := t.TempDir()
	writeFile(t, in, "cda.pdf", string(makePDF("Referto", pdfAttachment{name: "cda.xml", data: []byte(readFixture(t, "CDA/LAB.xml"))})))
	man := runIngest(t, ingest.Config{Inputs: []string{in}})
	if man.Batches[0].Inputs[0].Rows == 0 {
		t.Fatalf("the PDF was not read: %+v", man.Batches[0].Inputs[0])
	}
	if model.ConfigPath != "disable" {
		t.Errorf("pdfcpu's configuration directory is %q, want it disabled", model.ConfigPath)
	}
	entries, _ := os.ReadDir(home)
	if len(entries) != 0 {
		t.Errorf("reading a PDF wrote %v into the home folder", entries)
	}
}

// pdfStrings are the literal strings of 8 or more characters in a PDF's page contents
// and Info dictionary: the PDF's own text, which Velo never reads.
var pdfStrings = regexp.MustCompile(`\(((?:[^()\\]|\\.){8,})\)`)

// No identifier of the PDFs — of their CDA attachments, nor of their own text and
// metadata — appears in any byte of DATA.
func TestNoIdentifierLeavesFromPDFs(t *testing.T) {
	in := t.TempDir()
	own := "Mario Rossi RSSMRA85T10A562S Via Roma 12 Milano"
	writeFile(t, in, "own-text.pdf", string(makePDF(own, pdfAttachment{name: "cda.xml", data: []byte(readFixture(t, "CDA/LAB.xml"))})))
	inputs := append([]string{in}, pdfFixtures(t)...)
	dir := filepath.Join(t.TempDir(), "data")
	runIngest(t, ingest.Config{Out: dir, Inputs: inputs})
	out := outputText(t, openDB(t), dir)

	needles := map[string]bool{own: true}
	collectCDASensitive(t, []byte(readFixture(t, "CDA/LAB.xml")), needles)
	for _, p := range inputs[1:] {
		for _, a := range extractAttachments(t, p) {
			b, err := io.ReadAll(a)
			if err != nil {
				t.Fatal(err)
			}
			collectCDASensitive(t, b, needles)
		}
		ctx, err := api.ReadContextFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for nr := 1; nr <= ctx.PageCount; nr++ {
			d, _, _, err := ctx.PageDict(nr, false)
			if err != nil {
				t.Fatal(err)
			}
			content, err := ctx.PageContent(d, nr)
			if err != nil {
				continue // a page without content
			}
			for _, m := range pdfStrings.FindAllSubmatch(content, -1) {
				needles[string(m[1])] = true
			}
		}
	}
	assertNeedlesAbsent(t, needles, []string{own, "RSSMRA22A01A399Z", "GTWGWY82B42G920M"}, out)
}
