package query

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/release"
)

// annotate is post-processing of a recorded release: it clamps only when asked, flags what
// it clamped and every interval covering its column's whole range, and leaves values
// inside their range and keys alone. Applied to the same recorded release with and without
// clamping, it gives the two answers of one release.
func TestAnnotate(t *testing.T) {
	count := valueRange(agg{Kind: aggCountStar})
	share := valueRange(agg{Kind: aggAvg, Lo: 0, Hi: 1})
	sum := valueRange(agg{Kind: aggSum, Lo: -5, Hi: 5})
	if count.Lo == nil || *count.Lo != 0 || count.Hi != nil || !share.Bounded() || sum.Lo != nil || sum.Hi != nil {
		t.Fatalf("ranges: count %v, share %v, sum %v", count, share, sum)
	}
	recorded := func() *release.Release {
		return &release.Release{
			Columns: []release.Column{{Name: "region", Kind: "key"}, {Name: "n", Kind: "dp", Range: count}, {Name: "share", Kind: "dp", Range: share}, {Name: "s", Kind: "dp", Range: sum}},
			Rows:    [][]any{{"120", -45.0, 0.4, -3.0}, {"130", 12.0, 0.5, 2.0}},
			CI:      [][]any{{nil, []float64{-189, 99}, []float64{0, 1}, []float64{-9, 3}}, {nil, []any{-2.0, 26.0}, []float64{0.25, 0.75}, nil}},
		}
	}
	plain := recorded()
	annotate(plain, false)
	if plain.Rows[0][1] != -45.0 || plain.ClampToRange {
		t.Fatalf("not asked, but clamped: %v", plain.Rows[0])
	}
	if want := [][][]string{{nil, nil, {release.FlagUninformative}, nil}, {nil, nil, nil, nil}}; !equalFlags(plain.Flags, want) {
		t.Errorf("flags %v, want %v", plain.Flags, want)
	}
	if len(plain.Notes) != 2 || !strings.HasPrefix(plain.Notes[0], "n: 1 value of 2 was outside [0, +∞)") || !strings.HasPrefix(plain.Notes[1], "share: 1 value of 2 has an interval covering the whole range [0, 1]") {
		t.Errorf("notes %q", plain.Notes)
	}

	clamped := recorded()
	annotate(clamped, true)
	if clamped.Rows[0][1] != 0.0 || clamped.Rows[1][1] != 12.0 || clamped.Rows[0][3] != -3.0 || clamped.Rows[0][0] != "120" || !clamped.ClampToRange {
		t.Fatalf("clamped rows %v", clamped.Rows)
	}
	for i, want := range [][2]float64{{0, 99}, {0, 26}} {
		if lo, hi, _ := release.CIBounds(clamped.CI[i][1]); lo != want[0] || hi != want[1] {
			t.Errorf("row %d: count interval [%v, %v], want %v", i, lo, hi, want)
		}
	}
	if want := [][][]string{{nil, {release.FlagClamped}, {release.FlagUninformative}, nil}, {nil, nil, nil, nil}}; !equalFlags(clamped.Flags, want) {
		t.Errorf("flags %v, want %v", clamped.Flags, want)
	}
	if len(clamped.Notes) != 2 || !strings.Contains(clamped.Notes[0], "clamped into it") || strings.Contains(clamped.Notes[0], "ask with clamp_to_range") {
		t.Errorf("notes %q", clamped.Notes)
	}
	// A release without flags has none at all (the JSON field is omitted).
	quiet := &release.Release{Columns: []release.Column{{Name: "n", Kind: "dp", Range: count}}, Rows: [][]any{{3.0}}, CI: [][]any{{[]float64{1, 5}}}}
	annotate(quiet, true)
	if quiet.Flags != nil || quiet.Notes != nil || math.IsNaN(quiet.Rows[0][0].(float64)) {
		t.Errorf("flags %v, notes %v", quiet.Flags, quiet.Notes)
	}
}

func equalFlags(a, b [][][]string) bool {
	return slices.EqualFunc(a, b, func(x, y [][]string) bool {
		return slices.EqualFunc(x, y, func(p, q []string) bool { return slices.Equal(p, q) })
	})
}
