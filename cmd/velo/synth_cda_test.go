package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSynthCommandFormats(t *testing.T) {
	out := filepath.Join(t.TempDir(), "extract")
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	if err := m.Run(context.Background(), []string{"synth", "--persons", "120", "--format", "fhir,csv,cda", "--out", out}); err != nil {
		t.Fatalf("%v (stderr: %s)", err, stderr.String())
	}
	zips, _ := filepath.Glob(filepath.Join(out, "cda", "*.zip"))
	if len(zips) != 1 || !strings.Contains(stdout.String(), "CDA documents under cda/") {
		t.Errorf("archives %v, summary %q", zips, stdout.String())
	}
	for _, f := range []string{"fhir/ndjson/Patient.ndjson", "cup/bookings.csv", "optout.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"synth", "--format", "xml", "--out", dir},
		{"synth", "--format", "cda", "--bundles", "1", "--persons", "5", "--out", dir},
	} {
		m := &Main{Stdout: &stdout, Stderr: &stderr}
		if err := m.Run(context.Background(), args); err == nil || exitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Error("a usage error wrote files")
	}
}
