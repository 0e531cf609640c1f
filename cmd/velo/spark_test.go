package main

// The acceptance test of the Spark engine (docs/scale.md): a Spark cluster (a master, two
// workers and a Spark Connect server, separate processes on loopback: internal/sparktest),
// a synthetic extract made with velo synth and velo ingest, and the bench suite sent
// through two velo serve processes over it, one with engine: duckdb and one with engine:
// spark. query's TestSparkCrossEngine compares the exact pre-noise totals; here the
// releases' shapes, and refusals before any charge.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/internal/sparktest"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

func TestServeSparkEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Spark cluster")
	}
	cluster := sparktest.Start(t, 2)
	dir := t.TempDir()
	src, data, key := filepath.Join(dir, "src"), filepath.Join(dir, "data"), filepath.Join(dir, "key")
	for _, args := range [][]string{
		{"synth", "--persons", "1500", "--seed", "14", "--period", "2024-01..2025-12", "--out", src},
		{"keys", "gen", "--out", key},
		{"ingest", "--key", key, "--out", data, "--period", "2024-01..2025-12", src},
	} {
		if out, err := runVelo(t, args...); err != nil {
			t.Fatalf("velo %s: %v\n%s", args[0], err, out)
		}
	}
	project := ledger.Project{
		ID: "wl", Purpose: "Spark engine test", LegalBasis: "none: synthetic data", Approver: "dpo",
		Allow: map[string][]string{"booking": {}}, EpsilonBudget: 100, DeltaBudget: 1e-4, DefaultEpsilon: 1, MaxEpsilonPerQuery: 1,
	}
	// One server per engine, each with its own ledger holding the same project.
	start := func(name, engine string) (*server, string, string) {
		t.Helper()
		d := filepath.Join(dir, name)
		state := filepath.Join(d, "state")
		l, err := ledger.Open(state, ledger.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.CreateProject(context.Background(), "setup", project); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		tok, stored, err := notebooksapi.NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := notebooksapi.Config{
			Data: data, State: state, Engine: engine,
			// A cold cluster's first job on a busy machine may take a minute: the default
			// query_timeout (60s) would fail it after its charge.
			Limits: notebooksapi.Limits{MaxConcurrentQueries: 2, Threads: 1, MemoryLimit: "512MB", QueryTimeout: 10 * time.Minute},
			Users:  []notebooksapi.User{{Name: "rita", Role: notebooksapi.RoleResearcher, Projects: []string{project.ID}, Tokens: []notebooksapi.Token{stored}}},
		}
		if engine == query.DialectSpark {
			cfg.Spark = notebooksapi.SparkConfig{Connect: cluster.Remote}
		}
		cfgPath := filepath.Join(d, "velo.yaml")
		if err := notebooksapi.WriteConfig(cfgPath, cfg, "# written by TestServeSparkEngine\n"); err != nil {
			t.Fatal(err)
		}
		return startServe(t, &opsEnv{cfgPath: cfgPath, state: state}), tok, state
	}
	duck, duckTok, _ := start("duckdb", query.DialectDuckDB)
	spk, spkTok, spkState := start("spark", query.DialectSpark)
	c := newClient()

	type answer struct {
		status int
		rel    release.Release
		code   string
		msg    string
	}
	ask := func(s *server, tok string, q bench.SuiteQuery, dry bool) answer {
		t.Helper()
		body := map[string]any{"project": project.ID, "sql": q.SQL()}
		if q.Delta > 0 {
			body["delta"] = q.Delta
		}
		if dry {
			body["dry_run"] = true
		}
		status, b, err := call(c, "POST", s.URL+"/v1/queries", tok, body)
		if err != nil {
			t.Fatal(err)
		}
		a := answer{status: status}
		if status == http.StatusOK {
			if err := json.Unmarshal(b, &a.rel); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			return a
		}
		var e struct{ Code, Detail string }
		json.Unmarshal(b, &e)
		a.code, a.msg = e.Code, e.Detail
		if a.code == "" {
			a.msg = string(b)
		}
		return a
	}
	var spent float64
	var released, refused []string
	seen := map[string]bool{}
	for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
		if q.Full || seen[q.ID] {
			continue // person and lab_result: not in the CSV extract
		}
		seen[q.ID] = true
		d := ask(duck, duckTok, q, false)
		if d.status != http.StatusOK {
			t.Fatalf("%s on DuckDB: %d %s %s", q.ID, d.status, d.code, d.msg)
		}
		// A dry run on Spark answers as the query will: priced, or refused.
		dry := ask(spk, spkTok, q, true)
		s := ask(spk, spkTok, q, false)
		if s.status != dry.status {
			t.Errorf("%s on Spark: dry run %d, query %d", q.ID, dry.status, s.status)
		}
		if s.status != http.StatusOK {
			if s.status != http.StatusBadRequest || s.code != "sql_rejected" || !strings.Contains(s.msg, "person_rank") {
				t.Errorf("%s on Spark: %d %s %s, want 400 sql_rejected naming the bounding it runs; the server's log:\n%s", q.ID, s.status, s.code, s.msg, spk.stderr)
			}
			refused = append(refused, q.ID)
			continue
		}
		released = append(released, q.ID)
		spent += s.rel.Epsilon
		if diff := cmp.Diff(shapeOf(d.rel, q.Keys), shapeOf(s.rel, q.Keys)); diff != "" {
			t.Errorf("%s: the releases' shapes differ (-duckdb +spark):\n%s", q.ID, diff)
		}
		if s.rel.Bounding.Method != "person_rank" {
			t.Errorf("%s on Spark: bounding %s", q.ID, s.rel.Bounding.Method)
		}
	}
	t.Logf("released on both engines: %s; refused on Spark before the charge: %s", strings.Join(released, ", "), strings.Join(refused, ", "))
	if len(released) < 9 || len(refused) == 0 {
		t.Errorf("%d released, %d refused on Spark", len(released), len(refused))
	}
	// The Spark server's ledger: exactly the released queries charged, none of the refused.
	if err := spk.stop(t); err != nil {
		t.Errorf("the Spark server's exit: %v", err)
	}
	l, err := ledger.Open(spkState, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := l.Project(project.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := epsUnits(project.EpsilonBudget-st.Left.Epsilon), epsUnits(spent); got != want {
		t.Errorf("the Spark server charged epsilon %v, its releases add up to %v", float64(got)/1e12, spent)
	}
	if _, err := ledger.Verify(spkState, ledger.VerifyOptions{}); err != nil {
		t.Errorf("velo ledger verify: %v", err)
	}
}

// shapeOf is what two engines' releases of one query share: everything but the noisy
// values, with the rows' keys (the first nkeys cells) in a canonical order.
func shapeOf(r release.Release, nkeys int) map[string]any {
	var keys []string
	for i, row := range r.Rows {
		k := fmt.Sprint(row[:nkeys])
		keys = append(keys, fmt.Sprintf("%s: %d cells, %d intervals", k, len(row), len(r.CI[i])))
	}
	slices.Sort(keys)
	cols, _ := json.Marshal(r.Columns)
	split, _ := json.Marshal(r.BudgetSplit)
	bounding, _ := json.Marshal(r.Bounding)
	return map[string]any{
		"columns": string(cols), "budget_split": string(split), "bounding": string(bounding),
		"epsilon": r.Epsilon, "delta": r.Delta, "confidence": r.Confidence, "sql": r.SQL,
		"dataset_version": r.DatasetVersion, "rows": keys,
	}
}
