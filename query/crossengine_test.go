package query_test

import (
	"context"
	"errors"
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

	t.Run("suite", func(t *testing.T) {
		e := open(query.SynthDataset(t))
		allow := map[string][]string{"booking": nil}
		var ran, refused []string
		seen := map[string]bool{}
		for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
			if q.Full || seen[q.ID] {
				continue // person and lab_result: not in the booking-only extract
			}
			seen[q.ID] = true
			duck, sp, stage, err := query.CrossTotals(ctx, e, q.SQL(), allow)
			if err != nil {
				var qe *query.Error
				if stage != query.StageDialect || !errors.As(err, &qe) || !strings.Contains(qe.Msg, "person_rank") {
					t.Errorf("%s: %s: %v", q.ID, stage, err)
				}
				refused = append(refused, q.ID)
				continue
			}
			ran = append(ran, q.ID)
			if len(duck) == 0 {
				t.Errorf("%s: no group on DuckDB: nothing compared", q.ID)
			}
			if d := cmp.Diff(duck, sp); d != "" {
				stmts, _ := query.BackendSQL(ctx, e, q.SQL(), allow)
				t.Errorf("%s: Spark's exact totals differ from DuckDB's (-duckdb +spark):\n%s\nSpark SQL: %s", q.ID, d, strings.Join(stmts, "\n"))
			}
		}
		t.Logf("suite: %d queries equal on both engines (%s); %d refused on Spark before running (%s)", len(ran), strings.Join(ran, ", "), len(refused), strings.Join(refused, ", "))
		if len(ran) < 9 {
			t.Errorf("only %d suite queries ran on Spark", len(ran))
		}
	})

	// Queries in flight at once share the backend's one Spark Connect session, as a
	// server's concurrent queries do (run it with -race).
	t.Run("concurrent", func(t *testing.T) {
		e := open(query.SynthDataset(t))
		allow := map[string][]string{"booking": nil}
		var wg sync.WaitGroup
		for _, q := range bench.Dashboard {
			if q.Full {
				continue
			}
			wg.Go(func() {
				duck, sp, stage, err := query.CrossTotals(ctx, e, q.SQL(), allow)
				switch {
				case stage == query.StageDialect:
				case err != nil:
					t.Errorf("%s: %s: %v", q.ID, stage, err)
				case !cmp.Equal(duck, sp):
					t.Errorf("%s: Spark's exact totals differ from DuckDB's when run concurrently", q.ID)
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
		compared, groups := 0, 0
		reasons := map[string]int{}
		for _, q := range qs {
			duck, sp, stage, err := query.CrossTotals(ctx, e, q, allow)
			switch stage {
			case "":
			case query.StageCheck, query.StagePrepare:
				// Refused (or not bound) whatever the engine: the property tests' business.
				reasons[stage]++
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
				reasons[msg]++
				continue
			case query.StageBothRun:
				// A data-independent failure (the property tests check which) on both.
				reasons[stage]++
				continue
			default:
				t.Errorf("%s\n%s: %v", q, stage, err)
				continue
			}
			compared++
			groups += len(duck)
			if d := cmp.Diff(duck, sp); d != "" {
				stmts, _ := query.BackendSQL(ctx, e, q, allow)
				t.Errorf("%s\nSpark's exact totals differ from DuckDB's (-duckdb +spark):\n%s\nSpark SQL: %s", q, d, strings.Join(stmts, "\n"))
			}
		}
		t.Logf("generated: %d of %d queries compared (%d groups) equal on both engines; refusals: %v", compared, len(qs), groups, reasons)
		if compared < 40 {
			t.Errorf("only %d generated queries compared", compared)
		}
	})
}
