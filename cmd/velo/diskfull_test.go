package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/testenv"
)

// TestServeDiskFull runs velo serve with a file-size limit (prlimit --fsize, no root needed)
// a few entries above the ledger's size, so that its ledger's disk fills up under a run of
// queries. The query whose entry does not fit is refused with 503 ledger_unavailable and no
// release; from then on nothing is appended (every query, grant and project is refused with
// the same clear error) while reads, dry runs and cached releases still answer; the ledger on
// disk verifies beside the running server; the log names the cause; a stop says no final
// checkpoint was written. Restarted without the limit, the ledger verifies, every release
// received is a durable charge, and queries run again.
func TestServeDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs velo")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		// Loud: under CI the test must run (.ci/run installs util-linux).
		testenv.Missing(t, "no prlimit on PATH to limit velo's file size: apt-get install util-linux")
	}
	env := newOpsEnv(t, burstProject)
	ledgerPath := filepath.Join(env.state, "ledger")
	size := func() int64 {
		fi, err := os.Stat(ledgerPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	limit := size() + 24<<10 // room for about ten queries' charges and releases
	srv := startServe(t, env, prlimit, fmt.Sprintf("--fsize=%d", limit))
	client := newClient()
	defer client.CloseIdleConnections()
	rita, dora := env.tokens["rita"], env.tokens["dora"]
	query := func(k int64, extra map[string]any) (int, []byte) {
		t.Helper()
		body := map[string]any{"project": "wl", "sql": burstSQL(k), "epsilon": 0.01}
		for n, v := range extra {
			body[n] = v
		}
		status, b, err := call(client, "POST", srv.URL+"/v1/queries", rita, body)
		if err != nil {
			t.Fatal(err)
		}
		return status, b
	}
	type problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	wantLedgerUnavailable := func(what string, status int, b []byte) {
		t.Helper()
		var p problem
		_ = json.Unmarshal(b, &p)
		if status != 503 || p.Code != "ledger_unavailable" || !strings.Contains(p.Detail, "cannot record entries") {
			t.Errorf("%s: %d %s, want 503 ledger_unavailable", what, status, b)
		}
	}

	var got []receivedRelease
	var k int64
	var failedAt int64
	for k = 1; k <= 200; k++ {
		status, b := query(k, nil)
		if status == 200 {
			var r receivedRelease
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
			continue
		}
		wantLedgerUnavailable(fmt.Sprintf("query %d", k), status, b)
		failedAt = size()
		break
	}
	if failedAt == 0 || len(got) == 0 {
		t.Fatalf("%d queries released and none refused under a %d-byte file limit", len(got), limit)
	}
	t.Logf("the ledger filled up at query %d: %d releases before it, ledger %d bytes under a %d-byte limit", k, len(got), failedAt, limit)

	// Nothing is charged any more, with the same clear error...
	status, b := query(k+1, nil)
	wantLedgerUnavailable("a new query", status, b)
	status, b, _ = call(client, "POST", srv.URL+"/v1/projects/wl/grants", dora, map[string]any{"epsilon": 1, "reason": "more"})
	wantLedgerUnavailable("a grant", status, b)
	// ... while what needs no write still answers.
	status, b = query(1, nil)
	var cached receivedRelease
	if _ = json.Unmarshal(b, &cached); status != 200 || !cached.Cached || cached.ReleaseID != got[0].ReleaseID {
		t.Errorf("a cached query: %d %s", status, b)
	}
	got = append(got, cached)
	if status, b = query(k+2, map[string]any{"dry_run": true}); status != 200 {
		t.Errorf("a dry run: %d %s", status, b)
	}
	for _, path := range []string{"/v1/catalog", "/v1/projects/wl"} {
		if status, b, _ := call(client, "GET", srv.URL+path, rita, nil); status != 200 {
			t.Errorf("GET %s: %d %s", path, status, b)
		}
	}
	if now := size(); now != failedAt {
		t.Errorf("the ledger grew from %d to %d bytes after the failure", failedAt, now)
	}
	// The ledger on disk is consistent beside the stopped writer.
	verifyCLI(t, env.state)
	logs := srv.stderr.String()
	for _, want := range []string{"ledger write failed", "file too large"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the server's log does not say %q:\n%s", want, logs)
		}
	}
	if err := srv.stop(t); err == nil || !strings.Contains(srv.stderr.String(), "without a final checkpoint") {
		t.Errorf("stop after the failure: %v, want an error saying no checkpoint was written:\n%s", err, srv.stderr)
	}

	// Restarted with room to write: it verifies, reconciles and charges again.
	srv = startServe(t, env)
	verifyCLI(t, env.state)
	spent, charges := reconcile(t, env.state, "wl", got)
	status, b = query(k+3, nil)
	if status != 200 {
		t.Fatalf("a query after the restart: %d %s", status, b)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.stderr)
	}
	out := verifyCLI(t, env.state)
	t.Logf("after the restart: spent %.2f over %d charges for %d distinct releases received; %s", spent, charges, len(got)-1, strings.SplitN(out, "\n", 3)[1])
}
