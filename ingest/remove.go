package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// RemoveConfig removes people who opted out after their data was ingested.
type RemoveConfig struct {
	Pseudonymizer *pseudonymize.Pseudonymizer
	OptOut        *pseudonymize.OptOut
	Out           string
	MemoryLimit   string
	Now           func() time.Time
	// Logger receives what recovering from an interrupted ingest did (default: discarded).
	Logger *slog.Logger

	crashAfter int // tests: stop the commit before this step, as a crash would (0: never)
}

// RemoveOptedOut rewrites every table of the dataset in cfg.Out without the people in
// the registry, as a new dataset version recorded in the manifest.
func RemoveOptedOut(ctx context.Context, cfg RemoveConfig) (*dataset.Manifest, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MemoryLimit == "" {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(cfg.Out); err != nil {
		return nil, fmt.Errorf("remove opted out: no dataset in %s: %w", cfg.Out, err)
	}
	unlock, err := lockDataDir(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("remove opted out: %w", err)
	}
	defer unlock()
	if _, err := recoverLocked(cfg.Out, cfg.Logger); err != nil {
		return nil, err
	}
	man, err := dataset.ReadManifest(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("remove opted out: no dataset in %s: %w", cfg.Out, err)
	}
	if man.KeyID != cfg.Pseudonymizer.KeyID() {
		return nil, fmt.Errorf("remove opted out: the dataset was pseudonymized with key %s, not %s", man.KeyID, cfg.Pseudonymizer.KeyID())
	}
	tmp, err := os.MkdirTemp(cfg.Out, ".remove-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	connector, db, err := openDuckDB(ctx, filepath.Join(tmp, "remove.duckdb"), duckDBSettings{MemoryLimit: duckDBMemoryLimit(cfg.MemoryLimit), Threads: 2, TempDir: filepath.Join(tmp, "spill")})
	if err != nil {
		return nil, err
	}
	defer connector.Close()
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE gone (pid UUID)"); err != nil {
		return nil, err
	}
	conn, err := connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	app, err := duckdb.NewAppenderFromConn(conn, "", "gone")
	if err != nil {
		conn.Close()
		return nil, err
	}
	for _, id := range cfg.OptOut.Identifiers() {
		if err := app.AppendRow(duckdb.UUID(cfg.Pseudonymizer.PID(id))); err != nil {
			app.Close()
			conn.Close()
			return nil, err
		}
	}
	if err := errors.Join(app.Close(), conn.Close()); err != nil {
		return nil, err
	}
	removal := dataset.Removal{At: cfg.Now().UTC(), RegistrySize: cfg.OptOut.Len(), RemovedRows: map[string]int64{}, PreviousVersion: man.DatasetVersion}
	var people []string
	next := filepath.Join(tmp, "next")
	// Each table is copied without its people who opted out, in the order it is in: sorted
	// by pid and person rank (DuckDB keeps the insertion order), so the copy streams in
	// bounded memory and each person's rows keep their ranks' order, where sorting again
	// by pid would hold the whole table and need not keep it.
	for _, t := range Tables {
		src := fmt.Sprintf("read_parquet(%s)", quote(dataset.TableGlob(cfg.Out, t.Name)))
		if !tableExists(cfg.Out, t.Name) {
			// A table added to the schema after the dataset was written: empty.
			src = "(" + emptyTable(t) + ")"
		}
		var removed int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE pid IN (SELECT pid FROM gone)", src)).Scan(&removed); err != nil {
			return nil, fmt.Errorf("count %s: %w", t.Name, err)
		}
		removal.RemovedRows[t.Name] = removed
		people = append(people, fmt.Sprintf("SELECT pid FROM %s WHERE pid IN (SELECT pid FROM gone)", src))
		if err := os.MkdirAll(dataset.TableDir(next, t.Name), 0o755); err != nil {
			return nil, err
		}
		q := fmt.Sprintf("COPY (SELECT * FROM %s WHERE pid NOT IN (SELECT pid FROM gone)) TO %s %s",
			src, quote(dataset.TablePart(next, t.Name)), parquetCopyOptions)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("rewrite %s: %w", t.Name, err)
		}
	}
	// The internal tables (the registry of document versions) lose the same people;
	// they are no table's counts.
	for _, t := range InternalTables {
		if !tableExists(cfg.Out, t.Name) {
			continue
		}
		if err := os.MkdirAll(dataset.TableDir(next, t.Name), 0o755); err != nil {
			return nil, err
		}
		q := fmt.Sprintf("COPY (SELECT * FROM read_parquet(%s) WHERE pid NOT IN (SELECT pid FROM gone)) TO %s %s",
			quote(dataset.TableGlob(cfg.Out, t.Name)), quote(dataset.TablePart(next, t.Name)), parquetCopyOptions)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("rewrite %s: %w", t.Name, err)
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT count(DISTINCT pid) FROM ("+strings.Join(people, " UNION ALL ")+")").Scan(&removal.RemovedPeople); err != nil {
		return nil, err
	}
	man.Removals = append(man.Removals, removal)
	for name, n := range removal.RemovedRows {
		t := man.Tables[name]
		t.RemovedLater += n
		t.Written -= n
		man.Tables[name] = t
	}
	man.DatasetVersion = datasetVersion(man.DatasetVersion, man.KeyID, nil, man.Tables, fmt.Sprintf("removal:%d", len(man.Removals)))
	man.CreatedAt = cfg.Now().UTC()
	return man, commit(cfg.Out, next, man, cfg.crashAfter)
}
