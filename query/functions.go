package query

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

// funcRule is everything Velo knows about one scalar function or operator a query may
// call, in one row: the checker (names, arity, argument types, the checked node it makes),
// the rewrite (its total SQL form), the public domain it gives a GROUP BY key, the value
// bounds it propagates to an aggregate, and the docs (TestFunctionDocs prints the table
// in docs/privacy.md from these rows). Nothing outside this registry is callable: no
// getenv, current_setting, file, network or extension function. A new function enters
// here, and the query generator and the oracle read the same rows.
type funcRule struct {
	// Names are the SQL names accepted (lower case); the first is the one printed.
	Names            []string
	MinArgs, MaxArgs int
	// Internal rules are made by the checker from other syntax (date ± days) and cannot
	// be called by name.
	Internal bool
	// Check types the arguments (already checked expressions) and returns the checked
	// node; it may canonicalise (date_part('month', d) is month(d)).
	Check func(f *fnCall) (expr, error)
	// Doubles: numeric arguments are computed in DOUBLE in the total form, which cannot
	// overflow into an error (abs(INT64_MIN) would).
	Doubles bool
	// Infix, when set, prints the call as `a Infix b` (the LIKE family); Display is its
	// readable spelling.
	Infix, Display string
	// Print, when set, prints the call from its printed arguments (else name(args)).
	Print func(args []string) string
	// Domain is the public domain of a GROUP BY key that is this call, from the query and
	// the catalog only (nil: none).
	Domain func(c *checker, call *callExpr) *keyDomain
	// Bucket, for calls that bucket a date column (date_trunc, year), returns the column
	// and the bucket's unit: WHERE conditions on the column narrow the key's domain.
	Bucket func(call *callExpr) (col expr, unit string)
	// Bounds propagates value bounds from the arguments' (ok false: none known).
	Bounds func(args []bound) (b bound)
	// Total says why the printed form cannot raise an error for any row.
	Total string
}

// fnCall is one call being checked.
type fnCall struct {
	c    *checker
	n    *node
	name string // as written, lower case
	// display names the call in messages: LIKE, not ~~.
	display string
	args    []expr
}

func (f *fnCall) want(i int, ts ...typ) error {
	got := f.args[i].Type()
	if got == tNull || slices.Contains(ts, got) {
		return nil
	}
	name := f.display
	hint := ""
	switch {
	case ts[0] == tString && got != tString:
		hint = " (CAST(x AS VARCHAR) makes it a string)"
	case ts[0] == tNum && got == tBool:
		hint = " (CAST(flag AS INTEGER) turns a boolean into 0/1)"
	case ts[0] == tNum && got == tString:
		hint = " (CAST(x AS INTEGER) makes it a number)"
	case ts[0] == tDate && got == tString:
		hint = " (write a date as DATE '2025-01-31')"
	}
	if f.n.IsOperator {
		return rejectf(f.n.Children[i].pos(), "the operands of %s must be %s, got a %s%s", name, plural(ts[0]), got, hint)
	}
	return rejectf(f.n.Children[i].pos(), "%s: argument %d must be a %s, got a %s%s", name, i+1, ts[0], got, hint)
}

// plural is a type's name in the plural, for messages.
func plural(t typ) string {
	if t == tNull {
		return "NULL"
	}
	return t.String() + "s"
}

// display is the name a message gives the function called as name: LIKE, not ~~.
func (r *funcRule) display(name string) string {
	if r.Display != "" {
		return r.Display
	}
	return name
}

// arity says how many arguments a function takes.
func arity(minArgs, maxArgs int) string {
	switch {
	case minArgs == maxArgs && minArgs == 1:
		return "1 argument"
	case minArgs == maxArgs:
		return fmt.Sprintf("%d arguments", minArgs)
	}
	return fmt.Sprintf("%d to %d arguments", minArgs, maxArgs)
}

func (f *fnCall) wantAll(ts ...typ) error {
	for i := range f.args {
		if err := f.want(i, ts...); err != nil {
			return err
		}
	}
	return nil
}

func (f *fnCall) litPart(i int, allowed []string) (string, error) {
	s, isStr := literalValue(f.args[i]).(string)
	if !isStr || !slices.Contains(allowed, strings.ToLower(s)) {
		name := f.name
		if name == "date_part" { // DuckDB's parser makes EXTRACT(part FROM d) a date_part call
			name = "EXTRACT (date_part)"
		}
		return "", rejectf(f.n.Children[i].pos(), "%s: the date part must be one of %s", name, strings.Join(allowed, ", "))
	}
	s = strings.ToLower(s)
	f.args[i] = &literal{V: s, T: tString}
	return s, nil
}

var (
	datePartsTrunc = []string{"year", "quarter", "month", "week", "day"}
	datePartsDiff  = []string{"year", "quarter", "month", "week", "day"}
	dateParts      = []string{"year", "quarter", "month", "week", "day", "dayofweek", "isodow", "dayofyear"}
)

// call builds the checked call of rule r: its canonical name, the arguments, type t.
func call(r *funcRule, args []expr, t typ) *callExpr {
	return &callExpr{Name: r.Names[0], Args: args, T: t}
}

// bound is a value range [Lo, Hi]; Ok is false when none is known.
type bound struct {
	Lo, Hi float64
	Ok     bool
}

// funcRules is the registry. Order is the docs' order.
var funcRules = newFuncRules()

var (
	funcsByName = index(funcRules, false) // what a query may call, by every name
	printed     = index(funcRules, true)  // by the name a checked Call carries
)

func index(rules []*funcRule, canonical bool) map[string]*funcRule {
	m := map[string]*funcRule{}
	for _, r := range rules {
		if canonical {
			m[r.Names[0]] = r
			continue
		}
		if r.Internal {
			continue
		}
		for _, n := range r.Names {
			if m[n] != nil {
				panic("query: function " + n + " registered twice")
			}
			m[n] = r
		}
	}
	return m
}

func newFuncRules() []*funcRule {
	// A function of the date part, with the date parts whose values it names.
	datePart := func(name string, lo, hi int64, domain bool, src string) *funcRule {
		r := &funcRule{Names: []string{name}, MinArgs: 1, MaxArgs: 1, Total: "defined for every date"}
		r.Check = func(f *fnCall) (expr, error) {
			if err := f.want(0, tDate); err != nil {
				return nil, err
			}
			return call(r, f.args, tNum), nil
		}
		if hi > lo {
			r.Bounds = func([]bound) bound { return bound{float64(lo), float64(hi), true} }
		}
		if domain {
			r.Domain = func(*checker, *callExpr) *keyDomain { return intRange(lo, hi, src) }
		}
		return r
	}
	like := func(op, display string) *funcRule {
		r := &funcRule{Names: []string{op}, MinArgs: 2, MaxArgs: 2, Infix: op, Display: display, Total: "a constant pattern; NULL in, NULL out"}
		r.Check = func(f *fnCall) (expr, error) {
			if err := f.want(0, tString); err != nil {
				return nil, err
			}
			if _, ok := f.args[1].(*literal); !ok || f.args[1].Type() != tString {
				return nil, rejectf(f.n.pos(), "LIKE patterns must be string constants")
			}
			return call(r, f.args, tBool), nil
		}
		return r
	}
	typed := func(names []string, minArgs, maxArgs int, in, out typ, total string) *funcRule {
		r := &funcRule{Names: names, MinArgs: minArgs, MaxArgs: maxArgs, Total: total}
		r.Check = func(f *fnCall) (expr, error) {
			if err := f.wantAll(in); err != nil {
				return nil, err
			}
			return call(r, f.args, out), nil
		}
		return r
	}
	// union is the bounds of a value that is one of the arguments.
	union := func(args []bound) bound {
		b := bound{math.Inf(1), math.Inf(-1), true}
		for _, a := range args {
			if !a.Ok {
				return bound{}
			}
			b.Lo, b.Hi = math.Min(b.Lo, a.Lo), math.Max(b.Hi, a.Hi)
		}
		b.Ok = b.Lo <= b.Hi
		return b
	}

	arith := &funcRule{Names: []string{"+", "-", "*", "/", "%", "//"}, MinArgs: 1, MaxArgs: 2,
		Total: "computed in DOUBLE (saturates to ±inf, never overflows); division and modulo by zero give NULL"}
	arith.Check = func(f *fnCall) (expr, error) {
		name, args := f.name, f.args
		if len(args) == 1 {
			if name != "+" && name != "-" {
				return nil, rejectf(f.n.pos(), "%s takes two operands", name)
			}
			if err := f.want(0, tNum); err != nil {
				return nil, err
			}
			if name == "+" { // unary plus is the number itself
				return args[0], nil
			}
			return &arithExpr{Op: "-", L: args[0]}, nil
		}
		// date - date is a number of days; date ± a constant number of days.
		if name == "-" && args[0].Type() == tDate && args[1].Type() == tDate {
			return &callExpr{Name: "date_diff", Args: []expr{&literal{V: "day", T: tString}, args[1], args[0]}, T: tNum}, nil
		}
		if (name == "+" || name == "-") && args[0].Type() == tDate && args[1].Type() == tNum {
			iv, isInt := literalValue(args[1]).(int64)
			if !isInt || iv > 100000 || iv < -100000 {
				return nil, rejectf(f.n.pos(), "dates can be shifted by a constant number of days only (at most 100000)")
			}
			if name == "-" {
				iv = -iv
			}
			return &callExpr{Name: "date_add", Args: []expr{args[0], &literal{V: iv, T: tNum}}, T: tDate}, nil
		}
		if err := f.wantAll(tNum); err != nil {
			return nil, err
		}
		return &arithExpr{Op: name, L: args[0], R: args[1]}, nil
	}

	dateAdd := &funcRule{Names: []string{"date_add"}, MinArgs: 2, MaxArgs: 2, Internal: true,
		Total: "a constant shift of at most 100000 days stays within DuckDB's date range"}

	dateTrunc := &funcRule{Names: []string{"date_trunc", "datetrunc"}, MinArgs: 2, MaxArgs: 2,
		Total: "a DATE, the first day of the unit; NULL only where that day precedes DuckDB's first date (5877642-06-25 BC)",
		// DuckDB's date_trunc of a DATE is a TIMESTAMP: it fails for dates beyond the
		// timestamp range (even inside a CASE that excludes them), and its optimizer folds
		// date_trunc(u, d) <> a date that is not a bucket start to TRUE even where d is
		// NULL. The first day of the unit is built from the date's own parts instead, in
		// DATE arithmetic, under try() (NULL where it would leave DuckDB's date range): no
		// date_trunc, no TIMESTAMP, and about 40% less work a row than the TRY_CAST to
		// TIMESTAMP this replaced.
		Print: func(a []string) string {
			d := a[1]
			switch strings.Trim(a[0], "'") {
			case "year":
				return "try(make_date(year(" + d + "), 1, 1))"
			case "quarter":
				return "try(make_date(year(" + d + "), 3 * quarter(" + d + ") - 2, 1))"
			case "month":
				return "try(make_date(year(" + d + "), month(" + d + "), 1))"
			case "week": // back to Monday, as DuckDB's date_trunc('week', …)
				return "try(" + d + " - CAST(isodow(" + d + ") - 1 AS INTEGER))"
			}
			return "CAST(" + d + " AS DATE)" // day (the checker allows no other unit)
		}}
	dateTrunc.Check = func(f *fnCall) (expr, error) {
		if _, err := f.litPart(0, datePartsTrunc); err != nil {
			return nil, err
		}
		if err := f.want(1, tDate); err != nil {
			return nil, err
		}
		return call(dateTrunc, f.args, tDate), nil
	}
	dateTrunc.Bucket = func(c *callExpr) (expr, string) { return c.Args[1], literalValue(c.Args[0]).(string) }
	dateTrunc.Domain = func(ch *checker, c *callExpr) *keyDomain {
		col, ok := c.Args[1].(*column)
		if !ok || col.T != tDate || ch.cat.Period == nil || col.Domain != dataset.DomainPeriod {
			return nil
		}
		return periodBuckets(ch.cat.Period, literalValue(c.Args[0]).(string), false)
	}

	year := datePart("year", 0, 0, false, "")
	year.Bucket = func(c *callExpr) (expr, string) { return c.Args[0], "year" }
	year.Domain = func(ch *checker, c *callExpr) *keyDomain {
		col, ok := c.Args[0].(*column)
		if !ok || col.T != tDate || ch.cat.Period == nil || col.Domain != dataset.DomainPeriod {
			return nil
		}
		return periodBuckets(ch.cat.Period, "year", true)
	}

	datePartOf := &funcRule{Names: []string{"date_part", "datepart", "extract"}, MinArgs: 2, MaxArgs: 2, Total: "as the part's function"}
	datePartOf.Check = func(f *fnCall) (expr, error) {
		part, err := f.litPart(0, dateParts)
		if err != nil {
			return nil, err
		}
		if err := f.want(1, tDate); err != nil {
			return nil, err
		}
		return &callExpr{Name: part, Args: f.args[1:], T: tNum}, nil
	}

	dateDiff := &funcRule{Names: []string{"date_diff", "datediff"}, MinArgs: 3, MaxArgs: 3, Total: "defined for every pair of dates (BIGINT)"}
	dateDiff.Check = func(f *fnCall) (expr, error) {
		if _, err := f.litPart(0, datePartsDiff); err != nil {
			return nil, err
		}
		if err := f.want(1, tDate); err != nil {
			return nil, err
		}
		if err := f.want(2, tDate); err != nil {
			return nil, err
		}
		return call(dateDiff, f.args, tNum), nil
	}

	abs := typed([]string{"abs"}, 1, 1, tNum, tNum, "in DOUBLE")
	abs.Doubles = true
	abs.Bounds = func(a []bound) bound {
		lo := 0.0
		if a[0].Lo > 0 {
			lo = a[0].Lo
		} else if a[0].Hi < 0 {
			lo = -a[0].Hi
		}
		return bound{lo, math.Max(math.Abs(a[0].Lo), math.Abs(a[0].Hi)), a[0].Ok}
	}
	// Rounding to an integer moves a value by less than 1, outwards at worst.
	integral := func(a []bound) bound { return bound{math.Floor(a[0].Lo), math.Ceil(a[0].Hi), a[0].Ok} }
	floorCeil := func(names []string) *funcRule {
		r := typed(names, 1, 1, tNum, tNum, "in DOUBLE")
		r.Doubles = true
		r.Bounds = integral
		return r
	}
	sign := typed([]string{"sign"}, 1, 1, tNum, tNum, "defined for every number")
	sign.Bounds = func([]bound) bound { return bound{-1, 1, true} }

	round := &funcRule{Names: []string{"round"}, MinArgs: 1, MaxArgs: 2, Doubles: true, Total: "in DOUBLE; a constant number of digits"}
	round.Check = func(f *fnCall) (expr, error) {
		if err := f.want(0, tNum); err != nil {
			return nil, err
		}
		if len(f.args) == 2 {
			if l, ok := f.args[1].(*literal); !ok || l.T != tNum {
				return nil, rejectf(f.n.pos(), "round: the number of digits must be a constant")
			}
			f.args[1] = &cast{E: f.args[1], To: "INTEGER", T: tNum}
		}
		return call(round, f.args, tNum), nil
	}
	round.Bounds = func(a []bound) bound {
		if len(a) == 1 {
			return integral(a)
		}
		// round(x, d): d ≥ 0 stays within the integers around x; d < 0 rounds to
		// multiples of 10^-d, which may lie outside them.
		d := a[1]
		if !a[0].Ok || !d.Ok || d.Lo >= 0 {
			return bound{math.Floor(a[0].Lo), math.Ceil(a[0].Hi), a[0].Ok && d.Ok}
		}
		unit := math.Pow10(int(-d.Lo))
		return bound{math.Floor(a[0].Lo/unit) * unit, math.Ceil(a[0].Hi/unit) * unit, true}
	}

	leastGreatest := func(name string) *funcRule {
		r := &funcRule{Names: []string{name}, MinArgs: 2, MaxArgs: 16, Doubles: true, Bounds: union, Total: "in DOUBLE for numbers; defined for dates"}
		r.Check = func(f *fnCall) (expr, error) {
			t, err := sameType(f.n.pos(), f.args)
			if err != nil {
				return nil, err
			}
			if t != tNum && t != tDate && t != tNull {
				return nil, rejectf(f.n.pos(), "%s takes numbers or dates", f.name)
			}
			return call(r, f.args, t), nil
		}
		return r
	}

	coalesce := &funcRule{Names: []string{"coalesce", "ifnull"}, MinArgs: 1, MaxArgs: 16, Bounds: union, Total: "one type, no conversion"}
	coalesce.Check = func(f *fnCall) (expr, error) {
		t, err := sameType(f.n.pos(), f.args)
		if err != nil {
			return nil, err
		}
		return call(coalesce, f.args, t), nil
	}

	nullif := &funcRule{Names: []string{"nullif"}, MinArgs: 2, MaxArgs: 2, Total: "operands of one type"}
	nullif.Check = func(f *fnCall) (expr, error) {
		u, err := f.c.unify(f.n.pos(), f.args[0], f.args[1])
		if err != nil {
			return nil, err
		}
		return call(nullif, u, f.args[0].Type()), nil
	}

	substring := &funcRule{Names: []string{"substring", "substr"}, MinArgs: 2, MaxArgs: 3, Total: "constant positions and lengths within ±1000"}
	left := &funcRule{Names: []string{"left"}, MinArgs: 2, MaxArgs: 2, Total: substring.Total}
	right := &funcRule{Names: []string{"right"}, MinArgs: 2, MaxArgs: 2, Total: substring.Total}
	for _, r := range []*funcRule{substring, left, right} {
		r.Check = func(f *fnCall) (expr, error) {
			if err := f.want(0, tString); err != nil {
				return nil, err
			}
			for i := 1; i < len(f.args); i++ {
				if iv, isInt := literalValue(f.args[i]).(int64); !isInt || iv < -1000 || iv > 1000 {
					return nil, rejectf(f.n.Children[i].pos(), "%s: positions and lengths must be integer constants", f.name)
				}
			}
			return call(r, f.args, tString), nil
		}
	}

	rules := []*funcRule{
		arith, dateAdd,
		like("~~", "LIKE"), like("!~~", "NOT LIKE"), like("~~*", "ILIKE"), like("!~~*", "NOT ILIKE"),
		dateTrunc, datePartOf, year,
		datePart("quarter", 1, 4, true, "quarters"), datePart("month", 1, 12, true, "months"),
		datePart("week", 0, 0, false, ""), datePart("day", 1, 31, false, ""), datePart("dayofyear", 0, 0, false, ""),
		datePart("dayofweek", 0, 6, true, "weekdays"), datePart("isodow", 1, 7, true, "ISO weekdays"),
		dateDiff,
		abs, floorCeil([]string{"floor"}), floorCeil([]string{"ceil", "ceiling"}), sign, round,
		leastGreatest("least"), leastGreatest("greatest"), coalesce, nullif,
		typed([]string{"lower"}, 1, 1, tString, tString, "defined for every string"),
		typed([]string{"upper"}, 1, 1, tString, tString, "defined for every string"),
		typed([]string{"trim"}, 1, 1, tString, tString, "defined for every string"),
		typed([]string{"length", "strlen"}, 1, 1, tString, tNum, "defined for every string"),
		substring, left, right,
		typed([]string{"starts_with", "prefix"}, 2, 2, tString, tBool, "defined for every pair of strings"),
		typed([]string{"ends_with", "suffix"}, 2, 2, tString, tBool, "defined for every pair of strings"),
		typed([]string{"contains"}, 2, 2, tString, tBool, "defined for every pair of strings"),
	}
	return rules
}

// rule is the registry row of a checked call.
func (c *callExpr) rule() *funcRule {
	r := printed[c.Name]
	if r == nil {
		panic("query: checked call of unregistered function " + c.Name)
	}
	return r
}
