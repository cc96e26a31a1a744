"""Classes of the values plpywasm gives Python that neither Python nor PL/Python has a class for:
ranges and multiranges, as psycopg 3 gives them (psycopg.types.range): `Range(lower, upper,
bounds="[)", empty=False)` and `Multirange([range, …])`. Their `str()` is the literal PostgreSQL
reads, which is how a returned one reaches the database: by the type's input function, its bounds
written as their type's output function writes them (see `_text`). And `JsonString`, a json or
jsonb value that is a JSON string, and `JsonArray`, an element of a json[] or jsonb[] that is a
JSON array."""

import datetime
import re

_BOUNDS = ("[)", "(]", "()", "[]")
# What makes PostgreSQL quote a bound (rangetypes.c, range_bound_escape).
_SPECIAL = frozenset('"\\()[],')
# And a row's field (rowtypes.c, record_out), and an array's element (arrayfuncs.c, array_out).
_ROW_SPECIAL = frozenset('"\\(),')
_ARRAY_SPECIAL = frozenset('{}"\\,')
_timedelta = datetime.timedelta


class JsonString(str):
    """A json or jsonb value that is a JSON string, as read from PostgreSQL: a str that stays a JSON
    string when it goes back, where a plain str given for json or jsonb is JSON text (as PL/Python
    and psycopg take it: `json.dumps(d)` is `d`)."""

    __slots__ = ()


class JsonArray(list):
    """An element of an array of json or jsonb that is a JSON array, as read from PostgreSQL: a
    list that stays one element when the array goes back, where a plain list in an array is one
    of its dimensions (as in PL/Python)."""

    __slots__ = ()


class Range:
    """A range; `None` for a bound is no bound (-infinity / infinity). Immutable and hashable.
    A bound that is a row (of a range over a composite type) is a tuple or a dict in column
    order."""

    __slots__ = ("_lower", "_upper", "_bounds")

    def __init__(self, lower=None, upper=None, bounds="[)", empty=False):
        if empty:
            lower = upper = bounds = None
        else:
            if bounds not in _BOUNDS:
                raise ValueError("bound flags not valid: %r" % (bounds,))
            # No bound is never inclusive, as PostgreSQL has it.
            bounds = ("(" if lower is None else bounds[0]) + (")" if upper is None else bounds[1])
        object.__setattr__(self, "_lower", lower)
        object.__setattr__(self, "_upper", upper)
        object.__setattr__(self, "_bounds", bounds)

    def __setattr__(self, name, value):
        raise AttributeError("Range is immutable")

    lower = property(lambda self: self._lower, doc="The lower bound, or None.")
    upper = property(lambda self: self._upper, doc="The upper bound, or None.")
    bounds = property(lambda self: self._bounds, doc='"[)", "(]", "()" or "[]"; None if empty.')
    isempty = property(lambda self: self._bounds is None)
    lower_inf = property(lambda self: self._bounds is not None and self._lower is None)
    upper_inf = property(lambda self: self._bounds is not None and self._upper is None)
    lower_inc = property(lambda self: self._bounds is not None and self._bounds[0] == "[")
    upper_inc = property(lambda self: self._bounds is not None and self._bounds[1] == "]")

    def __contains__(self, x):
        if self._bounds is None:
            return False
        lower, upper = self._lower, self._upper
        if isinstance(x, str) or isinstance(lower, str) or isinstance(upper, str):
            x, lower, upper = _in_time_order(x, lower, upper)
        if lower is not None and (x < lower if self._bounds[0] == "[" else x <= lower):
            return False
        if upper is not None and (x > upper if self._bounds[1] == "]" else x >= upper):
            return False
        return True

    def __bool__(self):
        return self._bounds is not None

    def _key(self):
        return (self._lower, self._upper, self._bounds)

    def __eq__(self, other):
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __lt__(self, other):
        """Ordered by lower bound, then upper bound, then bounds; None (no bound, or empty)
        first."""
        if not isinstance(other, Range):
            return NotImplemented
        for mine, theirs in zip(self._key(), other._key()):
            if mine == theirs:
                continue
            if mine is None or theirs is None:
                return mine is None
            return mine < theirs
        return False

    def __le__(self, other):
        return self == other or self < other

    def __gt__(self, other):
        if not isinstance(other, Range):
            return NotImplemented
        return other < self

    def __ge__(self, other):
        return self == other or self > other

    def __repr__(self):
        if self._bounds is None:
            return "%s(empty=True)" % type(self).__name__
        return "%s(%r, %r, %r)" % (type(self).__name__, self._lower, self._upper, self._bounds)

    def __str__(self):
        if self._bounds is None:
            return "empty"
        return "%s%s,%s%s" % (self._bounds[0], _bound_text(self._lower), _bound_text(self._upper), self._bounds[1])

    def __reduce__(self):
        if self._bounds is None:
            return (type(self), (None, None, "[)", True))
        return (type(self), self._key())


# A date or timestamp Python cannot hold, as it crosses (see README): its ISO text.
_DATE_TEXT = re.compile(r"(\d{4,})-(\d\d)-(\d\d)( \d\d:\d\d:\d\d(?:\.\d+)?)?(?:[+-]\d\d(?::\d\d)*)?( BC)?")


def _in_time_order(*values):
    """`values` (a value and a range's bounds) as keys in time order, where some are dates or
    timestamps Python cannot hold, crossed as text; as they are otherwise (a text range)."""
    keys = []
    for value in values:
        if value is None or not isinstance(value, str):
            keys.append(value if value is None else (2, value))
        elif value in ("-infinity", "infinity"):
            keys.append((0 if value[0] == "-" else 4,))
        else:
            match = _DATE_TEXT.fullmatch(value)
            if match is None:
                return values
            year, month, day, time, bc = match.groups()
            # Years BC count down; after 9999, up.
            keys.append((1, -int(year), month, day, time or "") if bc else (3, int(year), month, day, time or ""))
    return keys


def _bound_text(value):
    """A bound as range_out writes it: quoted if empty or holding what delimits a bound."""
    return "" if value is None else _quoted(_text(value), _SPECIAL)


def _text(value):
    """A value's literal, as the type's output function writes it: for a row (a tuple, or a dict in
    column order), an array (a list), bytes and a timedelta, as record_out, array_out, byteaout
    and interval_out do; for anything else, its str()."""
    if isinstance(value, (tuple, dict)):
        fields = value.values() if isinstance(value, dict) else value
        return "(%s)" % ",".join("" if field is None else _quoted(_text(field), _ROW_SPECIAL) for field in fields)
    if isinstance(value, list):
        return "{%s}" % ",".join(_array_element(item) for item in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, _timedelta):
        return _interval_text(value)
    return str(value)


def _array_element(value):
    if value is None:
        return "NULL"
    text = _text(value)
    if isinstance(value, list) or (text and text.upper() != "NULL" and not any(c in _ARRAY_SPECIAL or c.isspace() for c in text)):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


# timedelta's own fields: a subclass may shadow the attributes, not what the value holds.
_days_of, _seconds_of, _microseconds_of = _timedelta.days.__get__, _timedelta.seconds.__get__, _timedelta.microseconds.__get__


def _interval_parts(value):
    """A timedelta's days and microseconds as an interval holds them: the time part has the sign
    of the whole, which a timedelta's, always positive, has not (PostgreSQL shows -00:00:01, not
    -1 days +23:59:59)."""
    days = _days_of(value)
    microseconds = _seconds_of(value) * 1_000_000 + _microseconds_of(value)
    if days < 0 and microseconds > 0:
        return days + 1, microseconds - 86_400_000_000
    return days, microseconds


def _interval_text(value):
    """As interval_out writes an interval (see _interval_parts)."""
    days, microseconds = _interval_parts(value)
    sign = "-" if microseconds < 0 else ""
    seconds, microseconds = divmod(abs(microseconds), 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return "%d days %s%02d:%02d:%02d.%06d" % (days, sign, hours, minutes, seconds, microseconds)


def _quoted(text, special):
    if text and not any(c in special or c.isspace() for c in text):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '""')


class Multirange(list):
    """A multirange: a list of Ranges."""

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, list.__repr__(self))

    def __str__(self):
        return "{%s}" % ",".join(map(str, self))
