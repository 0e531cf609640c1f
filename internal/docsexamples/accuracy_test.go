package docsexamples_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/internal/docsexamples"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

// TestCompare measures made-up releases against the exact answers of a real dataset: the
// canonical SQL's aggregates by DuckDB's names, a LIMIT dropped, keys of every type
// matched, errors summarized as the thresholds read them.
func TestCompare(t *testing.T) {
	ctx := context.Background()
	data := apitest.Dataset(t)
	x, err := docsexamples.OpenExact(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	// The truth, by a connection of the test's own.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("CREATE VIEW booking AS SELECT * FROM read_parquet('%s')", filepath.Join(data, "booking", "*.parquet"))); err != nil {
		t.Fatal(err)
	}

	t.Run("people by region", func(t *testing.T) {
		rows := truth(t, db, "SELECT region, count(DISTINCT pid) FROM booking GROUP BY region ORDER BY region")
		if len(rows) < 10 {
			t.Fatalf("only %d regions", len(rows))
		}
		// Off by 1%, 6%, 11%, ... (1+5·(i%8))%: values within 20% are those with i%8 <= 3.
		rel := release("region", "people")
		close := 0
		for i, r := range rows {
			off := 0.01 + 0.05*float64(i%8)
			if i%8 <= 3 {
				close++
			}
			rel.Rows = append(rel.Rows, []any{r[0], r[1].(float64) * (1 + off)})
		}
		rel.Rows = append(rel.Rows, []any{"999", 5.0}) // a domain value with no booking
		c, err := x.Compare(ctx, `SELECT "booking"."region" AS "region", count_persons(DISTINCT pid) AS "people" FROM "booking" AS "booking" GROUP BY "booking"."region" ORDER BY "people" DESC LIMIT 3`, rel)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rows != len(rows)+1 || c.Unmatched != 1 || c.Groups != len(rows) || len(c.Columns) != 1 {
			t.Fatalf("comparison %+v", c)
		}
		col := c.Columns[0]
		if col.Name != "people" || col.Compared != len(rows) || math.Abs(col.Close-float64(close)/float64(len(rows))) > 1e-12 || math.Abs(col.Max-0.36) > 1e-9 {
			t.Errorf("people: %+v", col)
		}
		if ok, why := col.Meaningful(); ok != (col.Close >= docsexamples.MinClose && col.Median <= docsexamples.MaxMedianError) {
			t.Errorf("Meaningful() = %v (%s) for %+v", ok, why, col)
		}
	})

	t.Run("median wait by month", func(t *testing.T) {
		rows := truth(t, db, "SELECT date_trunc('month', d_contact) AS m, quantile_cont(wait_days, 0.5) FROM booking WHERE first_access GROUP BY m ORDER BY m")
		if len(rows) != 24 {
			t.Fatalf("%d months", len(rows))
		}
		rel := release("month", "median_wait")
		for _, r := range rows {
			// As the release's JSON has them: dates as text, values as float64; 50% off.
			rel.Rows = append(rel.Rows, []any{r[0].(time.Time).Format(time.DateOnly), 1.5 * r[1].(float64)})
		}
		c, err := x.Compare(ctx, `SELECT date_trunc('month', "booking"."d_contact") AS "month", quantile("booking"."wait_days", 0.5) AS "median_wait" FROM "booking" AS "booking" WHERE "booking"."first_access" GROUP BY date_trunc('month', "booking"."d_contact")`, rel)
		if err != nil {
			t.Fatal(err)
		}
		col := c.Columns[0]
		if c.Unmatched != 0 || col.Compared != 24 || col.Close != 0 || math.Abs(col.Median-0.5) > 1e-9 {
			t.Errorf("comparison %+v, column %+v", c, col)
		}
		if ok, why := col.Meaningful(); ok || why == "" {
			t.Errorf("a release 50%% off is meaningful: %v %q", ok, why)
		}
	})
}

func release(key, value string) docsexamples.Release {
	var rel docsexamples.Release
	rel.Columns = append(rel.Columns, struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	}{key, "key"}, struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	}{value, "dp"})
	return rel
}

// truth runs q and returns its rows, numbers as float64.
func truth(t *testing.T, db *sql.DB, q string) [][]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		var k, v any
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		switch n := v.(type) {
		case int64:
			v = float64(n)
		}
		out = append(out, []any{k, v})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
