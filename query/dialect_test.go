package query

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/velo-fse/velo/dataset"
)

// Every function of the registry has a Spark form or a reason it is refused there, never
// both, and the Spark dialect names nothing the registry lacks: a new function enters the
// registry and then one of these lists (docs/scale.md lists the refused ones).
func TestSparkFuncsCoverRegistry(t *testing.T) {
	for _, r := range funcRules {
		name := r.Names[0]
		_, printed := sparkFuncs[name]
		_, refused := sparkRefused[name]
		switch name {
		case "+": // arithmetic checks into an arithExpr, printed by sparkSQL itself
			continue
		case "date_part": // checks into the part's function (date_part('month', d) is month(d))
			continue
		}
		switch {
		case printed && refused:
			t.Errorf("%s: both printed and refused on Spark", name)
		case !printed && !refused:
			t.Errorf("%s: neither printed nor refused on Spark (sparkFuncs, sparkRefused)", name)
		}
	}
	for name := range sparkFuncs {
		if printed[name] == nil {
			t.Errorf("sparkFuncs: %s is not a registered function", name)
		}
	}
	for name := range sparkRefused {
		if printed[name] == nil {
			t.Errorf("sparkRefused: %s is not a registered function", name)
		}
	}
}

// Spark reads backslash escapes in string literals, DuckDB does not: the Spark dialect
// escapes them, so a value means the same in both.
func TestSparkStringLiteral(t *testing.T) {
	for in, want := range map[string]string{
		`Valle d'Aosta`: `'Valle d\'Aosta'`,
		`a\b`:           `'a\\b'`,
		`\'`:            `'\\\''`,
	} {
		if got := sparkString(in); got != want {
			t.Errorf("sparkString(%q) = %s, want %s", in, got, want)
		}
	}
}

// The Spark dialect refuses, with a message naming the construct, what it cannot print
// with DuckDB's meaning; DuckDB's printing of the same plan is unchanged.
func TestSparkDialectRefusals(t *testing.T) {
	lit := func(v any, ty typ) *literal { return &literal{V: v, T: ty} }
	col := &column{Alias: "b", Name: "provider_id", T: tString}
	for _, tc := range []struct {
		e    expr
		want string
	}{
		{&callExpr{Name: "substring", Args: []expr{col, lit(int64(-2), tNum)}, T: tString}, "substring"},
		{&callExpr{Name: "substring", Args: []expr{col, lit(int64(0), tNum)}, T: tString}, "substring"},
		{&callExpr{Name: "substring", Args: []expr{col, lit(int64(2), tNum), lit(int64(-1), tNum)}, T: tString}, "substring"},
		{&callExpr{Name: "left", Args: []expr{col, lit(int64(-1), tNum)}, T: tString}, "left"},
		{&callExpr{Name: "right", Args: []expr{col, lit(int64(-3), tNum)}, T: tString}, "right"},
		{&cast{E: col, To: "DOUBLE", T: tNum}, "CAST of a string to DOUBLE"},
		{&callExpr{Name: "~~", Args: []expr{col, lit(`a\%`, tString)}, T: tBool}, "backslash"},
		{&callExpr{Name: "round", Args: []expr{lit(1.5, tNum), &cast{E: lit(int64(1), tNum), To: "INTEGER", T: tNum}}, T: tNum}, "digits"},
	} {
		_, err := sparkSQL(tc.e)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Spark engine cannot run") {
			t.Errorf("%s: got %v, want a refusal naming %q", tc.e.String(), err, tc.want)
		}
		if s := tc.e.SQL(); s == "" {
			t.Errorf("%s: no DuckDB form", tc.e.String())
		}
	}
}

// The Spark dialect prints the value aggregates' per-row totals with rowTotalsIn: with
// DuckDB's sum that is exactly what the registry's PerRow prints, so the two stay one form.
func TestRowTotalsInRegistry(t *testing.T) {
	n := 0
	for _, r := range aggRules {
		if !r.Value || r.Kind == aggQuantile {
			continue
		}
		want := r.PerRow(2, "v2", "x", 1024, -5, 7)
		got := rowTotalsIn(r.Centred, nil)(2, "v2", "x", 1024, -5, 7)
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("%v: rowTotalsIn prints %q, the registry %q", r.Names, got, want)
		}
		n++
	}
	if n < 4 {
		t.Errorf("only %d value aggregates", n)
	}
}

// The per_group rewrite prints the value aggregates' per-group totals with scaledTotalsIn
// when a dialect sets its sum: with DuckDB's sum that is exactly the registry's PerGroup.
func TestScaledTotalsInRegistry(t *testing.T) {
	n := 0
	for _, r := range aggRules {
		if !r.Value || r.Kind == aggQuantile {
			continue
		}
		want := r.PerGroup(2, -5, 7, 1024, 3)
		got := scaledTotalsIn(r.Centred, nil)(2, -5, 7, 1024, 3)
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("%v: scaledTotalsIn prints %q, the registry %q", r.Names, got, want)
		}
		n++
	}
	if n < 4 {
		t.Errorf("only %d value aggregates", n)
	}
}

// The portable order's canonical strings, on DuckDB: the pid as the hex of the 16 bytes the
// Parquet file holds (what Spark reads as BINARY and prints with lower(hex(pid))), numbers
// as floor(x·1024), NULL beyond 1e15 and for NaN and infinities, dates as day numbers,
// booleans as 1/0. TestSparkCrossEngine checks that Spark's order is the same.
func TestPortableCanonDuckDB(t *testing.T) {
	data := synthDataset(t)
	files, err := filepath.Glob(dataset.TableGlob(data, "booking"))
	if err != nil || len(files) == 0 {
		t.Fatalf("booking files: %v %v", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := pf.Schema().Lookup("pid")
	if !ok {
		t.Fatal("no pid column")
	}
	pages := pf.RowGroups()[0].ColumnChunks()[leaf.ColumnIndex].Pages()
	defer pages.Close()
	page, err := pages.ReadPage()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]parquet.Value, 5)
	n, _ := page.Values().ReadValues(vals)
	if n == 0 {
		t.Fatal("no pid read")
	}
	var want []string
	for _, v := range vals[:n] {
		want = append(want, hex.EncodeToString(v.ByteArray()))
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf("SELECT %s FROM read_parquet(%s, file_row_number = true) WHERE file_row_number < %d ORDER BY file_row_number",
		duckCanon(orderVal{SQL: "pid", PID: true}), quoteString(files[0]), n))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	rows.Close()
	if !slices.Equal(got, want) || len(want[0]) != 32 {
		t.Errorf("DuckDB's canonical pids %q, the file's bytes %q", got, want)
	}
	for _, tc := range []struct {
		v    orderVal
		want any
	}{
		{orderVal{SQL: "CAST(2.5 AS DOUBLE)", T: tNum}, "2560"},
		{orderVal{SQL: "CAST(-0.001 AS DOUBLE)", T: tNum}, "-2"},
		{orderVal{SQL: "CAST(7 AS BIGINT)", T: tNum}, "7168"},
		{orderVal{SQL: "CAST(1e16 AS DOUBLE)", T: tNum}, nil},
		{orderVal{SQL: "CAST('nan' AS DOUBLE)", T: tNum}, nil},
		{orderVal{SQL: "CAST('-inf' AS DOUBLE)", T: tNum}, nil},
		{orderVal{SQL: "DATE '1970-01-02'", T: tDate}, "1"},
		{orderVal{SQL: "DATE '1969-12-31'", T: tDate}, "-1"},
		{orderVal{SQL: "TRUE", T: tBool}, "1"},
		{orderVal{SQL: "CAST(NULL AS BOOLEAN)", T: tBool}, nil},
		{orderVal{SQL: "'a|b'", T: tString}, "a|b"},
	} {
		var got any
		if err := db.QueryRow("SELECT " + duckCanon(tc.v)).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.v.SQL, err)
		}
		if got != tc.want {
			t.Errorf("canonical string of %s: %v, want %v", tc.v.SQL, got, tc.want)
		}
	}
}
