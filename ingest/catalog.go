package ingest

import (
	"github.com/velo-fse/velo/dataset"
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
	domainERTriage       = "er_triage"
	domainEROutcome      = "er_outcome"
	domainDiagnosisRole  = "diagnosis_role"
	domainICD9Chapter    = "icd9cm_chapter"

	domainObservationCategory = "observation_category"
	domainObservationCode     = "observation_code"
	domainPeriod              = dataset.DomainPeriod // days of the declared extract period
)

func strs[T ~string](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// BuildCatalog makes the catalog for the schema, the reference data and the period.
// Without a period, date columns have no public domain.
func BuildCatalog(version string, period *fse.Period) dataset.Catalog {
	kinds := []fse.ServiceKind{fse.Visit, fse.Test}
	domains := map[string]dataset.Domain{
		domainSex:                 {Source: "FSE administrative gender", Values: strs(fse.Sexes)},
		domainRegion:              {Source: "Ministry of Health region codes", Values: strs(fse.RegionCodes())},
		domainASL:                 {Source: "ASL codes (region + 3 digits)", Values: strs(fse.ASLCodes())},
		domainService:             {Source: "PNGLA monitored services (subset known to Velo)", Values: strs(fse.ServiceCodes())},
		domainServiceKind:         {Source: "PNGLA: visit or diagnostic test", Values: strs(kinds)},
		domainPriority:            {Source: "PNGLA priority classes", Values: strs(fse.Priorities)},
		domainBool:                {Source: "boolean", Values: []any{false, true}},
		domainChannel:             {Source: "CUP booking channels", Values: strs(fse.Channels)},
		domainStatus:              {Source: "CUP booking statuses", Values: strs(fse.BookingStatuses)},
		domainDocType:             {Source: "FSE document types (LOINC)", Values: strs(fse.DocumentTypeCodes())},
		domainCodeSystem:          {Source: "Velo code-system labels", Values: []any{"icd9cm", "loinc", "other"}},
		domainMedicationKind:      {Source: "FHIR medication resource kinds", Values: []any{"administration", "request", "statement"}},
		domainERTriage:            {Source: "EMUR triage colour codes (VPS CodiceTriage_VPS)", Values: strs(fse.ERTriageCodes)},
		domainEROutcome:           {Source: "EMUR outcome codes (VPS EsitoTrattamento_VPS)", Values: strs(fse.EROutcomeCodes)},
		domainDiagnosisRole:       {Source: "Velo: the role of a diagnosis in its document", Values: strs(fse.DiagnosisRoles)},
		domainICD9Chapter:         {Source: "ICD-9-CM chapters of diseases (by category range), V and E codes", Values: strs(fse.ICD9CMChapters)},
		domainObservationCategory: {Source: "FHIR observation categories (vital-signs, social-history)", Values: strs(fse.ObservationCategories)},
		domainObservationCode:     {Source: "LOINC: FHIR vital-signs value set and lifestyle observations", Values: strs(fse.ObservationCodes())},
	}
	if period != nil {
		domains[domainPeriod] = dataset.Domain{Source: "extract period declared at ingest", From: period.From, To: period.To}
	}
	cat := dataset.Catalog{Format: "velo-catalog/v1", DatasetVersion: version, Period: period, Domains: domains}
	for _, t := range Tables {
		ct := dataset.CatalogTable{
			Name: t.Name, Description: t.Doc, Path: dataset.TablePattern(t.Name),
			MaxGroupsContributed: t.MaxGroupsContributed, MaxRowsPerGroup: t.MaxRowsPerGroup,
			PersonRank: true, // finalize ranks every table's rows by person
		}
		for _, c := range t.Columns {
			cc := dataset.CatalogColumn{
				Name: c.Name, Type: c.Type, Description: c.Doc, Identifier: c.Identifier,
				Groupable: c.Groupable, Domain: c.Domain, Bounds: c.Bounds, NotNull: c.NotNull,
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
