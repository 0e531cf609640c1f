package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/velo-fse/velo/bench"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// TestLoad is the API load test on loopback: 1,000 requests for a cached release from 16
// clients, then 100 distinct fresh queries sent at once to a server that runs 8 at a
// time. Only 200 and the documented 429 may come back, every answered query is charged
// exactly once, and the ledger verifies. Bounded: 10 minutes at most. The latency
// percentiles are logged (go test -v -run TestLoad ./bench) and recorded in bench/README.md.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; go test -run TestLoad ./bench runs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := bench.StartAPIServer(ctx, t.TempDir(), 2000, notebooksapi.Limits{MaxConcurrentQueries: 8, QueueTimeout: 2 * time.Second, MemoryLimit: "1GB"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	rep, err := bench.RunLoad(ctx, srv, bench.LoadConfig{Cached: 1000, CachedConcurrency: 16, Fresh: 100, FreshEpsilon: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []bench.Phase{rep.Cached, rep.Fresh} {
		t.Log(p)
		if len(p.Unexpected) > 0 {
			t.Errorf("%s: %d unexpected answers, e.g. %s", p.Name, len(p.Unexpected), p.Unexpected[0])
		}
		if n := p.Status[200] + p.Status[429]; n != p.Requests {
			t.Errorf("%s: %d of %d answered 200 or 429: %v", p.Name, n, p.Requests, p.Status)
		}
	}
	if rep.SpentGot != rep.SpentWant || rep.Charged != 1+rep.Fresh.Status[200] || !rep.Verified {
		t.Errorf("budget: spent %s, want %s; %d charges for %d answered fresh queries + 1; verified %v", rep.SpentGot, rep.SpentWant, rep.Charged, rep.Fresh.Status[200], rep.Verified)
	}
	t.Logf("budget exact: epsilon %s spent for %d charges; ledger verified", rep.SpentGot, rep.Charged)
}
