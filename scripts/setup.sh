#!/usr/bin/env bash
# Idempotent machine setup: everything a fresh machine needs to build, test and benchmark plpywasm.
set -euo pipefail
cd "$(dirname "$0")/.."

PGRX_VERSION=0.18.0
COMPONENTIZE_PY_VERSION=0.25.1
# The IANA time zone database the guest carries for zoneinfo (python-guest/timezones.py).
TZDATA_VERSION=2026.6
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
DEBS="postgresql-15 postgresql-server-dev-15 postgresql-plpython3-15 sudo libclang-dev clang pkg-config build-essential python3-venv"

missing=""
for p in $DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

VENV=target/venv
if ! "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
  echo "setup: installing componentize-py $COMPONENTIZE_PY_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
if ! "$VENV/bin/python" -c "import tzdata, sys; sys.exit(tzdata.__version__ != '$TZDATA_VERSION')" 2>/dev/null; then
  echo "setup: installing tzdata $TZDATA_VERSION"
  "$VENV/bin/pip" install -q "tzdata==$TZDATA_VERSION"
fi
