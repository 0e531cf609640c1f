package query

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
)

// Marginals and synthesis over a table joined on pid to tables of one row per person
// (docs/privacy.md#tables-joined-on-pid).

// joinCounter counts marginals of table joined to person, attributes named as a request
// names them (person.birth_year for the joined table's).
func joinCounter(t *testing.T, eng *Engine, table string, names ...string) *marginalCounter {
	t.Helper()
	cat := eng.Catalog()
	find := func(name string) *dataset.CatalogTable {
		return &cat.Tables[slices.IndexFunc(cat.Tables, func(c dataset.CatalogTable) bool { return c.Name == name })]
	}
	mc := &marginalCounter{e: eng, table: table, joins: []string{"person"}, allow: allowAll(cat), seed: 7}
	for _, n := range names {
		tab, col := find(table), n
		if tn, c, ok := strings.Cut(n, "."); ok {
			tab, col = find(tn), c
		}
		a, err := resolveColumn(cat, tab, col, n, true, 8)
		if err != nil {
			t.Fatal(err)
		}
		mc.attrs = append(mc.attrs, a)
	}
	return mc
}

// withoutHeaviest copies the full extract twice: d as it is, and its neighbour without the
// person with the most diagnoses (every table's rows of that pid removed; the others' rows
// and ranks unchanged). n is that person's number of diagnoses.
func withoutHeaviest(t *testing.T) (d, dMinus string, n int) {
	t.Helper()
	d = copyDataset(t, FullDataset(t))
	dMinus = copyDataset(t, d)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pid string
	if err := db.QueryRow(fmt.Sprintf(`SELECT d.pid::VARCHAR, count(*) FROM read_parquet(%s) d JOIN read_parquet(%s) p ON d.pid = p.pid
		WHERE p.birth_year IS NOT NULL AND p.sex IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`,
		quoteString(dataset.TableGlob(d, "diagnosis")), quoteString(dataset.TableGlob(d, "person")))).Scan(&pid, &n); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"person", "diagnosis"} {
		part := dataset.TablePart(dMinus, table)
		if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * FROM read_parquet(%s) WHERE pid <> %s::UUID) TO %s (FORMAT parquet)",
			quoteString(part), quoteString(pid), quoteString(part+".new"))); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(part+".new", part); err != nil {
			t.Fatal(err)
		}
	}
	return d, dMinus, n
}

// The sensitivity of person_rows over diagnosis ⋈ person: removing the person with the
// most diagnoses removes exactly k joined rows, so every marginal — of the diagnosis's
// columns, of the person's, and across both — moves by exactly k in L1, never upwards, and
// by at most k in L2. By the ingest's ranks and by the keyed hash.
func TestPersonRowsJoinNeighbourSensitivity(t *testing.T) {
	d, dMinus, n := withoutHeaviest(t)
	sets := [][]int{{0}, {2}, {3}, {0, 2}, {1, 3}, {0, 1, 2}, {1, 2, 3}}
	for _, ranked := range []bool{true, false} {
		for _, k := range []int{1, 3} {
			if n < k {
				t.Fatalf("the heaviest person has %d diagnoses, fewer than k = %d", n, k)
			}
			counts := func(dir string) [][]float64 {
				eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 10}, map[string][]string{"diagnosis": nil, "person": nil})
				mc := joinCounter(t, eng, "diagnosis", "chapter", "role", "person.birth_year", "person.sex")
				if err := mc.usePersonRows(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				if !mc.rows.ranked {
					t.Fatal("the ingest ranks diagnosis and person: the join should read ranks")
				}
				mc.rows.ranked = ranked
				var out [][]float64
				for _, s := range sets {
					c, pm := countOf(t, mc, s...)
					if !strings.Contains(pm.rw.Bounded, `JOIN "person"`) {
						t.Fatalf("the population does not join person: %s", pm.rw.Bounded)
					}
					out = append(out, c)
				}
				return out
			}
			c0, c1 := counts(d), counts(dMinus)
			b := personRowsBounding(k)
			for i, s := range sets {
				var l1, l2 float64
				for j := range c0[i] {
					diff := c0[i][j] - c1[i][j]
					if diff < 0 {
						t.Errorf("ranked=%v k=%d: set %v cell %d rose by %v", ranked, k, s, j, -diff)
					}
					l1 += math.Abs(diff)
					l2 += diff * diff
				}
				if l2 = math.Sqrt(l2); l1 != float64(k) || l2 > b.L2+1e-12 {
					t.Errorf("ranked=%v k=%d: set %v moved by L1 %v, L2 %v; want L1 exactly k = %d, L2 ≤ %v", ranked, k, s, l1, l2, k, b.L2)
				}
			}
		}
	}
}

// A person table that breaks the one-row-per-person policy (a second row for a person, of
// rank 2) cannot multiply that person's rows: by ranks the join reads the rank-1 row only
// and counts nothing new; by the keyed hash the person still keeps at most k joined rows.
func TestPersonRowsJoinDuplicatePersonRow(t *testing.T) {
	d, _, n := withoutHeaviest(t)
	broken := copyDataset(t, d)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	part := dataset.TablePart(broken, "person")
	// The duplicate is of the heaviest person (n diagnoses), with another birth year.
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * FROM read_parquet(%[1]s) UNION ALL
		(SELECT p.* REPLACE (p.birth_year + 40 AS birth_year, p.%[3]s + 1 AS %[3]s) FROM read_parquet(%[1]s) p
		 WHERE p.pid = (SELECT pid FROM read_parquet(%[4]s) GROUP BY pid HAVING count(*) = %[5]d ORDER BY pid LIMIT 1))) TO %[2]s (FORMAT parquet)`,
		quoteString(part), quoteString(part+".new"), dataset.PersonRankColumn, quoteString(dataset.TableGlob(d, "diagnosis")), n)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part+".new", part); err != nil {
		t.Fatal(err)
	}
	for _, ranked := range []bool{true, false} {
		for _, k := range []int{1, 3} {
			counts := func(dir string) []float64 {
				eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 10}, map[string][]string{"diagnosis": nil, "person": nil})
				mc := joinCounter(t, eng, "diagnosis", "chapter", "person.birth_year")
				if err := mc.usePersonRows(context.Background(), k); err != nil {
					t.Fatal(err)
				}
				mc.rows.ranked = ranked
				c, _ := countOf(t, mc, 0, 1)
				return c
			}
			c0, c1 := counts(d), counts(broken)
			var n0, n1, l1 float64
			for j := range c0 {
				n0, n1, l1 = n0+c0[j], n1+c1[j], l1+math.Abs(c1[j]-c0[j])
			}
			switch {
			case ranked && l1 != 0:
				t.Errorf("k=%d: by ranks the duplicated person row changed the counts by %v", k, l1)
			case !ranked && (n1 != n0 || l1 > float64(2*k)):
				t.Errorf("k=%d: by the keyed hash the duplicated person row changed the population by %v rows and moved the table by %v (the person keeps k = %d rows: want 0 and at most %d)", k, n1-n0, l1, k, 2*k)
			}
		}
	}
}

// Over the full extract's diagnosis ⋈ person, person_rows counts what plain DuckDB counts
// over the rows it keeps (ranks ≤ k of diagnosis, the rank-1 person row), NULL a level of
// the nullable chapter, and the per_group marginal of /v1/marginals counts the rows in the
// domains only.
func TestJoinMarginalsCountPlainDuckDB(t *testing.T) {
	data := FullDataset(t)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 10}, map[string][]string{"diagnosis": nil, "person": nil})
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plain := func(mc *marginalCounter, where string) []float64 {
		t.Helper()
		edges := mc.attrs[1].Edges
		q := fmt.Sprintf(`SELECT d.chapter, CASE WHEN p.birth_year IS NULL THEN NULL ELSE least(greatest(floor((p.birth_year - %g) / %g), 0), 7)::BIGINT END, count(*)
			FROM read_parquet(%s) d JOIN read_parquet(%s) p ON d.pid = p.pid WHERE %s GROUP BY ALL`,
			edges[0], edges[1]-edges[0], quoteString(dataset.TableGlob(data, "diagnosis")), quoteString(dataset.TableGlob(data, "person")), where)
		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		out := make([]float64, len(mc.attrs[0].values)*len(mc.attrs[1].values))
		for rs.Next() {
			var ch sql.NullString
			var bin sql.NullInt64
			var n float64
			if err := rs.Scan(&ch, &bin, &n); err != nil {
				t.Fatal(err)
			}
			i, ok := mc.attrs[0].index[groupID([]any{map[bool]any{true: ch.String, false: nil}[ch.Valid]})]
			j, ok2 := mc.attrs[1].index[groupID([]any{map[bool]any{true: bin.Int64, false: nil}[bin.Valid]})]
			if !ok || !ok2 {
				t.Fatalf("(%v, %v) is not a cell", ch, bin)
			}
			out[i*len(mc.attrs[1].values)+j] += n
		}
		return out
	}
	rank := dataset.PersonRankColumn
	for _, k := range []int{1, 4} {
		mc := joinCounter(t, eng, "diagnosis", "chapter", "person.birth_year")
		if err := mc.usePersonRows(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		got, _ := countOf(t, mc, 0, 1)
		if len(mc.attrs[0].values) != 20 || mc.attrs[0].Levels[19] != nil {
			t.Fatalf("chapter has %d levels %v: want the 19 chapters and NULL", len(mc.attrs[0].values), mc.attrs[0].Levels)
		}
		want := plain(mc, fmt.Sprintf("d.%[1]s <= %d AND p.%[1]s <= 1", rank, k))
		if !slices.Equal(got, want) || slices.Max(got) == 0 {
			t.Errorf("k=%d: person_rows counts differ from plain DuckDB's over the rows kept:\n%v\n%v", k, got, want)
		}
	}
	mc := joinCounter(t, eng, "diagnosis", "chapter", "person.birth_year")
	mc.maxGroups, mc.maxRows = 1000, 1000
	got, pm := countOf(t, mc, 0, 1)
	if pm.rw.Method != boundingPerGroup {
		t.Fatalf("bounding %s, want per_group", pm.rw.Method)
	}
	if want := plain(mc, "d.chapter IS NOT NULL AND p.birth_year IS NOT NULL"); !slices.Equal(got, want) {
		t.Errorf("per_group counts (bounds above every person's rows) differ from plain DuckDB's:\n%v\n%v", got, want)
	}
}

// The requests: a joined table's columns are table.column; a bare name of a joined
// table's column, a table neither read nor joined, a join of a table of several rows per
// person, and a table named twice are refused before any charge. A synthesis over
// diagnosis ⋈ person writes the person's columns beside the diagnosis's, records the join in
// the release and the ledger, and its rows keep the planted dependency of age and chapter
// (MST, one diagnosis per person, at ε = 3: the extract has 1,500 persons; bench/RESULTS.md
// has AIM and MST at ε = 1 on 20,000).
func TestSynthesizeJoin(t *testing.T) {
	ctx := context.Background()
	eng, led, _ := openEngine(t, FullDataset(t), ledger.Budget{Epsilon: 20, Delta: 1e-5}, map[string][]string{"diagnosis": nil, "person": nil})
	req := SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "diagnosis", Join: []string{"person"}, Method: "mst",
		Columns: []string{"chapter", "person.birth_year", "person.sex"}, Epsilon: f64(3), Delta: f64(1e-6)}
	for _, bad := range []struct {
		edit func(r *SynthesizeRequest)
		msg  string
	}{
		{func(r *SynthesizeRequest) { r.Columns = []string{"chapter", "birth_year"} }, "name the joined table's column person.birth_year"},
		{func(r *SynthesizeRequest) { r.Columns = []string{"chapter", "lab_result.loinc"} }, "neither diagnosis nor joined to it"},
		{func(r *SynthesizeRequest) { r.Join = []string{"booking"} }, "booking has up to 16 rows per person"},
		{func(r *SynthesizeRequest) { r.Join = []string{"person", "person"} }, "named twice"},
		{func(r *SynthesizeRequest) { r.Join = []string{"nope"} }, `no table "nope"`},
	} {
		r := req
		bad.edit(&r)
		if _, err := eng.Synthesize(ctx, r); err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%+v: got %v, want an error saying %q", r, err, bad.msg)
		}
	}
	if n := len(entriesOf(led, ledger.KindCharge)); n != 0 {
		t.Fatalf("the refused requests charged %d times", n)
	}
	s, err := eng.Synthesize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Join, []string{"person"}) || s.Attributes[1].Name != "person.birth_year" || s.Bounding.Method != boundingPersonRows {
		t.Fatalf("release: join %v, attributes %s…, bounding %s", s.Join, s.Attributes[1].Name, s.Bounding.Method)
	}
	var pq bytes.Buffer
	if err := s.WriteParquet(&pq); err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/s.parquet"
	if err := os.WriteFile(file, pq.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The planted dependency: the circulatory chapter's share of the diagnoses of people born
	// before 1955 against those born after 1980 (synth's prevalences grow with age), in the
	// synthetic rows and in the real ones.
	share := func(from string) (old, young float64) {
		q := fmt.Sprintf(`SELECT avg((chapter = '390-459')::INT) FILTER (WHERE birth_year < 1955), avg((chapter = '390-459')::INT) FILTER (WHERE birth_year > 1980) FROM %s`, from)
		if err := db.QueryRow(q).Scan(&old, &young); err != nil {
			t.Fatal(err)
		}
		return old, young
	}
	so, sy := share(fmt.Sprintf(`(SELECT chapter, "person.birth_year" AS birth_year FROM read_parquet(%s))`, quoteString(file)))
	data := FullDataset(t)
	ro, ry := share(fmt.Sprintf(`(SELECT d.chapter, p.birth_year FROM read_parquet(%s) d JOIN read_parquet(%s) p ON d.pid = p.pid)`,
		quoteString(dataset.TableGlob(data, "diagnosis")), quoteString(dataset.TableGlob(data, "person"))))
	t.Logf("circulatory share of diagnoses, born before 1955 / after 1980: synthetic %.3f / %.3f, real %.3f / %.3f (%d rows, mean TVD %.3f)", so, sy, ro, ry, s.Rows, s.Utility.MeanTVD)
	if ro < 2*ry {
		t.Fatalf("the real data does not carry the planted dependency: %.3f against %.3f", ro, ry)
	}
	if so < 2*sy {
		t.Errorf("the synthetic rows lost the dependency of chapter on age: %.3f against %.3f (real %.3f against %.3f)", so, sy, ro, ry)
	}
	if ch := entriesOf(led, ledger.KindCharge); len(ch) != 1 || !strings.HasPrefix(ch[0].SQL, "SYNTHESIZE MST diagnosis JOIN person (chapter) (person.birth_year bins(") {
		t.Errorf("ledger charges %+v", ch)
	}
	// /v1/marginals over the same join: the chapters (no NULL level) by sex.
	rel, err := eng.Marginals(ctx, MarginalsRequest{Project: "wl", Actor: "user:test", Table: "diagnosis", Join: []string{"person"},
		Sets: [][]string{{"chapter", "person.sex"}}, Epsilon: f64(0.5), Delta: f64(1e-6)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Tables[0].Cells) != 19*2 || !slices.Equal(rel.Join, []string{"person"}) {
		t.Errorf("marginal over the join: %d cells, join %v; want 38 and [person]", len(rel.Tables[0].Cells), rel.Join)
	}
}
