package query

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
)

// This file generates what the property tests of property_test.go run: small random
// datasets, written directly as a Velo dataset directory (catalog.json, manifest.json and
// <dir>/<table>/*.parquet, as Engine.Open and openSandbox read them), and random queries
// over them. Everything is deterministic from a seed.

// genPeriod is the generated datasets' declared extract period.
const genPeriod = "2024-01..2024-06"

// genCatalog is the generated datasets' catalog: a person and a booking table with the
// real catalog's column types and policy fields (ingest.Tables), and small public
// domains, so that queries enumerate few groups and the tests stay fast. It goes through
// JSON as Engine.Open reads it, so domain values have the types the engine sees.
func genCatalog() (*dataset.Catalog, []byte, error) {
	period, err := fse.ParsePeriod(genPeriod)
	if err != nil {
		return nil, nil, err
	}
	b := func(lo, hi float64) *dataset.Bounds { return &dataset.Bounds{Lo: lo, Hi: hi} }
	cat := dataset.Catalog{
		Format: "velo-catalog/v1", DatasetVersion: "gen-v1", Period: period,
		Domains: map[string]dataset.Domain{
			"sex":          {Source: "administrative sex", Values: []any{"F", "M"}},
			"region":       {Source: "region codes (a subset)", Values: []any{"010", "030", "120", "150"}},
			"service_code": {Source: "monitored services (a subset)", Values: []any{"89.7", "95.02", "88.71.4", "RM-1"}},
			"priority":     {Source: "priority classes", Values: []any{"U", "B", "D", "P"}},
			"boolean":      {Source: "boolean", Values: []any{false, true}},
			"period":       {Source: "extract period", From: period.From, To: period.To},
		},
		Tables: []dataset.CatalogTable{
			{
				Name: "person", Path: "person/*.parquet", MaxGroupsContributed: 1, MaxRowsPerGroup: 1, PersonRank: true,
				Columns: []dataset.CatalogColumn{
					{Name: "pid", Type: "UUID", Identifier: true},
					{Name: "birth_year", Type: "SMALLINT", Groupable: true, Bounds: b(1900, 2030)},
					{Name: "sex", Type: "VARCHAR", Groupable: true, Domain: "sex"},
					{Name: "region", Type: "VARCHAR", Groupable: true, Domain: "region"},
					{Name: "province", Type: "VARCHAR", Groupable: true},
					{Name: "weight", Type: "DOUBLE", Bounds: b(0, 250)},
				},
			},
			{
				Name: "booking", Path: "booking/*.parquet", MaxGroupsContributed: 4, MaxRowsPerGroup: 4, PersonRank: true,
				Columns: []dataset.CatalogColumn{
					{Name: "pid", Type: "UUID", Identifier: true},
					{Name: "booking_key", Type: "VARCHAR", Identifier: true},
					{Name: "service_code", Type: "VARCHAR", Groupable: true, Domain: "service_code"},
					{Name: "priority", Type: "VARCHAR", Groupable: true, Domain: "priority"},
					{Name: "first_access", Type: "BOOLEAN", Groupable: true, Domain: "boolean"},
					{Name: "d_contact", Type: "DATE", Groupable: true, Domain: "period"},
					{Name: "d_appointment", Type: "DATE", Groupable: true},
					{Name: "provider_id", Type: "VARCHAR", Groupable: true},
					{Name: "region", Type: "VARCHAR", Groupable: true, Domain: "region"},
					{Name: "wait_days", Type: "INTEGER", Bounds: b(0, 365)},
					{Name: "cost", Type: "DOUBLE", Bounds: b(0, 1000)},
					{Name: "within_target", Type: "BOOLEAN", Groupable: true, Domain: "boolean"},
				},
			},
		},
	}
	raw, err := json.MarshalIndent(cat, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	var out dataset.Catalog
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, nil, err
	}
	return &out, raw, nil
}

// genData is a generated dataset in memory: the oracle reads it, writeDataset stores it.
type genData struct {
	persons int                 // person indices are 0..persons-1
	tables  map[string][]genRow // by table name
}

// genRow is one row: its person, and its values by column name (nil, int64, float64,
// string, bool or time.Time), as the oracle reads them. The pid column is pidOf(person).
type genRow struct {
	person int
	vals   map[string]any
}

func pidOf(person int) string { return fmt.Sprintf("5e1f0000-0000-4000-8000-%012d", person) }

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Value pools. The ordinary persons' strings are ones whose casts (to numbers, dates and
// booleans) the oracle's parsers cover; the added neighbour also gets values no ingest
// would normally produce, which only the neighbour properties read.
var (
	genRegions   = []string{"010", "030", "120", "150"}
	genServices  = []string{"89.7", "95.02", "88.71.4", "RM-1"}
	genProvinces = []string{"RM", "MI", "NA", "TO", "0", "12", " 7", "3.5", "-2.5", "1e2", "", "x y", "2024-03-01", "true", "è", "Àb", "030"}
	genProviders = []string{"120901", "030901", "150901", "X12345", " 7", "3.5", "", "2024-05-06", "2024-02-30", "T", "0x1F", "1_000", "no", "12.5"}
	oddStrings   = []string{"%", "_x", "O'Brien", "ß", strings.Repeat("z", 300), "１２", "\tq", "2024-13-45", "-0", "NaN", "inf", "a\nb", `\`, "9999999999999999999999"}
)

// genDataset makes D: persons ordinary persons, each within every contribution bound of
// genCatalog (at most one person row; at most three bookings, so at most 3·3 rows in a
// self-join and at most four groups), with NULLs, values outside domains and bounds and
// dates outside the period.
func genDataset(r *rand.Rand, persons int) *genData {
	d := &genData{persons: persons, tables: map[string][]genRow{}}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	maybe := func(p float64, v, other any) any {
		if r.Float64() < p {
			return other
		}
		return v
	}
	period, _ := fse.ParsePeriod(genPeriod)
	days := int(period.To.Sub(period.From).Hours()/24) + 1
	bookingN := 0
	for i := 0; i < persons; i++ {
		if r.Float64() < 0.9 {
			var sex any = []string{"F", "M"}[r.IntN(2)]
			sex = maybe(0.04, sex, "X")
			sex = maybe(0.04, sex, nil)
			var birth any = int64(1930 + r.IntN(86))
			birth = maybe(0.03, birth, []int64{1850, 2100, 1900, 2030}[r.IntN(4)])
			birth = maybe(0.04, birth, nil)
			var region any = pick(genRegions)
			region = maybe(0.04, region, "999")
			region = maybe(0.04, region, nil)
			var weight any = float64(400+r.IntN(900)) / 10
			weight = maybe(0.03, weight, []float64{-1, 400, 250, 0}[r.IntN(4)])
			weight = maybe(0.05, weight, nil)
			d.tables["person"] = append(d.tables["person"], genRow{i, map[string]any{
				"birth_year": birth, "sex": sex, "region": region, "province": maybe(0.05, pick(genProvinces), nil), "weight": weight,
			}})
		}
		nb := []int{0, 1, 1, 2, 2, 3}[r.IntN(6)]
		for k := 0; k < nb; k++ {
			bookingN++
			var contact any = period.From.AddDate(0, 0, r.IntN(days))
			contact = maybe(0.05, contact, period.From.AddDate(0, 0, -1-r.IntN(40)))
			contact = maybe(0.04, contact, period.To.AddDate(0, 0, 1+r.IntN(40)))
			contact = maybe(0.03, contact, nil)
			var appt any
			if c, ok := contact.(time.Time); ok {
				appt = c.AddDate(0, 0, r.IntN(200)-5)
			}
			appt = maybe(0.06, appt, nil)
			var wait any = int64(r.IntN(420))
			wait = maybe(0.03, wait, int64(-3))
			wait = maybe(0.05, wait, nil)
			var cost any = float64(r.IntN(120000)) / 100
			cost = maybe(0.02, cost, -10.5)
			cost = maybe(0.015, cost, math.NaN())
			cost = maybe(0.01, cost, math.Inf(1))
			cost = maybe(0.05, cost, nil)
			d.tables["booking"] = append(d.tables["booking"], genRow{i, map[string]any{
				"booking_key":   fmt.Sprintf("bk-%d", bookingN),
				"service_code":  maybe(0.05, maybe(0.04, pick(genServices), "ZZZ"), nil),
				"priority":      maybe(0.05, maybe(0.04, []string{"U", "B", "D", "P"}[r.IntN(4)], "X"), nil),
				"first_access":  maybe(0.06, r.IntN(3) > 0, nil),
				"d_contact":     contact,
				"d_appointment": appt,
				"provider_id":   maybe(0.05, pick(genProviders), nil),
				"region":        maybe(0.04, maybe(0.04, pick(genRegions), "999"), nil),
				"wait_days":     wait,
				"cost":          cost,
				"within_target": maybe(0.2, r.IntN(2) == 0, nil),
			}})
		}
	}
	return d
}

// withNeighbour returns D' = D plus one person (index d.persons) with many rows across
// many groups of both tables, and extreme values: so that L0 bounding, the per-group row
// bound and the per-table truncation before joins all bite for that person.
func withNeighbour(r *rand.Rand, d *genData) *genData {
	out := &genData{persons: d.persons + 1, tables: map[string][]genRow{}}
	for t, rows := range d.tables {
		out.tables[t] = slices.Clone(rows)
	}
	p := d.persons
	out.tables["person"] = append(out.tables["person"],
		genRow{p, map[string]any{"birth_year": int64(32767), "sex": "F", "region": "010", "province": "RM", "weight": 1e308}},
		genRow{p, map[string]any{"birth_year": int64(-32768), "sex": "M", "region": "120", "province": oddStrings[r.IntN(len(oddStrings))], "weight": math.NaN()}},
	)
	waits := []any{int64(100000), int64(math.MaxInt32), int64(math.MinInt32), int64(0), int64(365), nil, int64(-1)}
	costs := []any{math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, 5e5, nil, 999.99}
	dates := []any{day("0001-01-01"), day("9999-12-31"), day("1970-01-01"), nil}
	n := 0
	for _, svc := range append(slices.Clone(genServices), "ZZZ") {
		for _, prio := range []any{"U", "B", "D", "P", nil} {
			for _, reg := range genRegions {
				n++
				contact := day("2024-01-01").AddDate(0, 0, n*7%182)
				var appt any = contact.AddDate(0, 0, n%400)
				if n%5 == 0 {
					appt = dates[n%len(dates)]
				}
				prov := genProviders[n%len(genProviders)]
				if n%3 == 0 {
					prov = oddStrings[n%len(oddStrings)]
				}
				out.tables["booking"] = append(out.tables["booking"], genRow{p, map[string]any{
					"booking_key": fmt.Sprintf("bk-n%d", n), "service_code": svc, "priority": prio,
					"first_access": n%2 == 0, "d_contact": contact, "d_appointment": appt,
					"provider_id": prov, "region": reg, "wait_days": waits[n%len(waits)],
					"cost": costs[n%len(costs)], "within_target": []any{true, false, nil}[n%3],
				}})
			}
		}
	}
	return out
}

// writeDataset stores a generated dataset as a Velo dataset directory: catalog.json,
// manifest.json and one Parquet file per table, written by DuckDB with the catalog's
// column types (so D and D' have the same schema whatever their values).
func writeDataset(dir string, cat *dataset.Catalog, catJSON []byte, d *genData) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, t := range cat.Tables {
		var cols, names []string
		for _, c := range t.Columns {
			cols = append(cols, quoteIdent(c.Name)+" "+c.Type)
			names = append(names, c.Name)
		}
		if _, err := db.Exec(fmt.Sprintf("CREATE OR REPLACE TABLE %s (%s)", quoteIdent(t.Name), strings.Join(cols, ", "))); err != nil {
			return err
		}
		rows := d.tables[t.Name]
		for start := 0; start < len(rows); start += 200 {
			var tuples []string
			for _, row := range rows[start:min(start+200, len(rows))] {
				vals := make([]string, len(names))
				for i, name := range names {
					if name == "pid" {
						vals[i] = quoteString(pidOf(row.person))
						continue
					}
					vals[i] = sqlValue(row.vals[name])
				}
				tuples = append(tuples, "("+strings.Join(vals, ", ")+")")
			}
			if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s VALUES %s", quoteIdent(t.Name), strings.Join(tuples, ", "))); err != nil {
				return fmt.Errorf("insert into %s: %w", t.Name, err)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, t.Name), 0o755); err != nil {
			return err
		}
		src := quoteIdent(t.Name)
		if t.PersonRank {
			src = fmt.Sprintf("(SELECT *, %s AS %s FROM %s)", dataset.PersonRankSQL(names, 0x5eed), dataset.PersonRankColumn, quoteIdent(t.Name))
		}
		if _, err := db.Exec(fmt.Sprintf("COPY %s TO %s (FORMAT parquet)", src, quoteString(filepath.Join(dir, t.Name, "part-0.parquet")))); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), catJSON, 0o644); err != nil {
		return err
	}
	man, err := json.MarshalIndent(dataset.Manifest{Format: "velo-manifest/v1", DatasetVersion: cat.DatasetVersion, Period: cat.Period}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), man, 0o644); err != nil {
		return err
	}
	// Read back as the engine does: the manifest must name the catalog's version.
	m, err := dataset.ReadManifest(dir)
	if err != nil {
		return err
	}
	if m.DatasetVersion != cat.DatasetVersion {
		return fmt.Errorf("manifest version %s, catalog %s", m.DatasetVersion, cat.DatasetVersion)
	}
	return nil
}

// sqlValue renders a generated value as a DuckDB literal that reads back exactly.
func sqlValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return "CAST('" + strconv.FormatFloat(v, 'g', -1, 64) + "' AS DOUBLE)"
	case time.Time:
		return "DATE '" + v.Format(time.DateOnly) + "'"
	}
	return (&literal{V: v}).SQL()
}

// The projects' allow-lists a query runs under: usually every table and column, some
// times a restricted one.
var genAllowLists = []struct {
	name  string
	allow map[string][]string
}{
	{"all", map[string][]string{"booking": nil, "person": nil}},
	{"booking only", map[string][]string{"booking": nil}},
	{"some columns", map[string][]string{"booking": {"service_code", "region", "priority", "d_contact", "wait_days", "first_access"}, "person": {"sex", "birth_year"}}},
}

// queryGen makes random queries over genCatalog: mostly within the allow-list (every
// scalar function and operator of exprcheck.go, every DP aggregate, public and
// non-public keys, joins on pid, WHERE, HAVING, ORDER BY, LIMIT and the DP clause), and
// some outside it.
type queryGen struct {
	r    *rand.Rand
	cat  *dataset.Catalog
	from []*genUse // the tables of the query being made
}

// genUse is a table in FROM.
type genUse struct {
	t     *dataset.CatalogTable
	alias string
	qual  bool // its columns are written alias.column
}

type genCol struct {
	use *genUse
	c   dataset.CatalogColumn
}

func (g *queryGen) pct(p int) bool { return g.r.IntN(100) < p }

func pickOf[T any](g *queryGen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

func (g *queryGen) table(name string) *dataset.CatalogTable {
	for i := range g.cat.Tables {
		if g.cat.Tables[i].Name == name {
			return &g.cat.Tables[i]
		}
	}
	panic("gen: no table " + name)
}

// cols lists the FROM tables' non-identifier columns of a coarse type: "num", "str",
// "date" or "bool".
func (g *queryGen) cols(typ string) []genCol {
	var out []genCol
	for _, u := range g.from {
		for _, c := range u.t.Columns {
			if !c.Identifier && coarse(c.Type) == typ {
				out = append(out, genCol{u, c})
			}
		}
	}
	return out
}

func coarse(sqlType string) string {
	switch sqlType {
	case "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT":
		return "num"
	case "VARCHAR":
		return "str"
	case "DATE":
		return "date"
	case "BOOLEAN":
		return "bool"
	}
	return ""
}

// ref writes a column reference: qualified when the query joins (rarely not, which may be
// ambiguous), sometimes qualified when it does not.
func (g *queryGen) ref(c genCol) string {
	if c.use.qual && !g.pct(4) || !c.use.qual && g.pct(10) {
		return c.use.alias + "." + c.c.Name
	}
	return c.c.Name
}

func (g *queryGen) col(typ string) (string, bool) {
	cs := g.cols(typ)
	if len(cs) == 0 {
		return "", false
	}
	return g.ref(cs[g.r.IntN(len(cs))]), true
}

// namedCol references a column by name if a FROM table has it.
func (g *queryGen) namedCol(names ...string) (string, bool) {
	var cs []genCol
	for _, u := range g.from {
		for _, c := range u.t.Columns {
			if slices.Contains(names, c.Name) {
				cs = append(cs, genCol{u, c})
			}
		}
	}
	if len(cs) == 0 {
		return "", false
	}
	return g.ref(cs[g.r.IntN(len(cs))]), true
}

// Literals.

func (g *queryGen) intLit() string {
	return pickOf(g, "0", "1", "2", "3", "5", "7", "10", "30", "60", "100", "365", "1000", "-1", "-30", "2024", "3000000000")
}

func (g *queryGen) decLit() string {
	return pickOf(g, "0.5", "2.5", "0.1", "1.005", "99.99", "-3.75", "1e3", "1e300", "1.5e-3", "365.0", "2.675")
}

func (g *queryGen) strLit() string {
	pools := [][]string{genRegions, genServices, {"U", "B", "D", "P", "F", "M", "X", "999", "ZZZ"}, genProvinces, genProviders, {"", "x", "a%", "%", "_", "it's"}}
	pool := pickOf(g, pools...)
	return quoteString(pool[g.r.IntN(len(pool))])
}

func (g *queryGen) dateText() string {
	// The period, and some weeks either side of it.
	return day("2023-11-15").AddDate(0, 0, g.r.IntN(280)).Format(time.DateOnly)
}

func (g *queryGen) dateLit() string {
	d := g.dateText()
	return pickOf(g, "DATE '"+d+"'", "DATE '"+d+"'", "CAST('"+d+"' AS DATE)", "'"+d+"'::DATE")
}

// Row-level expressions by coarse type, up to depth d.

func (g *queryGen) num(d int) string {
	if d <= 0 || g.pct(30) {
		if c, ok := g.col("num"); ok && g.pct(70) {
			return c
		}
		if g.pct(70) {
			return g.intLit()
		}
		return g.decLit()
	}
	switch g.r.IntN(24) {
	case 0, 1, 2:
		return "(" + g.num(d-1) + " " + pickOf(g, "+", "-", "*", "/", "%", "//") + " " + g.num(d-1) + ")"
	case 3:
		return "-(" + g.num(d-1) + ")" // not -x: --1 would start a comment
	case 4:
		return pickOf(g, "abs", "floor", "ceil", "ceiling", "sign") + "(" + g.num(d-1) + ")"
	case 5:
		if g.pct(40) {
			return "round(" + g.num(d-1) + ")"
		}
		return "round(" + g.num(d-1) + ", " + pickOf(g, "0", "1", "2", "-1", "-2", "400", "-400", "2.7") + ")"
	case 6:
		args := []string{g.num(d - 1), g.num(d - 1)}
		if g.pct(30) {
			args = append(args, g.num(d-1))
		}
		return pickOf(g, "least", "greatest") + "(" + strings.Join(args, ", ") + ")"
	case 7:
		return pickOf(g, "coalesce", "ifnull") + "(" + g.num(d-1) + ", " + g.num(d-1) + ")"
	case 8:
		return "nullif(" + g.num(d-1) + ", " + g.num(d-1) + ")"
	case 9:
		return pickOf(g, "length", "strlen") + "(" + g.str(d-1) + ")"
	case 10, 11:
		return pickOf(g, "year", "month", "quarter", "day", "dayofweek", "isodow", "week", "dayofyear") + "(" + g.date(d-1) + ")"
	case 12:
		part := pickOf(g, "year", "quarter", "month", "week", "day", "dayofweek", "isodow", "dayofyear")
		switch g.r.IntN(3) {
		case 0:
			return "date_part('" + part + "', " + g.date(d-1) + ")"
		case 1:
			return "datepart('" + part + "', " + g.date(d-1) + ")"
		}
		return "extract(" + part + " FROM " + g.date(d-1) + ")"
	case 13:
		return pickOf(g, "date_diff", "datediff") + "('" + pickOf(g, "year", "quarter", "month", "week", "day") + "', " + g.date(d-1) + ", " + g.date(d-1) + ")"
	case 14:
		return "(" + g.date(d-1) + " - " + g.date(d-1) + ")"
	case 15, 16:
		to := pickOf(g, "INTEGER", "BIGINT", "SMALLINT", "DOUBLE", "FLOAT", "DECIMAL(10,2)")
		if g.pct(30) {
			return "(" + g.num(d-1) + ")::" + to
		}
		return pickOf(g, "CAST", "TRY_CAST") + "(" + g.num(d-1) + " AS " + to + ")"
	case 17:
		return "CAST(" + g.str(d-1) + " AS " + pickOf(g, "INTEGER", "DOUBLE", "BIGINT") + ")"
	case 18:
		return "CAST(" + g.boolean(d-1) + " AS INTEGER)"
	case 19:
		return "CAST(" + g.date(d-1) + " AS INTEGER)"
	case 20, 21:
		return g.caseOf(d, g.num)
	case 22:
		return "NULL"
	}
	return g.num(0)
}

func (g *queryGen) str(d int) string {
	if d <= 0 || g.pct(35) {
		if c, ok := g.col("str"); ok && g.pct(75) {
			return c
		}
		return g.strLit()
	}
	switch g.r.IntN(13) {
	case 0, 1:
		return pickOf(g, "lower", "upper", "trim") + "(" + g.str(d-1) + ")"
	case 2, 3:
		args := g.str(d-1) + ", " + pickOf(g, "1", "2", "0", "-2", "5", "-10")
		if g.pct(60) {
			args += ", " + pickOf(g, "1", "2", "3", "0", "-1", "1000")
		}
		return pickOf(g, "substring", "substr") + "(" + args + ")"
	case 4:
		n := pickOf(g, "1", "2", "-1", "0", "10")
		if g.pct(3) {
			n += ", 2" // a third argument, which DuckDB's left and right do not take
		}
		return pickOf(g, "left", "right") + "(" + g.str(d-1) + ", " + n + ")"
	case 5:
		return pickOf(g, "coalesce", "ifnull") + "(" + g.str(d-1) + ", " + g.str(d-1) + ")"
	case 6:
		return "nullif(" + g.str(d-1) + ", " + g.str(d-1) + ")"
	case 7, 8:
		return "CAST(" + g.num(d-1) + " AS VARCHAR)"
	case 9:
		return "CAST(" + pickOf(g, g.date(d-1), g.boolean(d-1)) + " AS VARCHAR)"
	case 10, 11:
		return g.caseOf(d, g.str)
	}
	return "NULL"
}

func (g *queryGen) date(d int) string {
	if d <= 0 || g.pct(40) {
		if c, ok := g.col("date"); ok && g.pct(75) {
			return c
		}
		return g.dateLit()
	}
	switch g.r.IntN(9) {
	case 0, 1:
		x := g.date(d - 1)
		if c, ok := g.col("date"); ok && g.pct(10) {
			x = "date_trunc('month', " + c + ")" // a TIMESTAMP in DuckDB: date_add does not bind
		}
		return "(" + x + " " + pickOf(g, "+", "-") + " " + pickOf(g, "1", "7", "30", "365", "100000") + ")"
	case 2, 3:
		return pickOf(g, "date_trunc", "date_trunc", "datetrunc") + "('" + pickOf(g, "year", "quarter", "month", "week", "day") + "', " + g.date(d-1) + ")"
	case 4:
		return pickOf(g, "least", "greatest") + "(" + g.date(d-1) + ", " + g.date(d-1) + ")"
	case 5:
		return pickOf(g, "coalesce", "ifnull") + "(" + g.date(d-1) + ", " + g.date(d-1) + ")"
	case 6:
		return "CAST(" + g.str(d-1) + " AS DATE)"
	case 7:
		return g.caseOf(d, g.date)
	}
	return "nullif(" + g.date(d-1) + ", " + g.date(d-1) + ")"
}

func (g *queryGen) boolean(d int) string {
	if d <= 0 || g.pct(15) {
		if c, ok := g.col("bool"); ok && g.pct(60) {
			return c
		}
		return pickOf(g, "TRUE", "FALSE", "NULL")
	}
	cmpOp := func() string {
		return pickOf(g, "=", "<>", "!=", "<", "<=", ">", ">=", "IS DISTINCT FROM", "IS NOT DISTINCT FROM")
	}
	switch g.r.IntN(20) {
	case 0, 1, 2:
		return "(" + g.num(d-1) + " " + cmpOp() + " " + g.num(d-1) + ")"
	case 3, 4:
		return "(" + g.str(d-1) + " " + cmpOp() + " " + g.str(d-1) + ")"
	case 5, 6:
		if g.pct(50) {
			return "(" + g.date(d-1) + " " + cmpOp() + " '" + g.dateText() + "')"
		}
		return "(" + g.date(d-1) + " " + cmpOp() + " " + g.date(d-1) + ")"
	case 7, 8:
		return "(" + g.boolean(d-1) + " " + pickOf(g, "AND", "OR") + " " + g.boolean(d-1) + ")"
	case 9:
		return "NOT " + g.boolean(d-1)
	case 10:
		return "(" + pickOf(g, g.num(d-1), g.str(d-1), g.date(d-1), g.boolean(d-1)) + " IS " + pickOf(g, "", "NOT ") + "NULL)"
	case 11, 12:
		var x string
		var lits []string
		switch g.r.IntN(3) {
		case 0:
			x = g.num(d - 1)
			for range 1 + g.r.IntN(3) {
				lits = append(lits, pickOf(g, g.intLit(), g.decLit(), "NULL"))
			}
		case 1:
			x = g.str(d - 1)
			for range 1 + g.r.IntN(3) {
				lits = append(lits, pickOf(g, g.strLit(), g.strLit(), "NULL"))
			}
		default:
			x = g.date(d - 1)
			for range 1 + g.r.IntN(3) {
				lits = append(lits, "DATE '"+g.dateText()+"'")
			}
		}
		return "(" + x + pickOf(g, " IN (", " NOT IN (") + strings.Join(lits, ", ") + "))"
	case 13, 14:
		not := pickOf(g, "", "NOT ")
		switch g.r.IntN(3) {
		case 0:
			return "(" + g.num(d-1) + " " + not + "BETWEEN " + g.num(d-1) + " AND " + g.num(d-1) + ")"
		case 1:
			return "(" + g.str(d-1) + " " + not + "BETWEEN " + g.strLit() + " AND " + g.strLit() + ")"
		}
		a, b := g.dateText(), g.dateText()
		if a > b {
			a, b = b, a
		}
		return "(" + g.date(d-1) + " " + not + "BETWEEN '" + a + "' AND '" + b + "')"
	case 15, 16:
		pat := pickOf(g, "'1%'", "'%0%'", "'_'", "'%.%'", "'R_-%'", "'x%'", "'%'", "''", "'È%'", "'a%'")
		return "(" + g.str(d-1) + " " + pickOf(g, "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE") + " " + pat + ")"
	case 17:
		return pickOf(g, "starts_with", "prefix", "suffix", "ends_with", "contains") + "(" + g.str(d-1) + ", " + g.strLit() + ")"
	case 18:
		return "CAST(" + pickOf(g, g.str(d-1), g.num(d-1)) + " AS BOOLEAN)"
	}
	return g.caseOf(d, g.boolean)
}

// caseOf is a searched CASE with results made by f; now and then a simple CASE.
func (g *queryGen) caseOf(d int, f func(int) string) string {
	var b strings.Builder
	b.WriteString("CASE")
	if g.pct(10) {
		x := g.str(d - 1)
		b.WriteString(" " + x)
		for range 1 + g.r.IntN(2) {
			b.WriteString(" WHEN " + g.strLit() + " THEN " + f(d-1))
		}
	} else {
		for range 1 + g.r.IntN(2) {
			b.WriteString(" WHEN " + g.boolean(d-1) + " THEN " + f(d-1))
		}
	}
	if g.pct(70) {
		b.WriteString(" ELSE " + f(d-1))
	}
	b.WriteString(" END")
	return b.String()
}

// pickFrom chooses the FROM clause: one table, or two or three joined on pid.
func (g *queryGen) pickFrom() string {
	g.from = nil
	use := func(name, alias string, qual bool) *genUse {
		u := &genUse{t: g.table(name), alias: alias, qual: qual}
		if alias == "" {
			u.alias = name
		}
		g.from = append(g.from, u)
		return u
	}
	ref := func(u *genUse) string {
		if u.alias != u.t.Name {
			return u.t.Name + pickOf(g, " ", " AS ") + u.alias
		}
		return u.t.Name
	}
	on := func(a, b *genUse) string {
		if g.pct(40) {
			return " USING (pid)"
		}
		if g.pct(50) {
			a, b = b, a
		}
		return " ON " + a.alias + ".pid = " + b.alias + ".pid"
	}
	switch n := g.r.IntN(100); {
	case n < 50:
		u := use("booking", pickOf(g, "", "", "b"), false)
		return ref(u)
	case n < 65:
		u := use("person", pickOf(g, "", "", "p"), false)
		return ref(u)
	case n < 92:
		b := use("booking", pickOf(g, "b", "bk", "booking"), true)
		p := use("person", pickOf(g, "p", "pe", "person"), true)
		if g.pct(50) {
			return ref(b) + " JOIN " + ref(p) + on(b, p)
		}
		return ref(p) + pickOf(g, " JOIN ", " INNER JOIN ") + ref(b) + on(p, b)
	case n < 97:
		b1 := use("booking", "b1", true)
		b2 := use("booking", "b2", true)
		return ref(b1) + " JOIN " + ref(b2) + on(b1, b2)
	}
	b := use("booking", "b", true)
	p := use("person", "p", true)
	b2 := use("booking", "b2", true)
	return ref(b) + " JOIN " + ref(p) + on(b, p) + " JOIN " + ref(b2) + " ON b.pid = b2.pid"
}

// genKey is a GROUP BY key: its SQL, the alias it may have and how GROUP BY names it.
type genKey struct{ sql, alias string }

func (g *queryGen) key() string {
	dateCol := func() string {
		if c, ok := g.namedCol("d_contact"); ok && g.pct(75) {
			return c
		}
		if c, ok := g.namedCol("d_appointment"); ok {
			return c
		}
		return "DATE '2024-05-05'"
	}
	if g.pct(2) {
		// Not groupable: refused unless the key's domain is public.
		if c, ok := g.col("num"); ok {
			return c
		}
	}
	switch g.r.IntN(19) {
	case 0, 1, 2, 3, 4:
		if c, ok := g.namedCol("region", "priority", "service_code", "sex", "first_access", "within_target"); ok {
			return c
		}
	case 5:
		if c, ok := g.namedCol("d_contact"); ok {
			return c
		}
	case 6, 7, 8:
		if len(g.cols("date")) == 0 {
			return g.key()
		}
		return pickOf(g, "date_trunc", "date_trunc", "datetrunc") + "('" + pickOf(g, "year", "quarter", "month", "month", "week", "day") + "', " + dateCol() + ")"
	case 9, 10:
		if len(g.cols("date")) == 0 {
			return g.key()
		}
		f := pickOf(g, "year", "month", "quarter", "isodow", "dayofweek")
		switch g.r.IntN(3) {
		case 0:
			return "extract(" + f + " FROM " + dateCol() + ")"
		case 1:
			return "date_part('" + f + "', " + dateCol() + ")"
		}
		return f + "(" + dateCol() + ")"
	case 11, 12, 13:
		// A CASE with constant results: a public domain, which may mix 1 and 1.0.
		lits := pickOf(g, []string{"1", "1.0", "2", "2.50", "2.5"}, []string{"'a'", "'b'", "'a'", "'010'"}, []string{"TRUE", "FALSE"}, []string{"1", "2", "3"}, []string{"DATE '2024-01-01'", "DATE '2024-06-01'"})
		var b strings.Builder
		b.WriteString("CASE")
		for k := range 1 + g.r.IntN(3) {
			cond := g.boolKey()
			if k > 0 && g.pct(50) {
				cond = g.boolean(1)
			}
			b.WriteString(" WHEN " + cond + " THEN " + pickOf(g, lits...))
		}
		if g.pct(70) {
			b.WriteString(" ELSE " + pickOf(g, lits...))
		}
		return b.String() + " END"
	case 14, 15:
		return g.boolKey()
	case 16, 17, 18:
		var opts []string
		if c, ok := g.namedCol("provider_id", "province"); ok {
			opts = append(opts, c, "lower("+c+")", "substring("+c+", 1, 2)", "coalesce("+c+", '?')", "left("+c+", 1)")
		}
		if c, ok := g.namedCol("birth_year"); ok {
			opts = append(opts, c, "("+c+" / 10)", "(floor("+c+" / 10) * 10)", "CAST("+c+" AS VARCHAR)", "("+c+" % 7)")
		}
		if c, ok := g.namedCol("d_appointment"); ok {
			opts = append(opts, c)
		}
		if len(opts) > 0 {
			return pickOf(g, opts...)
		}
	}
	c, _ := g.namedCol("region", "sex", "priority")
	return c
}

// boolKey is a condition on a column: a boolean key, or a CASE key's WHEN.
func (g *queryGen) boolKey() string {
	switch g.r.IntN(5) {
	case 0:
		if c, ok := g.col("num"); ok {
			return "(" + c + " " + pickOf(g, "<", ">=", "=", "IS DISTINCT FROM") + " " + pickOf(g, "30", "100", "1990", "500.5") + ")"
		}
	case 1:
		if c, ok := g.col("str"); ok {
			return "(" + c + " " + pickOf(g, "LIKE", "ILIKE", "NOT LIKE") + " " + pickOf(g, "'1%'", "'%0%'", "'R%'", "'_'") + ")"
		}
	case 2:
		if c, ok := g.col("date"); ok {
			return "(" + c + " " + pickOf(g, "<", ">=") + " '" + g.dateText() + "')"
		}
	case 3:
		if c, ok := g.col("bool"); ok {
			return pickOf(g, c, "NOT "+c, "("+c+" IS NULL)")
		}
	}
	c, _ := g.col("str")
	return "(" + c + " IS NOT NULL)"
}

// genAgg is a select-list aggregate: its SQL and alias.
type genAgg struct{ sql, alias string }

// aggArg is a numeric aggregate's argument: mostly one with clamping bounds known from
// the catalog (bounded true), sometimes any numeric expression.
func (g *queryGen) aggArg() (arg string, bounded bool) {
	var opts []string
	for _, c := range g.cols("num") {
		r := g.ref(c)
		opts = append(opts, r, r, "("+r+" * 2 + 1)", "least("+r+", 100)", "abs("+r+" - 50)", "coalesce("+r+", 0)", "-"+r, "("+r+" / 7.0)", "round("+r+", 1)", "CAST("+r+" AS DOUBLE)")
	}
	for _, c := range g.cols("bool") {
		r := g.ref(c)
		opts = append(opts, "CAST("+r+" AS INTEGER)", "CASE WHEN "+r+" THEN 1 ELSE 0 END")
	}
	for _, c := range g.cols("date") {
		opts = append(opts, "month("+g.ref(c)+")", "isodow("+g.ref(c)+")")
	}
	if g.pct(75) && len(opts) > 0 {
		return pickOf(g, opts...), true
	}
	return g.num(2), false
}

// aggBounded is a numeric aggregate's argument, with contribution bounds when it has no
// bounds of its own (now and then without, to be refused, or with bounds it does not
// need).
func (g *queryGen) aggBounded() string {
	arg, bounded := g.aggArg()
	if !bounded && g.pct(85) || g.pct(15) {
		return arg + g.bounds()
	}
	return arg
}

func (g *queryGen) bounds() string {
	b := pickOf(g, "0, 100", "-50, 50", "0.5, 2.5", "0, 1e9", "0.001, 0.01", "2020, 2025", "0, 1", "-1000000, 1000000", "-7.25, 3")
	if g.pct(8) {
		b = pickOf(g, "5, 5", "10, 1", "0, 1e10", "'a', 1", "0, NULL")
	}
	return ", contribution_bounds_per_group => (" + b + ")"
}

func (g *queryGen) agg() string {
	if g.pct(2) {
		// Not groupable: refused unless the key's domain is public.
		if c, ok := g.col("num"); ok {
			return c
		}
	}
	switch g.r.IntN(35) {
	case 0, 1, 2, 3, 4, 5, 6:
		return pickOf(g, "COUNT(*)", "count(*)", "COUNT(*)")
	case 7, 8, 9:
		return "COUNT(" + pickOf(g, g.num(1), g.str(1), g.date(1), g.boolean(1)) + ")"
	case 10, 11, 12, 13:
		if len(g.from) > 1 {
			return "COUNT(DISTINCT " + g.from[g.r.IntN(len(g.from))].alias + ".pid)"
		}
		return "COUNT(DISTINCT pid)"
	case 14, 15, 16, 17, 18:
		return "SUM(" + g.aggBounded() + ")"
	case 19, 20, 21, 22, 23:
		return pickOf(g, "AVG", "AVG", "MEAN") + "(" + g.aggBounded() + ")"
	case 24, 25:
		return "MEDIAN(" + g.aggBounded() + ")"
	case 26, 27:
		q := pickOf(g, "0.1", "0.25", "0.5", "0.9", "0", "1", "0.75")
		arg, bounds, _ := strings.Cut(g.aggBounded(), ", contribution_bounds_per_group")
		if bounds != "" {
			bounds = ", contribution_bounds_per_group" + bounds
		}
		return pickOf(g, "QUANTILE_CONT", "QUANTILE") + "(" + arg + ", " + q + bounds + ")"
	case 28:
		q := pickOf(g, "0.1", "0.5", "0.9")
		arg, _ := g.aggArg()
		return "PERCENTILE_CONT(" + q + ") WITHIN GROUP (ORDER BY " + arg + ")"
	case 29, 30, 31, 32, 33, 34:
		return pickOf(g, "VAR_POP", "VAR_SAMP", "VARIANCE", "STDDEV_POP", "STDDEV_SAMP", "STDDEV") + "(" + g.aggBounded() + ")"
	}
	return "COUNT(*)"
}

// options is the ZetaSQL clause, or nothing.
func (g *queryGen) options() string {
	if !g.pct(25) {
		return ""
	}
	var opts []string
	if g.pct(60) {
		opts = append(opts, "epsilon = "+pickOf(g, "0.5", "1", "2.5"))
	}
	if g.pct(50) {
		opts = append(opts, "delta = "+pickOf(g, "1e-5", "1e-6", "1e-5", "0"))
	}
	if g.pct(60) || len(opts) == 0 {
		opts = append(opts, "max_groups_contributed = "+pickOf(g, "3", "4", "5", "8", "20", "1"))
	}
	return "WITH DIFFERENTIAL_PRIVACY OPTIONS(" + strings.Join(opts, ", ") + ") "
}

// validQuery makes a query from the allow-list's grammar. Some are still refused: a key
// that is not groupable, aggregates without bounds, CASE results of two types, domains
// with too many combinations.
func (g *queryGen) validQuery() string {
	from := g.pickFrom()
	nk := pickOf(g, 0, 1, 1, 1, 2, 2, 3)
	keys := make([]genKey, 0, nk)
	for i := 0; i < nk; i++ {
		k := genKey{sql: g.key()}
		if g.pct(70) {
			k.alias = fmt.Sprintf("k%d", i+1)
		}
		keys = append(keys, k)
	}
	na := pickOf(g, 1, 1, 2, 2, 3, 4)
	aggs := make([]genAgg, na)
	for i := range aggs {
		aggs[i] = genAgg{sql: g.agg()}
		if g.pct(90) {
			aggs[i].alias = fmt.Sprintf("a%d", i+1)
		}
	}
	// The select list: keys (not always all) and aggregates, in some order.
	type item struct {
		sql   string
		alias string
		key   int // index in keys, or -1
	}
	var items []item
	for i, k := range keys {
		if g.pct(90) || k.alias != "" {
			items = append(items, item{k.sql, k.alias, i})
		}
	}
	for _, a := range aggs {
		items = append(items, item{a.sql, a.alias, -1})
	}
	if g.pct(50) {
		g.r.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	sel := make([]string, len(items))
	for i, it := range items {
		sel[i] = it.sql
		if it.alias != "" {
			sel[i] += " AS " + it.alias
		}
	}
	q := "SELECT " + g.options() + strings.Join(sel, ", ") + " FROM " + from
	if g.pct(60) {
		q += " WHERE " + g.where()
	}
	if len(keys) > 0 {
		var gb []string
		for i, k := range keys {
			pos := slices.IndexFunc(items, func(it item) bool { return it.key == i })
			switch {
			case k.alias != "" && g.pct(40):
				gb = append(gb, k.alias)
			case pos >= 0 && g.pct(30):
				gb = append(gb, strconv.Itoa(pos+1))
			default:
				gb = append(gb, k.sql)
			}
		}
		q += " GROUP BY " + strings.Join(gb, ", ")
	}
	var outs []string // names HAVING and ORDER BY may use
	for _, it := range items {
		if it.alias != "" {
			outs = append(outs, it.alias)
		}
	}
	if g.pct(25) && len(outs) > 0 {
		q += " HAVING " + g.having(outs, aggs)
	}
	if g.pct(30) {
		var ob []string
		for range 1 + g.r.IntN(2) {
			var term string
			switch {
			case len(outs) > 0 && g.pct(50):
				term = pickOf(g, outs...)
			case g.pct(50):
				term = strconv.Itoa(1 + g.r.IntN(len(items)))
			default:
				term = items[g.r.IntN(len(items))].sql
			}
			ob = append(ob, term+pickOf(g, "", " ASC", " DESC"))
		}
		q += " ORDER BY " + strings.Join(ob, ", ")
	}
	if g.pct(20) {
		q += " LIMIT " + pickOf(g, "0", "1", "5", "100")
		if g.pct(30) {
			q += " OFFSET " + pickOf(g, "0", "2")
		}
	}
	return q
}

// where is a WHERE condition, often with top-level conjuncts that narrow public keys.
func (g *queryGen) where() string {
	var conj []string
	for range 1 + g.r.IntN(3) {
		switch g.r.IntN(6) {
		case 0:
			if c, ok := g.namedCol("d_contact"); ok {
				a, b := g.dateText(), g.dateText()
				if a > b {
					a, b = b, a
				}
				conj = append(conj, pickOf(g, c+" BETWEEN '"+a+"' AND '"+b+"'", c+" >= DATE '"+a+"'", c+" < '"+b+"'", c+" = '"+a+"'"))
				continue
			}
		case 1:
			if c, ok := g.namedCol("region", "priority", "service_code", "sex"); ok {
				conj = append(conj, c+pickOf(g, " IN (", " = (")+g.strLit()+")")
				continue
			}
		}
		conj = append(conj, g.boolean(2))
	}
	return strings.Join(conj, " AND ")
}

func (g *queryGen) having(outs []string, aggs []genAgg) string {
	switch g.r.IntN(6) {
	case 0:
		return pickOf(g, outs...) + " > " + pickOf(g, "0", "5", "10.5", "-1")
	case 1:
		return pickOf(g, outs...) + " >= 1 AND " + pickOf(g, outs...) + " < 1000"
	case 2:
		return "NOT (" + pickOf(g, outs...) + " <= 2) OR " + pickOf(g, outs...) + " IS NULL"
	case 3:
		return "(" + pickOf(g, outs...) + " + " + pickOf(g, outs...) + ") / 2 > 3"
	case 4:
		return aggs[g.r.IntN(len(aggs))].sql + " > 1"
	}
	return pickOf(g, "SUM(cost) > 3", pickOf(g, outs...)+" = 'a'", "COUNT(*) > 0")
}

// invalidQuery makes a query outside the allow-list (or not SQL at all).
func (g *queryGen) invalidQuery() string {
	v := g.validQuery()
	from := g.pickFrom()
	w := func(cond string) string { return "SELECT COUNT(*) AS n FROM " + from + " WHERE " + cond }
	s, _ := g.col("str")
	n, _ := g.col("num")
	switch g.r.IntN(30) {
	case 0:
		return w(pickOf(g, "getenv('HOME') = 'x'", "current_setting('threads') = 1", "random() < 0.5", "now() > DATE '2024-01-01'", "md5("+s+") = 'x'", "concat("+s+", 'x') = 'y'", s+" || 'x' = 'y'", "regexp_matches("+s+", 'a')", "version() = 'x'", "hash("+s+") = 1"))
	case 1:
		return w(pickOf(g, "pid IS NOT NULL", "booking_key = 'bk-1'", "rx_key = 'x'", "CAST(pid AS VARCHAR) = 'x'"))
	case 2:
		return pickOf(g, "SELECT pid, COUNT(*) FROM booking GROUP BY pid", "SELECT booking_key, COUNT(*) FROM booking GROUP BY 1", "SELECT COUNT(pid) FROM booking", "SELECT SUM(pid) FROM booking", "SELECT COUNT(DISTINCT region) FROM booking")
	case 3:
		return "SELECT " + pickOf(g, "MIN", "MAX", "LIST", "STRING_AGG", "MODE", "ARG_MAX", "FIRST", "PRODUCT", "APPROX_QUANTILE") + "(" + n + ") FROM " + from
	case 4:
		return pickOf(g, "SELECT * FROM booking", "SELECT DISTINCT region FROM booking", "SELECT region, COUNT(*) FROM booking GROUP BY ALL",
			"SELECT region, COUNT(*) FROM booking GROUP BY ROLLUP (region)", "SELECT region, COUNT(*) FROM booking GROUP BY CUBE (region)",
			"SELECT region, COUNT(*) FROM booking GROUP BY GROUPING SETS ((region), ())", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region QUALIFY n > 1",
			"SELECT COUNT(*) OVER () FROM booking", "SELECT COUNT(*) FROM booking USING SAMPLE 10%", "SELECT COUNT(*) FROM booking TABLESAMPLE 10%", "SELECT region FROM booking")
	case 5:
		return pickOf(g, "SELECT COUNT(*) FROM (SELECT * FROM booking)", "WITH t AS (SELECT * FROM booking) SELECT COUNT(*) FROM t",
			"SELECT COUNT(*) FROM booking UNION SELECT COUNT(*) FROM person", "SELECT COUNT(*) FROM booking INTERSECT SELECT COUNT(*) FROM booking",
			"SELECT COUNT(*) FROM booking WHERE pid IN (SELECT pid FROM person)", "SELECT COUNT(*) FROM booking WHERE EXISTS (SELECT 1)",
			"SELECT (SELECT COUNT(*) FROM person) AS n FROM booking")
	case 6:
		return pickOf(g, "SELECT 1; SELECT 2", v+"; "+v, "DELETE FROM booking", "INSERT INTO booking VALUES (1)", "CREATE TABLE x AS SELECT 1",
			"DROP TABLE booking", "PRAGMA version", "ATTACH 'x.db'", "COPY booking TO 'x.csv'", "SET threads = 1", "EXPLAIN "+v, "DESCRIBE booking", "VALUES (1)", "CALL pragma_version()")
	case 7:
		return pickOf(g, "SELECT COUNT(*) FROM read_parquet('/etc/passwd')", "SELECT COUNT(*) FROM 'booking/part-0.parquet'", "SELECT COUNT(*) FROM glob('*')",
			"SELECT COUNT(*) FROM read_csv('x.csv')", "SELECT COUNT(*) FROM main.booking", "SELECT COUNT(*) FROM memory.main.booking", "SELECT COUNT(*) FROM booking b(x, y)")
	case 8:
		return pickOf(g, "SELECT COUNT(*) FROM booking LEFT JOIN person USING (pid)", "SELECT COUNT(*) FROM booking CROSS JOIN person", "SELECT COUNT(*) FROM booking, person",
			"SELECT COUNT(*) FROM booking b JOIN person p ON b.region = p.region", "SELECT COUNT(*) FROM booking JOIN person USING (region)",
			"SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = p.pid AND b.region = p.region", "SELECT COUNT(*) FROM booking b JOIN person p ON b.pid = b.pid",
			"SELECT COUNT(*) FROM booking a JOIN booking b USING (pid) JOIN person c USING (pid) JOIN person d USING (pid)", "SELECT COUNT(*) FROM booking JOIN booking USING (pid)",
			"SELECT COUNT(*) FROM booking b FULL JOIN person p ON b.pid = p.pid", "SELECT COUNT(*) FROM booking b ASOF JOIN person p ON b.pid = p.pid",
			"SELECT COUNT(*) FROM booking NATURAL JOIN person", "SELECT COUNT(*) FROM booking b POSITIONAL JOIN person p")
	case 9:
		return pickOf(g, "SELECT COUNT(*) FROM visits", "SELECT COUNT(nosuch) FROM booking", "SELECT COUNT(*) FROM booking WHERE x.region = '010'",
			"SELECT region, COUNT(*) FROM booking b JOIN person p USING (pid) GROUP BY region", "SELECT COUNT(*) FROM booking WHERE birth_year > 1")
	case 10:
		return w(pickOf(g, n+" = 'abc'", s+" = 5", "region = DATE '2024-01-01'", "d_contact = 5", "d_contact = 'not a date'", n, s, "'x' LIKE "+s, s+" LIKE 'a' ESCAPE '\\'",
			"date_trunc('hour', d_contact) IS NULL", "date_trunc(region, d_contact) IS NULL", "substring("+s+", "+n+") = 'x'", n+" IN ("+n+")", "CAST("+n+" AS TIMESTAMP) IS NULL",
			"CAST("+n+" AS INTERVAL) IS NULL", "d_contact + INTERVAL 1 DAY > d_contact", "d_contact + 1000000 > d_contact", "d_contact + "+n+" > d_contact", "round("+n+", "+n+") > 1",
			"least("+n+", "+s+") IS NULL", "coalesce("+n+", "+s+") IS NULL", "abs("+s+") > 1", "length("+n+") > 1", "year("+n+") > 1", "CASE WHEN TRUE THEN 1 ELSE 'a' END = 1",
			"CASE WHEN "+n+" THEN 1 END = 1", "NOT "+n, "[1, 2] IS NULL", "{'a': 1} IS NULL", "?", "$1 = 1", "lambda_x IS NULL", "list_transform([1], x -> x + 1) IS NULL", "1e400 > 1",
			"170141183460469231731687303715884105728 > 1", "COLUMNS(*) IS NULL", "count(*) > 1", "SUM(wait_days) > 1", "row(1, 2) IS NULL", "(1, 2) IS NULL", "starts_with("+s+", "+n+")"))
	case 11:
		return "SELECT " + pickOf(g, "SUM", "AVG", "MEDIAN", "VAR_POP") + "(" + pickOf(g, "length(provider_id)", "year(d_contact)", "wait_days * wait_days", "cost / wait_days", "region", "d_contact", "first_access") + ") AS x FROM booking"
	case 12:
		return strings.Replace(v, "SELECT ", "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS("+pickOf(g, "max_groups_contributed = 0", "max_groups_contributed = 101", "max_groups_contributed = 2.5", "foo = 1", "epsilon = 'abc'", "epsilon = abc", "epsilon", "epsilon = 1, epsilon = 2", "epsilon = 1,, delta = 2")+") ", 1)
	case 13:
		return strings.Replace(v, "SELECT ", pickOf(g, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1 ", "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS ", "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS epsilon = 1 ", "SELECT WITH DIFFERENTIAL_PRIVACY "), 1)
	case 14:
		return pickOf(g, "SELECT region, COUNT(*) FROM booking GROUP BY COUNT(*)", "SELECT region, wait_days, COUNT(*) FROM booking GROUP BY region",
			"SELECT region, COUNT(*) + 1 FROM booking GROUP BY region", "SELECT COUNT(*) FROM booking GROUP BY 3", "SELECT 1 AS x, COUNT(*) FROM booking GROUP BY x",
			"SELECT region, priority, service_code, first_access, within_target, COUNT(*) FROM booking GROUP BY 1, 2, 3, 4, 5",
			"SELECT COUNT(*), "+strings.Repeat("COUNT(*), ", 16)+"COUNT(*) FROM booking", "SELECT d_contact, date_trunc('day', d_contact) AS d, COUNT(*) FROM booking GROUP BY 1, 2",
			"SELECT region FROM booking GROUP BY region", "SELECT COUNT(*) AS n, COUNT(*) AS n FROM booking", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING SUM(cost) > 1",
			"SELECT region, COUNT(*) AS n FROM booking GROUP BY region HAVING wait_days > 1", "SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY wait_days",
			"SELECT region, COUNT(*) AS n FROM booking GROUP BY region ORDER BY 5", "SELECT COUNT(*) AS n FROM booking LIMIT -1", "SELECT COUNT(*) AS n FROM booking LIMIT 1 + 1",
			"SELECT COUNT(*) AS n FROM booking LIMIT 'x'", "SELECT COUNT(*) AS n FROM booking OFFSET -2", "SELECT COUNT(*) FILTER (WHERE wait_days > 1) FROM booking",
			"SELECT SUM(DISTINCT wait_days) FROM booking", "SELECT COUNT(*, 1) FROM booking", "SELECT MEDIAN(wait_days, 0.5) FROM booking", "SELECT QUANTILE_CONT(wait_days, 1.5) FROM booking",
			"SELECT QUANTILE_CONT(wait_days, wait_days) FROM booking", "SELECT SUM(wait_days ORDER BY cost) FROM booking", "SELECT SUM(wait_days, foo => 1) FROM booking",
			"SELECT SUM(wait_days, contribution_bounds_per_group => (0, 1), contribution_bounds_per_group => (0, 2)) FROM booking",
			"SELECT SUM(wait_days, contribution_bounds_per_group => 5) FROM booking", "SELECT main.sum(wait_days) FROM booking", "SELECT COUNT(COUNT(*)) FROM booking",
			"SELECT SUM(COUNT(*)) FROM booking", "SELECT COUNT(*) FROM booking WHERE abs(wait_days) > ALL (SELECT 1)", "SELECT MEDIAN(wait_days) FILTER (WHERE TRUE) FROM booking")
	case 15, 16, 17:
		// A valid query with a token dropped or doubled: mostly a syntax error.
		toks := strings.Fields(v)
		i := g.r.IntN(len(toks))
		if g.pct(50) {
			toks = slices.Delete(toks, i, i+1)
		} else {
			toks = slices.Insert(toks, i, toks[i])
		}
		return strings.Join(toks, " ")
	case 18:
		return v[:g.r.IntN(len(v))]
	case 19:
		return pickOf(g, "", "   ", "-- nothing", "/* */", ";", "SELECT", "SELECT COUNT(*)", "SELECT COUNT(*) FROM", strings.Repeat("x", 70000), "SÉLECT 1", "SELECT 'unterminated")
	}
	return v
}

// query is the next generated query: mostly from the allow-list's grammar, some outside it.
func (g *queryGen) query() string {
	if g.pct(18) {
		return g.invalidQuery()
	}
	return g.validQuery()
}
