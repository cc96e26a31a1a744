-- The promises of a trusted language: no host access, bounded resources, cancellation, and no
-- Python state shared between roles. Every hostile function is followed by a normal call.
\set VERBOSITY default
SET ROLE alice;
CREATE FUNCTION ok() RETURNS text LANGUAGE plpywasm AS $$ return "ok" $$;

-- No files, no environment, no network, no processes, no threads, no native code.
CREATE FUNCTION probe(what text) RETURNS text LANGUAGE plpywasm AS $$
import os
try:
    if what == "file":
        open("/etc/passwd").read()
    elif what == "listdir":
        os.listdir("/")
    elif what == "write":
        open("/tmp/plpywasm-escape", "w").write("x")
    elif what == "env":
        return repr(dict(os.environ))
    elif what == "socket":
        import socket
        socket.create_connection(("127.0.0.1", 5432), timeout=1)
    elif what == "dns":
        import socket
        socket.getaddrinfo("localhost", 80)
    elif what == "subprocess":
        import subprocess
        subprocess.run(["id"])
    elif what == "system":
        os.system("id")
    elif what == "thread":
        import threading
        threading.Thread(target=print).start()
    elif what == "ctypes":
        import ctypes
    elif what == "argv":
        import sys
        return repr(sys.argv)
    return "allowed"
except BaseException as e:
    return "refused: " + type(e).__name__
$$;
SELECT w, probe(w) FROM unnest(ARRAY['file', 'listdir', 'write', 'env', 'socket', 'dns', 'subprocess', 'system', 'thread', 'ctypes', 'argv']) AS w;

-- Memory is capped per interpreter (plpywasm.memory_limit): MemoryError, then business as usual.
CREATE FUNCTION allocate(mb int) RETURNS int LANGUAGE plpywasm AS $$ return len(bytearray(mb * 1024 * 1024)) // (1024 * 1024) $$;
SELECT allocate(16);
SELECT sqlstate_of($$SELECT allocate(200)$$);
CREATE FUNCTION grow_forever() RETURNS int LANGUAGE plpywasm AS $$
chunks = []
while True:
    chunks.append(bytearray(1024 * 1024))
$$;
SELECT sqlstate_of($$SELECT grow_forever()$$);
SELECT ok();
-- A result must fit in the interpreter beside its copy on the way out: one that does not is a
-- MemoryError saying so, not a failure of the conversion.
CREATE FUNCTION huge_text(mb int) RETURNS text LANGUAGE plpywasm AS $$ return "x" * (mb * 1024 * 1024) $$;
SELECT length(huge_text(8));
SELECT sqlstate_of($$SELECT huge_text(60)$$);
SELECT length(huge_text(8));
-- Rows of a list cross in batches, but large rows in small ones: four rows of 10 MB each fit
-- where one batch of all four would not (each in a fresh interpreter: its own owner's).
CREATE FUNCTION large_rows() RETURNS SETOF text LANGUAGE plpywasm AS $$
return [c * (10 * 1024 * 1024) for c in "abcd"] + ["e"]
$$;
CREATE FUNCTION large_table() RETURNS TABLE (i int, t text) LANGUAGE plpywasm AS $$
return [(i, c * (10 * 1024 * 1024)) for i, c in enumerate("abcd")]
$$;
-- So do rows that cross as nodes (arrays here), read ahead in FROM.
CREATE FUNCTION large_arrays() RETURNS SETOF text[] LANGUAGE plpywasm AS $$
return [[c * (10 * 1024 * 1024), c] for c in "abcd"]
$$;
RESET ROLE;
CREATE ROLE large_rows;
CREATE ROLE large_table;
CREATE ROLE large_arrays;
ALTER FUNCTION large_rows() OWNER TO large_rows;
ALTER FUNCTION large_table() OWNER TO large_table;
ALTER FUNCTION large_arrays() OWNER TO large_arrays;
SELECT left(x, 3), length(x) FROM large_rows() x;
SELECT i, left(t, 3), length(t) FROM large_table();
SELECT left(a[1], 3), length(a[1]), a[2] FROM large_arrays() a;
DROP FUNCTION large_rows(), large_table(), large_arrays();
DROP ROLE large_rows, large_table, large_arrays;
SET ROLE alice;
SELECT sqlstate_of($$SET plpywasm.memory_limit = '1GB'$$);
-- Nor may a superuser set it below what an interpreter starts with.
RESET ROLE;
SELECT sqlstate_of($$SET plpywasm.memory_limit = '16MB'$$);
-- A misspelt setting is refused, not kept as a placeholder that limits nothing.
SELECT sqlstate_of($$SET plpywasm.memory_limt = '64MB'$$);
-- A query result, or an argument, with no room left in the interpreter is a MemoryError that
-- Python can catch, and the interpreter and its GD live on: not a cancel (the guest's runtime,
-- given no memory, writes where the stop flag lies), nor a trap.
SET plpywasm.memory_limit = '32MB';
CREATE ROLE small_memory;
CREATE FUNCTION read_20mb() RETURNS text LANGUAGE plpywasm AS $$
GD["calls"] = GD.get("calls", 0) + 1
try:
    plpy.execute("SELECT repeat('x', 20000000) AS b")
except MemoryError:
    return "MemoryError, call %d" % GD["calls"]
$$;
CREATE FUNCTION length_of(t text) RETURNS int LANGUAGE plpywasm AS $$ return len(t) $$;
ALTER FUNCTION read_20mb() OWNER TO small_memory;
ALTER FUNCTION length_of(text) OWNER TO small_memory;
SELECT read_20mb();
SELECT sqlstate_of($$SELECT length_of(repeat('x', 20000000))$$);
SELECT read_20mb();
SELECT length_of(repeat('x', 500000));
-- What only a reference cycle holds (a sqlite3 connection's database) is collected after a
-- MemoryError: the interpreter goes on, and functions new to it compile.
CREATE FUNCTION sqlite_bomb() RETURNS text LANGUAGE plpywasm AS $$
import sqlite3
c = sqlite3.connect(":memory:")
c.execute("CREATE TEMP TABLE t(x)")
c.execute("INSERT INTO t WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 50000000) SELECT randomblob(200) FROM r")
$$;
CREATE FUNCTION calls_so_far() RETURNS int LANGUAGE plpywasm AS $$ return GD["calls"] $$;
ALTER FUNCTION sqlite_bomb() OWNER TO small_memory;
ALTER FUNCTION calls_so_far() OWNER TO small_memory;
SELECT split_part(sqlstate_of($$SELECT sqlite_bomb()$$), ':', 1) AS out_of_memory;
SELECT calls_so_far();
DROP FUNCTION read_20mb(), length_of(text), sqlite_bomb(), calls_so_far();
DROP ROLE small_memory;
RESET plpywasm.memory_limit;
SET ROLE alice;

-- statement_timeout stops pure-Python loops.
SET statement_timeout = '200ms';
CREATE FUNCTION spin() RETURNS int LANGUAGE plpywasm AS $$
while True:
    pass
$$;
SELECT spin();
DO $$ sum(range(10**12)) $$ LANGUAGE plpywasm;
-- Stopped inside `with plpy.subtransaction()`, which could not exit: the subtransaction is rolled
-- back with the statement, with no warning that Python left it open.
DO $$
with plpy.subtransaction():
    while True:
        pass
$$ LANGUAGE plpywasm;
DO $$
import re
re.match(r"(a+)+$", "a" * 64 + "b")
$$ LANGUAGE plpywasm;
-- ... and waits: select() with a timeout of years, select() on nothing (which waits forever),
-- an asyncio loop waiting for an event nobody sets.
DO $$
import select
select.select([], [], [], 1e9)
$$ LANGUAGE plpywasm;
DO $$
import select
select.select([], [], [])
$$ LANGUAGE plpywasm;
DO $$
import asyncio
asyncio.run(asyncio.Event().wait())
$$ LANGUAGE plpywasm;
-- A query canceled inside plpy.execute cannot be caught by Python: the statement is canceled.
CREATE FUNCTION sleepy() RETURNS text LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT pg_sleep(5)")
except plpy.SPIError as e:
    return "caught " + e.sqlstate
return "finished"
$$;
SELECT sleepy();
-- Nor when it was canceled in another role's function, which ran in that role's interpreter.
RESET ROLE;
SET ROLE bob;
CREATE FUNCTION bob_sleepy() RETURNS int LANGUAGE plpywasm AS $$ plpy.execute("SELECT pg_sleep(5)") $$;
RESET ROLE;
SET ROLE alice;
CREATE FUNCTION catches_bob() RETURNS text LANGUAGE plpywasm AS $$
for _ in range(3):
    try:
        plpy.execute("SELECT bob_sleepy()")
    except plpy.SPIError:
        pass
return "went on"
$$;
SELECT catches_bob();
-- Loops inside C code stop too.
DO $$
import itertools
sum(itertools.repeat(1))
$$ LANGUAGE plpywasm;
DO $$
import collections, itertools
collections.deque(itertools.count(), maxlen=0)
$$ LANGUAGE plpywasm;
DO $$ import math; math.factorial(10**6) $$ LANGUAGE plpywasm;
-- A call nested in a query of a function stops with it.
CREATE FUNCTION spin_nested() RETURNS int LANGUAGE plpywasm AS $$
return plpy.execute("SELECT spin() AS s")[0]["s"]
$$;
SELECT spin_nested();
-- A cancel inside a nested call's query is reported in PostgreSQL's words, at every level.
CREATE FUNCTION sleepy_nested() RETURNS text LANGUAGE plpywasm AS $$
return plpy.execute("SELECT sleepy() AS s")[0]["s"]
$$;
SELECT sleepy_nested();
-- A stop reaches only the interpreters that run: another role's, idle meanwhile, keeps its GD.
RESET ROLE;
SET ROLE bob;
CREATE FUNCTION count_calls() RETURNS int LANGUAGE plpywasm AS $$
GD["calls"] = GD.get("calls", 0) + 1
return GD["calls"]
$$;
SELECT count_calls();
RESET ROLE;
SET ROLE alice;
SELECT spin();
RESET ROLE;
SET ROLE bob;
SELECT count_calls();
DROP FUNCTION count_calls();
RESET ROLE;
SET ROLE alice;
RESET statement_timeout;
SELECT ok();

-- Unbounded recursion, even with the recursion limit raised, ends as an ERROR.
CREATE FUNCTION recurse(raise_limit bool) RETURNS int LANGUAGE plpywasm AS $$
import sys
if raise_limit:
    sys.setrecursionlimit(10**6)
def f(n):
    return f(n + 1)
return f(0)
$$;
SELECT sqlstate_of($$SELECT recurse(false)$$);
SELECT sqlstate_of($$SELECT recurse(true)$$);
SELECT ok();
-- An interpreter a trap discards takes its plans with it (they were PostgreSQL's memory, which
-- its plans' finalizers would have freed): repeated, a kept plan would be a leak without bound.
CREATE FUNCTION keep_marked_plans() RETURNS int LANGUAGE plpywasm AS $$
GD["plans"] = [plpy.prepare("SELECT 'kept plan marker' AS m") for _ in range(5)]
return len(GD["plans"])
$$;
SELECT keep_marked_plans();
RESET ROLE;
SELECT count(*) AS kept_plans FROM pg_backend_memory_contexts WHERE ident LIKE '%kept plan marker%';
SET ROLE alice;
SELECT sqlstate_of($$SELECT recurse(true)$$);
RESET ROLE;
SELECT count(*) AS kept_plans FROM pg_backend_memory_contexts WHERE ident LIKE '%kept plan marker%';
SET ROLE alice;
-- A plan released while it runs (by a call its query makes) is freed once it has run.
CREATE FUNCTION release_running_plan() RETURNS int LANGUAGE plpywasm AS $$
from wit_world.imports import database
database.free_plan(GD["running"])
return 1
$$;
DO $$
for _ in range(3):
    plan = plpy.prepare("SELECT release_running_plan() /* released plan marker */")
    GD["running"] = plan._id
    plan.execute()
$$ LANGUAGE plpywasm;
RESET ROLE;
SELECT count(*) AS released_plans FROM pg_backend_memory_contexts WHERE ident LIKE '%released plan marker%';
SET ROLE alice;

-- Large arguments and results.
CREATE FUNCTION text_len(t text) RETURNS int LANGUAGE plpywasm AS $$ return len(t) $$;
SELECT text_len(repeat('ab', 5 * 1024 * 1024));
CREATE FUNCTION big_text(n int) RETURNS text LANGUAGE plpywasm AS $$ return "y" * n $$;
SELECT length(big_text(20 * 1024 * 1024));
SELECT text_len(array_agg(i)::text) FROM generate_series(1, 1000000) AS i;

-- Per-role interpreters: each function runs in its owner's, whoever calls it. Nothing alice's code
-- changes is seen by bob's functions, even those alice calls herself.
CREATE FUNCTION tamper() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys, plpy, procedures
GD["secret"] = "alice's"
builtins.len = lambda x: -1
json.dumps = lambda *a, **k: "tampered"
sys.modules["evil"] = object()
plpy.error = lambda *a, **k: None
original = procedures.compile_procedure
def compile_true(name, params, body):
    plpy.notice("alice's compiler ran for " + name)
    procedure = original(name, params, body)
    if name.startswith("bob_"):
        procedure.function = lambda *args: True
    return procedure
procedures.compile_procedure = compile_true
return "tampered"
$$;
SELECT tamper();
CREATE FUNCTION observe() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys
return "GD=%r len=%d json=%s evil=%s" % (GD.get("secret"), len("abc"), json.dumps(1), "evil" in sys.modules)
$$;
SELECT observe();
GRANT EXECUTE ON FUNCTION observe() TO bob;
CREATE FUNCTION observe_as_owner() RETURNS text SECURITY DEFINER LANGUAGE plpywasm AS $$ return GD.get("secret") $$;
GRANT EXECUTE ON FUNCTION observe_as_owner() TO bob;
SET ROLE bob;
-- alice's functions run in alice's interpreter, SECURITY DEFINER or not.
SELECT observe(), observe_as_owner();
CREATE FUNCTION bob_observe() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys
return "GD=%r len=%d json=%s evil=%s" % (GD.get("secret"), len("abc"), json.dumps(1), "evil" in sys.modules)
$$;
SELECT bob_observe();
-- A row-level security policy and a trigger check of bob's hold when alice queries his table,
-- though the functions run with her privileges (current_user is alice).
CREATE TABLE bob_docs (owner name, body text);
INSERT INTO bob_docs VALUES ('alice', 'for alice'), ('bob', 'for bob only');
CREATE FUNCTION bob_visible(o name) RETURNS bool LANGUAGE plpywasm AS $$
return o == plpy.execute("SELECT current_user AS u")[0]["u"]
$$;
CREATE FUNCTION bob_checked() RETURNS trigger LANGUAGE plpywasm AS $$
if TD["new"]["owner"] != plpy.execute("SELECT current_user AS u")[0]["u"]:
    plpy.error("one may only add one's own rows")
$$;
CREATE TRIGGER bob_checked BEFORE INSERT ON bob_docs FOR EACH ROW EXECUTE FUNCTION bob_checked();
ALTER TABLE bob_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON bob_docs FOR SELECT USING (bob_visible(owner));
CREATE POLICY add_rows ON bob_docs FOR INSERT WITH CHECK (true);
GRANT SELECT, INSERT ON bob_docs TO alice;
GRANT EXECUTE ON FUNCTION bob_observe() TO alice;
SET ROLE alice;
SELECT bob_observe();
SELECT * FROM bob_docs;
-- Checking a body compiles runs in the checking role's interpreter, not the owner's.
SET ROLE bob;
SELECT plpywasm_validator('observe'::regproc);
SET ROLE alice;
SELECT sqlstate_of($$INSERT INTO bob_docs VALUES ('bob', 'forged')$$);
-- alice's interpreter starts afresh once it is discarded (os._exit ends it).
SET ROLE alice;
SELECT sqlstate_of($$DO $x$ import os; os._exit(0) $x$ LANGUAGE plpywasm$$);
SELECT observe();
-- A runtime tampered with so that it gives no result is discarded too.
DO $$ import app; app._output = [None] $$ LANGUAGE plpywasm;
SELECT sqlstate_of($$SELECT observe()$$);
SELECT observe();
-- Plans and cursors belong to the interpreter that made them: alice cannot free bob's plans, nor
-- read his cursors, even by calling the host's functions with their handles.
RESET ROLE;
SET ROLE bob;
CREATE FUNCTION bob_planned() RETURNS text LANGUAGE plpywasm AS $$
if "plan" not in SD:
    SD["plan"] = plpy.prepare("SELECT count(*) AS n FROM bob_docs")
    GD["cursor"] = plpy.cursor("SELECT i FROM generate_series(1, 10) AS i")
return "%d rows, cursor at %d" % (SD["plan"].execute()[0]["n"], GD["cursor"].fetch(1)[0]["i"])
$$;
GRANT EXECUTE ON FUNCTION bob_planned() TO alice;
SET ROLE alice;
BEGIN;
SELECT bob_planned();
DO $$
from wit_world.imports import database
from componentize_py_types import Err
seen = []
for handle in range(1, 1000):
    try:
        seen.append(database.fetch(handle, 10, True, False))
    except Err:
        pass
    database.free_plan(handle)
    try:
        database.close_cursor(handle)
    except Err:
        pass
plpy.notice("read %d of bob's cursors" % len(seen))
$$ LANGUAGE plpywasm;
SELECT bob_planned();
COMMIT;
RESET ROLE;
SELECT count(*) AS forged FROM bob_docs WHERE body = 'forged';
DROP TABLE bob_docs;
DROP FUNCTION bob_observe(), bob_visible(name), bob_checked(), bob_planned();
SET ROLE alice;
-- Anyone may call the validator, but only on what they may execute, and only on plpywasm code.
SET ROLE alice;
CREATE FUNCTION private_fn() RETURNS int LANGUAGE plpywasm AS $$ return 1 $$;
REVOKE EXECUTE ON FUNCTION private_fn() FROM PUBLIC;
SET ROLE bob;
SELECT plpywasm_validator('private_fn'::regproc);
SELECT plpywasm_validator('observe'::regproc);
SELECT split_part(sqlstate_of($$SELECT plpywasm_validator('length(text)'::regprocedure)$$), ':', 1) AS not_plpywasm;
SET ROLE alice;

-- Output is bounded (plpywasm.max_output, which only superusers set).
SELECT sqlstate_of($$SET plpywasm.max_output = '1MB'$$);
RESET ROLE;
SET plpywasm.max_output = '1kB';
DO $$
for i in range(100):
    print("%03d " % i + "x" * 96)
$$ LANGUAGE plpywasm;
RESET plpywasm.max_output;
-- (Read at each use, not when the interpreter was made.)
DO $$
for i in range(20):
    print("%03d " % i + "x" * 60)
$$ LANGUAGE plpywasm;

-- Huge and deep inputs: correct results, or clean errors.
SET ROLE bob;
CREATE FUNCTION arr_len(a int[]) RETURNS int LANGUAGE plpywasm AS $$ return len(a) $$;
SELECT arr_len(array_agg(i)) FROM generate_series(1, 1000000) AS i;
CREATE FUNCTION big_array(n int) RETURNS int8[] LANGUAGE plpywasm AS $$ return list(range(n)) $$;
SELECT cardinality(big_array(1000000)), (big_array(1000000))[1000000];
CREATE FUNCTION big_text_array(n int) RETURNS text[] LANGUAGE plpywasm AS $$ return [str(i) for i in range(n)] $$;
SELECT cardinality(big_text_array(200000));
-- A body too deep for Python's compiler is a resource error at CREATE, not a syntax error.
SELECT sqlstate_of(format('CREATE FUNCTION too_deep() RETURNS int LANGUAGE plpywasm AS %L', 'return ' || repeat('-', 100000) || '1'));
SELECT sqlstate_of(format('CREATE FUNCTION too_long() RETURNS int LANGUAGE plpywasm AS %L', 'return 1' || repeat('+1', 200000)));
-- (What the runtime prints to stderr as it fails depends on where memory ran out: not shown.)
SET client_min_messages = error;
SELECT sqlstate_of($$SELECT text_len(repeat('x', 100 * 1024 * 1024))$$);
RESET client_min_messages;
-- Input that could never fit (plpywasm.memory_limit is 128MB here) is refused before it is
-- copied, whatever its type: one argument, several, a polymorphic one, a trigger's row.
SELECT sqlstate_of($$SELECT text_len(repeat('x', 200 * 1024 * 1024))$$);
CREATE FUNCTION two_len(a text, b bytea) RETURNS int LANGUAGE plpywasm AS $$ return len(a) + len(b) $$;
SELECT sqlstate_of($$SELECT two_len(repeat('x', 70 * 1024 * 1024), convert_to(repeat('y', 70 * 1024 * 1024), 'UTF8'))$$);
CREATE FUNCTION any_len(a anyelement) RETURNS int LANGUAGE plpywasm AS $$ return len(a) $$;
SELECT sqlstate_of($$SELECT any_len(repeat('x', 200 * 1024 * 1024))$$);
SELECT any_len(repeat('x', 1000));
-- A value stored compressed is small in a query's result but counts as the size it is read at.
CREATE TABLE big_row (t text);
INSERT INTO big_row SELECT repeat('x', 200 * 1024 * 1024);
CREATE FUNCTION read_big_row() RETURNS text LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT t FROM big_row")
except plpy.SPIError as e:
    return "%s %s" % (e.sqlstate, e)
$$;
SELECT read_big_row();
CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpywasm AS $$ return None $$;
CREATE TRIGGER big_row_update BEFORE UPDATE ON big_row FOR EACH ROW EXECUTE FUNCTION keep_row();
SELECT sqlstate_of($$UPDATE big_row SET t = t || 'y'$$);
DROP TABLE big_row;
SELECT ok();
CREATE FUNCTION json_depth(j jsonb) RETURNS int LANGUAGE plpywasm AS $$
d = 0
while isinstance(j, list) and j:
    j, d = j[0], d + 1
return d
$$;
-- Ending the interpreter is an error too; the next call gets a fresh one.
\set VERBOSITY default
DO 'import os; os._exit(3)' LANGUAGE plpywasm;
SELECT sqlstate_of($$DO 'import os; os.abort()' LANGUAGE plpywasm$$);
SELECT sqlstate_of($$DO 'import sys; sys.exit(4)' LANGUAGE plpywasm$$);
SELECT ok();
-- A query result larger than the interpreter's memory is refused before it is copied.
CREATE FUNCTION huge_result() RETURNS text LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT repeat('x', 1000) FROM generate_series(1, 200000)")
except plpy.SPIError as e:
    return "%s %s" % (e.sqlstate, e.detail)
$$;
SELECT huge_result();
-- So are a fetch from a cursor, and the last rows of a query of several statements (SPI's), of
-- more than fits, as soon as the rows outgrow the limit: not once the backend holds them all.
CREATE FUNCTION refused_early(reading text) RETURNS text LANGUAGE plpywasm AS $$
rows = "SELECT repeat('x', 1000) AS x FROM generate_series(1, 2000000)"
try:
    eval(reading)
except plpy.SPIError as e:
    held = int(e.args[0].split(" of ")[1].split(" MB")[0])
    return "%s, refused with %s MB held" % (e.sqlstate, "under 200" if held < 200 else held)
$$;
SELECT refused_early('plpy.cursor(rows).fetch(10**9)'), refused_early('plpy.execute("SELECT 1; " + rows)'),
       refused_early('plpy.prepare("SELECT 1; " + rows).execute()');
-- A cursor reads it, however large, and iteration reads ahead no more rows than fit: 40 rows of
-- 4 MB are more than the limit together, not one at a time.
DO $$
rows = total = 0
for row in plpy.cursor("SELECT g, repeat(md5(g::text), 131072) AS body FROM generate_series(1, 40) g"):
    rows += 1
    total += len(row["body"])
plpy.notice(rows, total)
$$ LANGUAGE plpywasm;
-- Nor when large rows come after small ones, which would have said little of their size.
DO $$
rows = total = 0
query = "SELECT g, repeat('x', CASE WHEN g > 30 THEN 12000000 ELSE 10 END) AS body FROM generate_series(1, 50) g"
for row in plpy.cursor(query):
    rows += 1
    total += len(row["body"])
plpy.notice(rows, total)
$$ LANGUAGE plpywasm;
SELECT json_depth((repeat('[', 200) || '1' || repeat(']', 200))::jsonb);
SELECT sqlstate_of($$SELECT json_depth((repeat('[', 12000) || '1' || repeat(']', 12000))::jsonb)$$);
SELECT ok();
SET ROLE alice;

-- Code that tampers with the guest's own runtime can only break its own results, cleanly.
CREATE FUNCTION tamper_codec() RETURNS text LANGUAGE plpywasm AS $$
import values
from wit_world.imports.types import Shape_Int
values._SCALAR_ENCODERS[Shape_Int] = lambda obj, out: out.append((values._ARRAY, [4294967295] * 6))
values._PLAIN_ENCODERS[Shape_Int] = lambda obj: [obj, obj]
values._encode_array = lambda obj, out, *rest: out.extend([(values._ARRAY, [100000000]), 1])
return "tampered"
$$;
SELECT tamper_codec();
CREATE FUNCTION after_tamper() RETURNS int LANGUAGE plpywasm AS $$ return "1" $$;
SELECT sqlstate_of($$SELECT after_tamper()$$);
CREATE FUNCTION after_tamper_array() RETURNS text[] LANGUAGE plpywasm AS $$ return ["a"] $$;
SELECT sqlstate_of($$SELECT after_tamper_array()$$);
-- ... down to the bytes a result crosses as: an array whose dimensions claim two billion items.
CREATE FUNCTION tamper_marshal() RETURNS int[] LANGUAGE plpywasm AS $$
import app
app._dump = lambda value: b"[\x01\x00\x00\x00(\x02\x00\x00\x00i\x11\x00\x00\x00[\xff\xff\xff\x7f"
return [1]
$$;
SELECT sqlstate_of($$SELECT tamper_marshal()$$);
-- ... and the fields of timestamps: February 30th, a short state, an offset of a day.
CREATE FUNCTION tamper_timestamps() RETURNS text LANGUAGE plpywasm AS $$
import values
from wit_world.imports.types import Shape_Timestamp, Shape_Timestamptz
values._PLAIN_ENCODERS[Shape_Timestamp] = lambda obj: (values._TIMESTAMP, obj)
values._PLAIN_ENCODERS[Shape_Timestamptz] = lambda obj: (values._TIMESTAMPTZ, obj[0], obj[1], 0)
return "tampered"
$$;
SELECT tamper_timestamps();
CREATE FUNCTION forged_timestamp(state bytea) RETURNS timestamp LANGUAGE plpywasm AS $$ return state $$;
CREATE FUNCTION forged_timestamptz(state bytea, seconds int) RETURNS timestamptz LANGUAGE plpywasm AS $$ return (state, seconds) $$;
SELECT sqlstate_of($$SELECT forged_timestamp('\x07e8021e000000000000')$$) AS feb_30;
SELECT sqlstate_of($$SELECT forged_timestamp('\x07e80201')$$) AS short;
SELECT forged_timestamp('\x07e8021d173b3b0f423f') AS feb_29;
SELECT sqlstate_of($$SELECT forged_timestamptz('\x270f0c1f173b3b0f423f', 86400)$$) AS a_day;
CREATE FUNCTION forged_offset() RETURNS timestamptz LANGUAGE plpywasm AS $$ return (b"\x07\xe8\x02\x1d\x17\x3b\x3b\x0f\x42\x3f", -2**63) $$;
SELECT sqlstate_of($$SELECT forged_offset()$$) AS most_negative_offset;
SELECT forged_timestamptz('\x270f0c1f173b3b0f423f', -86399) AT TIME ZONE 'UTC' AS past_9999;
-- ... and a "keep" node outside a trigger's row.
CREATE FUNCTION tamper_keep() RETURNS text LANGUAGE plpywasm AS $$
import values
from wit_world.imports.types import Shape_Text
values._SCALAR_ENCODERS[Shape_Text] = lambda obj, out: out.append(values._KEPT)
return "tampered"
$$;
SELECT tamper_keep();
CREATE TYPE text_and_ints AS (t text, a int[]);
CREATE FUNCTION forged_keep() RETURNS text_and_ints LANGUAGE plpywasm AS $$ return ("x", [1]) $$;
SELECT sqlstate_of($$SELECT forged_keep()$$) AS keep_outside_trigger;
SET ROLE bob;
CREATE FUNCTION bob_int() RETURNS int LANGUAGE plpywasm AS $$ return 41 + 1 $$;
SELECT bob_int();
RESET ROLE;

-- plpywasm.stats counts this backend's uses per function and role.
SET ROLE alice;
SELECT function, role, calls, traps, cancellations, peak_memory_bytes > 0 AS measured, guest_time_ms > 0 AS timed
FROM plpywasm.stats WHERE function::text IN ('spin()', 'recurse(boolean)', 'ok()', 'grow_forever()', 'allocate(integer)') ORDER BY function::text;
SELECT interpreters_created >= 3 AS recreated_after_traps FROM plpywasm.stats WHERE role = 'alice'::regrole LIMIT 1;
SELECT sum(calls) > 0 AS bob_counted FROM plpywasm.stats WHERE role = 'bob'::regrole;
RESET ROLE;

-- A backend keeps at most plpywasm.max_interpreters idle interpreters (only superusers set it):
-- beyond, the least recently used one goes, with its GD, and the next call starts a fresh one.
SET ROLE alice;
SELECT sqlstate_of($$SET plpywasm.max_interpreters = 1000$$);
RESET ROLE;
-- (Each role's interpreter is the one its functions run in, whoever calls them.)
CREATE FUNCTION visits_body() RETURNS text LANGUAGE sql AS $b$ SELECT $$
GD["visits"] = GD.get("visits", 0) + 1
return GD["visits"]
$$ $b$;
DO $$ BEGIN
  EXECUTE format('CREATE FUNCTION visits() RETURNS int LANGUAGE plpywasm AS %L', visits_body());
  EXECUTE format('CREATE FUNCTION alice_visits() RETURNS int LANGUAGE plpywasm AS %L', visits_body());
  EXECUTE format('CREATE FUNCTION bob_visits() RETURNS int LANGUAGE plpywasm AS %L', visits_body());
END $$;
ALTER FUNCTION alice_visits() OWNER TO alice;
ALTER FUNCTION bob_visits() OWNER TO bob;
SET plpywasm.max_interpreters = 2;
SELECT visits(), visits();
SELECT alice_visits();
SELECT bob_visits();
SELECT visits() AS superuser_interpreter_was_dropped;
SELECT bob_visits() AS bob_interpreter_was_kept;
SELECT alice_visits() AS alice_interpreter_was_dropped;
RESET plpywasm.max_interpreters;

-- Idle interpreters beside the one just used keep at most plpywasm.memory_limit (128MB here) of
-- memory they grew (WebAssembly memory does not shrink): beyond, the least recently used go.
CREATE ROLE grower_1;
CREATE ROLE grower_2;
CREATE ROLE grower_3;
CREATE FUNCTION hold_memory_body() RETURNS text LANGUAGE sql AS $b$ SELECT $$
GD["visits"] = GD.get("visits", 0) + 1
if mb:
    len(bytearray(mb * 1024 * 1024))
return GD["visits"]
$$ $b$;
DO $$ BEGIN
  FOR i IN 1..3 LOOP
    EXECUTE format('CREATE FUNCTION hold_memory_%s(mb int) RETURNS int LANGUAGE plpywasm AS %L', i, hold_memory_body());
    EXECUTE format('ALTER FUNCTION hold_memory_%s(int) OWNER TO grower_%s', i, i);
  END LOOP;
END $$;
-- (Only grower_1's interpreter to begin with.)
SET plpywasm.max_interpreters = 1;
SELECT hold_memory_1(70);
RESET plpywasm.max_interpreters;
SELECT hold_memory_2(70);
SELECT hold_memory_1(0) AS grower_1_kept;
SELECT hold_memory_3(70);
SELECT hold_memory_2(0) AS grower_2_dropped;
SELECT hold_memory_1(0) AS grower_1_dropped;
DROP FUNCTION hold_memory_1(int), hold_memory_2(int), hold_memory_3(int);
DROP ROLE grower_1, grower_2, grower_3;

-- Calls nested through SQL run in the caller's interpreter, so all levels share one
-- plpywasm.memory_limit (128MB here): a memory bomb cannot multiply it by the depth, and what a
-- failed level held is free again at once. Nesting itself is cheap: 60 levels fit.
CREATE FUNCTION nested_hog(depth int, mb int) RETURNS text LANGUAGE plpywasm AS $$
block = bytearray(mb << 20)
if depth <= 1:
    return "bottom"
return "%d %s" % (depth, plpy.execute("SELECT nested_hog(%d, %d) AS r" % (depth - 1, mb))[0]["r"])
$$;
SELECT nested_hog(3, 25);
SELECT left(sqlstate_of($$SELECT nested_hog(6, 50)$$), 40);
SELECT length(nested_hog(60, 0));
SELECT nested_hog(3, 25);

-- Values nested deeper than the stack allows are an error, not a crash: an anonymous record
-- nests records to any depth, as an argument or in a query's result.
RESET ROLE;
CREATE FUNCTION nest(n int) RETURNS record LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    r := ROW(1);
    FOR i IN 1..n LOOP r := ROW(r); END LOOP;
    RETURN r;
END $$;
CREATE FUNCTION takes_record(r record) RETURNS int LANGUAGE plpywasm AS $$ return 1 $$;
SELECT takes_record(nest(20));
SELECT left(sqlstate_of($$SELECT takes_record(nest(20000))$$), 33);
DO $$
try:
    plpy.execute("SELECT nest(20000) AS r")
except plpy.SPIError as e:
    plpy.notice(e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
SELECT takes_record(nest(20));

-- A value's text can be far larger than the value: 8,000 numerics of 12 bytes print as 1 GB of
-- digits. A conversion taking more than plpywasm.memory_limit is refused before the backend holds it.
SET ROLE alice;
CREATE FUNCTION numeric_count(a numeric[]) RETURNS int LANGUAGE plpywasm AS $$ return len(a) $$;
SELECT sqlstate_of($$SELECT numeric_count(array_fill('1e131071'::numeric, ARRAY[8000]))$$);
DO $$
try:
    plpy.execute("SELECT '1e131071'::numeric AS n FROM generate_series(1, 8000)")
except plpy.SPIError as e:
    plpy.notice(e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
SELECT numeric_count(array_fill('1e131071'::numeric, ARRAY[10]));
-- Likewise an array's NULLs: a bit each in the array, more in the backend as they are converted.
CREATE FUNCTION null_count(a int[]) RETURNS int LANGUAGE plpywasm AS $$ return a.count(None) $$;
SELECT sqlstate_of($$SELECT null_count(array_fill(NULL::int, ARRAY[40000000]))$$);
SELECT null_count(array_fill(NULL::int, ARRAY[100000]));
-- And the other way: a result or a plan's parameter whose many NULLs (or any items marshal sends
-- in a byte) would take more than plpywasm.memory_limit in the backend is refused as it is read
-- (in an interpreter of its own: alice's has been near its limit, and may be too full to say it).
CREATE FUNCTION nulls_out(m int) RETURNS int[] LANGUAGE plpywasm AS $$ return [[None] * 1000] * m $$;
RESET ROLE;
CREATE ROLE nulls_out;
ALTER FUNCTION nulls_out(int) OWNER TO nulls_out;
SET ROLE nulls_out;
SELECT sqlstate_of($$SELECT cardinality(nulls_out(10000))$$);
SELECT cardinality(nulls_out(100));
DO $$
plan = plpy.prepare("SELECT cardinality($1) AS n", ["int[]"])
try:
    plan.execute([[[None] * 1000] * 10000])
except plpy.SPIError as e:
    plpy.notice(e.sqlstate, str(e))
plpy.notice(plan.execute([[[None] * 10] * 10])[0]["n"])
$$ LANGUAGE plpywasm;
RESET ROLE;
DROP FUNCTION nulls_out(int);
DROP ROLE nulls_out;
SET ROLE alice;

-- A query that cannot start a subtransaction (a parallel plan run by the leader, inside an explicit
-- subtransaction) is an error Python may catch, and the session goes on.
CREATE TABLE parallel_rows AS SELECT g FROM generate_series(1, 20000) g;
CREATE FUNCTION parallel_query() RETURNS int LANGUAGE plpywasm PARALLEL SAFE AS $$
return plpy.execute("SELECT 1 AS a")[0]["a"]
$$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 1;
SET max_parallel_workers = 0;
DO $$
with plpy.subtransaction():
    try:
        plpy.execute("SELECT count(*) FROM parallel_rows WHERE g % 10000 = 0 AND parallel_query() = 1")
    except plpy.SPIError as e:
        plpy.notice(e.sqlstate, str(e))
plpy.notice("after")
$$ LANGUAGE plpywasm;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET max_parallel_workers;
SELECT ok();

-- A generator the query stopped reading is closed at the end of that query: its `finally` runs
-- there, not in whatever call of the owner's comes next, and, as in PL/Python, it may run no
-- queries (it runs as the query shuts down: as another role maybe, and amid a portal's drop).
-- What it prints goes to the server's log (its plpy messages reach the client, as PL/Python's).
CREATE TABLE closings(who text);
GRANT INSERT, SELECT ON closings TO PUBLIC;
CREATE FUNCTION counting(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$
try:
    for i in range(n):
        yield i
finally:
    print("printed while closing")
    plpy.notice("closed")
    try:
        plpy.execute("INSERT INTO closings SELECT current_user")
    except plpy.SPIError as e:
        plpy.notice(str(e))
$$;
SET ROLE bob;
CREATE FUNCTION first_counted() RETURNS int LANGUAGE plpywasm AS $$
return plpy.execute("SELECT counting(10) AS c LIMIT 2")[1]["c"]
$$;
SELECT first_counted();
SELECT * FROM closings;
SELECT counting(10) LIMIT 1;
SET ROLE alice;
SELECT ok();
SELECT * FROM closings;
-- One whose query failed is closed on its interpreter's next use, with no queries allowed: that
-- use may be another role's call.
BEGIN;
DECLARE reading CURSOR FOR SELECT counting(10);
FETCH 2 FROM reading;
SELECT 1 / 0;
ROLLBACK;
SELECT ok();
SELECT * FROM closings;
-- Nor can it reach the cursor being closed (whose portal is half dropped), nor raise out of the
-- close: what it raises goes to the server's log, as PL/Python's "Exception ignored".
CREATE FUNCTION closing_badly(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$
try:
    yield from range(n)
finally:
    try:
        plpy.execute("FETCH 1 FROM reading")
    except plpy.SPIError as e:
        plpy.notice(str(e))
    raise SystemExit(1)
$$;
BEGIN;
DECLARE reading CURSOR FOR SELECT closing_badly(10);
FETCH 1 FROM reading;
DO $$ BEGIN EXECUTE 'CLOSE reading'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'caught: %', SQLERRM; END $$;
SELECT count(*) FROM pg_cursors WHERE name = 'reading';
COMMIT;
SELECT ok();
-- A cancel stops a `finally` that runs on there, and ends that statement, not the next one; nor
-- does a rescan, closing one generator after another, outlast it.
CREATE FUNCTION closing_never(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$
try:
    yield from range(n)
finally:
    while True:
        pass
$$;
SET statement_timeout = '300ms';
SELECT closing_never(10) LIMIT 2;
SELECT 'next statement';
SELECT count(*) FROM generate_series(1, 1000) a, LATERAL (SELECT closing_never(a) LIMIT 1) s;
SELECT 'next statement';
RESET statement_timeout;

-- A cursor's portal is known by its name, which SQL may give another portal once that one has
-- gone: plpy never reads another portal in its place.
SET ROLE bob;
CREATE TABLE bob_queue(x text);
INSERT INTO bob_queue VALUES ('bob-row-1'), ('bob-row-2');
CREATE FUNCTION bob_next() RETURNS text LANGUAGE plpywasm SECURITY DEFINER AS $$
if "c" not in GD:
    GD["c"] = plpy.cursor("SELECT x FROM bob_queue ORDER BY x")
try:
    rows = GD["c"].fetch(1)
    return rows[0]["x"] if rows else None
except ValueError as e:
    del GD["c"]
    return "%s: %s" % (type(e).__name__, e)
$$;
GRANT EXECUTE ON FUNCTION bob_next() TO alice;
SET ROLE alice;
BEGIN;
SELECT bob_next();
SELECT name AS bob_portal FROM pg_cursors WHERE statement LIKE '%bob_queue%' \gset
COMMIT;
DECLARE :"bob_portal" CURSOR WITH HOLD FOR SELECT 'forged by alice' AS x;
SELECT bob_next();
SELECT bob_next();
CLOSE ALL;
-- Nor within one statement, where a new portal of that name may take the old one's place.
DO $$
plpy.execute("SELECT bob_next()")  # (its cursor went with CLOSE ALL: it opens another)
plpy.execute("SELECT bob_next()")
name = plpy.execute("SELECT name FROM pg_cursors WHERE statement LIKE '%bob_queue%'")[0]["name"]
plpy.execute("CLOSE " + plpy.quote_ident(name))
plpy.execute("DECLARE %s CURSOR FOR SELECT 'forged by alice' AS x" % plpy.quote_ident(name))
plpy.notice(plpy.execute("SELECT bob_next() AS r")[0]["r"])
$$ LANGUAGE plpywasm;

-- A guest changed to send a day count beyond PostgreSQL's range is refused.
CREATE FUNCTION far_date() RETURNS date LANGUAGE plpywasm AS $$
import datetime, values
values._EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal() - 2147483000
return datetime.date(2000, 1, 1)
$$;
SELECT sqlstate_of('SELECT far_date()');
-- An interpreter that once reached the limit and went on is not out of memory when it exits.
CREATE FUNCTION full_then_exit() RETURNS int LANGUAGE plpywasm AS $$
try:
    chunks = []
    while True:
        chunks.append(bytearray(1024 * 1024))
except MemoryError:
    chunks = None
import os
os._exit(1)
$$;
SELECT left(sqlstate_of($$SELECT full_then_exit()$$), 50);
RESET ROLE;

-- Parameters given to the host are not kept by the interpreter: 40,000 queries with 4 KB of
-- parameters each fit in its memory, with the plan kept in SD (the bindings leaked each one's
-- bytes: 160 MB).
SET plpywasm.memory_limit = '32MB';
CREATE FUNCTION plan_params(n int) RETURNS bigint LANGUAGE plpywasm AS $$
if "p" not in SD:
    SD["p"] = plpy.prepare("SELECT length($1) AS x", ["text"])
total = 0
for i in range(n):
    total += SD["p"].execute(["a" * 4000])[0]["x"]
    for row in SD["p"].cursor(["b" * 10]):
        total += row["x"]
return total
$$;
SELECT plan_params(40000);
RESET plpywasm.memory_limit;

-- A DO block, and the check of a body at CREATE FUNCTION, run in the current role's interpreter,
-- where that role's earlier code may have left a hook: after SET ROLE, nothing there may change
-- the role back to the login's (42501), as in a SECURITY DEFINER function. A procedure's own
-- commits still work.
SET ROLE alice;
DO $$
import sys
GD["armed"] = True
def hook(event, args):
    if event == "compile" and GD.get("armed"):
        GD["armed"] = False
        try:
            plpy.execute("RESET ROLE")
            GD["hook"] = "reset to " + plpy.execute("SELECT current_user AS u")[0]["u"]
        except plpy.SPIError as e:
            GD["hook"] = "%s: %s" % (e.sqlstate, e)
sys.addaudithook(hook)
$$ LANGUAGE plpywasm;
CREATE FUNCTION hooked() RETURNS text LANGUAGE plpywasm AS $$ return GD.get("hook") $$;
SELECT current_user, hooked();
DO $$
plpy.execute("CREATE TEMP TABLE committed_here (x int)")
plpy.commit()
try:
    plpy.execute("SET ROLE bob")
except plpy.SPIError as e:
    plpy.notice(e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
SELECT current_user;
RESET ROLE;
SELECT current_user;
