package ingest

import (
	"fmt"
	"runtime"
)

// A defect in the mapping of one document must not take the run down, nor leave a
// half-written DATA behind: a panic while mapping one document (a CDA document, a FHIR
// Bundle, an NDJSON line) quarantines that document whole, with its position and what
// went wrong, and the batch goes on. A panic anywhere else in a pipeline's work fails
// the run with an error naming the file; the run's working folder is then removed, as
// for any other error, so DATA keeps the version it had.

// reasonInternal starts the quarantine reason of a document whose mapping panicked.
const reasonInternal = "internal error while mapping the document"

// recoverDocument, deferred by a function that maps one document into *recs, replaces
// its records by one quarantined record when it panics.
func recoverDocument(pos string, recs *[]record) {
	if r := recover(); r != nil {
		*recs = []record{{outcome: outQuarantined, reason: panicReason(r), pos: pos, docLocal: -1}}
	}
}

// panicReason names what went wrong without quoting a value: runtime errors describe
// the fault (a nil dereference, an index out of range with its numbers), never the
// data; any other panic value might hold document text, so it is not quoted.
func panicReason(r any) string {
	if e, ok := r.(runtime.Error); ok {
		return reasonInternal + ": " + e.Error()
	}
	return reasonInternal
}

// errWorkPanicked is a panic in a pipeline's work outside a document's mapping.
type errWorkPanicked struct{ reason string }

func (e errWorkPanicked) Error() string {
	return fmt.Sprintf("internal error (a bug in Velo, please report it): %s", e.reason)
}
