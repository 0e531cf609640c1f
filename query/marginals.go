package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
)

// Contingency tables measured through the engine (docs/privacy.md#dp-marginals-and-synthetic-data).
//
// A marginal over attributes a₁…a_m of one table is the query
//
//	SELECT key(a₁) AS a0, …, COUNT(*) AS n FROM table GROUP BY a0, …
//
// printed from the catalog (never from user text), checked by the same checker as any query
// (the project's allow-list applies), and rewritten by the same rewrite: each person keeps at
// most max_groups_contributed cells (chosen by a keyed hash of pid and the cell) and at most
// max_rows_per_group rows in each. Every key has a public domain, so the table's cells are
// enumerated from the catalog and rows outside the domain (NULLs, unknown codes) are dropped
// before the bounding; cells nobody is in are present with count 0. (Synthesis counts over
// one population instead, NULL a level of every nullable attribute: the person_rows
// bounding, synthbound.go.) The exact counts never
// leave this package: Marginals noises them, Synthesize hands them to the synthesizer's
// mechanisms.

// Kinds of attribute.
const (
	AttrDomain = "domain" // a column with a public domain in the catalog: one level per value
	AttrMonth  = "month"  // a date of the extract period: one level per month of the period
	AttrBins   = "bins"   // a numeric column with catalog bounds: equal-width bins
)

// DefaultBins and MaxBins are the number of equal-width bins of a numeric attribute.
const (
	DefaultBins = 10
	MaxBins     = 100
)

// MarginalAttribute is one attribute of a marginal, as measured: how its levels are made and
// their values, from the catalog only.
type MarginalAttribute struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Type is the SQL type of the levels in the synthetic data: VARCHAR, BOOLEAN, BIGINT,
	// DATE (the first day of the month) or DOUBLE (a bin's midpoint).
	Type string `json:"type"`
	// Levels name the cells along this attribute: the domain's values, the months
	// ("2024-01-01"), or the bins ("[0, 36.5)"; values below the bounds fall in the first
	// bin, values above in the last, as the engine clamps).
	Levels []any `json:"levels"`
	// Edges are a binned attribute's bin edges (Bins+1 of them).
	Edges  []float64 `json:"edges,omitempty"`
	Source string    `json:"source"`
	// Null says that NULL is a level of the attribute, the last (in Levels: null): what
	// synthesis measures for a column the catalog does not declare not_null (every row
	// counted in every marginal), not /v1/marginals.
	Null bool `json:"null_level,omitempty"`

	keySQL string
	// table and column are where the attribute is read (table: the marginal's table or
	// one joined to it on pid).
	table, column string
	// notNull: the catalog says ingest never writes NULL in the column (not_null), so
	// synthesis gives it no NULL level and keeps only rows with a value in its domain.
	notNull bool
	values  []any // the resolved domain, as DuckDB groups it: level i is values[i]
	index   map[string]int
}

// Mid is the representative value of level i in synthetic rows: the domain value, the
// month's first day, or the bin's midpoint.
func (a *MarginalAttribute) Mid(i int) any {
	if a.values[i] == nil {
		return nil
	}
	switch a.Kind {
	case AttrBins:
		return (a.Edges[i] + a.Edges[i+1]) / 2
	case AttrMonth:
		if t, ok := a.values[i].(time.Time); ok {
			return t
		}
	}
	return a.values[i]
}

// resolveAttribute builds the attribute for a column of table t, read alone.
func resolveAttribute(cat *dataset.Catalog, t *dataset.CatalogTable, name string, bins int) (*MarginalAttribute, error) {
	return resolveColumn(cat, t, name, name, false, bins)
}

// resolveColumn builds the attribute named display for column name of table t; qualified
// prefixes the table's name to the column in the key's SQL (tables joined on pid).
func resolveColumn(cat *dataset.Catalog, t *dataset.CatalogTable, name, display string, qualified bool, bins int) (*MarginalAttribute, error) {
	i := slices.IndexFunc(t.Columns, func(c dataset.CatalogColumn) bool { return c.Name == name })
	if i < 0 {
		return nil, &Error{Code: CodeRejected, Msg: fmt.Sprintf("table %s has no column %s", t.Name, name), Pos: -1}
	}
	c := t.Columns[i]
	if c.Identifier || c.Name == "pid" {
		return nil, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("%s.%s is an identifier: it cannot be an attribute of a marginal or of synthetic data", t.Name, c.Name), Pos: -1}
	}
	col := quoteIdent(c.Name)
	if qualified {
		col = quoteIdent(t.Name) + "." + col
	}
	a, err := resolveKind(cat, t, c, col, bins)
	if err != nil {
		return nil, err
	}
	a.Name, a.table, a.column, a.notNull = display, t.Name, c.Name, c.NotNull
	return a, nil
}

// resolveKind makes the attribute's levels from the column's public domain.
func resolveKind(cat *dataset.Catalog, t *dataset.CatalogTable, c dataset.CatalogColumn, col string, bins int) (*MarginalAttribute, error) {
	switch {
	case c.Domain == dataset.DomainPeriod && cat.Period != nil && c.Type == "DATE":
		return &MarginalAttribute{Name: c.Name, Kind: AttrMonth, Type: "DATE", Source: "months of the extract period " + cat.Period.String(),
			keySQL: "date_trunc('month', " + col + ")"}, nil
	case c.Domain != "" && c.Domain != dataset.DomainPeriod:
		d, ok := cat.Domains[c.Domain]
		if !ok || len(d.Values) == 0 {
			break
		}
		typ := "VARCHAR"
		switch columnType(c.Type) {
		case tBool:
			typ = "BOOLEAN"
		case tNum:
			typ = "BIGINT"
		}
		return &MarginalAttribute{Name: c.Name, Kind: AttrDomain, Type: typ, Source: d.Source, keySQL: col}, nil
	case c.Bounds != nil && columnType(c.Type) == tNum:
		if bins < 2 || bins > MaxBins {
			return nil, &Error{Code: CodeOptions, Msg: fmt.Sprintf("bins must be from 2 to %d, got %d", MaxBins, bins), Pos: -1}
		}
		lo, hi := c.Bounds.Lo, c.Bounds.Hi
		a := &MarginalAttribute{Name: c.Name, Kind: AttrBins, Type: "DOUBLE", Source: fmt.Sprintf("%d equal-width bins of the catalog bounds [%g, %g]", bins, lo, hi)}
		for j := 0; j <= bins; j++ {
			a.Edges = append(a.Edges, lo+(hi-lo)*float64(j)/float64(bins))
		}
		a.Edges[bins] = hi
		var b strings.Builder
		b.WriteString("CASE")
		for j := 1; j < bins; j++ {
			fmt.Fprintf(&b, " WHEN %s < %s THEN %d", col, fnum(a.Edges[j]), j-1)
		}
		fmt.Fprintf(&b, " WHEN %s >= %s THEN %d END", col, fnum(a.Edges[bins-1]), bins-1)
		a.keySQL = b.String()
		return a, nil
	}
	return nil, &Error{Code: CodeRejected, Msg: fmt.Sprintf("%s.%s has no public domain in the catalog (a listed domain, a date of the extract period, or numeric bounds): it cannot be an attribute of a marginal", t.Name, c.Name), Pos: -1}
}

// setLevels records the attribute's resolved domain (the first time) and checks that a
// later resolution agrees. With null, NULL is one more level, the last (Levels: nil).
func (a *MarginalAttribute) setLevels(values []any, null bool) error {
	if null {
		values = append(slices.Clone(values), nil)
	}
	if a.values != nil {
		if len(values) != len(a.values) {
			return fmt.Errorf("attribute %s resolved to %d then %d levels", a.Name, len(a.values), len(values))
		}
		return nil
	}
	a.Null = null
	a.values = values
	a.index = make(map[string]int, len(values))
	a.Levels = make([]any, len(values))
	for i, v := range values {
		a.index[groupID([]any{v})] = i
		switch {
		case v == nil:
			a.Levels[i] = nil
		case a.Kind == AttrBins:
			j := int(toInt64(v))
			if j != i || j+1 >= len(a.Edges) {
				return fmt.Errorf("attribute %s: bin %d at level %d", a.Name, j, i)
			}
			closing := ")"
			if j+2 == len(a.Edges) {
				closing = "]"
			}
			a.Levels[i] = fmt.Sprintf("[%g, %g%s", a.Edges[j], a.Edges[j+1], closing)
		default:
			a.Levels[i] = jsonKey(v)
		}
	}
	if null {
		values = values[:len(values)-1]
	}
	if a.Kind == AttrBins && len(values) != len(a.Edges)-1 {
		return fmt.Errorf("attribute %s resolved to %d of %d bins", a.Name, len(values), len(a.Edges)-1)
	}
	return nil
}

// marginalCounter computes exact, per-person-bounded contingency tables of one table.
type marginalCounter struct {
	e     *Engine
	table string
	// joins are tables of one row per person joined to table on pid (person).
	joins              []string
	allow              map[string][]string
	attrs              []*MarginalAttribute
	seed               uint64
	maxGroups, maxRows int // 0: the table's catalog defaults (maxGroups: overridden when set)
	// rows, when set, is the synthesis bounding (person_rows, synthbound.go) in place of
	// per_group, and makes NULL a level of every attribute not declared not_null.
	rows *personRows
}

// preparedMarginal is a marginal's checked plan and rewrite, bound against the data's
// schema (no data read).
type preparedMarginal struct {
	attrs []int // indices into marginalCounter.attrs, in key order
	plan  *plan
	rw    rewritten
}

// marginalSQL prints the query whose bounded groups are the marginal over attrs.
func (mc *marginalCounter) marginalSQL(attrs []int) string {
	var keys, names []string
	for i, a := range attrs {
		keys = append(keys, fmt.Sprintf("%s AS a%d", mc.attrs[a].keySQL, i))
		names = append(names, fmt.Sprintf("a%d", i))
	}
	return "SELECT " + strings.Join(keys, ", ") + ", COUNT(*) AS n FROM " + mc.from() + " GROUP BY " + strings.Join(names, ", ")
}

// from is the marginals' FROM clause: the table, joined on pid to each of mc.joins.
func (mc *marginalCounter) from() string {
	f := quoteIdent(mc.table)
	for _, j := range mc.joins {
		f += fmt.Sprintf(" JOIN %s ON %s.pid = %s.pid", quoteIdent(j), quoteIdent(mc.table), quoteIdent(j))
	}
	return f
}

// joinedName is how the catalog's tables read together are named in releases and the
// ledger: "diagnosis", or "diagnosis JOIN person".
func joinedName(table string, joins []string) string {
	for _, j := range joins {
		table += " JOIN " + j
	}
	return table
}

// prepare checks the marginal's query and binds its rewrite, resolving the attributes'
// levels. It reads no data.
func (mc *marginalCounter) prepare(ctx context.Context, attrs []int) (*preparedMarginal, error) {
	if len(attrs) == 0 {
		return nil, &Error{Code: CodeRejected, Msg: "a marginal needs at least one attribute", Pos: -1}
	}
	p, err := mc.e.check(ctx, mc.marginalSQL(attrs), mc.allow)
	if err != nil {
		return nil, err
	}
	if len(p.Keys) != len(attrs) || len(p.Aggs) != 1 || p.Aggs[0].Kind != aggCountStar {
		return nil, fmt.Errorf("marginal: internal error: the plan has %d keys for %d attributes", len(p.Keys), len(attrs))
	}
	for i, k := range p.Keys {
		if k.Domain == nil {
			return nil, &Error{Code: CodeRejected, Msg: fmt.Sprintf("%s has no public domain", mc.attrs[attrs[i]].Name), Pos: -1}
		}
	}
	if mc.maxGroups > 0 {
		p.MaxGroupsContributed = mc.maxGroups
	}
	g, r := contributionBounds(p)
	if mc.maxRows > 0 {
		r = mc.maxRows
	}
	var rw rewritten
	if mc.rows != nil {
		if p.Where != nil {
			return nil, fmt.Errorf("marginal: internal error: a filter in a person_rows marginal")
		}
		rw = rewritePersonRows(p, mc.rows)
	} else {
		rw = rewrite(p, mc.seed, g, r, treeShape{mc.e.tree.Branching, mc.e.tree.Height}, dp.SumScale)
	}
	doms := make([]*keyDomain, len(p.Keys))
	for i, k := range p.Keys {
		doms[i] = k.Domain
	}
	resolved, err := mc.e.sb.prepare(ctx, rw, doms)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotStarted, err)
	}
	for i, a := range attrs {
		if err := mc.attrs[a].setLevels(resolved[i], mc.nullLevel() && !mc.attrs[a].notNull); err != nil {
			return nil, err
		}
	}
	return &preparedMarginal{attrs: attrs, plan: p, rw: rw}, nil
}

// bounds are the contribution bounds a prepared marginal applies.
func (pm *preparedMarginal) bounds() (maxGroups, maxRows int) { return pm.rw.MaxGroups, pm.rw.MaxRows }

// sensitivity is the L1 and L2 sensitivity of a contingency table under the per_group
// bounding, from its row of the registry: one person is in at most C cells, with at most R
// rows in each (docs/privacy.md#sensitivity-of-a-contingency-table).
func sensitivity(maxGroups, maxRows int) (l1, l2 float64) {
	return boundingByMethod(boundingPerGroup).Bounds(nil, maxGroups, maxRows).CountNorms()
}

// count runs a prepared marginal and returns its exact bounded counts, dense, in row-major
// order over the attributes in key order (last fastest). Unexported: exact counts only
// reach the noise (Marginals) or the synthesizer's mechanisms (Synthesize).
func (mc *marginalCounter) count(ctx context.Context, pm *preparedMarginal) ([]float64, error) {
	n := 1
	for _, a := range pm.attrs {
		n *= len(mc.attrs[a].values)
	}
	out := make([]float64, n)
	groups, err := mc.e.sb.run(ctx, pm.rw, len(pm.attrs))
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		cell := 0
		inside := true
		for i, a := range pm.attrs {
			at := mc.attrs[a]
			j, ok := at.index[groupID([]any{g.keys[i]})]
			if !ok {
				inside = false // the domain filter keeps this from happening; drop it anyway
				break
			}
			cell = cell*len(at.values) + j
		}
		if inside && len(g.vals) > 0 {
			out[cell] += float64(g.vals[0])
		}
	}
	return out, nil
}

// canonicalMarginals prints a set of marginals for the ledger: the table, each set's
// attributes with how they are made.
func canonicalMarginals(verb, table string, attrs []*MarginalAttribute, sets [][]int) string {
	var parts []string
	for _, s := range sets {
		var names []string
		for _, a := range s {
			at := attrs[a]
			switch at.Kind {
			case AttrBins:
				names = append(names, fmt.Sprintf("%s bins(%d, %g, %g)", at.Name, len(at.Edges)-1, at.Edges[0], at.Edges[len(at.Edges)-1]))
			case AttrMonth:
				names = append(names, at.Name+" by month")
			default:
				names = append(names, at.Name)
			}
		}
		parts = append(parts, "("+strings.Join(names, ", ")+")")
	}
	return verb + " " + table + " " + strings.Join(parts, " ")
}
