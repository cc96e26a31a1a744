-- Arrays, composite values, set-returning functions, OUT parameters and record results.
\set VERBOSITY default
SET ROLE alice;
CREATE FUNCTION py_repr(v anyelement) RETURNS text LANGUAGE plpywasm AS $$ return type(v).__name__ + ": " + repr(v) $$;
CREATE FUNCTION id(v anyelement) RETURNS anyelement LANGUAGE plpywasm AS $$ return v $$;

-- Arrays are nested lists, NULL elements None; any element type, any number of dimensions.
SELECT py_repr('{1,NULL,3}'::int[]), py_repr('{}'::int[]), py_repr('{{1,2},{3,4}}'::int[]), py_repr('{a,"b c",NULL}'::text[]);
SELECT py_repr('{1.5,NaN}'::numeric[]), py_repr('{2024-01-02}'::date[]), py_repr('{"{\"a\": 1}"}'::jsonb[]), py_repr('[0:1]={7,8}'::int[]);
SELECT v, id(v) = v AS same FROM unnest(ARRAY['{}', '{NULL}', '{1,2,3}', '{{1,2},{3,4},{5,6}}', '{{{1}},{{2}}}', '{{{{{{1,2}}}}}}',
    '{-2147483648,2147483647}']::text[]) AS t(s), LATERAL (SELECT s::int[] AS v) AS x;
SELECT id(ARRAY['', 'ünï', NULL, 'x y']) = ARRAY['', 'ünï', NULL, 'x y'] AS text_array, id('{"\\x00ff"}'::bytea[]) = '{"\\x00ff"}'::bytea[] AS bytea_array;
SELECT cardinality(id(array_agg(i))) FROM generate_series(1, 100000) AS i;
CREATE FUNCTION to_int_array(v text) RETURNS int[] LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT to_int_array('[1, 2, None]'), to_int_array('(1, 2)'), to_int_array('[[1, 2], [3, 4]]'), to_int_array('[]'), to_int_array('[[], []]'), to_int_array('range(3)'), to_int_array('"56"');
-- As in PL/Python, a str is a sequence of characters, not an array literal.
SELECT sqlstate_of($$SELECT to_int_array('"{5,6}"')$$);
SELECT sqlstate_of($$SELECT to_int_array('[[1, 2], [3]]')$$);
SELECT sqlstate_of($$SELECT to_int_array('[[1], 2]')$$);
SELECT sqlstate_of($$SELECT to_int_array('[1, [2]]')$$);
SELECT sqlstate_of($$SELECT to_int_array('5')$$);
SELECT sqlstate_of($$SELECT to_int_array('[2**40]')$$);
SELECT sqlstate_of($$SELECT to_int_array('[[[[[[[1]]]]]]]')$$);
SELECT sqlstate_of($$SELECT to_int_array('["x"]')$$);
SELECT to_int_array('[[1, 2], [3]]');
CREATE FUNCTION text_matrix() RETURNS text[] LANGUAGE plpywasm AS $$ return [["a", "b"], ["c", None]] $$;
SELECT text_matrix(), array_dims(text_matrix());
-- As in PL/Python, any sequence is an array, but only its lists are inner dimensions: a tuple or
-- another sequence inside it is an element.
CREATE FUNCTION as_text_array(v text) RETURNS text[] LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT as_text_array('[("a", "b"), ("c", "d")]'), as_text_array('(["a", "b"], ["c", "d"])'), as_text_array('[range(2)]');
SELECT sqlstate_of($$SELECT to_int_array('[(1, 2)]')$$);
SELECT sqlstate_of($$SELECT to_int_array('[[1, 2], (3, 4)]')$$);

-- Composite values are dicts keyed by attribute name; results may be dicts, sequences or objects.
CREATE TYPE pair AS (name text, value int);
CREATE TABLE items (id int, label text, tags text[], price numeric);
INSERT INTO items VALUES (1, 'one', '{a,b}', 1.5), (2, NULL, NULL, NULL);
SELECT py_repr(ROW('x', 1)::pair), py_repr(i) FROM items AS i ORDER BY id;
CREATE FUNCTION label_of(item items) RETURNS text LANGUAGE plpywasm AS $$ return "%s:%s:%s" % (item["id"], item["label"], item["tags"]) $$;
SELECT label_of(i) FROM items AS i ORDER BY id;
CREATE FUNCTION make_pair(kind text) RETURNS pair LANGUAGE plpywasm AS $$
class Pair:
    name = "object"
    value = 3
return {"dict": {"name": "dict", "value": 1, "extra": "ignored"}, "tuple": ("tuple", 2), "list": ["list", 4],
        "object": Pair(), "none": None, "text": "(text,5)", "null_value": {"name": "n", "value": None}}[kind]
$$;
SELECT k, make_pair(k), (make_pair(k)).value FROM unnest(ARRAY['dict', 'tuple', 'list', 'object', 'none', 'text', 'null_value']) AS k;
CREATE FUNCTION broken_pair(kind text) RETURNS pair LANGUAGE plpywasm AS $$
return {"missing": {"name": "x"}, "short": ("x",), "attr": object(), "badint": {"name": "x", "value": "y"}}[kind]
$$;
SELECT sqlstate_of($$SELECT broken_pair('missing')$$);
SELECT sqlstate_of($$SELECT broken_pair('short')$$);
SELECT sqlstate_of($$SELECT broken_pair('attr')$$);
SELECT sqlstate_of($$SELECT broken_pair('badint')$$);
SELECT broken_pair('missing');
CREATE FUNCTION id_pair(p pair) RETURNS pair LANGUAGE plpywasm AS $$ return p $$;
SELECT id_pair(ROW('a', 1)), id_pair(ROW(NULL, NULL)), id_pair(NULL) IS NULL AS null_row;
-- Composites nested in arrays and arrays in composites.
CREATE TYPE bag AS (label text, pairs pair[], grid int[]);
CREATE FUNCTION id_bag(b bag) RETURNS bag LANGUAGE plpywasm AS $$ return b $$;
SELECT id_bag(ROW('b', ARRAY[ROW('x', 1)::pair, ROW('y', NULL)::pair, NULL], '{{1,2},{3,4}}'));
SELECT py_repr(ROW('b', ARRAY[ROW('x', 1)::pair], '{{1}}')::bag);
CREATE FUNCTION make_pairs() RETURNS pair[] LANGUAGE plpywasm AS $$ return [("a", 1), {"name": "b", "value": 2}, None] $$;
SELECT make_pairs();
CREATE FUNCTION make_pairs_from(v text) RETURNS pair[] LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT make_pairs_from('(("a", 1), ("b", 2))'), make_pairs_from('[[("a", 1)], [("b", 2)]]'), make_pairs_from('(("a", 1),)');
-- A table's row type follows ALTER TABLE.
CREATE TABLE evolving (a int);
INSERT INTO evolving VALUES (1);
CREATE FUNCTION keys_of(r evolving) RETURNS text LANGUAGE plpywasm AS $$ return ",".join(sorted(r)) $$;
SELECT keys_of(e) FROM evolving AS e;
ALTER TABLE evolving ADD COLUMN b text;
SELECT keys_of(e) FROM evolving AS e;
ALTER TABLE evolving DROP COLUMN a;
SELECT keys_of(e) FROM evolving AS e;
-- record arguments take their layout from the value.
CREATE FUNCTION record_keys(r record) RETURNS text LANGUAGE plpywasm AS $$ return repr(r) $$;
SELECT record_keys(ROW(1, 'a')), record_keys(t) FROM (SELECT 1 AS x, 'y' AS z) AS t;

-- Domains over composites and arrays are checked on return.
CREATE DOMAIN short_list AS int[] CHECK (cardinality(VALUE) <= 2);
CREATE FUNCTION to_short_list(n int) RETURNS short_list LANGUAGE plpywasm AS $$ return list(range(n)) $$;
SELECT to_short_list(2);
SELECT sqlstate_of($$SELECT to_short_list(3)$$);

-- Set-returning functions take any iterable; a generator is read lazily, row by row.
CREATE FUNCTION upto(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$ return range(1, n + 1) $$;
SELECT * FROM upto(3);
SELECT upto(2);
SELECT count(*) FROM upto(0);
CREATE FUNCTION endless() RETURNS SETOF bigint LANGUAGE plpywasm AS $$
n = 0
while True:
    n += 1
    yield n
$$;
SELECT endless() LIMIT 5;
SELECT sum(x) FROM (SELECT endless() AS x LIMIT 1000) AS t;
-- A generator the query stops reading is closed (its `finally` runs) on the role's next call.
CREATE FUNCTION watched() RETURNS SETOF int LANGUAGE plpywasm AS $$
GD["closed"] = False
try:
    while True:
        yield 1
finally:
    GD["closed"] = True
$$;
CREATE FUNCTION watched_closed() RETURNS bool LANGUAGE plpywasm AS $$ return GD.get("closed") $$;
SELECT watched() LIMIT 3;
SELECT watched_closed();
CREATE FUNCTION shapes_of_sets(kind text) RETURNS SETOF text LANGUAGE plpywasm AS $$
return {"list": ["a", "b"], "tuple": ("c",), "iter": iter(["d"]), "gen": (s for s in "ef"), "str": "gh", "dict": {"k": 1}, "none": None, "int": 5}[kind]
$$;
SELECT k, array(SELECT shapes_of_sets(k)) FROM unnest(ARRAY['list', 'tuple', 'iter', 'gen', 'str', 'dict']) AS k;
SELECT sqlstate_of($$SELECT * FROM shapes_of_sets('int')$$);
SELECT sqlstate_of($$SELECT * FROM shapes_of_sets('none')$$);
CREATE FUNCTION failing_set() RETURNS SETOF int LANGUAGE plpywasm AS $$
yield 1
raise ValueError("row two")
$$;
SELECT * FROM failing_set();
CREATE FUNCTION failing_set_fields() RETURNS SETOF int LANGUAGE plpywasm AS $$
yield 1
plpy.error("boom", detail="its detail", hint="its hint", sqlstate="P0123")
$$;
SELECT * FROM failing_set_fields();
CREATE FUNCTION bad_row_set() RETURNS SETOF int LANGUAGE plpywasm AS $$ return [1, "x"] $$;
SELECT sqlstate_of($$SELECT * FROM bad_row_set()$$);
-- Large rows, in memory the interpreter grew for them, in every way a set's rows come out.
CREATE FUNCTION large_rows(n int, kind text) RETURNS SETOF text LANGUAGE plpywasm AS $$
rows = ["x" * n, "y", "z" * (2 * n)]
return rows if kind == "list" else (row for row in rows)
$$;
SELECT kind, array(SELECT length(r) FROM large_rows(300000, kind) AS r) AS from_clause, array(SELECT length(large_rows(300000, kind))) AS select_list
FROM unnest(ARRAY['list', 'gen']) AS kind;
CREATE FUNCTION large_pairs(n int) RETURNS TABLE (a text, b int[]) LANGUAGE plpywasm AS $$
for i in range(3):
    yield ("q" * n * (i + 1), list(range(n // 10)))
$$;
SELECT length(a), cardinality(b) FROM large_pairs(200000);
-- The same functions work after those errors, and after a LIMIT left a generator open.
SELECT * FROM upto(2);
SELECT endless() LIMIT 2;
-- Rows of a sequence already made (list, tuple, range, query result) are read ahead, in
-- batches: every size around a batch's comes out whole, and a row that cannot be converted is an
-- error only if the query reads that far, as when they come one at a time.
CREATE FUNCTION listed(n int) RETURNS SETOF int LANGUAGE plpywasm AS $$ return list(range(n)) $$;
SELECT n, (SELECT count(*) FROM listed(n)) AS rows, (SELECT sum(x) FROM listed(n) AS x) = n::bigint * (n - 1) / 2 AS sums
FROM unnest(ARRAY[0, 1, 511, 512, 513, 1024, 1025, 100000]) AS n;
SELECT listed(10) LIMIT 3;
CREATE FUNCTION bad_later(n int, bad int) RETURNS TABLE (a int, b text) LANGUAGE plpywasm AS $$
return tuple((i, str(i)) if i != bad else (i,) for i in range(n))
$$;
SELECT (bad_later(1000, 700)).a LIMIT 3;
SELECT sum(a) FROM (SELECT (bad_later(1000, 700)).a LIMIT 700) AS t;
SELECT sqlstate_of($$SELECT sum(a) FROM (SELECT (bad_later(1000, 700)).a LIMIT 701) AS t$$);
SELECT sqlstate_of($$SELECT count(*) FROM bad_later(1000, 0)$$);
-- Rows whose conversion runs the user's code (here __str__) are not read ahead.
CREATE FUNCTION noisy_rows() RETURNS SETOF text LANGUAGE plpywasm AS $$
class Loud:
    def __init__(self, i):
        self.i = i
    def __str__(self):
        plpy.notice("converting %d" % self.i)
        return "loud %d" % self.i
return [1, 2, Loud(3), 4, Loud(5), 6]
$$;
SELECT noisy_rows() LIMIT 2;
SELECT noisy_rows() LIMIT 4;
-- A generator in FROM is read ahead too: the executor reads the whole set before it uses a row,
-- so nothing can tell (LIMIT does not stop it early there, as in PL/Python), while in the select
-- list its rows are still made one per row asked for.
CREATE FUNCTION counted(n int, fail_at int) RETURNS SETOF text LANGUAGE plpywasm AS $$
class Loud:
    def __str__(self):
        return "loud"
GD["made"] = 0
try:
    for i in range(n):
        if i == fail_at:
            raise ValueError("row %d" % i)
        GD["made"] += 1
        yield Loud() if i % 100 == 0 else str(i)
finally:
    GD["counted_closed"] = GD.get("counted_closed", 0) + 1
$$;
CREATE FUNCTION made_and_closed() RETURNS text LANGUAGE plpywasm AS $$ return "%s %s" % (GD["made"], GD.pop("counted_closed", 0)) $$;
SELECT count(*), count(*) FILTER (WHERE x = 'loud') AS loud, max(x::text) FILTER (WHERE x <> 'loud') FROM counted(2000, -1) AS x;
SELECT made_and_closed();
SELECT * FROM counted(2000, -1) LIMIT 2;
SELECT made_and_closed();
SELECT counted(2000, -1) LIMIT 2;
SELECT made_and_closed();
SELECT count(*) FROM counted(2000, 1500);
SELECT made_and_closed();
-- So are rows that cross as nodes (here with an array), in batches of their own size.
CREATE FUNCTION array_rows(n int, bad int) RETURNS TABLE (a int[], b text) LANGUAGE plpywasm AS $$
for i in range(n):
    yield ([1, "x"] if i == bad else [i, -i], str(i))
$$;
SELECT n, (SELECT count(*) FROM array_rows(n, -1)) AS rows, (SELECT sum(a[2]) FROM array_rows(n, -1)) AS sums
FROM unnest(ARRAY[0, 1, 127, 128, 129, 1000]) AS n;
SELECT * FROM array_rows(1000, -1) LIMIT 2;
SELECT sqlstate_of($$SELECT count(*) FROM array_rows(1000, 300)$$);
-- A generator reads its own call's `args` whenever it resumes, though another call of the same
-- function started in between (two in one select list, or one nested in it).
CREATE FUNCTION counter(start int, n int) RETURNS SETOF text LANGUAGE plpywasm AS $$
for i in range(n):
    if args[0] == 1 and i == 1:
        plpy.execute("SELECT * FROM counter(7, 1)")
    yield "%d:%d" % (args[0], start + i)
$$;
SELECT counter(1, 3), counter(100, 2);
-- Also for a polymorphic function, whose calls of other types run on copies of it.
CREATE FUNCTION poly_counter(x anyelement) RETURNS SETOF text LANGUAGE plpywasm AS $$
yield repr(args)
if x == 1:
    plpy.execute("SELECT poly_counter(2) LIMIT 1")
yield repr(args)
$$;
SELECT poly_counter(1), poly_counter('a'::text);

-- A row read ahead is the row as it was yielded, though the generator changes it after.
CREATE FUNCTION reused_row(n int) RETURNS TABLE (a int[], b text[]) LANGUAGE plpywasm AS $$
ints, texts = [0, 0], ["é", None]
for i in range(n):
    ints[0] = i
    texts[1] = str(i)
    yield ints, texts
$$;
SELECT * FROM reused_row(3);
CREATE FUNCTION rows_of_query() RETURNS TABLE (i int, t text) LANGUAGE plpywasm AS $$
return plpy.execute("SELECT i, i::text AS t FROM generate_series(1, 2000) AS i")
$$;
SELECT count(*), sum(i), max(t) FROM rows_of_query();
-- A row's values cross as they are where their types are the columns' own, and are converted
-- where not; either way the row is the same.
CREATE FUNCTION mixed_rows() RETURNS TABLE (a int, b text, c float8) LANGUAGE plpywasm AS $$
return [(1, "x", 0.5), [2, "y", 1.5], (3, None, 2), (4, 4, 7), {"a": 5, "b": "z", "c": 1e3}, (6, "w", 1), None]
$$;
SELECT * FROM mixed_rows();
-- A set-returning function in a lateral join, re-run for each outer row.
SELECT i, u FROM generate_series(1, 3) AS i, LATERAL upto(i) AS u;
CREATE FUNCTION pairs(n int) RETURNS SETOF pair LANGUAGE plpywasm AS $$
for i in range(n):
    yield {"name": "p%d" % i, "value": i}
$$;
SELECT * FROM pairs(3);
CREATE FUNCTION table_rows(n int) RETURNS TABLE (a int, b text, c float8) LANGUAGE plpywasm AS $$
for i in range(n):
    yield (i, "x" * i if i < 5 else str(i), i / 2)
$$;
SELECT * FROM table_rows(3);
SELECT count(*), sum(a) FROM table_rows(100000);
CREATE FUNCTION one_column_table() RETURNS TABLE (x text) LANGUAGE plpywasm AS $$ return ["a", "b"] $$;
SELECT * FROM one_column_table();
CREATE FUNCTION setof_arrays() RETURNS SETOF int[] LANGUAGE plpywasm AS $$ return [[1, 2], [], None] $$;
SELECT * FROM setof_arrays();

-- OUT and INOUT parameters: a tuple, a list, a dict or an object.
CREATE FUNCTION split_name(full_name text, OUT first text, OUT last text) LANGUAGE plpywasm AS $$ return full_name.split(" ", 1) $$;
SELECT * FROM split_name('Ada Lovelace');
CREATE FUNCTION stats(VARIADIC xs float8[], OUT n int, OUT mean float8) LANGUAGE plpywasm AS $$ return {"n": len(xs), "mean": sum(xs) / len(xs)} $$;
SELECT * FROM stats(1, 2, 3, 6);
CREATE FUNCTION bump(INOUT counter int, OUT doubled int) LANGUAGE plpywasm AS $$ return (counter + 1, counter * 2) $$;
SELECT * FROM bump(20);
CREATE FUNCTION single_out(OUT only_one int) LANGUAGE plpywasm AS $$ return 7 $$;
SELECT single_out();
CREATE PROCEDURE proc_inout(INOUT a int, INOUT b text) LANGUAGE plpywasm AS $$ return (a * 2, b.upper()) $$;
CALL proc_inout(21, 'x');

-- RETURNS record takes its columns from the call site.
CREATE FUNCTION any_record(kind text) RETURNS record LANGUAGE plpywasm AS $$
return {"pair": ("p", 1), "triple": {"x": 1, "y": "two", "z": 3.0}}[kind]
$$;
SELECT * FROM any_record('pair') AS (name text, value int);
SELECT * FROM any_record('triple') AS (x int, y text, z float8);
SELECT * FROM any_record('pair') AS (name text, value int);
SELECT sqlstate_of($$SELECT any_record('pair')$$);
CREATE FUNCTION records(n int) RETURNS SETOF record LANGUAGE plpywasm AS $$ return [(i, i * i) for i in range(n)] $$;
SELECT * FROM records(3) AS (i int, sq int);

-- Polymorphic results follow each call's argument types.
CREATE FUNCTION first_of(v anyarray) RETURNS anyelement LANGUAGE plpywasm AS $$ return v[0] if v else None $$;
SELECT first_of(ARRAY[1, 2]), first_of(ARRAY['a', 'b']), first_of(ARRAY[1.5]), first_of(ARRAY[ROW('q', 9)::pair]), first_of('{}'::int[]);
CREATE FUNCTION wrap(v anycompatible, w anycompatible) RETURNS anycompatiblearray LANGUAGE plpywasm AS $$ return [v, w] $$;
SELECT wrap(1, 2.5), wrap('a'::text, 'b');
RESET ROLE;
