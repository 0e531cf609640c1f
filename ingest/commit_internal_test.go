package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/pseudonymize"
)

// fingerprint maps every file of a dataset (tables, catalog, manifest, quarantine; not the
// lock) to the SHA-256 of its content.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	fp := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() == lockFileName {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h := sha256.Sum256(b)
		fp[rel] = hex.EncodeToString(h[:8])
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return fp
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
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

// leftovers lists DATA's hidden entries other than the lock: working folders, .commit.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && e.Name() != lockFileName {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestCommitInterruptedAtEveryStep stops a first ingest, an append and a removal of opted-out
// people after each step of their commit, as a crash there would, and then recovers. A
// reader is refused while the commit is unfinished; after recovery DATA is, byte for byte,
// the version before (the commit is rolled back) or the version after (it passed its commit
// point), never a mix, with no working folder left; a rolled-back ingest run again gives the
// version a run without a crash gives.
func TestCommitInterruptedAtEveryStep(t *testing.T) {
	k, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	ps := pseudonymize.New(k)
	now := func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
	ctx := context.Background()
	gatewayFHIR := filepath.Join(testenv.Fixtures(t, "fse-gateway-examples"), "FHIR")
	reg, err := pseudonymize.ReadOptOut(strings.NewReader("GTWGWY82B42G920M\n"), "later.txt")
	if err != nil {
		t.Fatal(err)
	}
	first := func(out string, crashAfter int) (*dataset.Manifest, error) {
		return Run(ctx, Config{Pseudonymizer: ps, Out: out, Inputs: []string{filepath.Join(gatewayFHIR, "LAB.json")},
			MemoryLimit: "512MB", Workers: 2, Now: now, crashAfter: crashAfter})
	}
	appendRun := func(out string, crashAfter int) (*dataset.Manifest, error) {
		return Run(ctx, Config{Pseudonymizer: ps, Out: out, Append: true, Inputs: []string{filepath.Join(gatewayFHIR, "CERT_VACC.json"), filepath.Join(gatewayFHIR, "PSS.json")},
			MemoryLimit: "512MB", Workers: 2, Now: now, crashAfter: crashAfter})
	}
	remove := func(out string, crashAfter int) (*dataset.Manifest, error) {
		return RemoveOptedOut(ctx, RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: out, MemoryLimit: "512MB", Now: now, crashAfter: crashAfter})
	}
	// The base each scenario starts from: nothing, one batch, two batches.
	bases := []string{filepath.Join(t.TempDir(), "none"), filepath.Join(t.TempDir(), "v1"), filepath.Join(t.TempDir(), "v2")}
	if _, err := first(bases[1], 0); err != nil {
		t.Fatal(err)
	}
	copyTree(t, bases[1], bases[2])
	if _, err := appendRun(bases[2], 0); err != nil {
		t.Fatal(err)
	}
	for i, sc := range []struct {
		name string
		run  func(out string, crashAfter int) (*dataset.Manifest, error)
	}{{"first ingest", first}, {"append", appendRun}, {"remove opted out", remove}} {
		t.Run(sc.name, func(t *testing.T) {
			base := bases[i]
			if err := os.MkdirAll(base, 0o755); err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, base)
			ref := filepath.Join(t.TempDir(), "ref")
			copyTree(t, base, ref)
			want, err := sc.run(ref, 0)
			if err != nil {
				t.Fatal(err)
			}
			after := fingerprint(t, ref)
			// The new version prepared and renamed to .commit, nothing moved yet: each crash
			// point below starts from a copy of this.
			prepared := filepath.Join(t.TempDir(), "prepared")
			copyTree(t, base, prepared)
			if _, err := sc.run(prepared, 1); !errors.Is(err, errCrashed) {
				t.Fatalf("stopped before the first step: %v", err)
			}
			var rolledBack []int
			completed := 0
			// Run again after a roll-back: the version a run without a crash gives, byte
			// for byte.
			runAgain := func(step int, dir string) {
				t.Helper()
				again, err := sc.run(dir, 0)
				if err != nil {
					t.Fatalf("step %d: run again after the roll-back: %v", step, err)
				}
				if again.DatasetVersion != want.DatasetVersion {
					t.Errorf("step %d: run again: version %s, want %s", step, again.DatasetVersion, want.DatasetVersion)
				}
				if diff := cmp.Diff(after, fingerprint(t, dir)); diff != "" {
					t.Errorf("step %d: run again: DATA differs from a run without a crash (-want +got):\n%s", step, diff)
				}
			}
			var lastRolledBack string
			for step := 1; ; step++ {
				dir := filepath.Join(t.TempDir(), "data")
				copyTree(t, prepared, dir)
				b, err := os.ReadFile(filepath.Join(dataset.CommitPath(dir), commitList))
				if err != nil {
					t.Fatal(err)
				}
				var cm commitManifest
				if err := json.Unmarshal(b, &cm); err != nil || cm.Version != want.DatasetVersion {
					t.Fatalf("commit.json: %v %s", err, b)
				}
				if err := applyCommit(dir, cm.Items, step); err == nil {
					if step < 4 {
						t.Fatalf("the commit has %d steps", step-1)
					}
					if diff := cmp.Diff(after, fingerprint(t, dir)); diff != "" {
						t.Fatalf("the whole commit does not give the version after (-after +got):\n%s", diff)
					}
					break
				} else if !errors.Is(err, errCrashed) {
					t.Fatalf("step %d: %v", step, err)
				}
				if err := dataset.CheckCommitted(dir); !errors.Is(err, dataset.ErrUnfinishedCommit) || !strings.Contains(err.Error(), "velo ingest --recover") {
					t.Errorf("step %d: a reader is not refused: %v", step, err)
				}
				var logs bytes.Buffer
				rec, err := Recover(dir, slog.New(slog.NewTextHandler(&logs, nil)))
				if err != nil {
					t.Fatalf("step %d: recover: %v", step, err)
				}
				if err := dataset.CheckCommitted(dir); err != nil {
					t.Errorf("step %d: after recovery: %v", step, err)
				}
				if l := leftovers(t, dir); len(l) > 0 {
					t.Errorf("step %d: left behind: %v", step, l)
				}
				got := fingerprint(t, dir)
				switch {
				case rec.RolledBack && !rec.Completed:
					rolledBack = append(rolledBack, step)
					if diff := cmp.Diff(before, got); diff != "" {
						t.Fatalf("step %d: rolled back, but DATA is not the version before (-before +got):\n%s", step, diff)
					}
					if !strings.Contains(logs.String(), "rolled it back; run it again") {
						t.Errorf("step %d: the log does not say the ingest was rolled back:\n%s", step, logs.String())
					}
				case rec.Completed && !rec.RolledBack:
					completed++
					if diff := cmp.Diff(after, got); diff != "" {
						t.Fatalf("step %d: committed, but DATA is not the version after (-after +got):\n%s", step, diff)
					}
					if rec.Version != want.DatasetVersion {
						t.Errorf("step %d: recovered version %s, want %s", step, rec.Version, want.DatasetVersion)
					}
				default:
					t.Fatalf("step %d: recovery %+v", step, rec)
				}
				if rec.RolledBack {
					lastRolledBack = dir
					if len(rolledBack) == 1 {
						runAgain(step, dir)
					}
				}
			}
			runAgain(rolledBack[len(rolledBack)-1], lastRolledBack)
			if len(rolledBack) == 0 || completed != 1 {
				t.Errorf("crashes at steps %v rolled back, %d completed; want some and one (after the commit point)", rolledBack, completed)
			}
			t.Logf("%d crash points: %d rolled back, %d completed", len(rolledBack)+completed, len(rolledBack), completed)
		})
	}
}

// TestRecoverRemovesWorkingFolders: the working folders a killed ingest leaves (and those
// of the layout before .commit) are removed by the next ingest, which says so.
func TestRecoverRemovesWorkingFolders(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".ingest-123/next/booking", ".remove-9/spill", ".next/person", ".old-booking"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	rec, err := Recover(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Removed) != 4 || rec.RolledBack || rec.Completed || rec.Version != "" {
		t.Errorf("recovery: %+v", rec)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	if n := strings.Count(logs.String(), "removed the working folder of an interrupted ingest"); n != 4 {
		t.Errorf("%d messages for 4 folders:\n%s", n, logs.String())
	}
}

// An ingest's memory limit is the process's budget: DuckDB gets a third of it, in the
// units DuckDB reads; what does not parse goes to DuckDB as given, for its own error.
func TestDuckDBMemoryLimit(t *testing.T) {
	for in, want := range map[string]string{
		"1GB": "333MB", "512MB": "170MB", "2GiB": "715MB", "1.5gb": "500MB", " 900 MiB ": "314MB",
		"3000000000 bytes": "1000MB", "1KB": "1MB", "lots": "lots", "1XB": "1XB", "": "",
	} {
		if got := duckDBMemoryLimit(in); got != want {
			t.Errorf("duckDBMemoryLimit(%q) = %q, want %q", in, got, want)
		}
	}
	// DuckDB takes what it gives.
	ctx := context.Background()
	for _, in := range []string{"1GB", "2GiB", "1KB"} {
		connector, db, err := openDuckDB(ctx, "", duckDBSettings{MemoryLimit: duckDBMemoryLimit(in), Threads: 1, TempDir: t.TempDir()})
		if err == nil {
			err = db.Ping()
		}
		if err != nil {
			t.Errorf("%s: %v", in, err)
		}
		if db != nil {
			db.Close()
			connector.Close()
		}
	}
}
