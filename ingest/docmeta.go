package ingest

import "slices"

// docMeta is what finalize needs to know of a document version beyond its row in the
// document table (whose doc_key is the document's identity across versions): the keys of
// this version itself, and the keys of the documents it replaces or is an addendum to. All
// are identifiers re-keyed like doc_key; none is ever written but to the dataset's
// internal registry of document versions (versions.go).
type docMeta struct {
	ids      []string // this version: its CDA id, the FHIR Bundle.identifier, the resource's Type/id
	replaces []string // CDA relatedDocument RPLC, FHIR relatesTo replaces: the parents' id or setId
	appends  []string // CDA relatedDocument APND, FHIR relatesTo appends
}

// relate records a relation to parent documents by its CDA typeCode or FHIR code. A
// transformation (XFRM, transforms) and a signature (signs) are not facts about which
// version holds: they are not recorded.
func (m *docMeta) relate(code string, parents []string) {
	switch code {
	case "RPLC", "replaces":
		m.replaces = append(m.replaces, parents...)
	case "APND", "appends":
		m.appends = append(m.appends, parents...)
	}
}

// identity returns the document's identity across versions given its set key (setId,
// Composition.identifier...). An addendum is a document of its own: when it shares its
// parent's set key (producers do reuse it), it is identified by this version's own id, or
// it would become a "new version" that supersedes the parent it only adds to. A relation
// to the document itself is dropped.
func (m *docMeta) identity(setKey string) string {
	key := setKey
	if len(m.ids) > 0 && slices.Contains(m.appends, setKey) {
		key = m.ids[0]
	}
	self := func(k string) bool { return slices.Contains(m.ids, k) }
	m.replaces = slices.DeleteFunc(m.replaces, self)
	m.appends = slices.DeleteFunc(m.appends, func(k string) bool { return self(k) || k == key })
	return key
}

// lists renders the meta as the staging columns' values (LIST(VARCHAR)).
func (m *docMeta) lists() []any {
	l := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	if m == nil {
		return []any{[]any{}, []any{}, []any{}}
	}
	return []any{l(m.ids), l(m.replaces), l(m.appends)}
}
