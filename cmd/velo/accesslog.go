package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/velo-fse/velo/ledger"
)

const accessLogUsage = `Usage: velo access-log export --state DIR | --ledger postgres://... --format csv|ndjson [flags]

  export  write the access log (every request to the API and the DPO page: who, when, from
          where, what, on which project, the outcome) as CSV or NDJSON for the DPO

It reads without the lock, so it works while a server runs (records reach the store within
moments of their request).`

func runAccessLog(ctx context.Context, m *Main, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(m.Stderr, accessLogUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return usageError{errors.New("access-log: want the subcommand export")}
	}
	fs := m.newFlagSet("access-log export", `access-log export --state DIR | --ledger postgres://... --format csv|ndjson [--since DATE] [--until DATE] [--user NAME] [--project ID]

Writes the access log's records, oldest first, to standard output.`)
	state := fs.String("state", "", "state directory of a file ledger (this or --ledger is required)")
	pgURL := fs.String("ledger", "", "the ledger in PostgreSQL: a postgres:// URL")
	format := fs.String("format", "", "csv or ndjson (required)")
	since := fs.String("since", "", "from this date (2026-03-01, UTC) or RFC 3339 time, included")
	until := fs.String("until", "", "before this date or time")
	user := fs.String("user", "", "only this user's requests")
	project := fs.String("project", "", "only requests on this project")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := required(fs, "format"); err != nil {
		return err
	}
	if *format != "csv" && *format != "ndjson" {
		return usageError{fmt.Errorf("access-log export: --format %q: want csv or ndjson", *format)}
	}
	if _, err := ledgerSource(fs, *state, *pgURL); err != nil {
		return err
	}
	f := ledger.AccessFilter{User: *user, Project: *project}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if t.v == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			if tm, err = time.Parse("2006-01-02", t.v); err != nil {
				return usageError{fmt.Errorf("access-log export: --%s %q: want a date (2026-03-01) or an RFC 3339 time", t.name, t.v)}
			}
		}
		*t.dst = tm
	}
	var store ledger.AccessStore
	if *pgURL != "" {
		pg, closeFn, err := ledger.OpenPostgresAccessLog(ctx, *pgURL)
		if err != nil {
			return err
		}
		defer closeFn()
		store = pg
	} else {
		fl, err := ledger.OpenFileAccessLog(*state)
		if err != nil {
			return err
		}
		store = fl
	}
	return ledger.ExportAccess(ctx, store, f, *format, m.Stdout)
}

// openAccessLog opens the access log in the ledger's store: the PostgreSQL ledger's
// database, or STATE/access.
func openAccessLog(ctx context.Context, led ledger.Store, state string) (ledger.AccessStore, error) {
	if pg, ok := led.(*ledger.PG); ok {
		return pg.AccessLog(ctx)
	}
	return ledger.OpenFileAccessLog(state)
}
