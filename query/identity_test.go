package query

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// A query's identity (release cache key, ledger hash) is its canonical form printed from
// the checked plan. Text that DuckDB parses differently is a different question, however
// alike the texts look once whitespace is collapsed; text that parses the same is the
// same question, however it is spelled.
func TestQueryIdentityFromThePlan(t *testing.T) {
	data := twoRegions(t)
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 100, Delta: 1e-4}, nil)
	ctx := context.Background()
	ask := func(sql string) *release.Release {
		t.Helper()
		rel, err := eng.Query(ctx, Request{SQL: sql, Project: "wl", Actor: "user:test", Epsilon: f64(1)})
		if err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		return rel
	}
	filtered := ask("SELECT count(*) AS n FROM booking -- c\nWHERE wait_days > 15")
	unfiltered := ask("SELECT count(*) AS n FROM booking -- cWHERE wait_days > 15")
	if unfiltered.Cached {
		t.Fatalf("the query whose WHERE is inside a comment was answered from the cache of the filtered one: %v", unfiltered.Rows)
	}
	if filtered.SQL == unfiltered.SQL || !strings.Contains(filtered.SQL, "WHERE") || strings.Contains(unfiltered.SQL, "WHERE") {
		t.Fatalf("canonical forms do not show the difference:\n%s\n%s", filtered.SQL, unfiltered.SQL)
	}
	// 80 of 400 bookings wait more than 15 days; the noise at epsilon 1 is a few units.
	if f, u := filtered.Rows[0][0].(float64), unfiltered.Rows[0][0].(float64); f > 150 || u < 300 {
		t.Fatalf("filtered %v, unfiltered %v: want about 80 and 400", f, u)
	}

	// The same question spelled differently: comments, whitespace, keyword and identifier
	// case, quoting, a dollar-quoted string, a trailing semicolon.
	first := ask("SELECT region, count(*) AS n FROM booking WHERE region = '030' GROUP BY region")
	for _, sql := range []string{
		"select REGION, COUNT(*) as n from BOOKING where region = '030' group by region;",
		"SELECT /* a comment */ region, count(*) AS n\n\tFROM booking -- another\nWHERE \"region\" = $$030$$ GROUP BY 1",
	} {
		if rel := ask(sql); !rel.Cached || rel.ReleaseID != first.ReleaseID {
			t.Errorf("%q: not answered from the cache of the same question (release %s, first %s)", sql, rel.ReleaseID, first.ReleaseID)
		}
	}
	// A dollar-quoted string is a string: its content is not SQL.
	if rel := ask("SELECT count(*) AS n FROM booking WHERE region = $$030' OR region <> '030$$"); rel.Cached || rel.Rows[0][0].(float64) > 50 {
		t.Errorf("dollar-quoted string: cached %v, rows %v (want a fresh answer near 0)", rel.Cached, rel.Rows)
	}

	// The ledger keeps the exact text as sent and the canonical form, hashed.
	var charges []ledger.Entry
	for _, e := range led.Entries("wl", 0) {
		if e.Kind == ledger.KindCharge {
			charges = append(charges, e)
		}
	}
	if len(charges) != 4 {
		t.Fatalf("%d charges, want 4 (two different questions, one answered three times, one more)", len(charges))
	}
	if charges[0].Text != "SELECT count(*) AS n FROM booking -- c\nWHERE wait_days > 15" || charges[0].SQL != filtered.SQL || charges[0].SQLHash != ledger.SQLHash(filtered.SQL) {
		t.Errorf("charge records text %q, sql %q", charges[0].Text, charges[0].SQL)
	}
}

// Releases cached under the old identity (whitespace-collapsed text, engine version 1)
// are never served: the text hash and the engine version both changed.
func TestOldCacheEntriesNotServed(t *testing.T) {
	data := twoRegions(t)
	eng, led, _ := openEngine(t, data, ledger.Budget{Epsilon: 100, Delta: 1e-4}, nil)
	ctx := context.Background()
	sql := "SELECT count(*) AS n FROM booking"
	plan, err := eng.check(ctx, sql, map[string][]string{"booking": nil})
	if err != nil {
		t.Fatal(err)
	}
	maxGroups, maxRows := contributionBounds(plan)
	options := strings.Replace(canonicalOptions(release.BudgetAmount{Epsilon: 1}, maxGroups, maxRows, plan), "engine="+engineVersion, "engine=1", 1)
	c, err := led.Charge(ctx, ledger.ChargeRequest{Actor: "user:old", Project: "wl", SQL: sql, Options: options,
		DatasetVersion: eng.DatasetVersion(), Cost: ledger.Budget{Epsilon: 1}})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(release.Release{ReleaseID: "r_old", Rows: [][]any{{12345.0}}, CI: [][]any{{nil}}})
	if err := led.Release(ctx, c, old); err != nil {
		t.Fatal(err)
	}
	rel, err := eng.Query(ctx, Request{SQL: sql, Project: "wl", Actor: "user:test", Epsilon: f64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Cached || rel.ReleaseID == "r_old" {
		t.Fatalf("a release cached the old way was served: %+v", rel)
	}
}
