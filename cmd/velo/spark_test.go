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

// TestServeSparkEngine runs `velo synth` and `velo ingest` (FHIR and CSV), starts two `velo
// serve` over the dataset — engine duckdb and engine spark, on a cluster of two workers —
// and sends both the whole bench suite and dashboard: every query is released by both,
// with the same shape (bounding, columns, budget split, groups and intervals); what the
// Spark dialect cannot print is refused, dry run and query alike, before the charge; the
// Spark server's ledger charges exactly its releases and verifies (docs/scale.md).
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
		Allow: map[string][]string{"booking": {}, "person": {}, "lab_result": {}}, EpsilonBudget: 100, DeltaBudget: 1e-4, DefaultEpsilon: 1, MaxEpsilonPerQuery: 1,
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
	var released []string
	methods := map[string]int{}
	seen := map[string]bool{}
	for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
		if seen[q.ID] {
			continue
		}
		seen[q.ID] = true
		d := ask(duck, duckTok, q, false)
		if d.status != http.StatusOK {
			t.Fatalf("%s on DuckDB: %d %s %s", q.ID, d.status, d.code, d.msg)
		}
		// A dry run on Spark answers as the query does: priced.
		dry := ask(spk, spkTok, q, true)
		s := ask(spk, spkTok, q, false)
		if dry.status != http.StatusOK || s.status != http.StatusOK {
			t.Errorf("%s on Spark: dry run %d, query %d %s %s; the server's log:\n%s", q.ID, dry.status, s.status, s.code, s.msg, spk.stderr)
			continue
		}
		released = append(released, q.ID)
		methods[s.rel.Bounding.Method]++
		spent += s.rel.Epsilon
		// The same bounding, columns, budget split and intervals; the same groups where
		// they are public. Groups chosen by DP partition selection are a noisy choice on
		// each server (at this size few groups, if any, pass it): both releases say so.
		dshape, sshape := shapeOf(d.rel, q.Keys), shapeOf(s.rel, q.Keys)
		if q.Delta > 0 {
			for _, r := range []release.Release{d.rel, s.rel} {
				if r.Selection == nil || r.Selection.GroupsKept == nil || len(r.Rows) != *r.Selection.GroupsKept {
					t.Errorf("%s: a release without partition selection's account: %+v, %d rows", q.ID, r.Selection, len(r.Rows))
				}
			}
			delete(dshape, "rows")
			delete(sshape, "rows")
		}
		if diff := cmp.Diff(dshape, sshape); diff != "" {
			t.Errorf("%s: the releases' shapes differ (-duckdb +spark):\n%s", q.ID, diff)
		}
	}
	t.Logf("released on both engines (%v): %s; 0 refused", methods, strings.Join(released, ", "))
	// What the Spark dialect cannot print with DuckDB's meaning is refused before the
	// charge, dry run and query alike (DuckDB's and Spark's sign differ on NaN).
	signQ := bench.SuiteQuery{ID: "sign", Select: "SELECT region, COUNT(*) AS n", From: "booking", Where: "sign(wait_days) > 0", GroupBy: "region", Keys: 1}
	if d := ask(duck, duckTok, signQ, true); d.status != http.StatusOK {
		t.Errorf("sign on DuckDB: dry run %d %s %s", d.status, d.code, d.msg)
	}
	for _, dry := range []bool{true, false} {
		if s := ask(spk, spkTok, signQ, dry); s.status != http.StatusBadRequest || s.code != "sql_rejected" || !strings.Contains(s.msg, "Spark") {
			t.Errorf("sign on Spark (dry run %v): %d %s %s, want 400 sql_rejected naming the engine", dry, s.status, s.code, s.msg)
		}
	}
	if len(released) != len(seen) || methods["per_group"] == 0 || methods["person_rank"] == 0 {
		t.Errorf("%d of %d suite queries released on Spark, by bounding %v", len(released), len(seen), methods)
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
