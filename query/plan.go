package query

import (
	"fmt"

	"github.com/velo-fse/velo/dataset"
)

// Error is a query refused before any data is read: a public message, a stable code and
// the position in the user's SQL when there is one (-1 otherwise).
type Error struct {
	Code string
	Msg  string
	Pos  int
}

func (e *Error) Error() string {
	if e.Pos >= 0 {
		return fmt.Sprintf("%s (at position %d)", e.Msg, e.Pos)
	}
	return e.Msg
}

// Codes of refusals.
const (
	CodeRejected  = "sql_rejected"    // outside the allow-list or malformed
	CodeForbidden = "forbidden"       // a table or column the project is not approved for
	CodeOptions   = "invalid_options" // epsilon, delta or bounds outside what is allowed
)

func rejectf(pos int, format string, args ...any) *Error {
	return &Error{Code: CodeRejected, Msg: fmt.Sprintf(format, args...), Pos: pos}
}

// AggKind is a DP aggregate.
type AggKind string

const (
	AggCountStar AggKind = "count"         // COUNT(*)
	AggCount     AggKind = "count_nonnull" // COUNT(expr)
	AggPersons   AggKind = "count_persons" // COUNT(DISTINCT pid)
	AggSum       AggKind = "sum"
	AggAvg       AggKind = "avg"
	AggQuantile  AggKind = "quantile"
	AggVarPop    AggKind = "var_pop"
	AggVarSamp   AggKind = "var_samp"
	AggStdPop    AggKind = "stddev_pop"
	AggStdSamp   AggKind = "stddev_samp"
)

// noisedBounds are the bounds of the values whose sums are noised, and the offset taken
// from each clamped value first. A variance's values are centred on the middle of
// [Lo, Hi] (the variance does not change): its sum of squares then has sensitivity
// C·((Hi−Lo)/2)² instead of C·max(Lo², Hi²), which for ranges far from zero (years) is
// most of the noise. Other aggregates are not shifted.
func (a Agg) noisedBounds() (lo, hi, offset float64) {
	if !a.Kind.rule().Centred {
		return a.Lo, a.Hi, 0
	}
	return centred(a.Lo, a.Hi)
}

// centred is [lo, hi] shifted by its middle, and the middle.
func centred(lo, hi float64) (clo, chi, mid float64) {
	mid = lo + (hi-lo)/2
	return lo - mid, hi - mid, mid
}

// Agg is a checked aggregate of the select list.
type Agg struct {
	Kind AggKind
	Arg  Expr    // nil for COUNT(*) and COUNT(DISTINCT pid)
	Q    float64 // quantile rank
	// Lo, Hi clamp each value (SUM: each person's total in the group).
	Lo, Hi    float64
	Name      string
	Pos       int
	display   string
	BoundsSrc string // "catalog", "expression", "query" (contribution_bounds_per_group) or "request"
}

// Key is a GROUP BY key.
type Key struct {
	Expr   Expr
	Name   string
	Domain *KeyDomain // nil: no public domain, partition selection needed
}

// KeyDomain is a key's public domain: explicit values, or date buckets over the period.
type KeyDomain struct {
	Values []any // int64, float64, string, bool or time.Time, in order
	Source string
}

// Output is one released column.
type Output struct {
	Name string
	Key  int // index in Keys, or -1
	Agg  int // index in Aggs, or -1
}

// TableUse is a table in FROM.
type TableUse struct {
	Name, Alias string
	Meta        dataset.CatalogTable
}

// OrderBy orders released rows by an output column.
type OrderBy struct {
	Output int
	Desc   bool
}

// Plan is a checked query: everything the rewrite and the release need, and nothing
// taken from the data.
type Plan struct {
	Tables  []TableUse
	Where   Expr // nil: none
	Keys    []Key
	Aggs    []Agg
	Outputs []Output
	Having  havingExpr // nil: none; evaluated on the noisy output
	Order   []OrderBy
	Limit   int64 // -1: none
	Offset  int64
	// Options as the SQL clause gave them (nil when absent).
	Epsilon, Delta       *float64
	MaxGroupsContributed int
	// Canonical is the checked query printed back from the plan (Plan.canonical): its
	// identity. The ledger records it beside the text sent and the release cache keys on
	// its hash.
	Canonical string
}

// Selection reports whether group keys need DP partition selection.
func (p *Plan) Selection() bool {
	for _, k := range p.Keys {
		if k.Domain == nil {
			return true
		}
	}
	return false
}

// Mechanisms counts the noise mechanisms the query spends budget on.
func (p *Plan) Mechanisms() int {
	n := 0
	for _, a := range p.Aggs {
		n += len(a.Kind.rule().Parts)
	}
	return n
}
