#!/usr/bin/env bash
# The test suite: pg_regress SQL tests (tests/sql, tests/expected) and the system checks
# (tests/system.sh) against a real, throwaway PostgreSQL 15 cluster with plpywasm installed.
# Prints a closing line "N passed, M failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$($PG_CONFIG --bindir)
PG_REGRESS=$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress
export PGHOST=/tmp/plpywasm-test PGPORT=54321 PGUSER=postgres PGDATABASE=plpywasm_test
dir=$PGHOST

bash scripts/cluster.sh start "$dir" "$PGPORT" "plpywasm.memory_limit = '128MB'" || exit 1
trap 'bash scripts/cluster.sh stop "$dir" >/dev/null 2>&1' EXIT

psql -X -q -d postgres -v ON_ERROR_STOP=1 <<'SQL' || exit 1
CREATE DATABASE plpywasm_test;
\c plpywasm_test
CREATE EXTENSION plpywasm;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT CREATE ON SCHEMA public TO alice, bob;
-- SQLSTATE and message of a statement's error, for tests that assert both.
CREATE FUNCTION sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SQL

passed=0 failed=0
tests=$(sed -e 's/#.*//' tests/schedule | xargs)
outdir=target/regress
rm -rf "$outdir"; mkdir -p "$outdir"; chown postgres: "$outdir"
if runuser -u postgres -- "$PG_REGRESS" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname="$PGDATABASE" --bindir="$BIN" --inputdir=tests --outputdir="$outdir" $tests > "$outdir/summary" 2>&1; then
  :
fi
cat "$outdir/summary"
for t in $tests; do
  if grep -Eq "(^| )$t +\.\.\. ok( |$)" "$outdir/summary"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
[ -f "$outdir/regression.diffs" ] && [ "$failed" -gt 0 ] && head -c 20000 "$outdir/regression.diffs"

# System checks: each prints "ok NAME" or "not ok NAME: why".
bash tests/system.sh "$dir" > "$outdir/system.out" 2>&1
cat "$outdir/system.out"
while read -r status _; do
  case "$status" in
    ok) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
done < <(grep -E '^(ok|not ok) ' "$outdir/system.out")

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
