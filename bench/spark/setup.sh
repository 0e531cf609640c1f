#!/usr/bin/env bash
# Installs Spark for Velo's Spark engine tests and benchmarks (docs/scale.md): pyspark 4.3.0
# from PyPI (Spark's jars, spark-class and spark-submit, Spark Connect included) into a
# virtual environment in the cache, ${XDG_CACHE_HOME:-~/.cache}/velo/spark. Idempotent: an
# environment that already holds pyspark 4.3.0 is kept. Java 17 or later must be
# installed (Debian: openjdk-17-jre-headless). Prints the folder to set as VELO_SPARK_HOME
# (internal/sparktest finds it there without the setting).
set -euo pipefail

version=4.3.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/velo/spark"

have() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('pyspark') != '$version')" 2>/dev/null
}

if ! have; then
  python3 -m venv "$venv"
  # The sdist is ~450 MB: pip caches it, and building it is a copy (~2 minutes).
  "$venv/bin/pip" install -q --disable-pip-version-check "pyspark==$version"
fi
home=$("$venv/bin/python" -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))")
test -x "$home/bin/spark-class" || { echo "setup.sh: $home/bin/spark-class missing" >&2; exit 1; }
compgen -G "$home/jars/spark-connect_*" >/dev/null || { echo "setup.sh: no Spark Connect jar in $home/jars" >&2; exit 1; }
echo "$home"
