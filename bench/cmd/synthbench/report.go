package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
)

var labels = map[string]string{
	"velo-mst":            "Velo MST (person-level: person_rows, each person's 1 row, the same in every marginal; NULL a level of the nullable columns)",
	"velo-aim":            "Velo AIM (person-level: person_rows, each person's 1 row, the same in every marginal; NULL a level of the nullable columns)",
	"velo-mst-pg":         "Velo MST, per_group bounding (person-level: 1 distinct cell per person in each marginal; NULLs dropped)",
	"velo-aim-pg":         "Velo AIM, per_group bounding (person-level: 1 distinct cell per person in each marginal; NULLs dropped)",
	"snsynth-mst":         "SmartNoise MST, every row (row-level)",
	"snsynth-aim":         "SmartNoise AIM, every row (row-level)",
	"snsynth-mst-1pp":     "SmartNoise MST, one row per person (person-level)",
	"snsynth-aim-1pp":     "SmartNoise AIM, one row per person (person-level)",
	"independence":        "independence baseline (each column shuffled; non-private)",
	"independence-1pp":    "independence baseline over one row per person at random (non-private)",
	"velo-mst-k2":         "Velo MST, person_rows with each person's 2 rows",
	"velo-aim-k2":         "Velo AIM, person_rows with each person's 2 rows",
	"velo-mst-k4":         "Velo MST, person_rows with each person's 4 rows",
	"velo-aim-k4":         "Velo AIM, person_rows with each person's 4 rows",
	"one-row-per-person":  "real rows, one row per person at random (non-private)",
	"one-cell-per-person": "real rows, each marginal with one distinct cell per person at random: Velo's C = R = 1 bounding without noise (non-private)",
}

// report prints the results as a Markdown table, with the per-pair TVDs beneath.
func report(w io.Writer, cfg config, results []*result) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "Source: %s of %s: %d rows of %d persons; attributes %s (numbers in %d bins); epsilon %g, delta %g; %d synthetic rows each; SmartNoise's sampler %s; GOMAXPROCS %d; load average %s\n\n",
		joinedName(cfg.table, cfg.join), cfg.data, cfg.sourceRows, cfg.personsShown, strings.Join(cfg.columns, ", "), cfg.bins, cfg.eps, cfg.delta, cfg.sourceRows, cfg.sampler, runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintln(w, "| system | wall (process) | synthesis | peak RSS | mean 2-way TVD | max 2-way TVD | mean 2-way TVD, NULL a level | max, NULL a level |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		label := labels[r.name]
		if label == "" {
			label = r.name
		}
		if r.Error != "" {
			fmt.Fprintf(w, "| %s | %s | | | **failed**: %s | |\n", label, fmtSecs(r.wall.Seconds()), strings.ReplaceAll(r.Error, "\n", " "))
			continue
		}
		wall, fit, rss := "–", "–", "–"
		if r.wall > 0 {
			wall, fit, rss = fmtSecs(r.wall.Seconds()), fmtSecs(r.FitSeconds), fmt.Sprintf("%.0f MiB", r.peakRSSMiB)
		}
		nullMean, nullMax := "–", "–"
		if len(r.tvdNull.pairs) > 0 {
			nullMean, nullMax = fmt.Sprintf("%.4f", r.tvdNull.mean), fmt.Sprintf("%.4f", r.tvdNull.max)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.4f | %.4f | %s | %s |\n", label, wall, fit, rss, r.tvd.mean, r.tvd.max, nullMean, nullMax)
	}
	fmt.Fprintln(w)
	if len(results) == 0 || len(results[0].tvd.pairs) == 0 {
		return
	}
	var pairs []pairTVD
	for _, r := range results {
		if r.Error == "" && len(r.tvdNull.pairs) > 0 {
			pairs = r.tvdNull.pairs
			break
		}
	}
	fmt.Fprint(w, "| 2-way TVD (NULL a level) |")
	for _, r := range results {
		fmt.Fprintf(w, " %s |", r.name)
	}
	fmt.Fprint(w, "\n|---|")
	for range results {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for i, p := range pairs {
		fmt.Fprintf(w, "| %s × %s |", p.a, p.b)
		for _, r := range results {
			if i < len(r.tvdNull.pairs) {
				fmt.Fprintf(w, " %.4f |", r.tvdNull.pairs[i].tvd)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func fmtSecs(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.2f s", s)
	}
	return fmt.Sprintf("%.1f s", s)
}

// plantedReport shows the planted dependencies of the booking table as conditional
// statistics, for the real rows and every output: priority ↔ wait as the mean wait (bin
// midpoints) of each priority class, region ↔ within target as the share within target (of
// the bookings monitored) in each region, summarised by its spread across regions (standard
// deviation, weighted by the region's bookings in the source) and its correlation with the
// real rows' shares. The independence baseline has neither dependency.
func plantedReport(ctx context.Context, w io.Writer, db *sql.DB, cfg config, results []*result) error {
	has := func(c string) bool { return slices.Contains(cfg.columns, c) }
	type src struct{ name, from string }
	// Each system once, its last run (the TVD tables have every run).
	srcs := []src{{"real rows", "source"}}
	for i, r := range results {
		if r.Error != "" || r.out == "" || slices.ContainsFunc(results[i+1:], func(o *result) bool { return o.name == r.name && o.Error == "" && o.out != "" }) {
			continue
		}
		srcs = append(srcs, src{r.name, fmt.Sprintf("read_parquet('%s')", r.out)})
	}
	if has("priority") && has("wait_days") {
		fmt.Fprintln(w, "| mean wait_days (bin midpoints) by priority | U | B | D | P |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		for _, s := range srcs {
			fmt.Fprintf(w, "| %s |", s.name)
			for _, p := range []string{"U", "B", "D", "P"} {
				var m sql.NullFloat64
				if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT avg(CAST(wait_days AS DOUBLE)) FROM %s WHERE CAST(priority AS VARCHAR) = '%s'`, s.from, p)).Scan(&m); err != nil {
					return err
				}
				fmt.Fprintf(w, " %.1f |", m.Float64)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	if has("region") && has("within_target") {
		fmt.Fprintln(w, "| share within target by region | spread across regions (weighted sd) | correlation with the real shares | lowest region, real → this | highest region, real → this |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		share := func(from string) (map[string]float64, error) {
			rs, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT CAST(region AS VARCHAR), avg(CASE WHEN CAST(within_target AS VARCHAR) = 'true' THEN 1.0 ELSE 0.0 END)
				FROM %s WHERE within_target IS NOT NULL AND region IS NOT NULL GROUP BY 1`, from))
			if err != nil {
				return nil, err
			}
			defer rs.Close()
			out := map[string]float64{}
			for rs.Next() {
				var r string
				var v float64
				if err := rs.Scan(&r, &v); err != nil {
					return nil, err
				}
				out[r] = v
			}
			return out, rs.Err()
		}
		weights := map[string]float64{}
		rs, err := db.QueryContext(ctx, "SELECT CAST(region AS VARCHAR), count(*) FROM source WHERE within_target IS NOT NULL GROUP BY 1")
		if err != nil {
			return err
		}
		for rs.Next() {
			var r string
			var n float64
			if err := rs.Scan(&r, &n); err != nil {
				rs.Close()
				return err
			}
			weights[r] = n
		}
		rs.Close()
		real, err := share("source")
		if err != nil {
			return err
		}
		lowest, highest := "", ""
		for r := range real {
			if lowest == "" || real[r] < real[lowest] || (real[r] == real[lowest] && r < lowest) {
				lowest = r
			}
			if highest == "" || real[r] > real[highest] || (real[r] == real[highest] && r < highest) {
				highest = r
			}
		}
		for _, s := range srcs {
			x, err := share(s.from)
			if err != nil {
				return err
			}
			var sw, mx, mr float64
			for r, wt := range weights {
				sw += wt
				mx += wt * x[r]
				mr += wt * real[r]
			}
			mx, mr = mx/sw, mr/sw
			var vx, vr, cov float64
			for r, wt := range weights {
				vx += wt * (x[r] - mx) * (x[r] - mx)
				vr += wt * (real[r] - mr) * (real[r] - mr)
				cov += wt * (x[r] - mx) * (real[r] - mr)
			}
			fmt.Fprintf(w, "| %s | %.3f | %.2f | %s: %.2f → %.2f | %s: %.2f → %.2f |\n", s.name, math.Sqrt(vx/sw), cov/math.Sqrt(vx*vr), lowest, real[lowest], x[lowest], highest, real[highest], x[highest])
		}
		fmt.Fprintln(w)
	}
	if has("chapter") && has("person.birth_year") {
		// age ↔ diagnoses: the share of each birth-year bin's diagnoses in the circulatory
		// chapter (synth's steepest prevalences in age) and in the mental-disorders one
		// (its flattest), over the bins the real rows have at least 1% of their rows in.
		var bins []string
		rs, err := db.QueryContext(ctx, `SELECT b FROM (SELECT CAST("person.birth_year" AS VARCHAR) AS b, count(*) AS n FROM source WHERE "person.birth_year" IS NOT NULL GROUP BY 1)
			WHERE n >= 0.01 * (SELECT count(*) FROM source) ORDER BY CAST(b AS DOUBLE)`)
		if err != nil {
			return err
		}
		for rs.Next() {
			var b string
			if err := rs.Scan(&b); err != nil {
				rs.Close()
				return err
			}
			bins = append(bins, b)
		}
		rs.Close()
		for _, ch := range []struct{ code, name string }{{"390-459", "circulatory (390-459)"}, {"290-319", "mental disorders (290-319)"}} {
			fmt.Fprintf(w, "| share of %s among the diagnoses, by birth year (bin midpoint) |", ch.name)
			for _, b := range bins {
				fmt.Fprintf(w, " %s |", b)
			}
			fmt.Fprint(w, " correlation with the real shares |\n|---|")
			for range bins {
				fmt.Fprint(w, "---:|")
			}
			fmt.Fprintln(w, "---:|")
			var real []float64
			for _, s := range srcs {
				var xs []float64
				for _, b := range bins {
					var v sql.NullFloat64
					if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT avg(CASE WHEN CAST(chapter AS VARCHAR) = '%s' THEN 1.0 ELSE 0.0 END) FROM %s WHERE CAST("person.birth_year" AS VARCHAR) = '%s' AND chapter IS NOT NULL`, ch.code, s.from, b)).Scan(&v); err != nil {
						return err
					}
					xs = append(xs, v.Float64)
				}
				if real == nil {
					real = xs
				}
				fmt.Fprintf(w, "| %s |", s.name)
				for _, x := range xs {
					fmt.Fprintf(w, " %.3f |", x)
				}
				fmt.Fprintf(w, " %.2f |\n", correlation(xs, real))
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

// correlation is Pearson's correlation of x and y (NaN when either is constant).
func correlation(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx, my = mx+x[i], my+y[i]
	}
	mx, my = mx/float64(len(x)), my/float64(len(y))
	var vx, vy, c float64
	for i := range x {
		vx += (x[i] - mx) * (x[i] - mx)
		vy += (y[i] - my) * (y[i] - my)
		c += (x[i] - mx) * (y[i] - my)
	}
	return c / math.Sqrt(vx*vy)
}
