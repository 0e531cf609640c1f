package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/fse"
	"github.com/velo-fse/velo/ingest"
	"github.com/velo-fse/velo/pseudonymize"
	"github.com/velo-fse/velo/synth"
)

// EnsureDataset returns the benchmark dataset of that many synthetic persons in dir,
// building it first (velo synth, then ingest, over 2024-01..2025-12) when it is absent or
// was written by an older ingest: data-N holds the CUP CSV extract only, full-N (full) every
// format.
func EnsureDataset(ctx context.Context, dir string, persons int, full bool) (string, error) {
	name, formats := fmt.Sprintf("data-%d", persons), []synth.Format{synth.FormatCSV}
	if full {
		name, formats = fmt.Sprintf("full-%d", persons), nil
	}
	data := filepath.Join(dir, name)
	if m, err := dataset.ReadManifest(data); err == nil {
		if current(data, m) {
			return data, nil
		}
		fmt.Fprintf(os.Stderr, "%s was written by an earlier ingest (no person ranks, or other columns): building it again\n", data)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	src := filepath.Join(dir, "synth-"+name)
	for _, d := range []string{data, src} {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	period, err := fse.ParsePeriod("2024-01..2025-12")
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "building %s (%d persons)...\n", data, persons)
	if _, err := synth.Generate(ctx, synth.Config{Persons: persons, Seed: 1, Out: src, From: period.From, To: period.To, Formats: formats}); err != nil {
		return "", err
	}
	key, err := pseudonymize.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	if _, err := ingest.Run(ctx, ingest.Config{Pseudonymizer: pseudonymize.New(key), Out: data, Inputs: []string{src}, Period: period}); err != nil {
		return "", err
	}
	return data, os.RemoveAll(src)
}

// current says whether a cached dataset has what today's ingest writes: person ranks on
// every table, and the columns today's schema names in every table that holds rows (a
// CUP-only dataset is not rebuilt for a change to the clinical tables).
func current(data string, m *dataset.Manifest) bool {
	cat, err := dataset.ReadCatalog(data)
	if err != nil {
		return false
	}
	for _, t := range cat.Tables {
		if !t.PersonRank {
			return false
		}
	}
	for _, want := range ingest.Tables {
		if m.Tables[want.Name].Written == 0 {
			continue
		}
		i := slices.IndexFunc(cat.Tables, func(t dataset.CatalogTable) bool { return t.Name == want.Name })
		if i < 0 || len(cat.Tables[i].Columns) != len(want.Columns) {
			return false
		}
		for j, c := range want.Columns {
			if cat.Tables[i].Columns[j].Name != c.Name {
				return false
			}
		}
	}
	return true
}
