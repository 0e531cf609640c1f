// Command utilitybench reports the utility of the waiting-list dashboard's share panels at a
// monthly budget (issue 13, "utility for dashboards"): for one month of bookings, the 95%
// confidence interval half-width of the share within target in every region × priority and
// ASL × priority cell, as Velo releases it, when the dashboard's 12 panels together spend
// epsilon per month; under an equal split among panels and under a split that favours the
// share panels. Beside each, the exact share and the number of first-access bookings of the
// cell (a non-private evaluation on synthetic data).
//
//	go run ./bench/cmd/utilitybench --persons 5900000 --month 2025-11
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

func main() {
	home, _ := os.UserHomeDir()
	dir := flag.String("dir", filepath.Join(home, ".cache", "velo-bench"), "work directory: datasets are cached here")
	persons := flag.Int("persons", 5_900_000, "synthetic persons (5,900,000: Italy at 1:10)")
	month := flag.String("month", "2025-11", "the month whose bookings the dashboard shows (YYYY-MM)")
	eps := flag.Float64("epsilon", 1, "the dashboard's epsilon per month, all 12 panels together")
	italy := flag.Float64("population", 58_900_000, "the population the scale is taken against")
	flag.Parse()
	if err := run(context.Background(), *dir, *persons, *month, *eps, *italy); err != nil {
		fmt.Fprintln(os.Stderr, "utilitybench:", err)
		os.Exit(1)
	}
}

// panel is one share panel: its keys and its share of the monthly budget under each split.
type panel struct {
	name, keys      string
	equal, favoured float64
	cells           int
	halfWidths      map[string][]float64 // by split
	exact           map[string]float64   // by cell
	bookings        map[string]int64     // by cell
	chosen          map[string]string    // by split: bounding method
}

func run(ctx context.Context, dir string, persons int, month string, eps, italy float64) error {
	from, err := time.Parse("2006-01", month)
	if err != nil {
		return fmt.Errorf("--month %q: want YYYY-MM", month)
	}
	to := from.AddDate(0, 1, 0)
	data, err := bench.EnsureDataset(ctx, dir, persons, false)
	if err != nil {
		return err
	}
	// The 12 panels share eps: equally, or with the two share panels taking 35% each and
	// the 10 others 3% each (the split is public: chosen from the dashboard, not the data).
	panels := []*panel{
		{name: "share within target by region × priority", keys: "region, priority", equal: eps / 12, favoured: eps * 0.35},
		{name: "share within target by ASL × priority", keys: "asl, priority", equal: eps / 12, favoured: eps * 0.35},
	}
	// How the month's budget reaches a share panel: equally among the 12; 35% to each
	// share panel; and the same with one group per person (OPTIONS(max_groups_contributed =
	// 1): a person's bookings of one month rarely span two cells, and a share is a ratio,
	// which keeping fewer of a person's rows at random leaves unbiased).
	splits := []struct {
		name, options string
		share         func(*panel) float64
	}{
		{"equal", "", func(p *panel) float64 { return p.equal }},
		{"favoured", "", func(p *panel) float64 { return p.favoured }},
		{"favoured, G = 1", "WITH DIFFERENTIAL_PRIVACY OPTIONS(max_groups_contributed = 1)", func(p *panel) float64 { return p.favoured }},
	}
	eng, _, closeAll, err := bench.OpenEngine(ctx, data, "", ledger.Project{
		ID: "dashboard", Purpose: "utility benchmark", LegalBasis: "none: synthetic data",
		Allow: map[string][]string{"booking": nil}, EpsilonBudget: 100, DefaultEpsilon: 1,
	}, query.Limits{Timeout: time.Hour})
	if err != nil {
		return err
	}
	defer closeAll()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	where := fmt.Sprintf("first_access AND d_contact >= DATE '%s' AND d_contact < DATE '%s'", from.Format(time.DateOnly), to.Format(time.DateOnly))
	var people int64
	if err := db.QueryRow(fmt.Sprintf("SELECT count(DISTINCT pid) FROM read_parquet(%s)", quote(dataset.TableGlob(data, "booking")))).Scan(&people); err != nil {
		return err
	}
	for _, p := range panels {
		p.halfWidths, p.exact, p.bookings, p.chosen = map[string][]float64{}, map[string]float64{}, map[string]int64{}, map[string]string{}
		rows, err := db.Query(fmt.Sprintf("SELECT concat_ws(' × ', %s), avg(CAST(within_target AS INTEGER)), count(*) FROM read_parquet(%s) WHERE %s GROUP BY ALL",
			p.keys, quote(dataset.TableGlob(data, "booking")), where))
		if err != nil {
			return err
		}
		for rows.Next() {
			var cell string
			var share sql.NullFloat64
			var n int64
			if err := rows.Scan(&cell, &share, &n); err != nil {
				rows.Close()
				return err
			}
			p.exact[cell], p.bookings[cell] = share.Float64, n
		}
		rows.Close()
		for _, sp := range splits {
			split := sp.name
			e := sp.share(p)
			sqlText := fmt.Sprintf("SELECT %s %s, AVG(CAST(within_target AS INTEGER)) AS share FROM booking WHERE %s GROUP BY %s", sp.options, p.keys, where, p.keys)
			rel, err := eng.Query(ctx, query.Request{SQL: sqlText, Project: "dashboard", Actor: "user:bench", Epsilon: &e, Delta: new(float64)})
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.chosen[split] = rel.Bounding.Method
			p.cells = len(rel.Rows)
			col := slices.IndexFunc(rel.Columns, func(c release.Column) bool { return c.Name == "share" })
			for i := range rel.Rows {
				lo, hi, ok := release.CIBounds(rel.CI[i][col])
				if !ok {
					continue
				}
				p.halfWidths[split] = append(p.halfWidths[split], (hi-lo)/2*100)
			}
		}
	}
	scale := float64(persons) / italy
	fmt.Printf("Dataset %s: a synthetic population of %d persons (1:%.1f of %.0f), %d of them with bookings; month %s; epsilon %g per month for the 12 panels\n\n", data, persons, 1/scale, italy, people, month, eps)
	fmt.Println("| panel | cells | first-access bookings per cell (median, min) | split | epsilon | bounding | 95% half-width, pp: median | p90 | cells uninformative | at full scale: median | p90 |")
	fmt.Println("|---|---:|---|---|---:|---|---:|---:|---:|---:|---:|")
	for _, p := range panels {
		var ns []float64
		for _, n := range p.bookings {
			ns = append(ns, float64(n))
		}
		for _, sp := range splits {
			split := sp.name
			h := p.halfWidths[split]
			e := sp.share(p)
			// Full scale: every cell holds 1/scale times the bookings; the noise does not
			// grow, so a noise-dominated half-width shrinks by the same factor.
			// An interval clamped to the whole range [0, 1] (half-width 50 pp) is
			// uninformative: its width at full scale cannot be read off it.
			uninformative := 0
			for _, x := range h {
				if x >= 49.99 {
					uninformative++
				}
			}
			full := func(q float64) string {
				if x := quantile(h, q); x < 49.99 {
					return fmt.Sprintf("%.2f", x*scale)
				}
				return "–"
			}
			fmt.Printf("| %s | %d | %.0f, %.0f | %s | %.4g | %s | %.2f | %.2f | %d | %s | %s |\n",
				p.name, p.cells, quantile(ns, 0.5), quantile(ns, 0), split, e, p.chosen[split],
				quantile(h, 0.5), quantile(h, 0.9), uninformative, full(0.5), full(0.9))
		}
	}
	fmt.Println()
	fmt.Println("Half-widths in percentage points of the share. \"Cells uninformative\": intervals that cover the whole range [0, 1] (half-width 50 pp). \"At full scale\" multiplies a half-width by the population scale (" + strings.TrimRight(fmt.Sprintf("%.4f", scale), "0") + "): every cell then holds that many times the bookings under the same noise; – where the interval is uninformative at this scale.")
	return nil
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(v))
	return s[int(math.Round(q*float64(len(s)-1)))]
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
