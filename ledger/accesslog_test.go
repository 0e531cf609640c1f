package ledger_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/pgtest"
	"github.com/velo-fse/velo/ledger"
)

// accessRecords spans three UTC days of 2026-03: two records on the 1st, two on the 2nd,
// one on the 3rd.
func accessRecords() []ledger.AccessRecord {
	at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }
	return []ledger.AccessRecord{
		{Time: at(1, 9), RequestID: "a1", User: "rita", Role: "researcher", Via: "token", Client: "127.0.0.1", Method: "POST", Route: "POST /v1/queries", Project: "wl", Status: 200, Millis: 12.5},
		{Time: at(1, 23), RequestID: "a2", Client: "127.0.0.1", Method: "GET", Route: "GET /v1/me", Status: 401, Code: "unauthorized"},
		{Time: at(2, 8), RequestID: "b1", User: "dana", Role: "dpo", Subject: "2c1f-sub", Via: "jwt", Client: "::1", Method: "GET", Route: "GET /v1/ledger", Status: 200},
		{Time: at(2, 10), RequestID: "b2", User: "rita", Role: "researcher", Via: "token", Client: "127.0.0.1", Method: "POST", Route: "POST /v1/queries", Project: "other", Status: 403, Code: "forbidden"},
		{Time: at(3, 7), RequestID: "c1", User: "rita", Role: "researcher", Via: "token", Client: "127.0.0.1", Method: "POST", Route: "POST /v1/queries", Project: "wl", Status: 409, Code: "budget_exhausted"},
	}
}

func ids(t *testing.T, s ledger.AccessStore, f ledger.AccessFilter) string {
	t.Helper()
	var out []string
	if err := s.Scan(context.Background(), f, func(r ledger.AccessRecord) error { out = append(out, r.RequestID); return nil }); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

// checkAccessStore: records written in two batches come back oldest first, whole; the
// filters select by time, user and project; CSV and NDJSON exports hold them; pruning
// removes what is older than the cutoff and keeps the rest.
func checkAccessStore(t *testing.T, s ledger.AccessStore, wholeDays bool) {
	ctx := context.Background()
	recs := accessRecords()
	if err := s.Append(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, recs[3:]); err != nil {
		t.Fatal(err)
	}
	var got []ledger.AccessRecord
	if err := s.Scan(ctx, ledger.AccessFilter{}, func(r ledger.AccessRecord) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		g, w := got[i], recs[i]
		if !g.Time.Equal(w.Time) || g.RequestID != w.RequestID || g.User != w.User || g.Subject != w.Subject || g.Client != w.Client ||
			g.Route != w.Route || g.Project != w.Project || g.Status != w.Status || g.Code != w.Code || g.Millis != w.Millis || g.Via != w.Via {
			t.Errorf("record %d: %+v, want %+v", i, g, w)
		}
	}
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		f    ledger.AccessFilter
		want string
	}{
		{ledger.AccessFilter{User: "rita"}, "a1,b2,c1"},
		{ledger.AccessFilter{Project: "wl"}, "a1,c1"},
		{ledger.AccessFilter{Since: day(2)}, "b1,b2,c1"},
		{ledger.AccessFilter{Until: day(2)}, "a1,a2"},
		{ledger.AccessFilter{Since: day(1).Add(10 * time.Hour), Until: day(2).Add(9 * time.Hour)}, "a2,b1"},
		{ledger.AccessFilter{User: "rita", Since: day(2)}, "b2,c1"},
	} {
		if got := ids(t, s, c.f); got != c.want {
			t.Errorf("filter %+v: %s, want %s", c.f, got, c.want)
		}
	}
	var buf bytes.Buffer
	if err := ledger.ExportAccess(ctx, s, ledger.AccessFilter{}, "csv", &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || strings.Join(rows[0], ",") != strings.Join(ledger.AccessCSVHeader, ",") || rows[3][4] != "2c1f-sub" || rows[5][12] != "budget_exhausted" {
		t.Errorf("CSV export: %q", rows)
	}
	buf.Reset()
	if err := ledger.ExportAccess(ctx, s, ledger.AccessFilter{Project: "wl"}, "ndjson", &buf); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"request_id":"c1"`) {
		t.Errorf("NDJSON export: %s", buf.String())
	}
	// Prune at 2026-03-02 09:00: the 1st goes; the file store keeps whole days, so b1 (08:00
	// on the 2nd) stays there and goes in PostgreSQL.
	if _, err := s.Prune(ctx, day(2).Add(9*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := "b2,c1"
	if wholeDays {
		want = "b1,b2,c1"
	}
	if got := ids(t, s, ledger.AccessFilter{}); got != want {
		t.Errorf("after pruning: %s, want %s", got, want)
	}
}

func TestFileAccessLog(t *testing.T) {
	state := t.TempDir()
	s, err := ledger.OpenFileAccessLog(state)
	if err != nil {
		t.Fatal(err)
	}
	checkAccessStore(t, s, true)
	// A torn last line (a crash while writing) is skipped, the records before it kept.
	f, err := os.OpenFile(filepath.Join(state, ledger.AccessDir, "2026-03-03.ndjson"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2026-03-03T09:00:00Z","request_id":"to`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := ids(t, s, ledger.AccessFilter{}); got != "b1,b2,c1" {
		t.Errorf("with a torn line: %s", got)
	}
}

func TestPostgresAccessLog(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t, "ledger")
	pg := openPG(t, dsn, ledger.Options{KeyFile: filepath.Join(t.TempDir(), "checkpoint.key")})
	s, err := pg.AccessLog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAccessStore(t, s, false)
	// A second process (velo access-log export) reads the same records.
	other, closeFn, err := ledger.OpenPostgresAccessLog(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if got := ids(t, other, ledger.AccessFilter{}); got != "b2,c1" {
		t.Errorf("read by another connection: %s", got)
	}
}

// TestAccessWriter: records queued are written in order; Sync waits for them; the writer
// prunes what is past the retention when it starts.
func TestAccessWriter(t *testing.T) {
	s, err := ledger.OpenFileAccessLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), accessRecords()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 3, 2, 12, 0, 0, 0, time.UTC) // a year after the 2nd, 365 days after the 2nd
	w := ledger.NewAccessWriter(s, ledger.AccessWriterOptions{Retention: ledger.MinAccessRetention, Now: func() time.Time { return now }})
	defer w.Close()
	for i := range 3000 {
		w.Record(ledger.AccessRecord{Time: now, RequestID: "n" + strings.Repeat("x", i%3), Client: "127.0.0.1", Method: "GET", Route: "GET /v1/me", Status: 200})
	}
	w.Sync()
	n := 0
	if err := s.Scan(context.Background(), ledger.AccessFilter{Since: now}, func(ledger.AccessRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 3000 {
		t.Errorf("%d records after Sync, want 3000", n)
	}
	// 2027-03-02 less 365 days is 2026-03-02 12:00: the 1st is gone, the 2nd kept whole.
	if got := ids(t, s, ledger.AccessFilter{Until: now}); got != "b1,b2,c1" {
		t.Errorf("after the writer's pruning: %s, want b1,b2,c1", got)
	}
}

// BenchmarkAccessWriter measures recording requests through the writer into the file
// store, each batch synced to disk: "sync64" waits (Sync) after every 64 records, as if
// each batch of 64 concurrent requests were awaited; "stream" waits only at the end, the
// writer batching as requests come (up to 1024 a batch): its throughput.
func BenchmarkAccessWriter(b *testing.B) {
	for _, c := range []struct {
		name  string
		every int
	}{{"sync64", 64}, {"stream", 0}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := ledger.OpenFileAccessLog(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			w := ledger.NewAccessWriter(s, ledger.AccessWriterOptions{})
			defer w.Close()
			rec := accessRecords()[0]
			rec.Time = time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.Record(rec)
				if c.every > 0 && i%c.every == c.every-1 {
					w.Sync()
				}
			}
			w.Sync()
		})
	}
}
