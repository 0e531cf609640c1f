package query

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dp"
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

// Every released number has a sound interval: each registered aggregate's release builder
// returns one, finite and ordered, holding the released value, for an empty group and a
// full one, with either mechanism; where the aggregate's range is bounded on both sides
// the interval lies in it. (Each interval's soundness is derived in docs/privacy.md and
// its coverage tested in package dp.)
func TestEveryAggregateReleasesAnInterval(t *testing.T) {
	for _, r := range aggRules {
		if r.Interval == "" || strings.EqualFold(r.Interval, "none") {
			t.Errorf("aggregate %s: no interval documented", r.Kind)
		}
		a := agg{Kind: r.Kind, Lo: 0, Hi: 365, Q: 0.5, Name: string(r.Kind)}
		lo, hi, _ := a.noisedBounds()
		scale := dp.SumScale(lo, hi)
		for _, per := range []dp.Budget{{Epsilon: 0.5}, {Epsilon: 0.5, Delta: 1e-7}} {
			for _, fill := range []int64{0, 1000} {
				tot := make([]int64, r.Totals)
				tot[0] = fill // the rows (or persons); sums stay 0: values at the middle
				if r.Kind == aggSum || r.Kind == aggAvg {
					tot[1] = fill * int64(100*scale)
				}
				tree := treeCounts{}
				if r.Kind == aggQuantile {
					for level := int64(1); level <= int64(dp.DefaultTree.Height); level++ {
						tree[[2]int64{level, 0}] = fill
					}
				}
				rel, err := r.Release(releaseInput{agg: a, tot: tot, tree: tree, scale: scale,
					bnd: dp.Bounding{MaxGroups: 2, MaxContributionsPerGroup: 3}, per: per, confidence: Confidence, tree0: dp.DefaultTree})
				if err != nil {
					t.Fatalf("aggregate %s: %v", r.Kind, err)
				}
				ci := rel.CI
				if ci == nil || math.IsNaN(ci.Lower) || math.IsInf(ci.Lower, 0) || math.IsNaN(ci.Upper) || math.IsInf(ci.Upper, 0) || ci.Lower > rel.Value || rel.Value > ci.Upper {
					t.Errorf("aggregate %s (%s, %d rows): value %v, interval %+v", r.Kind, dp.ChooseMechanism(per), fill, rel.Value, ci)
					continue
				}
				if rlo, rhi := r.Range(a.Lo, a.Hi); !math.IsInf(rlo, 0) && !math.IsInf(rhi, 0) && (ci.Lower < rlo || ci.Upper > rhi) {
					t.Errorf("aggregate %s (%s, %d rows): interval %+v outside the range [%v, %v]", r.Kind, dp.ChooseMechanism(per), fill, ci, rlo, rhi)
				}
			}
		}
	}
}
