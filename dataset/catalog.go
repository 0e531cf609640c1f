package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/velo-fse/velo/fse"
)

// DomainPeriod names the domain of a date column whose days lie in the extract's declared
// period: its values are the period's days (Catalog.Period), not a list.
const DomainPeriod = "period"

// Catalog is DATA/catalog.json: what may be asked of the data, reviewed by the DPO. It is
// built from the schema, reference data, policy and the declared period only — never
// from observed values, which would themselves leak (docs/ingest.md#catalog).
type Catalog struct {
	Format         string         `json:"format"`
	DatasetVersion string         `json:"dataset_version"`
	Period         *fse.Period    `json:"period,omitempty"`
	Tables         []CatalogTable `json:"tables"`
	// Domains are the public value sets referenced by columns.
	Domains map[string]Domain `json:"domains"`
}

// CatalogTable describes one table.
type CatalogTable struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Path        string          `json:"path"` // glob relative to DATA (TablePattern)
	Columns     []CatalogColumn `json:"columns"`
	// Default contribution bounds per person (docs/privacy.md#bounding-each-persons-contribution).
	MaxGroupsContributed int `json:"max_groups_contributed"`
	MaxRowsPerGroup      int `json:"max_rows_per_group"`
	// PersonRank says the table's files carry PersonRankColumn: each row's rank among
	// its person's rows of the table, in an order fixed at ingest by a keyed hash with a
	// secret seed (PersonRankSQL, or for the bookings of a first batch the ingest's own
	// keyed hash: docs/ingest.md#output). The engine may then bound a person's rows with a filter
	// on it instead of a window (docs/privacy.md#bounding-by-person-rank).
	PersonRank bool `json:"person_rank,omitempty"`
}

// PersonRankColumn is the column of a table's files that holds each row's person rank.
// It is not a catalog column: no query can name it; only the engine's rewrite reads it.
const PersonRankColumn = "_velo_rank"

// PersonRankSQL is the SQL window that ranks each person's rows 1, 2, … in the order of
// a hash of the listed columns (the table's, so equal rows tie) and seed: applied to a
// table's whole content (every row of every person) whenever it is written.
func PersonRankSQL(columns []string, seed uint64) string {
	return fmt.Sprintf("row_number() OVER (PARTITION BY pid ORDER BY hash(%s, %d::UBIGINT))", strings.Join(columns, ", "), seed)
}

// CatalogColumn describes one column.
type CatalogColumn struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Description string  `json:"description"`
	Identifier  bool    `json:"identifier,omitempty"`
	Groupable   bool    `json:"groupable"`
	Domain      string  `json:"domain,omitempty"`
	Bounds      *Bounds `json:"bounds,omitempty"`
	// NotNull says that ingest never writes NULL in the column (its parser or quarantine
	// rules guarantee a value): synthesis then gives the column no NULL level. It is a
	// property of the code, not of the data; catalogs written before it have it false.
	NotNull bool `json:"not_null,omitempty"`
}

// Domain is a public value set: an explicit list, or a range of days.
type Domain struct {
	Source string    `json:"source"`
	Values []any     `json:"values,omitempty"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	// Labels are public names of the values, by value as text ("120": "Lazio"), from the
	// reference data (Labels); a value without one is shown as itself. They are attached
	// by ReadCatalog, not stored in catalog.json.
	Labels map[string]string `json:"labels,omitempty"`
}

// Bounds are clamping bounds for a numeric column.
type Bounds struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// ReadCatalog loads DATA/catalog.json. Both errors name the directory or the file.
func ReadCatalog(dir string) (*Catalog, error) {
	b, err := os.ReadFile(CatalogPath(dir))
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", dir, err)
	}
	var cat Catalog
	if err := json.Unmarshal(b, &cat); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", CatalogPath(dir), err)
	}
	cat.attachLabels()
	return &cat, nil
}
