// Command duckcopy is the baseline of the ingest benchmark: DuckDB's own CSV -> Parquet
// COPY of a file, as a separate process so its time and peak memory can be measured. Given
// a directory of NDJSON files (FHIR bulk export), it COPYs each file to its own Parquet
// file in OUT (a directory), reading it with read_json (newline-delimited, the schema
// inferred, malformed lines skipped).
//
//	duckcopy IN.csv OUT.parquet
//	duckcopy NDJSON-DIR OUT-DIR
package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: duckcopy IN.csv OUT.parquet | duckcopy NDJSON-DIR OUT-DIR")
		os.Exit(2)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		fail(err)
	}
	defer db.Close()
	in, out := os.Args[1], os.Args[2]
	if fi, err := os.Stat(in); err == nil && fi.IsDir() {
		files, err := filepath.Glob(filepath.Join(in, "*.ndjson"))
		if err != nil || len(files) == 0 {
			fail(fmt.Errorf("no .ndjson files in %s", in))
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			fail(err)
		}
		for _, f := range files {
			dst := filepath.Join(out, strings.TrimSuffix(filepath.Base(f), ".ndjson")+".parquet")
			q := fmt.Sprintf("COPY (SELECT * FROM read_json('%s', format = 'newline_delimited', ignore_errors = true)) TO '%s' (FORMAT parquet, COMPRESSION zstd)", esc(f), esc(dst))
			if _, err := db.Exec(q); err != nil {
				fail(fmt.Errorf("%s: %w", filepath.Base(f), err))
			}
		}
		return
	}
	q := fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd)", esc(in), esc(out))
	if _, err := db.Exec(q); err != nil {
		fail(err)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "'", "''") }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "duckcopy:", err)
	os.Exit(1)
}
