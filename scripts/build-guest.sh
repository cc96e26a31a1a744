#!/usr/bin/env bash
# Builds the guest component, unless it is newer than everything it is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/guest.wasm
if [ -f "$out" ] && [ -z "$(find wit python-guest scripts/build-guest.sh -newer "$out" -type f | head -1)" ]; then
  echo "guest: $out is up to date"
  exit 0
fi
mkdir -p target
target/venv/bin/componentize-py -d wit -w plpywasm componentize -p python-guest app -o "$out.tmp"
mv "$out.tmp" "$out"
