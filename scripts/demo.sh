#!/usr/bin/env bash
# Starts a throwaway cluster, runs examples/demo.sql as an ordinary role, prints what it returns.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=/tmp/plpywasm-demo port=54399
bash scripts/cluster.sh start "$dir" "$port"
trap 'bash scripts/cluster.sh stop "$dir"' EXIT
psql -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -f examples/demo.sql
