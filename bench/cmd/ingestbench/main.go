// Command ingestbench measures `velo ingest` of a CUP bookings CSV against DuckDB's own
// CSV -> Parquet COPY of the same file: wall time, rows per second and peak resident
// memory of each process, and their ratios.
//
//	go run ./bench/cmd/ingestbench --persons 1000000
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

func main() {
	persons := flag.Int("persons", 100000, "synthetic persons (bookings are ~2.5 per person)")
	work := flag.String("dir", filepath.Join(os.TempDir(), "velo-ingestbench"), "work directory (synthetic data is cached here per size)")
	flag.Parse()
	if err := run(*persons, *work); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

type measure struct {
	wall   time.Duration
	maxRSS int64 // bytes
}

func run(persons int, work string) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(work, "bin")
	for _, b := range []struct{ out, pkg string }{{"velo", "./cmd/velo"}, {"duckcopy", "./bench/cmd/duckcopy"}} {
		fmt.Fprintf(os.Stderr, "building %s\n", b.pkg)
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	velo := filepath.Join(bin, "velo")
	synthDir := filepath.Join(work, fmt.Sprintf("synth-%d", persons))
	csv := filepath.Join(synthDir, "cup", "bookings.csv")
	if _, err := os.Stat(csv); err != nil {
		os.RemoveAll(synthDir)
		fmt.Fprintf(os.Stderr, "synthesising %d persons\n", persons)
		if _, err := timed(velo, "synth", "--persons", fmt.Sprint(persons), "--seed", "1", "--out", synthDir); err != nil {
			return err
		}
	}
	rows, size, err := countLines(csv)
	if err != nil {
		return err
	}
	rows-- // header
	key := filepath.Join(work, "bench.key")
	if _, err := os.Stat(key); err != nil {
		if _, err := timed(velo, "keys", "gen", "--out", key); err != nil {
			return err
		}
	}
	data := filepath.Join(work, "data")
	os.RemoveAll(data)
	fmt.Fprintln(os.Stderr, "velo ingest ...")
	v, err := timed(velo, "ingest", "--key", key, "--out", data, csv)
	if err != nil {
		return err
	}
	out := filepath.Join(work, "duckdb.parquet")
	os.Remove(out)
	fmt.Fprintln(os.Stderr, "duckdb COPY ...")
	d, err := timed(filepath.Join(bin, "duckcopy"), csv, out)
	if err != nil {
		return err
	}
	fmt.Printf("ingest of %d bookings (%d persons, %.1f MiB CSV) on %d CPUs, %s\n\n", rows, persons, float64(size)/(1<<20), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH)
	fmt.Printf("| | wall | rows/s | peak RSS |\n|---|---|---|---|\n")
	fmt.Printf("| velo ingest (parse, validate, HMAC, stage, pid sort, zstd Parquet) | %.2f s | %.0f | %.0f MiB |\n", v.wall.Seconds(), float64(rows)/v.wall.Seconds(), float64(v.maxRSS)/(1<<20))
	fmt.Printf("| DuckDB COPY CSV -> Parquet (zstd) | %.2f s | %.0f | %.0f MiB |\n", d.wall.Seconds(), float64(rows)/d.wall.Seconds(), float64(d.maxRSS)/(1<<20))
	fmt.Printf("| ratio velo / DuckDB | %.2f× | | %.2f× |\n", v.wall.Seconds()/d.wall.Seconds(), float64(v.maxRSS)/float64(d.maxRSS))
	return nil
}

func timed(name string, args ...string) (measure, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	m := measure{wall: time.Since(start)}
	if err != nil {
		return m, fmt.Errorf("%s %v: %v\n%s", filepath.Base(name), args[0], err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	return m, nil
}

func countLines(path string) (int64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, _ := f.Stat()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n, st.Size(), sc.Err()
}
