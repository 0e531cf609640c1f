package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A FHIR Bundle is read in two passes over its bytes, one entry at a time, so that memory
// does not grow with the size of its resources (decoding a whole Bundle took about six
// times its size):
//
//  1. the index: every entry is decoded far enough to know its type; the Patients are
//     mapped to their pid and outcome, the Medications and the first Composition (the
//     document, whose date dates the person facts) are kept, and the document's structure
//     is gathered (docContext: sections, panels, encounters, the order of the discharge
//     diagnoses, the identities of the documents it holds). Nothing is applied yet: a
//     Bundle that turns out to be malformed, or to hold an entry beyond maxRecordBytes,
//     is quarantined as a whole with the position of the problem.
//  2. the entries again, in chunks through runPipeline, each mapped with what the index
//     holds: references resolve by fullUrl or Type/id to the Bundle's Patients first, then
//     to those of the NDJSON files read before.
//
// What is held at once is the index (a pid per Patient, the Medications, the Composition,
// a few references per Observation, Encounter and document) and one entry per decoder, at most maxRecordBytes, plus the pipeline's chunks in flight.

var errEntryTooLarge = errors.New("bundle entry too large")

// bundleDoc links the facts of a document Bundle to its Composition's record, which may
// be applied in an earlier unit than theirs: its key is known from the index, its
// staging sequence once the stage has applied it.
type bundleDoc struct {
	key any
	seq int64
}

// bundleIndex is the first pass's result.
type bundleIndex struct {
	pos      string // the Bundle's position: "bundle", or "line 3" for one on an NDJSON line
	patients map[string]patientRef
	ctx      *docContext // the Medications, the document's structure and identities
	global   patientResolver
	asOf     any
	docIdx   int // entry index of the Composition, -1 without one
	doc      *bundleDoc
	// docSubject is the Composition's subject: in a document, a statement without a
	// subject is about it (the Ministry's mapping engine writes lab Observations so).
	docSubject string
}

// bundleError is a Bundle that cannot be read: it is quarantined as one record.
type bundleError struct{ pos, reason string }

func (e *bundleError) Error() string { return e.pos + ": " + e.reason }

func (e *bundleError) record() record {
	return record{outcome: outQuarantined, reason: e.reason, pos: e.pos, docLocal: -1}
}

// jsonSplitter walks the JSON text of a Bundle one byte at a time, finding where each
// value ends by its strings and nesting alone: it validates nothing inside a value (the
// first pass checks each entry with json.Valid, the workers decode them), which keeps
// the two passes' own cost to a small part of decoding. It holds at most one value.
type jsonSplitter struct {
	br  *bufio.Reader
	off int64 // bytes consumed
	pos string
}

func newJSONSplitter(r io.Reader, pos string) *jsonSplitter {
	return &jsonSplitter{br: bufio.NewReaderSize(r, 64<<10), pos: pos}
}

func (s *jsonSplitter) syntaxError() error {
	return &bundleError{s.pos, fmt.Sprintf("malformed Bundle: syntax error at byte %d", s.off)}
}

func (s *jsonSplitter) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return &bundleError{s.pos, "malformed Bundle: truncated"}
	}
	return err // reading the file failed: not the Bundle's fault
}

// next skips whitespace and returns the next byte, unread.
func (s *jsonSplitter) next() (byte, error) {
	for {
		c, err := s.br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			s.off++
			continue
		}
		s.br.UnreadByte()
		return c, nil
	}
}

// expect consumes the next byte after whitespace if it is c.
func (s *jsonSplitter) expect(c byte) error {
	got, err := s.next()
	if err != nil {
		return s.readErr(err)
	}
	if got != c {
		return s.syntaxError()
	}
	s.br.ReadByte()
	s.off++
	return nil
}

// value reads the next value (after whitespace) into buf[:0], at most limit bytes of it:
// beyond that it returns errEntryTooLarge.
func (s *jsonSplitter) value(buf []byte, limit int) ([]byte, error) {
	c, err := s.next()
	if err != nil {
		return nil, s.readErr(err)
	}
	if c == '}' || c == ']' || c == ',' || c == ':' {
		return nil, s.syntaxError()
	}
	buf = buf[:0]
	var v valueScan
	for {
		if _, err := s.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) && v.scalar && len(buf) > 0 {
				return buf, nil
			}
			return nil, s.readErr(err)
		}
		chunk, _ := s.br.Peek(s.br.Buffered())
		n, done := v.step(chunk)
		if len(buf)+n > limit {
			return nil, errEntryTooLarge
		}
		if len(buf)+n > cap(buf) {
			// Doubling: append's growth of large slices (1.25×) would allocate about
			// five times a long value on its way.
			grown := make([]byte, len(buf), max(2*cap(buf), len(buf)+n, 4<<10))
			copy(grown, buf)
			buf = grown
		}
		buf = append(buf, chunk[:n]...)
		s.br.Discard(n)
		s.off += int64(n)
		if done {
			return buf, nil
		}
	}
}

// valueScan finds where a JSON value ends, given its bytes piece by piece.
type valueScan struct {
	depth             int
	started, scalar   bool
	inString, escaped bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// step walks b, the value's next bytes: it returns how many of them belong to the value,
// and whether the value ends there.
func (v *valueScan) step(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if !v.started {
		v.started = true
		v.scalar = b[0] != '{' && b[0] != '[' && b[0] != '"'
	}
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case v.scalar:
			if c == ',' || c == '}' || c == ']' || c == ':' || isSpace(c) {
				return i, true
			}
		case v.escaped:
			v.escaped = false
		case v.inString:
			// Most of a resource is text: jump to the next quote or backslash.
			rest := b[i:]
			q := bytes.IndexByte(rest, '"')
			if q >= 0 {
				rest = rest[:q]
			}
			if bs := bytes.IndexByte(rest, '\\'); bs >= 0 {
				i += bs + 1
				v.escaped = true
				continue
			}
			if q < 0 {
				return len(b), false
			}
			i += q + 1
			v.inString = false
			if v.depth == 0 {
				return i, true
			}
			continue
		case c == '"':
			v.inString = true
		case c == '{' || c == '[':
			v.depth++
		case c == '}' || c == ']':
			if v.depth--; v.depth <= 0 {
				return i + 1, true
			}
		}
		i++
	}
	return i, false
}

// bundleEntries splits the Bundle read from r into its entries, calling fn with each
// one's index and bytes (valid only during the call). It returns a *bundleError for a
// Bundle whose structure is malformed or that holds a value beyond maxRecordBytes, or
// fn's error. Values other than the entries are checked with json.Valid and passed to
// top, when not nil, with their name.
func bundleEntries(r io.Reader, pos string, fn func(i int, entry []byte) error, top func(name string, value []byte)) error {
	s := newJSONSplitter(r, pos)
	var buf []byte
	tooLarge := func(what string) error {
		return &bundleError{what, fmt.Sprintf("entry larger than %d MiB: the bundle is not read", maxRecordBytes>>20)}
	}
	if err := s.expect('{'); err != nil {
		return err
	}
	entries := false
	for first := true; ; first = false {
		c, err := s.next()
		if err != nil {
			return s.readErr(err)
		}
		if c == '}' && first {
			s.expect('}')
			break
		}
		start := s.off
		key, err := s.value(buf, 64<<10)
		if errors.Is(err, errEntryTooLarge) {
			return &bundleError{pos, "malformed Bundle: a key longer than 64 KiB"}
		}
		if err != nil {
			return err
		}
		var name string
		if json.Unmarshal(key, &name) != nil {
			s.off = start
			return s.syntaxError()
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if name == "entry" && !entries {
			entries = true
			if err := s.entries(fn, tooLarge); err != nil {
				return err
			}
		} else {
			start := s.off
			v, err := s.value(buf, maxRecordBytes)
			if errors.Is(err, errEntryTooLarge) {
				return &bundleError{pos, fmt.Sprintf("a value larger than %d MiB: the bundle is not read", maxRecordBytes>>20)}
			}
			if err != nil {
				return err
			}
			if !json.Valid(v) {
				s.off = start
				return s.syntaxError()
			}
			if top != nil {
				top(name, v)
			}
			buf = v
		}
		c, err = s.next()
		if err != nil {
			return s.readErr(err)
		}
		s.br.ReadByte()
		s.off++
		if c == '}' {
			break
		}
		if c != ',' {
			s.off--
			return s.syntaxError()
		}
	}
	if _, err := s.next(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return &bundleError{pos, "malformed Bundle: data after its end"}
	}
	return nil
}

// entries reads the entry array (or null).
func (s *jsonSplitter) entries(fn func(int, []byte) error, tooLarge func(string) error) error {
	c, err := s.next()
	if err != nil {
		return s.readErr(err)
	}
	if c == 'n' {
		v, err := s.value(nil, 8)
		if err != nil || string(v) != "null" {
			return &bundleError{s.pos, "malformed Bundle: field entry has the wrong type"}
		}
		return nil
	}
	if c != '[' {
		return &bundleError{s.pos, "malformed Bundle: field entry has the wrong type"}
	}
	s.expect('[')
	var buf []byte
	for i := 0; ; i++ {
		c, err := s.next()
		if err != nil {
			return s.readErr(err)
		}
		if c == ']' && i == 0 {
			s.expect(']')
			return nil
		}
		v, err := s.value(buf, maxRecordBytes)
		if errors.Is(err, errEntryTooLarge) {
			return tooLarge(fmt.Sprintf("%s entry %d", s.pos, i))
		}
		if err != nil {
			return err
		}
		if err := fn(i, v); err != nil {
			return err
		}
		buf = v
		c, err = s.next()
		if err != nil {
			return s.readErr(err)
		}
		s.br.ReadByte()
		s.off++
		if c == ']' {
			return nil
		}
		if c != ',' {
			s.off--
			return s.syntaxError()
		}
	}
}

// members calls fn with the key and raw value of each top-level member of a JSON object
// that json.Valid accepts (or, unchecked, that a worker will decode: garbage gives
// garbage, never a panic), until fn returns false.
func members(obj []byte, fn func(key, value []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		kEnd := valueEnd(obj, i)
		key := obj[i:kEnd]
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipSpace(obj, i+1)
		vEnd := valueEnd(obj, i)
		if vEnd <= i || !fn(key, obj[i:vEnd]) {
			return
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// valueEnd is the end of the value starting at b[i].
func valueEnd(b []byte, i int) int {
	var v valueScan
	n, _ := v.step(b[min(i, len(b)):])
	return i + n
}

// isKey tells whether a raw JSON key is name (keys with escapes are decoded first).
func isKey(raw []byte, name string) bool {
	if len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == name
}

// entryParts returns an entry's fullUrl and the raw bytes of its resource.
func entryParts(entry []byte) (fullURL string, res []byte) {
	members(entry, func(k, v []byte) bool {
		switch {
		case isKey(k, "fullUrl"):
			json.Unmarshal(v, &fullURL)
		case isKey(k, "resource"):
			res = v
		}
		return true
	})
	return fullURL, res
}

// resourceTypeOf reads a resource's top-level resourceType, which FHIR's JSON puts first.
func resourceTypeOf(res []byte) string {
	var t string
	members(res, func(k, v []byte) bool {
		if isKey(k, "resourceType") {
			json.Unmarshal(v, &t)
			return false
		}
		return true
	})
	return t
}

// indexBundle is the first pass.
func (m *mapper) indexBundle(r io.Reader, pos string, global patientResolver) (idx *bundleIndex, err error) {
	// A panic while mapping the Bundle's patients or document quarantines the Bundle.
	defer func() {
		if v := recover(); v != nil {
			idx, err = nil, &bundleError{pos: pos, reason: panicReason(v)}
		}
	}()
	m.hook(pos)
	meds := map[string]*resource{}
	idx = &bundleIndex{pos: pos, patients: map[string]patientRef{}, ctx: newDocContext(meds), global: global, docIdx: -1}
	var comp *resource
	var patients []struct {
		keys []string
		r    *resource
	}
	var bundleID *fhirIdentifier
	err = bundleEntries(r, pos, func(i int, entry []byte) error {
		fullURL, raw := entryParts(entry)
		t := resourceTypeOf(raw)
		if t != "Patient" && t != "Medication" && !docContextTypes[t] {
			return nil // the workers check and decode it
		}
		// An entry the workers will quarantine as malformed does not count here either.
		var res resource
		if !json.Valid(entry) || json.Unmarshal(raw, &res) != nil {
			return nil
		}
		var keys []string
		if fullURL != "" {
			keys = append(keys, fullURL)
		}
		if res.ID != "" {
			keys = append(keys, res.ResourceType+"/"+res.ID)
		}
		isDoc := res.ResourceType == "Composition" && comp == nil
		switch res.ResourceType {
		case "Patient":
			// Mapped once the document's date is known (a Composition may follow).
			patients = append(patients, struct {
				keys []string
				r    *resource
			}{keys, &res})
			return nil
		case "Medication":
			for _, k := range keys {
				meds[k] = &res
			}
			return nil
		case "Composition":
			if isDoc {
				comp, idx.docIdx = &res, i
				if res.Subject != nil {
					idx.docSubject = res.Subject.Reference
				}
				if t, err := parseEventDate(res.Date); err == nil {
					idx.asOf = t
				}
			}
		}
		idx.ctx.add(i, &res, keys, isDoc, m.ps)
		return nil
	}, func(name string, v []byte) {
		if name == "identifier" {
			json.Unmarshal(v, &bundleID) // a malformed one is no identifier
		}
	})
	if err != nil {
		return nil, err
	}
	idx.ctx.bundleID = bundleID
	idx.ctx.finish()
	for _, p := range patients {
		rec := m.mapPatient(p.r, idx.asOf)
		ref := rec.patient
		if rec.outcome == outQuarantined {
			ref.state = outQuarantined
		}
		for _, k := range p.keys {
			idx.patients[k] = ref
		}
	}
	if comp != nil {
		rec := m.mapClinical(comp, idx.resolve, idx.ctx.entry(idx.docIdx), -1)
		idx.doc = &bundleDoc{key: docKeyOf([]record{rec}, 0)}
	}
	return idx, nil
}

func (idx *bundleIndex) resolve(ref string) (patientRef, bool) {
	if ref == "" {
		if idx.docSubject == "" {
			return patientRef{}, false
		}
		ref = idx.docSubject
	}
	if p, ok := idx.patients[ref]; ok {
		return p, true
	}
	return idx.global(ref)
}

// produceEntries is the second pass's producer: the entries in chunks (lines), with
// their index (lineNos).
func (idx *bundleIndex) produceEntries(r io.Reader, emit func(unit) error) error {
	var u unit
	held := 0
	err := bundleEntries(r, idx.pos, func(i int, entry []byte) error {
		raw := bytes.Clone(entry) // entry is the splitter's buffer
		u.lines = append(u.lines, raw)
		u.lineNos = append(u.lineNos, i)
		held += len(raw)
		if len(u.lines) == chunkLines || held >= chunkBytes {
			if err := emit(u); err != nil {
				return err
			}
			u, held = unit{}, 0
		}
		return nil
	}, nil)
	if err != nil {
		var be *bundleError
		if errors.As(err, &be) {
			// The first pass read the same bytes without this error.
			return fmt.Errorf("%s changed while it was read (%s)", idx.pos, be.reason)
		}
		return err
	}
	if len(u.lines) > 0 {
		return emit(u)
	}
	return nil
}

// work maps one chunk of entries.
func (idx *bundleIndex) work(m *mapper, u unit) []record {
	recs := make([]record, len(u.lines))
	for k, entry := range u.lines {
		i := u.lineNos[k]
		epos := fmt.Sprintf("%s entry %d", idx.pos, i)
		recs[k] = idx.workEntry(m, i, entry, epos)
	}
	return recs
}

// entryResource is what a worker decodes of a Bundle entry: its resource.
type entryResource struct {
	Resource *resource `json:"resource"`
}

// workEntry maps entry i of the Bundle; a panic while mapping it quarantines it.
func (idx *bundleIndex) workEntry(m *mapper, i int, entry []byte, epos string) (rec record) {
	defer func() {
		if v := recover(); v != nil {
			rec = record{outcome: outQuarantined, reason: panicReason(v), docLocal: -1}
		}
		rec.pos = epos
	}()
	var e entryResource
	err := decodeJSON(entry, &e)
	switch {
	case len(entry) == 0 || entry[0] != '{':
		return record{outcome: outQuarantined, reason: "malformed bundle entry: not a JSON object", docLocal: -1}
	case err != nil:
		// Say what is wrong as for the resource alone, when it is the resource.
		_, raw := entryParts(entry)
		var res resource
		if rerr := decodeJSON(raw, &res); rerr != nil {
			return m.undecodable(raw, epos, rerr)
		}
		return record{outcome: outQuarantined, reason: "malformed bundle entry: " + jsonErrorKind(err), docLocal: -1}
	case e.Resource == nil:
		return record{outcome: outQuarantined, reason: "bundle entry without a resource", docLocal: -1}
	}
	r := e.Resource
	switch {
	case r.ResourceType == "Patient":
		return m.mapPatient(r, idx.asOf)
	case r.ResourceType == "DocumentReference" && idx.docIdx >= 0:
		return record{outcome: outIgnored, reason: "DocumentReference of a document bundle (its Composition is the document)", docLocal: -1}
	}
	local := -1
	if idx.docIdx >= 0 && i != idx.docIdx {
		local = idx.docIdx
	}
	rec = m.mapClinical(r, idx.resolve, idx.ctx.entry(i), local)
	switch {
	case i == idx.docIdx:
		rec.doc = idx.doc
	case rec.docLocal >= 0:
		rec.docLocal, rec.doc = -1, idx.doc
	}
	return rec
}

// readBundle reads the Bundle at src (size bytes, read twice) with workers goroutines;
// first is the reader of the first pass (it may hash and report progress). A Bundle that
// cannot be read is one quarantined record.
func (m *mapper) readBundle(ctx context.Context, workers int, first io.Reader, src io.ReaderAt, size int64, pos string, global patientResolver, apply func([]record) error) error {
	idx, err := m.indexBundle(first, pos, global)
	var be *bundleError
	if errors.As(err, &be) {
		return apply([]record{be.record()})
	}
	if err != nil {
		return err
	}
	return runPipeline(ctx, workers,
		func(emit func(unit) error) error { return idx.produceEntries(io.NewSectionReader(src, 0, size), emit) },
		func(u unit) []record { return idx.work(m, u) },
		apply)
}

// mapBundle maps a Bundle held in memory (one on an NDJSON line) on the calling goroutine.
func (m *mapper) mapBundle(raw []byte, pos string, global patientResolver) []record {
	idx, err := m.indexBundle(bytes.NewReader(raw), pos, global)
	var be *bundleError
	if errors.As(err, &be) {
		return []record{be.record()}
	}
	if err != nil {
		return []record{{outcome: outQuarantined, reason: "malformed Bundle", pos: pos, docLocal: -1}}
	}
	var recs []record
	err = idx.produceEntries(bytes.NewReader(raw), func(u unit) error {
		recs = append(recs, idx.work(m, u)...)
		return nil
	})
	if err != nil {
		return []record{{outcome: outQuarantined, reason: "malformed Bundle", pos: pos, docLocal: -1}}
	}
	return recs
}
