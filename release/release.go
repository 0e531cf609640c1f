// Package release is the release contract: the JSON shape of what leaves Velo for one
// query (docs/design.md#the-release), shared by the engine that builds it (package query), the HTTP
// API and CLI that send it, and the Grafana plugin that reads it, and its CSV and terminal
// forms.
//
// Invariant: the package only describes and encodes releases; it links no cgo, DuckDB or
// network package, so a client such as the Grafana plugin (built with CGO_ENABLED=0)
// reads a release through the same types the engine writes (a test holds `go list -deps`
// to that). Field names and JSON tags are the contract: extra fields may be added, these
// may not change.
package release

// Release is what leaves Velo for one query, in the one shape the CLI, the API, the
// Grafana plugin and the notebooks share (docs/design.md#the-release). Every number in Rows
// is noisy.
//
// A key cell is a string, number, boolean, YYYY-MM-DD date or null; a dp cell is a
// number. CI has the shape of Rows: null for key cells and for values without a sound
// interval, else a [lower, upper] pair, which CIBounds reads as built or as decoded.
type Release struct {
	ReleaseID      string       `json:"release_id"`
	Project        string       `json:"project"`
	DatasetVersion string       `json:"dataset_version"`
	Cached         bool         `json:"cached"`
	Columns        []Column     `json:"columns"`
	Rows           [][]any      `json:"rows"`
	CI             [][]any      `json:"ci"`
	Confidence     float64      `json:"confidence"`
	Epsilon        float64      `json:"epsilon"`
	Delta          float64      `json:"delta"`
	BudgetSplit    []SplitEntry `json:"budget_split"`
	BudgetLeft     BudgetAmount `json:"budget_left"`
	// Extra fields (allowed by the contract).
	SQL      string       `json:"sql"`
	Bounding BoundingInfo `json:"bounding"`
	DryRun   bool         `json:"dry_run,omitempty"`
}

// Column describes an output column: a group key or a DP aggregate.
type Column struct {
	Name      string      `json:"name"`
	Type      string      `json:"type"`
	Kind      string      `json:"kind"` // "key" or "dp"
	Aggregate string      `json:"aggregate,omitempty"`
	Bounds    *[2]float64 `json:"bounds,omitempty"`
}

// SplitEntry is one share of the query's budget.
type SplitEntry struct {
	For       string  `json:"for"`
	Mechanism string  `json:"mechanism"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
}

// BudgetAmount is an (epsilon, delta) pair.
type BudgetAmount struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// BoundingInfo states the per-person contribution bounds applied.
type BoundingInfo struct {
	MaxGroupsContributed int  `json:"max_groups_contributed"`
	MaxRowsPerGroup      int  `json:"max_rows_per_group"`
	PartitionSelection   bool `json:"partition_selection"`
}
