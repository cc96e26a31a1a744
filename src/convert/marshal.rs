//! Values in Python's `marshal` format: one byte string, which the guest reads and writes with
//! `marshal`, instead of a WIT node per value — far fewer steps through the bindings, which cost
//! more than the conversions themselves. Arguments, a trigger's data and query results cross as
//! the Python values, tagged where marshal has no type for them (wit/plpywasm.wit's `decoding`);
//! results as the plain value where they are plain scalars (json as its text) or rows of them,
//! else, like plan parameters, as a list of their nodes (wit/plpywasm.wit's `node`).

use pgrx::pg_sys::{self, Datum};
use pgrx::PgSqlErrorCode;

use super::{datetime, malformed, ToGuest};
use crate::error::PlError;
use crate::runtime::{Decoding, Interval, Node, Shape, Zoned};

// marshal's type codes (CPython's Python/marshal.c); writers may set FLAG_REF on any of them.
const FLAG_REF: u8 = 0x80;
const NONE: u8 = b'N';
const TRUE: u8 = b'T';
const FALSE: u8 = b'F';
const INT: u8 = b'i';
const LONG: u8 = b'l';
const BINARY_FLOAT: u8 = b'g';
const UNICODE: u8 = b'u';
const BYTES: u8 = b's';
const INTERNED: u8 = b't';
const ASCII: u8 = b'a';
const ASCII_INTERNED: u8 = b'A';
const SHORT_ASCII: u8 = b'z';
const SHORT_ASCII_INTERNED: u8 = b'Z';
const LIST: u8 = b'[';
const TUPLE: u8 = b'(';
const SMALL_TUPLE: u8 = b')';
const DICT: u8 = b'{';
/// Ends a dict.
const NULL: u8 = b'0';
/// Also what a cursor's reply says of columns the guest knows (see spi::Columns).
pub const ELLIPSIS: u8 = b'.';
/// A long's digits are 15 bits wide.
const LONG_SHIFT: u32 = 15;

/// The tag of a tuple that stands for a node marshal has no type for: the node's case number
/// (see wit/plpywasm.wit's `decoding` and `node`).
mod tag {
    pub const DECIMAL: i64 = 6;
    pub const JSON: i64 = 7;
    pub const UUID: i64 = 8;
    pub const DATE: i64 = 9;
    pub const TIME: i64 = 10;
    pub const TIMETZ: i64 = 11;
    pub const TIMESTAMP: i64 = 12;
    pub const TIMESTAMPTZ: i64 = 13;
    pub const INTERVAL: i64 = 14;
    pub const INET: i64 = 15;
    pub const CIDR: i64 = 16;
    pub const ARRAY: i64 = 17;
    pub const INTS: i64 = 18;
    pub const FLOATS: i64 = 19;
    pub const TEXTS: i64 = 20;
    pub const COMPOSITE: i64 = 21;
    pub const KEEP: i64 = 22;
    pub const RANGE: i64 = 23;
    pub const MULTIRANGE: i64 = 24;
}

impl ToGuest {
    /// How the guest decodes an unmarshalled argument or column of this type, if it must.
    pub fn decoding(&self) -> Option<Decoding> {
        match self {
            ToGuest::Numeric(_) => Some(Decoding::Decimal),
            ToGuest::Json(_) => Some(Decoding::Json),
            ToGuest::Uuid
            | ToGuest::DateTime(_)
            | ToGuest::Inet(_)
            | ToGuest::Cidr(_)
            | ToGuest::Range(_)
            | ToGuest::Multirange(_)
            | ToGuest::Row(_) => Some(Decoding::Tagged),
            // Numeric and json elements are tagged too.
            ToGuest::Array(array) => array.element().decoding().map(|_| Decoding::Tagged),
            _ => None,
        }
    }
}

/// The decodings of values of these types (`None` for a type decoded as tagged: a polymorphic
/// argument's, which each call tells), by position.
pub fn decodings<'a>(converters: impl Iterator<Item = Option<&'a ToGuest>>) -> Vec<(u32, Decoding)> {
    (0..)
        .zip(converters)
        .filter_map(|(position, convert)| Some((position, convert.map_or(Some(Decoding::Tagged), ToGuest::decoding)?)))
        .collect()
}

/// Whether a result of this shape can come back in marshal's format: a plain scalar (json as its
/// text), or a row of them (the guest decides by the same rule, in values.plain_encoder).
pub fn is_plain_shape(shape: &[Shape]) -> bool {
    let plain_field = |shape: &Shape| {
        matches!(
            shape,
            Shape::Boolean
                | Shape::Int
                | Shape::Float
                | Shape::Text
                | Shape::Json
                | Shape::Date
                | Shape::Timestamp
                | Shape::Timestamptz
                | Shape::Multirange
        )
    };
    match shape {
        [Shape::Void | Shape::Procedure] => true,
        [field] => plain_field(field),
        [Shape::Composite(names), fields @ ..] => names.len() == fields.len() && fields.iter().all(plain_field),
        _ => false,
    }
}

/// A call's marshalled pair: a place for the function's handle, which the interpreter that runs
/// the call fills in with [`set_handle`], and the tuple of the arguments (a tuple, which a call
/// with `*args` takes as it is). An argument whose converter is `tagged` is written as if nested
/// in another value.
///
/// # Safety
/// Each Datum must be a valid value of its converter's type.
pub unsafe fn write_args<'a>(args: impl ExactSizeIterator<Item = (&'a ToGuest, bool, Option<Datum>)>, out: &mut Vec<u8>) {
    out.extend_from_slice(&[SMALL_TUPLE, 2, INT]);
    out.extend_from_slice(&0u32.to_le_bytes());
    match u8::try_from(args.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_TUPLE, len]),
        Err(_) => {
            out.push(TUPLE);
            out.extend_from_slice(&(args.len() as i32).to_le_bytes());
        }
    }
    let mut nodes = Vec::with_capacity(1);
    for (convert, tagged, datum) in args {
        unsafe { write_value(convert, datum, tagged, &mut nodes, out) };
    }
}

/// A query result's column, as a marshalled list.
///
/// # Safety
/// Each Datum must be a valid value of the converter's type.
pub unsafe fn write_column(convert: &ToGuest, values: impl ExactSizeIterator<Item = Option<Datum>>, out: &mut Vec<u8>) {
    write_list_head(values.len(), out);
    let mut nodes = Vec::with_capacity(1);
    for datum in values {
        unsafe { write_value(convert, datum, false, &mut nodes, out) };
    }
}

/// One value; `nodes` is scratch space.
unsafe fn write_value(convert: &ToGuest, datum: Option<Datum>, tagged: bool, nodes: &mut Vec<Node>, out: &mut Vec<u8>) {
    let Some(datum) = datum else {
        return out.push(NONE);
    };
    unsafe { convert.encode(datum, nodes) };
    let mut nodes = nodes.drain(..);
    let head = nodes.next().expect("a converter makes a node");
    write_node(head, &mut nodes, tagged, out);
}

/// The values whose nodes follow one another, as a marshalled list of them.
pub fn write_values(nodes: Vec<Node>, out: &mut Vec<u8>) {
    let head = out.len();
    write_list_head(0, out);
    let mut nodes = nodes.into_iter();
    let mut count: i32 = 0;
    while let Some(node) = nodes.next() {
        write_node(node, &mut nodes, true, out);
        count += 1;
    }
    out[head + 1..head + 5].copy_from_slice(&count.to_le_bytes());
}

/// The value whose head is `node`, its parts taken from `rest`; `nested` in another (or tagged),
/// numeric and json are tagged, not bare text.
fn write_node(node: Node, rest: &mut impl Iterator<Item = Node>, nested: bool, out: &mut Vec<u8>) {
    match node {
        Node::Decimal(text) if nested => write_tuple(&[Node::Int(tag::DECIMAL), Node::Text(text)], out),
        Node::Json(text) if nested => write_tuple(&[Node::Int(tag::JSON), Node::Text(text)], out),
        Node::Uuid((high, low)) => {
            let bytes = [high.to_be_bytes(), low.to_be_bytes()].concat();
            write_tuple(&[Node::Int(tag::UUID), Node::Bytes(bytes)], out)
        }
        Node::Date(days) => write_tuple(&[Node::Int(tag::DATE), Node::Int(days.into())], out),
        Node::Time(microseconds) => write_tuple(&[Node::Int(tag::TIME), Node::Int(microseconds)], out),
        Node::Timetz(zoned) => write_tuple(
            &[Node::Int(tag::TIMETZ), Node::Int(zoned.microseconds), Node::Int(zoned.offset_seconds.into())],
            out,
        ),
        // Timestamps reach the guest as their calendar fields (a timestamptz's in its offset):
        // `datetime` makes one of those at a fourth of what adding a `timedelta` to an epoch costs.
        Node::Timestamp(microseconds) => {
            write_fields(tag::TIMESTAMP, datetime::fields(microseconds), None, out)
        }
        Node::Timestamptz(zoned) => {
            let local = zoned.microseconds + i64::from(zoned.offset_seconds) * 1_000_000;
            write_fields(tag::TIMESTAMPTZ, datetime::fields(local), Some(zoned.offset_seconds), out)
        }
        Node::Interval(interval) => write_tuple(
            &[Node::Int(tag::INTERVAL), Node::Int(interval.days.into()), Node::Int(interval.microseconds)],
            out,
        ),
        Node::Inet(text) => write_tuple(&[Node::Int(tag::INET), Node::Text(text)], out),
        Node::Cidr(text) => write_tuple(&[Node::Int(tag::CIDR), Node::Text(text)], out),
        Node::Array(dims) => write_array(&dims, rest, out),
        Node::Range(flags) => write_range(flags, rest, out),
        Node::Multirange(count) => {
            out.extend_from_slice(&[SMALL_TUPLE, 2]);
            write_scalar(&Node::Int(tag::MULTIRANGE), out);
            write_list_head(count as usize, out);
            for _ in 0..count {
                match rest.next() {
                    Some(Node::Range(flags)) => write_range(flags, rest, out),
                    _ => out.push(NONE),
                }
            }
        }
        Node::Composite(names) => {
            // Rows nest in rows to any depth (see RowIn::encode).
            unsafe { pg_sys::check_stack_depth() };
            out.push(DICT);
            for name in names {
                write_scalar(&Node::Text(name), out);
                let value = rest.next().unwrap_or(Node::Null);
                write_node(value, rest, true, out);
            }
            out.push(NULL);
        }
        node => write_scalar(&node, out),
    }
}

/// A range's tuple: its tag, its flags, and its lower and upper bounds (None where there is none),
/// which follow in `rest` where they are finite.
fn write_range(flags: u8, rest: &mut impl Iterator<Item = Node>, out: &mut Vec<u8>) {
    out.extend_from_slice(&[SMALL_TUPLE, 4]);
    write_scalar(&Node::Int(tag::RANGE), out);
    write_scalar(&Node::Int(flags.into()), out);
    for infinite in [pg_sys::RANGE_LB_INF, pg_sys::RANGE_UB_INF] {
        match u32::from(flags) & (pg_sys::RANGE_EMPTY | infinite) {
            0 => {
                let bound = rest.next().unwrap_or(Node::Null);
                write_node(bound, rest, true, out)
            }
            _ => out.push(NONE),
        }
    }
}

/// A timestamp's tuple: its tag, its fields and, for a timestamptz, its offset.
fn write_fields(tag: i64, fields: [i64; 7], offset_seconds: Option<i32>, out: &mut Vec<u8>) {
    out.push(SMALL_TUPLE);
    out.push(8 + u8::from(offset_seconds.is_some()));
    write_scalar(&Node::Int(tag), out);
    for field in fields.into_iter().chain(offset_seconds.map(i64::from)) {
        write_scalar(&Node::Int(field), out);
    }
}

/// A tuple of plain scalars.
fn write_tuple(items: &[Node], out: &mut Vec<u8>) {
    out.push(SMALL_TUPLE);
    out.push(items.len() as u8);
    for item in items {
        write_scalar(item, out);
    }
}

/// A list of plain scalars.
pub fn write_list(items: impl ExactSizeIterator<Item = Node>, out: &mut Vec<u8>) {
    write_list_head(items.len(), out);
    for item in items {
        write_scalar(&item, out);
    }
}

/// `decodings` as a list of (position, kind) pairs, the kind as its number.
pub fn write_decodings(decodings: &[(u32, Decoding)], out: &mut Vec<u8>) {
    write_list_head(decodings.len(), out);
    for &(position, kind) in decodings {
        write_list([Node::Int(position.into()), Node::Int(kind as i64)].into_iter(), out);
    }
}

pub fn write_list_head(len: usize, out: &mut Vec<u8>) {
    out.push(LIST);
    out.extend_from_slice(&(len as i32).to_le_bytes());
}

/// An array whose head node had these dimensions, as nested lists; its elements follow in
/// `rest`, a value each, row-major.
fn write_array(dims: &[u32], rest: &mut impl Iterator<Item = Node>, out: &mut Vec<u8>) {
    if dims.is_empty() {
        return write_list_head(0, out);
    }
    let mut element = |out: &mut Vec<u8>| {
        let node = rest.next().unwrap_or(Node::Null);
        write_node(node, rest, true, out)
    };
    write_nested(dims, &mut element, out);
}

/// Nested lists of these dimensions, whose elements `element` writes in row-major order.
fn write_nested(dims: &[u32], element: &mut impl FnMut(&mut Vec<u8>), out: &mut Vec<u8>) {
    let Some((&len, inner)) = dims.split_first() else {
        return element(out);
    };
    write_list_head(len as usize, out);
    for _ in 0..len {
        write_nested(inner, element, out);
    }
}

/// Sets the handle of the function that a pair from [`write_args`] calls.
pub fn set_handle(args: &mut [u8], handle: u32) {
    args[3..7].copy_from_slice(&(handle as i32).to_le_bytes());
}

/// A plain scalar (bool, int, float, string, bytes; NULL for any other node).
pub fn write_scalar(node: &Node, out: &mut Vec<u8>) {
    match node {
        Node::Boolean(true) => out.push(TRUE),
        Node::Boolean(false) => out.push(FALSE),
        Node::Int(i) => match i32::try_from(*i) {
            Ok(small) => {
                out.push(INT);
                out.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => write_long(*i, out),
        },
        Node::Float(f) => {
            out.push(BINARY_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Node::Text(text) | Node::Decimal(text) | Node::Json(text) => {
            // ASCII is copied as it is where UTF-8 would be decoded.
            match (text.is_ascii(), u8::try_from(text.len())) {
                (true, Ok(len)) => out.extend_from_slice(&[SHORT_ASCII, len]),
                (true, Err(_)) => {
                    out.push(ASCII);
                    out.extend_from_slice(&(text.len() as i32).to_le_bytes());
                }
                (false, _) => {
                    out.push(UNICODE);
                    out.extend_from_slice(&(text.len() as i32).to_le_bytes());
                }
            }
            out.extend_from_slice(text.as_bytes());
        }
        Node::Bytes(bytes) => {
            out.push(BYTES);
            out.extend_from_slice(&(bytes.len() as i32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        _ => out.push(NONE),
    }
}

/// An integer beyond 32 bits: its magnitude in 15-bit digits, least significant first; the sign is
/// the count's.
fn write_long(value: i64, out: &mut Vec<u8>) {
    let mut magnitude = value.unsigned_abs();
    let mut digits = Vec::with_capacity(5);
    while magnitude > 0 {
        digits.push((magnitude & ((1 << LONG_SHIFT) - 1)) as u16);
        magnitude >>= LONG_SHIFT;
    }
    let count = digits.len() as i32;
    out.push(LONG);
    out.extend_from_slice(&(if value < 0 { -count } else { count }).to_le_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_le_bytes());
    }
}

/// The nodes of a plain result the guest marshalled: a scalar (a date's or timestamp's as its
/// tagged node), or a row's list, whose head is an Ellipsis. The guest sends ints and strs as
/// they are: an int beyond 64 bits comes back as its digits, for the result type's input
/// function to refuse as out of range, and a str with a lone surrogate (not UTF-8) is refused
/// here.
pub fn read_result(bytes: &[u8]) -> Result<Vec<Node>, PlError> {
    let mut reader = Reader::new(bytes);
    let nodes = reader.result()?;
    reader.end()?;
    Ok(nodes)
}

/// The rows of a set's `next-plain` (wit/plpywasm.wit): one result as [`read_result`] reads it, or
/// a tuple of whether the set ends with them and several (a tagged value's tuple starts with its
/// tag, a number, not a bool).
pub fn read_rows(bytes: &[u8]) -> Result<(Vec<Vec<Node>>, bool), PlError> {
    let mut reader = Reader::new(bytes);
    let len = match reader.peek()? & !FLAG_REF {
        SMALL_TUPLE => reader.take(2)?[1] as usize,
        TUPLE => {
            reader.take(1)?;
            usize::try_from(reader.i32()?).map_err(|_| malformed())?
        }
        _ => return Ok((vec![read_result(bytes)?], false)),
    };
    // A tuple that does not start with a bool is one result (a tagged value).
    let ends = match reader.peek()? & !FLAG_REF {
        TRUE | FALSE => reader.take(1)?[0] & !FLAG_REF == TRUE,
        _ => return Ok((vec![read_result(bytes)?], false)),
    };
    // Every row is at least a byte: a longer tuple is a lie.
    if len == 0 || len > reader.bytes.len() + 1 {
        return Err(malformed());
    }
    let rows = (1..len).map(|_| reader.result()).collect::<Result<_, _>>()?;
    reader.end()?;
    Ok((rows, ends))
}

/// The nodes of a value the guest marshalled as a list of nodes (see wit/plpywasm.wit's `node`).
pub fn read_nodes(bytes: &[u8]) -> Result<Vec<Node>, PlError> {
    let mut reader = Reader::new(bytes);
    let nodes = reader.nodes()?;
    reader.end()?;
    Ok(nodes)
}

/// Rows of nodes: a list of what [`read_nodes`] reads.
pub fn read_node_rows(bytes: &[u8]) -> Result<Vec<Vec<Node>>, PlError> {
    let mut reader = Reader::new(bytes);
    let rows = reader.list(Reader::nodes)?;
    reader.end()?;
    Ok(rows)
}

/// Reads marshal's format from the front of a byte string.
struct Reader<'a> {
    bytes: &'a [u8],
    /// What the lists read so far take: an item of a byte (None, a small int marshal refers back
    /// to) can take fifty once read, and the host holds values to plpywasm.memory_limit too.
    taken: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, taken: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PlError> {
        if n > self.bytes.len() {
            return Err(malformed());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn peek(&self) -> Result<u8, PlError> {
        self.bytes.first().copied().ok_or_else(malformed)
    }

    fn i32(&mut self) -> Result<i32, PlError> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn text(&mut self, len: usize) -> Result<Node, PlError> {
        let utf8 = self.take(len)?;
        Ok(Node::Text(String::from_utf8(utf8.to_vec()).map_err(|_| lone_surrogate())?))
    }

    /// One result: a scalar, or a row's list.
    fn result(&mut self) -> Result<Vec<Node>, PlError> {
        if self.peek()? & !FLAG_REF != LIST {
            return Ok(vec![self.tagged()?]);
        }
        self.list(Reader::tagged)
    }

    /// A list, an item each as `item` reads it.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, PlError>) -> Result<Vec<T>, PlError> {
        if self.take(1)?[0] & !FLAG_REF != LIST {
            return Err(malformed());
        }
        let len = usize::try_from(self.i32()?).map_err(|_| malformed())?;
        // Every item is at least a byte: a longer list is a lie.
        if len > self.bytes.len() {
            return Err(malformed());
        }
        self.taken = self.taken.saturating_add(len.saturating_mul(size_of::<T>()));
        super::check_fits(self.taken, "values from Python")?;
        (0..len).map(|_| item(self)).collect()
    }

    fn nodes(&mut self) -> Result<Vec<Node>, PlError> {
        self.list(Reader::tagged)
    }

    /// One node: a scalar as it is, or a tuple of its tag and fields.
    fn tagged(&mut self) -> Result<Node, PlError> {
        let len = match self.peek()? & !FLAG_REF {
            SMALL_TUPLE => self.take(2)?[1] as i32,
            TUPLE => {
                self.take(1)?;
                self.i32()?
            }
            _ => return self.node(),
        };
        let node = match (self.int()?, len) {
            (tag::JSON, 2) => Node::Json(self.string()?),
            (tag::DATE, 2) => Node::Date(i32::try_from(self.int()?).map_err(|_| malformed())?),
            (tag::TIMESTAMP, 2) => Node::Timestamp(self.datetime()?),
            (tag::TIMESTAMPTZ, 4) => {
                let local = self.datetime()?;
                let (seconds, microseconds) = (self.int()?, self.int()?);
                // A `utcoffset()` is under a day.
                if seconds.unsigned_abs() >= 86_400 || microseconds.unsigned_abs() >= 1_000_000 {
                    return Err(malformed());
                }
                let instant = local - (seconds * 1_000_000 + microseconds);
                Node::Timestamptz(Zoned { microseconds: instant, offset_seconds: 0 })
            }
            (tag::INTERVAL, 3) => {
                let days = i32::try_from(self.int()?).map_err(|_| malformed())?;
                Node::Interval(Interval { days, microseconds: self.int()? })
            }
            (tag::ARRAY, 2) => Node::Array(self.list(|r| u32::try_from(r.int()?).map_err(|_| malformed()))?),
            (tag::INTS, 2) => Node::Ints(self.list(|r| r.optional(Reader::int))?),
            (tag::FLOATS, 2) => Node::Floats(self.list(|r| r.optional(Reader::float))?),
            (tag::TEXTS, 2) => Node::Texts(self.list(|r| r.optional(Reader::string))?),
            (tag::COMPOSITE, 2) => Node::Composite(self.list(Reader::string)?),
            (tag::KEEP, 1) => Node::Keep,
            _ => return Err(malformed()),
        };
        Ok(node)
    }

    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, PlError>) -> Result<Option<T>, PlError> {
        if self.peek()? & !FLAG_REF == NONE {
            self.take(1)?;
            return Ok(None);
        }
        read(self).map(Some)
    }

    fn int(&mut self) -> Result<i64, PlError> {
        match self.node()? {
            Node::Int(i) => Ok(i),
            _ => Err(malformed()),
        }
    }

    /// A `datetime`'s pickled state, as the timestamp of its fields.
    fn datetime(&mut self) -> Result<i64, PlError> {
        match self.node()? {
            Node::Bytes(state) => datetime::from_state(&state).ok_or_else(malformed),
            _ => Err(malformed()),
        }
    }

    fn float(&mut self) -> Result<f64, PlError> {
        match self.node()? {
            Node::Float(f) => Ok(f),
            _ => Err(malformed()),
        }
    }

    fn string(&mut self) -> Result<String, PlError> {
        match self.node()? {
            Node::Text(text) => Ok(text),
            _ => Err(malformed()),
        }
    }

    fn end(&self) -> Result<(), PlError> {
        match self.bytes {
            [] => Ok(()),
            _ => Err(malformed()),
        }
    }

    /// One scalar, or a row's head.
    fn node(&mut self) -> Result<Node, PlError> {
        let code = self.take(1)?[0];
        Ok(match code & !FLAG_REF {
            NONE => Node::Null,
            TRUE => Node::Boolean(true),
            FALSE => Node::Boolean(false),
            ELLIPSIS => Node::Composite(Vec::new()),
            INT => Node::Int(self.i32()? as i64),
            LONG => {
                let count = self.i32()?;
                let digits = self.take(2 * count.unsigned_abs() as usize)?;
                let digits: Vec<u16> = digits.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
                read_long(&digits, count < 0)?
            }
            BINARY_FLOAT => Node::Float(f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            UNICODE | INTERNED | ASCII | ASCII_INTERNED => {
                let len = usize::try_from(self.i32()?).map_err(|_| malformed())?;
                self.text(len)?
            }
            SHORT_ASCII | SHORT_ASCII_INTERNED => {
                let len = self.take(1)?[0] as usize;
                self.text(len)?
            }
            BYTES => {
                let len = usize::try_from(self.i32()?).map_err(|_| malformed())?;
                Node::Bytes(self.take(len)?.to_vec())
            }
            _ => return Err(malformed()),
        })
    }
}

/// An int's 15-bit digits (least significant first) as an Int node, or as its decimal digits
/// where it is beyond 64 bits.
fn read_long(digits: &[u16], negative: bool) -> Result<Node, PlError> {
    // Five digits hold 75 bits; marshal writes no leading zero digits, so more is beyond 64 bits.
    if digits.len() > 5 {
        return decimal(digits, negative).map(Node::Text);
    }
    let magnitude = digits.iter().rev().fold(0i128, |acc, &digit| acc << LONG_SHIFT | digit as i128);
    let value = if negative { -magnitude } else { magnitude };
    Ok(i64::try_from(value).map_or_else(|_| Node::Text(value.to_string()), Node::Int))
}

/// Decimal digits of a long; refused beyond Python's own limit for int-to-str conversion (4300
/// digits), which also bounds this quadratic loop.
fn decimal(digits: &[u16], negative: bool) -> Result<String, PlError> {
    const MAX_DIGITS: usize = 4300 * 10 / 45; // 15-bit digits; a decimal digit is ~3.32 bits
    if digits.len() > MAX_DIGITS {
        return Err(PlError::new(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "an integer returned by a PL/plpywasm function has too many digits for its result type",
        ));
    }
    let mut rest: Vec<u32> = digits.iter().rev().map(|&d| d as u32).collect();
    let mut groups = Vec::new(); // base 10^4, least significant first
    while rest.iter().any(|&d| d != 0) {
        let mut remainder = 0;
        for digit in rest.iter_mut() {
            let current = (remainder << LONG_SHIFT) | *digit;
            *digit = current / 10_000;
            remainder = current % 10_000;
        }
        groups.push(remainder);
    }
    let mut out = String::from(if negative { "-" } else { "" });
    let mut groups = groups.iter().rev();
    out += &groups.next().map_or("0".into(), u32::to_string);
    for group in groups {
        out += &format!("{group:04}");
    }
    Ok(out)
}

fn lone_surrogate() -> PlError {
    PlError::new(
        PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
        "a Python string returned to PostgreSQL contains a lone surrogate character",
    )
}
