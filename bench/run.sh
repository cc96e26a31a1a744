#!/usr/bin/env bash
# `just bench`: installs the harness's Python packages into target/venv (a no-op once they are there),
# then runs bench/bench.py, which writes BENCHMARKS.md and BENCHMARKS.png at the top of the repository.
# BENCH_REPS (default 5) sets the timed repetitions per workload and language.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r bench/requirements.txt
exec "$VENV/bin/python" bench/bench.py
