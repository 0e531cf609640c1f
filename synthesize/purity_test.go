package synthesize_test

import (
	"slices"
	"testing"

	"github.com/velo-fse/velo/internal/deptest"
)

// synthesize is pure, like dp: nothing it links may reach the network, a database or a
// subprocess, or be DuckDB or another cgo package.
func TestPurityDeps(t *testing.T) {
	root := deptest.Module + "/synthesize"
	deptest.Deps(t, root).Forbid(t, root, (*deptest.Package).Impure)
}

// synthesize's own code imports only computation and its two sources of randomness: the
// google library (Gaussian noise) and crypto/rand (the exponential mechanism's uniforms);
// math/rand/v2 only for the sampler's ChaCha8 stream, seeded by the caller.
func TestPurityOwnImports(t *testing.T) {
	allowed := []string{
		"errors", "fmt", "math", "slices", "sort",
		"crypto/rand", "encoding/binary", "math/rand/v2",
		"github.com/google/differential-privacy/go/v3/noise", "github.com/velo-fse/velo/dp",
	}
	for name, imports := range deptest.OwnImports(t, ".") {
		for _, path := range imports {
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s, outside synthesize's allow-list", name, path)
			}
			if path == "math/rand/v2" && name != "sample.go" && name != "compress.go" && name != "mechanisms.go" {
				t.Errorf("%s imports math/rand/v2: only the sampler may (never for noise)", name)
			}
		}
	}
}
