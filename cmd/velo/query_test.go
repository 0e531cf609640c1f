package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/release"
)

// velo query prints a release people read right: key codes with their public names, values
// flagged and explained below the table, partition selection's even-odds group size, and a
// refusal with a caret under the construct it names.
func TestQueryCommand(t *testing.T) {
	data := apitest.Dataset(t)
	state := filepath.Join(t.TempDir(), "state")
	mustVelo(t, "project", "create", "--state", state, "--id", "wl", "--purpose", "waiting lists", "--legal-basis", "art. 9(2)(h) GDPR",
		"--allow", "booking", "--epsilon-budget", "10", "--delta-budget", "1e-5", "--default-epsilon", "0.5")
	q := func(args ...string) (string, error) {
		return velo(t, append([]string{"query", "--data", data, "--state", state, "--project", "wl"}, args...)...)
	}

	// Empty groups (no waits over 400 days), clamped: every count is noise around 0, so of 84
	// at least one is clamped (all ≥ 0 has probability < 0.55⁸⁴), and every share's interval
	// is the whole [0, 1] but with probability < 0.02⁸⁴ for none.
	sql := "SELECT region, priority, AVG(CAST(garanzia AS INTEGER)) AS share, COUNT(*) AS n FROM booking WHERE wait_days > 400 GROUP BY region, priority"
	out, err := q("--epsilon", "1", "--clamp-to-range", sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"120 Lazio", "U urgente (within 72 hours)", // codes with their names
		"0.00*",         // a clamped count
		"[0.00, 1.00]?", // an interval that says nothing
		"* noisy value outside the aggregate's range, clamped to it (clamp_to_range)",
		"? the interval covers the aggregate's whole range",
		"note: n: ", "clamped into it", "note: share: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " -") && strings.Contains(line, "Lazio") {
			t.Errorf("a clamped table shows a negative value: %s", line)
		}
	}

	// Partition selection, priced in a dry run: the group size released with even odds.
	out, err = q("--epsilon", "1", "--delta", "1e-6", "--dry-run", "--format", "json", "SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rel release.Release
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rel.Selection == nil || rel.Selection.PersonsForEvenOdds < 2 || len(rel.Notes) == 0 || !strings.Contains(rel.Notes[0], "with even odds") {
		t.Errorf("dry run: selection %+v, notes %q", rel.Selection, rel.Notes)
	}

	// A refusal names the user's construct, with a caret under it.
	out, err = q("SELECT COUNT(*) AS n FROM booking WHERE d_appointment > d_contact + INTERVAL 30 DAY")
	if err == nil {
		t.Fatalf("an INTERVAL was answered:\n%s", out)
	}
	msg := err.Error()
	if !strings.Contains(msg, "sql_rejected: intervals (INTERVAL 30 DAY, INTERVAL '1 month') are not supported") ||
		!strings.Contains(msg, "(at position 68)\n    SELECT COUNT(*) AS n FROM booking WHERE d_appointment > d_contact + INTERVAL 30 DAY\n"+strings.Repeat(" ", 4+68)+"^") {
		t.Errorf("refusal:\n%s", msg)
	}
}

// velo query --dummy answers on the dummy twin: marked as dummy in the table and the JSON,
// with the real run's price, nothing charged; then the same SQL runs for real, charged, and
// velo ledger verify passes with the dummy run in the ledger.
func TestQueryDummy(t *testing.T) {
	data := apitest.Dataset(t)
	state := filepath.Join(t.TempDir(), "state")
	mustVelo(t, "project", "create", "--state", state, "--id", "wl", "--purpose", "waiting lists", "--legal-basis", "art. 9(2)(h) GDPR",
		"--allow", "booking", "--epsilon-budget", "10", "--delta-budget", "1e-5", "--default-epsilon", "0.5")
	q := func(args ...string) string {
		t.Helper()
		out, err := velo(t, append([]string{"query", "--data", data, "--state", state, "--project", "wl"}, args...)...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	sql := "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"
	out := q("--dummy", "--epsilon", "1", sql)
	if !strings.Contains(out, "DUMMY DATA") || !strings.Contains(out, "the real run costs epsilon=1 ") || !strings.Contains(out, "budget left epsilon=10 ") {
		t.Errorf("dummy table:\n%s", out)
	}
	var rel release.Release
	if err := json.Unmarshal([]byte(q("--dummy", "--epsilon", "1", "--format", "json", sql)), &rel); err != nil {
		t.Fatal(err)
	}
	if !rel.Dummy || rel.Price == nil || rel.Price.Epsilon != 1 || rel.Epsilon != 0 || rel.BudgetLeft.Epsilon != 10 {
		t.Errorf("dummy release: dummy=%v price=%v epsilon=%g left=%v", rel.Dummy, rel.Price, rel.Epsilon, rel.BudgetLeft)
	}
	if csv := q("--dummy", "--format", "csv", sql); !strings.Contains(csv, "# dummy: true") || !strings.Contains(csv, "# price: epsilon=0.5 ") {
		t.Errorf("dummy CSV:\n%s", csv)
	}
	if out := q("--epsilon", "1", sql); !strings.Contains(out, "charged epsilon=1 ") || !strings.Contains(out, "budget left epsilon=9 ") {
		t.Errorf("real run after the dummy ones:\n%s", out)
	}
	out = mustVelo(t, "ledger", "verify", "--state", state)
	if !strings.Contains(out, "dummy") {
		t.Errorf("ledger verify does not list the dummy runs:\n%s", out)
	}
	if _, err := velo(t, "query", "--data", data, "--state", state, "--project", "wl", "--dummy", "--dry-run", sql); err == nil {
		t.Error("--dummy with --dry-run accepted")
	}
}
