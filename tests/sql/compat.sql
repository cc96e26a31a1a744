-- Behaviour PL/Python's own regression tests (src/pl/plpython/sql) expect, checked there against
-- plpython3u: each case here once differed.

-- Functions that call themselves through SQL nest as deep as a PL/Python user expects.
CREATE FUNCTION spi_recursive_sum(a int) RETURNS int LANGUAGE plpywasm AS $$
if a <= 1:
    return a
return a + plpy.execute("SELECT spi_recursive_sum(%d) AS a" % (a - 1))[0]["a"]
$$;
SELECT spi_recursive_sum(10), spi_recursive_sum(40);
-- Without an end, it stops with 54001 and the backend goes on.
CREATE FUNCTION endless_sql_recursion(a int) RETURNS int LANGUAGE plpywasm AS $$
return plpy.execute("SELECT endless_sql_recursion(%d) AS a" % (a + 1))[0]["a"]
$$;
SELECT left(sqlstate_of($$SELECT endless_sql_recursion(1)$$), 60);
SELECT spi_recursive_sum(5);

-- A call nested through SQL runs in its caller's interpreter, as in PL/Python: it sees the GD the
-- caller set, and so does a trigger fired by the caller's query.
CREATE FUNCTION gd_set_then_read(v int) RETURNS text LANGUAGE plpywasm AS $$
GD["shared"] = v
return "%s %s" % (plpy.execute("SELECT gd_read() AS r")[0]["r"], GD.get("seen_by_trigger"))
$$;
CREATE FUNCTION gd_read() RETURNS int LANGUAGE plpywasm AS $$ return GD.get("shared") $$;
CREATE TABLE gd_log (v int);
CREATE FUNCTION gd_trigger() RETURNS trigger LANGUAGE plpywasm AS $$
GD["seen_by_trigger"] = GD.get("shared")
$$;
CREATE TRIGGER gd_log_insert BEFORE INSERT ON gd_log FOR EACH ROW EXECUTE FUNCTION gd_trigger();
CREATE FUNCTION gd_insert(v int) RETURNS int LANGUAGE plpywasm AS $$
GD["shared"] = v
plpy.execute("INSERT INTO gd_log VALUES (%d)" % v)
return GD["seen_by_trigger"]
$$;
SELECT gd_set_then_read(7), gd_insert(8), gd_read();
-- Each level keeps its own arguments, `args` included, and its own result type.
CREATE FUNCTION args_per_level(n int) RETURNS text LANGUAGE plpywasm AS $$
inner = plpy.execute("SELECT args_per_level(%d) AS r" % (n - 1))[0]["r"] if n > 0 else ""
return "%s%d%s;" % (inner, n, args)
$$;
CREATE FUNCTION same_any(x anyelement, nest bool) RETURNS anyelement LANGUAGE plpywasm AS $$
if nest:
    plpy.execute("SELECT same_any('text'::text, false), same_any(2.5::float8, false)")
return x
$$;
SELECT args_per_level(3), same_any(5, true), same_any(ARRAY[1, 2], true), same_any('q'::text, true);
-- A nested error the caller catches leaves the interpreter as it was.
CREATE FUNCTION nested_raises() RETURNS int LANGUAGE plpywasm AS $$ raise KeyError("inner") $$;
CREATE FUNCTION catch_nested() RETURNS text LANGUAGE plpywasm AS $$
GD["before"] = 1
try:
    plpy.execute("SELECT nested_raises()")
except plpy.SPIError as e:
    return "caught %s, GD kept: %s" % (e, GD["before"])
$$;
SELECT catch_nested(), gd_read();
-- A nested call that breaks the interpreter ends its callers too: their frames are in it.
CREATE FUNCTION nested_exit() RETURNS int LANGUAGE plpywasm AS $$
import os
os._exit(3)
$$;
CREATE FUNCTION catch_nested_exit() RETURNS text LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT nested_exit()")
except BaseException as e:
    return "went on after %r" % e
return "went on"
$$;
SELECT catch_nested_exit();
SELECT gd_read() AS fresh_interpreter, gd_set_then_read(9);
-- Another role's function runs in its owner's interpreter, never the caller's; and a function it
-- calls runs in that function's owner's (here the caller's again).
CREATE ROLE gd_owner;
CREATE FUNCTION gd_owner_read() RETURNS text LANGUAGE plpywasm SECURITY DEFINER AS $$
GD["owner_calls"] = GD.get("owner_calls", 0) + 1
return "%s %s %d" % (GD.get("shared"), plpy.execute("SELECT gd_read() AS r")[0]["r"], GD["owner_calls"])
$$;
ALTER FUNCTION gd_owner_read() OWNER TO gd_owner;
CREATE FUNCTION gd_cross_role() RETURNS text LANGUAGE plpywasm AS $$
GD["shared"] = 10
return plpy.execute("SELECT gd_owner_read() AS r")[0]["r"]
$$;
SELECT gd_cross_role();
-- Called at the top level, it is in the same interpreter as when it was nested: one GD per role.
SELECT gd_owner_read();
DROP FUNCTION gd_owner_read();
DROP ROLE gd_owner;

-- A cursor read by iteration and by fetch() gives each row once, in order.
CREATE FUNCTION cursor_mix_next_and_fetch() RETURNS text LANGUAGE plpywasm AS $$
cur = plpy.cursor("SELECT i FROM generate_series(1, 250) AS i")
seen = [r["i"] for r in cur.fetch(2)]
seen.append(next(cur)["i"])
more = cur.fetch(3)
seen += [r["i"] for r in more]
seen.append(next(cur)["i"])
rest = cur.fetch(1000)
seen += [r["i"] for r in rest]
return "%s %s %s %s %s" % (seen == list(range(1, 251)), more.nrows(), more.colnames(), rest.nrows(), len(cur.fetch(5)))
$$;
SELECT cursor_mix_next_and_fetch();
-- Closing a cursor runs SQL too, and can fail: PostgreSQL refuses to close one being read.
CREATE FUNCTION close_gd_cursor(i int) RETURNS int LANGUAGE plpywasm AS $$
if i == 3:
    GD["reading"].close()
return i
$$;
CREATE FUNCTION close_while_reading() RETURNS text LANGUAGE plpywasm AS $$
GD["reading"] = plpy.cursor("SELECT close_gd_cursor(g) AS x FROM generate_series(1, 10) AS g")
try:
    for row in GD["reading"]:
        pass
except plpy.spiexceptions.InvalidCursorState as e:
    return "%s %s" % (e.sqlstate, str(e).split(' "')[0])
$$;
SELECT close_while_reading();

-- plpy's message functions take the message by name too, and check the SQLSTATE they are given.
DO $$
plpy.info(message="by name", detail="its detail")
try:
    plpy.info("first", message="second")
except TypeError as e:
    plpy.info("TypeError:", str(e))
for code in ("54444A", "abcde", "1234"):
    try:
        plpy.notice("wrong sqlstate", sqlstate=code)
    except ValueError as e:
        plpy.info(code, str(e))
$$ LANGUAGE plpywasm;
CREATE FUNCTION raise_by_name() RETURNS void LANGUAGE plpywasm AS $$
plpy.error(message="message text", detail="detail text", hint="hint text", sqlstate="XX555")
$$;
SELECT raise_by_name();
SELECT sqlstate_of($$SELECT raise_by_name()$$);

-- A void result is a value, not NULL (as for plpgsql and PL/Python).
CREATE FUNCTION void_func() RETURNS void LANGUAGE plpywasm AS $$ x = 10 $$;
SELECT void_func() IS NULL AS is_null, void_func()::text = '' AS empty;

-- OUT parameters make an anonymous row, which a returned row literal fills.
CREATE FUNCTION out_record_as_text(first text, OUT first text, second int, OUT second int) RETURNS record
LANGUAGE plpywasm AS $$ return "(%s,%r)" % (first, second) $$;
SELECT * FROM out_record_as_text('one', 1);

-- A composite result follows ALTER TYPE / ALTER TABLE between calls, in the same session.
CREATE TABLE changing_row (first text, second int);
CREATE FUNCTION make_changing_row(kind text) RETURNS changing_row LANGUAGE plpywasm AS $$
if kind == "tuple":
    return ("one", 1)
class Row: pass
Row.first, Row.second = "one", 1
return Row
$$;
CREATE FUNCTION changing_rows(OUT n int, OUT r changing_row) RETURNS SETOF record LANGUAGE plpywasm AS $$
return [(1, {"first": "a", "second": 2}), (2, {"second": 3, "first": "b", "third": None})]
$$;
SELECT * FROM make_changing_row('object'), changing_rows();
ALTER TABLE changing_row DROP COLUMN first, DROP COLUMN second;
ALTER TABLE changing_row ADD COLUMN second int, ADD COLUMN first text;
SELECT * FROM make_changing_row('object'), changing_rows();
SELECT sqlstate_of($$SELECT make_changing_row('tuple')$$);
ALTER TABLE changing_row DROP COLUMN second;
SELECT * FROM changing_rows();

-- ... and so do row types inside arrays, rows and domains.
CREATE TYPE inner_row AS (x int, y int);
CREATE TYPE outer_row AS (i inner_row, n text);
CREATE DOMAIN outer_checked AS outer_row CHECK ((VALUE).n <> 'bad');
CREATE FUNCTION inner_rows() RETURNS inner_row[] LANGUAGE plpywasm AS $$ return [{"x": 1, "y": 2, "z": 3}] $$;
CREATE FUNCTION outer_rows() RETURNS outer_checked LANGUAGE plpywasm AS $$
return {"i": {"x": 1, "y": 2, "z": 3}, "n": "ok"}
$$;
SELECT inner_rows(), outer_rows();
ALTER TYPE inner_row ADD ATTRIBUTE z int;
SELECT inner_rows(), outer_rows();
ALTER TYPE inner_row DROP ATTRIBUTE x;
SELECT inner_rows(), outer_rows();

-- A plan kept in SD whose parameter's row type is altered asks to be prepared again, rather than
-- building rows of the old layout.
CREATE TYPE plan_row AS (x int, y int);
CREATE FUNCTION planned(y int) RETURNS text LANGUAGE plpywasm AS $$
if "plan" not in SD:
    SD["plan"] = plpy.prepare("SELECT $1::text AS t", ["plan_row"])
return SD["plan"].execute([{"x": 1, "y": y}])[0]["t"]
$$;
SELECT planned(2);
ALTER TYPE plan_row DROP ATTRIBUTE x;
ALTER TYPE plan_row ADD ATTRIBUTE x int;
SELECT planned(3);
ALTER TYPE plan_row ALTER ATTRIBUTE y TYPE text;
SELECT sqlstate_of($$SELECT planned(4)$$);
-- One whose parameter type was dropped says so, as PostgreSQL does (42704), even once a type of
-- the same name is back.
DROP TYPE plan_row CASCADE;
CREATE TYPE plan_row AS (x int, y int);
SELECT regexp_replace(sqlstate_of($$SELECT planned(5)$$), '[0-9]+ does', 'N does') AS dropped;

-- Any object with the sequence protocol (__len__ and __getitem__) is a sequence, as in PL/Python:
-- for an array (its inner dimensions are lists), a row and a plan's arguments; items are taken by
-- index, as many as its length.
CREATE FUNCTION custom_sequences(kind text) RETURNS text LANGUAGE plpywasm AS $$
class Seq:
    def __init__(self, *items): self.items = items
    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]
class Sevens:  # iterating it never ends
    def __len__(self): return 2
    def __getitem__(self, i): return 7
class Broken:
    def __len__(self): return 1
    def __getitem__(self, i): raise ValueError("getitem failed")
if kind == "broken":
    return plpy.execute(plpy.prepare("SELECT $1 AS t", ["int"]), Broken())
plan = plpy.prepare("SELECT $1::text || ' ' || $2::text AS t", Seq("int[]", "changing_row"))
return plan.execute(Seq(Sevens(), Seq("x")))[0]["t"] + " " + plan.execute(Seq(Seq([1, 2], [3, 4]), Seq("y")))[0]["t"]
$$;
SELECT custom_sequences('ok');
SELECT custom_sequences('broken');
CREATE TYPE seq_pair AS (a int, b text);
CREATE FUNCTION sequence_as_row() RETURNS seq_pair LANGUAGE plpywasm AS $$
class Pair:
    def __len__(self): return 2
    def __getitem__(self, i): return (5, "y")[i]
return Pair()
$$;
SELECT sequence_as_row();

-- plpy shows what PL/Python's shows, and its objects have PL/Python's type names.
DO $$
plpy.notice(sorted(name for name in dir(plpy) if not name.startswith("__")))
plpy.notice([type(o).__name__ for o in (plpy.execute("SELECT 1"), plpy.prepare("SELECT 1"), plpy.cursor("SELECT 1"), plpy.subtransaction())])
$$ LANGUAGE plpywasm;

-- A row in an array given as a list is a dimension since PostgreSQL 10: PL/Python's error and hint.
CREATE TYPE two_fields AS (first text, second int);
CREATE FUNCTION rows_as_lists(kind int) RETURNS two_fields[] LANGUAGE plpywasm AS $$
return [[["first", 1]], [["first"]], [1], [" (a,1)"]][kind]
$$;
DO $$
for kind in range(3):
    try:
        plpy.execute("SELECT rows_as_lists(%d)" % kind)
    except plpy.SPIError as e:
        plpy.notice(e.sqlstate, str(e), e.detail, e.hint)
$$ LANGUAGE plpywasm;
SELECT rows_as_lists(3);

-- Python's warnings go to the server's log (LOG), as PL/Python's go to its stderr: a "\d" in a
-- str literal (a SyntaxWarning since Python 3.12) is no WARNING at CREATE or at the call.
CREATE FUNCTION digits(s text) RETURNS text[] LANGUAGE plpywasm AS $$
import re
return re.findall("\d+", s)
$$;
SELECT digits('a1b22');
SET client_min_messages = log;
DO $$
import warnings
warnings.warn_explicit("deprecated thing", UserWarning, "body", 1)
$$ LANGUAGE plpywasm;
RESET client_min_messages;

-- Errors in procedures name a procedure; traceback lines keep what follows the code.
CREATE PROCEDURE failing_proc() LANGUAGE plpywasm AS $$
raise Exception("error test")   
$$;
CALL failing_proc();

-- A body runs as the main module, as in PL/Python; quote_literal takes only str.
CREATE FUNCTION main_name() RETURNS text LANGUAGE plpywasm AS $$
class Custom(Exception):
    pass
try:
    raise Custom("x")
except Custom as e:
    pass
return "%s %s %s" % (__name__, Custom.__module__, plpy.quote_nullable(None))
$$;
SELECT main_name();
DO $$
for value in (None, 5):
    try:
        plpy.quote_literal(value)
    except TypeError as e:
        plpy.notice(str(e))
$$ LANGUAGE plpywasm;
CREATE FUNCTION custom_error() RETURNS int LANGUAGE plpywasm AS $$
class Custom(Exception):
    pass
raise Custom("mine")
$$;
SELECT custom_error();

-- A function ported with PL/Python's jsonb transform declared creates and runs: plpywasm gives
-- jsonb as Python objects either way.
CREATE FUNCTION with_transform(doc jsonb) RETURNS jsonb TRANSFORM FOR TYPE jsonb LANGUAGE plpywasm AS $$
doc["seen"] = True
return doc
$$;
SELECT with_transform('{"a": [1, 2.5]}');
