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
-- where one batch of all four would not (each in a fresh interpreter: a new role's).
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
SET ROLE large_rows;
SELECT left(x, 3), length(x) FROM large_rows() x;
SET ROLE large_table;
SELECT i, left(t, 3), length(t) FROM large_table();
SET ROLE large_arrays;
SELECT left(a[1], 3), length(a[1]), a[2] FROM large_arrays() a;
RESET ROLE;
DROP ROLE large_rows, large_table, large_arrays;
SET ROLE alice;
SELECT sqlstate_of($$SET plpywasm.memory_limit = '1GB'$$);

-- statement_timeout stops pure-Python loops.
SET statement_timeout = '200ms';
CREATE FUNCTION spin() RETURNS int LANGUAGE plpywasm AS $$
while True:
    pass
$$;
SELECT spin();
DO $$ sum(range(10**12)) $$ LANGUAGE plpywasm;
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

-- Large arguments and results.
CREATE FUNCTION text_len(t text) RETURNS int LANGUAGE plpywasm AS $$ return len(t) $$;
SELECT text_len(repeat('ab', 5 * 1024 * 1024));
CREATE FUNCTION big_text(n int) RETURNS text LANGUAGE plpywasm AS $$ return "y" * n $$;
SELECT length(big_text(20 * 1024 * 1024));
SELECT text_len(array_agg(i)::text) FROM generate_series(1, 1000000) AS i;

-- Per-role interpreters: nothing alice's code changes is seen by bob's.
CREATE FUNCTION tamper() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys
GD["secret"] = "alice's"
builtins.len = lambda x: -1
json.dumps = lambda *a, **k: "tampered"
sys.modules["evil"] = object()
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
SELECT observe();
-- A SECURITY DEFINER function runs in its owner's interpreter.
SELECT observe_as_owner();
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

-- Huge and deep inputs: correct results, or clean errors. (As bob: alice's interpreter has a
-- tampered `len` by now.)
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
CREATE FUNCTION visits() RETURNS int LANGUAGE plpywasm AS $$
GD["visits"] = GD.get("visits", 0) + 1
return GD["visits"]
$$;
GRANT EXECUTE ON FUNCTION visits() TO PUBLIC;
SET plpywasm.max_interpreters = 2;
SELECT visits(), visits();
SET ROLE alice;
SELECT visits();
SET ROLE bob;
SELECT visits();
RESET ROLE;
SELECT visits() AS superuser_interpreter_was_dropped;
SET ROLE bob;
SELECT visits() AS bob_interpreter_was_kept;
SET ROLE alice;
SELECT visits() AS alice_interpreter_was_dropped;
RESET ROLE;
RESET plpywasm.max_interpreters;

-- Idle interpreters beside the one just used keep at most plpywasm.memory_limit (128MB here) of
-- memory they grew (WebAssembly memory does not shrink): beyond, the least recently used go.
CREATE FUNCTION hold_memory(mb int) RETURNS int LANGUAGE plpywasm AS $$
GD["visits"] = GD.get("visits", 0) + 1
if mb:
    len(bytearray(mb * 1024 * 1024))
return GD["visits"]
$$;
GRANT EXECUTE ON FUNCTION hold_memory(int) TO PUBLIC;
CREATE ROLE grower_1;
CREATE ROLE grower_2;
CREATE ROLE grower_3;
-- (Only grower_1's interpreter to begin with.)
SET plpywasm.max_interpreters = 1;
SET ROLE grower_1;
SELECT hold_memory(70);
RESET ROLE;
RESET plpywasm.max_interpreters;
SET ROLE grower_2;
SELECT hold_memory(70);
SET ROLE grower_1;
SELECT hold_memory(0) AS grower_1_kept;
SET ROLE grower_3;
SELECT hold_memory(70);
SET ROLE grower_2;
SELECT hold_memory(0) AS grower_2_dropped;
SET ROLE grower_1;
SELECT hold_memory(0) AS grower_1_dropped;
RESET ROLE;
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
