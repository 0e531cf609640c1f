package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/velo-fse/velo/dp"
)

// Backend is a SQL engine other than the embedded DuckDB that computes a bounded rewrite's
// exact per-group totals over the dataset's Parquet files (docs/scale.md). It is given
// statements the engine printed in its dialect from a checked plan, never a researcher's
// text, and returns their rows: the engine keeps the per-person bounding, the totality
// rewrites, every sensitivity and the noise, which it adds after the totals come back.
//
// The embedded DuckDB sandbox still opens the dataset beside a backend: it binds every
// rewrite against the files' metadata and resolves the keys' public domains (no data read),
// and it answers dummy runs (on the dummy twin) and marginals.
type Backend interface {
	// Dialect is the SQL the backend reads: DialectSpark.
	Dialect() string
	// Bind analyses a statement without reading any data: an error means it would not run.
	Bind(ctx context.Context, stmt string) error
	// Query runs a statement and returns its rows, each value nil, an integer (int64 or
	// narrower, or a *big.Int), a float64, a string, a bool or a time.Time (a date, at
	// midnight UTC).
	Query(ctx context.Context, stmt string) ([][]any, error)
	Close() error
}

// dialectOf is the dialect a backend reads.
func dialectOf(b Backend) (dialect, error) {
	switch b.Dialect() {
	case DialectSpark:
		return sparkDialect, nil
	}
	return dialect{}, fmt.Errorf("query: no dialect %q", b.Dialect())
}

// backendRewrite prints plan p's rewrite under bounding method (person_rank or per_group,
// chosen as on DuckDB) for the engine's backend, with the per-release seed, or refuses it
// (an *Error: before any charge) when the dialect cannot print it with DuckDB's meaning
// (docs/scale.md#what-a-backend-runs). It adds nothing to the bounding's sensitivities,
// which the engine derives from the plan whatever runs it.
func (e *Engine) backendRewrite(p *plan, method string, seed uint64, maxGroups, maxRows int) (rewritten, error) {
	tree := treeShape{e.tree.Branching, e.tree.Height}
	if method == boundingPersonRank {
		return rewriteRankedIn(e.dialect, p, rankedRows(p, maxGroups, maxRows), tree, dp.SumScale)
	}
	return rewriteIn(e.dialect, p, seed, maxGroups, maxRows, tree, dp.SumScale)
}

// runBackend runs a rewrite's statements on a backend and returns the groups, as the
// sandbox's run does.
func runBackend(ctx context.Context, b Backend, rw rewritten, nkeys int) (map[string]*groupRow, error) {
	rows, err := b.Query(ctx, rw.Inline())
	if err != nil {
		return nil, err
	}
	groups := map[string]*groupRow{}
	for _, vals := range rows {
		if len(vals) < nkeys+1 {
			return nil, fmt.Errorf("backend: a row of %d columns, want at least %d", len(vals), nkeys+1)
		}
		g := &groupRow{keys: normaliseKeys(vals[:nkeys]), tree: map[int]treeCounts{}}
		g.persons = toInt64(vals[nkeys])
		for _, v := range vals[nkeys+1:] {
			g.vals = append(g.vals, toInt64(v))
		}
		id := groupID(g.keys)
		if groups[id] != nil {
			return nil, errDuplicateGroup
		}
		groups[id] = g
	}
	for j, q := range rw.Tree {
		if q == "" {
			continue
		}
		rows, err := b.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, vals := range rows {
			if len(vals) != nkeys+3 {
				return nil, fmt.Errorf("backend: a tree row of %d columns, want %d", len(vals), nkeys+3)
			}
			g := groups[groupID(normaliseKeys(vals[:nkeys]))]
			if g == nil {
				continue
			}
			if g.tree[j] == nil {
				g.tree[j] = treeCounts{}
			}
			g.tree[j][[2]int64{toInt64(vals[nkeys]), toInt64(vals[nkeys+1])}] = toInt64(vals[nkeys+2])
		}
		for _, g := range groups {
			if g.tree[j] != nil {
				rw.tree.rollUp(g.tree[j])
			}
		}
	}
	return groups, nil
}

// bindBackend binds every statement of a rewrite on the backend (no data read).
func bindBackend(ctx context.Context, b Backend, rw rewritten) error {
	var errs []error
	for _, q := range append([]string{rw.Inline()}, rw.Tree...) {
		if q != "" {
			errs = append(errs, b.Bind(ctx, q))
		}
	}
	return errors.Join(errs...)
}
