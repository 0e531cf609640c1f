package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/velo-fse/velo/internal/pgtest"
	"github.com/velo-fse/velo/ledger"
)

// BenchmarkConcurrentAppends: N goroutines each charging a distinct query and releasing it
// (two appends per query) on a real file with real fsyncs. It reports appends/s; with group
// commit, concurrent appenders share fsyncs, so appends/s grows with N.
//
//	go test -run '^$' -bench ConcurrentAppends -benchtime 2000x ./ledger
func BenchmarkConcurrentAppends(b *testing.B) {
	for _, n := range []int{1, 16, 200} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			l, err := ledger.Open(dir, ledger.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if err := l.CreateProject(context.Background(), "dpo", project("wl", 1e5, 0)); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range n {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						c, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT count(*) FROM bookings WHERE x = %d", i), 0.001, 0))
						if err != nil {
							b.Error(err)
							return
						}
						if err := l.Release(context.Background(), c, []byte(`{"rows":[[1]]}`)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkPGAppends: the same load on the PostgreSQL ledger (a private server from
// internal/pgtest, fsync on): N goroutines spread over R replicas (R *PG on one database),
// each charging a distinct query and releasing it. Appends are serialised across replicas
// by the advisory lock; a replica's concurrent appends share a transaction (group commit),
// so appends/s grows with the appenders per replica.
//
//	go test -run '^$' -bench PGAppends -benchtime 1000x ./ledger
func BenchmarkPGAppends(b *testing.B) {
	srv := pgtest.Start(b)
	var dbs atomic.Int64 // a new database for every run (-count, b.N rounds)
	for _, c := range []struct{ replicas, appenders int }{{1, 1}, {1, 16}, {1, 200}, {3, 48}} {
		b.Run(fmt.Sprintf("replicas=%d/appenders=%d", c.replicas, c.appenders), func(b *testing.B) {
			dsn := srv.NewDatabase(b, fmt.Sprintf("bench_%d", dbs.Add(1)))
			key := filepath.Join(b.TempDir(), "checkpoint.key")
			reps := make([]*ledger.PG, c.replicas)
			for i := range reps {
				l, err := ledger.OpenPostgres(context.Background(), dsn, ledger.Options{KeyFile: key})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				reps[i] = l
			}
			if err := reps[0].CreateProject(context.Background(), "dpo", project("wl", 1e5, 0)); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range c.appenders {
				l := reps[g%c.replicas]
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						ch, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT count(*) FROM bookings WHERE x = %d", i), 0.001, 0))
						if err != nil {
							b.Error(err)
							return
						}
						if err := l.Release(context.Background(), ch, []byte(`{"rows":[[1]]}`)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
