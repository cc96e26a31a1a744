-- The promises of a trusted language: no host access, bounded resources, cancellation, and no
-- Python state shared between roles. Every hostile function is followed by a normal call.
\set VERBOSITY default
SET ROLE alice;
CREATE FUNCTION ok() RETURNS text LANGUAGE plpywasm AS $$ return "ok" $$;

-- No files, no environment, no network, no processes, no threads, no native code.
CREATE FUNCTION probe(what text) RETURNS text LANGUAGE plpywasm AS $$
import os
try:
    if what == "file":
        open("/etc/passwd").read()
    elif what == "listdir":
        os.listdir("/")
    elif what == "write":
        open("/tmp/plpywasm-escape", "w").write("x")
    elif what == "env":
        return repr(dict(os.environ))
    elif what == "socket":
        import socket
        socket.create_connection(("127.0.0.1", 5432), timeout=1)
    elif what == "dns":
        import socket
        socket.getaddrinfo("localhost", 80)
    elif what == "subprocess":
        import subprocess
        subprocess.run(["id"])
    elif what == "system":
        os.system("id")
    elif what == "thread":
        import threading
        threading.Thread(target=print).start()
    elif what == "ctypes":
        import ctypes
    elif what == "argv":
        import sys
        return repr(sys.argv)
    return "allowed"
except BaseException as e:
    return "refused: " + type(e).__name__
$$;
SELECT w, probe(w) FROM unnest(ARRAY['file', 'listdir', 'write', 'env', 'socket', 'dns', 'subprocess', 'system', 'thread', 'ctypes', 'argv']) AS w;

-- Memory is capped per interpreter (plpywasm.memory_limit): MemoryError, then business as usual.
CREATE FUNCTION allocate(mb int) RETURNS int LANGUAGE plpywasm AS $$ return len(bytearray(mb * 1024 * 1024)) // (1024 * 1024) $$;
SELECT allocate(16);
SELECT sqlstate_of($$SELECT allocate(200)$$);
CREATE FUNCTION grow_forever() RETURNS int LANGUAGE plpywasm AS $$
chunks = []
while True:
    chunks.append(bytearray(1024 * 1024))
$$;
SELECT sqlstate_of($$SELECT grow_forever()$$);
SELECT ok();
SELECT sqlstate_of($$SET plpywasm.memory_limit = '1GB'$$);

-- statement_timeout stops pure-Python loops.
SET statement_timeout = '200ms';
CREATE FUNCTION spin() RETURNS int LANGUAGE plpywasm AS $$
while True:
    pass
$$;
SELECT spin();
DO $$ sum(range(10**12)) $$ LANGUAGE plpywasm;
DO $$
import re
re.match(r"(a+)+$", "a" * 64 + "b")
$$ LANGUAGE plpywasm;
RESET statement_timeout;
SELECT ok();

-- Unbounded recursion, even with the recursion limit raised, ends as an ERROR.
CREATE FUNCTION recurse(raise_limit bool) RETURNS int LANGUAGE plpywasm AS $$
import sys
if raise_limit:
    sys.setrecursionlimit(10**6)
def f(n):
    return f(n + 1)
return f(0)
$$;
SELECT sqlstate_of($$SELECT recurse(false)$$);
SELECT sqlstate_of($$SELECT recurse(true)$$);
SELECT ok();

-- Large arguments and results.
CREATE FUNCTION text_len(t text) RETURNS int LANGUAGE plpywasm AS $$ return len(t) $$;
SELECT text_len(repeat('ab', 5 * 1024 * 1024));
CREATE FUNCTION big_text(n int) RETURNS text LANGUAGE plpywasm AS $$ return "y" * n $$;
SELECT length(big_text(20 * 1024 * 1024));
SELECT text_len(array_agg(i)::text) FROM generate_series(1, 1000000) AS i;

-- Per-role interpreters: nothing alice's code changes is seen by bob's.
CREATE FUNCTION tamper() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys
GD["secret"] = "alice's"
builtins.len = lambda x: -1
json.dumps = lambda *a, **k: "tampered"
sys.modules["evil"] = object()
return "tampered"
$$;
SELECT tamper();
CREATE FUNCTION observe() RETURNS text LANGUAGE plpywasm AS $$
import builtins, json, sys
return "GD=%r len=%d json=%s evil=%s" % (GD.get("secret"), len("abc"), json.dumps(1), "evil" in sys.modules)
$$;
SELECT observe();
GRANT EXECUTE ON FUNCTION observe() TO bob;
CREATE FUNCTION observe_as_owner() RETURNS text SECURITY DEFINER LANGUAGE plpywasm AS $$ return GD.get("secret") $$;
GRANT EXECUTE ON FUNCTION observe_as_owner() TO bob;
SET ROLE bob;
SELECT observe();
-- A SECURITY DEFINER function runs in its owner's interpreter.
SELECT observe_as_owner();
SET ROLE alice;

-- Output is bounded (plpywasm.max_output, which only superusers set).
SELECT sqlstate_of($$SET plpywasm.max_output = '1MB'$$);
RESET ROLE;
SET plpywasm.max_output = '1kB';
DO $$
for i in range(100):
    print("%03d " % i + "x" * 96)
$$ LANGUAGE plpywasm;
RESET plpywasm.max_output;

-- plpywasm.stats counts this backend's uses per function and role.
SET ROLE alice;
SELECT function, role, calls, traps, cancellations, peak_memory_bytes > 0 AS measured, guest_time_ms > 0 AS timed
FROM plpywasm.stats WHERE function::text IN ('spin()', 'recurse(boolean)', 'ok()', 'grow_forever()', 'allocate(integer)') ORDER BY function::text;
SELECT interpreters_created >= 3 AS recreated_after_traps FROM plpywasm.stats WHERE role = 'alice'::regrole LIMIT 1;
SELECT sum(calls) > 0 AS bob_counted FROM plpywasm.stats WHERE role = 'bob'::regrole;
RESET ROLE;
