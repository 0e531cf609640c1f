package dp_test

import (
	"slices"
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// dp is pure: nothing it links may reach the network, a database or a subprocess, or be
// DuckDB or another cgo package. `go list -deps` sees the whole import graph, the google
// library's included.
func TestPurityDeps(t *testing.T) {
	root := deptest.Module + "/dp"
	deptest.Deps(t, root).Forbid(t, root, (*deptest.Package).Impure)
}

// dp's own code imports only computation: no os, io, log, time or randomness of its own (all
// noise comes from the google library).
func TestPurityOwnImports(t *testing.T) {
	allowed := []string{
		"errors", "fmt", "math", "math/big", "sort", "strconv",
		"github.com/google/differential-privacy/go/v3/noise",
		"github.com/google/differential-privacy/go/v3/dpagg",
	}
	for name, imports := range deptest.OwnImports(t, ".") {
		for _, path := range imports {
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s, outside dp's allow-list", name, path)
			}
		}
	}
}
