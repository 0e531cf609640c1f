package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/synth"
)

// decodeJSON is encoding/json's Unmarshal, value and error, on every input: FHIR
// resources of every kind Velo maps, every line of a synthetic extract (its planted damage
// included), and what the fuzzer makes of them (go test -fuzz FuzzDecodeJSONAsEncodingJSON ./ingest),
// into the resource a line decodes to, a Bundle entry, and the concepts and identifiers
// decoded from a resource's raw fields.
func FuzzDecodeJSONAsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"` + fuzzCF + `"}],"gender":"male","birthDate":"1985-12-10","address":[{"use":"home","state":"120"}]}`,
		`{"resourceType":"Observation","status":"final","category":[{"coding":[{"code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-03-01","valueQuantity":{"value":5.4,"unit":"mmol/L"}}`,
		`{"resourceType":"Procedure","category":{"coding":[{"code":"x"}]},"identifier":{"value":"1"}}`,
		`{"resourceType":"Observation","valueQuantity":{"value":1e400}}`,
		`{"resourceType":"Observation","valueQuantity":{"value":"5.4"}}`,
		`{"resourceType":"Observation","status":5,"id":"o1","code":{"coding":[{"code":"a"}]}}`,
		`{"resourceType":"Patient","RESOURCETYPE":"Observation","Gender":"female","gender":"male"}`,
		`{"resourceType":"Patient","id":"\u00e8\ud800x","birthDate":"2001-01-01"}`,
		"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}",
		`{"resourceType":"Patient",}`,
		`{"resourceType":"Patient"} {}`,
		`{"resourceType":"Patient","extension":[{"url":"u","valueCode":null}],"meta":null}`,
		`{"resourceType":"Encounter","type":[{"coding":[{"code":"AMB"}]}],"period":{"start":"2024-01-01"}}`,
		`[1,2]`, `null`, `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		`{"a":` + strings.Repeat("[", 4990) + strings.Repeat("]", 4990) + `}`,
		`{"resourceType":"Observation","hasMember":[{"reference":"Observation/1"},7]}`,
		`{"resourceType":"Observation","category":[{"coding":[{"code":"laboratory"}]},{"coding":"x"}]}`,
		`{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"p1","gender":"female"}}`,
		`{"resource":null}`, `{"resource":[]}`,
	} {
		f.Add([]byte(s))
	}
	// A synthetic extract's NDJSON, its planted damage included: every line of 300 people.
	dir := f.TempDir()
	period, _ := fse.ParsePeriod("2024-01..2025-12")
	if _, err := synth.Generate(context.Background(), synth.Config{Persons: 300, Seed: 4, Out: dir, From: period.From, To: period.To, Formats: []synth.Format{synth.FormatFHIR}}); err != nil {
		f.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "fhir", "ndjson", "*.ndjson"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no NDJSON files in the synthetic extract: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f.Add([]byte(l))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		same(t, data, func() any { return new(resource) })
		same(t, data, func() any { return new(entryResource) })
		same(t, data, func() any { return new([]codeableConcept) })
		same(t, data, func() any { return new(codeableConcept) })
		same(t, data, func() any { return new([]fhirIdentifier) })
		var r resource
		if json.Unmarshal(data, &r) == nil {
			for _, raw := range [][]byte{r.Category, r.Type, r.Identifier} {
				if len(raw) > 0 {
					same(t, raw, func() any { return new([]codeableConcept) })
					same(t, raw, func() any { return new(codeableConcept) })
					same(t, raw, func() any { return new([]fhirIdentifier) })
					same(t, raw, func() any { return new(fhirIdentifier) })
				}
			}
		}
	})
}

// same checks that decodeJSON and encoding/json give the same value and error for data
// into a new value of one type.
func same(t *testing.T, data []byte, newV func() any) {
	t.Helper()
	want, got := newV(), newV()
	werr := json.Unmarshal(data, want)
	gerr := decodeJSON(data, got)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%T from %.300q: error %v, encoding/json's %v", want, data, gerr, werr)
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(resource{})); d != "" {
		t.Fatalf("%T from %.300q: differs from encoding/json's (-want +got):\n%s", want, data, d)
	}
}
