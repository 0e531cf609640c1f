package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/synth"
)

// TestSuiteQueries checks the side-by-side suite (bench.Suite, bench.Dashboard) on a tiny
// full extract (FHIR and CSV, 400 persons): Velo accepts and runs every query and releases
// the columns plain DuckDB returns; the no-op condition that makes each timed run a new
// query leaves the exact result unchanged; a panel sent again is answered from the release
// cache (the "cached" dashboard refresh). The peers are benchmark-only: see
// bench/cmd/peerbench.
func TestSuiteQueries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "synth")
	if _, err := synth.Generate(ctx, synth.Config{Persons: 400, Seed: 1, Out: src, From: period.From, To: period.To}); err != nil {
		t.Fatal(err)
	}
	key, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if _, err := ingest.Run(ctx, ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{src}, Period: period, MemoryLimit: "512MB"}); err != nil {
		t.Fatal(err)
	}

	led, err := ledger.Open(t.TempDir(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	if err := led.CreateProject(ctx, "dpo:bench", ledger.Project{
		ID: "bench", Purpose: "suite test", LegalBasis: "none: synthetic data",
		Allow:         map[string][]string{"booking": nil, "person": nil, "lab_result": nil},
		EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 1,
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := query.Open(ctx, query.Config{DataDir: data, Ledger: led, Limits: query.Limits{Threads: 2, MemoryLimit: "1GB"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, tbl := range []string{"booking", "person", "lab_result"} {
		if _, err := db.Exec(fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s')", tbl, filepath.Join(data, tbl, "*.parquet"))); err != nil {
			t.Fatal(err)
		}
	}

	seen := map[string]bool{}
	for _, q := range append(slices.Clone(bench.Suite), bench.Dashboard...) {
		if seen[q.ID] {
			continue
		}
		seen[q.ID] = true
		t.Run(q.ID, func(t *testing.T) {
			exact, err := plainRows(ctx, db, q.SQL())
			if err != nil {
				t.Fatalf("plain DuckDB: %v\n%s", err, q.SQL())
			}
			if len(exact) == 0 {
				t.Fatalf("plain DuckDB returned no group: the tiny extract does not exercise %s", q.ID)
			}
			varied, err := plainRows(ctx, db, q.Variant(7))
			if err != nil {
				t.Fatalf("plain DuckDB, variant: %v", err)
			}
			if diff := cmp.Diff(exact, varied); diff != "" {
				t.Errorf("the no-op condition changed the result (-plain +variant):\n%s", diff)
			}
			req := query.Request{SQL: q.Variant(1), Project: "bench", Actor: "user:bench"}
			if q.Delta > 0 {
				d := q.Delta
				req.Delta = &d
			}
			rel, err := eng.Query(ctx, req)
			if err != nil {
				t.Fatalf("velo refused or failed: %v\n%s", err, req.SQL)
			}
			if rel.Cached {
				t.Fatal("a fresh variant was answered from the release cache")
			}
			cols, err := plainColumns(ctx, db, q.SQL())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range rel.Columns {
				names = append(names, c.Name)
			}
			if diff := cmp.Diff(cols, names); diff != "" {
				t.Errorf("released columns differ from plain DuckDB's (-plain +velo):\n%s", diff)
			}
			if q.Keys < 1 || q.Keys >= len(names) {
				t.Errorf("Keys = %d for %d columns", q.Keys, len(names))
			}
			if q.Delta == 0 && len(rel.Rows) < len(exact) {
				t.Errorf("public-domain query released %d groups, plain DuckDB has %d", len(rel.Rows), len(exact))
			}
			again, err := eng.Query(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Cached || again.ReleaseID != rel.ReleaseID {
				t.Errorf("the same panel again: cached %v, release %s (first %s)", again.Cached, again.ReleaseID, rel.ReleaseID)
			}
		})
	}
	if len(bench.Dashboard) != 12 {
		t.Errorf("the dashboard has %d panels, want 12", len(bench.Dashboard))
	}
}

func plainColumns(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return rows.Columns()
}
