package query

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
)

// rewritten is the SQL the sandbox runs for a plan
// (docs/privacy.md#bounding-each-persons-contribution: base, per_unit, L0, per_group). The
// researcher's text is never executed: these statements are printed from the checked
// plan, in total forms.
type rewritten struct {
	// Method is the bounding the statements apply (a boundingRules row's Method).
	Method string
	// Bounded selects the per-person, per-group partial aggregates after clamping and
	// L0 bounding, as the temporary table "bounded" (a WITH statement: ctes, then the
	// bounded SELECT).
	Bounded string
	// ctes are Bounded's common table expressions ("base AS (...), per_unit AS (...)")
	// and boundedSelect its final SELECT: Inline puts them before Groups.
	ctes, boundedSelect string
	// Groups reads one row per group: the keys, the number of persons, and each
	// aggregate's exact bounded totals (scaled integers for sums).
	Groups string
	// Tree reads quantile tree node counts per group, one statement per quantile
	// aggregate, by aggregate index (empty for other aggregates).
	Tree []string
	// Single, when set, replaces Groups and Tree (person_rank with quantiles): one scan
	// whose GROUPING SETS give each group's totals and every quantile tree's leaf counts.
	// Its columns are Groups' columns, then for each leaf set of SingleTrees in order its
	// GROUPING flag (0 on its leaf rows) and leaf node, then the rows counted. A leaf set is
	// read by the quantile aggregates it lists (those of one value within the same bounds).
	Single      string
	SingleTrees [][]int
	// Scales are the integer scales of each aggregate's sums (0 when it has none).
	Scales []float64
	// MaxGroups and MaxRows are the contribution bounds applied, as package dp takes them:
	// groups per person (L0) and rows per person per group; person_rank's are 1 and the
	// rows kept per person (docs/privacy.md#bounding-by-person-rank).
	MaxGroups, MaxRows int
	// PersonGroups is how many groups one person may be counted in among a group's
	// persons: partition selection's L0 (per_group's G; person_rank's k, its rows).
	PersonGroups int
	// tree is the quantile tree's shape: Tree reads leaf counts, rolled up to the other
	// levels by rollUp.
	tree treeShape
}

// Inline is Groups as one statement, with "bounded" a common table expression rather
// than a temporary table: what the sandbox runs when no other statement reads bounded
// (no quantile tree), so nothing is materialised.
func (rw rewritten) Inline() string {
	return "WITH " + rw.ctes + ", bounded AS (" + rw.boundedSelect + ") " + rw.Groups
}

// hasTree says whether a quantile tree statement reads bounded besides Groups.
func (rw rewritten) hasTree() bool {
	if len(rw.SingleTrees) > 0 {
		return true
	}
	for _, q := range rw.Tree {
		if q != "" {
			return true
		}
	}
	return false
}

// materialise says whether the sandbox computes bounded once, as a temporary table, for
// Groups and the trees to read: the per_group bounding with a quantile tree. The
// person_rank bounding's statements each read the ranked rows themselves (a filtered scan
// costs less than a table of them).
func (rw rewritten) materialise() bool { return rw.hasTree() && rw.Method == boundingPerGroup }

// createBounded materialises Bounded as the connection's temporary table "bounded", which
// Groups and Tree read; limit0 makes it empty (to bind the readers without reading data).
func (rw rewritten) createBounded(limit0 bool) string {
	if limit0 {
		return "CREATE OR REPLACE TEMP TABLE bounded AS SELECT * FROM (" + rw.Bounded + ") LIMIT 0"
	}
	return "CREATE OR REPLACE TEMP TABLE bounded AS " + rw.Bounded
}

// treeShape is the quantile tree's shape (see package dp).
type treeShape struct{ Branching, Height int }

// baseSelect is what both boundings read (step 1, base): the plan's keys as k0, k1, …, its
// aggregates' inputs as v0, v1, …, from its tables joined on pid, with the plan's WHERE and
// each public key's domain filter; pid first when withPID. from is the FROM clause (tables
// and joins) and extra are further conditions, ANDed first. With groupFilters, a key's
// domain filter that is not a date range is returned in later instead, written on its key
// column (k0, …), for the caller to apply to the groups rather than to every row: the
// same groups when no per-person step lies between the rows and their groups (person_rank),
// at the price of one comparison a group. It is printed in dialect d (DuckDB's refuses
// nothing); an error is the dialect's refusal.
func baseSelectIn(d dialect, p *plan, withPID, groupFilters bool, from string, extra ...string) (base string, keyCols, later []string, err error) {
	var sel []string
	if withPID {
		sel = append(sel, d.Ident(p.Tables[0].Alias)+".pid AS pid")
	}
	where := slices.Clone(extra)
	if p.Where != nil {
		cond := d.Expr
		if d.Cond != nil {
			cond = d.Cond
		}
		w, err := cond(p.Where)
		if err != nil {
			return "", nil, nil, err
		}
		where = append(where, w)
	}
	for i, k := range p.Keys {
		kc := fmt.Sprintf("k%d", i)
		keyCols = append(keyCols, kc)
		keySQL, err := d.Expr(k.Expr)
		if err != nil {
			return "", nil, nil, err
		}
		key := keySQL
		if k.Domain == nil && k.Expr.Type() == tNum {
			// Arithmetic in doubles saturates to ±inf or NaN, which no release can
			// carry: such a key joins the NULL group, whose release, like any other
			// group's, is decided by partition selection.
			key = d.Finite(key)
		}
		sel = append(sel, key+" AS "+kc)
		if k.Domain != nil {
			r, isRange, err := bucketRange(d, k)
			if err != nil {
				return "", nil, nil, err
			}
			var f string
			switch {
			case isRange:
				where = append(where, r)
			case groupFilters:
				if f, err = d.Domain(kc, k.Domain); err != nil {
					return "", nil, nil, err
				}
				later = append(later, f)
			default:
				if f, err = d.Domain(keySQL, k.Domain); err != nil {
					return "", nil, nil, err
				}
				where = append(where, f)
			}
		}
	}
	for j, a := range p.Aggs {
		if a.Arg != nil {
			arg, err := d.Expr(a.Arg)
			if err != nil {
				return "", nil, nil, err
			}
			sel = append(sel, arg+fmt.Sprintf(" AS v%d", j))
		}
	}
	base = "SELECT " + strings.Join(sel, ", ") + " FROM " + from
	if len(where) > 0 {
		base += " WHERE " + strings.Join(where, " AND ")
	}
	return base, keyCols, later, nil
}

// clampedValue is aggregate j's input v<j> clamped to its bounds (and, for variances,
// centred): the value every bounding aggregates.
func clampedValue(a agg, j int) string {
	x := fmt.Sprintf("least(greatest(CAST(v%d AS DOUBLE), %s), %s)", j, fnum(a.Lo), fnum(a.Hi))
	if _, _, off := a.noisedBounds(); off != 0 {
		x = fmt.Sprintf("(%s - %s)", x, fnum(off))
	}
	return x
}

// leafSQL is quantile j's leaf in dialect d: in integer arithmetic when its value is an
// integer and the tree and bounds allow it (dp.IntegerNodeSQL: the same leaf for every
// value, about twice as fast in DuckDB), else from the clamped double x (dp.NodeSQL).
func leafSQL(d dialect, a agg, j int, x string, tree treeShape) string {
	t := dp.Tree{Branching: tree.Branching, Height: tree.Height}
	if _, _, off := a.noisedBounds(); a.Arg != nil && integral(a.Arg) && off == 0 && d.IntDiv != nil {
		if s, ok := dp.IntegerNodeSQL(fmt.Sprintf("v%d", j), a.Lo, a.Hi, t, tree.Height, d.IntDiv); ok {
			return s
		}
	}
	return dp.NodeSQL(x, a.Lo, a.Hi, t, tree.Height)
}

// rewrite builds the per_group bounding's statements for plan p with a secret per-release
// seed (docs/privacy.md#bounding-each-persons-contribution), for the embedded DuckDB:
// rewriteIn in DuckDB's dialect, which refuses nothing.
func rewrite(p *plan, seed uint64, maxGroups, maxRows int, tree treeShape, scale func(lo, hi float64) float64) rewritten {
	rw, err := rewriteIn(duckDialect, p, seed, maxGroups, maxRows, tree, scale)
	if err != nil {
		panic(fmt.Sprintf("query: DuckDB's dialect refused a per_group rewrite: %v", err))
	}
	return rw
}

// rewriteIn is the per_group bounding's statements printed in dialect d: the one printer
// of this bounding. The dialect spells the expressions and sums, and the keyed row order
// each person's rows and groups are kept by (d.Order: any deterministic function of the
// person's own row and the seed, which the sensitivity does not depend on).
func rewriteIn(d dialect, p *plan, seed uint64, maxGroups, maxRows int, tree treeShape, scale func(lo, hi float64) float64) (rewritten, error) {
	rw := rewritten{Method: boundingPerGroup, tree: tree, MaxGroups: maxGroups, MaxRows: maxRows, PersonGroups: maxGroups, Scales: make([]float64, len(p.Aggs)), Tree: make([]string, len(p.Aggs))}
	seedSQL := strconv.FormatUint(seed>>1, 10) // fits a signed BIGINT literal
	// 1. base: filter and join; project pid, keys and aggregate inputs.
	var from strings.Builder
	for i, t := range p.Tables {
		src := d.Ident(t.Name)
		if len(p.Tables) > 1 {
			// Per-person truncation before a join bounds the join's work and output by
			// construction: at most R rows of each table per person. With person ranks,
			// the R rows of lowest rank (a filter the scan applies); without, the R rows
			// with the smallest keyed hash of the columns the query reads (a window), so
			// no other column is read (rows equal on them are interchangeable for the
			// query).
			r := t.Meta.MaxGroupsContributed * t.Meta.MaxRowsPerGroup
			if t.Meta.PersonRank {
				src = fmt.Sprintf("(SELECT * FROM %s AS _t WHERE _t.%s <= %d)", d.Ident(t.Name), dataset.PersonRankColumn, r)
			} else {
				hashed := []orderVal{{SQL: "_t.pid", PID: true}}
				for _, c := range columnsRead(p, t.Alias) {
					hashed = append(hashed, orderVal{SQL: "_t." + d.Ident(c.Name), T: c.T})
				}
				src = fmt.Sprintf("(SELECT * FROM %s AS _t QUALIFY row_number() OVER (PARTITION BY pid ORDER BY %s) <= %d)", d.Ident(t.Name), d.Order(hashed, seedSQL), r)
			}
		}
		if i == 0 {
			fmt.Fprintf(&from, "%s AS %s", src, d.Ident(t.Alias))
		} else {
			fmt.Fprintf(&from, " JOIN %s AS %s ON %s.pid = %s.pid", src, d.Ident(t.Alias), d.Ident(p.Tables[0].Alias), d.Ident(t.Alias))
		}
	}
	base, keyCols, _, err := baseSelectIn(d, p, true, false, from.String())
	if err != nil {
		return rewritten{}, err
	}
	if d.MaskL0 && maskApplies(p) {
		// Steps 2 to 4 for COUNT(DISTINCT pid) over at most 63 public groups: each
		// person's groups as the bits of one integer, no window.
		return maskL0(p, rw, base, keyCols, seedSQL, maxGroups), nil
	}
	// 2. per_unit: one row per person and group, with clamped partial aggregates.
	pu := []string{"pid"}
	pu = append(pu, keyCols...)
	pu = append(pu, "count(*) AS n")
	leaves := map[int]string{}
	for j, a := range p.Aggs {
		r := a.Kind.rule()
		if r.PerUnit == nil {
			continue
		}
		v := fmt.Sprintf("v%d", j)
		x := clampedValue(a, j)
		if a.Kind == aggQuantile {
			// A quantile's values are counted in its tree statement, each as its leaf
			// (its node at the deepest level: the upper levels' nodes are the leaf
			// divided by powers of the branching factor, summed in Go).
			leaves[j] = leafSQL(d, a, j, x, tree)
		}
		pu = append(pu, r.PerUnit(j, v, x, maxRows, seedSQL)...)
	}
	perUnit := "SELECT " + strings.Join(pu, ", ") + " FROM base GROUP BY " + strings.Join(append([]string{"pid"}, keyCols...), ", ")
	// 3. L0 bounding: each person keeps at most maxGroups groups, chosen by a keyed hash;
	// none when the keys' public domains hold at most maxGroups groups in all, which then
	// bound each person's groups already (publicGroupsWithin).
	bounded := "SELECT * FROM per_unit"
	if len(keyCols) > 0 && !publicGroupsWithin(p, maxGroups) {
		hashed := []orderVal{{SQL: "pid", PID: true}}
		for i, k := range keyCols {
			hashed = append(hashed, orderVal{SQL: k, T: p.Keys[i].Expr.Type()})
		}
		bounded = fmt.Sprintf("SELECT * FROM per_unit QUALIFY row_number() OVER (PARTITION BY pid ORDER BY %s) <= %d",
			d.Order(hashed, seedSQL), maxGroups)
	}
	rw.ctes = "base AS (" + base + "), per_unit AS (" + perUnit + ")"
	rw.boundedSelect = bounded
	rw.Bounded = "WITH " + rw.ctes + " " + bounded
	// 4. per_group: exact bounded totals; each person's contribution to a group is
	// clamped to maxRows rows, its sums rescaled to the rows kept (so its mean is kept).
	g := append([]string{}, keyCols...)
	g = append(g, "count(*) AS persons")
	owner := p.treeOwners()
	for j, a := range p.Aggs {
		r := a.Kind.rule()
		var sc, vlo, vhi float64
		if r.Value && a.Kind != aggQuantile {
			vlo, vhi, _ = a.noisedBounds()
			sc = scale(vlo, vhi)
			rw.Scales[j] = sc
		}
		perGroup := r.PerGroup
		if d.Sum != nil && r.Value && a.Kind != aggQuantile {
			// The registry's scaledTotals with the dialect's sum (TestScaledTotalsInRegistry).
			perGroup = scaledTotalsIn(r.Centred, d.Sum)
		}
		g = append(g, perGroup(j, vlo, vhi, sc, maxRows)...)
		if a.Kind == aggQuantile && owner[j] == j {
			// A tree read by several quantiles is counted once (plan.treeOwners).
			ctes := rw.ctes
			if !d.TempTables {
				// No temporary table to read bounded from: the statement defines it.
				ctes += ", bounded AS (" + bounded + ")"
			}
			rw.Tree[j] = treeSQL(d, ctes, keyCols, j, leaves[j], seedSQL, maxRows, tree)
		}
	}
	rw.Groups = "SELECT " + strings.Join(g, ", ") + " FROM bounded"
	if len(keyCols) > 0 {
		rw.Groups += " GROUP BY " + strings.Join(keyCols, ", ")
	}
	return rw, nil
}

// publicGroupsWithin says whether plan p's groups are at most g in number whatever the
// data: every key has a public domain, whose filter keeps only the domain's values, so
// every group is one of the product of the domains' sizes
// (docs/privacy.md#bounding-each-persons-contribution). Each person is then in at most g
// groups without the L0 step, and per_group keeps every group of every person. Decided
// from the plan (the catalog's and the query's domains), never the data.
func publicGroupsWithin(p *plan, g int) bool {
	if len(p.Keys) == 0 {
		return false
	}
	n := 1
	for _, k := range p.Keys {
		// A domain of more than 64 dates is filtered as a range (domainFilter), which
		// holds exactly its values only when they are consecutive days: not counted on.
		if k.Domain == nil || len(k.Domain.Values) > 64 {
			return false
		}
		n *= len(k.Domain.Values)
		if n > g {
			return false
		}
	}
	return true
}

// columnsRead lists, sorted by name, the columns of the table used as alias that the
// plan's WHERE, keys and aggregate arguments read.
func columnsRead(p *plan, alias string) []*column {
	var cols []*column
	visit := func(e expr) {
		walk(e, func(x expr) {
			if c, ok := x.(*column); ok && c.Alias == alias {
				cols = append(cols, c)
			}
		})
	}
	visit(p.Where)
	for _, k := range p.Keys {
		visit(k.Expr)
	}
	for _, a := range p.Aggs {
		visit(a.Arg)
	}
	slices.SortFunc(cols, func(a, b *column) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(cols, func(a, b *column) bool { return a.Name == b.Name })
}

func prefixCols(cols []string) string {
	if len(cols) == 0 {
		return ""
	}
	return strings.Join(cols, ", ") + ","
}

// treeSQL counts the values of quantile aggregate j per group and leaf of the tree (level
// Height), from the rows of base in the (person, group) units bounded kept (L0; keys
// matched with IS NOT DISTINCT FROM): of a unit with at most maxRows non-NULL values, all of
// them; of a larger one, the maxRows with the smallest keyed hash hash(pid, value, seed) (a
// window, which spills, over those units' rows only). The other levels are sums of leaves
// (rollUp): node i of level l is the leaves whose index divided by Branching^(Height-l)
// is i.
func treeSQL(d dialect, ctes string, keyCols []string, j int, leaf, seedSQL string, maxRows int, t treeShape) string {
	cols := prefixCols(keyCols)
	part := strings.Join(append([]string{"pid"}, keyCols...), ", ")
	match := []string{"bounded.pid = base.pid"}
	var baseKeys []string
	for _, k := range keyCols {
		match = append(match, fmt.Sprintf("bounded.%s IS NOT DISTINCT FROM base.%s", k, k))
		baseKeys = append(baseKeys, "base."+k)
	}
	return fmt.Sprintf("WITH %s, vals AS (SELECT base.pid AS pid, %s %s AS v, base.v%d AS v%d, bounded.c%d AS c%d FROM base JOIN bounded ON %s WHERE base.v%d IS NOT NULL) "+
		"SELECT %s %d AS level, v AS node, count(*) AS n FROM (SELECT %s v FROM vals WHERE c%d <= %d UNION ALL "+
		"SELECT %s v FROM (SELECT * FROM vals WHERE c%d > %d QUALIFY row_number() OVER (PARTITION BY %s ORDER BY %s) <= %d)) GROUP BY ALL",
		ctes, prefixCols(baseKeys), leaf, j, j, j, j, strings.Join(match, " AND "), j,
		cols, t.Height, cols, j, maxRows,
		cols, j, maxRows, part, d.Order([]orderVal{{SQL: "pid", PID: true}, {SQL: fmt.Sprintf("v%d", j), T: tNum}}, seedSQL), maxRows)
}

// rollUp adds to leaf counts (level Height) every upper level's node counts.
func (t treeShape) rollUp(c treeCounts) {
	type leaf struct{ node, n int64 }
	var leaves []leaf
	for k, n := range c {
		if k[0] == int64(t.Height) {
			leaves = append(leaves, leaf{k[1], n})
		}
	}
	for _, l := range leaves {
		node := l.node
		for lvl := t.Height - 1; lvl >= 1; lvl-- {
			node /= int64(t.Branching)
			c[[2]int64{int64(lvl), node}] += l.n
		}
	}
}

// bucketRange is key k's domain filter, in dialect d, when k is a date_trunc or year key
// whose domain is a run of consecutive buckets: a filter on the date column it buckets, as
// a half-open range [first bucket, end of the last). The same rows (a date's bucket is in
// the run exactly when the date is in that range), but the engine compares a column it can
// skip row groups by, where the key's expression would be computed for every row to
// compare it with each value. ok is false for other keys (domainFilter's).
func bucketRange(d dialect, k key) (filter string, ok bool, err error) {
	c, ok := k.Expr.(*callExpr)
	if !ok || c.rule().Bucket == nil || len(k.Domain.Values) == 0 {
		return "", false, nil
	}
	arg, unit := c.rule().Bucket(c)
	col, ok := arg.(*column)
	if !ok || col.T != tDate {
		return "", false, nil
	}
	starts := make([]time.Time, len(k.Domain.Values))
	for i, v := range k.Domain.Values {
		switch v := v.(type) {
		case time.Time:
			starts[i] = v
		case int64: // year(d): the domain holds years
			if unit != "year" || v < 1 || v > 9999 {
				return "", false, nil
			}
			starts[i] = time.Date(int(v), 1, 1, 0, 0, 0, 0, time.UTC)
		default:
			return "", false, nil
		}
		if !truncDate(starts[i], unit).Equal(starts[i]) || i > 0 && !nextBucket(starts[i-1], unit).Equal(starts[i]) {
			return "", false, nil
		}
	}
	end := nextBucket(starts[len(starts)-1], unit)
	colSQL, err := d.Expr(col)
	if err != nil {
		return "", false, err
	}
	return fmt.Sprintf("(%s >= DATE '%s' AND %s < DATE '%s')", colSQL, starts[0].Format(time.DateOnly), colSQL, end.Format(time.DateOnly)), true, nil
}

// domainFilter keeps only rows whose key lies in its public domain
// (docs/privacy.md#groups-public-domains-and-partition-selection):
// only domain keys are ever released, so no group appears because someone is in it.
func domainFilter(keySQL string, d *keyDomain) string {
	if len(d.Values) == 0 {
		return "FALSE"
	}
	if t0, ok := d.Values[0].(time.Time); ok && len(d.Values) > 64 {
		t1 := d.Values[len(d.Values)-1].(time.Time)
		return fmt.Sprintf("(%s BETWEEN DATE '%s' AND DATE '%s')", keySQL, t0.Format(time.DateOnly), t1.Format(time.DateOnly))
	}
	vals := make([]string, len(d.Values))
	for i, v := range d.Values {
		vals[i] = (&literal{V: v}).SQL()
	}
	return fmt.Sprintf("(%s IN (%s))", keySQL, strings.Join(vals, ", "))
}

func bigint(f float64) string { return "CAST(" + strconv.FormatFloat(f, 'f', 0, 64) + " AS BIGINT)" }

func fnum(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}
