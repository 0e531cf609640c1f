package ingest

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestFinalizeWarningsCountAsDistinctAggregates checks that finalize's warning counts,
// written without DISTINCT aggregates, count what count(DISTINCT …) per group counts, on
// staged rows with repeats and NULLs in every column.
func TestFinalizeWarningsCountAsDistinctAggregates(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{
		// Few values per column, a fifth NULL, so that groups repeat, some agree and some
		// disagree.
		`CREATE MACRO pick(i, salt, n) AS CASE WHEN hash(i, salt) % 5 = 0 THEN NULL ELSE hash(i, salt, 1) % n END`,
		`CREATE MACRO id(k) AS ('00000000-0000-0000-0000-' || lpad(k::VARCHAR, 12, '0'))::UUID`,
		`CREATE TABLE stage_person AS SELECT id(pick(i, 1, 30)) AS pid, 1950 + 40 * pick(i, 2, 2)::SMALLINT AS birth_year,
			['F', 'M'][pick(i, 3, 2)::BIGINT + 1] AS sex FROM range(90) t(i)`,
		`CREATE TABLE stage_document AS SELECT 'k' || pick(i, 4, 30) AS doc_key, id(pick(i, 5, 2)) AS pid,
			['11502-2', '34105-7'][pick(i, 6, 2)::BIGINT + 1] AS doc_type FROM range(90) t(i)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	distinctAggregates := map[string]string{
		warnPersonConflictingFacts: "SELECT count(*) FROM (SELECT pid FROM stage_person GROUP BY pid HAVING count(DISTINCT (birth_year, sex)) > 1)",
		warnDocumentIDReused:       "SELECT count(*) FROM (SELECT doc_key FROM stage_document GROUP BY doc_key HAVING count(DISTINCT (pid, doc_type)) > 1)",
	}
	for name, q := range finalizeWarnings {
		var got, want int64
		if err := db.QueryRowContext(ctx, q).Scan(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := db.QueryRowContext(ctx, distinctAggregates[name]).Scan(&want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Not every group disagrees, nor none: the data tests what it should.
		table := map[string]string{warnPersonConflictingFacts: "stage_person", warnDocumentIDReused: "stage_document"}[name]
		key := strings.Fields(strings.TrimPrefix(distinctAggregates[name], "SELECT count(*) FROM (SELECT "))[0]
		var groups int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT DISTINCT "+key+" FROM "+table+")").Scan(&groups); err != nil {
			t.Fatal(err)
		}
		if got != want || want == 0 || want == groups {
			t.Errorf("%s: %d, count(DISTINCT …) says %d of %d groups", name, got, want, groups)
		}
	}
}
