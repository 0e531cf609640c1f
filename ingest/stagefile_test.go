package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// The mapping workers stage CUP bookings in pid buckets (ingest/sortstage.go) instead of
// through DuckDB's appender: a synthetic extract with its planted bad records, a second
// file that sends half its bookings again (some twice, across a unit boundary) with
// another status, and then an append that sends some a third time, are ingested both
// ways. Every table, in file order, the manifest's counts and the quarantine must be the
// same, and the last version sent of a booking must be the one kept — but for the
// bookings, which Go writes and ranks by its own keyed hash (the append with the existing
// ones, read back from the table's Parquet): the same rows, in pid order, each person's
// ranked 1..n, where the appender's run ranks them in DuckDB.
func TestColumnarStagingWritesWhatTheAppenderDid(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests a synthetic extract four times")
	}
	src, period := synthExtract(t, synth.Config{Persons: 1500, Seed: 11, Formats: []synth.Format{synth.FormatCSV}})
	bookings := filepath.Join(src, "cup", "bookings.csv")
	raw, err := os.ReadFile(bookings)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	header := strings.Split(lines[0], ",")
	idCol, statusCol := slices.Index(header, "booking_id"), slices.Index(header, "status")
	if idCol < 0 || statusCol < 0 {
		t.Fatalf("header %q", lines[0])
	}
	seen := map[string]int{}
	for _, l := range lines[1:] {
		seen[strings.Split(l, ",")[idCol]]++
	}
	// Records with a booking id of their own and a known status, for sending again. The
	// planted bad records stay in the first file only.
	var valid [][]string
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) == len(header) && f[idCol] != "" && seen[f[idCol]] == 1 && slices.Contains(fse.BookingStatuses, f[statusCol]) {
			valid = append(valid, f)
		}
	}
	// resend is the records every step-th valid one with its status moved by shift,
	// and first again with it moved by shift+1.
	resend := func(name string, step, shift, again int) (string, map[string]string) {
		last := map[string]string{}
		out := []string{lines[0]}
		add := func(f []string, by int) {
			g := slices.Clone(f)
			i := slices.Index(fse.BookingStatuses, f[statusCol])
			g[statusCol] = fse.BookingStatuses[(i+by)%len(fse.BookingStatuses)]
			last[g[idCol]] = g[statusCol]
			out = append(out, strings.Join(g, ","))
		}
		var sent [][]string
		for i := 0; i < len(valid); i += step {
			add(valid[i], shift)
			sent = append(sent, valid[i])
		}
		for _, f := range sent[:min(again, len(sent))] {
			add(f, shift+1)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p, last
	}
	second, lastSecond := resend("resend.csv", 2, 1, 400)
	if n := len(valid)/2 + 400; n <= 2048 {
		t.Fatalf("the second file has %d records: too few to span two units", n)
	}
	third, lastThird := resend("append.csv", 3, 3, 0)

	ps, _ := testKey(t)
	run := func(dir string, appender bool, appendTo bool, inputs ...string) (*dataset.Manifest, int64) {
		t.Helper()
		cfg := ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: inputs, Period: period, Workers: 3, Append: appendTo, MemoryLimit: "512MB"}
		var staged int64
		if appender {
			ingest.SetAppenderOnly(&cfg, &staged)
		} else {
			ingest.CountStaged(&cfg, &staged)
		}
		man, err := ingest.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return man, staged
	}
	db := openDB(t)
	// goRanked: b's bookings were written by Go (sortstage.go), ranked by another keyed
	// hash than a's SQL: the same rows, each person's ranked 1..n in another order.
	compare := func(step string, a, b string, ma, mb *dataset.Manifest, goRanked bool) {
		t.Helper()
		zeroTimes(ma, mb)
		if d := cmp.Diff(ma, mb); d != "" {
			t.Errorf("%s: manifests differ (-appender +columnar):\n%s", step, d)
		}
		for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
			q := "SELECT * FROM read_parquet('%s')"
			if goRanked && tb.Name == "booking" {
				q = "SELECT * EXCLUDE " + dataset.PersonRankColumn + " FROM read_parquet('%s') ORDER BY ALL"
				bad := queryStrings(t, db, `SELECT count(*) FROM (SELECT pid, _velo_rank AS r, lag(pid) OVER w AS lp, lag(_velo_rank) OVER w AS lr
					FROM read_parquet('`+filepath.Join(b, tb.Name, "part-0.parquet")+`', file_row_number = true) WINDOW w AS (ORDER BY file_row_number))
					WHERE pid < lp OR (pid = lp AND r <> lr + 1) OR ((lp IS NULL OR pid <> lp) AND r <> 1)`)
				if len(bad) != 1 || bad[0] != "0" {
					t.Errorf("%s: %v bookings out of pid order or not ranked 1..n per person", step, bad)
				}
			}
			ra := queryStrings(t, db, strings.Replace(q, "%s", filepath.Join(a, tb.Name, "part-0.parquet"), 1))
			rb := queryStrings(t, db, strings.Replace(q, "%s", filepath.Join(b, tb.Name, "part-0.parquet"), 1))
			if !slices.Equal(ra, rb) {
				t.Errorf("%s: table %s differs: %d rows staged by the appender, %d as Parquet", step, tb.Name, len(ra), len(rb))
			}
		}
		for _, batch := range ma.Batches {
			qa, err := os.ReadFile(filepath.Join(a, batch.Quarantine))
			if err != nil {
				t.Fatal(err)
			}
			qb, err := os.ReadFile(filepath.Join(b, batch.Quarantine))
			if err != nil {
				t.Fatal(err)
			}
			if string(qa) != string(qb) {
				t.Errorf("%s: quarantine %s differs", step, batch.Quarantine)
			}
		}
	}
	// A booking sent again has the status it was last sent with (one whose record is
	// quarantined or out of the period, as sent first, is not written at all).
	assertLastWins := func(step, dir string, want map[string]string) {
		t.Helper()
		bad, absent := 0, 0
		for id, status := range want {
			got := queryStrings(t, db, "SELECT status FROM "+table(dir, "booking")+" WHERE booking_key = ?", ps.BookingKey(id))
			switch {
			case len(got) == 0:
				absent++
			case len(got) != 1 || got[0] != status:
				bad++
			}
		}
		if bad > 0 || absent > len(want)/10 {
			t.Errorf("%s: of %d bookings sent again, %d do not have the status last sent and %d are not written", step, len(want), bad, absent)
		}
	}

	a, b := filepath.Join(t.TempDir(), "appender"), filepath.Join(t.TempDir(), "columnar")
	ma, sa := run(a, true, false, bookings, second)
	mb, sb := run(b, false, false, bookings, second)
	if sa != 0 || sb != mb.Tables["booking"].Read-mb.Tables["booking"].Quarantined-mb.Tables["booking"].OptedOut-mb.Tables["booking"].OutsidePeriod {
		t.Errorf("rows staged as Parquet: %d with the appender only, %d else (manifest %+v)", sa, sb, mb.Tables["booking"])
	}
	if mb.Tables["booking"].Merged == 0 || mb.Tables["booking"].Quarantined == 0 {
		t.Errorf("the extract should merge bookings sent again and quarantine planted ones: %+v", mb.Tables["booking"])
	}
	compare("first batch", a, b, ma, mb, true)
	assertLastWins("first batch", b, lastSecond)

	ma, _ = run(a, true, true, third)
	mb, sb = run(b, false, true, third)
	if sb == 0 || mb.Batches[1].Tables["booking"].ReplacedExisting == 0 {
		t.Errorf("append: %d rows staged as Parquet, %d existing bookings replaced", sb, mb.Batches[1].Tables["booking"].ReplacedExisting)
	}
	compare("append", a, b, ma, mb, true)
	assertLastWins("append", b, lastThird)
}
