package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
)

// Documents for the tests of versions and replacements: the Gateway's LAB example (one
// result, 16 mg/L) rewritten with another id, setId, version, result and relatedDocument
// elements. Its patient is GTWGWY82B42G920M.

const labRoot = "2.16.840.1.113883.2.9.2.120.4.4"

type labDoc struct {
	id, setID string
	version   int
	value     string      // the one lab result's value
	rels      [][2]string // relatedDocument typeCode and parent id
}

func (d labDoc) cda(t *testing.T) string {
	t.Helper()
	const orig = "030702.TSTSMN63A01F205H.20220325112426.OQlvTq1J"
	doc := readFixture(t, "CDA/LAB.xml")
	for _, r := range [][2]string{
		{`<id root="` + labRoot + `" extension="` + orig + `"`, `<id root="` + labRoot + `" extension="` + d.id + `"`},
		{`<setId root="` + labRoot + `" extension="` + orig + `"`, `<setId root="` + labRoot + `" extension="` + d.setID + `"`},
		{`<versionNumber value="1"/>`, fmt.Sprintf(`<versionNumber value="%d"/>`, d.version)},
		{`<value xsi:type="PQ" value="16.00" unit="mg/L"/>`, `<value xsi:type="PQ" value="` + d.value + `" unit="mg/L"/>`},
	} {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("fixture edit %q does not apply", r[0])
		}
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	rel := ""
	for _, r := range d.rels {
		rel += `<relatedDocument typeCode="` + r[0] + `"><parentDocument><id root="` + labRoot + `" extension="` + r[1] + `"/></parentDocument></relatedDocument>`
	}
	return strings.Replace(doc, "\t<componentOf>", rel+"\t<componentOf>", 1)
}

// ingestBatches ingests each batch (files by name, read in name order) as one ingest into
// one dataset, checking that every batch reconciles, and returns the last manifest.
func ingestBatches(t *testing.T, ps *pseudonymize.Pseudonymizer, dir string, batches ...map[string]string) *dataset.Manifest {
	t.Helper()
	var man *dataset.Manifest
	db := openDB(t)
	for i, files := range batches {
		if files == nil {
			continue // a batch the caller ingested already
		}
		in := t.TempDir()
		for name, content := range files {
			writeFile(t, in, name, content)
		}
		man = runIngest(t, ingest.Config{Pseudonymizer: ps, Out: dir, Append: i > 0, Inputs: []string{in}})
		assertReconciles(t, db, dir, man)
	}
	return man
}

// assertLive checks the dataset holds exactly the documents (by version and result) of
// want, each fact linked to a live document.
func assertLive(t *testing.T, dir string, want ...string) {
	t.Helper()
	db := openDB(t)
	got := queryStrings(t, db, "SELECT d.version || ':' || l.value FROM "+table(dir, "document")+" d JOIN "+table(dir, "lab_result")+" l USING (pid, doc_key)")
	if diff := cmp.Diff(sortedLines(want...), sortedLines(got...)); diff != "" {
		t.Errorf("live documents (version:result) (-want +got):\n%s", diff)
	}
	for _, tb := range []string{"document", "lab_result"} {
		if n := queryStrings(t, db, "SELECT count(*) FROM "+table(dir, tb)); n[0] != fmt.Sprint(len(want)) {
			t.Errorf("%s holds %s rows, want %d", tb, n[0], len(want))
		}
	}
}

// permutations lists every order of n items.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// arrivals runs check over every order of docs, once with all of them in one batch and
// once with each in a batch of its own.
func arrivals(t *testing.T, docs []string, check func(t *testing.T, dir string, man *dataset.Manifest)) {
	t.Helper()
	ps, _ := testKey(t)
	for _, order := range permutations(len(docs)) {
		name := fmt.Sprint(order)
		t.Run("one batch "+name, func(t *testing.T) {
			files := map[string]string{}
			for pos, i := range order {
				files[fmt.Sprintf("%d.xml", pos)] = docs[i]
			}
			dir := filepath.Join(t.TempDir(), "data")
			check(t, dir, ingestBatches(t, ps, dir, files))
		})
		t.Run("batches "+name, func(t *testing.T) {
			var batches []map[string]string
			for _, i := range order {
				batches = append(batches, map[string]string{"doc.xml": docs[i]})
			}
			dir := filepath.Join(t.TempDir(), "data")
			check(t, dir, ingestBatches(t, ps, dir, batches...))
		})
	}
}

// A replacement with a new setId (relatedDocument RPLC naming the original's id) retires
// the original and its facts, whichever arrives first, in one batch or across batches.
func TestReplacementInAnyOrder(t *testing.T) {
	orig := labDoc{id: "ORIG-1", setID: "ORIG-1", version: 1, value: "16"}.cda(t)
	repl := labDoc{id: "REPL-1", setID: "REPL-SET", version: 1, value: "18.5", rels: [][2]string{{"RPLC", "ORIG-1"}}}.cda(t)
	arrivals(t, []string{orig, repl}, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "1:18.5")
		var superseded, replaced int64
		for _, b := range man.Batches {
			superseded += b.Tables["lab_result"].Superseded
			replaced += b.Tables["lab_result"].ReplacedExisting
		}
		if superseded+replaced != 1 {
			t.Errorf("lab_result: %d superseded and %d replaced, want the original's result once", superseded, replaced)
		}
	})
}

// A chain of replacements — R1 replaces the original, R2 replaces R1 — leaves R2 alone,
// in every order of arrival.
func TestReplacementChain(t *testing.T) {
	docs := []string{
		labDoc{id: "ORIG-1", setID: "ORIG-1", version: 1, value: "16"}.cda(t),
		labDoc{id: "R1", setID: "R1-SET", version: 1, value: "17", rels: [][2]string{{"RPLC", "ORIG-1"}}}.cda(t),
		labDoc{id: "R2", setID: "R2-SET", version: 1, value: "18.5", rels: [][2]string{{"RPLC", "R1"}}}.cda(t),
	}
	arrivals(t, docs, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "1:18.5")
	})
	// The original and the first replacement sent again after the chain settled stay
	// retired: the registry remembers what replaced them.
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	ingestBatches(t, ps, dir, map[string]string{"a.xml": docs[0]}, map[string]string{"b.xml": docs[1]}, map[string]string{"c.xml": docs[2]},
		map[string]string{"a.xml": docs[0], "b.xml": docs[1]})
	assertLive(t, dir, "1:18.5")
}

// The IGs' own way — same setId, higher versionNumber, relatedDocument RPLC naming the
// previous version's id — and a chain of it: version 3 holds whatever the order.
func TestNewVersionsWithRelatedDocument(t *testing.T) {
	docs := []string{
		labDoc{id: "V1", setID: "SET", version: 1, value: "16"}.cda(t),
		labDoc{id: "V2", setID: "SET", version: 2, value: "17", rels: [][2]string{{"RPLC", "V1"}}}.cda(t),
		labDoc{id: "V3", setID: "SET", version: 3, value: "18.5", rels: [][2]string{{"RPLC", "V2"}}}.cda(t),
	}
	arrivals(t, docs, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "3:18.5")
		if w := man.Batches[len(man.Batches)-1].Warnings["document_replaces_unknown_parent"]; len(man.Batches) == 1 && w != 0 {
			t.Errorf("%d replacements of an unknown parent, want none: every parent is in the batch", w)
		}
	})
}

// A replacement whose parent the dataset does not have is kept, and counted.
func TestReplacementOfUnknownParent(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	man := ingestBatches(t, ps, dir, map[string]string{
		"repl.xml": labDoc{id: "REPL-1", setID: "REPL-SET", version: 1, value: "18.5", rels: [][2]string{{"RPLC", "NOT-SENT"}}}.cda(t),
		// A document of another patient with the parent's id is not the parent.
		"other.json": strings.ReplaceAll(labDoc{}.fhirWithID(t, "NOT-SENT"), "GTWGWY82B42G920M", "RSSMRA22A01A399Z"),
	})
	assertLive(t, dir, "1:18.5", "1:16.0")
	if w := man.Batches[0].Warnings["document_replaces_unknown_parent"]; w != 1 {
		t.Errorf("document_replaces_unknown_parent = %d, want 1", w)
	}
}

// An addendum (APND) adds to its parent: both are kept with their facts — also when the
// addendum reuses its parent's setId with a higher version. When the parent is replaced,
// its addenda go with it, whatever the order of arrival.
func TestAddendum(t *testing.T) {
	orig := labDoc{id: "ORIG-1", setID: "ORIG-1", version: 1, value: "16"}.cda(t)
	add := labDoc{id: "ADD-1", setID: "ADD-1", version: 1, value: "20", rels: [][2]string{{"APND", "ORIG-1"}}}.cda(t)
	addSameSet := labDoc{id: "ADD-2", setID: "ORIG-1", version: 2, value: "21", rels: [][2]string{{"APND", "ORIG-1"}}}.cda(t)
	repl := labDoc{id: "REPL-1", setID: "REPL-SET", version: 1, value: "18.5", rels: [][2]string{{"RPLC", "ORIG-1"}}}.cda(t)
	arrivals(t, []string{orig, add, addSameSet}, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "1:16.0", "1:20.0", "2:21.0")
	})
	arrivals(t, []string{orig, add, repl}, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "1:18.5")
	})
}

// fhirWithID is the Gateway's LAB bundle with another document id (Bundle.identifier and
// Composition.identifier), result value 16.
func (labDoc) fhirWithID(t *testing.T, id string) string {
	t.Helper()
	return strings.ReplaceAll(readFixture(t, "FHIR/LAB.json"), "030702.TSTSMN63A01F205H.20220325112426.OQlvTq1J", id)
}

// FHIR's relatesTo replaces and appends are read like CDA's relatedDocument: a
// Composition replacing a document by its identifier — here a CDA original, named by the
// identifier the Gateway makes of its id — and a DocumentReference replacing another by
// reference, in any order.
func TestFHIRRelatesTo(t *testing.T) {
	orig := labDoc{id: "ORIG-1", setID: "ORIG-1", version: 1, value: "16"}.cda(t)
	var b map[string]any
	if err := json.Unmarshal([]byte(labDoc{}.fhirWithID(t, "REPL-1")), &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b["entry"].([]any) {
		r := e.(map[string]any)["resource"].(map[string]any)
		switch r["resourceType"] {
		case "Composition":
			r["relatesTo"] = []any{map[string]any{"code": "replaces", "targetIdentifier": map[string]any{"system": "urn:oid:" + labRoot, "value": "ORIG-1"}}}
		case "Observation":
			r["valueQuantity"].(map[string]any)["value"] = 18.5
		}
	}
	repl, _ := json.Marshal(b)
	arrivals(t, []string{orig, string(repl)}, func(t *testing.T, dir string, man *dataset.Manifest) {
		assertLive(t, dir, "1:18.5")
	})

	ps, _ := testKey(t)
	cf := "GTWGWY82B42G920M"
	patient := `{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:2.16.840.1.113883.2.9.4.3.2","value":"` + cf + `"}],"gender":"female","birthDate":"1990-01-01"}`
	docRef := func(id, master, rel string) string {
		return `{"resourceType":"DocumentReference","id":"` + id + `","masterIdentifier":{"system":"urn:oid:1.2.3","value":"` + master + `"},` +
			`"type":{"coding":[{"system":"http://loinc.org","code":"11502-2"}]},"subject":{"reference":"Patient/p1"},"date":"2024-03-01T10:00:00Z"` + rel + `}`
	}
	first := docRef("doc-1", "MASTER-1", "")
	second := docRef("doc-2", "MASTER-2", `,"relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/doc-1"}}]`)
	for _, order := range [][2]string{{first, second}, {second, first}} {
		dir := filepath.Join(t.TempDir(), "data")
		ingestBatches(t, ps, dir,
			map[string]string{"Patient.ndjson": patient + "\n", "DocumentReference.ndjson": order[0] + "\n"},
			map[string]string{"Patient.ndjson": patient + "\n", "DocumentReference.ndjson": order[1] + "\n"})
		db := openDB(t)
		want := ps.DocumentKey("urn:oid:1.2.3", "MASTER-2")
		if got := queryStrings(t, db, "SELECT doc_key FROM "+table(dir, "document")); !cmp.Equal(got, []string{want}) {
			t.Errorf("documents %v, want only the replacement", got)
		}
	}
}

// Opting out later removes the person from the registry of document versions too, and a
// crash while committing leaves the registry as consistent as the tables (the commit
// moves it with them: TestCommitInterruptedAtEveryStep).
func TestRemoveOptedOutFromDocumentVersions(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	ingestBatches(t, ps, dir, map[string]string{"lab.xml": labDoc{id: "ORIG-1", setID: "ORIG-1", version: 1, value: "16"}.cda(t)})
	db := openDB(t)
	versions := table(dir, ingest.InternalTables[0].Name)
	if n := queryStrings(t, db, "SELECT count(*) FROM "+versions); n[0] != "1" {
		t.Fatalf("%s versions registered, want 1", n[0])
	}
	reg, _ := pseudonymize.ReadOptOut(strings.NewReader("GTWGWY82B42G920M\n"), "later.txt")
	if _, err := ingest.RemoveOptedOut(context.Background(), ingest.RemoveConfig{Pseudonymizer: ps, OptOut: reg, Out: dir}); err != nil {
		t.Fatal(err)
	}
	if n := queryStrings(t, db, "SELECT count(*) FROM "+versions); n[0] != "0" {
		t.Errorf("%s versions of the person who opted out left in the registry", n[0])
	}
}

// A dataset written before the registry of document versions existed starts it from its
// document table: a later replacement naming the original by its setId retires it.
func TestReplacementOnDatasetWithoutRegistry(t *testing.T) {
	ps, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	ingestBatches(t, ps, dir, map[string]string{"orig.xml": labDoc{id: "ORIG-1", setID: "ORIG-SET", version: 1, value: "16"}.cda(t)})
	if err := os.RemoveAll(filepath.Join(dir, ingest.InternalTables[0].Name)); err != nil {
		t.Fatal(err)
	}
	repl := labDoc{id: "REPL-1", setID: "REPL-SET", version: 1, value: "18.5", rels: [][2]string{{"RPLC", "ORIG-SET"}}}.cda(t)
	ingestBatches(t, ps, dir, nil, map[string]string{"repl.xml": repl})
	assertLive(t, dir, "1:18.5")
}
