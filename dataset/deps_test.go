package dataset_test

import (
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// dataset is a description that the engine, the API and the CLI read alike: it links no
// DuckDB and no cgo, nothing that reaches the network, a database or a subprocess, and of
// Velo only the reference data (fse). Its readers need nothing of the ingest pipeline.
func TestDeps(t *testing.T) {
	root := deptest.Module + "/dataset"
	deptest.Deps(t, root).Forbid(t, root, func(p *deptest.Package) string {
		if why := p.Impure(); why != "" {
			return why
		}
		switch {
		case p.Velo() && p.ImportPath != root && p.ImportPath != deptest.Module+"/fse":
			return "a Velo package other than fse"
		}
		return ""
	})
}
