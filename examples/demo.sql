-- A few plpywasm functions, created and run by an ordinary role.
\echo '== CREATE EXTENSION (as a superuser, once)'
CREATE EXTENSION plpywasm;
CREATE ROLE alice;
GRANT CREATE ON SCHEMA public TO alice;
SET ROLE alice;

\echo '== A function, written by a role that is not a superuser'
CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE plpywasm AS $$ return a + b $$;
SELECT add(1, 2);

\echo '== A DO block; print() output arrives as NOTICE'
DO $$ print("hello from", __import__("sys").version.split()[0]) $$ LANGUAGE plpywasm;

\echo '== The standard library is there'
CREATE FUNCTION word_stats(t text) RETURNS text LANGUAGE plpywasm AS $$
import collections, json, statistics
words = t.split()
return json.dumps({
    "words": len(words),
    "mean_length": statistics.mean(len(w) for w in words),
    "most_common": collections.Counter(words).most_common(1)[0][0],
})
$$;
SELECT word_stats('the quick brown fox jumps over the lazy dog');

\echo '== Errors are PostgreSQL errors, with the Python traceback as context'
CREATE FUNCTION safe_div(a float8, b float8) RETURNS float8 LANGUAGE plpywasm AS $$ return a / b $$;
\set ON_ERROR_STOP 0
SELECT safe_div(1, 0);
\echo '== The sandbox: no files, no network'
DO $$ open("/etc/passwd") $$ LANGUAGE plpywasm;
DO $$ import socket; socket.create_connection(("127.0.0.1", 5432)) $$ LANGUAGE plpywasm;
\echo '== A runaway loop stops at statement_timeout'
SET statement_timeout = '500ms';
DO $$
while True:
    pass
$$ LANGUAGE plpywasm;
RESET statement_timeout;
\set ON_ERROR_STOP 1
SELECT safe_div(1, 4);
