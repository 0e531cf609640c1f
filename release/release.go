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
	// ClampToRange: the request asked for every dp value and interval end to be moved into
	// its column's Range (post-processing of the noisy values; FlagClamped marks the values
	// that moved).
	ClampToRange bool `json:"clamp_to_range,omitempty"`
	// Flags has the shape of Rows: null for key cells and for dp values without a flag,
	// else the flags of the value (FlagClamped, FlagUninformative). Null when no value of
	// the release has one.
	Flags [][][]string `json:"flags,omitempty"`
	// Selection describes DP partition selection when the query's groups went through it.
	Selection *Selection `json:"selection,omitempty"`
	// Notes are sentences for the people who read the release: what was clamped, which
	// intervals carry no information, what partition selection left out. They are made
	// from the release's other fields and public parameters only.
	Notes []string `json:"notes,omitempty"`
	// Dummy: the release was computed on the dataset's dummy twin, made from the catalog
	// alone (docs/clients.md#dummy-data): its rows are exact answers about made-up people,
	// never about the data. Nothing was spent (Epsilon and Delta are 0); each interval is
	// the value itself, or for a quantile the quantile tree's leaf that holds it. Price is
	// what the same query costs when it runs for real.
	Dummy bool          `json:"dummy,omitempty"`
	Price *BudgetAmount `json:"price,omitempty"`
	// OutputPolicy, when the project has one, says what it did to this release.
	OutputPolicy *OutputPolicy `json:"output_policy,omitempty"`
}

// Flags of a released value.
const (
	// FlagClamped: the noisy value (or an end of its interval) lay outside its column's
	// Range and was moved to the nearest end (clamp_to_range).
	FlagClamped = "clamped"
	// FlagUninformative: the interval covers the column's whole Range, so the value says
	// nothing about the group (too few people for the epsilon spent).
	FlagUninformative = "uninformative"
	// FlagSuppressed: the project's output policy withheld the value (its row has a count
	// below the policy's threshold); the value and its interval are null.
	FlagSuppressed = "suppressed"
)

// OutputPolicy is the project's disclosure control as applied to a release, after DP and
// at no privacy cost (docs/governance.md#output-policy).
type OutputPolicy struct {
	SuppressBelow float64 `json:"suppress_below,omitempty"`
	RoundTo       float64 `json:"round_to,omitempty"`
	// RowsSuppressed is how many rows had their values withheld.
	RowsSuppressed int `json:"rows_suppressed"`
}

// Selection is DP partition selection as a release reports it. Everything in it but
// GroupsKept is computed from the query's options alone; GroupsKept is how many groups the
// selection kept (before HAVING and LIMIT), a function of its noisy output. How many groups
// it dropped is not released.
type Selection struct {
	Mechanism            string  `json:"mechanism"`
	Epsilon              float64 `json:"epsilon"`
	Delta                float64 `json:"delta"`
	MaxGroupsContributed int     `json:"max_groups_contributed"`
	// PersonsForEvenOdds is the number of people a group needs to be released with
	// probability at least 1/2; PersonsFor95Percent, with probability at least 0.95.
	PersonsForEvenOdds  int64 `json:"persons_for_even_odds"`
	PersonsFor95Percent int64 `json:"persons_for_95_percent"`
	// GroupsKept is nil in a dry run (nothing was selected).
	GroupsKept *int `json:"groups_kept,omitempty"`
}

// Column describes an output column: a group key or a DP aggregate.
type Column struct {
	Name      string      `json:"name"`
	Type      string      `json:"type"`
	Kind      string      `json:"kind"` // "key" or "dp"
	Aggregate string      `json:"aggregate,omitempty"`
	Bounds    *[2]float64 `json:"bounds,omitempty"`
	// Range is the set of values the aggregate can take on any data ([0, +inf) for a
	// count, the bounds for an average or a quantile): public, from the query and the
	// catalog. A noisy value may fall outside it unless ClampToRange.
	Range *Range `json:"range,omitempty"`
	// Accuracy says, for people, how far the released values may be from the true ones
	// where the interval alone does not say it (quantiles).
	Accuracy string `json:"accuracy,omitempty"`
	// Labels are public names of a key column's codes that appear in Rows ("120": "Lazio"),
	// from the catalog's reference data; the key values themselves stay codes.
	Labels map[string]string `json:"labels,omitempty"`
}

// Range is a closed range of values; a nil end is unbounded.
type Range struct {
	Lo *float64 `json:"lo"`
	Hi *float64 `json:"hi"`
}

// Contains reports whether x lies in the range.
func (r *Range) Contains(x float64) bool {
	return r == nil || (r.Lo == nil || x >= *r.Lo) && (r.Hi == nil || x <= *r.Hi)
}

// Bounded reports whether both ends are finite.
func (r *Range) Bounded() bool { return r != nil && r.Lo != nil && r.Hi != nil }

// String is the range as [lo, hi], with (−∞ and +∞) for an open end.
func (r *Range) String() string {
	lo, hi := "(−∞", "+∞)"
	if r.Lo != nil {
		lo = "[" + num(*r.Lo)
	}
	if r.Hi != nil {
		hi = num(*r.Hi) + "]"
	}
	return lo + ", " + hi
}

// FlagsOf returns the flags of cell (i, j), nil when it has none.
func (r *Release) FlagsOf(i, j int) []string {
	if i >= len(r.Flags) || j >= len(r.Flags[i]) {
		return nil
	}
	return r.Flags[i][j]
}

// SplitEntry is one share of the query's budget.
type SplitEntry struct {
	For       string  `json:"for"`
	Mechanism string  `json:"mechanism"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	// Rho is the mechanism's zCDP cost when the query's Gaussian mechanisms compose under
	// zCDP ("gaussian (zCDP)"): Epsilon and Delta are then its equal part of the (ε, δ)
	// their total ρ converts to.
	Rho float64 `json:"rho,omitempty"`
}

// BudgetAmount is an (epsilon, delta) pair.
type BudgetAmount struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// BoundingInfo states the per-person contribution bounds applied.
type BoundingInfo struct {
	// Method is how each person's contribution was bounded: "per_group" (at most
	// max_groups_contributed groups, max_rows_per_group rows in each) or "person_rank" (at
	// most max_rows_per_person rows in all, by their rank fixed at ingest), chosen by the
	// engine from the query and the catalog, with the same or smaller noise.
	Method               string `json:"method,omitempty"`
	MaxGroupsContributed int    `json:"max_groups_contributed"`
	MaxRowsPerGroup      int    `json:"max_rows_per_group"`
	MaxRowsPerPerson     int    `json:"max_rows_per_person,omitempty"`
	PartitionSelection   bool   `json:"partition_selection"`
}
