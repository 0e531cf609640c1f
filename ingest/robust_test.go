package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
)

// assertNoWorkingFolder checks an ingest left no working folder in DATA.
func assertNoWorkingFolder(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".ingest-") || e.Name() == ".commit" {
			t.Errorf("DATA holds %s after the ingest", e.Name())
		}
	}
}

// A patient address with a comune but no region (the validator's LDO sample) is read:
// the mapper used to dereference the missing <state> and crash the whole run, leaving
// an empty working folder in DATA.
func TestCDAAddressWithoutRegion(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{filepath.Join(ministry(t), "gtw-validator", "cda.xml")}})
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	assertNoWorkingFolder(t, dir)
	got := queryStrings(t, db, "SELECT pid::VARCHAR, birth_year, sex, coalesce(region, '-'), province FROM "+table(dir, "person"))
	want := []string{pidOf(t, ps, "SSSMNN75B01F257L") + "|1975|M|-|037"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}
}

// A defect while mapping one document (a panic) quarantines that document with its
// position and what went wrong; the other documents of the batch are read, and the
// counts reconcile.
func TestPanicInOneDocumentQuarantinesIt(t *testing.T) {
	ps, _ := testKey(t)
	in := t.TempDir()
	for _, name := range []string{"LAB", "RAD", "VPS"} {
		b, err := os.ReadFile(filepath.Join(gateway(t), "CDA", name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, in, name+".xml", string(b))
	}
	fb, err := os.ReadFile(filepath.Join(gateway(t), "FHIR", "LAB.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, in, "z-bundle.json", string(fb))
	dir := filepath.Join(t.TempDir(), "data")
	// One worker, so the second document mapped is the second file.
	cfg := ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}, MemoryLimit: "512MB", Workers: 1}
	calls := 0
	ingest.SetDocumentHook(&cfg, func(pos string) {
		calls++
		if calls == 2 || pos == "bundle" {
			var m map[string]int
			m["boom"]++ // a nil-map write: a runtime error, as a mapping bug would be
		}
	})
	man, err := ingest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	db := openDB(t)
	assertReconciles(t, db, dir, man)
	assertNoWorkingFolder(t, dir)
	q := quarantineLines(t, dir, man)
	var got []string
	for _, l := range q {
		got = append(got, filepath.Base(l["file"])+"|"+l["position"]+"|"+l["reason"])
	}
	want := []string{
		"RAD.xml|document|internal error while mapping the document: assignment to entry in nil map",
		"z-bundle.json|bundle|internal error while mapping the document: assignment to entry in nil map",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quarantine (-want +got):\n%s", diff)
	}
	for _, in := range man.Batches[0].Inputs {
		base := filepath.Base(in.Path)
		switch {
		case base == "RAD.xml" || base == "z-bundle.json":
			if in.Records != 1 || in.Quarantined != 1 || in.Rows != 0 {
				t.Errorf("%s: %+v, want the one document quarantined", base, in)
			}
		case in.Rows == 0:
			t.Errorf("%s: nothing read: %+v", base, in)
		}
	}
	if got := queryStrings(t, db, "SELECT doc_type FROM "+table(dir, "document")+" ORDER BY 1"); !cmp.Equal(got, []string{"11502-2", "59258-4"}) {
		t.Errorf("documents read: %v, want LAB and VPS", got)
	}
}
