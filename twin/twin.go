// Package twin writes a dataset's dummy twin: Parquet tables in the dataset's layout
// (dataset.TableGlob) with the same catalog, filled with synthetic persons whose values
// are drawn from what the catalog declares — each column's public domain, clamping bounds,
// type and the extract's period — and from a fixed seed. Nothing else goes in: Generate
// takes a catalog, never a data directory, so no value of the data can reach the twin
// (docs/clients.md#dummy-data).
//
// The twin is for developing queries, not for answers: its values are uniform draws, its
// persons and identifiers are made up, and a column without a public domain holds made-up
// codes (code_01, code_02, ...). Each person has at most min(max_groups_contributed,
// max_rows_per_group) rows in a table, so the engine's contribution bounding with the
// catalog's defaults keeps every row of the twin, and exact answers on it are the plain
// SQL answers. A table whose catalog says its files carry person ranks
// (dataset.PersonRankColumn) gets them, each person's rows ranked 1..n, so the engine bounds
// a dummy query as it bounds the real one.
//
// Generate is deterministic: the same catalog, persons and seed give the same twin, byte for
// byte (one DuckDB thread, uncompressed Parquet).
package twin

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
)

// DefaultPersons is how many synthetic persons a twin has unless told otherwise.
const DefaultPersons = 2000

// DefaultSeed is the seed of every twin unless told otherwise.
const DefaultSeed uint64 = 0x76656c6f2d647579 // "velo-duy"

// Format is the manifest format of a twin, so no twin is taken for a dataset.
const Format = "velo-dummy-twin/v1"

// Options choose the twin's size and seed.
type Options struct {
	Persons int    // synthetic persons (DefaultPersons when 0)
	Seed    uint64 // DefaultSeed when 0
}

func (o Options) withDefaults() Options {
	if o.Persons <= 0 {
		o.Persons = DefaultPersons
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	return o
}

// Version is the twin's dataset version: "dummy_" and a hash of the catalog's public
// description (its dataset version included), the persons and the seed.
func Version(cat *dataset.Catalog, opts Options) (string, error) {
	opts = opts.withDefaults()
	b, err := json.Marshal(cat)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "velo/twin/v1\x00%d\x00%d\x00", opts.Persons, opts.Seed)
	h.Write(b)
	return "dummy_" + hex.EncodeToString(h.Sum(nil))[:24], nil
}

// Generate writes the twin of cat into dir (created if missing; its tables, catalog.json and
// manifest.json are replaced) and returns the twin's catalog: cat's, with the twin's
// dataset version.
func Generate(ctx context.Context, cat *dataset.Catalog, dir string, opts Options) (*dataset.Catalog, error) {
	opts = opts.withDefaults()
	version, err := Version(cat, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dummy twin: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"SET threads = 1", "SET preserve_insertion_order = true",
		"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	g := newGenerator(cat, opts)
	for _, t := range cat.Tables {
		if err := g.writeTable(ctx, db, abs, t); err != nil {
			return nil, fmt.Errorf("dummy twin: table %s: %w", t.Name, err)
		}
	}
	out := *cat
	out.DatasetVersion = version
	out.Domains = map[string]dataset.Domain{}
	for name, d := range cat.Domains {
		d.Labels = nil // attached by ReadCatalog, never stored
		out.Domains[name] = d
	}
	if err := writeJSON(dataset.CatalogPath(abs), &out); err != nil {
		return nil, err
	}
	var created time.Time
	if cat.Period != nil {
		created = cat.Period.From
	}
	man := dataset.Manifest{Format: Format, DatasetVersion: version, ToolVersion: "velo twin", CreatedAt: created, Period: cat.Period,
		Batches: []dataset.Batch{}, Tables: map[string]dataset.TableCounts{}}
	for _, t := range cat.Tables {
		man.Tables[t.Name] = dataset.TableCounts{Read: g.rows[t.Name], Written: g.rows[t.Name]}
	}
	if err := writeJSON(dataset.ManifestPath(abs), &man); err != nil {
		return nil, err
	}
	res := out
	res.Domains = cat.Domains
	return &res, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// generator draws the twin's values.
type generator struct {
	cat     *dataset.Catalog
	opts    Options
	pids    []string
	from    time.Time // the days dates are drawn from
	days    int
	rows    map[string]int64
	counter map[string]int // identifiers made up so far, by column
}

func newGenerator(cat *dataset.Catalog, opts Options) *generator {
	g := &generator{cat: cat, opts: opts, rows: map[string]int64{}, counter: map[string]int{}}
	g.from, g.days = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 366
	if p := cat.Period; p != nil && !p.From.IsZero() && !p.To.Before(p.From) {
		g.from = p.From.UTC().Truncate(24 * time.Hour)
		g.days = int(p.To.UTC().Sub(g.from).Hours()/24) + 1
	}
	r := g.rng("pid")
	g.pids = make([]string, opts.Persons)
	for i := range g.pids {
		var u [16]byte
		binary.LittleEndian.PutUint64(u[:8], r.Uint64())
		binary.LittleEndian.PutUint64(u[8:], r.Uint64())
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		h := hex.EncodeToString(u[:])
		g.pids[i] = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	return g
}

// rng is the random stream of one part of the twin, from the seed and the part's name, so
// that a table's values do not depend on the tables before it.
func (g *generator) rng(part string) *rand.Rand {
	h := sha256.Sum256([]byte(part))
	return rand.New(rand.NewPCG(g.opts.Seed, binary.LittleEndian.Uint64(h[:8])))
}

// writeTable writes one table: its rows as text in a CSV, cast to the catalog's types by
// DuckDB into the table's Parquet file.
func (g *generator) writeTable(ctx context.Context, db *sql.DB, dir string, t dataset.CatalogTable) error {
	if err := os.MkdirAll(dataset.TableDir(dir, t.Name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".twin-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := csv.NewWriter(tmp)
	header := make([]string, len(t.Columns), len(t.Columns)+1)
	for i, c := range t.Columns {
		header[i] = c.Name
	}
	// A table whose files carry person ranks (dataset.PersonRankColumn) gets them too: each
	// person's rows ranked 1, 2, ... in the order drawn.
	if t.PersonRank {
		header = append(header, dataset.PersonRankColumn)
	}
	if err := w.Write(header); err != nil {
		tmp.Close()
		return err
	}
	perPerson := 1
	if t.Name != "person" {
		perPerson = max(1, min(t.MaxGroupsContributed, t.MaxRowsPerGroup))
	}
	r := g.rng("table/" + t.Name)
	row := make([]string, len(header))
	for _, pid := range g.pids {
		n := 1
		if t.Name != "person" {
			n = r.IntN(perPerson + 1) // 0 .. perPerson rows
		}
		for rank := range n {
			for i, c := range t.Columns {
				row[i] = g.value(r, t, c, pid)
			}
			if t.PersonRank {
				row[len(t.Columns)] = strconv.Itoa(rank + 1)
			}
			if err := w.Write(row); err != nil {
				tmp.Close()
				return err
			}
			g.rows[t.Name]++
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	cols := make([]string, 0, len(header))
	types := make([]string, 0, len(header))
	for _, c := range t.Columns {
		cols = append(cols, fmt.Sprintf("CAST(NULLIF(%s, '') AS %s) AS %s", ident(c.Name), c.Type, ident(c.Name)))
		types = append(types, fmt.Sprintf("%s: 'VARCHAR'", quote(c.Name)))
	}
	if t.PersonRank {
		cols = append(cols, fmt.Sprintf("CAST(%s AS BIGINT) AS %s", ident(dataset.PersonRankColumn), ident(dataset.PersonRankColumn)))
		types = append(types, fmt.Sprintf("%s: 'VARCHAR'", quote(dataset.PersonRankColumn)))
	}
	part := dataset.TablePart(dir, t.Name)
	q := fmt.Sprintf("COPY (SELECT %s FROM read_csv(%s, header = true, columns = {%s}, quote = '\"', escape = '\"')) TO %s (FORMAT parquet, COMPRESSION uncompressed)",
		strings.Join(cols, ", "), quote(tmp.Name()), strings.Join(types, ", "), quote(part))
	_, err = db.ExecContext(ctx, q)
	return err
}

// value draws one cell: the person's pid, a made-up identifier, a value of the column's
// public domain, a day of the period, a number within the bounds, or a made-up code.
func (g *generator) value(r *rand.Rand, t dataset.CatalogTable, c dataset.CatalogColumn, pid string) string {
	typ := strings.ToUpper(c.Type)
	switch {
	case c.Name == "pid" || typ == "UUID":
		return pid
	case c.Identifier:
		g.counter[t.Name+"."+c.Name]++
		return fmt.Sprintf("dummy-%s-%d", c.Name, g.counter[t.Name+"."+c.Name])
	}
	if d, ok := g.cat.Domains[c.Domain]; ok && c.Domain != "" {
		if len(d.Values) > 0 {
			return text(d.Values[r.IntN(len(d.Values))])
		}
		if !d.From.IsZero() && !d.To.Before(d.From) {
			days := int(d.To.Sub(d.From).Hours()/24) + 1
			return d.From.AddDate(0, 0, r.IntN(days)).Format(time.DateOnly)
		}
	}
	lo, hi := 0.0, 100.0
	if c.Bounds != nil {
		lo, hi = c.Bounds.Lo, c.Bounds.Hi
	}
	switch typ {
	case "DATE":
		return g.from.AddDate(0, 0, r.IntN(g.days)).Format(time.DateOnly)
	case "TIMESTAMP":
		return g.from.AddDate(0, 0, r.IntN(g.days)).Add(time.Duration(r.IntN(86400)) * time.Second).Format("2006-01-02 15:04:05")
	case "BOOLEAN":
		return strconv.FormatBool(r.IntN(2) == 1)
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT":
		a, b := int64(lo), int64(hi)
		return strconv.FormatInt(a+r.Int64N(b-a+1), 10)
	case "DOUBLE", "FLOAT", "REAL":
		// Two decimals, so the value's text is the value.
		v := lo + r.Float64()*(hi-lo)
		return strconv.FormatFloat(min(hi, max(lo, float64(int64(v*100))/100)), 'f', -1, 64)
	}
	if strings.HasPrefix(typ, "DECIMAL") {
		return strconv.FormatFloat(lo+float64(r.IntN(int(hi-lo)+1)), 'f', -1, 64)
	}
	return fmt.Sprintf("%s_%02d", c.Name, 1+r.IntN(12))
}

// text renders a domain value as the CSV cell DuckDB casts back to it.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
