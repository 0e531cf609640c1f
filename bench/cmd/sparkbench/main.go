// Command sparkbench times the bench suite and dashboard, end to end through Velo's engine
// (check, charge, bounded rewrite, noise, release), with the totals computed by a local
// Spark cluster (internal/sparktest: a master, N one-core workers and a Spark Connect
// server on loopback) and by the embedded DuckDB, against plain DuckDB on the same Parquet;
// once per number of workers. It prints the median wall times and their ratios as a
// Markdown table.
//
//	bench/spark/setup.sh
//	go run ./bench/cmd/sparkbench --persons 200000 --workers 1,2 --split-mb 8
//
// The dataset is bench.EnsureDataset's full extract (FHIR and CSV, seed 1), kept in
// DIR/full-PERSONS (--full=false: the CSV-only extract in DIR/data-PERSONS, booking only).
// Ingest writes one Parquet file per table, in row groups of 122,880 rows; --split-mb sets
// Spark's spark.sql.files.maxPartitionBytes so that a file is read as several tasks (a
// task per split, each of whole row groups) which several workers can share.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/internal/sparktest"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/query/spark"
	"github.com/velo-fse/velo/release"
)

func main() {
	persons := flag.Int("persons", 200000, "synthetic persons (bookings are ~2.5 per person)")
	work := flag.String("dir", filepath.Join(os.TempDir(), "velo-querybench"), "work directory (the ingested dataset is cached here per size)")
	runs := flag.Int("runs", 3, "timed runs of each query on each side; the median is reported")
	workers := flag.String("workers", "1,2", "numbers of Spark workers to measure, one cluster each")
	full := flag.Bool("full", true, "the full extract (booking, person, lab_result: the whole suite); false: the CSV-only extract (booking-only queries)")
	splitMB := flag.Int("split-mb", 8, "Spark's spark.sql.files.maxPartitionBytes in MiB (0: Spark's default, 128)")
	flag.Parse()
	var ns []int
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "sparkbench: --workers: want positive numbers, e.g. 1,2")
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if err := run(context.Background(), *persons, *work, *runs, ns, *full, *splitMB); err != nil {
		fmt.Fprintln(os.Stderr, "sparkbench:", err)
		os.Exit(1)
	}
}

type row struct {
	id, bounding        string
	plain, velo         time.Duration
	spark               map[int]time.Duration
	sparkErr, veloError error
}

func run(ctx context.Context, persons int, work string, runs int, workers []int, full bool, splitMB int) error {
	data, err := bench.EnsureDataset(ctx, work, persons, full)
	if err != nil {
		return err
	}
	bookings := int64(-1)
	if man, err := dataset.ReadManifest(data); err == nil {
		bookings = man.Tables["booking"].Written
	}
	layout, err := layoutOf(data, "booking")
	if err != nil {
		return err
	}
	state, err := os.MkdirTemp("", "sparkbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	var qs []bench.SuiteQuery
	seen := map[string]bool{}
	for _, q := range slices.Concat(bench.Suite, bench.Dashboard) {
		if (full || !q.Full) && !seen[q.ID] {
			seen[q.ID] = true
			qs = append(qs, q)
		}
	}
	rows := make([]*row, len(qs))
	for i, q := range qs {
		rows[i] = &row{id: q.ID, spark: map[int]time.Duration{}}
	}
	variant := 0
	next := func(q bench.SuiteQuery) string { variant++; return q.Variant(variant) }

	// Plain DuckDB and Velo on DuckDB, once.
	plain, err := openPlain(ctx, data, full)
	if err != nil {
		return err
	}
	defer plain.Close()
	veloDuck, led, err := openVelo(ctx, data, filepath.Join(state, "duckdb"), nil)
	if err != nil {
		return err
	}
	for i, q := range qs {
		var pt, vt []time.Duration
		for r := 0; r <= runs; r++ { // the first run warms up
			d, err := timed(func() error { return plainQuery(ctx, plain, next(q)) })
			if err != nil {
				return fmt.Errorf("%s on plain DuckDB: %w", q.ID, err)
			}
			var rel *release.Release
			d2, err := timed(func() error { var err error; rel, err = veloDuck.Query(ctx, velo(q, next(q))); return err })
			if err != nil {
				rows[i].veloError = err
				break
			}
			rows[i].bounding = rel.Bounding.Method
			if r > 0 {
				pt, vt = append(pt, d), append(vt, d2)
			}
		}
		rows[i].plain = median(pt)
		rows[i].velo = median(vt)
		fmt.Fprintf(os.Stderr, "%s: plain %s, velo/duckdb %s\n", q.ID, ms(rows[i].plain), ms(rows[i].velo))
	}
	veloDuck.Close()
	led.Close()

	for _, n := range workers {
		fmt.Fprintf(os.Stderr, "starting a Spark cluster with %d worker(s)...\n", n)
		c, err := sparktest.Launch(n)
		if err != nil {
			if c != nil {
				err = fmt.Errorf("%w (logs in %s)", err, c.Dir)
			}
			return err
		}
		err = func() error {
			defer os.RemoveAll(c.Dir)
			defer c.Stop()
			b, err := spark.Open(ctx, spark.Config{Remote: c.Remote, DataDir: data})
			if err != nil {
				return err
			}
			if splitMB > 0 {
				if _, err := b.Query(ctx, fmt.Sprintf("SET spark.sql.files.maxPartitionBytes = %dm", splitMB)); err != nil {
					b.Close()
					return err
				}
			}
			eng, led, err := openVelo(ctx, data, filepath.Join(state, fmt.Sprintf("spark-%d", n)), b)
			if err != nil {
				b.Close()
				return err
			}
			defer led.Close()
			defer eng.Close()
			for i, q := range qs {
				var st []time.Duration
				for r := 0; r <= runs; r++ {
					d, err := timed(func() error { _, err := eng.Query(ctx, velo(q, next(q))); return err })
					if err != nil {
						rows[i].sparkErr = err
						break
					}
					if r > 0 {
						st = append(st, d)
					}
				}
				if rows[i].sparkErr == nil {
					rows[i].spark[n] = median(st)
					fmt.Fprintf(os.Stderr, "%s: velo/spark with %d worker(s) %s\n", q.ID, n, ms(rows[i].spark[n]))
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}

	split := "Spark's default split (128 MiB)"
	if splitMB > 0 {
		split = fmt.Sprintf("spark.sql.files.maxPartitionBytes %d MiB", splitMB)
	}
	fmt.Printf("%d persons, %d bookings (%s); %s; median of %d runs after one warm-up; Spark workers one core and 2 GiB each, the Connect server's driver 1 GiB, all on this machine\n\n", persons, bookings, layout, split, runs)
	head := "| query | bounding | plain DuckDB | Velo, DuckDB |"
	sep := "|---|---|---|---|"
	for _, n := range workers {
		head += fmt.Sprintf(" Velo, Spark %dw | ×DuckDB (Velo) |", n)
		sep += "---|---|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, r := range rows {
		line := fmt.Sprintf("| %s | %s | %s | %s |", r.id, r.bounding, ms(r.plain), ms(r.velo))
		for _, n := range workers {
			if d, ok := r.spark[n]; ok {
				line += fmt.Sprintf(" %s | %.1f |", ms(d), float64(d)/float64(r.velo))
			} else {
				var qe *query.Error
				why := "failed"
				if errors.As(r.sparkErr, &qe) {
					why = "refused"
				}
				line += " " + why + " | |"
			}
		}
		fmt.Println(line)
	}
	return nil
}

// velo is the request for a suite query: its epsilon, and its delta where it has one.
func velo(q bench.SuiteQuery, sqlText string) query.Request {
	eps := 1.0
	req := query.Request{SQL: sqlText, Project: "bench", Actor: "user:bench", Epsilon: &eps}
	if q.Delta > 0 {
		d := q.Delta
		req.Delta = &d
	}
	return req
}

func openVelo(ctx context.Context, data, state string, b query.Backend) (*query.Engine, *ledger.Ledger, error) {
	led, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		return nil, nil, err
	}
	if err := led.CreateProject(ctx, "dpo:bench", ledger.Project{
		ID: "bench", Purpose: "Spark benchmark", LegalBasis: "none: synthetic data",
		Allow: map[string][]string{"booking": nil, "person": nil, "lab_result": nil}, EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 1,
	}); err != nil {
		led.Close()
		return nil, nil, err
	}
	eng, err := query.Open(ctx, query.Config{DataDir: data, Ledger: led, Backend: b,
		Limits: query.Limits{Threads: 2, MemoryLimit: "2GB", Timeout: time.Hour}})
	if err != nil {
		led.Close()
		return nil, nil, err
	}
	return eng, led, nil
}

func openPlain(ctx context.Context, data string, full bool) (*sql.DB, error) {
	abs, err := filepath.Abs(data)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	stmts := []string{"SET threads = 2", "SET memory_limit = '2GB'"}
	tables := []string{"booking"}
	if full {
		tables = append(tables, "person", "lab_result")
	}
	for _, t := range tables {
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s')", t, dataset.TableGlob(abs, t)))
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// plainQuery runs q and reads every row, as a client would.
func plainQuery(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
	}
	return rows.Err()
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Sorted(slices.Values(d))
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// layoutOf says how a table is stored: its Parquet files and row groups.
func layoutOf(data, table string) (string, error) {
	files, err := filepath.Glob(dataset.TableGlob(data, table))
	if err != nil {
		return "", err
	}
	groups := 0
	var size int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		fi, err := f.Stat()
		if err == nil {
			var pf *parquet.File
			if pf, err = parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)); err == nil {
				groups += len(pf.Metadata().RowGroups)
				size += fi.Size()
			}
		}
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
	}
	return fmt.Sprintf("%s: %d Parquet file(s), %d row groups, %.1f MiB", table, len(files), groups, float64(size)/(1<<20)), nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
