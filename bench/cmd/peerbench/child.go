package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/release"
)

// childMain runs one system (duckdb or velo) on one query: one warm-up, then --runs timed
// runs, each a new variant of the query (so Velo's release cache never answers, except in
// dashboard-cached, which measures it). It prints a ChildResult as JSON.
func childMain(args []string) int {
	fl := flag.NewFlagSet("child", flag.ExitOnError)
	system := fl.String("system", "", "duckdb or velo")
	id := fl.String("query", "", "suite query ID, or dashboard, dashboard-fresh, dashboard-cached")
	data := fl.String("data", "", "dataset directory")
	runs := fl.Int("runs", 3, "timed runs")
	eps := fl.Float64("epsilon", 1, "epsilon")
	threads := fl.Int("threads", 2, "DuckDB threads")
	memLimit := fl.String("memory-limit", "2GB", "DuckDB memory limit")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the child (Go side) to this file")
	_ = fl.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	res, err := child(context.Background(), *system, *id, *data, *runs, *eps, *threads, *memLimit)
	if err != nil {
		res.Error = err.Error()
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return 0
}

func child(ctx context.Context, system, id, data string, runs int, eps float64, threads int, memLimit string) (ChildResult, error) {
	var res ChildResult
	panels := []bench.SuiteQuery{}
	switch id {
	case "dashboard", "dashboard-fresh", "dashboard-cached":
		panels = bench.Dashboard
	default:
		q, ok := bench.SuiteByID(id)
		if !ok {
			return res, fmt.Errorf("no suite query %q", id)
		}
		panels = append(panels, q)
	}
	seq := 0
	var runOnce func(fresh bool) ([]Row, error)
	switch system {
	case "duckdb":
		db, version, err := openPlain(ctx, data, threads, memLimit)
		if err != nil {
			return res, err
		}
		defer db.Close()
		res.Version = version
		runOnce = func(bool) ([]Row, error) {
			var rows []Row
			for _, q := range panels {
				seq++
				r, err := plainRows(ctx, db, q.Variant(seq), q.Keys)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", q.ID, err)
				}
				rows = r
			}
			return rows, nil
		}
	case "velo":
		state, err := os.MkdirTemp("", "peerbench-ledger-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(state)
		eng, led, err := openVelo(ctx, data, state, threads, memLimit)
		if err != nil {
			return res, err
		}
		defer led.Close()
		defer eng.Close()
		res.Version = "velo engine (this checkout)"
		runOnce = func(fresh bool) ([]Row, error) {
			var rows []Row
			for _, q := range panels {
				sqlText := q.SQL()
				if fresh {
					seq++
					sqlText = q.Variant(seq)
				}
				req := query.Request{SQL: sqlText, Project: "bench", Actor: "user:bench", Epsilon: &eps}
				if q.Delta > 0 {
					d := q.Delta
					req.Delta = &d
				}
				rel, err := eng.Query(ctx, req)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", q.ID, err)
				}
				if fresh && rel.Cached {
					return nil, errors.New("answered from the release cache")
				}
				rows = releaseRows(rel, q.Keys)
				if rel.Bounding.PartitionSelection {
					res.Note = "partition selection"
				}
			}
			return rows, nil
		}
	default:
		return res, fmt.Errorf("unknown system %q", system)
	}
	fresh := id != "dashboard-cached"
	// The warm-up: for dashboard-cached it also puts the releases in the cache.
	if _, err := runOnce(fresh); err != nil {
		return res, err
	}
	for range runs {
		start, cpu := time.Now(), cpuTime()
		rows, err := runOnce(fresh)
		if err != nil {
			return res, err
		}
		res.TimesMS = append(res.TimesMS, float64(time.Since(start).Microseconds())/1000)
		res.CPUMS = append(res.CPUMS, float64((cpuTime()-cpu).Microseconds())/1000)
		res.Rows = rows
	}
	return res, nil
}

// cpuTime is the process's CPU time so far, user and system, of all its threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openPlain(ctx context.Context, data string, threads int, memLimit string) (*sql.DB, string, error) {
	abs, err := filepath.Abs(data)
	if err != nil {
		return nil, "", err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, "", err
	}
	db.SetMaxOpenConns(1)
	stmts := []string{fmt.Sprintf("SET threads = %d", threads), fmt.Sprintf("SET memory_limit = '%s'", memLimit)}
	for _, t := range []string{"booking", "person", "lab_result"} {
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet('%s')", t, dataset.TableGlob(abs, t)))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, "", fmt.Errorf("%s: %w", s, err)
		}
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&version); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, "DuckDB " + version, nil
}

func plainRows(ctx context.Context, db *sql.DB, q string, keys int) ([]Row, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Row
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, toRow(vals, nil, keys))
	}
	return out, rows.Err()
}

func releaseRows(rel *release.Release, keys int) []Row {
	out := make([]Row, 0, len(rel.Rows))
	for i, r := range rel.Rows {
		var ci []any
		if i < len(rel.CI) {
			ci = rel.CI[i]
		}
		out = append(out, toRow(r, ci, keys))
	}
	return out
}

func toRow(vals, ci []any, keys int) Row {
	var r Row
	for i, v := range vals {
		if i < keys {
			r.Key = append(r.Key, keyText(v))
			continue
		}
		r.Values = append(r.Values, number(v))
		var iv *[2]float64
		if i < len(ci) {
			if lo, hi, ok := release.CIBounds(ci[i]); ok {
				iv = &[2]float64{lo, hi}
			}
		}
		r.CI = append(r.CI, iv)
	}
	return r
}

func keyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.Format("2006-01-02")
	case string:
		if len(x) > 10 && x[4] == '-' && x[7] == '-' {
			return x[:10]
		}
		return x
	default:
		return fmt.Sprint(x)
	}
}

func number(v any) *float64 {
	if v == nil {
		return nil
	}
	f, ok := release.Number(v)
	if !ok {
		// Text and other cells (DECIMAL) as their printed number.
		g, err := strconv.ParseFloat(fmt.Sprint(v), 64)
		if err != nil {
			return nil
		}
		f = g
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// openVelo opens the engine over data with a new ledger holding one project whose budget
// the benchmark cannot spend.
func openVelo(ctx context.Context, data, state string, threads int, memLimit string) (*query.Engine, *ledger.Ledger, error) {
	eng, led, _, err := bench.OpenEngine(ctx, data, state, ledger.Project{
		ID: "bench", Purpose: "peer benchmark", LegalBasis: "none: synthetic data",
		Allow:         map[string][]string{"booking": nil, "person": nil, "lab_result": nil},
		EpsilonBudget: 1e6, DeltaBudget: 0.5, DefaultEpsilon: 1,
	}, query.Limits{Threads: threads, MemoryLimit: memLimit, Timeout: time.Hour})
	return eng, led, err
}
