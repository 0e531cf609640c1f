package query

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// aggregate checks a DP aggregate of the select list.
func (c *checker) aggregate(n *node) (agg, error) {
	name := strings.ToLower(n.FunctionName)
	a := agg{Pos: n.pos(), Name: n.Alias}
	if nonDPAggregates[name] {
		return a, rejectf(n.pos(), "%s is not a differentially private aggregate (allowed: COUNT, SUM, AVG, MEDIAN, QUANTILE_CONT, PERCENTILE_CONT, VAR_POP, VAR_SAMP, STDDEV_POP, STDDEV_SAMP)", strings.ToUpper(name))
	}
	if n.Filter != nil {
		return a, rejectf(n.Filter.pos(), "FILTER is not supported: use CASE inside the aggregate or WHERE")
	}
	if n.Schema != "" || n.ExportState {
		return a, rejectf(n.pos(), "qualified aggregate names are not allowed")
	}
	args := n.Children
	var bounds []*node
	for i := 0; i < len(args); i++ {
		if strings.EqualFold(args[i].Alias, "contribution_bounds_per_group") {
			bounds = append(bounds, args[i])
			args = slices.Delete(slices.Clone(args), i, i+1)
			i--
		} else if args[i].Alias != "" {
			return a, rejectf(args[i].pos(), "unknown named argument %s (contribution_bounds_per_group => (lo, hi) is the only one)", args[i].Alias)
		}
	}
	var within []*node
	descending := false
	if n.OrderBys != nil {
		for _, o := range n.OrderBys.Orders {
			within = append(within, o.Expression)
			descending = o.Type == "DESCENDING"
		}
	}
	if len(within) > 0 && name != "quantile_cont" && name != "percentile_cont" && name != "quantile" {
		return a, rejectf(n.pos(), "ORDER BY inside %s is not supported", strings.ToUpper(name))
	}
	display := func(arg string) string { return strings.ToLower(name) + "(" + arg + ")" }
	valueKind, isValue := valueAggregate(name)
	switch {
	case name == "count_star":
		a.Kind, a.display = aggCountStar, "count(*)"
	case name == "count":
		if len(bounds) > 0 {
			return a, &Error{Code: CodeOptions, Pos: bounds[0].pos(), Msg: "COUNT: counts take no bounds (contribution_bounds_per_group clamps the values of SUM, AVG, quantiles and variances)"}
		}
		if len(args) != 1 {
			return a, rejectf(n.pos(), "COUNT takes one argument")
		}
		if ref := args[0]; ref.Class == "COLUMN_REF" && strings.EqualFold(ref.ColumnNames[len(ref.ColumnNames)-1], "pid") {
			if !n.Distinct {
				return a, rejectf(n.pos(), "COUNT(pid) counts rows: use COUNT(*) for rows or COUNT(DISTINCT pid) for people")
			}
			if q := ref.ColumnNames; len(q) == 2 && !slices.ContainsFunc(c.tables, func(t tableUse) bool { return t.Alias == strings.ToLower(q[0]) }) {
				return a, rejectf(ref.pos(), "unknown table or alias %s", q[0])
			} else if len(q) > 2 {
				return a, rejectf(ref.pos(), "column reference %s is not supported", strings.Join(q, "."))
			}
			a.Kind, a.display = aggPersons, "count(DISTINCT pid)"
			break
		}
		if n.Distinct {
			return a, rejectf(n.pos(), "COUNT(DISTINCT ...) is supported for pid only (people)")
		}
		e, err := c.expr(args[0])
		if err != nil {
			return a, err
		}
		a.Kind, a.Arg, a.display = aggCount, e, display(e.String())
	case isValue: // SUM, AVG, quantiles, variances: the registry's value aggregates
		if n.Distinct {
			return a, rejectf(n.pos(), "DISTINCT inside %s is not supported", strings.ToUpper(name))
		}
		var valueNode *node
		switch name {
		case "median":
			if len(args) != 1 {
				return a, rejectf(n.pos(), "MEDIAN takes one argument")
			}
			valueNode, a.Q = args[0], 0.5
		case "quantile_cont", "quantile", "percentile_cont":
			var qNode *node
			switch {
			case len(within) == 1 && len(args) == 1:
				valueNode, qNode = within[0], args[0]
			case len(within) == 0 && len(args) == 2:
				valueNode, qNode = args[0], args[1]
			default:
				return a, rejectf(n.pos(), "write QUANTILE_CONT(value, q) or PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY value)")
			}
			q, err := c.expr(qNode)
			if err != nil {
				return a, err
			}
			qv, ok := literalValue(q).(float64)
			if iv, isInt := literalValue(q).(int64); isInt {
				qv, ok = float64(iv), true
			}
			if !ok || qv < 0 || qv > 1 {
				return a, rejectf(qNode.pos(), "the quantile must be a constant between 0 and 1")
			}
			if descending {
				// PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x DESC) is the (1 - q) quantile
				// of x (rounded, so that 1 - 0.9 is 0.1).
				qv = math.Round((1-qv)*1e12) / 1e12
			}
			a.Q = qv
		default:
			if len(args) != 1 {
				return a, rejectf(n.pos(), "%s takes one argument", strings.ToUpper(name))
			}
			valueNode = args[0]
		}
		e, err := c.expr(valueNode)
		if err != nil {
			return a, err
		}
		if e.Type() != tNum {
			return a, rejectf(valueNode.pos(), "%s needs a number, got a %s (CAST(flag AS INTEGER) turns a boolean into 0/1)", strings.ToUpper(name), e.Type())
		}
		a.Arg = e
		a.Kind = valueKind
		if a.Kind == aggQuantile {
			if a.Q == 0.5 {
				a.display = "median(" + e.String() + ")"
			} else {
				a.display = fmt.Sprintf("quantile_cont(%s, %g)", e.String(), a.Q)
			}
		} else {
			a.display = display(e.String())
		}
		lo, hi, ok := valueBounds(e)
		a.BoundsSrc = "catalog"
		if len(bounds) > 1 {
			return a, rejectf(bounds[1].pos(), "contribution_bounds_per_group given twice")
		}
		if len(bounds) == 1 {
			b := bounds[0]
			if b.Class != "FUNCTION" || b.FunctionName != "row" || len(b.Children) != 2 {
				return a, rejectf(b.pos(), "contribution_bounds_per_group => (lo, hi) takes two numbers")
			}
			var vals [2]float64
			for i, ch := range b.Children {
				x, err := c.expr(ch)
				if err != nil {
					return a, err
				}
				switch v := literalValue(x).(type) {
				case int64:
					vals[i] = float64(v)
				case float64:
					vals[i] = v
				default:
					return a, rejectf(ch.pos(), "contribution bounds must be number constants")
				}
			}
			lo, hi, ok = vals[0], vals[1], true
			a.BoundsSrc = "query"
		}
		if !ok {
			return a, &Error{Code: CodeOptions, Pos: n.pos(), Msg: fmt.Sprintf("%s: no clamping bounds are known for %s; give them with %s(..., contribution_bounds_per_group => (lo, hi)) or in the request's bounds", strings.ToUpper(name), e.String(), strings.ToUpper(name))}
		}
		if !validBounds(lo, hi) {
			return a, &Error{Code: CodeOptions, Pos: n.pos(), Msg: fmt.Sprintf("%s: bounds (%g, %g) must be %s", strings.ToUpper(name), lo, hi, boundsRule)}
		}
		a.Lo, a.Hi = lo, hi
	default:
		return a, rejectf(n.pos(), "aggregate %s is not supported", strings.ToUpper(name))
	}
	if a.Name == "" {
		a.Name = a.display
	}
	return a, nil
}

// boundsRule is what validBounds asks of clamping bounds.
const boundsRule = "finite, lo < hi, hi - lo at least 1e-9, within ±1e9"

// validBounds reports whether [lo, hi] can clamp an aggregate's values: narrower bounds
// would need integer scales (squared, for variances) beyond what a double holds.
func validBounds(lo, hi float64) bool {
	return finite(lo) && finite(hi) && lo < hi && hi-lo >= 1e-9 && math.Max(math.Abs(lo), math.Abs(hi)) <= 1e9
}

// identity is what makes two aggregates of a query the same statistic: the kind, the
// checked argument (its SQL, which names the table alias: b1.wait_days is not
// b2.wait_days, though both display as wait_days) and the quantile rank.
func (a agg) identity() string {
	arg := ""
	if a.Arg != nil {
		arg = a.Arg.SQL()
	}
	return fmt.Sprintf("%s|%s|%g", a.Kind, arg, a.Q)
}

// havingExpr is HAVING, evaluated on released (noisy) values: post-processing.
type havingExpr interface {
	eval(row []any) any
	sql(outputs []output) string // the canonical form (plan.canonical)
}

type hOut struct{ idx int }
type hLit struct{ v any }
type hOp struct {
	op   string
	args []havingExpr
}

func (h hOut) eval(row []any) any { return row[h.idx] }
func (h hLit) eval([]any) any     { return h.v }
func (h hOp) eval(row []any) any {
	vals := make([]any, len(h.args))
	for i, a := range h.args {
		vals[i] = a.eval(row)
	}
	switch h.op {
	case "AND":
		for _, v := range vals {
			if v != true {
				return false
			}
		}
		return true
	case "OR":
		for _, v := range vals {
			if v == true {
				return true
			}
		}
		return false
	case "NOT":
		b, ok := vals[0].(bool)
		return ok && !b
	case "IS NULL":
		return vals[0] == nil
	case "IS NOT NULL":
		return vals[0] != nil
	}
	x, xok := toFloat(vals[0])
	y, yok := toFloat(vals[1])
	switch {
	case xok && yok:
		switch h.op {
		case "+":
			return x + y
		case "-":
			return x - y
		case "*":
			return x * y
		case "/":
			if y == 0 {
				return nil
			}
			return x / y
		}
		return compared(h.op, cmp.Compare(x, y))
	case !xok && !yok:
		xs, okx := vals[0].(string)
		ys, oky := vals[1].(string)
		if okx && oky {
			return compared(h.op, strings.Compare(xs, ys))
		}
	}
	return nil
}

// compared turns a three-way comparison into the value of a comparison operator.
func compared(op string, c int) any {
	switch op {
	case "=":
		return c == 0
	case "<>":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return nil
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// having checks HAVING: it may use only released values (outputs) and constants.
func (c *checker) having(n *node, p *plan, sel []*node) (havingExpr, error) {
	switch n.Class {
	case "CONSTANT":
		v, _, err := n.Value.literal()
		if err != nil {
			return nil, rejectf(n.pos(), "%v", err)
		}
		return hLit{v}, nil
	case "COMPARISON":
		op := comparisonOps[n.Type]
		if op == "" || strings.Contains(op, "DISTINCT") {
			return nil, rejectf(n.pos(), "%s is not supported in HAVING: use =, <>, <, <=, >, >=, BETWEEN, IN or IS NULL", sqlSpelling(n.Type))
		}
		l, err := c.having(n.Left, p, sel)
		if err != nil {
			return nil, err
		}
		r, err := c.having(n.Right, p, sel)
		if err != nil {
			return nil, err
		}
		return hOp{op, []havingExpr{l, r}}, nil
	case "BETWEEN":
		// x BETWEEN a AND b is x >= a AND x <= b.
		x, err := c.having(n.Input, p, sel)
		if err != nil {
			return nil, err
		}
		lo, err := c.having(n.Lower, p, sel)
		if err != nil {
			return nil, err
		}
		hi, err := c.having(n.Upper, p, sel)
		if err != nil {
			return nil, err
		}
		var h havingExpr = hOp{"AND", []havingExpr{hOp{">=", []havingExpr{x, lo}}, hOp{"<=", []havingExpr{x, hi}}}}
		if n.Type == "COMPARE_NOT_BETWEEN" {
			h = hOp{"NOT", []havingExpr{h}}
		}
		return h, nil
	case "CONJUNCTION", "OPERATOR":
		if n.Type == "COMPARE_IN" || n.Type == "COMPARE_NOT_IN" {
			// x IN (a, b) is x = a OR x = b, with constants a, b.
			x, err := c.having(n.Children[0], p, sel)
			if err != nil {
				return nil, err
			}
			var h havingExpr = hOp{"OR", nil}
			for _, ch := range n.Children[1:] {
				if ch.Class != "CONSTANT" {
					return nil, rejectf(ch.pos(), "IN lists hold constants only")
				}
				v, err := c.having(ch, p, sel)
				if err != nil {
					return nil, err
				}
				h = hOp{"OR", append(h.(hOp).args, hOp{"=", []havingExpr{x, v}})}
			}
			if n.Type == "COMPARE_NOT_IN" {
				h = hOp{"NOT", []havingExpr{h}}
			}
			return h, nil
		}
		op := map[string]string{"CONJUNCTION_AND": "AND", "CONJUNCTION_OR": "OR", "OPERATOR_NOT": "NOT", "OPERATOR_IS_NULL": "IS NULL", "OPERATOR_IS_NOT_NULL": "IS NOT NULL"}[n.Type]
		if op == "" {
			return nil, rejectf(n.pos(), "%s is not supported in HAVING", sqlSpelling(n.Type))
		}
		h := hOp{op: op}
		for _, ch := range n.Children {
			x, err := c.having(ch, p, sel)
			if err != nil {
				return nil, err
			}
			h.args = append(h.args, x)
		}
		return h, nil
	case "FUNCTION":
		if n.IsOperator && len(n.Children) == 2 && len(n.FunctionName) == 1 && strings.Contains("+-*/", n.FunctionName) {
			l, err := c.having(n.Children[0], p, sel)
			if err != nil {
				return nil, err
			}
			r, err := c.having(n.Children[1], p, sel)
			if err != nil {
				return nil, err
			}
			return hOp{n.FunctionName, []havingExpr{l, r}}, nil
		}
		if n.IsOperator && len(n.Children) == 1 && (n.FunctionName == "-" || n.FunctionName == "+") {
			x, err := c.having(n.Children[0], p, sel)
			if err != nil || n.FunctionName == "+" {
				return x, err
			}
			return hOp{"-", []havingExpr{hLit{int64(0)}, x}}, nil
		}
		if !isAggregateCall(n) && c.usesOutput(n, p) {
			return nil, rejectf(n.pos(), "%s of a released value is not supported in HAVING: %s", callName(n), havingRule)
		}
	}
	idx, err := c.outputRef(n, p, sel)
	if err != nil {
		return nil, err
	}
	return hOut{idx}, nil
}

// outputRef resolves an ORDER BY or HAVING term to a released output column: its name
// or alias, its position, or the same expression or aggregate as a select item. An
// aggregate that is not released is refused: it would be a free, un-noised statistic.
func (c *checker) outputRef(n *node, p *plan, sel []*node) (int, error) {
	switch {
	case n.Class == "STAR":
		return 0, rejectf(n.pos(), "ORDER BY ALL is not supported: name the output columns")
	case n.Class == "CONSTANT" && n.Value != nil && n.Value.Type.ID == "INTEGER":
		v, _, _ := n.Value.literal()
		k := int(v.(int64))
		if k < 1 || k > len(p.Outputs) {
			return 0, rejectf(n.pos(), "position %d: the select list has %d items", k, len(p.Outputs))
		}
		return k - 1, nil
	case n.Class == "COLUMN_REF" && len(n.ColumnNames) == 1:
		for i, o := range p.Outputs {
			if strings.EqualFold(o.Name, n.ColumnNames[0]) {
				return i, nil
			}
		}
	}
	if isAggregateCall(n) {
		a, err := c.aggregate(n)
		if err != nil {
			return 0, err
		}
		for i, o := range p.Outputs {
			if o.Agg >= 0 && p.Aggs[o.Agg].identity() == a.identity() {
				return i, nil
			}
		}
		return 0, rejectf(n.pos(), "%s is not a released aggregate: add it to the select list (and refer to it by its alias)", a.display)
	}
	if c.usesOutput(n, p) {
		return 0, rejectf(n.pos(), "%s of a released value is not supported in ORDER BY or HAVING: order by an output column (by name, alias or position) or a released aggregate; %s", callName(n), havingRule)
	}
	e, err := c.expr(n)
	if err != nil {
		return 0, err
	}
	for i, o := range p.Outputs {
		if o.Key >= 0 && p.Keys[o.Key].Expr.SQL() == e.SQL() {
			return i, nil
		}
	}
	return 0, rejectf(n.pos(), "%s is not an output column of the query: HAVING and ORDER BY read released values only (output columns by name, alias or position, and released aggregates)", e.String())
}

// havingRule is what HAVING may say, for messages.
const havingRule = "HAVING may combine output columns (by name or alias), released aggregates and constants with + - * /, comparisons, BETWEEN, IN, AND, OR, NOT and IS NULL"

// usesOutput reports whether an expression of HAVING or ORDER BY refers to a released
// value: an output's name that is not a column of the tables, or an aggregate.
func (c *checker) usesOutput(n *node, p *plan) bool {
	if n == nil {
		return false
	}
	if isAggregateCall(n) {
		return true
	}
	if n.Class == "COLUMN_REF" && len(n.ColumnNames) == 1 && !c.isColumn(n.ColumnNames[0]) {
		for _, o := range p.Outputs {
			if strings.EqualFold(o.Name, n.ColumnNames[0]) {
				return true
			}
		}
	}
	for _, ch := range append([]*node{n.Child, n.Left, n.Right, n.Input, n.Lower, n.Upper, n.Else}, n.Children...) {
		if c.usesOutput(ch, p) {
			return true
		}
	}
	for _, cc := range n.CaseChecks {
		if c.usesOutput(cc.When, p) || c.usesOutput(cc.Then, p) {
			return true
		}
	}
	return false
}

// callName names the construct of an expression node for messages: abs(), CASE, CAST.
func callName(n *node) string {
	switch {
	case n.Class == "FUNCTION" && n.IsOperator:
		return "the operator " + n.FunctionName
	case n.Class == "FUNCTION":
		return strings.ToLower(n.FunctionName) + "()"
	case n.Class == "CAST":
		return "CAST"
	case n.Class == "CASE":
		return "CASE"
	}
	return "an expression"
}
