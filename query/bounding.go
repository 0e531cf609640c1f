package query

import (
	"fmt"
	"math"
	"slices"

	"github.com/velo-fse/velo/dp"
)

// The boundings' names, as releases and the ledger record them.
const (
	boundingPerGroup   = "per_group"
	boundingPersonRank = "person_rank"
)

// boundingRule is one way of bounding each person's contribution, in one row: when it
// applies (from the plan and the catalog only, never the data), the bounds it guarantees as
// package dp takes them, and its rewrite. A new bounding enters here; the engine picks, among
// the rows that apply, the one whose noise is smallest at the query's budget (first row on
// a tie), and the oracle, neighbour and generated-query tests read the same rows.
type boundingRule struct {
	Method string
	// Applies says whether the bounding can run plan p.
	Applies func(p *plan) bool
	// Bounds is the dp.Bounding it guarantees for a plan whose contribution bounds are
	// maxGroups (G) and maxRows (C).
	Bounds func(maxGroups, maxRows int) dp.Bounding
	// Rewrite prints its statements.
	Rewrite func(p *plan, seed uint64, maxGroups, maxRows int, tree treeShape, scale func(lo, hi float64) float64) rewritten
	// Doc says what it keeps of each person, for docs/privacy.md.
	Doc string
}

var boundingRules = []boundingRule{
	{
		// First: on a tie in noise it is chosen, for it is a filter the scan applies
		// rather than a per-person aggregation and a window.
		Method: boundingPersonRank,
		Applies: func(p *plan) bool {
			// One table whose files carry person ranks; public keys (partition
			// selection needs each person's groups bounded, not their rows); and every
			// aggregate with a per-row form (COUNT(DISTINCT pid) has none). A global
			// aggregate (G = 1) keeps the per-group bounding, which bounds rows after
			// WHERE rather than before it.
			if len(p.Tables) != 1 || !p.Tables[0].Meta.PersonRank || p.Selection() || len(p.Keys) == 0 {
				return false
			}
			return !slices.ContainsFunc(p.Aggs, func(a agg) bool { return a.Kind.rule().PerRow == nil })
		},
		Bounds: func(g, c int) dp.Bounding {
			return dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: int64(g) * int64(c)}
		},
		Rewrite: func(p *plan, _ uint64, g, c int, tree treeShape, scale func(lo, hi float64) float64) rewritten {
			return rewriteRanked(p, g*c, tree, scale)
		},
		Doc: "each person's rows of the table ranked at ingest (a keyed hash with a secret seed); the query reads the rows of rank ≤ G·C (before WHERE): at most G·C rows per person in all",
	},
	{
		Method:  boundingPerGroup,
		Applies: func(*plan) bool { return true },
		Bounds: func(g, c int) dp.Bounding {
			return dp.Bounding{MaxGroups: int64(g), MaxContributionsPerGroup: int64(c)}
		},
		Rewrite: rewrite,
		Doc:     "each person's groups (at most G, by a keyed hash with a per-release seed) and rows in each (at most C, the partial aggregates rescaled)",
	},
}

// chooseBounding is the bounding for plan p at budget share per, with the plan's
// contribution bounds G and C: among the rows that apply, the one with the smallest noise
// (dp.CountScale); the first on a tie.
func chooseBounding(p *plan, per dp.Budget, g, c int) (*boundingRule, error) {
	var best *boundingRule
	bestScale := math.Inf(1)
	for i := range boundingRules {
		r := &boundingRules[i]
		if !r.Applies(p) {
			continue
		}
		s, err := dp.CountScale(r.Bounds(g, c), per)
		if err != nil {
			return nil, err
		}
		if s < bestScale {
			best, bestScale = r, s
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no bounding applies")
	}
	return best, nil
}

// boundingRule returns the registry row of a method.
func boundingByMethod(method string) *boundingRule {
	for i := range boundingRules {
		if boundingRules[i].Method == method {
			return &boundingRules[i]
		}
	}
	panic(fmt.Sprintf("query: bounding %q is not registered", method))
}

// rewriteRanked prints the person_rank bounding's statements
// (docs/privacy.md#bounding-by-person-rank): base reads the rows of person rank ≤ k, and
// every total is a plain aggregate of those rows by group (the registry's PerRow forms):
// no per-person aggregation, no window.
func rewriteRanked(p *plan, k int, tree treeShape, scale func(lo, hi float64) float64) rewritten {
	rw, err := rewriteRankedIn(duckDialect, p, k, tree, scale)
	if err != nil {
		panic("query: DuckDB's dialect prints every checked plan: " + err.Error())
	}
	return rw
}

// rowTotals are the per-row forms of a clamped value's totals (person_rank): how many
// values, the sum of each value scaled and rounded, clamped to [lo, hi] (the integer range
// package dp derives its sensitivities from), and for variances the same for the squares,
// within [0, max(|lo|, |hi|)²].
func rowTotals(squares bool) func(j int, v, x string, sc, lo, hi float64) []string {
	return rowTotalsIn(squares, nil)
}

// rowTotalsIn is rowTotals with each sum printed by sum (nil: sum(x)): a dialect whose
// BIGINT sums fail on overflow sums exact decimals instead.
func rowTotalsIn(squares bool, sum func(string) string) func(j int, v, x string, sc, lo, hi float64) []string {
	if sum == nil {
		sum = func(x string) string { return "sum(" + x + ")" }
	}
	return func(j int, v, x string, sc, lo, hi float64) []string {
		out := []string{fmt.Sprintf("count(%s) AS a%d", v, j),
			fmt.Sprintf("coalesce(%s FILTER (WHERE %s IS NOT NULL), 0) AS s%d", sum(fmt.Sprintf("least(greatest(CAST(round(%s * %s) AS BIGINT), %s), %s)", x, fnum(sc), bigint(lo), bigint(hi))), v, j)}
		if squares {
			m := math.Max(math.Abs(lo), math.Abs(hi))
			out = append(out, fmt.Sprintf("coalesce(%s FILTER (WHERE %s IS NOT NULL), 0) AS q%d", sum(fmt.Sprintf("least(greatest(CAST(round(%s * %s * %s) AS BIGINT), 0), %s)", x, x, fnum(sc*sc), bigint(m*m))), v, j))
		}
		return out
	}
}
