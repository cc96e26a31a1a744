-- Scalar types in and out: binary types cross as numbers, every other type through its text I/O.
\set VERBOSITY default
SET ROLE alice;

CREATE FUNCTION py_type(v anyelement) RETURNS text LANGUAGE plpywasm AS $$ return type(v).__name__ + ":" + repr(v) $$;
SELECT py_type(true), py_type(1::int2), py_type(2::int4), py_type(3::int8);
SELECT py_type(1.5::float4), py_type(2.25::float8), py_type('x'::text), py_type('y'::varchar);
SELECT py_type('ab'::char(4)), py_type('n'::name), py_type(1.50::numeric), py_type('2024-01-02'::date);

-- Identity functions round-trip every value, edges included.
CREATE FUNCTION id_bool(v bool) RETURNS bool LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_int2(v int2) RETURNS int2 LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_int4(v int4) RETURNS int4 LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_int8(v int8) RETURNS int8 LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_float4(v float4) RETURNS float4 LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_float8(v float8) RETURNS float8 LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_text(v text) RETURNS text LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_varchar(v varchar) RETURNS varchar LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_bpchar(v char(5)) RETURNS char(5) LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION id_name(v name) RETURNS name LANGUAGE plpywasm AS $$ return v $$;
SELECT id_bool(true), id_bool(false), id_bool(NULL) IS NULL AS null_ok;
SELECT id_int2((-32768)::int2), id_int2(32767::int2), id_int4(-2147483648), id_int4(2147483647);
SELECT id_int8(-9223372036854775808), id_int8(9223372036854775807);
SELECT id_float4('NaN'), id_float4('Infinity'), id_float4('-Infinity'), id_float4(3.4e38), id_float4(1.17549435e-38);
SELECT id_float8('NaN'), id_float8('Infinity'), id_float8('-Infinity'), id_float8(1.7976931348623157e308), id_float8('-0'), id_float8(5e-324);
SELECT id_float8(0.1) = 0.1 AS exact, id_float4(0.1::float4) = 0.1::float4 AS exact4;
SELECT id_text(''), id_text('héllo ☃ 𝄞'), length(id_text(repeat('x', 100000)));
SELECT id_varchar('vc'), '[' || id_bpchar('ab') || ']', octet_length(id_bpchar('ab')), id_name('a_name');

-- Results convert as PL/Python converts them: truthiness for bool, ints range-checked, strings parsed.
CREATE FUNCTION to_bool(kind text) RETURNS bool LANGUAGE plpywasm AS $$
return {"empty_list": [], "list": [0], "zero": 0, "str": "false", "empty_str": "", "none": None}[kind]
$$;
SELECT to_bool('empty_list'), to_bool('list'), to_bool('zero'), to_bool('str'), to_bool('empty_str'), to_bool('none') IS NULL AS null_ok;
CREATE FUNCTION to_int4(v text) RETURNS int4 LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION to_int2(v text) RETURNS int2 LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION to_int8(v text) RETURNS int8 LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION to_float4(v text) RETURNS float4 LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION to_float8(v text) RETURNS float8 LANGUAGE plpywasm AS $$ return eval(v) $$;
CREATE FUNCTION to_text(v text) RETURNS text LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT to_int4('41 + 1'), to_int4('"42"'), to_int4('" 7 "'), to_int2('-32768'), to_int8('2**63 - 1');
SELECT to_float8('1'), to_float8('"2.5"'), to_float8('float("nan")'), to_float4('1e38'), to_float8('10**300');
SELECT to_text('123'), to_text('[1, "a", None]'), to_text('b"bytes"'), to_text('3.5');
SELECT sqlstate_of($$SELECT to_int4('2**40')$$);
SELECT sqlstate_of($$SELECT to_int4('-2**31 - 1')$$);
SELECT sqlstate_of($$SELECT to_int2('40000')$$);
SELECT sqlstate_of($$SELECT to_int8('2**70')$$);
-- Ints of any size cross as they are; the host spells out those beyond 64 bits for the error.
SELECT to_int8('-2**63'), to_int8('2**62 + 2**31'), to_int8('-(2**47 + 5)'), to_int2('-2**15');
SELECT to_int8('-2**64');
SELECT to_int8('2**200');
SELECT sqlstate_of($$SELECT to_int8('10**5000')$$);
SELECT sqlstate_of($$SELECT to_int4('"abc"')$$);
SELECT sqlstate_of($$SELECT to_int4('2.5')$$);
SELECT sqlstate_of($$SELECT to_int4('True')$$);
SELECT sqlstate_of($$SELECT to_int4('[1]')$$);
SELECT sqlstate_of($$SELECT to_float4('1e300')$$);
SELECT sqlstate_of($$SELECT to_float4('1e-300')$$);
SELECT sqlstate_of($$SELECT to_float8('10**309')$$);
SELECT sqlstate_of($$SELECT to_float8('"x"')$$);
SELECT sqlstate_of($$SELECT to_text('"a\x00b"')$$);
SELECT sqlstate_of($$SELECT to_text('"\ud800"')$$);
CREATE FUNCTION to_text_array(v text) RETURNS text[] LANGUAGE plpywasm AS $$ return eval(v) $$;
SELECT sqlstate_of($$SELECT to_text_array('["ok", "\udfff"]')$$);
SELECT to_text_array('["ascii", "ünï", None]');
-- Output, messages and errors with a lone surrogate reach the client, the surrogate replaced.
DO $$ print("lone \ud800 surrogate") $$ LANGUAGE plpywasm;
DO $$ plpy.notice("lone \udc00", detail="\ud801") $$ LANGUAGE plpywasm;
SELECT sqlstate_of($$DO 'raise ValueError(chr(0xd800))' LANGUAGE plpywasm$$);
SELECT to_int4('2**40');

-- Domains: arguments as their base type, results checked against the domain's constraints.
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN nonnull_text AS text NOT NULL;
CREATE FUNCTION to_posint(v int) RETURNS posint LANGUAGE plpywasm AS $$ return v $$;
CREATE FUNCTION from_posint(v posint) RETURNS text LANGUAGE plpywasm AS $$ return type(v).__name__ $$;
CREATE FUNCTION to_nonnull(v text) RETURNS nonnull_text LANGUAGE plpywasm AS $$ return v $$;
SELECT to_posint(5), from_posint(3), to_nonnull('x');
SELECT sqlstate_of($$SELECT to_posint(-1)$$);
SELECT sqlstate_of($$SELECT to_nonnull(NULL)$$);

-- Polymorphic arguments and results are resolved per call.
CREATE FUNCTION poly_id(v anyelement) RETURNS anyelement LANGUAGE plpywasm AS $$ return v $$;
SELECT poly_id(1), poly_id('text'::text), poly_id(2.5::float8), poly_id(true), poly_id('{1,2}'::int[]);
RESET ROLE;
