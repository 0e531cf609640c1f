package synthesize_test

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

// synthesize is pure, like dp: nothing it links may reach the network, a database or a
// subprocess, or be DuckDB or another cgo package.
func TestPurityDeps(t *testing.T) {
	root := deptest.Module + "/synthesize"
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

// synthesize's own code imports only computation and its two sources of randomness: the
// google library (Gaussian noise) and crypto/rand (the exponential mechanism's uniforms);
// math/rand/v2 only for the sampler's ChaCha8 stream, seeded by the caller.
func TestPurityOwnImports(t *testing.T) {
	allowed := []string{
		"errors", "fmt", "math", "slices", "sort",
		"crypto/rand", "encoding/binary", "math/rand/v2",
		"github.com/google/differential-privacy/go/v3/noise",
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
				t.Errorf("%s imports %s, outside synthesize's allow-list", name, path)
			}
			if path == "math/rand/v2" && name != "sample.go" && name != "compress.go" && name != "mechanisms.go" {
				t.Errorf("%s imports math/rand/v2: only the sampler may (never for noise)", name)
			}
		}
	}
}
