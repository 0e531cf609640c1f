package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// mapBooking finds each column through bookingColumnIndex.
func TestBookingColumnIndex(t *testing.T) {
	if len(bookingColumns) != len(bookingMapper{}.pos) {
		t.Fatalf("%d booking columns, %d positions", len(bookingColumns), len(bookingMapper{}.pos))
	}
	for i, c := range bookingColumns {
		if got := bookingColumnIndex(c); got != i {
			t.Errorf("bookingColumnIndex(%q) = %d, want %d", c, got, i)
		}
	}
	if got := bookingColumnIndex("patient"); got != -1 {
		t.Errorf("bookingColumnIndex(patient) = %d", got)
	}
}

// The staging files hold exactly the rows the workers were given: 300,000 bookings with
// NULLs at random in every nullable column (a NULL priority half the time, as follow-ups
// have), in units of chunkRecords written by 3 goroutines at once, so that the writers'
// pages and row groups fill and flush in the middle of units, read back through the view
// finalize reads, value by value.
func TestColumnarStageRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("stages 300,000 rows")
	}
	dir := t.TempDir()
	cs, err := newColumnarStage(bookingTable(), filepath.Join(dir, "stage"))
	if err != nil {
		t.Fatal(err)
	}
	cs.startFile(1)
	const n = 300_000
	rng := rand.New(rand.NewPCG(1, 2))
	maybe := func(p float64, v any) any {
		if rng.Float64() < p {
			return nil
		}
		return v
	}
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	want := make([]string, n)
	var units [][]record
	for i := 0; i < n; i += chunkRecords {
		var recs []record
		for j := i; j < min(n, i+chunkRecords); j++ {
			if rng.IntN(50) == 0 { // a quarantined record between rows
				recs = append(recs, record{outcome: outQuarantined, table: "booking", reason: "x"})
			}
			var pid duckdb.UUID
			pid[0], pid[1], pid[2] = byte(j), byte(j>>8), byte(j>>16)
			row := []any{
				pid, maybe(0.01, fmt.Sprintf("%032x", j)), maybe(0.2, fmt.Sprintf("rx%d", j)), "89.13", "visit",
				maybe(0.5, []string{"U", "B", "D", "P"}[j%4]), maybe(0.1, j%3 == 0),
				maybe(0.3, day.AddDate(0, 0, j%700-300)), day.AddDate(0, 0, j%731), maybe(0.3, day.AddDate(0, 0, j%90)),
				maybe(0.2, day.AddDate(0, 0, j%100)), maybe(0.5, day.AddDate(0, 0, j%120)), maybe(0.1, j%2 == 0),
				maybe(0.4, fmt.Sprintf("p%d", j%977)), maybe(0.3, "120201"), "120", maybe(0.3, "cup"), "booked",
				maybe(0.2, int32(j%400)), maybe(0.6, j%5 != 0),
			}
			want[j] = renderRow(row)
			recs = append(recs, record{outcome: outRow, table: "booking", row: row})
		}
		units = append(units, recs)
	}
	writeConcurrently(t, cs, units)
	if cs.rows != n {
		t.Fatalf("%d rows staged, want %d", cs.rows, n)
	}
	connector, db, err := openDuckDB(context.Background(), "", duckDBSettings{MemoryLimit: "1GB", Threads: 2, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer connector.Close()
	defer db.Close()
	if _, err := db.Exec(stagingDDL(bookingTable())); err != nil {
		t.Fatal(err)
	}
	for _, q := range cs.view() {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query("SELECT * EXCLUDE (_seq, _doc_seq), _seq, _doc_seq FROM stage_booking ORDER BY _seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got, bad := 0, 0
	for rows.Next() {
		vals := make([]any, 22)
		ptrs := make([]any, 22)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		seq := vals[20].(int64)
		unit, rec := int(seq>>seqUnitShift&(1<<(seqFileShift-seqUnitShift)-1)), int(seq&(1<<seqUnitShift-1))
		r := units[unit][rec]
		j := unit*chunkRecords + rec - quarantinedBefore(units[unit], rec)
		if seq>>seqFileShift != 1 || vals[21] != nil || r.outcome != outRow {
			t.Fatalf("row %d: _seq %x, _doc_seq %v", got, seq, vals[21])
		}
		if g := renderRow(vals[:20]); g != want[j] && bad < 5 {
			bad++
			t.Errorf("booking %d (unit %d, record %d):\n got %s\nwant %s", j, unit, rec, g, want[j])
		}
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("%d rows read back, want %d", got, n)
	}
}

func quarantinedBefore(recs []record, i int) int {
	q := 0
	for _, r := range recs[:i] {
		if r.outcome != outRow {
			q++
		}
	}
	return q
}

// renderRow renders a booking row as DuckDB's appender would store it: NULLs, UUIDs as
// bytes, dates as days.
func renderRow(row []any) string {
	var b strings.Builder
	for _, v := range row {
		switch x := v.(type) {
		case nil:
			b.WriteString("NULL")
		case duckdb.UUID:
			fmt.Fprintf(&b, "%x", x[:])
		case []byte:
			fmt.Fprintf(&b, "%x", x)
		case time.Time:
			fmt.Fprintf(&b, "d%d", x.Unix()/86400)
		case int32:
			fmt.Fprintf(&b, "%d", x)
		default:
			fmt.Fprintf(&b, "%v", x)
		}
		b.WriteByte('|')
	}
	return b.String()
}
