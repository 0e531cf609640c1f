package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

var labels = map[string]string{
	"velo-mst":               "Velo MST (person-level: person_rows, each person's 1 row, the same in every marginal; NULL a level)",
	"velo-aim":               "Velo AIM (person-level: person_rows, each person's 1 row, the same in every marginal; NULL a level)",
	"velo-mst-pg":            "Velo MST, per_group bounding (person-level: 1 distinct cell per person in each marginal; NULLs dropped)",
	"velo-aim-pg":            "Velo AIM, per_group bounding (person-level: 1 distinct cell per person in each marginal; NULLs dropped)",
	"snsynth-mst":            "SmartNoise MST, every booking (row-level)",
	"snsynth-aim":            "SmartNoise AIM, every booking (row-level)",
	"snsynth-mst-1pp":        "SmartNoise MST, one booking per person (person-level)",
	"snsynth-aim-1pp":        "SmartNoise AIM, one booking per person (person-level)",
	"independence":           "independence baseline (each column shuffled; non-private)",
	"one-booking-per-person": "real rows, one booking per person at random (non-private)",
	"one-cell-per-person":    "real rows, each marginal with one distinct cell per person at random: Velo's C = R = 1 bounding without noise (non-private)",
}

// report prints the results as a Markdown table, with the per-pair TVDs beneath.
func report(w io.Writer, cfg config, results []*result) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "Source: booking table of %s: %d bookings of %d persons; attributes %s (wait_days in %d bins); epsilon %g, delta %g; %d synthetic rows each; SmartNoise's sampler %s; GOMAXPROCS %d; load average %s\n\n",
		cfg.data, cfg.sourceRows, cfg.personsShown, strings.Join(cfg.columns, ", "), cfg.bins, cfg.eps, cfg.delta, cfg.sourceRows, cfg.sampler, runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "))
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
}

func fmtSecs(s float64) string {
	if s < 10 {
		return fmt.Sprintf("%.2f s", s)
	}
	return fmt.Sprintf("%.1f s", s)
}
