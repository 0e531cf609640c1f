package ingest_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
)

// The catalog's coded domains get public names when the catalog is read — from the
// reference data, for the codes the domain lists — and catalog.json itself holds none of
// them (DATA keeps no display text of the sources).
func TestCatalogLabels(t *testing.T) {
	period, err := fse.ParsePeriod("2024-01..2024-12")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := json.Marshal(ingest.BuildCatalog("v1", period))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataset.CatalogPath(dir), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Lazio") || strings.Contains(string(b), `"labels"`) {
		t.Fatalf("catalog.json holds labels: %.200s...", b)
	}
	cat, err := dataset.ReadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ domain, code, want string }{
		{"region", "120", "Lazio"},
		{"region", "041", "P.A. Bolzano"},
		{"asl", "120201", "ASL 201 (Lazio)"},
		{"priority", "U", "urgente (within 72 hours)"},
		{"priority", "B", "breve (within 10 days)"},
		{"priority", "D", "differibile (within 30 days for visits, 60 for tests)"},
		{"priority", "P", "programmata (within 120 days)"},
		{"service_code", "95.02", "Prima visita oculistica"},
		{"service_kind", "test", "diagnostic test"},
		{"sex", "F", "female"},
		{"document_type", "11502-2", "Referto di Laboratorio"},
	} {
		if got := cat.Domains[tc.domain].Labels[tc.code]; got != tc.want {
			t.Errorf("%s %s: label %q, want %q", tc.domain, tc.code, got, tc.want)
		}
	}
	// Every coded domain that has names names each of its codes, and nothing else.
	for name, d := range cat.Domains {
		all := dataset.Labels(name)
		if len(all) == 0 {
			if len(d.Labels) != 0 {
				t.Errorf("domain %s: labels %v without reference names", name, d.Labels)
			}
			continue
		}
		if len(d.Labels) != len(d.Values) {
			t.Errorf("domain %s: %d labels for %d values", name, len(d.Labels), len(d.Values))
		}
	}
	for _, name := range []string{"region", "asl", "service_code", "service_kind", "priority", "sex", "document_type"} {
		if _, ok := cat.Domains[name]; !ok {
			t.Errorf("dataset.Labels names domain %s, which the catalog does not have", name)
		}
	}
}
