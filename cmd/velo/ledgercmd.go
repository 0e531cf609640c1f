package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/velo-fse/velo/ledger"
)

const ledgerUsage = `Usage: velo ledger verify|export --state DIR [flags]

  verify  check the ledger offline: frames, hash chain, budget sums, signed checkpoints
  export  write every entry as CSV or NDJSON for the DPO

Both read without the lock, so they work while a server runs.`

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
		return ledgerVerify(m, args[1:])
	case "export":
		return ledgerExport(m, args[1:])
	}
	fmt.Fprintln(m.Stderr, ledgerUsage)
	return usageError{fmt.Errorf("ledger: unknown subcommand %q", args[0])}
}

func ledgerVerify(m *Main, args []string) error {
	fs := m.newFlagSet("ledger verify", `ledger verify --state DIR [--checkpoints FILE] [--pubkey FILE]

Recomputes the hash chain of the ledger in DIR, re-sums every project's budget and checks the
signed checkpoints. Give the DPO's own copies with --checkpoints and --pubkey: copies kept
outside DIR are what expose a history rewritten by someone who can write DIR. Exits non-zero
on any anomaly, a torn tail included, naming the entry and the reason.`)
	state := fs.String("state", "", "state directory holding the ledger (required)")
	cps := fs.String("checkpoints", "", "signed checkpoints to check against (default DIR/checkpoints)")
	pub := fs.String("pubkey", "", "checkpoint verifier key (default DIR/checkpoint.pub)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "state"); err != nil {
		return err
	}
	rep, err := ledger.Verify(*state, ledger.VerifyOptions{CheckpointsFile: *cps, PublicKeyFile: *pub})
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
	fmt.Fprintf(m.Stdout, "ledger %s: ok\n", *state)
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

func ledgerExport(m *Main, args []string) error {
	fs := m.newFlagSet("ledger export", `ledger export --state DIR --format csv|ndjson

Writes every entry of the ledger in DIR to standard output: CSV (one row per entry, releases
left out but their hashes kept) or NDJSON (one object per entry, releases included).`)
	state := fs.String("state", "", "state directory holding the ledger (required)")
	format := fs.String("format", "", "csv or ndjson (required)")
	project := fs.String("project", "", "only this project's entries")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "state", "format"); err != nil {
		return err
	}
	if *format != "csv" && *format != "ndjson" {
		return usageError{fmt.Errorf("ledger export: --format %q: want csv or ndjson", *format)}
	}
	entries, _, err := ledger.Read(*state)
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
