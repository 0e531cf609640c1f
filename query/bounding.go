package query

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/velo-fse/velo/dataset"
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
	// Bounds is the dp.Bounding its totals are noised with, for plan p with contribution
	// bounds maxGroups (G) and maxRows (C).
	Bounds func(p *plan, maxGroups, maxRows int) dp.Bounding
	// PersonGroups is how many groups one person may be counted in among a group's
	// persons (partition selection's L0, dp.KeepPartition, and COUNT(DISTINCT pid)'s).
	PersonGroups func(p *plan, maxGroups, maxRows int) int
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
			// One table whose files carry person ranks (or a join rankedFact accepts);
			// group keys (a global aggregate keeps the per-group bounding, which bounds
			// rows after WHERE rather than before it); and every aggregate with a per-row
			// form (COUNT(DISTINCT pid) has none).
			if _, ok := rankedFact(p); !ok || len(p.Keys) == 0 {
				return false
			}
			return !slices.ContainsFunc(p.Aggs, func(a agg) bool { return a.Kind.rule().PerRow == nil })
		},
		Bounds: func(p *plan, g, c int) dp.Bounding {
			return rankedBounds(rankedRows(p, g, c))
		},
		PersonGroups: rankedRows,
		Rewrite: func(p *plan, _ uint64, g, c int, tree treeShape, scale func(lo, hi float64) float64) rewritten {
			return rewriteRanked(p, rankedRows(p, g, c), tree, scale)
		},
		Doc: "each person's rows of the table ranked at ingest (a keyed hash with a secret seed); the query reads the rows of rank ≤ K (before WHERE), and in a join each other table's row of rank 1: at most K rows per person in all, K = G·C with public keys and K = G with partition selection",
	},
	{
		Method:  boundingPerGroup,
		Applies: func(*plan) bool { return true },
		Bounds: func(_ *plan, g, c int) dp.Bounding {
			return dp.Bounding{MaxGroups: int64(g), MaxContributionsPerGroup: int64(c)}
		},
		PersonGroups: func(_ *plan, g, _ int) int { return g },
		Rewrite:      rewrite,
		Doc:          "each person's groups (at most G, by a keyed hash with a per-release seed) and rows in each (at most C, the partial aggregates rescaled)",
	},
}

// rankedRows is K, the rows of lowest rank person_rank keeps of each person for plan p
// with contribution bounds G and C (docs/privacy.md#bounding-by-person-rank). With public
// keys K = G·C: a person's K rows change the totals by at most K in L1 norm, as per_group's
// G groups of C rows do. With partition selection K = G: a person's K rows fall in at most
// K = G groups, the L0 that selection's threshold grows with (as per_group's), and change
// the totals by at most G in L1 and L2 norm, where per_group's change them by G·C and √G·C.
func rankedRows(p *plan, g, c int) int {
	if p.Selection() {
		return g
	}
	return g * c
}

// rankedBounds is the dp.Bounding of totals over at most k rows per person in all: one
// "group" of k rows, L1 = L2 = k (docs/privacy.md#bounding-by-person-rank). person_rank's
// and person_rows' (synthesis) sensitivities are both read here.
func rankedBounds(k int) dp.Bounding {
	return dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: int64(k)}
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
		s, err := dp.CountScale(r.Bounds(p, g, c), per)
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

// rankedFact is the table of a person_rank plan whose rows of rank ≤ G·C are read: every
// table's files must carry ranks, and in a join every other table must be one the catalog
// bounds to one row per person (G·C = 1 for it, as person), whose row of rank 1 is read,
// so that a person has at most G·C rows in the join. ok is false when that does not hold.
func rankedFact(p *plan) (fact int, ok bool) {
	fact = -1
	for i, t := range p.Tables {
		if !t.Meta.PersonRank {
			return -1, false
		}
		if len(p.Tables) > 1 && t.Meta.MaxGroupsContributed*t.Meta.MaxRowsPerGroup != 1 {
			if fact >= 0 {
				return -1, false
			}
			fact = i
		}
	}
	return max(fact, 0), true
}

// rewriteRanked prints the person_rank bounding's statements
// (docs/privacy.md#bounding-by-person-rank) for the embedded DuckDB: rewriteRankedIn in
// DuckDB's dialect, which refuses nothing.
func rewriteRanked(p *plan, k int, tree treeShape, scale func(lo, hi float64) float64) rewritten {
	rw, err := rewriteRankedIn(duckDialect, p, k, tree, scale)
	if err != nil {
		panic(fmt.Sprintf("query: DuckDB's dialect refused a person_rank rewrite: %v", err))
	}
	return rw
}

// rewriteRankedIn prints the person_rank bounding's statements in dialect d: base reads
// the rows of person rank ≤ k, and every total is a plain aggregate of those rows by group
// (the registry's PerRow forms): no per-person aggregation, no window. It is the one
// printer of this bounding: the dialect spells the expressions, quotes, sums and filters,
// and says whether the quantile trees are counted in the totals' scan (SingleScan).
func rewriteRankedIn(d dialect, p *plan, k int, tree treeShape, scale func(lo, hi float64) float64) (rewritten, error) {
	rw := rewritten{Method: boundingPersonRank, tree: tree, MaxGroups: 1, MaxRows: k, PersonGroups: k, Scales: make([]float64, len(p.Aggs)), Tree: make([]string, len(p.Aggs))}
	fact, _ := rankedFact(p)
	var from strings.Builder
	var extra []string
	for i, t := range p.Tables {
		limit := 1
		if i == fact {
			limit = k
		}
		src := d.Ident(t.Name)
		if len(p.Tables) > 1 {
			src = fmt.Sprintf("(SELECT * FROM %s AS _t WHERE _t.%s <= %d)", d.Ident(t.Name), dataset.PersonRankColumn, limit)
		} else {
			extra = append(extra, fmt.Sprintf("%s.%s <= %d", d.Ident(t.Alias), dataset.PersonRankColumn, limit))
		}
		if i == 0 {
			fmt.Fprintf(&from, "%s AS %s", src, d.Ident(t.Alias))
		} else {
			fmt.Fprintf(&from, " JOIN %s AS %s ON %s.pid = %s.pid", src, d.Ident(t.Alias), d.Ident(p.Tables[0].Alias), d.Ident(t.Alias))
		}
	}
	// The keys' domain filters apply to the groups: each kept row counts in its own group
	// only, whatever else is in the table, so filtering rows or groups keeps the same groups.
	// With partition selection, base keeps the pid: a group's persons are counted.
	base, keyCols, groupFilters, err := baseSelectIn(d, p, p.Selection(), true, from.String(), extra...)
	if err != nil {
		return rewritten{}, err
	}
	having := ""
	if len(groupFilters) > 0 {
		// count(*) is never negative: the OR keeps DuckDB's optimizer from pushing the
		// filter back below the aggregate, to every row.
		having = " HAVING (" + strings.Join(groupFilters, " AND ") + ") OR count(*) < 0"
	}
	rw.ctes = "base AS (" + base + ")"
	rw.boundedSelect = "SELECT * FROM base"
	rw.Bounded = "WITH " + rw.ctes + " " + rw.boundedSelect
	// The persons only feed partition selection: each of a person's at most k rows is in
	// one group, so they are counted in at most k groups, once in each (PersonGroups).
	persons := "0 AS persons"
	if p.Selection() {
		persons = "count(DISTINCT pid) AS persons"
	}
	g := append(slices.Clone(keyCols), persons)
	var leaves []string
	leafOf := map[string]int{}
	owner := p.treeOwners()
	for j, a := range p.Aggs {
		cols, x := rankedTotals(&rw, j, a, scale, d.Sum)
		g = append(g, cols...)
		if a.Kind == aggQuantile {
			leaf := leafSQL(d, a, j, x, tree)
			if !d.SingleScan {
				// A statement per tree: its leaf counts by group (groups the totals do not
				// hold are ignored when read); a tree read by several quantiles once.
				if owner[j] != j {
					continue
				}
				rw.Tree[j] = fmt.Sprintf("WITH %s SELECT %s %d AS level, %s AS node, count(*) AS n FROM base WHERE v%d IS NOT NULL GROUP BY ALL",
					rw.ctes, prefixCols(keyCols), tree.Height, leaf, j)
				continue
			}
			// Quantiles of the same value within the same bounds have the same leaves:
			// counted once, read by each off one noisy tree (plan.treeOwners).
			same := quantileTreeKey(a)
			if i, ok := leafOf[same]; ok {
				rw.SingleTrees[i] = append(rw.SingleTrees[i], j)
				continue
			}
			leafOf[same] = len(rw.SingleTrees)
			leaves = append(leaves, fmt.Sprintf("CASE WHEN v%d IS NOT NULL THEN %s END AS n%d", j, leaf, j))
			rw.SingleTrees = append(rw.SingleTrees, []int{j})
		}
	}
	rw.Groups = "SELECT " + strings.Join(g, ", ") + " FROM bounded"
	if len(keyCols) > 0 {
		rw.Groups += " GROUP BY " + strings.Join(keyCols, ", ") + having
	}
	if len(leaves) > 0 {
		// One scan for the totals and the trees: a grouping set per tree beside the
		// groups' own, where three statements would read the files three times.
		sets := []string{"(" + strings.Join(keyCols, ", ") + ")"}
		for _, js := range rw.SingleTrees {
			j := js[0] // the leaf column is named after the first aggregate reading it
			g = append(g, fmt.Sprintf("GROUPING(n%d) AS g%d", j, j), fmt.Sprintf("n%d", j))
			sets = append(sets, fmt.Sprintf("(%sn%d)", prefixCols(keyCols), j))
		}
		g = append(g, "count(*) AS n")
		rw.Single = "WITH " + rw.ctes + ", bounded AS (SELECT *, " + strings.Join(leaves, ", ") + " FROM base) SELECT " +
			strings.Join(g, ", ") + " FROM bounded GROUP BY GROUPING SETS (" + strings.Join(sets, ", ") + ")" + having
	}
	return rw, nil
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
// rankedTotals are aggregate j's per-row totals under person_rank (the registry's PerRow,
// with sum as the dialect's sum when set), and its clamped value x (empty for COUNT(*)); it
// records the aggregate's sum scale in rw.
func rankedTotals(rw *rewritten, j int, a agg, scale func(lo, hi float64) float64, sum func(string) string) (cols []string, x string) {
	r := a.Kind.rule()
	var sc, lo, hi float64
	if r.Value && a.Kind != aggQuantile {
		vlo, vhi, _ := a.noisedBounds()
		sc = scale(vlo, vhi)
		rw.Scales[j] = sc
		lo, hi = math.Floor(vlo*sc), math.Ceil(vhi*sc)
	}
	if a.Arg != nil {
		x = clampedValue(a, j)
	}
	if ix, ok := integralClamp(a, j, sc); ok && r.Value && !r.Centred && a.Kind != aggQuantile {
		return integralRowTotals(j, fmt.Sprintf("v%d", j), ix, sc, sum), x
	}
	perRow := r.PerRow
	if sum != nil && r.Value && a.Kind != aggQuantile {
		// The registry's rowTotals with the dialect's sum (TestRowTotalsInRegistry).
		perRow = rowTotalsIn(r.Centred, sum)
	}
	return perRow(j, fmt.Sprintf("v%d", j), x, sc, lo, hi), x
}

// integralClamp is aggregate j's value clamped in integer arithmetic, when that gives
// exactly the scaled totals rowTotals prints: the value is an integer (an integer column or
// a cast to an integer type), its bounds are integers and the scale is a whole number, all
// small enough that every scaled value is an exact double. Then round(clamp(v)·scale) =
// clamp(v)·scale, the outer clamp does nothing, and Σ round(clamp(v)·scale) = scale·Σ clamp(v):
// the same integers from one clamp a row and one multiplication a group.
//
// Where the value's types and constants alone keep it within the bounds (typeBounds: a
// boolean cast to an integer is 0 or 1), it is the value itself, which the clamp would return
// unchanged. Where 0 is within the bounds it is least(greatest(coalesce(v, 0), lo), hi) with
// plain integer literals, so the value keeps its integer type: a NULL becomes 0, which adds
// nothing to the sum, and count(v) still skips it (DuckDB computes it about 1.2 times as fast
// as the CASE below, whose BIGINT literals cast every value). Otherwise it is a CASE, NULL for
// a NULL value (least and greatest skip NULLs, so theirs would need a filter).
func integralClamp(a agg, j int, sc float64) (string, bool) {
	const exact = 1 << 53
	if a.Arg == nil || !integral(a.Arg) || sc < 1 || sc != math.Trunc(sc) ||
		a.Lo != math.Trunc(a.Lo) || a.Hi != math.Trunc(a.Hi) ||
		math.Max(math.Abs(a.Lo), math.Abs(a.Hi))*sc >= exact {
		return "", false
	}
	if lo, hi, ok := typeBounds(a.Arg); ok && lo >= a.Lo && hi <= a.Hi {
		return fmt.Sprintf("v%d", j), true
	}
	if a.Lo <= 0 && a.Hi >= 0 {
		return fmt.Sprintf("least(greatest(coalesce(v%d, 0), %s), %s)", j, strconv.FormatFloat(a.Lo, 'f', 0, 64), strconv.FormatFloat(a.Hi, 'f', 0, 64)), true
	}
	lo, hi := bigint(a.Lo), bigint(a.Hi)
	return fmt.Sprintf("CASE WHEN v%d < %s THEN %s WHEN v%d > %s THEN %s ELSE v%d END", j, lo, lo, j, hi, hi, j), true
}

// integralRowTotals are rowTotals' columns for a value clamped by integralClamp: its count
// and scale times the sum of the clamped integers (printed by sum, nil: sum(x)); the clamp
// of a NULL value is NULL, which the sum skips, or 0, which adds nothing.
func integralRowTotals(j int, v, ix string, sc float64, sum func(string) string) []string {
	if sum == nil {
		sum = func(x string) string { return "sum(" + x + ")" }
	}
	return []string{fmt.Sprintf("count(%s) AS a%d", v, j),
		fmt.Sprintf("coalesce(%s, 0) * %s AS s%d", sum(ix), bigint(sc), j)}
}

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
