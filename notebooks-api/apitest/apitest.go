// Package apitest starts a real Velo API server on loopback over a small synthetic
// extract, for the tests of Velo's clients (the Grafana data source). Each Server has its
// own ledger; the dataset is made once per test binary.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/synth"
)

// Period is the synthetic extract's period.
const Period = "2024-01..2025-12"

var (
	dataOnce sync.Once
	dataDir  string
	dataErr  error
)

// MakeDataset generates persons synthetic people (seed) under dir and pseudonymizes and
// ingests their CUP bookings with key; it returns the data directory.
func MakeDataset(ctx context.Context, dir string, persons int, seed uint64, key pseudonymize.Key) (string, error) {
	period, err := fse.ParsePeriod(Period)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "synth")
	if _, err := synth.Generate(ctx, synth.Config{Persons: persons, Seed: seed, Out: src, From: period.From, To: period.To}); err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	_, err = ingest.Run(ctx, ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{filepath.Join(src, "cup")}, Period: period, MemoryLimit: "512MB"})
	return data, err
}

// Dataset returns the directory of a 2,000-person synthetic CUP extract, pseudonymized and
// ingested once per test binary under the system's temporary directory (removed by
// Cleanup, which TestMain calls).
func Dataset(t testing.TB) string {
	t.Helper()
	dataOnce.Do(func() {
		var scratch string
		if scratch, dataErr = os.MkdirTemp("", "velo-apitest-"); dataErr != nil {
			return
		}
		var k pseudonymize.Key
		if k, dataErr = pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32))); dataErr != nil {
			return
		}
		dataDir, dataErr = MakeDataset(context.Background(), scratch, 2000, 5, k)
	})
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return dataDir
}

// Cleanup removes the dataset; call it from TestMain after m.Run.
func Cleanup() {
	if dataDir != "" {
		os.RemoveAll(filepath.Dir(dataDir))
	}
}

// Project "wl": the waiting-list project a dashboard queries (booking, epsilon 10).
var WaitingLists = ledger.Project{
	ID: "wl", Purpose: "waiting-list reduction, region by region", LegalBasis: "art. 2-sexies c.1-bis Codice privacy", Approver: "dpo",
	Allow:         map[string][]string{"booking": {}},
	EpsilonBudget: 10, DeltaBudget: 1e-5, DefaultEpsilon: 0.5, MaxEpsilonPerQuery: 2, MaxDeltaPerQuery: 1e-6,
}

// Config says which projects and users a Server has.
type Config struct {
	Projects []ledger.Project    // default: WaitingLists
	Users    []notebooksapi.User // default: official "grafana" (wl), researcher "rita" (wl), dpo "dora"
	Limits   notebooksapi.Limits // zero: the server's defaults
	// QueryLimits are the engine's; zero: Limits.QueryLimits() (query slots, queue and
	// query timeouts) with 512 MB of memory and one thread (test sizes).
	QueryLimits query.Limits
	Logger      *slog.Logger // default: discard
}

// Server is a live Velo API on loopback.
type Server struct {
	URL    string
	Tokens map[string]string // user -> bearer token
	Ledger *ledger.Ledger
	State  string // the ledger's directory
	stop   func() error
}

// Start starts a server over Dataset with a new ledger in t.TempDir; it stops at cleanup.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Serve(context.Background(), Dataset(t), filepath.Join(t.TempDir(), "state"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("apitest: shutdown: %v", err)
		}
	})
	return s
}

// Serve starts a server on 127.0.0.1 over the dataset in data, with a new ledger in state
// holding cfg's projects and a new token for each of cfg's users, until Close.
func Serve(ctx context.Context, data, state string, cfg Config) (*Server, error) {
	if cfg.Projects == nil {
		cfg.Projects = []ledger.Project{WaitingLists}
	}
	if cfg.Users == nil {
		cfg.Users = []notebooksapi.User{
			{Name: "grafana", Role: notebooksapi.RoleOfficial, Projects: []string{"wl"}},
			{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{"wl"}},
			{Name: "dora", Role: notebooksapi.RoleDPO},
		}
	}
	if cfg.QueryLimits == (query.Limits{}) {
		cfg.QueryLimits = cfg.Limits.QueryLimits()
		cfg.QueryLimits.MemoryLimit, cfg.QueryLimits.Threads = "512MB", 1
	}
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		return nil, err
	}
	closeAll := []func() error{led.Close}
	fail := func(err error) (*Server, error) {
		for i := len(closeAll) - 1; i >= 0; i-- {
			closeAll[i]()
		}
		return nil, err
	}
	for _, p := range cfg.Projects {
		if err := led.CreateProject(ctx, "apitest", p); err != nil {
			return fail(err)
		}
	}
	eng, err := query.Open(ctx, query.Config{DataDir: data, Ledger: led, Limits: cfg.QueryLimits, ReleaseDir: filepath.Join(state, "releases")})
	if err != nil {
		return fail(err)
	}
	closeAll = append(closeAll, eng.Close)
	s := &Server{Tokens: map[string]string{}, Ledger: led, State: state}
	var users []notebooksapi.User
	for _, u := range cfg.Users {
		tok, stored, err := notebooksapi.NewToken(nil)
		if err != nil {
			return fail(err)
		}
		u.Tokens = []notebooksapi.Token{stored}
		users = append(users, u)
		s.Tokens[u.Name] = tok
	}
	srv, err := notebooksapi.New(notebooksapi.Options{
		Engine: eng, Ledger: led, Users: users, Limits: cfg.Limits, Logger: cfg.Logger,
		Verify: func() (ledger.VerifyReport, error) { return ledger.Verify(state, ledger.VerifyOptions{}) },
	})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	s.URL = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = errors.Join(<-done, eng.Close(), led.Close())
		})
		return stopErr
	}
	return s, nil
}

// PostQuery sends body (a query request) to POST /v1/queries with user's token and
// returns the answer's status and body.
func (s *Server) PostQuery(user string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/queries", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Tokens[user])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// Close stops the server gracefully and closes the engine and the ledger.
func (s *Server) Close() error { return s.stop() }

// Buffer is a bytes.Buffer safe for concurrent writes: a server's or a plugin's log under
// test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Charges is the number of charges the project has in the ledger (one per query that
// was not answered from the release cache).
func (s *Server) Charges(t testing.TB, project string) int {
	t.Helper()
	st, err := s.Ledger.Project(project)
	if err != nil {
		t.Fatal(err)
	}
	return st.Queries
}
