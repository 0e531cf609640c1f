package ingest

import (
	"encoding/json"
	"reflect"

	fastjson "github.com/segmentio/encoding/json"
)

// decodeJSON decodes data into v (a pointer) exactly as encoding/json's Unmarshal does,
// with segmentio's decoder where it succeeds: FHIR resources decode in about half the CPU
// time (encoding/json scans every value twice, once only to validate it). Where segmentio
// fails, encoding/json decodes again from a zero v, so that the error is encoding/json's
// own — a syntax error names its byte, which the quarantine reports — and what
// encoding/json fills in beside a type error is what the caller gets, as before.
// FuzzDecodeJSONAsEncodingJSON holds decodeJSON to encoding/json's values and errors.
func decodeJSON(data []byte, v any) error {
	// encoding/json refuses a value nested more than 10,000 deep, which segmentio decodes:
	// an input of at most that many bytes cannot be. Longer ones (a Bundle on one line,
	// say) are encoding/json's alone.
	if len(data) <= maxFastJSON && fastjson.Unmarshal(data, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	return json.Unmarshal(data, v)
}

// maxFastJSON is the longest input segmentio decodes: encoding/json's nesting limit.
const maxFastJSON = 10_000
