package ingest

import (
	"reflect"
	"runtime/debug"
	"testing"

	"github.com/velo-fse/velo/pseudonymize"
)

// TestTuneGCRestores checks the collector's settings during an ingest (GOGC
// ingestGCPercent, a soft limit of the Go side's quarter of the budget) and that they are
// put back after it, including where the process had set them itself.
func TestTuneGCRestores(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) }()

	restore := tuneGC("1GB")
	if got := debug.SetGCPercent(-1); got != ingestGCPercent {
		t.Errorf("GOGC during an ingest = %d, want %d", got, ingestGCPercent)
	}
	debug.SetGCPercent(ingestGCPercent)
	if got, want := debug.SetMemoryLimit(-1), int64(250_000_000); got != want {
		t.Errorf("soft memory limit during an ingest of 1GB = %d, want %d (the Go side's quarter)", got, want)
	}
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after the ingest = %d, want 100 back", got)
	}
	if got := debug.SetMemoryLimit(-1); got != prevLimit {
		t.Errorf("soft memory limit after the ingest = %d, want %d back", got, prevLimit)
	}

	// A tighter limit the process set, and a higher GOGC, are kept.
	debug.SetMemoryLimit(100 << 20)
	debug.SetGCPercent(800)
	restore = tuneGC("1GB")
	if got := debug.SetMemoryLimit(-1); got != 100<<20 {
		t.Errorf("soft memory limit = %d, want the process's own 100 MiB kept", got)
	}
	if got := debug.SetGCPercent(800); got != 800 {
		t.Errorf("GOGC = %d, want the process's own 800 kept", got)
	}
	restore()

	// A limit that does not parse changes nothing.
	debug.SetGCPercent(100)
	tuneGC("lots")()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after an unparsable limit = %d, want 100", got)
	}
}

// TestPatientIndexIsPointerFree guards the index of the NDJSON Patients: it holds a
// million entries for a million people, and the collector scans every pointer of it on
// every cycle. Keyed by the reference strings, the collector took most of an ingest's CPU
// at a million people (553 s against 157 s, bench/RESULTS.md).
func TestPatientIndexIsPointerFree(t *testing.T) {
	typ := reflect.TypeOf(patientIndex{}.mem)
	for _, part := range []reflect.Type{typ.Key(), typ.Elem()} {
		if path := pointerIn(part); path != "" {
			t.Errorf("the Patient index %s holds a pointer: %s", typ, path)
		}
	}
}

// pointerIn names a part of typ that is or holds a pointer ("" if none).
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Array:
		if p := pointerIn(typ.Elem()); p != "" {
			return typ.String() + " of " + p
		}
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type); p != "" {
				return typ.String() + "." + typ.Field(i).Name + ": " + p
			}
		}
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
	default:
		return typ.String()
	}
	return ""
}

// TestGlobalPatientsResolve checks the references that find an earlier file's Patient:
// relative or absolute, and no other; with the index in memory and on disk.
func TestGlobalPatientsResolve(t *testing.T) {
	want := patientRef{pid: pseudonymize.PID{1, 2, 3}, state: outRow}
	for _, maxMem := range []int{1, 100} {
		idx := newPatientIndex(t.TempDir(), maxMem)
		if err := idx.add(patientRefKey("Patient/p1"), want); err != nil {
			t.Fatal(err)
		}
		if onDisk := len(idx.runs) > 0; onDisk != (maxMem == 1) {
			t.Fatalf("%d in memory: the Patient is on disk: %v", maxMem, onDisk)
		}
		resolve := globalPatients(idx)
		for _, ref := range []string{"Patient/p1", "https://fhir.example.it/r4/Patient/p1"} {
			if got, ok := resolve(ref); !ok || got != want {
				t.Errorf("%s resolved to %v, %v; want %v", ref, got, ok, want)
			}
		}
		for _, ref := range []string{"Patient/p2", "Patient/p1/_history/2", "Patient/P1", "p1", ""} {
			if got, ok := resolve(ref); ok {
				t.Errorf("%s resolved to %v; want no Patient", ref, got)
			}
		}
		idx.reset()
	}
	if _, ok := globalPatients(newPatientIndex(t.TempDir(), 1))("Patient/p1"); ok {
		t.Error("an empty index resolved Patient/p1")
	}
}
