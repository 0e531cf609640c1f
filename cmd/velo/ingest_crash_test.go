package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/query"
)

// datasetView is what a reader finds in DATA: the version the engine opens (or why it
// refuses) and each table's row count.
type datasetView struct {
	version string
	err     error
	rows    map[string]int64
}

func readDataset(t *testing.T, dir string) datasetView {
	t.Helper()
	var v datasetView
	eng, err := query.Open(context.Background(), query.Config{DataDir: dir, Limits: query.Limits{MemoryLimit: "256MB", Threads: 1}})
	if err != nil {
		v.err = err
		return v
	}
	v.version = eng.DatasetVersion()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v.rows = map[string]int64{}
	for _, tb := range ingest.Tables {
		var n int64
		if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", filepath.Join(dir, tb.Name, "*.parquet"))).Scan(&n); err != nil {
			t.Fatalf("read %s: %v", tb.Name, err)
		}
		v.rows[tb.Name] = n
	}
	return v
}

func (v datasetView) sameAs(w datasetView) bool {
	if v.version != w.version || len(v.rows) != len(w.rows) {
		return false
	}
	for k, n := range v.rows {
		if w.rows[k] != n {
			return false
		}
	}
	return true
}

// hidden lists DATA's hidden entries other than the ingest lock: working folders, .commit.
func hidden(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && e.Name() != ".ingest.lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKillIngest: velo ingest, the real binary, is killed with SIGKILL eight times, half of
// them first ingests and half appends to a dataset, at a random moment or the moment its
// commit starts. After each kill a reader (query.Open, then the Parquet files themselves)
// finds the version before, the version after, or nothing (refused with a clear error),
// never a mix; running the same ingest again (or velo ingest --recover once the commit
// point was passed) succeeds, says what it cleaned up, leaves no working folder, and gives
// the version a run without a kill gives. VELO_KILL_SEED replays a run.
func TestKillIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds velo and kills it eight times")
	}
	bin := veloBinary(t)
	work := t.TempDir()
	key := filepath.Join(work, "k.key")
	if out, err := runVelo(t, "keys", "gen", "--out", key); err != nil {
		t.Fatalf("keys gen: %v\n%s", err, out)
	}
	srcA, srcB := filepath.Join(work, "a"), filepath.Join(work, "b")
	for i, src := range []string{srcA, srcB} {
		if out, err := runVelo(t, "synth", "--persons", "1000", "--seed", strconv.Itoa(i+1), "--out", src); err != nil {
			t.Fatalf("synth: %v\n%s", err, out)
		}
	}
	ingestArgs := func(out string, appendB bool) []string {
		if appendB {
			return []string{"ingest", "--key", key, "--out", out, "--period", "2024-01..2025-12", "--memory-limit", "256MB", "--append", srcB}
		}
		return []string{"ingest", "--key", key, "--out", out, "--period", "2024-01..2025-12", "--memory-limit", "256MB", srcA}
	}
	// The versions without a kill: v1 (a), v2 (a, then b appended).
	ref1, ref2 := filepath.Join(work, "ref1"), filepath.Join(work, "ref2")
	start := time.Now()
	if out, err := runVelo(t, ingestArgs(ref1, false)...); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	took1 := time.Since(start)
	copyDir(t, ref1, ref2)
	start = time.Now()
	if out, err := runVelo(t, ingestArgs(ref2, true)...); err != nil {
		t.Fatalf("append: %v\n%s", err, out)
	}
	took2 := time.Since(start)
	v1, v2 := readDataset(t, ref1), readDataset(t, ref2)
	if v1.err != nil || v2.err != nil || v1.version == v2.version {
		t.Fatalf("reference datasets: %v %v", v1.err, v2.err)
	}
	t.Logf("without a kill: ingest %v (%s), append %v (%s)", took1.Round(time.Millisecond), v1.version, took2.Round(time.Millisecond), v2.version)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VELO_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("VELO_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	counts := map[string]int{}
	for trial := range 8 {
		appendB := trial%2 == 1
		atCommit := trial%4 >= 2 // else at a random moment
		dir := filepath.Join(t.TempDir(), "data")
		before, after, took := datasetView{}, v2, took2
		if appendB {
			copyDir(t, ref1, dir)
			before = v1
		} else {
			after, took = v1, took1
		}
		p := startProc(t, append([]string{bin}, ingestArgs(dir, appendB)...)...)
		if atCommit {
			tick := time.NewTicker(time.Millisecond)
		watch:
			for {
				select {
				case <-p.done:
					break watch
				case <-tick.C:
					if _, err := os.Lstat(dataset.CommitPath(dir)); err == nil {
						break watch
					}
				}
			}
			tick.Stop()
		} else {
			select {
			case <-p.done:
			case <-time.After(time.Duration(rng.Int64N(int64(took) * 9 / 10))):
			}
		}
		p.kill()
		finished := p.err == nil

		// What a reader finds.
		view := readDataset(t, dir)
		var seen string
		switch {
		case view.err == nil && view.sameAs(before):
			seen = "the version before"
		case view.err == nil && view.sameAs(after):
			seen = "the version after"
		case view.err == nil:
			t.Fatalf("trial %d: a reader finds version %s with rows %v: neither %s %v nor %s %v", trial, view.version, view.rows, before.version, before.rows, after.version, after.rows)
		case errors.Is(view.err, dataset.ErrUnfinishedCommit):
			seen = "an unfinished commit (refused)"
		case !appendB && errors.Is(view.err, fs.ErrNotExist):
			seen = "nothing"
		default:
			t.Fatalf("trial %d: the reader's error is not a clear one: %v", trial, view.err)
		}
		left := hidden(dir)
		_, pending := os.Lstat(dataset.ManifestPath(dataset.CommitPath(dir)))
		committed := seen == "the version after" || (seen == "an unfinished commit (refused)" && pending != nil)
		counts[seen]++

		// Settle: run the same ingest again, or only recover a commit that was complete.
		var out string
		var err error
		if committed {
			out, err = runVelo(t, "ingest", "--recover", "--out", dir)
		} else {
			out, err = runVelo(t, ingestArgs(dir, appendB)...)
		}
		if err != nil {
			t.Fatalf("trial %d: after the kill (%s): %v\n%s", trial, seen, err, out)
		}
		if len(left) > 0 && !strings.Contains(out, "interrupted ingest") {
			t.Errorf("trial %d: %v were left behind, and the next run does not say it settled them:\n%s", trial, left, out)
		}
		if l := hidden(dir); len(l) > 0 {
			t.Errorf("trial %d: still left behind: %v", trial, l)
		}
		if final := readDataset(t, dir); final.err != nil || !final.sameAs(after) {
			t.Errorf("trial %d: after settling, a reader finds %s %v (%v), want %s %v", trial, final.version, final.rows, final.err, after.version, after.rows)
		}
		kind := "ingest"
		if appendB {
			kind = "append"
		}
		moment := "at random"
		if atCommit {
			moment = "at its commit"
		}
		t.Logf("trial %d: %s killed %s (finished first: %v): a reader found %s; left %v; settled by %s", trial, kind, moment, finished, seen, left,
			map[bool]string{true: "--recover", false: "running it again"}[committed])
	}
	t.Logf("8 kills: %v", counts)
}
