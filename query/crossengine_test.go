package query_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/internal/sparktest"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/query/spark"
)

// TestSparkCrossEngine starts a Spark cluster (a master, two workers and a Spark Connect
// server, separate processes on loopback) and checks that, for the bench suite on the
// package's synthetic extract and for generated queries on generated datasets, the exact
// pre-noise bounded totals Spark computes from the engine's Spark statements equal those
// the DuckDB sandbox computes from its own, group for group; and that what the Spark
// engine cannot run is refused before anything runs (docs/scale.md).
func TestSparkCrossEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Spark cluster")
	}
	cluster := sparktest.Start(t, 2)
	ctx := context.Background()
	open := func(data string) *query.Engine {
		t.Helper()
		b, err := spark.Open(ctx, spark.Config{Remote: cluster.Remote, DataDir: data})
		if err != nil {
			t.Fatal(err)
		}
		e, err := query.Open(ctx, query.Config{DataDir: data, Backend: b})
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}

	methods := []string{query.PersonRank, query.PerGroup}

	// The whole bench suite and dashboard, on a full extract (booking, person, lab_result),
	// under every bounding that applies to each query: nothing refused, every total equal.
	t.Run("suite", func(t *testing.T) {
		e := open(query.FullDataset(t))
		allow := map[string][]string{"booking": nil, "person": nil, "lab_result": nil}
		compared := map[string][]string{}
		groups := 0
		seen := map[string]bool{}
		for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
			if seen[q.ID] {
				continue
			}
			seen[q.ID] = true
			for _, m := range methods {
				duck, sp, stage, err := query.CrossTotals(ctx, e, q.SQL(), allow, m)
				if stage == query.StageNotApplied {
					continue
				}
				if err != nil {
					t.Errorf("%s under %s: %s: %v", q.ID, m, stage, err)
					continue
				}
				compared[m] = append(compared[m], q.ID)
				groups += len(duck)
				if len(duck) == 0 {
					t.Errorf("%s under %s: no group on DuckDB: nothing compared", q.ID, m)
				}
				if d := cmp.Diff(duck, sp); d != "" {
					stmts, _ := query.BackendSQL(ctx, e, q.SQL(), allow, m)
					t.Errorf("%s under %s: Spark's exact totals differ from DuckDB's (-duckdb +spark):\n%s\nSpark SQL: %s", q.ID, m, d, strings.Join(stmts, "\n"))
				}
			}
			if !slices.ContainsFunc(methods, func(m string) bool { return slices.Contains(compared[m], q.ID) }) {
				t.Errorf("%s: compared under no bounding", q.ID)
			}
		}
		t.Logf("suite: %d queries; compared equal on both engines (%d groups): person_rank %d (%s), per_group %d (%s); 0 refused",
			len(seen), groups, len(compared[query.PersonRank]), strings.Join(compared[query.PersonRank], ", "),
			len(compared[query.PerGroup]), strings.Join(compared[query.PerGroup], ", "))
		// per_group applies to every query.
		if len(compared[query.PerGroup]) != len(seen) {
			t.Errorf("per_group compared on %d of the %d suite queries", len(compared[query.PerGroup]), len(seen))
		}
	})

	// Queries in flight at once share the backend's one Spark Connect session, as a
	// server's concurrent queries do (run it with -race).
	t.Run("concurrent", func(t *testing.T) {
		e := open(query.SynthDataset(t))
		allow := map[string][]string{"booking": nil}
		var wg sync.WaitGroup
		for i, q := range bench.Dashboard {
			m := methods[i%2]
			wg.Go(func() {
				duck, sp, stage, err := query.CrossTotals(ctx, e, q.SQL(), allow, m)
				switch {
				case stage == query.StageNotApplied:
				case err != nil:
					t.Errorf("%s under %s: %s: %v", q.ID, m, stage, err)
				case !cmp.Equal(duck, sp):
					t.Errorf("%s under %s: Spark's exact totals differ from DuckDB's when run concurrently", q.ID, m)
				}
			})
		}
		wg.Wait()
	})

	t.Run("generated", func(t *testing.T) {
		const seed = 21
		data := filepath.Join(t.TempDir(), "data")
		if err := query.GenDataset(data, seed, 400); err != nil {
			t.Fatal(err)
		}
		e := open(data)
		qs, err := query.GenQueries(seed, 400)
		if err != nil {
			t.Fatal(err)
		}
		allow := map[string][]string{"booking": nil, "person": nil}
		compared, groups := map[string]int{}, 0
		joins := map[string]int{}
		reasons := map[string]int{}
		for i, q := range qs {
			// A refusal is counted once a query, whichever boundings it applies to.
			refused := false
			refuse := func(why string) {
				if !refused {
					reasons[why]++
				}
				refused = true
			}
			for _, m := range methods {
				if m == query.PerGroup && i%2 == 1 {
					// per_group applies to every query: every other one is compared under it,
					// which keeps the cluster's work (a Spark job per statement) in bounds.
					continue
				}
				duck, sp, stage, err := query.CrossTotals(ctx, e, q, allow, m)
				switch stage {
				case "":
				case query.StageNotApplied:
					continue
				case query.StageCheck, query.StagePrepare:
					// Refused (or not bound) whatever the engine: the property tests' business.
					refuse(stage)
					continue
				case query.StageDialect:
					// Refused on Spark before the charge, with a message that says why.
					msg := err.Error()
					if i := strings.Index(msg, ": "); i > 0 && strings.HasPrefix(msg, "the Spark engine cannot run this query") {
						msg = msg[i+2:]
					}
					if len(msg) > 40 {
						msg = msg[:40]
					}
					refuse(msg)
					continue
				case query.StageBothRun:
					// A data-independent failure (the property tests check which) on both.
					refuse(stage)
					continue
				default:
					t.Errorf("%s\nunder %s: %s: %v", q, m, stage, err)
					continue
				}
				compared[m]++
				if strings.Contains(q, " JOIN ") {
					joins[m]++
				}
				groups += len(duck)
				if d := cmp.Diff(duck, sp); d != "" {
					stmts, _ := query.BackendSQL(ctx, e, q, allow, m)
					t.Errorf("%s\nunder %s: Spark's exact totals differ from DuckDB's (-duckdb +spark):\n%s\nSpark SQL: %s", q, m, d, strings.Join(stmts, "\n"))
				}
			}
		}
		t.Logf("generated: %d queries; compared equal on both engines (%d groups): person_rank %d (%d joins), per_group %d (%d joins); refusals: %v",
			len(qs), groups, compared[query.PersonRank], joins[query.PersonRank], compared[query.PerGroup], joins[query.PerGroup], reasons)
		if compared[query.PersonRank] < 40 || compared[query.PerGroup] < 60 || joins[query.PersonRank] < 10 || joins[query.PerGroup] < 10 {
			t.Errorf("too few generated queries compared: %v, joins %v", compared, joins)
		}
	})
}
