package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A dialect prints a checked plan's bounded rewrite for one SQL engine. The plan, the
// bounding, its contribution bounds, the sums' scales and every sensitivity are the
// engine's; a dialect only spells the same statements for another engine, and refuses
// (with an *Error, before any charge) what it cannot spell with the same meaning.
//
// DuckDB's dialect is the expressions' own SQL (expr.SQL): the embedded sandbox runs
// exactly what it always ran. Spark's is sparkSQL below.
type dialect struct {
	Name string
	// Expr prints a checked expression in its total form.
	Expr func(e expr) (string, error)
	// Cond prints an expression where a boolean is required (WHERE); nil: Expr.
	Cond func(e expr) (string, error)
	// Ident quotes an identifier.
	Ident func(s string) string
	// Finite keeps a numeric key's value when it is finite, else NULL.
	Finite func(key string) string
	// Domain is a public domain's filter on a key (domainFilter).
	Domain func(keySQL string, d *keyDomain) (string, error)
	// Sum, when set, prints the sum of a BIGINT expression (the value aggregates' scaled
	// totals) instead of sum(x).
	Sum func(x string) string
	// Order prints the ORDER BY list of the keyed row order the per_group bounding keeps
	// each person's first rows and groups by: a deterministic function of the values (the
	// person's own row) and the secret seed (a BIGINT literal).
	Order func(vals []orderVal, seedSQL string) string
	// IntDiv prints the integer division of two non-negative BIGINTs: the quantile leaves of
	// integer values are computed in integer arithmetic (leafSQL, dp.IntegerNodeSQL).
	IntDiv func(a, b string) string
	// SingleScan: person_rank counts its quantile trees' leaves in the totals' scan
	// (rewritten.Single); else a statement per tree (rewritten.Tree).
	SingleScan bool
	// TempTables: the engine materialises bounded once as a temporary table for the
	// per_group quantile trees to read; else each tree statement defines it.
	TempTables bool
	// MaskL0: per_group runs its L0 step for COUNT(DISTINCT pid) over few public groups as
	// a per-person bitmask (maskL0) where maskApplies, in place of the window.
	MaskL0 bool
}

// orderVal is one value a keyed row order hashes: its SQL, its type, or the person's pid.
type orderVal struct {
	SQL string
	T   typ
	PID bool
}

// The dialects' names, as velo.yaml's engine setting spells them.
const (
	DialectDuckDB = "duckdb"
	DialectSpark  = "spark"
)

var duckDialect = dialect{
	Name:  DialectDuckDB,
	Expr:  func(e expr) (string, error) { return e.SQL(), nil },
	Ident: quoteIdent,
	Finite: func(key string) string {
		return "(CASE WHEN isfinite(CAST(" + key + " AS DOUBLE)) THEN " + key + " END)"
	},
	Domain: func(keySQL string, d *keyDomain) (string, error) { return domainFilter(keySQL, d), nil },
	// DuckDB's own keyed hash: a 64-bit hash of the values and the seed, the fastest order
	// it computes (docs/scale.md#the-keyed-row-order).
	Order: func(vals []orderVal, seedSQL string) string {
		sqls := make([]string, len(vals))
		for i, v := range vals {
			sqls[i] = v.SQL
		}
		return "hash(" + strings.Join(sqls, ", ") + ", " + seedSQL + ")"
	},
	IntDiv:     func(a, b string) string { return "(" + a + " // " + b + ")" },
	SingleScan: true,
	TempTables: true,
	MaskL0:     true,
}

// duckPortable is DuckDB's dialect with the portable keyed row order (portableOrder) in
// place of DuckDB's hash(): the order Spark computes, for comparing the engines' per_group
// totals (TestSparkCrossEngine).
var duckPortable = func() dialect {
	d := duckDialect
	d.Order = portableOrder(duckCanon)
	// Spark keeps the window, whose order is the portable one.
	d.MaskL0 = false
	return d
}()

// portableOrder is a keyed row order two engines compute identically, given each engine's
// canonical strings of the values (canon): the md5 of the canonical strings and the seed
// joined by '|', as a lowercase hex string (compared byte by byte in both engines); rows
// whose digests are equal (equal canonical strings: a number's is its multiple of 1/1024
// below it) are ordered by the values themselves, NULLs last, so that the order is total
// up to rows equal on every value, which are interchangeable to the query. The pid is
// hashed but not compared: the order runs within one person's rows.
func portableOrder(canon func(v orderVal) string) func(vals []orderVal, seedSQL string) string {
	return func(vals []orderVal, seedSQL string) string {
		parts := make([]string, 0, len(vals)+1)
		var ties []string
		for _, v := range vals {
			parts = append(parts, "coalesce("+canon(v)+", '~')")
			if !v.PID {
				ties = append(ties, v.SQL+" ASC NULLS LAST")
			}
		}
		parts = append(parts, "'"+seedSQL+"'")
		return strings.Join(append([]string{"md5(concat_ws('|', " + strings.Join(parts, ", ") + "))"}, ties...), ", ")
	}
}

// portableNumber is the canonical string of a number both engines compute exactly: the
// BIGINT floor(x · 1024) of the value as a DOUBLE (a product by a power of two is exact),
// for |x| < 1e15; NULL (then '~') for larger values, NaN and infinities. Equal strings
// for different values are ties, which the values break.
func portableNumber(x, str string) string {
	d := "CAST(" + x + " AS DOUBLE)"
	return "CAST(CAST(CASE WHEN abs(" + d + ") < 1e15 THEN floor(" + d + " * 1024) END AS BIGINT) AS " + str + ")"
}

// duckCanon is DuckDB's canonical string of a value for portableOrder.
func duckCanon(v orderVal) string {
	if v.PID {
		// The 16 bytes as 32 lowercase hex digits (DuckDB reads the pid as a UUID).
		return "replace(CAST(" + v.SQL + " AS VARCHAR), '-', '')"
	}
	switch v.T {
	case tNum:
		return portableNumber(v.SQL, "VARCHAR")
	case tString:
		return v.SQL
	case tDate:
		return "CAST(date_diff('day', DATE '1970-01-01', " + v.SQL + ") AS VARCHAR)"
	case tBool:
		return "(CASE WHEN " + v.SQL + " THEN '1' WHEN NOT " + v.SQL + " THEN '0' END)"
	}
	return "NULL"
}

// sparkCanon is Spark's canonical string of a value for portableOrder: duckCanon's.
func sparkCanon(v orderVal) string {
	if v.PID {
		// Spark reads the pid as BINARY (spark.tableSchema).
		return "lower(hex(" + v.SQL + "))"
	}
	switch v.T {
	case tNum:
		return portableNumber(v.SQL, "STRING")
	case tString:
		return v.SQL
	case tDate:
		return "CAST(datediff(" + v.SQL + ", DATE '1970-01-01') AS STRING)"
	case tBool:
		return "(CASE WHEN " + v.SQL + " THEN '1' WHEN NOT " + v.SQL + " THEN '0' END)"
	}
	return "NULL"
}

// sparkDialect prints Spark SQL (Spark 4, ANSI mode, its default). The rewrite's own
// parts — clamping, the scaled integer sums, the quantile tree's leaves, FILTER, GROUP BY
// ALL — are spelled alike in both engines; what differs is quoting, string literals (Spark
// reads backslash escapes), the functions (sparkFuncs), and per_group's keyed row order,
// the portable one (portableOrder) since Spark has no DuckDB hash(); the quantile trees are
// a statement each, and bounded a common table expression of each statement that reads it.
var sparkDialect = dialect{
	Name:  DialectSpark,
	Expr:  sparkSQL,
	Cond:  sparkCond,
	Ident: sparkIdent,
	Finite: func(key string) string {
		// NaN sorts above every double in Spark (and ±inf lie outside): BETWEEN keeps the
		// finite values only, as DuckDB's isfinite does.
		return "(CASE WHEN CAST(" + key + " AS DOUBLE) BETWEEN CAST('-1.7976931348623157e308' AS DOUBLE) AND CAST('1.7976931348623157e308' AS DOUBLE) THEN " + key + " END)"
	},
	Domain: sparkDomainFilter,
	Order:  portableOrder(sparkCanon),
	// Spark's sum of BIGINTs fails on overflow in ANSI mode: an error that would depend on
	// the data. DuckDB's is a HUGEINT, saturated to int64 when read (toInt64); Spark's sum
	// of DECIMAL(38, 0) cannot overflow at any realistic size and is read as DuckDB's is.
	Sum:    func(x string) string { return "sum(CAST(" + x + " AS DECIMAL(38, 0)))" },
	IntDiv: func(a, b string) string { return "(" + a + " div " + b + ")" },
}

func sparkIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// sparkString is a Spark string literal: Spark reads backslash escapes in '…'.
func sparkString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// errSpark is a refusal of what the Spark dialect cannot print with DuckDB's meaning.
func errSpark(format string, args ...any) error {
	return &Error{Code: CodeRejected, Msg: "the Spark engine cannot run this query: " + fmt.Sprintf(format, args...) + "; the embedded DuckDB engine can", Pos: -1}
}

func sparkLiteral(l *literal) (string, error) {
	switch v := l.V.(type) {
	case nil:
		return "NULL", nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "NULL", nil
		}
		// A string converted to DOUBLE is correctly rounded; a bare 0.1 is a DECIMAL.
		return "CAST('" + strconv.FormatFloat(v, 'g', -1, 64) + "' AS DOUBLE)", nil
	case string:
		return sparkString(v), nil
	case bool:
		if v {
			return "TRUE", nil
		}
		return "FALSE", nil
	case time.Time:
		return "DATE '" + v.Format(time.DateOnly) + "'", nil
	}
	return "", fmt.Errorf("query: literal of type %T", l.V)
}

// sparkCasts are the casts whose Spark form means what DuckDB's TRY_CAST does, by source
// type and target (DuckDB's name → Spark's). A number cast to an integer type is a DOUBLE
// (cast.SQL), which DuckDB rounds half to even: Spark's bround, then its cast. Others
// (numbers to strings, formatted differently; strings parsed as numbers, dates or
// booleans, by different rules) are refused.
var sparkCasts = map[typ]map[string]string{
	tNull:   {"INTEGER": "INT", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "DOUBLE": "DOUBLE", "VARCHAR": "STRING", "DATE": "DATE", "BOOLEAN": "BOOLEAN"},
	tNum:    {"INTEGER": "INT", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN"},
	tBool:   {"INTEGER": "INT", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "DOUBLE": "DOUBLE", "VARCHAR": "STRING", "BOOLEAN": "BOOLEAN"},
	tString: {"VARCHAR": "STRING"},
	tDate:   {"VARCHAR": "STRING", "DATE": "DATE"},
}

// sparkSQL prints a checked expression's total form in Spark SQL, or refuses it.
func sparkSQL(e expr) (string, error) {
	switch e := e.(type) {
	case *column:
		return sparkIdent(e.Alias) + "." + sparkIdent(e.Name), nil
	case *literal:
		return sparkLiteral(e)
	case *arithExpr:
		l, err := sparkSQL(e.L)
		if err != nil {
			return "", err
		}
		l = "CAST(" + l + " AS DOUBLE)"
		if e.R == nil {
			return "(-" + l + ")", nil
		}
		r, err := sparkSQL(e.R)
		if err != nil {
			return "", err
		}
		r = "CAST(" + r + " AS DOUBLE)"
		switch e.Op {
		case "/", "%":
			return "(CASE WHEN " + r + " = 0 THEN NULL ELSE " + l + " " + e.Op + " " + r + " END)", nil
		case "//":
			return "(CASE WHEN " + r + " = 0 THEN NULL ELSE " + sparkTrunc("("+l+" / "+r+")") + " END)", nil
		}
		return "(" + l + " " + e.Op + " " + r + ")", nil
	case *callExpr:
		return sparkCall(e)
	case *cast:
		to, ok := sparkCasts[e.E.Type()][e.To]
		if !ok {
			return "", errSpark("CAST of a %s to %s", e.E.Type(), e.To)
		}
		inner, err := sparkSQL(e.E)
		if err != nil {
			return "", err
		}
		if e.E.Type() == tNum && (e.To == "INTEGER" || e.To == "BIGINT" || e.To == "SMALLINT") {
			// bround of a DOUBLE is a DOUBLE (NaN and ±inf kept, which the cast makes NULL).
			inner = "bround(CAST(" + inner + " AS DOUBLE))"
		}
		return "try_cast(" + inner + " AS " + to + ")", nil
	case *caseExpr:
		var b strings.Builder
		b.WriteString("(CASE")
		for i := range e.Whens {
			w, err := sparkCond(e.Whens[i])
			if err != nil {
				return "", err
			}
			t, err := sparkSQL(e.Thens[i])
			if err != nil {
				return "", err
			}
			b.WriteString(" WHEN " + w + " THEN " + t)
		}
		if e.Else != nil {
			el, err := sparkSQL(e.Else)
			if err != nil {
				return "", err
			}
			b.WriteString(" ELSE " + el)
		}
		b.WriteString(" END)")
		return b.String(), nil
	case *opExpr:
		var err error
		s := e.render(func(x expr) string {
			s, e := sparkSQL(x)
			if e != nil && err == nil {
				err = e
			}
			return s
		})
		return s, err
	}
	return "", errSpark("an expression of kind %T", e)
}

// sparkCond is sparkSQL where a boolean is required: Spark types a bare NULL as VOID,
// which a CASE WHEN or a WHERE refuses (DuckDB reads it as a boolean NULL).
func sparkCond(e expr) (string, error) {
	if e.Type() == tNull {
		s, err := sparkSQL(e)
		return "CAST(" + s + " AS BOOLEAN)", err
	}
	return sparkSQL(e)
}

// sparkBig is 2^52: every double at least this large in magnitude is an integer already.
const sparkBig = "CAST('4503599627370496' AS DOUBLE)"

// sparkIntegral applies Spark's floor or ceil (which return a BIGINT, and fail past its
// range) to a DOUBLE where it can change it, and keeps it elsewhere: DuckDB's floor and
// ceil of a DOUBLE are DOUBLEs, total.
func sparkIntegral(fn, x string) string {
	return "(CASE WHEN abs(" + x + ") < " + sparkBig + " THEN CAST(" + fn + "(" + x + ") AS DOUBLE) ELSE " + x + " END)"
}

// sparkTrunc is DuckDB's trunc of a DOUBLE: toward zero.
func sparkTrunc(x string) string {
	return "(CASE WHEN " + x + " >= 0 THEN " + sparkIntegral("floor", x) + " ELSE " + sparkIntegral("ceil", x) + " END)"
}

// sparkFuncs are the Spark forms of the registry's functions (funcRules), by the name a
// checked call carries, from the printed arguments; a function missing here is refused on
// Spark (sparkRefused says why). TestSparkFuncsCoverRegistry keeps the two lists and the
// registry in step.
var sparkFuncs = map[string]func(c *callExpr, a []string) (string, error){
	"date_add": func(_ *callExpr, a []string) (string, error) { return "date_add(" + a[0] + ", " + a[1] + ")", nil },
	"~~":       sparkLike("LIKE"),
	"!~~":      sparkLike("NOT LIKE"),
	"~~*":      sparkLike("ILIKE"),
	"!~~*":     sparkLike("NOT ILIKE"),
	"date_trunc": func(c *callExpr, a []string) (string, error) {
		part, _ := literalValue(c.Args[0]).(string)
		if part == "day" {
			return a[1], nil
		}
		// trunc(DATE, unit) is a DATE; its weeks start on Monday, as DuckDB's do.
		return "trunc(" + a[1] + ", " + sparkString(part) + ")", nil
	},
	"year":      sparkSame("year"),
	"quarter":   sparkSame("quarter"),
	"month":     sparkSame("month"),
	"day":       sparkSame("day"),
	"dayofyear": sparkSame("dayofyear"),
	// DuckDB's week is the ISO week, as Spark's weekofyear.
	"week": sparkSame("weekofyear"),
	// DuckDB's dayofweek is 0 (Sunday) … 6; Spark's 1 (Sunday) … 7.
	"dayofweek": func(_ *callExpr, a []string) (string, error) { return "(dayofweek(" + a[0] + ") - 1)", nil },
	// DuckDB's isodow is 1 (Monday) … 7; Spark's weekday 0 (Monday) … 6.
	"isodow": func(_ *callExpr, a []string) (string, error) { return "(weekday(" + a[0] + ") + 1)", nil },
	"date_diff": func(c *callExpr, a []string) (string, error) {
		// DuckDB counts the part's boundaries between the dates.
		start, end := a[1], a[2]
		switch part, _ := literalValue(c.Args[0]).(string); part {
		case "day":
			return "datediff(" + end + ", " + start + ")", nil
		case "month":
			return fmt.Sprintf("((year(%s) * 12 + month(%s)) - (year(%s) * 12 + month(%s)))", end, end, start, start), nil
		case "quarter":
			return fmt.Sprintf("((year(%s) * 4 + quarter(%s)) - (year(%s) * 4 + quarter(%s)))", end, end, start, start), nil
		case "year":
			return "(year(" + end + ") - year(" + start + "))", nil
		case "week":
			// DuckDB's are whole weeks of days between the dates, truncated toward zero.
			return "(datediff(" + end + ", " + start + ") div 7)", nil
		default:
			return "", errSpark("date_diff by %s", part)
		}
	},
	"abs":   sparkSame("abs"),
	"floor": func(_ *callExpr, a []string) (string, error) { return sparkIntegral("floor", a[0]), nil },
	"ceil":  func(_ *callExpr, a []string) (string, error) { return sparkIntegral("ceil", a[0]), nil },
	"round": func(c *callExpr, a []string) (string, error) {
		if len(a) > 1 {
			// DuckDB scales the DOUBLE and rounds it; Spark rounds its decimal form.
			return "", errSpark("round to a number of digits")
		}
		return "round(" + a[0] + ")", nil
	},
	"least":    sparkSame("least"),
	"greatest": sparkSame("greatest"),
	"coalesce": sparkSame("coalesce"),
	"nullif":   sparkSame("nullif"),
	"lower":    sparkSame("lower"),
	"upper":    sparkSame("upper"),
	"trim":     sparkSame("trim"),
	"length":   sparkSame("length"),
	// With a start of at least 1 and lengths of at least 0, DuckDB's and Spark's agree
	// (characters, 1-based, empty past the end); other constants are refused.
	"substring":   sparkPositions("substring", 1, 0),
	"left":        sparkPositions("left", 0),
	"right":       sparkPositions("right", 0),
	"starts_with": sparkSame("startswith"),
	"ends_with":   sparkSame("endswith"),
	"contains":    sparkSame("contains"),
}

// sparkRefused are the registry's functions the Spark dialect refuses, with the reason.
var sparkRefused = map[string]string{
	"sign": "DuckDB's and Spark's sign differ on NaN and in type",
}

// sparkPositions prints a call whose arguments after the string are integer constants
// (the checker's rule), each at least its minimum (min[i] for argument i+1); other
// constants are refused: negative and zero positions and lengths mean different things in
// DuckDB and Spark.
func sparkPositions(name string, min ...int64) func(*callExpr, []string) (string, error) {
	return func(c *callExpr, a []string) (string, error) {
		for i := 1; i < len(c.Args); i++ {
			v, ok := literalValue(c.Args[i]).(int64)
			if !ok || v < min[i-1] {
				return "", errSpark("%s (negative and zero positions and lengths mean different things in DuckDB and Spark)", c.String())
			}
		}
		return name + "(" + strings.Join(a, ", ") + ")", nil
	}
}

func sparkSame(name string) func(*callExpr, []string) (string, error) {
	return func(_ *callExpr, a []string) (string, error) { return name + "(" + strings.Join(a, ", ") + ")", nil }
}

// sparkLike prints a LIKE-family operator. Spark's LIKE reads a backslash in the pattern
// as an escape, DuckDB's does not: such patterns are refused.
func sparkLike(op string) func(*callExpr, []string) (string, error) {
	return func(c *callExpr, a []string) (string, error) {
		if p, _ := literalValue(c.Args[1]).(string); strings.Contains(p, `\`) {
			return "", errSpark("a LIKE pattern with a backslash")
		}
		return "(" + a[0] + " " + op + " " + a[1] + ")", nil
	}
}

func sparkCall(c *callExpr) (string, error) {
	f := sparkFuncs[c.Name]
	if f == nil {
		if why, ok := sparkRefused[c.Name]; ok {
			return "", errSpark("%s (%s)", c.String(), why)
		}
		return "", errSpark("%s", c.Name)
	}
	r := c.rule()
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		s, err := sparkSQL(a)
		if err != nil {
			return "", err
		}
		if r.Doubles && a.Type() == tNum && !(c.Name == "round" && i == 1) {
			s = "CAST(" + s + " AS DOUBLE)"
		}
		args[i] = s
	}
	return f(c, args)
}

// sparkDomainFilter is domainFilter in Spark SQL.
func sparkDomainFilter(keySQL string, d *keyDomain) (string, error) {
	if len(d.Values) == 0 {
		return "FALSE", nil
	}
	if t0, ok := d.Values[0].(time.Time); ok && len(d.Values) > 64 {
		t1 := d.Values[len(d.Values)-1].(time.Time)
		return fmt.Sprintf("(%s BETWEEN DATE '%s' AND DATE '%s')", keySQL, t0.Format(time.DateOnly), t1.Format(time.DateOnly)), nil
	}
	vals := make([]string, len(d.Values))
	for i, v := range d.Values {
		s, err := sparkLiteral(&literal{V: v})
		if err != nil {
			return "", err
		}
		vals[i] = s
	}
	return fmt.Sprintf("(%s IN (%s))", keySQL, strings.Join(vals, ", ")), nil
}
