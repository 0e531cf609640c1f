package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/release"
	"github.com/velo-fse/velo/twin"
)

// Dummy runs (Request.Dummy, docs/clients.md#dummy-data) answer a query on the dataset's
// dummy twin: the same check against the project's allow-list and the catalog, the same
// price, the same rewrite and the same release shape, but on made-up persons generated from
// the catalog alone (package twin), with exact answers and no charge.
//
// Invariant: the only sandbox an exact answer is ever computed on is the twin's, which
// reads only the files the engine itself generated from the catalog into a directory of its
// own when it first needed them; no request names a directory, and the real sandbox (e.sb)
// is never passed to exactRelease.

// twinState is the engine's dummy twin, made on the first dummy query.
type twinState struct {
	dir     string
	owned   bool // dir was made by the engine, and is removed by Close
	version string
	sb      *sandbox
}

// dummySandbox returns the twin's sandbox, generating the twin first if need be.
func (e *Engine) dummySandbox(ctx context.Context) (*twinState, error) {
	e.twinMu.Lock()
	defer e.twinMu.Unlock()
	if e.twin != nil {
		return e.twin, nil
	}
	ts := &twinState{dir: e.dummyDir}
	if ts.dir == "" {
		dir, err := os.MkdirTemp("", "velo-dummy-")
		if err != nil {
			return nil, err
		}
		ts.dir, ts.owned = dir, true
	}
	cat, err := twin.Generate(ctx, e.cat, ts.dir, twin.Options{Persons: e.dummyPersons})
	if err == nil {
		ts.version = cat.DatasetVersion
		ts.sb, err = openSandbox(ctx, ts.dir, cat, e.limits)
	}
	if err != nil {
		if ts.owned {
			os.RemoveAll(ts.dir)
		}
		return nil, fmt.Errorf("dummy twin: %w", err)
	}
	e.twin = ts
	return ts, nil
}

// closeTwin closes the twin's sandbox and removes a directory the engine made.
func (e *Engine) closeTwin() error {
	e.twinMu.Lock()
	defer e.twinMu.Unlock()
	ts := e.twin
	e.twin = nil
	if ts == nil {
		return nil
	}
	err := ts.sb.close()
	if ts.owned {
		err = errors.Join(err, os.RemoveAll(ts.dir))
	}
	return err
}

// DummyVersion is the dataset version of the engine's dummy twin, "" before the first dummy
// query made it.
func (e *Engine) DummyVersion() string {
	e.twinMu.Lock()
	defer e.twinMu.Unlock()
	if e.twin == nil {
		return ""
	}
	return e.twin.version
}

// dummy answers a checked and priced query on the twin: exact bounded totals, no charge, a
// dummy entry in the ledger. rel is the release Query built (its price in Epsilon and Delta).
func (e *Engine) dummy(ctx context.Context, req Request, plan *plan, rel *release.Release, options string, st ledger.ProjectStatus, bounding *boundingRule, maxGroups, maxRows int) (*release.Release, error) {
	// The twin is small, but its queries run as others do: one of Limits.MaxConcurrent
	// slots, or a *BusyError within Limits.QueueTimeout (nothing to charge either way).
	free, err := e.slots.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer free()
	ts, err := e.dummySandbox(ctx)
	if err != nil {
		e.log.Error("dummy twin", "err", err)
		return nil, ErrInternal
	}
	seed, err := randomUint64()
	if err != nil {
		return nil, err
	}
	rw := bounding.Rewrite(plan, seed, maxGroups, maxRows, treeShape{e.tree.Branching, e.tree.Height}, dp.SumScale)
	keyDomains := make([]*keyDomain, len(plan.Keys))
	for i, k := range plan.Keys {
		keyDomains[i] = k.Domain
	}
	bound, err := ts.sb.bind(ctx, rw, keyDomains)
	if err != nil {
		e.log.Error("prepare dummy rewrite", "project", req.Project, "class", errorClass(err))
		return nil, ErrInternal
	}
	defer bound.close()
	domains := bound.domains
	groups, err := bound.run(ctx, len(plan.Keys))
	if err != nil {
		e.log.Error("dummy run failed", "project", req.Project, "class", errorClass(err))
		return nil, ErrInternal
	}
	rows, cis, kept, err := exactRelease(plan, rw, domains, groups, e.tree)
	if err != nil {
		e.log.Error("dummy release failed", "project", req.Project, "err", err)
		return nil, ErrInternal
	}
	rel.Price = &release.BudgetAmount{Epsilon: rel.Epsilon, Delta: rel.Delta}
	rel.Epsilon, rel.Delta = 0, 0
	rel.Dummy = true
	rel.DatasetVersion = ts.version
	rel.Rows, rel.CI = rows, cis
	if rel.Selection != nil {
		rel.Selection.GroupsKept = &kept
	}
	keyLabels(plan, e.cat, rel)
	raw, err := json.Marshal(rel)
	if err != nil {
		return nil, err
	}
	entry, err := e.ledger.Dummy(ctx, ledger.DummyRequest{
		Actor: req.Actor, Project: req.Project, SQL: plan.Canonical, Text: req.SQL, Options: options,
		DatasetVersion: ts.version, Release: raw,
	})
	if err != nil {
		return nil, fmt.Errorf("record dummy run: %w", err)
	}
	rel.ReleaseID = DummyReleaseID(entry.Seq)
	rel.BudgetLeft = release.BudgetAmount{Epsilon: st.Left.Epsilon, Delta: st.Left.Delta}
	return rel, nil
}

// exactRelease is noiseRelease without noise, for the twin only: every key tuple of the
// public domains, or with partition selection every group the twin has, and each aggregate's
// exact value over the bounded totals (exactAggregate).
func exactRelease(p *plan, rw rewritten, domains [][]any, groups map[string]*groupRow, tree dp.Tree) (rows, cis [][]any, kept int, err error) {
	var keys [][]any
	if p.Selection() {
		ids := make([]string, 0, len(groups))
		for id := range groups {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			keys = append(keys, groups[id].keys)
		}
	} else if keys, _, err = releaseKeys(p, rw, domains, groups, dp.Budget{}, dp.Budget{}, Confidence); err != nil {
		return nil, nil, 0, err
	}
	rows, cis, err = releaseRows(p, rw, keys, groups, dp.Budget{}, Confidence, tree, exactAggregate)
	return rows, cis, len(keys), err
}

// exactAggregate is an aggregate's exact value over its group's bounded totals, with the
// interval [value, value]; a quantile's is read off the leaves of its tree (the value
// interpolated between the leaves' midpoints, the interval their ends). A value that does
// not exist (the average of no value) is NaN, released as null.
func exactAggregate(in releaseInput) (dp.Released, error) {
	t := in.tot
	n := float64(t[0])
	v := math.NaN()
	switch in.agg.Kind {
	case aggCountStar, aggPersons, aggCount:
		v = n
	case aggSum:
		v = float64(t[1]) / in.scale
	case aggAvg:
		if t[0] > 0 {
			v = float64(t[1]) / in.scale / n
		}
	case aggVarPop, aggVarSamp, aggStdPop, aggStdSamp:
		sample := in.agg.Kind == aggVarSamp || in.agg.Kind == aggStdSamp
		if t[0] > 0 && (!sample || t[0] > 1) {
			mean := float64(t[1]) / in.scale / n
			v = math.Max(0, float64(t[2])/(in.scale*in.scale)/n-mean*mean)
			if sample {
				v *= n / (n - 1)
			}
			if in.agg.Kind == aggStdPop || in.agg.Kind == aggStdSamp {
				v = math.Sqrt(v)
			}
		}
	case aggQuantile:
		return exactQuantile(in)
	default:
		return dp.Released{}, fmt.Errorf("no exact form for %s", in.agg.Kind)
	}
	r := dp.Released{Value: v}
	if !math.IsNaN(v) {
		r.CI = &dp.Interval{Lower: v, Upper: v}
	}
	return r, nil
}

// exactQuantile reads quantile_cont off the tree's leaves: the order statistics either side
// of rank q·(n−1), each the midpoint of its leaf, interpolated; the interval spans their
// leaves.
func exactQuantile(in releaseInput) (dp.Released, error) {
	height := int64(in.tree0.Height)
	leaves := math.Pow(float64(in.tree0.Branching), float64(height))
	width := (in.agg.Hi - in.agg.Lo) / leaves
	type leaf struct{ node, n int64 }
	var ls []leaf
	var total int64
	for k, c := range in.tree {
		if k[0] == height && c > 0 {
			ls = append(ls, leaf{k[1], c})
			total += c
		}
	}
	if total == 0 {
		return dp.Released{Value: math.NaN()}, nil
	}
	slices.SortFunc(ls, func(a, b leaf) int { return int(a.node - b.node) })
	at := func(k int64) int64 { // the leaf of the k-th smallest value (0-based)
		for _, l := range ls {
			if k < l.n {
				return l.node
			}
			k -= l.n
		}
		return ls[len(ls)-1].node
	}
	h := in.agg.Q * float64(total-1)
	lo, hi := at(int64(math.Floor(h))), at(int64(math.Ceil(h)))
	mid := func(node int64) float64 { return in.agg.Lo + (float64(node)+0.5)*width }
	v := mid(lo) + (h-math.Floor(h))*(mid(hi)-mid(lo))
	return dp.Released{Value: v, CI: &dp.Interval{
		Lower: math.Max(in.agg.Lo, in.agg.Lo+float64(lo)*width),
		Upper: math.Min(in.agg.Hi, in.agg.Lo+float64(hi+1)*width),
	}}, nil
}
