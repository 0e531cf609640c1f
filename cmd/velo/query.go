package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
)

func runQuery(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("query", `query --data DATA --state DIR --project ID [--epsilon E] [--delta D] [--dry-run | --dummy]
       [--bound NAME=LO,HI]... [--max-groups-contributed K] [--clamp-to-range] [--format table|json|csv] "SQL"

Runs one differentially private query in-process, as the local operator (recorded in the
ledger as operator:<os user>). The query is charged in the ledger before any data is read;
the same query again returns the stored release at no cost. --dry-run validates and prices
the query against the catalog without charging and without touching the data. --dummy runs
it on the dataset's dummy twin, made from the catalog alone: exact answers about made-up
people, free, with the real run's price beside (recorded in the ledger as a dummy run).

Options may also be given in SQL, as in ZetaSQL/BigQuery:
  SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.5, delta = 1e-6) region, COUNT(*) ...
  AVG(wait_days, contribution_bounds_per_group => (0, 120))
and clamp_to_range = true in OPTIONS is --clamp-to-range.`)
	data := fs.String("data", "", "dataset directory written by velo ingest")
	state := fs.String("state", "", "state directory holding the ledger")
	project := fs.String("project", "", "project the query is charged to")
	eps := fs.String("epsilon", "", "epsilon for this query (default: the project's)")
	delta := fs.String("delta", "", "delta for this query (default: the project's)")
	dry := fs.Bool("dry-run", false, "validate and price only: no charge, no data read")
	dummy := fs.Bool("dummy", false, "run on the dummy twin (made from the catalog alone): exact answers about made-up people, no charge")
	format := fs.String("format", "table", "output: table, json (the release) or csv")
	maxGroups := fs.Int("max-groups-contributed", 0, "groups one person may contribute to (default: the tables' policy)")
	clamp := fs.Bool("clamp-to-range", false, "clamp released values and interval ends into the range each aggregate can take (counts >= 0, shares in [0, 1]); flagged in the release")
	var bounds stringList
	fs.Var(&bounds, "bound", "clamping bounds of an output aggregate: NAME=LO,HI (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data", "state", "project"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New(`query: give the SQL as one argument (quote it)`)}
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return usageError{fmt.Errorf("query: --format %q: want table, json or csv", *format)}
	}
	req := query.Request{SQL: fs.Arg(0), Project: *project, Actor: "operator:" + actorName(""), DryRun: *dry, MaxGroupsContributed: *maxGroups, ClampToRange: *clamp, Dummy: *dummy}
	if *dry && *dummy {
		return usageError{errors.New("query: --dry-run and --dummy exclude each other (a dummy run shows the price)")}
	}
	for _, p := range []struct {
		s   string
		dst **float64
		n   string
	}{{*eps, &req.Epsilon, "epsilon"}, {*delta, &req.Delta, "delta"}} {
		if p.s == "" {
			continue
		}
		f, err := strconv.ParseFloat(p.s, 64)
		if err != nil {
			return usageError{fmt.Errorf("query: --%s %q is not a number", p.n, p.s)}
		}
		*p.dst = &f
	}
	for _, b := range bounds {
		name, rng, ok := strings.Cut(b, "=")
		lo, hi, ok2 := strings.Cut(rng, ",")
		l, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		h, err2 := strconv.ParseFloat(strings.TrimSpace(hi), 64)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return usageError{fmt.Errorf("query: --bound %q: want NAME=LO,HI", b)}
		}
		if req.Bounds == nil {
			req.Bounds = map[string][2]float64{}
		}
		req.Bounds[strings.TrimSpace(name)] = [2]float64{l, h}
	}
	led, err := ledger.Open(*state, ledger.Options{Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return lockedHint(err, apiEquivalent{path: "/v1/queries", tokenVar: "VELO_TOKEN", body: notebooksapi.QueryRequest{
			SQL: req.SQL, Project: req.Project, Epsilon: req.Epsilon, Delta: req.Delta, Bounds: req.Bounds,
			MaxGroupsContributed: req.MaxGroupsContributed, DryRun: req.DryRun, Target: target(req.Dummy),
		}})
	}
	defer led.Close()
	eng, err := query.Open(ctx, query.Config{DataDir: *data, Ledger: led})
	if err != nil {
		return err
	}
	defer eng.Close()
	rel, err := eng.Query(ctx, req)
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			return fmt.Errorf("%s: %s%s", qe.Code, qe.Error(), caret(req.SQL, qe.Pos))
		}
		return budgetHint(err, *state)
	}
	switch *format {
	case "json":
		return writeJSON(m, rel)
	case "csv":
		return rel.WriteCSV(m.Stdout)
	}
	return rel.WriteTable(m.Stdout)
}

// target is the API's target of a request.
func target(dummy bool) string {
	if dummy {
		return "dummy"
	}
	return ""
}

// caret shows where in the SQL a refusal points: the line holding byte offset pos and a
// caret under it (nothing when pos is not in the text).
func caret(sql string, pos int) string {
	if pos < 0 || pos >= len(sql) {
		return ""
	}
	start := strings.LastIndexByte(sql[:pos], '\n') + 1
	end := strings.IndexByte(sql[pos:], '\n')
	if end < 0 {
		end = len(sql)
	} else {
		end += pos
	}
	line, col := sql[start:end], utf8.RuneCountInString(sql[start:pos])
	// Long lines are cut to 100 runes around the position.
	if runes := []rune(line); len(runes) > 100 {
		from := max(0, min(col-50, len(runes)-100))
		line, col = string(runes[from:from+100]), col-from
	}
	line = strings.ReplaceAll(line, "\t", " ")
	return "\n    " + line + "\n    " + strings.Repeat(" ", col) + "^"
}
