package dp_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// dp is pure: nothing it links may reach the network, a database or a subprocess, or be
// DuckDB or another cgo package. `go list -deps` sees the whole import graph, the google
// library's included.
func TestPurityDeps(t *testing.T) {
	root := deptest.Module + "/dp"
	deptest.Deps(t, root).Forbid(t, root, func(p *deptest.Package) string {
		switch {
		case p.DuckDB():
			return "DuckDB"
		case p.IO():
			return "network, database or subprocess"
		case p.Cgo():
			return "cgo"
		}
		return ""
	})
}

// dp's own code imports only computation: no os, io, log, time or randomness of its own (all
// noise comes from the google library).
func TestPurityOwnImports(t *testing.T) {
	allowed := []string{
		"errors", "fmt", "math", "math/big", "sort", "strconv",
		"github.com/google/differential-privacy/go/v3/noise",
		"github.com/google/differential-privacy/go/v3/dpagg",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s, outside dp's allow-list", name, path)
			}
		}
	}
}
