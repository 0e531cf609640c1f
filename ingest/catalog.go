package ingest

import (
	"fmt"
	"time"

	"github.com/velo-fse/velo/fse"
)

// Public domains, by name. Each comes from reference data (package fse) or policy.
const (
	domainSex            = "sex"
	domainRegion         = "region"
	domainASL            = "asl"
	domainService        = "service_code"
	domainServiceKind    = "service_kind"
	domainPriority       = "priority"
	domainBool           = "boolean"
	domainChannel        = "channel"
	domainStatus         = "booking_status"
	domainDocType        = "document_type"
	domainCodeSystem     = "code_system"
	domainMedicationKind = "medication_kind"
	domainPeriod         = "period" // days of the declared extract period
)

// Catalog is DATA/catalog.json: what may be asked of the data, reviewed by the DPO. It is
// built from the schema, reference data, policy and the declared period only — never
// from observed values, which would themselves leak (DESIGN.md §3).
type Catalog struct {
	Format         string         `json:"format"`
	DatasetVersion string         `json:"dataset_version"`
	Period         *Period        `json:"period,omitempty"`
	Tables         []CatalogTable `json:"tables"`
	// Domains are the public value sets referenced by columns.
	Domains map[string]Domain `json:"domains"`
}

// CatalogTable describes one table.
type CatalogTable struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Path        string          `json:"path"` // glob relative to DATA
	Columns     []CatalogColumn `json:"columns"`
	// Default contribution bounds per person (DESIGN.md §5).
	MaxGroupsContributed int `json:"max_groups_contributed"`
	MaxRowsPerGroup      int `json:"max_rows_per_group"`
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
}

// Domain is a public value set: an explicit list, or a range of days.
type Domain struct {
	Source string    `json:"source"`
	Values []any     `json:"values,omitempty"`
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
}

func strs[T ~string](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// BuildCatalog makes the catalog for the schema, the reference data and the period.
// Without a period, date columns have no public domain.
func BuildCatalog(version string, period *Period) Catalog {
	kinds := []fse.ServiceKind{fse.Visit, fse.Test}
	domains := map[string]Domain{
		domainSex:            {Source: "FSE administrative gender", Values: strs(fse.Sexes)},
		domainRegion:         {Source: "Ministry of Health region codes", Values: strs(fse.RegionCodes())},
		domainASL:            {Source: "ASL codes (region + 3 digits)", Values: strs(fse.ASLCodes())},
		domainService:        {Source: "PNGLA monitored services (subset known to Velo)", Values: strs(fse.ServiceCodes())},
		domainServiceKind:    {Source: "PNGLA: visit or diagnostic test", Values: strs(kinds)},
		domainPriority:       {Source: "PNGLA priority classes", Values: strs(fse.Priorities)},
		domainBool:           {Source: "boolean", Values: []any{false, true}},
		domainChannel:        {Source: "CUP booking channels", Values: strs(fse.Channels)},
		domainStatus:         {Source: "CUP booking statuses", Values: strs(fse.BookingStatuses)},
		domainDocType:        {Source: "FSE document types (LOINC)", Values: strs(fse.DocumentTypeCodes())},
		domainCodeSystem:     {Source: "Velo code-system labels", Values: []any{"icd9cm", "loinc", "other"}},
		domainMedicationKind: {Source: "FHIR medication resource kinds", Values: []any{"administration", "request", "statement"}},
	}
	if period != nil {
		domains[domainPeriod] = Domain{Source: "extract period declared at ingest", From: period.From, To: period.To}
	}
	cat := Catalog{Format: "velo-catalog/v1", DatasetVersion: version, Period: period, Domains: domains}
	for _, t := range Tables {
		ct := CatalogTable{
			Name: t.Name, Description: t.Doc, Path: fmt.Sprintf("%s/*.parquet", t.Name),
			MaxGroupsContributed: t.MaxGroupsContributed, MaxRowsPerGroup: t.MaxRowsPerGroup,
		}
		for _, c := range t.Columns {
			cc := CatalogColumn{
				Name: c.Name, Type: c.Type, Description: c.Doc, Identifier: c.Identifier,
				Groupable: c.Groupable, Domain: c.Domain, Bounds: c.Bounds,
			}
			if c.Domain == domainPeriod && period == nil {
				cc.Domain = "" // no declared period: dates are groupable, not public
			}
			ct.Columns = append(ct.Columns, cc)
		}
		cat.Tables = append(cat.Tables, ct)
	}
	return cat
}
