package ingest

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
)

// docsIngest is the page that explains the manifest's warnings and counts.
const docsIngest = "../docs/ingest.md"

// tableCodes are the codes in the first column of the Markdown table whose header's first
// cell is header.
func tableCodes(t *testing.T, doc, header string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n| "+header+" |")
	if !ok {
		t.Fatalf("%s has no table headed %q", docsIngest, header)
	}
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\|")
	var codes []string
	for _, line := range strings.Split(rest, "\n")[2:] { // after the header's delimiter row
		if !strings.HasPrefix(line, "|") {
			break
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: row %q of the %s table names no code", docsIngest, line, header)
		}
		codes = append(codes, m[1])
	}
	return codes
}

// Every warning the ingest counts is explained in docs/ingest.md, and the table there
// lists no other.
func TestWarningsDocumented(t *testing.T) {
	b, err := os.ReadFile(docsIngest)
	if err != nil {
		t.Fatal(err)
	}
	documented := tableCodes(t, string(b), "warning")
	for _, code := range warningCodes {
		if !slices.Contains(documented, code) {
			t.Errorf("warning %s is not explained in %s", code, docsIngest)
		}
	}
	for _, code := range documented {
		if !slices.Contains(warningCodes, code) {
			t.Errorf("%s explains a warning %s that the ingest does not count", docsIngest, code)
		}
	}
	if len(documented) != len(warningCodes) {
		t.Errorf("%s lists %d warnings, the ingest has %d", docsIngest, len(documented), len(warningCodes))
	}
}

// Every count of the manifest, per input file and per table, is explained in
// docs/ingest.md.
func TestManifestCountsDocumented(t *testing.T) {
	b, err := os.ReadFile(docsIngest)
	if err != nil {
		t.Fatal(err)
	}
	documented := tableCodes(t, string(b), "count")
	var counts []string
	for _, typ := range []reflect.Type{reflect.TypeFor[dataset.InputFile](), reflect.TypeFor[dataset.TableCounts]()} {
		for f := range typ.Fields() {
			if f.Type.Kind() != reflect.Int64 {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "bytes" && !slices.Contains(counts, name) {
				counts = append(counts, name)
			}
		}
	}
	if len(counts) < 10 {
		t.Fatalf("found %d counts in dataset.InputFile and dataset.TableCounts", len(counts))
	}
	for _, c := range counts {
		if !slices.Contains(documented, c) {
			t.Errorf("the manifest's count %s is not explained in %s", c, docsIngest)
		}
	}
}

// docs/ingest.md states the default memory limit that velo ingest uses (its flag and
// both Config and RemoveConfig take DefaultMemoryLimit).
func TestMemoryLimitDocumented(t *testing.T) {
	b, err := os.ReadFile(docsIngest)
	if err != nil {
		t.Fatal(err)
	}
	want := "`--memory-limit` (default " + DefaultMemoryLimit + ")"
	if !strings.Contains(strings.Join(strings.Fields(string(b)), " "), want) {
		t.Errorf("%s does not say %s", docsIngest, want)
	}
}
