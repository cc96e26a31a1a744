"""The guest side of wit/plpywasm.wit: the entry points the host calls.

Everything at module level runs once, at build time, and is frozen into the component's snapshot.
"""

import gc
import struct
import types

import bundled_stdlib
import hostio
import timezones

bundled_stdlib.install()
hostio.install()
timezones.install()

# Modules most function bodies reach for, imported now so that run-time imports cost a dict lookup.
import base64, collections, dataclasses, datetime, decimal, enum, fractions, functools, hashlib  # noqa: E401,F401
import itertools, json, marshal, math, random, re, statistics, string, textwrap, typing, uuid  # noqa: E401,F401

import pbkdf2

pbkdf2.install()

import plpy  # (in the snapshot: `import plpy` in a body is a dict lookup)
import procedures
import values
from componentize_py_types import Err
from wit_world import exports

_loads = marshal.loads
_dumps = marshal.dumps
_dump = values.dump

# Compiled functions and open result sets, by handle. Module state, not instance state: the
# bindings make a Guest for each export.
_procedures = {}
_sets = {}
_handles = itertools.count(1)
# What the last per-call export raised, until `take_error`.
_error = None

# The exchange (see wit/plpywasm.wit): a per-call export's input is written by the host into a
# bytearray (the view pins it: one with an exported buffer cannot be resized, so it stays where the
# host found it), and its output is a bytes object the host reads in place, put in `_output[0]`.
_EXCHANGE_SIZE = 1 << 16
_MARK = b"plpywasm exchange"
_exchange = bytearray(_MARK.ljust(_EXCHANGE_SIZE, b"\0"))
_pinned = memoryview(_exchange)
_output = [None]
# An input too large for the exchange, given by `stage` for the next per-call export, and how
# much of it was given so far.
_staged = None
_staged_size = 0


class Guest(exports.Guest):
    def compile(self, name, params, body, shape, decodings):
        try:
            procedure = procedures.compile_procedure(name, params or (), body)
            procedure.reshape(shape)
            procedure.decoders = values.decoders(decodings or ())
        except BaseException as exc:
            raise Err(procedures.describe(exc, compiling=True))
        handle = next(_handles)
        _procedures[handle] = procedure
        return handle

    def reshape(self, handle, shape):
        _procedures[handle] = _procedures[handle].reshaped(shape)

    def forget(self, handle):
        procedure = _procedures.pop(handle, None)
        if procedure is not None:
            procedure.release()

    # The per-call exports (call, call_scalar, call_trigger, next_row, next_rows, next_plain)
    # take their input from the exchange and put their output there (see wit/plpywasm.wit): the
    # bindings' conversion of a parameter or result costs more than a scalar call's own work. An
    # output that is empty (or None), or call_set's handle 0, says the call raised, or that a set
    # ended; `take_error` hands over what was raised.

    def call(self):
        _output[0] = _call(_input())

    def call_scalar(self):
        # The cheapest path: a plain result, marshalled (see wit/plpywasm.wit); `_input`,
        # `_arguments` and `_dump`, inline.
        try:
            if _staged is not None:
                procedure, argv = _arguments(_unstage())
                result = procedure.call(argv)
            else:
                handle, argv = _loads(_exchange)
                procedure = _procedures[handle]
                if procedure.decoders or procedure.wants_args:
                    argv = _decoded(procedure, argv)
                    result = procedure.call(argv) if procedure.wants_args else procedure.function(*argv)
                else:
                    result = procedure.function(*argv)
            if type(result) is not procedure.exact:
                result = procedure.plain(result)
            try:
                output = _dumps(result, 2)
            except ValueError:
                raise values.no_room_for_result() from None
        except BaseException as exc:
            _failed(exc)
            output = None
        _output[0] = output

    def take_error(self):
        global _error
        error, _error = _error, None
        _collect_after(error)
        return error

    def call_trigger(self, handle):
        _output[0] = _call_trigger(handle, _input())

    def call_set(self, whole):
        return _call_set(_input(), whole)

    def next_row(self, iterator):
        _output[0] = _next_row(iterator)

    def next_rows(self, iterator):
        _output[0] = _next_rows(iterator)

    def next_plain(self, iterator):
        _output[0] = _next_plain(iterator)

    def close_sets(self, iterators):
        for iterator in iterators:
            entry = _sets.pop(iterator, None)
            if entry is not None:
                _close(entry[0])

    def run_inline(self, body):
        error = procedures.run_inline(body)
        if error is not None:
            _collect_after(error)
            raise Err(error)

    def memory_probe(self):
        return b""

    def exchange(self):
        # Addresses of objects (CPython's id), whose fields the host reads.
        return (id(_exchange), id(_output), id(_MARK))

    def begin_stage(self, size):
        global _staged, _staged_size
        _staged, _staged_size = None, 0
        try:
            _staged = bytearray(size)
            values.check_part_room()
        except MemoryError:
            _staged = None
            error = MemoryError("an input of %d MB does not fit in the interpreter's memory" % -(-size >> 20))
            raise Err(procedures.describe(error)) from None

    def stage(self, part):
        global _staged_size
        _staged[_staged_size : _staged_size + len(part)] = part
        _staged_size += len(part)


_END = object()


def _call(args):
    # The per-call path: no more than the conversions and the call itself.
    try:
        procedure, argv = _arguments(args)
        out = []
        procedure.encode(procedure.call(argv), out)
        return _dump(out)
    except BaseException as exc:
        _failed(exc)
        return b""


def _call_trigger(handle, td):
    try:
        return _dump(procedures.call_trigger(_procedures[handle], _loads(td)))
    except BaseException as exc:
        # (A trigger's conversion errors say what they were making themselves.)
        _failed(exc, making=None)
        return b""


def _call_set(args, whole):
    try:
        procedure, argv = _arguments(args)
        result = procedure.call(argv)
        rows = procedures.iterate(result)
        if procedure.wants_args and type(rows) is types.GeneratorType:
            rows = procedures.resumed(procedure, argv, rows)
    except BaseException as exc:
        _failed(exc, making=None)
        return 0
    iterator = next(_handles)
    # The result's converters as they are now: a nested call may reshape the procedure. Rows of
    # a sequence already made are read ahead (no code runs to produce them); a generator's are
    # produced one per row the executor asks for, as in PL/Python, unless it asks for all of
    # them before it uses any (`whole`), when nothing can tell.
    ahead = _READ_AHEAD if whole or type(result) in _MATERIALIZED else 1
    _sets[iterator] = (rows, procedure.encode, procedure.exact, procedure.plain, ahead, whole)
    return iterator


def _next_row(iterator):
    row = _advance(iterator)
    if row is _END:
        return b""
    try:
        out = []
        _sets[iterator][1](row, out)
        return _dump(out)
    except BaseException as exc:
        _abandon(iterator, exc)
        return b""


def _next_rows(iterator):
    entry = _sets.get(iterator)
    if entry is None:
        return b""
    rows, encode = entry[0], entry[1]
    # Each row marshalled on its own, and a batch framed as marshal's list of them: a batch
    # of large rows stops at _READ_AHEAD_BYTES instead of being copied whole.
    parts = []
    size = 0
    try:
        for row in itertools.islice(rows, _READ_AHEAD_ROWS):
            nodes = []
            encode(row, nodes)
            part = _dump(nodes)
            parts.append(part)
            size += len(part)
            if size > _READ_AHEAD_BYTES:
                break
    except BaseException as exc:
        # The executor would have read on to this error, and the statement fails with it.
        _abandon(iterator, exc)
        return b""
    if not parts:
        del _sets[iterator]
        return b""
    parts.insert(0, _LIST_HEAD.pack(b"[", len(parts)))
    return b"".join(parts)


def _next_plain(iterator):
    rows, _, exact, plain, ahead, whole = _sets[iterator]
    if ahead > 1:
        try:
            return _read_ahead(iterator, rows, exact, plain, ahead, whole)
        except BaseException as exc:
            _abandon(iterator, exc)
            return b""
    row = _advance(iterator)
    if row is _END:
        return b""
    try:
        return _dump(row if type(row) is exact else plain(row))
    except BaseException as exc:
        _abandon(iterator, exc)
        return b""


def _unstage():
    """The input `stage` gave."""
    global _staged
    input, _staged = _staged, None
    return input


def _input():
    """A per-call export's input: the exchange's, or what `stage` gave."""
    return _exchange if _staged is None else _unstage()


def _arguments(args):
    """The procedure a call's marshalled arguments are for, and their values: decoded with the
    collector paused when they did not fit in the exchange (see values.without_collection)."""
    if args is _exchange:
        return _decode_arguments(args)
    try:
        return values.without_collection(_decode_arguments, args)
    except MemoryError:
        raise MemoryError("arguments of %d MB do not fit in the interpreter's memory" % -(-len(args) >> 20)) from None


def _decode_arguments(args):
    handle, argv = _loads(args)
    procedure = _procedures[handle]
    if procedure.decoders or procedure.wants_args:
        argv = _decoded(procedure, argv)
    return procedure, argv


def _decoded(procedure, argv):
    """The arguments as a list (what `args` is), decoded."""
    argv = list(argv)
    for position, decode in procedure.decoders:
        if argv[position] is not None:
            argv[position] = decode(argv[position])
    return argv


# Results whose rows are read ahead, and how many at a time.
_MATERIALIZED = (list, tuple, range, plpy._Result)
_READ_AHEAD = 512
# Rows that cross as nodes, of a `whole` set, read at a time (see next_rows).
_READ_AHEAD_ROWS = 128
_READ_AHEAD_BYTES = 1 << 20
# marshal's list: its type code and length.
_LIST_HEAD = struct.Struct("<ci")
# Values whose conversion runs no Python code but ours.
_INERT = frozenset({type(None), bool, int, float, str, decimal.Decimal})


def _read_ahead(iterator, rows, exact, plain, ahead, whole):
    """`next-plain` for a sequence already made, or a `whole` set: a tuple of whether the set ends
    with these rows, then up to `ahead` rows. The first is the one the executor asked for; unless
    it asks for them all anyway (`whole`), the others are read ahead only while converting them
    runs no code of the user's (see _inert). One that cannot be converted is left for the
    executor to ask for, which a LIMIT may stop short of."""
    out = [False]
    size = 0
    for row in itertools.islice(rows, ahead):
        if len(out) > 1 and not whole and type(row) is not exact and not _inert(row):
            _step_back(iterator, rows, row)
            return _dump(tuple(out))
        try:
            value = row if type(row) is exact else plain(row)
        except BaseException as exc:
            if len(out) == 1:
                _abandon(iterator, exc)
                return b""
            _step_back(iterator, rows, row)
            return _dump(tuple(out))
        out.append(value)
        # Large values go in smaller batches: a batch is copied twice over in the interpreter.
        kind = type(value)
        if kind is not int:
            size += len(value) if kind is str else _size(value)
            if size > _READ_AHEAD_BYTES:
                return _dump(tuple(out))
    if len(out) <= ahead:
        del _sets[iterator]
        if len(out) == 1:
            return b""
        out[0] = True
    return _dump(tuple(out))


def _size(value):
    """Roughly the bytes a plain value (not a str) or row crosses as."""
    if type(value) is list:
        return sum([len(field) if type(field) is str else 8 for field in value])
    return 8


def _inert(row):
    """Whether a row is made of builtin values only, whose conversion calls no method of the user's."""
    kind = type(row)
    if kind is tuple or kind is list:
        return _INERT.issuperset(map(type, row))
    if kind is dict:
        return _INERT.issuperset(map(type, row.values()))
    return kind in _INERT


def _step_back(iterator, rows, row):
    """Puts `row`, the last one read, back: a list's or tuple's iterator steps back; before any
    other iterator (a range's, a generator), it is put in front, which closing passes on."""
    try:
        position = rows.__reduce__()[2]
    except TypeError:
        # A generator cannot say where it is.
        position = None
    if position is not None:
        rows.__setstate__(position - 1)
    else:
        _sets[iterator] = (_put_before(row, rows),) + _sets[iterator][1:]


def _put_before(row, rows):
    yield row
    yield from rows


def _advance(iterator):
    """The next row of a set, or _END once it is exhausted or raised (the set is then released)."""
    try:
        return next(_sets[iterator][0])
    except StopIteration:
        del _sets[iterator]
    except BaseException as exc:
        del _sets[iterator]
        _failed(exc, fetching=True)
    return _END


def _abandon(iterator, exc):
    """A row could not be converted: the set ends, and its generator's cleanup runs."""
    entry = _sets.pop(iterator, None)
    if entry is not None:
        _close(entry[0])
    _failed(exc, fetching=True)


def _collect_after(error):
    """Collects garbage after a call ran out of memory: what only reference cycles hold (a
    sqlite3 connection, say) is freed by nothing else, as the allocations that would start a
    collection fail first."""
    if error is not None and error.class_name == "MemoryError":
        gc.collect()


def _failed(exc, making=procedures.RETURN_VALUE, fetching=False):
    """Keeps what a per-call export raised, for `take_error`; a conversion failed on `making`, or
    a set's iterator raised (`fetching`)."""
    global _error
    _error = procedures.describe(exc, making=making)
    if fetching:
        procedures.as_fetch_error(_error)


def _close(rows):
    """Runs a generator's cleanup (`finally`, `with`) when the host stops reading it early. What
    it raises goes to the server's log, as PL/Python's "Exception ignored" does."""
    close = getattr(rows, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as exc:
            hostio.log_ignored(exc, rows)


# Last, as the snapshot is taken: what exists now is kept out of the collector's reach, so that a
# collection in a running interpreter does not write to (and so copy) every page of the snapshot
# that each interpreter shares with the others until it writes to it.
gc.collect()
gc.freeze()
