-- Databases not in UTF-8: bodies, names, queries, values and messages are converted between the
-- server encoding and the guest's UTF-8, in both directions.
CREATE DATABASE plpywasm_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE DATABASE plpywasm_euc_jp ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c plpywasm_latin1
SET client_encoding = 'UTF8';
\set VERBOSITY default
CREATE EXTENSION plpywasm;
SELECT getdatabaseencoding();

-- A body, its function's name and its parameters' names with characters beyond ASCII.
CREATE FUNCTION "grüße"(wörter text) RETURNS text LANGUAGE plpywasm AS $$
# Grüße, zurück
return wörter + " à " + repr(wörter) + " " + str(len(wörter))
$$;
SELECT "grüße"('café');

-- Queries, their column names and values; plans with parameters.
CREATE TABLE straße ("größe" int, "name" text);
INSERT INTO straße VALUES (1, 'Müller'), (2, 'Jäger');
CREATE FUNCTION names() RETURNS text LANGUAGE plpywasm AS $$
rows = plpy.execute("SELECT * FROM straße WHERE name <> 'Zoë' ORDER BY größe")
plan = plpy.prepare("SELECT $1 || 'ß' AS x", ["text"])
return repr((rows.colnames(), [r["name"] for r in rows], plan.execute(["ñ"])[0]["x"]))
$$;
SELECT names();

-- A trigger's names and arguments.
CREATE FUNCTION watch() RETURNS trigger LANGUAGE plpywasm AS $$
plpy.notice(repr((TD["name"], TD["table_name"], TD["args"], TD["new"])))
$$;
CREATE TRIGGER "wächter" BEFORE INSERT ON straße FOR EACH ROW EXECUTE FUNCTION watch('ärger');
INSERT INTO straße VALUES (3, 'Öz');

-- Results: a character LATIN1 has is stored; one it lacks is PostgreSQL's error.
CREATE FUNCTION made(code int) RETURNS text LANGUAGE plpywasm AS $$ return "<" + chr(code) + ">" $$;
SELECT made(233);
SELECT made(9731);
CREATE FUNCTION queried() RETURNS text LANGUAGE plpywasm AS $$
try:
    plpy.execute("SELECT '%s'" % chr(9731))
except plpy.SPIError as e:
    return e.sqlstate
$$;
SELECT queried();

-- An empty string, which needs no converting, is read to its end and no further; so is print()
-- output reported when the call ends, converted like plpy's messages.
CREATE FUNCTION echoed(t text) RETURNS text LANGUAGE plpywasm AS $$
print("café", chr(9731))
return repr(t)
$$;
CREATE TABLE neighbours(empty text, secret text);
INSERT INTO neighbours VALUES ('', 'SECRET-NEXT-DOOR');
SELECT echoed(empty) FROM neighbours;

-- Messages never fail for a character the encoding lacks: it is written as an escape.
DO $$ plpy.notice("ü " + chr(9731) + " " + chr(0x1D11E)) $$ LANGUAGE plpywasm;
CREATE FUNCTION "plötzlich"() RETURNS int LANGUAGE plpywasm AS $$
raise ValueError("schön " + chr(9731))
$$;
SELECT "plötzlich"();
DO $$ plpy.error("é" + chr(9731), detail="dé", hint="hé") $$ LANGUAGE plpywasm;

\c plpywasm_euc_jp
SET client_encoding = 'UTF8';
\set VERBOSITY default
CREATE EXTENSION plpywasm;
CREATE FUNCTION "関数"(引数 text) RETURNS text LANGUAGE plpywasm AS $$
# 注釈
return 引数 + "日本語" + repr(plpy.execute("SELECT '漢字'::text AS 列")[0])
$$;
SELECT "関数"('テスト');
DO $$ raise ValueError("誤り") $$ LANGUAGE plpywasm;

-- SQL_ASCII: nothing is converted, and text is read to its end.
\c plpywasm_test
CREATE DATABASE plpywasm_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c plpywasm_ascii
SET client_encoding = 'UTF8';
CREATE EXTENSION plpywasm;
CREATE FUNCTION echoed(t text) RETURNS text LANGUAGE plpywasm AS $$ return repr(t) $$;
CREATE TABLE neighbours(shown text, secret text);
INSERT INTO neighbours VALUES ('1', 'SECRET-NEXT-DOOR'), ('', 'SECRET-TOO');
SELECT echoed(shown) FROM neighbours;
DO $$ plpy.notice([r["shown"] for r in plpy.execute("SELECT shown FROM neighbours")]) $$ LANGUAGE plpywasm;
-- A row whose text is not UTF-8 is an error in its place: a cursor read ahead still gives the rows
-- after it, as fetching one at a time does.
CREATE TABLE mixed AS SELECT x, CASE WHEN x = 4 THEN convert_from('\x41ff42', 'SQL_ASCII') ELSE 'ok' END AS t
    FROM generate_series(1, 8) x;
DO $$
def read(step):
    cursor, seen = plpy.cursor("SELECT x, t FROM mixed ORDER BY x"), []
    while True:
        try:
            seen.append(step(cursor)["x"])
        except StopIteration:
            return seen
        except plpy.SPIError as e:
            seen.append(e.sqlstate)
def one(cursor):
    rows = cursor.fetch(1)
    if not rows:
        raise StopIteration
    return rows[0]
plpy.notice(read(one), read(next))
$$ LANGUAGE plpywasm;

\c plpywasm_test
DROP DATABASE plpywasm_latin1;
DROP DATABASE plpywasm_euc_jp;
DROP DATABASE plpywasm_ascii;

-- A message the client's encoding cannot take is plpy.Error, which Python may catch, as in
-- PL/Python; in a nested call too, and the interpreter stays sound (a trap after it is clean).
SET client_encoding = 'LATIN1';
CREATE FUNCTION snowy_notice() RETURNS int LANGUAGE plpywasm AS $$
plpy.notice("snow \u2603")
return 1
$$;
DO $$
try:
    plpy.notice("snow \u2603")
except plpy.Error as e:
    plpy.notice("caught", type(e).__name__, e.sqlstate)
try:
    plpy.execute("SELECT snowy_notice()")
except plpy.SPIError as e:
    plpy.notice("caught nested", e.sqlstate)
import os
os._exit(1)
$$ LANGUAGE plpywasm;
SELECT 'alive' AS after_trap;
RESET client_encoding;
