package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the replicas are written by DuckDB

	"github.com/velo-fse/velo/dataset"
)

// ReplicateDataset returns src's extract repeated k times as SRC-xK beside it, building it
// when absent: the benchmark's way to a size (100M bookings) that synthesising and ingesting
// would take hours to reach on this machine. Every table is copied k times, replica i with
// each pseudonym's last byte XORed with i, so the replicas' persons are distinct people to
// the engine (a person's rows stay together, their ranks and every other column as they
// were) and each file stays sorted by pid, as ingest writes it. The catalog and manifest are
// src's: the public domains, bounds and period do not change with the number of people.
// Replicas share their values, so a query's answer is k times src's (its per-person
// distribution unchanged): what changes is only how much data the engine reads.
func ReplicateDataset(ctx context.Context, src string, k int) (string, error) {
	if k < 2 || k > 256 {
		return "", fmt.Errorf("replicate: k = %d: want 2..256", k)
	}
	dst := fmt.Sprintf("%s-x%d", strings.TrimSuffix(src, string(filepath.Separator)), k)
	if _, err := dataset.ReadManifest(dst); err == nil {
		return dst, nil
	}
	cat, err := dataset.ReadCatalog(src)
	if err != nil {
		return "", err
	}
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "SET preserve_insertion_order = true"); err != nil {
		return "", err
	}
	start := time.Now()
	for _, t := range cat.Tables {
		files, err := filepath.Glob(filepath.Join(src, t.Path))
		if err != nil || len(files) == 0 {
			return "", fmt.Errorf("replicate %s: no files match %s", t.Name, t.Path)
		}
		dir := filepath.Join(tmp, filepath.Dir(t.Path))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		pid := ""
		for _, c := range t.Columns {
			if c.Name == "pid" {
				pid = "pid"
			}
		}
		for i := range k {
			out := filepath.Join(dir, fmt.Sprintf("part-r%d.parquet", i))
			sel := "*"
			if pid != "" && i > 0 {
				// The pid's text form ends in its last byte's two hex digits.
				sel = fmt.Sprintf("* REPLACE (CAST(left(CAST(pid AS VARCHAR), 34) || lpad(lower(hex(xor(CAST(('0x' || right(CAST(pid AS VARCHAR), 2)) AS INTEGER), %d))), 2, '0') AS UUID) AS pid)", i)
			}
			q := fmt.Sprintf("COPY (SELECT %s FROM read_parquet(%s)) TO %s (FORMAT parquet, COMPRESSION zstd)", sel, sqlList(files), sqlString(out))
			if _, err := db.ExecContext(ctx, q); err != nil {
				return "", fmt.Errorf("replicate %s (replica %d): %w", t.Name, i, err)
			}
		}
		fmt.Fprintf(os.Stderr, "replicated %s ×%d (%s)\n", t.Name, k, time.Since(start).Round(time.Second))
	}
	if err := copyFile(dataset.CatalogPath(src), dataset.CatalogPath(tmp)); err != nil {
		return "", err
	}
	// The manifest's counts are those of the replicated extract.
	m, err := dataset.ReadManifest(src)
	if err != nil {
		return "", err
	}
	for name, c := range m.Tables {
		c.Read, c.Written, c.Quarantined, c.OptedOut, c.OutsidePeriod = c.Read*int64(k), c.Written*int64(k), c.Quarantined*int64(k), c.OptedOut*int64(k), c.OutsidePeriod*int64(k)
		m.Tables[name] = c
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dataset.ManifestPath(tmp), append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dst); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func sqlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = sqlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
