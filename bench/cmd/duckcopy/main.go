// Command duckcopy is the baseline of the ingest benchmark: DuckDB's own CSV -> Parquet
// COPY of a file, as a separate process so its time and peak memory can be measured.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: duckcopy IN.csv OUT.parquet")
		os.Exit(2)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		fail(err)
	}
	defer db.Close()
	q := fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd)", esc(os.Args[1]), esc(os.Args[2]))
	if _, err := db.Exec(q); err != nil {
		fail(err)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "'", "''") }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "duckcopy:", err)
	os.Exit(1)
}
