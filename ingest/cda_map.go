package ingest

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/pseudonymize"
)

// The CDA mapping produces the same canonical rows as the FHIR reader does for the
// Gateway's conversion of the same document (the pair test in cda_pairs_test.go holds
// it to that, difference by difference). Where the Gateway's FHIR makes a CDA statement
// into a resource the FHIR reader maps, the CDA statement is mapped the same way; the
// rules, statement by statement:
//
//	document      ClinicalDocument/code (LOINC, an FSE type), setId (else id) re-keyed,
//	              effectiveTime, versionNumber
//	person        recordTarget/patientRole: id[@root=codice fiscale OID]/@extension,
//	              patient/birthTime (year kept), administrativeGenderCode, the home
//	              addr's state (region) and censusTract (province), providerOrganization
//	              id[@root=ASL OID] (ASL) — through mapPatient, the FHIR reader's own rules
//	diagnosis     observation stating a diagnosis (fse.DiagnosisRole: 75326-9 Problem,
//	              8646-2 admission, 8651-2 discharge — the first principal, the others
//	              secondary —, 29308-4 Diagnosis, 29298-7 reason for visit): the value's
//	              code, the role, effectiveTime (low), else for a diagnosis of the stay
//	              the encounter's admission or discharge, else the document's date
//	observation   observation with a PQ or IVL_PQ value in the vital-signs (8716-3) or
//	              social-history (29762-2) section, or coded as a vital sign or a
//	              lifestyle observation (fse.ObservationCategory)
//	lab_result    any other observation with a LOINC code and a PQ or IVL_PQ value
//	procedure     procedure in moodCode EVN
//	vaccination   substanceAdministration in a vaccination document, in the immunization
//	              section (11369-6) or coded IMMUNIZ; dose from observation 30973-2
//	medication    any other substanceAdministration of an AIC/ATC product: a request
//	              when intended (INT, RQO, PRP), else an administration in a discharge
//	              letter or ER report and a statement elsewhere
//	prescription  a requested statement coded from the national catalogue of services
//	              with an NRE id, and its priorityCode (PNGLA class)
//	er_visit      ER report: triage (11283-9 in the triage section), outcome (11302-7),
//	              arrival date (encompassingEncounter)
//
// Statements about relatives (a subject/relatedSubject), negated (negationInd) or
// cancelled are not facts of the patient and are never mapped.

// OIDs read by the CDA mapping beyond those in package fse.
const (
	oidNRE          = "2.16.840.1.113883.2.9.4.3.8"
	oidServiceCat   = "2.16.840.1.113883.2.9.6.1.11"
	oidActPriority  = "2.16.840.1.113883.5.7"
	oidInterp       = "2.16.840.1.113883.5.83"
	oidTriage       = "2.16.840.1.113883.2.9.6.1.54.4"
	oidEROutcome    = "2.16.840.1.113883.2.9.6.1.54.5"
	loincDoseNumber = "30973-2"
	loincTriage     = "11283-9"
	loincEROutcome  = "11302-7"
	loincImmunSect  = "11369-6"
	loincFamilySect = "10157-6"
	loincTriageSect = "54094-8"
	// Sections whose acts are procedures performed: the imaging procedure described
	// (RAD, "Esame eseguito") and the procedures and interventions (VPS, RSA).
	loincImagingProcSect   = "55111-9"
	loincInterventionsSect = "62387-6"
	docLDO                 = "34105-7"
	docVPS                 = "59258-4"
	docSingleVacc          = "87273-9"
	docVaccCert            = "82593-5"
	docDrugRx              = "57833-6"
)

// cdaDoc is one document being mapped.
type cdaDoc struct {
	m       *mapper
	root    *cdaNode
	prefix  string // position prefix: "" for a file, "entry NAME " inside a zip
	docType string
	docDate string // ClinicalDocument/effectiveTime/@value
	patient patientRef
	docIdx  int // index of the document record in recs, or -1
	recs    []record

	used            bool   // the current entry fed the ER visit
	notDone         string // the current entry's statement is negated or cancelled
	triage, outcome string

	// admitted and discharged are the encounter's start and end (componentOf/
	// encompassingEncounter/effectiveTime), which date admission and discharge
	// diagnoses; discharges counts the discharge diagnoses mapped so far (the first is
	// the principal one).
	admitted, discharged string
	discharges           int
}

// mapCDA maps one document. Every record it returns carries a position; a document that
// cannot be read at all is one quarantined record.
func (m *mapper) mapCDA(data []byte, prefix string) []record {
	root, perr := parseCDA(data)
	if perr != nil {
		return []record{{outcome: outQuarantined, reason: perr.reason, pos: cdaPos(prefix, perr.line), docLocal: -1}}
	}
	c := &cdaDoc{m: m, root: root, prefix: prefix, docIdx: -1}
	code := root.child("code")
	c.docType = code.attr("code")
	if reason := documentTypeProblem(code); reason != "" {
		return []record{{outcome: outQuarantined, table: "document", reason: reason, pos: c.pos(root.line), docLocal: -1}}
	}
	c.docDate = root.child("effectiveTime").attr("value")
	if et := root.path("componentOf", "encompassingEncounter", "effectiveTime"); et != nil {
		c.admitted = firstNonEmpty(et.child("low").attr("value"), et.attr("value"))
		c.discharged = et.child("high").attr("value")
	}
	asOf, _ := parseTS(c.docDate)
	c.person(asOf)
	c.document()
	if sb := root.path("component", "structuredBody"); sb != nil {
		for _, comp := range sb.all("component") {
			if s := comp.child("section"); s != nil {
				c.section(s)
			}
		}
	}
	if c.docType == docVPS {
		c.erVisit()
	}
	return c.recs
}

func cdaPos(prefix string, line int) string {
	if line <= 0 {
		if prefix == "" {
			return "document"
		}
		return strings.TrimSpace(prefix)
	}
	return prefix + "line " + strconv.Itoa(line)
}

func (c *cdaDoc) pos(line int) string { return cdaPos(c.prefix, line) }

// person maps recordTarget/patientRole with the FHIR reader's mapPatient, so the
// identifier, opt-out, warning and generalisation rules are the same code.
func (c *cdaDoc) person(asOf any) {
	rt := c.root.child("recordTarget")
	pr := rt.child("patientRole")
	line := c.root.line
	if rt != nil {
		line = rt.line
	}
	if pr == nil {
		c.patient.state = outQuarantined
		c.recs = append(c.recs, record{outcome: outQuarantined, table: "person", reason: "no recordTarget/patientRole", pos: c.pos(line), docLocal: -1})
		return
	}
	r, bad := cdaPatient(pr)
	var rec record
	if bad != "" {
		rec = quarantine(record{table: "person", docLocal: -1}, bad)
	} else {
		rec = c.m.mapPatient(r, asOf)
	}
	rec.pos = c.pos(line)
	c.patient = rec.patient
	if rec.outcome == outQuarantined {
		c.patient.state = outQuarantined
	}
	c.recs = append(c.recs, rec)
}

// cdaPatient renders patientRole as the FHIR Patient fields mapPatient reads. It returns
// a quarantine reason for a malformed birth time (mapPatient's would name FHIR's field).
func cdaPatient(pr *cdaNode) (*resource, string) {
	r := &resource{ResourceType: "Patient"}
	// Every id, as the Gateway's FHIR carries it: mapPatient chooses the person's.
	var ids []fhirIdentifier
	for _, id := range pr.all("id") {
		root := strings.TrimSpace(id.attr("root"))
		if isOID(root) {
			root = "urn:oid:" + root
		}
		ids = append(ids, fhirIdentifier{System: root, Value: id.attr("extension")})
	}
	r.Identifier, _ = json.Marshal(ids)
	pt := pr.child("patient")
	switch pt.child("administrativeGenderCode").attr("code") {
	case "M":
		r.Gender = "male"
	case "F":
		r.Gender = "female"
	}
	if bt := pt.child("birthTime").attr("value"); bt != "" {
		d, err := tsDate(bt)
		if err != nil {
			return nil, "patient birthTime: " + err.Error()
		}
		r.BirthDate = d
	}
	for _, a := range pr.all("addr") {
		use := "other"
		for _, u := range strings.Fields(a.attr("use")) {
			if u == "H" || u == "HP" || u == "HV" {
				use = "home"
			}
		}
		// Either part may be missing: real documents give a comune without a region.
		addr := address{Use: use, State: a.child("state").value()}
		if ct := a.child("censusTract").value(); ct != "" {
			addr.Line = []*struct {
				Extension []extension `json:"extension"`
			}{{Extension: []extension{{URL: fse.ExtCensusTract, ValueString: ct}}}}
		}
		r.Address = append(r.Address, addr)
	}
	for _, id := range pr.child("providerOrganization").all("id") {
		if id.attr("root") == fse.OIDASL && id.attr("extension") != "" {
			r.ManagingOrganization = &reference{Identifier: &fhirIdentifier{System: fse.SystemASL, Value: id.attr("extension")}}
			break
		}
	}
	return r, ""
}

// document maps the header. The document's identity across versions is its setId (what
// the Gateway's Composition.identifier carries), so a later version replaces the
// earlier; without a setId, the id. Its id (this version's), and the parents that
// relatedDocument names (RPLC: the document replaces them; APND: it is an addendum to
// them, by their id and setId), are kept for finalize (versions.go).
func (c *cdaDoc) document() {
	rec := record{table: "document", isDoc: true, docLocal: -1, pos: c.pos(c.root.line)}
	id := c.root.child("setId")
	if id.attr("root") == "" && id.attr("extension") == "" {
		id = c.root.child("id")
	}
	system, value := cdaIdentifier(id)
	if value == "" {
		c.recs = append(c.recs, ignore(rec, "document without an identifier"))
		return
	}
	version := int32(1)
	if v, err := strconv.Atoi(c.root.child("versionNumber").attr("value")); err == nil && v > 0 {
		version = int32(min(v, 1<<30))
	}
	meta := &docMeta{}
	if s, v := cdaIdentifier(c.root.child("id")); v != "" {
		meta.ids = append(meta.ids, c.m.ps.DocumentKey(s, v))
	}
	for _, rd := range c.root.all("relatedDocument") {
		pd := rd.child("parentDocument")
		var parents []string
		for _, n := range append(pd.all("id"), pd.all("setId")...) {
			if s, v := cdaIdentifier(n); v != "" {
				parents = append(parents, c.m.ps.DocumentKey(s, v))
			}
		}
		meta.relate(strings.TrimSpace(rd.attr("typeCode")), parents)
	}
	key := meta.identity(c.m.ps.DocumentKey(system, value))
	rec.meta = meta
	c.docIdx = len(c.recs)
	c.emit(rec, c.docDate, func(pid duckdb.UUID, date any) ([]any, string) {
		return []any{pid, key, c.docType, date, version}, ""
	})
}

// cdaIdentifier renders an II as the FHIR identifier the Gateway makes of it: an OID
// root becomes the system urn:oid:ROOT with the extension as value; a root alone is the
// value (as a URI).
func cdaIdentifier(id *cdaNode) (system, value string) {
	root, ext := strings.TrimSpace(id.attr("root")), strings.TrimSpace(id.attr("extension"))
	switch {
	case root == "" && ext == "":
		return "", ""
	case ext == "":
		if isOID(root) {
			return "urn:ietf:rfc:3986", "urn:oid:" + root
		}
		return "urn:ietf:rfc:3986", "urn:uuid:" + strings.ToLower(root)
	case isOID(root):
		return "urn:oid:" + root, ext
	}
	return root, ext
}

func isOID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// emit finishes one fact record the way mapClinical does: a malformed date quarantines
// it, then the patient's state decides, then the period; build makes the row (or names
// what is wrong with it).
func (c *cdaDoc) emit(rec record, ts string, build func(pid duckdb.UUID, date any) ([]any, string)) {
	if !rec.isDoc {
		rec.docLocal = c.docIdx
	}
	date, err := parseTS(ts)
	switch {
	case err != nil:
		rec = quarantine(rec, "date: "+err.Error())
	case c.patient.state == outQuarantined:
		rec = quarantine(rec, "patient quarantined")
	case c.patient.state == outOptedOut:
		rec.outcome = outOptedOut
	case c.m.period != nil && date != nil && !c.m.period.Contains(date.(time.Time)):
		rec.outcome = outOutsidePeriod
	default:
		row, bad := build(duckdb.UUID(c.patient.pid), date)
		if bad != "" {
			rec = quarantine(rec, bad)
		} else {
			rec.row = row
		}
	}
	c.recs = append(c.recs, rec)
}

// section maps a section's entries and its subsections.
func (c *cdaDoc) section(s *cdaNode) {
	code := loincOf(s.child("code"))
	for _, ch := range s.children {
		switch ch.name {
		case "entry":
			c.entry(ch, code)
		case "component":
			if sub := ch.child("section"); sub != nil {
				c.section(sub)
			}
		}
	}
}

// entry maps the statements of one entry. An entry that yields no record at all is
// counted as one ignored record, so what the mapping leaves out is visible in the
// manifest.
func (c *cdaDoc) entry(e *cdaNode, section string) {
	before := len(c.recs)
	c.used = false
	name := ""
	for _, st := range e.children {
		if isStatement(st.name) {
			name = st.name
			if section == loincFamilySect {
				continue
			}
			c.notDone = notDone(st)
			c.statement(st, section)
		}
	}
	if len(c.recs) == before && !c.used && name != "" {
		reason := "CDA entry not mapped: " + name
		switch {
		case section == loincFamilySect:
			reason = "CDA entry about relatives (family history)"
		case c.notDone != "":
			reason = "CDA entry not done (" + c.notDone + "): " + name
		}
		c.recs = append(c.recs, record{outcome: outIgnored, reason: reason, pos: c.pos(e.line), docLocal: -1})
	}
}

// notDone says why a statement did not happen: negated, or a status that cancels it
// ("" when it did).
func notDone(st *cdaNode) string {
	if st.attr("negationInd") == "true" {
		return "negated"
	}
	switch sc := st.child("statusCode").attr("code"); sc {
	case "cancelled", "nullified", "aborted", "obsolete":
		return sc
	}
	return ""
}

// hasNestedProcedure tells whether a statement holds a procedure among its parts.
func hasNestedProcedure(st *cdaNode) bool {
	for _, ch := range st.children {
		if ch.name != "entryRelationship" && ch.name != "component" {
			continue
		}
		for _, sub := range ch.children {
			if sub.name == "procedure" || isStatement(sub.name) && hasNestedProcedure(sub) {
				return true
			}
		}
	}
	return false
}

func isStatement(name string) bool {
	switch name {
	case "observation", "act", "procedure", "substanceAdministration", "encounter", "organizer", "supply":
		return true
	}
	return false
}

// statement maps one clinical statement and, unless it is a medication or vaccination
// (whose parts are read with it), the statements nested in it.
func (c *cdaDoc) statement(st *cdaNode, section string) {
	if st.child("subject") != nil || notDone(st) != "" {
		return // about a relative, or not done
	}
	mood := st.attr("moodCode")
	requested := mood == "INT" || mood == "RQO" || mood == "PRP"
	switch st.name {
	case "substanceAdministration":
		c.substance(st, section, mood)
		return
	case "observation":
		if requested {
			c.prescription(st)
		} else {
			c.observation(st, section)
		}
	case "procedure":
		if requested {
			c.prescription(st)
		} else if mood == "" || mood == "EVN" {
			c.procedure(st)
		}
	case "act":
		switch {
		case requested:
			c.prescription(st)
		case (mood == "" || mood == "EVN") && (section == loincImagingProcSect || section == loincInterventionsSect) && !hasNestedProcedure(st):
			// The exam a radiology report describes, the interventions of an ER or
			// specialist report: performed procedures written as acts. An act that holds
			// procedures (the specialist report's service and its operation) is their
			// wrapper: they are read, it is not.
			c.procedure(st)
		}
	}
	for _, ch := range st.children {
		if ch.name != "entryRelationship" && ch.name != "component" {
			continue
		}
		for _, sub := range ch.children {
			if isStatement(sub.name) {
				c.statement(sub, section)
			}
		}
	}
}

func (c *cdaDoc) observation(st *cdaNode, section string) {
	code := loincOf(st.child("code"))
	val := st.child("value")
	switch role := fse.DiagnosisRole(code); {
	case role != "":
		if val.attr("code") == "" {
			return
		}
		c.diagnosis(st, role, val)
	case c.docType == docVPS && code == loincTriage && section == loincTriageSect && val.attr("codeSystem") == oidTriage:
		if c.triage == "" {
			c.triage = val.attr("code")
		}
		c.used = true
	case c.docType == docVPS && code == loincEROutcome && val.attr("codeSystem") == oidEROutcome:
		if c.outcome == "" {
			c.outcome = val.attr("code")
		}
		c.used = true
	case code != "":
		t := val.attr("xsi:type")
		if (t != "PQ" && t != "IVL_PQ") || val.attr("value") == "" {
			return
		}
		raw := val.attr("value")
		unit := val.attr("unit")
		if category := cdaObservationCategory(section, code); category != "" {
			// A vital sign or a lifestyle observation: not a laboratory result.
			c.emit(record{table: "observation", pos: c.pos(st.line)}, effectiveTS(st), func(pid duckdb.UUID, date any) ([]any, string) {
				f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
				if err != nil {
					return nil, "value/@value is not a number"
				}
				return []any{pid, category, code, f, nullable(unit), date}, ""
			})
			return
		}
		interp := ""
		if ic := st.child("interpretationCode"); ic != nil {
			if cs := ic.attr("codeSystem"); cs == "" || cs == oidInterp {
				interp = ic.attr("code")
			}
		}
		c.emit(record{table: "lab_result", pos: c.pos(st.line)}, effectiveTS(st), func(pid duckdb.UUID, date any) ([]any, string) {
			f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil {
				return nil, "value/@value is not a number"
			}
			return []any{pid, code, f, nullable(unit), nullable(interp), date}, ""
		})
	}
}

// cdaObservationCategory is the category of a quantity observed in a section: vital signs
// or social history by the section that states it or by the observation's own code; ""
// for a laboratory (or other) result.
func cdaObservationCategory(section, code string) string {
	switch section {
	case fse.SectionVitalSigns:
		return fse.CategoryVitalSigns
	case fse.SectionSocialHistory:
		return fse.CategorySocialHistory
	}
	return fse.ObservationCategory(code)
}

// diagnosis maps an observation that states a diagnosis, with its role: its value is the
// code. A problem is dated by its onset (effectiveTime); a diagnosis of the stay by its
// own time, else the admission (admission diagnosis) or the discharge (discharge
// diagnoses), else the document's date.
func (c *cdaDoc) diagnosis(st *cdaNode, role string, val *cdaNode) {
	ts := effectiveTS(st)
	switch role {
	case fse.RoleAdmission:
		ts = firstNonEmpty(ts, c.admitted, c.docDate)
	case fse.RolePrincipal:
		if c.discharges++; c.discharges > 1 {
			role = fse.RoleSecondary
		}
		ts = firstNonEmpty(ts, c.discharged, c.docDate)
	case fse.RoleDiagnosis, fse.RoleReason:
		ts = firstNonEmpty(ts, c.docDate)
	}
	rec := record{table: "diagnosis", pos: c.pos(st.line)}
	system, dx, ok := cdaClinicalCode(val)
	if !ok {
		c.recs = append(c.recs, notICD9CM(rec))
		return
	}
	c.emit(rec, ts, func(pid duckdb.UUID, date any) ([]any, string) {
		return diagnosisRow(pid, system, dx, role, date), ""
	})
}

func (c *cdaDoc) procedure(st *cdaNode) {
	code := st.child("code")
	if code.attr("code") == "" {
		return
	}
	system, pc, _ := cdaClinicalCode(code)
	c.emit(record{table: "procedure", pos: c.pos(st.line)}, effectiveTS(st), func(pid duckdb.UUID, date any) ([]any, string) {
		return []any{pid, system, pc, date}, ""
	})
}

// substance maps a substanceAdministration: a vaccination, or a medication.
func (c *cdaDoc) substance(st *cdaNode, section, mood string) {
	material := st.path("consumable", "manufacturedProduct", "manufacturedMaterial", "code")
	aic, atc := codeIn(material, fse.OIDAIC), codeIn(material, fse.OIDATC)
	vaccine := c.docType == docSingleVacc || c.docType == docVaccCert || section == loincImmunSect || st.child("code").attr("code") == "IMMUNIZ"
	if vaccine {
		if !anyCode(material) {
			return
		}
		var dose any
		for _, er := range st.all("entryRelationship") {
			obs := er.child("observation")
			if loincOf(obs.child("code")) != loincDoseNumber {
				continue
			}
			if n, err := strconv.Atoi(strings.TrimSpace(obs.child("value").attr("value"))); err == nil && n > 0 && n < 1000 {
				dose = int32(n)
			}
		}
		c.emit(record{table: "vaccination", pos: c.pos(st.line)}, effectiveTS(st), func(pid duckdb.UUID, date any) ([]any, string) {
			return []any{pid, nullable(aic), nullable(atc), dose, date}, ""
		})
		return
	}
	if aic == "" && atc == "" {
		return
	}
	var kind, ts string
	switch mood {
	case "INT", "RQO", "PRP":
		// An order's date is when it was made: the prescriber's participation (the
		// Gateway's authoredOn), or, for a drug prescription, the prescription document
		// itself. A proposal (PRP) is not yet an order and has none.
		kind = "request"
		if mood != "PRP" {
			ts = childTime(st, "participant")
		}
		if ts == "" && c.docType == docDrugRx {
			ts = c.docDate
		}
	case "", "EVN":
		kind, ts = "statement", effectiveTS(st)
		if c.docType == docLDO || c.docType == docVPS {
			kind = "administration" // given during the stay
		}
	default:
		return
	}
	c.emit(record{table: "medication", pos: c.pos(st.line)}, ts, func(pid duckdb.UUID, date any) ([]any, string) {
		return []any{pid, kind, nullable(aic), nullable(atc), date}, ""
	})
}

// prescription maps a requested service coded from the national catalogue and carrying
// its NRE: the specialist prescription (ricetta dematerializzata).
func (c *cdaDoc) prescription(st *cdaNode) {
	service := codeIn(st.child("code"), oidServiceCat)
	if service == "" {
		return
	}
	nre := ""
	for _, id := range st.all("id") {
		if id.attr("root") == oidNRE {
			nre = strings.TrimSpace(id.attr("extension"))
		}
	}
	if nre == "" {
		for _, inf := range c.root.all("inFulfillmentOf") {
			for _, id := range inf.child("order").all("id") {
				if id.attr("root") == oidNRE && nre == "" {
					nre = strings.TrimSpace(id.attr("extension"))
				}
			}
		}
	}
	if nre == "" {
		return
	}
	var prio any
	bad := ""
	if pc := st.child("priorityCode"); pc != nil && pc.attr("codeSystem") != oidActPriority && pc.attr("code") != "" {
		// The PNGLA class (U/B/D/P). HL7 ActPriority's codes (routine, ASAP...) are
		// another scale: its "P" is pre-operative, not programmata.
		if !slicesContains(fse.Priorities, fse.Priority(pc.attr("code"))) {
			bad = "unknown priority class"
		}
		prio = pc.attr("code")
	}
	ts := firstNonEmpty(childTime(st, "participant"), c.docDate)
	c.emit(record{table: "prescription", pos: c.pos(st.line)}, ts, func(pid duckdb.UUID, date any) ([]any, string) {
		if bad != "" {
			return nil, bad
		}
		return []any{pid, c.m.ps.PrescriptionKey(nre), service, prio, date}, ""
	})
}

// erVisit maps the ER report's visit: one row per report.
func (c *cdaDoc) erVisit() {
	enc := c.root.path("componentOf", "encompassingEncounter")
	line := c.root.line
	if enc != nil {
		line = enc.line
	}
	ts := effectiveTS(enc)
	if ts == "" {
		ts = c.docDate
	}
	triage, outcome := c.triage, c.outcome
	rec := record{table: "er_visit", pos: c.pos(line)}
	// A code outside the national list (a template's unfilled XXX) is not a fact: the
	// visit is kept without it, and the warning counted.
	if triage != "" && !slicesContains(fse.ERTriageCodes, triage) {
		triage = ""
		rec.warnings = append(rec.warnings, warnERTriageNotInCodeList)
	}
	if outcome != "" && !slicesContains(fse.EROutcomeCodes, outcome) {
		outcome = ""
		rec.warnings = append(rec.warnings, warnEROutcomeNotInCodeList)
	}
	c.emit(rec, ts, func(pid duckdb.UUID, date any) ([]any, string) {
		return []any{pid, nullable(triage), nullable(outcome), date}, ""
	})
}

// loincShape is a LOINC code's shape (digits, a dash, a check digit).
var loincShape = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// documentTypeProblem says why ClinicalDocument/code is not an FSE document type, naming
// what it holds when that is a code's shape (never free text, which could be anything),
// or "" when it is one.
func documentTypeProblem(code *cdaNode) string {
	system, value := strings.TrimSpace(code.attr("codeSystem")), strings.TrimSpace(code.attr("code"))
	switch {
	case code == nil || value == "":
		return "unknown document type (ClinicalDocument/code has no code)"
	case !fse.SameSystem(system, fse.OIDLOINC):
		// An OID is quoted unless it has an identifier's shape (a run of digits may be a
		// phone number or a VAT number as well as a one-arc OID).
		if fse.IsOID(system) && pseudonymize.MaskIdentifiers(system) == system {
			return "unknown document type (ClinicalDocument/code is not in LOINC but in " + system + ")"
		}
		return "unknown document type (ClinicalDocument/code is not in LOINC)"
	case !slicesContains(fse.DocumentTypeCodes(), value):
		if loincShape.MatchString(value) {
			return "unknown document type (ClinicalDocument/code " + value + " is not an FSE document type)"
		}
		return "unknown document type (ClinicalDocument/code is not an FSE document type)"
	}
	return ""
}

// loincOf is the LOINC code of a coded element, from the code itself or a translation.
func loincOf(n *cdaNode) string { return codeIn(n, fse.OIDLOINC) }

// codeIn is the code of n, or of one of its translations, in the given code system.
func codeIn(n *cdaNode, system string) string {
	if n == nil {
		return ""
	}
	if fse.SameSystem(n.attr("codeSystem"), system) && n.attr("code") != "" {
		return n.attr("code")
	}
	for _, t := range n.all("translation") {
		if fse.SameSystem(t.attr("codeSystem"), system) && t.attr("code") != "" {
			return t.attr("code")
		}
	}
	return ""
}

func anyCode(n *cdaNode) bool {
	if n.attr("code") != "" {
		return true
	}
	for _, t := range n.all("translation") {
		if t.attr("code") != "" {
			return true
		}
	}
	return false
}

// cdaClinicalCode labels a diagnosis or procedure code as clinicalCode does for FHIR:
// ICD-9-CM (dotted canonical form) wherever it appears among the code and its
// translations, else LOINC, else the code as given. ok is false for a code under
// ICD-9-CM of no ICD-9-CM shape (a template's placeholder: XXX, [COD_DIAGNOSI]).
func cdaClinicalCode(n *cdaNode) (system, code string, ok bool) {
	if c := codeIn(n, fse.OIDICD9CM); c != "" {
		c, ok = normalizeICD9CM(c, false)
		return "icd9cm", c, ok
	}
	if c := codeIn(n, fse.OIDICD9CMProcedures); c != "" {
		c, ok = normalizeICD9CM(c, true)
		return "icd9cm", c, ok
	}
	if c := codeIn(n, fse.OIDLOINC); c != "" {
		return "loinc", c, true
	}
	return "other", n.attr("code"), true
}

// effectiveTS is the point in time of a statement: effectiveTime/@value or its low
// (the first effectiveTime that is a point or an interval; periodic timings are not).
func effectiveTS(n *cdaNode) string {
	for _, et := range n.all("effectiveTime") {
		switch et.attr("xsi:type") {
		case "", "TS", "IVL_TS":
		default:
			continue
		}
		if v := et.attr("value"); v != "" {
			return v
		}
		return et.child("low").attr("value")
	}
	return ""
}

// childTime is the time of the first participation of that kind that has one.
func childTime(n *cdaNode, participation string) string {
	for _, p := range n.all(participation) {
		t := p.child("time")
		if v := firstNonEmpty(t.attr("value"), t.child("low").attr("value")); v != "" {
			return v
		}
	}
	return ""
}

var errMalformedTS = errors.New("malformed date")

// parseTS parses an HL7 v3 timestamp (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+-ZZZZ]) into the
// calendar day it names as written, like parseEventDate: partial dates give nil, as
// does a null value. Errors never quote the value.
func parseTS(s string) (any, error) {
	d, err := tsDate(s)
	if err != nil || len(d) != 10 {
		return nil, err
	}
	t, _ := time.Parse(time.DateOnly, d)
	return fse.Date(t.Year(), t.Month(), t.Day()), nil
}

// tsDate validates a timestamp and returns its date part as YYYY, YYYY-MM or
// YYYY-MM-DD ("" for an empty timestamp).
func tsDate(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	digits := 0
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		digits++
	}
	rest := s[digits:]
	if strings.HasPrefix(rest, ".") && digits == 14 {
		f := 1
		for f < len(rest) && rest[f] >= '0' && rest[f] <= '9' {
			f++
		}
		if f == 1 {
			return "", errMalformedTS
		}
		rest = rest[f:]
	}
	if rest != "" {
		if len(rest) != 5 || (rest[0] != '+' && rest[0] != '-') || !isDigits(rest[1:]) || digits < 8 {
			return "", errMalformedTS
		}
	}
	switch digits {
	case 4:
		return s[:4], nil
	case 6:
		if _, err := time.Parse("200601", s[:6]); err != nil {
			return "", errMalformedTS
		}
		return s[:4] + "-" + s[4:6], nil
	case 8, 10, 12, 14:
		t, err := time.Parse("20060102", s[:8])
		if err != nil {
			return "", errMalformedTS
		}
		if digits > 8 {
			h, _ := strconv.Atoi(s[8:10])
			mi, se := 0, 0
			if digits >= 12 {
				mi, _ = strconv.Atoi(s[10:12])
			}
			if digits == 14 {
				se, _ = strconv.Atoi(s[12:14])
			}
			if h > 23 || mi > 59 || se > 60 {
				return "", errMalformedTS
			}
		}
		return t.Format(time.DateOnly), nil
	}
	return "", errMalformedTS
}
