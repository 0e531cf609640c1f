package notebooksapi_test

import (
	"math"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/release"
)

// Numbers people read right: a release says which values lie outside the range their
// aggregate can take, clamps them on request (post-processing: the cached release is clamped
// too, at no new charge), flags the intervals that cover the whole range, names key codes,
// and says what partition selection left out and how many people a group needs.
func TestReadableReleases(t *testing.T) {
	ts := startServer(t)
	// Empty groups (no booking waits over 400 days): every count is noise around 0, and every
	// share's interval is the whole of [0, 1] unless the noise is freak. Of 84 counts, all are
	// ≥ 0 with probability below 0.55⁸⁴ < 10⁻²¹; no share flagged uninformative, below 0.02⁸⁴.
	sql := "SELECT region, priority, AVG(CAST(garanzia AS INTEGER)) AS share, COUNT(*) AS n FROM booking WHERE wait_days > 400 GROUP BY region, priority"
	ask := func(body map[string]any) release.Release {
		t.Helper()
		resp, b := ts.call(t, "rita", "POST", "/v1/queries", body)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var rel release.Release
		mustJSON(t, b, &rel)
		return rel
	}
	raw := ask(map[string]any{"sql": sql, "project": "wl", "epsilon": 1})
	if len(raw.Rows) != 84 || raw.ClampToRange {
		t.Fatalf("%d rows, clamp %v", len(raw.Rows), raw.ClampToRange)
	}
	if r := raw.Columns[3].Range; r == nil || r.Lo == nil || *r.Lo != 0 || r.Hi != nil {
		t.Fatalf("count range %v, want [0, +inf)", r)
	}
	if r := raw.Columns[2].Range; !r.Bounded() || *r.Lo != 0 || *r.Hi != 1 {
		t.Fatalf("share range %v, want [0, 1]", r)
	}
	negative, uninformative := 0, 0
	for i, row := range raw.Rows {
		if row[3].(float64) < 0 {
			negative++
		}
		if lo, hi, _ := release.CIBounds(raw.CI[i][2]); lo <= 0 && hi >= 1 {
			uninformative++
			if f := raw.FlagsOf(i, 2); len(f) != 1 || f[0] != release.FlagUninformative {
				t.Errorf("row %d: share interval [%v, %v] flagged %v", i, lo, hi, f)
			}
		} else if len(raw.FlagsOf(i, 2)) != 0 {
			t.Errorf("row %d: share interval [%v, %v] flagged %v", i, lo, hi, raw.FlagsOf(i, 2))
		}
		if len(raw.FlagsOf(i, 3)) != 0 {
			t.Errorf("row %d: an unclamped count flagged %v", i, raw.FlagsOf(i, 3))
		}
	}
	if negative == 0 || uninformative == 0 {
		t.Fatalf("%d negative counts, %d uninformative shares", negative, uninformative)
	}
	if !hasNote(raw.Notes, "n: ", "outside [0, +∞)", "clamp_to_range") || !hasNote(raw.Notes, "share: ", "covering the whole range [0, 1]") {
		t.Errorf("notes: %q", raw.Notes)
	}
	// Key codes keep their value and gain their public names.
	if raw.Columns[0].Labels["120"] != "Lazio" || raw.Columns[1].Labels["U"] != "urgente (within 72 hours)" || raw.Rows[0][0] == "Piemonte" {
		t.Errorf("labels: %v, %v; first row %v", raw.Columns[0].Labels, raw.Columns[1].Labels, raw.Rows[0])
	}

	// The same query, clamped: the cached release, no new charge.
	before := ts.project(t, "wl")
	clamped := ask(map[string]any{"sql": sql, "project": "wl", "epsilon": 1, "clamp_to_range": true})
	if !clamped.Cached || clamped.ReleaseID != raw.ReleaseID || !clamped.ClampToRange || ts.project(t, "wl").Queries != before.Queries {
		t.Fatalf("clamped: cached %v release %s (first %s) clamp %v", clamped.Cached, clamped.ReleaseID, raw.ReleaseID, clamped.ClampToRange)
	}
	for i, row := range clamped.Rows {
		was := raw.Rows[i][3].(float64)
		got := row[3].(float64)
		flagged := len(clamped.FlagsOf(i, 3)) == 1 && clamped.FlagsOf(i, 3)[0] == release.FlagClamped
		if got != math.Max(was, 0) || flagged != (was < 0) {
			t.Errorf("row %d: count %v clamped to %v, flagged %v", i, was, got, clamped.FlagsOf(i, 3))
		}
		if lo, _, ok := release.CIBounds(clamped.CI[i][3]); !ok || lo < 0 {
			t.Errorf("row %d: clamped count interval %v", i, clamped.CI[i][3])
		}
	}
	if !hasNote(clamped.Notes, "n: ", "clamped into it", "do not add clamped values up") || hasNote(clamped.Notes, "ask with clamp_to_range") {
		t.Errorf("clamped notes: %q", clamped.Notes)
	}
	// The SQL clause asks the same.
	if c := ask(map[string]any{"sql": "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(clamp_to_range = true) " + sql[len("SELECT "):], "project": "wl", "epsilon": 1}); !c.Cached || !c.ClampToRange {
		t.Errorf("OPTIONS(clamp_to_range = true): cached %v clamp %v", c.Cached, c.ClampToRange)
	}

	// Partition selection: the group size kept with even odds, from the options alone.
	// The families of service codes (89, 95, 87, ...) each hold hundreds of people: kept
	// unless the noise of σ ≈ 20 falls by hundreds, far below 10⁻⁶.
	sel := ask(map[string]any{"sql": "SELECT left(service_code, 2) AS family, COUNT(*) AS n FROM booking GROUP BY family", "project": "wl", "epsilon": 1, "delta": 1e-6})
	s := sel.Selection
	if s == nil || s.GroupsKept == nil || *s.GroupsKept != len(sel.Rows) || len(sel.Rows) == 0 {
		t.Fatalf("selection %+v for %d rows", s, len(sel.Rows))
	}
	share := dp.Budget{Epsilon: s.Epsilon, Delta: s.Delta}
	n50, _ := dp.PersonsToKeep(0.5, int64(s.MaxGroupsContributed), share)
	n95, _ := dp.PersonsToKeep(0.95, int64(s.MaxGroupsContributed), share)
	if s.PersonsForEvenOdds != n50 || s.PersonsFor95Percent != n95 || s.Epsilon != 0.5 || s.MaxGroupsContributed != sel.Bounding.MaxGroupsContributed {
		t.Errorf("selection %+v, want even odds at %d and 95%% at %d persons for half the budget", s, n50, n95)
	}
	if !hasNote(sel.Notes, "kept by DP partition selection", "with even odds") {
		t.Errorf("selection notes: %q", sel.Notes)
	}
	// Epsilon 0.01 and delta 10⁻¹⁰: a group needs thousands of people, and one of a few dozen
	// (a provider's) is kept with probability about delta, so none is.
	none := ask(map[string]any{"sql": "SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id", "project": "wl", "epsilon": 0.01, "delta": 1e-10})
	if len(none.Rows) != 0 || none.Selection == nil || *none.Selection.GroupsKept != 0 || !hasNote(none.Notes, "no group was released", "with even odds") {
		t.Errorf("%d rows, selection %+v, notes %q", len(none.Rows), none.Selection, none.Notes)
	}
	// A dry run says it before anything is spent.
	dry := ask(map[string]any{"sql": "SELECT provider_id, COUNT(*) AS n FROM booking GROUP BY provider_id", "project": "wl", "epsilon": 0.01, "delta": 1e-10, "dry_run": true})
	if dry.Selection == nil || dry.Selection.GroupsKept != nil || dry.Selection.PersonsForEvenOdds != none.Selection.PersonsForEvenOdds || !hasNote(dry.Notes, "will be chosen") {
		t.Errorf("dry run selection %+v, notes %q", dry.Selection, dry.Notes)
	}
}

// hasNote reports whether one note holds every part.
func hasNote(notes []string, parts ...string) bool {
	for _, n := range notes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(n, p)
		}
		if all {
			return true
		}
	}
	return false
}
