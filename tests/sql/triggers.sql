-- Trigger functions: TD in; None/"OK", "SKIP" or "MODIFY" out, as in PL/Python.
\set VERBOSITY default
SET ROLE alice;
CREATE TABLE trig_items (id int, name text, price numeric, updated text);
CREATE FUNCTION show_td() RETURNS trigger LANGUAGE plpywasm AS $$
keys = ["event", "when", "level", "name", "table_name", "table_schema", "args", "new", "old"]
plpy.notice(", ".join("%s=%r" % (k, TD[k]) for k in keys) + ", relid is str: %s" % isinstance(TD["relid"], str))
$$;
CREATE TRIGGER show_before BEFORE INSERT OR UPDATE OR DELETE ON trig_items FOR EACH ROW EXECUTE FUNCTION show_td('a', 'b');
CREATE TRIGGER show_after AFTER INSERT ON trig_items FOR EACH STATEMENT EXECUTE FUNCTION show_td();
INSERT INTO trig_items VALUES (1, 'one', 1.5);
UPDATE trig_items SET price = 2 WHERE id = 1;
DELETE FROM trig_items WHERE id = 1;
DROP TRIGGER show_before ON trig_items;
DROP TRIGGER show_after ON trig_items;
CREATE TRIGGER show_truncate BEFORE TRUNCATE ON trig_items FOR EACH STATEMENT EXECUTE FUNCTION show_td();
TRUNCATE trig_items;
DROP TRIGGER show_truncate ON trig_items;

-- MODIFY changes the row; SKIP drops it; OK and None let it through.
CREATE FUNCTION shape_row() RETURNS trigger LANGUAGE plpywasm AS $$
new = TD["new"]
if new["name"] == "skip me":
    return "SKIP"
if new["name"] == "leave me":
    return "OK"
new["name"] = new["name"].upper()
new["updated"] = TD["event"].lower()
if new["price"] is not None:
    new["price"] = new["price"] * 2
return "MODIFY"
$$;
CREATE TRIGGER shape_row BEFORE INSERT OR UPDATE ON trig_items FOR EACH ROW EXECUTE FUNCTION shape_row();
INSERT INTO trig_items VALUES (1, 'apple', 1.25), (2, 'skip me', 1), (3, 'leave me', 1), (4, 'nullprice', NULL);
SELECT * FROM trig_items ORDER BY id;
UPDATE trig_items SET name = 'pear' WHERE id = 1;
SELECT * FROM trig_items ORDER BY id;
DROP TRIGGER shape_row ON trig_items;

-- Deleting a key from TD["new"] keeps that column's value; an unknown key is an error.
CREATE FUNCTION drop_key() RETURNS trigger LANGUAGE plpywasm AS $$
del TD["new"]["name"]
TD["new"]["updated"] = "kept name"
return "modify"
$$;
CREATE TRIGGER drop_key BEFORE INSERT ON trig_items FOR EACH ROW EXECUTE FUNCTION drop_key();
INSERT INTO trig_items VALUES (5, 'five');
SELECT * FROM trig_items WHERE id = 5;
DROP TRIGGER drop_key ON trig_items;
CREATE FUNCTION bad_modify(kind text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION bad_trigger() RETURNS trigger LANGUAGE plpywasm AS %L', kind);
    RETURN 'ok';
END $$;
CREATE FUNCTION bad_trigger() RETURNS trigger LANGUAGE plpywasm AS $$ return "MODIFY" $$;
CREATE TRIGGER bad_trigger BEFORE INSERT ON trig_items FOR EACH ROW EXECUTE FUNCTION bad_trigger();
SELECT bad_modify($$TD["new"]["nope"] = 1
return "MODIFY"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$TD["new"] = 5
return "MODIFY"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$TD["new"]["ctid"] = "(0,1)"
return "MODIFY"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$del TD["new"]
return "MODIFY"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$TD["new"]["id"] = "not a number"
return "MODIFY"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$return "MAYBE"$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$return 42$$);
SELECT sqlstate_of($$INSERT INTO trig_items VALUES (6, 'x')$$);
SELECT bad_modify($$raise ValueError("no inserts today")$$);
INSERT INTO trig_items VALUES (6, 'x');
DROP TRIGGER bad_trigger ON trig_items;
SELECT count(*) FROM trig_items WHERE id = 6;

-- MODIFY in a DELETE trigger is ignored with a warning; SKIP stops the delete.
CREATE FUNCTION on_delete() RETURNS trigger LANGUAGE plpywasm AS $$
return "SKIP" if TD["old"]["id"] == 1 else "MODIFY"
$$;
CREATE TRIGGER on_delete BEFORE DELETE ON trig_items FOR EACH ROW EXECUTE FUNCTION on_delete();
DELETE FROM trig_items WHERE id IN (1, 3);
SELECT id FROM trig_items ORDER BY id;
DROP TRIGGER on_delete ON trig_items;

-- AFTER triggers see the final row and may reach the database.
CREATE TABLE trig_log (msg text);
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpywasm AS $$
plpy.execute("INSERT INTO trig_log VALUES (%s)" % plpy.quote_literal("%s %s" % (TD["event"], TD["new"]["name"] if TD["new"] else TD["old"]["name"])))
$$;
CREATE TRIGGER log_change AFTER INSERT OR DELETE ON trig_items FOR EACH ROW EXECUTE FUNCTION log_change();
INSERT INTO trig_items VALUES (7, 'logged');
DELETE FROM trig_items WHERE id = 7;
SELECT * FROM trig_log;

-- INSTEAD OF triggers on views.
CREATE VIEW trig_view AS SELECT id, name FROM trig_items;
CREATE FUNCTION view_insert() RETURNS trigger LANGUAGE plpywasm AS $$
plpy.execute("INSERT INTO trig_items (id, name) VALUES (%d, %s)" % (TD["new"]["id"], plpy.quote_literal(TD["new"]["name"] + " via view")))
return "OK"
$$;
CREATE TRIGGER view_insert INSTEAD OF INSERT ON trig_view FOR EACH ROW EXECUTE FUNCTION view_insert();
INSERT INTO trig_view VALUES (8, 'eight');
SELECT * FROM trig_items WHERE id = 8;

-- Generated columns are computed after BEFORE triggers: their TD["new"] leaves them out, and may
-- not set them; AFTER triggers see them. Dropped columns are not seen at all.
CREATE TABLE trig_generated (a int, dropped text, b int, doubled int GENERATED ALWAYS AS (a * 2) STORED);
ALTER TABLE trig_generated DROP COLUMN dropped;
CREATE FUNCTION generated_before() RETURNS trigger LANGUAGE plpywasm AS $$
plpy.notice("before: %r" % TD["new"])
TD["new"]["a"] += 1
if TD["new"]["b"] == 0:
    TD["new"]["doubled"] = 0
return "MODIFY"
$$;
CREATE FUNCTION generated_after() RETURNS trigger LANGUAGE plpywasm AS $$ plpy.notice("after: %r" % TD["new"]) $$;
CREATE TRIGGER generated_before BEFORE INSERT ON trig_generated FOR EACH ROW EXECUTE FUNCTION generated_before();
CREATE TRIGGER generated_after AFTER INSERT ON trig_generated FOR EACH ROW EXECUTE FUNCTION generated_after();
INSERT INTO trig_generated (a, b) VALUES (1, 5);
SELECT * FROM trig_generated;
SELECT sqlstate_of($$INSERT INTO trig_generated (a, b) VALUES (1, 0)$$);

-- "MODIFY" where there is no row: a statement-level INSERT trigger's is an error (TD["new"] is
-- None), a TRUNCATE trigger's is ignored with a warning, as in PL/Python. A MODIFY whose row does
-- not convert says so.
CREATE TABLE trig_modify (a int, b text);
CREATE FUNCTION modify_anyway() RETURNS trigger LANGUAGE plpywasm AS $$ return "MODIFY" $$;
CREATE TRIGGER modify_statement BEFORE INSERT ON trig_modify FOR EACH STATEMENT EXECUTE FUNCTION modify_anyway();
INSERT INTO trig_modify VALUES (1, 'x');
DROP TRIGGER modify_statement ON trig_modify;
CREATE TRIGGER modify_truncate BEFORE TRUNCATE ON trig_modify FOR EACH STATEMENT EXECUTE FUNCTION modify_anyway();
TRUNCATE trig_modify;
CREATE FUNCTION modify_badly() RETURNS trigger LANGUAGE plpywasm AS $$
TD["new"] = [TD["new"]["a"], TD["new"]["b"]]
return "MODIFY"
$$;
CREATE TRIGGER modify_badly BEFORE INSERT ON trig_modify FOR EACH ROW EXECUTE FUNCTION modify_badly();
INSERT INTO trig_modify VALUES (1, 'x');

-- Queries in a trigger see its transition tables.
CREATE FUNCTION count_new_rows() RETURNS trigger LANGUAGE plpywasm AS $$
row = plpy.execute("SELECT count(*) AS n, string_agg(name, ',' ORDER BY id) AS names FROM new_rows")[0]
plpy.notice("%s: %d new rows (%s)" % (TD["event"], row["n"], row["names"]))
$$;
CREATE TRIGGER count_new_rows AFTER INSERT ON trig_items REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_new_rows();
INSERT INTO trig_items (id, name) VALUES (20, 'twenty'), (21, 'twenty-one');
DROP TRIGGER count_new_rows ON trig_items;

-- One function on several tables, of different row types, even once one of them is dropped.
CREATE FUNCTION set_data() RETURNS trigger LANGUAGE plpywasm AS $$
TD["new"]["data"] = "1234"
return "MODIFY"
$$;
CREATE TABLE data_text (data text);
CREATE TABLE data_int (data int);
CREATE TRIGGER set_data BEFORE INSERT ON data_text FOR EACH ROW EXECUTE FUNCTION set_data();
CREATE TRIGGER set_data BEFORE INSERT ON data_int FOR EACH ROW EXECUTE FUNCTION set_data();
INSERT INTO data_text DEFAULT VALUES;
DROP TABLE data_text;
INSERT INTO data_int DEFAULT VALUES;
SELECT data + 1 AS data_plus_one FROM data_int;
DROP TABLE data_int;

-- "MODIFY" keeps the values the function left as they were, without converting them back; what
-- it changed, in place too (a list, a dict), crosses converted. An UPDATE keeps its new values.
CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 3);
CREATE TABLE kept (id int, big text, tags text[], doc jsonb, code short_code, at timestamptz, n numeric);
CREATE FUNCTION touch_kept() RETURNS trigger LANGUAGE plpywasm AS $$
new = TD["new"]
new["tags"].append(TD["event"].lower())
new["doc"]["seen"] = new["doc"].get("seen", 0) + 1
if TD["event"] == "INSERT":
    new["id"] = new["id"] * 10
return "MODIFY"
$$;
CREATE TRIGGER touch_kept BEFORE INSERT OR UPDATE ON kept FOR EACH ROW EXECUTE FUNCTION touch_kept();
INSERT INTO kept VALUES (1, repeat('x', 100000), '{a}', '{"k": [1, 2.50]}', 'abc', '2024-03-31 02:30:00+01', 1.10);
UPDATE kept SET code = 'xyz', n = 2.200;
SELECT id, length(big), md5(big) = md5(repeat('x', 100000)) AS big_intact, tags, doc, code, at, n FROM kept;
DROP TABLE kept;
DROP DOMAIN short_code;

-- A trigger that a query it runs fires again, on its own table or another, gets a TD of its own;
-- the outer call has its own back after the query, and its "MODIFY" stores its own row.
CREATE TABLE nest_parent (id int, depth int, note text);
CREATE TABLE nest_child (id int, depth int, note text);
CREATE FUNCTION nest_stamp() RETURNS trigger LANGUAGE plpywasm AS $$
new = TD["new"]
if TD["table_name"] == "nest_parent" or new["depth"] < 2:
    plpy.execute("INSERT INTO nest_child VALUES (%d, %d)" % (new["id"] * 10, new["depth"] + 1))
TD["new"]["note"] = "%s %s" % (TD["table_name"], TD["new"]["id"])
return "MODIFY"
$$;
CREATE TRIGGER nest_stamp BEFORE INSERT ON nest_parent FOR EACH ROW EXECUTE FUNCTION nest_stamp();
CREATE TRIGGER nest_stamp BEFORE INSERT ON nest_child FOR EACH ROW EXECUTE FUNCTION nest_stamp();
INSERT INTO nest_parent VALUES (1, 0);
SELECT * FROM nest_parent UNION ALL SELECT * FROM nest_child ORDER BY id;
DROP TABLE nest_parent, nest_child;

-- "MODIFY" keeps a json or jsonb value that jsonb finds equal to the old one as it was written
-- (a json's text, a jsonb number's scale); one the function changed is stored as changed.
CREATE TABLE docs (id int, j json, b jsonb, stamp text);
CREATE FUNCTION stamp_docs() RETURNS trigger LANGUAGE plpywasm AS $$
TD["new"]["stamp"] = TD["event"]
if TD["new"]["id"] == 2:
    TD["new"]["b"]["qty"] = 2
    TD["new"]["j"]["y"] = None
return "MODIFY"
$$;
CREATE TRIGGER stamp_docs BEFORE INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION stamp_docs();
INSERT INTO docs VALUES
    (1, '{"b": 1.50,  "a": [1, 2], "b": 2, "u": "\u00e9"}', '{"price": 10.00, "qty": 1.10}'),
    (2, '{"x": 1.0}', '{"price": 10.00, "qty": 1.10}'),
    (3, '{"z": "\u0000"}', '[1.0, {"d": 0.10}]');
UPDATE docs SET id = id WHERE id = 1;
SELECT * FROM docs ORDER BY id;
-- JSON text the function writes is stored as written, though jsonb finds it equal to the old.
CREATE OR REPLACE FUNCTION stamp_docs() RETURNS trigger LANGUAGE plpywasm AS $$
import json
TD["new"]["j"] = json.dumps(TD["new"]["j"], sort_keys=True)
TD["new"]["b"] = '{"price": 10.0, "qty": 1.1}'
return "MODIFY"
$$;
UPDATE docs SET id = id WHERE id = 1;
SELECT * FROM docs WHERE id = 1;
DROP TABLE docs;

-- A trigger function called directly is refused, before it runs (no context line, as in PL/Python).
SELECT sqlstate_of($$SELECT show_td()$$);
SELECT show_td();
RESET ROLE;
