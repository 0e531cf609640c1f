package query

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/dp"
	"github.com/velo-fse/velo/ledger"
)

// fuzzSeedSQL are seeds beside testdata/*.sql and the committed corpus: the README's and
// the docs' examples, and the edges of the allow-list.
var fuzzSeedSQL = []string{
	"SELECT region, AVG(CAST(within_target AS INTEGER)) AS share_within_target FROM booking WHERE first_access GROUP BY region ORDER BY region",
	"SELECT region, priority, AVG(CAST(within_target AS INTEGER)) AS share, COUNT(*) AS bookings\n   FROM booking WHERE first_access GROUP BY region, priority ORDER BY region, priority",
	"SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking\n   WHERE first_access AND priority IS NOT NULL GROUP BY service_code ORDER BY median_wait DESC",
	"SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1, delta = 0)\n     date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share\n   FROM booking GROUP BY month ORDER BY month",
	"SELECT provider_id, COUNT(DISTINCT pid) AS people FROM booking GROUP BY provider_id ORDER BY people DESC LIMIT 10",
	"SELECT p.sex, AVG(b.wait_days) FROM booking AS b JOIN person AS p ON b.pid = p.pid GROUP BY p.sex",
	"SELECT service_code, PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY wait_days) AS p90 FROM booking GROUP BY 1",
	"SELECT year(d_contact) AS y, VAR_SAMP(wait_days), STDDEV_SAMP(wait_days) FROM booking GROUP BY y",
	"SELECT CASE WHEN wait_days > 30 THEN 'late' ELSE 'on time' END AS band, COUNT(DISTINCT pid) FROM booking GROUP BY band",
	"SELECT COUNT(*) FROM booking WHERE coalesce(garanzia, false) AND abs(wait_days - 10) < 5 AND date_diff('day', d_prescription, d_contact) <= 30",
	"SELECT d_contact, COUNT(*) FROM booking WHERE d_contact BETWEEN '2024-01-01' AND '2024-01-31' GROUP BY d_contact",
	"SELECT SUM(wait_days, contribution_bounds_per_group => (0, 200)) / 7 FROM booking",
	"SELECT wait_days > 30 AS late, COUNT(*) FROM booking GROUP BY late HAVING COUNT(*) > 3 ORDER BY 2 LIMIT 1 OFFSET 1",
	"SELECT SUM(CAST(wait_days AS DOUBLE) / nullif(wait_days - 7, 0), contribution_bounds_per_group => (-1e9, 1e9)) FROM booking",
	"SELECT pid, COUNT(*) FROM booking GROUP BY pid",
	"SELECT COUNT(*) FROM booking b JOIN person p USING (pid) WHERE p.asl = '120201'",
	"SELECT COUNT(*) FROM read_parquet('/etc/passwd'); SELECT 1",
}

// fuzzAllow approves every table, and of person only three columns, so that unapproved
// columns are there to be refused.
func fuzzAllow() map[string][]string {
	return map[string][]string{
		"person": {"birth_year", "sex", "region"}, "booking": nil, "prescription": nil, "document": nil, "diagnosis": nil,
		"procedure": nil, "lab_result": nil, "medication": nil, "vaccination": nil, "er_visit": nil,
	}
}

// FuzzCheck sends arbitrary SQL to the checker (go test -run '^$' -fuzz '^FuzzCheck$'
// ./query). It must never panic, and refuse with a *Error; a query it accepts must be
// what the DP contract allows: no key, filter or aggregate built on pid or an identifier
// column or on a column the project is not approved for, finite clamping bounds for every
// aggregate that sums values, a rewrite that binds in the sandbox (without reading data,
// as before a charge) and then runs on a small dataset and is noised into a release.
func FuzzCheck(f *testing.F) {
	for _, q := range fuzzSeedSQL {
		f.Add(q)
	}
	files, _ := filepath.Glob("testdata/*.sql")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	data := csvDataset(f,
		booking(1, cfOf(f, 1), "89.13", "B", "120", "2024-03-01", 12),
		booking(2, cfOf(f, 1), "87.41", "D", "120", "2024-06-15", 70),
		booking(3, cfOf(f, 2), "89.7A.3", "U", "030", "2025-01-10", 2),
		booking(4, cfOf(f, 3), "89.13", "P", "030", "2025-12-31", 0),
	)
	eng, _, _ := openEngine(f, data, ledger.Budget{Epsilon: 10, Delta: 1e-5}, nil)
	allow := fuzzAllow()
	f.Fuzz(func(t *testing.T, sqlText string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		plan, err := eng.check(ctx, sqlText, allow)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Check refused with %T %v, want a *query.Error", err, err)
			}
			return
		}
		checkAcceptedPlan(t, eng, plan, allow)

		maxGroups, maxRows := contributionBounds(plan)
		rw := rewrite(plan, 42, maxGroups, maxRows, treeShape{eng.tree.Branching, eng.tree.Height}, dp.SumScale)
		keyDomains := make([]*keyDomain, len(plan.Keys))
		for i, k := range plan.Keys {
			keyDomains[i] = k.Domain
		}
		domains, err := eng.sb.prepare(ctx, rw, keyDomains)
		if err != nil {
			t.Fatalf("the rewrite of an accepted query does not bind: %v\n%s\n%s", err, rw.createBounded(false), rw.Groups)
		}
		groups, err := eng.sb.run(ctx, rw, len(plan.Keys))
		if err != nil {
			t.Fatalf("the rewrite of an accepted query fails on the data (errors must not depend on the data): %v\n%s\n%s", err, rw.createBounded(false), rw.Groups)
		}
		bp, err := planBudget(plan, dp.Budget{Epsilon: 1, Delta: 1e-6})
		if err != nil {
			t.Fatalf("budget split: %v", err)
		}
		per, selection := bp.Per, bp.Selection
		if _, _, err := noiseGroups(plan, rw, domains, groups, per, selection, Confidence, eng.tree); err != nil {
			t.Fatalf("noise: %v", err)
		}
	})
}

// checkAcceptedPlan holds an accepted plan to the DP contract's static rules.
func checkAcceptedPlan(t *testing.T, eng *Engine, plan *plan, allow map[string][]string) {
	t.Helper()
	if len(plan.Aggs) == 0 || len(plan.Tables) == 0 || len(plan.Outputs) == 0 {
		t.Fatalf("accepted a plan with %d aggregates, %d tables, %d outputs", len(plan.Aggs), len(plan.Tables), len(plan.Outputs))
	}
	columnOK := func(where string, e expr) {
		walk(e, func(x expr) {
			col, ok := x.(*column)
			if !ok {
				return
			}
			if col.Name == "pid" {
				t.Errorf("%s uses pid", where)
			}
			var meta *dataset.CatalogColumn
			for _, tb := range eng.Catalog().Tables {
				for i, c := range tb.Columns {
					if tb.Name == col.Table && c.Name == col.Name {
						meta = &tb.Columns[i]
					}
				}
			}
			switch {
			case meta == nil:
				t.Errorf("%s uses %s.%s, not in the catalog", where, col.Table, col.Name)
			case meta.Identifier:
				t.Errorf("%s uses the identifier column %s.%s", where, col.Table, col.Name)
			}
			if cols, ok := allow[col.Table]; !ok || len(cols) > 0 && !slices.Contains(cols, col.Name) {
				t.Errorf("%s uses %s.%s, which the project is not approved for", where, col.Table, col.Name)
			}
		})
	}
	for _, o := range plan.Outputs {
		if o.Key >= 0 {
			columnOK("output key "+o.Name, plan.Keys[o.Key].Expr)
		}
	}
	for _, k := range plan.Keys {
		columnOK("GROUP BY key "+k.Name, k.Expr)
	}
	columnOK("WHERE", plan.Where)
	for _, a := range plan.Aggs {
		columnOK("aggregate "+a.Name, a.Arg)
		switch a.Kind {
		case aggCountStar, aggCount, aggPersons:
		default:
			if !finite(a.Lo) || !finite(a.Hi) || a.Lo >= a.Hi || math.Max(math.Abs(a.Lo), math.Abs(a.Hi)) > 1e9 {
				t.Errorf("aggregate %s has bounds [%g, %g]", a.Name, a.Lo, a.Hi)
			}
			if a.Kind == aggQuantile && !(a.Q >= 0 && a.Q <= 1) {
				t.Errorf("aggregate %s has rank %g", a.Name, a.Q)
			}
		}
	}
	if plan.Canonical == "" {
		t.Errorf("an accepted plan has no canonical form")
	}
}
