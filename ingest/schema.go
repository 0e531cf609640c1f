package ingest

import (
	"fmt"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

// Column is one column of a canonical table. The policy fields are what the catalog
// publishes (docs/ingest.md#catalog): they come from reference data and policy, never from data.
type Column struct {
	Name string
	Type string // DuckDB type
	// Identifier marks pseudonymous keys (pid, re-keyed document and prescription ids):
	// joinable on pid only, never selectable or groupable.
	Identifier bool
	// Groupable columns may be GROUP BY keys.
	Groupable bool
	// Domain names the public domain of the column's values (see domains in catalog.go);
	// empty when the column has none (its keys then need partition selection).
	Domain string
	// Bounds are the clamping bounds of a numeric column, when it may be aggregated.
	Bounds *dataset.Bounds
	// Date marks the date column the extract's period applies to (one per table at most).
	PeriodDate bool
	// NotNull says that ingest never writes NULL in the column: its parser sets it on every
	// row, or its quarantine rules refuse a row without it (catalog property not_null).
	// Set only where the code guarantees it, never from the data seen.
	NotNull bool
	Doc     string
}

// Table is a canonical table.
type Table struct {
	Name    string
	Doc     string
	Columns []Column
	// MaxGroupsContributed and MaxRowsPerGroup are the default contribution bounds of
	// the table (per person), set by policy.
	MaxGroupsContributed int
	MaxRowsPerGroup      int
}

func col(name, typ, doc string, opts ...func(*Column)) Column {
	c := Column{Name: name, Type: typ, Doc: doc}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func identifier(c *Column) { c.Identifier = true }
func groupable(c *Column)  { c.Groupable = true }
func periodDate(c *Column) { c.PeriodDate = true; c.Groupable = true; c.Domain = domainPeriod }
func notNull(c *Column)    { c.NotNull = true }
func domain(d string) func(*Column) {
	return func(c *Column) { c.Groupable = true; c.Domain = d }
}
func bounds(lo, hi float64) func(*Column) {
	return func(c *Column) { c.Bounds = &dataset.Bounds{Lo: lo, Hi: hi} }
}

var pidColumn = col("pid", "UUID", "person pseudonym (HMAC of the canonical identifier); the privacy unit", identifier)

// factDocKey links a fact to the document it was read from (the document table's doc_key;
// null for a resource sent outside a document), so that a later batch that sends a new
// version of the document retracts the facts of the old one. Never queryable.
var factDocKey = col("doc_key", "VARCHAR", "re-keyed id of the document the fact was read from; null outside a document", identifier)

// IsFactTable reports whether a table holds facts read from documents (and so has
// factDocKey as its last column).
func IsFactTable(t Table) bool {
	return t.Name != "document" && t.Columns[len(t.Columns)-1].Name == factDocKey.Name
}

// Tables are Velo's canonical tables, in the order they are written.
var Tables = []Table{
	{
		Name: "person", Doc: "one row per person: generalised quasi-identifiers only",
		MaxGroupsContributed: 1, MaxRowsPerGroup: 1,
		Columns: []Column{
			pidColumn,
			col("birth_year", "SMALLINT", "year of birth (the birth date is never kept)", groupable, bounds(1900, 2030)),
			col("sex", "VARCHAR", "administrative sex, F or M", domain(domainSex)),
			col("region", "VARCHAR", "region of residence (Ministry of Health code)", domain(domainRegion)),
			col("asl", "VARCHAR", "ASL of residence, when the source gives it", domain(domainASL)),
			col("province", "VARCHAR", "ISTAT province of residence (the comune is generalised to it)", groupable),
		},
	},
	{
		Name: "booking", Doc: "CUP outpatient bookings with PNGLA waiting-time measures",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("booking_key", "VARCHAR", "re-keyed booking id", identifier),
			col("rx_key", "VARCHAR", "re-keyed NRE prescription number", identifier),
			col("service_code", "VARCHAR", "monitored service (national nomenclatore code)", domain(domainService), notNull),
			col("service_kind", "VARCHAR", "visit or test", domain(domainServiceKind), notNull),
			col("priority", "VARCHAR", "priority class U/B/D/P; null for follow-ups", domain(domainPriority)),
			col("first_access", "BOOLEAN", "first visit or test (false for follow-ups)", domain(domainBool)),
			col("d_prescription", "DATE", "prescription date", groupable),
			col("d_contact", "DATE", "booking (contact) date; the extract period applies to it", periodDate, notNull),
			col("d_first_available", "DATE", "first date offered", groupable),
			col("d_appointment", "DATE", "appointment date", groupable),
			col("d_delivered", "DATE", "date the service was delivered", groupable),
			col("garanzia", "BOOLEAN", "the patient accepted the first available date", domain(domainBool)),
			col("provider_id", "VARCHAR", "facility code of the provider", groupable),
			col("asl", "VARCHAR", "ASL providing the service", domain(domainASL)),
			col("region", "VARCHAR", "region providing the service", domain(domainRegion), notNull),
			col("channel", "VARCHAR", "booking channel", domain(domainChannel)),
			col("status", "VARCHAR", "booked, delivered, cancelled or no-show", domain(domainStatus), notNull),
			col("wait_days", "INTEGER", "d_appointment - d_contact in days", bounds(0, 365)),
			col("within_target", "BOOLEAN", "wait within the PNGLA maximum for the class and kind; null where monitoring excludes the booking", domain(domainBool)),
		},
	},
	{
		Name: "prescription", Doc: "specialist prescriptions (ricetta dematerializzata)",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("rx_key", "VARCHAR", "re-keyed NRE prescription number", identifier),
			col("service_code", "VARCHAR", "prescribed service", groupable),
			col("priority", "VARCHAR", "priority class U/B/D/P", domain(domainPriority)),
			col("authored_date", "DATE", "prescription date", periodDate),
		},
	},
	{
		Name: "document", Doc: "FSE documents: type and date, never content",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 8,
		Columns: []Column{
			pidColumn,
			col("doc_key", "VARCHAR", "re-keyed document id", identifier),
			col("doc_type", "VARCHAR", "LOINC document type", domain(domainDocType)),
			col("doc_date", "DATE", "document date", periodDate),
			col("version", "INTEGER", "document version number", bounds(1, 20)),
		},
	},
	{
		Name: "diagnosis", Doc: "diagnoses and problems, with their role in the document that states them",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("code_system", "VARCHAR", "icd9cm, loinc or other", domain(domainCodeSystem)),
			col("code", "VARCHAR", "diagnosis code (ICD-9-CM where the source uses it)", groupable),
			col("chapter", "VARCHAR", "ICD-9-CM chapter of the code (001-139 … 800-999, V, E), derived at ingest; null for a code that is not an ICD-9-CM diagnosis", domain(domainICD9Chapter)),
			col("role", "VARCHAR", "problem, admission, principal or secondary (discharge), diagnosis (a report's), reason (for the visit)", domain(domainDiagnosisRole)),
			col("onset_date", "DATE", "onset or recorded date of a problem; admission or discharge date of an admission or discharge diagnosis; else the observation's or the document's date", periodDate),
			factDocKey,
		},
	},
	{
		Name: "procedure", Doc: "procedures",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("code_system", "VARCHAR", "icd9cm, loinc or other", domain(domainCodeSystem)),
			col("code", "VARCHAR", "procedure code", groupable),
			col("performed_date", "DATE", "date performed", periodDate),
			factDocKey,
		},
	},
	{
		Name: "lab_result", Doc: "laboratory results (vital signs and social history are in observation)",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 8,
		Columns: []Column{
			pidColumn,
			col("loinc", "VARCHAR", "LOINC test code", groupable),
			col("value", "DOUBLE", "numeric result", bounds(0, 1000)),
			col("unit", "VARCHAR", "UCUM unit", groupable),
			col("interpretation", "VARCHAR", "N, H, L, A... (HL7 v3 ObservationInterpretation)", groupable),
			col("effective_date", "DATE", "date of the observation", periodDate),
			factDocKey,
		},
	},
	{
		Name: "observation", Doc: "vital signs and social history (never laboratory results)",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 8,
		Columns: []Column{
			pidColumn,
			col("category", "VARCHAR", "vital-signs or social-history (FHIR observation category)", domain(domainObservationCategory)),
			col("code", "VARCHAR", "LOINC code of the observation", domain(domainObservationCode)),
			col("value", "DOUBLE", "numeric value", bounds(0, 1000)),
			col("unit", "VARCHAR", "UCUM unit", groupable),
			col("effective_date", "DATE", "date of the observation", periodDate),
			factDocKey,
		},
	},
	{
		Name: "medication", Doc: "drug prescriptions, statements and administrations",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 8,
		Columns: []Column{
			pidColumn,
			col("kind", "VARCHAR", "request, statement or administration", domain(domainMedicationKind)),
			col("aic", "VARCHAR", "AIC marketing authorisation code", groupable),
			col("atc", "VARCHAR", "ATC code", groupable),
			col("med_date", "DATE", "date authored or taken", periodDate),
			factDocKey,
		},
	},
	{
		Name: "vaccination", Doc: "vaccinations",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("aic", "VARCHAR", "AIC code of the vaccine", groupable),
			col("atc", "VARCHAR", "ATC code of the vaccine", groupable),
			col("dose", "INTEGER", "dose number", bounds(1, 10)),
			col("vacc_date", "DATE", "date given", periodDate),
			factDocKey,
		},
	},
	{
		Name: "er_visit", Doc: "ER visits: one row per ER report (VPS)",
		MaxGroupsContributed: 4, MaxRowsPerGroup: 4,
		Columns: []Column{
			pidColumn,
			col("triage", "VARCHAR", "triage colour code at access (EMUR; code system 2.16.840.1.113883.2.9.6.1.54.4)", domain(domainERTriage)),
			col("outcome", "VARCHAR", "outcome of the visit (EMUR; code system 2.16.840.1.113883.2.9.6.1.54.5)", domain(domainEROutcome)),
			col("visit_date", "DATE", "date of arrival", periodDate),
			factDocKey,
		},
	},
}

// TableByName finds a canonical table.
func TableByName(name string) (Table, bool) {
	for _, t := range Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Staging-only columns: every staged row carries its input sequence (for a deterministic
// "last wins"), and rows that come from a document carry the document's staging sequence
// so superseded versions can be dropped with all their facts.
const (
	stagingSeq    = "_seq"
	stagingDocSeq = "_doc_seq"
	stagingAsOf   = "_as_of" // person only: date of the source the facts were taken from
	// document only: the version's own keys and its relations (docMeta)
	stagingIDs      = "_ids"
	stagingReplaces = "_replaces"
	stagingAppends  = "_appends"
)

func stagingDDL(t Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS stage_%s (", t.Name)
	for _, c := range t.Columns {
		fmt.Fprintf(&b, "%s %s, ", c.Name, c.Type)
	}
	fmt.Fprintf(&b, "%s BIGINT, %s BIGINT", stagingSeq, stagingDocSeq)
	switch t.Name {
	case "person":
		fmt.Fprintf(&b, ", %s DATE", stagingAsOf)
	case "document":
		fmt.Fprintf(&b, ", %s VARCHAR[], %s VARCHAR[], %s VARCHAR[]", stagingIDs, stagingReplaces, stagingAppends)
	}
	b.WriteString(")")
	return b.String()
}
