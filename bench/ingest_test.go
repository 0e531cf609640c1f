package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

// bookingsCSV synthesises the bookings CSV of n persons (nothing else) and returns it and its
// number of records.
func bookingsCSV(b *testing.B, n int) (string, int64) {
	b.Helper()
	if testing.Short() {
		b.Skip("synthesises an extract")
	}
	dir := b.TempDir()
	period, _ := fse.ParsePeriod("2024-01..2025-12")
	rep, err := synth.Generate(context.Background(), synth.Config{Persons: n, Seed: 1, Out: filepath.Join(dir, "synth"), From: period.From, To: period.To, Formats: []synth.Format{synth.FormatCSV}})
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "synth", "cup", "bookings.csv"), rep.Files["cup/bookings.csv"].Records
}

// BenchmarkIngestBookings measures velo ingest of a CUP bookings CSV (parse, validate,
// HMAC pseudonyms, stage, sort by pid, zstd Parquet) against DuckDB's own CSV -> Parquet
// COPY of the same file; compare the two rows/s figures. At scale:
// go run ./bench/cmd/ingestbench --persons 1000000.
func BenchmarkIngestBookings(b *testing.B) {
	csv, rows := bookingsCSV(b, 40000)
	k, _ := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	ps := pseudonymize.New(k)
	b.Run("velo", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(b.TempDir(), fmt.Sprint("data", i))
			if _, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: ps, Out: out, Inputs: []string{csv}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("duckdb", func(b *testing.B) {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for i := 0; b.Loop(); i++ {
			out := filepath.Join(b.TempDir(), fmt.Sprint("copy", i, ".parquet"))
			if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet, COMPRESSION zstd)", csv, out)); err != nil {
				b.Fatal(err)
			}
			os.Remove(out)
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
