package plugin

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"

	"github.com/velo-fse/velo/release"
)

var updateFrames = flag.Bool("update-frames", false, "rewrite testdata/frames_*.jsonc")

func readRelease(t *testing.T, name string) *release.Release {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var r release.Release
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// A release with every kind of key (date, string, boolean, integer, nulls) and DP columns
// with and without intervals, as a table and as a time series; exact golden frames (the
// numbers are fixed here, not noisy).
func TestReleaseFrames(t *testing.T) {
	for _, format := range []string{formatTable, formatTimeSeries} {
		f, err := releaseFrame(readRelease(t, "release_types.json"), "A", format, "SELECT 1")
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		experimental.CheckGoldenJSONFrame(t, "testdata", "frames_"+format, f, *updateFrames)
	}
}

func TestReleaseFrameShapes(t *testing.T) {
	rel := readRelease(t, "release_types.json")
	table, err := releaseFrame(rel, "A", formatTable, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := table.RowLen(); n != 4 || len(table.Fields) != 4+2*3 {
		t.Fatalf("table: %d rows, %d fields", n, len(table.Fields))
	}
	if lo, _ := table.FieldByName("bookings_ci_lower"); lo == nil || lo.At(1) == nil || *lo.At(1).(*float64) != -13.75 {
		t.Errorf("bookings_ci_lower row 1 = %v", lo.At(1))
	}
	if hi, _ := table.FieldByName("median_wait_ci_upper"); hi == nil || hi.At(0).(*float64) != nil {
		t.Error("a value without an interval got one")
	}
	series, err := releaseFrame(rel, "A", formatTimeSeries, "")
	if err != nil {
		t.Fatal(err)
	}
	if series.TimeSeriesSchema().Type != data.TimeSeriesTypeWide {
		t.Fatalf("time series is %s", series.TimeSeriesSchema().Type)
	}
	// The row without a date is dropped (with no time it cannot be plotted); two weeks remain.
	if n, _ := series.RowLen(); n != 2 {
		t.Errorf("%d time points, want 2", n)
	}
	// A malformed release is an error, not a wrong frame.
	bad := readRelease(t, "release_types.json")
	bad.Rows[0] = bad.Rows[0][:3]
	if _, err := releaseFrame(bad, "A", formatTable, ""); err == nil || !strings.Contains(err.Error(), "row 0 has 3 cells for 6 columns") {
		t.Errorf("short row: %v", err)
	}
	bad = readRelease(t, "release_types.json")
	bad.Rows[1][0] = "last tuesday"
	if _, err := releaseFrame(bad, "A", formatTimeSeries, ""); err == nil || !strings.Contains(err.Error(), `"last tuesday" is not a date`) {
		t.Errorf("bad date: %v", err)
	}
	bad = readRelease(t, "release_types.json")
	bad.CI[0][4] = []any{json.Number("1")}
	if _, err := releaseFrame(bad, "A", formatTable, ""); err == nil || !strings.Contains(err.Error(), "not a pair") {
		t.Errorf("bad interval: %v", err)
	}
}

// A release's notes reach the panel as warnings, and its key labels as value mappings that
// show each code with its public name, the code staying the value.
func TestReleaseNotesAndLabels(t *testing.T) {
	rel := readRelease(t, "release_types.json")
	rel.Columns[1].Labels = map[string]string{"120": "Lazio", "030": "Lombardia"}
	rel.Notes = []string{"bookings: 1 value of 4 was outside [0, +∞), the range the aggregate can take"}
	f, err := releaseFrame(rel, "A", formatTable, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Meta.Notices; len(n) != 2 || n[1].Severity != data.NoticeSeverityWarning || n[1].Text != rel.Notes[0] {
		t.Errorf("notices %+v", n)
	}
	region, _ := f.FieldByName("region")
	if region == nil || region.Config == nil || len(region.Config.Mappings) != 1 {
		t.Fatalf("region field config %+v", region)
	}
	m, ok := region.Config.Mappings[0].(data.ValueMapper)
	if !ok || m["120"].Text != "120 Lazio" || *region.At(0).(*string) != "120" {
		t.Errorf("mappings %+v, value %v", region.Config.Mappings, region.At(0))
	}
}
