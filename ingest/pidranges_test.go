package ingest_test

import (
	"archive/zip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/synth"
)

// TestPidRangesWriteTheSameFiles ingests a synthetic extract (FHIR, CDA and CUP CSV, the
// bookings through finalize's SQL), then appends a second one that sends a third of the
// first's people again and new versions of some of its CDA documents, once with every
// table written in one pid range and once in five: every file must hold the same rows in
// the same order, and the manifests must agree.
func TestPidRangesWriteTheSameFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests two synthetic extracts twice")
	}
	all := []synth.Format{synth.FormatFHIR, synth.FormatCSV, synth.FormatCDA}
	first, period := synthExtract(t, synth.Config{Persons: 600, Seed: 11, Formats: all})
	second, _ := synthExtract(t, synth.Config{Persons: 200, Seed: 11, Formats: all})
	newVersions(t, filepath.Join(first, "cda", "cda-000001.zip"), filepath.Join(second, "versions"), 40)
	ps, _ := testKey(t)
	run := func(dir string, ranges int) *dataset.Manifest {
		t.Helper()
		var man *dataset.Manifest
		for i, in := range []string{first, second} {
			var staged int64
			cfg := ingest.Config{Pseudonymizer: ps, Out: dir, Inputs: []string{in}, Period: period, Workers: 2, Append: i > 0}
			// Bookings through DuckDB's appender: written by finalize's SQL, in ranges.
			ingest.SetAppenderOnly(&cfg, &staged)
			ingest.SetPidRanges(&cfg, ranges)
			var err error
			if man, err = ingest.Run(context.Background(), cfg); err != nil {
				t.Fatalf("ingest %s in %d pid ranges: %v", in, ranges, err)
			}
		}
		return man
	}
	a, b := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "five")
	ma, mb := run(a, 1), run(b, 5)
	db := openDB(t)
	assertSameDatasets(t, db, a, b, ma, mb)
	assertReconciles(t, db, b, mb)
	for _, tb := range slices.Concat(ingest.Tables, ingest.InternalTables) {
		if files, _ := filepath.Glob(dataset.TableGlob(b, tb.Name)); len(files) != 1 {
			t.Errorf("table %s: %d files in five ranges, want one", tb.Name, len(files))
		}
	}
	// The extracts tested what they should: rows in every range, an append that replaced
	// existing rows, and superseded document versions.
	if n := queryStrings(t, db, "SELECT count(DISTINCT left(pid::VARCHAR, 1)) FROM "+table(b, "person")); !slices.Equal(n, []string{"16"}) {
		t.Errorf("people's pids start with %v of 16 hex digits", n)
	}
	last := mb.Batches[len(mb.Batches)-1]
	if last.Tables["person"].ReplacedExisting == 0 || last.Tables["booking"].ReplacedExisting == 0 {
		t.Errorf("the append replaced no existing person or booking: %+v", last.Tables)
	}
	if mb.Tables["document"].Superseded == 0 {
		t.Errorf("no document version was superseded: %+v", mb.Tables["document"])
	}
}

// TestPidRangesPartitionThePids checks that the ranges' predicates put every pid, and a
// missing one, in exactly one range, and each pid in the range its leading 16 bits say,
// so that the ranges go in pid order.
func TestPidRangesPartitionThePids(t *testing.T) {
	db := openDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pids := [][16]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 2000 {
		var p [16]byte
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		pids = append(pids, p)
	}
	for _, n := range []int{1, 2, 3, 7, 16, 1000} {
		preds := ingest.PidRanges(n)
		if len(preds) != n {
			t.Fatalf("%d ranges: %d predicates", n, len(preds))
		}
		values := []string{"(NULL::UUID, " + strconv.Itoa(n-1) + ")"}
		for _, p := range pids {
			lead := int(p[0])<<8 | int(p[1])
			want := 0
			for want+1 < n && (want+1)*(1<<16)/n <= lead {
				want++
			}
			values = append(values, fmt.Sprintf("('%x-%x-%x-%x-%x'::UUID, %d)", p[:4], p[4:6], p[6:8], p[8:10], p[10:], want))
		}
		q := "SELECT count(*) FILTER (WHERE len(list_filter(hits, h -> h)) <> 1 OR list_position(hits, true) - 1 <> want) FROM (SELECT want, [" +
			strings.Join(preds, ", ") + "] AS hits FROM (VALUES " + strings.Join(values, ", ") + ") v(pid, want))"
		if got := queryStrings(t, db, q); !slices.Equal(got, []string{"0"}) {
			t.Errorf("%d ranges: %s pids not in exactly their one range", n, got[0])
		}
	}
}

// newVersions writes into dir version 2 of the first n CDA documents of a synthetic
// extract's zip: the same setId, another id.
func newVersions(t *testing.T, zipPath, dir string, n int) {
	t.Helper()
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range z.File[:min(n, len(z.File))] {
		doc := string(readZipFile(t, f))
		id := regexp.MustCompile(`<id root="[^"]*" extension="([^"]*)"/><code `).FindStringSubmatch(doc)
		if id == nil || !strings.Contains(doc, `<versionNumber value="1"/>`) {
			t.Fatalf("%s: no document id or version 1", f.Name)
		}
		doc = strings.Replace(doc, `extension="`+id[1]+`"/><code `, `extension="`+id[1]+`.v2"/><code `, 1)
		doc = strings.Replace(doc, `<versionNumber value="1"/>`, `<versionNumber value="2"/>`, 1)
		if err := os.WriteFile(filepath.Join(dir, "v2-"+f.Name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
