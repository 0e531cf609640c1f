package notebooksapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/ledger"
)

// stdlibPython runs velo_client.py, which needs only the standard library.
const stdlibPython = "/usr/bin/python3"

// TestNotebook executes examples/waiting_lists.ipynb headlessly against a live server on
// loopback, as the researcher, with the velo-client package of this tree (VELO_PYTHON: the
// client's test extras), twice. The notebook develops its query on the dummy twin (free: the
// budget is the same before and after, and the ledger gets a dummy entry), prices it, runs
// it for real (charged once: the second run is answered from the release cache) and plots
// it with its intervals (an image in the cell's output).
var (
	medianWithCI = regexp.MustCompile(`-?[0-9]+\.[0-9] \[-?[0-9]+\.[0-9], -?[0-9]+\.[0-9]\]`)
	dummyFree    = regexp.MustCompile(`Dummy run on the twin \(dummy_[0-9a-f]+\): [0-9]+ rows, exact, cost nothing \(budget left: epsilon ([0-9.]+) before, ([0-9.]+) after\)`)
)

func TestNotebook(t *testing.T) {
	python := testenv.NotebookPython(t)
	ts := startServer(t)
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.NotebookEnv(append(os.Environ(), "VELO_URL="+ts.URL, "VELO_TOKEN="+ts.Tokens["rita"]), root)
	var text string
	for run := 1; run <= 2; run++ {
		out := filepath.Join(t.TempDir(), "out.ipynb")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, python, "-Xfrozen_modules=off", "-c", testenv.RunNotebook, filepath.Join(examples, "waiting_lists.ipynb"), examples, out)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, b)
		}
		var images int
		text, images = notebookText(t, out)
		charged := "charged epsilon 1.0"
		if run == 2 {
			charged = "cached, not charged again"
		}
		for _, want := range []string{
			"Signed in as rita (researcher).",
			"refused on the twin, free: sql_rejected — unknown column regoin",
			"The real run will cost epsilon 1.0, delta 0.0",
			"Price: epsilon 1.0, delta 0.0",
			charged,
			"share (95% CI)", "Share within target (rows: region, columns: priority class):",
			"Plotted 21 regions with their 95% intervals.",
			"median wait, days (95% CI)",
			"2025-12-01", // the last month of the trend
			"refused: sql_rejected",
			"Budget left for wl: epsilon 6.75, delta 1e-05",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("run %d: the notebook's output lacks %q", run, want)
			}
		}
		if m := dummyFree.FindStringSubmatch(text); m == nil || m[1] != m[2] {
			t.Errorf("run %d: the dummy run was not shown free: %q", run, m)
		}
		if images != 1 {
			t.Errorf("run %d: %d images in the outputs, want the one plot", run, images)
		}
		// Medians print with their intervals: "17.2 [12.9, 21.6]".
		if _, after, _ := strings.Cut(text, "median wait, days (95% CI)"); !medianWithCI.MatchString(after) {
			t.Errorf("run %d: no median printed with its interval", run)
		}
		// Charged exactly once for each real query, over both runs; one dummy entry a run.
		if st := ts.project(t, "wl"); st.Queries != 3 || st.Spent.Epsilon != 3.25 {
			t.Errorf("run %d: %d queries, epsilon %v spent; want 3 and 3.25", run, st.Queries, st.Spent.Epsilon)
		}
		dummies := 0
		for _, e := range ts.Ledger.Entries("wl", 0) {
			if e.Kind == ledger.KindDummy {
				dummies++
			}
		}
		if dummies != run {
			t.Errorf("run %d: %d dummy runs in the ledger, want %d", run, dummies, run)
		}
	}
	if t.Failed() {
		t.Logf("notebook output:\n%s", text)
	}

	// The standard-library client runs on its own too (the demo's command for people
	// without Jupyter).
	if _, err := os.Stat(stdlibPython); err != nil {
		return
	}
	cmd := exec.Command(stdlibPython, filepath.Join(examples, "velo_client.py"))
	cmd.Env = append(os.Environ(), "VELO_URL="+ts.URL, "VELO_TOKEN="+ts.Tokens["rita"], "PYTHONDONTWRITEBYTECODE=1")
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "rita (researcher), projects: wl, small") || !strings.Contains(string(b), "budget left for wl") {
		t.Errorf("velo_client.py: %v\n%s", err, b)
	}
}

// needPython skips without /usr/bin/python3, unless CI is set.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(stdlibPython); err == nil {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skip("no /usr/bin/python3; CI runs this test")
	}
	t.Fatalf("CI needs /usr/bin/python3")
}

// TestVeloClientStandardLibrary runs velo_client.py as the README's "without Jupyter"
// command, with Python's standard library only (-S: no site-packages, so no pandas even
// where it is installed): it prints the release as a table with its intervals, charged
// once; run again, it is answered from the cache. Release.df without pandas says what to
// use instead, and that asking again is free.
func TestVeloClientStandardLibrary(t *testing.T) {
	needPython(t)
	ts := startServer(t)
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "VELO_URL="+ts.URL, "VELO_TOKEN="+ts.Tokens["rita"], "PYTHONDONTWRITEBYTECODE=1")
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(stdlibPython, "-S", filepath.Join(examples, "velo_client.py"))
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		out := string(b)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		state := "charged epsilon=1 delta=0"
		if run == 2 {
			state = "cached, not charged again"
		}
		for _, want := range []string{"rita (researcher), projects: wl, small", state,
			"region  share_within_target (95% CI)", "people (95% CI)", "\n010 ", "budget left for wl: epsilon 9"} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: the output lacks %q:\n%s", run, want, out)
			}
		}
		if st := ts.project(t, "wl"); st.Queries != 1 {
			t.Errorf("run %d: %d queries charged, want 1", run, st.Queries)
		}
	}

	const noPandas = `
import sys
sys.path.insert(0, sys.argv[1])
from velo_client import Client
r = Client.from_env().query("SELECT region, COUNT(DISTINCT pid) AS people FROM booking WHERE first_access GROUP BY region ORDER BY region", project="wl", epsilon=0.5)
try:
    r.df
except ImportError as e:
    print(e)
`
	cmd := exec.Command(stdlibPython, "-S", "-c", noPandas, examples)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Release.df needs pandas") || !strings.Contains(string(b), "print(release.table())") || !strings.Contains(string(b), "costs nothing") {
		t.Errorf("Release.df without pandas: %v\n%s", err, b)
	}

	// A dummy run: marked, exact, free.
	const dummy = `
import sys
sys.path.insert(0, sys.argv[1])
from velo_client import Client
r = Client.from_env().query("SELECT region, COUNT(*) AS n FROM booking GROUP BY region", project="wl", epsilon=0.5, dummy=True)
print(repr(r))
print(r.dummy, r.epsilon, r.price["epsilon"], all(ci[1] == [row[1], row[1]] for row, ci in zip(r.rows, r.ci)))
`
	before := ts.project(t, "wl")
	cmd = exec.Command(stdlibPython, "-S", "-c", dummy, examples)
	cmd.Env = env
	b, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "DUMMY DATA (made-up people, not the real answers), not charged") || !strings.Contains(string(b), "True 0 0.5 True\n") {
		t.Errorf("a dummy run through velo_client.py: %v\n%s", err, b)
	}
	if after := ts.project(t, "wl"); after.Spent != before.Spent || after.Queries != before.Queries {
		t.Errorf("the dummy run through velo_client.py was charged: %v", after.Spent)
	}

	// A refusal for want of budget carries the numbers (project small has epsilon 1).
	const exhausted = `
import sys
sys.path.insert(0, sys.argv[1])
from velo_client import Client, VeloError
velo = Client.from_env()
velo.query("SELECT COUNT(DISTINCT pid) AS people FROM booking", project="small", epsilon=1)
try:
    velo.query("SELECT COUNT(DISTINCT pid) AS people FROM booking WHERE first_access", project="small", epsilon=0.5)
except VeloError as e:
    print(e.code, e.budget["asked"]["epsilon"], e.budget["spent"]["epsilon"], e.budget["left"]["epsilon"])
    print(e.detail)
`
	cmd = exec.Command(stdlibPython, "-S", "-c", exhausted, examples)
	cmd.Env = env
	b, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "budget_exhausted 0.5 1 0\n") || !strings.Contains(string(b), "POST /v1/projects/small/grants") {
		t.Errorf("budget_exhausted through velo_client.py: %v\n%s", err, b)
	}
}

// notebookText is every output of the executed notebook's code cells, as text.
func notebookText(t *testing.T, path string) (string, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Cells []struct {
			CellType string `json:"cell_type"`
			Outputs  []struct {
				OutputType string                     `json:"output_type"`
				Text       json.RawMessage            `json:"text"`
				Data       map[string]json.RawMessage `json:"data"`
				Ename      string                     `json:"ename"`
				Evalue     string                     `json:"evalue"`
			} `json:"outputs"`
		} `json:"cells"`
	}
	mustJSON(t, b, &nb)
	var sb strings.Builder
	images := 0
	for _, c := range nb.Cells {
		for _, o := range c.Outputs {
			if _, ok := o.Data["image/png"]; ok {
				images++
			}
			if o.OutputType == "error" {
				t.Errorf("a cell raised %s: %s", o.Ename, o.Evalue)
			}
			var s string
			if json.Unmarshal(o.Text, &s) != nil {
				var lines []string
				_ = json.Unmarshal(o.Text, &lines)
				s = strings.Join(lines, "")
			}
			sb.WriteString(s)
		}
	}
	return sb.String(), images
}
