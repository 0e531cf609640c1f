// Package deptest lets a test hold one of Velo's import boundaries (the README's "Layout":
// the boundaries between packages are tests), as Tailscale's deptest does: it asks
// `go list -deps -json` what a package links, the module's and every library's packages
// included, and reports each forbidden one with the import chain that brings it in.
//
// Packages are listed with cgo enabled, so that CgoFiles shows the files a cgo build
// would compile: a package that lists none builds the same with CGO_ENABLED=0.
package deptest

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/testenv"
)

// Module is the import path of Velo's module.
const Module = "github.com/velo-fse/velo"

// Package is what `go list -json` says of one package.
type Package struct {
	ImportPath   string
	Standard     bool
	CgoFiles     []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// Cgo reports whether a package outside the standard library has cgo files. (The standard
// library's net and os/user have some, and fall back to pure Go without cgo.)
func (p *Package) Cgo() bool { return !p.Standard && len(p.CgoFiles) > 0 }

// DuckDB reports whether the package is DuckDB's Go driver or its bindings.
func (p *Package) DuckDB() bool { return strings.HasPrefix(p.ImportPath, "github.com/duckdb/") }

// IO reports whether the package reaches the network, a database or a subprocess.
func (p *Package) IO() bool {
	path := p.ImportPath
	return path == "net" || strings.HasPrefix(path, "net/") ||
		strings.HasPrefix(path, "database/") || path == "os/exec"
}

// Impure says why a pure package (one of computation only, as dp) may not link p: DuckDB,
// the network, a database or a subprocess, or cgo; "" when it may.
func (p *Package) Impure() string {
	switch {
	case p.DuckDB():
		return "DuckDB"
	case p.IO():
		return "network, database or subprocess"
	case p.Cgo():
		return "cgo"
	}
	return ""
}

// OwnImports reads the imports of the non-test Go files in dir, by file name.
func OwnImports(t testing.TB, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		out[name] = []string{}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			out[name] = append(out[name], ip)
		}
	}
	return out
}

// Velo reports whether the package is one of Velo's own (not a test-only helper below
// node_modules).
func (p *Package) Velo() bool {
	return (p.ImportPath == Module || strings.HasPrefix(p.ImportPath, Module+"/")) &&
		!strings.Contains(p.ImportPath, "/node_modules/")
}

// Graph is what a set of packages links, by import path.
type Graph map[string]*Package

// Deps lists the packages that pkg (an import path or a pattern) links, itself included.
// Only non-test imports count: a package's tests may link what the package may not.
func Deps(t testing.TB, pkg string) Graph {
	t.Helper()
	return list(t, "-deps", pkg)
}

// ModulePackages lists every package of Velo's module, with their imports and their tests'
// imports (not their dependencies).
func ModulePackages(t testing.TB) Graph {
	t.Helper()
	g := list(t, Module+"/...")
	for path, p := range g {
		if !p.Velo() {
			delete(g, path)
		}
	}
	return g
}

// Forbid fails t for each package root links that bad reports, naming the reason (bad's
// result, "" for an allowed package) and a chain of imports from root. A forbidden
// package that comes in only through another one is not reported again.
func (g Graph) Forbid(t testing.TB, root string, bad func(p *Package) string) {
	t.Helper()
	if g[root] == nil {
		t.Fatalf("deptest: %s is not in the listed graph", root)
	}
	paths := slices.Sorted(maps.Keys(g))
	for _, path := range paths {
		why := bad(g[path])
		if why == "" {
			continue
		}
		chain := g.chain(root, path)
		if slices.ContainsFunc(chain[:len(chain)-1], func(q string) bool { return g[q] != nil && bad(g[q]) != "" }) {
			continue
		}
		t.Errorf("%s links %s (%s): %s", root, path, why, strings.Join(chain, " → "))
	}
}

// chain is a shortest import chain from root to target.
func (g Graph) chain(root, target string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == target {
			var out []string
			for ; cur != ""; cur = prev[cur] {
				out = append([]string{cur}, out...)
			}
			return out
		}
		if p := g[cur]; p != nil {
			for _, next := range p.Imports {
				if _, seen := prev[next]; !seen {
					prev[next] = cur
					queue = append(queue, next)
				}
			}
		}
	}
	return []string{root, "…", target}
}

func list(t testing.TB, args ...string) Graph {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			testenv.Missing(t, "deptest: no go tool on PATH or in GOROOT to list what a package links: install Go (the version in go.mod) and put its bin folder on PATH")
		}
	}
	cmd := exec.Command(goTool, append([]string{"list", "-json"}, args...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	g := Graph{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		g[p.ImportPath] = &p
	}
	if len(g) == 0 {
		t.Fatalf("go list %s listed no package", strings.Join(args, " "))
	}
	return g
}
