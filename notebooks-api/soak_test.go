package notebooksapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

// Tolerances of TestSustainedMixedLoad. The ledger keeps every entry in memory by design (the
// DPO's page, the release cache), so the heap may grow by what the ledger grows by; anything
// beyond that is a leak.
const (
	soakHeapFactor  = 1.5     // live heap at the end <= this × after warm-up ...
	soakLedgerBytes = 2       // ... + this × the ledger file's growth meanwhile
	soakHeapSlack   = 2 << 20 // ... + this, for short runs whose warm-up heap is tiny
)

// TestSustainedMixedLoad runs a real server on loopback under a mix of requests from 16
// clients for VELO_LOAD_DURATION (default 60s; 3s with -short): fresh queries, queries
// answered from the release cache, dry runs, the catalog, budget reads, and refused queries
// (a project the user is not in, rejected SQL, epsilon over the cap). It checks:
//
//   - every answer is the expected one (no 5xx; 429 only when the query slots are full);
//   - no budget drift: the ledger's spend, the sum of its charges and the sum of the fresh
//     releases' epsilons are equal exactly, in the ledger's fixed-point units (each release
//     states exactly the epsilon charged for it), and every fresh release is one charge;
//   - memory is flat: the live heap after GC at the end is within soakHeapFactor of the one
//     after warm-up, plus soakLedgerBytes per byte the ledger grew (the ledger holds its
//     entries in memory by design), plus soakHeapSlack;
//   - no goroutine leak: after shutdown the count is back to the baseline (waited for, with
//     a deadline).
func TestSustainedMixedLoad(t *testing.T) {
	duration := 60 * time.Second
	if testing.Short() {
		duration = 3 * time.Second
	}
	if s := os.Getenv("VELO_LOAD_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("VELO_LOAD_DURATION: %v", err)
		}
		duration = d
	}
	data := apitest.Dataset(t)
	state := filepath.Join(t.TempDir(), "state")
	runtime.GC()
	baseline := runtime.NumGoroutine()

	srv, err := apitest.Serve(context.Background(), data, state, apitest.Config{
		Projects: []ledger.Project{
			{ID: "load", Purpose: "load test", LegalBasis: "none: synthetic data", Allow: map[string][]string{"booking": {}},
				EpsilonBudget: 1000, DefaultEpsilon: 0.01, MaxEpsilonPerQuery: 2},
			{ID: "other", Purpose: "not rita's", LegalBasis: "none: synthetic data", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 1},
		},
		Users: []notebooksapi.User{
			{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{"load"}},
			{Name: "grafana", Role: notebooksapi.RoleOfficial, Projects: []string{"load"}},
		},
		Limits: notebooksapi.Limits{MaxConcurrentQueries: 4, QueueTimeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Close()
		}
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	const clients = 16
	const fresh = "SELECT region, COUNT(*) AS n, AVG(wait_days) AS w FROM booking WHERE wait_days IS NULL OR wait_days >= -1000000-%d GROUP BY region"
	cachedSQL := []string{
		"SELECT region, COUNT(*) AS n FROM booking GROUP BY region",
		"SELECT priority, COUNT(*) AS n FROM booking GROUP BY priority",
		"SELECT region, AVG(CAST(within_target AS INTEGER)) AS share FROM booking WHERE first_access GROUP BY region",
	}
	type op struct {
		name   string
		weight int
		user   string
		method string
		path   string
		body   func(k int64) any
		want   int
	}
	ops := []op{
		{"fresh query", 30, "rita", "POST", "/v1/queries", func(k int64) any {
			return map[string]any{"project": "load", "sql": fmt.Sprintf(fresh, k), "epsilon": 0.01 + float64(k%7)*0.001}
		}, 200},
		{"cached query", 25, "grafana", "POST", "/v1/queries", func(k int64) any {
			return map[string]any{"project": "load", "sql": cachedSQL[k%int64(len(cachedSQL))], "epsilon": 0.05}
		}, 200},
		{"dry run", 10, "rita", "POST", "/v1/queries", func(k int64) any {
			return map[string]any{"project": "load", "sql": fmt.Sprintf(fresh, k), "dry_run": true}
		}, 200},
		{"catalog", 10, "rita", "GET", "/v1/catalog", nil, 200},
		{"budget", 10, "grafana", "GET", "/v1/projects/load", nil, 200},
		{"not a member", 5, "rita", "POST", "/v1/queries", func(int64) any {
			return map[string]any{"project": "other", "sql": cachedSQL[0]}
		}, 403},
		{"rejected sql", 5, "rita", "POST", "/v1/queries", func(int64) any {
			return map[string]any{"project": "load", "sql": "SELECT pid FROM booking"}
		}, 400},
		{"over the cap", 5, "rita", "POST", "/v1/queries", func(k int64) any {
			return map[string]any{"project": "load", "sql": fmt.Sprintf(fresh, k), "epsilon": 5}
		}, 400},
	}
	var total int
	for _, o := range ops {
		total += o.weight
	}
	// Warm the cache: the cached queries are charged once, here.
	var freshUnits atomic.Int64 // epsilon of fresh releases received, in ledger units
	var freshN atomic.Int64
	for _, q := range cachedSQL {
		status, b, err := soakDo(client, srv, "POST", "/v1/queries", "grafana", map[string]any{"project": "load", "sql": q, "epsilon": 0.05})
		if err != nil || status != 200 {
			t.Fatalf("warm %q: %d %v %s", q, status, err, b)
		}
		freshUnits.Add(units(0.05))
		freshN.Add(1)
	}

	var (
		mu       sync.Mutex
		counts   = map[string]map[int]int{}
		lat      []time.Duration
		served   atomic.Int64
		counter  atomic.Int64
		failures []string
	)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	warmUntil := time.Now().Add(duration / 10)
	var warmOnce sync.Once
	var heapWarm uint64
	var ledgerWarm int64
	warmed := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for ctx.Err() == nil {
				if time.Now().After(warmUntil) {
					warmOnce.Do(func() {
						runtime.GC()
						heapWarm = liveHeap()
						ledgerWarm = fileSize(t, filepath.Join(state, "ledger"))
						close(warmed)
					})
				}
				r := rng.IntN(total)
				var o op
				for _, o = range ops {
					if r < o.weight {
						break
					}
					r -= o.weight
				}
				k := counter.Add(1)
				var body any
				if o.body != nil {
					body = o.body(k)
				}
				start := time.Now()
				status, b, err := soakDo(client, srv, o.method, o.path, o.user, body)
				d := time.Since(start)
				served.Add(1)
				mu.Lock()
				if counts[o.name] == nil {
					counts[o.name] = map[int]int{}
				}
				counts[o.name][status]++
				lat = append(lat, d)
				mu.Unlock()
				if err != nil || (status != o.want && status != http.StatusTooManyRequests) || (status == 429 && o.path != "/v1/queries") {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %d %v %.200s", o.name, status, err, b))
					mu.Unlock()
					continue
				}
				if status != 200 || o.path != "/v1/queries" {
					continue
				}
				var rel struct {
					Cached  bool    `json:"cached"`
					DryRun  bool    `json:"dry_run"`
					Epsilon float64 `json:"epsilon"`
				}
				if err := json.Unmarshal(b, &rel); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", o.name, err))
					mu.Unlock()
					continue
				}
				switch {
				case o.name == "fresh query" && !rel.Cached && !rel.DryRun:
					if !exactUnits(rel.Epsilon) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: epsilon %v released is not what the ledger charges", o.name, rel.Epsilon))
						mu.Unlock()
					}
					freshUnits.Add(units(rel.Epsilon))
					freshN.Add(1)
				case o.name == "cached query" && rel.Cached, o.name == "dry run" && rel.DryRun:
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: cached %v, dry run %v", o.name, rel.Cached, rel.DryRun))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-warmed:
	default:
		t.Fatal("the load ended before its warm-up")
	}
	if len(failures) > 0 {
		t.Fatalf("%d unexpected answers, first: %v", len(failures), failures[:min(5, len(failures))])
	}

	// Budget: ledger spend == its charges == the fresh releases received, exactly.
	st, err := srv.Ledger.Project("load")
	if err != nil {
		t.Fatal(err)
	}
	var chargeUnits, charges int64
	for _, e := range srv.Ledger.Entries("load", 0) {
		switch e.Kind {
		case ledger.KindCharge:
			chargeUnits += units(e.Epsilon)
			charges++
		case ledger.KindRefund:
			chargeUnits -= units(e.Epsilon)
			charges--
		}
	}
	if units(st.Spent.Epsilon) != chargeUnits || chargeUnits != freshUnits.Load() || charges != freshN.Load() || int64(st.Queries) != charges {
		t.Errorf("budget drift: ledger spent %d units over %d queries; charges %d units over %d; fresh releases received %d units over %d",
			units(st.Spent.Epsilon), st.Queries, chargeUnits, charges, freshUnits.Load(), freshN.Load())
	}
	if o, _ := srv.Ledger.Project("other"); o.Queries != 0 {
		t.Errorf("refused queries were charged to other: %d", o.Queries)
	}

	// Memory: live heap after GC, at the end against after warm-up.
	runtime.GC()
	heapEnd := liveHeap()
	ledgerEnd := fileSize(t, filepath.Join(state, "ledger"))
	allowed := uint64(float64(heapWarm)*soakHeapFactor) + uint64(soakLedgerBytes*(ledgerEnd-ledgerWarm)) + soakHeapSlack
	if heapEnd > allowed {
		t.Errorf("live heap grew from %s after warm-up to %s at the end, above %s (%.1f × + %d × the ledger's growth of %s + %s)",
			mib(heapWarm), mib(heapEnd), mib(allowed), soakHeapFactor, soakLedgerBytes, mib(uint64(ledgerEnd-ledgerWarm)), mib(soakHeapSlack))
	}

	// Shutdown: every goroutine the server and the clients started ends.
	if err := srv.Close(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped = true
	tr.CloseIdleConnections()
	goroutines := waitGoroutines(baseline, 30*time.Second)
	if goroutines > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 30s after shutdown, %d before the server started:\n%s", goroutines, baseline, buf[:runtime.Stack(buf, true)])
	}
	if _, err := ledger.Verify(state, ledger.VerifyOptions{}); err != nil {
		t.Errorf("verify after the load: %v", err)
	}

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Microsecond) }
	t.Logf("%v with %d clients: %d requests (%.0f/s), latency p50 %v p99 %v max %v", duration, clients, served.Load(),
		float64(served.Load())/duration.Seconds(), pct(0.5), pct(0.99), lat[len(lat)-1].Round(time.Millisecond))
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("  %-13s %v", n, counts[n])
	}
	t.Logf("budget: %d fresh releases, %d charges, spent %.3f (%d units) = sum of charges = sum of fresh releases' epsilons",
		freshN.Load(), charges, st.Spent.Epsilon, chargeUnits)
	t.Logf("heap: %s after warm-up, %s at the end (limit %s); ledger %s -> %s; goroutines: %d before, %d after shutdown",
		mib(heapWarm), mib(heapEnd), mib(allowed), mib(uint64(ledgerWarm)), mib(uint64(ledgerEnd)), baseline, goroutines)
}

// soakDo sends a request as user and returns the status and body; it never fails the test (the
// load's goroutines call it).
func soakDo(c *http.Client, srv *apitest.Server, method, path, user string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+srv.Tokens[user])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// units is an epsilon in the ledger's fixed-point units (1e-12). The ledger charges whole
// units, and a release states exactly what was charged (ledger.Charged: 0.01+0.003 asked, the
// float 0.013000000000000001, is released and charged as 0.013000000001), so for every
// amount the test reads the conversion is exact; exactUnits checks that it is.
func units(eps float64) int64 { return int64(math.Round(eps * 1e12)) }

// exactUnits reports whether eps is a whole number of the ledger's units, as the ledger
// reads them back.
func exactUnits(eps float64) bool { return float64(units(eps))/1e12 == eps }

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return 0
	}
	return fi.Size()
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// waitGoroutines waits until at most want goroutines run, or the deadline passes, and
// returns the last count. It waits on the count itself, checking at each tick.
func waitGoroutines(want int, timeout time.Duration) int {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return runtime.NumGoroutine()
		}
	}
}
