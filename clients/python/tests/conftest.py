"""A live Velo for the client's tests: `velo demo` on a loopback port chosen by the
kernel, on a small synthetic extract in a temporary directory, stopped at the end.

VELO_BIN names the velo executable; without it the tests build one with `go build` from
this repository (Go must be installed).
"""

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _velo_bin(tmp: Path) -> str:
    if os.environ.get("VELO_BIN"):
        return os.environ["VELO_BIN"]
    out = tmp / "velo"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/velo"], cwd=REPO, check=True)
    return str(out)


@pytest.fixture(scope="session")
def server():
    """(url, tokens): a running demo with the project "wl" and three users."""
    with tempfile.TemporaryDirectory(prefix="velo-pytest-") as d:
        tmp = Path(d)
        velo = _velo_bin(tmp)
        log = open(tmp / "demo.log", "w+")
        proc = subprocess.Popen(
            [velo, "demo", "--dir", str(tmp / "demo"), "--persons", "3000", "--addr", "127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            url = None
            deadline = time.monotonic() + 300
            # Wait for the demo to say where it listens (it prints the address once
            # serving); a demo that exits instead fails the session with its log.
            while url is None:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"velo demo exited with {proc.returncode}:\n{log.read()}")
                if time.monotonic() > deadline:
                    pytest.fail("velo demo did not start serving within 300 s")
                log.seek(0)
                m = re.search(r"Velo demo is running at (http://\S+)", log.read())
                if m:
                    url = m.group(1)
                else:
                    time.sleep(0.2)
            tokens = json.loads((tmp / "demo" / "tokens.json").read_text())
            yield url, tokens
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
