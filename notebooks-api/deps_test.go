package notebooksapi_test

import (
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// The API answers from the engine and the ledger: it reads the dataset's catalog through
// package dataset and links neither the ingest pipeline nor pseudonymization (no key,
// no codice fiscale ever reaches the server). Its tests may ingest their fixtures.
func TestDeps(t *testing.T) {
	root := deptest.Module + "/notebooks-api"
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
