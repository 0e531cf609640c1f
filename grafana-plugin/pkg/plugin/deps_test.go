package plugin

import (
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// The plugin's executable is built with CGO_ENABLED=0 and talks to Velo over HTTP only: it
// links no DuckDB and no cgo package (outside the standard library, whose net and
// os/user fall back to pure Go), and of Velo only the release contract and the public
// reference data. Every privacy rule is Velo's; none is linked into Grafana.
func TestDeps(t *testing.T) {
	root := deptest.Module + "/grafana-plugin/pkg"
	deptest.Deps(t, root).Forbid(t, root, func(p *deptest.Package) string {
		switch path := p.ImportPath; {
		case p.DuckDB():
			return "DuckDB"
		case p.Cgo():
			return "cgo"
		case p.Velo() && !strings.HasPrefix(path, deptest.Module+"/grafana-plugin/") &&
			path != deptest.Module+"/release" && path != deptest.Module+"/fse":
			return "a Velo package other than release and fse"
		}
		return ""
	})
}
