package query

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// docTable checks (or, with -update, rewrites) the part of docs/privacy.md between the
// markers "<!-- name: printed by ... -->" and "<!-- name: end -->".
func docTable(t *testing.T, name, table string) {
	t.Helper()
	const path = "../docs/privacy.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	begin, end := "<!-- "+name+": printed by ", "<!-- "+name+": end -->\n"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s table between %q and %q", path, name, begin, end)
	}
	i += strings.Index(doc[i:], "\n") + 1
	got := doc[:i] + table + doc[j:]
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(doc, got); diff != "" {
		t.Errorf("docs/privacy.md's %s table differs from the registry (go test ./query -run 'Docs$' -update):\n%s", name, diff)
	}
}

// The aggregate table in docs/privacy.md is printed from the registry (aggRules): the
// docs cannot drift from what the checker accepts and the release builder does.
func TestAggregateDocs(t *testing.T) {
	var tb strings.Builder
	tb.WriteString("| aggregate | SQL | clamped value | mechanisms (one budget share each) | exact totals per group | confidence interval | values lie in (`clamp_to_range`) |\n|---|---|---|---|---|---|---|\n")
	for _, r := range aggRules {
		sql := strings.ToUpper(strings.Join(r.Names, ", "))
		switch r.Kind {
		case aggCountStar:
			sql = "COUNT(*)"
		case aggPersons:
			sql = "COUNT(DISTINCT pid)"
		case aggCount:
			sql = "COUNT(expr)"
		}
		value := "no"
		if r.Value {
			value = "yes"
			if r.Centred {
				value += ", centred on the middle of its bounds"
			}
		}
		tb.WriteString("| `" + string(r.Kind) + "` | " + sql + " | " + value + " | " + strings.Join(r.Parts, ", ") + " | " + strconv.Itoa(r.Totals) + " | " + r.Interval + " | " + r.RangeDoc + " |\n")
	}
	docTable(t, "aggregates", tb.String())
}

// The function table in docs/privacy.md is printed from the registry (funcRules).
func TestFunctionDocs(t *testing.T) {
	var tb strings.Builder
	tb.WriteString("| function | arguments | public domain as a key | value bounds | why it cannot fail on a row |\n|---|---|---|---|---|\n")
	for _, r := range funcRules {
		if r.Internal {
			continue
		}
		names := make([]string, len(r.Names))
		for i, n := range r.Names {
			names[i] = "`" + n + "`"
			if r.Display != "" {
				names[i] = "`" + r.Display + "`"
			}
		}
		arity := strconv.Itoa(r.MinArgs)
		if r.MaxArgs != r.MinArgs {
			arity += "–" + strconv.Itoa(r.MaxArgs)
		}
		yes := func(b bool) string {
			if b {
				return "yes"
			}
			return ""
		}
		tb.WriteString("| " + strings.Join(names, ", ") + " | " + arity + " | " + yes(r.Domain != nil) + " | " + yes(r.Bounds != nil) + " | " + r.Total + " |\n")
	}
	docTable(t, "functions", tb.String())
}

// Every registered function can be checked, and a checked call finds its row.
func TestFunctionRegistry(t *testing.T) {
	if len(funcsByName) < 30 {
		t.Fatalf("only %d callable names registered", len(funcsByName))
	}
	for _, r := range funcRules {
		if len(r.Names) == 0 || r.Total == "" || (r.Check == nil) != r.Internal || r.MinArgs > r.MaxArgs {
			t.Errorf("function %v: incomplete row", r.Names)
		}
		if printed[r.Names[0]] != r {
			t.Errorf("function %v: its printed name finds another row", r.Names)
		}
	}
}

// Every registered aggregate has what the checker, rewrite and release builder read.
func TestAggregateRegistry(t *testing.T) {
	seen := map[aggKind]bool{}
	for _, r := range aggRules {
		if seen[r.Kind] || len(r.Names) == 0 || len(r.Parts) == 0 || r.Totals < 1 || r.PerGroup == nil || r.Release == nil || r.Interval == "" || r.Range == nil || r.RangeDoc == "" {
			t.Errorf("aggregate %s: incomplete or repeated row %+v", r.Kind, r)
		}
		seen[r.Kind] = true
		if got := len(r.PerGroup(0, 0, 1, 1, 1)); got != r.Totals {
			t.Errorf("aggregate %s: PerGroup prints %d totals, Totals says %d", r.Kind, got, r.Totals)
		}
		if r.Value != (r.PerUnit != nil && r.Kind != aggCount) {
			t.Errorf("aggregate %s: a value aggregate needs per-person partials of its value", r.Kind)
		}
	}
}
