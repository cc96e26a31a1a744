-- plpy: messages, queries, errors and quoting, as PL/Python users know them.
\set VERBOSITY default
SET ROLE alice;
CREATE TABLE users (id int PRIMARY KEY, name text, score numeric);
INSERT INTO users VALUES (1, 'ada', 9.5), (2, 'bob', NULL), (3, 'cy', 7);

-- plpy is a global and importable.
DO $$
import plpy as imported
assert imported is plpy
plpy.notice("plpy is here")
$$ LANGUAGE plpywasm;

-- Messages at every level, with detail, hint and SQLSTATE; in order with print().
SET client_min_messages = debug2;
DO $$
print("printed first")
plpy.debug("a debug message")
plpy.log("a log message")
plpy.info("an info message")
plpy.notice("a notice", detail="some detail", hint="a hint")
plpy.warning("a warning", sqlstate="01000")
print("printed last")
plpy.notice("several", "args")
$$ LANGUAGE plpywasm;
RESET client_min_messages;
DO $$ plpy.notice("x", nonsense=1) $$ LANGUAGE plpywasm;

-- plpy.error and plpy.Error end the function with their SQLSTATE, detail and hint.
CREATE FUNCTION raise_error(code text) RETURNS int LANGUAGE plpywasm AS $$
plpy.error("custom failure", detail="the detail", hint="the hint", sqlstate=code)
$$;
SELECT raise_error('22012');
SELECT sqlstate_of($$SELECT raise_error('P0001')$$);
SELECT sqlstate_of($$SELECT raise_error(NULL)$$);
DO $$ raise plpy.Error("raised directly") $$ LANGUAGE plpywasm;
-- Any SQLSTATE, and the diagnostic fields PL/Python reports.
SELECT sqlstate_of($$SELECT raise_error('AB123')$$);
\set VERBOSITY verbose
DO $$
plpy.notice("noticed", detail="d", hint="h", sqlstate="01234", schema_name="s", table_name="t", column_name="c",
            datatype_name="dt", constraint_name="cn")
plpy.error("failed", sqlstate="XY000", schema_name="s", table_name="t", column_name="c", datatype_name="dt", constraint_name="cn")
$$ LANGUAGE plpywasm;
\set VERBOSITY default
-- Keywords are their str(), as PL/Python's manual says: None too. A SQLSTATE of None is invalid.
DO $$
plpy.notice("with Nones", detail=None, hint=None, table_name=None)
try:
    plpy.notice("m", sqlstate=None)
except ValueError as e:
    plpy.notice("ValueError", str(e))
$$ LANGUAGE plpywasm;

-- plpy.execute: rows as dicts, converted as arguments are; status, nrows, columns.
CREATE FUNCTION user_names() RETURNS text LANGUAGE plpywasm AS $$
rv = plpy.execute("SELECT id, name, score FROM users ORDER BY id")
return "%d rows, status %d, %s %s %s: %r" % (rv.nrows(), rv.status(), rv.colnames(), rv.coltypes(), rv.coltypmods(), list(rv))
$$;
SELECT user_names();
CREATE FUNCTION limited(n int) RETURNS text LANGUAGE plpywasm AS $$
rv = plpy.execute("SELECT id FROM users ORDER BY id", n)
return "%d: %r %r %r" % (len(rv), rv[0], rv[-1], rv[1:])
$$;
SELECT limited(2), limited(0);
CREATE FUNCTION add_user(id int, name text) RETURNS text LANGUAGE plpywasm AS $$
rv = plpy.execute("INSERT INTO users VALUES (%d, %s)" % (id, plpy.quote_literal(name)))
return "status %d, nrows %d, %s" % (rv.status(), rv.nrows(), rv)
$$;
SELECT add_user(4, 'd''arcy');
SELECT * FROM users WHERE id = 4;
CREATE FUNCTION utility() RETURNS text LANGUAGE plpywasm AS $$
rv = plpy.execute("CREATE TEMP TABLE scratch (x int)")
try:
    rv.colnames()
except plpy.Error as e:
    return "%d %s" % (rv.status(), e)
$$;
SELECT utility();
CREATE FUNCTION rich_rows() RETURNS text LANGUAGE plpywasm AS $$
rv = plpy.execute("SELECT ARRAY[1,2] AS a, ROW(1, 'x') AS r, '{\"k\": 1}'::jsonb AS j, 1.5::numeric AS n, NULL::int AS z")
return repr(rv[0])
$$;
SELECT rich_rows();

-- A database error is plpy.SPIError, of the subclass for its SQLSTATE; Python may catch it and go on.
CREATE FUNCTION catch_errors() RETURNS text LANGUAGE plpywasm AS $$
out = []
try:
    plpy.execute("SELECT 1/0")
except plpy.spiexceptions.DivisionByZero as e:
    out.append("DivisionByZero %s %s" % (e.sqlstate, e))
try:
    plpy.execute("INSERT INTO users VALUES (1, 'again')")
except plpy.SPIError as e:
    out.append("%s %s %s / %s" % (type(e).__name__, e.sqlstate, e, e.detail))
try:
    plpy.execute("SELECT * FROM no_such_table")
except plpy.spiexceptions.UndefinedTable as e:
    out.append("UndefinedTable " + e.sqlstate)
try:
    plpy.execute("SELEC nonsense")
except plpy.SPIError as e:
    out.append("SyntaxError " + e.sqlstate)
# The transaction goes on: the failed statements were rolled back to their subtransaction.
out.append("after: %d users" % plpy.execute("SELECT count(*) AS n FROM users")[0]["n"])
return "\n".join(out)
$$;
SELECT catch_errors();
-- Work done before a caught error stays; the failed statement alone is undone.
CREATE FUNCTION partial_work() RETURNS int LANGUAGE plpywasm AS $$
plpy.execute("INSERT INTO users VALUES (10, 'kept')")
try:
    plpy.execute("INSERT INTO users VALUES (10, 'duplicate')")
except plpy.spiexceptions.UniqueViolation:
    pass
return plpy.execute("SELECT count(*) AS n FROM users WHERE id = 10")[0]["n"]
$$;
SELECT partial_work();
-- Uncaught, it is the function's error, with the original SQLSTATE.
CREATE FUNCTION uncaught() RETURNS int LANGUAGE plpywasm AS $$ plpy.execute("SELECT 1/0") $$;
SELECT uncaught();
SELECT sqlstate_of($$SELECT uncaught()$$);
-- Raising an spiexceptions class directly carries its SQLSTATE.
SELECT sqlstate_of($$DO 'raise plpy.spiexceptions.CheckViolation("by hand")' LANGUAGE plpywasm$$);
-- The error's fields come along: the constraint and table, a syntax error's query and place
-- (caught, as attributes and PL/Python's spidata; uncaught, as PostgreSQL reports them).
CREATE TABLE checked (id int CONSTRAINT checked_pk PRIMARY KEY, n int CONSTRAINT positive CHECK (n > 0));
CREATE FUNCTION error_fields() RETURNS text LANGUAGE plpywasm AS $$
out = []
try:
    plpy.execute("INSERT INTO checked VALUES (1, -1)")
except plpy.SPIError as e:
    out.append(repr((e.sqlstate, e.schema_name, e.table_name, e.constraint_name, e.detail, e.query, e.position)))
    out.append(repr(e.spidata))
try:
    plpy.execute("SELECT 1 +* 2")
except plpy.SPIError as e:
    out.append(repr((e.sqlstate, e.query, e.position)))
return "\n".join(out)
$$;
SELECT error_fields();
\set VERBOSITY verbose
DO $$ plpy.execute("INSERT INTO checked VALUES (1, -1)") $$ LANGUAGE plpywasm;
DO $$ plpy.execute("SELECT 1 +* 2") $$ LANGUAGE plpywasm;
\set VERBOSITY default

-- Queries run with the calling role's privileges.
RESET ROLE;
CREATE TABLE secrets (s text);
INSERT INTO secrets VALUES ('hidden');
SET ROLE alice;
CREATE FUNCTION read_secrets() RETURNS text LANGUAGE plpywasm AS $$
try:
    return repr(list(plpy.execute("SELECT * FROM secrets")))
except plpy.spiexceptions.InsufficientPrivilege as e:
    return "refused: " + str(e)
$$;
SELECT read_secrets();

-- A function may call another plpywasm function through SQL, and itself; too deep is a clean error.
CREATE FUNCTION helper(x int) RETURNS int LANGUAGE plpywasm AS $$ return x * 10 $$;
CREATE FUNCTION uses_helper(x int) RETURNS int LANGUAGE plpywasm AS $$ return plpy.execute("SELECT helper(%d) AS h" % x)[0]["h"] + 1 $$;
SELECT uses_helper(4), uses_helper(5);
CREATE FUNCTION fact(n int) RETURNS numeric LANGUAGE plpywasm AS $$
if n <= 1:
    return 1
return n * plpy.execute("SELECT fact(%d) AS f" % (n - 1))[0]["f"]
$$;
SELECT fact(5);
SELECT left(sqlstate_of($$SELECT fact(100)$$), 40) AS too_deep;
SELECT fact(6);
-- Replacing a function while it runs (it replaces itself through SQL) takes effect at its next call.
CREATE FUNCTION self_replacing() RETURNS text LANGUAGE plpywasm AS $$
plpy.execute("CREATE OR REPLACE FUNCTION self_replacing() RETURNS text LANGUAGE plpywasm AS 'return \"new\"'")
return "old"
$$;
SELECT self_replacing(), self_replacing();

-- Quoting, as PostgreSQL's quote_literal, quote_nullable and quote_ident.
CREATE FUNCTION quotes() RETURNS text LANGUAGE plpywasm AS $$
return "\n".join([plpy.quote_literal("it's"), plpy.quote_literal("back\\slash"), plpy.quote_nullable(None),
                  plpy.quote_nullable("x"), plpy.quote_ident("simple"), plpy.quote_ident("Mixed Case"), plpy.quote_ident("select")])
$$;
SELECT quotes();
SELECT quote_literal(E'back\\slash') AS pg_says;
-- SQL with a lone surrogate, which has no UTF-8 form, is refused, not changed to fit.
DO $$
for run in (lambda: plpy.execute("SELECT '\ud800' AS x"), lambda: plpy.prepare("SELECT $1", ["text\udc00"]),
            lambda: plpy.cursor("SELECT '\ud800'")):
    try:
        run()
    except UnicodeEncodeError as e:
        plpy.notice(type(e).__name__, e.reason)
$$ LANGUAGE plpywasm;
-- A message is shown by its text, a lone surrogate as "?", whatever a str subclass says of itself.
DO $$
class Sneaky(str):
    def isascii(self):
        return True
class Shown:
    def __str__(self):
        return Sneaky("a\udcffb")
plpy.notice(Shown())
print(Shown())
$$ LANGUAGE plpywasm;
-- Utility statements that return rows give them, counted, as SPI's own result would; a string of
-- several statements gives the last one's rows.
DO $$
for query in ("SHOW DateStyle", "EXPLAIN (COSTS OFF) SELECT 1", "SELECT 1 AS a; SELECT 2 AS b", "SELECT ';' AS semicolon;",
              "SELECT 1 AS a; SET LOCAL work_mem = '5MB'", "SET LOCAL work_mem = '6MB'; SHOW work_mem",
              "SELECT 1 AS a; SELECT 2 AS b WHERE false"):
    result = plpy.execute(query)
    plpy.notice(result.status(), result.nrows(), list(result))
plan = plpy.prepare("SELECT $1 AS a; SELECT $1 + 1 AS b", ["int"])
plpy.notice(list(plan.execute([41])))
$$ LANGUAGE plpywasm;
-- A NUL character, which SQL text cannot hold, is 22021 in a query and in a type name alike.
DO $$
for run in (lambda: plpy.execute("SELECT 1\0"), lambda: plpy.prepare("SELECT $1", ["in\0t"]),
            lambda: plpy.cursor("SELECT 1\0")):
    try:
        run()
    except plpy.spiexceptions.CharacterNotInRepertoire as e:
        plpy.notice(e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
-- A type name that is not a str is refused, in PL/Python's words.
DO $$
try:
    plpy.prepare("SELECT $1", [1])
except plpy.SPIError as e:
    plpy.notice(type(e).__name__, e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
-- What they refuse, as PL/Python's do.
DO $$
for quote in (plpy.quote_literal, plpy.quote_ident, plpy.quote_nullable):
    for value in (None, 5, "a\0b"):
        try:
            quote(value)
        except (TypeError, ValueError) as e:
            plpy.notice(type(e).__name__, str(e))
$$ LANGUAGE plpywasm;

-- Prepared plans: parameters converted as results are; executed many times; plpy.execute(plan, args).
CREATE FUNCTION plan_demo() RETURNS text LANGUAGE plpywasm AS $$
plan = plpy.prepare("SELECT name, $2::numeric * 2 AS twice FROM users WHERE id = $1", ["int4", "numeric"])
out = [repr(list(plan.execute([1, 1.25]))), repr(list(plpy.execute(plan, [3, None]))), repr(list(plan.execute([99, 1])))]
ins = plpy.prepare("INSERT INTO users VALUES ($1, $2, $3)", ["int", "text", "numeric"])
for i in range(20, 25):
    ins.execute((i, "user%d" % i, i / 4))
out.append(str(plpy.execute("SELECT count(*) AS n FROM users WHERE id >= 20")[0]["n"]))
arrays = plpy.prepare("SELECT $1::int[] AS a, $2::jsonb AS j", ["int[]", "jsonb"])
out.append(repr(arrays.execute([[[1, 2], [3, None]], {"k": [1, "two"]}])[0]))
try:
    plan.execute([1])
except TypeError as e:
    out.append("TypeError: %s" % e)
try:
    plan.execute(["not a number", 1])
except plpy.SPIError as e:
    out.append("%s %s" % (e.sqlstate, e))
try:
    plpy.prepare("SELECT $1", ["no_such_type"])
except plpy.SPIError as e:
    out.append("%s %s" % (e.sqlstate, e))
return "\n".join(out)
$$;
SELECT plan_demo();
-- A parameter's type modifier applies to what is passed, as PL/Python applies it: too long is an
-- error, a numeric or a time is rounded, char is padded, an array's elements take it too, and a
-- domain's base type's; an array of the wrong shape is an SPIError too.
CREATE DOMAIN code3 AS varchar(3);
DO $$
for kind, value in [("varchar(2)", "abcdef"), ("numeric(5,2)", 1.23456), ("char(3)", "a"), ("bit(3)", "1"),
                    ("numeric(3,1)", 12345), ("varchar(2)[]", ["ab", "abc"]), ("timestamp(0)", "2024-01-01 10:00:00.7"),
                    ("interval(0)", "1.6 seconds"), ("time(1)", "10:00:00.16"), ("code3", "abcdef"),
                    ("code3[]", ["abcd"]), ("int[]", [[1], [2, 3]])]:
    try:
        row = plpy.prepare("SELECT $1 AS x", [kind]).execute([value])[0]
        plpy.notice("%s: %r" % (kind, row["x"]))
    except plpy.SPIError as e:
        plpy.notice("%s: %s %s" % (kind, e.sqlstate, e))
$$ LANGUAGE plpywasm;
-- Plans kept in SD survive across calls.
CREATE FUNCTION cached_plan(i int) RETURNS text LANGUAGE plpywasm AS $$
if "plan" not in SD:
    SD["plan"] = plpy.prepare("SELECT name FROM users WHERE id = $1", ["int"])
rows = SD["plan"].execute([i])
return rows[0]["name"] if rows else None
$$;
SELECT cached_plan(1), cached_plan(2), cached_plan(3);

-- Cursors walk a result without holding it all: fetch(n), iteration, close().
CREATE FUNCTION cursor_demo() RETURNS text LANGUAGE plpywasm AS $$
out = []
cur = plpy.cursor("SELECT g FROM generate_series(1, 1000) AS g")
out.append(repr([r["g"] for r in cur.fetch(3)]))
out.append(str(sum(r["g"] for r in cur)))
cur.close()
try:
    cur.fetch(1)
except ValueError as e:
    out.append("ValueError: %s" % e)
plan = plpy.prepare("SELECT g FROM generate_series(1, $1) AS g", ["int"])
out.append(str(len(list(plan.cursor([250])))))
out.append(str(len(list(plpy.cursor(plan, [7])))))
try:
    plpy.cursor("SELECT 1/0").fetch(1)
except plpy.spiexceptions.DivisionByZero as e:
    out.append("DivisionByZero")
return "\n".join(out)
$$;
SELECT cursor_demo();

-- Row counts as SPI takes them: 0 and anything past int64 are all rows, a negative one is
-- SPI's argument error (a cursor's: it cannot go back), a non-integer a TypeError.
CREATE FUNCTION row_counts() RETURNS text LANGUAGE plpywasm AS $$
out = []
q = "SELECT g FROM generate_series(1, 5) AS g"
plan = plpy.prepare(q)
for attempt in (lambda n: plpy.execute(q, n), lambda n: plan.execute([], n), lambda n: plpy.cursor(q).fetch(n)):
    for n in (0, 2, 2**70, -1, 2.5):
        try:
            out.append("%r: %d" % (n, len(attempt(n))))
        except plpy.SPIError as e:
            out.append("%r: %s %s %s" % (n, type(e).__name__, e.sqlstate, e))
        except plpy.Error as e:
            out.append("%r: %s %s" % (n, type(e).__name__, e))
        except TypeError as e:
            out.append("%r: TypeError" % n)
return "\n".join(out)
$$;
SELECT row_counts();
-- A negative count fetches backward, as FETCH does (and 0 the current row again), from a cursor
-- whose query can scan backward; iteration's read-ahead does not show.
CREATE FUNCTION scrolled() RETURNS text LANGUAGE plpywasm AS $$
c = plpy.cursor("SELECT g FROM generate_series(1, 300) AS g")
seen = [[r["g"] for r in c.fetch(3)]]
seen.append([next(c)["g"], next(c)["g"]])
seen.append([r["g"] for r in c.fetch(-2)])
seen.append([r["g"] for r in c.fetch(0)])
seen.append([next(c)["g"]])
seen.append([r["g"] for r in c.fetch(-10)])
# Iteration that read to the end of a short query steps back from past its end.
short = plpy.cursor("SELECT g FROM generate_series(1, 10) AS g")
seen.append([next(short)["g"], next(short)["g"]] + [r["g"] for r in short.fetch(-1)] + [r["g"] for r in short.fetch(2)])
unscrollable = plpy.cursor("SELECT count(*) FROM generate_series(1, 3) AS g GROUP BY g % 2")
unscrollable.fetch(1)
try:
    unscrollable.fetch(-1)
except plpy.SPIError as e:
    seen.append([e.sqlstate, str(e)])
return repr(seen)
$$;
SELECT scrolled();
CREATE FUNCTION too_long_code() RETURNS code3 LANGUAGE plpywasm AS $$ return "abcdef" $$;
SELECT sqlstate_of($$SELECT too_long_code()$$);
SELECT count(*) FROM (SELECT * FROM generate_series(1, 3)) AS t;

-- Explicit subtransactions: the block's work is undone when it raises.
CREATE TABLE subxact_tbl (i int);
CREATE FUNCTION subxact_demo(fail bool) RETURNS text LANGUAGE plpywasm AS $$
plpy.execute("INSERT INTO subxact_tbl VALUES (1)")
try:
    with plpy.subtransaction():
        plpy.execute("INSERT INTO subxact_tbl VALUES (2)")
        if fail:
            plpy.execute("INSERT INTO subxact_tbl VALUES ('oops')")
except plpy.SPIError as e:
    plpy.notice("caught: " + str(e))
return repr(sorted(r["i"] for r in plpy.execute("SELECT i FROM subxact_tbl")))
$$;
SELECT subxact_demo(false);
TRUNCATE subxact_tbl;
SELECT subxact_demo(true);
TRUNCATE subxact_tbl;
CREATE FUNCTION subxact_python_error() RETURNS text LANGUAGE plpywasm AS $$
try:
    with plpy.subtransaction():
        plpy.execute("INSERT INTO subxact_tbl VALUES (10)")
        raise KeyError("python error")
except KeyError:
    pass
with plpy.subtransaction():
    with plpy.subtransaction():
        plpy.execute("INSERT INTO subxact_tbl VALUES (11)")
return repr([r["i"] for r in plpy.execute("SELECT i FROM subxact_tbl")])
$$;
SELECT subxact_python_error();
CREATE FUNCTION subxact_misuse() RETURNS text LANGUAGE plpywasm AS $$
s = plpy.subtransaction()
try:
    s.__exit__(None, None, None)
except ValueError as e:
    out = "ValueError: %s" % e
s.__enter__()
plpy.execute("INSERT INTO subxact_tbl VALUES (12)")
return out
$$;
SELECT subxact_misuse();
SELECT count(*) FROM subxact_tbl WHERE i = 12;
RESET ROLE;
-- Procedures and DO blocks may commit and roll back.
CREATE TABLE txn_tbl (i int);
GRANT ALL ON txn_tbl TO alice;
SET ROLE alice;
CREATE PROCEDURE txn_demo() LANGUAGE plpywasm AS $$
for i in range(5):
    plpy.execute("INSERT INTO txn_tbl VALUES (%d)" % i)
    if i % 2 == 0:
        plpy.commit()
    else:
        plpy.rollback()
$$;
CALL txn_demo();
SELECT * FROM txn_tbl ORDER BY i;
DO $$
plpy.execute("INSERT INTO txn_tbl VALUES (100)")
plpy.rollback()
plpy.execute("INSERT INTO txn_tbl VALUES (101)")
plpy.commit()
$$ LANGUAGE plpywasm;
SELECT * FROM txn_tbl WHERE i >= 100;
-- Inside a transaction block, or in a function, PostgreSQL refuses it.
BEGIN;
SELECT sqlstate_of($$CALL txn_demo()$$);
ROLLBACK;
CREATE FUNCTION commit_in_function() RETURNS int LANGUAGE plpywasm AS $$ plpy.commit() $$;
SELECT sqlstate_of($$SELECT commit_in_function()$$);
-- Nor inside plpy.subtransaction(): SPI's words, for a commit and for a rollback, and the
-- function's refusal first.
CREATE PROCEDURE end_in_subtransaction(commit bool) LANGUAGE plpywasm AS $$
with plpy.subtransaction():
    plpy.commit() if commit else plpy.rollback()
$$;
CREATE FUNCTION commit_in_subtransaction() RETURNS int LANGUAGE plpywasm AS $$
with plpy.subtransaction():
    plpy.commit()
$$;
CALL end_in_subtransaction(true);
CALL end_in_subtransaction(false);
SELECT sqlstate_of($$SELECT commit_in_subtransaction()$$);
-- A cursor loop goes on across commits and rollbacks (its cursor becomes a held one), as in
-- PL/Python and PL/pgSQL; a cursor over anything but a read-only query cannot.
CREATE PROCEDURE commit_per_row() LANGUAGE plpywasm AS $$
done = 0
for row in plpy.cursor("SELECT i FROM txn_tbl WHERE i < 100 ORDER BY i"):
    plpy.execute("INSERT INTO txn_tbl VALUES (%d)" % (row["i"] + 1000))
    if row["i"] % 2 == 0:
        plpy.commit()
    else:
        plpy.rollback()
    done += 1
plpy.notice("rows: %d" % done)
$$;
CALL commit_per_row();
SELECT * FROM txn_tbl WHERE i >= 1000 ORDER BY i;
CREATE PROCEDURE commit_in_update_loop() LANGUAGE plpywasm AS $$
for row in plpy.cursor("UPDATE txn_tbl SET i = i WHERE i >= 1000 RETURNING i"):
    plpy.commit()
$$;
CALL commit_in_update_loop();
-- A cursor whose fetch failed is not kept by the commit after it (as after iteration that failed).
CREATE PROCEDURE commit_after_failed_fetch() LANGUAGE plpywasm AS $$
cursor = plpy.cursor("SELECT 1 / (i - 3) AS x FROM generate_series(1, 5) i")
try:
    cursor.fetch(5)
except plpy.spiexceptions.DivisionByZero as e:
    plpy.notice(e.sqlstate)
plpy.commit()
plpy.notice("committed")
$$;
CALL commit_after_failed_fetch();
-- A cursor kept in GD ends with its transaction, unless a commit made it a held one; then it
-- lives until closed.
CREATE FUNCTION keep_cursor() RETURNS int LANGUAGE plpywasm AS $$
GD["cursor"] = plpy.cursor("SELECT i FROM txn_tbl ORDER BY i")
return GD["cursor"].fetch(1)[0]["i"]
$$;
CREATE FUNCTION next_from_kept() RETURNS text LANGUAGE plpywasm AS $$
try:
    return str(GD["cursor"].fetch(1)[0]["i"])
except ValueError as e:  # the portal went with its transaction: PL/Python's exception
    return "%s: %s" % (type(e).__name__, e)
$$;
SELECT keep_cursor();
SELECT next_from_kept();
CREATE PROCEDURE keep_held_cursor() LANGUAGE plpywasm AS $$
GD["cursor"] = plpy.cursor("SELECT i FROM txn_tbl ORDER BY i")
GD["cursor"].fetch(1)
plpy.commit()
$$;
CALL keep_held_cursor();
SELECT next_from_kept();
SELECT count(*) FROM pg_cursors;
DO $$ GD["cursor"].close() $$ LANGUAGE plpywasm;
SELECT count(*) FROM pg_cursors;
-- A subtransaction left open is aborted with a warning when the function ends.
CREATE FUNCTION leaves_subxact() RETURNS int LANGUAGE plpywasm AS $$
plpy.subtransaction().__enter__()
plpy.execute("INSERT INTO txn_tbl VALUES (200)")
return 1
$$;
SELECT leaves_subxact();
SELECT count(*) FROM txn_tbl WHERE i = 200;
-- So is one a set's generator left open as it yielded: exiting it later says so, in PL/Python's
-- words, unless the block raised, whose own error goes on.
CREATE FUNCTION yields_in_subxact(fail bool) RETURNS SETOF int LANGUAGE plpywasm AS $$
with plpy.subtransaction():
    yield 1
    if fail:
        plpy.execute("SELECT 1/0")
$$;
SELECT sqlstate_of('SELECT yields_in_subxact(false)');
SELECT sqlstate_of('SELECT yields_in_subxact(true)');
-- A call nested in the one that entered a subtransaction cannot exit it, and leaves it as it
-- was, for the call that entered it to release.
CREATE FUNCTION exits_outer() RETURNS text LANGUAGE plpywasm AS $$
try:
    GD["outer"].__exit__(None, None, None)
except ValueError as e:
    return str(e)
$$;
DO $$
s = GD["outer"] = plpy.subtransaction()
s.__enter__()
plpy.execute("INSERT INTO txn_tbl VALUES (201)")
plpy.notice(plpy.execute("SELECT exits_outer() AS r")[0]["r"])
s.__exit__(None, None, None)
$$ LANGUAGE plpywasm;
SELECT count(*) FROM txn_tbl WHERE i = 201;
-- Exited out of order, a subtransaction ends the innermost one, as SPI does, and the cursors
-- opened in that one go with it.
DO $$
outer = plpy.subtransaction()
outer.__enter__()
first = plpy.cursor("SELECT generate_series(1, 3) AS i")
inner = plpy.subtransaction()
inner.__enter__()
second = plpy.cursor("SELECT generate_series(1, 3) AS i")
outer.__exit__(ValueError, ValueError("out of order"), None)
plpy.notice(first.fetch(1)[0]["i"])
try:
    second.fetch(1)
except ValueError as e:
    plpy.notice(e)
inner.__exit__(None, None, None)
plpy.notice(first.fetch(1)[0]["i"])
$$ LANGUAGE plpywasm;
RESET ROLE;

-- Result rows are dicts by column name, whatever the names; a repeated name keeps its last value.
DO $$
rows = plpy.execute('''SELECT 1 AS a, 2 AS a, 3 AS "it's ""quoted""", 4 AS "_0", 5 AS "x\\y", 6 AS "}): 1, **{"''')
plpy.notice(sorted(rows[0].items()))
rows = plpy.execute('''SELECT 1 AS a, 2 AS a, now() AS "it's ""quoted""", 4 AS "_0", 5 AS "x\\y", 6 AS "}): 1, **{"''')
plpy.notice(sorted((k, v if k != "it's \"quoted\"" else type(v).__name__) for k, v in rows[0].items()))
$$ LANGUAGE plpywasm;
-- Rows without columns are empty dicts, as PL/Python gives them; a result is a list of its rows.
DO $$
rows = plpy.execute("SELECT FROM generate_series(1, 3)")
plpy.notice(rows.nrows(), len(rows), list(rows), rows.colnames(), rows[1:], isinstance(rows, list), str(rows))
rows = plpy.execute("SELECT i, i * 2 AS j FROM generate_series(1, 4) AS i")
plpy.notice(rows[-1], rows[1:3], [r["j"] for r in rows], len(rows), rows == list(rows))
$$ LANGUAGE plpywasm;

-- The queries of a STABLE or IMMUTABLE function are read-only and see the snapshot of the
-- statement that called it, as in PL/Python and PL/pgSQL.
CREATE TABLE written(x int);
CREATE FUNCTION stable_writer() RETURNS text STABLE LANGUAGE plpywasm AS $$
try:
    plpy.execute("INSERT INTO written VALUES (1)")
    return "inserted"
except plpy.spiexceptions.FeatureNotSupported as e:
    return "%s: %s" % (e.sqlstate, e)
$$;
CREATE FUNCTION immutable_writer() RETURNS text IMMUTABLE LANGUAGE plpywasm AS $$
plan = plpy.prepare("UPDATE written SET x = $1", ["int"])
try:
    plan.execute([2])
    return "updated"
except plpy.SPIError as e:
    return "%s: %s" % (e.sqlstate, e)
$$;
SELECT stable_writer(), immutable_writer();
CREATE FUNCTION volatile_writer() RETURNS int LANGUAGE plpywasm AS $$
plpy.execute("INSERT INTO written VALUES (1)")
return 1
$$;
CREATE FUNCTION stable_count() RETURNS bigint STABLE LANGUAGE plpywasm AS $$
return plpy.execute("SELECT count(*) AS n FROM written")[0]["n"]
$$;
CREATE FUNCTION volatile_count() RETURNS bigint LANGUAGE plpywasm AS $$
return plpy.execute("SELECT count(*) AS n FROM written")[0]["n"]
$$;
SELECT g, volatile_writer(), stable_count(), volatile_count() FROM generate_series(1, 3) g;

-- Iterating a cursor fetches one row at a time, as PL/Python's does, unless nothing could tell
-- (a plain SELECT that calls no volatile function and locks no rows): a loop that stops early
-- has not run its query further.
CREATE SEQUENCE fetched;
CREATE TABLE jobs(id int PRIMARY KEY);
INSERT INTO jobs SELECT generate_series(1, 300);
CREATE EXTENSION pgrowlocks;
BEGIN;
DO $$
for row in plpy.cursor("SELECT nextval('fetched') AS v FROM generate_series(1, 300)"):
    break
for row in plpy.cursor("SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED"):
    plpy.notice("took job", row["id"])
    break
plpy.notice("sequence at", plpy.execute("SELECT last_value FROM fetched")[0]["last_value"])
$$ LANGUAGE plpywasm;
SELECT count(*) AS locked_rows FROM pgrowlocks('jobs');
COMMIT;
-- Through a view, or an aggregate whose transition function is volatile, too.
CREATE VIEW job_queue AS SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED;
CREATE FUNCTION tally(state int, x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('fetched'); RETURN coalesce(state, 0) + x; END $$;
CREATE AGGREGATE tally_sum(int) (sfunc = tally, stype = int);
BEGIN;
DO $$
for row in plpy.cursor("SELECT * FROM job_queue"):
    break
before = plpy.execute("SELECT last_value FROM fetched")[0]["last_value"]
for row in plpy.cursor("SELECT id, tally_sum(id) FROM jobs GROUP BY id ORDER BY id"):
    break
plpy.notice("aggregated", plpy.execute("SELECT last_value FROM fetched")[0]["last_value"] - before)
$$ LANGUAGE plpywasm;
SELECT count(*) AS locked_rows FROM pgrowlocks('jobs');
COMMIT;
-- An aggregate whose functions are none of them volatile could not tell: iteration reads ahead
-- over it, and over it as a window function (the notices of its stable final function come first).
CREATE FUNCTION noisy_final(state int) RETURNS int STABLE LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'final %', state; RETURN state; END $$;
CREATE AGGREGATE noisy_sum(int) (sfunc = int4pl, stype = int, initcond = '0', finalfunc = noisy_final);
DO $$
for row in plpy.cursor("SELECT id, noisy_sum(id) AS s FROM jobs WHERE id <= 3 GROUP BY id ORDER BY id"):
    plpy.notice("group", row["s"])
for row in plpy.cursor("SELECT id, noisy_sum(id) OVER (ORDER BY id) AS s FROM jobs WHERE id <= 3"):
    plpy.notice("window", row["s"])
before = plpy.execute("SELECT last_value FROM fetched")[0]["last_value"]
for row in plpy.cursor("SELECT id, tally_sum(id) OVER (ORDER BY id) AS s FROM jobs WHERE id <= 3"):
    plpy.notice("volatile window", row["s"], plpy.execute("SELECT last_value FROM fetched")[0]["last_value"] - before)
$$ LANGUAGE plpywasm;
-- Iterating one row at a time, the host describes the columns once; explicit fetches between
-- the rows are whole results, and decoded values (numeric, jsonb) come out the same every row.
DO $$
cursor = plpy.cursor("SELECT g, g::numeric / 4 AS n, jsonb_build_object('g', g) AS j, random() < 2 AS t FROM generate_series(1, 5) g")
rows = [next(cursor)]
fetched = cursor.fetch(1)
rows += list(cursor)
plpy.notice(rows)
plpy.notice(fetched.colnames(), fetched.coltypes(), list(fetched))
$$ LANGUAGE plpywasm;
-- A cursor closed by a call nested in its own fetch is refused, as PostgreSQL refuses to drop a
-- portal being read, and goes on.
CREATE FUNCTION closes_reader(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$
if n == 1:
    yield 1
    try:
        GD["reader"].close()
    except plpy.SPIError as e:
        plpy.notice(type(e).__name__, str(e).startswith("cannot drop active portal"))
    yield 2
    return
GD["reader"] = reader = plpy.cursor("SELECT closes_reader(1) AS x")
plpy.notice([row["x"] for _ in range(3) for row in reader.fetch(1)])
reader.close()
yield 0
$$;
SELECT closes_reader(0);
-- Where iteration reads ahead, a row the query fails at still comes after the rows before it,
-- as one row at a time would have them; a fetch of many gets the error alone, as in PL/Python.
DO $$
got = []
cursor = plpy.cursor("SELECT 10 / (5 - g) AS v FROM generate_series(1, 10) g")
try:
    for row in cursor:
        got.append(row["v"])
except plpy.spiexceptions.DivisionByZero as e:
    got.append(str(e))
try:
    next(iter(cursor))
except plpy.SPIError as e:
    got.append(type(e).__name__)
try:
    plpy.cursor("SELECT 10 / (5 - g) AS v FROM generate_series(1, 10) g").fetch(10)
except plpy.spiexceptions.DivisionByZero as e:
    got.append("fetch(10): " + str(e))
plpy.notice(got)
$$ LANGUAGE plpywasm;
-- A cursor opened in a subtransaction that rolled back is gone, rows read ahead with it, as
-- PL/Python's is: iterating, fetching and closing it are ValueErrors.
DO $$
got = []
try:
    with plpy.subtransaction():
        cursor = plpy.cursor("SELECT g FROM generate_series(1, 10) g")
        got.append(next(cursor)["g"])
        raise ZeroDivisionError
except ZeroDivisionError:
    pass
for step in (lambda: next(cursor), lambda: cursor.fetch(1), cursor.close):
    try:
        got.append(step())
    except ValueError as e:
        got.append(str(e))
plpy.notice(got)
$$ LANGUAGE plpywasm;
-- Having read ahead to the end, iteration's cursor is still on the last row Python got.
DO $$
c = plpy.cursor("SELECT g FROM generate_series(1, 3) g")
it = iter(c)
got = [next(it)["g"] for _ in range(3)]
plpy.notice(got, [r["g"] for r in c.fetch(0)], [r["g"] for r in c.fetch(-1)])
$$ LANGUAGE plpywasm;
-- A commit after the rows before a failing one, read ahead, is not refused for the failed portal:
-- those rows are committed, then the error comes.
CREATE TABLE took(i int);
CREATE PROCEDURE take_until_failure() LANGUAGE plpywasm AS $$
for row in plpy.cursor("SELECT i, 1 / (5 - i) AS x FROM generate_series(1, 10) i"):
    plpy.execute("INSERT INTO took VALUES (%d)" % row["i"])
    plpy.commit()
$$;
CALL take_until_failure();
SELECT array_agg(i ORDER BY i) AS committed FROM took;
DROP PROCEDURE take_until_failure();
DROP TABLE took;
-- A cursor whose fetch failed is closed once Python lets it go, as in PL/Python: a commit after
-- that does not find its failed portal still pinned.
CREATE TABLE locked_rows AS SELECT generate_series(1, 3) AS id;
CREATE PROCEDURE drop_failed_cursor() LANGUAGE plpywasm AS $$
c = plpy.cursor("SELECT id FROM locked_rows ORDER BY id FOR UPDATE")
next(c)
try:
    c.fetch(-1)
except plpy.SPIError as e:
    plpy.notice(type(e).__name__)
del c
plpy.commit()
plpy.notice("committed")
$$;
CALL drop_failed_cursor();
DROP PROCEDURE drop_failed_cursor();
DROP TABLE locked_rows;
-- A cursor whose first rows were read in a subtransaction that rolled back goes on.
CREATE FUNCTION countdown(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$
for i in range(n, 0, -1):
    yield i
$$;
DO $$
cursor = plpy.cursor("SELECT countdown(6) AS n")
try:
    with plpy.subtransaction():
        plpy.notice([r["n"] for r in cursor.fetch(2)])
        raise ValueError("undo")
except ValueError:
    pass
plpy.notice([r["n"] for r in cursor.fetch(2)], [r["n"] for r in cursor])
$$ LANGUAGE plpywasm;
BEGIN;
DECLARE counting_down CURSOR FOR SELECT countdown(5);
SAVEPOINT before_fetch;
FETCH 2 FROM counting_down;
ROLLBACK TO before_fetch;
FETCH 2 FROM counting_down;
CLOSE counting_down;
COMMIT;
DROP EXTENSION pgrowlocks;

-- Building a large result pauses Python's cycle collector, and leaves it as it was.
DO $$
import gc
rows = plpy.execute("SELECT g FROM generate_series(1, 50000) g")
enabled_after = gc.isenabled()
gc.disable()
rows = plpy.execute("SELECT g FROM generate_series(1, 50000) g")
disabled_after = not gc.isenabled()
gc.enable()
plpy.notice(len(rows), rows[-1]["g"], enabled_after, disabled_after)
$$ LANGUAGE plpywasm;
