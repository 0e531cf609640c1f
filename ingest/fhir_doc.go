package ingest

import (
	"slices"
	"strings"

	"github.com/velo-fse/velo/fse"
)

// docContext is what a FHIR Bundle tells the mapping of one of its resources beyond the
// resource itself: the Medications it references, the Composition's date and encounter,
// the category of the section (or panel) that holds an observation, the order of the
// discharge diagnoses and the identities of the documents it holds. The first pass over
// the Bundle (indexBundle) gathers it entry by entry, keyed by entry index and by
// reference (fullUrl or Type/id), so that the second pass can map each entry alone.
type docContext struct {
	meds map[string]*resource
	// refs resolves a reference to the entry it names, for the entries the context
	// needs: Observations, Encounters, Compositions and DocumentReferences.
	refs       map[string]int
	date       string         // Composition.date
	encounter  *period        // Composition.encounter's period, when the Bundle holds it
	encounters map[int]period // the Encounters' periods
	// docKeys are the version keys of the Compositions and DocumentReferences, by entry.
	docKeys map[int][]string
	// category is the observation category of the section that holds an Observation, or
	// of the panel it is a member of (hasMember), by entry.
	category map[int]string
	// secondary marks the discharge diagnoses after the document's first.
	secondary map[int]bool
	// compIdx is the entry of the Bundle's document, and bundleID the Bundle's identifier:
	// the document's version id (the Gateway writes the CDA's id there).
	compIdx  int
	bundleID *fhirIdentifier
	// An emergency-room report (VPS): its visit is the Composition's encounter (entry
	// erEncounter), with the triage of the triage section and the outcome (the EMUR
	// codes, as the CDA's).
	vps             bool
	erEncounter     int
	triage, outcome string

	// The first pass's working state, dropped by finish.
	members   map[int][]string // every Observation's hasMember references
	panels    []panelCategory  // Observations with a category of their own, in Bundle order
	discharge []int            // the discharge diagnoses, in Bundle order
	triages   []codedEntry     // triage observations (11283-9, EMUR triage codes)
	outcomes  []codedEntry     // ER outcomes: 11302-7 observations, Encounters' dischargeDisposition
	comp      *resource
}

type codedEntry struct {
	entry int
	code  string
}

type panelCategory struct {
	entry    int
	category string
}

func newDocContext(meds map[string]*resource) *docContext {
	return &docContext{meds: meds, refs: map[string]int{}, encounters: map[int]period{},
		docKeys: map[int][]string{}, category: map[int]string{}, secondary: map[int]bool{},
		compIdx: -1, erEncounter: -1, members: map[int][]string{}}
}

// docContextTypes are the resource types whose entries the context reads.
var docContextTypes = map[string]bool{"Observation": true, "Encounter": true, "Composition": true, "DocumentReference": true}

// add takes entry i (r, reachable by keys) into the context; comp tells whether it is
// the Bundle's document.
func (doc *docContext) add(i int, r *resource, keys []string, comp bool, ps keyer) {
	for _, k := range keys {
		if _, dup := doc.refs[k]; !dup {
			doc.refs[k] = i
		}
	}
	switch r.ResourceType {
	case "Observation":
		for _, c := range r.categories() {
			for _, cd := range c.Coding {
				if cd.Code == fse.CategoryVitalSigns || cd.Code == fse.CategorySocialHistory {
					doc.panels = append(doc.panels, panelCategory{i, cd.Code})
				}
			}
		}
		members := make([]string, 0, len(r.HasMember))
		for _, m := range r.HasMember {
			members = append(members, m.Reference)
		}
		doc.members[i] = members
		switch r.Code.code(fse.SystemLOINC) {
		case fse.LOINCDischargeDiagnosis:
			if r.ValueCodeableConcept != nil {
				doc.discharge = append(doc.discharge, i)
			}
		case loincTriage:
			if c := r.ValueCodeableConcept.code(oidTriage); c != "" {
				doc.triages = append(doc.triages, codedEntry{i, c})
			}
		case loincEROutcome:
			if c := r.ValueCodeableConcept.code(oidEROutcome); c != "" {
				doc.outcomes = append(doc.outcomes, codedEntry{i, c})
			}
		}
	case "Encounter":
		if r.Period != nil {
			doc.encounters[i] = *r.Period
		}
		if h := r.Hospitalization; h != nil {
			if c := h.DischargeDisposition.code(oidEROutcome); c != "" {
				doc.outcomes = append(doc.outcomes, codedEntry{i, c})
			}
		}
	case "Composition", "DocumentReference":
		var ks []string
		if root, value := documentID(r); value != "" {
			ks = append(ks, ps.DocumentKey(root, value))
		}
		if r.ID != "" {
			ks = append(ks, ps.DocumentKey(resourceKeySystem, r.ResourceType+"/"+r.ID))
		}
		doc.docKeys[i] = ks
		if comp {
			doc.comp, doc.compIdx = r, i
			doc.vps = r.docType() == docVPS
		}
	}
}

// finish settles what needs the whole Bundle: section and panel categories, the
// encounter and the order of the discharge diagnoses.
func (doc *docContext) finish() {
	// Document order: the Composition's sections, depth first, then the Bundle's order.
	order := map[int]int{}
	inTriageSection := map[int]bool{}
	var walk func(sections []fhirSection)
	walk = func(sections []fhirSection) {
		for _, s := range sections {
			cat := ""
			switch {
			case s.Code.code(fse.SystemLOINC) == fse.SectionVitalSigns:
				cat = fse.CategoryVitalSigns
			case s.Code.code(fse.SystemLOINC) == fse.SectionSocialHistory:
				cat = fse.CategorySocialHistory
			}
			for _, e := range s.Entry {
				i, ok := doc.refs[e.Reference]
				if !ok {
					continue
				}
				if _, seen := order[i]; !seen {
					order[i] = len(order)
				}
				if cat != "" {
					doc.categorise(i, cat)
				}
				if s.Code.code(fse.SystemLOINC) == loincTriageSect {
					inTriageSection[i] = true
				}
			}
			walk(s.Section)
		}
	}
	if c := doc.comp; c != nil {
		doc.date = c.Date
		if c.Encounter != nil {
			if i, ok := doc.refs[c.Encounter.Reference]; ok {
				if p, ok := doc.encounters[i]; ok {
					doc.encounter = &p
				}
				doc.erEncounter = i
			}
		}
		walk(c.Section)
	}
	// A panel of vital signs (or social history) makes its members so.
	for _, p := range doc.panels {
		doc.categorise(p.entry, p.category)
	}
	rank := func(i int) int {
		if o, ok := order[i]; ok {
			return o
		}
		return len(order) + i
	}
	slices.SortStableFunc(doc.discharge, func(a, b int) int { return rank(a) - rank(b) })
	for _, i := range doc.discharge[min(1, len(doc.discharge)):] {
		doc.secondary[i] = true
	}
	// The ER visit's triage is the first of the triage section (as in CDA), its outcome
	// the first stated, both in document order.
	byRank := func(a, b codedEntry) int { return rank(a.entry) - rank(b.entry) }
	slices.SortStableFunc(doc.triages, byRank)
	for _, t := range doc.triages {
		if inTriageSection[t.entry] {
			doc.triage = t.code
			break
		}
	}
	slices.SortStableFunc(doc.outcomes, byRank)
	if len(doc.outcomes) > 0 {
		doc.outcome = doc.outcomes[0].code
	}
	doc.members, doc.panels, doc.discharge, doc.triages, doc.outcomes, doc.comp = nil, nil, nil, nil, nil, nil
}

// categorise gives entry i and the members of its panel (transitively) the category,
// unless they have one already.
func (doc *docContext) categorise(i int, cat string) {
	if _, done := doc.category[i]; done {
		return
	}
	doc.category[i] = cat
	for _, ref := range doc.members[i] {
		if m, ok := doc.refs[ref]; ok {
			if _, isObservation := doc.members[m]; isObservation {
				doc.categorise(m, cat)
			}
		}
	}
}

// entryContext is one entry of a Bundle with its document's context; a nil one is a
// resource read outside a Bundle.
type entryContext struct {
	doc *docContext
	i   int
}

func (doc *docContext) entry(i int) *entryContext {
	if doc == nil {
		return nil
	}
	return &entryContext{doc, i}
}

// isERVisit tells whether the entry is the visit of an emergency-room report: the
// encounter of a VPS Composition.
func (ec *entryContext) isERVisit() bool {
	return ec != nil && ec.doc.vps && ec.i == ec.doc.erEncounter
}

func (ec *entryContext) meds() map[string]*resource {
	if ec == nil {
		return nil
	}
	return ec.doc.meds
}

// observationCategory is the category of a quantity Observation that is not a laboratory
// result: vital signs or social history, by its own category, the section or panel that
// holds it, or its code (fse.ObservationCategory); "" otherwise.
func (ec *entryContext) observationCategory(r *resource) string {
	for _, c := range r.categories() {
		for _, cd := range c.Coding {
			if cd.Code == fse.CategoryVitalSigns || cd.Code == fse.CategorySocialHistory {
				return cd.Code
			}
		}
	}
	if ec != nil {
		if cat := ec.doc.category[ec.i]; cat != "" {
			return cat
		}
	}
	return fse.ObservationCategory(r.Code.code(fse.SystemLOINC))
}

// diagnosisRole is the role of an Observation stating a diagnosis: a discharge
// diagnosis after the document's first is secondary.
func (ec *entryContext) diagnosisRole(role string) string {
	if role == fse.RolePrincipal && ec != nil && ec.doc.secondary[ec.i] {
		return fse.RoleSecondary
	}
	return role
}

// diagnosisDate dates an Observation stating a diagnosis as the CDA mapping does: its
// own time, else, for a diagnosis of the stay, the encounter's start (admission) or end
// (discharge), else the document's date. A problem has only its own time.
func (ec *entryContext) diagnosisDate(r *resource, role, effective string) string {
	if effective != "" || role == fse.RoleProblem || ec == nil {
		return effective
	}
	doc := ec.doc
	enc := doc.encounter
	if r.Encounter != nil {
		if i, ok := doc.refs[r.Encounter.Reference]; ok {
			if p, ok := doc.encounters[i]; ok {
				enc = &p
			}
		}
	}
	var start, end string
	if enc != nil {
		start, end = enc.Start, enc.End
	}
	switch role {
	case fse.RoleAdmission:
		return firstNonEmpty(start, doc.date)
	case fse.RolePrincipal:
		return firstNonEmpty(end, doc.date)
	}
	return doc.date
}

// resourceKeySystem names the re-keyed references to a FHIR document by its resource
// type and logical id (DocumentReference/123), which relatesTo may use.
const resourceKeySystem = "urn:velo:fhir-resource"

// documentMeta gives a Composition or DocumentReference its version keys and relations
// (docMeta): the Bundle's identifier when r is the Bundle's document, its own Type/id,
// and the targets of its relatesTo.
func (ec *entryContext) documentMeta(r *resource, ps keyer) *docMeta {
	meta := &docMeta{}
	if ec != nil && ec.doc.compIdx == ec.i && ec.doc.bundleID != nil && ec.doc.bundleID.Value != "" {
		meta.ids = append(meta.ids, ps.DocumentKey(ec.doc.bundleID.System, ec.doc.bundleID.Value))
	}
	if mi := r.MasterIdentifier; r.ResourceType == "DocumentReference" && mi != nil && mi.Value != "" {
		meta.ids = append(meta.ids, ps.DocumentKey(mi.System, mi.Value))
	}
	if r.ID != "" {
		meta.ids = append(meta.ids, ps.DocumentKey(resourceKeySystem, r.ResourceType+"/"+r.ID))
	}
	for _, rel := range r.RelatesTo {
		var keys []string
		if id := rel.TargetIdentifier; id != nil && id.Value != "" {
			keys = append(keys, ps.DocumentKey(id.System, id.Value))
		}
		for _, ref := range []*reference{rel.TargetReference, rel.Target} {
			if ref == nil {
				continue
			}
			if id := ref.Identifier; id != nil && id.Value != "" {
				keys = append(keys, ps.DocumentKey(id.System, id.Value))
			}
			keys = append(keys, ec.referencedDocument(ref.Reference, ps)...)
		}
		meta.relate(rel.Code, keys)
	}
	return meta
}

// referencedDocument is the keys of the document a reference names: the resource's own
// identity when the Bundle holds it, else its Type/id.
func (ec *entryContext) referencedDocument(ref string, ps keyer) []string {
	if ref == "" {
		return nil
	}
	if ec != nil {
		if i, ok := ec.doc.refs[ref]; ok {
			if keys, ok := ec.doc.docKeys[i]; ok {
				return keys
			}
		}
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i] // a version-specific reference names the same document
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if n := len(parts); n >= 2 && (parts[n-2] == "Composition" || parts[n-2] == "DocumentReference") && parts[n-1] != "" {
		return []string{ps.DocumentKey(resourceKeySystem, parts[n-2]+"/"+parts[n-1])}
	}
	return nil
}

// keyer re-keys document identifiers (pseudonymize.Pseudonymizer).
type keyer interface {
	DocumentKey(root, value string) string
}
