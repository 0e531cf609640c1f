// Package python_test runs the Python client's pytest suite (clients/python/tests) from
// go test, so that `make test` covers it: a velo built from this tree, a live `velo demo`
// started by the suite's conftest, the client's source on PYTHONPATH.
package python_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/velo-fse/velo/internal/testenv"
)

// pythonSetting names the Python interpreter with the client's test dependencies
// (pyarrow, pandas, polars, pytest, adbc-driver-flightsql); .ci/run makes one in a
// virtual environment.
const pythonSetting = "VELO_PYTHON"

func TestPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the pytest suite starts a demo server: not in -short")
	}
	python := os.Getenv(pythonSetting)
	if python == "" {
		python = "python3"
	}
	if out, err := exec.Command(python, "-c", "import pyarrow, pandas, polars, pytest, adbc_driver_flightsql").CombinedOutput(); err != nil {
		testenv.Missing(t, "no Python with pyarrow, pandas, polars, pytest and adbc-driver-flightsql (%s=%q: %v, %s): python3 -m venv V && V/bin/pip install './clients/python[test]' && export %s=V/bin/python",
			pythonSetting, python, err, lastLine(out), pythonSetting)
	}
	velo := filepath.Join(t.TempDir(), "velo")
	build := exec.Command("go", "build", "-o", velo, "./cmd/velo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/velo: %v\n%s", err, out)
	}
	cmd := exec.Command(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
	cmd.Env = append(os.Environ(), "VELO_BIN="+velo, "PYTHONPATH=src", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("pytest:\n%s", out)
	if err != nil {
		t.Fatalf("pytest clients/python/tests: %v", err)
	}
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
