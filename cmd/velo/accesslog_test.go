package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

// TestAccessLogExport: velo access-log export writes a state directory's access log as
// CSV and NDJSON, filtered, and names a wrong flag.
func TestAccessLogExport(t *testing.T) {
	state := t.TempDir()
	s, err := ledger.OpenFileAccessLog(state)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if err := s.Append(context.Background(), []ledger.AccessRecord{
		{Time: at, RequestID: "r1", User: "rita", Role: "researcher", Via: "token", Client: "127.0.0.1", Method: "POST", Route: "POST /v1/queries", Project: "wl", Status: 200},
		{Time: at.Add(25 * time.Hour), RequestID: "r2", User: "dana", Role: "dpo", Via: "jwt", Subject: "sub-1", Client: "127.0.0.1", Method: "GET", Route: "GET /v1/ledger", Status: 200},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := velo(t, "access-log", "export", "--state", state, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "time,request_id,user,") || !strings.Contains(lines[1], ",r1,rita,researcher,") || !strings.Contains(lines[2], ",sub-1,jwt,") {
		t.Errorf("CSV export:\n%s", out)
	}
	out, err = velo(t, "access-log", "export", "--state", state, "--format", "ndjson", "--since", "2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"r2"`) {
		t.Errorf("NDJSON export since the 2nd:\n%s", out)
	}
	if _, err := velo(t, "access-log", "export", "--state", state, "--format", "xml"); err == nil || !strings.Contains(err.Error(), "csv or ndjson") {
		t.Errorf("--format xml: %v", err)
	}
	if _, err := velo(t, "access-log", "export", "--state", state, "--format", "csv", "--since", "March"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("--since March: %v", err)
	}
}
