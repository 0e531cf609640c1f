package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// runAppend times an ingest of one extract (seed 1) and the append of a second (seed 2)
// to its dataset, for this build and the --before one in turn: the CUP CSV, or with
// withFHIR the FHIR NDJSON and the CSV. Each build appends to its own first ingest. An
// ingest that fails (out of memory, say) is reported as such, with its peak memory.
func runAppend(persons, runs int, work, before string, withFHIR bool) error {
	_, velo, err := build(work)
	if err != nil {
		return err
	}
	formats := "csv"
	if withFHIR {
		formats = "fhir,csv"
	}
	var inputs [2]string
	for i := range inputs {
		dir, err := extractSeed(velo, work, persons, formats, i+1)
		if err != nil {
			return err
		}
		inputs[i] = dir
		if !withFHIR {
			inputs[i] = filepath.Join(dir, "cup", "bookings.csv")
		}
	}
	key, err := key(velo, work)
	if err != nil {
		return err
	}
	type run struct {
		m   measure
		err error
	}
	type side struct {
		name          string
		velo          string
		first, append []run
	}
	sides := []*side{{name: "this build", velo: velo}}
	if before != "" {
		sides = append(sides, &side{name: "--before build (" + filepath.Base(before) + ")", velo: before})
	}
	data := filepath.Join(work, "data-append")
	var loads []string
	for r := range runs {
		for _, s := range sides {
			os.RemoveAll(data)
			fmt.Fprintf(os.Stderr, "run %d: %s: ingest, then append\n", r+1, s.name)
			m, err := timed(s.velo, "ingest", "--key", key, "--out", data, inputs[0])
			s.first = append(s.first, run{m, err})
			if err != nil {
				s.append = append(s.append, run{err: fmt.Errorf("no first ingest")})
				continue
			}
			m, err = timed(s.velo, "ingest", "--append", "--key", key, "--out", data, inputs[1])
			s.append = append(s.append, run{m, err})
		}
		loads = append(loads, loadAverage())
	}
	os.RemoveAll(data)
	fmt.Printf("ingest of a %d-person extract (%s), then the append of another (seed 2), on %d CPUs, %s, %d alternated runs\n\n", persons, formats, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runs)
	fmt.Printf("load average (1, 5, 15 min) after each run: %s\n\n", strings.Join(loads, "; "))
	fmt.Printf("| build | step | wall (median) | CPU (median) | peak RSS (max) | every run: wall / peak RSS |\n|---|---|---:|---:|---:|---|\n")
	for _, s := range sides {
		for _, step := range []struct {
			name string
			runs []run
		}{{"first ingest", s.first}, {"append", s.append}} {
			var w, c []int64
			var peak int64
			var each []string
			for _, r := range step.runs {
				peak = max(peak, r.m.maxRSS)
				if r.err != nil {
					each = append(each, fmt.Sprintf("fails (%s) at %.0f MiB", firstLine(r.err), float64(r.m.maxRSS)/(1<<20)))
					continue
				}
				w, c = append(w, int64(r.m.wall)), append(c, int64(r.m.cpu))
				each = append(each, fmt.Sprintf("%.2f s / %.0f MiB", r.m.wall.Seconds(), float64(r.m.maxRSS)/(1<<20)))
			}
			wall, cpu := "fails", ""
			if len(w) > 0 {
				wall = fmt.Sprintf("%.2f s", time.Duration(median(w)).Seconds())
				cpu = fmt.Sprintf("%.2f s", time.Duration(median(c)).Seconds())
			}
			fmt.Printf("| %s | %s | %s | %s | %.0f MiB | %s |\n", s.name, step.name, wall, cpu, float64(peak)/(1<<20), strings.Join(each, "; "))
		}
	}
	return nil
}

// firstLine is the first line of an error that names what failed (DuckDB's own message,
// say), cut short.
func firstLine(err error) string {
	msg := err.Error()
	for _, l := range strings.Split(msg, "\n") {
		if strings.Contains(l, "Error") || strings.Contains(l, "velo:") {
			msg = l
			break
		}
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	return msg
}
