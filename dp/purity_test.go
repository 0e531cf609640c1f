package dp_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dp is pure: nothing it links may reach the network, a database, DuckDB or a subprocess.
// `go list -deps` sees the whole import graph, the google library's included.
func TestPurityDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			t.Skip("go tool not found")
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"net", "net/http", "database/sql", "os/exec"}
	for _, pkg := range strings.Fields(string(out)) {
		if slices.Contains(forbidden, pkg) || strings.HasPrefix(pkg, "net/") ||
			strings.HasPrefix(pkg, "database/") || strings.HasPrefix(pkg, "github.com/duckdb/") {
			t.Errorf("dp depends on %s", pkg)
		}
	}
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
