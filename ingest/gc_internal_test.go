package ingest

import (
	"runtime/debug"
	"testing"
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
