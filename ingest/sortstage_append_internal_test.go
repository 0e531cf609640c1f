package ingest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// An append through the buckets (addExisting, then writeSorted): the existing table's
// rows, read back from a file DuckDB wrote without one of the table's columns and with a
// column the table does not have, are merged with the new ones. A booking the append sends
// again replaces its existing row (and of two versions sent in the append the later wins),
// of two existing rows with one booking key one is kept, rows without a booking key are all
// kept, a person's rows — twenty of them, beyond the small-group path of the dedupe — are
// ranked 1..n in pid order, and the counts say which rows went where. An append without
// bookings writes the table as it was, ranks included. A file whose column has another
// type than the table's is refused, naming the column.
func TestAddExistingMergesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	tb := bookingTable()
	hasher := testRankHasher(t, 7)
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	person := func(b byte) duckdb.UUID {
		var u duckdb.UUID
		u[0], u[1], u[15] = b, b*37, b
		return u
	}
	a, b, c, d := person(0x10), person(0x80), person(0xc0), person(0xf0)
	booking := func(pid duckdb.UUID, key any, status string, j int) []any {
		return []any{pid, key, nil, "89.13", "visit", "B", true, nil, day.AddDate(0, 0, j), nil,
			day.AddDate(0, 0, j+30), nil, true, "p1", "120201", "120", "cup", status, int32(30), true}
	}
	stage := func(name string, rows [][]any) *bucketStage {
		t.Helper()
		bs, err := newBucketStage(tb, filepath.Join(dir, name), 2*bucketBytes)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bs.close)
		var recs []record
		for _, r := range rows {
			recs = append(recs, record{outcome: outRow, table: tb.Name, row: r})
		}
		bs.startFile(1)
		bs.write(0, recs)
		if err := bs.finish(); err != nil {
			t.Fatal(err)
		}
		return bs
	}

	// The existing table: a's twenty bookings, b's two equal rows without a key and one
	// with, c's booking twice under one key (added by DuckDB: an ingest keeps one).
	var old [][]any
	for j := range 20 {
		old = append(old, booking(a, fmt.Sprintf("a%d", j), "booked", j))
	}
	old = append(old, booking(b, nil, "booked", 1), booking(b, nil, "booked", 1), booking(b, "b0", "booked", 2),
		booking(c, "c0", "booked", 3))
	first := filepath.Join(dir, "first.parquet")
	if _, _, _, err := stage("old", old).writeSorted(context.Background(), first, hasher, 2); err != nil {
		t.Fatal(err)
	}
	connector, db, err := openDuckDB(context.Background(), "", duckDBSettings{MemoryLimit: "1GB", Threads: 2, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer connector.Close()
	defer db.Close()
	existing := filepath.Join(dir, "existing.parquet")
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * EXCLUDE (channel), 'x' AS extra FROM read_parquet(%[1]s)
		UNION ALL SELECT * EXCLUDE (channel) REPLACE ('done' AS status), 'x' FROM read_parquet(%[1]s) WHERE booking_key = 'c0') TO %[2]s (FORMAT parquet)`, quote(first), quote(existing))); err != nil {
		t.Fatal(err)
	}

	// The append: a5 again, a17 twice, b1 and d new.
	bs := stage("append", [][]any{
		booking(a, "a5", "again", 5), booking(a, "a17", "v1", 17), booking(b, "b1", "new", 9),
		booking(a, "a17", "v2", 17), booking(d, "d0", "new", 1),
	})
	n, err := bs.addExisting(context.Background(), []string{existing}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(old))+1 {
		t.Errorf("%d existing rows staged, want %d", n, len(old)+1)
	}
	out := filepath.Join(dir, "out.parquet")
	written, dropped, replaced, err := bs.writeSorted(context.Background(), out, hasher, 2)
	if err != nil {
		t.Fatal(err)
	}
	// 20 of a's, b's 4, one of c's, d's; a17's v1 dropped; a5, a17 and a c0 replaced.
	if written != 26 || dropped != 1 || replaced != 3 {
		t.Errorf("written %d, dropped %d, replaced %d; want 26, 1, 3", written, dropped, replaced)
	}
	var got []string
	var prev []byte
	rank := int64(0)
	for _, r := range scanAll(t, db, fmt.Sprintf("SELECT pid, booking_key, status, channel, _velo_rank FROM read_parquet(%s, file_row_number = true) ORDER BY file_row_number", quote(out)), 5) {
		pid := r[0].([]byte)
		if bytes.Compare(pid, prev) < 0 {
			t.Errorf("pid %x after %x", pid, prev)
		}
		if !bytes.Equal(pid, prev) {
			rank = 0
		}
		if rank++; r[4].(int64) != rank {
			t.Errorf("pid %x: rank %d, want %d", pid, r[4], rank)
		}
		prev = pid
		got = append(got, fmt.Sprintf("%x/%v/%v/%v", pid[:1], r[1], r[2], r[3]))
	}
	var want []string
	for j := range 20 {
		status, channel := "booked", "<nil>"
		switch j {
		case 5:
			status, channel = "again", "cup"
		case 17:
			status, channel = "v2", "cup"
		}
		want = append(want, fmt.Sprintf("10/a%d/%s/%s", j, status, channel))
	}
	want = append(want, "80/<nil>/booked/<nil>", "80/<nil>/booked/<nil>", "80/b0/booked/<nil>", "80/b1/new/cup", "f0/d0/new/cup")
	var cs []string
	for _, g := range got {
		if strings.HasPrefix(g, "c0/") {
			cs = append(cs, g)
		} else if !slices.Contains(want, g) {
			t.Errorf("row %s written, not expected", g)
		}
	}
	if len(cs) != 1 || (cs[0] != "c0/c0/booked/<nil>" && cs[0] != "c0/c0/done/<nil>") {
		t.Errorf("c's booking sent twice in the existing table: %v, want one of its rows", cs)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("row %s not written", w)
		}
	}

	// An append without bookings writes the table as it was, ranks included: the rows
	// hash as they did.
	bs = stage("none", nil)
	if _, err := bs.addExisting(context.Background(), []string{first}, 2); err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(dir, "same.parquet")
	if written, dropped, replaced, err := bs.writeSorted(context.Background(), same, hasher, 2); err != nil || written != int64(len(old)) || dropped != 0 || replaced != 0 {
		t.Errorf("rewriting the existing table alone: written %d, dropped %d, replaced %d, %v; want %d, 0, 0", written, dropped, replaced, err, len(old))
	}
	for _, pair := range [][2]string{{first, same}, {same, first}} {
		diff := scanAll(t, db, fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM read_parquet(%s) EXCEPT ALL SELECT * FROM read_parquet(%s))", quote(pair[0]), quote(pair[1])), 1)
		if diff[0][0].(int64) != 0 {
			t.Errorf("%d rows of %s not in %s", diff[0][0], filepath.Base(pair[0]), filepath.Base(pair[1]))
		}
	}

	// A column of another type is refused, by name.
	bad := filepath.Join(dir, "bad.parquet")
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT * REPLACE (wait_days::VARCHAR AS wait_days) FROM read_parquet(%s)) TO %s (FORMAT parquet)", quote(first), quote(bad))); err != nil {
		t.Fatal(err)
	}
	bs = stage("bad", nil)
	if _, err := bs.addExisting(context.Background(), []string{bad}, 2); err == nil || !strings.Contains(err.Error(), "wait_days") {
		t.Errorf("an existing file with wait_days as VARCHAR: %v, want an error naming the column", err)
	}
}
