"""plpywasm against plpython3u, side by side in one run, with plpgsql and SQL as a floor.

Starts throwaway PostgreSQL 15 clusters with scripts/cluster.sh, runs every workload in every
language and writes BENCHMARKS.md and BENCHMARKS.png at the top of the repository. A workload that
fails in a language is recorded as n/a with the first line of its error rather than stopping the
run, so rows for features plpywasm lacks today (sets, plpy, rich types) fill in when they land.
"""

import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
REPS = int(os.environ.get("BENCH_REPS", "5"))
COLD_CONNECTIONS = 50
# Roles a backend switches between to measure per-role interpreter creation.
SWITCH_ROLES = 20
CONCURRENT_BACKENDS = 20
# (socket directory, port). The preload cluster is started after the main one is stopped, so only
# one server runs at a time.
MAIN = ("/tmp/plpywasm-bench", 54377)
PRELOAD = ("/tmp/plpywasm-bench-preload", 54378)
# JIT and parallel plans would move the SQL and plpgsql floors from run to run; the timeout bounds
# the run's length if one language is pathologically slow at something (it shows as n/a).
CONF = ["jit = off", "max_parallel_workers_per_gather = 0", "statement_timeout = '120s'"]
PYTHON_LANGS = ("plpywasm", "plpython3u")

# Workload sizes; the names in the table are built from these.
CALLS = 1_000_000
FIB = 27
DICT_KEYS = 200_000
TEXT_ROWS = 200_000
JSON_ROWS = 100_000
SETOF_ROWS = 1_000_000
TABLE_ROWS = 100_000
SPI_QUERIES = 10_000
SPI_ROWS = 100_000
CURSOR_ROWS = 1_000_000


def count(n):
    """1000000 -> '1M', 200000 -> '200k': short sizes for workload names."""
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


@dataclass
class Workload:
    """One Python body, created once per language with only LANGUAGE changed; `@f` in the query is
    the function's name. `floors` are plpgsql / SQL bodies doing the same work, where they exist."""

    key: str
    name: str
    args: str
    returns: str
    body: str
    query: str
    floors: dict = field(default_factory=dict)

    @property
    def languages(self):
        return PYTHON_LANGS + tuple(self.floors)

    def function(self, lang):
        return f"bench_{self.key}_{lang}"

    def create(self, lang):
        body = self.floors.get(lang) or textwrap.dedent(self.body).strip("\n")
        return (f"CREATE FUNCTION {self.function(lang)}({self.args}) RETURNS {self.returns} "
                f"LANGUAGE {lang} AS $body$\n{body}\n$body$")

    def sql(self, lang):
        return self.query.replace("@f", self.function(lang))


WORKLOADS = [
    Workload("call_int", f"call: int arg, {count(CALLS)} calls", "x int", "int",
             "return x + 1",
             f"SELECT sum(@f(i)) FROM generate_series(1, {CALLS}) i",
             {"plpgsql": "BEGIN RETURN x + 1; END", "sql": "SELECT x + 1"}),
    Workload("call_text", f"call: text arg, {count(CALLS)} calls", "t text", "int",
             "return len(t)",
             f"SELECT sum(@f(i::text)) FROM generate_series(1, {CALLS}) i",
             {"plpgsql": "BEGIN RETURN length(t); END", "sql": "SELECT length(t)"}),
    Workload("call_numeric", f"call: numeric arg, {count(CALLS)} calls", "x numeric", "numeric",
             "return x",
             f"SELECT sum(@f(i::numeric)) FROM generate_series(1, {CALLS}) i",
             {"plpgsql": "BEGIN RETURN x; END", "sql": "SELECT x"}),
    Workload("call_jsonb", f"call: jsonb arg, {count(CALLS)} calls", "j jsonb", "int",
             """
             import json
             d = json.loads(j) if isinstance(j, str) else j
             return len(d)
             """,
             f"SELECT sum(@f(jsonb_build_object('a', i, 'b', 'x'))) FROM generate_series(1, {CALLS}) i",
             {"plpgsql": "BEGIN RETURN (SELECT count(*) FROM jsonb_object_keys(j)); END"}),
    Workload("call_intarray", f"call: int[] arg, {count(CALLS)} calls", "a int[]", "int",
             "return len(a)",
             f"SELECT sum(@f(ARRAY[i, i + 1, i + 2])) FROM generate_series(1, {CALLS}) i",
             {"plpgsql": "BEGIN RETURN cardinality(a); END", "sql": "SELECT cardinality(a)"}),
    Workload("fib", f"compute: recursive fib({FIB})", "n int", "int",
             """
             def fib(n):
                 return n if n < 2 else fib(n - 1) + fib(n - 2)
             return fib(n)
             """,
             f"SELECT @f({FIB})"),
    Workload("dict", f"compute: dict of {count(DICT_KEYS)} str keys", "n int", "bigint",
             """
             d = {}
             for i in range(n):
                 d["key" + str(i)] = i
             return sum(len(k) for k in d)
             """,
             f"SELECT @f({DICT_KEYS})"),
    Workload("regex", f"strings: re.findall + re.sub, {count(TEXT_ROWS)} rows", "t text", "text",
             """
             import re
             words = re.findall(r"[a-z]+", t)
             return re.sub(r"[0-9]+", "#", t) + " " + str(len(words))
             """,
             "SELECT sum(length(@f(t))) FROM bench_text"),
    Workload("json", f"json: jsonb in and out, {count(JSON_ROWS)} rows", "j jsonb", "jsonb",
             """
             import json
             d = json.loads(j) if isinstance(j, str) else j
             d["total"] = float(d["price"]) * len(d["tags"])
             d["name"] = d["name"].upper()
             # plpython3u passes and takes jsonb as JSON text; plpywasm as Python objects.
             return json.dumps(d) if isinstance(j, str) else d
             """,
             "SELECT sum((@f(j)->>'total')::float8) FROM bench_json"),
    Workload("setof", f"sets: SETOF int, {count(SETOF_ROWS)} rows from a generator", "n int", "SETOF int",
             """
             for i in range(n):
                 yield i
             """,
             f"SELECT sum(x) FROM @f({SETOF_ROWS}) x"),
    Workload("setof_list", f"sets: SETOF int, {count(SETOF_ROWS)} rows from a list", "n int", "SETOF int",
             """
             return list(range(n))
             """,
             f"SELECT sum(x) FROM @f({SETOF_ROWS}) x"),
    Workload("table", f"sets: TABLE (int, text, float8), {count(TABLE_ROWS)} rows", "n int",
             "TABLE (a int, b text, c float8)",
             """
             for i in range(n):
                 yield (i, str(i), i * 0.5)
             """,
             f"SELECT count(*), sum(c) FROM @f({TABLE_ROWS})"),
    Workload("spi_many", f"spi: {count(SPI_QUERIES)} x plpy.execute('select 1')", "n int", "bigint",
             """
             total = 0
             for _ in range(n):
                 total += plpy.execute("select 1 as x")[0]["x"]
             return total
             """,
             f"SELECT @f({SPI_QUERIES})"),
    Workload("spi_rows", f"spi: plpy.execute of {count(SPI_ROWS)} rows", "n int", "bigint",
             """
             rows = plpy.execute("select i as x from generate_series(1, %d) i" % n)
             return sum(r["x"] for r in rows)
             """,
             f"SELECT @f({SPI_ROWS})"),
    Workload("spi_cursor", f"spi: plpy.cursor over {count(CURSOR_ROWS)} rows, fetch(1000)", "n int",
             "bigint",
             """
             cur = plpy.cursor("select i as x from generate_series(1, %d) i" % n)
             total = 0
             while True:
                 rows = cur.fetch(1000)
                 if not rows:
                     break
                 total += sum(r["x"] for r in rows)
             return total
             """,
             f"SELECT @f({CURSOR_ROWS})"),
]
# The first call of a new backend and its memory use a function as small as possible.
FIRST_CALL = WORKLOADS[0]
PRELOADED = "plpywasm (preloaded)"
NO_CALL = "none (SELECT 1)"
# Row order of the first-call and memory tables.
COLD_ROWS = ("plpywasm", PRELOADED, "plpython3u", "plpgsql")
MEMORY_ROWS = (NO_CALL,) + COLD_ROWS

SETUP_SQL = [
    *(f"CREATE ROLE bench_role_{i}" for i in range(1, SWITCH_ROLES + 1)),
    f"""CREATE TABLE bench_text AS
        SELECT md5(i::text) || ' item ' || i || ' of batch ' || (i % 97) || ' done' AS t
        FROM generate_series(1, {TEXT_ROWS}) i""",
    f"""CREATE TABLE bench_json AS
        SELECT jsonb_build_object('id', i, 'name', 'item ' || i, 'price', i * 0.25,
                                  'tags', jsonb_build_array('a', 'b', i % 10)) AS j
        FROM generate_series(1, {JSON_ROWS}) i""",
    "VACUUM ANALYZE",
]


# --- clusters and connections ---------------------------------------------------------------------

def start(cluster, *conf):
    subprocess.run(["bash", ROOT / "scripts/cluster.sh", "start", cluster[0], str(cluster[1]),
                    *CONF, *conf], check=True, capture_output=True, text=True)


def stop(cluster):
    subprocess.run(["bash", ROOT / "scripts/cluster.sh", "stop", cluster[0]], check=False)


def conninfo(cluster, dbname="bench"):
    return f"host={cluster[0]} port={cluster[1]} user=postgres dbname={dbname}"


def connect(cluster, dbname="bench"):
    """A connection, waiting out a server that is restarting after a crashed backend, so one crash
    costs one n/a rather than every workload after it."""
    for attempt in range(20):
        try:
            return psycopg.connect(conninfo(cluster, dbname), autocommit=True)
        except psycopg.OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.5)


def reason(error):
    """'n/a (first line of the error)', for a table cell."""
    line = (getattr(error, "diag", None) and error.diag.message_primary) or str(error) or type(error).__name__
    line = line.strip().splitlines()[0]
    return f"n/a ({line[:110]})".replace("|", "\\|")


def timed(cur, query):
    start_time = time.perf_counter()
    cur.execute(query)
    cur.fetchall()
    return (time.perf_counter() - start_time) * 1000


def prepare(cluster, workloads):
    """A fresh `bench` database with both Python languages and the given workloads' functions.
    Returns why each function that could not be created could not, by (workload key, language)."""
    with connect(cluster, "postgres") as conn:
        conn.execute("CREATE DATABASE bench")
    with connect(cluster) as conn:
        conn.execute("CREATE EXTENSION plpython3u")
        try:
            conn.execute("CREATE EXTENSION plpywasm")
        except psycopg.Error as e:
            print(f"bench: CREATE EXTENSION plpywasm: {e}", file=sys.stderr)
        failed = {}
        for w in workloads:
            for lang in w.languages:
                try:
                    conn.execute(w.create(lang))
                except psycopg.Error as e:
                    failed[w.key, lang] = reason(e)
    return failed


# --- measurements --------------------------------------------------------------------------------

def run_workload(cluster, w, lang):
    """Timed runs (ms) after one warm-up in the same connection, or the reason it could not run."""
    try:
        with connect(cluster) as conn, conn.cursor() as cur:
            pid = conn.info.backend_pid
            query = w.sql(lang)
            timed(cur, query)
            runs = [timed(cur, query) for _ in range(REPS)]
    except psycopg.Error as e:
        return reason(e)
    wait_exited([pid])
    return runs


def role_switches(cluster, lang):
    """ms per role for a backend's first calls of functions owned by each of SWITCH_ROLES roles,
    beyond what as many calls of one role's function cost: for plpywasm, where a function runs in
    its owner's interpreter, the creation of each owner's. One new backend per run, which has
    already called a function once."""
    functions = [f"{FIRST_CALL.function(lang)}_{i}" for i in range(1, SWITCH_ROLES + 1)]
    try:
        with connect(cluster) as conn:
            for i, function in enumerate(functions, 1):
                conn.execute(FIRST_CALL.create(lang).replace(FIRST_CALL.function(lang), function, 1))
                conn.execute(f"ALTER FUNCTION {function}(int) OWNER TO bench_role_{i}")
    except psycopg.Error as e:
        return reason(e)

    def once(calls):
        with connect(cluster) as conn:
            pid = conn.info.backend_pid
            conn.execute(f"SELECT {FIRST_CALL.function(lang)}(1)")
            start_time = time.perf_counter()
            conn.execute("SELECT " + ", ".join(f"{function}(1)" for function in calls))
            elapsed = (time.perf_counter() - start_time) * 1000
        wait_exited([pid])
        return elapsed

    try:
        return [(once(functions) - once(functions[:1] * SWITCH_ROLES)) / SWITCH_ROLES for _ in range(REPS)]
    except psycopg.Error as e:
        return reason(e)


def first_call(cluster, query):
    """Connect + `query` in a new backend, minus connect + `SELECT 1` measured the same way
    (interleaved, its median subtracted), over COLD_CONNECTIONS connections: ms."""
    def once(q):
        start_time = time.perf_counter()
        conn = psycopg.connect(conninfo(cluster))
        conn.execute(q).fetchall()
        elapsed = time.perf_counter() - start_time
        pid = conn.info.backend_pid
        conn.close()
        wait_exited([pid])
        return elapsed * 1000

    try:
        base, calls = [], []
        for _ in range(COLD_CONNECTIONS):
            base.append(once("SELECT 1"))
            calls.append(once(query))
    except psycopg.Error as e:
        return reason(e)
    floor = statistics.median(base)
    return [c - floor for c in calls]


def smaps(pid):
    """(Pss, Private_Clean + Private_Dirty, Private_Dirty) of a process in MiB. Private_Clean
    includes file pages (libraries, the guest's code) that no other process maps at the moment."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return fields["Pss"] / 1024, private / 1024, fields["Private_Dirty"] / 1024


def wait_exited(pids):
    """Backends exit after their connection closes; Pss splits shared pages among the processes
    mapping them, so a measurement waits for the previous backends to be gone."""
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def memory(cluster, query):
    """After `query` as a fresh backend's first call: the median smaps() of one backend over REPS
    backends, and the sum of Pss of CONCURRENT_BACKENDS backends alive at once. MiB."""
    conns, pids = [], []
    try:
        singles = []
        for _ in range(REPS):
            with connect(cluster) as conn:
                pid = conn.info.backend_pid
                conn.execute(query).fetchall()
                singles.append(smaps(pid))
            wait_exited([pid])
        for _ in range(CONCURRENT_BACKENDS):
            conns.append(connect(cluster))
            pids.append(conns[-1].info.backend_pid)
            conns[-1].execute(query).fetchall()
        total = sum(smaps(pid)[0] for pid in pids)
    except psycopg.Error as e:
        return reason(e)
    finally:
        for conn in conns:
            conn.close()
        wait_exited(pids)
    return tuple(statistics.median(s[i] for s in singles) for i in range(3)) + (total,)


def python_version(conn, lang):
    """The Python a language runs, asked of the language itself."""
    try:
        conn.execute(f"CREATE FUNCTION bench_python_version_{lang}() RETURNS text LANGUAGE {lang} AS "
                     "$$ import sys; return sys.version.split()[0] $$")
        return conn.execute(f"SELECT bench_python_version_{lang}()").fetchone()[0]
    except psycopg.Error as e:
        return reason(e)


def git_describe():
    return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                          cwd=ROOT).stdout.strip()


def start_failure(cluster):
    """Why a cluster did not start: the server log's last FATAL line, for a table cell."""
    log = (Path(cluster[0]) / "server.log").read_text(errors="replace").splitlines()
    fatal = [line.split("FATAL:", 1)[1].strip() for line in log if "FATAL:" in line]
    return f"n/a (cluster did not start: {(fatal or ['see ' + cluster[0] + '/server.log'])[-1][:100]})"


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.machine())
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{len(os.sched_getaffinity(0))} cores ({cpu}), {mem_kb / 1024 ** 2:.0f} GiB, Linux {platform.release()}"


# --- the run -------------------------------------------------------------------------------------

def main():
    """Workloads, first calls and memory in the main cluster, then first calls and memory of
    plpywasm again in a cluster that preloads it."""
    timings, cold, mem, info = {}, {}, {}, {}
    first_call_of = {lang: f"SELECT {FIRST_CALL.function(lang)}(1)" for lang in FIRST_CALL.languages}
    first_call_of[NO_CALL] = "SELECT 1"
    started = time.monotonic()

    start(MAIN)
    try:
        failed = prepare(MAIN, WORKLOADS)
        with connect(MAIN) as conn:
            for sql in SETUP_SQL:
                conn.execute(sql)
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            info["plpywasm"] = (conn.execute("SELECT coalesce(max(extversion), 'not installed') "
                                             "FROM pg_extension WHERE extname = 'plpywasm'").fetchone()[0])
            info["python"] = {lang: python_version(conn, lang) for lang in PYTHON_LANGS}
        for w in WORKLOADS:
            for lang in w.languages:
                result = failed.get((w.key, lang)) or run_workload(MAIN, w, lang)
                timings[w.name, lang] = result
                progress(f"{w.name} / {lang}", result)
        for lang in PYTHON_LANGS + ("plpgsql",):
            result = failed.get((FIRST_CALL.key, lang)) or first_call(MAIN, first_call_of[lang])
            cold[lang] = result
            progress(f"first call / {lang}", result)
        for lang in (NO_CALL,) + PYTHON_LANGS + ("plpgsql",):
            mem[lang] = failed.get((FIRST_CALL.key, lang)) or memory(MAIN, first_call_of[lang])
            progress(f"memory / {lang}", mem[lang])
        for lang in PYTHON_LANGS:
            info.setdefault("roles", {})[lang] = failed.get((FIRST_CALL.key, lang)) or role_switches(MAIN, lang)
            progress(f"per-role first call / {lang}", info["roles"][lang])
    finally:
        stop(MAIN)

    if info["plpywasm"] == "not installed":
        cold[PRELOADED] = mem[PRELOADED] = "n/a (plpywasm is not installed)"
    else:
        try:
            start(PRELOAD, "shared_preload_libraries = 'plpywasm'")
        except subprocess.CalledProcessError:
            cold[PRELOADED] = mem[PRELOADED] = start_failure(PRELOAD)
        else:
            try:
                failure = prepare(PRELOAD, [FIRST_CALL]).get((FIRST_CALL.key, "plpywasm"))
                cold[PRELOADED] = failure or first_call(PRELOAD, first_call_of["plpywasm"])
                mem[PRELOADED] = failure or memory(PRELOAD, first_call_of["plpywasm"])
            finally:
                stop(PRELOAD)
        progress(f"first call / {PRELOADED}", cold[PRELOADED])
        progress(f"memory / {PRELOADED}", mem[PRELOADED])

    info["minutes"] = (time.monotonic() - started) / 60
    report = markdown(timings, cold, mem, info)
    print(report)
    (ROOT / "BENCHMARKS.md").write_text(report)
    chart(timings, cold, mem, ROOT / "BENCHMARKS.png")
    print(f"bench: wrote BENCHMARKS.md and BENCHMARKS.png in {info['minutes']:.1f} min", file=sys.stderr)


def progress(what, result):
    if isinstance(result, list):
        result = f"median {statistics.median(result):.1f} ms"
    elif isinstance(result, tuple):
        result = (f"Pss {result[0]:.1f} MiB, private {result[1]:.1f} MiB, "
                  f"{CONCURRENT_BACKENDS} backends {result[3]:.0f} MiB")
    print(f"bench: {what}: {result}", file=sys.stderr, flush=True)


# --- the report ----------------------------------------------------------------------------------

def ms(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def percentile(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ratio(a, b):
    """plpywasm over plpython3u as a table cell and a number (None when either is missing)."""
    if a is None or b is None:
        return "", None
    r = a / b if b > 0 else math.inf
    return f"{r:.2f}", r


def time_ratios(timings):
    """Workload name -> (cell, number) of the median of plpywasm over the median of plpython3u."""
    def med(w, lang):
        r = timings[w.name, lang]
        return None if isinstance(r, str) else statistics.median(r)
    return {w.name: ratio(med(w, "plpywasm"), med(w, "plpython3u")) for w in WORKLOADS}


def cold_ratios(cold):
    def p50(lang):
        return None if isinstance(cold[lang], str) else percentile(cold[lang], 50)
    return {lang: ratio(p50(lang), p50("plpython3u")) for lang in ("plpywasm", PRELOADED)}


def mem_ratios(mem):
    def pss(lang):
        return None if isinstance(mem[lang], str) else mem[lang][0]
    return {lang: ratio(pss(lang), pss("plpython3u")) for lang in ("plpywasm", PRELOADED)}


def markdown(timings, cold, mem, info):
    py = info["python"]
    client = f"{platform.python_version()}, psycopg {psycopg.__version__}"
    out = [
        "# Benchmarks",
        "",
        "Written by `just bench` (bench/run.sh, bench/bench.py).",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- PostgreSQL {info['postgres']}; plpywasm extension {info['plpywasm']}, "
        f"repository at {git_describe()}",
        f"- Python: plpywasm {py['plpywasm']}; plpython3u {py['plpython3u']}; client {client}",
        f"- method: client-side wall time of execute + fetchall over the unix socket; per workload and "
        f"language a new connection, one warm-up run, then {REPS} timed runs; server settings "
        f"{', '.join(CONF)}",
        f"- sizes: as in the workload names, none scaled down; this run took {info['minutes']:.1f} min",
        "",
        "## Run time (ms)",
        "",
        "| workload | language | median | min | max | plpywasm / plpython3u |",
        "|---|---|--:|--:|--:|--:|",
    ]
    ratios = time_ratios(timings)
    for w in WORKLOADS:
        for lang in w.languages:
            r = timings[w.name, lang]
            cell = ratios[w.name][0] if lang == "plpywasm" else ""
            if isinstance(r, str):
                out.append(f"| {w.name} | {lang} | {r} | | | {cell} |")
            else:
                out.append(f"| {w.name} | {lang} | {ms(statistics.median(r))} | {ms(min(r))} | "
                           f"{ms(max(r))} | {cell} |")

    out += [
        "",
        f"## First call in a new backend (ms, {COLD_CONNECTIONS} connections)",
        "",
        f"Connect + `SELECT f(1)` minus the median of connect + `SELECT 1`, measured interleaved; "
        f"f is the \"{FIRST_CALL.name}\" function (`{FIRST_CALL.body}`).",
        "",
        "| language | p50 | p95 | plpywasm / plpython3u (p50) |",
        "|---|--:|--:|--:|",
    ]
    ratios = cold_ratios(cold)
    for lang in COLD_ROWS:
        cells = lambda r: [ms(percentile(r, 50)), ms(percentile(r, 95))]
        out.append(table_row(lang, cold[lang], cells, 2, ratios[lang][0] if lang in ratios else ""))

    out += [
        "",
        f"## A first call of functions of {SWITCH_ROLES} owners in one backend (ms per owner)",
        "",
        "Beyond as many calls of one owner's function: plpywasm creates each owner's own interpreter "
        "from the snapshot (plpython3u shares one interpreter between roles, so its figure is the floor). "
        f"Median, min and max over {REPS} new backends.",
        "",
        "| language | median | min | max |",
        "|---|--:|--:|--:|",
    ]
    for lang in PYTHON_LANGS:
        cells = lambda r: [ms(statistics.median(r)), ms(min(r)), ms(max(r))]
        out.append(table_row(lang, info.get("roles", {}).get(lang, "n/a"), cells, 3))

    out += [
        "",
        "## Backend memory after its first call (MiB)",
        "",
        f"From /proc/PID/smaps_rollup; one backend: median over {REPS} fresh backends; "
        f"total: sum of Pss over {CONCURRENT_BACKENDS} backends alive at once, each having made the call. "
        "Private pages are those no other process maps at that moment, file pages included.",
        "",
        f"| language | Pss, one backend | private (clean + dirty), one backend | private dirty, one backend | "
        f"Pss, {CONCURRENT_BACKENDS} backends | plpywasm / plpython3u (Pss, one) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    ratios = mem_ratios(mem)
    for lang in MEMORY_ROWS:
        cells = lambda r: [f"{r[0]:.1f}", f"{r[1]:.1f}", f"{r[2]:.1f}", f"{r[3]:.0f}"]
        out.append(table_row(lang, mem[lang], cells, 4, ratios[lang][0] if lang in ratios else ""))
    return "\n".join(out) + "\n"


def table_row(label, result, cells, width, ratio=None):
    """A markdown table row: a measurement's `width` cells, or the reason it is missing."""
    values = [result] + [""] * (width - 1) if isinstance(result, str) else cells(result)
    return "| " + " | ".join([label, *values, *([] if ratio is None else [ratio])]) + " |"


def chart(timings, cold, mem, path):
    """Horizontal bars of plpywasm / plpython3u per workload on a log scale, a line at 1.0."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    groups = [
        [(name, r) for name, (_, r) in time_ratios(timings).items()],
        [(f"first call, {lang} (p50)", r) for lang, (_, r) in cold_ratios(cold).items()],
        [(f"memory, {lang} (Pss)", r) for lang, (_, r) in mem_ratios(mem).items()],
    ]
    rows = [row for group in groups for row in group][::-1]  # barh draws bottom-up

    known = [r for _, r in rows if r is not None and 0 < r < math.inf]
    lo = min(known + [0.5]) / 1.6
    hi = max(known + [2.0]) * 1.6
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.6))
    for y, (_, r) in enumerate(rows):
        if r is None or not 0 < r < math.inf:
            ax.text(1.0, y, "  n/a", va="center", ha="left", color="gray", fontsize=9)
            continue
        ax.barh(y, r - 1.0 if r >= 1 else 1.0 - r, left=1.0 if r >= 1 else r,
                color="tab:red" if r >= 1 else "tab:green", height=0.6)
        ax.text(r * (1.04 if r >= 1 else 0.96), y, f"{r:.2f}×", va="center",
                ha="left" if r >= 1 else "right", fontsize=9)
    ax.axvline(1.0, color="black", linewidth=1)
    for boundary in (len(groups[2]), len(groups[2]) + len(groups[1])):
        ax.axhline(boundary - 0.5, color="gray", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xticks([t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
                   if lo <= t <= hi], minor=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=9)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("plpywasm / plpython3u (log scale; < 1: plpywasm faster or smaller)")
    ax.set_title(f"plpywasm / plpython3u, {datetime.date.today()}: run time (median of {REPS}), "
                 "first call, memory")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
