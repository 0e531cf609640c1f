package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unicode/utf16"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/velo-fse/velo/pseudonymize"
)

// Producers send most FSE documents as a PDF/A with the CDA injected as an attachment
// (the Gateway's "ATTACHMENT" mode), often PAdES-signed. A PDF is read for its attachments
// only: the embedded files of its EmbeddedFiles name tree and the PDF/A-3 associated
// files of its catalog (/AF). Each attachment that is a ClinicalDocument goes through the
// CDA reader, its records' positions naming the attachment ("attachment cda.xml line
// 12"); nothing of the PDF's own text, metadata or signature is decoded. A PDF is one
// document of the CDA pipeline (ingestCDAFiles): the producer reads its bytes, a worker
// extracts and maps it.
//
// The PDF is parsed by pdfcpu, with its configuration directory disabled (it would
// otherwise write one under the user's home) and resource limits tied to Velo's: a PDF is
// at most maxCDABytes, and no stream decodes to more than that.

// Reasons a PDF, or one of its attachments, is quarantined.
var (
	reasonPDFTooLarge      = fmt.Sprintf("PDF larger than %d MiB", maxCDABytes>>20)
	reasonPDFUnreadable    = "not a readable PDF (damaged or truncated: its cross-reference table or objects cannot be parsed)"
	reasonPDFEncrypted     = "encrypted PDF (PDF/A forbids encryption): its attachments are not read"
	reasonPDFNoCDA         = "PDF carries no HL7 CDA R2 attachment (no embedded file is a ClinicalDocument)"
	reasonPDFAttachDamaged = "PDF attachment cannot be read (damaged file specification or stream)"
	reasonPDFAttachLarge   = fmt.Sprintf("PDF attachment larger than %d MiB", maxCDABytes>>20)
	reasonPDFAttachFilter  = "PDF attachment uses a stream filter Velo cannot decode"
	reasonPDFAttachNotCDA  = "PDF attachment is not an HL7 CDA R2 document"
)

// maxPDFTreeDepth bounds the recursion into a name tree's Kids (a hostile PDF may nest
// them, or make them a cycle).
const maxPDFTreeDepth = 32

// pdfConfig is the configuration of every PDF read: pdfcpu's defaults without its
// configuration directory, and limits no larger than Velo's own.
var pdfConfig = sync.OnceValue(func() model.Configuration {
	api.DisableConfigDir()
	c := model.NewDefaultConfiguration()
	c.Cmd = model.EXTRACTATTACHMENTS
	c.ValidationMode = model.ValidationRelaxed
	c.Limits.MaxStreamBytes = maxCDABytes
	c.Limits.MaxDecodeBytes = maxCDABytes
	c.Limits.MaxObjectCount = 1 << 20
	c.Limits.MaxXRefEntries = 1 << 20
	c.Limits.MaxObjectStreamCount = 1 << 16
	return *c
})

// pdfAttachment is one embedded file: its masked name and its bytes, or why they could
// not be had.
type pdfAttachment struct {
	name   string
	data   []byte
	reason string
}

// readPDFAttachments parses a PDF and returns its attachments, or the reason the PDF
// cannot be read. A panic inside the PDF parser on a hostile file is a damaged PDF,
// never a crash of the run.
func readPDFAttachments(data []byte) (atts []pdfAttachment, reason string) {
	defer func() {
		if r := recover(); r != nil {
			atts, reason = nil, reasonPDFUnreadable
		}
	}()
	conf := pdfConfig()
	ctx, err := api.ReadContext(bytes.NewReader(data), &conf)
	switch {
	case err != nil && (errors.Is(err, pdfcpu.ErrWrongPassword) || errors.Is(err, pdfcpu.ErrUnsupportedEncryptionFeature) || errors.Is(err, pdfcpu.ErrEncrypted)):
		return nil, reasonPDFEncrypted
	case err != nil:
		return nil, reasonPDFUnreadable
	case ctx.Encrypt != nil:
		return nil, reasonPDFEncrypted
	}
	xt := ctx.XRefTable
	cat, err := xt.Catalog()
	if err != nil || cat == nil {
		return nil, reasonPDFUnreadable
	}
	var specs []types.Object
	seen := map[int]bool{} // file specifications by object number: /AF repeats the tree's
	add := func(o types.Object) {
		if ref, ok := o.(types.IndirectRef); ok {
			if seen[ref.ObjectNumber.Value()] {
				return
			}
			seen[ref.ObjectNumber.Value()] = true
		}
		specs = append(specs, o)
	}
	if o, ok := cat.Find("Names"); ok {
		if names, err := xt.DereferenceDict(o); err == nil && names != nil {
			if tree, ok := names.Find("EmbeddedFiles"); ok {
				walkPDFNameTree(xt, tree, 0, map[int]bool{}, add)
			}
		}
	}
	if o, ok := cat.Find("AF"); ok {
		if arr, err := xt.DereferenceArray(o); err == nil {
			for _, e := range arr {
				add(e)
			}
		}
	}
	for _, s := range specs {
		atts = append(atts, readPDFFileSpec(xt, s))
	}
	return atts, ""
}

// walkPDFNameTree calls add with the value of every leaf entry of a name tree.
func walkPDFNameTree(xt *model.XRefTable, o types.Object, depth int, nodes map[int]bool, add func(types.Object)) {
	if depth > maxPDFTreeDepth {
		return
	}
	if ref, ok := o.(types.IndirectRef); ok {
		if nodes[ref.ObjectNumber.Value()] {
			return
		}
		nodes[ref.ObjectNumber.Value()] = true
	}
	d, err := xt.DereferenceDict(o)
	if err != nil || d == nil {
		return
	}
	if kids, ok := d.Find("Kids"); ok {
		if arr, err := xt.DereferenceArray(kids); err == nil {
			for _, k := range arr {
				walkPDFNameTree(xt, k, depth+1, nodes, add)
			}
		}
	}
	if names, ok := d.Find("Names"); ok {
		if arr, err := xt.DereferenceArray(names); err == nil {
			for i := 1; i < len(arr); i += 2 {
				add(arr[i])
			}
		}
	}
}

// readPDFFileSpec decodes the embedded file of one file specification, never more than
// maxCDABytes of it.
func readPDFFileSpec(xt *model.XRefTable, o types.Object) pdfAttachment {
	a := pdfAttachment{name: "(unnamed)"}
	d, err := xt.DereferenceDict(o)
	if err != nil || d == nil {
		a.reason = reasonPDFAttachDamaged
		return a
	}
	for _, key := range []string{"UF", "F"} {
		if v, ok := d.Find(key); ok {
			if s, err := xt.DereferenceStringOrHexLiteral(v, model.V10, nil); err == nil && s != "" {
				a.name = pdfAttachmentName(s)
				break
			}
		}
	}
	ef, ok := d.Find("EF")
	if !ok {
		a.reason = reasonPDFAttachDamaged // a reference to an external file: nothing embedded
		return a
	}
	efd, err := xt.DereferenceDict(ef)
	if err != nil || efd == nil {
		a.reason = reasonPDFAttachDamaged
		return a
	}
	stream, ok := efd.Find("F")
	if !ok {
		stream, ok = efd.Find("UF")
	}
	if !ok {
		a.reason = reasonPDFAttachDamaged
		return a
	}
	sd, _, err := xt.DereferenceStreamDict(stream)
	if err != nil || sd == nil {
		a.reason = reasonPDFAttachDamaged
		return a
	}
	if err := sd.DecodeWithLimit(maxCDABytes); err != nil {
		switch {
		case errors.Is(err, filter.ErrDecodeLimitExceeded):
			a.reason = reasonPDFAttachLarge
		case errors.Is(err, filter.ErrUnsupportedFilter):
			a.reason = reasonPDFAttachFilter
		default:
			a.reason = reasonPDFAttachDamaged
		}
		return a
	}
	a.data = sd.Content
	if len(a.data) > maxCDABytes {
		a.data, a.reason = nil, reasonPDFAttachLarge
	}
	return a
}

// pdfAttachmentName is an attachment's name as positions show it: identifier-shaped
// parts masked (a producer may name the file after the patient), at most 200 bytes.
func pdfAttachmentName(s string) string {
	s = pseudonymize.MaskIdentifiers(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// looksLikeCDA tells whether an attachment names a ClinicalDocument in its first 64 KiB,
// in UTF-8 (or any ASCII-compatible encoding) or UTF-16.
func looksLikeCDA(b []byte) bool {
	head := b[:min(len(b), 64<<10)]
	if bytes.Contains(head, []byte("ClinicalDocument")) {
		return true
	}
	u := utf16.Encode([]rune("ClinicalDocument"))
	le := make([]byte, 0, 2*len(u))
	be := make([]byte, 0, 2*len(u))
	for _, c := range u {
		le = append(le, byte(c), byte(c>>8))
		be = append(be, byte(c>>8), byte(c))
	}
	return bytes.Contains(head, le) || bytes.Contains(head, be)
}

// pdfWork maps one PDF: every CDA attachment as a document, positions prefixed with the
// attachment's name; the PDF's other attachments are ignored by reason.
func (m *mapper) pdfWork(data []byte, prefix string) []record {
	atts, reason := readPDFAttachments(data)
	if reason != "" {
		return []record{{outcome: outQuarantined, reason: reason, pos: cdaPos(prefix, 0), docLocal: -1}}
	}
	var recs []record
	found := false
	for _, a := range atts {
		apos := prefix + "attachment " + a.name + " "
		switch {
		case a.reason != "":
			found = true // it may have been the CDA: its own reason says why it was not read
			recs = append(recs, record{outcome: outQuarantined, reason: a.reason, pos: cdaPos(apos, 0), docLocal: -1})
		case !looksLikeCDA(a.data):
			recs = append(recs, record{outcome: outIgnored, reason: reasonPDFAttachNotCDA, pos: cdaPos(apos, 0), docLocal: -1})
		default:
			found = true
			recs = appendDocument(recs, m.mapCDA(a.data, apos))
		}
	}
	if !found {
		recs = append(recs, record{outcome: outQuarantined, reason: reasonPDFNoCDA, pos: cdaPos(prefix, 0), docLocal: -1})
	}
	return recs
}

// appendDocument appends one document's records to recs, moving their references to
// the document's record (indices into their own slice) along.
func appendDocument(recs, doc []record) []record {
	off := len(recs)
	for _, r := range doc {
		if r.docLocal >= 0 {
			r.docLocal += off
		}
		recs = append(recs, r)
	}
	return recs
}

// isDocumentFormat tells the formats read one document per file through ingestCDAFiles.
func isDocumentFormat(format string) bool { return format == formatCDA || format == formatPDF }
