package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

// The synthesis bounding, person_rows (docs/privacy.md#bounding-for-synthesis-person_rows).
//
// The per_group bounding keeps, in each marginal on its own, at most C distinct cells of
// each person: every marginal is then measured on a different population (a person's kept
// cell is uniform among the cells they have rows in, whatever their number of rows in each),
// and rows NULL in an attribute of the marginal are dropped from that marginal only. The
// synthesizer fits one model to all its measurements, so they should count the same rows.
//
// person_rows fixes the rows first, once for the whole synthesis, and counts every marginal
// over them: the population is each person's rows whose every attribute is in its public
// domain or NULL, and of those at most k per person — the rows of ingest rank ≤ k where the
// table's files carry ranks (dataset.PersonRankColumn), otherwise the k with the smallest
// keyed hash of the pid, the attributes' columns and a secret per-release seed. NULL is a
// public level of every attribute the catalog does not declare not_null (the last level),
// so every marginal counts every row of the population, and the synthetic rows reproduce
// missing values. A not_null attribute has no NULL level, and its predicate is its domain
// alone: a row NULL in it (which ingest never writes, but a file could hold) is outside the
// population, as a row with an unknown code is.
//
// It is not a row of boundingRules: those bound queries, and this counts only the
// marginals the synthesizer measures; its sensitivity is the person_rank derivation with
// K = k (dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: k}).
const boundingPersonRows = "person_rows"

// MaxRowsPerPerson bounds synthesis's rows per person (k).
const MaxRowsPerPerson = 100

// personRows is the population of one synthesis.
type personRows struct {
	k      int
	ranked bool   // every table's files carry person ranks
	pred   string // every attribute in its domain or NULL, over the tables' names
	hash   string // the keyed hash ordering a person's rows (without ranks)
}

// nullLevel says whether the counter's nullable attributes have NULL as a level.
func (mc *marginalCounter) nullLevel() bool { return mc.rows != nil }

// usePersonRows switches the counter to the person_rows bounding with k rows per person,
// over all of its attributes (resolved already): each attribute's 1-way marginal is checked
// for its public domain, which the population's predicate keeps (or NULL, unless the
// column is not_null). Over tables joined on pid, a row is a row of the counter's table with
// its person's row of each joined table (one row per person). It reads no data.
func (mc *marginalCounter) usePersonRows(ctx context.Context, k int) error {
	if k < 1 || k > MaxRowsPerPerson {
		return optionsError("max_rows_per_person must be from 1 to %d, got %d", MaxRowsPerPerson, k)
	}
	var preds, cols []string
	ranked := true
	for i, a := range mc.attrs {
		p, err := mc.e.check(ctx, mc.marginalSQL([]int{i}), mc.allow)
		if err != nil {
			return err
		}
		if len(p.Keys) != 1 || p.Keys[0].Domain == nil || len(p.Tables) != 1+len(mc.joins) {
			return &Error{Code: CodeRejected, Msg: fmt.Sprintf("%s has no public domain", a.Name), Pos: -1}
		}
		for _, t := range p.Tables {
			if t.Alias != t.Name {
				return fmt.Errorf("person_rows: internal error: table %s read as %s", t.Name, t.Alias)
			}
			ranked = ranked && t.Meta.PersonRank
		}
		key := p.Keys[0].Expr.SQL()
		if a.notNull {
			// No NULL level: a row NULL here (a file that breaks the catalog's not_null)
			// is outside the population, so every row counted has a level in every
			// marginal.
			preds = append(preds, domainFilter(key, p.Keys[0].Domain))
		} else {
			preds = append(preds, fmt.Sprintf("(%s OR %s IS NULL)", domainFilter(key, p.Keys[0].Domain), key))
		}
		cols = append(cols, quoteIdent(a.table)+"."+quoteIdent(a.column))
	}
	if len(cols) == 0 {
		return optionsError("synthetic data needs at least one attribute")
	}
	mc.rows = &personRows{
		k: k, ranked: ranked, pred: strings.Join(preds, " AND "),
		hash: fmt.Sprintf("hash(%s.pid, %s, %d::UBIGINT)", quoteIdent(mc.table), strings.Join(cols, ", "), mc.seed>>1),
	}
	return nil
}

// rewritePersonRows prints the person_rows statements of a marginal's plan: base reads the
// population (the same rows whatever the marginal) and Groups counts them by the keys.
// With ranks, a person's rows of rank ≤ k of the first table and the row of rank 1 of each
// joined one; without, the k joined rows of the person with the smallest keyed hash.
func rewritePersonRows(p *plan, pr *personRows) rewritten {
	var from strings.Builder
	var ranks []string
	first := quoteIdent(p.Tables[0].Alias)
	for i, t := range p.Tables {
		name, alias := quoteIdent(t.Name), quoteIdent(t.Alias)
		limit := 1
		if i == 0 {
			limit = pr.k
			fmt.Fprintf(&from, "%s AS %s", name, alias)
		} else {
			fmt.Fprintf(&from, " JOIN %s AS %s ON %s.pid = %s.pid", name, alias, first, alias)
		}
		ranks = append(ranks, fmt.Sprintf("%s.%s <= %d", alias, dataset.PersonRankColumn, limit))
	}
	var sel, keyCols []string
	for i, k := range p.Keys {
		kc := fmt.Sprintf("k%d", i)
		keyCols = append(keyCols, kc)
		sel = append(sel, k.Expr.SQL()+" AS "+kc)
	}
	base := "SELECT " + strings.Join(sel, ", ") + " FROM " + from.String()
	if pr.ranked {
		base += " WHERE " + strings.Join(ranks, " AND ") + " AND " + pr.pred
	} else {
		base += fmt.Sprintf(" WHERE %s QUALIFY row_number() OVER (PARTITION BY %s.pid ORDER BY %s) <= %d", pr.pred, first, pr.hash, pr.k)
	}
	rw := rewritten{Method: boundingPersonRows, MaxGroups: 1, MaxRows: pr.k, Scales: make([]float64, len(p.Aggs)), Tree: make([]string, len(p.Aggs))}
	rw.ctes = "base AS (" + base + ")"
	rw.boundedSelect = "SELECT * FROM base"
	rw.Bounded = "WITH " + rw.ctes + " " + rw.boundedSelect
	rw.Groups = "SELECT " + strings.Join(keyCols, ", ") + ", 0 AS persons, count(*) AS a0 FROM bounded GROUP BY " + strings.Join(keyCols, ", ")
	return rw
}

// personRowsBounding is the release's record of person_rows with k rows per person: one
// person changes at most k cells of a marginal, by k in all (L1), and by at most k in L2
// (all k rows in one cell), as dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: k}.
func personRowsBounding(k int) MarginalBounding {
	// person_rank's bounds with k rows per person: dp.Bounding{MaxGroups: 1, MaxContributionsPerGroup: k}.
	l1, l2 := rankedBounds(k).CountNorms()
	return MarginalBounding{Method: boundingPersonRows, MaxRowsPerPerson: k, MaxGroupsContributed: 1, MaxRowsPerGroup: k, L1: l1, L2: l2}
}
