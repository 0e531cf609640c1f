package ingest

// Warnings are data-quality findings that are not reasons to reject a record: the record
// is written, and the manifest counts each finding per batch (Batch.Warnings) under one of
// these codes. docs/ingest.md explains every one (a test holds the two lists together).
const (
	// A codice fiscale with a right check letter but an impossible structure (month X,
	// day 99), as the Gateway's test code PROVAX00X00X000Y.
	warnIdentifierStructureOdd = "identifier_structure_odd"
	// An omocode variant of a codice fiscale: its pid is the canonical form's.
	warnIdentifierOmocode = "identifier_omocode"
	// The codice fiscale's sex disagrees with the record's.
	warnIdentifierSexMismatch = "identifier_sex_mismatch"
	// The codice fiscale's birth date disagrees with the record's.
	warnIdentifierBirthdateMismatch = "identifier_birthdate_mismatch"
	// A patient's region is not a Ministry of Health region code: person.region is NULL.
	warnUnknownRegionCode = "unknown_region_code"
	// A patient's managing organisation names an ASL that is not in the reference list:
	// person.asl is NULL.
	warnUnknownASLCode = "unknown_asl_code"
	// Documents disagree on a person's birth year or sex: one row is kept (the most
	// recent document's).
	warnPersonConflictingFacts = "person_conflicting_facts"
	// Different documents (another person or type) share one document id: both are kept.
	warnDocumentIDReused = "document_id_reused"
	// Quarantined records that could not be read far enough to name their table (a torn
	// NDJSON line, an unreadable CDA document): in the file's count, in no table's.
	warnRecordsUnparsed = "records_unparsed"
	// A valid person identifier under a system or root the guides do not name: accepted,
	// counted under this code followed by the system.
	warnIdentifierUnexpectedSystem = "identifier_unexpected_system"
	// An ER triage or outcome code outside the national lists: the column is NULL.
	warnERTriageNotInCodeList  = "er_visit_triage_not_in_code_list"
	warnEROutcomeNotInCodeList = "er_visit_outcome_not_in_code_list"
	// A diagnosis coded under ICD-9-CM with no ICD-9-CM shape (a template's XXX): it is
	// not written.
	warnDiagnosisCodeNotICD9CM = "diagnosis_code_not_icd9cm"
	// A replacement or an addendum of a document the dataset does not have: kept.
	warnDocumentReplacesUnknownParent = "document_replaces_unknown_parent"
	warnDocumentAppendsUnknownParent  = "document_appends_unknown_parent"
)

// warningCodes are all the codes above.
var warningCodes = []string{
	warnIdentifierStructureOdd, warnIdentifierOmocode, warnIdentifierSexMismatch,
	warnIdentifierBirthdateMismatch, warnUnknownRegionCode, warnUnknownASLCode,
	warnPersonConflictingFacts, warnDocumentIDReused, warnRecordsUnparsed,
	warnIdentifierUnexpectedSystem, warnERTriageNotInCodeList, warnEROutcomeNotInCodeList,
	warnDiagnosisCodeNotICD9CM, warnDocumentReplacesUnknownParent, warnDocumentAppendsUnknownParent,
}
