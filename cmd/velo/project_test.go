package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// velo runs the CLI in-process and returns its output.
func velo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := (&Main{Stdout: &out, Stderr: &errOut}).Run(context.Background(), args)
	return out.String() + errOut.String(), err
}

func mustVelo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := velo(t, args...)
	if err != nil {
		t.Fatalf("velo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestProjectAndLedgerCommands(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	out := mustVelo(t, "project", "create", "--state", state, "--id", "wl",
		"--purpose", "waiting-list monitoring", "--legal-basis", "art. 9(2)(h) GDPR",
		"--allow", "bookings", "--allow", "patients:region,age_band",
		"--epsilon-budget", "5", "--delta-budget", "1e-5", "--max-epsilon-per-query", "1",
		"--expires", "2099-12-31", "--approver", "dpo", "--actor", "ana")
	for _, want := range []string{"created ledger", "checkpoint.pub", "created project wl: epsilon 5, delta 1e-05", "bookings (all columns); patients (age_band, region)"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(state, "checkpoint.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint.key: %v", err)
	}

	out = mustVelo(t, "project", "grant", "--state", state, "--id", "wl", "--epsilon", "2.5", "--delta", "1e-6", "--reason", "phase 2")
	if !strings.Contains(out, "total now epsilon 7.5, delta 1.1e-05") {
		t.Errorf("grant output:\n%s", out)
	}

	// Charges come from the query engine; here straight through the package.
	l, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SELECT count(*) FROM bookings", "SELECT region, count(*) FROM patients GROUP BY region"} {
		c, err := l.Charge(context.Background(), ledger.ChargeRequest{Actor: "ana", Project: "wl", SQL: sql, Options: "epsilon=0.1", DatasetVersion: "v1", Cost: ledger.Budget{Epsilon: 0.1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(context.Background(), c, json.RawMessage(`{"rows":[[1]]}`)); err != nil {
			t.Fatal(err)
		}
	}
	// While the ledger is open, writes are refused with the holder named; reads still work.
	if out, err := velo(t, "project", "grant", "--state", state, "--id", "wl", "--epsilon", "1"); !errors.Is(err, ledger.ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Errorf("grant while locked: %v\n%s", err, out)
	}
	mustVelo(t, "project", "show", "--state", state)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	out = mustVelo(t, "project", "show", "--state", state)
	for _, want := range []string{"wl", "7.5", "0.2", "7.3", "1.1e-05", "spent across all projects: epsilon 0.2, delta 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out = mustVelo(t, "project", "show", "--state", state, "--id", "wl")
	for _, want := range []string{"waiting-list monitoring", "art. 9(2)(h) GDPR", "patients (age_band, region)", "2100-01-01T00:00:00Z", "cap epsilon 1, delta none", "queries      2"} {
		if !strings.Contains(out, want) {
			t.Errorf("show --id lacks %q:\n%s", want, out)
		}
	}
	var st ledger.ProjectStatus
	if err := json.Unmarshal([]byte(mustVelo(t, "project", "show", "--state", state, "--id", "wl", "--format", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Left != (ledger.Budget{Epsilon: 7.3, Delta: 1.1e-5}) || st.Queries != 2 || len(st.Allow["patients"]) != 2 {
		t.Errorf("show --format json = %+v", st)
	}

	out = mustVelo(t, "ledger", "verify", "--state", state)
	for _, want := range []string{"ok", "entries: 6 (2 charge, 1 grant, 1 project, 2 release)", "checkpoints: 3 signed, the last covers 6 entries", "project wl: epsilon 0.2 of 7.5 spent"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify lacks %q:\n%s", want, out)
		}
	}

	out = mustVelo(t, "ledger", "export", "--state", state, "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 7 || rows[0][0] != "seq" || rows[3][1] != "charge" || rows[3][7] != "SELECT count(*) FROM bookings" {
		t.Errorf("csv export (%v):\n%s", err, out)
	}
	out = mustVelo(t, "ledger", "export", "--state", state, "--format", "ndjson")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last ledger.Entry
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || len(lines) != 6 || last.Kind != "release" || string(last.Release) != `{"rows":[[1]]}` {
		t.Errorf("ndjson export (%v):\n%s", err, out)
	}

	// One flipped byte: verify exits non-zero naming the entry.
	path := filepath.Join(state, "ledger")
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0x20
	os.WriteFile(path, data, 0o600)
	out, err = velo(t, "ledger", "verify", "--state", state)
	if !errors.Is(err, ledger.ErrCorrupt) || exitCode(err) != 1 || !strings.Contains(err.Error(), "entry ") {
		t.Errorf("verify of a damaged ledger: %v (exit %d)\n%s", err, exitCode(err), out)
	}
}

func TestProjectCommandErrors(t *testing.T) {
	state := t.TempDir()
	base := []string{"project", "create", "--state", state, "--id", "wl", "--purpose", "p", "--legal-basis", "b", "--allow", "bookings", "--epsilon-budget", "1", "--delta-budget", "0"}
	tests := []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"no subcommand", []string{"project"}, "subcommand", true},
		{"missing flags", []string{"project", "create", "--state", state}, "--id, --purpose, --legal-basis, --allow, --epsilon-budget, --delta-budget required", true},
		{"empty column", append(base[:len(base):len(base)], "--allow", "patients:region,"), "empty column", true},
		{"bad expiry", append(base[:len(base):len(base)], "--expires", "next year"), "--expires", true},
		{"cap above budget", append(base[:len(base):len(base)], "--max-epsilon-per-query", "2"), "max_epsilon_per_query", false},
		{"bad id", []string{"project", "create", "--state", state, "--id", "W L", "--purpose", "p", "--legal-basis", "b", "--allow", "bookings", "--epsilon-budget", "1", "--delta-budget", "0"}, "id:", false},
		{"unknown project", []string{"project", "grant", "--state", state, "--id", "nope", "--epsilon", "1"}, "unknown project", false},
		{"bad format", []string{"project", "show", "--state", state, "--format", "xml"}, "text or json", true},
		{"export format", []string{"ledger", "export", "--state", state, "--format", "xml"}, "csv or ndjson", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := velo(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if (exitCode(err) == 2) != tt.usage {
				t.Errorf("exit code %d for %v", exitCode(err), err)
			}
		})
	}
}

// TestProjectCreateFromPermit: velo project create records the data permit and its
// validity; a permit named in part is refused, naming the missing field.
func TestProjectCreateFromPermit(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	base := []string{"project", "create", "--state", state, "--purpose", "p", "--legal-basis", "b", "--allow", "bookings", "--epsilon-budget", "1", "--delta-budget", "0"}
	mustVelo(t, append(base, "--id", "wl", "--permit-id", "HDAB-2026-7", "--issuing-body", "HDAB Italia", "--holder", "Università di Pisa", "--valid-from", "2026-01-15")...)
	if out, err := velo(t, append(base, "--id", "half", "--permit-id", "HDAB-2026-8")...); err == nil || !strings.Contains(err.Error(), "issuing_body") {
		t.Errorf("a permit without its issuing body: %v\n%s", err, out)
	}
	_, projects, err := ledger.Read(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != 1 || projects[0].PermitID != "HDAB-2026-7" || projects[0].Holder != "Università di Pisa" || projects[0].IssuingBody != "HDAB Italia" ||
		!projects[0].ValidFrom.Equal(time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("projects: %+v", projects)
	}
	l, err := ledger.Open(state, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Suspend(context.Background(), "dpo", "wl", "permit under review"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out := mustVelo(t, "project", "show", "--state", state, "--id", "wl")
	for _, want := range []string{"data permit  HDAB-2026-7, issued by HDAB Italia to Università di Pisa", "valid from   2026-01-15T00:00:00Z", ": permit under review"} {
		if !strings.Contains(out, want) {
			t.Errorf("project show lacks %q:\n%s", want, out)
		}
	}
}
