package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
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

// BenchmarkAPI sends POST /v1/queries over loopback from many clients at once (2,000
// people): "cached" repeats one query whose release is in the ledger's cache; "fresh"
// sends a distinct query each time (charged and run). For profiles of the per-query fixed
// costs:
//
//	go test -run '^$' -bench API -benchtime 2000x -cpuprofile cpu.out ./bench
func BenchmarkAPI(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a dataset")
	}
	ctx := context.Background()
	srv, err := bench.StartAPIServer(ctx, b.TempDir(), 2000, notebooksapi.Limits{MaxConcurrentQueries: 8, QueueTimeout: time.Hour, MemoryLimit: "1GB"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	send := func(sql string) error {
		body, _ := json.Marshal(map[string]any{"sql": sql, "project": "wl", "epsilon": 0.001})
		req, _ := http.NewRequest("POST", srv.URL+"/v1/queries", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	}
	const cachedSQL = "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share, COUNT(*) AS n FROM booking WHERE first_access GROUP BY region, priority"
	if err := send(cachedSQL); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	for _, bm := range []struct {
		name string
		sql  func() string
	}{
		{"cached", func() string { return cachedSQL }},
		{"fresh", func() string {
			return fmt.Sprintf("SELECT region, COUNT(*) AS n FROM booking WHERE wait_days IS NULL OR wait_days >= %d GROUP BY region", -1_000_000-next.Add(1))
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetParallelism(100) // 200 clients on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := send(bm.sql()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
