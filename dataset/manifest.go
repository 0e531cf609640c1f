package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/velo-fse/velo/fse"
)

// Manifest is DATA/manifest.json: what went in, what came out, and how the counts
// reconcile. It holds no identifier: paths are masked and reasons never quote values.
type Manifest struct {
	Format         string                 `json:"format"`
	DatasetVersion string                 `json:"dataset_version"`
	KeyID          string                 `json:"key_id"`
	ToolVersion    string                 `json:"tool_version"`
	CreatedAt      time.Time              `json:"created_at"`
	Period         *fse.Period            `json:"period,omitempty"`
	Batches        []Batch                `json:"batches"`
	Tables         map[string]TableCounts `json:"tables"`
	// OptOutRegistrySize is the number of distinct people on the opt-out lists applied.
	OptOutRegistrySize int `json:"opt_out_registry_size"`
	// Removals records later opt-outs applied with --remove-opted-out.
	Removals []Removal `json:"removals,omitempty"`
}

// Batch is one ingest run into the dataset (the first, and each explicit append).
type Batch struct {
	Seq        int                    `json:"seq"`
	At         time.Time              `json:"at"`
	Inputs     []InputFile            `json:"inputs"`
	Tables     map[string]TableCounts `json:"tables"`
	Warnings   map[string]int64       `json:"warnings"`
	OptedOut   OptOutCounts           `json:"opted_out"`
	Quarantine string                 `json:"quarantine"` // QuarantineFile, relative to DATA
}

// OptOutCounts counts people and records left out because they opted out.
type OptOutCounts struct {
	People  int64 `json:"people"`
	Records int64 `json:"records"`
}

// Removal is a later opt-out applied to the existing dataset.
type Removal struct {
	At              time.Time        `json:"at"`
	RegistrySize    int              `json:"registry_size"`
	RemovedPeople   int64            `json:"removed_people"`
	RemovedRows     map[string]int64 `json:"removed_rows"`
	PreviousVersion string           `json:"previous_version"`
}

// InputFile is one input of a batch. Records = Rows + Quarantined + OptedOut +
// OutsidePeriod + Ignored, always.
type InputFile struct {
	Path          string           `json:"path"`
	SHA256        string           `json:"sha256"`
	Bytes         int64            `json:"bytes"`
	Format        string           `json:"format"`
	Skipped       string           `json:"skipped,omitempty"`
	Records       int64            `json:"records"`
	Rows          int64            `json:"rows"`
	Quarantined   int64            `json:"quarantined"`
	OptedOut      int64            `json:"opted_out"`
	OutsidePeriod int64            `json:"outside_period"`
	Ignored       int64            `json:"ignored"`
	IgnoredWhy    map[string]int64 `json:"ignored_by_reason,omitempty"`
}

// TableCounts reconcile per table: Read = Written + Quarantined + OptedOut +
// OutsidePeriod + Superseded + Merged.
type TableCounts struct {
	Read          int64 `json:"read"`
	Written       int64 `json:"written"`
	Quarantined   int64 `json:"quarantined"`
	OptedOut      int64 `json:"opted_out"`
	OutsidePeriod int64 `json:"outside_period"`
	// Superseded rows belonged to an earlier version of a document sent again.
	Superseded int64 `json:"superseded"`
	// Merged rows were folded into another row of the same person (person table: one
	// row per pid; booking: the same booking sent twice).
	Merged int64 `json:"merged"`
	// ReplacedExisting rows of earlier batches were replaced by this batch's (a person's
	// newer facts, a booking or document sent again): batch-level only; the dataset-level
	// counts move them from Written to Merged.
	ReplacedExisting int64 `json:"replaced_existing,omitempty"`
	// RemovedLater rows were removed from the dataset by a later opt-out (dataset-level
	// counts only).
	RemovedLater int64 `json:"removed_later,omitempty"`
}

// Reconciles reports whether the counts add up.
func (c TableCounts) Reconciles() bool {
	return c.Read == c.Written+c.Quarantined+c.OptedOut+c.OutsidePeriod+c.Superseded+c.Merged+c.RemovedLater
}

// Reconciles reports whether the file's counts add up.
func (f InputFile) Reconciles() bool {
	return f.Records == f.Rows+f.Quarantined+f.OptedOut+f.OutsidePeriod+f.Ignored
}

// ReadManifest loads DATA/manifest.json. A file that cannot be read is reported as
// os.ReadFile reports it (errors.Is(err, fs.ErrNotExist): no dataset in dir); one that
// does not decode names the file.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(ManifestPath(dir))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ManifestPath(dir), err)
	}
	return &m, nil
}
