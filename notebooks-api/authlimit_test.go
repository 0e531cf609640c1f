package notebooksapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// testClock is a settable clock for the server.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clientFrom is an HTTP client whose connections come from the loopback address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	if c, err := d.Dial("tcp", "127.0.0.1:1"); err != nil && strings.Contains(err.Error(), "assign requested address") {
		testenv.Missing(t, "cannot send from the loopback address %s (%v): the test needs the whole 127.0.0.0/8 on the loopback interface, as Linux has it (on macOS: sudo ifconfig lo0 alias %s)", ip, err, ip)
	} else if c != nil {
		c.Close()
	}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func send(t *testing.T, c *http.Client, method, u, token string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestAuthFailuresLockOutAnAddress: three wrong tokens from one address (the limit here)
// lock it out: its next requests, a valid token's query and the login form included, are
// refused with 429 too_many_auth_failures and Retry-After, uncharged, until the window
// passes; another address's valid tokens work throughout, and its own wrong token is a
// plain 401. Failures spread over more than a window do not add up. The log names the
// address once and holds none of the tokens tried.
func TestAuthFailuresLockOutAnAddress(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	ts := startServer(t, func(o *serverSetup) {
		o.Now = clk.Now
		o.Limits.MaxAuthFailures, o.Limits.AuthFailureWindow = 3, time.Minute
	})
	guesser := clientFrom(t, "127.0.0.2")
	neighbour := clientFrom(t, "127.0.0.1")
	queryBody := map[string]any{"project": "wl", "epsilon": 0.1, "sql": "SELECT region, COUNT(*) AS n FROM booking GROUP BY region"}
	guesses := []string{"velo_guess-one", "velo_guess-two", "velo_guess-three", "velo_guess-four", "velo_guess-five"}
	charges := ts.project(t, "wl").Queries

	for _, g := range guesses[:3] {
		resp, b := send(t, guesser, "GET", ts.URL+"/v1/me", g, nil)
		if p := problemOf(t, resp, b); resp.StatusCode != 401 || p.Code != "unauthorized" {
			t.Fatalf("guess %s: %d %s", g, resp.StatusCode, b)
		}
	}
	locked := func(what string, resp *http.Response, b []byte, wantRetry string) {
		t.Helper()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != wantRetry {
			t.Fatalf("%s: %d (Retry-After %q) %s, want 429 with Retry-After %s", what, resp.StatusCode, resp.Header.Get("Retry-After"), b, wantRetry)
		}
	}
	resp, b := send(t, guesser, "POST", ts.URL+"/v1/queries", ts.Tokens["rita"], queryBody)
	locked("a valid token's query from the locked-out address", resp, b, "60")
	if p := problemOf(t, resp, b); p.Code != notebooksapi.CodeTooManyAuthFailures || !strings.Contains(p.Detail, "60 seconds") || !strings.Contains(p.Detail, "nothing was charged") {
		t.Errorf("problem: %+v", p)
	}
	if n := ts.project(t, "wl").Queries; n != charges {
		t.Errorf("the refused query was charged: %d queries, %d before", n, charges)
	}
	form := url.Values{"token": {ts.Tokens["dora"]}}.Encode()
	req, _ := http.NewRequest("POST", ts.URL+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.URL)
	fresp, err := guesser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := io.ReadAll(fresp.Body)
	fresp.Body.Close()
	locked("the login form from the locked-out address", fresp, fb, "60")
	if fresp.Header.Get("Set-Cookie") != "" {
		t.Error("a locked-out address got a session")
	}

	// The neighbour is unaffected: its valid tokens work, its wrong token is a plain 401.
	if resp, b := send(t, neighbour, "POST", ts.URL+"/v1/queries", ts.Tokens["rita"], queryBody); resp.StatusCode != 200 {
		t.Fatalf("another address's query: %d %s", resp.StatusCode, b)
	}
	if resp, b := send(t, neighbour, "GET", ts.URL+"/v1/me", "velo_neighbours-typo", nil); resp.StatusCode != 401 {
		t.Errorf("another address's wrong token: %d %s", resp.StatusCode, b)
	}

	clk.Add(30 * time.Second)
	resp, b = send(t, guesser, "GET", ts.URL+"/v1/me", ts.Tokens["grafana"], nil)
	locked("half a window later", resp, b, "30")
	clk.Add(31 * time.Second)
	if resp, b := send(t, guesser, "GET", ts.URL+"/v1/me", ts.Tokens["grafana"], nil); resp.StatusCode != 200 {
		t.Fatalf("after the window: %d %s", resp.StatusCode, b)
	}
	// Two failures, a window, two more: never three within one window.
	for i, g := range guesses[3:] {
		for range 2 {
			if resp, b := send(t, guesser, "GET", ts.URL+"/v1/me", g, nil); resp.StatusCode != 401 {
				t.Fatalf("spread guess %d: %d %s", i, resp.StatusCode, b)
			}
		}
		clk.Add(61 * time.Second)
	}

	logs := ts.logs.String()
	if n := strings.Count(logs, "locking out a client address"); n != 1 || !strings.Contains(logs, `"addr":"127.0.0.2"`) {
		t.Errorf("%d lock-out warnings (want one naming 127.0.0.2):\n%s", n, logs)
	}
	for _, g := range guesses {
		if strings.Contains(logs, g) {
			t.Errorf("the log holds the guess %s", g)
		}
	}
}
