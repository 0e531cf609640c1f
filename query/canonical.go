package query

import (
	"strconv"
	"strings"
)

// canonical prints a checked plan as the query's identity: the ledger records it beside
// the text that was sent, hashes it, and the release cache keys on that hash. It is
// printed from the plan, never from the user's text, so comments, whitespace, keyword
// case, quoting and the DP clause's spelling cannot make two different questions look
// alike, and cannot make one question look different: what runs is what is identified.
// Options (epsilon, delta, contribution bounds) are not part of it: canonicalOptions
// carries them.
//
// Every part is printed injectively: expressions in their total SQL forms (quoted
// identifiers and strings, shortest round-trip numbers), each output with its name, each
// aggregate with its kind and rank, HAVING, ORDER BY, LIMIT and OFFSET.
func (p *plan) canonical() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, o := range p.Outputs {
		if i > 0 {
			b.WriteString(", ")
		}
		if o.Key >= 0 {
			b.WriteString(p.Keys[o.Key].Expr.SQL())
		} else {
			b.WriteString(p.Aggs[o.Agg].canonical())
		}
		b.WriteString(" AS " + quoteIdent(o.Name))
	}
	b.WriteString(" FROM ")
	for i, t := range p.Tables {
		if i > 0 {
			b.WriteString(" JOIN ")
		}
		b.WriteString(quoteIdent(t.Name) + " AS " + quoteIdent(t.Alias))
		if i > 0 {
			b.WriteString(" ON " + quoteIdent(p.Tables[0].Alias) + ".pid = " + quoteIdent(t.Alias) + ".pid")
		}
	}
	if p.Where != nil {
		b.WriteString(" WHERE " + p.Where.SQL())
	}
	if len(p.Keys) > 0 {
		b.WriteString(" GROUP BY ")
		for i, k := range p.Keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k.Expr.SQL())
		}
	}
	if p.Having != nil {
		b.WriteString(" HAVING " + p.Having.sql(p.Outputs))
	}
	if len(p.Order) > 0 {
		b.WriteString(" ORDER BY ")
		for i, o := range p.Order {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIdent(p.Outputs[o.Output].Name))
			if o.Desc {
				b.WriteString(" DESC")
			} else {
				b.WriteString(" ASC")
			}
		}
	}
	if p.Limit >= 0 {
		b.WriteString(" LIMIT " + strconv.FormatInt(p.Limit, 10))
	}
	if p.Offset > 0 {
		b.WriteString(" OFFSET " + strconv.FormatInt(p.Offset, 10))
	}
	return b.String()
}

// canonical prints an aggregate: its kind, argument and quantile rank. Its bounds are
// options (canonicalOptions), not part of the text.
func (a agg) canonical() string {
	arg := ""
	switch {
	case a.Kind == aggCountStar:
		arg = "*"
	case a.Kind == aggPersons:
		arg = "DISTINCT pid"
	case a.Arg != nil:
		arg = a.Arg.SQL()
	}
	if a.Kind == aggQuantile {
		arg += ", " + strconv.FormatFloat(a.Q, 'g', -1, 64)
	}
	return string(a.Kind) + "(" + arg + ")"
}

func (h hOut) sql(outs []output) string { return quoteIdent(outs[h.idx].Name) }
func (h hLit) sql([]output) string      { return (&literal{V: h.v}).SQL() }
func (h hOp) sql(outs []output) string {
	args := make([]string, len(h.args))
	for i, a := range h.args {
		args[i] = a.sql(outs)
	}
	switch h.op {
	case "NOT":
		return "(NOT " + args[0] + ")"
	case "IS NULL", "IS NOT NULL":
		return "(" + args[0] + " " + h.op + ")"
	}
	return "(" + strings.Join(args, " "+h.op+" ") + ")"
}
