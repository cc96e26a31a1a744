#!/usr/bin/env bash
# Builds the guest component, unless it is newer than everything it is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/guest.wasm
if [ -f "$out" ] && [ -z "$(find wit python-guest scripts/build-guest.sh scripts/setup.sh -newer "$out" -type f | head -1)" ]; then
  echo "guest: $out is up to date"
  exit 0
fi
mkdir -p target
# The tzdata package, alone on the guest's path while it builds (python-guest/timezones.py).
deps=target/guest-deps
tzdata=$(target/venv/bin/python -c 'import os, tzdata; print(os.path.dirname(tzdata.__file__))')
rm -rf "$deps" && mkdir -p "$deps"
cp -r "$tzdata" "$deps/tzdata" && rm -rf "$deps/tzdata/__pycache__"
target/venv/bin/componentize-py -d wit -w plpywasm componentize -p python-guest -p "$deps" app -o "$out.tmp"
mv "$out.tmp" "$out"
