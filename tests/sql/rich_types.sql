-- Rich Python values: numeric, bytea, dates and times, intervals, json, uuid, network addresses,
-- and every other type through its text form. Each in and out, with NULLs, edges and errors.
\set VERBOSITY default
SET ROLE alice;
SET TimeZone = 'Europe/Paris';
CREATE FUNCTION py_repr(v anyelement) RETURNS text LANGUAGE plpywasm AS $$ return type(v).__name__ + ": " + repr(v) $$;
CREATE FUNCTION id(v anyelement) RETURNS anyelement LANGUAGE plpywasm AS $$ return v $$;

-- numeric ⇄ decimal.Decimal, exact, NaN and ±Infinity kept.
SELECT py_repr(1.50::numeric), py_repr('NaN'::numeric), py_repr('Infinity'::numeric), py_repr('-Infinity'::numeric);
SELECT v, id(v) = v OR (v = 'NaN' AND id(v) = 'NaN') AS same
FROM unnest(ARRAY[0, -0.000001, 123456789012345678901234567890.123456789, 1e-100, 'NaN', 'Infinity', '-Infinity']::numeric[]) AS v;
SELECT id(('9' || repeat('0', 10000))::numeric) = ('9' || repeat('0', 10000))::numeric AS huge_numeric;
CREATE FUNCTION to_numeric(v text) RETURNS numeric LANGUAGE plpywasm AS $$
import decimal
return eval(v)
$$;
SELECT to_numeric('1'), to_numeric('2.5'), to_numeric('decimal.Decimal("1.10")'), to_numeric('"3.25"'), to_numeric('10**30');
SELECT to_numeric('float("nan")'), to_numeric('float("inf")'), to_numeric('decimal.Decimal("-Infinity")'), to_numeric('1e300') = 1e300 AS big_float;
SELECT sqlstate_of($$SELECT to_numeric('"abc"')$$);
CREATE FUNCTION decimal_math(a numeric, b numeric) RETURNS numeric LANGUAGE plpywasm AS $$ return a * b + 1 $$;
SELECT decimal_math(0.1, 3);

-- bytea ⇄ bytes, NUL bytes included; bytes-like objects accepted on return.
SELECT py_repr('\x00ff41'::bytea), py_repr(''::bytea);
SELECT id('\x00'::bytea) = '\x00'::bytea AS nul, id(decode(repeat('00ff', 50000), 'hex')) = decode(repeat('00ff', 50000), 'hex') AS long;
CREATE FUNCTION to_bytea(v text) RETURNS bytea LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT to_bytea('b"ab\x00c"'), to_bytea('bytearray(b"xy")'), to_bytea('memoryview(b"mv")'), to_bytea($q$'\\x0102'$q$);
SELECT sqlstate_of($$SELECT to_bytea('5')$$);
-- As PL/Python's PyObject_Bytes: __bytes__, or an iterable of ints in range(256).
SELECT to_bytea('[1, 2, 255]'), to_bytea('(i for i in range(3))'), to_bytea('type("B", (), {"__bytes__": lambda s: b"zz"})()');
SELECT sqlstate_of($$SELECT to_bytea('[256]')$$), sqlstate_of($$SELECT to_bytea('1.5')$$);

-- Dates and times as datetime objects; timestamptz aware, in the session's time zone.
SELECT py_repr('2024-02-29'::date), py_repr('0001-01-01'::date), py_repr('9999-12-31'::date);
SELECT py_repr('13:14:15.123456'::time), py_repr('23:59:59.999999'::time), py_repr('13:14:15+05:30'::timetz);
SELECT py_repr('2024-02-29 13:14:15.5'::timestamp), py_repr('2024-07-01 12:00:00+00'::timestamptz), py_repr('2024-01-01 12:00:00+00'::timestamptz);
SET TimeZone = 'America/New_York';
SELECT py_repr('2024-07-01 12:00:00+00'::timestamptz);
SET TimeZone = 'Europe/Paris';
-- Returned: a date, a naive datetime for timestamp, an aware one for timestamptz keep their value
-- exactly; any other object is read from its str() (a naive datetime for timestamptz in the
-- session's time zone, a datetime for a date by its date), as PL/Python reads everything.
CREATE TYPE instants AS (d date, ts timestamp, tstz timestamptz, ts0 timestamptz(0));
CREATE FUNCTION make_instants(kind text) RETURNS SETOF instants LANGUAGE plpywasm AS $$
import datetime as dt
tz = dt.timezone(dt.timedelta(hours=-3, minutes=-30, seconds=-15))
if kind == "exact":
    t = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tz)
    return [(t.date(), t.replace(tzinfo=None), t, t),
            (dt.date(1, 1, 1), dt.datetime(1, 1, 1), dt.datetime(1, 1, 1, 12, tzinfo=dt.timezone.utc), None),
            (dt.date(9999, 12, 31), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(9999, 12, 31, 12, tzinfo=tz), None)]
naive = dt.datetime(2024, 7, 1, 12, 30)
return [(naive, naive.replace(tzinfo=tz), naive, "2024-07-01 12:00:00.6+02"), ("2024-01-01", "epoch", "infinity", "today")]
$$;
SELECT * FROM make_instants('exact');
SELECT * FROM make_instants('text') LIMIT 1;
SELECT d, ts, tstz FROM make_instants('text') OFFSET 1;
-- An aware datetime's offset may hold microseconds, or depend on the datetime; one whose zone
-- gives no offset is naive (read in the session's zone, Paris here).
CREATE FUNCTION odd_zones() RETURNS TABLE (fixed timestamptz, custom timestamptz, no_offset timestamptz) LANGUAGE plpywasm AS $$
import datetime as dt
class Custom(dt.tzinfo):
    def utcoffset(self, d):
        return dt.timedelta(hours=-3 if d.month < 6 else 2)
    def dst(self, d):
        return None
class NoOffset(dt.tzinfo):
    def utcoffset(self, d):
        return None
fixed = dt.timezone(dt.timedelta(hours=5, microseconds=250))
for month in (5, 7):
    t = dt.datetime(2024, month, 6, 7, 8, 9, 500)
    yield t.replace(tzinfo=fixed), t.replace(tzinfo=Custom()), t.replace(tzinfo=NoOffset())
$$;
SELECT fixed AT TIME ZONE 'UTC' AS fixed, custom AT TIME ZONE 'UTC' AS custom, no_offset AT TIME ZONE 'UTC' AS no_offset FROM odd_zones();
CREATE FUNCTION instants(n int) RETURNS SETOF timestamptz LANGUAGE plpywasm AS $$
import datetime as dt
for i in range(n):
    yield dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=i)
$$;
SELECT instants(2), (SELECT max(x) FROM instants(1000) x) AS whole;
CREATE DOMAIN recent AS timestamptz CHECK (VALUE > '2000-01-01');
CREATE FUNCTION old_instant() RETURNS recent LANGUAGE plpywasm AS $$
import datetime as dt
return dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc)
$$;
SELECT sqlstate_of($$SELECT old_instant()$$);
-- Values Python cannot hold cross as their PostgreSQL text, and come back unchanged.
SELECT py_repr('infinity'::date), py_repr('-infinity'::timestamp), py_repr('infinity'::timestamptz), py_repr('24:00:00'::time);
SELECT py_repr('0044-03-15 BC'::date), py_repr('10000-01-01'::timestamp), py_repr('294276-12-31 23:59:59'::timestamptz);
SELECT id(v) = v AS same FROM unnest(ARRAY['2024-02-29', 'infinity', '-infinity', '0044-03-15 BC', '5874897-12-31', '0001-01-01', '9999-12-31']::date[]) AS v;
SELECT id(v) = v AS same FROM unnest(ARRAY['2024-02-29 01:02:03.000004', 'infinity', '-infinity', '4713-01-01 BC', '294276-12-31 23:59:59.999999']::timestamp[]) AS v;
SELECT id(v) = v AS same FROM unnest(ARRAY['2024-03-31 01:59:59.999999+00', '2024-10-27 00:30:00+00', 'infinity', '0001-01-01 00:00:00+00']::timestamptz[]) AS v;
SELECT id(v) = v AS same FROM unnest(ARRAY['00:00', '24:00:00', '12:34:56.789']::time[]) AS v;
SELECT id(v)::text = v::text AS same FROM unnest(ARRAY['00:00+00', '24:00:00-15:59', '12:34:56.789+05:45']::timetz[]) AS v;
CREATE FUNCTION make_datetimes() RETURNS text[] LANGUAGE plpywasm AS $$
import datetime
zone = datetime.timezone(datetime.timedelta(hours=-3))
return [datetime.date(2020, 1, 31), datetime.datetime(2020, 1, 31, 8, 9, 10), datetime.datetime(2020, 1, 31, 8, 9, 10, tzinfo=zone),
        datetime.time(1, 2, 3, 4), datetime.time(1, 2, tzinfo=zone)]
$$;
SELECT make_datetimes();
CREATE FUNCTION aware(v timestamptz) RETURNS timestamptz LANGUAGE plpywasm AS $$
import datetime
return v.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
$$;
SELECT aware('2024-05-05 05:05:05+00') = '2024-05-05 05:05:05+00'::timestamptz AS same_instant;
CREATE FUNCTION naive_to_tz() RETURNS timestamptz LANGUAGE plpywasm AS $$
import datetime
return datetime.datetime(2024, 5, 5, 12, 0)
$$;
SELECT naive_to_tz();  -- a naive datetime is read in the session's time zone, as PostgreSQL reads text
CREATE FUNCTION bad_date() RETURNS date LANGUAGE plpywasm AS $$ return "not a date" $$;
SELECT sqlstate_of($$SELECT bad_date()$$);

-- interval ⇄ datetime.timedelta; an interval with months crosses as text, exactly.
SELECT py_repr('1 day 02:03:04.000005'::interval), py_repr('-00:00:01'::interval), py_repr('1 mon 2 days'::interval);
SELECT v, id(v) = v AS same, id(v)::text = v::text AS same_text
FROM unnest(ARRAY['0', '-00:00:01', '-1 day -00:00:01', '1 day -00:00:01', '-1 day +00:00:01', '25:00:00', '2 years 3 mons', '178000000 years', '999999999 days', '1000000000 days']::interval[]) AS v;
SELECT py_repr('1 day -00:00:01'::interval), py_repr('25:00:00'::interval);
CREATE FUNCTION to_interval(v text) RETURNS interval LANGUAGE plpywasm AS $$
import datetime
return eval(v)
$$;
SELECT to_interval('datetime.timedelta(days=1, hours=-1)'), to_interval('datetime.timedelta(microseconds=-1)'), to_interval('"3 weeks"');
-- A str subclass is text by its value, as in PL/Python: a `(str, Enum)` member's str() would name it.
CREATE TYPE feeling AS ENUM ('sad', 'happy');
CREATE FUNCTION str_enum(kind text) RETURNS SETOF text LANGUAGE plpywasm AS $$
import enum
class Mood(str, enum.Enum):
    HAPPY = "happy"
plan = plpy.prepare("SELECT $1::text AS t, $2::feeling AS m, $3::text[] AS a", ["text", "feeling", "text[]"])
yield Mood.HAPPY
yield repr(plan.execute([Mood.HAPPY, Mood.HAPPY, [Mood.HAPPY]])[0])
$$;
SELECT str_enum('x');
-- A subclass converts by what it holds, whatever attributes it shadows.
SELECT to_interval('type("Shadowed", (datetime.timedelta,), {"days": 2 ** 31, "seconds": "x"})(1, 5)');

-- json and jsonb ⇄ parsed Python objects; big ints and non-float numbers stay exact.
SELECT py_repr('{"a": [1, 2.5, null, true, "x"]}'::jsonb), py_repr('"str"'::json), py_repr('null'::jsonb), py_repr('[]'::json);
SELECT left(v::text, 40) AS v, id(v) = v AS same FROM unnest(ARRAY['{"a": {"b": [1, 2, {"c": null}]}}', '123456789012345678901234567890', '0.1000000000000000000001',
    '1e400', '[1.5, -0.0, 2.50]', '"ünïcödé ☃"', '{}', '[]', 'true', 'null']::jsonb[]) AS v;
SELECT id('{"b": 1,  "a": [1,2]}'::json)::text;
SELECT py_repr(E' \n{"a": [1.5]}\t'::json), py_repr(E'"x" '::json), py_repr(E'\r7'::json), py_repr(E'[ 0.1 ]'::json);
CREATE FUNCTION to_jsonb(v text) RETURNS jsonb LANGUAGE plpywasm AS $$
import decimal
return eval(v)
$$;
SELECT to_jsonb('{"k": [1, 2.5, None, True], 1: "int key"}'), to_jsonb('"just a string"'), to_jsonb('[decimal.Decimal("1.10"), 10**40]');
SELECT to_jsonb('None') IS NULL AS sql_null, to_jsonb('(1, 2)');
SELECT sqlstate_of($$SELECT to_jsonb('{1, 2}')$$);
SELECT sqlstate_of($$SELECT to_jsonb('float("nan")')$$);
SELECT sqlstate_of($$SELECT to_jsonb('object()')$$);
-- A ValueError or TypeError that the object's own code raises while it is encoded is that error,
-- not NaN's or an unserialisable object's.
CREATE FUNCTION checked_jsonb(error text) RETURNS jsonb LANGUAGE plpywasm AS $$
class Checked(dict):
    def items(self):
        raise {"value": ValueError, "type": TypeError}[error]("amount must be positive")
return Checked(amount=-1)
$$;
SELECT checked_jsonb('value');
SELECT checked_jsonb('type');
-- A value that contains itself, on the quick path and on the exact one (a Decimal in it); a value
-- repeated is no cycle.
SELECT sqlstate_of($$SELECT to_jsonb('(lambda l: (l.append(l), l)[1])([])')$$);
SELECT sqlstate_of($$SELECT to_jsonb('(lambda d: (d.update(me=[d]), d)[1])({"n": decimal.Decimal(1)})')$$);
SELECT to_jsonb('(lambda x: [x, x, {"y": x}])([decimal.Decimal("1.5")])');
CREATE FUNCTION json_sum(doc jsonb) RETURNS jsonb LANGUAGE plpywasm AS $$ return {"total": sum(doc["values"]), "n": len(doc["values"])} $$;
SELECT json_sum('{"values": [1, 2, 3.5]}');
-- A str holding a JSON object or array given for json or jsonb is JSON text, as PL/Python and
-- psycopg take a str, kept as written (`json.dumps(d)` is `d`); any other str is a JSON string, as
-- is such text PostgreSQL refuses. A JSON string read from PostgreSQL is a plpywasm.JsonString,
-- which stays one: identity round trips hold.
CREATE FUNCTION as_jsonb(v text) RETURNS jsonb LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION as_json(v text) RETURNS json LANGUAGE plpywasm AS $$ return v $$;
SELECT as_jsonb('{"a": [1, 2.50]}'), as_jsonb('42'), as_jsonb('"quoted"'), as_jsonb('plain words'), as_json(' {"b": 1,  "b": 2} ');
SELECT as_jsonb('NaN'), as_jsonb(repeat('[', 6000)) = pg_catalog.to_jsonb(repeat('[', 6000)) AS deep_string, as_json(E'tab\there'), as_jsonb(' {"unclosed": 1');
DO $$
doc = plpy.execute("""SELECT '{"id": "123", "ok": "true", "list": "[1]"}'::jsonb AS j""")[0]["j"]
plan = plpy.prepare("SELECT $1 AS id, $2 AS ok, $3 AS list", ["jsonb", "jsonb", "jsonb"])
plpy.notice(plan.execute([doc["id"], doc["ok"], doc["list"]])[0])
$$ LANGUAGE plpywasm;
CREATE FUNCTION json_id(j json) RETURNS json LANGUAGE plpywasm AS $$ return j $$;
SELECT json_id('"\ud800 lone"'), json_id('["\ud83d\ude00", "\udc00"]');
CREATE FUNCTION jsonb_id(j jsonb) RETURNS jsonb LANGUAGE plpywasm AS $$ return j $$;
-- A json or jsonb argument given back unchanged goes back as written, as PL/Python's text does (a
-- json's formatting and repeated keys, a jsonb number's scale); a changed one, as it is now.
SELECT json_id('{"a":1,  "a":2}')::text, json_id(' [1.50, true] ')::text, jsonb_id('2.50')::text, jsonb_id('{"p": 10.00}')::text;
CREATE FUNCTION jsonb_changed(j jsonb) RETURNS jsonb LANGUAGE plpywasm AS $$
j["p"] = True
return j
$$;
SELECT jsonb_changed('{"p": 1}'), jsonb_changed('{"p": 1.50}');
SELECT v, jsonb_id(v) = v AS same FROM unnest(ARRAY['"{\"a\": 1}"', '"42"', '"null"', '"plain"', '{"k": "[1]"}']::jsonb[]) AS v;
-- An element of an array of json or jsonb that is a JSON array stays one element: a
-- plpywasm.JsonArray, where a plain list is a dimension.
CREATE FUNCTION jsonb_array_id(v jsonb[]) RETURNS jsonb[] LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION json_array_id(v json[]) RETURNS json[] LANGUAGE plpywasm AS $$ return v $$;
SELECT jsonb_array_id(ARRAY['[1, 2]', '[3]', '{"a": [4]}', '5', '[]']::jsonb[]);
SELECT json_array_id('[0:1][1:2]={{"[1,2]",null},{"[]","[[3]]"}}'::json[])::text;
DO $$
from plpywasm import JsonArray
a = plpy.execute("""SELECT '{"[1, 2]",3}'::jsonb[] AS a""")[0]["a"]
plpy.notice(type(a[0]).__name__, a)
plan = plpy.prepare("SELECT $1::text AS t", ["jsonb[]"])
plpy.notice(plan.execute([a])[0]["t"], plan.execute([[[1, 2]]])[0]["t"], plan.execute([[JsonArray([1, 2])]])[0]["t"])
$$ LANGUAGE plpywasm;
DO $$
import json
j = plpy.execute("SELECT '\"42\"'::jsonb AS j")[0]["j"]
plan = plpy.prepare("SELECT $1 AS a, $2 AS b, $3 AS c", ["jsonb", "jsonb", "jsonb"])
plpy.notice(type(j).__name__, isinstance(j, str), plan.execute([j, json.dumps({"x": [1]}), "text"])[0])
$$ LANGUAGE plpywasm;

-- uuid ⇄ uuid.UUID, inet/cidr ⇄ ipaddress objects.
SELECT py_repr('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid), id('00000000-0000-0000-0000-000000000000'::uuid), id('ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid);
CREATE FUNCTION make_uuid() RETURNS uuid LANGUAGE plpywasm AS $$
import uuid
return uuid.UUID(int=42)
$$;
SELECT make_uuid();
SELECT py_repr('192.168.0.1'::inet), py_repr('192.168.0.1/24'::inet), py_repr('10.0.0.0/8'::cidr), py_repr('::1'::inet), py_repr('2001:db8::/32'::cidr);
SELECT id(v) = v AS same FROM unnest(ARRAY['192.168.0.1', '192.168.0.1/24', '::ffff:1.2.3.4', '2001:db8::1/64']::inet[]) AS v;
CREATE FUNCTION next_host(a inet) RETURNS inet LANGUAGE plpywasm AS $$ return a.ip + 1 $$;
SELECT next_host('10.1.2.3/16');

-- Ranges and multiranges: psycopg 3's Range and Multirange (from the guest's module plpywasm), their
-- bounds converted as values of the element type; str() of them is the literal PostgreSQL reads.
SELECT py_repr('[1,5)'::int4range), py_repr('[1,5]'::int4range), py_repr('empty'::int8range), py_repr('(,)'::int4range), py_repr('(3,)'::numrange);
SELECT py_repr('[1.50,2.25]'::numrange), py_repr('[2020-01-01,2020-02-01)'::daterange), py_repr('(,2020-01-01 10:00]'::tsrange);
SELECT py_repr('[2020-06-01 10:00+02,infinity)'::tstzrange), py_repr('{[1,3), [5,7)}'::int4multirange), py_repr('{}'::datemultirange);
SELECT py_repr(ARRAY['[1,2)'::int4range, NULL, 'empty']), py_repr(ROW('[1.5,2)'::numrange, '{[2020-01-01,2020-01-05)}'::datemultirange));
SELECT v, id(v) = v AS same FROM unnest(ARRAY['[1,5)', 'empty', '(,)', '[-2147483648,2147483647)']::int4range[]) AS v;
SELECT id('[2020-06-01 10:00+02,2021-01-01)'::tstzrange), id('{[1,3), [5,7)}'::int4multirange), id('{}'::nummultirange), id(ARRAY['[2020-01-01,2020-01-03]'::daterange]);
CREATE TYPE textrange AS RANGE (subtype = text);
SELECT py_repr(textrange('a b', 'z"\')), id(textrange('a b', 'z"\')) = textrange('a b', 'z"\') AS quoted,
       id(textrange('', 'a,)')) = textrange('', 'a,)') AS empty_bound;
-- A range over a composite type: its bounds are rows, dicts in Python, and a tuple or a dict in
-- column order makes one.
CREATE TYPE point2 AS (x int, label text);
CREATE TYPE point2range AS RANGE (subtype = point2);
SELECT py_repr(point2range(ROW(1, 'a b')::point2, ROW(2, NULL)::point2)),
       id(point2range(ROW(1, 'a "b", (c)')::point2, ROW(2, NULL)::point2)) = point2range(ROW(1, 'a "b", (c)')::point2, ROW(2, NULL)::point2) AS same;
CREATE FUNCTION make_point2range() RETURNS point2range LANGUAGE plpywasm AS $$
from plpywasm import Range
return Range((1, 'x\\y'), {"x": 2, "label": ""}, "[]")
$$;
SELECT make_point2range(), lower(make_point2range()) = ROW(1, 'x\y')::point2 AS lower_ok, upper(make_point2range()) = ROW(2, '')::point2 AS upper_ok;
-- Bounds whose str() is no literal of their type are written as its output function writes
-- them: an interval's time keeps its sign, bytes are hex, a list is an array.
CREATE TYPE intervalrange AS RANGE (subtype = interval);
CREATE TYPE bytearange AS RANGE (subtype = bytea);
CREATE TYPE intarrayrange AS RANGE (subtype = int4[]);
CREATE FUNCTION same_range(r anyelement) RETURNS text LANGUAGE plpywasm AS $$
return str(r)
$$;
CREATE FUNCTION range_id(r anyelement) RETURNS anyelement LANGUAGE plpywasm AS $$ return r $$;
SELECT range_id(v)::text, range_id(v) = v AS same,
       (lower(range_id(v)), upper(range_id(v)))::text = (lower(v), upper(v))::text AS same_bounds
FROM unnest(ARRAY['[-03:00:00,01:00:00)', '[-5 days -00:00:00.000001,1 day 02:03:04.5]', '(-1 days +21:00:00,)']::intervalrange[]) AS v;
SELECT range_id(bytearange('\x00', '\xff22282c')), range_id(intarrayrange('{1,2}', '{3,NULL}')),
       range_id('{"[-03:00:00,-02:00:00)"}'::intervalrange[]);
SELECT same_range(intarrayrange('{1,2}', '{3,4}')), same_range(bytearange('\x01', NULL));
CREATE TABLE ranged (id int, r intervalrange, b bytearange);
CREATE FUNCTION bump_id() RETURNS trigger LANGUAGE plpywasm AS $$
TD["new"]["id"] += 1
return "MODIFY"
$$;
CREATE TRIGGER bump_id BEFORE INSERT ON ranged FOR EACH ROW EXECUTE FUNCTION bump_id();
INSERT INTO ranged VALUES (1, '[-03:00:00,)', bytearange('\x00', '\xff'));
SELECT * FROM ranged;
DROP TABLE ranged;
CREATE FUNCTION make_range(v text) RETURNS int4range LANGUAGE plpywasm AS $$ from plpywasm import Range; return eval(v) $$;
SELECT make_range('Range(1, 5)'), make_range('Range(1, 5, "[]")'), make_range('Range(None, 3, "(]")'), make_range('Range()'),
       make_range('Range(empty=True)'), make_range('"[3,4]"');
SELECT sqlstate_of($$SELECT make_range('Range(5, 1)')$$), sqlstate_of($$SELECT make_range('Range("a", 1)')$$),
       sqlstate_of($$SELECT make_range('Range(1, 2, "<>")')$$), sqlstate_of($$SELECT make_range('"nonsense"')$$);
-- A multirange result takes any sequence of ranges or of their literals, as an array takes lists.
CREATE FUNCTION make_multirange(v text) RETURNS datemultirange LANGUAGE plpywasm AS $$
import datetime
from plpywasm import Multirange, Range
d = datetime.date
return eval(v)
$$;
SELECT make_multirange('Multirange([Range(d(2020, 1, 1), d(2020, 2, 1)), Range(d(2020, 1, 15), d(2020, 3, 1))])'),
       make_multirange('[Range(d(2021, 1, 1), None)]'), make_multirange('(Range(None, d(2000, 1, 1)), "[2001-01-01,2001-01-02]")'),
       make_multirange('[]'), make_multirange('"{[2020-01-01,2020-01-02)}"'), make_multirange('{Range(empty=True)}');
SELECT sqlstate_of($$SELECT make_multirange('[1, 2]')$$), sqlstate_of($$SELECT make_multirange('Range(d(2020, 1, 1), None)')$$);
CREATE FUNCTION multirange_fields() RETURNS TABLE (m int4multirange, ms int4multirange[]) LANGUAGE plpywasm AS $$
from plpywasm import Multirange, Range
return [([Range(1, 2), Range(5, 6)], [Multirange([Range(1, 2)]), "{}", None])]
$$;
SELECT * FROM multirange_fields();
CREATE FUNCTION range_api() RETURNS SETOF text LANGUAGE plpywasm AS $$
from plpywasm import Multirange, Range
r = plpy.execute("SELECT int4range(1, 10) AS r, '{[1,2), [4,8)}'::int4multirange AS m")[0]
yield repr(r)
yield repr((5 in r["r"], 10 in r["r"], 0 in Range(None, 1), 1 in Range(None, 1, "(]"), 1 in Range(empty=True)))
yield repr((r["r"].lower, r["r"].upper, r["r"].bounds, r["r"].lower_inc, r["r"].upper_inc, r["r"].lower_inf, r["r"].upper_inf))
import datetime
d = plpy.execute("SELECT '[2020-01-01,infinity)'::daterange AS a, '[-infinity,2020-01-01]'::daterange AS b")[0]
yield repr((datetime.date(2030, 1, 1) in d["a"], datetime.date(2019, 1, 1) in d["a"], datetime.date(2019, 1, 1) in d["b"], datetime.date(2021, 1, 1) in d["b"]))
d = plpy.execute("SELECT '[0044-03-15 BC,2020-01-01)'::daterange AS a, '[2020-01-01,10000-01-01)'::daterange AS b, tsrange('0044-03-15 BC', NULL) AS c")[0]
yield repr((datetime.date(1, 1, 1) in d["a"], datetime.date(2021, 1, 1) in d["a"], datetime.date(9999, 1, 1) in d["b"], datetime.datetime(1, 1, 1) in d["c"]))
yield repr(("infinity" in Range("a", "j"), "k" in Range("a", "j")))
d = plpy.execute("""SELECT '[4713-01-01 BC,2000-01-01)'::daterange AS a, '[0010-01-01 BC,0005-01-01 BC)'::daterange AS b,
    '[0100-01-01 BC,)'::daterange AS c, '[2000-01-01,)'::daterange AS e, '0001-01-01 BC'::date AS x, '0007-01-01 BC'::date AS y,
    '0200-01-01 BC'::date AS z, '20000-01-01'::date AS w, 'infinity'::date AS i""")[0]
yield repr((d["x"] in d["a"], d["y"] in d["b"], d["z"] in d["c"], d["w"] in d["e"], d["i"] in d["e"], d["i"] in d["a"]))
yield repr((Range(1, None, "[]").bounds, Range(empty=True).bounds, bool(Range(empty=True)), Range(empty=True).isempty))
yield repr((Range(1, 5) == Range(1, 5), len({Range(1, 5), Range(1, 5)}), Range(1, 5) == Range(1, 5, "[]"), Range(1, 5) == "[1,5)"))
yield repr(sorted([Range(3, 4), Range(empty=True), Range(1, 2), Range(None, 2), Range(1, None)]))
import copy, pickle
yield repr((pickle.loads(pickle.dumps(r["r"])) == r["r"], copy.copy(Range(empty=True)), copy.deepcopy(r["m"]) == r["m"]))
yield repr((r["m"] == [Range(1, 2), Range(4, 8)], isinstance(r["m"], list), str(Multirange([Range(1, 2), Range(empty=True)]))))
plan = plpy.prepare("SELECT $1 * $2 AS x, $3 AS y", ["int4range", "int4range", "datemultirange"])
yield repr(plan.execute([Range(1, 5), Range(3, None), Multirange()])[0])
try:
    r["r"].lower = 0
except AttributeError as e:
    yield "AttributeError: %s" % e
$$;
SELECT range_api();

-- Every other type crosses as its text form, and comes back through its input function.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
SELECT py_repr('happy'::mood), py_repr('$1.50'::money), py_repr('(1,2)'::point), py_repr('a'::"char");
SELECT id('happy'::mood), id('$1.50'::money), id('(1,2)'::point)::text, id('a'::"char"), id(42::oid), id(B'101'::bit(3));
CREATE FUNCTION bad_mood() RETURNS mood LANGUAGE plpywasm AS $$ return "furious" $$;
SELECT sqlstate_of($$SELECT bad_mood()$$);
RESET ROLE;
CREATE EXTENSION citext;
SET ROLE alice;
SELECT py_repr('MiXeD'::citext), id('MiXeD'::citext) = 'mixed' AS citext_ok;

-- The same Python values at any depth: in arrays and rows, as arguments of a fixed type or a
-- polymorphic one, and as a query's columns.
CREATE TYPE rich AS (n numeric, d date, t time, tz timetz, ts timestamp, tstz timestamptz,
                     i interval, u uuid, b bytea, j jsonb, a inet[], c cidr, m mood);
CREATE FUNCTION py_deep(v anyelement) RETURNS SETOF text LANGUAGE plpywasm AS $$
def deep(v, path):
    if type(v) is dict:
        for k, w in v.items():
            yield from deep(w, path + "." + k)
    elif type(v) is list:
        for i, w in enumerate(v):
            yield from deep(w, "%s[%d]" % (path, i))
    else:
        yield "%s: %s %r" % (path, type(v).__name__, v)
return deep(v, "v")
$$;
CREATE TEMP TABLE riches AS SELECT ROW(1.50, '2024-02-29', '23:59:59.5', '12:00+05:30', '1999-12-31 23:00',
    '2024-06-01 12:00+00', '2 days 03:00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff',
    '{"k": [1, 2.5, "x"]}', '{10.0.0.1/8,::1}', '192.168.0.0/16', 'ok')::rich AS r;
SELECT py_deep(r) FROM riches;
SELECT py_deep(ARRAY[NULL, r]) FROM riches;
SELECT py_deep(ARRAY[[1.5, NULL], ['NaN', '-Infinity']]::numeric[]);
SELECT py_deep(ARRAY['{"a": 1}', 'null']::jsonb[]);
SELECT py_deep(ARRAY['2024-01-01 00:00+00', '0001-01-01 00:00+00']::timestamptz[]);
SELECT py_deep(ARRAY['infinity', '2000-01-01']::date[]);
SELECT py_deep(ARRAY['\x01', '']::bytea[]);
SELECT py_deep(ARRAY['1 mon', '-1 day -00:00:00.000001']::interval[]);
CREATE FUNCTION rich_fields(r rich, n numeric, j json, u uuid[]) RETURNS text LANGUAGE plpywasm AS $$
return "%r %r %r %r" % (r["tstz"], n, j, u)
$$;
SELECT rich_fields(r, 2.25, '[1.5]', ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']::uuid[]) FROM riches;
CREATE FUNCTION rich_columns() RETURNS SETOF text LANGUAGE plpywasm AS $$
for row in plpy.execute("SELECT r, (r).n, (r).tstz, ARRAY[(r).d] AS ds, (r).m FROM riches"):
    for k, v in row.items():
        yield "%s: %s" % (k, type(v).__name__)
    yield repr(row["r"]["a"])
$$;
SELECT rich_columns();
DROP FUNCTION py_repr(anyelement), id(anyelement);
RESET ROLE;

-- int2vector and oidvector count from 0, as their input functions make them.
CREATE FUNCTION make_int2vector(v text) RETURNS int2vector LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION make_oidvector(v text) RETURNS oidvector LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT make_int2vector('[1, 2]') = '1 2'::int2vector AS same, (make_int2vector('[1, 2]'))[0] AS first,
       make_int2vector('[]') = ''::int2vector AS same_empty, (make_oidvector('[23, 25]'))[0]::regtype AS first_oid,
       make_oidvector('[23, 25]') = '23 25'::oidvector AS same_oids;
SELECT sqlstate_of($$SELECT make_int2vector('[[1], [2]]')$$), sqlstate_of($$SELECT make_oidvector('[1, None]')$$);
