package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runIngest(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("ingest", `ingest --key FILE --out DATA [--opt-out FILE]... [--period FROM..TO] [--cup-profile FILE] [--append] INPUT...
       velo ingest --remove-opted-out FILE --key FILE --out DATA
       velo ingest --recover --out DATA

Reads FHIR R4 bundles and NDJSON, HL7 CDA R2 documents (files or zips, or attached to a
PDF/A, signed or not) and CUP booking CSV (detected by content; other files are listed as
skipped), pseudonymizes them and writes pid-sorted Parquet per canonical table with
catalog.json, manifest.json and quarantine/ in DATA.

A new dataset version replaces the old one only once it is complete: an ingest that is
killed leaves DATA at the version before (or, past the commit point, the version after).
The next ingest first settles what the killed one left, and says so; --recover does only
that (readers refuse a DATA whose commit was interrupted until it is settled).`)
	keyPath := fs.String("key", "", "pseudonymization key file (velo keys gen)")
	out := fs.String("out", "", "data directory to write (DATA)")
	var optOuts stringList
	fs.Var(&optOuts, "opt-out", "opt-out registry: one codice fiscale per line (repeatable)")
	period := fs.String("period", "", "extract period FROM..TO (YYYY-MM or YYYY-MM-DD); rows dated outside it are counted and left out")
	cupProfile := fs.String("cup-profile", "", "CUP CSV profile (velo-cup-profile/v1 YAML: separator, encoding, header names, date formats; docs/ingest.md); default: the built-in one")
	appendFlag := fs.Bool("append", false, "add these inputs to the existing dataset in DATA as a new dataset version")
	remove := fs.String("remove-opted-out", "", "rewrite DATA without the people listed in this file, as a new dataset version")
	memLimit := fs.String("memory-limit", ingest.DefaultMemoryLimit, "memory budget for staging and sorting (1GB, 512MB, 2GiB): DuckDB's buffers get a third of it and spill to disk beyond, the Go heap a quarter; the rest is for DuckDB's allocations outside its buffers (docs/ingest.md, Memory)")
	workers := fs.Int("workers", 0, "parsing goroutines (0: one per CPU)")
	verbose := fs.Bool("v", false, "log each file ingested")
	recoverOnly := fs.Bool("recover", false, "only settle what an interrupted ingest left in DATA")
	if err := parse(fs, args); err != nil {
		return err
	}
	// Warnings (an interrupted ingest settled, its working folder removed) always show.
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *verbose {
		log = slog.New(slog.NewTextHandler(m.Stderr, nil))
	}
	if *recoverOnly {
		if *out == "" || fs.NArg() > 0 || *remove != "" || *appendFlag {
			return usageError{errors.New("ingest: --recover takes --out DATA only")}
		}
		rec, err := ingest.Recover(*out, log)
		if err != nil {
			return err
		}
		switch {
		case rec.RolledBack:
			fmt.Fprintf(m.Stdout, "rolled back an interrupted ingest: %s is at dataset version %s; run that ingest again\n", *out, versionOrNone(rec.Version))
		case rec.Completed:
			fmt.Fprintf(m.Stdout, "finished an interrupted ingest's commit: %s is at dataset version %s\n", *out, rec.Version)
		default:
			fmt.Fprintf(m.Stdout, "nothing to recover: %s is at dataset version %s\n", *out, versionOrNone(rec.Version))
		}
		if len(rec.Removed) > 0 {
			fmt.Fprintf(m.Stdout, "removed %d working folders of interrupted ingests\n", len(rec.Removed))
		}
		return nil
	}
	if *keyPath == "" || *out == "" {
		return usageError{errors.New("ingest: --key and --out are required")}
	}
	key, err := pseudonymize.LoadKeyFile(*keyPath)
	if err != nil {
		return err
	}
	ps := pseudonymize.New(key)
	if *remove != "" {
		if fs.NArg() > 0 || len(optOuts) > 0 || *appendFlag {
			return usageError{errors.New("ingest: --remove-opted-out takes no inputs, --opt-out or --append")}
		}
		reg, err := readOptOuts([]string{*remove})
		if err != nil {
			return err
		}
		man, err := ingest.RemoveOptedOut(ctx, ingest.RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: *out, MemoryLimit: *memLimit, Logger: log})
		if err != nil {
			return err
		}
		r := man.Removals[len(man.Removals)-1]
		fmt.Fprintf(m.Stdout, "removed %d people who opted out (%d rows); dataset version %s\n", r.RemovedPeople, sum(r.RemovedRows), man.DatasetVersion)
		return nil
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("ingest: no INPUT files or directories")}
	}
	cfg := ingest.Config{Pseudonymizer: ps, Out: *out, Inputs: fs.Args(), Append: *appendFlag, Workers: *workers, MemoryLimit: *memLimit, ToolVersion: version, Logger: log}
	if len(optOuts) > 0 {
		if cfg.OptOut, err = readOptOuts(optOuts); err != nil {
			return err
		}
	}
	if *period != "" {
		if cfg.Period, err = fse.ParsePeriod(*period); err != nil {
			return usageError{err}
		}
	}
	if *cupProfile != "" {
		if cfg.CUPProfile, err = ingest.LoadCUPProfile(*cupProfile); err != nil {
			return usageError{err}
		}
	}
	return m.ingestWithProgress(ctx, cfg)
}

func versionOrNone(version string) string {
	if version == "" {
		return "none (no dataset)"
	}
	return version
}

// ingestWithProgress runs an ingest with a progress bar on a terminal and prints its
// summary.
func (m *Main) ingestWithProgress(ctx context.Context, cfg ingest.Config) error {
	var update func(int64)
	var finish func()
	cfg.OnProgress = func(done, total int64) {
		if update == nil {
			update, finish = m.progressBytes("ingest", total)
		}
		update(done)
	}
	man, err := ingest.Run(ctx, cfg)
	if finish != nil {
		finish()
	}
	if err != nil {
		return err
	}
	printIngestSummary(m, man)
	return nil
}

func readOptOuts(paths []string) (*pseudonymize.OptOut, error) {
	f, err := os.Open(paths[0])
	if err != nil {
		return nil, fmt.Errorf("opt-out registry: %w", err)
	}
	defer f.Close()
	if len(paths) > 1 {
		return nil, usageError{errors.New("ingest: give one --opt-out registry (concatenate lists first)")}
	}
	return pseudonymize.ReadOptOut(f, paths[0])
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func printIngestSummary(m *Main, man *dataset.Manifest) {
	b := man.Batches[len(man.Batches)-1]
	fmt.Fprintf(m.Stdout, "dataset version %s (key %s, batch %d)\n", man.DatasetVersion, man.KeyID, b.Seq)
	var skipped int
	for _, in := range b.Inputs {
		if in.Skipped != "" {
			skipped++
		}
	}
	fmt.Fprintf(m.Stdout, "inputs: %d files (%d skipped, see manifest.json)\n", len(b.Inputs), skipped)
	names := make([]string, 0, len(b.Tables))
	for n := range b.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(m.Stdout, "%-13s %10s %10s %11s %9s %8s %10s %7s\n", "table", "read", "written", "quarantined", "opted-out", "period", "superseded", "merged")
	for _, n := range names {
		c := b.Tables[n]
		fmt.Fprintf(m.Stdout, "%-13s %10d %10d %11d %9d %8d %10d %7d\n", n, c.Read, c.Written, c.Quarantined, c.OptedOut, c.OutsidePeriod, c.Superseded, c.Merged)
	}
	fmt.Fprintf(m.Stdout, "opted out: %d people, %d records; quarantine: %s\n", b.OptedOut.People, b.OptedOut.Records, b.Quarantine)
	if len(b.Warnings) > 0 {
		ws := make([]string, 0, len(b.Warnings))
		for w, n := range b.Warnings {
			ws = append(ws, fmt.Sprintf("%s=%d", w, n))
		}
		sort.Strings(ws)
		fmt.Fprintf(m.Stdout, "warnings: %s\n", strings.Join(ws, " "))
	}
}
