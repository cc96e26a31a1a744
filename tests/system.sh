#!/usr/bin/env bash
# Checks that need more than one session or a look at the backend process: signal masks of helper
# threads, cancellation and termination from another session, raw file-descriptor output, and that
# no backend ever crashed. Each check prints "ok NAME" or "not ok NAME: why".
set -uo pipefail
dir=$1
export PGDATABASE=plpywasm_test
log=$dir/server.log
q() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
check() { if [ "$2" = 0 ]; then echo "ok $1"; else echo "not ok $1: $3"; fi; }

start_time=$(q -c "SELECT pg_postmaster_start_time()")

q <<'SQL'
SET ROLE alice;
CREATE FUNCTION sys_spin() RETURNS int LANGUAGE plpywasm AS $$
while True:
    pass
$$;
CREATE FUNCTION sys_print_and_sleep() RETURNS int LANGUAGE plpywasm AS $$
import os, sys, time
print("printed")
sys.stderr.write("to stderr\n")
os.write(1, b"RAW-FD-MARKER-1\n")
os.write(2, b"RAW-FD-MARKER-2\n")
time.sleep(0.05)
return 1
$$;
CREATE FUNCTION sys_sleep(s float8) RETURNS int LANGUAGE plpywasm AS $$
import time
time.sleep(s)
return 1
$$;
CREATE FUNCTION sys_select() RETURNS int LANGUAGE plpywasm AS $$
import select
select.select([], [], [], 1e9)
$$;
SQL

# 1. Helper threads (the ticker, wasmtime-wasi's Tokio workers) block every signal, so
#    PostgreSQL's signals always reach the backend's main thread.
masks=$(q <<'SQL' 2>&1
SET ROLE alice;
SELECT sys_print_and_sleep() \gset
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! for t in /proc/$BACKEND/task/*; do [ "${t##*/}" = "$BACKEND" ] || grep SigBlk "$t/status"; done
SQL
)
bad=0 threads=0
while read -r _ mask; do
  [ -n "$mask" ] || continue
  threads=$((threads + 1))
  for sig in 1 2 3 10 12 14 15 23; do  # HUP INT QUIT USR1 USR2 ALRM TERM URG
    (( (16#$mask >> (sig - 1)) & 1 )) || bad=1
  done
done < <(echo "$masks" | grep SigBlk)
[ "$threads" -gt 0 ] || bad=1
check "helper threads block all signals ($threads threads)" "$bad" "$masks"

# 2. What the guest writes to its raw file descriptors goes nowhere (no silent postmaster output).
grep -q "RAW-FD-MARKER" "$log"; [ $? -ne 0 ]; check "raw guest stdout/stderr does not reach the server log" $? "marker found in $log"

# 3. pg_cancel_backend() stops a running Python loop with 57014; the session goes on.
out=$(psql -X -qAt -v VERBOSITY=verbose -c "SET ROLE alice" -c "SELECT sys_spin()" -c "SELECT 'alive'" 2>&1 &
      sleep 1
      q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT sys_spin()'" >/dev/null
      wait)
grep -q "57014" <<<"$out" && grep -q "alive" <<<"$out"; check "pg_cancel_backend stops a Python loop" $? "$out"

# 4. A cancel also stops time.sleep in the guest.
SECONDS=0
out=$(psql -X -qAt -c "SET ROLE alice" -c "SET statement_timeout = '300ms'" -c "SELECT sys_sleep(30)" 2>&1)
grep -q "statement timeout" <<<"$out" && [ "$SECONDS" -lt 10 ]; check "statement_timeout stops time.sleep" $? "$out (${SECONDS}s)"

# 5. pg_terminate_backend() ends a backend running Python with 57P01; the server stays up.
out=$(psql -X -qAt -v VERBOSITY=verbose -c "SET ROLE alice" -c "SELECT sys_spin()" 2>&1 &
      sleep 1
      q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT sys_spin()'" >/dev/null
      wait)
grep -q "57P01" <<<"$out"; check "pg_terminate_backend ends a Python loop" $? "$out"
# ... and a backend waiting in select() (WASI's poll, not time.sleep).
out=$(psql -X -qAt -v VERBOSITY=verbose -c "SET ROLE alice" -c "SELECT sys_select()" 2>&1 &
      sleep 1
      q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT sys_select()'" >/dev/null
      wait)
grep -q "57P01" <<<"$out"; check "pg_terminate_backend ends a wait in select()" $? "$out"

# 6. A guest artifact that does not match this build is a clear ERROR naming the fix, not a crash.
artifact=$(pg_config_bin=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}; "$pg_config_bin" --pkglibdir)/plpywasm_guest.cwasm
cp "$artifact" "$artifact.saved"
restore() { mv -f "$artifact.saved" "$artifact"; }
trap restore EXIT
# Replaced by rename, as `just install` does: backends may have the old file mapped.
printf 'not a compiled component' > "$artifact.bad" && mv -f "$artifact.bad" "$artifact"
out=$(psql -X -qAt -v VERBOSITY=verbose -c "SET ROLE alice" -c "SELECT sys_sleep(0)" 2>&1)
restore; trap - EXIT
grep -q "F0000" <<<"$out" && grep -q "just install" <<<"$out"; check "a mismatched guest artifact is a clear error" $? "$out"
out=$(psql -X -qAt -c "SET ROLE alice" -c "SELECT sys_sleep(0)" 2>&1)
[ "$out" = "1" ]; check "the restored artifact works in a new session" $? "$out"

# 7. plpy.fatal ends the session with FATAL, as in PL/Python; the server lives on.
out=$(psql -X -qAt -c "SET ROLE alice" -c 'DO $$ plpy.fatal("leaving now") $$ LANGUAGE plpywasm' -c "SELECT 'still here'" 2>&1)
grep -q "FATAL:  plpy.Fatal: leaving now" <<<"$out" && ! grep -q "still here" <<<"$out"; check "plpy.fatal ends the session" $? "$out"

# 8. The extension is trusted: a database's owner who is not a superuser may create it there. It
#    lives in pg_catalog, as plpgsql does: dropping the public schema leaves the language and the
#    functions of other schemas.
out=$(q -d postgres -c "CREATE ROLE db_owner LOGIN" -c "CREATE DATABASE owned_db OWNER db_owner" 2>&1 &&
  psql -X -qAt -U db_owner -d owned_db -c "CREATE EXTENSION plpywasm" -c "CREATE SCHEMA app" \
    -c 'CREATE FUNCTION app.f() RETURNS text LANGUAGE plpywasm AS $$ return "owner\x27s" $$' \
    -c "DROP SCHEMA public CASCADE" -c "SELECT app.f()" 2>&1)
[ "$out" = "owner's" ]; check "a database owner may create the extension, in pg_catalog" $? "$out"
q -d postgres -c "DROP DATABASE IF EXISTS owned_db" -c "DROP ROLE IF EXISTS db_owner" >/dev/null 2>&1

# 9. Through everything the suite did, no backend crashed: the postmaster never restarted.
now=$(q -c "SELECT pg_postmaster_start_time()")
[ "$now" = "$start_time" ] && ! grep -Eq "terminated by signal|was terminated|PANIC|server process .* exited with exit code [^01]" "$log"
check "no backend crashed" $? "$(grep -E 'terminated|PANIC' "$log" | head -5)"
