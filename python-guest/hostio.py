"""What the guest asks of the host instead of WASI: output (sys.stdout, sys.stderr), which the
host bounds and reports, Python's warnings, and sleeping (time.sleep), which the host can cut
short on a cancel; and asyncio made to run without what WASI lacks."""

import io
import math
import sys
import time
import warnings

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


def _no_self_pipe(loop):
    pass


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


def install():
    sys.stdout = sys.__stdout__ = HostStream(1, "<stdout>")
    sys.stderr = sys.__stderr__ = HostStream(2, "<stderr>")
    warnings.showwarning = _log_warning
    time.sleep = sleep
    # asyncio's event loops wake themselves through a socket pair, which WASI cannot make (the
    # loop's waits are select() calls the host can cut short). Nothing here can wake a loop from
    # outside (no threads, no signal handlers), so they go without.
    from asyncio import selector_events

    loop = selector_events.BaseSelectorEventLoop
    loop._make_self_pipe = loop._close_self_pipe = loop._write_to_self = _no_self_pipe
