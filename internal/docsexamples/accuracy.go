package docsexamples

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // plain DuckDB: the exact answers the releases are measured against

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/release"
)

// What makes a noisy column meaningful: most of its values close to the truth, and the
// typical one very close. Tables of small groups (a region of 70 people in a priority
// class) keep wide intervals, honestly; these thresholds let a few such cells be off while
// failing an answer whose noise drowns it, or whose bounding biases it (a count of
// bookings, cut by the cap on rows per person and group, comes out a fifth short).
//
// The documented examples clear them by a wide margin: on the 100,000-person demo, over 10
// to 40 runs each, the shares by region and priority class had 85–93% of their 84 values
// within 20% (median error about 3%), the medians by service at epsilon 2 had 95–100% of
// their 20 (median error 1–4%), the rest 95–100%. Taking the cells' errors as independent
// at those rates, the binomial tails put a failure from noise alone below one run in a
// million. On 20,000 people the same examples fail, as they should.
const (
	Tolerance      = 0.20 // a value is close when its relative error is at most this
	MinClose       = 2.0 / 3
	MaxMedianError = 0.10
)

// Exact computes exact answers with plain DuckDB over a dataset's Parquet files.
type Exact struct {
	db *sql.DB
}

// OpenExact opens an in-memory DuckDB with one view per table of the dataset in dir.
func OpenExact(ctx context.Context, dir string) (*Exact, error) {
	cat, err := dataset.ReadCatalog(dir)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	for _, t := range cat.Tables {
		q := fmt.Sprintf("CREATE VIEW %q AS SELECT * FROM read_parquet('%s')", t.Name, strings.ReplaceAll(dataset.TableGlob(dir, t.Name), "'", "''"))
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("exact: %s: %w", t.Name, err)
		}
	}
	return &Exact{db: db}, nil
}

func (x *Exact) Close() error { return x.db.Close() }

// Release is what the comparison reads of a release.
type Release struct {
	Columns []struct {
		Name string `json:"name"`
		Kind string `json:"kind"` // key or dp
	} `json:"columns"`
	Rows [][]any `json:"rows"`
}

// ColumnAccuracy is how close one noisy column came to the exact answer.
type ColumnAccuracy struct {
	Name     string
	Compared int     // values with an exact counterpart
	Close    float64 // share of those within Tolerance
	Median   float64 // median relative error
	Max      float64 // largest relative error
}

// Meaningful reports whether the column meets the thresholds, and if not, why.
func (c ColumnAccuracy) Meaningful() (bool, string) {
	switch {
	case c.Compared == 0:
		return false, "no value to compare"
	case c.Close < MinClose:
		return false, fmt.Sprintf("only %.0f%% of the values within %.0f%% of the exact ones (want %.0f%%)", 100*c.Close, 100*Tolerance, 100*MinClose)
	case c.Median > MaxMedianError:
		return false, fmt.Sprintf("median relative error %.1f%% (want at most %.0f%%)", 100*c.Median, 100*MaxMedianError)
	}
	return true, ""
}

func (c ColumnAccuracy) String() string {
	return fmt.Sprintf("%s: %d values, %.0f%% within %.0f%%, median error %.1f%%, max %.1f%%",
		c.Name, c.Compared, 100*c.Close, 100*Tolerance, 100*c.Median, 100*c.Max)
}

// Comparison is a release against the exact answer of the same query.
type Comparison struct {
	Rows      int // released
	Unmatched int // released rows whose group the exact answer does not have (an empty group of a public domain)
	Groups    int // in the exact answer (a LIMIT aside)
	Columns   []ColumnAccuracy
	// Examples pairs a few released values with the exact ones, for the report.
	Examples []string
}

// Compare runs the canonical SQL the ledger recorded for rel (DuckDB SQL but for Velo's
// aggregate names) without its LIMIT, and compares rel's noisy values with the exact
// ones, group by group.
func (x *Exact) Compare(ctx context.Context, canonical string, rel Release) (Comparison, error) {
	q := exactSQL(canonical)
	rows, err := x.db.QueryContext(ctx, q)
	if err != nil {
		return Comparison{}, fmt.Errorf("exact answer: %w\n%s", err, q)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Comparison{}, err
	}
	if len(cols) != len(rel.Columns) {
		return Comparison{}, fmt.Errorf("exact answer has %d columns, the release %d", len(cols), len(rel.Columns))
	}
	exact := map[string][]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Comparison{}, err
		}
		exact[groupKey(rel, vals)] = vals
	}
	if err := rows.Err(); err != nil {
		return Comparison{}, err
	}
	c := Comparison{Rows: len(rel.Rows), Groups: len(exact)}
	errs := make([][]float64, len(rel.Columns))
	for _, r := range rel.Rows {
		if len(r) != len(rel.Columns) {
			return Comparison{}, fmt.Errorf("a released row has %d values for %d columns", len(r), len(rel.Columns))
		}
		ex, ok := exact[groupKey(rel, r)]
		if !ok {
			c.Unmatched++
			continue
		}
		for i, col := range rel.Columns {
			if col.Kind != "dp" {
				continue
			}
			dp, ok1 := number(r[i])
			want, ok2 := number(ex[i])
			if !ok1 || !ok2 {
				continue // a NULL: no value to compare
			}
			e := relErr(dp, want)
			errs[i] = append(errs[i], e)
			if len(c.Examples) < 3 {
				c.Examples = append(c.Examples, fmt.Sprintf("%s %s: %.4g (exact %.4g)", groupKey(rel, r), col.Name, dp, want))
			}
		}
	}
	for i, col := range rel.Columns {
		if col.Kind != "dp" {
			continue
		}
		c.Columns = append(c.Columns, summarize(col.Name, errs[i]))
	}
	return c, nil
}

func summarize(name string, errs []float64) ColumnAccuracy {
	a := ColumnAccuracy{Name: name, Compared: len(errs)}
	if len(errs) == 0 {
		return a
	}
	s := slices.Clone(errs)
	slices.Sort(s)
	close := 0
	for _, e := range s {
		if e <= Tolerance {
			close++
		}
	}
	a.Close = float64(close) / float64(len(s))
	a.Max = s[len(s)-1]
	if n := len(s); n%2 == 1 {
		a.Median = s[n/2]
	} else {
		a.Median = (s[n/2-1] + s[n/2]) / 2
	}
	return a
}

func relErr(got, want float64) float64 {
	if want == 0 {
		if got == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return math.Abs(got-want) / math.Abs(want)
}

var (
	// Velo's aggregate names in canonical SQL, and DuckDB's.
	aggNames = strings.NewReplacer("count_persons(", "count(", "count_nonnull(", "count(", "quantile(", "quantile_cont(")
	limitRe  = regexp.MustCompile(`\s+LIMIT\s+\d+(\s+OFFSET\s+\d+)?\s*$`)
)

// exactSQL turns canonical SQL into plain DuckDB SQL: the aggregates by DuckDB's names
// (MEDIAN is DuckDB's quantile_cont at 0.5), and no LIMIT, which on noisy values may pick
// other groups than on exact ones.
func exactSQL(canonical string) string {
	return limitRe.ReplaceAllString(aggNames.Replace(canonical), "")
}

// groupKey is a row's key columns as text, alike for the release's JSON values and
// DuckDB's Go values.
func groupKey(rel Release, vals []any) string {
	var parts []string
	for i, col := range rel.Columns {
		if col.Kind == "key" {
			parts = append(parts, keyText(vals[i]))
		}
	}
	return strings.Join(parts, "|")
}

func keyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		if x.Equal(x.Truncate(24 * time.Hour)) {
			return x.Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339)
	case string:
		if t, err := time.Parse(time.RFC3339, x); err == nil { // a timestamp key in JSON
			return keyText(t)
		}
		return x
	}
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// number is release.Number, and DuckDB's DECIMAL and BOOLEAN as numbers.
func number(v any) (float64, bool) {
	if f, ok := release.Number(v); ok {
		return f, true
	}
	switch x := v.(type) {
	case interface{ Float64() float64 }: // DuckDB's DECIMAL
		return x.Float64(), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
