// Command ingestbench measures `velo ingest` of a synthetic extract: wall time, records
// per second and peak resident memory of the process. With --format csv (the default)
// it ingests the CUP bookings CSV and compares against DuckDB's own CSV -> Parquet COPY
// of the same file; with --format fhir it ingests the FHIR NDJSON files, and with
// --format cda the HL7 CDA R2 documents (zip archives) of the same people. --format bundle
// writes the FHIR resources as one Bundle file and ingests it against the same resources
// as NDJSON; --format pdf injects each CDA document into a PDF and ingests the PDFs
// against the same documents as XML files (medians of --runs runs). --format append
// times the append of a second extract (another seed) to a dataset of the first, each
// build on its own first ingest: the CUP CSV, or with --fhir the FHIR NDJSON and the CSV.
//
//	go run ./bench/cmd/ingestbench --persons 1000000
//	go run ./bench/cmd/ingestbench --persons 200000 --runs 5 --before /tmp/velo-main   # against another build
//	go run ./bench/cmd/ingestbench --format cda --persons 14000   # about 100k documents
//	go run ./bench/cmd/ingestbench --format bundle --persons 20000 --runs 3
//	go run ./bench/cmd/ingestbench --format pdf --persons 2000 --runs 3
//	go run ./bench/cmd/ingestbench --format append --persons 1000000 --runs 3 --before /tmp/velo-main
//	go run ./bench/cmd/ingestbench --format append --fhir --persons 200000 --runs 2
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	persons := flag.Int("persons", 100000, "synthetic persons (bookings are ~2.5 per person, CDA documents ~7)")
	format := flag.String("format", "csv", "what to ingest: csv (CUP bookings, against DuckDB COPY), fhir (FHIR NDJSON), cda (CDA R2 documents), bundle (one FHIR Bundle, against NDJSON), pdf (CDA in PDFs, against XML files) or append (a second extract appended to the first)")
	withFHIR := flag.Bool("fhir", false, "--format append: the extracts' FHIR NDJSON as well as their CUP CSV")
	runs := flag.Int("runs", 3, "runs of each side for --format csv, bundle, pdf and append, taking turns (the figures are medians)")
	before := flag.String("before", "", "--format csv and append: a velo binary of another build (say main's) to run in turn with this one")
	work := flag.String("dir", filepath.Join(os.TempDir(), "velo-ingestbench"), "work directory (synthetic data is cached here per size)")
	flag.Parse()
	var err error
	switch *format {
	case "csv":
		err = run(*persons, max(1, *runs), *work, *before)
	case "fhir", "cda":
		err = runFormat(*format, *persons, *work)
	case "bundle", "pdf":
		err = runDocuments(*format, *persons, max(1, *runs), *work)
	case "append":
		err = runAppend(*persons, max(1, *runs), *work, *before, *withFHIR)
	default:
		err = fmt.Errorf("--format %q: want csv, fhir, cda, bundle, pdf or append", *format)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

type measure struct {
	wall   time.Duration
	cpu    time.Duration // user + system, of the process and its threads
	maxRSS int64         // bytes
}

// build makes the work directory and compiles velo and the DuckDB baseline into work/bin;
// it returns that folder and velo's path.
func build(work string) (bin, velo string, err error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", "", err
	}
	bin = filepath.Join(work, "bin")
	for _, b := range []struct{ out, pkg string }{{"velo", "./cmd/velo"}, {"duckcopy", "./bench/cmd/duckcopy"}} {
		fmt.Fprintf(os.Stderr, "building %s\n", b.pkg)
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return bin, filepath.Join(bin, "velo"), nil
}

// extract synthesises (once per size and formats) and returns its directory.
func extract(velo, work string, persons int, formats string) (string, error) {
	return extractSeed(velo, work, persons, formats, 1)
}

// extractSeed synthesises the extract of a seed (once per size, formats and seed).
func extractSeed(velo, work string, persons int, formats string, seed int) (string, error) {
	synthDir := filepath.Join(work, fmt.Sprintf("synth-%d", persons))
	if formats != "fhir,csv" {
		synthDir += "-" + strings.ReplaceAll(formats, ",", "-")
	}
	if seed != 1 {
		synthDir += fmt.Sprintf("-seed%d", seed)
	}
	if _, err := os.Stat(filepath.Join(synthDir, "synth.json")); err != nil {
		os.RemoveAll(synthDir)
		fmt.Fprintf(os.Stderr, "synthesising %d persons (%s, seed %d)\n", persons, formats, seed)
		if _, err := timed(velo, "synth", "--persons", fmt.Sprint(persons), "--seed", fmt.Sprint(seed), "--format", formats, "--out", synthDir); err != nil {
			return "", err
		}
	}
	return synthDir, nil
}

func key(velo, work string) (string, error) {
	key := filepath.Join(work, "bench.key")
	if _, err := os.Stat(key); err != nil {
		if _, err := timed(velo, "keys", "gen", "--out", key); err != nil {
			return "", err
		}
	}
	return key, nil
}

func run(persons, runs int, work, before string) error {
	bin, velo, err := build(work)
	if err != nil {
		return err
	}
	// The CUP CSV alone: the same bookings as an extract with FHIR too (synth writes each
	// format from the same people), without the FHIR files it would not read (11.5 GB at
	// 1M persons).
	synthDir, err := extract(velo, work, persons, "csv")
	if err != nil {
		return err
	}
	csv := filepath.Join(synthDir, "cup", "bookings.csv")
	rows, size, err := countLines(csv)
	if err != nil {
		return err
	}
	rows-- // header
	key, err := key(velo, work)
	if err != nil {
		return err
	}
	// The sides take turns, run after run, so that a change in the machine's load
	// touches them alike; the figures are medians.
	type side struct {
		name string
		run  func() (measure, error)
		ms   []measure
	}
	data := filepath.Join(work, "data")
	ingest := func(velo string) func() (measure, error) {
		return func() (measure, error) {
			os.RemoveAll(data)
			defer os.RemoveAll(data)
			return timed(velo, "ingest", "--key", key, "--out", data, csv)
		}
	}
	sides := []*side{{name: "velo ingest (parse, validate, HMAC, stage, pid sort, zstd Parquet)", run: ingest(velo)}}
	if before != "" {
		sides = append(sides, &side{name: "velo ingest, --before build (" + filepath.Base(before) + ")", run: ingest(before)})
	}
	out := filepath.Join(work, "duckdb.parquet")
	sides = append(sides, &side{name: "DuckDB COPY CSV -> Parquet (zstd)", run: func() (measure, error) {
		os.Remove(out)
		return timed(filepath.Join(bin, "duckcopy"), csv, out)
	}})
	var loads []string
	for r := range runs {
		for _, s := range sides {
			fmt.Fprintf(os.Stderr, "run %d: %s\n", r+1, s.name)
			m, err := s.run()
			if err != nil {
				return err
			}
			s.ms = append(s.ms, m)
		}
		loads = append(loads, loadAverage())
	}
	fmt.Printf("ingest of %d bookings (%d persons, %.1f MiB CSV) on %d CPUs, %s, median of %d alternated runs\n\n", rows, persons, float64(size)/(1<<20), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runs)
	fmt.Printf("load average (1, 5, 15 min) after each run: %s\n\n", strings.Join(loads, "; "))
	med := func(s *side) measure {
		var w, c, r []int64
		for _, m := range s.ms {
			w, c, r = append(w, int64(m.wall)), append(c, int64(m.cpu)), append(r, m.maxRSS)
		}
		return measure{wall: time.Duration(median(w)), cpu: time.Duration(median(c)), maxRSS: median(r)}
	}
	d := med(sides[len(sides)-1])
	fmt.Printf("| | wall | rows/s | CPU (user+sys) | peak RSS | throughput vs COPY | CPU vs COPY |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range sides {
		m := med(s)
		fmt.Printf("| %s | %.2f s | %.0f | %.2f s | %.0f MiB | %.2f× | %.2f× |\n", s.name, m.wall.Seconds(), float64(rows)/m.wall.Seconds(), m.cpu.Seconds(), float64(m.maxRSS)/(1<<20),
			d.wall.Seconds()/m.wall.Seconds(), m.cpu.Seconds()/d.cpu.Seconds())
	}
	fmt.Printf("\nevery run (wall / CPU / peak RSS):\n")
	for _, s := range sides {
		var parts []string
		for _, m := range s.ms {
			parts = append(parts, fmt.Sprintf("%.2f s / %.2f s / %.0f MiB", m.wall.Seconds(), m.cpu.Seconds(), float64(m.maxRSS)/(1<<20)))
		}
		fmt.Printf("- %s: %s\n", s.name, strings.Join(parts, "; "))
	}
	return nil
}

func loadAverage() string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	return strings.Join(f[:min(3, len(f))], " ")
}

// runFormat ingests the FHIR NDJSON or the CDA documents of one synthetic extract. The
// two hold the same people, so their figures compare the readers.
func runFormat(format string, persons int, work string) error {
	bin, velo, err := build(work)
	if err != nil {
		return err
	}
	synthDir, err := extract(velo, work, persons, "fhir,csv,cda")
	if err != nil {
		return err
	}
	var rep struct {
		Files map[string]struct {
			Records int64 `json:"records"`
			Bytes   int64 `json:"bytes"`
		} `json:"files"`
		CDADocuments int64 `json:"cda_documents"`
	}
	js, err := os.ReadFile(filepath.Join(synthDir, "synth.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		return err
	}
	input, prefix := filepath.Join(synthDir, "fhir", "ndjson"), "fhir/ndjson/"
	if format == "cda" {
		input, prefix = filepath.Join(synthDir, "cda"), "cda/"
	}
	var records, size int64
	for name, f := range rep.Files {
		if strings.HasPrefix(name, prefix) {
			records += f.Records
			size += f.Bytes
		}
	}
	key, err := key(velo, work)
	if err != nil {
		return err
	}
	data := filepath.Join(work, "data-"+format)
	os.RemoveAll(data)
	fmt.Fprintf(os.Stderr, "velo ingest %s ...\n", input)
	v, err := timed(velo, "ingest", "--key", key, "--out", data, input)
	if err != nil {
		return err
	}
	var d measure
	if format == "fhir" {
		out := filepath.Join(work, "duckdb-fhir")
		os.RemoveAll(out)
		fmt.Fprintln(os.Stderr, "duckdb COPY of each NDJSON file ...")
		if d, err = timed(filepath.Join(bin, "duckcopy"), input, out); err != nil {
			return err
		}
	}
	what := fmt.Sprintf("%d FHIR NDJSON resources", records)
	if format == "cda" {
		what = fmt.Sprintf("%d CDA R2 documents (%d records; %.1f MiB of zip archives)", rep.CDADocuments, records, float64(size)/(1<<20))
	}
	fmt.Printf("ingest of %s, %d persons, on %d CPUs, %s\n\n", what, persons, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH)
	fmt.Printf("| | wall | records/s | documents/s | CPU (user+sys) | peak RSS |\n|---|---|---|---|---|---|\n")
	docs := "–"
	if format == "cda" {
		docs = fmt.Sprintf("%.0f", float64(rep.CDADocuments)/v.wall.Seconds())
	}
	fmt.Printf("| velo ingest %s (parse, map, HMAC, stage, pid sort, zstd Parquet) | %.2f s | %.0f | %s | %.2f s | %.0f MiB |\n",
		format, v.wall.Seconds(), float64(records)/v.wall.Seconds(), docs, v.cpu.Seconds(), float64(v.maxRSS)/(1<<20))
	if format == "fhir" {
		fmt.Printf("| DuckDB COPY of each NDJSON file -> Parquet (zstd; read_json, schema inferred) | %.2f s | %.0f | – | %.2f s | %.0f MiB |\n",
			d.wall.Seconds(), float64(records)/d.wall.Seconds(), d.cpu.Seconds(), float64(d.maxRSS)/(1<<20))
		fmt.Printf("| ratio velo / DuckDB | %.2f× (throughput %.2f× COPY's) | | | %.2f× | %.2f× |\n", v.wall.Seconds()/d.wall.Seconds(), d.wall.Seconds()/v.wall.Seconds(), v.cpu.Seconds()/d.cpu.Seconds(), float64(v.maxRSS)/float64(d.maxRSS))
	}
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
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.maxRSS = ru.Maxrss * 1024 // Linux reports KiB
			m.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s %v: %v\n%s", filepath.Base(name), args[0], err, stderr.String())
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
