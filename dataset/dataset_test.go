package dataset_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
)

func TestReadCatalogAndManifest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(dataset.CatalogFile, `{"format":"velo-catalog/v1","dataset_version":"ds_1",
		"period":{"from":"2024-01-01T00:00:00Z","to":"2024-12-31T00:00:00Z"},
		"tables":[{"name":"booking","description":"","path":"booking/*.parquet","columns":[
			{"name":"wait_days","type":"INTEGER","description":"","groupable":false,"bounds":{"lo":0,"hi":365}}],
			"max_groups_contributed":4,"max_rows_per_group":2}],
		"domains":{"period":{"source":"extract period declared at ingest","from":"2024-01-01T00:00:00Z","to":"2024-12-31T00:00:00Z"}}}`)
	write(dataset.ManifestFile, `{"format":"velo-manifest/v1","dataset_version":"ds_1","key_id":"k1",
		"batches":[{"seq":1,"quarantine":"quarantine/batch-001.ndjson",
			"tables":{"booking":{"read":3,"written":1,"quarantined":1,"opted_out":1}}}],
		"tables":{"booking":{"read":3,"written":1,"quarantined":1,"opted_out":1}}}`)

	cat, err := dataset.ReadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	period, _ := fse.ParsePeriod("2024-01..2024-12")
	want := &dataset.Catalog{
		Format: "velo-catalog/v1", DatasetVersion: "ds_1", Period: period,
		Tables: []dataset.CatalogTable{{
			Name: "booking", Path: dataset.TablePattern("booking"),
			Columns:              []dataset.CatalogColumn{{Name: "wait_days", Type: "INTEGER", Bounds: &dataset.Bounds{Lo: 0, Hi: 365}}},
			MaxGroupsContributed: 4, MaxRowsPerGroup: 2,
		}},
		Domains: map[string]dataset.Domain{dataset.DomainPeriod: {Source: "extract period declared at ingest", From: period.From, To: period.To}},
	}
	if diff := cmp.Diff(want, cat); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}

	man, err := dataset.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Batches) != 1 || man.Batches[0].Quarantine != dataset.QuarantineFile(1) {
		t.Fatalf("batches: %+v", man.Batches)
	}
	if c := man.Tables["booking"]; !c.Reconciles() || c.Written != 1 {
		t.Errorf("booking counts %+v do not reconcile", c)
	}
}

// A directory without a dataset says so: the manifest's error is the file system's (the
// dataset's commit point is missing), the catalog's names the directory.
func TestNoDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	if _, err := dataset.ReadManifest(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest: %v, want fs.ErrNotExist", err)
	}
	_, err := dataset.ReadCatalog(dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "open dataset "+dir+": ") {
		t.Errorf("catalog: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataset.CatalogPath(dir), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.ReadCatalog(dir); err == nil || !strings.Contains(err.Error(), dataset.CatalogPath(dir)) {
		t.Errorf("bad catalog: %v", err)
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{dataset.CatalogPath("/d"), filepath.FromSlash("/d/catalog.json")},
		{dataset.ManifestPath("/d"), filepath.FromSlash("/d/manifest.json")},
		{dataset.TableGlob("/d", "person"), filepath.FromSlash("/d/person/*.parquet")},
		{dataset.TablePart("/d", "person"), filepath.FromSlash("/d/person/part-0.parquet")},
		{dataset.QuarantineFile(12), filepath.FromSlash("quarantine/batch-012.ndjson")},
		{dataset.TablePattern("person"), "person/*.parquet"}, // the catalog's, on every OS
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// DATA/.commit marks an unfinished commit: a reader is refused, told what to do; without it
// (or without DATA) the check passes and the reader's own errors say what is missing.
func TestCheckCommitted(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.CheckCommitted(dir); err != nil {
		t.Fatalf("no commit: %v", err)
	}
	if err := dataset.CheckCommitted(filepath.Join(dir, "none")); err != nil {
		t.Fatalf("no directory: %v", err)
	}
	if err := os.Mkdir(dataset.CommitPath(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	err := dataset.CheckCommitted(dir)
	if !errors.Is(err, dataset.ErrUnfinishedCommit) || !strings.Contains(err.Error(), "velo ingest --recover --out "+dir) {
		t.Fatalf("unfinished commit: %v", err)
	}
	if got, want := dataset.CommitPath("/d"), filepath.FromSlash("/d/.commit"); got != want {
		t.Errorf("CommitPath: %s, want %s", got, want)
	}
}
