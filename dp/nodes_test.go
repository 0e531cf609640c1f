package dp_test

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/velo-fse/velo/dp"
)

// The engine computes tree buckets in DuckDB with NodeSQL, and dp's own code and tests use
// NodeOf. These tests evaluate the generated SQL with a small interpreter that follows
// DuckDB's semantics for the constructs used (IEEE double arithmetic in the written order,
// `/` as DOUBLE division, `//` as integer division, CAST('…' AS DOUBLE) as a correctly
// rounded parse, greatest/least ordering NaN above every number, round half away from zero)
// and check that it agrees with NodeOf on the values where rounding could differ: every
// bucket boundary and its float64 neighbours, the bounds, NaN and infinities.

func TestNodeSQLAgreesWithNodeOf(t *testing.T) {
	trees := []dp.Tree{dp.DefaultTree, {Branching: 3, Height: 5}, {Branching: 2, Height: 10}, {Branching: 10, Height: 3}, {Branching: 7, Height: 1}}
	bounds := [][2]float64{{0, 100}, {-5, 20}, {0.1, 0.7}, {1900, 2025}, {-1e-3, 1e-3}, {-1e9, 3}}
	for _, tr := range trees {
		for _, bd := range bounds {
			lo, hi := bd[0], bd[1]
			leaves := int64(math.Pow(float64(tr.Branching), float64(tr.Height)))
			sqls := make([]*sqlExpr, tr.Height+1)
			for level := 1; level <= tr.Height; level++ {
				e, err := parseSQL(dp.NodeSQL("x", lo, hi, tr, level))
				if err != nil {
					t.Fatalf("tree %v [%v, %v] level %d: %v", tr, lo, hi, level, err)
				}
				sqls[level] = e
			}
			for _, v := range boundaryValues(lo, hi, leaves) {
				prev := int64(-1)
				for level := 1; level <= tr.Height; level++ {
					got := dp.NodeOf(v, lo, hi, tr, level)
					sv, err := sqls[level].eval(v)
					if err != nil {
						t.Fatalf("tree %v [%v, %v] level %d, x = %v: SQL: %v", tr, lo, hi, level, v, err)
					}
					if !sv.isInt || sv.i != got {
						t.Fatalf("tree %v [%v, %v] level %d, x = %v: SQL gives %v, NodeOf %d", tr, lo, hi, level, v, sv, got)
					}
					if level > 1 && got/int64(tr.Branching) != prev {
						t.Fatalf("tree %v [%v, %v], x = %v: node %d at level %d is not a child of %d", tr, lo, hi, v, got, level, prev)
					}
					prev = got
				}
				if prev < 0 || prev >= leaves {
					t.Fatalf("x = %v: leaf %d outside [0, %d)", v, prev, leaves)
				}
				// Within [lo, hi] the leaf is dpagg.BoundedQuantiles' getIndex, which puts hi in the
				// last leaf and, like us, truncates towards lo.
				if v >= lo && v <= hi {
					lib := int64((v - lo) / (hi - lo) * float64(leaves))
					if v == hi {
						lib = leaves - 1
					}
					if lib < leaves && lib != prev {
						t.Fatalf("x = %v: leaf %d, dpagg's formula %d", v, prev, lib)
					}
				}
			}
		}
	}
}

// boundaryValues returns values around every bucket boundary lo + k·(hi−lo)/N (for at most
// ~2000 k, always including both ends) and the special values.
func boundaryValues(lo, hi float64, leaves int64) []float64 {
	step := max(leaves/1000, 1)
	var vs []float64
	for k := int64(0); k <= leaves; k += step {
		vs = append(vs, lo+float64(k)*(hi-lo)/float64(leaves), lo+(hi-lo)*(float64(k)/float64(leaves)))
	}
	for k := leaves - 2; k <= leaves; k++ {
		if k >= 0 {
			vs = append(vs, lo+float64(k)*(hi-lo)/float64(leaves))
		}
	}
	vs = append(vs, lo, hi, lo-1, hi+1, 0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64)
	var out []float64
	for _, v := range vs {
		out = append(out, v, math.Nextafter(v, math.Inf(-1)), math.Nextafter(v, math.Inf(1)))
	}
	return out
}

func TestNodeOfLevels(t *testing.T) {
	tr := dp.Tree{Branching: 4, Height: 3} // 64 leaves over [0, 64): leaf k holds [k, k+1)
	for _, tc := range []struct {
		v     float64
		nodes []int64 // levels 1..3
	}{
		{0, []int64{0, 0, 0}},
		{0.999, []int64{0, 0, 0}},
		{1, []int64{0, 0, 1}},
		{17.5, []int64{1, 4, 17}},
		{63.99, []int64{3, 15, 63}},
		{64, []int64{3, 15, 63}}, // hi belongs to the last leaf
		{-3, []int64{0, 0, 0}},
		{1e300, []int64{3, 15, 63}},
		{math.NaN(), []int64{3, 15, 63}}, // NaN sorts last, as in DuckDB
	} {
		for i, want := range tc.nodes {
			if got := dp.NodeOf(tc.v, 0, 64, tr, i+1); got != want {
				t.Errorf("NodeOf(%v, level %d) = %d, want %d", tc.v, i+1, got, want)
			}
		}
	}
	want := "(CAST(least(greatest(floor((CAST((x) AS DOUBLE) - CAST('0' AS DOUBLE)) / CAST('64' AS DOUBLE) * CAST('64' AS DOUBLE)), 0), 63) AS BIGINT) // 16)"
	if got := dp.NodeSQL("x", 0, 64, tr, 1); got != want {
		t.Errorf("NodeSQL level 1:\n got %s\nwant %s", got, want)
	}
}

// --- a DuckDB-flavoured evaluator for the expressions above ---

type sqlValue struct {
	isInt bool
	i     int64
	f     float64
	s     *string
}

func (v sqlValue) String() string {
	switch {
	case v.s != nil:
		return strconv.Quote(*v.s)
	case v.isInt:
		return strconv.FormatInt(v.i, 10) + "::BIGINT"
	default:
		return strconv.FormatFloat(v.f, 'g', -1, 64) + "::DOUBLE"
	}
}

func (v sqlValue) float() float64 {
	if v.isInt {
		return float64(v.i)
	}
	return v.f
}

type sqlExpr struct {
	op   string // "num", "str", "var", "cast", "call", "neg", or a binary operator
	val  sqlValue
	typ  string
	args []*sqlExpr
}

type sqlParser struct {
	toks []string
	pos  int
}

func parseSQL(s string) (*sqlExpr, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &sqlParser{toks: toks}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(toks) {
		return nil, fmt.Errorf("trailing tokens %q", toks[p.pos:])
	}
	return e, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case c == ' ':
			i++
		case strings.HasPrefix(s[i:], "//"):
			toks = append(toks, "//")
			i += 2
		case strings.ContainsRune("+-*/(),", c):
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case unicode.IsDigit(c) || unicode.IsLetter(c) || c == '_':
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || unicode.IsLetter(rune(s[j])) || s[j] == '_') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q", c)
		}
	}
	return toks, nil
}

func (p *sqlParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *sqlParser) want(tok string) error {
	if !strings.EqualFold(p.peek(), tok) {
		return fmt.Errorf("want %q at token %d, got %q", tok, p.pos, p.peek())
	}
	p.pos++
	return nil
}

func (p *sqlParser) expr() (*sqlExpr, error) {
	l, err := p.term()
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.toks[p.pos]
		p.pos++
		var r *sqlExpr
		if r, err = p.term(); err == nil {
			l = &sqlExpr{op: op, args: []*sqlExpr{l, r}}
		}
	}
	return l, err
}

func (p *sqlParser) term() (*sqlExpr, error) {
	l, err := p.unary()
	for err == nil && (p.peek() == "*" || p.peek() == "/" || p.peek() == "//") {
		op := p.toks[p.pos]
		p.pos++
		var r *sqlExpr
		if r, err = p.unary(); err == nil {
			l = &sqlExpr{op: op, args: []*sqlExpr{l, r}}
		}
	}
	return l, err
}

func (p *sqlParser) unary() (*sqlExpr, error) {
	if p.peek() == "-" {
		p.pos++
		e, err := p.unary()
		return &sqlExpr{op: "neg", args: []*sqlExpr{e}}, err
	}
	return p.primary()
}

func (p *sqlParser) primary() (*sqlExpr, error) {
	tok := p.peek()
	p.pos++
	switch {
	case tok == "(":
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return e, p.want(")")
	case strings.HasPrefix(tok, "'"):
		s := tok[1 : len(tok)-1]
		return &sqlExpr{op: "str", val: sqlValue{s: &s}}, nil
	case tok != "" && unicode.IsDigit(rune(tok[0])):
		i, err := strconv.ParseInt(tok, 10, 64)
		return &sqlExpr{op: "num", val: sqlValue{isInt: true, i: i}}, err
	case strings.EqualFold(tok, "CAST"):
		if err := p.want("("); err != nil {
			return nil, err
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.want("AS"); err != nil {
			return nil, err
		}
		typ := strings.ToUpper(p.peek())
		p.pos++
		return &sqlExpr{op: "cast", typ: typ, args: []*sqlExpr{e}}, p.want(")")
	case tok == "x":
		return &sqlExpr{op: "var"}, nil
	case tok != "" && p.peek() == "(":
		p.pos++
		call := &sqlExpr{op: "call", typ: strings.ToLower(tok)}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			call.args = append(call.args, e)
			if p.peek() != "," {
				break
			}
			p.pos++
		}
		return call, p.want(")")
	}
	return nil, fmt.Errorf("unexpected token %q", tok)
}

// less orders as DuckDB does for DOUBLE: NaN above every number.
func less(a, b float64) bool {
	if math.IsNaN(a) {
		return false
	}
	return math.IsNaN(b) || a < b
}

func (e *sqlExpr) eval(x float64) (sqlValue, error) {
	var args []sqlValue
	for _, a := range e.args {
		v, err := a.eval(x)
		if err != nil {
			return sqlValue{}, err
		}
		args = append(args, v)
	}
	switch e.op {
	case "num", "str":
		return e.val, nil
	case "var":
		return sqlValue{f: x}, nil
	case "neg":
		if args[0].isInt {
			return sqlValue{isInt: true, i: -args[0].i}, nil
		}
		return sqlValue{f: -args[0].f}, nil
	case "cast":
		a := args[0]
		switch e.typ {
		case "DOUBLE":
			if a.s != nil {
				f, err := strconv.ParseFloat(*a.s, 64)
				return sqlValue{f: f}, err
			}
			return sqlValue{f: a.float()}, nil
		case "BIGINT":
			if a.isInt {
				return a, nil
			}
			r := math.Round(a.f)
			if math.IsNaN(r) || r >= 0x1p63 || r < -0x1p63 {
				return sqlValue{}, fmt.Errorf("conversion error: %v out of BIGINT range", a.f)
			}
			return sqlValue{isInt: true, i: int64(r)}, nil
		}
		return sqlValue{}, fmt.Errorf("cast to %s", e.typ)
	case "+", "-", "*":
		if args[0].isInt && args[1].isInt {
			a, b := args[0].i, args[1].i
			switch e.op {
			case "+":
				return sqlValue{isInt: true, i: a + b}, nil
			case "-":
				return sqlValue{isInt: true, i: a - b}, nil
			}
			return sqlValue{isInt: true, i: a * b}, nil
		}
		a, b := args[0].float(), args[1].float()
		switch e.op {
		case "+":
			return sqlValue{f: a + b}, nil
		case "-":
			return sqlValue{f: a - b}, nil
		}
		return sqlValue{f: a * b}, nil
	case "/":
		return sqlValue{f: args[0].float() / args[1].float()}, nil
	case "//":
		if !args[0].isInt || !args[1].isInt || args[1].i == 0 {
			return sqlValue{}, fmt.Errorf("// wants nonzero integers, got %v, %v", args[0], args[1])
		}
		return sqlValue{isInt: true, i: args[0].i / args[1].i}, nil
	case "call":
		switch e.typ {
		case "floor", "round":
			if args[0].isInt {
				return args[0], nil
			}
			if e.typ == "floor" {
				return sqlValue{f: math.Floor(args[0].f)}, nil
			}
			return sqlValue{f: math.Round(args[0].f)}, nil
		case "least", "greatest":
			allInt := true
			for _, a := range args {
				allInt = allInt && a.isInt
			}
			best := args[0]
			for _, a := range args[1:] {
				if (e.typ == "least") == less(a.float(), best.float()) && a.float() != best.float() {
					best = a
				}
			}
			if !allInt && best.isInt {
				best = sqlValue{f: best.float()}
			}
			return best, nil
		}
	}
	return sqlValue{}, fmt.Errorf("unsupported %s %s", e.op, e.typ)
}
