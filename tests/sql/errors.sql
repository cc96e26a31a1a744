-- Python exceptions, syntax errors and broken interpreters become ERRORs; the session goes on.
\set VERBOSITY default
SET ROLE alice;

-- An uncaught exception: the message names the class, the traceback is in the context.
CREATE FUNCTION divide(a int, b int) RETURNS float8 LANGUAGE plpywasm AS $$
def helper(x, y):
    return x / y
return helper(a, b)
$$;
SELECT divide(1, 0);
SELECT sqlstate_of($$SELECT divide(1, 0)$$);
SELECT divide(1, 4);
CREATE FUNCTION raises(kind text) RETURNS int LANGUAGE plpywasm AS $$
class AppError(Exception):
    pass
if kind == "key":
    return {}["missing"]
if kind == "custom":
    raise AppError("custom failure")
if kind == "empty":
    raise ValueError
if kind == "exit":
    raise SystemExit(3)
if kind == "chained":
    try:
        1 / 0
    except ZeroDivisionError as e:
        raise RuntimeError("while dividing") from e
if kind == "unprintable":
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str")
    raise Unprintable()
if kind == "memory":
    raise MemoryError("pretend")
if kind == "recursion":
    raise RecursionError("pretend")
return 0
$$;
SELECT raises('key');
SELECT raises('custom');
SELECT raises('empty');
SELECT raises('exit');
SELECT raises('chained');
-- An exception whose str() raises is "unknown", as in PL/Python, with its traceback still.
SELECT raises('unprintable');
SELECT sqlstate_of($$SELECT raises('memory')$$);
SELECT sqlstate_of($$SELECT raises('recursion')$$);
SELECT raises('none');

-- Python code can catch its own exceptions and go on.
CREATE FUNCTION catches() RETURNS text LANGUAGE plpywasm AS $$
try:
    int("x")
except ValueError as e:
    return "caught: %s" % e
$$;
SELECT catches();

-- A SyntaxError is reported at CREATE FUNCTION with its line within the body.
CREATE FUNCTION bad_syntax() RETURNS int LANGUAGE plpywasm AS $$
x = 1
y = = 2
return x
$$;
SELECT sqlstate_of($$CREATE FUNCTION bad_syntax2() RETURNS int LANGUAGE plpywasm AS 'return ('$$);
CREATE FUNCTION bad_indent() RETURNS int LANGUAGE plpywasm AS $$
if True:
return 1
$$;
-- With check_function_bodies off (as pg_dump's scripts set it) the body is checked on first call.
SET check_function_bodies = off;
CREATE FUNCTION deferred() RETURNS int LANGUAGE plpywasm AS $$ return ( $$;
RESET check_function_bodies;
SELECT deferred();
SELECT sqlstate_of($$SELECT deferred()$$);
CREATE OR REPLACE FUNCTION deferred() RETURNS int LANGUAGE plpywasm AS $$ return 1 $$;
SELECT deferred();

-- A SyntaxError in a DO block, and an exception in one.
DO $$
x = 1
if x
$$ LANGUAGE plpywasm;
DO $$ raise ValueError("from a DO block") $$ LANGUAGE plpywasm;
-- An exception whose class misreports its own name is still described, by its real name.
DO $$
class Meta(type):
    @property
    def __name__(cls):
        raise ValueError("no name")
class Odd(Exception, metaclass=Meta):
    __module__ = 42
raise Odd("odd one")
$$ LANGUAGE plpywasm;
-- Arguments of pseudo-types no PL can take are refused.
CREATE FUNCTION takes_internal(x internal) RETURNS int LANGUAGE plpywasm AS $$ return 1 $$;

-- Errors can be caught by the caller, and the function works afterwards.
DO LANGUAGE plpgsql $$
BEGIN
    PERFORM divide(1, 0);
EXCEPTION WHEN external_routine_exception THEN
    RAISE NOTICE 'caught % (%)', SQLERRM, SQLSTATE;
END $$;
SELECT divide(3, 4);
RESET ROLE;

-- A result a domain refuses keeps the error's fields (schema, data type, constraint), as
-- PL/Python's does, for a caller that catches it too.
SET ROLE alice;
CREATE DOMAIN positive_result AS int CHECK (VALUE > 0);
CREATE FUNCTION negative_result() RETURNS positive_result LANGUAGE plpywasm AS $$ return -5 $$;
CREATE FUNCTION negative_results() RETURNS SETOF positive_result LANGUAGE plpywasm AS $$ return [1, -5] $$;
DO $$
for query in ("SELECT negative_result()", "SELECT * FROM negative_results()"):
    try:
        plpy.execute(query)
    except plpy.SPIError as e:
        plpy.notice("%s %s %s" % (e.sqlstate, e, e.spidata[5:]))
$$ LANGUAGE plpywasm;
-- A function the domain's check calls that fails keeps its own context lines, before the
-- result's, as in PL/Python.
CREATE FUNCTION lucky(i int) RETURNS bool IMMUTABLE LANGUAGE plpywasm AS $$
if i == 13:
    raise ValueError("unlucky")
return True
$$;
CREATE DOMAIN lucky_int AS int CHECK (lucky(VALUE));
CREATE FUNCTION thirteen() RETURNS lucky_int LANGUAGE plpywasm AS $$ return 13 $$;
SELECT thirteen();
RESET ROLE;

-- An application's own SQLSTATE (one PostgreSQL has no name for) reaches Python and the caller
-- as it was raised, its fields too: a plain SPIError, as in PL/Python.
SET ROLE alice;
CREATE FUNCTION app_error() RETURNS int LANGUAGE plpywasm AS $$ plpy.error("no such order", sqlstate="U0001") $$;
DO $$
try:
    plpy.execute("DO $x$ BEGIN RAISE EXCEPTION USING MESSAGE = 'm', ERRCODE = 'P0099', TABLE = 't1', CONSTRAINT = 'c1'; END $x$")
except plpy.SPIError as e:
    plpy.notice(type(e).__name__, e.sqlstate, e.spidata[0], e.table_name, e.constraint_name)
try:
    plpy.execute("SELECT app_error()")
except plpy.SPIError as e:
    plpy.notice(type(e).__name__, e.sqlstate, str(e))
$$ LANGUAGE plpywasm;
CREATE FUNCTION app_error_outer() RETURNS int LANGUAGE plpywasm AS $$ plpy.execute("SELECT app_error()") $$;
SELECT sqlstate_of($$SELECT app_error_outer()$$);
RESET ROLE;

-- An error raised with SQLSTATE 57014 by code (not a cancel or a timeout) is caught as any other.
SET ROLE alice;
CREATE FUNCTION fake_cancel() RETURNS int LANGUAGE plpywasm AS $$ plpy.error("not really canceled", sqlstate="57014") $$;
DO $$
try:
    plpy.execute("SELECT fake_cancel()")
except plpy.spiexceptions.QueryCanceled as e:
    plpy.notice("caught %s" % e.sqlstate)
$$ LANGUAGE plpywasm;
-- Also after a real cancel in a nested call of another role's function, which PL/pgSQL in between
-- caught (a superuser's backend, which its own pg_cancel_backend may cancel).
RESET ROLE;
CREATE FUNCTION canceled_here() RETURNS int LANGUAGE plpywasm AS $$
plpy.execute("SELECT pg_cancel_backend(pg_backend_pid())")
plpy.execute("SELECT pg_sleep(5)")
$$;
ALTER FUNCTION canceled_here() OWNER TO bob;
CREATE FUNCTION catches_cancel() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM canceled_here();
    RETURN 'not canceled';
EXCEPTION WHEN query_canceled THEN
    RETURN 'PL/pgSQL caught: ' || SQLERRM;
END $$;
DO $$
plpy.notice(plpy.execute("SELECT catches_cancel() AS c")[0]["c"])
try:
    plpy.execute("SELECT fake_cancel()")
except plpy.spiexceptions.QueryCanceled as e:
    plpy.notice("caught %s: %s" % (e.sqlstate, e))
$$ LANGUAGE plpywasm;
RESET ROLE;

-- A conversion error in a nested call, caught, leaves no trace on the caller's later errors.
CREATE FUNCTION not_a_date() RETURNS date LANGUAGE plpywasm AS $$ return "not a date" $$;
CREATE FUNCTION after_caught() RETURNS int LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT not_a_date()")
except plpy.SPIError as e:
    plpy.notice(e.sqlstate)
raise ValueError("unrelated")
$$;
SELECT after_caught();

-- A statement SPI refuses without raising (a transaction command, COPY to the client) is a plain
-- plpy.SPIError with no SQLSTATE, as in PL/Python; uncaught, 38000.
DO $$
for query in ("SAVEPOINT s", "COMMIT", "COPY (SELECT 1) TO STDOUT"):
    for run in (lambda: plpy.execute(query), lambda: plpy.prepare(query).execute()):
        try:
            run()
        except plpy.SPIError as e:
            plpy.notice("%s %s %s" % (type(e).__name__, e.sqlstate, e))
plpy.notice(plpy.execute("SELECT 1 AS one")[0]["one"])
$$ LANGUAGE plpywasm;
SELECT sqlstate_of($$DO 'plpy.execute("ROLLBACK")' LANGUAGE plpywasm$$);
