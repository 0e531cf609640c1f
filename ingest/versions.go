package ingest

import (
	"context"
	"fmt"
	"os"

	"github.com/velo-fse/velo/dataset"
)

// Document versions. Which version of a document holds, and so whose facts the dataset
// keeps, is settled over every version the dataset has ever been sent, never over one
// batch alone: the outcome is the same whatever order the versions arrive in, in one
// batch or across appends. A version is superseded by
//
//   - a later version of the same document: same pid, doc_key (setId) and type, higher
//     versionNumber (then later date, then read later);
//   - a document of the same patient and type that replaces it (CDA relatedDocument RPLC,
//     FHIR relatesTo replaces) by its id or its setId; a replacement by the setId a
//     document shares with its parent replaces only lower versions, and a document never
//     replaces a copy of itself (one with one of its own ids);
//   - the supersession of every document it is an addendum to (APND, appends): an
//     addendum adds to its parent and goes with it.
//
// A superseded version stays superseded: a version that arrives later cannot bring it
// back, so a fact once retracted is never needed again. The versions live in the dataset's
// internal table _document_versions (one row per version read, live or superseded, with
// its re-keyed ids and relations; not in the catalog, never queryable), written with the
// tables and committed with them, so the commit stays atomic. A dataset written before the
// registry existed starts it from its document table (its versions' own ids unknown).

// documentVersions is the registry's schema.
var documentVersions = Table{
	Name: "_document_versions", Doc: "every document version read, live or superseded (internal: never queryable)",
	Columns: []Column{
		pidColumn,
		col("doc_key", "VARCHAR", "re-keyed document id (setId)", identifier),
		col("doc_type", "VARCHAR", "LOINC document type"),
		col("doc_date", "DATE", "document date"),
		col("version", "INTEGER", "document version number"),
		col("ids", "VARCHAR[]", "re-keyed ids of this version (CDA id, Bundle.identifier, Type/id)", identifier),
		col("replaces", "VARCHAR[]", "re-keyed ids of the documents it replaces", identifier),
		col("appends", "VARCHAR[]", "re-keyed ids of the documents it is an addendum to", identifier),
		col("batch", "INTEGER", "ingest batch that read it"),
		col("seq", "BIGINT", "order read within the batch"),
		col("superseded", "BOOLEAN", "a later version, a replacement or its parent's supersession retired it"),
	},
}

// InternalTables are the dataset's internal tables: written and committed with the
// canonical tables and rewritten by RemoveOptedOut, but never in the catalog.
var InternalTables = []Table{documentVersions}

// settleVersions puts this batch's documents beside the dataset's versions (table v),
// settles which are superseded (table sup), and leaves for the tables' final SELECTs:
// superseded, this batch's superseded documents (by staging sequence), and live_keys, the
// (pid, doc_key) of the dataset's documents that stay live, whose facts stay. It counts
// relations to a document the dataset does not have as warnings.
func (st *stage) settleVersions(ctx context.Context, dataDir string, batch int, withExisting bool) error {
	var existing string
	switch {
	case withExisting && tableExists(dataDir, documentVersions.Name):
		existing = fmt.Sprintf("SELECT pid, doc_key, doc_type, doc_date, version, ids, replaces, appends, batch, seq, superseded, false AS staged FROM read_parquet(%s) UNION ALL BY NAME ",
			quote(dataset.TableGlob(dataDir, documentVersions.Name)))
	case withExisting && tableExists(dataDir, "document"):
		existing = fmt.Sprintf("SELECT pid, doc_key, doc_type, doc_date, version, []::VARCHAR[] AS ids, []::VARCHAR[] AS replaces, []::VARCHAR[] AS appends, 0 AS batch, row_number() OVER () AS seq, false AS superseded, false AS staged FROM read_parquet(%s) UNION ALL BY NAME ",
			quote(dataset.TableGlob(dataDir, "document")))
	}
	// x replaces or appends to r: the same patient's documents, by r's own ids or its
	// doc_key (a setId x shares with r names only r's lower versions); never a document
	// with one of x's own ids (a copy of x itself), and a replacement only a document of
	// its own type (producers reuse one id across documents of different types).
	match := func(list, sameType string) string {
		return fmt.Sprintf(`SELECT DISTINCT x.vid AS x, r.vid AS r FROM v x JOIN v r ON x.pid = r.pid AND x.vid <> r.vid%[2]s
			WHERE len(x.%[1]s) > 0 AND NOT list_has_any(x.ids, r.ids)
			AND (list_has_any(x.%[1]s, r.ids) OR (list_contains(x.%[1]s, r.doc_key) AND (r.doc_key <> x.doc_key OR r.version < x.version)))`, list, sameType)
	}
	for _, q := range []string{
		fmt.Sprintf(`CREATE OR REPLACE TABLE v AS SELECT row_number() OVER () AS vid, * FROM (%s
			SELECT pid, doc_key, doc_type, doc_date, version, %s AS ids, %s AS replaces, %s AS appends, %d AS batch, %s AS seq, false AS superseded, true AS staged FROM stage_document)`,
			existing, stagingIDs, stagingReplaces, stagingAppends, batch, stagingSeq),
		"CREATE OR REPLACE TABLE rplc AS " + match("replaces", " AND x.doc_type = r.doc_type"),
		"CREATE OR REPLACE TABLE apnd AS " + match("appends", ""),
		`CREATE OR REPLACE TABLE sup AS
			SELECT vid FROM v WHERE superseded
			UNION SELECT vid FROM (SELECT vid, row_number() OVER (PARTITION BY pid, doc_key, doc_type ORDER BY version DESC, doc_date DESC NULLS LAST, batch DESC, seq DESC) AS rn FROM v) WHERE rn > 1
			UNION SELECT r FROM rplc`,
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("settle document versions: %w", err)
		}
	}
	// Addenda go with their parents, and addenda of addenda with them: to a fixed point
	// (each round retires at least one version, so there are at most as many rounds).
	for {
		res, err := st.db.ExecContext(ctx, `INSERT INTO sup SELECT a.x FROM apnd a LEFT JOIN sup s ON s.vid = a.r
			WHERE a.x NOT IN (SELECT vid FROM sup) GROUP BY a.x HAVING count(s.vid) = count(*)`)
		if err != nil {
			return fmt.Errorf("settle addenda: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			break
		}
	}
	for name, q := range map[string]string{
		warnDocumentReplacesUnknownParent: "SELECT count(*) FROM v WHERE staged AND len(replaces) > 0 AND vid NOT IN (SELECT x FROM rplc)",
		warnDocumentAppendsUnknownParent:  "SELECT count(*) FROM v WHERE staged AND len(appends) > 0 AND vid NOT IN (SELECT x FROM apnd)",
	} {
		var n int64
		if err := st.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		if n > 0 {
			st.warnings[name] = n
		}
	}
	for _, q := range []string{
		"CREATE OR REPLACE TABLE superseded AS SELECT seq AS s FROM v WHERE staged AND vid IN (SELECT vid FROM sup)",
		"CREATE OR REPLACE TABLE live_keys AS SELECT DISTINCT pid, doc_key FROM v WHERE NOT staged AND vid NOT IN (SELECT vid FROM sup)",
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("settle document versions: %w", err)
		}
	}
	return nil
}

// documentFinal is the document table's final SELECT of the pid range pred: the live
// versions, with _seq -1 for the dataset's own.
func documentFinal(pred string) string {
	return fmt.Sprintf("SELECT pid, doc_key, doc_type, doc_date, version, CASE WHEN staged THEN seq ELSE -1 END AS %s FROM v WHERE %s AND vid NOT IN (SELECT vid FROM sup)", stagingSeq, pred)
}

// writeVersions writes the registry of document versions into next.
func (st *stage) writeVersions(ctx context.Context, next string) error {
	if err := os.MkdirAll(dataset.TableDir(next, documentVersions.Name), 0o755); err != nil {
		return err
	}
	var rows int64
	if err := st.db.QueryRowContext(ctx, "SELECT count(*) FROM v").Scan(&rows); err != nil {
		return err
	}
	query := func(pred string) string {
		return fmt.Sprintf("SELECT %s FROM (SELECT *, vid IN (SELECT vid FROM sup) AS retired FROM v WHERE %s) ORDER BY pid, batch, seq",
			"pid, doc_key, doc_type, doc_date, version, ids, replaces, appends, batch, seq, retired AS superseded", pred)
	}
	if err := st.copySorted(ctx, dataset.TablePart(next, documentVersions.Name), st.rangesFor(rows, len(documentVersions.Columns)), nil, query); err != nil {
		return fmt.Errorf("write %s: %w", documentVersions.Name, err)
	}
	return nil
}
