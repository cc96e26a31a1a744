"""SQL values ⇄ Python objects: the guest's half of the type mapping.

Arguments, a trigger's data and query results arrive marshalled (wit/plpywasm.wit): marshal
holds most values as they are, and the others are decoded by one function each. Results are
encoded by an encoder built once per result shape (when a function is compiled, or when a call
resolves a polymorphic result anew) and run once per call: into a plain value where the shape
allows, else into nodes.
"""

import datetime
import decimal
import gc
import ipaddress
import json
import json.scanner
import marshal
import math
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence, Set
from json.encoder import encode_basestring

from plpywasm import JsonArray, JsonString, Multirange, Range, _interval_parts

from wit_world.imports.types import (
    Decoding,
    Shape_Array,
    Shape_Boolean,
    Shape_Bytes,
    Shape_Composite,
    Shape_Date,
    Shape_Float,
    Shape_Int,
    Shape_Interval,
    Shape_Json,
    Shape_Multirange,
    Shape_Procedure,
    Shape_Text,
    Shape_Timestamp,
    Shape_Timestamptz,
    Shape_Void,
)


def without_collection(make, *args):
    """make(*args), with Python's cycle collector paused. CPython 3.14's collector tracks every
    dict and list, and collecting again and again while a large query result was built (none of
    it garbage) took three quarters of the time of building it."""
    if not _gc_isenabled():
        return make(*args)
    _gc_disable()
    try:
        return make(*args)
    finally:
        _gc_enable()


def check_part_room():
    """Raises MemoryError unless the interpreter has room for a part of a large input or reply
    (a quarter of a megabyte, see the host's PART) as the bindings make it, twice over: they
    cannot raise one Python could catch."""
    bytearray(_PART_ROOM)


_PART_ROOM = 1 << 20


# (Bound once: a body that replaces gc's functions does not change how values convert either.)
_gc_disable, _gc_enable, _gc_isenabled = gc.disable, gc.enable, gc.isenabled

# numeric and json hold integers of any length; Python's guard against slow int ⇄ str
# conversions would refuse them (a runaway conversion is stopped like any other loop).
sys.set_int_max_str_digits(0)


class ConversionError(Exception):
    """A result that does not fit its SQL type, with the SQLSTATE the host reports, and what was
    being made of it (PL/Python's context line, e.g. "while creating return value")."""

    def __init__(self, sqlstate, message, detail=None, hint=None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.context = None


# --- SQL → Python ------------------------------------------------------------------------------

_EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal()
_zones = {0: datetime.timezone.utc}
_timedelta = datetime.timedelta


def _zone(offset_seconds):
    zone = _zones.get(offset_seconds)
    if zone is None:
        zone = _zones[offset_seconds] = datetime.timezone(datetime.timedelta(seconds=offset_seconds))
    return zone


def _time(microseconds, tzinfo=None):
    seconds, us = divmod(microseconds, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return datetime.time(h, m, s, us, tzinfo)


def _json_float(text):
    """A JSON number with a fraction or exponent: a float where that is exact, else a Decimal."""
    value = float(text)
    if repr(value) == text or decimal.Decimal(repr(value)) == decimal.Decimal(text):
        return value
    return decimal.Decimal(text)


def _inet(text):
    return ipaddress.ip_interface(text) if "/" in text else ipaddress.ip_address(text)


# json.loads and json.dumps build a decoder or an encoder per call when given options: build them
# once. (A body that replaces json.loads or json.dumps does not change how values convert either.)
_json_decoder = json.JSONDecoder(parse_float=_json_float)
_json_scan = json.scanner.make_scanner(_json_decoder)
_json_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_JSON_SPACE = " \t\n\r"


def _json_value(text):
    """What json.loads makes of PostgreSQL's JSON text; a JSON string is a JsonString, which stays
    one when it goes back. Text that neither starts nor ends with whitespace (jsonb's never does)
    is scanned at once: decode() first matches a regular expression at each end, which costs as
    much as scanning a small document."""
    if text and text[0] not in _JSON_SPACE and text[-1] not in _JSON_SPACE:
        value, end = _json_scan(text, 0)
        if end != len(text):
            value = _json_decoder.decode(text)
    else:
        value = _json_decoder.decode(text)
    return JsonString(value) if type(value) is str else value


def _json_element(text):
    """An element of an array of json or jsonb: a JSON array is a JsonArray, which an array's
    encoder takes for one element, not a dimension."""
    value = _json_value(text)
    return JsonArray(value) if type(value) is list else value


def _uuid(octets):
    return uuid.UUID(bytes=octets)


def _date(days):
    return datetime.date.fromordinal(_EPOCH_ORDINAL + days)


def _timetz(microseconds, offset_seconds):
    return _time(microseconds, _zone(offset_seconds))


# Timestamps come with their calendar fields (a timestamptz's as its offset shows them): a
# `datetime` made of those costs a fourth of an epoch plus a `timedelta`.
_timestamp = datetime.datetime


def _timestamptz(year, month, day, hour, minute, second, microsecond, offset_seconds):
    return datetime.datetime(year, month, day, hour, minute, second, microsecond, _zone(offset_seconds))


def _interval(days, microseconds):
    # (By position: by keyword, timedelta's arguments cost more than the rest of a conversion.)
    return _timedelta(days, 0, microseconds)


_RANGE_BOUNDS = ("()", "[)", "(]", "[]")


def _range(flags, lower, upper):
    # The flags are PostgreSQL's (wit/plpywasm.wit's `range`); bounds may be tagged values.
    if flags & 1:
        return Range(empty=True)
    if type(lower) in _REVIVED:
        lower = revive(lower)
    if type(upper) in _REVIVED:
        upper = revive(upper)
    return Range(lower, upper, _RANGE_BOUNDS[(flags >> 1) & 3])


def _multirange(ranges):
    return Multirange(map(revive, ranges))


# The case numbers of nodes marshal has no type for, which tag the tuples that stand for them.
_DECIMAL = 6
_JSON = 7
_UUID = 8
_DATE = 9
_TIME = 10
_TIMETZ = 11
_TIMESTAMP = 12
_TIMESTAMPTZ = 13
_INTERVAL = 14
_INET = 15
_CIDR = 16
_ARRAY = 17
_INTS = 18
_FLOATS = 19
_TEXTS = 20
_COMPOSITE = 21
_KEEP = 22
_RANGE = 23
_MULTIRANGE = 24

# What a tuple in a marshalled value stands for, by its tag.
_TAGGED = {
    _DECIMAL: decimal.Decimal,
    _JSON: _json_value,
    _UUID: _uuid,
    _DATE: _date,
    _TIME: _time,
    _TIMETZ: _timetz,
    _TIMESTAMP: _timestamp,
    _TIMESTAMPTZ: _timestamptz,
    _INTERVAL: _interval,
    _INET: _inet,
    _CIDR: ipaddress.ip_network,
    _RANGE: _range,
    _MULTIRANGE: _multirange,
}


def revive(value):
    """A marshalled value with the values its tuples stand for (see wit/plpywasm.wit's decoding):
    lists and dicts are changed in place, and plain values kept without a call each."""
    kind = type(value)
    if kind is tuple:
        return _TAGGED[value[0]](*value[1:])
    if kind is list:
        for position, item in enumerate(value):
            if type(item) is tuple and item[0] == _JSON:
                value[position] = _json_element(item[1])
            elif type(item) in _REVIVED:
                value[position] = revive(item)
    elif kind is dict:
        for name, item in value.items():
            if type(item) in _REVIVED:
                value[name] = revive(item)
    return value


_REVIVED = frozenset((tuple, list, dict))


_DECODINGS = {
    Decoding.DECIMAL: decimal.Decimal,
    Decoding.JSON: _json_value,
    Decoding.TAGGED: revive,
}
# By number too, as the host marshals a query's: Decoding(number) costs more than the decoding.
_DECODINGS.update({kind.value: decode for kind, decode in tuple(_DECODINGS.items())})


def decoders(decodings):
    """(position, decoder) for the marshalled arguments of a call that need decoding
    (wit/plpywasm.wit's decoding)."""
    return tuple((position, _ARGUMENT_DECODINGS[kind]) for position, kind in decodings)


def _json_argument(text):
    """A json or jsonb argument, remembered with its text (see _json_source)."""
    global _json_source_bytes
    value = _json_value(text)
    # (Not None, a bool or a small int: one object each, which any code may return.)
    if type(value) in _JSON_DOCUMENTS and len(text) <= _JSON_SOURCE_BYTES:
        if _json_source_bytes + len(text) > _JSON_SOURCE_BYTES:
            _JSON_SOURCES.clear()
            _json_source_bytes = 0
        # With its top level's values, to tell a changed document at a glance.
        kind = type(value)
        top = tuple(value.values()) if kind is dict else tuple(value) if kind is list else None
        _JSON_SOURCES[id(value)] = (value, text, top)
        _json_source_bytes += len(text)
    return value


def _json_source(obj):
    """The text a json or jsonb argument was read from, if `obj` is that argument, unchanged: given
    back, it goes back as written (a json's formatting, a jsonb number's scale), as PL/Python's
    text does. Unchanged as JSON says (true is not 1, 1.0 is not 1)."""
    source = _JSON_SOURCES.get(id(obj))
    if source is None or source[0] is not obj:
        return None
    _, text, top = source
    if top is None:
        # A number or a JsonString: never changed in place.
        return text
    values = obj.values() if type(obj) is dict else obj
    if len(values) != len(top) or any(value is not kept for value, kept in zip(values, top)):
        return None
    # The same top level; something within may have changed in place, or a key. (jsonb's text is
    # mostly what dumps_json writes.)
    dumped = dumps_json(obj)
    return text if dumped == text or dumps_json(_json_value(text)) == dumped else None


# The last arguments _json_argument read, by id (the entry keeps the value, so no other object
# takes its id): at most this much text, and what it holds, stays alive after their calls.
_JSON_SOURCES = {}
_JSON_DOCUMENTS = frozenset((dict, list, float, decimal.Decimal, JsonString))
_JSON_SOURCE_BYTES = 1 << 18
_json_source_bytes = 0
_ARGUMENT_DECODINGS = {**_DECODINGS, Decoding.JSON: _json_argument}


def decode_rows(names, count, decodings, columns):
    """The rows of a query result (wit/plpywasm.wit's `rows`), as an iterable of dicts by column
    name, from its marshalled columns."""
    if not names:
        # No result set, or rows without columns (`SELECT FROM t`): a dict each, as PL/Python.
        return () if names is None else ({} for _ in range(count))
    if not count:
        return ()
    for position, kind in decodings:
        decode = _DECODINGS[kind]
        columns[position] = [None if value is None else decode(value) for value in columns[position]]
    return map(_row_maker(names), *columns)


_ROW_MAKERS = {}


def _row_maker(names):
    """A function of a row's values, one argument per column, that makes the row's dict: about twice
    as quick as dict(zip(names, values)) per row. Made from source, as collections.namedtuple is;
    kept for the last few hundred column lists."""
    key = tuple(names)
    maker = _ROW_MAKERS.get(key)
    if maker is None:
        params = ", ".join("_%d" % i for i in range(len(key)))
        items = ", ".join("%r: _%d" % (name, i) for i, name in enumerate(key))
        maker = eval("lambda %s: {%s}" % (params, items), {"__builtins__": {}})
        if len(_ROW_MAKERS) >= 256:
            _ROW_MAKERS.clear()
        _ROW_MAKERS[key] = maker
    return maker


# --- Python → SQL ------------------------------------------------------------------------------

# What the nodes of a result are, as marshal takes them (see wit/plpywasm.wit's `node`): a
# scalar's value, or a tuple of the node's case number (_JSON … _COMPOSITE above) and its fields.
_NULL = None
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_MAXDIM = 6


def plain_void(obj):
    if obj is not None:
        raise ConversionError("42804", 'PL/plpywasm function with return type "void" did not return None')
    return None


def plain_procedure(obj):
    if obj is not None:
        error = ConversionError("42804", "PL/plpywasm procedure did not return None")
        error.context = ""  # PL/Python checks this before creating a return value: no context line
        raise error
    return None


def _none_only(plain):
    """The encoder of a result that must be None (void, a procedure's): `plain` checks it."""

    def encode(obj, out):
        plain(obj)
        out.append(_NULL)

    return encode


def _encode_boolean(obj, out):
    out.append(_NULL if obj is None else bool(obj))


def _encode_int(obj, out):
    if type(obj) is int and _INT64_MIN <= obj <= _INT64_MAX:
        out.append(obj)
    else:
        _encode_text(obj, out)


def _encode_float(obj, out):
    if type(obj) is float:
        out.append(obj)
    else:
        _encode_text(obj, out)


def _encode_text(obj, out):
    out.append(_plain_text(obj))


def _encode_bytes(obj, out):
    if obj is None:
        out.append(_NULL)
    elif isinstance(obj, str):
        # bytea's own text form, e.g. '\x00ff', through its input function.
        out.append(_plain_text(obj))
    else:
        out.append(_as_bytes(obj))


def _as_bytes(obj):
    """As PL/Python's PyObject_Bytes: a buffer, __bytes__, or an iterable of ints in range(256)."""
    try:
        if isinstance(obj, int):
            raise TypeError  # bytes(5) would be five zero bytes, not a representation of 5
        octets = bytes(obj)
        # marshal takes exact bytes only; __bytes__ may return a subclass.
        return octets if type(octets) is bytes else bytes(memoryview(octets))
    except (TypeError, ValueError) as e:
        sqlstate = "22003" if isinstance(e, ValueError) else "42804"
        raise ConversionError(
            sqlstate,
            "could not convert Python object of type %s to bytea" % type(obj).__name__,
            str(e) or None,
        ) from None


def _encode_json(obj, out):
    if obj is None:
        out.append(_NULL)
    elif _is_json_document(obj):
        # As a plain str: JSON text, or a JSON string of it if the host finds it is none.
        out.append(_valid_text(obj))
    else:
        out.append((_JSON, _json_text(obj)))


def _is_json_document(obj):
    """Whether `obj` is a plain str that reads as a JSON object or array (what `json.dumps(d)`
    gives): JSON text, as PL/Python and psycopg take a str, kept as written. Any other str, a value
    of a JSON document (`"123"`) or a JsonString included, is a JSON string, as
    `return j["id"]` means it."""
    return type(obj) is str and obj.lstrip(_JSON_SPACE)[:1] in ("{", "[")


def _json_text(obj):
    """JSON text for `obj`. A JSON document given as a str is left to the host, which makes one
    that is no JSON text a JSON string (parsing it here could take more memory and stack than the
    interpreter has)."""
    if _is_json_document(obj):
        return _valid_text(obj)
    try:
        text = (_JSON_SOURCES and _json_source(obj)) or dumps_json(obj)
    except TypeError as exc:
        if not str(exc).startswith(("Object of type ", "keys must be ")):
            # The object's own methods raised it.
            raise
        raise ConversionError("42804", "could not convert Python object to JSON: %s" % exc) from None
    # A lone surrogate (a json value's "\ud800" read in) can only be in a string: escaped, as read.
    return text if text.isascii() else _LONE_SURROGATE.sub(_escaped_surrogate, text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped_surrogate(match):
    return "\\u%04x" % ord(match.group())


def _encode_interval(obj, out):
    if obj is None:
        out.append(_NULL)
    elif isinstance(obj, datetime.timedelta):
        out.append((_INTERVAL, *_interval_parts(obj)))
    else:
        _encode_text(obj, out)


_SCALAR_ENCODERS = {
    Shape_Void: _none_only(plain_void),
    Shape_Procedure: _none_only(plain_procedure),
    Shape_Boolean: _encode_boolean,
    Shape_Int: _encode_int,
    Shape_Float: _encode_float,
    Shape_Text: _encode_text,
    Shape_Bytes: _encode_bytes,
    Shape_Json: _encode_json,
    Shape_Interval: _encode_interval,
    Shape_Date: lambda obj, out: out.append(_plain_date(obj)),
    Shape_Timestamp: lambda obj, out: out.append(_plain_timestamp(obj)),
    Shape_Timestamptz: lambda obj, out: out.append(_plain_timestamptz(obj)),
    Shape_Multirange: lambda obj, out: out.append(_plain_multirange(obj)),
}


def _valid_text(text):
    """`text`, unless it holds a lone surrogate, which no PostgreSQL encoding can store."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise ConversionError(
                "22021", "a Python string returned to PostgreSQL contains a lone surrogate character"
            ) from None
    return text


def _plain_text(obj):
    if obj is None:
        return obj
    # A str subclass's value, as PL/Python and psycopg take it: an `Enum` of strs would say
    # "Status.DONE".
    text = obj if type(obj) is str else str.__str__(obj) if isinstance(obj, str) else str(obj)
    # marshal takes exact strs only; __str__ may return a subclass.
    if type(text) is not str:
        text = str.__str__(text)
    # (ASCII, such as a number's text, needs no check: inline, without a call.)
    return text if text.isascii() else _valid_text(text)


def _plain_float(obj):
    return obj if type(obj) is float else _plain_text(obj)


# A datetime's pickled state: its fields in ten bytes, which the host reads (convert::datetime).
_datetime_state = datetime.datetime.__reduce__
# The offsets of fixed zones (datetime.timezone), by zone: utcoffset() and reading the timedelta
# it returns cost more than the rest of a conversion.
_offsets = {}


def _plain_date(obj):
    """An exact date as its node (days since 2000-01-01); anything else as text."""
    if type(obj) is datetime.date:
        return (_DATE, obj.toordinal() - _EPOCH_ORDINAL)
    return _plain_text(obj)


def _plain_timestamp(obj):
    """A naive datetime as its fields (see wit/plpywasm.wit); anything else as text."""
    if type(obj) is datetime.datetime and obj.tzinfo is None:
        return (_TIMESTAMP, _datetime_state(obj)[1][0])
    return _plain_text(obj)


def _plain_timestamptz(obj):
    """An aware datetime as its fields and UTC offset; anything else as text, which PostgreSQL
    reads in the session's time zone when it names none: what str() of a naive datetime is."""
    if type(obj) is not datetime.datetime:
        return _plain_text(obj)
    zone = obj.tzinfo
    fixed = type(zone) is datetime.timezone
    offset = _offsets.get(zone) if fixed else None
    if offset is None:
        delta = obj.utcoffset()
        if delta is None:
            return _plain_text(obj)
        offset = (delta.days * 86400 + delta.seconds, delta.microseconds)
        if fixed:
            if len(_offsets) > 256:
                _offsets.clear()
            _offsets[zone] = offset
    return (_TIMESTAMPTZ, _datetime_state(obj)[1][0], *offset)


def _plain_multirange(obj):
    """A sequence of ranges (not a str) as the literal of their multirange; anything else as text."""
    if obj is None or isinstance(obj, (str, Multirange)) or not isinstance(obj, (Sequence, Set, Iterator)):
        return _plain_text(obj)
    return _plain_text(Multirange(obj))


_PLAIN_ENCODERS = {
    Shape_Void: plain_void,
    Shape_Procedure: plain_procedure,
    Shape_Boolean: lambda obj: None if obj is None else bool(obj),
    # Exact ints never get here (see _PLAIN_TYPES); anything else is parsed by the host.
    Shape_Int: _plain_text,
    Shape_Float: _plain_float,
    Shape_Text: _plain_text,
    # JSON text, which the host parses: every object goes through here.
    Shape_Json: lambda obj: None if obj is None else _json_text(obj),
    Shape_Date: _plain_date,
    Shape_Timestamp: _plain_timestamp,
    Shape_Timestamptz: _plain_timestamptz,
    Shape_Multirange: _plain_multirange,
}


# The type of a plain result that crosses as it is: the host checks an int's range and a str's
# encoding (a lone surrogate), as the encoders would, at no cost to the common call.
_PLAIN_TYPES = {
    Shape_Void: type(None),
    Shape_Procedure: type(None),
    Shape_Boolean: bool,
    Shape_Int: int,
    Shape_Float: float,
    Shape_Text: str,
}


_PLAIN_FIELDS = (
    Shape_Boolean,
    Shape_Int,
    Shape_Float,
    Shape_Text,
    Shape_Json,
    Shape_Date,
    Shape_Timestamp,
    Shape_Timestamptz,
    Shape_Multirange,
)


def plain_encoder(shapes):
    """For a plain result (a scalar, or a row of scalars), the type that crosses `marshal`led as it
    is, and a function making what crosses of any other object: the plain value (None, bool, int,
    float or str, a str for the host to parse), or a row's list (see encode_row). (None, None) for
    any other shape. The host decides by the same rule (convert::marshal::is_plain_shape)."""
    if not shapes:
        return None, None
    head, field_shapes = shapes[0], shapes[1:]
    if not field_shapes:
        return _PLAIN_TYPES.get(type(head)), _PLAIN_ENCODERS.get(type(head))
    if type(head) is not Shape_Composite or len(field_shapes) != len(head.value):
        return None, None
    if not all(type(shape) in _PLAIN_FIELDS for shape in field_shapes):
        return None, None
    names = head.value
    fields = [_plain_field(type(shape)) for shape in field_shapes]
    # A tuple or list whose values all cross as they are (the common row) is copied as it is,
    # without a Python call per field; json fields always take the long way.
    exact = [_PLAIN_TYPES.get(type(shape)) for shape in field_shapes]
    if None in exact:
        exact = None

    def plain_row(obj):
        kind = type(obj)
        if (kind is tuple or kind is list) and list(map(type, obj)) == exact:
            return [Ellipsis, *obj]
        out = []
        encode_row(obj, out, names, fields, _PLAIN_MARKS)
        return out

    # A None row crosses as it is.
    return type(None), plain_row


def _plain_field(kind):
    exact, plain = _PLAIN_TYPES.get(kind), _PLAIN_ENCODERS[kind]
    return lambda obj, out: out.append(obj if type(obj) is exact else plain(obj))


def encoder(shapes):
    """A function `encode(obj, out)` that appends the nodes of `obj` as a value of this shape."""
    rest = iter(shapes)
    return _encoder(next(rest), rest)


def modified_row_encoder(shapes):
    """For a trigger's row shape, a function `encode(row, original, out)` that appends the nodes
    of the dict `row` (every attribute's name a key), and a keep node for each value that is the
    one `original` had, where that value cannot have changed in place."""
    rest = iter(shapes)
    names = next(rest).value
    fields = [_encoder(next(rest), rest) for _ in names]
    head = _NODE_MARKS[2]

    def encode(row, original, out):
        out.append(head)
        for name, field in zip(names, fields):
            value = row[name]
            if value is original[name] and type(value) in _IMMUTABLE:
                out.append(_KEPT)
            else:
                field(value, out)

    return encode


# The types of values a trigger's row may hold that never change in place.
_IMMUTABLE = frozenset((
    type(None), bool, int, float, str, JsonString, bytes, decimal.Decimal, uuid.UUID,
    datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface, ipaddress.IPv6Interface,
    ipaddress.IPv4Network, ipaddress.IPv6Network, Range,
))
_KEPT = (_KEEP,)


def _encoder(shape, rest, in_array=False):
    kind = type(shape)
    if kind is Shape_Array:
        element_shape = next(rest)
        element = _encoder(element_shape, rest, True)
        # Where elements are multiranges, a Multirange (a list) is one, not a dimension.
        atoms = _ATOMS.get(type(element_shape), ())
        pack = _PACKERS.get(type(element_shape))
        return lambda obj, out: _encode_array(obj, out, element, atoms, pack)
    if kind is Shape_Composite:
        names = shape.value
        fields = [_encoder(next(rest), rest) for _ in names]
        return lambda obj, out: encode_row(obj, out, names, fields, _NODE_MARKS, in_array)
    return _SCALAR_ENCODERS[kind]


_TEXT_AND_BYTES = (str, bytes, bytearray, memoryview)


def items(seq):
    """The items of a sequence by index, as many as its length says (its iteration may not end)."""
    return [seq[i] for i in range(len(seq))]


# Whether objects of a type are sequences, by type; bounded, as bodies may make classes per call.
_SEQUENCE_TYPES = {}


def is_sequence(obj):
    """Whether `obj` is a sequence as PL/Python has one (Python's sequence protocol: indexable and
    sized, so a class of its own with __getitem__ and __len__ too), strings, bytes and mappings aside."""
    kind = type(obj)
    known = _SEQUENCE_TYPES.get(kind)
    if known is None:
        if len(_SEQUENCE_TYPES) > 256:
            _SEQUENCE_TYPES.clear()
        known = _SEQUENCE_TYPES[kind] = not issubclass(kind, (*_TEXT_AND_BYTES, Mapping)) and (
            issubclass(kind, Sequence) or (hasattr(kind, "__getitem__") and hasattr(kind, "__len__"))
        )
    return known


# The sequences that are an element of an array, not a dimension of it, by element shape.
_ATOMS = {Shape_Multirange: (Multirange,), Shape_Json: (JsonArray,)}


def _is_dimension(obj, atoms, top):
    """Whether `obj` is a dimension of an array, as PL/Python has it: any sequence at the top, only
    a list below (a tuple there is an element: a row, or a value like any other)."""
    if atoms and isinstance(obj, atoms):
        return False
    return is_sequence(obj) if top else isinstance(obj, list)


# Packing checks the element types with builtins over the whole list, not a Python loop: a list
# that passes is also flat, an array of one dimension.
_NONE_TYPE = type(None)


def _pack_ints(flat):
    kinds = set(map(type, flat))
    if not kinds <= {int, _NONE_TYPE}:
        return None
    values = [item for item in flat if item is not None] if _NONE_TYPE in kinds else flat
    if values and (min(values) < _INT64_MIN or max(values) > _INT64_MAX):
        return None
    return (_INTS, flat)


def _pack_floats(flat):
    return (_FLOATS, flat) if set(map(type, flat)) <= {float, _NONE_TYPE} else None


def _pack_texts(flat):
    kinds = set(map(type, flat))
    # Anything but plain ASCII goes element by element, each checked.
    if not kinds <= {str, _NONE_TYPE} or not "".join(filter(None, flat)).isascii():
        return None
    return (_TEXTS, flat)


# Element shapes whose arrays may cross packed, when every element is of the plain type.
_PACKERS = {Shape_Int: _pack_ints, Shape_Float: _pack_floats, Shape_Text: _pack_texts}


# A row's NULL, literal and head (see encode_row): as nodes, or as plain values (Ellipsis for the
# head, which the host reads as a row's).
_NODE_MARKS = (_NULL, _plain_text, (_COMPOSITE, []))
_PLAIN_MARKS = (None, _plain_text, Ellipsis)


def _null_or_literal(obj, out, marks=_NODE_MARKS):
    """None, or a str: a row literal such as '(1,x)', read by the type's input function (as
    PL/Python reads it). Whether `obj` was one of those."""
    null, literal, _ = marks
    if obj is None:
        out.append(null)
    elif isinstance(obj, str):
        out.append(literal(obj))
    else:
        return False
    return True


def _encode_array(obj, out, element, atoms, pack):
    if obj is None:
        out.append(_NULL)
        return
    if type(obj) is list and pack is not None and obj:
        # The common array: a list of plain values, packed as it is (a copy: a generator may
        # change the list it yields before its row crosses).
        packed = pack(list(obj))
        if packed is not None:
            out.append((_ARRAY, [len(obj)]))
            out.append(packed)
            return
    if isinstance(obj, _TEXT_AND_BYTES):
        # A sequence of characters (of ints, for bytes), as PL/Python has it: "hello" is {h,e,l,l,o}.
        obj = list(obj)
    if not _is_dimension(obj, atoms, True):
        raise ConversionError(
            "42804",
            "return value of function with array return type is not a Python sequence",
            detail="Got an object of type %s." % type(obj).__name__,
        )
    dims = []
    inner = obj
    top = True
    while _is_dimension(inner, atoms, top):
        if len(dims) == _MAXDIM:
            raise ConversionError(
                "54000", "number of array dimensions exceeds the maximum allowed (%d)" % _MAXDIM
            )
        dims.append(len(inner))
        if not inner:
            break
        inner = inner[0]
        top = False
    flat = []
    _flatten(obj, flat, atoms, dims, 0)
    out.append((_ARRAY, dims))
    packed = pack(flat) if pack is not None and flat else None
    if packed is not None:
        out.append(packed)
    else:
        for item in flat:
            element(item, out)


def _flatten(seq, flat, atoms, dims, depth):
    """Appends the elements of nested sequences, checking that they are as deep and as long as `dims`."""
    if type(seq) is not list and type(seq) is not tuple:
        seq = items(seq)
    if len(seq) != dims[depth]:
        raise ConversionError("22P02", "multidimensional arrays must have array expressions with matching dimensions")
    if depth == len(dims) - 1:
        for item in seq:
            if _is_dimension(item, atoms, False):
                raise ConversionError(
                    "22P02", "multidimensional arrays must have array expressions with matching dimensions"
                )
        flat.extend(seq)
        return
    for item in seq:
        if not _is_dimension(item, atoms, False):
            raise ConversionError(
                "22P02", "multidimensional arrays must have array expressions with matching dimensions"
            )
        _flatten(item, flat, atoms, dims, depth + 1)


# PL/Python's hint where a row in an array is not one: since PostgreSQL 10, [["a", 1]] for an
# array of rows is two dimensions of rows, not one of ("a", 1).
_ROW_IN_ARRAY_HINT = """To return a composite type in an array, return the composite type as a Python tuple, e.g., "[('foo',)]"."""


def encode_row(obj, out, names, fields, marks=_NODE_MARKS, in_array=False):
    """A row from a mapping, a sequence or an object with attributes, as PL/Python takes them.
    `marks` are what stands for a NULL row, a row literal and a row's head: nodes, or
    _PLAIN_MARKS for a row that crosses marshalled. `in_array`: an element of an array."""
    if in_array and isinstance(obj, str) and not obj.lstrip(" \t\n\r\v\f").startswith("("):
        # As PL/Python says it, before record_in would: the likely mistake above.
        raise ConversionError(
            "22P02", 'malformed record literal: "%s"' % obj, detail="Missing left parenthesis.", hint=_ROW_IN_ARRAY_HINT
        )
    if _null_or_literal(obj, out, marks):
        return
    out.append(marks[2])
    kind = type(obj)
    if kind is dict or kind is not tuple and kind is not list and isinstance(obj, Mapping):
        for name, field in zip(names, fields):
            try:
                value = obj[name]
            except KeyError:
                raise ConversionError(
                    "42703",
                    'key "%s" not found in mapping' % name,
                    hint="To return null in a column, add the value None to the mapping with the key named after the column.",
                ) from None
            field(value, out)
    elif is_sequence(obj):
        if len(obj) != len(names):
            raise ConversionError("42804", "length of returned sequence did not match number of columns in row")
        for value, field in zip(obj, fields):
            field(value, out)
    else:
        for name, field in zip(names, fields):
            try:
                value = getattr(obj, name)
            except AttributeError:
                raise ConversionError(
                    "42703",
                    'attribute "%s" does not exist in Python object' % name,
                    hint=_ROW_IN_ARRAY_HINT if in_array else
                    "To return null in a column, let the returned object have an attribute named after column with value None.",
                ) from None
            field(value, out)


def dump(value):
    """`marshal`s what crosses to the host: a plain result, rows of one, or nodes."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        raise no_room_for_result() from None


def no_room_for_result():
    # marshal reports a str it has no memory to encode as "unmarshallable object".
    return MemoryError("no memory left in the interpreter to pass the result (plpywasm.memory_limit)")


# --- JSON --------------------------------------------------------------------------------------


def dumps_json(obj):
    """JSON text for `obj`: Decimal and integers of any size exactly, NaN and Infinity refused."""
    try:
        return _json_encode(obj)
    except TypeError:
        # A Decimal (or something not serialisable at all): the exact, slower path says which.
        pass
    except ValueError as exc:
        message = str(exc)
        if message.startswith("Circular reference"):
            raise _circular() from None
        if message.startswith("Out of range float values"):
            raise ConversionError("22P02", "cannot convert NaN or Infinity to JSON") from None
        # The object's own methods raised it (or an int too long for sys.set_int_max_str_digits).
        raise
    parts = []
    _dump_exact(obj, parts, set())
    return "".join(parts)


def _circular():
    return ConversionError("22P02", "cannot convert a value that contains itself to JSON")


def _dump_exact(obj, parts, open_containers):
    if isinstance(obj, str):
        parts.append(encode_basestring(obj))
    elif obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, int):
        parts.append(int.__repr__(obj))
    elif isinstance(obj, (float, decimal.Decimal)):
        if isinstance(obj, float) and not math.isfinite(obj) or isinstance(obj, decimal.Decimal) and not obj.is_finite():
            raise ConversionError("22P02", "cannot convert NaN or Infinity to JSON")
        parts.append(float.__repr__(obj) if isinstance(obj, float) else str(obj))
    elif isinstance(obj, (Mapping, list, tuple)):
        if id(obj) in open_containers:
            raise _circular()
        open_containers.add(id(obj))
        if isinstance(obj, Mapping):
            parts.append("{")
            for position, (key, value) in enumerate(obj.items()):
                if position:
                    parts.append(", ")
                parts.append(encode_basestring(_json_key(key)))
                parts.append(": ")
                _dump_exact(value, parts, open_containers)
            parts.append("}")
        else:
            parts.append("[")
            for position, value in enumerate(obj):
                if position:
                    parts.append(", ")
                _dump_exact(value, parts, open_containers)
            parts.append("]")
        open_containers.discard(id(obj))
    else:
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def _json_key(key):
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float, decimal.Decimal)):
        return dumps_json(key)
    raise TypeError("keys must be str, int, float, bool or None, not %s" % type(key).__name__)
