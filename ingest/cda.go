package ingest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// HL7 CDA R2 documents are read in three steps: parseCDA turns one document into a
// sparse tree of the elements the mapping may need (this file), mapCDA maps the tree to
// canonical rows (cda_map.go), and the readers in cda_read.go feed documents from files
// and zip archives through the parallel pipeline, one whole document per unit.
//
// The tree is the default-deny line: subtrees that carry identities or free text
// (names, telecom, narrative, authors, performers, participants' roles, embedded media)
// are skipped while tokenising and never held; character data is never kept except the
// two address parts of the patient that the person row generalises (region and comune);
// and only the attributes named in cdaAttrKeys are kept.

const (
	nsHL7V3 = "urn:hl7-org:v3"
	nsXSI   = "http://www.w3.org/2001/XMLSchema-instance"
)

// Limits on one document. A document beyond them is quarantined, never partly read.
const (
	// maxCDABytes bounds the size of one document (a file, or a zip entry once
	// decompressed); the reader holds at most this much of a document in memory.
	maxCDABytes = 64 << 20
	// maxCDADepth bounds element nesting (real documents nest about 30 deep).
	maxCDADepth = 256
	// maxCDANodes bounds the elements kept in the tree of one document.
	maxCDANodes = 100_000
)

// cdaNode is an element of the HL7 v3 namespace that the mapping may read.
type cdaNode struct {
	name     string
	line     int
	attrs    []cdaAttr
	text     string // only for the patient's addr/state and addr/censusTract
	children []*cdaNode
}

type cdaAttr struct{ key, val string }

// cdaAttrKeys are the attributes kept. Everything they can hold is a code, an OID, an
// identifier the mapping re-keys or drops, a number or a timestamp.
var cdaAttrKeys = map[string]bool{
	"code": true, "codeSystem": true, "value": true, "unit": true, "root": true,
	"extension": true, "moodCode": true, "classCode": true, "typeCode": true,
	"nullFlavor": true, "negationInd": true, "use": true,
}

// cdaSkip are elements whose whole subtree is never kept: identities and contacts of
// people and organisations, narrative and free text, and content the mapping never
// reads. Skipping them early also keeps the tree small.
var cdaSkip = map[string]bool{
	"text": true, "originalText": true, "title": true, "name": true, "telecom": true,
	"birthplace": true, "guardian": true, "languageCommunication": true,
	"assignedAuthor": true, "assignedEntity": true, "assignedPerson": true, "associatedEntity": true,
	"associatedPerson": true, "participantRole": true, "playingEntity": true, "relatedSubject": true,
	"intendedRecipient": true, "assignedCustodian": true, "dataEnterer": true, "informant": true,
	"custodian": true, "informationRecipient": true, "legalAuthenticator": true, "authenticator": true,
	"performer": true, "responsibleParty": true, "encounterParticipant": true, "location": true,
	"manufacturerOrganization": true, "representedOrganization": true, "serviceProviderOrganization": true,
	"specimen": true, "referenceRange": true, "observationMedia": true, "regionOfInterest": true,
	"lotNumberText": true, "precondition": true, "authorization": true,
	"streetAddressLine": true, "postalCode": true, "city": true, "houseNumber": true,
	"streetName": true, "precinct": true, "additionalLocator": true,
	"routeCode": true, "approachSiteCode": true, "targetSiteCode": true, "methodCode": true,
	"doseQuantity": true, "rateQuantity": true, "maxDoseQuantity": true, "administrationUnitCode": true,
	"confidentialityCode": true, "languageCode": true, "realmCode": true, "typeId": true,
}

func (n *cdaNode) attr(key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.key == key {
			return a.val
		}
	}
	return ""
}

// child is n's first child element called name, or nil.
func (n *cdaNode) child(name string) *cdaNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// value is the character data kept for n ("" for a missing element).
func (n *cdaNode) value() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.text)
}

// path follows first children by name.
func (n *cdaNode) path(names ...string) *cdaNode {
	for _, name := range names {
		n = n.child(name)
	}
	return n
}

// all lists n's child elements called name.
func (n *cdaNode) all(name string) []*cdaNode {
	if n == nil {
		return nil
	}
	var out []*cdaNode
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// cdaError is why a document could not be read at all. Its reason never quotes the
// document: a syntax error's own message can (an entity or element name is the
// producer's text), so it is classified, not copied.
type cdaError struct {
	line   int
	reason string
}

func (e *cdaError) Error() string { return e.reason }

const reasonDTD = "DTD/entities not allowed"

// parseCDA reads one document into its sparse tree. The decoder is strict, expands no
// entity beyond XML's five (a DOCTYPE is refused before any of it is used), and depth,
// size and element count are bounded.
func parseCDA(data []byte) (*cdaNode, *cdaError) {
	if len(data) > maxCDABytes {
		return nil, &cdaError{reason: fmt.Sprintf("document larger than %d MiB", maxCDABytes>>20)}
	}
	data, utf16, err := toUTF8(data)
	if err != nil {
		return nil, &cdaError{reason: "malformed UTF-16 (" + err.Error() + ")"}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var refused *unsupportedEncoding // the declared encoding, when it is not read
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		l := strings.ToLower(strings.TrimSpace(label))
		switch {
		case utf16 && (l == "utf-16" || l == "utf-16le" || l == "utf-16be" || l == "utf16"):
			return in, nil // transcoded already: the declaration only says so
		case utf16:
			refused = &unsupportedEncoding{inUTF16: true}
			return nil, refused
		}
		r, err := cdaCharsetReader(label, in)
		if err != nil {
			refused = &unsupportedEncoding{}
		}
		return r, err
	}
	var (
		root      *cdaNode
		stack     []*cdaNode
		depth     int
		skipDepth int // > 0 inside a skipped subtree
		nodes     int
		closed    bool // the root element has ended
		capture   bool // the top of the stack is a patient address part
	)
	line := func() int { l, _ := d.InputPos(); return l }
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && refused != nil {
			return nil, &cdaError{line: line(), reason: refused.reason()}
		}
		if err != nil {
			return nil, xmlError(err, line())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth > maxCDADepth:
				return nil, &cdaError{line: line(), reason: fmt.Sprintf("XML nested deeper than %d elements", maxCDADepth)}
			case closed:
				return nil, &cdaError{line: line(), reason: "more than one root element"}
			case root == nil && (t.Name.Space != nsHL7V3 || t.Name.Local != "ClinicalDocument"):
				return nil, &cdaError{line: line(), reason: "not an HL7 CDA R2 document: the root element is not ClinicalDocument in namespace urn:hl7-org:v3"}
			}
			if skipDepth > 0 {
				skipDepth++
				continue
			}
			if t.Name.Space != nsHL7V3 || cdaSkip[t.Name.Local] {
				skipDepth = 1
				continue
			}
			if nodes++; nodes > maxCDANodes {
				return nil, &cdaError{line: line(), reason: fmt.Sprintf("document has more than %d elements", maxCDANodes)}
			}
			n := &cdaNode{name: t.Name.Local, line: line()}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && cdaAttrKeys[a.Name.Local]:
					n.attrs = append(n.attrs, cdaAttr{a.Name.Local, a.Value})
				case a.Name.Space == nsXSI && a.Name.Local == "type":
					v := a.Value
					if i := strings.IndexByte(v, ':'); i >= 0 {
						v = v[i+1:]
					}
					n.attrs = append(n.attrs, cdaAttr{"xsi:type", v})
				}
			}
			if root == nil {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			k := len(stack)
			capture = (n.name == "state" || n.name == "censusTract") && k >= 3 &&
				stack[k-2].name == "addr" && stack[k-3].name == "patientRole"
		case xml.EndElement:
			depth--
			if skipDepth > 0 {
				skipDepth--
				continue
			}
			stack = stack[:len(stack)-1]
			capture = false
			if len(stack) == 0 {
				closed = true
			}
		case xml.CharData:
			if capture && skipDepth == 0 {
				n := stack[len(stack)-1]
				if len(n.text)+len(t) <= 32 {
					n.text += string(t)
				}
			}
		case xml.Directive:
			// <!DOCTYPE ...> and its internal subset: the decoder would not expand the
			// entities it declares, but a document that needs them is not one Velo
			// reads, and refusing it up front keeps entity expansion out entirely.
			return nil, &cdaError{line: line(), reason: reasonDTD}
		}
	}
	if root == nil {
		return nil, &cdaError{reason: "not an HL7 CDA R2 document: no XML root element"}
	}
	return root, nil
}

// xmlError classifies a decoder error without quoting it.
func xmlError(err error, line int) *cdaError {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		msg := se.Msg
		switch {
		case strings.Contains(msg, "unexpected EOF"):
			return &cdaError{line: se.Line, reason: "malformed XML: truncated"}
		case strings.Contains(msg, "entity"):
			return &cdaError{line: se.Line, reason: "malformed XML: undefined entity (" + reasonDTD + ")"}
		case strings.Contains(msg, "closed by") || strings.Contains(msg, "unexpected end element"):
			return &cdaError{line: se.Line, reason: "malformed XML: mismatched end tag"}
		case strings.Contains(msg, "UTF-8"):
			return &cdaError{line: se.Line, reason: "malformed XML: invalid UTF-8 (and no other encoding declared)"}
		}
		return &cdaError{line: se.Line, reason: "malformed XML: syntax error"}
	}
	if strings.Contains(err.Error(), "CharsetReader") || strings.Contains(err.Error(), "encoding") {
		return &cdaError{line: line, reason: reasonEncoding}
	}
	return &cdaError{line: line, reason: "malformed XML"}
}

// cdaCharsetReader reads the 8-bit encodings Italian producers still declare. Any other
// encoding is refused (the document is quarantined, the reason naming the label).
func cdaCharsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1":
		return charmap.ISO8859_1.NewDecoder().Reader(in), nil
	case "windows-1252", "cp1252":
		return charmap.Windows1252.NewDecoder().Reader(in), nil
	case "iso-8859-15", "iso8859-15", "latin9", "latin-9":
		return charmap.ISO8859_15.NewDecoder().Reader(in), nil
	}
	return nil, &unsupportedEncoding{}
}

// unsupportedEncoding is a declared encoding Velo does not read.
type unsupportedEncoding struct {
	inUTF16 bool // declared by a document that is UTF-16
}

func (e *unsupportedEncoding) Error() string { return "unsupported encoding" }

// reason says what is wrong. It never names the declared label: that is the
// producer's text, which a reason never quotes.
func (e *unsupportedEncoding) reason() string {
	if e.inUTF16 {
		return "unsupported character encoding: a UTF-16 document declares another encoding"
	}
	return reasonEncoding
}

const reasonEncoding = "unsupported character encoding (UTF-8, UTF-16, ISO-8859-1, ISO-8859-15 and windows-1252 are read)"

// utf16Order tells whether data is UTF-16 and in which byte order: by its byte order
// mark, or, without one, by the first character of an XML document ('<', or the
// whitespace before it) being a NUL-padded ASCII character.
func utf16Order(data []byte) (enc encoding.Encoding, ok bool) {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		return unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM), true
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM), true
	case len(data) >= 4 && data[0] != 0 && data[1] == 0 && data[2] != 0 && data[3] == 0 && data[0] < 0x80 && data[2] < 0x80:
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true
	case len(data) >= 4 && data[0] == 0 && data[1] != 0 && data[2] == 0 && data[3] != 0 && data[1] < 0x80 && data[3] < 0x80:
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), true
	}
	return nil, false
}

// namesClinicalDocument tells whether the head of a file, UTF-16 or not, names a
// ClinicalDocument (the sniff of a CDA: the reader checks the root and its namespace).
func namesClinicalDocument(head []byte) bool {
	if enc, ok := utf16Order(head); ok {
		u, err := enc.NewDecoder().Bytes(head[:len(head)&^1])
		return err == nil && bytes.Contains(u, []byte("ClinicalDocument"))
	}
	return bytes.Contains(head, []byte("ClinicalDocument"))
}

// toUTF8 transcodes a UTF-16 document (BOM or not) to UTF-8; other documents are
// returned as they are (their XML declaration names their encoding). A UTF-16
// document that does not decode is an error.
func toUTF8(data []byte) (out []byte, wasUTF16 bool, err error) {
	enc, ok := utf16Order(data)
	if !ok {
		return data, false, nil
	}
	if len(data)%2 != 0 {
		return nil, true, errors.New("odd length")
	}
	out, err = enc.NewDecoder().Bytes(data)
	if err != nil {
		return nil, true, err
	}
	if bytes.ContainsRune(out, utf8.RuneError) && !bytes.ContainsRune(data, utf8.RuneError) {
		// The decoder replaces an unpaired surrogate: a document that needs it is malformed.
		return nil, true, errors.New("unpaired surrogate")
	}
	return out, true, nil
}
