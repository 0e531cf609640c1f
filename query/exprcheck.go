package query

import (
	"math"
	"slices"
	"strings"
	"time"
)

// expr checks a row-level expression (no aggregates) and returns its total form.
func (c *checker) expr(n *node) (expr, error) {
	if n == nil {
		return nil, rejectf(-1, "missing expression")
	}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxExprDepth {
		return nil, rejectf(n.pos(), "expressions nested too deeply (at most %d levels)", maxExprDepth)
	}
	switch n.Class {
	case "COLUMN_REF":
		return c.column(n)
	case "CONSTANT":
		v, t, err := n.Value.literal()
		if err != nil {
			return nil, rejectf(n.pos(), "%v", err)
		}
		if f, ok := v.(float64); ok && !finite(f) {
			return nil, rejectf(n.pos(), "number literal out of range")
		}
		return &literal{V: v, T: t}, nil
	case "CAST":
		if n.CastType == nil {
			return nil, rejectf(n.pos(), "malformed cast")
		}
		to, t := castTarget(n.CastType.ID)
		switch {
		case n.CastType.ID == "INTERVAL":
			return nil, rejectf(n.pos(), "%s", intervalAdvice).atFirst("INTERVAL")
		case strings.HasPrefix(n.CastType.ID, "TIMESTAMP") || n.CastType.ID == "TIME":
			return nil, rejectf(n.pos(), "%s values are not supported: Velo's dates are DATEs (DATE '2025-01-31', CAST(x AS DATE))", castTypeName(n.CastType))
		case n.CastType.ID == "UNBOUND":
			return nil, rejectf(n.pos(), "unknown type %s in a cast: cast to %s", castTypeName(n.CastType), castTargets)
		case to == "":
			return nil, rejectf(n.pos(), "casts to %s are not supported: cast to %s", castTypeName(n.CastType), castTargets)
		}
		inner, err := c.expr(n.Child)
		if err != nil {
			return nil, err
		}
		if l, ok := inner.(*literal); ok && t == tDate && l.T == tString {
			d, err := time.Parse(time.DateOnly, l.V.(string))
			if err != nil {
				return nil, rejectf(n.pos(), "malformed date literal (want 'YYYY-MM-DD')")
			}
			return &literal{V: d, T: tDate}, nil
		}
		// DuckDB spells TRUE and FALSE as CAST('t' AS BOOLEAN) and CAST('f' AS BOOLEAN):
		// they are constants (a CASE of them has a public domain).
		if l, ok := inner.(*literal); ok && t == tBool && l.T == tString {
			switch strings.ToLower(l.V.(string)) {
			case "t", "true":
				return &literal{V: true, T: tBool}, nil
			case "f", "false":
				return &literal{V: false, T: tBool}, nil
			}
		}
		// DuckDB has no cast between a DATE and a number or a boolean: TRY_CAST gives NULL for
		// every row, and its optimizer then folds TRY_CAST(d AS INTEGER) IS DISTINCT FROM
		// NULL as if the cast kept d's NULLs (found by a 50,000-case generator run). Such a
		// cast says nothing, so it is refused, with what to write instead.
		if from := inner.Type(); from == tDate && (t == tNum || t == tBool) {
			return nil, rejectf(n.pos(), "a date cannot be cast to %s: use year(d), month(d) or date_diff('day', DATE '2024-01-01', d) for a number", castTypeName(n.CastType))
		} else if t == tDate && (from == tNum || from == tBool) {
			return nil, rejectf(n.pos(), "a %s cannot be cast to DATE: use a date column, DATE '2025-01-31', or a date ± a number of days", from)
		}
		return &cast{E: inner, To: to, T: t}, nil
	case "CASE":
		ce := &caseExpr{}
		for _, cc := range n.CaseChecks {
			w, err := c.expr(cc.When)
			if err != nil {
				return nil, err
			}
			if w.Type() != tBool && w.Type() != tNull {
				return nil, rejectf(cc.When.pos(), "CASE WHEN needs a boolean condition, got a %s", w.Type())
			}
			th, err := c.expr(cc.Then)
			if err != nil {
				return nil, err
			}
			ce.Whens = append(ce.Whens, w)
			ce.Thens = append(ce.Thens, th)
		}
		if n.Else != nil {
			el, err := c.expr(n.Else)
			if err != nil {
				return nil, err
			}
			if l, ok := el.(*literal); !ok || l.V != nil {
				ce.Else = el
			}
		}
		t := tNull
		for _, x := range append(slices.Clone(ce.Thens), ce.Else) {
			if x == nil || x.Type() == tNull {
				continue
			}
			if t != tNull && x.Type() != t {
				return nil, rejectf(n.pos(), "CASE results mix %s and %s: make them one type", t, x.Type())
			}
			t = x.Type()
		}
		ce.T = t
		return ce, nil
	case "COMPARISON":
		l, err := c.expr(n.Left)
		if err != nil {
			return nil, err
		}
		r, err := c.expr(n.Right)
		if err != nil {
			return nil, err
		}
		op, ok := comparisonOps[n.Type]
		if !ok {
			return nil, rejectf(n.pos(), "the comparison %s is not supported", sqlSpelling(n.Type))
		}
		args, err := c.unify(n.pos(), l, r)
		if err != nil {
			return nil, err
		}
		return &opExpr{Name: op, Args: args}, nil
	case "CONJUNCTION":
		name := map[string]string{"CONJUNCTION_AND": "AND", "CONJUNCTION_OR": "OR"}[n.Type]
		if name == "" {
			return nil, rejectf(n.pos(), "%s is not supported", sqlSpelling(n.Type))
		}
		o := &opExpr{Name: name}
		for _, ch := range n.Children {
			e, err := c.boolean(ch)
			if err != nil {
				return nil, err
			}
			o.Args = append(o.Args, e)
		}
		return o, nil
	case "OPERATOR":
		switch n.Type {
		case "OPERATOR_NOT":
			e, err := c.boolean(n.Children[0])
			if err != nil {
				return nil, err
			}
			return &opExpr{Name: "NOT", Args: []expr{e}}, nil
		case "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL":
			e, err := c.expr(n.Children[0])
			if err != nil {
				return nil, err
			}
			return &opExpr{Name: map[string]string{"OPERATOR_IS_NULL": "IS NULL", "OPERATOR_IS_NOT_NULL": "IS NOT NULL"}[n.Type], Args: []expr{e}}, nil
		case "COMPARE_IN", "COMPARE_NOT_IN":
			args := make([]expr, len(n.Children))
			for i, ch := range n.Children {
				e, err := c.expr(ch)
				if err != nil {
					return nil, err
				}
				if i > 0 {
					if _, ok := e.(*literal); !ok {
						return nil, rejectf(ch.pos(), "IN lists hold constants only")
					}
				}
				args[i] = e
			}
			for i := 1; i < len(args); i++ {
				u, err := c.unify(n.Children[i].pos(), args[0], args[i])
				if err != nil {
					return nil, err
				}
				args[i] = u[1]
			}
			return &opExpr{Name: map[string]string{"COMPARE_IN": "IN", "COMPARE_NOT_IN": "NOT IN"}[n.Type], Args: args}, nil
		case "OPERATOR_COALESCE":
			call := &callExpr{Name: "coalesce"}
			for _, ch := range n.Children {
				e, err := c.expr(ch)
				if err != nil {
					return nil, err
				}
				call.Args = append(call.Args, e)
			}
			t, err := sameType(n.pos(), call.Args)
			if err != nil {
				return nil, err
			}
			call.T = t
			return call, nil
		}
		return nil, rejectf(n.pos(), "%s", unknownOperator(n.Type))
	case "BETWEEN":
		in, err := c.expr(n.Input)
		if err != nil {
			return nil, err
		}
		lo, err := c.expr(n.Lower)
		if err != nil {
			return nil, err
		}
		hi, err := c.expr(n.Upper)
		if err != nil {
			return nil, err
		}
		a, err := c.unify(n.pos(), in, lo)
		if err != nil {
			return nil, err
		}
		b, err := c.unify(n.pos(), in, hi)
		if err != nil {
			return nil, err
		}
		name := "BETWEEN"
		if n.Type == "COMPARE_NOT_BETWEEN" {
			name = "NOT BETWEEN"
		}
		return &opExpr{Name: name, Args: []expr{in, a[1], b[1]}}, nil
	case "FUNCTION":
		if isAggregateCall(n) {
			name := strings.ToUpper(n.FunctionName)
			if name == "COUNT_STAR" {
				name = "COUNT(*)"
			}
			return nil, rejectf(n.pos(), "aggregate %s is not allowed here (only at the top of the select list, or in HAVING and ORDER BY as a released value)", name)
		}
		return c.function(n)
	case "WINDOW":
		return nil, rejectf(n.pos(), "window functions are not supported")
	case "SUBQUERY":
		return nil, rejectf(n.pos(), "subqueries are not supported")
	case "STAR":
		return nil, rejectf(n.pos(), "* is not allowed here")
	case "PARAMETER":
		return nil, rejectf(n.pos(), "query parameters are not supported: write the values").at("?", "$")
	case "LAMBDA":
		return nil, rejectf(n.pos(), "lambda functions are not supported")
	}
	return nil, rejectf(n.pos(), "%s", unknownClass(n.Class))
}

var comparisonOps = map[string]string{
	"COMPARE_EQUAL": "=", "COMPARE_NOTEQUAL": "<>", "COMPARE_LESSTHAN": "<", "COMPARE_GREATERTHAN": ">",
	"COMPARE_LESSTHANOREQUALTO": "<=", "COMPARE_GREATERTHANOREQUALTO": ">=",
	"COMPARE_DISTINCT_FROM": "IS DISTINCT FROM", "COMPARE_NOT_DISTINCT_FROM": "IS NOT DISTINCT FROM",
}

func (c *checker) boolean(n *node) (expr, error) {
	e, err := c.expr(n)
	if err != nil {
		return nil, err
	}
	if e.Type() != tBool && e.Type() != tNull {
		return nil, rejectf(n.pos(), "expected a boolean, got a %s", e.Type())
	}
	return e, nil
}

// unify makes two operands comparable without any implicit cast that could fail on a
// value: same coarse type, or a string literal that parses as a date against a date.
func (c *checker) unify(pos int, a, b expr) ([]expr, error) {
	ta, tb := a.Type(), b.Type()
	switch {
	case ta == tb, ta == tNull, tb == tNull:
		return []expr{a, b}, nil
	case ta == tDate && tb == tString:
		if l, ok := b.(*literal); ok {
			d, err := time.Parse(time.DateOnly, l.V.(string))
			if err != nil {
				return nil, rejectf(pos, "malformed date literal (want 'YYYY-MM-DD')")
			}
			return []expr{a, &literal{V: d, T: tDate}}, nil
		}
	case ta == tString && tb == tDate:
		r, err := c.unify(pos, b, a)
		if err != nil {
			return nil, err
		}
		return []expr{r[1], r[0]}, nil
	}
	return nil, rejectf(pos, "cannot compare a %s with a %s: cast one side explicitly (e.g. region = '120', not region = 120)", ta, tb)
}

func sameType(pos int, args []expr) (typ, error) {
	t := tNull
	for _, a := range args {
		if a.Type() == tNull {
			continue
		}
		if t != tNull && a.Type() != t {
			return tNull, rejectf(pos, "arguments mix %s and %s", t, a.Type())
		}
		t = a.Type()
	}
	return t, nil
}

func castTarget(id string) (string, typ) {
	switch id {
	case "INTEGER", "BIGINT", "SMALLINT":
		return id, tNum
	case "DOUBLE", "FLOAT", "DECIMAL":
		return "DOUBLE", tNum
	case "VARCHAR":
		return "VARCHAR", tString
	case "DATE":
		return "DATE", tDate
	case "BOOLEAN":
		return "BOOLEAN", tBool
	}
	return "", tNull
}

// function checks a call of a registered scalar function or operator (funcRules); nothing
// else is callable (no getenv, current_setting, file, network or extension functions).
func (c *checker) function(n *node) (expr, error) {
	name := strings.ToLower(n.FunctionName)
	// DuckDB's grammar itself qualifies some built-ins with main (substring, trim,
	// extract, position, row, list and struct literals): main is the built-ins' schema,
	// and the allow-list below decides by name. The rewrite prints names unqualified.
	if n.Schema != "" && !strings.EqualFold(n.Schema, "main") || n.Catalog != "" {
		return nil, rejectf(n.pos(), "qualified function names are not allowed: call %s by its name alone", name)
	}
	if n.Distinct || n.Filter != nil || (n.OrderBys != nil && len(n.OrderBys.Orders) > 0) || n.ExportState {
		return nil, rejectf(n.pos(), "DISTINCT, FILTER and ORDER BY apply to aggregates only")
	}
	if name == "row" {
		return nil, rejectf(n.pos(), "row values are not supported here")
	}
	r := funcsByName[name]
	if r == nil {
		e := rejectf(n.pos(), "%s", unknownFunction(name, n.IsOperator))
		if intervalFunctions[name] {
			e.atFirst("INTERVAL")
		}
		return nil, e
	}
	if len(n.Children) < r.MinArgs || len(n.Children) > r.MaxArgs {
		return nil, rejectf(n.pos(), "%s takes %s, got %d", r.display(name), arity(r.MinArgs, r.MaxArgs), len(n.Children))
	}
	args := make([]expr, len(n.Children))
	for i, ch := range n.Children {
		if ch.Alias != "" {
			return nil, rejectf(ch.pos(), "named arguments are not supported here")
		}
		e, err := c.expr(ch)
		if err != nil {
			return nil, err
		}
		args[i] = e
	}
	return r.Check(&fnCall{c: c, n: n, name: name, display: r.display(name), args: args})
}

// literalValue is the value of a literal, or nil for any other expression.
func literalValue(e expr) any {
	if l, ok := e.(*literal); ok {
		return l.V
	}
	return nil
}

// typeBounds is the range every non-NULL value of a numeric expression lies in by its types
// and constants alone: a boolean cast to a number is 0 or 1, a number constant is itself, a
// CASE is within its results'. Never the catalog's ranges, which clamp the data but do not
// hold it (valueBounds). ok is false when the types say nothing.
func typeBounds(e expr) (lo, hi float64, ok bool) {
	switch e := e.(type) {
	case *literal:
		switch v := e.V.(type) {
		case int64:
			return float64(v), float64(v), true
		case float64:
			return v, v, finite(v)
		case nil:
			return math.Inf(1), math.Inf(-1), true // NULL: no value, within any bounds
		}
	case *cast:
		if e.E.Type() == tBool && e.T == tNum {
			return 0, 1, true
		}
	case *caseExpr:
		return caseBounds(e, typeBounds)
	}
	return 0, 0, false
}

// caseBounds is the union of bounds of a CASE's results, each found by of; a missing ELSE
// (NULL) adds nothing, and ok is false when any result has none.
func caseBounds(e *caseExpr, of func(expr) (lo, hi float64, ok bool)) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, t := range append(slices.Clone(e.Thens), e.Else) {
		if t == nil {
			continue
		}
		l, h, ok := of(t)
		if !ok {
			return 0, 0, false
		}
		lo, hi = math.Min(lo, l), math.Max(hi, h)
	}
	return lo, hi, lo <= hi
}

// valueBounds derives clamping bounds of a numeric expression from the catalog and the
// expression's own constants (interval arithmetic); ok is false when none can be.
func valueBounds(e expr) (lo, hi float64, ok bool) {
	switch e := e.(type) {
	case *column:
		return e.Lo, e.Hi, e.HasBounds && e.T == tNum
	case *literal:
		switch v := e.V.(type) {
		case int64:
			return float64(v), float64(v), true
		case float64:
			return v, v, true
		case nil:
			return 0, 0, true
		}
	case *cast:
		if e.E.Type() == tBool && e.T == tNum {
			return 0, 1, true
		}
		if e.T == tNum {
			return valueBounds(e.E)
		}
	case *caseExpr:
		return caseBounds(e, valueBounds)
	case *callExpr:
		r := e.rule()
		if r.Bounds == nil {
			return 0, 0, false
		}
		args := make([]bound, len(e.Args))
		for i, a := range e.Args {
			args[i].Lo, args[i].Hi, args[i].Ok = valueBounds(a)
		}
		b := r.Bounds(args)
		return b.Lo, b.Hi, b.Ok
	case *arithExpr:
		l1, h1, ok1 := valueBounds(e.L)
		if !ok1 {
			return 0, 0, false
		}
		if e.R == nil {
			return -h1, -l1, true
		}
		l2, h2, ok2 := valueBounds(e.R)
		if !ok2 {
			return 0, 0, false
		}
		switch e.Op {
		case "+":
			return l1 + l2, h1 + h2, true
		case "-":
			return l1 - h2, h1 - l2, true
		case "*":
			p := []float64{l1 * l2, l1 * h2, h1 * l2, h1 * h2}
			return slices.Min(p), slices.Max(p), true
		case "/", "//":
			if l2 > 0 || h2 < 0 {
				p := []float64{l1 / l2, l1 / h2, h1 / l2, h1 / h2}
				lo, hi := slices.Min(p), slices.Max(p)
				if e.Op == "//" {
					lo, hi = math.Trunc(lo), math.Trunc(hi) // trunc is monotone
				}
				return lo, hi, true
			}
		}
	}
	return 0, 0, false
}
