package ingest

import (
	"context"
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
// For an append, an existing fact whose document this batch sends again (the table
// retracted, made by retractDocuments) is dropped with it. existingDocKey says whether the
// existing Parquet of a fact table has doc_key (datasets written before it was added read
// as null: their facts cannot be retracted).
func finalSelect(t Table, dataDir string, withExisting, existingDocKey, bookingDups bool) string {
	cols := columnList(t, "")
	outCols := cols + ", " + stagingSeq
	src := fmt.Sprintf("SELECT %s, %s, %s%s FROM stage_%s WHERE %s", cols, stagingSeq, stagingDocSeq,
		map[bool]string{true: ", " + stagingAsOf, false: ""}[t.Name == "person"], t.Name,
		notSuperseded(t))
	if withExisting {
		existingCols, where := cols, ""
		if IsFactTable(t) {
			if existingDocKey {
				where = " e WHERE e.doc_key IS NULL OR NOT EXISTS (SELECT 1 FROM retracted r WHERE r.pid = e.pid AND r.doc_key = e.doc_key)"
			} else {
				existingCols = columnList(Table{Columns: t.Columns[:len(t.Columns)-1]}, "") + ", NULL::VARCHAR AS doc_key"
			}
		}
		src += fmt.Sprintf(" UNION ALL BY NAME SELECT %s, -1::BIGINT AS %s, NULL::BIGINT AS %s%s FROM read_parquet(%s)%s",
			existingCols, stagingSeq, stagingDocSeq,
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
	case "document":
		if !withExisting {
			break // within a batch, superseded versions were already left out
		}
		return fmt.Sprintf("SELECT %s FROM (%s) QUALIFY row_number() OVER (PARTITION BY pid, doc_key, doc_type ORDER BY version DESC, doc_date DESC NULLS LAST, %s DESC) = 1",
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

// finalize writes every table as pid-sorted, zstd Parquet under next, for commit to move
// into DATA. It fills Written, Superseded and Merged of this batch's counts.
func (st *stage) finalize(ctx context.Context, dataDir, next string, withExisting bool) error {
	db := st.db
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE TEMP TABLE superseded AS
		SELECT %[1]s AS s FROM (SELECT %[1]s, row_number() OVER (PARTITION BY pid, doc_key, doc_type ORDER BY version DESC, doc_date DESC NULLS LAST, %[1]s DESC) AS rn FROM stage_document) WHERE rn > 1`, stagingSeq)); err != nil {
		return fmt.Errorf("find superseded documents: %w", err)
	}
	// Data-quality warnings (docs/domain.md#the-codice-fiscale): documents that disagree on
	// a person, and document ids shared by different documents. Both are kept, and counted.
	for name, q := range map[string]string{
		warnPersonConflictingFacts: "SELECT count(*) FROM (SELECT pid FROM stage_person GROUP BY pid HAVING count(DISTINCT (birth_year, sex)) > 1)",
		warnDocumentIDReused:       "SELECT count(*) FROM (SELECT doc_key FROM stage_document GROUP BY doc_key HAVING count(DISTINCT (pid, doc_type)) > 1)",
	} {
		var n int64
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		if n > 0 {
			st.warnings[name] = n
		}
	}
	if withExisting {
		if err := st.retractDocuments(ctx, dataDir); err != nil {
			return err
		}
	}
	for _, t := range Tables {
		tc := st.tables[t.Name]
		if err := os.MkdirAll(dataset.TableDir(next, t.Name), 0o755); err != nil {
			return err
		}
		var superseded int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM stage_%s WHERE NOT %s", t.Name, notSuperseded(t))).Scan(&superseded); err != nil {
			return fmt.Errorf("count superseded %s: %w", t.Name, err)
		}
		appendTo := withExisting && tableExists(dataDir, t.Name)
		var staged, existing, kept int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM stage_%s", t.Name)).Scan(&staged); err != nil {
			return err
		}
		dups := false
		if t.Name == "booking" {
			if err := db.QueryRowContext(ctx, "SELECT count(*) <> count(DISTINCT (pid, booking_key)) FROM stage_booking WHERE booking_key IS NOT NULL").Scan(&dups); err != nil {
				return err
			}
		}
		docKey := false
		if appendTo && IsFactTable(t) {
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) > 0 FROM parquet_schema(%s) WHERE name = 'doc_key'", quote(dataset.TableGlob(dataDir, t.Name)))).Scan(&docKey); err != nil {
				return fmt.Errorf("read %s schema: %w", t.Name, err)
			}
		}
		final := finalSelect(t, dataDir, appendTo, docKey, dups)
		out := dataset.TablePart(next, t.Name)
		src := "(" + final + ")"
		if appendTo {
			// An append needs to know which existing rows survive: materialise once.
			if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE final AS %s", final)); err != nil {
				return fmt.Errorf("prepare %s: %w", t.Name, err)
			}
			src = "final"
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet(%s)", quote(dataset.TableGlob(dataDir, t.Name)))).Scan(&existing); err != nil {
				return err
			}
			if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM final WHERE %s < 0", stagingSeq)).Scan(&kept); err != nil {
				return err
			}
		}
		copySQL := fmt.Sprintf("COPY (SELECT %s FROM %s ORDER BY pid) TO %s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)", columnList(t, ""), src, quote(out))
		if _, err := db.ExecContext(ctx, copySQL); err != nil {
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
	return nil
}

// retractDocuments settles, for an append, which version of each document sent again
// survives: a version of this batch that loses to the dataset's (an older version sent
// late) joins the superseded ones, with its facts; the documents whose surviving version
// is this batch's are the table retracted, whose existing facts finalSelect drops.
func (st *stage) retractDocuments(ctx context.Context, dataDir string) error {
	if !tableExists(dataDir, "document") {
		_, err := st.db.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE retracted (pid UUID, doc_key VARCHAR)")
		return err
	}
	doc, _ := TableByName("document")
	for _, q := range []string{
		"CREATE OR REPLACE TEMP TABLE doc_final AS " + finalSelect(doc, dataDir, true, false, false),
		fmt.Sprintf("INSERT INTO superseded SELECT %[1]s FROM stage_document WHERE %[1]s NOT IN (SELECT s FROM superseded) AND %[1]s NOT IN (SELECT %[1]s FROM doc_final)", stagingSeq),
		fmt.Sprintf("CREATE OR REPLACE TEMP TABLE retracted AS SELECT DISTINCT pid, doc_key FROM doc_final WHERE %s >= 0", stagingSeq),
		"DROP TABLE doc_final",
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("settle document versions: %w", err)
		}
	}
	return nil
}

func tableExists(dataDir, table string) bool {
	m, _ := filepath.Glob(dataset.TableGlob(dataDir, table))
	return len(m) > 0
}
