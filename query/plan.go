package query

import (
	"fmt"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

// Error is a query refused before any data is read: a public message, a stable code and
// the position in the user's SQL when there is one (-1 otherwise).
type Error struct {
	Code string
	Msg  string
	Pos  int
	// near locates a refusal DuckDB's AST gives no position for (SELECT DISTINCT, WITH,
	// UNION): the first occurrence of any of these keyword sequences in the query text,
	// at its last word (checkSQL resolves it).
	near [][]string
	// nearFirst: near, when found, replaces Pos (DuckDB places INTERVAL 1 DAY at the 1).
	nearFirst bool
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

// at locates a refusal without a position at the first of these keyword sequences (each
// words separated by spaces) in the query text.
func (e *Error) at(sequences ...string) *Error {
	for _, s := range sequences {
		e.near = append(e.near, strings.Fields(s))
	}
	return e
}

// atFirst is at, and the keyword's position replaces the one DuckDB gave.
func (e *Error) atFirst(sequences ...string) *Error {
	e.nearFirst = true
	return e.at(sequences...)
}

// locate resolves near against the query text (the lifted text: the same positions).
func (e *Error) locate(text string) {
	if e.Pos >= 0 && !e.nearFirst || len(e.near) == 0 {
		return
	}
	toks := lex(text)
	best := -1
	for _, seq := range e.near {
	next:
		for i := 0; i+len(seq) <= len(toks); i++ {
			for k, w := range seq {
				if !toks[i+k].is(w) && toks[i+k].text != w {
					continue next
				}
			}
			if p := toks[i+len(seq)-1].pos; best < 0 || p < best {
				best = p
			}
			break
		}
	}
	if best >= 0 || !e.nearFirst {
		e.Pos = best
	}
}

// aggKind is a DP aggregate.
type aggKind string

const (
	aggCountStar aggKind = "count"         // COUNT(*)
	aggCount     aggKind = "count_nonnull" // COUNT(expr)
	aggPersons   aggKind = "count_persons" // COUNT(DISTINCT pid)
	aggSum       aggKind = "sum"
	aggAvg       aggKind = "avg"
	aggQuantile  aggKind = "quantile"
	aggVarPop    aggKind = "var_pop"
	aggVarSamp   aggKind = "var_samp"
	aggStdPop    aggKind = "stddev_pop"
	aggStdSamp   aggKind = "stddev_samp"
)

// noisedBounds are the bounds of the values whose sums are noised, and the offset taken
// from each clamped value first. A variance's values are centred on the middle of
// [Lo, Hi] (the variance does not change): its sum of squares then has sensitivity
// C·((Hi−Lo)/2)² instead of C·max(Lo², Hi²), which for ranges far from zero (years) is
// most of the noise. Other aggregates are not shifted.
func (a agg) noisedBounds() (lo, hi, offset float64) {
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

// agg is a checked aggregate of the select list.
type agg struct {
	Kind aggKind
	Arg  expr    // nil for COUNT(*) and COUNT(DISTINCT pid)
	Q    float64 // quantile rank
	// Lo, Hi clamp each value (SUM: each person's total in the group).
	Lo, Hi    float64
	Name      string
	Pos       int
	display   string
	BoundsSrc string // "catalog", "expression", "query" (contribution_bounds_per_group) or "request"
}

// key is a GROUP BY key.
type key struct {
	Expr   expr
	Name   string
	Domain *keyDomain // nil: no public domain, partition selection needed
}

// keyDomain is a key's public domain: explicit values, or date buckets over the period.
type keyDomain struct {
	Values []any // int64, float64, string, bool or time.Time, in order
	Source string
}

// output is one released column.
type output struct {
	Name string
	Key  int // index in Keys, or -1
	Agg  int // index in Aggs, or -1
}

// tableUse is a table in FROM.
type tableUse struct {
	Name, Alias string
	Meta        dataset.CatalogTable
}

// orderBy orders released rows by an output column.
type orderBy struct {
	Output int
	Desc   bool
}

// plan is a checked query: everything the rewrite and the release need, and nothing
// taken from the data.
type plan struct {
	Tables  []tableUse
	Where   expr // nil: none
	Keys    []key
	Aggs    []agg
	Outputs []output
	Having  havingExpr // nil: none; evaluated on the noisy output
	Order   []orderBy
	Limit   int64 // -1: none
	Offset  int64
	// Options as the SQL clause gave them (nil when absent).
	Epsilon, Delta       *float64
	MaxGroupsContributed int
	// ClampToRange: OPTIONS(clamp_to_range = true), post-processing of the release (not
	// part of its identity or cache key).
	ClampToRange bool
	// Canonical is the checked query printed back from the plan (plan.canonical): its
	// identity. The ledger records it beside the text sent and the release cache keys on
	// its hash.
	Canonical string
}

// Selection reports whether group keys need DP partition selection.
func (p *plan) Selection() bool {
	for _, k := range p.Keys {
		if k.Domain == nil {
			return true
		}
	}
	return false
}

// Thresholded reports whether partition selection keeps a group by the query's own noisy
// count of persons (Laplace thresholding, dp.ThresholdCountPersons) rather than by a
// selection of its own: the query needs selection and its one aggregate is COUNT(DISTINCT
// pid), each person counted once in at most L0 groups — the count the selection needs.
func (p *plan) Thresholded() bool {
	return p.Selection() && len(p.Aggs) == 1 && p.Aggs[0].Kind == aggPersons
}

// Mechanisms counts the noise mechanisms the query spends budget on: each aggregate's
// parts, a quantile tree shared by several quantiles once (treeOwners).
func (p *plan) Mechanisms() int {
	n := 0
	owner := p.treeOwners()
	for j, a := range p.Aggs {
		if owner[j] == j {
			n += len(a.Kind.rule().Parts)
		}
	}
	return n
}

// quantileTreeKey names a quantile's tree: quantiles of the same value within the same
// bounds count the same rows into the same leaves.
func quantileTreeKey(a agg) string { return fmt.Sprintf("%s\x00%g\x00%g", a.Arg.SQL(), a.Lo, a.Hi) }

// treeOwners maps each aggregate to the first aggregate of the query whose quantile tree it
// reads: for a quantile, the first quantile with its quantileTreeKey; for anything else,
// itself. A tree is noised once, as one mechanism with the budget of one part, and every
// quantile that owns or shares it is read off the same noisy counts (post-processing;
// docs/privacy.md, "Quantiles of one value share a tree").
func (p *plan) treeOwners() []int {
	owner := make([]int, len(p.Aggs))
	first := map[string]int{}
	for j, a := range p.Aggs {
		owner[j] = j
		if a.Kind != aggQuantile {
			continue
		}
		k := quantileTreeKey(a)
		if i, ok := first[k]; ok {
			owner[j] = i
		} else {
			first[k] = j
		}
	}
	return owner
}
