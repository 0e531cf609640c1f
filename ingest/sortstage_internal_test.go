package ingest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/pseudonymize"
)

// bucketUnits makes n booking rows of about n/4 people in units of chunkRecords, with
// quarantined records between them and NULLs at random in every nullable column; a
// share of the bookings are sent again in a later unit with another status, and some rows
// are sent twice exactly, without a booking id (equal rows, which tie).
func bucketUnits(n int, seed uint64) [][]record {
	rng := rand.New(rand.NewPCG(seed, 2))
	maybe := func(p float64, v any) any {
		if rng.Float64() < p {
			return nil
		}
		return v
	}
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	people := max(1, n/4)
	var rows [][]any
	for j := range n {
		var pid duckdb.UUID
		p := rng.IntN(people)
		// Spread over the whole pid range, as HMAC pseudonyms are.
		pid[0], pid[1], pid[2], pid[15] = byte(p*7919), byte(p*104729>>3), byte(p), byte(p>>8)
		row := []any{
			pid, maybe(0.01, fmt.Sprintf("%032x", j)), maybe(0.2, fmt.Sprintf("rx%d", j)), "89.13", "visit",
			maybe(0.5, []string{"U", "B", "D", "P"}[j%4]), maybe(0.1, j%3 == 0),
			maybe(0.3, day.AddDate(0, 0, j%700-300)), day.AddDate(0, 0, j%731), maybe(0.3, day.AddDate(0, 0, j%90)),
			maybe(0.2, day.AddDate(0, 0, j%100)), maybe(0.5, day.AddDate(0, 0, j%120)), maybe(0.1, j%2 == 0),
			maybe(0.4, fmt.Sprintf("p%d", j%977)), maybe(0.3, "120201"), "120", maybe(0.3, "cup"), "booked",
			maybe(0.2, int32(j%400)), maybe(0.6, j%5 != 0),
		}
		switch {
		case j > n/2 && rng.IntN(10) == 0 && rows[j-n/2][1] != nil:
			// The booking of n/2 records before, sent again with another status.
			row = slices.Clone(rows[j-n/2])
			row[17] = fmt.Sprintf("again%d", j)
		case j > 0 && rng.IntN(50) == 0:
			// The row before, both without a booking id: equal rows.
			rows[j-1][1] = nil
			row = slices.Clone(rows[j-1])
		}
		rows = append(rows, row)
	}
	var units [][]record
	for i := 0; i < n; i += chunkRecords - 64 {
		var recs []record
		for j := i; j < min(n, i+chunkRecords-64); j++ {
			if rng.IntN(50) == 0 {
				recs = append(recs, record{outcome: outQuarantined, table: "booking", reason: "x"})
			}
			recs = append(recs, record{outcome: outRow, table: "booking", row: rows[j]})
		}
		units = append(units, recs)
	}
	return units
}

// stageUnits writes the units into bs from 3 goroutines at once, as the mapping workers
// do, and returns every row with its _seq.
func stageUnits(t *testing.T, bs *bucketStage, units [][]record) map[int64][]any {
	t.Helper()
	all := map[int64][]any{}
	for u, recs := range units {
		for i, r := range recs {
			if r.outcome == outRow {
				all[int64(1)<<seqFileShift|int64(u)<<seqUnitShift|int64(i)] = r.row
			}
		}
	}
	bs.startFile(1)
	writeConcurrently(t, bs, units)
	if bs.rows != int64(len(all)) {
		t.Fatalf("%d rows staged, want %d", bs.rows, len(all))
	}
	return all
}

// unitStage is what the parsing workers write to: a staging of CUP bookings.
type unitStage interface {
	write(idx int, recs []record)
	finish() error
}

// writeConcurrently writes units to st from three goroutines, as the workers do, and
// finishes it.
func writeConcurrently(t *testing.T, st unitStage, units [][]record) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 3 {
		wg.Go(func() {
			for u := range next {
				st.write(u, units[u])
			}
		})
	}
	for u := range units {
		next <- u
	}
	close(next)
	wg.Wait()
	if err := st.finish(); err != nil {
		t.Fatal(err)
	}
}

func scanAll(t *testing.T, db *sql.DB, q string, cols int) [][]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, cols)
		ptrs := make([]any, cols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The bookings staged in buckets and written by writeSorted: every row staged but the
// earlier versions of a booking sent again (the highest _seq of each (pid, booking_key)
// kept), value by value as DuckDB reads the file; the file sorted by pid, each person's
// rows ranked 1..n in the order of their rank hash (equal rows tie); the table's columns,
// in order, with DuckDB's types, then _velo_rank BIGINT; and the same rows when the
// buckets go to finalize's SQL instead (toColumnar, an append's way), each with its _seq.
func TestBucketStageWritesSortedRankedRows(t *testing.T) {
	if testing.Short() {
		t.Skip("stages 100,000 rows")
	}
	dir := t.TempDir()
	tb := bookingTable()
	// Several buckets, each spanning two row groups.
	bs, err := newBucketStage(tb, filepath.Join(dir, "buckets"), 2*bucketBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.close()
	if len(bs.files) != 3 {
		t.Fatalf("%d buckets, want 3", len(bs.files))
	}
	const n = 100_000
	all := stageUnits(t, bs, bucketUnits(n, 1))

	// What must be written: the last version of each booking sent twice, every other row.
	type keyed struct {
		pid duckdb.UUID
		key string
	}
	last := map[keyed]int64{}
	for seq, row := range all {
		if k, ok := row[1].(string); ok {
			kk := keyed{row[0].(duckdb.UUID), k}
			last[kk] = max(last[kk], seq)
		}
	}
	var want []string
	hashOf := map[string]uint64{}
	hasher := testRankHasher(t, 9)
	dropped := 0
	for seq, row := range all {
		if k, ok := row[1].(string); ok && last[keyed{row[0].(duckdb.UUID), k}] != seq {
			dropped++
			continue
		}
		r := renderRow(row)
		want = append(want, r)
		enc, err := bs.encode(nil, 0, row)
		if err != nil {
			t.Fatal(err)
		}
		hashOf[r] = hasher.sum(enc[8:], make([]byte, 16))
	}
	if dropped < n/40 || len(hashOf) > len(want)-n/200 {
		t.Fatalf("the data should resend bookings and repeat rows: %d dropped, %d distinct rows of %d", dropped, len(hashOf), len(want))
	}

	out := filepath.Join(dir, "booking.parquet")
	if _, _, _, err := bs.writeSorted(canceled(), filepath.Join(dir, "canceled.parquet"), hasher, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("writeSorted with its context canceled: %v", err)
	}
	written, gone, replaced, err := bs.writeSorted(context.Background(), out, hasher, 2)
	if err != nil {
		t.Fatal(err)
	}
	if written != int64(len(want)) || gone != int64(dropped) || replaced != 0 {
		t.Errorf("written %d, dropped %d, replaced %d; want %d, %d, 0", written, gone, replaced, len(want), dropped)
	}

	connector, db, err := openDuckDB(context.Background(), "", duckDBSettings{MemoryLimit: "1GB", Threads: 2, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer connector.Close()
	defer db.Close()

	// The schema: the table's columns and types, in order, then the rank.
	var names, types []string
	for _, r := range scanAll(t, db, fmt.Sprintf("DESCRIBE SELECT * FROM read_parquet(%s)", quote(out)), 6) {
		names, types = append(names, r[0].(string)), append(types, r[1].(string))
	}
	var wantNames, wantTypes []string
	for _, c := range tb.Columns {
		wantNames, wantTypes = append(wantNames, c.Name), append(wantTypes, c.Type)
	}
	wantNames, wantTypes = append(wantNames, dataset.PersonRankColumn), append(wantTypes, "BIGINT")
	if !slices.Equal(names, wantNames) || !slices.Equal(types, wantTypes) {
		t.Errorf("columns %v %v, want %v %v", names, types, wantNames, wantTypes)
	}

	// The rows, in file order.
	got := scanAll(t, db, fmt.Sprintf("SELECT * FROM read_parquet(%s, file_row_number = true) ORDER BY file_row_number", quote(out)), len(tb.Columns)+2)
	var gotRows []string
	bad := 0
	for i, r := range got {
		row := renderRow(r[:len(tb.Columns)])
		gotRows = append(gotRows, row)
		rank := r[len(tb.Columns)].(int64)
		if i == 0 || !bytes.Equal(r[0].([]byte), got[i-1][0].([]byte)) {
			if i > 0 && bytes.Compare(r[0].([]byte), got[i-1][0].([]byte)) < 0 && bad < 5 {
				bad++
				t.Errorf("row %d: pid %x after %x", i, r[0], got[i-1][0])
			}
			if rank != 1 && bad < 5 {
				bad++
				t.Errorf("row %d: a person's first row has rank %d", i, rank)
			}
			continue
		}
		prev := gotRows[i-1]
		if rank != got[i-1][len(tb.Columns)].(int64)+1 && bad < 5 {
			bad++
			t.Errorf("row %d: rank %d after %d", i, rank, got[i-1][len(tb.Columns)])
		}
		if hashOf[row] < hashOf[prev] && bad < 5 {
			bad++
			t.Errorf("row %d: rank %d hashes to %x, below its rank %d's %x", i, rank, hashOf[row], rank-1, hashOf[prev])
		}
	}
	slices.Sort(want)
	slices.Sort(gotRows)
	if !slices.Equal(gotRows, want) {
		t.Errorf("%d rows written, want %d, or their values differ", len(gotRows), len(want))
	}
	var groups []int64
	for _, r := range scanAll(t, db, fmt.Sprintf("SELECT row_group_num_rows FROM parquet_metadata(%s) WHERE column_id = 0", quote(out)), 1) {
		groups = append(groups, r[0].(int64))
	}
	if len(groups) < len(bs.files) || slices.Max(groups) > finalRowGroup {
		t.Errorf("row groups of %v rows", groups)
	}

	// The SQL way: the staging Parquet files, read through stage_booking.
	cs, err := newColumnarStage(tb, filepath.Join(dir, "stage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.toColumnar(cs); err != nil {
		t.Fatal(err)
	}
	if err := cs.finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(stagingDDL(tb)); err != nil {
		t.Fatal(err)
	}
	for _, q := range cs.view() {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	staged := scanAll(t, db, "SELECT * EXCLUDE (_seq, _doc_seq), _seq, _doc_seq FROM stage_booking", len(tb.Columns)+2)
	if len(staged) != len(all) {
		t.Fatalf("%d rows staged for SQL, want %d", len(staged), len(all))
	}
	bad = 0
	for _, r := range staged {
		seq := r[len(tb.Columns)].(int64)
		row, ok := all[seq]
		if (!ok || renderRow(r[:len(tb.Columns)]) != renderRow(row) || r[len(tb.Columns)+1] != nil) && bad < 5 {
			bad++
			t.Errorf("staged for SQL: _seq %x: %s, want %s", seq, renderRow(r), renderRow(row))
		}
	}
}

// A person's rows are ranked by the keyed hash: another key orders them otherwise.
func TestRankHasherIsKeyed(t *testing.T) {
	a, a2, b := testRankHasher(t, 1), testRankHasher(t, 1), testRankHasher(t, 2)
	same, agree := 0, 0
	const n = 1000
	for i := range n {
		x, y := []byte(fmt.Sprintf("row %d", i)), []byte(fmt.Sprintf("row %d", i+1))
		sum := func(h *rankHasher, row []byte) uint64 { return h.sum(row, make([]byte, 16)) }
		if sum(a, x) != sum(a2, x) {
			t.Fatal("the rank hash is not a function of the key and the row")
		}
		if sum(a, x) == sum(b, x) {
			same++
		}
		if (sum(a, x) < sum(a, y)) == (sum(b, x) < sum(b, y)) {
			agree++
		}
	}
	// Independent orders agree on about half the pairs.
	if same > 0 || agree < n*4/10 || agree > n*6/10 {
		t.Errorf("two keys: %d equal hashes, %d of %d pairs ordered alike", same, agree, n)
	}
	if a.sum(nil, make([]byte, 16)) == a.sum([]byte{0}, make([]byte, 16)) {
		t.Error("the empty row and a zero byte hash alike")
	}
}

// A booking's typed values (what the mapping workers stage) encode exactly as the row
// DuckDB's appender takes does (what the other staging paths read): NULLs in every
// column, dates on both sides of 1970, every string length.
func TestBookingValuesEncodeAsTheirRow(t *testing.T) {
	bs, err := newBucketStage(bookingTable(), filepath.Join(t.TempDir(), "buckets"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.close()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20_000 {
		v := bookingValues{null: rng.Uint32() & (1<<bookingValueColumns - 1)}
		binary.LittleEndian.PutUint64(v.pid[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(v.pid[8:], rng.Uint64())
		for j, c := range bookingTable().Columns {
			switch c.Type {
			case "VARCHAR":
				v.str[j] = fmt.Sprintf("%0*x", rng.IntN(40), rng.Uint64())
			case "DATE":
				v.i32[j] = int32(rng.IntN(80_000) - 40_000)
			case "INTEGER":
				v.i32[j] = int32(rng.Uint32())
			case "BOOLEAN":
				v.flag[j] = rng.IntN(2) == 0
			}
		}
		want, err := bs.encode(nil, int64(i), v.row())
		if err != nil {
			t.Fatal(err)
		}
		if got := bs.encodeValues(nil, int64(i), &v); !bytes.Equal(got, want) {
			t.Fatalf("%+v:\nencodeValues %x\nencode(row)  %x", v, got, want)
		}
	}
}

// testRankHasher is the booking table's rank hasher under the key of 32 bytes b.
func testRankHasher(t *testing.T, b byte) *rankHasher {
	t.Helper()
	k, err := pseudonymize.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := newRankHasher(pseudonymize.New(k), bookingTable().Name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
