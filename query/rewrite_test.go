package query

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testCatalog is the catalog of a dataset with the declared period 2024-01..2025-12:
// built from the schema and reference data only, so no data is needed.
func testCatalog(t *testing.T) *dataset.Catalog {
	t.Helper()
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		t.Fatal(err)
	}
	cat := ingest.BuildCatalog("ds_test", period)
	return &cat
}

func allowAll(cat *dataset.Catalog) map[string][]string {
	allow := map[string][]string{}
	for _, t := range cat.Tables {
		allow[t.Name] = nil
	}
	return allow
}

func testParser(t *testing.T) *sql.DB {
	t.Helper()
	p, err := openParser(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// emptyDataset is an in-memory DuckDB with the canonical tables, empty: the rewrites
// must bind against it.
func emptyDataset(t *testing.T, cat *dataset.Catalog) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, tb := range cat.Tables {
		var cols []string
		for _, c := range tb.Columns {
			cols = append(cols, quoteIdent(c.Name)+" "+c.Type)
		}
		if tb.PersonRank {
			cols = append(cols, dataset.PersonRankColumn+" BIGINT")
		}
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE %s (%s)", quoteIdent(tb.Name), strings.Join(cols, ", "))); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// Golden tests for the rewriter: testdata/*.sql → *.golden (go test ./query -update
// rewrites them). Every rewrite must also bind in DuckDB.
func TestRewriteGolden(t *testing.T) {
	cat := testCatalog(t)
	parser := testParser(t)
	db := emptyDataset(t, cat)
	files, _ := filepath.Glob("testdata/*.sql")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := checkSQL(context.Background(), parser, cat, string(src), allowAll(cat))
			if err != nil {
				t.Fatal(err)
			}
			g, r := contributionBounds(plan)
			rw := rewrite(plan, 42, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
			var b strings.Builder
			fmt.Fprintf(&b, "-- canonical: %s\n-- keys:", plan.Canonical)
			for _, k := range plan.Keys {
				dom := "partition selection"
				if k.Domain != nil {
					dom = fmt.Sprintf("%d public values (%s)", len(k.Domain.Values), k.Domain.Source)
				}
				fmt.Fprintf(&b, " %s [%s];", k.Name, dom)
			}
			fmt.Fprintf(&b, "\n-- aggregates:")
			for _, a := range plan.Aggs {
				fmt.Fprintf(&b, " %s=%s", a.Name, a.Kind)
				if a.Arg != nil {
					fmt.Fprintf(&b, "(%s, bounds [%g, %g] from %s)", a.Arg.String(), a.Lo, a.Hi, a.BoundsSrc)
				}
				b.WriteString(";")
			}
			fmt.Fprintf(&b, "\n-- max groups contributed %d, max rows per group %d, mechanisms %d\n", rw.MaxGroups, rw.MaxRows, plan.Mechanisms())
			print := func(rw rewritten) {
				fmt.Fprintf(&b, "%s;\n%s;\n", rw.createBounded(false), rw.Groups)
				if rw.Single != "" {
					fmt.Fprintf(&b, "%s;\n", rw.Single)
				}
				for _, q := range rw.Tree {
					if q != "" {
						fmt.Fprintf(&b, "%s;\n", q)
					}
				}
			}
			print(rw)
			rws := []rewritten{rw}
			// Every other bounding that applies to the query, after the per_group one.
			for _, br := range boundingRules {
				if br.Method != boundingPerGroup && br.Applies(plan) {
					other := br.Rewrite(plan, 42, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
					bnd := br.Bounds(plan, g, r)
					fmt.Fprintf(&b, "-- %s: dp.Bounding{MaxGroups: %d, MaxContributionsPerGroup: %d}\n", br.Method, bnd.MaxGroups, bnd.MaxContributionsPerGroup)
					print(other)
					rws = append(rws, other)
				}
			}
			got := b.String()
			golden := strings.TrimSuffix(f, ".sql") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./query -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("rewrite differs from %s (-want +got):\n%s", golden, diff)
			}
			for _, rw := range rws {
				if _, err := db.Exec(rw.createBounded(false)); err != nil {
					t.Fatalf("%s: bounded does not run: %v", rw.Method, err)
				}
				for _, q := range append([]string{rw.Groups, rw.Inline(), rw.Single}, rw.Tree...) {
					if q == "" {
						continue
					}
					rows, err := db.Query(q)
					if err != nil {
						t.Fatalf("%s: %v\n%s", rw.Method, err, q)
					}
					rows.Close()
				}
			}
		})
	}
}
