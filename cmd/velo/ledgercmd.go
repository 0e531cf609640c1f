package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/velo-fse/velo/ledger"
)

const ledgerUsage = `Usage: velo ledger verify|export --state DIR | --ledger postgres://... [flags]

  verify  check the ledger offline: frames, hash chain, budget sums, signed checkpoints
  export  write every entry as CSV or NDJSON for the DPO, or (--format state) a PostgreSQL
          ledger as a state directory that verify --state checks offline

Both read without the lock, so they work while a server runs. --ledger reads the ledger
kept in PostgreSQL (give its password through PGPASSWORD or a password file).`

func runLedger(ctx context.Context, m *Main, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(m.Stderr, ledgerUsage)
		if len(args) == 0 {
			return usageError{errors.New("ledger: want a subcommand: verify or export")}
		}
		return nil
	}
	switch args[0] {
	case "verify":
		return ledgerVerify(ctx, m, args[1:])
	case "export":
		return ledgerExport(ctx, m, args[1:])
	}
	fmt.Fprintln(m.Stderr, ledgerUsage)
	return usageError{fmt.Errorf("ledger: unknown subcommand %q", args[0])}
}

func ledgerVerify(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("ledger verify", `ledger verify --state DIR | --ledger postgres://... [--checkpoints FILE] [--pubkey FILE]

Recomputes the hash chain of the ledger in DIR, re-sums every project's budget and checks the
signed checkpoints. Give the DPO's own copies with --checkpoints and --pubkey: copies kept
outside DIR are what expose a history rewritten by someone who can write DIR. Exits non-zero
on any anomaly, a torn tail included, naming the entry and the reason. With --ledger it
checks the ledger kept in PostgreSQL the same way, in one consistent snapshot.`)
	state := fs.String("state", "", "state directory holding the ledger (this or --ledger is required)")
	pgURL := fs.String("ledger", "", "the ledger in PostgreSQL: a postgres:// URL")
	cps := fs.String("checkpoints", "", "signed checkpoints to check against (default DIR/checkpoints, or the database's)")
	pub := fs.String("pubkey", "", "checkpoint verifier key (default DIR/checkpoint.pub, or the one recorded in the database)")
	if err := parse(fs, args); err != nil {
		return err
	}
	name, err := ledgerSource(fs, *state, *pgURL)
	if err != nil {
		return err
	}
	vopts := ledger.VerifyOptions{CheckpointsFile: *cps, PublicKeyFile: *pub}
	var rep ledger.VerifyReport
	if *pgURL != "" {
		rep, err = ledger.VerifyPostgres(ctx, *pgURL, vopts)
	} else {
		rep, err = ledger.Verify(*state, vopts)
	}
	if err != nil {
		if rep.Entries > 0 {
			fmt.Fprintf(m.Stdout, "read %d good entries before the anomaly\n", rep.Entries)
		}
		return err
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(rep.Kinds)) {
		kinds = append(kinds, fmt.Sprintf("%d %s", rep.Kinds[k], k))
	}
	fmt.Fprintf(m.Stdout, "ledger %s: ok\n", name)
	fmt.Fprintf(m.Stdout, "entries: %d (%s), %d bytes, head %s\n", rep.Entries, strings.Join(kinds, ", "), rep.Bytes, rep.Head)
	switch {
	case rep.Checkpoints == 0:
		fmt.Fprintf(m.Stdout, "checkpoints: none yet; %d entries unsigned\n", rep.Entries)
	default:
		fmt.Fprintf(m.Stdout, "checkpoints: %d signed, the last covers %d entries (%d after it unsigned)\n", rep.Checkpoints, rep.Signed, uint64(rep.Entries)-rep.Signed)
	}
	if rep.Recoveries > 0 {
		fmt.Fprintf(m.Stdout, "recoveries: %d torn tails were cut (see the recovery entries)\n", rep.Recoveries)
	}
	for _, p := range rep.Projects {
		fmt.Fprintf(m.Stdout, "project %s: epsilon %s of %s spent, delta %s of %s; %d queries\n",
			p.ID, num(p.Spent.Epsilon), num(p.Total.Epsilon), num(p.Spent.Delta), num(p.Total.Delta), p.Queries)
	}
	return nil
}

func ledgerExport(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("ledger export", `ledger export --state DIR | --ledger postgres://... --format csv|ndjson|state [--out DIR]

Writes every entry of the ledger in DIR (or in PostgreSQL) to standard output: CSV (one row
per entry, releases left out but their hashes kept) or NDJSON (one object per entry,
releases included). --format state --out DIR writes a PostgreSQL ledger as a state
directory (the same entries, chain and signed checkpoints, and the verifier key), which
velo ledger verify --state DIR checks offline.`)
	state := fs.String("state", "", "state directory holding the ledger (this or --ledger is required)")
	pgURL := fs.String("ledger", "", "the ledger in PostgreSQL: a postgres:// URL")
	format := fs.String("format", "", "csv, ndjson or state (required)")
	out := fs.String("out", "", "with --format state: the new state directory to write")
	project := fs.String("project", "", "only this project's entries")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "format"); err != nil {
		return err
	}
	if _, err := ledgerSource(fs, *state, *pgURL); err != nil {
		return err
	}
	if *format == "state" {
		if *pgURL == "" || *out == "" || *project != "" {
			return usageError{errors.New("ledger export: --format state takes --ledger and --out (a file ledger is exported by copying its state directory)")}
		}
		n, err := ledger.DumpPostgres(ctx, *pgURL, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "velo: wrote %d entries to %s; velo ledger verify --state %s checks them\n", n, *out, *out)
		return nil
	}
	if *format != "csv" && *format != "ndjson" {
		return usageError{fmt.Errorf("ledger export: --format %q: want csv or ndjson (or state, with --ledger)", *format)}
	}
	var entries []ledger.Entry
	var err error
	if *pgURL != "" {
		entries, _, err = ledger.ReadPostgres(ctx, *pgURL)
	} else {
		entries, _, err = ledger.Read(*state)
	}
	if err != nil {
		return err
	}
	if *project != "" {
		entries = slices.DeleteFunc(entries, func(e ledger.Entry) bool { return e.Project != *project })
	}
	if *format == "csv" {
		return ledger.WriteCSV(m.Stdout, entries)
	}
	return ledger.WriteNDJSON(m.Stdout, entries)
}

// ledgerSource checks that exactly one of --state and --ledger is given and returns how
// messages name the ledger (a URL without its password).
func ledgerSource(fs *flag.FlagSet, state, pgURL string) (string, error) {
	switch {
	case state != "" && pgURL != "":
		return "", usageError{fmt.Errorf("%s: --state and --ledger name two ledgers: give one", fs.Name())}
	case pgURL != "":
		if !ledger.IsPostgres(pgURL) {
			return "", usageError{fmt.Errorf("%s: --ledger: want a postgres:// or postgresql:// URL", fs.Name())}
		}
		return ledger.RedactDSN(pgURL), nil
	case state != "":
		return state, nil
	}
	return "", usageError{fmt.Errorf("%s: --state or --ledger required", fs.Name())}
}
