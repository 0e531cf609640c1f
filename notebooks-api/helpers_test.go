package notebooksapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/oidctest"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
	"github.com/velo-fse/velo/query"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	oidctest.StopShared()
	os.Exit(code)
}

// The test server's people: user name -> role and projects.
var testUsers = []notebooksapi.User{
	{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{"wl", "small"}},
	{Name: "otto", Role: notebooksapi.RoleResearcher, Projects: []string{"other"}},
	{Name: "grafana", Role: notebooksapi.RoleOfficial, Projects: []string{"wl"}},
	{Name: "dora", Role: notebooksapi.RoleDPO},
	{Name: "adam", Role: notebooksapi.RoleAdmin},
}

// testServer is a live server on loopback over the shared dataset, with a new ledger.
type testServer struct {
	URL    string
	Tokens map[string]string // user -> token
	Users  []notebooksapi.User
	Ledger *ledger.Ledger
	Server *notebooksapi.Server
	State  string
	logs   *apitest.Buffer
	stop   func() error
	// stopped is set once stop has run (the cleanup then skips its checks over HTTP).
	stopped bool
}

// serverSetup is what a test may change before the server starts: its options (the
// engine is opened after them, with their limits) and the ledger the engine charges.
type serverSetup struct {
	notebooksapi.Options
	// engineLedger, when set, wraps the ledger the engine charges; the server reads the
	// ledger itself.
	engineLedger func(query.Ledger) query.Ledger
	// url is where the server will listen (http://127.0.0.1:PORT), known to the options.
	url string
}

type serverOption func(*serverSetup)

// startServer starts a server with projects wl (booking and some person columns, epsilon
// 10), other (booking region and wait_days only) and small (epsilon 1), and the test users.
// At cleanup it checks that every (route, status) the test saw is documented in the
// OpenAPI document, then shuts the server down gracefully.
func startServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	data := apitest.Dataset(t) // 2,000 synthetic people, ingested once for the package
	state := filepath.Join(t.TempDir(), "state")
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []ledger.Project{
		{ID: "wl", Purpose: "waiting-list reduction, region by region", LegalBasis: "art. 2-sexies c.1-bis Codice privacy", Approver: "dora",
			Allow: map[string][]string{"booking": {}, "person": {"birth_year", "region", "sex"}}, EpsilonBudget: 10, DeltaBudget: 1e-5, DefaultEpsilon: 0.5, MaxEpsilonPerQuery: 2, MaxDeltaPerQuery: 1e-6},
		{ID: "other", Purpose: "another study", LegalBasis: "art. 9(2)(j) GDPR", Allow: map[string][]string{"booking": {"region", "wait_days"}}, EpsilonBudget: 5, DeltaBudget: 0, DefaultEpsilon: 0.5},
		{ID: "small", Purpose: "a small budget", LegalBasis: "art. 9(2)(j) GDPR", Allow: map[string][]string{"booking": {}}, EpsilonBudget: 1, DeltaBudget: 0},
	} {
		if err := led.CreateProject(ctx, "setup", p); err != nil {
			t.Fatal(err)
		}
	}
	ts := &testServer{Tokens: map[string]string{}, Ledger: led, State: state, logs: &apitest.Buffer{}}
	var users []notebooksapi.User
	for _, u := range testUsers {
		tok, stored, err := notebooksapi.NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		u.Tokens = []notebooksapi.Token{stored}
		users = append(users, u)
		ts.Tokens[u.Name] = tok
	}
	ts.Users = users
	o := serverSetup{Options: notebooksapi.Options{
		Ledger: led, Users: users,
		Verify: func() (ledger.VerifyReport, error) { return ledger.Verify(state, ledger.VerifyOptions{}) },
		Limits: notebooksapi.Limits{MaxConcurrentQueries: 8, MaxRequestBytes: 64 << 10},
		Logger: slog.New(slog.NewJSONHandler(ts.logs, nil)),
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.url = "http://" + ln.Addr().String()
	for _, f := range opts {
		f(&o)
	}
	var engLedger query.Ledger = led
	if o.engineLedger != nil {
		engLedger = o.engineLedger(led)
	}
	limits := o.Limits.QueryLimits()
	limits.MemoryLimit, limits.Threads = "512MB", 1
	eng, err := query.Open(ctx, query.Config{DataDir: data, Ledger: engLedger, Limits: limits, ReleaseDir: filepath.Join(state, "releases")})
	if err != nil {
		t.Fatal(err)
	}
	o.Engine = eng
	srv, err := notebooksapi.New(o.Options)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	ts.URL = o.url
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	var once sync.Once
	var stopErr error
	ts.stop = func() error {
		once.Do(func() {
			ts.stopped = true
			cancel()
			stopErr = <-done
			stopErr = joinErr(stopErr, eng.Close(), led.Close())
		})
		return stopErr
	}
	t.Cleanup(func() {
		if !t.Failed() && !ts.stopped {
			checkDocumentedStatuses(t, ts)
			checkLogs(t, ts)
		}
		if err := ts.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ts
}

func joinErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// call sends a request as user ("" for none) and returns the response and its body.
func (ts *testServer) call(t *testing.T, user, method, path string, body any, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		tok, ok := ts.Tokens[user]
		if !ok {
			tok = user // a literal (wrong) token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 2 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// problemOf decodes and checks a problem+json answer.
func problemOf(t *testing.T, resp *http.Response, body []byte) notebooksapi.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d: Content-Type %q, want application/problem+json; body %s", resp.StatusCode, ct, body)
	}
	var p notebooksapi.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, body)
	}
	if p.Status != resp.StatusCode || p.Code == "" || p.Title == "" || p.Type != "urn:velo:problem:"+p.Code || p.Instance == "" || p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("problem shape: %+v (status %d)", p, resp.StatusCode)
	}
	return p
}

func (ts *testServer) project(t *testing.T, id string) ledger.ProjectStatus {
	t.Helper()
	st, err := ts.Ledger.Project(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openapiDoc is the served OpenAPI document, as far as the tests read it.
type openapiDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
}

var metricLine = regexp.MustCompile(`^velo_http_requests_total\{route="([^"]*)",method="([^"]*)",code="([0-9]+)"\} [0-9]+$`)

// checkDocumentedStatuses reads which (route, method, status) the server answered from
// its own metrics and checks each is documented in /openapi.json.
func checkDocumentedStatuses(t *testing.T, ts *testServer) {
	t.Helper()
	resp, body := ts.call(t, "", "GET", "/openapi.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	var doc openapiDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	_, metrics := ts.call(t, "", "GET", "/metrics", nil)
	for _, line := range strings.Split(string(metrics), "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		route, method, code := m[1], m[2], m[3]
		if route == "unmatched" {
			if code != "404" && code != "405" {
				t.Errorf("an unmatched route answered %s", code)
			}
			continue
		}
		meth, path, _ := strings.Cut(route, " ")
		if meth != method && !(meth == "GET" && method == "HEAD") {
			t.Errorf("route %q answered method %s", route, method)
		}
		op, ok := doc.Paths[path][strings.ToLower(meth)]
		if !ok {
			t.Errorf("route %q is not in openapi.json", route)
			continue
		}
		if _, ok := op.Responses[code]; !ok {
			t.Errorf("route %q answered %s, which openapi.json does not document", route, code)
		}
	}
}

// checkLogs checks that every request was logged with its route and status, refused ones
// included, and that no token or Authorization header reached the log.
func checkLogs(t *testing.T, ts *testServer) {
	t.Helper()
	logs := ts.logs.String()
	for user, tok := range ts.Tokens {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[len(tok)-20:]) {
			t.Errorf("the log holds %s's token", user)
		}
	}
	if strings.Contains(strings.ToLower(logs), "authorization") || strings.Contains(logs, "velo_session") || strings.Contains(logs, "code=") {
		t.Error("the log holds an Authorization header, a session cookie or a login code")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["msg"] != "request" {
			continue
		}
		for _, k := range []string{"user", "role", "project", "method", "route", "status", "duration_ms"} {
			if _, ok := e[k]; !ok {
				t.Errorf("log line lacks %s: %s", k, line)
			}
		}
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
