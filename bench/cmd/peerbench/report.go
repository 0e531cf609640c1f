package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
)

var systemNames = map[string]string{
	"duckdb": "plain DuckDB", "velo": "Velo", "opendp": "OpenDP (Polars)", "snsql": "SmartNoise SQL",
	"qrlew": "Qrlew", "tumult": "Tumult Analytics",
}

func sysName(s string) string {
	if n, ok := systemNames[s]; ok {
		return n
	}
	return s
}

// accuracy compares a release with the true rows: the mean relative error over the true
// cells the release has (true value ≠ 0), the share of true groups released, and the mean
// relative half-width of the 95% intervals the system reported (NaN when it reported none).
func accuracy(truth, rel []Row) (meanErr, groupsShare, ciHalf float64, cells int) {
	byKey := map[string]Row{}
	for _, r := range rel {
		byKey[strings.Join(r.Key, "\x00")] = r
	}
	var sumErr, sumCI float64
	var nCI, found int
	for _, t := range truth {
		r, ok := byKey[strings.Join(t.Key, "\x00")]
		if !ok {
			continue
		}
		found++
		for j, tv := range t.Values {
			if tv == nil || *tv == 0 || j >= len(r.Values) || r.Values[j] == nil {
				continue
			}
			sumErr += math.Abs(*r.Values[j]-*tv) / math.Abs(*tv)
			cells++
			if j < len(r.CI) && r.CI[j] != nil {
				sumCI += (r.CI[j][1] - r.CI[j][0]) / 2 / math.Abs(*tv)
				nCI++
			}
		}
	}
	meanErr, ciHalf = math.NaN(), math.NaN()
	if cells > 0 {
		meanErr = sumErr / float64(cells)
	}
	if nCI > 0 {
		ciHalf = sumCI / float64(nCI)
	}
	if len(truth) > 0 {
		groupsShare = float64(found) / float64(len(truth))
	}
	return meanErr, groupsShare, ciHalf, cells
}

func bookings(data string) int64 {
	m, err := dataset.ReadManifest(data)
	if err != nil {
		return 0
	}
	return m.Tables["booking"].Written
}

func report(w io.Writer, cfg config, bookingData, fullData string, results []Result) {
	get := func(q, s string) *Result {
		for i := range results {
			if results[i].Query == q && results[i].System == s {
				return &results[i]
			}
		}
		return nil
	}
	load, _ := os.ReadFile("/proc/loadavg")
	if cfg.replicate > 1 {
		fmt.Fprintf(w, "Each extract below is the synthetic one of the stated persons repeated %d times with distinct pseudonyms (--replicate %d): %d times the persons and bookings, the same distributions.\n\n", cfg.replicate, cfg.replicate, cfg.replicate)
	}
	fmt.Fprintf(w, "Suite at %d persons (%d bookings, %s); the queries joining person or reading lab_result on the full extract of %d persons (%d bookings, %s). epsilon %g per query, Velo's catalog contribution bounds for every system; median of %d runs (%d for the DP peers%s) after one warm-up, each system in its own child process. %s %s/%s, %d CPUs, load average %s; DuckDB threads %d, memory limit %s.\n\n",
		cfg.persons, bookings(bookingData), bookingData, cfg.fullPersons, bookings(fullData), fullData, cfg.eps, cfg.runs, cfg.peerRuns, map[bool]string{true: "", false: ", without the warm-up"}[cfg.peerWarmup],
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "), cfg.threads, cfg.memLimit)
	var notes []string
	note := func(r *Result) string {
		if r == nil {
			return "–"
		}
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%s on %s: %s", sysName(r.System), r.Query, r.Error))
			if r.Unsupported {
				return fmt.Sprintf("n/s [%d]", len(notes))
			}
			return fmt.Sprintf("fails [%d]", len(notes))
		}
		return ""
	}
	header := func(title string) {
		fmt.Fprintf(w, "**%s**\n\n| query |", title)
		for _, s := range cfg.systems {
			fmt.Fprintf(w, " %s |", sysName(s))
		}
		fmt.Fprint(w, "\n|---|")
		for range cfg.systems {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprintln(w)
	}
	queries := []string{}
	for _, q := range bench.Suite {
		if len(cfg.queries) == 0 || contains(cfg.queries, q.ID) {
			queries = append(queries, q.ID)
		}
	}
	title := func(id string) string {
		if q, ok := bench.SuiteByID(id); ok && q.Title != "" {
			return q.Title
		}
		return id
	}
	header("Median time (ratio to plain DuckDB)")
	for _, q := range queries {
		base := get(q, "duckdb")
		fmt.Fprintf(w, "| %s |", title(q))
		for _, s := range cfg.systems {
			r := get(q, s)
			if n := note(r); n != "" {
				fmt.Fprintf(w, " %s |", n)
				continue
			}
			t := median(r.TimesMS)
			if s != "duckdb" && base != nil && base.Error == "" {
				fmt.Fprintf(w, " %s (%.1f×) |", msText(t), t/median(base.TimesMS))
			} else {
				fmt.Fprintf(w, " %s |", msText(t))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	header("Median CPU time of a run, user + system (ratio to plain DuckDB)")
	for _, q := range queries {
		base := get(q, "duckdb")
		fmt.Fprintf(w, "| %s |", title(q))
		for _, s := range cfg.systems {
			r := get(q, s)
			switch {
			case note(r) != "":
				fmt.Fprintf(w, " %s |", note(r))
			case len(r.CPUMS) == 0:
				fmt.Fprint(w, " – |")
			case s != "duckdb" && base != nil && base.Error == "" && len(base.CPUMS) > 0:
				fmt.Fprintf(w, " %s (%.1f×) |", msText(median(r.CPUMS)), median(r.CPUMS)/median(base.CPUMS))
			default:
				fmt.Fprintf(w, " %s |", msText(median(r.CPUMS)))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	header("Peak RSS of the child process (MiB)")
	for _, q := range queries {
		fmt.Fprintf(w, "| %s |", title(q))
		for _, s := range cfg.systems {
			r := get(q, s)
			if r == nil || (r.Error != "" && r.Unsupported) {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %.0f |", r.PeakRSSMiB)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	header("Mean relative error vs the true values; groups released / true groups; mean relative 95% half-width where reported")
	for _, q := range queries {
		truth := get(q, "duckdb")
		fmt.Fprintf(w, "| %s |", title(q))
		for _, s := range cfg.systems {
			r := get(q, s)
			if s == "duckdb" {
				if truth != nil && truth.Error == "" {
					fmt.Fprintf(w, " exact, %d groups |", len(truth.Rows))
				} else {
					fmt.Fprint(w, " – |")
				}
				continue
			}
			if r == nil || r.Error != "" || truth == nil || truth.Error != "" {
				fmt.Fprint(w, " – |")
				continue
			}
			e, g, ci, _ := accuracy(truth.Rows, r.Rows)
			cell := fmt.Sprintf(" %s; %.0f%%", pct(e), 100*g)
			if !math.IsNaN(ci) {
				cell += "; ±" + pct(ci)
			}
			fmt.Fprintf(w, "%s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if d := get("dashboard", "duckdb"); d != nil {
		fmt.Fprintf(w, "**12-panel dashboard refresh** (the panels one after another)\n\n| system | per refresh | ratio to plain DuckDB | peak RSS |\n|---|---:|---:|---:|\n")
		for _, m := range []struct{ id, sys, name string }{{"dashboard", "duckdb", "plain DuckDB"}, {"dashboard-fresh", "velo", "Velo, fresh (12 new queries, each charged)"}, {"dashboard-cached", "velo", "Velo, cached (12 releases from the ledger)"}} {
			r := get(m.id, m.sys)
			if r == nil {
				continue
			}
			if n := note(r); n != "" {
				fmt.Fprintf(w, "| %s | %s | | |\n", m.name, n)
				continue
			}
			ratio := ""
			if d.Error == "" {
				ratio = fmt.Sprintf("%.2f×", median(r.TimesMS)/median(d.TimesMS))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f MiB |\n", m.name, msText(median(r.TimesMS)), ratio, r.PeakRSSMiB)
		}
		fmt.Fprintln(w)
	}
	versions := map[string]string{}
	for _, r := range results {
		if r.Version != "" {
			versions[sysName(r.System)] = r.Version
		}
	}
	if len(versions) > 0 {
		fmt.Fprint(w, "Versions:")
		for _, s := range cfg.systems {
			if v, ok := versions[sysName(s)]; ok {
				fmt.Fprintf(w, " %s: %s;", sysName(s), v)
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
	}
	for i, n := range notes {
		fmt.Fprintf(w, "[%d] %s\n\n", i+1, strings.ReplaceAll(n, "\n", " "))
	}
	for _, r := range results {
		if r.Note != "" && r.Error == "" && r.System != "velo" {
			fmt.Fprintf(w, "- %s on %s: %s\n", sysName(r.System), r.Query, r.Note)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func msText(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	if ms >= 100 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	if f >= 10 {
		return fmt.Sprintf("%.0f×", f)
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}
