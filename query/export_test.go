package query

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// This file exports, to the package's external tests only (crossengine_test.go, which
// imports the Spark backend, itself an importer of this package), what comparing two
// engines needs: the test datasets, the query generator, and the exact pre-noise totals
// of one plan on the sandbox and on a backend. Nothing here is part of the package's API.

// SynthDataset is the package's 3000-person synthetic extract (booking only).
func SynthDataset(t testing.TB) string { return synthDataset(t) }

// FullDataset is a 1500-person synthetic extract in every format (FHIR and CSV): booking,
// person, lab_result and the others, ingested once for the package.
func FullDataset(t testing.TB) string {
	t.Helper()
	fullOnce.Do(func() {
		period, _ := fse.ParsePeriod(testPeriod)
		src := filepath.Join(scratch, "synth-full")
		if _, fullErr = synth.Generate(context.Background(), synth.Config{Persons: 1500, Seed: 12, Out: src, From: period.From, To: period.To}); fullErr != nil {
			return
		}
		fullData = filepath.Join(scratch, "full-data")
		_, fullErr = ingest.Run(context.Background(), ingest.Config{Pseudonymizer: testPseudonymizer(t), Out: fullData, Inputs: []string{src}, Period: period, MemoryLimit: "512MB"})
	})
	if fullErr != nil {
		t.Fatal(fullErr)
	}
	return fullData
}

var (
	fullOnce sync.Once
	fullData string
	fullErr  error
)

// GenDataset writes a generated dataset (gen_test.go: genCatalog with person ranks, and
// genDataset's persons from seed) to dir.
func GenDataset(dir string, seed uint64, persons int) error {
	cat, catJSON, err := genCatalog()
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	return writeDataset(dir, cat, catJSON, genDataset(r, persons))
}

// GenQueries is n queries of the generator (validQuery) from seed.
func GenQueries(seed uint64, n int) ([]string, error) {
	cat, _, err := genCatalog()
	if err != nil {
		return nil, err
	}
	g := &queryGen{r: rand.New(rand.NewPCG(seed, 1)), cat: cat}
	out := make([]string, n)
	for i := range out {
		out[i] = g.validQuery()
	}
	return out, nil
}

// Totals are one group's exact pre-noise totals.
type Totals struct {
	Keys    []any
	Persons int64
	Vals    []int64
	Tree    map[int]treeCounts
}

// The stages CrossTotals may fail at.
const (
	StageCheck      = "check"           // the checker refused it (both engines)
	StageDialect    = "backend dialect" // the backend's dialect refused it, before the charge
	StagePrepare    = "duckdb prepare"  // DuckDB did not bind it: ErrInternal, before the charge
	StageBind       = "backend bind"    // the backend did not bind it: ErrInternal, before the charge
	StageBothRun    = "both run"        // both failed running it
	StageDuckDBRun  = "duckdb run"      // DuckDB failed running it, the backend did not
	StageBackendRun = "backend run"     // the backend failed running it, DuckDB did not
	StageNotApplied = "not applied"     // the bounding asked for does not apply to the plan
)

// The boundings CrossTotals compares.
const (
	PersonRank = boundingPersonRank
	PerGroup   = boundingPerGroup
)

// crossSeed is the per-release seed both engines' per_group statements get in CrossTotals.
const crossSeed = 0x5eed_c0ffee_d00d

// CrossTotals checks sqlText as Query does and returns the exact pre-noise totals of its
// rewrite under bounding method (PersonRank or PerGroup) on the engine's DuckDB sandbox and
// on its backend, by group; or the stage at which it failed, and why. Under per_group both
// engines get the same seed, and DuckDB the portable keyed row order (duckPortable).
func CrossTotals(ctx context.Context, e *Engine, sqlText string, allow map[string][]string, method string) (duck, backend map[string]Totals, stage string, err error) {
	plan, err := e.check(ctx, sqlText, allow)
	if err != nil {
		return nil, nil, StageCheck, err
	}
	if err := applyRequest(plan, Request{}); err != nil {
		return nil, nil, StageCheck, err
	}
	if !boundingByMethod(method).Applies(plan) {
		return nil, nil, StageNotApplied, nil
	}
	g, c := contributionBounds(plan)
	srw, err := e.backendRewrite(plan, method, crossSeed, g, c)
	if err != nil {
		return nil, nil, StageDialect, err
	}
	tree := treeShape{e.tree.Branching, e.tree.Height}
	var rw rewritten
	if method == boundingPersonRank {
		rw = boundingByMethod(boundingPersonRank).Rewrite(plan, crossSeed, g, c, tree, dp.SumScale)
	} else if rw, err = rewriteIn(duckPortable, plan, crossSeed, g, c, tree, dp.SumScale); err != nil {
		return nil, nil, StagePrepare, err
	}
	domains := make([]*keyDomain, len(plan.Keys))
	for i, k := range plan.Keys {
		domains[i] = k.Domain
	}
	if _, err := e.sb.prepare(ctx, rw, domains); err != nil {
		return nil, nil, StagePrepare, err
	}
	if err := bindBackend(ctx, e.backend, srw); err != nil {
		return nil, nil, StageBind, err
	}
	dg, derr := e.sb.run(ctx, rw, len(plan.Keys))
	bg, berr := runBackend(ctx, e.backend, srw, len(plan.Keys))
	switch {
	case derr != nil && berr != nil:
		return nil, nil, StageBothRun, derr
	case derr != nil:
		return nil, nil, StageDuckDBRun, derr
	case berr != nil:
		return nil, nil, StageBackendRun, berr
	}
	// Each tree once, under the first quantile that reads it (plan.treeOwners): an engine
	// may count it once for all its readers.
	owner := plan.treeOwners()
	conv := func(groups map[string]*groupRow) map[string]Totals {
		out := map[string]Totals{}
		for id, gr := range groups {
			tree := map[int]treeCounts{}
			for j, t := range gr.tree {
				if owner[j] == j {
					tree[j] = t
				}
			}
			out[id] = Totals{Keys: gr.keys, Persons: gr.persons, Vals: gr.vals, Tree: tree}
		}
		return out
	}
	return conv(dg), conv(bg), "", nil
}

// BackendSQL is the statements the engine sends its backend for sqlText under bounding
// method (for messages).
func BackendSQL(ctx context.Context, e *Engine, sqlText string, allow map[string][]string, method string) ([]string, error) {
	plan, err := e.check(ctx, sqlText, allow)
	if err != nil {
		return nil, err
	}
	if err := applyRequest(plan, Request{}); err != nil {
		return nil, err
	}
	g, c := contributionBounds(plan)
	rw, err := e.backendRewrite(plan, method, crossSeed, g, c)
	if err != nil {
		return nil, err
	}
	return append([]string{rw.Inline()}, rw.Tree...), nil
}

// PerGroupRunner prints sqlText's per_group rewrite for the embedded DuckDB, with DuckDB's
// keyed hash() or (portable) the order Spark computes too, binds it, and returns a function
// that runs it on the sandbox (BenchmarkKeyedOrder).
func PerGroupRunner(ctx context.Context, e *Engine, sqlText string, allow map[string][]string, portable bool) (func() error, error) {
	p, err := e.check(ctx, sqlText, allow)
	if err != nil {
		return nil, err
	}
	if err := applyRequest(p, Request{}); err != nil {
		return nil, err
	}
	g, c := contributionBounds(p)
	d := duckDialect
	if portable {
		d = duckPortable
	}
	rw, err := rewriteIn(d, p, crossSeed, g, c, treeShape{e.tree.Branching, e.tree.Height}, dp.SumScale)
	if err != nil {
		return nil, err
	}
	domains := make([]*keyDomain, len(p.Keys))
	for i, k := range p.Keys {
		domains[i] = k.Domain
	}
	if _, err := e.sb.prepare(ctx, rw, domains); err != nil {
		return nil, err
	}
	return func() error {
		_, err := e.sb.run(ctx, rw, len(p.Keys))
		return err
	}, nil
}
