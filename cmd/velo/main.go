// Command velo is Velo's one binary: synthetic data, keys, ingest, risk report, and (in
// later issues) the query engine, ledger and server. It holds wiring only: every
// capability lives in its package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Main holds what every subcommand shares: its streams and the process context.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	// Interactive is true when Stderr is a terminal, so long work may draw progress bars.
	Interactive bool
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, m *Main, args []string) error
}

func commands() []command {
	return []command{
		{"synth", "write a deterministic synthetic FSE + CUP extract", runSynth},
		{"keys", "manage pseudonymization keys (keys gen)", runKeys},
		{"ingest", "pseudonymize source extracts into Parquet with catalog and manifest", runIngest},
		{"risk", "report re-identification risk over the quasi-identifiers of a dataset", runRisk},
		{"project", "create projects, grant budgets, show budget left (project create|grant|show)", runProject},
		{"ledger", "verify or export the privacy ledger (ledger verify|export)", runLedger},
		{"access-log", "export the access log of the API and the DPO page (access-log export)", runAccessLog},
		{"query", "run a differentially private SQL query against a dataset", runQuery},
		{"marginals", "release differentially private contingency tables (1-, 2-, 3-way) of a table", runMarginals},
		{"synthesize", "write differentially private synthetic microdata of a table (AIM or MST) as Parquet", runSynthesize},
		{"serve", "serve the HTTP API and the DPO's ledger page (serve --config velo.yaml)", runServe},
		{"token", "issue or revoke API tokens in a server config (token new|revoke)", runToken},
		{"demo", "synthetic data -> ingest -> project -> server with demo users, in one command", runDemo},
		{"version", "print the version", func(_ context.Context, m *Main, _ []string) error {
			fmt.Fprintln(m.Stdout, "velo", version)
			return nil
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Interactive: isTerminal(os.Stderr)}
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "velo:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a mistake in how the command was called (exit status 2).
type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// Run dispatches to a subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		m.usage(cmds)
		if len(args) == 0 {
			return usageError{errors.New("no command given")}
		}
		return nil
	}
	i := slices.IndexFunc(cmds, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		m.usage(cmds)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	return cmds[i].run(ctx, m, args[1:])
}

func (m *Main) usage(cmds []command) {
	fmt.Fprintln(m.Stderr, "Velo: privacy-preserving analytics over pseudonymized FSE and CUP extracts.")
	fmt.Fprintln(m.Stderr, "\nUsage: velo <command> [flags]   (velo <command> --help for its flags)")
	fmt.Fprintln(m.Stderr, "\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(m.Stderr, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlagSet makes a subcommand's flag set whose --help prints the synopsis and flags.
func (m *Main) newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: velo %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; a parse failure is a usage error, --help is flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
