"""The `plpy` module, as PL/Python users know it: messages, queries, quoting and errors.

Queries run on the host, with the calling role's privileges, each in its own subtransaction: a
database error comes back as `plpy.SPIError` (or its subclass for the SQLSTATE, in
`plpy.spiexceptions`) that Python code may catch and go on.
"""

# Everything here but the public API has a leading underscore, and dir(plpy) leaves it out (see
# __dir__): it shows what PL/Python's does.
import collections as _collections
from operator import index as _index
import sys as _sys
import types as _types
import weakref as _weakref
from marshal import loads as _loads

import sqlstates as _sqlstates
import values as _values
from hostio import optional_text as _optional_text, wit_text as _wit_text
from componentize_py_types import Err as _Err
from wit_world.imports import database as _database, host as _host
from wit_world.imports.database import TransactionStep as _TransactionStep

# PostgreSQL's elog levels, as the host takes them.
_DEBUG2, _LOG, _INFO, _NOTICE, _WARNING = 13, 15, 17, 18, 19

_FIELDS = ("detail", "hint", "sqlstate", "schema_name", "table_name", "column_name", "datatype_name", "constraint_name")


class _Reported(Exception):
    """An exception that ends the function with its own SQLSTATE, detail and hint."""

    def __init__(self, *args, **fields):
        super().__init__(*args)
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError("'%s' is an invalid keyword argument for this function" % sorted(unknown)[0])
        for name in _FIELDS:
            # A spiexceptions class knows its own SQLSTATE.
            setattr(self, name, fields.get(name, getattr(type(self), name, None)))

    def _extra_fields(self):
        """The fields beyond SQLSTATE, detail and hint that are set, as the host takes them."""
        return [(name, _optional_text(getattr(self, name))) for name in _FIELDS[3:] if getattr(self, name, None) is not None]


class Error(_Reported):
    """Raised by plpy.error(); ends the function with an ERROR."""


class Fatal(_Reported):
    """Raised by plpy.fatal(); ends the session, as in PL/Python."""


class SPIError(_Reported):
    """A database error inside plpy.execute; `sqlstate`, `detail` and `hint` say which, and
    `query` and `position` where a syntax error is."""

    query = None
    position = None

    @property
    def spidata(self):
        """PL/Python's tuple: the packed SQLSTATE, detail, hint, query, position and the fields."""
        return (_packed_sqlstate(self.sqlstate), self.detail, self.hint, self.query, self.position or 0) + tuple(
            getattr(self, name) for name in _FIELDS[3:]
        )

    def _extra_fields(self):
        # Uncaught, the error reports its query and the place in it, as PostgreSQL showed them.
        fields = super()._extra_fields()
        if self.query is not None:
            fields.append(("internal_query", _optional_text(self.query)))
            if self.position:
                fields.append(("internal_position", str(int(self.position))))
        return fields


def _packed_sqlstate(sqlstate):
    """PostgreSQL's number for a SQLSTATE (MAKE_SQLSTATE): six bits per character."""
    if not isinstance(sqlstate, str) or len(sqlstate) != 5:
        return 0
    return sum(((ord(c) - ord("0")) & 0x3F) << (6 * i) for i, c in enumerate(sqlstate))


for _cls in (Error, Fatal, SPIError):
    _cls.__module__ = "plpy"

spiexceptions = _types.ModuleType("spiexceptions", "One SPIError subclass per PostgreSQL error condition.")
_BY_SQLSTATE = {}
for _code, _name in _sqlstates.CONDITIONS:
    _class_name = "".join(part.capitalize() for part in _name.split("_"))
    if not hasattr(spiexceptions, _class_name):
        _cls = type(_class_name, (SPIError,), {"__module__": "spiexceptions", "sqlstate": _code})
        setattr(spiexceptions, _class_name, _cls)
    _BY_SQLSTATE.setdefault(_code, getattr(spiexceptions, _class_name))
_sys.modules["plpy.spiexceptions"] = spiexceptions


def _message(args, fields):
    """The message of plpy.info(...) and the like, given by position or as `message=`, as in
    PL/Python; the other keywords become their str(), None too ("None"), as PL/Python's manual
    says, and the SQLSTATE is checked, as they do."""
    if "message" in fields:
        if args:
            raise TypeError("argument 'message' given by name and position")
        args = (fields.pop("message"),)
    for name in _FIELDS:
        if name in fields:
            fields[name] = str(fields[name])
    sqlstate = fields.get("sqlstate")
    if sqlstate is not None:
        if len(sqlstate) != 5 or not all("0" <= c <= "9" or "A" <= c <= "Z" for c in sqlstate):
            raise ValueError("invalid SQLSTATE code")
    return str(args[0]) if len(args) == 1 else str(args)


def _report(level, args, fields):
    message = _message(args, fields)
    report = _Reported(**fields)  # validates the keywords
    try:
        _host.report(level, _wit_text(message), _optional_text(report.detail), _optional_text(report.hint), _optional_text(report.sqlstate), report._extra_fields() or None)
    except _Err as err:
        # Sending it failed (a character the client's encoding lacks): plpy.Error, as in PL/Python.
        err.with_traceback(None)
        failure = err.value
        raise Error(failure.message, sqlstate=failure.sqlstate, detail=failure.detail, hint=failure.hint) from None


def debug(*args, **fields):
    _report(_DEBUG2, args, fields)


def log(*args, **fields):
    _report(_LOG, args, fields)


def info(*args, **fields):
    _report(_INFO, args, fields)


def notice(*args, **fields):
    _report(_NOTICE, args, fields)


def warning(*args, **fields):
    _report(_WARNING, args, fields)


def error(*args, **fields):
    raise Error(_message(args, fields), **fields)


def fatal(*args, **fields):
    raise Fatal(_message(args, fields), **fields)


class _Result(list):
    """What plpy.execute returns: a list of rows (dicts by column name) with the query's status.
    A list itself, so that indexing and iterating it run no Python code."""

    __slots__ = ("_status", "_nrows", "_columns")

    def nrows(self):
        return self._nrows

    def status(self):
        return self._status

    def _column_info(self, index):
        if self._columns is None:
            raise Error("command did not produce a result set")
        return list(self._columns[index])

    def colnames(self):
        return self._column_info(0)

    def coltypes(self):
        return self._column_info(1)

    def coltypmods(self):
        return self._column_info(2)

    def __str__(self):
        return "<PLyResult status=%d nrows=%d rows=%s>" % (self._status, self._nrows, list.__repr__(self))

    __repr__ = __str__


def _result(rows):
    """The Result of a query's `rows` (wit/plpywasm.wit), set up here rather than in an __init__:
    list's own is quicker."""
    if len(rows) < _LARGE_RESULT:
        return _make_result(rows)
    return _values.without_collection(_make_result, rows)


# Bytes of a query's result above which it is built with the collector paused.
_LARGE_RESULT = 1 << 14


def _make_result(rows):
    status, processed, names, types, typmods, decodings, columns = _loads(rows)
    result = _Result(_values.decode_rows(names, processed, decodings, columns))
    result._status = status
    result._nrows = processed
    result._columns = None if names is None else (names, types, typmods)
    return result


def _spi(call, *args):
    """Calls the host; a database error becomes plpy.SPIError (the subclass for its SQLSTATE)."""
    try:
        return call(*args)
    except _Err as err:
        # The bindings' frame that raised the Err holds it: a cycle through its traceback, which
        # would keep this frame and its callers (a cursor, whose portal stays pinned) alive until
        # the collector runs. And the new error is raised as it is made, for the same reason.
        err.with_traceback(None)
        raise _spi_error(err.value) from None


def _rows(call, *args):
    """A query's reply (see `rows` in wit/plpywasm.wit). One too large to cross whole comes in
    parts into a buffer made here: if the memory cannot hold it, the MemoryError is raised here,
    where Python can catch it."""
    rows = _spi(call, *args)
    if rows[0]:
        return rows
    try:
        buffer = bytearray(int.from_bytes(rows[1:], "little"))
        _values.check_part_room()
        size = 0
        while (part := _database.next_part(True)) is not None:
            buffer[size : size + len(part)] = part
            size += len(part)
    except BaseException:
        _database.next_part(False)
        raise
    if size != len(buffer):
        # (Only if a query ran while it was taken, from a finalizer, and replaced it.)
        raise SPIError("the query's reply was cut short")
    return buffer


def _spi_error(failure):
    # No SQLSTATE: SPI refused the statement itself (PL/Python's plain SPIError).
    sqlstate = failure.sqlstate or None
    error = _BY_SQLSTATE.get(sqlstate, SPIError)(
        failure.message, sqlstate=sqlstate, detail=failure.detail, hint=failure.hint, **dict(failure.fields or ())
    )
    error.query = failure.query
    error.position = failure.position or None
    return error


# SPI counts rows in an int64.
_ALL_ROWS = (1 << 63) - 1


def _limit(limit, failed):
    """A row count as SPI takes it: 0 is all rows, and one past what SPI counts means all rows too.
    A negative one is SPI's argument error, raised as PL/Python raises it."""
    limit = _index(limit)
    if limit < 0:
        raise SPIError("%s failed: SPI_ERROR_ARGUMENT" % failed)
    return min(limit, _ALL_ROWS)


def _sql_text(text):
    """SQL as the host takes it. One with a lone surrogate, which has no UTF-8 form, is refused
    (UnicodeEncodeError), as PL/Python refuses it: a query is not changed to fit."""
    if not text.isascii():
        text.encode()
    return text


def execute(query, *rest):
    """plpy.execute(query[, max_rows]) or plpy.execute(plan[, arguments[, max_rows]])."""
    if isinstance(query, _Plan):
        return query.execute(*rest)
    if not isinstance(query, str) or len(rest) > 1 or rest and not isinstance(rest[0], int):
        # PL/Python's words, and its exception, for any call it cannot read.
        raise Error("plpy.execute expected a query or a plan")
    return _result(_rows(_database.execute, _sql_text(query), _limit(rest[0], "SPI_execute") if rest else 0))


def prepare(query, argtypes=None):
    """plpy.prepare(query[, argtypes]): a plan with parameters $1, $2, … of the named types."""
    if not isinstance(query, str):
        raise TypeError("plpy.prepare expected a query as its first argument")
    if argtypes is None:
        argtypes = []
    if not _values.is_sequence(argtypes):
        raise TypeError("second argument of plpy.prepare must be a sequence")
    names = _values.items(argtypes)
    for position, name in enumerate(names):
        if not isinstance(name, str):
            # PL/Python's words, and its exception (an error without a SQLSTATE of its own).
            raise _BY_SQLSTATE["XX000"]("plpy.prepare: type name at ordinal position %d is not a string" % position, sqlstate="XX000")
    names = [_sql_text(str.__str__(name)) for name in names]
    return _Plan(_spi(_database.prepare, _sql_text(query), names or None))


class _Plan:
    """What plpy.prepare returns: run it with execute() or open a cursor() over it."""

    __slots__ = ("_id", "_encoders")

    def __init__(self, plan):
        self._id = plan.id
        self._encoders = [_values.encoder(shape) for shape in plan.params or ()]

    def _params(self, args):
        if args is None:
            args = ()
        if not _values.is_sequence(args):
            raise TypeError("plpy.execute takes a sequence as its second argument")
        if len(args) != len(self._encoders):
            raise TypeError(
                "Expected sequence of %d argument%s, got %d: %r"
                % (len(self._encoders), "" if len(self._encoders) == 1 else "s", len(args), args)
            )
        out = []
        try:
            for encode, arg in zip(self._encoders, args):
                encode(arg, out)
        except _values.ConversionError as exc:
            # As PostgreSQL's error converting it would be: plpy.SPIError, of its SQLSTATE's class.
            raise _BY_SQLSTATE.get(exc.sqlstate, SPIError)(
                str(exc), sqlstate=exc.sqlstate, detail=exc.detail, hint=exc.hint
            ) from None
        # As characters: the bindings never free bytes given to the host (wit/plpywasm.wit).
        return _values.dump(out).decode("latin-1")

    def execute(self, args=None, limit=0):
        return _result(_rows(_database.execute_plan, self._id, self._params(args), _limit(limit, "SPI_execute_plan")))

    def cursor(self, args=None):
        return _Cursor(_spi(_database.open_cursor, "", self._id, self._params(args)))

    def status(self):
        return True

    def __del__(self):
        try:
            _database.free_plan(self._id)
        except BaseException:
            pass


def cursor(query, args=None):
    """plpy.cursor(query) or plpy.cursor(plan[, arguments]): rows fetched as they are read."""
    if isinstance(query, _Plan):
        return query.cursor(args)
    if not isinstance(query, str):
        raise TypeError("plpy.cursor expected a query or a plan as its first argument")
    if args is not None:
        raise TypeError("plpy.cursor of a query takes no arguments")
    return _Cursor(_spi(_database.open_cursor, _sql_text(query), None, ""))


# Rows a cursor's iteration fetches at a time, where it may read ahead.
_READ_AHEAD = 100


class _Cursor:
    """Rows of a query, fetched on demand: fetch(n), iteration, close()."""

    __slots__ = ("_id", "_step", "_closed", "_buffer", "_batch", "_ahead", "_aborted", "_columns", "__weakref__")

    def __init__(self, cursor):
        self._id = cursor.id
        # Rows fetched at a time while iterating: one, as in PL/Python, unless nothing could tell
        # when the query made them (see wit/plpywasm.wit's `cursor`).
        self._step = _READ_AHEAD if cursor.read_ahead else 1
        self._closed = False
        self._buffer = _collections.deque()
        self._batch = None
        # Whether iteration's last fetch read ahead of the row Python last got: the buffer's rows,
        # and the end, if that fetch reached it.
        self._ahead = False
        # Whether the subtransaction it was opened in rolled back, and its portal with it.
        self._aborted = False
        # Iteration one row at a time: the names and decodings of its columns, which the host
        # then sends once.
        self._columns = None
        if _subtransaction_cursors:
            _subtransaction_cursors[-1].add(self)

    def fetch(self, count):
        if self._closed:
            raise ValueError("fetch from a closed cursor")
        if self._aborted:
            raise ValueError("iterating a cursor in an aborted subtransaction")
        # Negative: backward, where the query's plan can scan backward (as FETCH and PL/Python).
        count = max(min(_index(count), _ALL_ROWS), -_ALL_ROWS)
        buffer = self._buffer
        if count <= 0 and self._ahead:
            # Iteration read ahead of where Python is: the cursor steps back over those rows first
            # (and over the end, if it went past it: the host knows), to the row Python last got.
            back = -len(buffer)
            buffer.clear()
            self._ahead = False
            self._fetch(back, True)
        if not self._ahead:
            return self._fetch(count, False)
        # Iteration read ahead: those rows come first, as if iteration had taken one at a time,
        # then more, read ahead the same way (the host may hold rows it read already).
        # (An error on the way loses the rows taken before it, as one fetch of them all would.)
        rows = []
        while len(rows) < count:
            if not buffer and not self._read_batch():
                break
            rows.append(buffer.popleft())
        result = _Result(rows)
        result._status = self._batch._status
        result._nrows = len(rows)
        result._columns = self._batch._columns
        return result

    def _read_batch(self):
        """Reads iteration's next rows into the buffer; False at the end."""
        self._batch = self._fetch(self._step, self._step > 1)
        self._buffer.extend(self._batch)
        self._ahead = self._step > 1 and bool(self._batch)
        # Kept for its columns: the rows it held are the buffer's, and may be large.
        self._batch.clear()
        return bool(self._buffer)

    def _fetch(self, count, ahead):
        return _result(self._reply(count, ahead, False))

    def _reply(self, count, ahead, described):
        try:
            return _rows(_database.fetch, self._id, count, ahead, described)
        except _BY_SQLSTATE["34000"]:
            # The portal went with the (sub)transaction that opened it: PL/Python's words.
            raise ValueError("iterating a cursor in an aborted subtransaction") from None

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise ValueError("iterating a closed cursor")
        if self._aborted:
            # Rows read ahead went with it too, as PL/Python's one-row fetches would find.
            raise ValueError("iterating a cursor in an aborted subtransaction")
        if self._step == 1:
            # One row at a time: no batch to keep, no result to make, the columns described once.
            known = self._columns
            _, processed, names, _, _, decodings, columns = _loads(self._reply(1, False, known is not None))
            if known is None:
                self._columns = names, decodings
            else:
                names, decodings = known
            if not processed:
                raise StopIteration
            return next(iter(_values.decode_rows(names, processed, decodings, columns)))
        # Reading ahead, the rows before a failing one come first, the error after them.
        if not self._buffer and not self._read_batch():
            raise StopIteration
        return self._buffer.popleft()

    def close(self):
        if self._closed:
            return
        # A cursor whose portal has gone stays open, and says so at every close, as PL/Python's.
        if self._aborted:
            raise ValueError("closing a cursor in an aborted subtransaction")
        try:
            _spi(_database.close_cursor, self._id)
        except _BY_SQLSTATE["34000"]:
            self._aborted = True
            raise ValueError("closing a cursor in an aborted subtransaction") from None
        self._closed = True

    def __del__(self):
        try:
            if self._aborted and not self._closed:
                # close() refuses, as PL/Python's; the host still forgets the portal that went.
                self._closed = True
                _database.close_cursor(self._id)
            else:
                self.close()
        except BaseException:
            pass


# The host's words, and PL/Python's, for exiting a subtransaction that is no longer there.
_NO_SUBTRANSACTION = "there is no subtransaction to exit from"


class _Subtransaction:
    """`with plpy.subtransaction():` — the block's work is undone if it raises."""

    __slots__ = ("_entered", "_exited")

    def __init__(self):
        self._entered = self._exited = False

    def __enter__(self):
        if self._entered:
            raise ValueError("this subtransaction has already been entered")
        _spi(_database.transaction, _TransactionStep.BEGIN_SUB)
        self._entered = True
        _subtransaction_cursors.append(_weakref.WeakSet())
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._entered:
            raise ValueError("this subtransaction has not been entered")
        if self._exited:
            raise ValueError("this subtransaction has already been exited")
        try:
            _spi(_database.transaction, _TransactionStep.ROLLBACK_SUB if exc_type else _TransactionStep.RELEASE_SUB)
            aborted = exc_type is not None
        except _BY_SQLSTATE["25000"] as error:
            if error.args[0] != _NO_SUBTRANSACTION:
                raise
            # None is open in this call. Either it was aborted, with a warning, when the call
            # that entered it returned (a generator yielded inside the block, or it was kept for
            # a later call), and an error the block raised goes on rather than this one; or a
            # call nested in the one that entered it tried to exit it, which leaves it as it was.
            if exc_type is None:
                raise ValueError(_NO_SUBTRANSACTION) from None
            aborted = True
        self._exited = True
        # The innermost one's: SPI ends the innermost subtransaction, whichever object exits.
        opened = _subtransaction_cursors.pop() if _subtransaction_cursors else ()
        if aborted:
            for cursor in opened:
                cursor._aborted = True
                cursor._buffer.clear()
        elif _subtransaction_cursors:
            _subtransaction_cursors[-1].update(opened)
        return False

    enter = __enter__
    exit = __exit__


# Their names in PL/Python, for code that looks at type(...).__name__.
for _cls, _name in ((_Result, "PLyResult"), (_Plan, "PLyPlan"), (_Cursor, "PLyCursor"), (_Subtransaction, "PLySubtransaction")):
    _cls.__name__ = _cls.__qualname__ = _name


# The cursors opened in each subtransaction `with plpy.subtransaction()` has open, innermost last:
# a rollback ends their portals.
_subtransaction_cursors = []


def subtransaction():
    return _Subtransaction()


def commit():
    """Commits the transaction, in a procedure or DO block called outside a transaction block."""
    _spi(_database.transaction, _TransactionStep.COMMIT)


def rollback():
    _spi(_database.transaction, _TransactionStep.ROLLBACK)


def _string_argument(function, string, expected="str"):
    """Refuses what PL/Python's quoting functions refuse: anything but a str, a str with a NUL."""
    if not isinstance(string, str):
        raise TypeError(
            "%s() argument 1 must be %s, not %s" % (function, expected, "None" if string is None else type(string).__name__)
        )
    if "\0" in string:
        raise ValueError("embedded null character")


def quote_literal(string):
    """A SQL string literal, as PostgreSQL's quote_literal makes it."""
    _string_argument("quote_literal", string)
    return _quoted(string)


def _quoted(string):
    escaped = string.replace("'", "''")
    if "\\" in string:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return "'" + escaped + "'"


def quote_nullable(string):
    if string is None:
        return "NULL"
    _string_argument("quote_nullable", string, "str or None")
    return _quoted(string)


def quote_ident(string):
    """An identifier, quoted only where PostgreSQL needs it."""
    _string_argument("quote_ident", string)
    return _host.quote_ident(_wit_text(string))


def __dir__():
    return [name for name in globals() if not name.startswith("_") or name.startswith("__")]
