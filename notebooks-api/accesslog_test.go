package notebooksapi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// withAccessLog gives the server an access log in a file store of its own.
func withAccessLog(t *testing.T, dir *string) serverOption {
	return func(o *serverSetup) {
		*dir = t.TempDir()
		s, err := ledger.OpenFileAccessLog(*dir)
		if err != nil {
			t.Fatal(err)
		}
		w := ledger.NewAccessWriter(s, ledger.AccessWriterOptions{})
		t.Cleanup(func() { w.Close() })
		o.AccessLog = w
	}
}

// accessExport reads the access log through the API as the DPO.
func accessExport(t *testing.T, ts *testServer, query string) []ledger.AccessRecord {
	t.Helper()
	resp, b := ts.call(t, "dora", "GET", "/v1/access-log"+query, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("access log export: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var recs []ledger.AccessRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r ledger.AccessRecord
		mustJSON(t, []byte(line), &r)
		recs = append(recs, r)
	}
	return recs
}

// TestAccessLog: every request to the API and the page is in the access log, refused and
// unauthenticated ones included, with who, from where, what, on which project and the
// outcome; the DPO exports it as NDJSON and CSV, filtered; nobody else may; no token is
// in it.
func TestAccessLog(t *testing.T) {
	var dir string
	ts := startServer(t, withAccessLog(t, &dir))
	q := map[string]any{"sql": "SELECT region, COUNT(*) AS n FROM booking GROUP BY region", "project": "wl", "epsilon": 0.5}
	resp, b := ts.call(t, "rita", "POST", "/v1/queries", q)
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d %s", resp.StatusCode, b)
	}
	queryID := resp.Header.Get("X-Request-Id")
	q["project"] = "other"
	if resp, _ := ts.call(t, "rita", "POST", "/v1/queries", q); resp.StatusCode != 403 {
		t.Fatalf("query on another project: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		user, method, path string
		status             int
	}{
		{"", "GET", "/v1/me", 401},
		{"velo_not-a-token", "GET", "/v1/me", 401},
		{"dora", "GET", "/ledger", 200},
		{"", "GET", "/nope", 404},
		{"", "GET", "/healthz", 200},
		{"rita", "GET", "/v1/access-log", 403},
		{"dora", "GET", "/v1/access-log?format=xml", 400},
	} {
		if resp, _ := ts.call(t, c.user, c.method, c.path, nil); resp.StatusCode != c.status {
			t.Fatalf("%s %s as %q: %d, want %d", c.method, c.path, c.user, resp.StatusCode, c.status)
		}
	}

	recs := accessExport(t, ts, "")
	find := func(route string, status int) *ledger.AccessRecord {
		for i := range recs {
			if recs[i].Route == route && recs[i].Status == status {
				return &recs[i]
			}
		}
		t.Errorf("no record of %s %d in %+v", route, status, recs)
		return &ledger.AccessRecord{}
	}
	r := find("POST /v1/queries", 200)
	if r.User != "rita" || r.Role != "researcher" || r.Via != "token" || r.Client != "127.0.0.1" || r.Project != "wl" || r.RequestID != queryID || r.Time.IsZero() {
		t.Errorf("the query's record: %+v", r)
	}
	if r := find("POST /v1/queries", 403); r.Project != "other" || r.Code != "forbidden" || r.User != "rita" {
		t.Errorf("the refused query's record: %+v", r)
	}
	if r := find("GET /v1/me", 401); r.User != "" || r.Code != "unauthorized" || r.Client != "127.0.0.1" {
		t.Errorf("the unauthenticated request's record: %+v", r)
	}
	if r := find("GET /ledger", 200); r.User != "dora" || r.Role != "dpo" {
		t.Errorf("the page's record: %+v", r)
	}
	find("unmatched", 404)
	find("GET /v1/access-log", 403)
	if r := find("GET /v1/access-log", 400); r.Code != "invalid_request" {
		t.Errorf("the bad export's record: %+v", r)
	}
	for _, r := range recs {
		if r.Route == "GET /healthz" {
			t.Errorf("a health check is in the access log: %+v", r)
		}
	}

	// Filters, and CSV.
	if got := accessExport(t, ts, "?user=rita&project=wl"); len(got) != 1 || got[0].RequestID != queryID {
		t.Errorf("filtered export: %+v", got)
	}
	resp, b = ts.call(t, "dora", "GET", "/v1/access-log", nil, "Accept", "text/csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < len(recs)+1 || strings.Join(rows[0], ",") != strings.Join(ledger.AccessCSVHeader, ",") {
		t.Errorf("CSV export: %d rows for %d records; header %v", len(rows), len(recs), rows[0])
	}

	// The store on disk holds no token, no SQL and no query string.
	files, _ := filepath.Glob(filepath.Join(dir, ledger.AccessDir, "*.ndjson"))
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("the access log's files are empty")
	}
	for user, tok := range ts.Tokens {
		if bytes.Contains(all, []byte(tok)) || bytes.Contains(all, []byte(tok[len(tok)-20:])) {
			t.Errorf("the access log holds %s's token", user)
		}
	}
	for _, bad := range []string{"velo_not-a-token", "COUNT(*)", "format=xml", "SELECT"} {
		if bytes.Contains(all, []byte(bad)) {
			t.Errorf("the access log holds %q", bad)
		}
	}
	var probe map[string]any
	if err := json.Unmarshal(all[:bytes.IndexByte(all, '\n')], &probe); err != nil {
		t.Errorf("the access log's files are not NDJSON: %v", err)
	}
}

// TestAccessLogRetention: access_log.retention takes days, years or a duration; under a
// year only with allow_short_retention.
func TestAccessLogRetention(t *testing.T) {
	base := "data: d\nstate: s\nusers:\n  - name: rita\n    role: researcher\n"
	day := 24 * time.Hour
	for _, c := range []struct {
		doc  string
		want time.Duration // 0: refused, naming access_log.retention
	}{
		{"", ledger.DefaultAccessRetention},
		{"access_log:\n  retention: 400d\n", 400 * day},
		{"access_log:\n  retention: 2y\n", 730 * day},
		{"access_log:\n  retention: 8760h\n", 365 * day},
		{"access_log:\n  retention: forever\n", -1},
		{"access_log:\n  retention: 90d\n", 0},
		{"access_log:\n  retention: 90d\n  allow_short_retention: true\n", 90 * day},
		{"access_log:\n  retention: a year\n", 0},
		{"access_log:\n  retention: 0d\n", 0},
	} {
		cfg, err := notebooksapi.ParseConfig([]byte(base + c.doc))
		if c.want == 0 {
			var fe *notebooksapi.FieldError
			if !errors.As(err, &fe) || fe.Field != "access_log.retention" {
				t.Errorf("%q: %v, want a problem with access_log.retention", c.doc, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.doc, err)
			continue
		}
		if got, _ := cfg.AccessLog.RetentionDuration(); got != c.want {
			t.Errorf("%q: %v, want %v", c.doc, got, c.want)
		}
	}
}

// TestAccessLogFlightSQL: Arrow Flight SQL calls are in the access log too, with the
// caller, the project and the outcome.
func TestAccessLogFlightSQL(t *testing.T) {
	var dir string
	ts := startServer(t, withAccessLog(t, &dir))
	cl := flightServer(t, ts)
	rec, err := fetch(ts.as("rita", "x-velo-project", "wl"), cl, "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 0.25) region, COUNT(*) AS n FROM booking GROUP BY region")
	if err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if _, err := fetch(ts.as("nobody"), cl, "SELECT 1"); err == nil {
		t.Fatal("a call without a valid token was answered")
	}
	var ok, refused int
	for _, r := range accessExport(t, ts, "") {
		if r.Method != "FLIGHT" {
			continue
		}
		switch {
		case r.Status == 200 && r.User == "rita" && r.Project == "wl" && r.Via == "token" && r.Client == "127.0.0.1" && strings.HasPrefix(r.Route, "/arrow.flight.protocol."):
			ok++
		case r.Status == 401 && r.User == "" && r.Code == "unauthorized":
			refused++
		default:
			t.Errorf("unexpected Flight SQL record: %+v", r)
		}
	}
	if ok < 2 || refused != 1 { // GetFlightInfo and DoGet
		t.Errorf("%d answered and %d refused Flight SQL calls in the access log, want at least 2 and 1", ok, refused)
	}
}
