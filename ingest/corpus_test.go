package ingest_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ingest"
)

// outcome is what ingest must make of one file of the Ministry's corpus: read (rows, no
// quarantine), or quarantined with the reason of its first quarantined record.
type corpusOutcome struct {
	format string
	reason string // "" for a file that is read
}

const (
	reasonBadCF    = "patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.4.3.2 A{6}9{2}A9{2}A9{3}A)"
	reasonBadCFIG  = "patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.2.4.3.2 A{6}9{2}A9{2}A9{3}A)"
	reasonBadCFIG2 = "patient identifier: codice fiscale check letter is wrong (found urn:oid:2.16.840.1.113883.2.9.2.4.3.2 A{6}9{2}A9{2}A9{3}A; urn:oid:2.16.840.1.113883.9.9.9.9.9.9 9{5}a{4}9)"
)

// corpusOutcomes is every file of the corpus and what must become of it. The validator's
// KO samples break schematron rules Velo does not need (realmCode, typeId, a
// confidentiality code's display name...): they are read when their data is readable.
// Most validator samples carry test codici fiscali whose check letter is wrong.
var corpusOutcomes = map[string]corpusOutcome{
	"gtw-dispatcher/CDA-UTF-8.xml":                {"cda-r2", ""},
	"gtw-dispatcher/CDA-utf-16-BE.xml":            {"cda-r2", ""},
	"gtw-dispatcher/CDA-utf-16-LE.xml":            {"cda-r2", ""},
	"gtw-dispatcher/CDA_OK_SIGNED.pdf":            {"pdf-cda", reasonBadCF},
	"gtw-dispatcher/LAB_OK.pdf":                   {"pdf-cda", ""},
	"gtw-dispatcher/LAB_v6_OK.xml":                {"cda-r2", ""},
	"gtw-dispatcher/LDO_OK.pdf":                   {"pdf-cda", ""},
	"gtw-dispatcher/RAD_OK.pdf":                   {"pdf-cda", ""},
	"gtw-dispatcher/RSA_OK.pdf":                   {"pdf-cda", ""},
	"gtw-dispatcher/SIGNED_PSS1.pdf":              {"pdf-cda", ""},
	"gtw-dispatcher/SIGNED_SING_VACC1.pdf":        {"pdf-cda", ""},
	"gtw-dispatcher/VPS_OK.pdf":                   {"pdf-cda", ""},
	"gtw-fhir-mapping/CDA2_LAB_ES1_complesso.xml": {"cda-r2", ""},
	// The codice fiscale under the NRE's OID: read, with the warning.
	"gtw-fhir-mapping/FHIR_Referto_di_Medicina_di_Laboratorio1.0.json": {"fhir-bundle", ""},
	// The patient's "codice fiscale" is a UUID.
	"gtw-fhir-mapping/RefertoDiLaboratorio.json":       {"fhir-bundle", "patient identifier: identifier is not a codice fiscale, STP/ENI or temporary code (found urn:oid:2.16.840.1.113883.2.9.4.3.2 9a9{2}a{2}9{2}-9a{3}-9a9a-a{2}9{2}-9a{2}9{2}a9a{2}9{2}a)"},
	"gtw-fhir-mapping/RefertoDiLaboratorioNonITI.json": {"fhir-bundle", ""},
	"gtw-fhir-mapping/mapping-engine-LAB.xml":          {"cda-r2", ""},
	"gtw-test-container/pdf/CERT_VACC.pdf":             {"pdf-cda", ""},
	"gtw-test-container/pdf/LAB.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/pdf/LDO.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/pdf/PSS.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/pdf/RAD.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/pdf/RSA.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/pdf/SING_VACC.pdf":             {"pdf-cda", ""},
	"gtw-test-container/pdf/VPS.pdf":                   {"pdf-cda", ""},
	"gtw-test-container/xml/CERT_VACC.xml":             {"cda-r2", ""},
	"gtw-test-container/xml/LDO.xml":                   {"cda-r2", ""},
	"gtw-test-container/xml/PSS.xml":                   {"cda-r2", ""},
	"gtw-test-container/xml/RAD.xml":                   {"cda-r2", ""},
	"gtw-test-container/xml/SING_VACC.xml":             {"cda-r2", ""},
	"gtw-test-container/xml/VPS.xml":                   {"cda-r2", ""},
	// A patient address with a comune but no region: read (it used to crash the run).
	"gtw-validator/cda.xml": {"cda-r2", ""},
	"gtw-validator/schematronFSE/KO/CDA2_Referto Medicina di Laboratorio Errore 12_13.xml":  {"cda-r2", reasonBadCF},
	"gtw-validator/schematronFSE/KO/CDA2_Referto Medicina di Laboratorio Errore 14.xml":     {"cda-r2", reasonBadCF},
	"gtw-validator/schematronFSE/OK/Esempio CDA2_Referto Medicina di Laboratorio v6_OK.xml": {"cda-r2", reasonBadCF},
	"gtw-validator/schematronLDO/KO/CDA2_LDO Errore 1-2.xml":                                {"cda-r2", reasonBadCF},
	"gtw-validator/schematronLDO/KO/CDA2_LDO Errore 10,15.xml":                              {"cda-r2", reasonBadCF},
	"gtw-validator/schematronLDO/OK/CDA2_Lettera_Dimissione_Ospedaliera_v2.2.xml":           {"cda-r2", reasonBadCF},
	"gtw-validator/schematronPSS/KO/CDA2_Profilo_Sanitario_Sintetico Errore 1-DIZ.xml":      {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronPSS/KO/CDA2_Profilo_Sanitario_Sintetico Errore 1.xml":          {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronPSS/OK/CDA2_Profilo_Sanitario_Sintetico_v1.2.xml":              {"cda-r2", reasonBadCFIG},
	// A valid codice fiscale under the root the guides' own example misprints: read,
	// with the counted warning (and for the vaccinations, a hospital id beside it).
	"gtw-validator/schematronRAD/KO/CDA2_Referto_Radiologia Errore 1-2.xml":                 {"cda-r2", ""},
	"gtw-validator/schematronRAD/KO/CDA2_Referto_Radiologia Errore 10-11.xml":               {"cda-r2", ""},
	"gtw-validator/schematronRAD/OK/CDA2_Referto_Radiologia_V2.5.xml":                       {"cda-r2", ""},
	"gtw-validator/schematronRSA/KO/CDA2_Referto_Specialistica_Ambulatoriale Errore 1.xml":  {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronRSA/KO/CDA2_Referto_Specialistica_Ambulatoriale Errore 10.xml": {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronRSA/OK/CDA2_Referto_Specialistica_Ambulatoriale_v.1.2.xml":     {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronSinVACC/KO/CDA2_Scheda_Singola_Vaccinazione Errore 1.xml":      {"cda-r2", ""},
	"gtw-validator/schematronSinVACC/KO/CDA2_Scheda_Singola_Vaccinazione Errore 10.xml":     {"cda-r2", ""},
	"gtw-validator/schematronSinVACC/OK/CDA2_Singola_Vaccinazione v1.3.xml":                 {"cda-r2", ""},
	"gtw-validator/schematronVACC/KO/CDA2_Certificato_Vaccinale Errore 1.xml":               {"cda-r2", ""},
	"gtw-validator/schematronVACC/KO/CDA2_Certificato_Vaccinale Errore 10.xml":              {"cda-r2", ""},
	"gtw-validator/schematronVACC/OK/CDA2_Certificato_Vaccinale v1.2.xml":                   {"cda-r2", ""},
	"gtw-validator/schematronVPS/KO/CDA2_Verbal_Pronto_Soccorso Errore 1-2.xml":             {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronVPS/KO/CDA2_Verbal_Pronto_Soccorso Errore 10.xml":              {"cda-r2", reasonBadCFIG},
	"gtw-validator/schematronVPS/OK/CDA2_Verbale_Pronto_Soccorso_v1.2.xml":                  {"cda-r2", ""},
}

// Every one of the 56 files of the Ministry's FSE Gateway test corpus, ingested in one
// run, is read into the tables or quarantined with a specific reason: never skipped,
// never a crash; the counts reconcile and no identifier reaches DATA.
func TestMinistryCorpus(t *testing.T) {
	var files []string
	err := filepath.WalkDir(ministry(t), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "README.md" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) != 56 || len(corpusOutcomes) != 56 {
		t.Fatalf("%d files in the corpus, %d outcomes listed; want 56", len(files), len(corpusOutcomes))
	}
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: files})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	assertNoWorkingFolder(t, dir)
	firstReason := map[string]string{}
	for _, q := range quarantineLines(t, dir, man) {
		rel := relCorpus(q["file"])
		if _, ok := firstReason[rel]; !ok {
			firstReason[rel] = q["reason"]
		}
		if q["position"] == "" || q["reason"] == "" {
			t.Errorf("quarantine line without a position or reason: %v", q)
		}
	}
	b := man.Batches[0]
	if len(b.Inputs) != 56 {
		t.Fatalf("%d inputs in the manifest, want 56", len(b.Inputs))
	}
	var read, quarantined int
	for _, in := range b.Inputs {
		rel := relCorpus(in.Path)
		want, ok := corpusOutcomes[rel]
		if !ok {
			t.Errorf("%s: no expected outcome listed", rel)
			continue
		}
		if in.Format != want.format || in.Skipped != "" {
			t.Errorf("%s: format %q skipped %q, want %q", rel, in.Format, in.Skipped, want.format)
		}
		switch {
		case want.reason == "" && (in.Rows == 0 || in.Quarantined != 0):
			t.Errorf("%s: want it read; rows %d, quarantined %d (%s)", rel, in.Rows, in.Quarantined, firstReason[rel])
		case want.reason != "" && (in.Rows != 0 || in.Quarantined == 0 || firstReason[rel] != want.reason):
			t.Errorf("%s: want it quarantined with\n  %q\ngot rows %d, quarantined %d, reason\n  %q", rel, want.reason, in.Rows, in.Quarantined, firstReason[rel])
		case want.reason == "":
			read++
		default:
			quarantined++
		}
	}
	if read+quarantined != 56 {
		t.Errorf("read %d + quarantined %d != 56", read, quarantined)
	}
	t.Logf("of 56 files: %d read, %d quarantined", read, quarantined)
	for w, n := range map[string]int64{
		"identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.2.4.3.2": 13,
		"identifier_unexpected_system urn:oid:2.16.840.1.113883.2.9.4.3.8":   1,
		"er_visit_outcome_not_in_code_list":                                  4,
		// Diagnoses coded XXX, [COD_DIAGNOSI] or Cod_Diagn1 under ICD-9-CM: the VPS and
		// RAD validator samples', the dispatcher's RAD and VPS PDFs' and cda.xml's
		// template placeholders.
		"diagnosis_code_not_icd9cm": 9,
		// Replacements (relatedDocument RPLC) of a document the corpus does not have, kept:
		// the dispatcher's LAB (CDA-UTF-8, its two UTF-16 copies and LAB_v6_OK, one
		// document: version 2 replacing an id no file has; the fhir-mapping LAB of the
		// same setId and version 1 is another patient's), the test container's
		// vaccination certificate and the validator's six vaccination samples (version 2
		// of a document replacing its version 1, which no file is; the certificate
		// sample whose setId was altered is not taken for a replacement of its two
		// copies: it shares their id). The mapping engine's LAB has its relatedDocument
		// commented out: it is read as before. The dispatcher's LAB, LDO and RSA PDFs and
		// the container's CERT_VACC.pdf carry such replacements too.
		"document_replaces_unknown_parent": 15,
	} {
		if b.Warnings[w] != n {
			t.Errorf("warning %q counted %d times, want %d", w, b.Warnings[w], n)
		}
	}
	// No identifier of the corpus's patients in any byte of DATA.
	out := string(outputText(t, db, dir))
	for _, cf := range []string{"TSTSMN63A01F205H", "SSSMNN75B01F257L", "RSSGDU80H23C467G", "PNCPLL99M22G999T", "99999htttt"} {
		if strings.Contains(out, cf) {
			t.Errorf("DATA holds an identifier of the corpus (%.4s...)", cf)
		}
	}
}

func relCorpus(path string) string {
	_, rel, _ := strings.Cut(filepath.ToSlash(path), "ministero-salute/")
	return rel
}
