package query

import (
	"fmt"
	"math"
	"strconv"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/release"
)

// What this file adds to a release is post-processing: it reads the release's noisy values
// and intervals and public parameters (the query, the catalog, the options), never the data,
// so it costs no budget. Flags and notes are made whenever a release is served, fresh or
// from the cache, from the release as recorded: the ledger keeps the unclamped values, and
// clamp_to_range only changes what is sent.

// valueRange is the Range of an aggregate's released values.
func valueRange(a agg) *release.Range {
	lo, hi := a.Kind.rule().Range(a.Lo, a.Hi)
	r := &release.Range{}
	if !math.IsInf(lo, 0) {
		r.Lo = &lo
	}
	if !math.IsInf(hi, 0) {
		r.Hi = &hi
	}
	return r
}

// annotate clamps the release's dp values and interval ends into their columns' ranges when
// clamp is set, flags the values clamped and those whose interval covers the whole range,
// and writes the notes that explain them and partition selection.
func annotate(rel *release.Release, clamp bool) {
	rel.ClampToRange = clamp
	rel.Flags, rel.Notes = nil, nil
	type tally struct{ outside, clamped, uninformative, values int }
	tallies := make([]tally, len(rel.Columns))
	flags := make([][][]string, len(rel.Rows))
	flagged := false
	for i, row := range rel.Rows {
		flags[i] = make([][]string, len(row))
		for j, col := range rel.Columns {
			if col.Kind != "dp" || col.Range == nil || j >= len(row) {
				continue
			}
			v, ok := toFloat(row[j])
			if !ok {
				continue
			}
			tallies[j].values++
			var f []string
			lo, hi, hasCI := release.CIBounds(rel.CI[i][j])
			switch {
			case clamp:
				if c := clampTo(col.Range, v); c != v {
					row[j] = c
					f = append(f, release.FlagClamped)
					tallies[j].clamped++
				}
				if hasCI {
					lo, hi = clampTo(col.Range, lo), clampTo(col.Range, hi)
					rel.CI[i][j] = []float64{lo, hi}
				}
			case !col.Range.Contains(v):
				tallies[j].outside++
			}
			if hasCI && col.Range.Bounded() && lo <= *col.Range.Lo && hi >= *col.Range.Hi {
				f = append(f, release.FlagUninformative)
				tallies[j].uninformative++
			}
			if f != nil {
				flags[i][j], flagged = f, true
			}
		}
	}
	if flagged {
		rel.Flags = flags
	}
	for j, t := range tallies {
		col := rel.Columns[j]
		if t.clamped > 0 {
			rel.Notes = append(rel.Notes, fmt.Sprintf("%s: %s outside %s, the range the aggregate can take, clamped into it with %s interval (clamp_to_range); a clamped value is biased: do not add clamped values up", col.Name, ofValues(t.clamped, t.values, "noisy value"), col.Range, pronoun(t.clamped)))
		}
		if t.outside > 0 {
			rel.Notes = append(rel.Notes, fmt.Sprintf("%s: %s outside %s, the range the aggregate can take: noise around a value near the range's end (a count below 0 is a small count); ask with clamp_to_range to have such values clamped into the range", col.Name, ofValues(t.outside, t.values, "value"), col.Range))
		}
		if t.uninformative > 0 {
			rel.Notes = append(rel.Notes, fmt.Sprintf("%s: %s an interval covering the whole range %s: %s nothing about %s group, which is too small for the epsilon spent", col.Name, ofValuesHave(t.uninformative, t.values), col.Range, says(t.uninformative), pronoun(t.uninformative)))
		}
	}
	if s := rel.Selection; s != nil {
		odds := fmt.Sprintf("at the selection's epsilon %s and delta %s with max_groups_contributed %d, a group with %d people is released with even odds, and with %d people 95%% of the time (computed from these options alone, not from the data)",
			strconv.FormatFloat(s.Epsilon, 'g', -1, 64), strconv.FormatFloat(s.Delta, 'g', -1, 64), s.MaxGroupsContributed, s.PersonsForEvenOdds, s.PersonsFor95Percent)
		switch {
		case s.GroupsKept == nil:
			rel.Notes = append(rel.Notes, "groups will be chosen by DP partition selection (the GROUP BY keys have no public domain): groups with few people are left out, and how many is not released; "+odds)
		case *s.GroupsKept == 0:
			rel.Notes = append(rel.Notes, "no group was released: DP partition selection kept none, so every group has few people for these options; "+odds+". Raise epsilon or delta, lower max_groups_contributed, group more coarsely, or group by keys with a public domain (catalog domains, date_trunc of a period date), whose groups are all released")
		default:
			rel.Notes = append(rel.Notes, fmt.Sprintf("%d %s kept by DP partition selection (the GROUP BY keys have no public domain): groups with few people may be missing, and how many is not released; %s", *s.GroupsKept, choose(*s.GroupsKept, "group was", "groups were"), odds))
		}
	}
}

func ofValues(n, of int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s of %d was", what, of)
	}
	return fmt.Sprintf("%d %ss of %d were", n, what, of)
}

func ofValuesHave(n, of int) string {
	if n == 1 {
		return fmt.Sprintf("1 value of %d has", of)
	}
	return fmt.Sprintf("%d values of %d have", n, of)
}

func pronoun(n int) string { return choose(n, "its", "their") }
func says(n int) string    { return choose(n, "it says", "they say") }

func choose(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clampTo moves x into r.
func clampTo(r *release.Range, x float64) float64 {
	if r.Lo != nil && x < *r.Lo {
		return *r.Lo
	}
	if r.Hi != nil && x > *r.Hi {
		return *r.Hi
	}
	return x
}

// thresholdMechanism names Laplace thresholding on the released count of persons
// (plan.Thresholded) in releases.
const thresholdMechanism = "laplace_threshold"

// selectionInfo is what a release says of partition selection, from the options alone:
// plan p's per-mechanism and selection budgets and the groups one person may be counted in.
// With Laplace thresholding the selection is the count's own noisy value (its epsilon) held
// to a threshold (the selection's delta).
func selectionInfo(p *plan, per, selection dp.Budget, maxGroups int) (*release.Selection, error) {
	mech, b := "preagg_select_partition", selection
	toKeep := dp.PersonsToKeep
	if p.Thresholded() {
		mech, b = thresholdMechanism, dp.Budget{Epsilon: per.Epsilon, Delta: selection.Delta}
		toKeep = dp.ThresholdPersonsToKeep
	}
	n50, err := toKeep(0.5, int64(maxGroups), b)
	if err != nil {
		return nil, err
	}
	n95, err := toKeep(0.95, int64(maxGroups), b)
	if err != nil {
		return nil, err
	}
	return &release.Selection{
		Mechanism: mech, Epsilon: b.Epsilon, Delta: b.Delta,
		MaxGroupsContributed: maxGroups, PersonsForEvenOdds: n50, PersonsFor95Percent: n95,
	}, nil
}

// keyLabels gives each key column whose key is a catalog column with labelled codes the
// labels of the codes its rows hold: public reference data, never read off the data.
func keyLabels(p *plan, cat *dataset.Catalog, rel *release.Release) {
	for i, o := range p.Outputs {
		if o.Key < 0 {
			continue
		}
		col, ok := p.Keys[o.Key].Expr.(*column)
		if !ok || col.Domain == "" {
			continue
		}
		labels := cat.Domains[col.Domain].Labels
		if len(labels) == 0 {
			continue
		}
		out := map[string]string{}
		for _, row := range rel.Rows {
			code := fmt.Sprint(row[i])
			if l, ok := labels[code]; ok && row[i] != nil {
				out[code] = l
			}
		}
		if len(out) > 0 {
			rel.Columns[i].Labels = out
		}
	}
}
