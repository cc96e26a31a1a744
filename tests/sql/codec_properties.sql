-- Property tests of the value codec, host → guest → host: thousands of random values, edge values
-- included, make the round trip through an identity function unchanged. Seeded: the same every run.
\set VERBOSITY default
SET ROLE alice;
SELECT setseed(0.4242);
CREATE FUNCTION rt(v anyelement) RETURNS anyelement LANGUAGE plpywasm AS $$ return v $$;

-- Scalars generated in SQL.
SELECT 'int8' AS t, count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v) AS changed, count(*) AS n
FROM (SELECT (random() * 2 - 1) * 9.2e18 AS r FROM generate_series(1, 3000)) AS s, LATERAL (SELECT r::int8 AS v) AS x
UNION ALL
SELECT 'float8', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT (random() - 0.5) * 10 ^ (floor(random() * 600) - 300) AS v FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'numeric', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT round(((random() - 0.5) * 10 ^ (floor(random() * 60) - 30))::numeric, (floor(random() * 40))::int) AS v FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'text', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT string_agg(chr((1 + floor(random() * (CASE WHEN random() < 0.5 THEN 127 ELSE 55000 END)))::int), '') AS v
      FROM generate_series(1, 3000) AS g, generate_series(1, (g % 40)) AS c GROUP BY g) AS s
UNION ALL
SELECT 'bytea', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT decode(string_agg(lpad(to_hex(floor(random() * 256)::int), 2, '0'), ''), 'hex') AS v
      FROM generate_series(1, 3000) AS g, generate_series(1, (g % 50)) AS c GROUP BY g) AS s
UNION ALL
SELECT 'date', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT ('4713-01-01 BC'::date + floor(random() * 5000000 * 365)::int) AS v FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'timestamptz', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT to_timestamp((random() - 0.5) * 4e11) + make_interval(secs => random()) AS v FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'interval', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v OR rt(v)::text <> v::text), count(*)
FROM (SELECT make_interval(months => (CASE WHEN random() < 0.3 THEN floor(random() * 100)::int ELSE 0 END),
                           days => floor((random() - 0.5) * 1e6)::int, secs => (random() - 0.5) * 1e7) AS v
      FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'uuid', count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT md5(random()::text)::uuid AS v FROM generate_series(1, 3000)) AS s;

-- Timestamps reach Python as their calendar fields (a timestamptz's as the session's zone shows
-- them): PostgreSQL's own, at any instant of years 2 to 9998, before time zones too.
CREATE FUNCTION py_fields(t timestamp) RETURNS text LANGUAGE plpywasm AS $$
return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)
$$;
CREATE FUNCTION py_fields(t timestamptz) RETURNS text LANGUAGE plpywasm AS $$
return "%04d-%02d-%02d %02d:%02d:%02d.%06d %d" % (
    t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, t.utcoffset().total_seconds())
$$;
SET TimeZone = 'America/New_York';
SELECT 'timestamp' AS t, count(*) FILTER (WHERE py_fields(v) <> to_char(v, 'YYYY-MM-DD HH24:MI:SS.US')) AS differ,
       count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v) AS changed, count(*) AS n
FROM (SELECT '0002-01-01'::timestamp + random() * interval '3651692 days' AS v FROM generate_series(1, 3000)) AS s
UNION ALL
SELECT 'timestamptz', count(*) FILTER (WHERE py_fields(v) <> to_char(v, 'YYYY-MM-DD HH24:MI:SS.US') || ' ' || extract(timezone FROM v)),
       count(*) FILTER (WHERE rt(v) IS DISTINCT FROM v), count(*)
FROM (SELECT '0002-01-01'::timestamptz + random() * interval '3651692 days' AS v FROM generate_series(1, 3000)) AS s;
SELECT py_fields('0001-01-01 00:00'::timestamp), py_fields('9999-12-31 23:59:59.999999'::timestamp),
       py_fields('2000-02-29 12:00'::timestamp), py_fields('1900-03-01 00:00'::timestamp),
       py_fields('2024-03-10 03:00:00.5'::timestamptz), py_fields('1850-06-01 12:00'::timestamptz);
RESET TimeZone;

-- Nested values generated in Python, then sent back and forth: random JSON documents (deep,
-- unicode, big ints, exact decimals), random multi-dimensional arrays with NULLs, random rows.
CREATE FUNCTION random_docs(seed int, n int) RETURNS SETOF jsonb LANGUAGE plpywasm AS $$
import random, decimal
rnd = random.Random(seed)
def text():
    return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0xA0, 0xD7FF), rnd.randrange(0xE000, 0x10FFFF)]))
                   for _ in range(rnd.randrange(8)))
def value(depth):
    kind = rnd.randrange(9 if depth < 12 else 6)
    if kind == 0: return None
    if kind == 1: return rnd.random() < 0.5
    if kind == 2: return rnd.randrange(-10**rnd.randrange(1, 40), 10**rnd.randrange(1, 40))
    if kind == 3: return rnd.uniform(-1e6, 1e6)
    if kind == 4: return decimal.Decimal(rnd.randrange(-10**30, 10**30)).scaleb(-rnd.randrange(40))
    if kind == 5: return text()
    if kind in (6, 7): return [value(depth + 1) for _ in range(rnd.randrange(5))]
    return {text(): value(depth + 1) for _ in range(rnd.randrange(5))}
for _ in range(n):
    yield value(0)
$$;
SELECT count(*) FILTER (WHERE rt(d) IS DISTINCT FROM d) AS changed, count(*) AS n FROM random_docs(7, 2000) AS d;
CREATE FUNCTION random_arrays(seed int, n int) RETURNS SETOF int8[] LANGUAGE plpywasm AS $$
import random
rnd = random.Random(seed)
for _ in range(n):
    dims = [rnd.randrange(0 if d == 0 else 1, 4) for d in range(rnd.randrange(1, 5))]
    def build(level):
        if level == len(dims):
            return None if rnd.random() < 0.1 else rnd.randrange(-2**63, 2**63)
        return [build(level + 1) for _ in range(dims[level])]
    yield build(0)
$$;
SELECT count(*) FILTER (WHERE rt(a) IS DISTINCT FROM a) AS changed, count(*) AS n FROM random_arrays(11, 2000) AS a;
CREATE TYPE everything AS (i int, f float8, n numeric, t text, b bytea, d date, ts timestamptz, iv interval, j jsonb, u uuid, a text[]);
CREATE FUNCTION random_rows(seed int, n int) RETURNS SETOF everything LANGUAGE plpywasm AS $$
import random, decimal, datetime, uuid
rnd = random.Random(seed)
def maybe(v):
    return None if rnd.random() < 0.15 else v
for _ in range(n):
    yield {
        "i": maybe(rnd.randrange(-2**31, 2**31)),
        "f": maybe(rnd.uniform(-1e300, 1e300)),
        "n": maybe(decimal.Decimal(rnd.randrange(-10**20, 10**20)).scaleb(-rnd.randrange(10))),
        "t": maybe("".join(chr(rnd.randrange(1, 0xD7FF)) for _ in range(rnd.randrange(10)))),
        "b": maybe(bytes(rnd.randrange(256) for _ in range(rnd.randrange(10)))),
        "d": maybe(datetime.date.fromordinal(rnd.randrange(1, 3652059))),
        "ts": maybe(datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=rnd.randrange(-6 * 10**16, 2 * 10**17))),
        "iv": maybe(datetime.timedelta(microseconds=rnd.randrange(-10**15, 10**15))),
        "j": maybe({"k": [rnd.random(), rnd.randrange(10**20)]}),
        "u": maybe(uuid.UUID(int=rnd.getrandbits(128))),
        "a": maybe([maybe(str(rnd.random())) for _ in range(rnd.randrange(4))]),
    }
$$;
SELECT count(*) FILTER (WHERE rt(r) IS DISTINCT FROM r) AS changed, count(*) AS n FROM random_rows(13, 2000) AS r;
-- Deeply nested JSON and arrays of the maximum dimensions cross too.
SELECT rt(v) = v AS deep_json FROM (SELECT (repeat('[', 500) || '1' || repeat(']', 500))::jsonb AS v) AS s;
SELECT rt(v) = v AS six_dims FROM (SELECT '{{{{{{1,2},{3,4}}}}}}'::int[] AS v) AS s;
RESET ROLE;
