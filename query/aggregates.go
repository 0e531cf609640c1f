package query

import (
	"fmt"
	"math"

	"github.com/velo-fse/velo/dp"
)

// aggRule is everything Velo knows about one DP aggregate, in one row: the checker (its
// SQL names, whether it takes a clamped value), the budget split (its mechanisms), the
// rewrite (its per-person partial columns and per-group totals), the release builder (how
// its totals are noised and which interval is released) and the docs (TestAggregateDocs
// keeps docs/privacy.md's table in step). A new aggregate enters here, and the oracle and
// neighbour tests read the same row.
type aggRule struct {
	Kind aggKind
	// Names are the SQL functions that check into this kind (COUNT's three forms are told
	// apart by the checker: COUNT(*), COUNT(DISTINCT pid), COUNT(expr)).
	Names []string
	// Value: the aggregate takes a numeric value clamped to [Lo, Hi] (bounds from the
	// catalog, the expression, the query or the request).
	Value bool
	// Centred: values are shifted by the middle of [Lo, Hi] before their sums are taken
	// (variances: the variance is unchanged, the sum of squares' sensitivity falls from
	// C·max(lo²,hi²) to C·((hi−lo)/2)²).
	Centred bool
	// Parts are the mechanisms the aggregate spends budget on, each an equal share of the
	// query's (the budget split lists them in this order).
	Parts []string
	// Totals is how many exact per-group totals the rewrite computes for it (the columns
	// of the Groups statement after the keys and the person count).
	Totals int
	// PerUnit are its per-person, per-group partial columns (rewrite step 2), given the
	// aggregate's index j, its value column v and that value clamped (and centred).
	PerUnit func(j int, v, x string, maxRows int, seedSQL string) []string
	// PerGroup are its exact bounded per-group totals (rewrite step 4), Totals columns.
	PerGroup func(j int, vlo, vhi, scale float64, maxRows int) []string
	// PerRow are the same totals as plain aggregates of the rows a person_rank bounding
	// keeps (boundingRules), given its value column v, that value clamped (and centred) x,
	// the integer scale and the scaled integer range [lo, hi]; nil when the aggregate has
	// no per-row form (a person count needs each person's groups bounded).
	PerRow func(j int, v, x string, scale, lo, hi float64) []string
	// Release noises one group's totals (tot, Totals values) with one budget share per part.
	Release func(in releaseInput) (dp.Released, error)
	// Interval says which confidence interval is released with each value.
	Interval string
	// Range is the set of values the aggregate can take on any data with values clamped to
	// [lo, hi] (±Inf: unbounded): the released column's Range, what clamp_to_range clamps
	// to, and what an interval must cover to carry no information. RangeDoc says it for the
	// docs.
	Range    func(lo, hi float64) (float64, float64)
	RangeDoc string
	// Accuracy, when set, says for people how accurate each released value is where the
	// interval does not say it all (it depends on public parameters only).
	Accuracy func(a agg, per dp.Budget, bnd dp.Bounding, t dp.Tree, confidence float64) string
}

// Ranges of the aggregates' values.
var (
	nonNegative  = func(_, _ float64) (float64, float64) { return 0, math.Inf(1) }
	withinBounds = func(lo, hi float64) (float64, float64) { return lo, hi }
)

// releaseInput is what one aggregate's Release needs for one group.
type releaseInput struct {
	group      *groupRow // the group released
	agg        agg
	tot        []int64 // the aggregate's exact bounded totals, Totals of them
	tree       treeCounts
	scale      float64
	bnd        dp.Bounding
	per        dp.Budget // one part's share
	confidence float64
	tree0      dp.Tree
	// share is the group's noisy tree when several quantiles read it (plan.treeOwners),
	// and shareAt this quantile's place among its ranks; nil for any other aggregate.
	share   *treeShare
	shareAt int
}

// treeShare is one group's quantile tree read by several quantiles of one value: noised
// once, at the tree's budget (one part's share), on the first read, and every quantile read
// off the same noisy counts (dp.QuantilesWithIntervals with all their ranks).
type treeShare struct {
	ranks []float64
	done  bool
	vals  []float64
	cis   []dp.Interval
	r     dp.Released
	err   error
}

func (s *treeShare) read(in releaseInput, counts func(level int, index int64) int64) (dp.Released, error) {
	if !s.done {
		s.vals, s.cis, s.r, s.err = dp.QuantilesWithIntervals(s.ranks, counts, in.tree0, in.agg.Lo, in.agg.Hi, in.bnd, in.per, in.confidence)
		s.done = true
	}
	if s.err != nil {
		return dp.Released{}, s.err
	}
	r, ci := s.r, s.cis[in.shareAt]
	r.Value, r.CI = s.vals[in.shareAt], &ci
	return r, nil
}

// aggRules is the registry. Order is the docs' order.
var aggRules = []aggRule{
	{
		Kind: aggCountStar, Names: []string{"count_star"}, Parts: []string{"count"}, Totals: 1,
		PerGroup: func(j int, _, _, _ float64, maxRows int) []string {
			return []string{fmt.Sprintf("sum(least(n, %d)) AS a%d", maxRows, j)}
		},
		PerRow: func(j int, _, _ string, _, _, _ float64) []string {
			return []string{fmt.Sprintf("count(*) AS a%d", j)}
		},
		Release: func(in releaseInput) (dp.Released, error) {
			return dp.Count(in.tot[0], in.bnd, in.per, in.confidence)
		},
		Interval: "the library's interval for the bounded count",
		Range:    nonNegative, RangeDoc: "[0, +∞)",
	},
	{
		Kind: aggPersons, Names: []string{"count"}, Parts: []string{"count"}, Totals: 1,
		PerGroup: func(j int, _, _, _ float64, _ int) []string {
			return []string{fmt.Sprintf("count(*) AS a%d", j)}
		},
		Release: func(in releaseInput) (dp.Released, error) {
			return dp.CountPersons(in.tot[0], in.bnd.MaxGroups, in.per, in.confidence)
		},
		Interval: "the library's interval for the bounded count",
		Range:    nonNegative, RangeDoc: "[0, +∞)",
	},
	{
		Kind: aggCount, Names: []string{"count"}, Parts: []string{"count"}, Totals: 1,
		PerUnit: func(j int, v, _ string, _ int, _ string) []string {
			return []string{fmt.Sprintf("count(%s) AS c%d", v, j)}
		},
		PerGroup: func(j int, _, _, _ float64, maxRows int) []string {
			return []string{fmt.Sprintf("sum(least(c%d, %d)) AS a%d", j, maxRows, j)}
		},
		PerRow: rowCount,
		Release: func(in releaseInput) (dp.Released, error) {
			return dp.Count(in.tot[0], in.bnd, in.per, in.confidence)
		},
		Interval: "the library's interval for the bounded count",
		Range:    nonNegative, RangeDoc: "[0, +∞)",
	},
	{
		Kind: aggSum, Names: []string{"sum"}, Value: true, Parts: []string{"sum"}, Totals: 2,
		PerUnit: valuePartials(false), PerGroup: scaledTotals(false), PerRow: rowTotals(false),
		Release: func(in releaseInput) (dp.Released, error) {
			return dp.Sum(in.tot[1], in.scale, in.agg.Lo, in.agg.Hi, in.bnd, in.per, in.confidence)
		},
		Interval: "the library's interval for the bounded scaled sum, unscaled",
		Range: func(lo, hi float64) (float64, float64) {
			switch {
			case lo >= 0:
				return 0, math.Inf(1)
			case hi <= 0:
				return math.Inf(-1), 0
			}
			return math.Inf(-1), math.Inf(1)
		},
		RangeDoc: "[0, +∞) when lo ≥ 0, (−∞, 0] when hi ≤ 0, else unbounded",
	},
	{
		Kind: aggAvg, Names: []string{"avg", "mean"}, Value: true, Parts: []string{"sum", "count"}, Totals: 2,
		PerUnit: valuePartials(false), PerGroup: scaledTotals(false), PerRow: rowTotals(false),
		Release: func(in releaseInput) (dp.Released, error) {
			return dp.Mean(in.tot[1], in.tot[0], in.scale, in.agg.Lo, in.agg.Hi, in.bnd, in.per, in.per, in.confidence)
		},
		Interval: "quotient of the sum's and the count's intervals (union bound), clamped to the bounds",
		Range:    withinBounds, RangeDoc: "[lo, hi]",
	},
	{
		Kind: aggQuantile, Names: []string{"median", "quantile_cont", "quantile", "percentile_cont"}, Value: true,
		Parts: []string{"quantile tree"}, Totals: 1,
		PerUnit: func(j int, v, _ string, _ int, _ string) []string {
			// The values are counted here; the tree statement selects at most maxRows
			// of them per person and group, by a keyed hash of the value, and counts
			// their leaves.
			return []string{fmt.Sprintf("count(%s) AS c%d", v, j)}
		},
		PerGroup: func(j int, _, _, _ float64, maxRows int) []string {
			return []string{fmt.Sprintf("sum(least(c%d, %d)) AS a%d", j, maxRows, j)}
		},
		PerRow: rowCount,
		Release: func(in releaseInput) (dp.Released, error) {
			counts := func(level int, index int64) int64 { return in.tree[[2]int64{int64(level), index}] }
			if in.share != nil {
				return in.share.read(in, counts)
			}
			vals, cis, r, err := dp.QuantilesWithIntervals([]float64{in.agg.Q}, counts, in.tree0, in.agg.Lo, in.agg.Hi, in.bnd, in.per, in.confidence)
			if err == nil {
				r.Value, r.CI = vals[0], &cis[0]
			}
			return r, err
		},
		Interval: "read off the same noisy tree (no extra budget; quantiles of one value within the same bounds share one tree): the node boundaries where the noisy count of values below, minus q times the noisy total, crosses ∓(2 + a bound on its noise at (1−confidence)/2 per side), found level by level to the first level with ≥ 256 nodes; widened by one leaf",
		Range:    withinBounds, RangeDoc: "[lo, hi]",
		Accuracy: func(a agg, per dp.Budget, bnd dp.Bounding, t dp.Tree, confidence float64) string {
			e, err := dp.QuantileRankError(t, a.Q, bnd, per, confidence)
			if err != nil {
				return ""
			}
			return fmt.Sprintf("the %g%% interval brackets the values whose rank in the group is within about %.0f of the quantile's (from epsilon alone, no extra budget): a group needs several times %.0f people for a narrow one", confidence*100, e+2, e+2)
		},
	},
	varianceRule(aggVarPop, []string{"var_pop"}, dp.Variance, false, false, "[0, ((hi − lo)/2)²]"),
	varianceRule(aggVarSamp, []string{"var_samp", "variance"}, dp.Variance, true, false, "[0, 2·((hi − lo)/2)²]"),
	varianceRule(aggStdPop, []string{"stddev_pop"}, dp.StdDev, false, true, "[0, (hi − lo)/2]"),
	varianceRule(aggStdSamp, []string{"stddev_samp", "stddev"}, dp.StdDev, true, true, "[0, √2·(hi − lo)/2]"),
}

type varianceFunc func(exactCount, exactScaledSum, exactScaledSumSq int64, scale, lo, hi float64, bnd dp.Bounding, budgets [3]dp.Budget, sample bool, confidence float64) (dp.Released, error)

func varianceRule(k aggKind, names []string, f varianceFunc, sample, std bool, rangeDoc string) aggRule {
	popoviciu := func(lo, hi float64) (float64, float64) {
		// Popoviciu: a population variance is at most ((hi − lo)/2)²; the sample one at
		// most n/(n−1) ≤ 2 times that. Standard deviations are their square roots.
		v := (hi - lo) * (hi - lo) / 4
		if sample {
			v *= 2
		}
		if std {
			v = math.Sqrt(v)
		}
		return 0, v
	}
	return aggRule{
		Kind: k, Names: names, Value: true, Centred: true, Parts: []string{"count", "sum", "sum_of_squares"}, Totals: 3,
		PerUnit: valuePartials(true), PerGroup: scaledTotals(true), PerRow: rowTotals(true),
		Release: func(in releaseInput) (dp.Released, error) {
			lo, hi, _ := centred(in.agg.Lo, in.agg.Hi) // centred values: the variance is the same
			r, err := f(in.tot[0], in.tot[1], in.tot[2], in.scale, lo, hi, in.bnd, [3]dp.Budget{in.per, in.per, in.per}, sample, in.confidence)
			if err == nil && r.CI != nil {
				// dp keeps the interval in the range it computes from the centred bounds; the
				// column's Range is computed from the query's: the same up to float64 rounding,
				// and the statistic lies in it, so its ends are kept in it too.
				rlo, rhi := popoviciu(in.agg.Lo, in.agg.Hi)
				r.CI.Lower = math.Min(math.Max(r.CI.Lower, rlo), rhi)
				r.CI.Upper = math.Min(math.Max(r.CI.Upper, rlo), rhi)
			}
			return r, err
		},
		Interval: varianceIntervalDoc(std),
		Range:    popoviciu,
		RangeDoc: rangeDoc,
	}
}

// varianceIntervalDoc says for the docs how a variance's (standard deviation's) interval is
// made (dp.VarianceInterval).
func varianceIntervalDoc(std bool) string {
	doc := "the library's intervals for the count, the sum and the sum of squares at 1 − (1−confidence)/3 each (union bound); the variance's exact minimum and maximum over that box (monotone in the sum of squares and in the sum's magnitude, stationary points in the count), widened by the rounding of the scaled totals, within the Bhatia–Davis bound (hi − μ)(μ − lo) over the mean's interval"
	if std {
		return "the square root of the matching variance's interval (`var_pop`, `var_samp`)"
	}
	return doc
}

// valuePartials are the per-person partials of a clamped value: how many values, their
// sum and (for variances) their sum of squares. DuckDB's least and greatest skip a NULL
// argument, so the clamp turns a NULL into lo: the sums skip NULLs as the count does.
func valuePartials(squares bool) func(j int, v, x string, _ int, _ string) []string {
	return func(j int, v, x string, _ int, _ string) []string {
		out := []string{fmt.Sprintf("count(%s) AS c%d", v, j), fmt.Sprintf("sum(%s) FILTER (WHERE %s IS NOT NULL) AS s%d", x, v, j)}
		if squares {
			out = append(out, fmt.Sprintf("sum(%s * %s) FILTER (WHERE %s IS NOT NULL) AS q%d", x, x, v, j))
		}
		return out
	}
}

// scaledTotals are the per-group totals of a clamped value: the rows kept, and each
// person's scaled total (its mean over the rows kept times the rows kept, clamped to
// kept·[⌊lo·scale⌋, ⌈hi·scale⌉]: the integer range package dp derives its sensitivities
// from), and for variances the same for the squares.
func scaledTotals(squares bool) func(j int, vlo, vhi, sc float64, maxRows int) []string {
	return scaledTotalsIn(squares, nil)
}

// scaledTotalsIn is scaledTotals with each scaled total summed by sum (nil: sum(x)): a
// dialect whose BIGINT sums fail on overflow sums exact decimals instead.
func scaledTotalsIn(squares bool, sum func(string) string) func(j int, vlo, vhi, sc float64, maxRows int) []string {
	if sum == nil {
		sum = func(x string) string { return "sum(" + x + ")" }
	}
	return func(j int, vlo, vhi, sc float64, maxRows int) []string {
		kept := fmt.Sprintf("least(c%d, %d)", j, maxRows)
		lo, hi := math.Floor(vlo*sc), math.Ceil(vhi*sc)
		out := []string{fmt.Sprintf("sum(%s) AS a%d", kept, j),
			sum(fmt.Sprintf("CASE WHEN c%[1]d > 0 THEN least(greatest(CAST(round(s%[1]d / c%[1]d * %[2]s * %[3]s) AS BIGINT), %[2]s * %[4]s), %[2]s * %[5]s) ELSE 0 END",
				j, kept, fnum(sc), bigint(lo), bigint(hi))) + fmt.Sprintf(" AS s%d", j)}
		if squares {
			m := math.Max(math.Abs(lo), math.Abs(hi))
			out = append(out, sum(fmt.Sprintf("CASE WHEN c%[1]d > 0 THEN least(greatest(CAST(round(q%[1]d / c%[1]d * %[2]s * %[3]s) AS BIGINT), 0), %[2]s * %[4]s) ELSE 0 END",
				j, kept, fnum(sc*sc), bigint(m*m)))+fmt.Sprintf(" AS q%d", j))
		}
		return out
	}
}

// rowCount is the per-row form of a count of values: the non-NULL values kept.
func rowCount(j int, v, _ string, _, _, _ float64) []string {
	return []string{fmt.Sprintf("count(%s) AS a%d", v, j)}
}

// rule is the aggregate's registry row.
func (k aggKind) rule() *aggRule {
	for i := range aggRules {
		if aggRules[i].Kind == k {
			return &aggRules[i]
		}
	}
	panic(fmt.Sprintf("query: aggregate kind %q is not registered", k))
}

// valueAggregates maps a SQL aggregate name to the kind of a value aggregate.
func valueAggregate(name string) (aggKind, bool) {
	for _, r := range aggRules {
		if !r.Value {
			continue
		}
		for _, n := range r.Names {
			if n == name {
				return r.Kind, true
			}
		}
	}
	return "", false
}
