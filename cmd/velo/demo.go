package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

const (
	demoPeriod  = "2024-01..2025-12"
	demoProject = "wl"
	// demoPersons is the default size: enough people that every documented example answers
	// within a few percent of the exact value at its epsilon (the smallest regions aside), and
	// the demo still starts in under a minute on two idle cores (30 to 45 s of CPU for synth
	// and ingest). internal/docsexamples checks the first and reports the second.
	demoPersons = 100000
	// demoEpsilon is the project's budget: the documentation's examples (the README's first
	// question, the notebook, the Grafana dashboard) spend 7.5 of it, and leave as much to
	// explore with.
	demoEpsilon = 15
	// demoSQL is the first question the demo suggests, as the README, velo_client.py and the
	// notebook's client ask it: the second time it is free.
	demoSQL = "SELECT region, AVG(CAST(within_target AS INTEGER)) AS share_within_target, COUNT(DISTINCT pid) AS people FROM booking WHERE first_access GROUP BY region ORDER BY region"
)

// demoUsers are the demo's people, one per role that uses the API; tokens.json maps each
// role to its token.
var demoUsers = []struct {
	name string
	role notebooksapi.Role
}{{"researcher", notebooksapi.RoleResearcher}, {"official", notebooksapi.RoleOfficial}, {"dpo", notebooksapi.RoleDPO}}

func runDemo(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("demo", `demo [--dir DIR] [--persons N] [--addr HOST:PORT] [--flight-sql-addr HOST:PORT]

Velo end to end on one machine: a synthetic FSE + CUP extract, a pseudonymization key,
ingest into Parquet, a ledger with the project "wl" (waiting-list reduction, region by
region), a server config with three users (researcher, official, dpo) whose tokens are
printed and written to DIR/tokens.json (mode 0600), then the server on --addr (and Arrow
Flight SQL on --flight-sql-addr) until Ctrl-C.
Running it again reuses DIR: the same data, key, ledger and tokens (remove DIR to start over).`)
	dir := fs.String("dir", "velo-demo", "working directory, created")
	persons := fs.Int("persons", demoPersons, "people in the synthetic extract (first run only)")
	seed := fs.Uint64("seed", 7, "synthetic extract seed (first run only)")
	addr := fs.String("addr", defaultAddr, "listen address")
	flightAddr := fs.String("flight-sql-addr", "", "Arrow Flight SQL listen address (default: none)")
	logFormat := fs.String("log-format", "text", "request log on stderr: text or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))}
	}
	if *persons < 1 || *persons > synth.MaxPersons {
		return usageError{fmt.Errorf("demo: --persons must be between 1 and %d", synth.MaxPersons)}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	period, err := fse.ParsePeriod(demoPeriod)
	if err != nil {
		return err
	}
	src := filepath.Join(*dir, "synth")
	keyPath := filepath.Join(*dir, "pseudonymization.key")
	data := filepath.Join(*dir, "data")
	state := filepath.Join(*dir, "state")
	cfgPath := filepath.Join(*dir, "velo.yaml")
	tokensPath := filepath.Join(*dir, "tokens.json")

	// 1. Synthetic extract: kept once complete (synth.json is written last).
	if exists(filepath.Join(src, "synth.json")) {
		fmt.Fprintf(m.Stdout, "synth: reusing %s\n", src)
	} else {
		if err := os.RemoveAll(src); err != nil {
			return err
		}
		update, done := m.progress("synth", int64(*persons))
		rep, err := synth.Generate(ctx, synth.Config{Persons: *persons, Seed: *seed, Bundles: min(20, *persons), Out: src, From: period.From, To: period.To, OnProgress: update})
		done()
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "synth: %d synthetic people (seed %d) in %s\n", rep.Persons, rep.Seed, src)
	}
	// 2. Pseudonymization key: never replaced.
	if exists(keyPath) {
		fmt.Fprintf(m.Stdout, "keys: reusing %s\n", keyPath)
	} else {
		k, err := pseudonymize.GenerateKey(nil)
		if err != nil {
			return err
		}
		if err := pseudonymize.WriteKeyFile(keyPath, k); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "keys: wrote key %s to %s (mode 0600)\n", k.ID, keyPath)
	}
	// 3. Ingest: kept once complete (manifest.json is written last).
	if exists(dataset.ManifestPath(data)) {
		fmt.Fprintf(m.Stdout, "ingest: reusing %s\n", data)
	} else {
		if err := os.RemoveAll(data); err != nil {
			return err
		}
		key, err := pseudonymize.LoadKeyFile(keyPath)
		if err != nil {
			return err
		}
		cfg := ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{src}, Period: period, ToolVersion: version}
		if cfg.OptOut, err = readOptOuts([]string{filepath.Join(src, "optout.txt")}); err != nil {
			return err
		}
		if err := m.ingestWithProgress(ctx, cfg); err != nil {
			return err
		}
	}
	// 4. The project, approved as a DPO would.
	if err := demoCreateProject(ctx, m, state); err != nil {
		return err
	}
	// 5. Config and tokens.
	tokens, err := demoTokens(m, cfgPath, tokensPath)
	if err != nil {
		return err
	}
	cfg, err := notebooksapi.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	// 6. Serve.
	return stopped(m, serve(ctx, m, cfg, cfgPath, *addr, *flightAddr, newLogger(m, *logFormat), func(url, flightURL string) {
		printDemoGuide(m, url, *dir, tokens)
		if flightURL != "" {
			fmt.Fprintf(m.Stdout, "Arrow Flight SQL (ADBC, JDBC, BI tools) at %s: the same tokens, as the authorization header (docs/clients.md).\n", flightURL)
		}
	}))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func demoCreateProject(ctx context.Context, m *Main, state string) error {
	l, err := ledger.Open(state, ledger.Options{Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.Project(demoProject); err == nil {
		fmt.Fprintf(m.Stdout, "ledger: reusing %s with project %s\n", state, demoProject)
		return nil
	}
	err = l.CreateProject(ctx, "velo-demo", ledger.Project{
		ID: demoProject, Purpose: "waiting-list reduction, region by region",
		LegalBasis: "art. 2-sexies c.1-bis Codice privacy (L. 56/2024)", Approver: "DPO demo",
		Allow:         map[string][]string{"booking": {}, "person": {"birth_year", "region", "sex"}},
		EpsilonBudget: demoEpsilon, DeltaBudget: 1e-5, DefaultEpsilon: 0.5, MaxEpsilonPerQuery: 2, MaxDeltaPerQuery: 1e-6,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "ledger: created %s with project %s (epsilon %g, delta 1e-5)\n", state, demoProject, float64(demoEpsilon))
	return nil
}

// demoTokens makes the config and the three users' tokens on the first run, and reads
// them back on later runs. Without tokens.json, new tokens replace the old ones.
func demoTokens(m *Main, cfgPath, tokensPath string) (map[string]string, error) {
	if b, err := os.ReadFile(tokensPath); err == nil && exists(cfgPath) {
		tokens := map[string]string{}
		if err := json.Unmarshal(b, &tokens); err != nil {
			return nil, fmt.Errorf("demo: %s: %w (remove it to issue new tokens)", tokensPath, err)
		}
		fmt.Fprintf(m.Stdout, "tokens: reusing %s\n", tokensPath)
		return tokens, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tokens := map[string]string{}
	stored := map[string]notebooksapi.Token{}
	for _, u := range demoUsers {
		tok, st, err := notebooksapi.NewToken(nil)
		if err != nil {
			return nil, err
		}
		st.Created = nowUTC()
		tokens[string(u.role)], stored[u.name] = tok, st
	}
	if !exists(cfgPath) {
		cfg := notebooksapi.Config{Data: "data", State: "state", Listen: defaultAddr}
		for _, u := range demoUsers {
			nu := notebooksapi.User{Name: u.name, Role: u.role, Tokens: []notebooksapi.Token{stored[u.name]}}
			if u.role == notebooksapi.RoleResearcher || u.role == notebooksapi.RoleOfficial {
				nu.Projects = []string{demoProject}
			}
			cfg.Users = append(cfg.Users, nu)
		}
		header := "# velo serve configuration written by velo demo; options: docs/api.md.\n# Paths are relative to this file. Tokens are stored as SHA-256 hashes only.\n"
		if err := notebooksapi.WriteConfig(cfgPath, cfg, header); err != nil {
			return nil, err
		}
	} else {
		for _, u := range demoUsers {
			var role notebooksapi.Role
			var projects []string
			if c, err := notebooksapi.LoadConfig(cfgPath); err == nil && !hasUser(c, u.name) {
				role = u.role
				if u.role == notebooksapi.RoleResearcher || u.role == notebooksapi.RoleOfficial {
					projects = []string{demoProject}
				}
			}
			if err := notebooksapi.AddToken(cfgPath, u.name, role, projects, stored[u.name], true); err != nil {
				return nil, err
			}
		}
	}
	b, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(tokensPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintf(m.Stdout, "tokens: issued for researcher, official and dpo; written to %s (mode 0600); %s holds their hashes\n", tokensPath, cfgPath)
	return tokens, nil
}

func hasUser(c notebooksapi.Config, name string) bool {
	for _, u := range c.Users {
		if u.Name == name {
			return true
		}
	}
	return false
}

func printDemoGuide(m *Main, url, dir string, tokens map[string]string) {
	body, _ := json.Marshal(map[string]any{"project": demoProject, "epsilon": 1, "sql": demoSQL})
	var b strings.Builder
	fmt.Fprintf(&b, "\nVelo demo is running at %s (Ctrl-C stops it; velo demo --dir %s resumes with the same data, ledger and tokens).\n", url, dir)
	fmt.Fprintf(&b, "\nTokens (also in %s):\n", filepath.Join(dir, "tokens.json"))
	for _, u := range demoUsers {
		fmt.Fprintf(&b, "  %-11s %s\n", u.role, tokens[string(u.role)])
	}
	fmt.Fprintf(&b, "\nAsk as the researcher: the share of first-access bookings seen within the PNGLA target, and the people behind it, by region\n")
	fmt.Fprintf(&b, "  curl -s %s/v1/queries -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '%s'\n", url, tokens["researcher"], body)
	fmt.Fprintf(&b, "  (add -H 'Accept: text/csv' for CSV; the same query again is answered from the ledger at no cost)\n")
	fmt.Fprintf(&b, "\nRun the notebook (pip install './clients/python[notebook]'; Jupyter to open it): it develops on dummy data for free, then runs for real\n")
	fmt.Fprintf(&b, "  VELO_URL=%s VELO_TOKEN=%s jupyter notebook notebooks-api/examples/waiting_lists.ipynb\n", url, tokens["researcher"])
	fmt.Fprintf(&b, "  or, without Jupyter (standard library only): VELO_URL=%s VELO_TOKEN=%s python3 notebooks-api/examples/velo_client.py\n", url, tokens["researcher"])
	fmt.Fprintf(&b, "\nGrafana (the \"Liste di attesa\" dashboard; make plugin, then docs/grafana.md): provision it with\n")
	fmt.Fprintf(&b, "  VELO_URL=%s VELO_GRAFANA_TOKEN=%s\n", url, tokens["official"])
	fmt.Fprintf(&b, "\nThe DPO's ledger page: %s/ledger (log in with the dpo token)\n", url)
	fmt.Fprintf(&b, "API reference: %s/openapi.json and docs/api.md\n\n", url)
	fmt.Fprint(m.Stdout, b.String())
}
