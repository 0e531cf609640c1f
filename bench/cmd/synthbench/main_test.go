package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/bench"
)

// TestExportAndEvaluate builds a small extract, exports the source table as the peers read
// it, runs Velo's MST through the engine as the child does, and checks the evaluation: the
// binned wait_days of Velo's rows spell exactly the source's levels (so cells match across
// systems), the source against itself is at TVD 0, Velo's rows and the independence
// baseline are not, and the baseline loses the planted priority ↔ first_access link.
func TestExportAndEvaluate(t *testing.T) {
	ctx, db, cfg := exportedSource(t, "region", "priority", "first_access", "wait_days")
	if cfg.sourceRows == 0 || cfg.personsShown == 0 || cfg.personsShown > 400 {
		t.Fatalf("source: %d rows of %d persons", cfg.sourceRows, cfg.personsShown)
	}
	for _, nulls := range []bool{false, true} {
		self, err := twoWayTVD(ctx, db, cfg.columns, filepath.Join(cfg.work, "source.parquet"), nulls)
		if err != nil {
			t.Fatal(err)
		}
		if len(self.pairs) != 6 || self.max > 1e-12 {
			t.Fatalf("source against itself (NULL a level: %v): %d pairs, max TVD %g", nulls, len(self.pairs), self.max)
		}
	}
	out := filepath.Join(cfg.work, "velo.parquet")
	var res ChildResult
	if err := veloChild(ctx, cfg.data, "booking", nil, "mst", cfg.columns, 1000, 1, 1e-6, 10, false, 1, out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 1000 {
		t.Fatalf("Velo wrote %d rows, want 1000", res.Rows)
	}
	// Each of Velo's wait_days values is a bin's midpoint: binned again as the export bins,
	// it must give back its own text, or the cells of the systems would not match.
	var foreign, levels int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE CAST(wait_days AS VARCHAR) IS DISTINCT FROM `+binSQL("wait_days", 0, 365, 10)+`), count(DISTINCT wait_days)
		FROM read_parquet('`+out+`')`).Scan(&foreign, &levels); err != nil {
		t.Fatal(err)
	}
	if foreign > 0 || levels < 2 {
		t.Fatalf("%d of Velo's rows have a wait_days the export spells differently (%d levels)", foreign, levels)
	}
	// priority is NULL on the follow-ups; person_rows synthesizes NULL as a level.
	var nullPriority int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE priority IS NULL) FROM read_parquet('`+out+`')`).Scan(&nullPriority); err != nil {
		t.Fatal(err)
	}
	if nullPriority == 0 {
		t.Errorf("no synthetic row without a priority")
	}
	velo, err := twoWayTVD(ctx, db, cfg.columns, out, true)
	if err != nil {
		t.Fatal(err)
	}
	if velo.mean <= 0 || velo.max > 1 {
		t.Fatalf("Velo's rows: mean TVD %g, max %g", velo.mean, velo.max)
	}
	ind := filepath.Join(cfg.work, "ind.parquet")
	if _, err := db.ExecContext(ctx, "COPY ("+independenceSQL(cfg.columns)+") TO '"+ind+"' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	indep, err := twoWayTVD(ctx, db, cfg.columns, ind, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range indep.pairs {
		// priority is NULL exactly for follow-ups: among rows with a priority, first_access
		// is always true in the source, and false in about 30% of the shuffled rows.
		if p.a == "priority" && p.b == "first_access" && p.tvd < 0.1 {
			t.Errorf("independence baseline keeps priority × first_access (TVD %g)", p.tvd)
		}
	}
	cell, err := twoWayTVD(ctx, db, cfg.columns, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if cell.mean <= 0 || cell.max > 1 {
		t.Fatalf("one cell per person: mean TVD %g, max %g", cell.mean, cell.max)
	}
}

// TestPlantedReport: the conditional statistics of the source's own export are the real
// rows' (the same mean waits, spread and a correlation of 1), and the independence
// baseline's mean waits no longer rise with the priority class's allowed wait.
func TestPlantedReport(t *testing.T) {
	ctx, db, cfg := exportedSource(t, "region", "priority", "within_target", "wait_days")
	indep := filepath.Join(cfg.work, "independence.parquet")
	if _, err := db.ExecContext(ctx, "COPY ("+independenceSQL(cfg.columns)+") TO '"+indep+"' (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	results := []*result{{name: "itself", out: filepath.Join(cfg.work, "source.parquet")}, {name: "independence", out: indep}}
	if err := plantedReport(ctx, &b, db, *cfg, results); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for l := range strings.SplitSeq(b.String(), "\n") {
		f := strings.Split(l, "|")
		if len(f) > 2 {
			name := strings.TrimSpace(f[1])
			rows[name] = append(rows[name], strings.Join(f[2:], "|"))
		}
	}
	if len(rows["real rows"]) != 2 || !slices.Equal(rows["real rows"], rows["itself"]) {
		t.Fatalf("the source's export differs from the real rows:\n%s", b.String())
	}
	if !strings.Contains(rows["real rows"][1], "| 1.00 |") {
		t.Errorf("the real rows' correlation with themselves is not 1:\n%s", b.String())
	}
	if rows["independence"][0] == rows["real rows"][0] {
		t.Errorf("the independence baseline keeps the mean waits by priority:\n%s", b.String())
	}
}

// exportedSource builds a 400-person extract and exports its booking columns as the
// benchmark's source table (skipped with -short); the database is closed with the test.
func exportedSource(t *testing.T, columns ...string) (context.Context, *sql.DB, *config) {
	return exportedJoin(t, "booking", nil, columns...)
}

// exportedJoin is exportedSource for any table, joined on pid to join (the full extract,
// every format, when the table is not booking or join is given).
func exportedJoin(t *testing.T, table string, join []string, columns ...string) (context.Context, *sql.DB, *config) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds an extract")
	}
	ctx := context.Background()
	data, err := bench.EnsureDataset(ctx, t.TempDir(), 400, table != "booking" || len(join) > 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{data: data, work: t.TempDir(), bins: 10, table: table, join: join, columns: columns}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if err := exportSource(ctx, db, cfg); err != nil {
		t.Fatal(err)
	}
	return ctx, db, cfg
}

// The joined source (diagnosis ⋈ person): the person's columns named person.COLUMN in the
// export and in Velo's synthetic rows alike, a birth year spelt as the export bins it, and
// the source against itself at TVD 0.
func TestJoinedSource(t *testing.T) {
	ctx, db, cfg := exportedJoin(t, "diagnosis", []string{"person"}, "chapter", "person.birth_year", "person.sex")
	var persons, rows int
	if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT pid), count(*) FROM source WHERE "person.birth_year" IS NOT NULL AND chapter IS NOT NULL`).Scan(&persons, &rows); err != nil || persons == 0 || rows < persons {
		t.Fatalf("source: %d rows of %d persons with a chapter and a birth year (%v)", rows, persons, err)
	}
	self, err := twoWayTVD(ctx, db, cfg.columns, filepath.Join(cfg.work, "source.parquet"), true)
	if err != nil || len(self.pairs) != 3 || self.max > 1e-12 {
		t.Fatalf("source against itself: %v, %d pairs, max TVD %g", err, len(self.pairs), self.max)
	}
	out := filepath.Join(cfg.work, "velo.parquet")
	var res ChildResult
	if err := veloChild(ctx, cfg.data, "diagnosis", []string{"person"}, "mst", cfg.columns, 500, 1, 1e-6, 10, false, 1, out, &res); err != nil {
		t.Fatal(err)
	}
	var foreign, levels int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE CAST("person.birth_year" AS VARCHAR) IS DISTINCT FROM `+binSQL(`"person.birth_year"`, 1900, 2030, 10)+`), count(DISTINCT "person.birth_year")
		FROM read_parquet('`+out+`')`).Scan(&foreign, &levels); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 500 || foreign > 0 || levels < 2 {
		t.Fatalf("Velo wrote %d rows; %d birth years spelt differently from the export (%d levels)", res.Rows, foreign, levels)
	}
	if _, err := twoWayTVD(ctx, db, cfg.columns, out, true); err != nil {
		t.Fatal(err)
	}
}
