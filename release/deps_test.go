package release_test

import (
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// release is the contract the engine writes and its clients read, the Grafana plugin
// (built with CGO_ENABLED=0) among them: it links no DuckDB and no cgo, nothing that
// reaches the network, a database or a subprocess, and no other Velo package.
func TestDeps(t *testing.T) {
	root := deptest.Module + "/release"
	deptest.Deps(t, root).Forbid(t, root, func(p *deptest.Package) string {
		if why := p.Impure(); why != "" {
			return why
		}
		switch {
		case p.Velo() && p.ImportPath != root:
			return "another Velo package"
		}
		return ""
	})
}
