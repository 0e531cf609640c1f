package query

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
)

// Limits of what one query may ask.
const (
	maxGroupsEnumerated = 10000
	maxKeys             = 4
	maxAggs             = 16
	maxTables           = 3
	// maxExprDepth bounds the nesting of one expression: its total form, printed into
	// the rewrite, must stay within what DuckDB's parser and binder accept.
	maxExprDepth = 100
)

// checker turns DuckDB's AST into a plan, refusing everything outside the allow-list of
// docs/privacy.md#from-sql-to-a-release and the project's approved tables and columns.
type checker struct {
	cat    *dataset.Catalog
	allow  map[string][]string // table -> approved columns (empty: all)
	tables []tableUse
	bounds map[int][2]float64 // contribution_bounds_per_group by aggregate position
	depth  int                // nesting of the expression being checked
}

// Check checks a parsed statement against the catalog and the project's allow-list.
func check(res *astResult, cat *dataset.Catalog, allow map[string][]string) (*plan, error) {
	if res.Error {
		pos := -1
		if p, err := res.Position.Int64(); err == nil {
			pos = int(p)
		}
		msg := res.ErrorMessage
		switch {
		case res.ErrorType == "not implemented" && strings.Contains(msg, "Only SELECT"):
			msg = "only a single SELECT statement is allowed"
		case res.ErrorType == "not implemented":
			// DuckDB parsed it but cannot hand it over (BETWEEN SYMMETRIC, for one).
			msg = "the query uses SQL that Velo cannot check (BETWEEN SYMMETRIC, for one): write it with plain comparisons"
			return nil, rejectf(pos, "%s", msg).at("SYMMETRIC")
		case strings.Contains(msg, "expression depth") || strings.HasPrefix(msg, "memory exhausted"):
			// DuckDB's advice (SET max_expression_depth) is not the user's to follow.
			msg = fmt.Sprintf("expressions nested too deeply (at most %d levels)", maxExprDepth)
		}
		return nil, rejectf(pos, "%s", msg)
	}
	if len(res.Statements) != 1 {
		return nil, rejectf(-1, "exactly one SELECT statement is allowed, got %d", len(res.Statements))
	}
	s := &res.Statements[0].Node
	if s.Type != "SELECT_NODE" {
		return nil, rejectf(-1, "set operations (UNION, INTERSECT, EXCEPT) are not supported: send one query per part").at("UNION", "INTERSECT", "EXCEPT")
	}
	c := &checker{cat: cat, allow: allow}
	return c.selectNode(s)
}

func (c *checker) selectNode(s *selectNode) (*plan, error) {
	if len(s.CTEMap.Map) > 0 {
		return nil, rejectf(-1, "WITH (common table expressions) is not supported: write the query on the tables").at("WITH")
	}
	if s.Qualify != nil {
		return nil, rejectf(s.Qualify.pos(), "QUALIFY is not supported")
	}
	if len(s.Sample) > 0 && string(s.Sample) != "null" {
		return nil, rejectf(-1, "USING SAMPLE is not supported").at("USING SAMPLE", "TABLESAMPLE")
	}
	if s.AggregateHandling != "STANDARD_HANDLING" {
		return nil, rejectf(-1, "GROUP BY ALL is not supported: name the keys").at("GROUP BY ALL")
	}
	if len(s.GroupSets) > 1 {
		return nil, rejectf(-1, "GROUPING SETS, ROLLUP and CUBE are not supported: send one query per grouping").at("GROUPING SETS", "ROLLUP", "CUBE")
	}
	p := &plan{Limit: -1}
	if err := c.from(s.FromTable); err != nil {
		return nil, err
	}
	p.Tables = c.tables
	if s.Where != nil {
		w, err := c.expr(s.Where)
		if err != nil {
			return nil, err
		}
		if w.Type() != tBool && w.Type() != tNull {
			return nil, rejectf(s.Where.pos(), "WHERE needs a boolean condition, got a %s", w.Type())
		}
		p.Where = w
	}
	if len(s.SelectList) == 0 {
		return nil, rejectf(-1, "empty select list").at("SELECT")
	}
	// Group keys: expressions, select-list positions or aliases.
	type selItem struct {
		n     *node
		isAgg bool
	}
	items := make([]selItem, len(s.SelectList))
	for i, n := range s.SelectList {
		if n.Class == "STAR" || n.Class == "COLUMNS" {
			return nil, rejectf(n.pos(), "SELECT * would release rows: select group keys and aggregates")
		}
		items[i] = selItem{n: n, isAgg: isAggregateCall(n)}
	}
	for _, g := range s.GroupExpressions {
		gn := g
		if g.Class == "CONSTANT" && g.Value != nil && g.Value.Type.ID == "INTEGER" {
			v, _, _ := g.Value.literal()
			k := int(v.(int64))
			if k < 1 || k > len(items) {
				return nil, rejectf(g.pos(), "GROUP BY %d: the select list has %d items", k, len(items))
			}
			gn = items[k-1].n
		} else if g.Class == "COLUMN_REF" && len(g.ColumnNames) == 1 {
			for _, it := range items {
				if it.n.Alias != "" && strings.EqualFold(it.n.Alias, g.ColumnNames[0]) && !c.isColumn(g.ColumnNames[0]) {
					gn = it.n
				}
			}
		}
		if isAggregateCall(gn) {
			return nil, rejectf(g.pos(), "cannot GROUP BY an aggregate")
		}
		e, err := c.expr(gn)
		if err != nil {
			return nil, err
		}
		// A key with a public domain (a CASE with constant results, a comparison) may use
		// any approved column: its groups are enumerated, never read off the data. Other
		// keys must be built from columns the catalog marks groupable.
		dom := c.domain(e)
		if err := c.groupable(e, g.pos(), dom != nil); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(p.Keys, func(k key) bool { return k.Expr.SQL() == e.SQL() }) {
			continue
		}
		name := gn.Alias
		if name == "" {
			name = e.String()
		}
		p.Keys = append(p.Keys, key{Expr: e, Name: name, Domain: dom})
	}
	if len(p.Keys) > maxKeys {
		return nil, rejectf(s.GroupExpressions[min(maxKeys, len(s.GroupExpressions)-1)].pos(), "at most %d GROUP BY keys", maxKeys).at("GROUP BY")
	}
	names := map[string]bool{}
	for _, it := range items {
		var out output
		if it.isAgg {
			a, err := c.aggregate(it.n)
			if err != nil {
				return nil, err
			}
			p.Aggs = append(p.Aggs, a)
			out = output{Name: a.Name, Key: -1, Agg: len(p.Aggs) - 1}
		} else {
			if containsAggregate(it.n) {
				return nil, rejectf(it.n.pos(), "aggregates must stand alone in the select list (compute with their released values afterwards)")
			}
			e, err := c.expr(it.n)
			if err != nil {
				return nil, err
			}
			ki := slices.IndexFunc(p.Keys, func(k key) bool { return k.Expr.SQL() == e.SQL() })
			if ki < 0 {
				return nil, rejectf(it.n.pos(), "%s is neither a GROUP BY key nor an aggregate", e.String())
			}
			name := it.n.Alias
			if name == "" {
				name = p.Keys[ki].Name
			}
			out = output{Name: name, Key: ki, Agg: -1}
		}
		if names[out.Name] {
			return nil, rejectf(it.n.pos(), "two output columns are named %s: give one an alias", out.Name)
		}
		names[out.Name] = true
		p.Outputs = append(p.Outputs, out)
	}
	if len(p.Aggs) == 0 {
		return nil, rejectf(-1, "a query must release at least one aggregate (COUNT, SUM, AVG, ...)").at("SELECT")
	}
	if len(p.Aggs) > maxAggs {
		return nil, rejectf(p.Aggs[maxAggs].Pos, "at most %d aggregates per query", maxAggs)
	}
	if s.Having != nil {
		h, err := c.having(s.Having, p, s.SelectList)
		if err != nil {
			return nil, err
		}
		p.Having = h
	}
	for _, m := range s.Modifiers {
		switch m.Type {
		case "ORDER_MODIFIER":
			for _, o := range m.Orders {
				idx, err := c.outputRef(o.Expression, p, s.SelectList)
				if err != nil {
					return nil, err
				}
				p.Order = append(p.Order, orderBy{Output: idx, Desc: o.Type == "DESCENDING"})
			}
		case "LIMIT_MODIFIER":
			var err error
			if p.Limit, err = c.constInt(m.Limit, "LIMIT"); err != nil {
				return nil, err
			}
			if m.Offset != nil {
				if p.Offset, err = c.constInt(m.Offset, "OFFSET"); err != nil {
					return nil, err
				}
			}
		case "DISTINCT_MODIFIER":
			return nil, rejectf(-1, "SELECT DISTINCT would release rows: use GROUP BY with an aggregate").at("SELECT DISTINCT")
		case "LIMIT_PERCENT_MODIFIER":
			return nil, rejectf(-1, "LIMIT with a percentage is not supported: LIMIT n").at("LIMIT")
		default:
			return nil, rejectf(-1, "%s is not supported", strings.ToUpper(sqlSpelling(strings.TrimSuffix(m.Type, "_MODIFIER"))))
		}
	}
	narrowDomains(p)
	if err := c.checkEnumeration(p); err != nil {
		return nil, err
	}
	return p, nil
}

// narrowDomains restricts a key's public domain with the top-level conjuncts of WHERE
// that compare the key, or the date column a date_trunc/year key is built on, with
// constants (`=`, `IN`, `BETWEEN`, `<`, `<=`, `>`, `>=`): those groups could hold no row,
// and the restriction depends on the query text only, never on the data.
func narrowDomains(p *plan) {
	if p.Where == nil {
		return
	}
	conjuncts := []expr{p.Where}
	if o, ok := p.Where.(*opExpr); ok && o.Name == "AND" {
		conjuncts = o.Args
	}
	for i := range p.Keys {
		k := &p.Keys[i]
		if k.Domain == nil {
			continue
		}
		// What the WHERE clause constrains: the key itself, or the column under it.
		target, bucket := k.Expr.SQL(), ""
		if c, ok := k.Expr.(*callExpr); ok && c.rule().Bucket != nil {
			col, unit := c.rule().Bucket(c)
			target, bucket = col.SQL(), unit
		}
		narrowed := false
		var vals []any
		for _, v := range k.Domain.Values {
			keep := true
			for _, c := range conjuncts {
				o, ok := c.(*opExpr)
				if !ok || len(o.Args) < 2 || o.Args[0].SQL() != target {
					continue
				}
				if ok, applies := admits(o, v, bucket); applies {
					narrowed = true
					keep = keep && ok
				}
			}
			if keep {
				vals = append(vals, v)
			}
		}
		if narrowed {
			k.Domain = &keyDomain{Values: vals, Source: k.Domain.Source + ", restricted by WHERE"}
		}
	}
}

// admits reports whether a predicate `target op constants` can hold for some row whose
// key is v (for a bucketed date key, for some day of the bucket starting at v); applies
// is false when the predicate is not one narrowDomains understands.
func admits(o *opExpr, v any, bucket string) (ok, applies bool) {
	lits := make([]any, 0, len(o.Args)-1)
	for _, a := range o.Args[1:] {
		l, isLit := a.(*literal)
		if !isLit || l.V == nil {
			return false, false
		}
		lits = append(lits, normaliseKey(l.V))
	}
	lo, hi := v, v // the range of target values the key v stands for
	if bucket != "" {
		var start time.Time
		switch x := v.(type) {
		case time.Time:
			start = x
		case int64: // year(col)
			start = time.Date(int(x), 1, 1, 0, 0, 0, 0, time.UTC)
		default:
			return false, false
		}
		lo, hi = start, nextBucket(start, bucket).AddDate(0, 0, -1)
	}
	cmp := func(a, b any) (int, bool) {
		switch x := a.(type) {
		case time.Time:
			y, ok := b.(time.Time)
			return x.Compare(y), ok
		case string:
			y, ok := b.(string)
			return strings.Compare(x, y), ok
		}
		x, okx := toFloat(a)
		y, oky := toFloat(b)
		switch {
		case !okx || !oky:
			return 0, false
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	inRange := func(x any) (bool, bool) { // lo <= x <= hi
		a, ok1 := cmp(lo, x)
		b, ok2 := cmp(x, hi)
		return a <= 0 && b <= 0, ok1 && ok2
	}
	switch o.Name {
	case "=", "IN":
		for _, l := range lits {
			in, ok := inRange(l)
			if !ok {
				return false, false
			}
			if in {
				return true, true
			}
		}
		return false, true
	case "BETWEEN":
		a, ok1 := cmp(hi, lits[0]) // some value >= lits[0]
		b, ok2 := cmp(lo, lits[1]) // some value <= lits[1]
		return a >= 0 && b <= 0, ok1 && ok2
	case ">=", ">":
		a, ok := cmp(hi, lits[0])
		return a > 0 || a == 0 && o.Name == ">=", ok
	case "<=", "<":
		a, ok := cmp(lo, lits[0])
		return a < 0 || a == 0 && o.Name == "<=", ok
	}
	return false, false
}

func nextBucket(t time.Time, unit string) time.Time {
	switch unit {
	case "year":
		return t.AddDate(1, 0, 0)
	case "quarter":
		return t.AddDate(0, 3, 0)
	case "month":
		return t.AddDate(0, 1, 0)
	case "week":
		return t.AddDate(0, 0, 7)
	}
	return t.AddDate(0, 0, 1)
}

func (c *checker) constInt(n *node, what string) (int64, error) {
	if n == nil {
		return -1, nil
	}
	if n.Class != "CONSTANT" || n.Value == nil {
		return 0, rejectf(n.pos(), "%s must be a constant", what)
	}
	v, _, err := n.Value.literal()
	i, ok := v.(int64)
	if err != nil || !ok || i < 0 {
		return 0, rejectf(n.pos(), "%s must be a non-negative integer", what)
	}
	return i, nil
}

// from checks FROM: approved base tables joined on pid only.
func (c *checker) from(t *tableRef) error {
	if t == nil || t.Type == "EMPTY" {
		return rejectf(-1, "a FROM clause naming a table is required (tables: %s)", strings.Join(c.tableNames(), ", "))
	}
	switch t.Type {
	case "BASE_TABLE":
		if t.SchemaName != "" || t.CatalogName != "" {
			return rejectf(t.pos(), "qualified table names are not allowed: use the table's name")
		}
		if len(t.ColumnAlias) > 0 || (len(t.AtClause) > 0 && string(t.AtClause) != "null") || (len(t.Sample) > 0 && string(t.Sample) != "null") {
			return rejectf(t.pos(), "table %s: column aliases, AT and TABLESAMPLE are not supported", t.TableName)
		}
		name := strings.ToLower(t.TableName)
		if strings.ContainsAny(name, "/\\.*:'") {
			return rejectf(t.pos(), "table functions (read_parquet, read_csv, glob, ...) and file paths are not allowed: name a table")
		}
		var meta *dataset.CatalogTable
		for i := range c.cat.Tables {
			if c.cat.Tables[i].Name == name {
				meta = &c.cat.Tables[i]
			}
		}
		if meta == nil {
			return rejectf(t.pos(), "unknown table %s (tables: %s)", t.TableName, strings.Join(c.tableNames(), ", "))
		}
		if _, ok := c.allow[name]; !ok {
			return &Error{Code: CodeForbidden, Msg: fmt.Sprintf("the project is not approved for table %s", name), Pos: t.pos()}
		}
		alias := strings.ToLower(t.Alias)
		if alias == "" {
			alias = name
		}
		for _, u := range c.tables {
			if u.Alias == alias {
				return rejectf(t.pos(), "table name or alias %s used twice: give each table its own alias", alias)
			}
		}
		c.tables = append(c.tables, tableUse{Name: name, Alias: alias, Meta: *meta})
		if len(c.tables) > maxTables {
			return rejectf(t.pos(), "at most %d tables per query", maxTables)
		}
		return nil
	case "JOIN":
		if t.JoinType != "INNER" || t.RefType != "REGULAR" {
			return rejectf(t.pos(), "%s is not supported: only INNER JOIN on pid (JOIN b USING (pid))", joinSQL(t.RefType, t.JoinType)).at(strings.Fields(joinSQL(t.RefType, t.JoinType))[0])
		}
		if err := c.from(t.Left); err != nil {
			return err
		}
		left := slices.Clone(c.tables)
		if err := c.from(t.Right); err != nil {
			return err
		}
		right := c.tables[len(left):]
		if len(t.UsingColumns) > 0 {
			if len(t.UsingColumns) != 1 || !strings.EqualFold(t.UsingColumns[0], "pid") {
				return rejectf(t.pos(), "joins are on pid only: USING (pid)")
			}
			return nil
		}
		cond := t.Condition
		if cond == nil || cond.Class != "COMPARISON" || cond.Type != "COMPARE_EQUAL" || !c.isPIDRef(cond.Left) || !c.isPIDRef(cond.Right) {
			return rejectf(t.pos(), "joins are on pid only: ON a.pid = b.pid or USING (pid)")
		}
		l, r := strings.ToLower(cond.Left.ColumnNames[0]), strings.ToLower(cond.Right.ColumnNames[0])
		inL := func(a string) bool { return slices.ContainsFunc(left, func(u tableUse) bool { return u.Alias == a }) }
		inR := func(a string) bool { return slices.ContainsFunc(right, func(u tableUse) bool { return u.Alias == a }) }
		if !(inL(l) && inR(r) || inL(r) && inR(l)) {
			return rejectf(cond.pos(), "the join condition must equate the pid of one side with the pid of the other")
		}
		return nil
	case "TABLE_FUNCTION":
		return rejectf(t.pos(), "table functions (read_parquet, read_csv, glob, ...) and file paths are not allowed: name a table")
	case "SUBQUERY":
		return rejectf(t.pos(), "subqueries are not supported: name a table").at("( SELECT", "( FROM")
	case "SHOW_REF":
		return rejectf(t.pos(), "DESCRIBE, SHOW and SUMMARIZE are not supported: the catalog describes the tables and columns")
	case "PIVOT":
		return rejectf(t.pos(), "PIVOT and UNPIVOT are not supported: GROUP BY the column instead")
	}
	if t.Type == "EXPRESSION_LIST" {
		return rejectf(t.pos(), "VALUES lists are not supported: name a table")
	}
	return rejectf(t.pos(), "%s in FROM is not supported: name a table", strings.ToLower(strings.ReplaceAll(t.Type, "_", " ")))
}

func (c *checker) isPIDRef(n *node) bool {
	return n != nil && n.Class == "COLUMN_REF" && len(n.ColumnNames) == 2 && strings.EqualFold(n.ColumnNames[1], "pid")
}

func (c *checker) tableNames() []string {
	var out []string
	for _, t := range c.cat.Tables {
		if _, ok := c.allow[t.Name]; ok {
			out = append(out, t.Name)
		}
	}
	return out
}

func (c *checker) isColumn(name string) bool {
	for _, t := range c.tables {
		for _, col := range t.Meta.Columns {
			if strings.EqualFold(col.Name, name) {
				return true
			}
		}
	}
	return false
}

func (c *checker) approved(table, column string) bool {
	cols, ok := c.allow[table]
	return ok && (len(cols) == 0 || slices.Contains(cols, column))
}

// column resolves a column reference; pid and identifier columns are refused here, so
// they can appear only where the checker handles them explicitly (COUNT(DISTINCT pid),
// the join condition).
func (c *checker) column(n *node) (*column, error) {
	var qual, name string
	switch len(n.ColumnNames) {
	case 1:
		name = strings.ToLower(n.ColumnNames[0])
	case 2:
		qual, name = strings.ToLower(n.ColumnNames[0]), strings.ToLower(n.ColumnNames[1])
	default:
		return nil, rejectf(n.pos(), "column reference %s is not supported", strings.Join(n.ColumnNames, "."))
	}
	var found []*column
	for _, t := range c.tables {
		if qual != "" && t.Alias != qual {
			continue
		}
		for _, col := range t.Meta.Columns {
			if col.Name != name {
				continue
			}
			cc := &column{Table: t.Name, Alias: t.Alias, Name: col.Name, T: columnType(col.Type), Groupable: col.Groupable && !col.Identifier, Domain: col.Domain, Integer: integerType(col.Type)}
			if col.Bounds != nil {
				cc.Lo, cc.Hi, cc.HasBounds = col.Bounds.Lo, col.Bounds.Hi, true
			}
			if col.Identifier {
				return nil, rejectf(n.pos(), "%s is an identifier: it may not be selected, grouped, filtered or computed on (COUNT(DISTINCT pid) counts people)", name)
			}
			if !c.approved(t.Name, col.Name) {
				return nil, &Error{Code: CodeForbidden, Msg: fmt.Sprintf("the project is not approved for column %s.%s", t.Name, col.Name), Pos: n.pos()}
			}
			found = append(found, cc)
		}
	}
	switch {
	case len(found) == 0 && qual != "" && !slices.ContainsFunc(c.tables, func(t tableUse) bool { return t.Alias == qual }):
		return nil, rejectf(n.pos(), "unknown table or alias %s", qual)
	case len(found) == 0 && qual == "" && internalFunctions[name] != "":
		return nil, rejectf(n.pos(), "%s", internalFunctions[name]) // current_date, current_timestamp
	case len(found) == 0 && qual == "" && (name == "nan" || name == "inf" || name == "infinity"):
		return nil, rejectf(n.pos(), "unknown column %s: NaN and infinity are not numbers a query may use", n.ColumnNames[0])
	case len(found) == 0:
		return nil, rejectf(n.pos(), "unknown column %s", strings.Join(n.ColumnNames, "."))
	case len(found) > 1:
		return nil, rejectf(n.pos(), "column %s is ambiguous: qualify it with its table's alias", name)
	}
	return found[0], nil
}

func columnType(t string) typ {
	switch t {
	case "VARCHAR":
		return tString
	case "DATE":
		return tDate
	case "BOOLEAN":
		return tBool
	case "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT":
		return tNum
	}
	return tNull
}

// groupable checks a key: built from groupable columns, unless its domain is public.
func (c *checker) groupable(e expr, pos int, public bool) error {
	var err error
	cols := 0
	walk(e, func(x expr) {
		if col, ok := x.(*column); ok {
			cols++
			if !col.Groupable && !public && err == nil {
				err = rejectf(pos, "%s may not be a GROUP BY key (it is not marked groupable in the catalog)", col.Name)
			}
		}
	})
	if err == nil && cols == 0 {
		err = rejectf(pos, "a GROUP BY key must use a column")
	}
	return err
}

// domain finds a key's public domain (docs/privacy.md#groups-public-domains-and-partition-selection),
// from the catalog and the period
// only.
func (c *checker) domain(e expr) *keyDomain {
	switch e := e.(type) {
	case *column:
		if e.Domain == dataset.DomainPeriod && c.cat.Period != nil {
			return periodBuckets(c.cat.Period, "day", false)
		}
		d, ok := c.cat.Domains[e.Domain]
		if !ok || e.Domain == "" || len(d.Values) == 0 {
			return nil
		}
		vals := make([]any, len(d.Values))
		for i, v := range d.Values {
			if f, ok := v.(float64); ok && e.T == tNum {
				vals[i] = int64(f)
			} else {
				vals[i] = v
			}
		}
		return &keyDomain{Values: vals, Source: d.Source}
	case *callExpr:
		if r := e.rule(); r.Domain != nil {
			return r.Domain(c, e)
		}
		return nil
	case *caseExpr:
		var vals []any
		for _, t := range append(slices.Clone(e.Thens), e.Else) {
			if t == nil {
				continue
			}
			l, ok := t.(*literal)
			if !ok {
				return nil
			}
			if l.V != nil && !slices.Contains(vals, l.V) {
				vals = append(vals, l.V)
			}
		}
		return &keyDomain{Values: vals, Source: "CASE results"}
	case *opExpr:
		return &keyDomain{Values: []any{false, true}, Source: "boolean"}
	}
	if e.Type() == tBool {
		return &keyDomain{Values: []any{false, true}, Source: "boolean"}
	}
	return nil
}

func intRange(lo, hi int64, src string) *keyDomain {
	d := &keyDomain{Source: src}
	for i := lo; i <= hi; i++ {
		d.Values = append(d.Values, i)
	}
	return d
}

// periodBuckets enumerates date_trunc buckets (or years) that intersect the period.
func periodBuckets(p *fse.Period, unit string, asYear bool) *keyDomain {
	d := &keyDomain{Source: "extract period " + p.String()}
	if asYear {
		for y := p.From.Year(); y <= p.To.Year(); y++ {
			d.Values = append(d.Values, int64(y))
		}
		return d
	}
	for t := truncDate(p.From, unit); !t.After(p.To) && len(d.Values) <= maxGroupsEnumerated; t = nextBucket(t, unit) {
		d.Values = append(d.Values, t)
	}
	return d
}

func truncDate(t time.Time, unit string) time.Time {
	y, m, d := t.Date()
	switch unit {
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	case "quarter":
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC)
	case "month":
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	case "week": // ISO weeks start on Monday, as DuckDB's date_trunc('week', ...)
		wd := (int(t.Weekday()) + 6) % 7
		return time.Date(y, m, d-wd, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (c *checker) checkEnumeration(p *plan) error {
	n := 1
	for _, k := range p.Keys {
		if k.Domain != nil {
			n *= max(len(k.Domain.Values), 1)
			if n > maxGroupsEnumerated {
				return rejectf(-1, "the GROUP BY keys' public domains have more than %d combinations: group more coarsely", maxGroupsEnumerated).at("GROUP BY")
			}
		}
	}
	return nil
}

var nonDPAggregates = map[string]bool{
	"min": true, "max": true, "list": true, "array_agg": true, "string_agg": true, "group_concat": true,
	"first": true, "last": true, "any_value": true, "arg_min": true, "arg_max": true, "argmin": true, "argmax": true,
	"mode": true, "histogram": true, "bit_and": true, "bit_or": true, "bit_xor": true, "bool_and": true, "bool_or": true,
	"product": true, "entropy": true, "kurtosis": true, "skewness": true, "approx_count_distinct": true, "approx_quantile": true,
	"quantile_disc": true, "percentile_disc": true, "mad": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"regr_slope": true, "fsum": true, "sumkahan": true, "kahan_sum": true, "favg": true, "count_if": true, "countif": true,
	"min_by": true, "max_by": true, "bitstring_agg": true, "reservoir_quantile": true, "json_group_array": true, "json_group_object": true,
}

// dpAggregates are the SQL names of the registry's aggregates (aggRules).
var dpAggregates = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range aggRules {
		for _, n := range r.Names {
			m[n] = true
		}
	}
	return m
}()

func isAggregateCall(n *node) bool {
	if n == nil || n.Class != "FUNCTION" || n.IsOperator {
		return false
	}
	name := strings.ToLower(n.FunctionName)
	return dpAggregates[name] || nonDPAggregates[name]
}

func containsAggregate(n *node) bool {
	if n == nil {
		return false
	}
	if isAggregateCall(n) {
		return true
	}
	for _, ch := range append([]*node{n.Child, n.Left, n.Right, n.Input, n.Lower, n.Upper, n.Else}, n.Children...) {
		if containsAggregate(ch) {
			return true
		}
	}
	for _, cc := range n.CaseChecks {
		if containsAggregate(cc.When) || containsAggregate(cc.Then) {
			return true
		}
	}
	return false
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }
