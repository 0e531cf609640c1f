// Command querybench times the waiting-list queries end to end through Velo's query
// engine (check, charge, bounded rewrite, noise, release) against the same queries as
// plain SQL in DuckDB on the same Parquet, and prints the median wall times and their
// ratios as a Markdown table, with the process's peak resident memory.
//
//	go run ./bench/cmd/querybench --persons 200000
//
// The dataset is a synthetic extract (seed 1) of which only the CUP bookings are ingested;
// it is built on first use and kept in DIR/data-PERSONS. The extract itself (mostly FHIR,
// which these queries do not read) is deleted once ingested.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/synth"
)

func main() {
	persons := flag.Int("persons", 200000, "synthetic persons (bookings are ~2.5 per person)")
	work := flag.String("dir", filepath.Join(os.TempDir(), "velo-querybench"), "work directory (the ingested dataset is cached here per size)")
	runs := flag.Int("runs", 5, "timed runs of each query on each side; the median is reported")
	threads := flag.Int("threads", runtime.NumCPU(), "DuckDB threads, for Velo's sandbox and plain DuckDB alike")
	flag.Parse()
	if *runs < 1 || *persons < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "querybench: --persons, --runs and --threads must be positive")
		os.Exit(2)
	}
	if err := run(context.Background(), *persons, *work, *runs, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

// wlQuery is one of the waiting-list queries the issue names, cut at the point where a
// WHERE condition can be added. bench/query_test.go holds the same list for the
// in-process benchmarks; keep the two in step.
type wlQuery struct {
	name    string
	head    string // SELECT ... FROM booking
	where   string // the query's own row filter, "" for none
	groupBy string
}

var wlQueries = []wlQuery{
	{"share within target by region, priority", "SELECT region, priority, COUNT(*) AS n, AVG(CAST(within_target AS INTEGER)) AS share FROM booking", "first_access", "GROUP BY region, priority"},
	{"median wait by service", "SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking", "first_access", "GROUP BY service_code"},
	{"monthly trend", "SELECT date_trunc('month', d_contact) AS month, AVG(CAST(within_target AS INTEGER)) AS share FROM booking", "", "GROUP BY month"},
	{"people per region", "SELECT region, COUNT(DISTINCT pid) AS people FROM booking", "", "GROUP BY region"},
}

// variant is the query with a condition that no booking fails, whose literal changes
// with i: each variant is a different query to the release cache, so Velo runs it rather
// than answering from the ledger. Plain DuckDB runs the same text, so both do the same
// filtering.
func (q wlQuery) variant(i int) string {
	conds := []string{fmt.Sprintf("(wait_days IS NULL OR wait_days >= %d)", -1_000_000-i)}
	if q.where != "" {
		conds = append([]string{q.where}, conds...)
	}
	return q.head + " WHERE " + strings.Join(conds, " AND ") + " " + q.groupBy
}

type result struct {
	q           wlQuery
	plain, velo time.Duration // medians of wall time
	// medians of the process's CPU time (user + system, every thread) per run: on a
	// machine shared with other work, less inflated by the others' load than wall time
	plainCPU, veloCPU time.Duration
	plainG, veloG     int // groups returned
	// veloErr is Velo's error when a run failed (its runs stop there: the table says
	// "fails after" the failed run's time); the other queries still run.
	veloErr  error
	veloFail time.Duration
}

func run(ctx context.Context, persons int, work string, runs, threads int) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	data, rows, built, err := ingestedDataset(ctx, work, persons)
	if err != nil {
		return err
	}
	results := make([]result, len(wlQueries))
	for i, q := range wlQueries {
		results[i].q = q
	}
	seq := 0 // the varying literal: never the same twice in one run
	next := func() int { seq++; return seq }

	plain, version, err := openPlain(ctx, data, threads)
	if err != nil {
		return err
	}
	defer plain.Close()
	runPlain := func(i int) error {
		n, err := plainQuery(ctx, plain, wlQueries[i].variant(next()))
		results[i].plainG = n
		return err
	}
	// One untimed run of each query in plain DuckDB before Velo is opened: the peak RSS
	// read then is plain DuckDB's (with the Go runtime's); the one at the end, the larger
	// of the two.
	for i, q := range wlQueries {
		if err := runPlain(i); err != nil {
			return fmt.Errorf("plain DuckDB, %s: %w", q.name, err)
		}
	}
	rssPlain := peakRSS()

	state, err := os.MkdirTemp(work, "ledger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	eng, led, err := openVelo(ctx, data, state, threads)
	if err != nil {
		return err
	}
	defer led.Close()
	defer eng.Close()
	runVelo := func(i int) error {
		rel, err := eng.Query(ctx, query.Request{SQL: wlQueries[i].variant(next()), Project: "bench", Actor: "user:bench"})
		if err != nil {
			return err
		}
		if rel.Cached {
			return errors.New("answered from the release cache")
		}
		results[i].veloG = len(rel.Rows)
		return nil
	}
	load := loadAverage()
	for i, q := range wlQueries {
		fmt.Fprintf(os.Stderr, "%s: %d runs each\n", q.name, runs)
		// The two sides alternate, so a neighbour's load on the machine falls on both.
		// A failed Velo run (after its charge: the engine's contract) is reported, and
		// the query's remaining Velo runs are skipped.
		if d, _, err := timed(func() error { return runVelo(i) }); err != nil {
			results[i].veloErr, results[i].veloFail = err, d
			fmt.Fprintf(os.Stderr, "velo, %s: fails after %s: %v\n", q.name, ms(d), err)
		}
		var p, v, pc, vc []time.Duration
		for range runs {
			d, c, err := timed(func() error { return runPlain(i) })
			if err != nil {
				return fmt.Errorf("plain DuckDB, %s: %w", q.name, err)
			}
			p, pc = append(p, d), append(pc, c)
			if results[i].veloErr != nil {
				continue
			}
			if d, c, err = timed(func() error { return runVelo(i) }); err != nil {
				results[i].veloErr, results[i].veloFail = err, d
				fmt.Fprintf(os.Stderr, "velo, %s: fails after %s: %v\n", q.name, ms(d), err)
				continue
			}
			v, vc = append(v, d), append(vc, c)
		}
		results[i].plain, results[i].plainCPU = median(p), median(pc)
		if results[i].veloErr == nil {
			results[i].velo, results[i].veloCPU = median(v), median(vc)
		}
	}
	rssEnd := peakRSS()

	fmt.Printf("waiting-list queries over %d bookings (%d synthetic persons, seed 1); %s, %s/%s, %d CPUs (load average %s); DuckDB %s with threads = %d; median of %d alternating runs after one warm-up\n\n",
		rows, persons, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load, version, threads, runs)
	fmt.Println("| query | rows scanned | groups (DuckDB / Velo) | plain DuckDB | Velo | Velo − DuckDB | Velo / DuckDB | CPU plain | CPU Velo | CPU ratio |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		if r.veloErr != nil {
			fmt.Printf("| %s | %d | %d / – | %s | **fails after %s** | – | – | %s | – | – |\n", r.q.name, rows, r.plainG, ms(r.plain), ms(r.veloFail), ms(r.plainCPU))
			continue
		}
		fmt.Printf("| %s | %d | %d / %d | %s | %s | %s | %.1f× | %s | %s | %.1f× |\n", r.q.name, rows, r.plainG, r.veloG,
			ms(r.plain), ms(r.velo), ms(r.velo-r.plain), r.velo.Seconds()/r.plain.Seconds(),
			ms(r.plainCPU), ms(r.veloCPU), r.veloCPU.Seconds()/r.plainCPU.Seconds())
	}
	note := ""
	if built {
		note = " (both include building the dataset in this process: run again for the queries alone)"
	}
	fmt.Printf("\npeak RSS of the process: %.0f MiB after the plain DuckDB runs, %.0f MiB at the end, after the Velo runs%s\n",
		float64(rssPlain)/(1<<20), float64(rssEnd)/(1<<20), note)
	return nil
}

// ingestedDataset returns the ingested dataset for persons people and its number of bookings,
// and whether it was built now rather than found in work.
func ingestedDataset(ctx context.Context, work string, persons int) (dir string, bookings int64, built bool, err error) {
	data := filepath.Join(work, fmt.Sprintf("data-%d", persons))
	m, err := dataset.ReadManifest(data)
	if err == nil {
		return data, m.Tables["booking"].Written, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", 0, false, err
	}
	src := filepath.Join(work, fmt.Sprintf("synth-%d", persons))
	for _, d := range []string{data, src} {
		if err := os.RemoveAll(d); err != nil {
			return "", 0, false, err
		}
	}
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		return "", 0, false, err
	}
	p := progress{}
	// Only the CUP bookings CSV: these queries read nothing else.
	if _, err := synth.Generate(ctx, synth.Config{Persons: persons, Seed: 1, Out: src, From: period.From, To: period.To,
		Formats:    []synth.Format{synth.FormatCSV},
		OnProgress: func(done int64) { p.printf("synth: %d / %d persons", done, persons) },
	}); err != nil {
		return "", 0, false, err
	}
	p.done("synth: %d persons", persons)
	key, err := pseudonymize.GenerateKey(rand.Reader)
	if err != nil {
		return "", 0, false, err
	}
	if m, err = ingest.Run(ctx, ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{filepath.Join(src, "cup")}, Period: period,
		OnProgress: func(done, total int64) {
			p.printf("ingest (CUP CSV only): %.0f%% of %.0f MiB", 100*float64(done)/float64(max(total, 1)), float64(total)/(1<<20))
		},
	}); err != nil {
		return "", 0, false, err
	}
	p.done("ingest: %d bookings written", m.Tables["booking"].Written)
	// Only the ingested dataset is read again.
	if err := os.RemoveAll(src); err != nil {
		return "", 0, false, err
	}
	return data, m.Tables["booking"].Written, true, nil
}

// openVelo opens the engine over data with a new ledger in state holding one project
// whose budget the benchmark cannot spend.
func openVelo(ctx context.Context, data, state string, threads int) (*query.Engine, *ledger.Ledger, error) {
	eng, led, _, err := bench.OpenEngine(ctx, data, state, ledger.Project{
		ID: "bench", Purpose: "query benchmark", LegalBasis: "none: synthetic data",
		Allow: map[string][]string{"booking": nil}, EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 1,
	}, query.Limits{Threads: threads, MemoryLimit: "2GB", Timeout: time.Hour})
	return eng, led, err
}

// openPlain opens plain DuckDB over the same Parquet with the sandbox's threads and
// memory settings, and returns DuckDB's version.
func openPlain(ctx context.Context, data string, threads int) (*sql.DB, string, error) {
	abs, err := filepath.Abs(data)
	if err != nil {
		return nil, "", err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, "", err
	}
	db.SetMaxOpenConns(1) // the settings and the view live in the one connection
	for _, q := range []string{
		fmt.Sprintf("SET threads = %d", threads),
		"SET memory_limit = '2GB'",
		fmt.Sprintf("CREATE VIEW booking AS SELECT * FROM read_parquet('%s')", dataset.TableGlob(abs, "booking")),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, "", fmt.Errorf("%s: %w", q, err)
		}
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&version); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, version, nil
}

// plainQuery runs q and reads every row, as a client would; it returns the number of rows.
func plainQuery(ctx context.Context, db *sql.DB, q string) (int, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// timed runs f and returns its wall time and the process's CPU time (user + system, all
// threads) over it.
func timed(f func() error) (time.Duration, time.Duration, error) {
	c0 := cpuTime()
	start := time.Now()
	err := f()
	return time.Since(start), cpuTime() - c0, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(d []time.Duration) time.Duration {
	d = slices.Sorted(slices.Values(d))
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// loadAverage is the one-minute load average before the timed runs ("?" where the
// system does not say): a busy machine slows both sides, not always alike.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// peakRSS is the process's peak resident set size so far, in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // Linux reports KiB
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// progress writes a line on stderr that it rewrites in place, at most five times a second.
type progress struct{ last time.Time }

func (p *progress) printf(format string, args ...any) {
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(os.Stderr, "\r"+format+"   ", args...)
}

// done ends the line with its final state.
func (p *progress) done(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\r"+format+"   \n", args...)
	p.last = time.Time{}
}
