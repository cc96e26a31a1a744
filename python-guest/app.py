"""The guest side of wit/plpywasm.wit: the entry points the host calls.

Everything at module level runs once, at build time, and is frozen into the component's snapshot.
"""

import bundled_stdlib
import hostio

bundled_stdlib.install()
hostio.install()

# Modules most function bodies reach for, imported now so that run-time imports cost a dict lookup.
import base64, collections, dataclasses, datetime, decimal, enum, fractions, functools, hashlib  # noqa: E401,F401
import itertools, json, math, random, re, statistics, string, textwrap, typing, uuid  # noqa: E401,F401

import procedures
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    ResultKind,
    Value_Boolean,
    Value_Float,
    Value_Int,
    Value_Null,
    Value_Text,
)

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_NULL = Value_Null()


def _to_python(value):
    return None if type(value) is Value_Null else value.value


def _to_value(result, kind):
    """Shapes a Python result for the host; anything it cannot take natively goes as `str()`."""
    if result is None:
        return _NULL
    if kind is ResultKind.BOOLEAN:
        return Value_Boolean(bool(result))
    if kind is ResultKind.INT and isinstance(result, int) and not isinstance(result, bool):
        if _INT64_MIN <= result <= _INT64_MAX:
            return Value_Int(int(result))
    elif kind is ResultKind.FLOAT and isinstance(result, float):
        return Value_Float(float(result))
    return Value_Text(result if type(result) is str else str(result))


# Compiled functions by handle. Module state, not instance state: the bindings may make a new Guest per call.
_procedures = {}
_handles = itertools.count(1)


class Guest(exports.Guest):
    def compile(self, name, params, body):
        try:
            procedure = procedures.compile_procedure(name, params, body)
        except BaseException as exc:
            raise Err(procedures.describe(exc, compiling=True))
        handle = next(_handles)
        _procedures[handle] = procedure
        return handle

    def forget(self, handle):
        procedure = _procedures.pop(handle, None)
        if procedure is not None:
            procedure.release()

    def call(self, handle, args, kind):
        try:
            procedure = _procedures[handle]
            argv = [_to_python(a) for a in args]
            procedure.namespace["args"] = argv
            return _to_value(procedure.function(*argv), kind)
        except BaseException as exc:
            raise Err(procedures.describe(exc))

    def run_inline(self, body):
        error = procedures.run_inline(body)
        if error is not None:
            raise Err(error)
