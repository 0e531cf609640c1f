package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/synth"
)

func TestSynthCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "extract")
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	args := []string{"synth", "--persons", "300", "--seed", "9", "--bundles", "2", "--period", "2024-06..2025-05", "--out", out}
	if err := m.Run(context.Background(), args); err != nil {
		t.Fatalf("%v (stderr: %s)", err, stderr.String())
	}
	js, err := os.ReadFile(filepath.Join(out, "synth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep synth.Report
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Persons != 300 || rep.Seed != 9 || rep.Bundles != 2 || rep.Period != (synth.Period{From: "2024-06-01", To: "2025-05-31"}) {
		t.Errorf("report %+v does not reflect the flags", rep)
	}
	summary := stdout.String()
	if strings.Count(summary, "\n") != 1 || !strings.Contains(summary, "wrote 300 people") {
		t.Errorf("summary is not one paragraph about 300 people: %q", summary)
	}
	// No identifier reaches the terminal.
	f, err := os.Open(filepath.Join(out, "fhir/ndjson/Patient.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p struct {
			Identifier []struct{ Value string } `json:"identifier"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		for _, id := range p.Identifier {
			if strings.Contains(summary+stderr.String(), id.Value) {
				t.Fatal("the summary shows a patient identifier")
			}
		}
	}
}

func TestSynthCommandUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"no out", []string{"synth", "--persons", "10"}},
		{"bad period", []string{"synth", "--period", "2024..2025", "--out", dir}},
		{"reversed period", []string{"synth", "--period", "2025-01..2024-12", "--out", dir}},
		{"no people", []string{"synth", "--persons", "0", "--out", dir}},
		{"more bundles than people", []string{"synth", "--persons", "5", "--bundles", "6", "--out", dir}},
		{"stray argument", []string{"synth", "--out", dir, "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Stdout: &stdout, Stderr: &stderr}
			err := m.Run(context.Background(), tt.args)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Error("a usage error wrote files")
	}
}
