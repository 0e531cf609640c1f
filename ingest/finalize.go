package ingest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func columnList(t Table, prefix string) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = prefix + c.Name
	}
	return strings.Join(names, ", ")
}

// finalSelect is the SELECT that turns a table's staged rows (and, for an append, the
// dataset's existing rows) into its final content. Superseded document versions and
// their facts are dropped; the person table keeps one row per pid (the most recent
// document's facts; on a tie the last read); a booking sent twice is kept once. Its
// result has the table's columns and _seq (-1 for rows already in the dataset).
//
// For an append, existing names the columns the dataset's Parquet of the table has
// (nil: no existing rows to merge). A column it lacks — the dataset was written before
// the column was added — reads as NULL; so does a fact's doc_key, and such facts cannot be
// retracted. An existing fact is kept only while its document stays live (the table
// live_keys, made by settleVersions). The document table's own is documentFinal.
//
// pred, a predicate on pid, selects the rows of one pid range (pidRanges): every row of a
// person the SELECT keeps or drops it by is in the person's range.
func finalSelect(t Table, dataDir string, existing map[string]bool, bookingDups bool, pred string) string {
	withExisting := existing != nil
	cols := columnList(t, "")
	outCols := cols + ", " + stagingSeq
	src := fmt.Sprintf("SELECT %s, %s, %s%s FROM stage_%s WHERE %s AND %s", cols, stagingSeq, stagingDocSeq,
		map[bool]string{true: ", " + stagingAsOf, false: ""}[t.Name == "person"], t.Name,
		pred, notSuperseded(t))
	if withExisting {
		existingCols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			existingCols[i] = c.Name
			if !existing[c.Name] {
				existingCols[i] = fmt.Sprintf("NULL::%s AS %s", c.Type, c.Name)
			}
		}
		where := " e WHERE " + pred
		if IsFactTable(t) && existing[factDocKey.Name] {
			where += " AND (e.doc_key IS NULL OR EXISTS (SELECT 1 FROM live_keys k WHERE k.pid = e.pid AND k.doc_key = e.doc_key))"
		}
		src += fmt.Sprintf(" UNION ALL BY NAME SELECT %s, -1::BIGINT AS %s, NULL::BIGINT AS %s%s FROM read_parquet(%s)%s",
			strings.Join(existingCols, ", "), stagingSeq, stagingDocSeq,
			map[bool]string{true: ", NULL::DATE AS " + stagingAsOf, false: ""}[t.Name == "person"],
			quote(dataset.TableGlob(dataDir, t.Name)), where)
	}
	switch t.Name {
	case "person":
		return fmt.Sprintf("SELECT %s FROM (%s) QUALIFY row_number() OVER (PARTITION BY pid ORDER BY %s DESC NULLS LAST, %s DESC) = 1",
			outCols, src, stagingAsOf, stagingSeq)
	case "booking":
		if !withExisting && !bookingDups {
			break // no booking sent twice: spare the window over every row
		}
		return fmt.Sprintf("SELECT %s FROM (%s) QUALIFY booking_key IS NULL OR row_number() OVER (PARTITION BY pid, booking_key ORDER BY %s DESC) = 1",
			outCols, src, stagingSeq)
	}
	return fmt.Sprintf("SELECT %s FROM (%s)", outCols, src)
}

func notSuperseded(t Table) string {
	if t.Name == "document" {
		return fmt.Sprintf("%s NOT IN (SELECT s FROM superseded)", stagingSeq)
	}
	return fmt.Sprintf("(%s IS NULL OR %s NOT IN (SELECT s FROM superseded))", stagingDocSeq, stagingDocSeq)
}

// finalizeWarnings count data-quality warnings (docs/domain.md#the-codice-fiscale):
// documents that disagree on a person, and document ids shared by different documents.
// Both are kept, and counted. Each counts the distinct rows, grouped again, rather than
// a count(DISTINCT …) per group, which is the same number (NULLs equal, as in DISTINCT)
// but does not spill: at a million people under --memory-limit 330MB it ran out of
// memory, and so did three million people at the default limit.
var finalizeWarnings = map[string]string{
	warnPersonConflictingFacts: "SELECT count(*) FROM (SELECT pid FROM (SELECT DISTINCT pid, birth_year, sex FROM stage_person) GROUP BY pid HAVING count(*) > 1)",
	warnDocumentIDReused:       "SELECT count(*) FROM (SELECT doc_key FROM (SELECT DISTINCT doc_key, pid, doc_type FROM stage_document) GROUP BY doc_key HAVING count(*) > 1)",
}

// finalize writes every table, and the registry of document versions, as pid-sorted,
// zstd Parquet under next, for commit to move into DATA. It fills Written, Superseded and
// Merged of this batch's counts; batch is this batch's sequence number.
func (st *stage) finalize(ctx context.Context, dataDir, next string, withExisting bool, batch int) error {
	db := st.db
	if err := st.settleVersions(ctx, dataDir, batch, withExisting); err != nil {
		return err
	}
	for name, q := range finalizeWarnings {
		var n int64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		if n > 0 {
			st.warnings[name] = n
		}
	}
	for _, t := range Tables {
		tc := st.tables[t.Name]
		if err := os.MkdirAll(dataset.TableDir(next, t.Name), 0o755); err != nil {
			return err
		}
		appendTo := withExisting && tableExists(dataDir, t.Name)
		if t.Name == "booking" {
			done, err := st.finalizeBookings(ctx, t, dataDir, next, appendTo)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		var superseded int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM stage_%s WHERE NOT %s", t.Name, notSuperseded(t))).Scan(&superseded); err != nil {
			return fmt.Errorf("count superseded %s: %w", t.Name, err)
		}
		var staged, existing, kept int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM stage_%s", t.Name)).Scan(&staged); err != nil {
			return err
		}
		dups := false
		if t.Name == "booking" {
			// Whether a booking may have been sent twice, by the hash of its key: rows equal
			// in (pid, booking_key) hash alike, so none is missed, and a collision between
			// different keys only runs the exact "last sent wins" window for nothing. Half
			// the time and memory of counting the distinct pairs themselves.
			if err := db.QueryRowContext(ctx, "SELECT count(*) <> count(DISTINCT hash(pid, booking_key)) FROM stage_booking WHERE booking_key IS NOT NULL").Scan(&dups); err != nil {
				return err
			}
		}
		var existingCols map[string]bool
		if appendTo {
			var err error
			if existingCols, err = parquetColumns(ctx, db, dataset.TableGlob(dataDir, t.Name)); err != nil {
				return fmt.Errorf("read %s schema: %w", t.Name, err)
			}
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet(%s)", quote(dataset.TableGlob(dataDir, t.Name)))).Scan(&existing); err != nil {
				return err
			}
		}
		// Every row gets its rank among its person's rows of the table (the whole table:
		// an append ranks the existing rows again with the new ones), in an order fixed
		// by a hash with a secret seed derived from the pseudonymisation key
		// (docs/privacy.md#bounding-by-person-rank); rows equal in every column tie, and
		// are interchangeable, so (pid, rank) orders the file completely.
		names := strings.Split(columnList(t, ""), ", ")
		rank := dataset.PersonRankSQL(names, st.rankSeed("person-rank/"+t.Name))
		final := func(pred string) string {
			if t.Name == "document" {
				return documentFinal(pred)
			}
			return finalSelect(t, dataDir, existingCols, dups, pred)
		}
		var prepare func(string) error
		if appendTo {
			// An append needs to know which existing rows survive: materialise each
			// range's once.
			prepare = func(pred string) error {
				if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TABLE final AS %s", final(pred))); err != nil {
					return fmt.Errorf("prepare %s: %w", t.Name, err)
				}
				var n int64
				if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM final WHERE %s < 0", stagingSeq)).Scan(&n); err != nil {
					return err
				}
				kept += n
				return nil
			}
		}
		query := func(pred string) string {
			src := "(" + final(pred) + ")"
			if appendTo {
				src = "final"
			}
			return fmt.Sprintf("SELECT %s, %s AS %s FROM %s ORDER BY pid, %s",
				columnList(t, ""), rank, dataset.PersonRankColumn, src, dataset.PersonRankColumn)
		}
		out := dataset.TablePart(next, t.Name)
		if err := st.copySorted(ctx, out, st.rangesFor(staged+existing, len(t.Columns)), prepare, query); err != nil {
			return fmt.Errorf("write %s: %w", t.Name, err)
		}
		var total int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet(%s)", quote(out))).Scan(&total); err != nil {
			return fmt.Errorf("count %s: %w", t.Name, err)
		}
		// Written counts this batch's surviving rows; existing rows of an append are
		// counted by earlier batches.
		tc.Written = total - kept
		tc.Superseded = superseded
		tc.Merged = staged - superseded - tc.Written
		if appendTo {
			tc.ReplacedExisting = existing - kept
			if _, err := db.ExecContext(ctx, "DROP TABLE final"); err != nil {
				return err
			}
		}
	}
	return st.writeVersions(ctx, next)
}

// finalizeBookings writes the booking table of a batch whose bookings are all bucketed
// (sortstage.go): sorted, deduplicated and ranked in Go, its person ranks by rankHasher.
// An append stages the existing table's rows in the buckets too, below every new row, so
// that a booking sent again replaces its existing row, and ranks them all again. A batch
// with bookings staged otherwise (through DuckDB's appender), or with none to write on a
// fresh dataset, makes stage_booking hold every staged booking for finalize's SQL, and
// returns false.
func (st *stage) finalizeBookings(ctx context.Context, t Table, dataDir, next string, appendTo bool) (bool, error) {
	var appended int64
	if err := st.db.QueryRowContext(ctx, "SELECT count(*) FROM stage_booking").Scan(&appended); err != nil {
		return false, err
	}
	if appended > 0 || st.sorted == nil || (st.sorted.rows == 0 && !appendTo) {
		return false, st.stageBookingsForSQL()
	}
	if err := st.sorted.finish(); err != nil {
		return false, err
	}
	var existing int64
	if appendTo {
		files, err := filepath.Glob(dataset.TableGlob(dataDir, t.Name))
		if err != nil {
			return false, err
		}
		if existing, err = st.sorted.addExisting(ctx, files, st.workers); err != nil {
			return false, err
		}
	}
	hasher, err := newRankHasher(st.seeds, t.Name)
	if err != nil {
		return false, err
	}
	written, dropped, replaced, err := st.sorted.writeSorted(ctx, dataset.TablePart(next, t.Name), hasher, st.workers)
	if err != nil {
		return false, err
	}
	// A booking has no document: none is superseded; one sent again is merged, and an
	// existing one sent again is replaced. Written counts this batch's rows only.
	tc := st.tables[t.Name]
	tc.Written = written - (existing - replaced)
	tc.Superseded = 0
	tc.Merged = dropped
	if appendTo {
		tc.ReplacedExisting = replaced
	}
	if tc.Written != st.sorted.rows-dropped {
		return false, fmt.Errorf("write %s: %d rows written of %d staged, %d merged and %d existing (%d replaced)", t.Name, written, st.sorted.rows, dropped, existing, replaced)
	}
	return true, nil
}

func tableExists(dataDir, table string) bool {
	m, _ := filepath.Glob(dataset.TableGlob(dataDir, table))
	return len(m) > 0
}

// parquetColumns names the columns of the Parquet files a glob matches.
func parquetColumns(ctx context.Context, db *sql.DB, glob string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT name FROM parquet_schema(%s)", quote(glob)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols[n] = true
	}
	return cols, rows.Err()
}

// emptyTable is a SELECT of no rows with the table's columns and its person rank.
func emptyTable(t Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = fmt.Sprintf("NULL::%s AS %s", c.Type, c.Name)
	}
	cols = append(cols, "NULL::BIGINT AS "+dataset.PersonRankColumn)
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}
