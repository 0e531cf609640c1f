package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Finalize writes a table too large to sort within DuckDB's share of the memory limit in
// pid ranges: each range's rows are selected, ranked and sorted on their own, written to
// a Parquet file of their own, and the files are then copied, in range order, into the
// table's one file. Everything finalize computes per row is computed per person (the
// person rank, the person table's latest facts, a booking sent twice, a document's
// supersession, which never crosses patients), so a range's rows come out as they would
// from the whole table, and the file is the same, row for row, in as many ranges as in
// one. DuckDB's sorts spill to disk, but a window over a whole table and the sort behind
// it did not stay within DuckDB's share at a few million rows: a million people's 2.4M
// prescriptions failed so under --memory-limit 330MB (docs/ingest.md#memory).

// sortRowBytes is what finalize's window and sort are taken to hold per row and column
// of a table (a column's value, the sort key's share, the row's pointers), and
// sortShareDen the share of DuckDB's memory one range's sort may fill: ranges are sized
// so that rows × (columns + 3) × sortRowBytes fit in DuckDB's memory / sortShareDen.
const (
	sortRowBytes = 16
	sortShareDen = 4
	maxPidRanges = 1 << 10
)

// pidRangeCount is how many pid ranges a table of rows rows and cols columns is written in
// when DuckDB's memory limit is memBytes: one when it fits.
func pidRangeCount(rows int64, cols int, memBytes int64) int {
	if memBytes <= 0 || rows <= 0 {
		return 1
	}
	need := rows * int64(cols+3) * sortRowBytes
	budget := max(1, memBytes/sortShareDen)
	return int(min(maxPidRanges, max(1, (need+budget-1)/budget)))
}

// pidRanges are the SQL predicates on pid of n consecutive ranges of the pid space, in
// pid order, by the pid's leading 16 bits (pids are HMACs: uniform over the space). The
// last range holds the rows without a pid, which sort last. One range is every row.
func pidRanges(n int) []string {
	if n <= 1 {
		return []string{"true"}
	}
	bound := func(i int) string { return fmt.Sprintf("'%04x0000-0000-0000-0000-000000000000'::UUID", i*(1<<16)/n) }
	preds := make([]string, n)
	for i := range n {
		var p []string
		if i > 0 {
			p = append(p, "pid >= "+bound(i))
		}
		if i < n-1 {
			p = append(p, "pid < "+bound(i+1))
		}
		preds[i] = "(" + strings.Join(p, " AND ") + ")"
		if i == n-1 {
			preds[i] = "(" + preds[i] + " OR pid IS NULL)"
		}
	}
	return preds
}

// rangesFor is the number of pid ranges finalize writes a table of rows rows and cols
// columns in.
func (st *stage) rangesFor(rows int64, cols int) int {
	if st.pidRangesFixed > 0 {
		return st.pidRangesFixed
	}
	return pidRangeCount(rows, cols, st.memBytes)
}

// parquetCopyOptions are the options of DuckDB's COPY of a table's Parquet file: zstd, in
// row groups of at most finalRowGroup rows, as the booking table's Go writer writes them.
const parquetCopyOptions = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"

// copySorted writes out, a Parquet file of zstd row groups of at most 122,880 rows, from
// the sorted SELECT query(pred) of each of n pid ranges, in range order; prepare, when
// not nil, runs before each range's query with the range's predicate.
func (st *stage) copySorted(ctx context.Context, out string, n int, prepare func(pred string) error, query func(pred string) string) error {
	preds := pidRanges(n)
	if len(preds) == 1 {
		if prepare != nil {
			if err := prepare(preds[0]); err != nil {
				return err
			}
		}
		_, err := st.db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s %s", query(preds[0]), quote(out), parquetCopyOptions))
		return err
	}
	dir, err := os.MkdirTemp(st.dir, "ranges-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	parts := make([]string, len(preds))
	for i, pred := range preds {
		if prepare != nil {
			if err := prepare(pred); err != nil {
				return err
			}
		}
		parts[i] = quote(filepath.Join(dir, fmt.Sprintf("range-%04d.parquet", i)))
		if _, err := st.db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s %s", query(pred), parts[i], parquetCopyOptions)); err != nil {
			return err
		}
	}
	// The stage keeps insertion order: the files' rows are copied in list order.
	_, err = st.db.ExecContext(ctx, fmt.Sprintf("COPY (SELECT * FROM read_parquet([%s])) TO %s %s", strings.Join(parts, ", "), quote(out), parquetCopyOptions))
	return err
}
