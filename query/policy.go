package query

import (
	"fmt"
	"math"
	"strconv"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
)

// countAggregates are the aggregates an output policy acts on: released counts.
var countAggregates = map[string]bool{string(aggCountStar): true, string(aggCount): true, string(aggPersons): true}

// applyPolicy applies a project's output policy (docs/governance.md#output-policy) to a
// release as it is sent, after annotate: rows with a noisy count below SuppressBelow have
// every value and interval withheld, and counts are rounded to a multiple of RoundTo with
// their intervals widened outward to multiples of it (an interval that held the true count
// still does). Post-processing of the noisy release: it reads no data and costs no budget.
func applyPolicy(rel *release.Release, policy *ledger.OutputPolicy) {
	if policy.Empty() {
		return
	}
	applied := &release.OutputPolicy{SuppressBelow: policy.SuppressBelow}
	if policy.RoundTo > 1 {
		applied.RoundTo = policy.RoundTo
	}
	rel.OutputPolicy = applied
	var counts, values []int
	for j, c := range rel.Columns {
		if c.Kind == "dp" {
			values = append(values, j)
			if countAggregates[c.Aggregate] {
				counts = append(counts, j)
			}
		}
	}
	if len(counts) == 0 {
		rel.Notes = append(rel.Notes, "the project's output policy acts on counts, and this query releases none: nothing was withheld or rounded")
		return
	}
	for i, row := range rel.Rows {
		if applied.SuppressBelow > 0 && belowThreshold(row, counts, applied.SuppressBelow) {
			applied.RowsSuppressed++
			if rel.Flags == nil {
				rel.Flags = make([][][]string, len(rel.Rows))
			}
			if rel.Flags[i] == nil {
				rel.Flags[i] = make([][]string, len(row))
			}
			for _, j := range values {
				row[j], rel.CI[i][j] = nil, nil
				rel.Flags[i][j] = []string{release.FlagSuppressed}
			}
			continue
		}
		if b := applied.RoundTo; b > 1 {
			for _, j := range counts {
				if v, ok := toFloat(row[j]); ok {
					row[j] = math.Round(v/b) * b
				}
				if lo, hi, ok := release.CIBounds(rel.CI[i][j]); ok {
					rel.CI[i][j] = []float64{math.Floor(lo/b) * b, math.Ceil(hi/b) * b}
				}
			}
		}
	}
	if applied.SuppressBelow > 0 {
		rel.Notes = append(rel.Notes, fmt.Sprintf("the project's output policy withholds the values of a row whose noisy count is below %s: %d %s withheld (flagged %q)",
			strconv.FormatFloat(applied.SuppressBelow, 'g', -1, 64), applied.RowsSuppressed, choose(applied.RowsSuppressed, "row was", "rows were"), release.FlagSuppressed))
	}
	if applied.RoundTo > 1 {
		rel.Notes = append(rel.Notes, fmt.Sprintf("the project's output policy rounds counts to a multiple of %s, and widens their intervals outward to multiples of it", strconv.FormatFloat(applied.RoundTo, 'g', -1, 64)))
	}
}

// belowThreshold says whether a count of row is below t (a withheld or missing count is).
func belowThreshold(row []any, counts []int, t float64) bool {
	for _, j := range counts {
		if v, ok := toFloat(row[j]); !ok || v < t {
			return true
		}
	}
	return false
}
