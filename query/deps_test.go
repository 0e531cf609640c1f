package query_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// The engine reads a dataset through package dataset: it links neither the ingest
// pipeline nor pseudonymization. (Its tests ingest their fixtures.)
func TestDeps(t *testing.T) {
	root := deptest.Module + "/query"
	deptest.Deps(t, root).Forbid(t, root, func(p *deptest.Package) string {
		switch p.ImportPath {
		case deptest.Module + "/ingest":
			return "the ingest pipeline"
		case deptest.Module + "/pseudonymize":
			return "pseudonymization"
		}
		return ""
	})
}

// duckDBImporters are the only packages of the module whose code or tests import DuckDB's
// driver: the engine (query), ingest, the benchmarks, which measure plain DuckDB as the
// floor (docs/design.md#performance), and the documentation's examples runner, which
// measures the released answers against plain DuckDB's exact ones, and the dummy twin's
// writer (twin), which writes a dataset's Parquet from its catalog as ingest writes it from
// the sources. Everything else that links DuckDB — cmd/velo, notebooks-api, the tests that
// build datasets — does so through query or ingest.
var duckDBImporters = []string{"query", "ingest", "bench", "internal/docsexamples", "twin"}

func TestDuckDBImporters(t *testing.T) {
	pkgs := deptest.ModulePackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("only %d packages listed in the module", len(pkgs))
	}
	for path, p := range pkgs {
		rel := strings.TrimPrefix(path, deptest.Module+"/")
		top, _, _ := strings.Cut(rel, "/")
		if slices.Contains(duckDBImporters, rel) || top == "bench" {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, "github.com/duckdb/") {
				t.Errorf("%s imports %s: only %v may (others reach DuckDB through query or ingest)", path, imp, duckDBImporters)
			}
		}
	}
}
