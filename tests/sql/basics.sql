-- The language end to end, as an ordinary role: functions, DO blocks, output, caching.
\set VERBOSITY default
SELECT lanname, lanpltrusted FROM pg_language WHERE lanname = 'plpywasm';
SELECT rolsuper FROM pg_roles WHERE rolname = 'alice';
SET ROLE alice;

CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE plpywasm AS $$ return a + b $$;
SELECT add(1, 2);
SELECT add(x, 10) FROM generate_series(1, 3) AS x;
DO $$ print("hello") $$ LANGUAGE plpywasm;

-- Bodies indented as a whole are accepted, as in PL/Python.
CREATE FUNCTION indented(n int) RETURNS int LANGUAGE plpywasm AS $$
    total = 0
    for i in range(n + 1):
        total += i
    return total
$$;
SELECT indented(100);
-- What is inside its string literals stays as written, lines less indented than the code too.
CREATE FUNCTION indented_text() RETURNS text LANGUAGE plpywasm AS $$
    query = plpy.execute("SELECT 'a' AS x\
 WHERE true")
    letter = """Dear customer,
        your order has shipped.
Regards"""
# a comment at the margin
    return query[0]["x"] + "|" + letter
$$;
SELECT indented_text();
SELECT sqlstate_of($$CREATE FUNCTION badly_indented() RETURNS int LANGUAGE plpywasm AS '    x = 1
  return x'$$);
-- A line less indented than the first is an error, not the end of the body.
SELECT sqlstate_of($$CREATE FUNCTION dedented() RETURNS int LANGUAGE plpywasm AS '    x = 1
return x'$$);
SELECT sqlstate_of($$CREATE FUNCTION dedented_else() RETURNS int LANGUAGE plpywasm AS '  plpy.notice(1)
else:
  plpy.notice(2)'$$);
SELECT sqlstate_of($$CREATE FUNCTION unclosed() RETURNS int LANGUAGE plpywasm AS '  x = 1
  return (x'$$);

-- Unnamed arguments are reachable through `args`; named ones are parameters too.
CREATE FUNCTION unnamed(int, text) RETURNS text LANGUAGE plpywasm AS $$ return repr(args) $$;
SELECT unnamed(7, 'seven');
CREATE FUNCTION both_ways(a int, b int) RETURNS text LANGUAGE plpywasm AS $$ return "%d %r" % (a + b, args) $$;
SELECT both_ways(1, 2);
-- An argument whose name is a Python keyword is still in `args`.
CREATE FUNCTION keyword_arg("class" text) RETURNS text LANGUAGE plpywasm AS $$ return args[0].upper() $$;
SELECT keyword_arg('x');
-- `args` is set only for bodies that can read it, which includes reaching it without its name.
CREATE FUNCTION args_by_eval(a int) RETURNS text LANGUAGE plpywasm AS $$ return eval("repr(ar" + "gs)") $$;
CREATE FUNCTION args_nested(a int) RETURNS text LANGUAGE plpywasm AS $$
def inner():
    return lambda: globals()["ar" + "gs"]
return repr(inner()())
$$;
CREATE FUNCTION args_unused(a int) RETURNS int LANGUAGE plpywasm AS $$ return a * 2 $$;
SELECT args_by_eval(5), args_nested(6), args_unused(7), args_by_eval(8);

-- PL/Python asks for `global x` before assigning to an argument; that keeps working.
CREATE FUNCTION pystrip(x text) RETURNS text LANGUAGE plpywasm AS $$
global x
x = x.strip()
return x
$$;
SELECT '[' || pystrip('  hi  ') || ']';
-- ... in a nested function too, where it reaches the same argument; other globals stay globals.
CREATE FUNCTION bump_twice(a int) RETURNS text LANGUAGE plpywasm AS $$
def bump():
    global a, counter
    a = a + 1
    counter = GD.get("counter", 0) + 1
class Bumper:
    def run(self):
        global a
        a += 10
bump()
Bumper().run()
bump()
return "%d %d" % (a, counter)
$$;
SELECT bump_twice(1);

-- NULL is None, for strict and non-strict functions.
CREATE FUNCTION describe_arg(v int) RETURNS text LANGUAGE plpywasm AS $$ return "None" if v is None else "int %d" % v $$;
SELECT describe_arg(NULL), describe_arg(5);
CREATE FUNCTION strict_arg(v int) RETURNS text STRICT LANGUAGE plpywasm AS $$ return "called" $$;
SELECT strict_arg(NULL) IS NULL AS skipped;
CREATE FUNCTION returns_none() RETURNS int LANGUAGE plpywasm AS $$ return None $$;
SELECT returns_none() IS NULL AS is_null;
CREATE FUNCTION falls_off() RETURNS text LANGUAGE plpywasm AS $$ x = 1 $$;
SELECT falls_off() IS NULL AS is_null;
CREATE FUNCTION empty_body() RETURNS text LANGUAGE plpywasm AS $$$$;
SELECT empty_body() IS NULL AS is_null;

-- void functions return None, and say so otherwise.
CREATE FUNCTION do_nothing() RETURNS void LANGUAGE plpywasm AS $$ pass $$;
SELECT do_nothing();
CREATE FUNCTION void_but_value() RETURNS void LANGUAGE plpywasm AS $$ return 1 $$;
SELECT void_but_value();

-- CREATE OR REPLACE takes effect at once in the same session.
CREATE FUNCTION fn_version() RETURNS text LANGUAGE plpywasm AS $$ return "one" $$;
SELECT fn_version();
CREATE OR REPLACE FUNCTION fn_version() RETURNS text LANGUAGE plpywasm AS $$ return "two" $$;
SELECT fn_version();
-- Overloads are separate functions.
CREATE FUNCTION over(a int) RETURNS text LANGUAGE plpywasm AS $$ return "int" $$;
CREATE FUNCTION over(a text) RETURNS text LANGUAGE plpywasm AS $$ return "text" $$;
SELECT over(1), over('x');

-- Module-level state: GD is shared by the role's functions, SD is per function.
CREATE FUNCTION counter() RETURNS int LANGUAGE plpywasm AS $$
SD["n"] = SD.get("n", 0) + 1
return SD["n"]
$$;
SELECT counter(), counter(), counter();
CREATE FUNCTION gd_set(v text) RETURNS void LANGUAGE plpywasm AS $$ GD["v"] = v $$;
CREATE FUNCTION gd_get() RETURNS text LANGUAGE plpywasm AS $$ return GD.get("v") $$;
SELECT gd_set('shared');
SELECT gd_get();

-- print() and sys.stderr reach the client, line by line, in order.
CREATE FUNCTION chatty() RETURNS int LANGUAGE plpywasm AS $$
import sys
print("one", 1)
print("two\nthree")
sys.stdout.write("no newline")
sys.stderr.write("to stderr\n")
return 3
$$;
SELECT chatty();

-- The whole pure-Python standard library is importable, with no file system.
CREATE FUNCTION stdlib() RETURNS text LANGUAGE plpywasm AS $$
import json, decimal, fractions, statistics, re, datetime, uuid, csv, io, zoneinfo, collections
import dataclasses, itertools, functools, textwrap, string, hashlib, base64, ipaddress, difflib
import email.message, urllib.parse, html, xml.etree.ElementTree, tomllib, heapq, bisect, calendar
rows = list(csv.reader(io.StringIO("a,b\n1,2\n")))
return json.dumps({
    "mean": statistics.mean([1, 2, 3, 4]),
    "decimal": str(decimal.Decimal("1.1") + decimal.Decimal("2.2")),
    "fraction": str(fractions.Fraction(1, 3) * 3),
    "regex": re.findall(r"\d+", "a1b22c333"),
    "date": datetime.date(2024, 2, 29).isoformat(),
    "uuid": str(uuid.UUID(int=1)),
    "csv": rows,
    "sha1": hashlib.sha1(b"abc").hexdigest(),
    # (PBKDF2's test vector, RFC 6070; OpenSSL provides it natively, the guest in Python)
    "pbkdf2": hashlib.pbkdf2_hmac("sha1", b"password", b"salt", 4096, 20).hex(),
    "url": urllib.parse.quote("a b&c"),
    "toml": tomllib.loads("x = 1")["x"],
}, sort_keys=True)
$$;
SELECT stdlib();

-- Procedures run too.
CREATE PROCEDURE proc(n int) LANGUAGE plpywasm AS $$ print("proc", n) $$;
CALL proc(4);
-- ... and return None, as PL/Python says in its own words for them.
CREATE PROCEDURE proc_returns() LANGUAGE plpywasm AS $$ return 1 $$;
CALL proc_returns();

-- Not yet supported: event trigger functions, refused with a clear error at CREATE.
CREATE FUNCTION evt() RETURNS event_trigger LANGUAGE plpywasm AS $$ pass $$;
RESET ROLE;

-- asyncio runs (its loop waits through the host, like time.sleep).
CREATE FUNCTION gathered(n int) RETURNS int[] LANGUAGE plpywasm AS $$
import asyncio
async def square(i):
    await asyncio.sleep(0.001 * i)
    return i * i
async def main():
    results = await asyncio.gather(*(square(i) for i in range(n)))
    try:
        await asyncio.wait_for(asyncio.sleep(60), timeout=0.01)
    except TimeoutError:
        results.append(-1)
    return results
return asyncio.run(main())
$$;
SELECT gathered(4);

-- threading's waits with a timeout sleep it out (no other thread can run to end them), without
-- spinning; without a timeout, they would wait forever, and say so. time.process_time() and
-- os.times() are the backend's CPU time, os.getpid() its process id, as in PL/Python.
DO $$
import os, queue, threading, time
start, cpu = time.monotonic(), time.process_time()
plpy.notice("Event.wait: %s" % threading.Event().wait(0.2))
try:
    queue.Queue().get(timeout=0.2)
except queue.Empty:
    plpy.notice("Queue.get: Empty")
plpy.notice("waited %s, cpu < 0.1 s: %s" % (time.monotonic() - start >= 0.4, 0 <= time.process_time() - cpu < 0.1))
try:
    threading.Event().wait()
except RuntimeError as e:
    plpy.notice(e)
cpu = time.process_time()
sum(range(2_000_000))
plpy.notice("busy cpu > 0: %s, os.times: %s" % (time.process_time() > cpu, os.times().user >= 0 <= os.times().system))
plpy.notice("getpid: %s" % (os.getpid() == plpy.execute("SELECT pg_backend_pid() AS p")[0]["p"]))
$$ LANGUAGE plpywasm;

-- sqlite3 keeps what it would spill to temporary files (a large index build or sort) in memory:
-- there are no files.
CREATE FUNCTION sqlite_spills(n int, autocommit bool) RETURNS text LANGUAGE plpywasm AS $$
import sqlite3
c = sqlite3.connect(":memory:", autocommit=autocommit)
c.execute("create table t(a integer primary key, b text)")
c.executemany("insert into t(b) values (?)", ((f"s{i % 100}",) for i in range(n)))
c.execute("create index ib on t(b)")
found = c.execute("select count(*) from t where b = 's7'").fetchone()[0]
last = c.execute("select b, max(a) from t group by b order by 2 desc limit 1").fetchone()
return "%s %s" % (found, last)
$$;
SELECT sqlite_spills(100000, true), sqlite_spills(100000, false);

-- zoneinfo has the IANA time zone database (carried in the guest: there are no files).
CREATE FUNCTION wall_clock(t timestamptz, zone text) RETURNS text LANGUAGE plpywasm AS $$
import zoneinfo
return t.astimezone(zoneinfo.ZoneInfo(zone)).isoformat()
$$;
SELECT wall_clock('2021-03-28 00:30:00+00', 'Europe/Paris'), wall_clock('2021-03-28 01:30:00+00', 'Europe/Paris'),
       wall_clock('2021-07-01 12:00:00+00', 'America/New_York');
DO $$
import zoneinfo
zones = zoneinfo.available_timezones()
plpy.notice("%s %s" % ("Asia/Tokyo" in zones, len(zones) > 400))
for key in ("Nowhere/City", "../etc/passwd"):
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        plpy.notice("%s: %s" % (type(e).__name__, e))
$$ LANGUAGE plpywasm;

-- A DO block is the body of a function of its own, as in PL/Python: `return` ends it early, and
-- returning a value is refused as for a void function.
DO $$
plpy.notice("before")
if True:
    return
plpy.notice("not reached")
$$ LANGUAGE plpywasm;
DO $$ return 1 $$ LANGUAGE plpywasm;
