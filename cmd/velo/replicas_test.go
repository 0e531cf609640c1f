package main

// The acceptance tests of the PostgreSQL ledger: three velo serve replicas (the real
// binary, real processes) behind one loopback address, over one ledger in a private
// PostgreSQL server (internal/pgtest).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/pgtest"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

// budget37 allows exactly 37 queries of epsilon 1.
var budget37 = ledger.Project{
	ID: "wl", Purpose: "replica tests", LegalBasis: "none: synthetic data", Approver: "dpo",
	Allow: map[string][]string{"booking": {}}, EpsilonBudget: 37, DefaultEpsilon: 1, MaxEpsilonPerQuery: 1,
}

// replicaEnv is three replicas' configuration: one PostgreSQL ledger holding budget37, the
// shared checkpoint key, a config file naming the ledger.
type replicaEnv struct {
	*opsEnv
	pg  *pgtest.Server
	dsn string
}

func newReplicaEnv(t *testing.T) *replicaEnv {
	t.Helper()
	pg := pgtest.Start(t)
	env := &replicaEnv{pg: pg, dsn: pg.NewDatabase(t, "velo")}
	dir := t.TempDir()
	env.opsEnv = &opsEnv{cfgPath: filepath.Join(dir, "velo.yaml"), state: filepath.Join(dir, "state"), tokens: map[string]string{}}
	l, err := ledger.OpenPostgres(context.Background(), env.dsn, ledger.Options{KeyFile: filepath.Join(env.state, "checkpoint.key")})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateProject(context.Background(), "setup", budget37); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := notebooksapi.Config{
		Data: apitest.Dataset(t), State: env.state, Ledger: env.dsn,
		// No 429s: every query waits for a slot as long as it takes, so every refusal is
		// the budget's.
		Limits: notebooksapi.Limits{MaxConcurrentQueries: 4, Threads: 1, MemoryLimit: "256MB", QueueTimeout: 10 * time.Minute},
	}
	for _, u := range []notebooksapi.User{
		{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{budget37.ID}},
		{Name: "dora", Role: notebooksapi.RoleDPO},
	} {
		tok, stored, err := notebooksapi.NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		u.Tokens = []notebooksapi.Token{stored}
		cfg.Users = append(cfg.Users, u)
		env.tokens[u.Name] = tok
	}
	if err := notebooksapi.WriteConfig(env.cfgPath, cfg, "# written by the replica tests\n"); err != nil {
		t.Fatal(err)
	}
	return env
}

// frontOf serves the replicas behind one loopback address, round robin.
func frontOf(t *testing.T, replicas []*server) string {
	t.Helper()
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(replicas))
	for i, r := range replicas {
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
		proxies[i].ErrorLog = log.New(io.Discard, "", 0) // a killed replica's 502s are counted, not logged
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[next.Add(1)%uint64(len(proxies))].ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// replicaBurst sends n different queries at once through front and sorts the answers.
// After `after` releases, onReleases (if set) runs once, while the burst goes on.
type burstResult struct {
	mu       sync.Mutex
	released []receivedRelease
	budget   int // 403 budget_exhausted
	failed   int // no answer (a replica killed) or a proxy's 502
	other    []string
}

func replicaBurst(t *testing.T, client *http.Client, front, token string, n, after int, onReleases func()) *burstResult {
	t.Helper()
	res := &burstResult{}
	var once sync.Once
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			<-start
			status, body, err := call(client, "POST", front+"/v1/queries", token,
				map[string]any{"project": budget37.ID, "sql": burstSQL(int64(k)), "epsilon": 1})
			res.mu.Lock()
			switch {
			case err != nil || status == http.StatusBadGateway:
				res.failed++
			case status == 200:
				var r receivedRelease
				if err := json.Unmarshal(body, &r); err != nil || r.ReleaseID == "" {
					res.other = append(res.other, fmt.Sprintf("a 200 that is not a release: %v %s", err, body))
				}
				res.released = append(res.released, r)
			case strings.Contains(string(body), `"budget_exhausted"`):
				res.budget++
			default:
				if len(res.other) < 5 { // the first few say enough
					res.other = append(res.other, fmt.Sprintf("%d %s", status, body))
				}
			}
			fire := onReleases != nil && len(res.released) == after
			res.mu.Unlock()
			if fire {
				once.Do(onReleases)
			}
		})
	}
	close(start)
	wg.Wait()
	return res
}

// pgAccount checks the PostgreSQL ledger against what the clients received: every release
// received is recorded, settling a charge of epsilon 1 written before it; every charge is
// settled at most once; spend is exactly the charges less the refunds. It returns the
// number of charges standing (not refunded), releases and charges without a settlement.
func pgAccount(t *testing.T, dsn string, got []receivedRelease) (standing, released, open int) {
	t.Helper()
	entries, projects, err := ledger.ReadPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	settled := map[uint64]string{}
	byID := map[string]ledger.Entry{}
	var charges, refunds int
	for _, e := range entries {
		switch e.Kind {
		case ledger.KindCharge:
			charges++
			if e.Epsilon != 1 {
				t.Fatalf("entry %d charges epsilon %v, want 1", e.Seq, e.Epsilon)
			}
		case ledger.KindRefund, ledger.KindRelease:
			if prev, ok := settled[e.ChargeSeq]; ok {
				t.Fatalf("charge %d settled twice (%s, then %s at entry %d)", e.ChargeSeq, prev, e.Kind, e.Seq)
			}
			settled[e.ChargeSeq] = e.Kind
			if e.Kind == ledger.KindRefund {
				refunds++
				continue
			}
			released++
			var r receivedRelease
			if err := json.Unmarshal(e.Release, &r); err != nil {
				t.Fatalf("entry %d: %v", e.Seq, err)
			}
			byID[r.ReleaseID] = e
		}
	}
	for _, r := range got {
		e, ok := byID[r.ReleaseID]
		if !ok {
			t.Fatalf("release %s was sent to a client but the ledger has no release entry for it", r.ReleaseID)
		}
		if c := entries[e.ChargeSeq-1]; c.Kind != ledger.KindCharge || c.Seq >= e.Seq {
			t.Fatalf("release entry %d settles entry %d, a %s", e.Seq, c.Seq, c.Kind)
		}
	}
	standing = charges - refunds
	if len(projects) != 1 || projects[0].Spent.Epsilon != float64(standing) || projects[0].Queries != standing {
		t.Fatalf("projects %+v: want %d spent by %d queries", projects, standing, standing)
	}
	return standing, released, charges - refunds - released
}

// TestServeReplicasPostgres: three velo serve replicas behind one address over one
// PostgreSQL ledger; 500 different queries at once against a budget for exactly 37:
// exactly 37 are charged and released, the other 463 refused for budget; a release made by
// one replica is served from the cache by the others, free; velo ledger verify passes
// against the database, and offline on its export; no replica logged the password.
func TestServeReplicasPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds velo and runs three replicas over PostgreSQL")
	}
	env := newReplicaEnv(t)
	replicas := make([]*server, 3)
	for i := range replicas {
		replicas[i] = startServe(t, env.opsEnv)
	}
	front := frontOf(t, replicas)
	client := newClient()
	defer client.CloseIdleConnections()

	res := replicaBurst(t, client, front, env.tokens["rita"], 500, 0, nil)
	if len(res.released) != 37 || res.budget != 463 || res.failed != 0 || len(res.other) != 0 {
		t.Fatalf("%d released, %d refused for budget, %d failed, others %q; want 37, 463, 0, none", len(res.released), res.budget, res.failed, res.other)
	}
	standing, released, open := pgAccount(t, env.dsn, res.released)
	if standing != 37 || released != 37 || open != 0 {
		t.Fatalf("ledger: %d charges standing, %d released, %d open; want 37, 37, 0", standing, released, open)
	}

	// The cache is shared: the queries released (by whichever replica) are answered by
	// each replica from the cache, at no cost, with the same release.
	k := findReleased(t, env.dsn)
	for i, r := range replicas {
		status, body, err := call(client, "POST", r.URL+"/v1/queries", env.tokens["rita"],
			map[string]any{"project": budget37.ID, "sql": burstSQL(k), "epsilon": 1})
		var got receivedRelease
		if err != nil || status != 200 || json.Unmarshal(body, &got) != nil || !got.Cached {
			t.Fatalf("replica %d: a released query again: %d %s %v; want it from the cache", i, status, body, err)
		}
	}
	if standing2, _, _ := pgAccount(t, env.dsn, res.released); standing2 != 37 {
		t.Fatalf("cached answers charged: %d standing", standing2)
	}

	// The DPO's verification through the API, on each replica, checks the database.
	for i, r := range replicas {
		status, body, err := call(client, "GET", r.URL+"/v1/ledger/verify", env.tokens["dora"], nil)
		var v struct {
			OK      bool `json:"ok"`
			Entries int  `json:"entries"`
		}
		if err != nil || status != 200 || json.Unmarshal(body, &v) != nil || !v.OK || v.Entries != 1+2*37 {
			t.Fatalf("replica %d: GET /v1/ledger/verify: %d %s %v; want ok over 75 entries", i, status, body, err)
		}
	}
	if out, err := runVelo(t, "ledger", "verify", "--ledger", env.dsn); err != nil || !strings.Contains(out, "37 charge") || !strings.Contains(out, "epsilon 37 of 37 spent") {
		t.Fatalf("velo ledger verify --ledger: %v\n%s", err, out)
	}
	export := filepath.Join(t.TempDir(), "export")
	if out, err := runVelo(t, "ledger", "export", "--ledger", env.dsn, "--format", "state", "--out", export); err != nil {
		t.Fatalf("velo ledger export --format state: %v\n%s", err, out)
	}
	if out := verifyCLI(t, export); !strings.Contains(out, "37 release") {
		t.Fatalf("offline verify of the export:\n%s", out)
	}
	for i, r := range replicas {
		if err := r.stop(t); err != nil {
			t.Fatalf("replica %d: stop: %v\n%s", i, err, r.stderr)
		}
		if strings.Contains(r.stderr.String(), env.pg.Password) || strings.Contains(r.stdout.String(), env.pg.Password) {
			t.Fatalf("replica %d logged the ledger's password:\n%s", i, r.stderr)
		}
	}
	rep, err := ledger.VerifyPostgres(context.Background(), env.dsn, ledger.VerifyOptions{})
	if err != nil || rep.Signed != uint64(rep.Entries) {
		t.Fatalf("after the replicas stopped: %+v, %v; want every entry signed", rep, err)
	}
}

// findReleased returns the burst index k of one query the ledger released.
func findReleased(t *testing.T, dsn string) int64 {
	t.Helper()
	entries, _, err := ledger.ReadPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind != ledger.KindRelease {
			continue
		}
		text := entries[e.ChargeSeq-1].Text
		for k := range int64(500) {
			if text == burstSQL(k) {
				return k
			}
		}
	}
	t.Fatal("no release of a burst query in the ledger")
	return 0
}

// TestServeReplicasPostgresKill: the same burst, and one replica killed with SIGKILL once
// the clients have received a few releases, with queries at every stage on it. No charge is
// lost: every release a client received is in the ledger, each charge is released or
// stands charged (the killed replica's queries in flight), spend is exactly the standing
// charges, the survivors spend the budget to exactly 37, and verify passes.
func TestServeReplicasPostgresKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds velo and runs three replicas over PostgreSQL")
	}
	env := newReplicaEnv(t)
	replicas := make([]*server, 3)
	for i := range replicas {
		replicas[i] = startServe(t, env.opsEnv)
	}
	front := frontOf(t, replicas)
	client := newClient()
	defer client.CloseIdleConnections()

	killed := make(chan time.Time, 1)
	res := replicaBurst(t, client, front, env.tokens["rita"], 500, 8, func() {
		replicas[1].kill()
		killed <- time.Now()
	})
	select {
	case <-killed:
	default:
		t.Fatalf("the burst ended before 8 releases: %d released, %d refused for budget, others %q", len(res.released), res.budget, res.other)
	}
	if len(res.other) != 0 {
		t.Fatalf("unexpected answers: %q", res.other)
	}
	standing, released, open := pgAccount(t, env.dsn, res.released)
	if standing != 37 || released+open != 37 || released < len(res.released) {
		t.Fatalf("ledger: %d charges standing, %d released, %d open; clients received %d releases; want 37 standing = released + open", standing, released, open, len(res.released))
	}
	out, err := runVelo(t, "ledger", "verify", "--ledger", env.dsn)
	if err != nil {
		t.Fatalf("velo ledger verify --ledger after the kill: %v\n%s", err, out)
	}
	t.Logf("killed replica 1 after 8 releases: clients received %d releases, %d refused for budget, %d got no answer; ledger: %d released, %d charged without a release (in flight on the killed replica)",
		len(res.released), res.budget, res.failed, released, open)
	for _, i := range []int{0, 2} {
		if err := replicas[i].stop(t); err != nil {
			t.Fatalf("replica %d: stop: %v\n%s", i, err, replicas[i].stderr)
		}
	}
	if _, err := ledger.VerifyPostgres(context.Background(), env.dsn, ledger.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
