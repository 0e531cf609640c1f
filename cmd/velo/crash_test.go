package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// burstProject is the project the burst tests query: a budget no burst can spend.
var burstProject = ledger.Project{
	ID: "wl", Purpose: "operational tests", LegalBasis: "none: synthetic data", Approver: "dpo",
	Allow: map[string][]string{"booking": {}}, EpsilonBudget: 1000, DefaultEpsilon: 0.01, MaxEpsilonPerQuery: 2,
}

// burstSQL is the k-th query of a burst: a different condition each time (one no booking
// fails), so each is charged and released anew.
func burstSQL(k int64) string {
	return fmt.Sprintf("SELECT region, COUNT(*) AS n FROM booking WHERE wait_days IS NULL OR wait_days >= -1000000-%d GROUP BY region", k)
}

// TestKillServeDuringBurst: velo serve, the real binary, answers a burst of queries from
// eight clients and is killed with SIGKILL at a random moment (after a random number of
// releases, while the other clients' queries are at every stage), then restarted, five
// times. After each restart: every release a client received is in the ledger, settling a
// charge of its epsilon written before it; spend is the sum of the charges and at least the
// sum of the releases received; velo ledger verify passes (a torn tail left by the kill is
// cut and recorded by the restart). VELO_KILL_SEED replays a run.
func TestKillServeDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds velo and kills it five times")
	}
	env := newOpsEnv(t, burstProject)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VELO_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("VELO_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	client := newClient()
	defer client.CloseIdleConnections()

	const rounds, clients = 5, 8
	var all []receivedRelease
	var next atomic.Int64
	var sent, lost, busy, tornBefore int
	srv := startServe(t, env)
	for round := range rounds {
		killAfter := 5 + rng.IntN(40)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var got []receivedRelease
		reached := make(chan struct{})
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					k := next.Add(1)
					if i%5 == 4 { // now and then a query already answered: served from the cache
						k = max(1, k-int64(clients*3))
					}
					status, body, err := call(client, "POST", srv.URL+"/v1/queries", env.tokens["rita"],
						map[string]any{"project": "wl", "sql": burstSQL(k), "epsilon": 0.01})
					mu.Lock()
					sent++
					switch {
					case err != nil:
						lost++ // the server died with the query in flight
					case status == 200:
						var r receivedRelease
						if err := json.Unmarshal(body, &r); err != nil || r.ReleaseID == "" {
							t.Errorf("client %d: a 200 that is not a release: %v %s", c, err, body)
						}
						got = append(got, r)
						if len(got) == killAfter {
							close(reached)
						}
					case status == 429:
						busy++
					default:
						t.Errorf("client %d: %d %s", c, status, body)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		select {
		case <-reached:
		case <-time.After(3 * time.Minute):
			t.Fatalf("round %d: %d releases in 3 minutes, waiting for %d:\n%s", round, len(got), killAfter, srv.stderr)
		}
		srv.kill()
		cancel()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		all = append(all, got...)

		// Before the restart the ledger may end in a torn tail; nothing else is allowed.
		if out, err := runVelo(t, "ledger", "verify", "--state", env.state); err != nil {
			if !strings.Contains(out, "torn tail") {
				t.Fatalf("round %d: after the kill, verify: %v\n%s", round, err, out)
			}
			tornBefore++
		}
		srv = startServe(t, env)
		out := verifyCLI(t, env.state)
		spent, charges := reconcile(t, env.state, "wl", all)
		t.Logf("round %d: killed after %d releases (%d received in all); restarted; spent %.2f over %d charges; verify: %s",
			round, killAfter, len(all), spent, charges, strings.SplitN(out, "\n", 3)[1])
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.stderr)
	}
	rep, err := ledger.Verify(env.state, ledger.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Signed != uint64(rep.Entries) {
		t.Errorf("after a graceful stop the checkpoints sign %d of %d entries", rep.Signed, rep.Entries)
	}
	spent, charges := reconcile(t, env.state, "wl", all)
	cached := 0
	for _, r := range all {
		if r.Cached {
			cached++
		}
	}
	t.Logf("%d kills; %d requests sent, %d releases received (%d from the cache), %d lost in flight, %d refused busy; "+
		"ledger: %d entries, %d recoveries (%d torn tails seen before a restart), %d charges, spent %.2f",
		rounds, sent, len(all), cached, lost, busy, rep.Entries, rep.Recoveries, tornBefore, charges, spent)
}
