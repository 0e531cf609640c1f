package ingest

import "github.com/velo-fse/velo/fse"

// Rules shared by the CDA and FHIR mappings of diagnoses and observations.

// reasonNotICD9CM is why a diagnosis coded under ICD-9-CM with a code of no ICD-9-CM shape
// (a template's placeholder: XXX, [COD_DIAGNOSI], Cod_Diagn1) is left out. Like the ER visit's
// placeholders, it is not a fact: the record is ignored and the batch warning counted.
const reasonNotICD9CM = "diagnosis code under ICD-9-CM that is not an ICD-9-CM code (a template placeholder)"

func notICD9CM(rec record) record {
	rec.warnings = append(rec.warnings, warnDiagnosisCodeNotICD9CM)
	rec.docLocal = -1
	return ignore(rec, reasonNotICD9CM)
}

// normalizeICD9CM is fse.NormalizeICD9CM, and ok tells whether the code has an ICD-9-CM
// shape at all: a procedure code written under the diagnoses' code system (03.21) is
// kept as given, as it always was; only a code of neither shape is a placeholder.
func normalizeICD9CM(code string, procedure bool) (string, bool) {
	c, ok := fse.NormalizeICD9CM(code, procedure)
	if !ok {
		_, ok = fse.NormalizeICD9CM(code, !procedure)
	}
	return c, ok
}

// diagnosisRow is a diagnosis table row: the code's ICD-9-CM chapter is derived here, so
// that every reader writes it alike (NULL for a code of another system or shape).
func diagnosisRow(pid any, system, code, role string, date any) []any {
	var chapter any
	if system == "icd9cm" {
		if c, ok := fse.ICD9CMChapter(code); ok {
			chapter = c
		}
	}
	return []any{pid, system, code, chapter, role, date}
}
