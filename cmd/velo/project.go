package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

const projectUsage = `Usage: velo project create|grant|show --state DIR [flags]

  create  create a project: purpose, legal basis, approved tables and columns, budget
  grant   add epsilon and delta to a project's budget
  show    print each project's budget: total, spent, left

create and grant append to the ledger in DIR (creating it and its checkpoint key on first
use) and need its lock: while a server holds it, use the server's API instead. show reads
without the lock. velo project <subcommand> --help lists the flags.`

func runProject(ctx context.Context, m *Main, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(m.Stderr, projectUsage)
		if len(args) == 0 {
			return usageError{errors.New("project: want a subcommand: create, grant or show")}
		}
		return nil
	}
	switch args[0] {
	case "create":
		return projectCreate(ctx, m, args[1:])
	case "grant":
		return projectGrant(ctx, m, args[1:])
	case "show":
		return projectShow(m, args[1:])
	}
	fmt.Fprintln(m.Stderr, projectUsage)
	return usageError{fmt.Errorf("project: unknown subcommand %q", args[0])}
}

func projectCreate(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("project create", `project create --state DIR --id ID --purpose TEXT --legal-basis TEXT --allow TABLE[:COL,COL...]...
         --epsilon-budget E --delta-budget D [--default-epsilon E] [--default-delta D]
         [--max-epsilon-per-query E] [--max-delta-per-query D] [--expires DATE] [--approver NAME]
         [--suppress-below N] [--round-to B]

Appends a project to the ledger in DIR. The project may read only the tables and columns
given with --allow (a bare table allows all its columns).`)
	state := fs.String("state", "", "state directory holding the ledger (required)")
	id := fs.String("id", "", "project ID: lower-case letters, digits, - and _ (required)")
	purpose := fs.String("purpose", "", "purpose of the processing (required)")
	legalBasis := fs.String("legal-basis", "", "legal basis, e.g. \"art. 9(2)(h) GDPR\" (required)")
	var allow stringList
	fs.Var(&allow, "allow", "approved TABLE or TABLE:COL,COL... (repeatable; required)")
	epsBudget := fs.Float64("epsilon-budget", 0, "total epsilon (required)")
	deltaBudget := fs.Float64("delta-budget", 0, "total delta, below 1; 0 allows only pure epsilon-DP queries (required)")
	defEps := fs.Float64("default-epsilon", 0, "epsilon charged to a query that declares none (0: queries must declare it)")
	defDelta := fs.Float64("default-delta", 0, "delta charged to a query that declares none")
	maxEps := fs.Float64("max-epsilon-per-query", 0, "largest epsilon one query may spend (0: no cap beyond the budget)")
	maxDelta := fs.Float64("max-delta-per-query", 0, "largest delta one query may spend (0: no cap beyond the budget)")
	expires := fs.String("expires", "", "last day the project may query, YYYY-MM-DD (UTC, through the end of that day), or an RFC 3339 instant")
	approver := fs.String("approver", "", "who approved the project (the DPO)")
	suppress := fs.Float64("suppress-below", 0, "output policy: withhold a released row whose noisy count is below N (0: never)")
	roundTo := fs.Float64("round-to", 0, "output policy: round released counts to a multiple of B (0: never)")
	actor := fs.String("actor", "", "who is recording this (default: the OS user)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "state", "id", "purpose", "legal-basis", "allow", "epsilon-budget", "delta-budget"); err != nil {
		return err
	}
	p := ledger.Project{
		ID: *id, Purpose: *purpose, LegalBasis: *legalBasis, Approver: *approver,
		EpsilonBudget: *epsBudget, DeltaBudget: *deltaBudget, DefaultEpsilon: *defEps, DefaultDelta: *defDelta,
		MaxEpsilonPerQuery: *maxEps, MaxDeltaPerQuery: *maxDelta,
	}
	if *suppress != 0 || *roundTo != 0 {
		p.OutputPolicy = &ledger.OutputPolicy{SuppressBelow: *suppress, RoundTo: *roundTo}
	}
	var err error
	if p.Allow, err = parseAllow(allow); err != nil {
		return usageError{fmt.Errorf("project create: %w", err)}
	}
	if *expires != "" {
		if p.Expires, err = parseExpiry(*expires); err != nil {
			return usageError{fmt.Errorf("project create: --expires: %w", err)}
		}
	}
	api := apiEquivalent{path: "/v1/projects", tokenVar: "DPO_TOKEN", body: notebooksapi.ProjectRequest{
		ID: p.ID, Purpose: p.Purpose, LegalBasis: p.LegalBasis, Approver: p.Approver, Allow: p.Allow,
		EpsilonBudget: p.EpsilonBudget, DeltaBudget: p.DeltaBudget, DefaultEpsilon: p.DefaultEpsilon, DefaultDelta: p.DefaultDelta,
		MaxEpsilonPerQuery: p.MaxEpsilonPerQuery, MaxDeltaPerQuery: p.MaxDeltaPerQuery, Expires: p.Expires,
		OutputPolicy: p.OutputPolicy,
	}}
	err = withLedger(m, *state, api, func(l *ledger.Ledger) error {
		if err := l.CreateProject(ctx, actorName(*actor), p); err != nil {
			if errors.Is(err, ledger.ErrProjectExists) {
				return fmt.Errorf("%w: this ledger already has a project %s (velo project show --state %s lists them): choose another --id, or add budget to it with velo project grant",
					err, p.ID, shellQuote(*state))
			}
			return err
		}
		st, err := l.Project(p.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "created project %s: epsilon %s, delta %s; may read %s\n", st.ID, num(st.Total.Epsilon), num(st.Total.Delta), allowText(st.Allow))
		return nil
	})
	return err
}

func projectGrant(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("project grant", `project grant --state DIR --id ID --epsilon E [--delta D] [--reason TEXT]

Adds budget to a project.`)
	state := fs.String("state", "", "state directory holding the ledger (required)")
	id := fs.String("id", "", "project ID (required)")
	eps := fs.Float64("epsilon", 0, "epsilon to add (required; may be 0 when --delta is given)")
	delta := fs.Float64("delta", 0, "delta to add")
	reason := fs.String("reason", "", "why, for the record")
	actor := fs.String("actor", "", "who is recording this (default: the OS user)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "state", "id", "epsilon"); err != nil {
		return err
	}
	api := apiEquivalent{path: "/v1/projects/" + *id + "/grants", tokenVar: "DPO_TOKEN",
		body: notebooksapi.GrantRequest{Epsilon: *eps, Delta: *delta, Reason: *reason}}
	return withLedger(m, *state, api, func(l *ledger.Ledger) error {
		if err := l.Grant(ctx, actorName(*actor), *id, ledger.Budget{Epsilon: *eps, Delta: *delta}, *reason); err != nil {
			return err
		}
		st, err := l.Project(*id)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "granted project %s epsilon %s, delta %s; total now epsilon %s, delta %s; left epsilon %s, delta %s\n",
			st.ID, num(*eps), num(*delta), num(st.Total.Epsilon), num(st.Total.Delta), num(st.Left.Epsilon), num(st.Left.Delta))
		return nil
	})
}

func projectShow(m *Main, args []string) error {
	fs := m.newFlagSet("project show", `project show --state DIR [--id ID] [--format text|json]

Prints each project's budget (total, spent, left) from the ledger in DIR. It reads without
the lock, so it works while a server runs.`)
	state := fs.String("state", "", "state directory holding the ledger (required)")
	id := fs.String("id", "", "show only this project, in detail")
	format := fs.String("format", "text", "text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "state"); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("project show: --format %q: want text or json", *format)}
	}
	_, projects, err := ledger.Read(*state)
	if err != nil {
		return err
	}
	if *id != "" {
		i := slices.IndexFunc(projects, func(p ledger.ProjectStatus) bool { return p.ID == *id })
		if i < 0 {
			return fmt.Errorf("project show: %q: %w", *id, ledger.ErrUnknownProject)
		}
		if *format == "json" {
			return writeJSON(m, projects[i])
		}
		printProject(m, projects[i])
		return nil
	}
	if *format == "json" {
		return writeJSON(m, projects)
	}
	if len(projects) == 0 {
		fmt.Fprintln(m.Stdout, "no projects")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "project\tepsilon total\tspent\tleft\tdelta total\tspent\tleft\tqueries\texpires")
	var spentEps, spentDelta []float64
	for _, p := range projects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p.ID, num(p.Total.Epsilon), num(p.Spent.Epsilon), num(p.Left.Epsilon),
			num(p.Total.Delta), num(p.Spent.Delta), num(p.Left.Delta), p.Queries, expiryText(p.Expires))
		spentEps, spentDelta = append(spentEps, p.Spent.Epsilon), append(spentDelta, p.Spent.Delta)
	}
	tw.Flush()
	// Projects over the same people compose: the DPO needs the sum as well.
	fmt.Fprintf(m.Stdout, "spent across all projects: epsilon %s, delta %s\n", decimalSum(spentEps), decimalSum(spentDelta))
	return nil
}

func printProject(m *Main, p ledger.ProjectStatus) {
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "project\t%s\n", p.ID)
	fmt.Fprintf(tw, "purpose\t%s\n", p.Purpose)
	fmt.Fprintf(tw, "legal basis\t%s\n", p.LegalBasis)
	if p.Approver != "" {
		fmt.Fprintf(tw, "approver\t%s\n", p.Approver)
	}
	fmt.Fprintf(tw, "may read\t%s\n", allowText(p.Allow))
	fmt.Fprintf(tw, "created\t%s\n", p.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "expires\t%s\n", expiryText(p.Expires))
	fmt.Fprintf(tw, "per query\tdefault epsilon %s, delta %s; cap epsilon %s, delta %s\n",
		orNone(p.DefaultEpsilon), num(p.DefaultDelta), orNone(p.MaxEpsilonPerQuery), orNone(p.MaxDeltaPerQuery))
	fmt.Fprintf(tw, "\tepsilon\tdelta\n")
	fmt.Fprintf(tw, "total\t%s\t%s\n", num(p.Total.Epsilon), num(p.Total.Delta))
	fmt.Fprintf(tw, "spent\t%s\t%s\n", num(p.Spent.Epsilon), num(p.Spent.Delta))
	fmt.Fprintf(tw, "left\t%s\t%s\n", num(p.Left.Epsilon), num(p.Left.Delta))
	fmt.Fprintf(tw, "queries\t%d\n", p.Queries)
	tw.Flush()
}

// withLedger opens the ledger in dir for one write, telling the user when that created it.
// When a server holds the ledger, the error shows api, the same write through its API.
func withLedger(m *Main, dir string, api apiEquivalent, f func(*ledger.Ledger) error) (err error) {
	_, statErr := os.Stat(filepath.Join(dir, "ledger"))
	l, err := ledger.Open(dir, ledger.Options{Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return lockedHint(err, api)
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(m.Stdout, "created ledger %s; checkpoints are signed with %s (keep it safe) and checked with %s (give the DPO a copy)\n",
			filepath.Join(dir, "ledger"), filepath.Join(dir, "checkpoint.key"), filepath.Join(dir, "checkpoint.pub"))
	}
	return f(l)
}

// parseAllow reads --allow values: TABLE (all columns) or TABLE:COL,COL...
func parseAllow(vals []string) (map[string][]string, error) {
	allow := make(map[string][]string)
	for _, v := range vals {
		table, cols, hasCols := strings.Cut(v, ":")
		table = strings.TrimSpace(table)
		if table == "" {
			return nil, fmt.Errorf("--allow %q: no table", v)
		}
		var list []string
		if hasCols {
			for c := range strings.SplitSeq(cols, ",") {
				if c = strings.TrimSpace(c); c == "" {
					return nil, fmt.Errorf("--allow %q: empty column name", v)
				}
				list = append(list, c)
			}
		}
		prev, seen := allow[table]
		switch {
		case !hasCols || (seen && len(prev) == 0):
			allow[table] = []string{} // all columns
		default:
			allow[table] = append(prev, list...)
		}
	}
	return allow, nil
}

// parseExpiry reads a date (the project may query through that day, UTC) or an instant.
func parseExpiry(s string) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	return t, nil
}

// required checks that each named flag was given.
func required(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("%s: %s required", fs.Name(), strings.Join(missing, ", "))}
	}
	return nil
}

func actorName(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func allowText(allow map[string][]string) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(allow)) {
		if len(allow[t]) == 0 {
			parts = append(parts, t+" (all columns)")
		} else {
			parts = append(parts, t+" ("+strings.Join(allow[t], ", ")+")")
		}
	}
	return strings.Join(parts, "; ")
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if u := t.UTC(); u.Equal(u.Truncate(24 * time.Hour)) {
		return u.Format(time.RFC3339) + " (last day " + u.AddDate(0, 0, -1).Format(time.DateOnly) + ")"
	}
	return t.Format(time.RFC3339)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func orNone(f float64) string {
	if f == 0 {
		return "none"
	}
	return num(f)
}

// decimalSum adds amounts as the decimals they print as, so 0.1 + 0.2 shows as 0.3.
func decimalSum(fs []float64) string {
	sum := new(big.Rat)
	for _, f := range fs {
		r, _ := new(big.Rat).SetString(num(f))
		sum.Add(sum, r)
	}
	f, _ := sum.Float64()
	return num(f)
}

func writeJSON(m *Main, v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
