package ingest

import (
	"slices"
	"strings"

	"github.com/velo-fse/velo/fse"
)

// docContext is what a FHIR Bundle tells the mapping of one of its resources beyond the
// resource itself: the Medications it references, the Composition's date and encounter,
// the category of the section (or panel) that holds an observation, and the order of the
// discharge diagnoses. Its methods take a nil context (a resource outside a Bundle).
type docContext struct {
	meds      map[string]*resource
	byRef     map[string]*resource
	date      string    // Composition.date
	encounter *resource // Composition.encounter, when the Bundle holds it
	// category is the observation category of the section that holds an Observation, or
	// of the panel it is a member of (hasMember).
	category map[*resource]string
	// secondary marks the discharge diagnoses after the document's first.
	secondary map[*resource]bool
	// composition is the Bundle's document, and bundleID the Bundle's identifier: the
	// document's version id (the Gateway writes the CDA's id there).
	composition *resource
	bundleID    *fhirIdentifier
}

func newDocContext(composition *resource, byRef map[string]*resource, entries []*resource) *docContext {
	doc := &docContext{meds: map[string]*resource{}, byRef: byRef, category: map[*resource]string{}, secondary: map[*resource]bool{}}
	for ref, r := range byRef {
		if r.ResourceType == "Medication" {
			doc.meds[ref] = r
		}
	}
	// Document order: the Composition's sections, depth first, then the Bundle's order.
	order := map[*resource]int{}
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
				r, ok := byRef[e.Reference]
				if !ok {
					continue
				}
				if _, seen := order[r]; !seen {
					order[r] = len(order)
				}
				if cat != "" {
					doc.categorise(r, cat)
				}
			}
			walk(s.Section)
		}
	}
	doc.composition = composition
	if composition != nil {
		doc.date = composition.Date
		if composition.Encounter != nil {
			if e, ok := byRef[composition.Encounter.Reference]; ok && e.ResourceType == "Encounter" {
				doc.encounter = e
			}
		}
		walk(composition.Section)
	}
	var discharge []*resource
	for i, r := range entries {
		if r == nil || r.ResourceType != "Observation" {
			continue
		}
		if _, seen := order[r]; !seen {
			order[r] = len(entries) + i
		}
		// A panel of vital signs (or social history) makes its members so.
		for _, c := range r.categories() {
			for _, cd := range c.Coding {
				if cd.Code == fse.CategoryVitalSigns || cd.Code == fse.CategorySocialHistory {
					doc.categorise(r, cd.Code)
				}
			}
		}
		if r.Code.code(fse.SystemLOINC) == fse.LOINCDischargeDiagnosis && r.ValueCodeableConcept != nil {
			discharge = append(discharge, r)
		}
	}
	slices.SortStableFunc(discharge, func(a, b *resource) int { return order[a] - order[b] })
	for _, r := range discharge[min(1, len(discharge)):] {
		doc.secondary[r] = true
	}
	return doc
}

// categorise gives r and the members of its panel (transitively) the category, unless
// they have one already.
func (doc *docContext) categorise(r *resource, cat string) {
	if _, done := doc.category[r]; done {
		return
	}
	doc.category[r] = cat
	for _, m := range r.HasMember {
		if mr, ok := doc.byRef[m.Reference]; ok && mr.ResourceType == "Observation" {
			doc.categorise(mr, cat)
		}
	}
}

// observationCategory is the category of a quantity Observation that is not a laboratory
// result: vital signs or social history, by its own category, the section or panel that
// holds it, or its code (fse.ObservationCategory); "" otherwise.
func (doc *docContext) observationCategory(r *resource) string {
	for _, c := range r.categories() {
		for _, cd := range c.Coding {
			if cd.Code == fse.CategoryVitalSigns || cd.Code == fse.CategorySocialHistory {
				return cd.Code
			}
		}
	}
	if doc != nil {
		if cat := doc.category[r]; cat != "" {
			return cat
		}
	}
	return fse.ObservationCategory(r.Code.code(fse.SystemLOINC))
}

// diagnosisRole is the role of an Observation stating a diagnosis: a discharge
// diagnosis after the document's first is secondary.
func (doc *docContext) diagnosisRole(r *resource, role string) string {
	if role == fse.RolePrincipal && doc != nil && doc.secondary[r] {
		return fse.RoleSecondary
	}
	return role
}

// diagnosisDate dates an Observation stating a diagnosis as the CDA mapping does: its
// own time, else, for a diagnosis of the stay, the encounter's start (admission) or end
// (discharge), else the document's date. A problem has only its own time.
func (doc *docContext) diagnosisDate(r *resource, role, effective string) string {
	if effective != "" || role == fse.RoleProblem || doc == nil {
		return effective
	}
	var enc *resource
	if r.Encounter != nil {
		if e, ok := doc.byRef[r.Encounter.Reference]; ok && e.ResourceType == "Encounter" {
			enc = e
		}
	}
	if enc == nil {
		enc = doc.encounter
	}
	var start, end string
	if enc != nil && enc.Period != nil {
		start, end = enc.Period.Start, enc.Period.End
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
func (doc *docContext) documentMeta(r *resource, ps keyer) *docMeta {
	meta := &docMeta{}
	if doc != nil && doc.composition == r && doc.bundleID != nil && doc.bundleID.Value != "" {
		meta.ids = append(meta.ids, ps.DocumentKey(doc.bundleID.System, doc.bundleID.Value))
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
			keys = append(keys, doc.referencedDocument(ref.Reference, ps)...)
		}
		meta.relate(rel.Code, keys)
	}
	return meta
}

// referencedDocument is the keys of the document a reference names: the resource's own
// identity when the Bundle holds it, else its Type/id.
func (doc *docContext) referencedDocument(ref string, ps keyer) []string {
	if ref == "" {
		return nil
	}
	if doc != nil {
		if t, ok := doc.byRef[ref]; ok && (t.ResourceType == "Composition" || t.ResourceType == "DocumentReference") {
			var keys []string
			if root, value := documentID(t); value != "" {
				keys = append(keys, ps.DocumentKey(root, value))
			}
			if t.ID != "" {
				keys = append(keys, ps.DocumentKey(resourceKeySystem, t.ResourceType+"/"+t.ID))
			}
			return keys
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
