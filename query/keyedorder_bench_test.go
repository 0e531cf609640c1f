package query_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/query"
)

// BenchmarkKeyedOrder times the per_group bounding of each bench suite query on the
// embedded DuckDB with DuckDB's keyed hash() and with the portable order Spark computes
// too (md5 of canonical strings, ties broken by the values), on the dataset in
// VELO_ORDER_BENCH_DATA (a full extract, e.g. bench.EnsureDataset's full-PERSONS) or the
// package's 1500-person full extract (docs/scale.md#the-keyed-row-order).
//
//	VELO_ORDER_BENCH_DATA=~/.cache/velo-bench/full-400000 go test ./query -run '^$' -bench KeyedOrder -benchtime 5x
func BenchmarkKeyedOrder(b *testing.B) {
	ctx := context.Background()
	data := os.Getenv("VELO_ORDER_BENCH_DATA")
	if data == "" {
		data = query.FullDataset(b)
	}
	e, err := query.Open(ctx, query.Config{DataDir: data, Limits: query.Limits{Threads: 2, MemoryLimit: "4GB"}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	allow := map[string][]string{"booking": nil, "person": nil, "lab_result": nil}
	seen := map[string]bool{}
	for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
		if seen[q.ID] {
			continue
		}
		seen[q.ID] = true
		for _, portable := range []bool{false, true} {
			run, err := query.PerGroupRunner(ctx, e, q.SQL(), allow, portable)
			if err != nil {
				b.Fatalf("%s: %v", q.ID, err)
			}
			name := q.ID + "/hash"
			if portable {
				name = q.ID + "/portable"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
