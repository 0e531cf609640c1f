package query

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The aggregate table in docs/privacy.md is printed from the registry (aggRules): the
// docs cannot drift from what the checker accepts and the release builder does.
// `go test ./query -run TestAggregateDocs -update` rewrites it.
func TestAggregateDocs(t *testing.T) {
	const path = "../docs/privacy.md"
	const begin, end = "<!-- aggregates: printed by TestAggregateDocs from query/aggregates.go -->\n", "<!-- aggregates: end -->\n"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no aggregate table between %q and %q", path, begin, end)
	}
	var tb strings.Builder
	tb.WriteString("| aggregate | SQL | clamped value | mechanisms (one budget share each) | exact totals per group | confidence interval |\n|---|---|---|---|---|---|\n")
	for _, r := range aggRules {
		sql := strings.ToUpper(strings.Join(r.Names, ", "))
		switch r.Kind {
		case AggCountStar:
			sql = "COUNT(*)"
		case AggPersons:
			sql = "COUNT(DISTINCT pid)"
		case AggCount:
			sql = "COUNT(expr)"
		}
		value := "no"
		if r.Value {
			value = "yes"
			if r.Centred {
				value += ", centred on the middle of its bounds"
			}
		}
		tb.WriteString("| `" + string(r.Kind) + "` | " + sql + " | " + value + " | " + strings.Join(r.Parts, ", ") + " | " + strconv.Itoa(r.Totals) + " | " + r.Interval + " |\n")
	}
	got := doc[:i+len(begin)] + tb.String() + doc[j:]
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(doc, got); diff != "" {
		t.Errorf("docs/privacy.md's aggregate table differs from the registry (go test ./query -run TestAggregateDocs -update):\n%s", diff)
	}
}

// Every registered aggregate has what the checker, rewrite and release builder read.
func TestAggregateRegistry(t *testing.T) {
	seen := map[AggKind]bool{}
	for _, r := range aggRules {
		if seen[r.Kind] || len(r.Names) == 0 || len(r.Parts) == 0 || r.Totals < 1 || r.PerGroup == nil || r.Release == nil || r.Interval == "" {
			t.Errorf("aggregate %s: incomplete or repeated row %+v", r.Kind, r)
		}
		seen[r.Kind] = true
		if got := len(r.PerGroup(0, 0, 1, 1, 1)); got != r.Totals {
			t.Errorf("aggregate %s: PerGroup prints %d totals, Totals says %d", r.Kind, got, r.Totals)
		}
		if r.Value != (r.PerUnit != nil && r.Kind != AggCount) {
			t.Errorf("aggregate %s: a value aggregate needs per-person partials of its value", r.Kind)
		}
	}
}
