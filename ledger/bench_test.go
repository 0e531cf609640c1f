package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

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
