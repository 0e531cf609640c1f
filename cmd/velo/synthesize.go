package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
)

// openDataEngine opens the ledger and the engine for the marginals and synthesize commands,
// with the API equivalent as the hint when a server holds the ledger.
func openDataEngine(ctx context.Context, m *Main, data, state string, api apiEquivalent) (*query.Engine, func(), error) {
	led, err := ledger.Open(state, ledger.Options{Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, nil, lockedHint(err, api)
	}
	eng, err := query.Open(ctx, query.Config{DataDir: data, Ledger: led, ReleaseDir: filepath.Join(state, "releases")})
	if err != nil {
		led.Close()
		return nil, nil, err
	}
	return eng, func() { eng.Close(); led.Close() }, nil
}

func floatFlags(cmd string, pairs ...any) error {
	for i := 0; i+2 < len(pairs); i += 3 {
		s, dst, name := pairs[i].(string), pairs[i+1].(**float64), pairs[i+2].(string)
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return usageError{fmt.Errorf("%s: --%s %q is not a number", cmd, name, s)}
		}
		*dst = &f
	}
	return nil
}

func dataError(err error, state string) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		return fmt.Errorf("%s: %s", qe.Code, qe.Error())
	}
	return budgetHint(err, state)
}

func runMarginals(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("marginals", `marginals --data DATA --state DIR --project ID --table T [--join person] --set A[,B[,C]]... [--epsilon E] [--delta D]
       [--bins N] [--max-groups-contributed K] [--max-rows-per-group R] [--dry-run] [--format json|csv]

Releases differentially private contingency tables (1-, 2- or 3-way marginals) of one
table, as the local operator, for one ledger charge made before any data is read. Each
--set names 1 to 3 columns with a public domain: a catalog domain, a date of the extract
period (counted by month), or a numeric column with catalog bounds (--bins equal-width
bins). Every cell of the domains is released, with Gaussian noise and a 95% interval;
delta must be > 0. The same request again returns the recorded release at no cost.
--dry-run validates and prices the request and gives each table's noise (sigma) and 95%
interval half-width, without charging and without reading data. Example:
  velo marginals --data data --state state --project wl --table booking \
    --set region --set priority,wait_days --epsilon 1 --delta 1e-6 --format csv
With --join person, each row of the table is read with its person's row, whose columns
are named person.COLUMN:
  velo marginals ... --table diagnosis --join person --set chapter,person.birth_year`)
	data := fs.String("data", "", "dataset directory written by velo ingest")
	state := fs.String("state", "", "state directory holding the ledger")
	project := fs.String("project", "", "project the release is charged to")
	table := fs.String("table", "", "table of the catalog")
	join := fs.String("join", "", "comma-separated tables of one row per person (person) joined to --table on pid; their columns are named table.column")
	eps := fs.String("epsilon", "", "epsilon for the whole release (default: the project's)")
	delta := fs.String("delta", "", "delta for the whole release (default: the project's; must be > 0)")
	bins := fs.Int("bins", 0, fmt.Sprintf("bins of numeric columns (default %d)", query.DefaultBins))
	maxGroups := fs.Int("max-groups-contributed", 0, "cells one person may contribute to in each table (default: the table's policy)")
	maxRows := fs.Int("max-rows-per-group", 0, "rows of one person counted in a cell (default: the table's policy)")
	format := fs.String("format", "json", "output: json (the release) or csv (one row per cell)")
	dry := fs.Bool("dry-run", false, "validate and price only, with each table's noise: no charge, no data read")
	var sets stringList
	fs.Var(&sets, "set", "an attribute set: 1 to 3 comma-separated columns (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data", "state", "project", "table"); err != nil {
		return err
	}
	if len(sets) == 0 || fs.NArg() != 0 {
		return usageError{errors.New("marginals: give at least one --set and no other arguments")}
	}
	if *format != "json" && *format != "csv" {
		return usageError{fmt.Errorf("marginals: --format %q: want json or csv", *format)}
	}
	req := query.MarginalsRequest{Project: *project, Actor: "operator:" + actorName(""), Table: *table, Join: commaList(*join), Bins: *bins, MaxGroupsContributed: *maxGroups, MaxRowsPerGroup: *maxRows, DryRun: *dry}
	for _, s := range sets {
		req.Sets = append(req.Sets, commaList(s))
	}
	if err := floatFlags("marginals", *eps, &req.Epsilon, "epsilon", *delta, &req.Delta, "delta"); err != nil {
		return err
	}
	eng, done, err := openDataEngine(ctx, m, *data, *state, apiEquivalent{path: "/v1/marginals", tokenVar: "VELO_TOKEN", body: notebooksapi.MarginalsRequest{
		Project: req.Project, Table: req.Table, Join: req.Join, Marginals: req.Sets, Epsilon: req.Epsilon, Delta: req.Delta, Bins: req.Bins, MaxGroupsContributed: req.MaxGroupsContributed, MaxRowsPerGroup: req.MaxRowsPerGroup, DryRun: req.DryRun,
	}})
	if err != nil {
		return err
	}
	defer done()
	rel, err := eng.Marginals(ctx, req)
	if err != nil {
		return dataError(err, *state)
	}
	if *format == "csv" {
		return rel.WriteCSV(m.Stdout)
	}
	return writeJSON(m, rel)
}

func runSynthesize(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("synthesize", `synthesize --data DATA --state DIR --project ID --table T --out FILE.parquet [--join person] [--columns A,B,...]
       [--method aim|mst] [--rows N] [--epsilon E] [--delta D] [--bins N] [--max-groups-contributed K]
       [--max-rows-per-group R] [--report FILE.json]

Writes differentially private synthetic microdata of one table, as the local operator, for
one ledger charge made before any data is read: AIM (default) or MST fitted to marginals
measured through the engine, then --rows rows sampled (default: the model's noisy total).
The Parquet file holds the chosen columns only (default: every column with a public
domain; never pid or another identifier): codes within their domains, dates as the month's
first day, binned numbers as the bin's midpoint. The release and its utility report (TVD
between the rows and every noisy measurement) are in the file's metadata, in --report, and
summarised on stderr. With --join person each row carries its person's attributes
(columns person.COLUMN), e.g. --table diagnosis --join person
--columns chapter,person.birth_year,person.sex. The rows are kept in STATE/releases: the
same request again writes the same release, rows and all, at no cost.`)
	data := fs.String("data", "", "dataset directory written by velo ingest")
	state := fs.String("state", "", "state directory holding the ledger")
	project := fs.String("project", "", "project the release is charged to")
	table := fs.String("table", "", "table of the catalog")
	join := fs.String("join", "", "comma-separated tables of one row per person (person) joined to --table on pid: each row gets its person's attributes, named table.column")
	columns := fs.String("columns", "", "comma-separated columns (default: every approved column with a public domain, the joined tables' too)")
	method := fs.String("method", "aim", "aim or mst")
	rows := fs.Int("rows", 0, "rows to sample (default: the model's noisy estimate of the table's size)")
	eps := fs.String("epsilon", "", "epsilon for the whole synthesis (default: the project's)")
	delta := fs.String("delta", "", "delta for the whole synthesis (default: the project's; must be > 0)")
	bins := fs.Int("bins", 0, fmt.Sprintf("bins of numeric columns (default %d)", query.DefaultBins))
	maxPerson := fs.Int("max-rows-per-person", 0, "rows of each person the synthesis reads, the same in every marginal (default 1)")
	maxGroups := fs.Int("max-groups-contributed", 0, "instead: cells one person may contribute to in each marginal on its own (the per_group bounding)")
	maxRows := fs.Int("max-rows-per-group", 0, "instead: rows of one person counted in a cell of each marginal on its own (the per_group bounding)")
	out := fs.String("out", "", "the Parquet file to write")
	report := fs.String("report", "", "also write the release and utility report as JSON here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data", "state", "project", "table", "out"); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("synthesize: unexpected arguments")}
	}
	req := query.SynthesizeRequest{Project: *project, Actor: "operator:" + actorName(""), Table: *table, Join: commaList(*join), Method: *method, Rows: *rows, Bins: *bins, MaxRowsPerPerson: *maxPerson, MaxGroupsContributed: *maxGroups, MaxRowsPerGroup: *maxRows}
	req.Columns = commaList(*columns)
	if err := floatFlags("synthesize", *eps, &req.Epsilon, "epsilon", *delta, &req.Delta, "delta"); err != nil {
		return err
	}
	// The output is created before anything is charged: a path that cannot be written
	// costs no budget.
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	eng, done, err := openDataEngine(ctx, m, *data, *state, apiEquivalent{path: "/v1/synthetic", tokenVar: "VELO_TOKEN", body: notebooksapi.SyntheticRequest{
		Project: req.Project, Table: req.Table, Join: req.Join, Columns: req.Columns, Method: req.Method, Rows: req.Rows, Epsilon: req.Epsilon, Delta: req.Delta, Bins: req.Bins, MaxRowsPerPerson: req.MaxRowsPerPerson, MaxGroupsContributed: req.MaxGroupsContributed, MaxRowsPerGroup: req.MaxRowsPerGroup,
	}})
	if err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	defer done()
	syn, err := eng.Synthesize(ctx, req)
	if err != nil {
		f.Close()
		os.Remove(*out)
		return dataError(err, *state)
	}
	if err := syn.WriteParquet(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if *report != "" {
		rf, err := os.Create(*report)
		if err != nil {
			return err
		}
		if err := writeJSON(&Main{Stdout: rf, Stderr: m.Stderr}, syn); err != nil {
			rf.Close()
			return err
		}
		if err := rf.Close(); err != nil {
			return err
		}
	}
	again := ""
	if syn.Cached {
		again = " (the release made for the same request before: not charged again)"
	}
	fmt.Fprintf(m.Stderr, "%s: %d synthetic rows of %s (%s, epsilon %g, delta %g) -> %s; mean TVD %.4f, max %.4f over %d measured marginals%s\n",
		syn.ReleaseID, syn.Rows, syn.Table, syn.Method, syn.Epsilon, syn.Delta, *out, syn.Utility.MeanTVD, syn.Utility.MaxTVD, len(syn.Utility.Marginals), again)
	return nil
}

// commaList splits a comma-separated flag value, trimming each element; "" is nil.
func commaList(v string) []string {
	var out []string
	if v == "" {
		return nil
	}
	for c := range strings.SplitSeq(v, ",") {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}
