package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
)

// columnTypeName names a bound statement's column type as DESCRIBE does, for every scalar
// type a key may have (resolveDomain casts the domain's literals to it), and names nothing
// it cannot name exactly: those types take DESCRIBE's answer instead.
func TestColumnTypeNameMatchesDescribe(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	named := []string{
		"'a'", "true", "CAST(1 AS TINYINT)", "CAST(1 AS SMALLINT)", "CAST(1 AS INTEGER)", "CAST(1 AS BIGINT)",
		"CAST(1 AS HUGEINT)", "CAST(1 AS UTINYINT)", "CAST(1 AS USMALLINT)", "CAST(1 AS UINTEGER)", "CAST(1 AS UBIGINT)",
		"CAST(1.5 AS FLOAT)", "CAST(1.5 AS DOUBLE)", "DATE '2024-03-01'", "TIMESTAMP '2024-03-01 10:00:00'",
		"TIME '10:00:00'", "INTERVAL 3 DAY", "CAST('00000000-0000-0000-0000-000000000001' AS UUID)",
		"CAST(1.25 AS DECIMAL(18,3))", "CAST(1.2 AS DECIMAL(4,1))", "CASE WHEN random() < 2 THEN 1 ELSE 1.5 END",
		"year(DATE '2024-03-01')", "date_trunc('month', DATE '2024-03-01')", "CAST('2024-03-01 10:00:00+00' AS TIMESTAMPTZ)",
	}
	unnamed := []string{"[1, 2]", "{'a': 1}", "CAST(NULL AS BLOB)"}
	for _, e := range append(slices.Clone(named), unnamed...) {
		q := "SELECT " + e + " AS k0"
		var want string
		if err := conn.QueryRowContext(ctx, "SELECT column_type FROM (DESCRIBE "+q+")").Scan(&want); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		var got string
		if err := conn.Raw(func(dc any) error {
			st, err := dc.(*duckdb.Conn).PrepareContext(ctx, q)
			if err != nil {
				return err
			}
			defer st.Close()
			got = columnTypeName(st.(*duckdb.Stmt), 0)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		switch {
		case slices.Contains(named, e) && got != want:
			t.Errorf("%s: columnTypeName %q, DESCRIBE %q", e, got, want)
		case !slices.Contains(named, e) && got != "":
			t.Errorf("%s (%s): columnTypeName %q, want none", e, want, got)
		}
	}
}

// A rewrite bound before the charge and run on its held connection (what Engine.run does)
// reads the same groups, and resolves the same domains, as the rewrite's statements run
// as text on any connection, for each bounding and shape: one statement with bounded as a
// common table expression, person_rank's single scan with quantile trees, and per_group's
// materialised table read by the groups and the trees.
func TestBoundRewriteRunsAsText(t *testing.T) {
	ctx := context.Background()
	sb, cat := synthSandbox(t)
	parser := testParser(t)
	tree := treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}
	shapes := map[string]bool{}
	for _, q := range []string{
		"SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking WHERE first_access GROUP BY region, priority",
		"SELECT service_code, MEDIAN(wait_days) AS m, COUNT(DISTINCT pid) AS people FROM booking GROUP BY service_code",
		"SELECT service_code, MEDIAN(wait_days) AS m, QUANTILE_CONT(wait_days, 0.9) AS p90 FROM booking GROUP BY service_code",
		"SELECT CASE WHEN wait_days > 30 THEN 1 ELSE 0.5 END AS late, date_trunc('month', d_contact) AS month, SUM(wait_days) AS w FROM booking GROUP BY late, month",
		"SELECT COUNT(*) AS n FROM booking",
	} {
		plan, err := checkSQL(ctx, parser, cat, q, allowAll(cat))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		g, r := contributionBounds(plan)
		domains := make([]*keyDomain, len(plan.Keys))
		for i, k := range plan.Keys {
			domains[i] = k.Domain
		}
		for _, rule := range boundingRules {
			if !rule.Applies(plan) {
				continue
			}
			rw := rule.Rewrite(plan, 7, g, r, tree, dp.SumScale)
			switch {
			case rw.materialise():
				shapes["materialised"] = true
			case rw.Single != "":
				shapes["single"] = true
			default:
				shapes["inline "+rw.Method] = true
			}
			name := fmt.Sprintf("%s (%s, materialised %v, single %v)", q, rw.Method, rw.materialise(), rw.Single != "")
			wantDomains, err := sb.prepare(ctx, rw, domains)
			if err != nil {
				t.Fatalf("%s: prepare: %v", name, err)
			}
			want, err := sb.run(ctx, rw, len(plan.Keys))
			if err != nil {
				t.Fatalf("%s: run: %v", name, err)
			}
			b, err := sb.bind(ctx, rw, domains)
			if err != nil {
				t.Fatalf("%s: bind: %v", name, err)
			}
			if rw.materialise() == (b.main != nil) {
				t.Errorf("%s: bound groups statement %v", name, b.main != nil)
			}
			got, err := b.run(ctx, len(plan.Keys))
			b.close()
			if err != nil {
				t.Fatalf("%s: bound run: %v", name, err)
			}
			if _, err := b.run(ctx, len(plan.Keys)); err == nil {
				t.Errorf("%s: a closed bound rewrite ran", name)
			}
			if len(want) == 0 {
				t.Fatalf("%s: no groups", name)
			}
			if fmt.Sprint(b.domains) != fmt.Sprint(wantDomains) {
				t.Errorf("%s: domains %v, want %v", name, b.domains, wantDomains)
			}
			if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
				t.Fatalf("%s: groups %d, want %d", name, len(got), len(want))
			}
			for id, w := range want {
				if fmt.Sprint(*got[id]) != fmt.Sprint(*w) {
					t.Errorf("%s: group %v: %v, want %v", name, w.keys, *got[id], *w)
				}
			}
		}
	}
	for _, s := range []string{"materialised", "single", "inline " + boundingPerGroup, "inline " + boundingPersonRank} {
		if !shapes[s] {
			t.Errorf("no query of the %s shape", s)
		}
	}
}

// The fallback for a key type columnTypeName does not name, DESCRIBE of the groups
// statement, gives the type the bound statement has.
func TestDescribeKeyTypeOfGroupsStatement(t *testing.T) {
	ctx := context.Background()
	sb, cat := synthSandbox(t)
	plan, err := checkSQL(ctx, testParser(t), cat, "SELECT region, year(d_contact) AS y, COUNT(*) AS n FROM booking GROUP BY region, y", allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	rw := rewriteRanked(plan, g*r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	b, err := sb.bind(ctx, rw, make([]*keyDomain, len(plan.Keys)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	for i := range plan.Keys {
		typ, err := describeKeyType(ctx, b.conn, rw.Inline(), i)
		if err != nil {
			t.Fatal(err)
		}
		if name := columnTypeName(b.main, i); typ != name || typ == "" {
			t.Errorf("key %d: DESCRIBE %q, bound statement %q", i, typ, name)
		}
	}
}

// A bound rewrite whose context has ended before it is sent to DuckDB has read nothing:
// its error wraps errNotStarted (the engine refunds the charge), as a wait for a
// connection that times out does in sandbox.run.
func TestBoundRunOutOfTimeNotStarted(t *testing.T) {
	ctx := context.Background()
	sb, cat := synthSandbox(t)
	plan, err := checkSQL(ctx, testParser(t), cat, "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", allowAll(cat))
	if err != nil {
		t.Fatal(err)
	}
	g, r := contributionBounds(plan)
	rw := rewrite(plan, 7, g, r, treeShape{dp.DefaultTree.Branching, dp.DefaultTree.Height}, dp.SumScale)
	b, err := sb.bind(ctx, rw, []*keyDomain{plan.Keys[0].Domain})
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.run(done, len(plan.Keys)); !errors.Is(err, errNotStarted) {
		t.Fatalf("run after the context ended: %v, want errNotStarted", err)
	}
	// The same bound statement still runs once there is time.
	groups, err := b.run(ctx, len(plan.Keys))
	if err != nil || len(groups) == 0 {
		t.Fatalf("run: %d groups, %v", len(groups), err)
	}
}

// synthSandbox is a one-thread sandbox over the package's synthetic extract, closed with the
// test, and the extract's catalog.
func synthSandbox(t *testing.T) (*sandbox, *dataset.Catalog) {
	t.Helper()
	data := synthDataset(t)
	cat, err := dataset.ReadCatalog(data)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := openSandbox(context.Background(), data, cat, Limits{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.close() })
	return sb, cat
}
