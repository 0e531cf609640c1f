package query

import (
	"database/sql"
	"fmt"
	"math"
	"testing"

	"github.com/velo-fse/velo/dp"
)

// The quantile leaf of an integer value, computed in DuckDB in integer arithmetic
// (dp.IntegerNodeSQL through leafSQL), is dp.NodeOf's leaf, and NodeSQL's, for every integer
// value in and around the bounds, for each integer type a catalog column may have, NULL
// included; where the tree or the bounds do not allow it, leafSQL prints NodeSQL.
func TestIntegerLeafIsNodeOf(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	trees := []treeShape{{16, 2}, {16, 4}, {2, 10}, {4, 3}, {2, 1}}
	bounds := [][2]float64{{0, 365}, {0, 1}, {-5, 20}, {1900, 2025}, {-1000, -7}, {0, 100000}, {3, 4}}
	for _, tr := range trees {
		for _, b := range bounds {
			for _, typ := range []string{"SMALLINT", "INTEGER", "BIGINT"} {
				if typ == "SMALLINT" && b[1] > 30000 {
					continue
				}
				a := agg{Kind: aggQuantile, Arg: &column{Name: "x", T: tNum, Integer: true}, Lo: b[0], Hi: b[1], Q: 0.5}
				leaf := leafSQL(duckDialect, a, 0, clampedValue(a, 0), tr)
				float := dp.NodeSQL(clampedValue(a, 0), a.Lo, a.Hi, dp.Tree{Branching: tr.Branching, Height: tr.Height}, tr.Height)
				if leaf == float {
					t.Fatalf("tree %v [%v, %v] %s: leafSQL printed NodeSQL's doubles, not the integer leaf", tr, b[0], b[1], typ)
				}
				// Every integer from below lo to above hi (sampled beyond 5,000 values),
				// the type's extremes and NULL.
				step := max(1, int64(b[1]-b[0])/5000)
				q := fmt.Sprintf(`WITH vals AS (
					SELECT CAST(v AS %[1]s) AS v0 FROM range(%[2]d, %[3]d, %[4]d) r(v)
					UNION ALL SELECT CAST(%[3]d AS %[1]s) UNION ALL SELECT NULL
					UNION ALL SELECT CAST(v AS %[1]s) FROM (VALUES (%[5]s), (%[6]s)) m(v))
				SELECT v0, %[7]s, %[8]s FROM vals`,
					typ, int64(b[0])-3, int64(b[1])+4, step, minOf(typ), maxOf(typ), leaf, float)
				rows, err := db.Query(q)
				if err != nil {
					t.Fatalf("tree %v [%v, %v] %s: %v\n%s", tr, b[0], b[1], typ, err, leaf)
				}
				n := 0
				for rows.Next() {
					var v, got, want sql.NullInt64
					if err := rows.Scan(&v, &got, &want); err != nil {
						t.Fatal(err)
					}
					n++
					if !v.Valid {
						if got.Valid {
							t.Errorf("tree %v [%v, %v] %s: NULL value in leaf %d, want NULL", tr, b[0], b[1], typ, got.Int64)
						}
						continue
					}
					node := dp.NodeOf(float64(v.Int64), a.Lo, a.Hi, dp.Tree{Branching: tr.Branching, Height: tr.Height}, tr.Height)
					if !got.Valid || got.Int64 != node || want.Int64 != node {
						t.Fatalf("tree %v [%v, %v] %s, v = %d: integer leaf %v, NodeSQL %v, NodeOf %d", tr, b[0], b[1], typ, v.Int64, got, want, node)
					}
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
				if n < 5 {
					t.Fatalf("tree %v [%v, %v] %s: %d values compared", tr, b[0], b[1], typ, n)
				}
			}
		}
	}
	// Where the integer form does not apply, the doubles: fractional bounds, a tree whose
	// leaves are not a power of two, a value that is not an integer.
	for _, tc := range []struct {
		a  agg
		tr treeShape
	}{
		{agg{Kind: aggQuantile, Arg: &column{Name: "x", T: tNum, Integer: true}, Lo: 0, Hi: 0.5}, treeShape{16, 2}},
		{agg{Kind: aggQuantile, Arg: &column{Name: "x", T: tNum, Integer: true}, Lo: 0, Hi: 365}, treeShape{10, 3}},
		{agg{Kind: aggQuantile, Arg: &column{Name: "x", T: tNum}, Lo: 0, Hi: 365}, treeShape{16, 2}},
		{agg{Kind: aggQuantile, Arg: &column{Name: "x", T: tNum, Integer: true}, Lo: 0, Hi: math.Exp2(50)}, treeShape{16, 2}},
	} {
		want := dp.NodeSQL(clampedValue(tc.a, 0), tc.a.Lo, tc.a.Hi, dp.Tree{Branching: tc.tr.Branching, Height: tc.tr.Height}, tc.tr.Height)
		if got := leafSQL(duckDialect, tc.a, 0, clampedValue(tc.a, 0), tc.tr); got != want {
			t.Errorf("[%v, %v] tree %v integer %v: leafSQL %s, want NodeSQL's %s", tc.a.Lo, tc.a.Hi, tc.tr, tc.a.Arg.(*column).Integer, got, want)
		}
	}
}

func minOf(typ string) string {
	return map[string]string{"SMALLINT": "-32768", "INTEGER": "-2147483648", "BIGINT": "-9223372036854775808"}[typ]
}

func maxOf(typ string) string {
	return map[string]string{"SMALLINT": "32767", "INTEGER": "2147483647", "BIGINT": "9223372036854775807"}[typ]
}
