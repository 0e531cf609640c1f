package main

// Helpers of the operational tests, which run the real velo binary: built once per test
// binary, serving a real dataset and ledger on loopback, killed and restarted.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// veloBinary builds this package (go build) once per test binary and returns the
// executable's path.
func veloBinary(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "no go tool on PATH to build velo: install Go (the version in go.mod) and put its bin folder on PATH")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "velo-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "velo")
		if out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// opsEnv is a server's configuration on disk: the shared synthetic dataset, a new ledger
// holding one project, and a config file with a researcher (rita) and a dpo (dora).
type opsEnv struct {
	cfgPath string
	state   string
	tokens  map[string]string // user -> token
}

func newOpsEnv(t *testing.T, p ledger.Project) *opsEnv {
	t.Helper()
	dir := t.TempDir()
	env := &opsEnv{cfgPath: filepath.Join(dir, "velo.yaml"), state: filepath.Join(dir, "state"), tokens: map[string]string{}}
	l, err := ledger.Open(env.state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateProject(context.Background(), "setup", p); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := notebooksapi.Config{
		Data: apitest.Dataset(t), State: env.state,
		Limits: notebooksapi.Limits{MaxConcurrentQueries: 8, Threads: 1, MemoryLimit: "512MB"},
	}
	for _, u := range []notebooksapi.User{
		{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{p.ID}},
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
	if err := notebooksapi.WriteConfig(env.cfgPath, cfg, "# written by the operational tests\n"); err != nil {
		t.Fatal(err)
	}
	return env
}

// watchBuffer collects a process's output and signals every write, so a test can wait for
// a line to appear.
type watchBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{}, 1)} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return w.b.Write(p)
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// proc is a velo process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *watchBuffer
	done           chan struct{} // closed when it has exited
	err            error         // its exit, once done
}

func startProc(t *testing.T, argv ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), stdout: newWatchBuffer(), stderr: newWatchBuffer(), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// waitFor waits until re matches the output, the process exits, or a deadline passes.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if m := re.FindStringSubmatch(p.stdout.String()); m != nil {
			return m
		}
		select {
		case <-p.stdout.changed:
		case <-p.done:
			if m := re.FindStringSubmatch(p.stdout.String()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%v) before printing %s:\n%s\n%s", p.cmd.Path, p.err, re, p.stdout, p.stderr)
		case <-deadline.C:
			t.Fatalf("%s did not print %s within %v:\n%s\n%s", p.cmd.Path, re, timeout, p.stdout, p.stderr)
		}
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (with a deadline) for the exit, returning its error.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(2 * time.Minute):
		p.kill()
		t.Fatalf("velo did not stop within 2 minutes of SIGTERM:\n%s", p.stderr)
		return nil
	}
}

var servingAt = regexp.MustCompile(`velo: serving (http://\S+) `)

// server is a running velo serve.
type server struct {
	*proc
	URL string
}

// startServe runs velo serve on env's config on a free loopback port; wrap, if given, is a
// command that runs velo (prlimit ...).
func startServe(t *testing.T, env *opsEnv, wrap ...string) *server {
	t.Helper()
	argv := append(wrap, veloBinary(t), "serve", "--config", env.cfgPath, "--addr", "127.0.0.1:0", "--log-format", "json")
	p := startProc(t, argv...)
	m := p.waitFor(t, servingAt, 2*time.Minute)
	return &server{proc: p, URL: m[1]}
}

// runVelo runs the binary to completion and returns its combined output.
func runVelo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(veloBinary(t), args...).CombinedOutput()
	return string(out), err
}

// client is an HTTP client for one test: its own connections, a generous deadline.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}
}

// call sends a JSON request with user's token and returns the status and body.
func call(c *http.Client, method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
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

// receivedRelease is what a client kept of a release it was sent.
type receivedRelease struct {
	ReleaseID string  `json:"release_id"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	Cached    bool    `json:"cached"`
	Project   string  `json:"project"`
}

// epsUnits is an epsilon in the ledger's fixed-point units (1e-12), for exact comparisons.
func epsUnits(x float64) int64 { return int64(math.Round(x * 1e12)) }

// reconcile checks that every release a client received is recorded in the ledger in
// state, after the charge it settles, and that the project's spend is exactly the sum of
// its charges less refunds and at least the sum of the distinct releases received (a crash
// can over-count spend, never give a free answer). It returns the ledger's spend.
func reconcile(t *testing.T, state, project string, got []receivedRelease) (spent float64, charges int) {
	t.Helper()
	entries, projects, err := ledger.Read(state)
	if err != nil {
		t.Fatalf("read the ledger: %v", err)
	}
	releases := map[string]ledger.Entry{}
	var sum int64
	for _, e := range entries {
		switch e.Kind {
		case ledger.KindRelease:
			var r receivedRelease
			if err := json.Unmarshal(e.Release, &r); err != nil {
				t.Fatalf("entry %d: %v", e.Seq, err)
			}
			releases[r.ReleaseID] = e
		case ledger.KindCharge:
			sum += epsUnits(e.Epsilon)
			charges++
		case ledger.KindRefund:
			sum -= epsUnits(e.Epsilon)
			charges--
		}
	}
	var received int64
	seen := map[string]bool{}
	for _, r := range got {
		e, ok := releases[r.ReleaseID]
		if !ok {
			t.Fatalf("release %s was sent to a client but the ledger has no release entry for it", r.ReleaseID)
		}
		c := entries[e.ChargeSeq-1]
		if c.Kind != ledger.KindCharge || c.Seq >= e.Seq || c.Project != project || epsUnits(c.Epsilon) != epsUnits(r.Epsilon) {
			t.Fatalf("release %s (entry %d, epsilon %v) does not settle a charge of that epsilon: entry %d is a %s of %v on %s",
				r.ReleaseID, e.Seq, r.Epsilon, c.Seq, c.Kind, c.Epsilon, c.Project)
		}
		if !seen[r.ReleaseID] {
			seen[r.ReleaseID] = true
			received += epsUnits(r.Epsilon)
		}
	}
	for _, p := range projects {
		if p.ID != project {
			continue
		}
		if epsUnits(p.Spent.Epsilon) != sum || p.Queries != charges {
			t.Fatalf("project %s: spent %v over %d queries, but its charges less refunds are %v over %d", project, p.Spent.Epsilon, p.Queries, float64(sum)/1e12, charges)
		}
		if sum < received {
			t.Fatalf("project %s: spent %v is less than the %v of the releases clients received", project, p.Spent.Epsilon, float64(received)/1e12)
		}
		return p.Spent.Epsilon, charges
	}
	t.Fatalf("no project %s in the ledger", project)
	return 0, 0
}

// verifyCLI runs velo ledger verify on state and fails the test unless it passes.
func verifyCLI(t *testing.T, state string) string {
	t.Helper()
	out, err := runVelo(t, "ledger", "verify", "--state", state)
	if err != nil {
		t.Fatalf("velo ledger verify: %v\n%s", err, out)
	}
	return out
}

// isConnError reports whether err is a transport failure (the server died), not a reply.
func isConnError(err error) bool {
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "Client.Timeout")
}
