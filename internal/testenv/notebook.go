package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PythonEnv names the Python interpreter with the Python client's test extras
// (clients/python[test]: pyarrow, pandas, polars, pytest, ADBC, and for the example notebook
// matplotlib, ipykernel, nbclient); .ci/run makes one in a virtual environment.
const PythonEnv = "VELO_PYTHON"

// NotebookPython returns the interpreter that runs the example notebook headless
// (PythonEnv, else python3), or stops the test through Missing when it lacks the notebook's
// packages.
func NotebookPython(t testing.TB) string {
	t.Helper()
	python := os.Getenv(PythonEnv)
	if python == "" {
		python = "python3"
	}
	out, err := exec.Command(python, "-c", "import nbclient, nbformat, ipykernel, pandas, matplotlib, pyarrow").CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		Missing(t, "no Python with the example notebook's packages (%s=%q: %s): python3 -m venv V && V/bin/pip install './clients/python[test]' && export %s=V/bin/python",
			PythonEnv, python, lines[len(lines)-1], PythonEnv)
	}
	return python
}

// NotebookEnv is what the notebook's kernel needs beside env: the client package from this
// tree (clients/python/src under root) first on PYTHONPATH, so the notebook runs the
// client being tested, and no bytecode written into the tree.
func NotebookEnv(env []string, root string) []string {
	src := filepath.Join(root, "clients", "python", "src")
	path := src
	if p := os.Getenv("PYTHONPATH"); p != "" {
		path += string(os.PathListSeparator) + p
	}
	return append(env, "PYTHONPATH="+path, "PYDEVD_DISABLE_FILE_VALIDATION=1", "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=module://matplotlib_inline.backend_inline")
}

// RunNotebook is a Python program that executes the notebook argv[1] headless in the
// directory argv[2] and writes it, with its outputs, to argv[3]. Its kernel is the Python
// running it, whatever kernels the machine's Jupyter knows (a system "python3" kernel
// would lack the client's packages), through a kernel spec of its own on JUPYTER_PATH.
const RunNotebook = `
import json, os, sys, tempfile
import nbclient, nbformat
spec = tempfile.mkdtemp(prefix="velo-kernel-")
os.makedirs(os.path.join(spec, "kernels", "velo-python"))
with open(os.path.join(spec, "kernels", "velo-python", "kernel.json"), "w") as f:
    json.dump({"argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
               "display_name": "Python (velo-client)", "language": "python"}, f)
os.environ["JUPYTER_PATH"] = spec + os.pathsep + os.environ.get("JUPYTER_PATH", "")
nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout=600, kernel_name="velo-python", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
`
