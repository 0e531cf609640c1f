package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// typ is the checker's coarse type of an expression.
type typ int

const (
	tNull typ = iota
	tNum
	tString
	tDate
	tBool
)

func (t typ) String() string {
	return [...]string{"NULL", "number", "string", "date", "boolean"}[t]
}

// expr is a checked row-level expression. SQL prints its total form: a form that
// cannot raise an error for any row (docs/privacy.md#errors-and-timing), so no error
// depends on the data.
type expr interface {
	Type() typ
	SQL() string
	// String is a readable form for column names and messages.
	String() string
}

// column is a reference to a checked, approved column.
type column struct {
	Table, Alias, Name string // Alias is the range variable the SQL uses
	T                  typ
	Groupable          bool
	Domain             string
	Lo, Hi             float64
	HasBounds          bool
	// Integer: the catalog types the column SMALLINT, INTEGER or BIGINT.
	Integer bool
}

func (c *column) Type() typ      { return c.T }
func (c *column) SQL() string    { return quoteIdent(c.Alias) + "." + quoteIdent(c.Name) }
func (c *column) String() string { return c.Name }

// literal is a constant.
type literal struct {
	V any // int64, float64, string, bool, time.Time (date), nil
	T typ
}

func (l *literal) Type() typ { return l.T }
func (l *literal) SQL() string {
	switch v := l.V.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "NULL"
		}
		return "CAST(" + strconv.FormatFloat(v, 'g', -1, 64) + " AS DOUBLE)"
	case string:
		return quoteString(v)
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	case time.Time:
		return "DATE " + quoteString(v.Format(time.DateOnly))
	}
	panic(fmt.Sprintf("query: literal of type %T", l.V))
}
func (l *literal) String() string {
	switch v := l.V.(type) {
	case string:
		return quoteString(v)
	case time.Time:
		return v.Format(time.DateOnly)
	case nil:
		return "NULL"
	}
	return fmt.Sprint(l.V)
}

// arithExpr is + - * / // % over numbers, computed in DOUBLE: doubles cannot overflow into an
// error (they saturate to ±inf), and division by zero gives NULL. // is DuckDB's integer
// division, which rounds toward zero: trunc(l / r).
type arithExpr struct {
	Op   string
	L, R expr // R nil for unary minus
}

func (a *arithExpr) Type() typ { return tNum }
func (a *arithExpr) SQL() string {
	l := "CAST(" + a.L.SQL() + " AS DOUBLE)"
	if a.R == nil {
		return "(-" + l + ")"
	}
	r := "CAST(" + a.R.SQL() + " AS DOUBLE)"
	switch a.Op {
	case "/", "%":
		return "(CASE WHEN " + r + " = 0 THEN NULL ELSE " + l + " " + a.Op + " " + r + " END)"
	case "//":
		return "(CASE WHEN " + r + " = 0 THEN NULL ELSE trunc(" + l + " / " + r + ") END)"
	}
	return "(" + l + " " + a.Op + " " + r + ")"
}
func (a *arithExpr) String() string {
	if a.R == nil {
		return "-" + a.L.String()
	}
	return "(" + a.L.String() + " " + a.Op + " " + a.R.String() + ")"
}

// callExpr is an allow-listed scalar function whose SQL form is total.
type callExpr struct {
	Name string
	Args []expr
	T    typ
}

func (c *callExpr) Type() typ { return c.T }
func (c *callExpr) SQL() string {
	r := c.rule()
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a.SQL()
		if r.Doubles && a.Type() == tNum && !(c.Name == "round" && i == 1) {
			// abs(INT64_MIN) overflows; doubles do not. round's number of digits stays an
			// INTEGER: DuckDB has no round(DOUBLE, DOUBLE).
			args[i] = "CAST(" + args[i] + " AS DOUBLE)"
		}
	}
	switch {
	case r.Infix != "":
		return "(" + args[0] + " " + r.Infix + " " + args[1] + ")"
	case r.Print != nil:
		return r.Print(args)
	}
	return c.Name + "(" + strings.Join(args, ", ") + ")"
}
func (c *callExpr) String() string {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a.String()
	}
	if r := c.rule(); r.Display != "" {
		return args[0] + " " + r.Display + " " + args[1]
	}
	return c.Name + "(" + strings.Join(args, ", ") + ")"
}

// integral says whether e's every non-NULL value is an integer by its SQL type: an integer
// column or a cast to an integer type (which yields NULL where it cannot convert).
func integral(e expr) bool {
	switch e := e.(type) {
	case *column:
		return e.Integer
	case *cast:
		return integerType(e.To)
	}
	return false
}

func integerType(t string) bool {
	switch t {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT":
		return true
	}
	return false
}

// cast is always printed as TRY_CAST: a value that does not convert becomes NULL.
type cast struct {
	E      expr
	To     string // DuckDB type name
	T      typ
	Target typ
}

func (c *cast) Type() typ { return c.T }
func (c *cast) SQL() string {
	inner := c.E.SQL()
	if c.E.Type() == tNum && (c.To == "INTEGER" || c.To == "BIGINT" || c.To == "SMALLINT") {
		inner = "CAST(" + inner + " AS DOUBLE)"
	}
	return "TRY_CAST(" + inner + " AS " + c.To + ")"
}
func (c *cast) String() string { return "CAST(" + c.E.String() + " AS " + c.To + ")" }

// caseExpr is CASE WHEN ... THEN ... [ELSE ...] END.
type caseExpr struct {
	Whens []expr
	Thens []expr
	Else  expr // nil: ELSE NULL
	T     typ
}

func (c *caseExpr) Type() typ { return c.T }
func (c *caseExpr) SQL() string {
	var b strings.Builder
	b.WriteString("(CASE")
	for i := range c.Whens {
		b.WriteString(" WHEN " + c.Whens[i].SQL() + " THEN " + c.Thens[i].SQL())
	}
	if c.Else != nil {
		b.WriteString(" ELSE " + c.Else.SQL())
	}
	b.WriteString(" END)")
	return b.String()
}
func (c *caseExpr) String() string {
	var b strings.Builder
	b.WriteString("CASE")
	for i := range c.Whens {
		b.WriteString(" WHEN " + c.Whens[i].String() + " THEN " + c.Thens[i].String())
	}
	if c.Else != nil {
		b.WriteString(" ELSE " + c.Else.String())
	}
	b.WriteString(" END")
	return b.String()
}

// opExpr is a boolean or comparison operator over its arguments: = <> < <= > >= AND OR NOT
// IS NULL, IS NOT NULL, IN, NOT IN, BETWEEN, NOT BETWEEN.
type opExpr struct {
	Name string
	Args []expr
}

func (o *opExpr) Type() typ   { return tBool }
func (o *opExpr) SQL() string { return o.render(func(e expr) string { return e.SQL() }) }
func (o *opExpr) String() string {
	return o.render(func(e expr) string { return e.String() })
}

func (o *opExpr) render(f func(expr) string) string {
	a := make([]string, len(o.Args))
	for i, e := range o.Args {
		a[i] = f(e)
	}
	switch o.Name {
	case "AND", "OR":
		return "(" + strings.Join(a, " "+o.Name+" ") + ")"
	case "NOT":
		return "(NOT " + a[0] + ")"
	case "IS NULL", "IS NOT NULL":
		return "(" + a[0] + " " + o.Name + ")"
	case "IN", "NOT IN":
		return "(" + a[0] + " " + o.Name + " (" + strings.Join(a[1:], ", ") + "))"
	case "BETWEEN", "NOT BETWEEN":
		return "(" + a[0] + " " + o.Name + " " + a[1] + " AND " + a[2] + ")"
	}
	return "(" + a[0] + " " + o.Name + " " + a[1] + ")"
}

func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// walk visits e and its sub-expressions.
func walk(e expr, f func(expr)) {
	if e == nil {
		return
	}
	f(e)
	switch e := e.(type) {
	case *arithExpr:
		walk(e.L, f)
		walk(e.R, f)
	case *callExpr:
		for _, a := range e.Args {
			walk(a, f)
		}
	case *cast:
		walk(e.E, f)
	case *caseExpr:
		for i := range e.Whens {
			walk(e.Whens[i], f)
			walk(e.Thens[i], f)
		}
		walk(e.Else, f)
	case *opExpr:
		for _, a := range e.Args {
			walk(a, f)
		}
	}
}
