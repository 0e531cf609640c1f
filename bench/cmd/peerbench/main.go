// Command peerbench runs the query suite of issue 13 (bench.Suite) side by side: plain
// DuckDB (the floor, and the true values), Velo through its engine in-process, and the DP
// peers (OpenDP's Polars API, SmartNoise SQL, Qrlew, Tumult Analytics on local Spark) on
// the same Parquet, the same epsilon and Velo's catalog contribution bounds. Each system
// runs each query in a child process of its own (peerbench itself for DuckDB and Velo,
// bench/peers/run_peer.py in the peer's virtual environment for the others), so the peak
// resident memory is the child's alone. It prints Markdown tables: median time, ratio to
// plain DuckDB, peak RSS, mean relative error of the released values against the true ones,
// and the mean relative half-width of the 95% intervals each system reports.
//
//	bash bench/peers/setup.sh                    # once: the peers' virtual environments
//	go run ./bench/cmd/peerbench --persons 20000 # CI-small
//	go run ./bench/cmd/peerbench --persons 4000000 --full-persons 400000 --runs 3
//
// Datasets are synthetic extracts (seed 1, period 2024-01..2025-12) kept in --dir:
// data-P holds only the CUP bookings (`velo synth --format csv`), full-P the whole extract
// (FHIR and CSV), which the queries reading person or lab_result need. When --persons and
// --full-persons are equal, every query reads full-P.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/velo-fse/velo/bench"
)

// Bounds are Velo's catalog contribution bounds, which every peer is given.
type Bounds struct {
	// Per table: groups one person may contribute to, rows per person and group.
	MaxGroups   map[string]int `json:"max_groups"`
	MaxRowsPerG map[string]int `json:"max_rows_per_group"`
	// Clamping ranges of the aggregated values.
	Ranges map[string][2]float64 `json:"ranges"`
}

func catalogBounds(data string) (Bounds, error) {
	b := Bounds{MaxGroups: map[string]int{}, MaxRowsPerG: map[string]int{}, Ranges: map[string][2]float64{}}
	raw, err := os.ReadFile(filepath.Join(data, "catalog.json"))
	if err != nil {
		return b, err
	}
	var cat struct {
		Tables []struct {
			Name    string `json:"name"`
			Columns []struct {
				Name   string `json:"name"`
				Bounds *struct {
					Lo, Hi float64
				} `json:"bounds"`
			} `json:"columns"`
			MaxGroups int `json:"max_groups_contributed"`
			MaxRows   int `json:"max_rows_per_group"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &cat); err != nil {
		return b, fmt.Errorf("%s: %w", data, err)
	}
	for _, t := range cat.Tables {
		b.MaxGroups[t.Name], b.MaxRowsPerG[t.Name] = t.MaxGroups, t.MaxRows
		for _, c := range t.Columns {
			if c.Bounds != nil {
				b.Ranges[t.Name+"."+c.Name] = [2]float64{c.Bounds.Lo, c.Bounds.Hi}
			}
		}
	}
	// Booleans cast to integers lie in [0, 1], as Velo derives.
	b.Ranges["booking.within_target"] = [2]float64{0, 1}
	b.Ranges["booking.garanzia"] = [2]float64{0, 1}
	return b, nil
}

// Row is one released (or true) group: its keys as text and its values.
type Row struct {
	Key    []string      `json:"key"`
	Values []*float64    `json:"values"`
	CI     []*[2]float64 `json:"ci,omitempty"`
}

// ChildResult is what a child prints on its last line of standard output.
type ChildResult struct {
	TimesMS []float64 `json:"times_ms"`
	// CPUMS is each run's CPU time (user + system, every thread of the process): less
	// disturbed than wall time by other processes on a shared machine. Go children only.
	CPUMS []float64 `json:"cpu_ms,omitempty"`
	Rows  []Row     `json:"rows"`
	Error string    `json:"error,omitempty"`
	// Unsupported: the system cannot express the query (Error says why).
	Unsupported bool   `json:"unsupported,omitempty"`
	Note        string `json:"note,omitempty"`
	Version     string `json:"version,omitempty"`
}

// Result is one system on one query.
type Result struct {
	Query, System string
	Data          string
	ChildResult
	PeakRSSMiB float64
	Wall       time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(childMain(os.Args[2:]))
	}
	home, _ := os.UserHomeDir()
	persons := flag.Int("persons", 20000, "synthetic persons of the booking queries' dataset (about 2.5 bookings each)")
	fullPersons := flag.Int("full-persons", 0, "persons of the full extract read by the queries joining person or reading lab_result (0: --persons)")
	dir := flag.String("dir", filepath.Join(home, ".cache", "velo-bench"), "work directory: datasets are cached here")
	venv := flag.String("venv", "", "the peers' virtual environments (default: $VELO_BENCH_VENV or DIR/venv), made by bench/peers/setup.sh")
	runs := flag.Int("runs", 3, "timed runs of each query in each system after one warm-up; the median is reported")
	peerWarmup := flag.Bool("peer-warmup", true, "one untimed run of each DP peer before its timed runs")
	peerRuns := flag.Int("peer-runs", 0, "timed runs of the DP peers (0: --runs); the slow peers at scale may need fewer")
	eps := flag.Float64("epsilon", 1, "epsilon of every query")
	systems := flag.String("systems", "duckdb,velo,opendp,snsql,qrlew,tumult", "systems to run, comma-separated")
	queries := flag.String("queries", "", "suite query IDs to run, comma-separated (default: all, and the dashboard)")
	threads := flag.Int("threads", runtime.NumCPU(), "DuckDB threads for plain DuckDB and Velo")
	memLimit := flag.String("memory-limit", "2GB", "DuckDB memory limit for plain DuckDB and Velo")
	timeout := flag.Duration("timeout", 20*time.Minute, "limit of one child (one system on one query, all its runs)")
	jsonOut := flag.String("json", "", "also write every result as JSON to this file")
	replicate := flag.Int("replicate", 1, "read each dataset repeated this many times with distinct pseudonyms (bench.ReplicateDataset; built once beside it): the way to 100M bookings")
	flag.Parse()
	if *fullPersons == 0 {
		*fullPersons = *persons
	}
	if *venv == "" {
		*venv = os.Getenv("VELO_BENCH_VENV")
	}
	if *venv == "" {
		*venv = filepath.Join(*dir, "venv")
	}
	if *peerRuns == 0 {
		*peerRuns = *runs
	}
	cfg := config{dir: *dir, venv: *venv, runs: *runs, peerRuns: *peerRuns, peerWarmup: *peerWarmup, eps: *eps, threads: *threads, memLimit: *memLimit, timeout: *timeout,
		systems: strings.Split(*systems, ","), persons: *persons, fullPersons: *fullPersons, replicate: *replicate}
	if *queries != "" {
		cfg.queries = strings.Split(*queries, ",")
	}
	if err := run(context.Background(), cfg, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

type config struct {
	dir, venv            string
	runs, peerRuns       int
	peerWarmup           bool
	eps                  float64
	threads              int
	memLimit             string
	timeout              time.Duration
	systems, queries     []string
	persons, fullPersons int
	replicate            int
}

func run(ctx context.Context, cfg config, jsonOut string) error {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	bookingData, fullData, err := datasets(ctx, cfg)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script, err := peerScript()
	if err != nil {
		return err
	}
	var results []Result
	selected := func(id string) bool { return len(cfg.queries) == 0 || slices.Contains(cfg.queries, id) }
	for _, q := range bench.Suite {
		if !selected(q.ID) {
			continue
		}
		data := bookingData
		if q.Full {
			data = fullData
		}
		bounds, err := catalogBounds(data)
		if err != nil {
			return err
		}
		bj, _ := json.Marshal(bounds)
		for _, sys := range cfg.systems {
			var argv []string
			switch sys {
			case "duckdb", "velo":
				argv = []string{self, "child", "--system", sys, "--query", q.ID, "--data", data, "--runs", fmt.Sprint(cfg.runs),
					"--epsilon", fmt.Sprint(cfg.eps), "--threads", fmt.Sprint(cfg.threads), "--memory-limit", cfg.memLimit}
			default:
				py := filepath.Join(cfg.venv, sys, "bin", "python")
				if _, err := os.Stat(py); err != nil {
					results = append(results, Result{Query: q.ID, System: sys, Data: data, ChildResult: ChildResult{Error: "not installed: run bench/peers/setup.sh " + sys}})
					continue
				}
				argv = []string{py, script, "--system", sys, "--query", q.ID, "--data", data, "--runs", fmt.Sprint(cfg.peerRuns),
					"--epsilon", fmt.Sprint(cfg.eps), "--delta", fmt.Sprint(q.Delta), "--bounds", string(bj), "--sql", q.SQL()}
				if !cfg.peerWarmup {
					argv = append(argv, "--no-warmup")
				}
			}
			r := runChild(ctx, cfg.timeout, argv)
			r.Query, r.System, r.Data = q.ID, sys, data
			fmt.Fprintf(os.Stderr, "%s %s: %s\n", q.ID, sys, summary(r))
			results = append(results, r)
		}
	}
	if len(cfg.queries) == 0 || slices.Contains(cfg.queries, "dashboard") {
		for _, mode := range []struct{ sys, id string }{{"duckdb", "dashboard"}, {"velo", "dashboard-fresh"}, {"velo", "dashboard-cached"}} {
			if !slices.Contains(cfg.systems, mode.sys) {
				continue
			}
			argv := []string{self, "child", "--system", mode.sys, "--query", mode.id, "--data", bookingData, "--runs", fmt.Sprint(cfg.runs),
				"--epsilon", fmt.Sprint(cfg.eps), "--threads", fmt.Sprint(cfg.threads), "--memory-limit", cfg.memLimit}
			r := runChild(ctx, cfg.timeout, argv)
			r.Query, r.System, r.Data = mode.id, mode.sys, bookingData
			fmt.Fprintf(os.Stderr, "%s %s: %s\n", mode.id, mode.sys, summary(r))
			results = append(results, r)
		}
	}
	report(os.Stdout, cfg, bookingData, fullData, results)
	if jsonOut != "" {
		raw, err := json.MarshalIndent(results, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(jsonOut, raw, 0o644)
	}
	return nil
}

func summary(r Result) string {
	if r.Error != "" {
		return r.Error
	}
	cpu := ""
	if len(r.CPUMS) > 0 {
		cpu = fmt.Sprintf(" (CPU %.1f ms)", median(r.CPUMS))
	}
	return fmt.Sprintf("median %.1f ms%s, peak RSS %.0f MiB, %d groups", median(r.TimesMS), cpu, r.PeakRSSMiB, len(r.Rows))
}

// peerScript finds bench/peers/run_peer.py: beside the source of this command.
func peerScript() (string, error) {
	for _, c := range []string{"bench/peers/run_peer.py", "../peers/run_peer.py", "../../peers/run_peer.py"} {
		if abs, err := filepath.Abs(c); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs, nil
			}
		}
	}
	return "", errors.New("bench/peers/run_peer.py not found: run peerbench from the repository's root")
}

// runChild runs one child and reads its JSON result and peak RSS.
func runChild(ctx context.Context, timeout time.Duration, argv []string) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The child runs under /usr/bin/time, which reports its peak RSS (descendants such as
	// Spark's JVM included, once reaped). The rusage Go reads for a child it started
	// itself would not do: Go starts children with CLONE_VM, and Linux carries the parent's
	// peak RSS into the child's at exec.
	timeBin := "/usr/bin/time"
	if _, err := os.Stat(timeBin); err == nil {
		argv = append([]string{timeBin, "-f", "PEAKRSS_KIB %M"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A child that runs past the timeout goes with all it started (Spark's JVM, the peer
	// under /usr/bin/time): it leads a process group of its own, killed whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Wall: time.Since(start)}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if kib, ok := strings.CutPrefix(strings.TrimSpace(l), "PEAKRSS_KIB "); ok {
			if v, perr := strconv.ParseFloat(kib, 64); perr == nil {
				r.PeakRSSMiB = v / 1024
			}
		}
	}
	if ps := cmd.ProcessState; ps != nil && r.PeakRSSMiB == 0 {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux; an upper bound (see above)
		}
	}
	// The result is the last line that parses as JSON.
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	var last string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "{") {
			last = l
		}
	}
	if last != "" {
		if jerr := json.Unmarshal([]byte(last), &r.ChildResult); jerr != nil {
			r.Error = "unreadable result: " + jerr.Error()
		}
	}
	if r.Error == "" && err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg)-i < 400 {
			msg = msg[i+1:]
		}
		if len(msg) > 400 {
			msg = msg[len(msg)-400:]
		}
		if ctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %s", timeout)
		}
		r.Error = fmt.Sprintf("failed (%v): %s", err, msg)
	}
	return r
}

// datasets returns the booking queries' dataset and the full extract, building them when
// they are not in cfg.dir yet.
func datasets(ctx context.Context, cfg config) (booking, full string, err error) {
	ensure := func(persons int, all bool) (string, error) {
		data, err := bench.EnsureDataset(ctx, cfg.dir, persons, all)
		if err != nil || cfg.replicate <= 1 {
			return data, err
		}
		return bench.ReplicateDataset(ctx, data, cfg.replicate)
	}
	if full, err = ensure(cfg.fullPersons, true); err != nil {
		return "", "", err
	}
	if cfg.persons == cfg.fullPersons {
		return full, full, nil
	}
	booking, err = ensure(cfg.persons, false)
	return booking, full, err
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
