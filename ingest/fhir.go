package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// resource holds the fields Velo maps from any FHIR R4 resource it reads. Everything
// else is never decoded: that is the default-deny mapping of docs/ingest.md (names,
// telecom, addresses' lines, narrative, free text and practitioners never get here).
type resource struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Identifier   json.RawMessage `json:"identifier"` // an array in most resources, an object in Composition
	Meta         *struct {
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	MasterIdentifier *fhirIdentifier `json:"masterIdentifier"`
	Extension        []extension     `json:"extension"`

	// Patient
	Gender               string     `json:"gender"`
	BirthDate            string     `json:"birthDate"`
	Address              []address  `json:"address"`
	ManagingOrganization *reference `json:"managingOrganization"`

	// clinical
	Subject *reference       `json:"subject"`
	Patient *reference       `json:"patient"`
	Code    *codeableConcept `json:"code"`
	// Category is an array in most resources but a single concept in Procedure.
	Category json.RawMessage `json:"category"`
	// Type is a CodeableConcept in documents but an array in Encounter: decoded on use.
	Type                 json.RawMessage  `json:"type"`
	Status               string           `json:"status"`
	Date                 string           `json:"date"`
	EffectiveDateTime    string           `json:"effectiveDateTime"`
	EffectivePeriod      *period          `json:"effectivePeriod"`
	ValueQuantity        *quantity        `json:"valueQuantity"`
	ValueCodeableConcept *codeableConcept `json:"valueCodeableConcept"`
	HasMember            []reference      `json:"hasMember"`
	Encounter            *reference       `json:"encounter"`
	Period               *period          `json:"period"` // Encounter
	Hospitalization      *struct {
		DischargeDisposition *codeableConcept `json:"dischargeDisposition"`
	} `json:"hospitalization"` // Encounter
	Section                   []fhirSection     `json:"section"`   // Composition
	RelatesTo                 []relatesTo       `json:"relatesTo"` // Composition, DocumentReference
	Interpretation            []codeableConcept `json:"interpretation"`
	OnsetDateTime             string            `json:"onsetDateTime"`
	OnsetPeriod               *period           `json:"onsetPeriod"`
	RecordedDate              string            `json:"recordedDate"`
	PerformedDateTime         string            `json:"performedDateTime"`
	ProcedureCode             []codeableConcept `json:"procedureCode"` // ImagingStudy
	Started                   string            `json:"started"`       // ImagingStudy
	PerformedPeriod           *period           `json:"performedPeriod"`
	MedicationCodeableConcept *codeableConcept  `json:"medicationCodeableConcept"`
	MedicationReference       *reference        `json:"medicationReference"`
	AuthoredOn                string            `json:"authoredOn"`
	DateAsserted              string            `json:"dateAsserted"`
	VaccineCode               *codeableConcept  `json:"vaccineCode"`
	OccurrenceDateTime        string            `json:"occurrenceDateTime"`
	ProtocolApplied           []struct {
		DoseNumberPositiveInt *int   `json:"doseNumberPositiveInt"`
		DoseNumberString      string `json:"doseNumberString"`
	} `json:"protocolApplied"`
}

// bundle is a FHIR Bundle; its entries are decoded one by one.
type bundle struct {
	ResourceType string          `json:"resourceType"`
	Type         string          `json:"type"`
	Identifier   *fhirIdentifier `json:"identifier"` // a document's: this version's id (the Gateway: the CDA's id)
	Entry        []bundleEntry   `json:"entry"`
}

// relatesTo is a document's relation to another: Composition.relatesTo (target as an
// identifier or a reference) and DocumentReference.relatesTo (target).
type relatesTo struct {
	Code             string          `json:"code"`
	TargetIdentifier *fhirIdentifier `json:"targetIdentifier"`
	TargetReference  *reference      `json:"targetReference"`
	Target           *reference      `json:"target"`
}

// fhirSection is a Composition's section: its code, the resources it holds and its
// subsections (never its narrative).
type fhirSection struct {
	Code    *codeableConcept `json:"code"`
	Entry   []reference      `json:"entry"`
	Section []fhirSection    `json:"section"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

type fhirIdentifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type reference struct {
	Reference  string          `json:"reference"`
	Identifier *fhirIdentifier `json:"identifier"`
}

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
}

func (c *codeableConcept) code(systems ...string) string {
	if c == nil {
		return ""
	}
	for _, cd := range c.Coding {
		for _, s := range systems {
			if fse.SameSystem(cd.System, s) && cd.Code != "" {
				return cd.Code
			}
		}
	}
	return ""
}

type extension struct {
	URL          string `json:"url"`
	ValueString  string `json:"valueString"`
	ValueCode    string `json:"valueCode"`
	ValueInteger *int   `json:"valueInteger"`
}

type address struct {
	Use   string `json:"use"`
	State string `json:"state"`
	Line  []*struct {
		Extension []extension `json:"extension"`
	} `json:"_line"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type quantity struct {
	Value  *json.Number `json:"value"`
	Unit   string       `json:"unit"`
	Code   string       `json:"code"`
	System string       `json:"system"`
}

// identifiers decodes Resource.identifier, which is an array in most resources and a
// single object in Composition.
// categories decodes Resource.category, an array or a single concept.
func (r *resource) categories() []codeableConcept {
	raw := bytes.TrimSpace(r.Category)
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '{' {
		var one codeableConcept
		if decodeJSON(raw, &one) == nil {
			return []codeableConcept{one}
		}
		return nil
	}
	var many []codeableConcept
	_ = decodeJSON(raw, &many)
	return many
}

// docType is the LOINC type of a Composition or DocumentReference.
func (r *resource) docType() string {
	var cc codeableConcept
	if len(r.Type) == 0 || decodeJSON(r.Type, &cc) != nil {
		return ""
	}
	return cc.code(fse.SystemLOINC)
}

func (r *resource) identifiers() []fhirIdentifier {
	raw := bytes.TrimSpace(r.Identifier)
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '{' {
		var one fhirIdentifier
		if decodeJSON(raw, &one) == nil {
			return []fhirIdentifier{one}
		}
		return nil
	}
	var many []fhirIdentifier
	_ = decodeJSON(raw, &many)
	return many
}

const (
	extPriorityClass = "http://velo.invalid/fhir/StructureDefinition/priority-class"
	extVersionNumber = "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber"
	systemNRE        = "urn:oid:2.16.840.1.113883.2.9.4.3.8"
	systemServiceCat = "urn:oid:2.16.840.1.113883.2.9.6.1.11"
	systemInterp     = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
)

// outcome is what became of one source record.
type outcome uint8

const (
	outRow outcome = iota
	outQuarantined
	outOptedOut
	outOutsidePeriod
	outIgnored
)

// record is one source record's mapping: at most one row of one table.
type record struct {
	outcome outcome
	table   string // "" when the record maps to no table (ignored, unparsed)
	row     []any
	booking *bookingValues // a booking's row, typed (cup.go), instead of row
	staged  bool           // the row was staged by the mapping worker (sortstage.go)
	reason  string         // quarantine or ignore reason; never contains a value
	pos     string         // "line 12", "entry 3": where in the source file
	// docLocal is, for a fact taken from a document, the index of the document's record
	// in the same unit (bundle), so its staging sequence can be linked; -1 otherwise.
	docLocal int
	doc      *bundleDoc // a fact or the Composition of a Bundle read in chunks (bundle.go)
	isDoc    bool
	meta     *docMeta // documents: this version's keys and its relations to others
	asOf     any      // person rows: date of the source document, or nil
	// patient registration (NDJSON Patient records): the reference other resources use,
	// as its refKey, when isPatient.
	isPatient  bool
	patientKey refKey
	patient    patientRef
	warnings   []string
}

// refKey is what the Patients of NDJSON files are found by: the first 16 bytes of the
// SHA-256 of their reference ("Patient/<id>"). It is fixed-size and holds no pointer, so
// the index of an extract's millions of Patients is never scanned by the garbage
// collector (keyed by the reference strings, it was: at a million Patients the collector
// took most of the CPU of an ingest); and collision-resistant, so no two references an
// extract holds, even one crafted to, find each other's Patient.
type refKey [16]byte

func patientRefKey(ref string) refKey {
	sum := sha256.Sum256([]byte(ref))
	return refKey(sum[:16])
}

// patientRef is what later records need to know of a Patient resource.
type patientRef struct {
	pid   pseudonymize.PID
	state outcome // outRow, outOptedOut or outQuarantined
}

// mapper maps FHIR resources to canonical rows. It is used from several goroutines and
// holds only read-only state.
type mapper struct {
	ps     *pseudonymize.Pseudonymizer
	optOut *pseudonymize.OptOut
	period *fse.Period

	onDocument func(pos string) // tests: called before each document is mapped
}

func (m *mapper) hook(pos string) {
	if m.onDocument != nil {
		m.onDocument(pos)
	}
}

var errNoPatient = errors.New("subject references a patient that is not in the input")

// patientResolver finds the patient a reference points to.
type patientResolver func(ref string) (patientRef, bool)

func (m *mapper) mapPatient(r *resource, asOf any) record {
	rec := record{table: "person", docLocal: -1, asOf: asOf}
	chosen := choosePersonID(r.identifiers())
	if chosen.reason != "" {
		return quarantine(rec, chosen.reason)
	}
	id := chosen.id
	if chosen.warning != "" {
		rec.warnings = append(rec.warnings, chosen.warning)
	}
	pid := m.ps.PID(id)
	rec.patient = patientRef{pid: pid, state: outRow}
	if m.optOut.Contains(id) {
		rec.patient.state = outOptedOut
		rec.outcome = outOptedOut
		return rec
	}
	birthYear, bday, err := parseBirthDate(r.BirthDate)
	if err != nil {
		rec.patient.state = outQuarantined
		return quarantine(rec, "birthDate: "+err.Error())
	}
	sex := ""
	switch r.Gender {
	case "male":
		sex = "M"
	case "female":
		sex = "F"
	}
	if id.Odd {
		rec.warnings = append(rec.warnings, warnIdentifierStructureOdd)
	}
	if id.Omocode {
		rec.warnings = append(rec.warnings, warnIdentifierOmocode)
	}
	if b, ok := pseudonymize.BirthOf(id); ok {
		if (sex == "F") != b.Female && sex != "" {
			rec.warnings = append(rec.warnings, warnIdentifierSexMismatch)
		}
		if !bday.IsZero() && (bday.Year()%100 != b.YY || int(bday.Month()) != b.Month || bday.Day() != b.Day) {
			rec.warnings = append(rec.warnings, warnIdentifierBirthdateMismatch)
		}
	}
	var region, asl, province any
	if a := homeAddress(r.Address); a != nil {
		if _, ok := fse.RegionByCode(a.State); ok {
			region = a.State
		} else if a.State != "" {
			rec.warnings = append(rec.warnings, warnUnknownRegionCode)
		}
		for _, l := range a.Line {
			if l == nil {
				continue
			}
			for _, e := range l.Extension {
				if e.URL == fse.ExtCensusTract && len(e.ValueString) == 6 && isDigits(e.ValueString) {
					province = e.ValueString[:3]
				}
			}
		}
	}
	if mo := r.ManagingOrganization; mo != nil && mo.Identifier != nil && mo.Identifier.System == fse.SystemASL {
		if code := mo.Identifier.Value; slicesContains(fse.ASLCodes(), code) {
			asl = code
		} else {
			rec.warnings = append(rec.warnings, warnUnknownASLCode)
		}
	}
	var by any
	if birthYear > 0 {
		by = int16(birthYear)
	}
	rec.row = []any{duckdb.UUID(pid), by, nullable(sex), region, asl, province}
	return rec
}

func homeAddress(as []address) *address {
	for i := range as {
		if as[i].Use == "home" {
			return &as[i]
		}
	}
	if len(as) > 0 {
		return &as[0]
	}
	return nil
}

// subjectOf resolves the patient of a clinical resource and applies opt-out: it returns
// the pid, or a finished record (quarantined or opted out).
func (m *mapper) subjectOf(r *resource, rec record, resolve patientResolver) (duckdb.UUID, record, bool) {
	ref := r.Subject
	if ref == nil {
		ref = r.Patient
	}
	var p patientRef
	var ok bool
	if ref == nil || ref.Reference == "" {
		// Inside a document, the document's subject (resolve knows it); else none.
		if p, ok = resolve(""); !ok {
			return duckdb.UUID{}, quarantine(rec, "no subject"), false
		}
	} else if p, ok = resolve(ref.Reference); !ok {
		return duckdb.UUID{}, quarantine(rec, errNoPatient.Error()), false
	}
	switch p.state {
	case outQuarantined:
		return duckdb.UUID{}, quarantine(rec, "patient quarantined"), false
	case outOptedOut:
		rec.outcome = outOptedOut
		return duckdb.UUID{}, rec, false
	}
	return duckdb.UUID(p.pid), rec, true
}

// mapClinical maps a non-Patient resource. ec is its entry in the enclosing document
// (nil outside bundles).
func (m *mapper) mapClinical(r *resource, resolve patientResolver, ec *entryContext, docLocal int) record {
	rec := record{docLocal: docLocal}
	var (
		table   string
		dateRaw string
		role    string // diagnosis
		obsCat  string // observation
	)
	switch r.ResourceType {
	case "Observation":
		effective := r.EffectiveDateTime
		if effective == "" && r.EffectivePeriod != nil {
			effective = r.EffectivePeriod.Start
		}
		role = fse.DiagnosisRole(r.Code.code(fse.SystemLOINC))
		switch {
		case role != "" && r.ValueCodeableConcept != nil && len(r.ValueCodeableConcept.Coding) > 0:
			table = "diagnosis"
			role, dateRaw = ec.diagnosisRole(role), ec.diagnosisDate(r, role, effective)
		case r.Code.code(fse.SystemLOINC) == "" || r.ValueQuantity == nil || r.ValueQuantity.Value == nil:
			return ignore(rec, "observation without a quantity or a coded diagnosis")
		default:
			if obsCat = ec.observationCategory(r); obsCat != "" {
				table, dateRaw = "observation", effective
			} else if isLab(r) {
				table, dateRaw = "lab_result", effective
			} else {
				return ignore(rec, "observation of a category other than laboratory, vital signs or social history")
			}
		}
	case "Condition":
		if r.Code == nil || len(r.Code.Coding) == 0 {
			return ignore(rec, "condition without a code")
		}
		onset := r.OnsetDateTime
		if onset == "" && r.OnsetPeriod != nil {
			onset = r.OnsetPeriod.Start
		}
		table, dateRaw, role = "diagnosis", firstNonEmpty(onset, r.RecordedDate), fse.RoleProblem
	case "Procedure":
		if r.Code == nil || len(r.Code.Coding) == 0 {
			return ignore(rec, "procedure without a code")
		}
		table, dateRaw = "procedure", r.PerformedDateTime
		if dateRaw == "" && r.PerformedPeriod != nil {
			dateRaw = r.PerformedPeriod.Start
		}
	case "ImagingStudy":
		switch {
		case r.Status != "" && r.Status != "available":
			return ignore(rec, "imaging study not performed (status "+r.Status+")")
		case r.imagingProcedure() == nil:
			return ignore(rec, "imaging study without a procedure code")
		}
		table, dateRaw = "procedure", r.Started
	case "MedicationRequest", "MedicationStatement", "MedicationAdministration":
		if medicationCode(r, ec.meds()) == nil {
			return ignore(rec, "medication without a coded drug")
		}
		table = "medication"
		dateRaw = firstNonEmpty(r.AuthoredOn, r.EffectiveDateTime, r.DateAsserted)
		if dateRaw == "" && r.EffectivePeriod != nil {
			dateRaw = r.EffectivePeriod.Start
		}
	case "Immunization":
		if r.Status == "not-done" || r.Status == "entered-in-error" {
			return ignore(rec, "immunization not given")
		}
		if r.VaccineCode == nil || len(r.VaccineCode.Coding) == 0 {
			return ignore(rec, "immunization without a vaccine code")
		}
		table, dateRaw = "vaccination", r.OccurrenceDateTime
	case "ServiceRequest":
		if r.Code.code(systemServiceCat) == "" || nre(r) == "" {
			return ignore(rec, "service request that is not a specialist prescription")
		}
		table, dateRaw = "prescription", r.AuthoredOn
	case "DocumentReference", "Composition":
		if r.docType() == "" {
			return ignore(rec, "document without a LOINC type")
		}
		table, dateRaw = "document", r.Date
		rec.isDoc = true
		rec.docLocal = -1
	case "Encounter":
		if !ec.isERVisit() {
			return ignore(rec, notMapped(r.ResourceType))
		}
		// The emergency-room report's visit: its Composition's encounter.
		table = "er_visit"
		if r.Period != nil {
			dateRaw = r.Period.Start
		}
		dateRaw = firstNonEmpty(dateRaw, ec.doc.date)
	default:
		return ignore(rec, notMapped(r.ResourceType))
	}
	rec.table = table
	if table == "diagnosis" {
		cc := r.Code
		if r.ResourceType == "Observation" {
			cc = r.ValueCodeableConcept
		}
		if _, _, ok := clinicalCode(cc); !ok {
			return notICD9CM(rec)
		}
	}
	date, err := parseEventDate(dateRaw)
	if err != nil {
		return quarantine(rec, "date: "+err.Error())
	}
	pid, rec, ok := m.subjectOf(r, rec, resolve)
	if !ok {
		return rec
	}
	if m.period != nil && date != nil && !m.period.Contains(date.(time.Time)) {
		rec.outcome = outOutsidePeriod
		return rec
	}
	switch table {
	case "lab_result":
		var value any
		if q := r.ValueQuantity; q != nil && q.Value != nil {
			f, err := q.Value.Float64()
			if err != nil {
				return quarantine(rec, "valueQuantity.value is not a number")
			}
			value = f
		}
		unit := ""
		if q := r.ValueQuantity; q != nil {
			unit = firstNonEmpty(q.Code, q.Unit)
		}
		interp := ""
		for i := range r.Interpretation {
			if c := r.Interpretation[i].code(systemInterp); c != "" {
				interp = c
				break
			}
		}
		rec.row = []any{pid, r.Code.code(fse.SystemLOINC), value, nullable(unit), nullable(interp), date}
	case "observation":
		f, err := r.ValueQuantity.Value.Float64()
		if err != nil {
			return quarantine(rec, "valueQuantity.value is not a number")
		}
		q := r.ValueQuantity
		rec.row = []any{pid, obsCat, r.Code.code(fse.SystemLOINC), f, nullable(firstNonEmpty(q.Code, q.Unit)), date}
	case "diagnosis":
		cc := r.Code
		if r.ResourceType == "Observation" {
			cc = r.ValueCodeableConcept
		}
		system, code, _ := clinicalCode(cc)
		rec.row = diagnosisRow(pid, system, code, role, date)
	case "procedure":
		cc := r.Code
		if r.ResourceType == "ImagingStudy" {
			cc = r.imagingProcedure()
		}
		system, code, _ := clinicalCode(cc)
		rec.row = []any{pid, system, code, date}
	case "er_visit":
		triage, outcome := ec.doc.triage, ec.doc.outcome
		// A code outside the national list (a template's unfilled XXX) is not a fact: the
		// visit is kept without it, and the warning counted (as for CDA).
		if triage != "" && !slices.Contains(fse.ERTriageCodes, triage) {
			triage = ""
			rec.warnings = append(rec.warnings, warnERTriageNotInCodeList)
		}
		if outcome != "" && !slices.Contains(fse.EROutcomeCodes, outcome) {
			outcome = ""
			rec.warnings = append(rec.warnings, warnEROutcomeNotInCodeList)
		}
		rec.row = []any{pid, nullable(triage), nullable(outcome), date}
	case "medication":
		cc := medicationCode(r, ec.meds())
		kind := strings.ToLower(strings.TrimPrefix(r.ResourceType, "Medication"))
		rec.row = []any{pid, kind, nullable(cc.code(fse.SystemAIC)), nullable(cc.code(fse.SystemATC)), date}
	case "vaccination":
		var dose any
		for _, p := range r.ProtocolApplied {
			if p.DoseNumberPositiveInt != nil {
				dose = int32(*p.DoseNumberPositiveInt)
			} else if n, err := strconv.Atoi(strings.TrimSpace(p.DoseNumberString)); err == nil && n > 0 && n < 100 {
				dose = int32(n) // FHIR R4 also allows the dose as a string; the Gateway writes it so
			}
		}
		rec.row = []any{pid, nullable(r.VaccineCode.code(fse.SystemAIC)), nullable(r.VaccineCode.code(fse.SystemATC)), dose, date}
	case "prescription":
		var prio any
		for _, e := range r.Extension {
			if e.URL == extPriorityClass {
				if !slicesContains(fse.Priorities, fse.Priority(e.ValueCode)) {
					return quarantine(rec, "unknown priority class")
				}
				prio = e.ValueCode
			}
		}
		rec.row = []any{pid, m.ps.PrescriptionKey(nre(r)), r.Code.code(systemServiceCat), prio, date}
	case "document":
		root, value := documentID(r)
		if value == "" {
			return ignore(rec, "document without an identifier")
		}
		version := int32(1)
		for _, e := range r.Extension {
			if e.URL != extVersionNumber {
				continue
			}
			if e.ValueInteger != nil && *e.ValueInteger > 0 {
				version = int32(*e.ValueInteger)
			} else if n, err := strconv.Atoi(strings.TrimSpace(e.ValueString)); err == nil && n > 0 {
				version = int32(n) // the Gateway writes the version number as a string
			}
		}
		meta := ec.documentMeta(r, m.ps)
		rec.meta = meta
		rec.row = []any{pid, meta.identity(m.ps.DocumentKey(root, value)), r.docType(), date, version}
	}
	return rec
}

// notMapped is the ignore reason of a resource of a type Velo does not map. It names the
// type only when it is one of FHIR R4's: any other resourceType is the producer's text,
// which may be anything (an identifier included), and a reason never quotes that.
func notMapped(resourceType string) string {
	if slicesContains(fhirR4Types, resourceType) {
		return "resource type not mapped: " + resourceType
	}
	return "resource type not mapped (not a FHIR R4 resource type)"
}

// fhirR4Types are FHIR R4's resource types (http://hl7.org/fhir/R4/resource-types).
var fhirR4Types = []string{
	"Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
	"AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
	"BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
	"ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
	"CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
	"ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
	"CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
	"DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
	"DocumentReference", "DomainResource", "EffectEvidenceSynthesis", "Encounter", "Endpoint",
	"EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence",
	"EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag",
	"Goal", "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
	"Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
	"InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure",
	"MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense",
	"MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct",
	"MedicinalProductAuthorization", "MedicinalProductContraindication",
	"MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
	"MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
	"MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader",
	"MolecularSequence", "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition",
	"OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation",
	"Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition",
	"Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
	"QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
	"ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "Resource", "RiskAssessment",
	"RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
	"SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
	"SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
	"SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
	"SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
	"TestScript", "ValueSet", "VerificationResult", "VisionPrescription",
}

// isLab tells a laboratory quantity (category laboratory, or none) from the quantities
// of other categories (imaging, exam...) that documents also carry. Vital signs and
// social history are told apart before (docContext.observationCategory).
func isLab(r *resource) bool {
	for _, c := range r.categories() {
		for _, cd := range c.Coding {
			if cd.Code == "laboratory" {
				return true
			}
			if cd.Code != "" {
				return false
			}
		}
	}
	return true
}

// clinicalCode labels a diagnosis or procedure code: ICD-9-CM (diagnoses or procedures,
// in its dotted canonical form) wherever it appears among the codings, else LOINC, else
// the first code as given. Systems named by URI or OID alike. ok is false for a code
// under ICD-9-CM of no ICD-9-CM shape (a template's placeholder).
func clinicalCode(c *codeableConcept) (system, code string, ok bool) {
	for _, cd := range c.Coding {
		switch fse.CanonicalSystem(cd.System) {
		case fse.SystemICD9CM:
			n, ok := normalizeICD9CM(cd.Code, false)
			return "icd9cm", n, ok
		case fse.SystemICD9CMProcedure:
			n, ok := normalizeICD9CM(cd.Code, true)
			return "icd9cm", n, ok
		}
	}
	for _, cd := range c.Coding {
		if fse.SameSystem(cd.System, fse.SystemLOINC) {
			return "loinc", cd.Code, true
		}
	}
	return "other", c.Coding[0].Code, true
}

// imagingProcedure is the first coded procedure of an ImagingStudy.
func (r *resource) imagingProcedure() *codeableConcept {
	for i := range r.ProcedureCode {
		if len(r.ProcedureCode[i].Coding) > 0 && r.ProcedureCode[i].Coding[0].Code != "" {
			return &r.ProcedureCode[i]
		}
	}
	return nil
}

func medicationCode(r *resource, meds map[string]*resource) *codeableConcept {
	if cc := r.MedicationCodeableConcept; cc != nil && cc.code(fse.SystemAIC, fse.SystemATC) != "" {
		return cc
	}
	if r.MedicationReference != nil && meds != nil {
		if med, ok := meds[r.MedicationReference.Reference]; ok && med.Code.code(fse.SystemAIC, fse.SystemATC) != "" {
			return med.Code
		}
	}
	return nil
}

func nre(r *resource) string {
	for _, id := range r.identifiers() {
		if id.System == systemNRE {
			return id.Value
		}
	}
	return ""
}

func documentID(r *resource) (root, value string) {
	if mi := r.MasterIdentifier; mi != nil && mi.Value != "" {
		return mi.System, mi.Value
	}
	for _, id := range r.identifiers() {
		if id.Value != "" {
			return id.System, id.Value
		}
	}
	return "", ""
}

func quarantine(rec record, reason string) record {
	rec.outcome = outQuarantined
	rec.reason = reason
	rec.row = nil
	return rec
}

func ignore(rec record, reason string) record {
	rec.outcome = outIgnored
	rec.reason = reason
	rec.table = ""
	return rec
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func slicesContains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseEventDate parses a FHIR date or dateTime into the calendar day it names (as
// written, in its own zone). Partial dates (year, year-month) give nil: an event date is
// kept at day precision or not at all. Errors never quote the value.
func parseEventDate(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	switch len(s) {
	case 4, 7:
		if _, err := time.Parse("2006-01"[:len(s)], s); err != nil {
			return nil, errors.New("malformed date")
		}
		return nil, nil
	case 10:
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, errors.New("malformed date")
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, errors.New("malformed dateTime")
	}
	y, mo, d := t.Date()
	return fse.Date(y, mo, d), nil
}

// parseBirthDate returns the birth year and, when the source gives it, the full date
// (only for consistency checks against the codice fiscale; it is never stored).
func parseBirthDate(s string) (int, time.Time, error) {
	switch {
	case s == "":
		return 0, time.Time{}, nil
	case len(s) == 4:
		y, err := strconv.Atoi(s)
		if err != nil {
			return 0, time.Time{}, errors.New("malformed date")
		}
		return y, time.Time{}, nil
	case len(s) == 7:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return 0, time.Time{}, errors.New("malformed date")
		}
		return t.Year(), time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("malformed date")
	}
	return t.Year(), t, nil
}
