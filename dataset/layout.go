package dataset

import (
	"fmt"
	"path"
	"path/filepath"
)

// Names in a data directory (DATA). The manifest is written last: it is the dataset's
// commit point, and a directory without one holds no dataset.
const (
	CatalogFile   = "catalog.json"
	ManifestFile  = "manifest.json"
	QuarantineDir = "quarantine"
)

// CatalogPath is DATA/catalog.json.
func CatalogPath(dir string) string { return filepath.Join(dir, CatalogFile) }

// ManifestPath is DATA/manifest.json.
func ManifestPath(dir string) string { return filepath.Join(dir, ManifestFile) }

// TableDir is the directory of a table's Parquet files: DATA/<table>.
func TableDir(dir, table string) string { return filepath.Join(dir, table) }

// TableGlob matches every Parquet file of a table: DATA/<table>/*.parquet.
func TableGlob(dir, table string) string { return filepath.Join(dir, table, "*.parquet") }

// TablePattern is TableGlob relative to DATA, with forward slashes, as the catalog
// publishes it (CatalogTable.Path).
func TablePattern(table string) string { return path.Join(table, "*.parquet") }

// TablePart is the file a table is written to in a table directory: DIR/<table>/part-0.parquet.
func TablePart(dir, table string) string { return filepath.Join(dir, table, "part-0.parquet") }

// QuarantineFile is the quarantine of ingest batch seq, relative to DATA (as
// Batch.Quarantine records it): quarantine/batch-001.ndjson. Each line names a rejected
// record's source file, position and reason, never its content.
func QuarantineFile(seq int) string {
	return filepath.Join(QuarantineDir, fmt.Sprintf("batch-%03d.ndjson", seq))
}
