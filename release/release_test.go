package release_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/release"
)

// sample is a release as the engine builds it: one key and one dp column, a row without
// an interval.
func sample() *release.Release {
	return &release.Release{
		ReleaseID: "r_7_abc", Project: "wl", DatasetVersion: "ds_1",
		Columns: []release.Column{
			{Name: "region", Type: "VARCHAR", Kind: "key"},
			{Name: "avg_wait", Type: "DOUBLE", Kind: "dp", Aggregate: "avg", Bounds: &[2]float64{0, 365}},
		},
		Rows:       [][]any{{"120", 41.5}, {"130", 12.0}},
		CI:         [][]any{{nil, []float64{38.25, 44.75}}, {nil, nil}},
		Confidence: 0.95, Epsilon: 1, Delta: 0,
		BudgetSplit: []release.SplitEntry{{For: "avg_wait (sum)", Mechanism: "laplace", Epsilon: 0.5}, {For: "avg_wait (count)", Mechanism: "laplace", Epsilon: 0.5}},
		BudgetLeft:  release.BudgetAmount{Epsilon: 9, Delta: 1e-5},
		SQL:         "SELECT region, AVG(wait_days) AS avg_wait FROM booking GROUP BY region",
		Bounding:    release.BoundingInfo{MaxGroupsContributed: 1, MaxRowsPerGroup: 1},
	}
}

// The JSON field names are the contract (docs/design.md#the-release): extra fields may be
// added, these
// may not change.
func TestJSONShape(t *testing.T) {
	b, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"release_id":"r_7_abc","project":"wl","dataset_version":"ds_1","cached":false,` +
		`"columns":[{"name":"region","type":"VARCHAR","kind":"key"},{"name":"avg_wait","type":"DOUBLE","kind":"dp","aggregate":"avg","bounds":[0,365]}],` +
		`"rows":[["120",41.5],["130",12]],"ci":[[null,[38.25,44.75]],[null,null]],"confidence":0.95,"epsilon":1,"delta":0,` +
		`"budget_split":[{"for":"avg_wait (sum)","mechanism":"laplace","epsilon":0.5,"delta":0},{"for":"avg_wait (count)","mechanism":"laplace","epsilon":0.5,"delta":0}],` +
		`"budget_left":{"epsilon":9,"delta":0.00001},"sql":"SELECT region, AVG(wait_days) AS avg_wait FROM booking GROUP BY region",` +
		`"bounding":{"max_groups_contributed":1,"max_rows_per_group":1,"partition_selection":false}}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
}

func TestCIBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cell   any
		lo, hi float64
		ok     bool
	}{
		{"as built", []float64{1, 2}, 1, 2, true},
		{"decoded", []any{1.5, 2.5}, 1.5, 2.5, true},
		{"decoded with UseNumber", []any{json.Number("-3"), json.Number("4e2")}, -3, 400, true},
		{"no interval", nil, 0, 0, false},
		{"not a pair", []float64{1}, 0, 0, false},
		{"not numbers", []any{"a", "b"}, 0, 0, false},
	} {
		lo, hi, ok := release.CIBounds(tc.cell)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("%s: got (%v, %v, %v), want (%v, %v, %v)", tc.name, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

// CSV carries the release's fields as leading comments and each dp column's interval
// beside it; a release decoded from JSON writes the same CSV as the one built.
func TestWriteCSV(t *testing.T) {
	var built bytes.Buffer
	if err := sample().WriteCSV(&built); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sample())
	var decoded release.Release
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := decoded.WriteCSV(&again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(built.String(), again.String()); diff != "" {
		t.Errorf("decoded release writes other CSV (-built +decoded):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(built.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("CSV too short:\n%s", built.String())
	}
	want := []string{"region,avg_wait,avg_wait_ci_lower,avg_wait_ci_upper", "120,41.5,38.25,44.75", "130,12,,"}
	if diff := cmp.Diff(want, lines[len(lines)-3:]); diff != "" {
		t.Errorf("CSV rows (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(lines[0], "# release_id: r_7_abc") {
		t.Errorf("first line %q", lines[0])
	}
}
