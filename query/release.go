package query

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dp"
)

// releaseKeys is the list of key tuples a query releases: with public keys, the cross
// product of their domains as DuckDB groups them (resolved by the sandbox), empty groups
// included; otherwise the data groups that pass DP partition selection, and with Laplace
// thresholding (plan.Thresholded) also each kept group's released count of persons, noised
// once at per's epsilon and held to the threshold for selection's delta
// (dp.ThresholdCountPersons), which the release must then use. Each tuple is distinct, so
// no group is released twice: checked here, before anything else is noised.
func releaseKeys(p *plan, rw rewritten, domains [][]any, groups map[string]*groupRow, per, selection dp.Budget, confidence float64) (keys [][]any, counts map[*groupRow]dp.Released, err error) {
	if p.Selection() {
		ids := make([]string, 0, len(groups))
		for id := range groups {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if p.Thresholded() {
			counts = map[*groupRow]dp.Released{}
		}
		for _, id := range ids {
			g := groups[id]
			var keep bool
			if counts != nil {
				var r dp.Released
				r, keep, err = dp.ThresholdCountPersons(g.vals[0], int64(rw.PersonGroups), dp.Budget{Epsilon: per.Epsilon, Delta: selection.Delta}, confidence)
				if keep {
					counts[g] = r
				}
			} else {
				keep, err = dp.KeepPartition(g.persons, int64(rw.PersonGroups), selection)
			}
			if err != nil {
				return nil, nil, err
			}
			if keep {
				keys = append(keys, g.keys)
			}
		}
	} else {
		if len(domains) != len(p.Keys) {
			return nil, nil, fmt.Errorf("%d resolved domains for %d keys", len(domains), len(p.Keys))
		}
		keys = [][]any{{}}
		for i := range p.Keys {
			if domains[i] == nil {
				return nil, nil, fmt.Errorf("key %d has no resolved domain", i)
			}
			var next [][]any
			for _, prefix := range keys {
				for _, v := range domains[i] {
					next = append(next, append(slices.Clone(prefix), v))
				}
			}
			keys = next
		}
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		id := groupID(k)
		if seen[id] {
			return nil, nil, fmt.Errorf("key tuple released twice: %w", errDuplicateGroup)
		}
		seen[id] = true
	}
	return keys, counts, nil
}

// noiseGroups turns exact bounded group totals into released rows: for each key tuple
// of releaseKeys, noise every aggregate of its group (an empty group when the data has
// none), then apply HAVING, ORDER BY and LIMIT to the noisy output. Each data group is
// read by at most one released row.
func noiseGroups(p *plan, rw rewritten, domains [][]any, groups map[string]*groupRow, per, selection dp.Budget, confidence float64, tree dp.Tree) (rows, cis [][]any, err error) {
	rows, cis, _, err = noiseRelease(p, rw, domains, groups, per, selection, confidence, tree)
	return rows, cis, err
}

// noiseRelease is noiseGroups, also returning how many key tuples were released before
// HAVING and LIMIT (with partition selection: how many groups it kept, a function of its
// noisy output).
func noiseRelease(p *plan, rw rewritten, domains [][]any, groups map[string]*groupRow, per, selection dp.Budget, confidence float64, tree dp.Tree) (rows, cis [][]any, kept int, err error) {
	keys, counts, err := releaseKeys(p, rw, domains, groups, per, selection, confidence)
	if err != nil {
		return nil, nil, 0, err
	}
	rows, cis, err = releaseRows(p, rw, keys, groups, per, confidence, tree, func(in releaseInput) (dp.Released, error) {
		if counts != nil {
			// Laplace thresholding: the count that passed the threshold is the release.
			r, ok := counts[in.group]
			if !ok {
				return dp.Released{}, fmt.Errorf("a released group without its thresholded count")
			}
			return r, nil
		}
		return in.agg.Kind.rule().Release(in)
	})
	return rows, cis, len(keys), err
}

// releaseRows builds the released rows of the key tuples keys: each aggregate of each
// tuple's group (an empty group when the data has none) released by release, then HAVING,
// ORDER BY and LIMIT applied to the output. Each data group is read by at most one row.
func releaseRows(p *plan, rw rewritten, keys [][]any, groups map[string]*groupRow, per dp.Budget, confidence float64, tree dp.Tree, release func(releaseInput) (dp.Released, error)) (rows, cis [][]any, err error) {
	used := make(map[*groupRow]bool, len(keys))
	bnd := dp.Bounding{MaxGroups: int64(rw.MaxGroups), MaxContributionsPerGroup: int64(rw.MaxRows)}
	// Quantiles sharing a tree: each owner's ranks, and each reader's place among them.
	owner := p.treeOwners()
	ranks := map[int][]float64{}
	shareAt := make([]int, len(p.Aggs))
	for j, a := range p.Aggs {
		if a.Kind == aggQuantile {
			shareAt[j] = len(ranks[owner[j]])
			ranks[owner[j]] = append(ranks[owner[j]], a.Q)
		}
	}
	for _, key := range keys {
		g := groups[groupID(key)]
		if g == nil {
			g = &groupRow{keys: key, vals: make([]int64, valueColumns(p)), tree: map[int]treeCounts{}}
		}
		if used[g] {
			return nil, nil, fmt.Errorf("a data group read by two released rows: %w", errDuplicateGroup)
		}
		used[g] = true
		aggVals := make([]any, len(p.Aggs))
		aggCIs := make([]any, len(p.Aggs))
		shares := map[int]*treeShare{}
		col := 0
		for j, a := range p.Aggs {
			rule := a.Kind.rule()
			in := releaseInput{
				group: g, agg: a, tot: g.vals[col : col+rule.Totals], tree: g.tree[owner[j]], scale: rw.Scales[j],
				bnd: bnd, per: per, confidence: confidence, tree0: tree,
			}
			if o := owner[j]; a.Kind == aggQuantile && len(ranks[o]) > 1 {
				if shares[o] == nil {
					shares[o] = &treeShare{ranks: ranks[o]}
				}
				in.share, in.shareAt = shares[o], shareAt[j]
			}
			r, err := release(in)
			col += rule.Totals
			if err != nil {
				return nil, nil, fmt.Errorf("release %s: %w", a.Name, err)
			}
			aggVals[j] = r.Value
			if math.IsNaN(r.Value) {
				aggVals[j] = nil // an exact value that does not exist (exactAggregate)
			}
			if r.CI != nil {
				aggCIs[j] = []float64{r.CI.Lower, r.CI.Upper}
			}
		}
		row := make([]any, len(p.Outputs))
		ci := make([]any, len(p.Outputs))
		for i, o := range p.Outputs {
			if o.Key >= 0 {
				row[i] = jsonKey(key[o.Key])
			} else {
				row[i] = aggVals[o.Agg]
				ci[i] = aggCIs[o.Agg]
			}
		}
		if p.Having != nil && p.Having.eval(row) != true {
			continue
		}
		rows = append(rows, row)
		cis = append(cis, ci)
	}
	if len(p.Order) > 0 {
		idx := make([]int, len(rows))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			for _, o := range p.Order {
				c := compareValues(rows[a][o.Output], rows[b][o.Output])
				if o.Desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		})
		r2, c2 := make([][]any, len(rows)), make([][]any, len(rows))
		for i, k := range idx {
			r2[i], c2[i] = rows[k], cis[k]
		}
		rows, cis = r2, c2
	}
	if p.Offset > 0 {
		n := min(int(p.Offset), len(rows))
		rows, cis = rows[n:], cis[n:]
	}
	if p.Limit >= 0 && int(p.Limit) < len(rows) {
		rows, cis = rows[:p.Limit], cis[:p.Limit]
	}
	if rows == nil {
		rows, cis = [][]any{}, [][]any{}
	}
	return rows, cis, nil
}

// valueColumns is how many total columns the Groups statement reads per aggregate.
func valueColumns(p *plan) int {
	n := 0
	for _, a := range p.Aggs {
		n += a.Kind.rule().Totals
	}
	return n
}

func compareValues(a, b any) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1 // NULLs last
		}
		return -1
	}
	if x, ok := toFloat(a); ok {
		if y, ok := toFloat(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// normaliseKeys makes DuckDB's scanned key values comparable with domain values.
func normaliseKeys(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = normaliseKey(v)
	}
	return out
}

func normaliseKey(v any) any {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return int64(v)
	case float32:
		return normaliseKey(float64(v))
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
		return v
	case *big.Int:
		return v.Int64()
	case duckdb.Decimal:
		return normaliseKey(v.Float64())
	case time.Time:
		return time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
	}
	return v
}

// jsonKey renders a key value for the release: dates as YYYY-MM-DD.
func jsonKey(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.DateOnly)
	}
	return v
}

func groupID(keys []any) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%T:%v\x00", k, jsonKey(k))
	}
	return b.String()
}

func toInt64(v any) int64 {
	switch v := v.(type) {
	case nil:
		return 0
	case *big.Int:
		if v.IsInt64() {
			return v.Int64()
		}
		if v.Sign() > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	n := normaliseKey(v)
	if i, ok := n.(int64); ok {
		return i
	}
	if f, ok := n.(float64); ok {
		return int64(math.Round(f))
	}
	return 0
}
