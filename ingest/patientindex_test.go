package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// The index of the NDJSON Patients keeps at most so many in memory and the rest on disk
// (ingest/patientindex.go). A synthetic FHIR extract, with a second Patient file that
// sends a third of the Patients again with a birth date that is not one (they are
// quarantined, and so are their resources) and a fifth again as they were, is ingested
// with every Patient in memory and with 7 at most: every table, the manifest and the
// quarantine must be the same.
func TestPatientIndexOnDiskIngestsTheSame(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests a synthetic extract twice")
	}
	src, period := synthExtract(t, synth.Config{Persons: 1500, Seed: 5, Formats: []synth.Format{synth.FormatFHIR}})
	ndjson := filepath.Join(src, "fhir", "ndjson")
	raw, err := os.ReadFile(filepath.Join(ndjson, "Patient.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for i, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		switch {
		case i%3 == 0:
			bad := strings.Replace(l, `"birthDate":"`, `"birthDate":"x`, 1)
			if bad == l {
				t.Fatalf("Patient line %d has no birthDate", i+1)
			}
			again = append(again, bad)
		case i%5 == 0:
			again = append(again, l)
		}
	}
	// Patient.ndjson sorts before Patient2.ndjson: the second is read after the first.
	if err := os.WriteFile(filepath.Join(ndjson, "Patient2.ndjson"), []byte(strings.Join(again, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	optOut := readOptOutFile(t, filepath.Join(src, "optout.txt"))
	ps, _ := testKey(t)
	run := func(dir string, inMemory int) *dataset.Manifest {
		t.Helper()
		cfg := ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{src}, OptOut: optOut, Period: period, Workers: 3}
		if inMemory > 0 {
			ingest.SetPatientEntries(&cfg, inMemory)
		}
		man, err := ingest.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return man
	}
	a, b := filepath.Join(t.TempDir(), "memory"), filepath.Join(t.TempDir(), "disk")
	ma, mb := run(a, 0), run(b, 7)
	db := openDB(t)
	assertSameDatasets(t, db, a, b, ma, mb)
	assertReconciles(t, db, b, mb)
	qa, err := os.ReadFile(filepath.Join(a, ma.Batches[0].Quarantine))
	if err != nil {
		t.Fatal(err)
	}
	qb, err := os.ReadFile(filepath.Join(b, mb.Batches[0].Quarantine))
	if err != nil {
		t.Fatal(err)
	}
	if string(qa) != string(qb) {
		t.Error("the quarantines differ")
	}
	// The extract tested what it should: resources found their Patients, and the
	// Patients sent again with a bad birth date were quarantined with their resources.
	if v := mb.Tables["vaccination"]; v.Read == 0 || v.Quarantined == 0 || v.Read == v.Quarantined {
		t.Errorf("vaccinations: %+v; want some resolved and some quarantined with their Patient", v)
	}
	if p := mb.Tables["person"]; p.Quarantined < int64(len(again)/2) {
		t.Errorf("persons: %+v; want the %d sent again with a bad birth date quarantined", p, len(again))
	}
}
