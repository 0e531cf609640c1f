"""A live Velo for the client's tests: `velo demo` on a loopback port chosen by the
kernel, on a small synthetic extract in a temporary directory, stopped at the end.

VELO_BIN names the velo executable; without it the tests build one with `go build` from
this repository (Go must be installed).
"""

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[3]


def _velo_bin(tmp: Path) -> str:
    if os.environ.get("VELO_BIN"):
        return os.environ["VELO_BIN"]
    out = tmp / "velo"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/velo"], cwd=REPO, check=True)
    return str(out)


class Demo(NamedTuple):
    url: str  # the HTTP API
    flight: str  # Arrow Flight SQL, grpc://host:port
    tokens: Dict[str, str]  # researcher, official, dpo


@contextlib.contextmanager
def demo(persons: int):
    """A running `velo demo` of persons synthetic people, HTTP and Flight SQL on loopback
    ports the kernel picks, in a temporary directory; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="velo-pytest-") as d:
        tmp = Path(d)
        velo = _velo_bin(tmp)
        log = open(tmp / "demo.log", "w+")
        proc = subprocess.Popen(
            [velo, "demo", "--dir", str(tmp / "demo"), "--persons", str(persons), "--addr", "127.0.0.1:0",
             "--flight-sql-addr", "127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            url = flight = None
            deadline = time.monotonic() + 300
            # Wait for the demo to say where it listens (it prints the addresses once
            # serving); a demo that exits instead fails the test with its log.
            while url is None:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"velo demo exited with {proc.returncode}:\n{log.read()}")
                if time.monotonic() > deadline:
                    pytest.fail("velo demo did not start serving within 300 s")
                log.seek(0)
                text = log.read()
                m = re.search(r"Velo demo is running at (http://\S+)", text)
                f = re.search(r"Arrow Flight SQL \(ADBC, JDBC, BI tools\) at (grpc://\S+?):? ", text)
                if m and f:
                    url, flight = m.group(1), f.group(1)
                else:
                    time.sleep(0.2)
            tokens = json.loads((tmp / "demo" / "tokens.json").read_text())
            yield Demo(url, flight, tokens)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


@pytest.fixture(scope="session")
def server():
    """A demo with the project "wl" and three users, shared by the session's tests: they
    must leave budget for each other (test_budget.py spends one of its own)."""
    with demo(3000) as d:
        yield d
