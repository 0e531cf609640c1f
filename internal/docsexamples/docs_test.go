package docsexamples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"go.yaml.in/yaml/v3"

	"github.com/velo-fse/velo/grafana-plugin/pkg/plugin"
	"github.com/velo-fse/velo/internal/docsexamples"
	"github.com/velo-fse/velo/ledger"
)

const (
	// docsAddr is the address the documentation uses (velo demo's default); the runner's
	// demo listens elsewhere and blocks are rewritten to reach it.
	docsAddr = "127.0.0.1:8080"
	// demoProject is the project velo demo makes, whose budget must not run out.
	demoProject = "wl"
	// blockTimeout bounds one block (a synthetic extract and its ingest included).
	blockTimeout = 10 * time.Minute
	python       = "/usr/bin/python3"
)

// TestDocsExamples is the documentation's examples run by a reader on a fresh demo
// (package doc: conventions, directives, checks). VELO_DOCS_PERSONS makes a smaller demo
// for a quick run while editing documents; the accuracy check then fails, as it should.
func TestDocsExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a fresh velo demo and runs every example of the documentation (make docs-examples)")
	}
	for _, tool := range []string{"bash", "curl", "sed", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("SKIPPED: the documentation's examples need %s on the PATH; CI runs them", tool)
			}
			t.Fatalf("CI needs %s on the PATH for the documentation's examples", tool)
		}
	}
	start := time.Now()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		docs = append(docs, filepath.Join("docs", filepath.Base(m)))
	}
	var blocks [][]docsexamples.Block
	for _, d := range docs {
		src, err := os.ReadFile(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := docsexamples.Parse(d, src)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, bs)
	}

	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "velo"), filepath.Join(root, "cmd", "velo")).CombinedOutput(); err != nil {
		t.Fatalf("go build velo: %v\n%s", err, out)
	}
	demo := &demoProcess{t: t, work: work, persons: os.Getenv("VELO_DOCS_PERSONS")}
	demo.start()
	t.Cleanup(demo.stop)
	size := "its default size"
	if demo.persons != "" {
		size = demo.persons + " people"
	}
	t.Logf("velo demo (%s) ready in %s (%s of CPU; load average %s) at %s", size,
		demo.startup.Round(100*time.Millisecond), demo.startupCPU.Round(100*time.Millisecond), demo.load, demo.url)

	r := &runner{t: t, root: root, work: work, demo: demo, state: filepath.Join(work, "velo-demo", "state")}
	r.session.env = baseEnv()
	r.session.dir = work
	r.lastSeq = r.ledgerSeq()
	for i, d := range docs {
		r.document(d, blocks[i])
		if t.Failed() {
			break // later blocks build on earlier ones; their failures would only repeat
		}
	}
	if !t.Failed() {
		r.checkAccuracy()
		r.checkBudget()
	}
	r.report(time.Since(start))
}

// runner runs the documents in one shell session against one demo.
type runner struct {
	t          *testing.T
	root, work string
	demo       *demoProcess
	state      string // the demo's ledger
	session    session
	lastSeq    uint64 // the last ledger entry seen
	releases   []released
	ran        []string // blocks run, with their time
	skipped    []string // blocks not run, with why
	replaced   []string // blocks replaced by the runner, with why
}

// released is a fresh release of the run and the query it answers.
type released struct {
	where     string // the block
	text      string // the SQL as sent
	canonical string
	release   json.RawMessage
}

func (r *runner) document(name string, blocks []docsexamples.Block) {
	t := r.t
	dir := filepath.Join(r.work, "docs", strings.TrimSuffix(name, ".md"))
	if err := checkoutView(r.root, r.work, dir); err != nil {
		t.Fatal(err)
	}
	r.session.dir = dir
	r.demo.want(docsexamples.DemoRunning) // every document starts with the demo running
	for _, b := range blocks {
		if b.Demo != docsexamples.DemoAsIs {
			r.demo.want(b.Demo)
		}
		began := time.Now()
		switch b.Action {
		case docsexamples.Skip:
			r.skipped = append(r.skipped, fmt.Sprintf("%s: %s", b, b.Reason))
			continue
		case docsexamples.Notebook:
			r.notebook(b)
			r.replaced = append(r.replaced, fmt.Sprintf("%s: notebook %s executed headless (%s); %s", b, b.Path, b.Reason, since(began)))
		case docsexamples.Dashboard:
			r.dashboard(b)
			r.replaced = append(r.replaced, fmt.Sprintf("%s: dashboards of %s opened through the plugin's backend (%s); %s", b, b.Path, b.Reason, since(began)))
		default:
			r.run(b)
			r.ran = append(r.ran, fmt.Sprintf("%s: %s", b, since(began)))
		}
		if t.Failed() {
			return
		}
	}
}

// run runs one block in the session and checks what it printed and released.
func (r *runner) run(b docsexamples.Block) {
	t := r.t
	script := strings.ReplaceAll(b.Script(), docsAddr, r.demo.addr())
	out, err := r.session.run(script)
	fresh := r.newReleases(b.String())
	if err != nil {
		t.Errorf("%s: %v\n%s\n--- output ---\n%s", b, err, indent(b.Script()), tail(out))
		return
	}
	if i := strings.Index(out, "urn:velo:problem:"); i >= 0 {
		t.Errorf("%s: the API refused a request:\n%s", b, tail(out[max(0, i-200):]))
		return
	}
	if want := b.Queries(); want > 0 {
		cached := len(cachedRe.FindAllString(out, -1))
		if fresh+cached < want {
			t.Errorf("%s sends %d queries; %d were answered (%d fresh releases, %d cached):\n%s", b, want, fresh+cached, fresh, cached, tail(out))
		}
	}
}

// cachedRe finds a cached release in the JSON, CSV, table and velo_client.py forms.
var cachedRe = regexp.MustCompile(`"cached":\s*true|# cached: true|cached release, not charged again|cached, not charged again`)

// newReleases reads the ledger's new entries: every fresh release must have rows. It
// returns how many there are.
func (r *runner) newReleases(where string) int {
	t := r.t
	entries, _, err := ledger.Read(r.state)
	if err != nil {
		t.Fatalf("read the demo's ledger: %v", err)
	}
	charges := map[uint64]ledger.Entry{}
	n := 0
	for _, e := range entries {
		if e.Kind == ledger.KindCharge {
			charges[e.Seq] = e
		}
		if e.Seq <= r.lastSeq || e.Kind != ledger.KindRelease {
			continue
		}
		n++
		c := charges[e.ChargeSeq]
		if strings.Contains(c.Options, "kind=marginals") || strings.Contains(c.Options, "kind=synthetic") {
			// DP marginals and synthetic data are not SQL releases: nothing to compare with
			// plain DuckDB, but each must hold data (their accuracy is the query package's
			// and the synthesizer's tests').
			var data struct {
				Tables []struct {
					Cells []json.RawMessage `json:"cells"`
				} `json:"tables"`
				Rows int `json:"rows"`
			}
			if err := json.Unmarshal(e.Release, &data); err != nil {
				t.Fatalf("ledger entry %d: %v", e.Seq, err)
			}
			if data.Rows == 0 && (len(data.Tables) == 0 || len(data.Tables[0].Cells) == 0) {
				t.Errorf("%s: a data release with no cells or rows (charged epsilon %v): %s", where, c.Epsilon, c.Text)
			}
			continue
		}
		var rel docsexamples.Release
		if err := json.Unmarshal(e.Release, &rel); err != nil {
			t.Fatalf("ledger entry %d: %v", e.Seq, err)
		}
		if len(rel.Rows) == 0 {
			t.Errorf("%s: the query released no rows (charged epsilon %v): %s", where, c.Epsilon, c.Text)
		}
		r.releases = append(r.releases, released{where: where, text: c.Text, canonical: c.SQL, release: e.Release})
	}
	if len(entries) > 0 {
		r.lastSeq = entries[len(entries)-1].Seq
	}
	return n
}

func (r *runner) ledgerSeq() uint64 {
	entries, _, err := ledger.Read(r.state)
	if err != nil {
		r.t.Fatalf("read the demo's ledger: %v", err)
	}
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].Seq
}

// notebook executes a notebook headless in the session's environment, as Jupyter would
// run it cell by cell, and checks no cell raised.
func (r *runner) notebook(b docsexamples.Block) {
	t := r.t
	if err := exec.Command(python, "-c", "import nbclient, nbformat, ipykernel, pandas").Run(); err != nil {
		if os.Getenv("CI") == "" {
			r.skipped = append(r.skipped, fmt.Sprintf("%s: SKIPPED, not replaced: no python3-nbclient, python3-ipykernel and python3-pandas for %s (CI runs it)", b, python))
			t.Logf("%s: SKIPPED the notebook %s: %s lacks nbclient, ipykernel or pandas; the budget check below misses its queries", b, b.Path, python)
			return
		}
		t.Fatalf("%s: CI needs python3-nbclient, python3-ipykernel and python3-pandas (.ci/run installs them): %v", b, err)
	}
	const run = `
import sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
`
	path := filepath.Join(r.session.dir, b.Path)
	out := filepath.Join(r.work, "notebook-out.ipynb")
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-Xfrozen_modules=off", "-c", run, path, filepath.Dir(path), out)
	// The session's environment (VELO_URL, VELO_TOKEN), without writing bytecode into the
	// checkout.
	cmd.Env = append(r.session.environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1", "PYTHONDONTWRITEBYTECODE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("notebook %s: %v\n%s", path, err, tail(string(b)))
		return
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Cells []struct {
			Outputs []struct {
				OutputType string `json:"output_type"`
				Ename      string `json:"ename"`
				Evalue     string `json:"evalue"`
			} `json:"outputs"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &nb); err != nil {
		t.Fatalf("notebook output: %v", err)
	}
	for i, c := range nb.Cells {
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				t.Errorf("notebook %s: cell %d raised %s: %s", b.Path, i, o.Ename, o.Evalue)
			}
		}
	}
	if strings.Contains(string(raw), "urn:velo:problem:") {
		t.Errorf("notebook %s: a request was refused", b.Path)
	}
	r.newReleases(b.String() + " (" + b.Path + ")")
}

// dashboard opens every dashboard provisioned from dir, as Grafana would for its saved
// time range: each panel query through the plugin's backend, configured from the
// provisioned data source with the session's environment (VELO_URL, VELO_GRAFANA_TOKEN).
func (r *runner) dashboard(b docsexamples.Block) {
	t := r.t
	dir := filepath.Join(r.session.dir, b.Path)
	settings, err := provisionedDatasource(filepath.Join(dir, "datasources"), r.session.lookup)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	// Grafana keeps a plugin's debug log; here it would bury the report.
	log.DefaultLogger = log.NewWithLevel(log.Warn)
	inst, err := plugin.NewDatasource(context.Background(), settings)
	if err != nil {
		t.Fatalf("%s: the data source: %v", b, err)
	}
	ds := inst.(*plugin.Datasource)
	defer ds.Dispose()
	boards, err := filepath.Glob(filepath.Join(dir, "dashboards", "*.json"))
	if err != nil || len(boards) == 0 {
		t.Fatalf("%s: no dashboards in %s: %v", b, dir, err)
	}
	for _, board := range boards {
		queries, err := panelQueries(board)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(queries) == 0 {
			t.Fatalf("%s: %s has no panel queries", b, board)
		}
		resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: queries})
		if err != nil {
			t.Fatalf("%s: %s: %v", b, board, err)
		}
		for _, q := range queries {
			dr := resp.Responses[q.RefID]
			rows := 0
			for _, f := range dr.Frames {
				if n, err := f.RowLen(); err == nil {
					rows += n
				}
			}
			if dr.Error != nil || rows == 0 {
				t.Errorf("%s: %s, panel query %s: error %v, %d rows", b, filepath.Base(board), q.RefID, dr.Error, rows)
			}
		}
	}
	r.newReleases(b.String() + " (dashboard)")
}

// checkAccuracy compares every fresh release of the run with the exact answer.
func (r *runner) checkAccuracy() {
	t := r.t
	if len(r.releases) == 0 {
		t.Error("the documentation released nothing")
		return
	}
	x, err := docsexamples.OpenExact(context.Background(), filepath.Join(r.work, "velo-demo", "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var lines []string
	for _, rel := range r.releases {
		var parsed docsexamples.Release
		if err := json.Unmarshal(rel.release, &parsed); err != nil {
			t.Fatal(err)
		}
		c, err := x.Compare(context.Background(), rel.canonical, parsed)
		if err != nil {
			t.Errorf("%s: %v", rel.where, err)
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s\n    %d rows (exact: %d groups, %d released rows without one)", rel.where, oneLine(rel.text), c.Rows, c.Groups, c.Unmatched))
		for _, col := range c.Columns {
			ok, why := col.Meaningful()
			mark := "ok"
			if !ok {
				mark = "NOT MEANINGFUL: " + why
				t.Errorf("%s: %s: %s: %s", rel.where, oneLine(rel.text), col.Name, why)
			}
			lines = append(lines, fmt.Sprintf("    %s  [%s]", col, mark))
		}
		for _, e := range c.Examples {
			lines = append(lines, "    e.g. "+e)
		}
	}
	t.Logf("accuracy against plain DuckDB's exact answers (values within %.0f%%: at least %.0f%%; median error at most %.0f%%):\n%s",
		100*docsexamples.Tolerance, 100*docsexamples.MinClose, 100*docsexamples.MaxMedianError, strings.Join(lines, "\n"))
}

// checkBudget: after the whole documentation, the demo's project can still ask.
func (r *runner) checkBudget() {
	t := r.t
	_, projects, err := ledger.Read(r.state)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	found := false
	for _, p := range projects {
		lines = append(lines, fmt.Sprintf("  %-8s epsilon %g spent of %g, %g left; delta %g spent of %g; %d queries",
			p.ID, p.Spent.Epsilon, p.Total.Epsilon, p.Left.Epsilon, p.Spent.Delta, p.Total.Delta, p.Queries))
		if p.ID != demoProject {
			continue
		}
		found = true
		if p.Left.Epsilon < max(p.DefaultEpsilon, 1e-9) {
			t.Errorf("following the documentation exhausts the demo's budget: project %s has epsilon %g left of %g (%g spent), less than its default of %g per query",
				p.ID, p.Left.Epsilon, p.Total.Epsilon, p.Spent.Epsilon, p.DefaultEpsilon)
		}
	}
	if !found {
		t.Errorf("the demo's ledger has no project %s", demoProject)
	}
	t.Logf("budgets after the documentation:\n%s", strings.Join(lines, "\n"))
}

func (r *runner) report(took time.Duration) {
	r.t.Logf("documentation examples: %d blocks run, %d replaced, %d skipped; %d fresh releases; demo started in %s (%s of CPU); %s in all\nran:\n  %s\nreplaced:\n  %s\nskipped:\n  %s",
		len(r.ran), len(r.replaced), len(r.skipped), len(r.releases), r.demo.startup.Round(100*time.Millisecond), r.demo.startupCPU.Round(100*time.Millisecond), took.Round(time.Second),
		strings.Join(r.ran, "\n  "), strings.Join(r.replaced, "\n  "), strings.Join(r.skipped, "\n  "))
}

// session is a shell session: each block runs in a new bash that starts from the variables
// the previous block left (every assignment exported, as with set -a), in dir.
type session struct {
	dir string
	env []string // NAME=value
}

// run runs script under set -euo pipefail and returns its output (stdout and stderr).
func (s *session) run(script string) (string, error) {
	state, err := os.CreateTemp("", "docs-examples-env-")
	if err != nil {
		return "", err
	}
	state.Close()
	defer os.Remove(state.Name())
	// The EXIT trap saves the variables (NUL-separated) whatever happens; they are kept only
	// when the block succeeds.
	wrapped := "set -a\ntrap 'env -0 > " + shQuote(state.Name()) + "' EXIT\nset -euo pipefail\n" + script
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", wrapped)
	cmd.Dir = s.dir
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("still running after %s", blockTimeout)
	}
	if err != nil {
		return out.String(), err
	}
	b, err := os.ReadFile(state.Name())
	if err != nil {
		return out.String(), err
	}
	var env []string
	for kv := range strings.SplitSeq(string(b), "\x00") {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || slices.Contains([]string{"_", "PWD", "OLDPWD", "SHLVL"}, name) || strings.HasPrefix(name, "BASH_FUNC_") {
			continue
		}
		env = append(env, kv)
	}
	s.env = env
	return out.String(), nil
}

func (s *session) environ() []string { return slices.Clone(s.env) }

func (s *session) lookup(name string) (string, bool) {
	for _, kv := range s.env {
		if n, v, _ := strings.Cut(kv, "="); n == name {
			return v, true
		}
	}
	return "", false
}

// baseEnv is a reader's terminal: this process's PATH (velo is not on it), home, locale
// and temporary directory, and nothing of Velo's.
func baseEnv() []string {
	var env []string
	for _, name := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "CI"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// checkoutView makes dir a view of the checkout at root: a symbolic link to each of its
// top-level entries, and velo-demo and bin from work (the demo's and the runner's).
func checkoutView(root, work, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "velo-demo", "bin", "tmp":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	for _, name := range []string{"velo-demo", "bin"} {
		if err := os.Symlink(filepath.Join(work, name), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// demoProcess is velo demo run as a reader runs make demo, on a free port.
type demoProcess struct {
	t       *testing.T
	work    string
	persons string // --persons, or "" for the default
	port    string // kept across restarts, so $VELO_URL stays valid
	url     string
	startup time.Duration // of the first start: synthetic data, ingest, server
	// startupCPU is the CPU time of the first start, and load the load average then.
	startupCPU time.Duration
	load       string
	cmd        *exec.Cmd
	out        *syncBuffer
	done       chan error
}

var runningAt = regexp.MustCompile(`Velo demo is running at (http://(\S+)) `)

func (d *demoProcess) addr() string { return strings.TrimPrefix(d.url, "http://") }

func (d *demoProcess) want(s docsexamples.Demo) {
	switch {
	case s == docsexamples.DemoStopped && d.cmd != nil:
		d.stop()
	case s == docsexamples.DemoRunning && d.cmd == nil:
		d.start()
	}
}

func (d *demoProcess) start() {
	t := d.t
	args := []string{"demo", "--dir", "velo-demo", "--addr", "127.0.0.1:" + orDefault(d.port, "0")}
	if d.persons != "" {
		args = append(args, "--persons", d.persons)
	}
	began := time.Now()
	d.cmd = exec.Command(filepath.Join(d.work, "bin", "velo"), args...)
	d.cmd.Dir = d.work
	d.out = &syncBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(d.cmd, d.done)
	// Generous: on a loaded machine the first start (100,000 people) has taken over 3 minutes
	// for 45 s of CPU.
	deadline := time.After(10 * time.Minute)
	for {
		if m := runningAt.FindStringSubmatch(d.out.String()); m != nil {
			d.url = m[1]
			_, d.port, _ = strings.Cut(m[2], ":")
			break
		}
		select {
		case err := <-d.done:
			d.cmd = nil
			t.Fatalf("velo %s ended before serving: %v\n%s", strings.Join(args, " "), err, tail(d.out.String()))
		case <-deadline:
			t.Fatalf("velo %s did not serve within 10 minutes:\n%s", strings.Join(args, " "), tail(d.out.String()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if d.startup == 0 {
		d.startup = time.Since(began)
		d.startupCPU, d.load = cpuTime(d.cmd.Process.Pid), loadAverage()
	}
}

// cpuTime is the CPU time a process has used (Linux: /proc; 0 elsewhere). Beside the
// wall time it tells a slow start on a busy machine from a slow program.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// After the command name in parentheses: state is field 3, utime and stime 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// stop stops the demo as Ctrl-C does, and checks it shut down cleanly.
func (d *demoProcess) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("velo demo did not stop cleanly: %v\n%s", err, tail(d.out.String()))
		}
	case <-time.After(2 * time.Minute):
		_ = d.cmd.Process.Kill()
		d.t.Errorf("velo demo did not stop within 2 minutes of Ctrl-C:\n%s", tail(d.out.String()))
	}
	d.cmd = nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// provisioned is a data source in Grafana's provisioning file.
type provisioned struct {
	Name           string            `yaml:"name"`
	Type           string            `yaml:"type"`
	UID            string            `yaml:"uid"`
	JSONData       map[string]string `yaml:"jsonData"`
	SecureJSONData map[string]string `yaml:"secureJsonData"`
}

// provisionedDatasource reads the Velo data source from Grafana's provisioning files in
// dir, expanding ${VAR} as Grafana does from its environment (here, the session's).
func provisionedDatasource(dir string, lookup func(string) (string, bool)) (backend.DataSourceInstanceSettings, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(files) == 0 {
		return backend.DataSourceInstanceSettings{}, fmt.Errorf("no data source provisioning in %s", dir)
	}
	var p struct {
		Datasources []provisioned `yaml:"datasources"`
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		return backend.DataSourceInstanceSettings{}, err
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		return backend.DataSourceInstanceSettings{}, fmt.Errorf("%s: %w", files[0], err)
	}
	i := slices.IndexFunc(p.Datasources, func(d provisioned) bool { return d.Type == plugin.ID })
	if i < 0 {
		return backend.DataSourceInstanceSettings{}, fmt.Errorf("%s provisions no %s data source", files[0], plugin.ID)
	}
	ds := p.Datasources[i]
	var missing []string
	expand := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = os.Expand(v, func(name string) string {
				val, ok := lookup(name)
				if !ok || val == "" {
					missing = append(missing, name)
				}
				return val
			})
		}
		return out
	}
	jsonData, err := json.Marshal(expand(ds.JSONData))
	if err != nil {
		return backend.DataSourceInstanceSettings{}, err
	}
	secure := expand(ds.SecureJSONData)
	if len(missing) > 0 {
		return backend.DataSourceInstanceSettings{}, fmt.Errorf("the documentation did not set %s, which %s needs", strings.Join(missing, ", "), files[0])
	}
	return backend.DataSourceInstanceSettings{UID: ds.UID, Name: ds.Name, Type: ds.Type, JSONData: jsonData, DecryptedSecureJSONData: secure, Updated: time.Now()}, nil
}

// panelQueries are a dashboard's panel queries as Grafana sends them for its saved range.
func panelQueries(path string) ([]backend.DataQuery, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d struct {
		Time   struct{ From, To string } `json:"time"`
		Panels []struct {
			Targets []json.RawMessage `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	from, err1 := time.Parse(time.RFC3339, d.Time.From)
	to, err2 := time.Parse(time.RFC3339, d.Time.To)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("%s: the time range is not absolute: %w", path, err)
	}
	var qs []backend.DataQuery
	for _, p := range d.Panels {
		for _, raw := range p.Targets {
			var tgt struct {
				QueryType string `json:"queryType"`
			}
			if err := json.Unmarshal(raw, &tgt); err != nil {
				return nil, err
			}
			qs = append(qs, backend.DataQuery{RefID: fmt.Sprintf("Q%d", len(qs)+1), QueryType: tgt.QueryType, JSON: raw,
				TimeRange: backend.TimeRange{From: from, To: to}, Interval: 24 * time.Hour, MaxDataPoints: 1000})
		}
	}
	return qs, nil
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 140 {
		s = s[:137] + "..."
	}
	return s
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func tail(s string) string {
	const n = 6000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
