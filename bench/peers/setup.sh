#!/usr/bin/env bash
# Installs the DP peers the side-by-side benchmark (bench/cmd/peerbench) runs, each in its
# own Python virtual environment, from the package registry with pip. Idempotent: an
# environment whose packages are already at the pinned versions is left alone.
#
#   bash bench/peers/setup.sh            # the query peers (all but snsynth)
#   bash bench/peers/setup.sh opendp     # one of: base opendp snsql qrlew tumult snsynth
#
# snsynth is SmartNoise Synth (MST, AIM) for the synthetic-data side by side
# (bench/cmd/synthbench); it brings Private-PGM (mbi, on JAX) and PyTorch, about 5 GB.
#
# VELO_BENCH_VENV (default ~/.cache/velo-bench/venv) holds one environment per peer:
# their pins conflict (smartnoise-sql needs opendp 0.14, Tumult needs pandas 1.5 and
# numpy 1.x, OpenDP's Polars API pins polars 1.36.1), so one shared environment cannot
# hold them all. VELO_BENCH_PYTHON (default python3) is the interpreter they are made with.
set -euo pipefail

ROOT="${VELO_BENCH_VENV:-$HOME/.cache/velo-bench/venv}"
PY="${VELO_BENCH_PYTHON:-python3}"

# The pins: the newest versions that installed together on Python 3.11 in December 2026.
# duckdb is pinned to the engine version Velo's Go driver embeds (v1.5.6), so plain DuckDB
# and the SQL the rewriting peers emit run on the same engine.
declare -A PKGS=(
  [base]="duckdb==1.5.6 polars==1.36.1 pyarrow==18.1.0 pandas==2.3.3"
  [opendp]="opendp[polars]==0.16.0 polars==1.36.1 pyarrow==18.1.0"
  [snsql]="smartnoise-sql==1.0.10 opendp==0.14.2 pandas==2.3.3 pyarrow==18.1.0"
  [qrlew]="pyqrlew==0.9.27 duckdb==1.5.6 pyarrow==18.1.0 pandas==2.3.3"
  [tumult]="tmlt.analytics==0.21.0 pyspark==3.5.9 pandas==1.5.3 pyarrow==18.1.0"
  [snsynth]="smartnoise-synth==1.0.8 pyarrow==18.1.0"
)
ORDER=(base opendp snsql qrlew tumult snsynth)
# With no argument: the query peers peerbench runs; snsynth (5 GB) only when named.
DEFAULT=(base opendp snsql qrlew tumult)

want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${DEFAULT[@]}")

mkdir -p "$ROOT"
status=0
for name in "${want[@]}"; do
  pkgs="${PKGS[$name]:-}"
  if [ -z "$pkgs" ]; then
    echo "setup: unknown peer environment '$name' (one of: ${ORDER[*]})" >&2
    exit 2
  fi
  venv="$ROOT/$name"
  stamp="$venv/.velo-bench-pins"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "setup: $name: up to date ($venv)"
    continue
  fi
  echo "setup: $name: installing $pkgs into $venv"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  # shellcheck disable=SC2086
  if "$venv/bin/python" -m pip install --disable-pip-version-check -q $pkgs >"$venv.log" 2>&1; then
    echo "$pkgs" >"$stamp"
    echo "setup: $name: ok"
  else
    echo "setup: $name: FAILED (the last lines of $venv.log follow); the benchmark reports it as not installed" >&2
    tail -n 20 "$venv.log" >&2
    status=1
  fi
done
if [[ " ${want[*]} " == *" tumult "* ]] && ! command -v java >/dev/null; then
  echo "setup: tumult: no java on PATH; Tumult Analytics runs on local Spark, which needs a JDK (17 works)" >&2
fi
exit $status
