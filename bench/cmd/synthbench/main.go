// Command synthbench runs Velo's synthetic-data methods (MST, AIM) side by side with
// SmartNoise Synth's MST and AIM (issue 16) on the same bookings, at the same epsilon and
// delta: the time of each run, its peak RSS (/usr/bin/time) and the average total-variation
// distance over all 2-way marginals of the synthetic rows against the real rows, beside an
// independence baseline. The TVD against the real rows is a benchmark-only, non-private
// evaluation on synthetic source data.
//
//	bash bench/peers/setup.sh snsynth      # once: SmartNoise Synth's virtual environment
//	go run ./bench/cmd/synthbench --persons 20000
//
// Each system runs as a child process of its own under /usr/bin/time: Velo as
// `synthbench child` (the engine in-process over the ingested dataset, a fresh ledger),
// SmartNoise as bench/peers/run_synth.py in its virtual environment, reading the source
// table this command exported (the same rows, attributes and bins Velo's engine reads).
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/bench"
	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// defaultColumns are the attributes compared: the planted dependencies priority ↔ wait and
// region ↔ within target among them.
const defaultColumns = "region,priority,within_target,first_access,wait_days,service_kind"

// ChildResult is what a child prints as its last line of JSON (run_synth.py prints the same).
type ChildResult struct {
	System string `json:"system"`
	Method string `json:"method"`
	Rows   int    `json:"rows"`
	// FitSeconds is the synthesis itself (measuring, fitting, sampling, writing), timed by
	// the child; the process's wall time adds start-up and imports.
	FitSeconds float64 `json:"fit_seconds"`
	Version    string  `json:"version,omitempty"`
	Error      string  `json:"error,omitempty"`
}

type result struct {
	ChildResult
	name       string
	wall       time.Duration
	peakRSSMiB float64
	out        string
	tvd        tvdSummary
	// tvdNull is the same comparison with NULL a category of every attribute (every row
	// counted in every pair), as Velo's person_rows and SmartNoise both synthesize it.
	tvdNull tvdSummary
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(childMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "agediag" {
		os.Exit(ageDiagMain(os.Args[2:]))
	}
	home, _ := os.UserHomeDir()
	dir := flag.String("dir", filepath.Join(home, ".cache", "velo-bench"), "work directory: datasets are cached here")
	persons := flag.Int("persons", 20000, "synthetic persons (velo synth, CUP CSV ingested)")
	eps := flag.Float64("epsilon", 1, "epsilon of each synthesis")
	delta := flag.Float64("delta", 1e-6, "delta of each synthesis")
	bins := flag.Int("bins", query.DefaultBins, "bins of wait_days (equal width over the catalog bounds, as Velo bins it)")
	table := flag.String("table", "booking", "the source table")
	join := flag.String("join", "", "tables of one row per person joined to --table on pid (person); their columns are named table.column. With a table other than booking or a join, the dataset is the full extract (every format)")
	columns := flag.String("columns", defaultColumns, "attributes of the table (and table.column of the joined tables)")
	systems := flag.String("systems", "velo-mst,velo-aim,velo-mst-pg,velo-aim-pg,snsynth-mst,snsynth-aim,snsynth-mst-1pp,snsynth-aim-1pp", "systems to run (the baselines always run); velo-*-pg: Velo with the per_group bounding (C = R = 1 in each marginal)")
	venv := flag.String("venv", filepath.Join(home, ".cache", "velo-bench", "venv", "snsynth"), "SmartNoise Synth's virtual environment (bench/peers/setup.sh snsynth)")
	timeout := flag.Duration("timeout", 30*time.Minute, "time limit of one run")
	sampler := flag.String("snsynth-sampler", "round", "SmartNoise's row generator (Private-PGM's synthetic_data method): round, its default, or sample (i.i.d.)")
	keep := flag.Bool("keep", false, "keep the work directory (the source and every synthetic table, as Parquet)")
	flag.Parse()
	cfg := config{dir: *dir, persons: *persons, eps: *eps, delta: *delta, bins: *bins, table: *table, columns: strings.Split(*columns, ","), systems: strings.Split(*systems, ","), venv: *venv, timeout: *timeout, keep: *keep, sampler: *sampler}
	if *join != "" {
		cfg.join = strings.Split(*join, ",")
	}
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "synthbench:", err)
		os.Exit(1)
	}
}

type config struct {
	dir          string
	persons      int
	eps, delta   float64
	bins         int
	table        string
	join         []string
	columns      []string
	systems      []string
	venv         string
	timeout      time.Duration
	keep         bool
	sampler      string
	work, data   string
	sourceRows   int
	personsShown int
}

func run(ctx context.Context, cfg config) error {
	data, err := bench.EnsureDataset(ctx, cfg.dir, cfg.persons, cfg.table != "booking" || len(cfg.join) > 0)
	if err != nil {
		return err
	}
	cfg.data = data
	work, err := os.MkdirTemp("", "velo-synthbench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintf(os.Stderr, "work directory (kept): %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	cfg.work = work
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := exportSource(ctx, db, &cfg); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script, err := scriptPath()
	if err != nil {
		return err
	}
	var results []*result
	runs := map[string]int{}
	for _, s := range cfg.systems {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var argv []string
		// A system named again writes <name>-2.parquet, …: each run's rows stay readable.
		runs[s]++
		file := s
		if runs[s] > 1 {
			file = fmt.Sprintf("%s-%d", s, runs[s])
		}
		out := filepath.Join(work, file+".parquet")
		switch s {
		case "velo-mst", "velo-aim", "velo-mst-pg", "velo-aim-pg", "velo-mst-k2", "velo-aim-k2", "velo-mst-k4", "velo-aim-k4":
			// -pg: the per_group bounding; -kN: person_rows with N rows per person.
			method, perGroup := strings.CutSuffix(strings.TrimPrefix(s, "velo-"), "-pg")
			method, k, ok := strings.Cut(method, "-k")
			if !ok {
				k = "1"
			}
			argv = []string{self, "child", "--data", data, "--table", cfg.table, "--join", strings.Join(cfg.join, ","), "--method", method, "--columns", strings.Join(cfg.columns, ","),
				"--rows", strconv.Itoa(cfg.sourceRows), "--epsilon", fmt.Sprint(cfg.eps), "--delta", fmt.Sprint(cfg.delta), "--bins", strconv.Itoa(cfg.bins), "--out", out,
				"--per-group=" + strconv.FormatBool(perGroup), "--rows-per-person", k}
		case "snsynth-mst", "snsynth-aim", "snsynth-mst-1pp", "snsynth-aim-1pp":
			method, in := strings.TrimPrefix(s, "snsynth-"), filepath.Join(work, "source.parquet")
			if m, ok := strings.CutSuffix(method, "-1pp"); ok {
				method, in = m, filepath.Join(work, "source-1pp.parquet")
			}
			argv = []string{filepath.Join(cfg.venv, "bin", "python"), script, "--method", method, "--in", in, "--out", out,
				"--rows", strconv.Itoa(cfg.sourceRows), "--epsilon", fmt.Sprint(cfg.eps), "--delta", fmt.Sprint(cfg.delta), "--sampler", cfg.sampler}
		default:
			return fmt.Errorf("unknown system %q", s)
		}
		fmt.Fprintf(os.Stderr, "running %s...\n", s)
		r := runChild(ctx, cfg.timeout, argv)
		r.name, r.out = s, out
		if r.Error == "" {
			if r.tvd, err = twoWayTVD(ctx, db, cfg.columns, out, false); err == nil {
				r.tvdNull, err = twoWayTVD(ctx, db, cfg.columns, out, true)
			}
			if err != nil {
				r.Error = "evaluation: " + err.Error()
			}
		}
		fmt.Fprintf(os.Stderr, "  %s: %.1f s, %.0f MiB, mean 2-way TVD %.4f (NULL a level: %.4f) %s\n", s, r.wall.Seconds(), r.peakRSSMiB, r.tvd.mean, r.tvdNull.mean, r.Error)
		results = append(results, r)
	}
	// Baselines, computed here: each column shuffled on its own (the product of the real
	// 1-way marginals, as many rows), and the real rows with one booking per person.
	for _, b := range []struct{ name, sql string }{
		{"independence", independenceSQL(cfg.columns)},
		{"one-row-per-person", "SELECT * FROM source_1pp"},
		{"independence-1pp", strings.ReplaceAll(independenceSQL(cfg.columns), "FROM source)", "FROM source_1pp)")},
	} {
		out := filepath.Join(work, b.name+".parquet")
		if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet)", b.sql, out)); err != nil {
			return fmt.Errorf("%s baseline: %w", b.name, err)
		}
		r := &result{name: b.name, out: out}
		if r.tvd, err = twoWayTVD(ctx, db, cfg.columns, out, false); err == nil {
			r.tvdNull, err = twoWayTVD(ctx, db, cfg.columns, out, true)
		}
		if err != nil {
			return fmt.Errorf("%s baseline: %w", b.name, err)
		}
		results = append(results, r)
	}
	// And what Velo's default bounding measures, without noise: in each 2-way marginal,
	// each person's one cell chosen at random among the distinct cells they have rows in.
	r := &result{name: "one-cell-per-person"}
	if r.tvd, err = twoWayTVD(ctx, db, cfg.columns, "", false); err != nil {
		return fmt.Errorf("one-cell-per-person baseline: %w", err)
	}
	results = append(results, r)
	report(os.Stdout, cfg, results)
	return plantedReport(ctx, os.Stdout, db, cfg, results)
}

// exportSource writes the source table as the peers read it: one row per row of the table
// (joined on pid to each of cfg.join, whose columns are named table.column), the attributes
// as text (NULL kept), numbers as the midpoint of their bin exactly as Velo's synthetic rows
// carry them; and source-1pp.parquet, one row per person chosen at random.
func exportSource(ctx context.Context, db *sql.DB, cfg *config) error {
	cat, err := dataset.ReadCatalog(cfg.data)
	if err != nil {
		return err
	}
	tableOf := func(name string) (*dataset.CatalogTable, error) {
		i := slices.IndexFunc(cat.Tables, func(t dataset.CatalogTable) bool { return t.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("the dataset has no %s table", name)
		}
		return &cat.Tables[i], nil
	}
	t, err := tableOf(cfg.table)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(t.Columns, func(c dataset.CatalogColumn) bool { return c.NotNull }) && cfg.table == "booking" {
		fmt.Fprintf(os.Stderr, "note: %s's catalog predates the not_null property: Velo gives every attribute a NULL level (use --dir elsewhere to rebuild)\n", cfg.data)
	}
	from := fmt.Sprintf("read_parquet('%s') AS t", dataset.TableGlob(cfg.data, cfg.table))
	for i, j := range cfg.join {
		from += fmt.Sprintf(" JOIN read_parquet('%s') AS j%d ON t.pid = j%d.pid", dataset.TableGlob(cfg.data, j), i, i)
	}
	var exprs []string
	for _, name := range cfg.columns {
		tab, alias, column := t, "t", name
		if tn, c, ok := strings.Cut(name, "."); ok {
			i := slices.Index(cfg.join, tn)
			if i < 0 {
				return fmt.Errorf("column %s: %s is not joined (--join)", name, tn)
			}
			if tab, err = tableOf(tn); err != nil {
				return err
			}
			alias, column = fmt.Sprintf("j%d", i), c
		}
		i := slices.IndexFunc(tab.Columns, func(c dataset.CatalogColumn) bool { return c.Name == column })
		if i < 0 {
			return fmt.Errorf("%s has no column %s", tab.Name, column)
		}
		c := tab.Columns[i]
		col := alias + `."` + column + `"`
		if c.Bounds != nil && c.Domain == "" {
			exprs = append(exprs, binSQL(col, c.Bounds.Lo, c.Bounds.Hi, cfg.bins)+` AS "`+name+`"`)
			continue
		}
		exprs = append(exprs, "CAST("+col+` AS VARCHAR) AS "`+name+`"`)
	}
	stmts := []string{
		fmt.Sprintf("CREATE TABLE source AS SELECT t.pid, %s FROM %s", strings.Join(exprs, ", "), from),
		"CREATE TABLE source_1pp AS SELECT * EXCLUDE (pid) FROM source QUALIFY row_number() OVER (PARTITION BY pid ORDER BY random()) = 1",
		fmt.Sprintf("COPY (SELECT * EXCLUDE (pid) FROM source) TO '%s' (FORMAT parquet)", filepath.Join(cfg.work, "source.parquet")),
		fmt.Sprintf("COPY source_1pp TO '%s' (FORMAT parquet)", filepath.Join(cfg.work, "source-1pp.parquet")),
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*), count(DISTINCT pid) FROM source").Scan(&cfg.sourceRows, &cfg.personsShown); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "source: %d rows of %s of %d persons, columns %s\n", cfg.sourceRows, joinedName(cfg.table, cfg.join), cfg.personsShown, strings.Join(cfg.columns, ", "))
	return nil
}

// joinedName is the source as the report names it: "diagnosis JOIN person".
func joinedName(table string, join []string) string {
	for _, j := range join {
		table += " JOIN " + j
	}
	return table
}

// binSQL maps a numeric column to the midpoint of its bin, as text: the edges and midpoints
// computed as query.resolveAttribute and MarginalAttribute.Mid compute them (values below
// the bounds in the first bin, above in the last), so the text matches Velo's DOUBLE
// midpoints cast to text.
func binSQL(col string, lo, hi float64, bins int) string {
	edges := make([]float64, bins+1)
	for j := range edges {
		edges[j] = lo + (hi-lo)*float64(j)/float64(bins)
	}
	edges[bins] = hi
	mid := func(j int) string {
		return "CAST(CAST(" + strconv.FormatFloat((edges[j]+edges[j+1])/2, 'g', -1, 64) + " AS DOUBLE) AS VARCHAR)"
	}
	var b strings.Builder
	b.WriteString("CASE")
	for j := 1; j < bins; j++ {
		fmt.Fprintf(&b, " WHEN %s < %s THEN %s", col, strconv.FormatFloat(edges[j], 'g', -1, 64), mid(j-1))
	}
	fmt.Fprintf(&b, " WHEN %s >= %s THEN %s END", col, strconv.FormatFloat(edges[bins-1], 'g', -1, 64), mid(bins-1))
	return b.String()
}

// independenceSQL shuffles each column on its own: a sample of the product of the real
// 1-way marginals, as many rows as the source.
func independenceSQL(cols []string) string {
	var sel, from []string
	for i, c := range cols {
		sel = append(sel, fmt.Sprintf(`t%d."%s"`, i, c))
		sub := fmt.Sprintf(`(SELECT "%s", row_number() OVER (ORDER BY random()) AS rn FROM source) t%d`, c, i)
		if i > 0 {
			sub += fmt.Sprintf(" ON t%d.rn = t0.rn", i)
		}
		from = append(from, sub)
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM " + strings.Join(from, " JOIN ")
}

type pairTVD struct {
	a, b string
	tvd  float64
}

type tvdSummary struct {
	mean, max float64
	pairs     []pairTVD
}

// twoWayTVD compares every 2-way marginal of the rows in file (with file "": one distinct
// cell per person, chosen at random, in each marginal) with the source's: over the
// attributes' public domains, each side normalised to sum 1. Without nulls a row NULL in
// either attribute is left out of that pair on both sides (as per_group marginals leave it
// out); with nulls, NULL is one more category of every attribute and every row counts.
func twoWayTVD(ctx context.Context, db *sql.DB, cols []string, file string, nulls bool) (tvdSummary, error) {
	var s tvdSummary
	for i := range cols {
		for j := i + 1; j < len(cols); j++ {
			a, b := cols[i], cols[j]
			where, eq := fmt.Sprintf(`WHERE "%[1]s" IS NOT NULL AND "%[2]s" IS NOT NULL`, a, b), "="
			if nulls {
				where, eq = "", "IS NOT DISTINCT FROM"
			}
			q := fmt.Sprintf(`WITH r AS (SELECT "%[1]s" AS a, "%[2]s" AS b, count(*) / sum(count(*)) OVER () AS p FROM source %[4]s GROUP BY ALL),
s AS (SELECT CAST("%[1]s" AS VARCHAR) AS a, CAST("%[2]s" AS VARCHAR) AS b, count(*) / sum(count(*)) OVER () AS p FROM read_parquet('%[3]s') %[4]s GROUP BY ALL)
SELECT sum(abs(coalesce(r.p, 0) - coalesce(s.p, 0))) / 2, count(*) FILTER (WHERE r.p IS NULL) FROM r FULL OUTER JOIN s ON r.a %[5]s s.a AND r.b %[5]s s.b`, a, b, file, where, eq)
			if file == "" {
				q = strings.Replace(q, fmt.Sprintf("FROM read_parquet('%s')", file), fmt.Sprintf(`FROM (SELECT * FROM (SELECT DISTINCT pid, "%[1]s", "%[2]s" FROM source WHERE "%[1]s" IS NOT NULL AND "%[2]s" IS NOT NULL) QUALIFY row_number() OVER (PARTITION BY pid ORDER BY random()) = 1)`, a, b), 1)
			}
			var tvd float64
			var foreign int
			if err := db.QueryRowContext(ctx, q).Scan(&tvd, &foreign); err != nil {
				return s, fmt.Errorf("TVD of %s × %s: %w", a, b, err)
			}
			if foreign > 0 {
				// A cell the source never has: real for a synthesizer (a domain value nobody
				// has), but also the sign of a value spelt differently; say so.
				fmt.Fprintf(os.Stderr, "  note: %s has %d (%s, %s) cells absent from the source\n", filepath.Base(file), foreign, a, b)
			}
			s.pairs = append(s.pairs, pairTVD{a, b, tvd})
			s.mean += tvd
			s.max = max(s.max, tvd)
		}
	}
	s.mean /= float64(len(s.pairs))
	return s, nil
}

// scriptPath finds bench/peers/run_synth.py from the repository's root or beside this command.
func scriptPath() (string, error) {
	for _, c := range []string{"bench/peers/run_synth.py", "../peers/run_synth.py", "../../peers/run_synth.py"} {
		if abs, err := filepath.Abs(c); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs, nil
			}
		}
	}
	return "", errors.New("bench/peers/run_synth.py not found: run synthbench from the repository's root")
}

// runChild runs one child under /usr/bin/time (its peak RSS; Go's own rusage of a child it
// started would carry the parent's peak, see peerbench) and reads its JSON result.
func runChild(ctx context.Context, timeout time.Duration, argv []string) *result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		argv = append([]string{"/usr/bin/time", "-f", "PEAKRSS_KIB %M"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := &result{wall: time.Since(start)}
	for l := range strings.SplitSeq(stderr.String(), "\n") {
		if kib, ok := strings.CutPrefix(strings.TrimSpace(l), "PEAKRSS_KIB "); ok {
			if v, perr := strconv.ParseFloat(kib, 64); perr == nil {
				r.peakRSSMiB = v / 1024
			}
		}
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
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
	if r.Error == "" && (err != nil || last == "") {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = msg[len(msg)-600:]
		}
		if ctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %s", timeout)
		}
		r.Error = fmt.Sprintf("failed (%v): %s", err, msg)
	}
	return r
}

// childMain runs Velo's synthesizer over the dataset through the engine, with a fresh
// ledger, and writes the synthetic rows as Parquet (what `velo synthesize` does).
func childMain(args []string) int {
	fl := flag.NewFlagSet("child", flag.ExitOnError)
	data := fl.String("data", "", "dataset directory")
	table := fl.String("table", "booking", "the source table")
	join := fl.String("join", "", "tables joined to it on pid")
	method := fl.String("method", "aim", "aim or mst")
	columns := fl.String("columns", defaultColumns, "attributes")
	rows := fl.Int("rows", 0, "rows to sample")
	eps := fl.Float64("epsilon", 1, "epsilon")
	delta := fl.Float64("delta", 1e-6, "delta")
	bins := fl.Int("bins", query.DefaultBins, "bins of numeric columns")
	out := fl.String("out", "", "Parquet file to write")
	perGroup := fl.Bool("per-group", false, "the per_group bounding (C = R = 1 in each marginal) instead of person_rows")
	perPerson := fl.Int("rows-per-person", 1, "person_rows's k: rows of each person the synthesis reads")
	_ = fl.Parse(args)
	res := ChildResult{System: "velo", Method: *method}
	var joins []string
	if *join != "" {
		joins = strings.Split(*join, ",")
	}
	if err := veloChild(context.Background(), *data, *table, joins, *method, strings.Split(*columns, ","), *rows, *eps, *delta, *bins, *perGroup, *perPerson, *out, &res); err != nil {
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

func veloChild(ctx context.Context, data, table string, joins []string, method string, cols []string, rows int, eps, delta float64, bins int, perGroup bool, perPerson int, out string, res *ChildResult) error {
	allow := map[string][]string{table: nil}
	for _, j := range joins {
		allow[j] = nil
	}
	eng, _, closeAll, err := bench.OpenEngine(ctx, data, "", ledger.Project{
		ID: "synth", Purpose: "synthetic data benchmark", LegalBasis: "none: synthetic data",
		Allow: allow, EpsilonBudget: 100, DeltaBudget: 1e-3, DefaultEpsilon: 1, DefaultDelta: 1e-6,
	}, query.Limits{Timeout: time.Hour})
	if err != nil {
		return err
	}
	defer closeAll()
	start := time.Now()
	req := query.SynthesizeRequest{Project: "synth", Actor: "user:bench", Table: table, Join: joins, Columns: cols, Method: method, Rows: rows, Bins: bins, Epsilon: &eps, Delta: &delta}
	req.MaxRowsPerPerson = perPerson
	if perGroup {
		req.MaxGroupsContributed, req.MaxRowsPerGroup, req.MaxRowsPerPerson = 1, 1, 0
	}
	syn, err := eng.Synthesize(ctx, req)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := syn.WriteParquet(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	res.FitSeconds = time.Since(start).Seconds()
	res.Rows = syn.Rows
	// The release record beside the rows (its steps and utility report), for --keep.
	b, err := json.MarshalIndent(syn, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(out, ".parquet")+".release.json", b, 0o644)
}
