package release_test

import (
	"bytes"
	"encoding/json"
	"math/big"
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
	want := []string{"region,avg_wait,avg_wait_ci_lower,avg_wait_ci_upper,avg_wait_flags", "120,41.5,38.25,44.75,", "130,12,,,"}
	if diff := cmp.Diff(want, lines[len(lines)-3:]); diff != "" {
		t.Errorf("CSV rows (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(lines[0], "# release_id: r_7_abc") {
		t.Errorf("first line %q", lines[0])
	}
}

// The table shows key codes with their names, marks flagged values (explained once below
// the table) and prints the notes; CSV carries the flags beside each dp column and the
// notes and selection as leading lines.
func TestFlagsLabelsAndNotes(t *testing.T) {
	r := sample()
	zero, one := 0.0, 1.0
	r.Columns[0].Labels = map[string]string{"120": "Lazio"}
	r.Columns[1].Range = &release.Range{Lo: &zero, Hi: &one}
	r.Rows[1][1] = 0.0
	r.CI[1][1] = []float64{0, 1}
	r.ClampToRange = true
	r.Flags = [][][]string{nil, {nil, {release.FlagClamped, release.FlagUninformative}}}
	r.Notes = []string{"avg_wait: 1 noisy value of 2 was outside [0, 1]"}
	kept := 2
	r.Selection = &release.Selection{Mechanism: "preagg_select_partition", Epsilon: 0.5, Delta: 5e-7, MaxGroupsContributed: 1, PersonsForEvenOdds: 14, PersonsFor95Percent: 16, GroupsKept: &kept}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"120 Lazio  41.50 [38.25, 44.75]\n", "130   0.00* [0.00, 1.00]?\n",
		"* noisy value outside", "? the interval covers", "note: avg_wait: 1 noisy value of 2 was outside [0, 1]"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var csvOut bytes.Buffer
	if err := r.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# clamp_to_range: true\n", "# selection: preagg_select_partition epsilon=0.5 delta=5e-07 max_groups_contributed=1 persons_for_even_odds=14 persons_for_95_percent=16 groups_kept=2\n",
		"# note: avg_wait: 1 noisy value of 2 was outside [0, 1]\n", "120,41.5,38.25,44.75,\n", "130,0,0,1,clamped uninformative\n"} {
		if !strings.Contains(csvOut.String(), want) {
			t.Errorf("CSV lacks %q:\n%s", want, csvOut.String())
		}
	}
	// The range prints with open ends.
	if s := (&release.Range{Lo: &zero}).String(); s != "[0, +∞)" {
		t.Errorf("range %s", s)
	}
}

// TestTableFooter: the table's footer promises confidence intervals only when some value
// has one, and names the release only when there is one (a dry run has none).
func TestTableFooter(t *testing.T) {
	footer := func(r *release.Release) string {
		var b bytes.Buffer
		if err := r.WriteTable(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	r := sample()
	if got := footer(r); !strings.Contains(got, "(95% confidence intervals)") || !strings.Contains(got, "; release r_7_abc") {
		t.Errorf("a release with an interval:\n%s", got)
	}
	r.CI = [][]any{{nil, nil}, {nil, nil}}
	r.ReleaseID, r.DryRun = "", true
	got := footer(r)
	if strings.Contains(got, "confidence intervals") || strings.Contains(got, "release") && strings.Contains(got, "; release") {
		t.Errorf("a dry run without intervals:\n%s", got)
	}
	if !strings.Contains(got, "dry run: would be charged") {
		t.Errorf("a dry run's footer does not say so:\n%s", got)
	}
}

// Number reads every numeric cell a driver or a JSON decoder gives, and nothing else.
func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want float64
		ok   bool
	}{
		{float64(1.5), 1.5, true}, {float32(2), 2, true}, {int(-3), -3, true}, {int8(4), 4, true},
		{int16(5), 5, true}, {int32(6), 6, true}, {int64(7), 7, true}, {uint8(8), 8, true},
		{uint32(9), 9, true}, {uint64(10), 10, true}, {big.NewInt(11), 11, true},
		{json.Number("12.5"), 12.5, true}, {json.Number("x"), 0, false},
		{nil, 0, false}, {"13", 0, false}, {true, 0, false}, {(*big.Int)(nil), 0, false},
	} {
		if got, ok := release.Number(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("Number(%#v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
