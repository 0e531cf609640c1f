package ingest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/velo-fse/velo/pseudonymize"
)

// TestPatientIndexMatchesAMap runs files of Patients through the index as ingestFile does
// (each file's into a fresh index, absorbed by the earlier files' when it ends) and
// checks it against plain maps after every file: every key finds what the map holds (the
// last entry added of it), keys never added find nothing. Keys repeat within a file and
// across files. From one entry in memory (every add writes a run) to all of them.
func TestPatientIndexMatchesAMap(t *testing.T) {
	for _, maxMem := range []int{1, 2, 7, runBlock - 1, runBlock, 3*runBlock + 5, 1 << 20} {
		t.Run(fmt.Sprint(maxMem), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(maxMem), 9))
			dir := t.TempDir()
			earlier, current := newPatientIndex(dir, maxMem), newPatientIndex(dir, maxMem)
			defer earlier.reset()
			want := map[refKey]patientRef{}
			const keys = 2000
			key := func(i int) refKey { return patientRefKey(fmt.Sprintf("Patient/%d", i)) }
			for file := range 6 {
				added := map[refKey]patientRef{}
				// Files of very different sizes: none, a few, many.
				n := []int{0, 3, 700, 1500, 40, 2500}[file]
				for range n {
					k := key(rng.IntN(keys))
					p := patientRef{pid: pseudonymize.PID{byte(rng.Uint32()), byte(file)}, state: outcome(rng.IntN(3))}
					added[k] = p
					if err := current.add(k, p); err != nil {
						t.Fatal(err)
					}
					if n := len(current.mem) + len(current.buf); n >= maxMem {
						t.Fatalf("file %d: %d entries in memory, at most %d", file, n, maxMem-1)
					}
				}
				// Until the file ends its Patients are not found.
				for k := range added {
					if _, inEarlier := want[k]; !inEarlier {
						if p, ok := earlier.find(k); ok {
							t.Fatalf("file %d: a Patient of the file being read was found before it ended: %v", file, p)
						}
					}
				}
				if err := earlier.absorb(current); err != nil {
					t.Fatal(err)
				}
				maps.Copy(want, added)
				if !current.empty() {
					t.Fatalf("file %d: the absorbed index is not empty", file)
				}
				if len(earlier.runs) > 1 {
					t.Fatalf("file %d: %d runs after absorb, want at most 1", file, len(earlier.runs))
				}
				if n := len(earlier.mem) + len(earlier.buf); n >= maxMem {
					t.Fatalf("file %d: %d entries in memory after absorb, at most %d", file, n, maxMem-1)
				}
				// A full index keeps as many entries in memory as it may: the first.
				if len(want) > maxMem && len(earlier.mem) != earlier.memMax {
					t.Fatalf("file %d: %d of %d entries in memory, want %d there", file, len(earlier.mem), len(want), earlier.memMax)
				}
				for i := range keys + 100 {
					k := key(i)
					got, ok := earlier.find(k)
					w, wok := want[k]
					if ok != wok || got != w {
						t.Fatalf("file %d: key %d found %v, %v; want %v, %v", file, i, got, ok, w, wok)
					}
				}
				if err := earlier.failed(); err != nil {
					t.Fatal(err)
				}
			}
			if maxMem < keys && len(earlier.runs) == 0 {
				t.Error("no run was written: the test did not exercise the disk")
			}
		})
	}
}

// TestPatientIndexConcurrentFinds: the pipeline's workers look up the earlier files'
// index at once (run with -race).
func TestPatientIndexConcurrentFinds(t *testing.T) {
	x := newPatientIndex(t.TempDir(), 50)
	defer x.reset()
	for i := range 1000 {
		if err := x.add(patientRefKey(fmt.Sprint("Patient/", i)), patientRef{pid: pseudonymize.PID{byte(i), byte(i >> 8)}}); err != nil {
			t.Fatal(err)
		}
	}
	earlier := newPatientIndex(x.dir, 50)
	if err := earlier.absorb(x); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 1000; i += 4 {
				p, ok := globalPatients(earlier)(fmt.Sprint("https://fhir.example.it/r4/Patient/", i))
				if !ok || p.pid != (pseudonymize.PID{byte(i), byte(i >> 8)}) {
					errs <- fmt.Sprintf("Patient/%d found %v, %v", i, p, ok)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestPatientIndexReadFailure: a run that cannot be read finds nothing and fails the
// index, so that the ingest stops instead of quarantining resources whose Patient is there.
func TestPatientIndexReadFailure(t *testing.T) {
	x := newPatientIndex(t.TempDir(), 1)
	k := patientRefKey("Patient/1")
	if err := x.add(k, patientRef{pid: pseudonymize.PID{1}}); err != nil {
		t.Fatal(err)
	}
	if len(x.runs) != 1 {
		t.Fatalf("%d runs, want 1", len(x.runs))
	}
	x.runs[0].f.Close()
	if _, ok := x.find(k); ok {
		t.Error("a closed run found the Patient")
	}
	if err := x.failed(); err == nil || !strings.Contains(err.Error(), "index of the NDJSON Patients") {
		t.Errorf("failed() = %v, want the read's error", err)
	}
	x.reset()
}

// TestPatientIndexEntries: the default limit holds about a million Patients in memory,
// and a smaller limit fewer.
func TestPatientIndexEntries(t *testing.T) {
	if n := patientIndexEntries(DefaultMemoryLimit); n < 900_000 || n > 1_100_000 {
		t.Errorf("default limit: %d Patients in memory, want about a million", n)
	}
	if a, b := patientIndexEntries("250MB"), patientIndexEntries("1GB"); a*4 > b+4 || a*4 < b-4 {
		t.Errorf("250MB: %d, 1GB: %d; want a quarter", a, b)
	}
	if n := patientIndexEntries("nonsense"); n != patientIndexEntries(DefaultMemoryLimit) {
		t.Errorf("an unparsable limit: %d, want the default's", n)
	}
}
