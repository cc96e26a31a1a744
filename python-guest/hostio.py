"""What the guest asks of the host instead of WASI: output (sys.stdout, sys.stderr), which the
host bounds and reports, Python's warnings, sleeping (time.sleep), which the host can cut short on
a cancel, and the backend's process id and CPU time; and asyncio and threading's waits, and
sqlite3's temporary storage, made to work without what WASI lacks."""

import functools
import io
import math
import os
import sys
import threading
import time
import traceback
import warnings

import bundled_stdlib
from wit_world.imports import host


class HostStream(io.TextIOBase):
    def __init__(self, fd, name):
        self._fd = fd
        self._name = name

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if text:
            host.write_output(self._fd, wit_text(text))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def wit_text(text):
    """`text` as the host can take it: a lone surrogate (no UTF-8 form) becomes "?". A str subclass
    by its value: its own isascii() or encode() may say anything."""
    if type(text) is not str:
        text = str.__str__(text)
    if text.isascii():
        return text
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def optional_text(value):
    """`str(value)` as the host can take it, or None."""
    return None if value is None else wit_text(str(value))


def sleep(seconds):
    """time.sleep, served by the host."""
    seconds = float(seconds)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("sleep length must be non-negative")
    nanoseconds = seconds * 1e9
    host.sleep(int(nanoseconds) if nanoseconds < (1 << 64) else (1 << 64) - 1)


def process_time_ns():
    """time.process_time_ns: the backend's CPU time, as in PL/Python. (WASI's emulated process clock
    counts wall time from when the snapshot was made, so it starts out negative.)"""
    user, system = host.cpu_times()
    return user + system


def process_time():
    return process_time_ns() / 1e9


def times():
    """os.times: the backend's CPU time; the children's is 0 (there are none)."""
    user, system = host.cpu_times()
    return os.times_result((user / 1e9, system / 1e9, 0.0, 0.0, time.monotonic()))


def _condition_wait(self, timeout=None):
    """threading.Condition.wait (which Event.wait, Queue.get, Semaphore and Barrier use): no other
    thread can run to notify it, so it sleeps out its timeout, as it would with nobody notifying;
    WASI's lock returns at once instead (and spins Queue.get on it). Without a timeout it could only
    wait forever."""
    if not self._is_owned():
        raise RuntimeError("cannot wait on un-acquired lock")
    if timeout is None:
        raise RuntimeError("waiting without a timeout would wait forever: no other thread can run in plpywasm")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")
    if timeout > 0:
        sleep(timeout)
    return False


def _no_self_pipe(loop):
    pass


def _sqlite_temp_store_in_memory(dbapi2):
    """SQLite spills a large sort or index build to a temporary file, which the guest cannot make
    ("disk I/O error"): the connections `sqlite3.connect` makes keep them in memory instead."""
    connect = dbapi2.connect

    @functools.wraps(connect)
    def connect_in_memory(*args, **kwargs):
        connection = connect(*args, **kwargs)
        if isinstance(connection, dbapi2.Connection):
            dbapi2.Connection.execute(connection, "PRAGMA temp_store = MEMORY").close()
        return connection

    dbapi2.connect = connect_in_memory


# PostgreSQL's LOG level: the server's log, not the client (by default).
_LOG = 15


def _log_warning(message, category, filename, lineno, file=None, line=None):
    """Python's warnings (a SyntaxWarning for "\\d" in a str literal, a DeprecationWarning) go to
    the server's log, as PL/Python's reach the server's stderr: not to the client as WARNINGs."""
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n")
    try:
        host.report(_LOG, wit_text(text), None, None, None, None)
    except Exception:
        pass


def log_ignored(exc, source):
    """An exception nobody can catch (a generator's `finally` that raised while it was closed),
    to the server's log, as Python reports one it ignores."""
    try:
        text = "Exception ignored in: %r\n%s" % (source, "".join(traceback.format_exception(exc)).rstrip("\n"))
        host.report(_LOG, wit_text(text), None, None, None, None)
    except BaseException:
        pass


def install():
    sys.stdout = sys.__stdout__ = HostStream(1, "<stdout>")
    sys.stderr = sys.__stderr__ = HostStream(2, "<stderr>")
    warnings.showwarning = _log_warning
    time.sleep = sleep
    time.process_time, time.process_time_ns, os.times = process_time, process_time_ns, times
    os.getpid = host.process_id
    threading.Condition.wait = _condition_wait
    # asyncio's event loops wake themselves through a socket pair, which WASI cannot make (the
    # loop's waits are select() calls the host can cut short). Nothing here can wake a loop from
    # outside (no threads, no signal handlers), so they go without.
    from asyncio import selector_events

    loop = selector_events.BaseSelectorEventLoop
    loop._make_self_pipe = loop._close_self_pipe = loop._write_to_self = _no_self_pipe
    # (`sqlite3` takes `connect` from `sqlite3.dbapi2` once this has run.)
    bundled_stdlib.after_import("sqlite3.dbapi2", _sqlite_temp_store_in_memory)
