package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
)

// personRowsCounter is testCounter switched to the person_rows bounding with k rows per
// person, by the ingest's ranks (ranked) or by the keyed hash of the counter's seed.
func personRowsCounter(t *testing.T, eng *Engine, k int, ranked bool, names ...string) *marginalCounter {
	t.Helper()
	mc := testCounter(t, eng, names...)
	cat := eng.Catalog()
	tab := cat.Tables[slices.IndexFunc(cat.Tables, func(c dataset.CatalogTable) bool { return c.Name == "booking" })]
	if !tab.PersonRank {
		t.Fatal("the ingest's catalog does not rank booking")
	}
	if err := mc.usePersonRows(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	mc.rows.ranked = ranked
	return mc
}

// project sums a dense table over attrs (in key order, last fastest) onto the attributes
// at positions keep (sorted).
func project(counts []float64, sizes []int, keep []int) []float64 {
	n := 1
	for _, i := range keep {
		n *= sizes[i]
	}
	out := make([]float64, n)
	for c, v := range counts {
		rest, idx := c, make([]int, len(sizes))
		for i := len(sizes) - 1; i >= 0; i-- {
			idx[i] = rest % sizes[i]
			rest /= sizes[i]
		}
		cell := 0
		for _, i := range keep {
			cell = cell*sizes[i] + idx[i]
		}
		out[cell] += v
	}
	return out
}

// With person_rows every marginal counts the same rows: NULL is a level (the last) of
// every attribute, the 1-way and 2-way tables are projections of the 3-way one, every
// table's total is the population's size, and the counts are plain DuckDB's GROUP BY over
// the rows the bounding keeps — every row when no person has more than k, the rows of rank
// ≤ k by the ingest's ranks, one row per person by the keyed hash.
func TestPersonRowsCountOnePopulation(t *testing.T) {
	var rows []string
	for i := range 150 {
		p := []string{"U", "B", "D", "P", ""}[i%5] // a fifth NULL
		person := i % 60                           // 60 persons: 3, 3, … 2 bookings
		rows = append(rows, booking(i, cfOf(t, person), "89.7A.3", p, []string{"120", "030"}[i%2], []string{"2024-03-04", "2024-07-15"}[i%3/2], i*3%400))
	}
	data := csvDataset(t, rows...)
	eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 10}, nil)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plain := func(mc *marginalCounter, filter string) []float64 {
		t.Helper()
		q := fmt.Sprintf(`SELECT priority, CASE WHEN wait_days IS NULL THEN NULL ELSE least(greatest(floor(wait_days / (365.0 / 8)), 0), 7)::INT END AS bin,
			region, count(*) FROM read_parquet('%s') WHERE %s GROUP BY ALL`, dataset.TableGlob(data, "booking"), filter)
		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var out []float64
		for _, a := range mc.attrs {
			if len(out) == 0 {
				out = make([]float64, len(a.values))
			} else {
				out = make([]float64, len(out)*len(a.values))
			}
		}
		for rs.Next() {
			var priority, region sql.NullString
			var bin sql.NullInt64
			var n int64
			if err := rs.Scan(&priority, &bin, &region, &n); err != nil {
				t.Fatal(err)
			}
			var keys []any
			for _, v := range []any{priority, bin, region} {
				switch v := v.(type) {
				case sql.NullString:
					keys = append(keys, map[bool]any{true: v.String, false: nil}[v.Valid])
				case sql.NullInt64:
					keys = append(keys, map[bool]any{true: v.Int64, false: nil}[v.Valid])
				}
			}
			cell := 0
			for i, v := range keys {
				j, ok := mc.attrs[i].index[groupID([]any{v})]
				if !ok {
					t.Fatalf("value %v of %s is not a level", v, mc.attrs[i].Name)
				}
				cell = cell*len(mc.attrs[i].values) + j
			}
			out[cell] += float64(n)
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		k      int
		ranked bool
		filter string
		total  float64
	}{
		{"every row (k = 3)", 3, true, "true", 150},
		{"ranks ≤ 2", 2, true, dataset.PersonRankColumn + " <= 2", 120},
		{"one row per person by the keyed hash", 1, false, "", 60},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mc := personRowsCounter(t, eng, tt.k, tt.ranked, "priority", "wait_days", "region")
			full, pm := countOf(t, mc, 0, 1, 2)
			if g, r := pm.bounds(); g != 1 || r != tt.k || pm.rw.Method != boundingPersonRows {
				t.Fatalf("bounds %d, %d by %s: want 1, %d by person_rows", g, r, pm.rw.Method, tt.k)
			}
			sizes := []int{len(mc.attrs[0].values), len(mc.attrs[1].values), len(mc.attrs[2].values)}
			if sizes[0] != 5 || sizes[1] != 9 || mc.attrs[0].Levels[4] != nil || !mc.attrs[0].Null {
				t.Fatalf("levels %v and %d bins: want the 4 priorities then NULL, 8 bins then NULL", mc.attrs[0].Levels, sizes[1])
			}
			for _, keep := range [][]int{{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}} {
				got, _ := countOf(t, mc, keep...)
				if want := project(full, sizes, keep); !slices.Equal(got, want) {
					t.Errorf("marginal %v is not the projection of the 3-way table: %v against %v", keep, got, want)
				}
			}
			sum := 0.0
			for _, v := range full {
				sum += v
			}
			if sum != tt.total {
				t.Errorf("the population has %v rows, want %v", sum, tt.total)
			}
			if tt.filter != "" {
				if want := plain(mc, tt.filter); !slices.Equal(full, want) {
					t.Errorf("counts differ from plain DuckDB over the rows kept:\n%v\n%v", full, want)
				}
			}
		})
	}
}

// The sensitivity derived in docs/privacy.md#bounding-for-synthesis-person_rows: adding
// one person with 252 bookings across every region and priority adds exactly k rows to the
// population, the same in every marginal, so every table moves by exactly k in L1 (never
// downwards: nobody else's kept rows change) and at most k in L2, and its moves are the
// projections of the 3-way table's. Run by the keyed hash on the two ingested neighbours
// and by the ingest's ranks on D and D plus the person's ranked rows (the others' ranks as
// in D: a rank is a function of its person's rows only).
func TestPersonRowsNeighbourSensitivity(t *testing.T) {
	d, dPlusIngested := neighbours(t)
	// D plus the heavy person's rows, with their ranks, from the neighbour's ingest.
	dPlus := copyDataset(t, d)
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	part, other := dataset.TablePart(dPlus, "booking"), dataset.TableGlob(dPlusIngested, "booking")
	var added int
	if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet(%s) WHERE pid NOT IN (SELECT pid FROM read_parquet(%s))", quoteString(other), quoteString(part))).Scan(&added); err != nil || added != 252 {
		t.Fatalf("the neighbour adds %d bookings (%v), want one person's 252", added, err)
	}
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * FROM read_parquet(%[1]s) UNION ALL BY NAME SELECT * FROM read_parquet(%[2]s) WHERE pid NOT IN (SELECT pid FROM read_parquet(%[1]s))) TO %[3]s (FORMAT parquet)",
		quoteString(part), quoteString(other), quoteString(part+".new"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part+".new", part); err != nil {
		t.Fatal(err)
	}
	// The last set is the 3-way table the others (but the ones with d_contact) project from.
	sets := [][]int{{0}, {1}, {3}, {0, 1}, {1, 2}, {2, 3}, {0, 3}, {0, 1, 2}}
	for _, ranked := range []bool{true, false} {
		for _, k := range []int{1, 3} {
			counts := func(dir string) ([][]float64, []int) {
				eng, _, _ := openEngine(t, dir, ledger.Budget{Epsilon: 10}, nil)
				mc := personRowsCounter(t, eng, k, ranked, "region", "priority", "wait_days", "d_contact")
				var out [][]float64
				for _, s := range sets {
					c, _ := countOf(t, mc, s...)
					out = append(out, c)
				}
				var sizes []int
				for _, a := range mc.attrs {
					sizes = append(sizes, len(a.values))
				}
				return out, sizes
			}
			after := dPlus
			if !ranked {
				after = dPlusIngested
			}
			c0, sizes := counts(d)
			c1, _ := counts(after)
			b := personRowsBounding(k)
			full := len(sets) - 1
			diff3 := make([]float64, len(c0[full]))
			for j := range diff3 {
				diff3[j] = c1[full][j] - c0[full][j]
			}
			for i, s := range sets {
				var l1, l2 float64
				diff := make([]float64, len(c0[i]))
				for j := range c0[i] {
					diff[j] = c1[i][j] - c0[i][j]
					if diff[j] < 0 {
						t.Errorf("ranked=%v k=%d: set %v cell %d fell by %v", ranked, k, s, j, -diff[j])
					}
					l1 += math.Abs(diff[j])
					l2 += diff[j] * diff[j]
				}
				l2 = math.Sqrt(l2)
				if l1 != float64(k) || l1 > b.L1 || l2 > b.L2+1e-12 {
					t.Errorf("ranked=%v k=%d: set %v moved by L1 %v, L2 %v; want L1 exactly k = %d, L2 ≤ %v", ranked, k, s, l1, l2, k, b.L2)
				}
				if slices.Contains(s, 3) {
					continue
				}
				if want := project(diff3, sizes[:3], s); !slices.Equal(diff, want) {
					t.Errorf("ranked=%v k=%d: set %v's move is not the projection of the 3-way table's: the marginals count different rows", ranked, k, s)
				}
			}
		}
	}
}

// A synthesis request picks its bounding: person_rows by default (k = max_rows_per_person,
// recorded in the release and the ledger's options with L1 = L2 = k), per_group when the
// per-marginal bounds are given; both at once, or k outside 1..100, are refused before any
// charge.
func TestSynthesizeBoundingOptions(t *testing.T) {
	ctx := context.Background()
	eng, led, _ := openEngine(t, synthDataset(t), ledger.Budget{Epsilon: 10, Delta: 1e-5}, nil)
	req := func(k, g, r int) SynthesizeRequest {
		return SynthesizeRequest{Project: "wl", Actor: "user:test", Table: "booking", Method: "mst", Columns: []string{"priority", "region"},
			Rows: 100, Epsilon: f64(0.5), Delta: f64(1e-6), MaxRowsPerPerson: k, MaxGroupsContributed: g, MaxRowsPerGroup: r}
	}
	for _, bad := range []SynthesizeRequest{req(101, 0, 0), req(-1, 0, 0), req(2, 0, 1), req(1, 2, 0)} {
		var qe *Error
		if _, err := eng.Synthesize(ctx, bad); !errors.As(err, &qe) || qe.Code != CodeOptions {
			t.Errorf("k=%d C=%d R=%d: %v, want an options error", bad.MaxRowsPerPerson, bad.MaxGroupsContributed, bad.MaxRowsPerGroup, err)
		}
	}
	if n := len(entriesOf(led, ledger.KindCharge)); n != 0 {
		t.Fatalf("refusals charged: %d charges", n)
	}
	s, err := eng.Synthesize(ctx, req(2, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if s.Bounding != personRowsBounding(2) || s.Bounding.L2 != 2 || s.RowsPerPerson != 2 || !s.Attributes[0].Null {
		t.Errorf("k = 2: bounding %+v, rows per person %d, NULL level %v", s.Bounding, s.RowsPerPerson, s.Attributes[0].Null)
	}
	pg, err := eng.Synthesize(ctx, req(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if pg.Bounding.Method != boundingPerGroup || pg.RowsPerPerson != 2 || pg.Attributes[0].Null {
		t.Errorf("per_group R = 2: bounding %+v, rows per person %d, NULL level %v", pg.Bounding, pg.RowsPerPerson, pg.Attributes[0].Null)
	}
	charges := entriesOf(led, ledger.KindCharge)
	if len(charges) != 2 || !strings.Contains(charges[0].Options, "bounding=person_rows&max_rows_per_person=2") || !strings.Contains(charges[1].Options, "max_rows_per_group=2") {
		t.Errorf("charges' options: %d charges, %v", len(charges), charges)
	}
}

// A column the catalog declares not_null (booking.region: the CUP parser quarantines a
// booking without it) has no NULL level in synthesis, and the population is the rows with
// a value in its domain: a file that breaks the catalog (region NULL on some rows) has
// those rows counted in no marginal, so every marginal still counts the same rows and
// every row counted has a cell. A nullable column (priority) keeps its NULL level. A
// catalog written before the property (no not_null) keeps NULL a level of region too.
func TestPersonRowsNotNullColumns(t *testing.T) {
	var rows []string
	for i := range 90 {
		p := []string{"U", "B", "D", ""}[i%4]
		rows = append(rows, booking(i, cfOf(t, i%40), "89.7A.3", p, []string{"120", "030", "150"}[i%3], "2024-03-04", i*5%300))
	}
	data := csvDataset(t, rows...)
	// Break the catalog: region NULL on every fifth booking (by its key, so on rows of
	// persons who keep other rows).
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	part := dataset.TablePart(data, "booking")
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * REPLACE (CASE WHEN hash(booking_key) %% 5 = 0 THEN NULL ELSE region END AS region) FROM read_parquet(%s)) TO %s (FORMAT parquet)",
		quoteString(part), quoteString(part+".new"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part+".new", part); err != nil {
		t.Fatal(err)
	}
	var nulls, withRegion, nullPriority int
	if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FILTER (WHERE region IS NULL), count(*) FILTER (WHERE region IS NOT NULL), count(*) FILTER (WHERE region IS NOT NULL AND priority IS NULL) FROM read_parquet(%s)", quoteString(part))).Scan(&nulls, &withRegion, &nullPriority); err != nil {
		t.Fatal(err)
	}
	if nulls == 0 || withRegion+nulls != 90 || nullPriority == 0 {
		t.Fatalf("%d rows with region NULL, %d with a region (%d of them priority NULL): the test needs some of each", nulls, withRegion, nullPriority)
	}
	for _, ranked := range []bool{true, false} {
		eng, _, _ := openEngine(t, data, ledger.Budget{Epsilon: 10}, nil)
		mc := personRowsCounter(t, eng, 3, ranked, "priority", "region", "service_kind")
		full, _ := countOf(t, mc, 0, 1, 2)
		if !mc.attrs[0].Null || mc.attrs[1].Null || mc.attrs[2].Null {
			t.Fatalf("ranked=%v: NULL levels %v, %v, %v: want priority's only", ranked, mc.attrs[0].Null, mc.attrs[1].Null, mc.attrs[2].Null)
		}
		if len(mc.attrs[1].Levels) != len(eng.Catalog().Domains["region"].Values) || slices.Contains(mc.attrs[1].Levels, nil) || len(mc.attrs[2].Levels) != 2 {
			t.Fatalf("ranked=%v: region levels %v, service_kind %v", ranked, mc.attrs[1].Levels, mc.attrs[2].Levels)
		}
		sizes := []int{len(mc.attrs[0].values), len(mc.attrs[1].values), len(mc.attrs[2].values)}
		sum := 0.0
		for _, v := range full {
			sum += v
		}
		// Every person has at most 3 bookings, so k = 3 keeps every row with a region.
		if sum != float64(withRegion) {
			t.Errorf("ranked=%v: the population has %v rows, want the %d with a region", ranked, sum, withRegion)
		}
		for _, keep := range [][]int{{0}, {1}, {2}, {0, 1}, {1, 2}} {
			got, _ := countOf(t, mc, keep...)
			if want := project(full, sizes, keep); !slices.Equal(got, want) {
				t.Errorf("ranked=%v: marginal %v is not the projection of the 3-way table", ranked, keep)
			}
		}
		if got, _ := countOf(t, mc, 0); got[len(got)-1] != float64(nullPriority) {
			t.Errorf("ranked=%v: priority's NULL level counts %v, want the %d rows with a region and no priority", ranked, got[len(got)-1], nullPriority)
		}
	}
	// A catalog without the property: region nullable, the broken rows in its NULL level.
	raw, err := os.ReadFile(dataset.CatalogPath(data))
	if err != nil {
		t.Fatal(err)
	}
	var cat dataset.Catalog
	if err := json.Unmarshal(raw, &cat); err != nil {
		t.Fatal(err)
	}
	for i := range cat.Tables {
		for j := range cat.Tables[i].Columns {
			cat.Tables[i].Columns[j].NotNull = false
		}
	}
	if raw, err = json.Marshal(cat); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "not_null") {
		t.Fatal("the old catalog still says not_null")
	}
	old := copyDataset(t, data)
	if err := os.WriteFile(dataset.CatalogPath(old), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	eng, _, _ := openEngine(t, old, ledger.Budget{Epsilon: 10}, nil)
	mc := personRowsCounter(t, eng, 3, true, "priority", "region")
	got, _ := countOf(t, mc, 1)
	if !mc.attrs[1].Null || got[len(got)-1] != float64(nulls) {
		t.Errorf("old catalog: region NULL level %v counting %v, want one counting the %d rows without a region", mc.attrs[1].Null, got[len(got)-1], nulls)
	}
}
