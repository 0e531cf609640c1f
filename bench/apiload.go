package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/pseudonymize"
)

// APIServer is a Velo server on loopback over a synthetic extract, with one researcher
// and one project ("wl") whose budget covers any load below.
type APIServer struct {
	*apitest.Server
	Token string // the researcher's
	Data  string // the ingested dataset's directory
}

// StartAPIServer generates persons synthetic people under dir, ingests their bookings,
// and serves them on 127.0.0.1 with the given limits until Close.
func StartAPIServer(ctx context.Context, dir string, persons int, limits notebooksapi.Limits) (*APIServer, error) {
	key, err := pseudonymize.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	data, err := apitest.MakeDataset(ctx, dir, persons, 3, key)
	if err != nil {
		return nil, err
	}
	return ServeAPI(ctx, dir, data, limits)
}

// ServeAPI starts the load test's server over the dataset data (written by velo ingest, read
// only), its ledger under dir.
func ServeAPI(ctx context.Context, dir, data string, limits notebooksapi.Limits) (*APIServer, error) {
	srv, err := apitest.Serve(ctx, data, filepath.Join(dir, "state"), apitest.Config{
		Projects: []ledger.Project{{ID: "wl", Purpose: "load test", LegalBasis: "none: synthetic data",
			Allow: map[string][]string{"booking": {}}, EpsilonBudget: 1000, DeltaBudget: 1e-3, DefaultEpsilon: 0.01}},
		Users:       []notebooksapi.User{{Name: "loadtest", Role: notebooksapi.RoleResearcher, Projects: []string{"wl"}}},
		Limits:      limits,
		QueryLimits: limits.QueryLimits(),
	})
	if err != nil {
		return nil, err
	}
	return &APIServer{Server: srv, Token: srv.Tokens["loadtest"], Data: data}, nil
}

// Phase is what one phase of a load run saw.
type Phase struct {
	Name        string
	Requests    int
	Concurrency int
	Status      map[int]int     // by HTTP status
	Codes       map[string]int  // problem codes of refusals
	Latencies   []time.Duration // of every request, sorted
	Wall        time.Duration
	// CPU is the process's CPU time over the phase (server, clients and DuckDB: one
	// process), 0 where the system does not say.
	CPU        time.Duration
	Unexpected []string // anything but 200 with the expected release, or a 429 problem
}

// Percentile is the p-th percentile latency (nearest rank).
func (p Phase) Percentile(q float64) time.Duration {
	if len(p.Latencies) == 0 {
		return 0
	}
	i := int(q/100*float64(len(p.Latencies))+0.5) - 1
	return p.Latencies[min(max(i, 0), len(p.Latencies)-1)]
}

// Throughput is requests per second over the phase's wall time.
func (p Phase) Throughput() float64 { return float64(p.Requests) / p.Wall.Seconds() }

// CPUPerRequest is the process's CPU time over the phase divided by its requests.
func (p Phase) CPUPerRequest() time.Duration {
	if p.Requests == 0 {
		return 0
	}
	return p.CPU / time.Duration(p.Requests)
}

func (p Phase) String() string {
	return fmt.Sprintf("%-34s %6d req, %3d at once: p50 %7s  p90 %7s  p99 %7s  max %7s  %7.0f req/s  CPU %s/req  status %v",
		p.Name, p.Requests, p.Concurrency, ms(p.Percentile(50)), ms(p.Percentile(90)), ms(p.Percentile(99)), ms(p.Percentile(100)), p.Throughput(), ms(p.CPUPerRequest()), p.Status)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}

// LoadConfig sizes a load run.
type LoadConfig struct {
	Cached            int // cached-release requests (the same query)
	CachedConcurrency int // clients sending them
	// CachedRate, when > 0, paces the cached requests at this many per second in all
	// (open loop: a dashboard's users, not clients that send again the moment they are
	// answered); a request's latency then runs from the moment it was due, so time spent
	// waiting for a free client counts. 0: each client sends its next request as soon as
	// it has the answer (closed loop).
	CachedRate   float64
	Fresh        int     // distinct queries, all sent at once
	FreshEpsilon float64 // each fresh query's epsilon
	// PlainThreads, when > 0, also runs the fresh phase's queries (as SQL, with other
	// literals) one after another in plain DuckDB on the same Parquet with that many
	// threads: the floor the fresh phase's throughput is compared with.
	PlainThreads int
}

// LoadReport is a load run's phases and the budget check.
type LoadReport struct {
	Cached, Fresh Phase
	Plain         Phase // the fresh queries in plain DuckDB, one after another (PlainThreads)
	// Charged is the number of charges in the ledger; SpentWant the epsilon the answered
	// queries declared (exact decimal sum) and SpentGot what the project shows spent.
	Charged             int
	SpentWant, SpentGot string
	Verified            bool
}

// The query the cached phase repeats, and the fresh phase varies: a condition no booking
// fails, with a literal that makes each query distinct to the release cache.
const (
	loadSQL      = "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share, COUNT(*) AS n FROM booking WHERE first_access GROUP BY region, priority"
	loadFreshSQL = "SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share, COUNT(*) AS n FROM booking WHERE first_access AND (wait_days IS NULL OR wait_days >= %d) GROUP BY region, priority"
)

// RunLoad primes one release, sends cfg.Cached requests for it, then cfg.Fresh distinct
// queries at once, and checks the ledger: every 200 charged exactly once, nothing else
// charged, the chain verified.
func RunLoad(ctx context.Context, s *APIServer, cfg LoadConfig) (LoadReport, error) {
	var rep LoadReport
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: max(cfg.CachedConcurrency, cfg.Fresh)}}
	send := func(body string) (int, []byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/queries", strings.NewReader(body))
		if err != nil {
			return 0, nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+s.Token)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b, time.Since(start), err
	}
	body := func(sql string, eps float64) string {
		b, _ := json.Marshal(map[string]any{"sql": sql, "project": "wl", "epsilon": eps})
		return string(b)
	}
	primeBody := body(loadSQL, cfg.FreshEpsilon)
	status, b, _, err := send(primeBody)
	if err != nil || status != 200 {
		return rep, fmt.Errorf("prime: %d %s %v", status, b, err)
	}
	answered := []float64{cfg.FreshEpsilon}

	name, interval := "cached release", time.Duration(0)
	if cfg.CachedRate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.CachedRate)
		name = fmt.Sprintf("cached release at %g/s", cfg.CachedRate)
	}
	rep.Cached = runPhase(ctx, name, cfg.Cached, cfg.CachedConcurrency, interval, func(int) (int, []byte, time.Duration, error) { return send(primeBody) }, true)
	salt := randomInt()
	rep.Fresh = runPhase(ctx, "fresh queries", cfg.Fresh, cfg.Fresh, 0, func(i int) (int, []byte, time.Duration, error) {
		return send(body(fmt.Sprintf(loadFreshSQL, -1_000_000-salt-i), cfg.FreshEpsilon))
	}, false)
	for range rep.Fresh.Status[200] {
		answered = append(answered, cfg.FreshEpsilon)
	}
	if cfg.PlainThreads > 0 {
		if rep.Plain, err = plainPhase(ctx, s.Data, cfg.PlainThreads, cfg.Fresh, randomInt()); err != nil {
			return rep, err
		}
	}
	rep.SpentWant = decimalSum(answered)
	st, err := s.Ledger.Project("wl")
	if err != nil {
		return rep, err
	}
	rep.SpentGot = strconv.FormatFloat(st.Spent.Epsilon, 'g', -1, 64)
	rep.Charged = st.Queries
	vr, err := ledger.Verify(s.State, ledger.VerifyOptions{})
	rep.Verified = err == nil && vr.Kinds[ledger.KindCharge] == len(answered) && vr.Kinds[ledger.KindRefund] == 0
	return rep, nil
}

// runPhase sends n requests from concurrency clients: each as soon as a client is free, or,
// with interval > 0, the i-th due at start + i×interval (its latency counted from then).
func runPhase(ctx context.Context, name string, n, concurrency int, interval time.Duration, send func(i int) (int, []byte, time.Duration, error), wantCached bool) Phase {
	p := Phase{Name: name, Requests: n, Concurrency: concurrency, Status: map[int]int{}, Codes: map[string]int{}}
	var mu sync.Mutex
	type job struct {
		i   int
		due time.Time
	}
	next := make(chan job, n)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				i := j.i
				status, b, d, err := send(i)
				if interval > 0 {
					d = time.Since(j.due)
				}
				mu.Lock()
				p.Latencies = append(p.Latencies, d)
				switch {
				case err != nil:
					p.Unexpected = append(p.Unexpected, err.Error())
				case status == 200:
					var rel struct {
						Cached bool    `json:"cached"`
						Rows   [][]any `json:"rows"`
					}
					if json.Unmarshal(b, &rel) != nil || rel.Cached != wantCached || len(rel.Rows) != 21*4 {
						p.Unexpected = append(p.Unexpected, fmt.Sprintf("200 with cached=%v and %d rows", rel.Cached, len(rel.Rows)))
					}
				case status == 429:
					var pr notebooksapi.Problem
					if json.Unmarshal(b, &pr) != nil || pr.Code != notebooksapi.CodeTooManyQueries {
						p.Unexpected = append(p.Unexpected, "429 without the too_many_queries problem")
					}
					p.Codes[pr.Code]++
				default:
					var pr notebooksapi.Problem
					_ = json.Unmarshal(b, &pr)
					p.Codes[pr.Code]++
					p.Unexpected = append(p.Unexpected, fmt.Sprintf("%d %s: %s", status, pr.Code, pr.Detail))
				}
				p.Status[status]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		due := time.Now()
		if interval > 0 {
			due = start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(due))
		}
		next <- job{i, due}
	}
	close(next)
	wg.Wait()
	p.Wall = time.Since(start)
	p.CPU = processCPU() - cpu0
	slices.Sort(p.Latencies)
	return p
}

// plainPhase runs n of the fresh phase's queries, one after another, in plain DuckDB over
// the same Parquet, reading every row.
func plainPhase(ctx context.Context, data string, threads, n, salt int) (Phase, error) {
	p := Phase{Name: "plain DuckDB, one after another", Requests: n, Concurrency: 1, Status: map[int]int{}, Codes: map[string]int{}}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return p, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the settings and the view live in the one connection
	for _, q := range []string{
		fmt.Sprintf("SET threads = %d", threads),
		"SET memory_limit = '2GB'",
		fmt.Sprintf("CREATE VIEW booking AS SELECT * FROM read_parquet('%s')", dataset.TableGlob(data, "booking")),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return p, fmt.Errorf("%s: %w", q, err)
		}
	}
	run := func(q string) (int, error) {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var region, priority string
		var share sql.NullFloat64
		var count int64
		k := 0
		for rows.Next() {
			if err := rows.Scan(&region, &priority, &share, &count); err != nil {
				return k, err
			}
			k++
		}
		return k, rows.Err()
	}
	if _, err := run(fmt.Sprintf(loadFreshSQL, -1_000_000)); err != nil { // warm-up
		return p, err
	}
	cpu0 := processCPU()
	start := time.Now()
	for i := range n {
		t := time.Now()
		k, err := run(fmt.Sprintf(loadFreshSQL, -1_000_000-salt-i))
		p.Latencies = append(p.Latencies, time.Since(t))
		if err != nil {
			return p, err
		}
		if k == 0 {
			p.Unexpected = append(p.Unexpected, "no rows")
		}
		p.Status[200]++
	}
	p.Wall = time.Since(start)
	p.CPU = processCPU() - cpu0
	slices.Sort(p.Latencies)
	return p, nil
}

func randomInt() int {
	var b [3]byte
	_, _ = rand.Read(b[:])
	n, _ := strconv.ParseInt(hex.EncodeToString(b[:]), 16, 64)
	return int(n) * 1000
}

// decimalSum adds amounts as the decimals they print as (the ledger's fixed point does
// the same), so the expected spend is exact.
func decimalSum(fs []float64) string {
	sum := new(big.Rat)
	for _, f := range fs {
		r, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
		sum.Add(sum, r)
	}
	f, _ := sum.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
