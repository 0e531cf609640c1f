package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
)

const defaultAddr = "127.0.0.1:8080"

func runServe(ctx context.Context, m *Main, args []string) error {
	fs := m.newFlagSet("serve", `serve --config velo.yaml [--ledger postgres://...] [--addr HOST:PORT] [--flight-sql-addr HOST:PORT] [--log-format text|json]

Serves the HTTP API (docs/api.md; the OpenAPI document is at /openapi.json) and the DPO's
ledger page at /ledger; with --flight-sql-addr, Arrow Flight SQL too, for ADBC, JDBC and
BI tools (docs/clients.md). The server holds the ledger's lock while it runs: create projects
and grant budgets through its API (POST /v1/projects, POST /v1/projects/{id}/grants) while
it runs; velo project create|grant fails with a message naming the server's pid.
With --ledger postgres://... (or the config's ledger) the ledger is kept in PostgreSQL and
several servers may share it (replicas behind one address); there is no lock then, and the
state directory holds only the checkpoint key, the same on every replica.
SIGINT or SIGTERM stops it gracefully (queries in flight finish, the ledger writes a
checkpoint); SIGHUP re-reads the users and tokens from the config file.`)
	cfgPath := fs.String("config", "", "server configuration file (required; see docs/api.md)")
	addr := fs.String("addr", "", "listen address (default: the config's listen, else "+defaultAddr+")")
	flightAddr := fs.String("flight-sql-addr", "", "Arrow Flight SQL listen address (default: none)")
	logFormat := fs.String("log-format", "text", "request log on stderr: text or json")
	ledgerURL := fs.String("ledger", "", "the ledger in PostgreSQL: a postgres:// URL, shared by replicas (default: the config's ledger, else the state directory)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "config"); err != nil {
		return err
	}
	if *logFormat != "text" && *logFormat != "json" {
		return usageError{fmt.Errorf("serve: --log-format %q: want text or json", *logFormat)}
	}
	cfg, err := notebooksapi.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *ledgerURL != "" {
		cfg.Ledger = *ledgerURL
		if err := cfg.Validate(); err != nil {
			return usageError{fmt.Errorf("serve: --ledger: %w", err)}
		}
	}
	listen := *addr
	if listen == "" {
		listen = cfg.Listen
	}
	if listen == "" {
		listen = defaultAddr
	}
	log := newLogger(m, *logFormat)
	return stopped(m, serve(ctx, m, cfg, *cfgPath, listen, *flightAddr, log, func(url, flightURL string) {
		fmt.Fprintf(m.Stdout, "velo: serving %s (OpenAPI at %s/openapi.json, DPO page at %s/ledger); Ctrl-C stops\n", url, url, url)
		if flightURL != "" {
			fmt.Fprintf(m.Stdout, "velo: Arrow Flight SQL at %s\n", flightURL)
		}
	}))
}

// stopped says how a server ended.
func stopped(m *Main, err error) error {
	if err == nil {
		fmt.Fprintln(m.Stdout, "velo: stopped; the ledger was closed with a signed checkpoint")
	}
	return err
}

func newLogger(m *Main, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(m.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(m.Stderr, nil))
}

// serve opens the ledger (taking its lock) and the engine named by cfg, serves HTTP on
// addr (and Arrow Flight SQL on flightAddr, unless empty) until ctx ends, then closes
// both: the ledger's Close writes a checkpoint. ready is called with the servers' URLs
// once they accept connections (flightURL empty without Flight SQL).
func serve(ctx context.Context, m *Main, cfg notebooksapi.Config, cfgPath, addr, flightAddr string, log *slog.Logger, ready func(url, flightURL string)) (err error) {
	led, verify, err := openServeLedger(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, led.Close()) }()
	backend, err := openBackend(ctx, cfg)
	if err != nil {
		return err
	}
	// The rows of synthetic releases, for the same request again, beside the ledger (with
	// a PostgreSQL ledger, each replica keeps those it made).
	eng, err := query.Open(ctx, query.Config{DataDir: cfg.Data, Ledger: led, Limits: cfg.Limits.QueryLimits(), Logger: log, Backend: backend,
		ReleaseDir: filepath.Join(cfg.State, "releases")})
	if err != nil {
		if backend != nil {
			backend.Close()
		}
		return err
	}
	defer func() { err = errors.Join(err, eng.Close()) }()
	for _, u := range cfg.Users {
		for _, p := range u.Projects {
			if _, perr := led.Project(p); perr != nil {
				log.Warn("config names a project the ledger does not hold (yet)", "user", u.Name, "project", p)
			}
		}
	}
	retention, err := cfg.AccessLog.RetentionDuration()
	if err != nil {
		return err
	}
	accessStore, err := openAccessLog(ctx, led, cfg.State)
	if err != nil {
		return err
	}
	access := ledger.NewAccessWriter(accessStore, ledger.AccessWriterOptions{Retention: retention, Logger: log})
	defer func() { err = errors.Join(err, access.Close()) }()
	srv, err := notebooksapi.New(notebooksapi.Options{
		Engine: eng, Ledger: led, Users: cfg.Users, Limits: cfg.Limits, CookieSecure: cfg.CookieSecure, OIDC: cfg.OIDC, Logger: log,
		Verify: verify, AccessLog: access,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var fln net.Listener
	if flightAddr != "" {
		if fln, err = net.Listen("tcp", flightAddr); err != nil {
			ln.Close()
			return fmt.Errorf("serve: --flight-sql-addr: %w", err)
		}
	}
	// SIGHUP re-reads users and tokens, so velo token new|revoke take effect without a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-hup:
				c, err := notebooksapi.LoadConfig(cfgPath)
				if err != nil {
					log.Error("reload users: keeping the old ones", "err", err)
					continue
				}
				srv.SetUsers(c.Users)
				log.Info("reloaded users and tokens", "users", len(c.Users))
			}
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "data", cfg.Data, "dataset_version", eng.DatasetVersion(), "users", len(cfg.Users))
	flightURL := ""
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flightDone := make(chan error, 1)
	if fln != nil {
		flightURL = "grpc://" + fln.Addr().String()
		log.Info("serving Arrow Flight SQL", "addr", fln.Addr().String())
		go func() {
			// A Flight SQL server that fails stops the HTTP one too: the process ends with
			// its error rather than half-serving.
			flightDone <- srv.ServeFlightSQL(ctx, fln)
			cancel()
		}()
	} else {
		flightDone <- nil
	}
	if ready != nil {
		ready("http://"+ln.Addr().String(), flightURL)
	}
	err = srv.Serve(ctx, ln)
	cancel()
	return errors.Join(err, <-flightDone)
}

// openServeLedger opens the ledger cfg names: in PostgreSQL (cfg.Ledger), shared with other
// replicas, or in the state directory, whose lock the server then holds. verify checks it
// (GET /v1/ledger/verify).
func openServeLedger(ctx context.Context, cfg notebooksapi.Config, log *slog.Logger) (ledger.Store, func() (ledger.VerifyReport, error), error) {
	if cfg.Ledger != "" {
		key := cfg.CheckpointKey
		if key == "" {
			key = filepath.Join(cfg.State, "checkpoint.key")
		}
		pg, err := ledger.OpenPostgres(ctx, cfg.Ledger, ledger.Options{KeyFile: key, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		log.Info("ledger in PostgreSQL", "ledger", ledger.RedactDSN(cfg.Ledger))
		return pg, func() (ledger.VerifyReport, error) { return pg.Verify(context.Background(), ledger.VerifyOptions{}) }, nil
	}
	led, err := ledger.Open(cfg.State, ledger.Options{KeyFile: cfg.CheckpointKey, Logger: log})
	if err != nil {
		if errors.Is(err, ledger.ErrLocked) {
			return nil, nil, fmt.Errorf("serve: %w (is another velo serve or velo project running on this state directory?)", err)
		}
		return nil, nil, err
	}
	return led, func() (ledger.VerifyReport, error) { return ledger.Verify(cfg.State, ledger.VerifyOptions{}) }, nil
}
