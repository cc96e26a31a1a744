"""sys.stdout and sys.stderr, forwarded to the host, which bounds and reports them."""

import io
import sys

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
            host.write_output(self._fd, text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def install():
    sys.stdout = sys.__stdout__ = HostStream(1, "<stdout>")
    sys.stderr = sys.__stderr__ = HostStream(2, "<stderr>")
