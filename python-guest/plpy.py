"""The `plpy` module, as PL/Python users know it: messages, queries, quoting and errors.

Queries run on the host, with the calling role's privileges, each in its own subtransaction: a
database error comes back as `plpy.SPIError` (or its subclass for the SQLSTATE, in
`plpy.spiexceptions`) that Python code may catch and go on.
"""

import sys
import types

import sqlstates
import values
from componentize_py_types import Err
from wit_world.imports import host

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


class Error(_Reported):
    """Raised by plpy.error(); ends the function with an ERROR."""


class Fatal(_Reported):
    """Raised by plpy.fatal(); ends the session, as in PL/Python."""


class SPIError(_Reported):
    """A database error inside plpy.execute; `sqlstate`, `detail` and `hint` say which."""

    @property
    def spidata(self):
        return (self.detail, self.hint)


for _cls in (Error, Fatal, SPIError):
    _cls.__module__ = "plpy"

spiexceptions = types.ModuleType("spiexceptions", "One SPIError subclass per PostgreSQL error condition.")
_BY_SQLSTATE = {}
for _code, _name in sqlstates.CONDITIONS:
    _class_name = "".join(part.capitalize() for part in _name.split("_"))
    if not hasattr(spiexceptions, _class_name):
        _cls = type(_class_name, (SPIError,), {"__module__": "spiexceptions", "sqlstate": _code})
        setattr(spiexceptions, _class_name, _cls)
    _BY_SQLSTATE.setdefault(_code, getattr(spiexceptions, _class_name))
sys.modules["plpy.spiexceptions"] = spiexceptions


def _message(args):
    return str(args[0]) if len(args) == 1 else str(args)


def _report(level, args, fields):
    report = _Reported(**fields)  # validates the keywords
    host.report(level, _message(args), _text(report.detail), _text(report.hint), _text(report.sqlstate))


def _text(value):
    return None if value is None else str(value)


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
    raise Error(_message(args), **fields)


def fatal(*args, **fields):
    raise Fatal(_message(args), **fields)


class Result:
    """What plpy.execute returns: a list of rows (dicts by column name) with the query's status."""

    __slots__ = ("_rows", "_status", "_nrows", "_columns")

    def __init__(self, rows):
        self._status = rows.status
        self._nrows = rows.processed
        self._columns = (rows.colnames, rows.coltypes, rows.coltypmods) if rows.colnames else None
        self._rows = values.decode_rows(rows.colnames, rows.values)

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

    def __len__(self):
        return len(self._rows)

    def __getitem__(self, index):
        return self._rows[index]

    def __setitem__(self, index, value):
        self._rows[index] = value

    def __delitem__(self, index):
        del self._rows[index]

    def __iter__(self):
        return iter(self._rows)

    def __str__(self):
        return "<PLyResult status=%d nrows=%d rows=%r>" % (self._status, self._nrows, self._rows)

    __repr__ = __str__


def execute(query, *rest):
    """plpy.execute(query[, max_rows]): runs `query`; every row when max_rows is 0 or absent."""
    if not isinstance(query, str):
        raise NotImplementedError("plpy.prepare plans are not supported yet; pass the query as a string")
    if len(rest) > 1:
        raise TypeError("plpy.execute expected at most 2 arguments, got %d" % (len(rest) + 1))
    limit = int(rest[0]) if rest else 0
    if limit < 0:
        limit = 0
    try:
        return Result(host.execute(query, limit))
    except Err as err:
        failure = err.value
        raise _BY_SQLSTATE.get(failure.sqlstate, SPIError)(
            failure.message, sqlstate=failure.sqlstate, detail=failure.detail, hint=failure.hint
        ) from None


def _not_yet(name):
    def refuse(*args, **kwargs):
        raise NotImplementedError("plpy.%s is not supported by PL/plpywasm yet" % name)

    refuse.__name__ = name
    return refuse


prepare = _not_yet("prepare")
cursor = _not_yet("cursor")
subtransaction = _not_yet("subtransaction")
commit = _not_yet("commit")
rollback = _not_yet("rollback")


def quote_literal(string):
    """A SQL string literal, as PostgreSQL's quote_literal makes it."""
    escaped = string.replace("'", "''")
    if "\\" in string:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return "'" + escaped + "'"


def quote_nullable(string):
    return "NULL" if string is None else quote_literal(string)


def quote_ident(string):
    """An identifier, quoted only where PostgreSQL needs it."""
    return host.quote_ident(string)
