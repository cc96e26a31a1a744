//! Datums ⇄ guest nodes (wit/plpywasm.wit). A converter is chosen once per function from the
//! declared types (cached with the function) and run once per call. Types with a binary form cross
//! as numbers; a type without a Python mapping crosses as text made by its own output function and
//! comes back through its input function, so no type is refused.
//!
//! One file per type family: `datetime`, `array`, `range`, `row`; `io` holds the text fallback
//! and the server-encoding helpers every family shares.

mod array;
mod datetime;
mod io;
pub mod marshal;
mod range;
mod row;

use std::cell::Cell;
use std::ffi::c_void;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use crate::error::PlError;
use crate::runtime::{Node, Shape};
pub use io::{
    in_server_encoding, message_from_server, message_in_server_encoding, server_cstr_to_string, text_to_string, type_name,
    charge, with_budget,
};
use io::IoFunction;
pub use row::{attribute_name, attributes_of, deform};

/// The nodes of a guest result, consumed in prefix order.
pub type Nodes = std::vec::IntoIter<Node>;

/// How a Datum of one type becomes the guest's nodes.
pub enum ToGuest {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    /// text, varchar, bpchar: a varlena holding server-encoded characters.
    Text,
    Name,
    Bytea,
    Uuid,
    Numeric(IoFunction),
    Json(IoFunction),
    Inet(IoFunction),
    Cidr(IoFunction),
    DateTime(datetime::DateTimeIn),
    Array(Box<array::ArrayIn>),
    Range(Box<range::RangeIn>),
    Multirange(Box<range::MultirangeIn>),
    Row(Box<row::RowIn>),
    /// Any other type: its text form.
    Io(IoFunction),
}

impl ToGuest {
    /// A converter for rows of any row type: it reads each row's layout from the row, and keeps
    /// the last one it read.
    pub fn any_row() -> ToGuest {
        ToGuest::Row(Box::new(row::RowIn::new()))
    }

    /// The converter for arguments of `type_oid` (a domain converts as its base type).
    pub fn for_type(type_oid: Oid) -> ToGuest {
        let base = unsafe { pg_sys::getBaseType(type_oid) };
        match base {
            pg_sys::BOOLOID => ToGuest::Bool,
            pg_sys::INT2OID => ToGuest::Int2,
            pg_sys::INT4OID => ToGuest::Int4,
            pg_sys::INT8OID => ToGuest::Int8,
            pg_sys::OIDOID => ToGuest::Oid,
            pg_sys::FLOAT4OID => ToGuest::Float4,
            pg_sys::FLOAT8OID => ToGuest::Float8,
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => ToGuest::Text,
            pg_sys::NAMEOID => ToGuest::Name,
            pg_sys::BYTEAOID => ToGuest::Bytea,
            pg_sys::UUIDOID => ToGuest::Uuid,
            pg_sys::NUMERICOID => ToGuest::Numeric(IoFunction::output(base)),
            pg_sys::JSONOID | pg_sys::JSONBOID => ToGuest::Json(IoFunction::output(base)),
            pg_sys::INETOID => ToGuest::Inet(IoFunction::output(base)),
            pg_sys::CIDROID => ToGuest::Cidr(IoFunction::output(base)),
            _ => {
                if let Some(datetime) = datetime::DateTimeIn::for_type(base) {
                    ToGuest::DateTime(datetime)
                } else if let Some(array) = array::ArrayIn::for_type(base) {
                    ToGuest::Array(Box::new(array))
                } else if let Some(range) = range::RangeIn::for_type(base) {
                    ToGuest::Range(Box::new(range))
                } else if let Some(multirange) = range::MultirangeIn::for_type(base) {
                    ToGuest::Multirange(Box::new(multirange))
                } else if unsafe { pg_sys::type_is_rowtype(base) } {
                    ToGuest::any_row()
                } else {
                    ToGuest::Io(IoFunction::output(base))
                }
            }
        }
    }

    /// Appends the nodes of a non-null `datum`.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null Datum of the type this converter was made for.
    pub unsafe fn encode(&self, datum: Datum, out: &mut Vec<Node>) {
        let node = match self {
            ToGuest::Bool => Node::Boolean(datum.value() != 0),
            ToGuest::Int2 => Node::Int(datum.value() as i16 as i64),
            ToGuest::Int4 => Node::Int(datum.value() as i32 as i64),
            ToGuest::Int8 => Node::Int(datum.value() as i64),
            ToGuest::Oid => Node::Int(datum.value() as u32 as i64),
            ToGuest::Float4 => Node::Float(f32::from_bits(datum.value() as u32) as f64),
            ToGuest::Float8 => Node::Float(f64::from_bits(datum.value() as u64)),
            ToGuest::Text => Node::Text(unsafe { io::text_to_string(datum) }),
            ToGuest::Name => {
                let name = unsafe { std::ffi::CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
                Node::Text(unsafe { io::server_to_string(name.to_bytes()) })
            }
            ToGuest::Bytea => Node::Bytes(unsafe { io::varlena_bytes(datum) }.to_vec()),
            ToGuest::Uuid => {
                let bytes = unsafe { &*datum.cast_mut_ptr::<[u8; 16]>() };
                let high = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
                let low = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
                Node::Uuid((high, low))
            }
            ToGuest::Numeric(output) => Node::Decimal(unsafe { output.to_text(datum) }),
            ToGuest::Json(output) => Node::Json(unsafe { output.to_text(datum) }),
            ToGuest::Inet(output) => Node::Inet(unsafe { output.to_text(datum) }),
            ToGuest::Cidr(output) => Node::Cidr(unsafe { output.to_text(datum) }),
            ToGuest::DateTime(datetime) => unsafe { datetime.encode(datum) },
            ToGuest::Array(array) => return unsafe { array.encode(datum, out) },
            ToGuest::Range(range) => return unsafe { range.encode(datum, out) },
            ToGuest::Multirange(multirange) => return unsafe { multirange.encode(datum, out) },
            ToGuest::Row(row) => return unsafe { row.encode(datum, out) },
            ToGuest::Io(output) => Node::Text(unsafe { output.to_text(datum) }),
        };
        out.push(node);
    }
}

/// The bytes a non-null Datum of a type `typlen` long takes once detoasted, read from its header.
///
/// # Safety
/// `datum` must be a valid, non-null Datum of a type `typlen` long.
pub unsafe fn input_size(datum: Datum, typlen: i16) -> usize {
    match typlen {
        -1 => unsafe { pg_sys::toast_raw_datum_size(datum) },
        -2 => unsafe { std::ffi::CStr::from_ptr(datum.cast_mut_ptr()) }.to_bytes().len(),
        fixed => fixed.max(0) as usize,
    }
}

/// Refuses `bytes` of input that could not fit in the interpreter, before it is copied for it: a
/// value takes at least its own size in there, and a copy it cannot take would only grow the
/// backend's memory, where an allocation that fails aborts the whole process.
pub fn check_fits(bytes: usize, what: &str) -> Result<(), PlError> {
    let limit = crate::gucs::memory_limit_bytes();
    if bytes <= limit {
        return Ok(());
    }
    Err(PlError::new(
        PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        format!("{what} of {} MB do not fit in plpywasm.memory_limit ({} MB)", bytes.div_ceil(1 << 20), limit >> 20),
    ))
}

/// Whether `type_oid` names a type (one that was dropped no longer does).
pub fn type_exists(type_oid: Oid) -> bool {
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::TYPEOID as i32,
            type_oid.into(),
            Datum::null(),
            Datum::null(),
            Datum::null(),
        )
    }
}

/// The values of a packed node (an array's elements from the guest), a node each; none if `node`
/// is not packed.
fn unpack(node: Node) -> Option<Vec<Node>> {
    Some(match node {
        Node::Ints(values) => values.into_iter().map(|v| v.map_or(Node::Null, Node::Int)).collect(),
        Node::Floats(values) => values.into_iter().map(|v| v.map_or(Node::Null, Node::Float)).collect(),
        Node::Texts(values) => values.into_iter().map(|v| v.map_or(Node::Null, Node::Text)).collect(),
        _ => return None,
    })
}

/// How the guest's nodes become a Datum of one type.
pub struct FromGuest {
    target: Target,
    /// The base type and typmod text is parsed for, by the base type's input function.
    type_oid: Oid,
    typmod: i32,
    input: IoFunction,
    /// Set when the type is a domain: its constraints are checked on every value, NULL included.
    domain: Option<Domain>,
}

enum Target {
    /// `void`; a procedure's is told apart for PL/Python's message when it returns something.
    Void { procedure: bool },
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Bytea,
    Json,
    Interval,
    Date,
    Timestamp,
    Timestamptz,
    Array(Box<array::ArrayOut>),
    Row(Box<row::RowOut>),
    /// Text only, parsed by the input function; the guest writes a sequence of ranges as the
    /// multirange of them.
    Multirange,
    /// Text only, parsed by the input function.
    Io,
}

struct Domain {
    type_oid: Oid,
    /// domain_check's cache of the constraints, kept across calls.
    cache: Cell<*mut c_void>,
}

impl FromGuest {
    /// The converter for results of `type_oid` (with `typmod`, as in a row's attribute). A
    /// domain's value is its base type's, with the modifier the domain gives it (varchar(3)).
    pub fn for_type(type_oid: Oid, typmod: i32) -> FromGuest {
        let mut base_typmod = typmod;
        let base = unsafe { pg_sys::getBaseTypeAndTypmod(type_oid, &mut base_typmod) };
        let typmod = if base == type_oid { typmod } else { base_typmod };
        let target = match base {
            pg_sys::VOIDOID => Target::Void { procedure: false },
            pg_sys::BOOLOID => Target::Bool,
            pg_sys::INT2OID => Target::Int2,
            pg_sys::INT4OID => Target::Int4,
            pg_sys::INT8OID => Target::Int8,
            pg_sys::FLOAT4OID => Target::Float4,
            pg_sys::FLOAT8OID => Target::Float8,
            // A length limit (varchar(n) in a row) is the input function's to apply.
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID if typmod < 0 => Target::Text,
            pg_sys::BYTEAOID => Target::Bytea,
            pg_sys::JSONOID | pg_sys::JSONBOID => Target::Json,
            pg_sys::INTERVALOID if typmod < 0 => Target::Interval,
            // With a precision, the input function rounds (as it does for text).
            pg_sys::DATEOID => Target::Date,
            pg_sys::TIMESTAMPOID if typmod < 0 => Target::Timestamp,
            pg_sys::TIMESTAMPTZOID if typmod < 0 => Target::Timestamptz,
            _ => {
                if let Some(array) = array::ArrayOut::for_type(base, typmod) {
                    Target::Array(Box::new(array))
                } else if unsafe { pg_sys::type_is_rowtype(base) } && base != pg_sys::RECORDOID {
                    Target::Row(Box::new(row::RowOut::for_type(base, typmod)))
                } else if unsafe { pg_sys::type_is_multirange(base) } {
                    Target::Multirange
                } else {
                    Target::Io
                }
            }
        };
        FromGuest::new(target, type_oid, base, typmod)
    }

    /// The converter for what a procedure without OUT parameters returns.
    pub fn for_procedure() -> FromGuest {
        FromGuest::new(Target::Void { procedure: true }, pg_sys::VOIDOID, pg_sys::VOIDOID, -1)
    }

    /// The converter for rows of `tupdesc` (a `record` result resolved by the call).
    ///
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor.
    pub unsafe fn for_row(tupdesc: pg_sys::TupleDesc, type_oid: Oid) -> FromGuest {
        let row = unsafe { row::RowOut::for_tupdesc(tupdesc) };
        let base = unsafe { pg_sys::getBaseType(type_oid) };
        FromGuest::new(Target::Row(Box::new(row)), type_oid, base, -1)
    }

    fn new(target: Target, type_oid: Oid, base: Oid, typmod: i32) -> FromGuest {
        let domain = (base != type_oid).then(|| Domain { type_oid, cache: Cell::new(std::ptr::null_mut()) });
        FromGuest { target, type_oid: base, typmod, input: IoFunction::input(base), domain }
    }

    /// Whether the row types this converter builds (at any depth) are as they were when it was
    /// made: an `ALTER TYPE` or `ALTER TABLE` changes their layout.
    pub fn is_current(&self) -> bool {
        match &self.target {
            Target::Row(row) => row.is_current(),
            Target::Array(array) => array.is_current(),
            _ => true,
        }
    }

    /// A converter for the same type as it is defined now.
    pub fn rebuilt(&self) -> FromGuest {
        match &self.target {
            Target::Row(row) if self.type_oid == pg_sys::RECORDOID => {
                FromGuest::new(Target::Row(Box::new(row.rebuilt())), self.type_oid, self.type_oid, -1)
            }
            _ => FromGuest::for_type(self.declared_type(), self.typmod),
        }
    }

    /// The type this converter was made for: the domain, for a domain.
    pub fn declared_type(&self) -> Oid {
        self.domain.as_ref().map_or(self.type_oid, |domain| domain.type_oid)
    }

    /// Whether this converter was made for rows of exactly this layout.
    pub fn matches_row(&self, tupdesc: pg_sys::TupleDesc) -> bool {
        matches!(&self.target, Target::Row(row) if row.matches(tupdesc))
    }

    /// What the guest must make of a Python object for this type, in prefix order.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut out = Vec::new();
        self.shape(&mut out);
        out
    }

    pub fn shape(&self, out: &mut Vec<Shape>) {
        let shape = match &self.target {
            Target::Void { procedure: false } => Shape::Void,
            Target::Void { procedure: true } => Shape::Procedure,
            Target::Bool => Shape::Boolean,
            Target::Int2 | Target::Int4 | Target::Int8 => Shape::Int,
            Target::Float4 | Target::Float8 => Shape::Float,
            Target::Text | Target::Io => Shape::Text,
            Target::Bytea => Shape::Bytes,
            Target::Json => Shape::Json,
            Target::Interval => Shape::Interval,
            Target::Multirange => Shape::Multirange,
            Target::Date => Shape::Date,
            Target::Timestamp => Shape::Timestamp,
            Target::Timestamptz => Shape::Timestamptz,
            Target::Array(array) => return array.shape(out),
            Target::Row(row) => return row.shape(out),
        };
        out.push(shape);
    }

    /// The Datum for a whole result, and whether it is NULL: every node must belong to it.
    pub fn decode_result(&self, nodes: Vec<Node>) -> Result<(Datum, bool), PlError> {
        let mut nodes = nodes.into_iter();
        let decoded = self.decode(&mut nodes)?;
        match nodes.next() {
            None => Ok(decoded),
            Some(_) => Err(malformed()),
        }
    }

    /// The Datum for the value at the head of `nodes`, and whether it is NULL.
    pub fn decode(&self, nodes: &mut Nodes) -> Result<(Datum, bool), PlError> {
        let node = nodes.next().ok_or_else(malformed)?;
        let (datum, is_null) = match node {
            // `None` from a void function (or procedure) is a void value, not NULL, as in PL/Python.
            Node::Null if matches!(self.target, Target::Void { .. }) => (Datum::null(), false),
            Node::Null => (Datum::null(), true),
            node => (self.convert(node, nodes)?, false),
        };
        if let Some(domain) = &self.domain {
            let mut cache = domain.cache.get();
            unsafe { pg_sys::domain_check(datum, is_null, domain.type_oid, &mut cache, pg_sys::TopMemoryContext) };
            domain.cache.set(cache);
        }
        Ok((datum, is_null))
    }

    /// The row at the head of `nodes`, a trigger function's "MODIFY": its attributes marked to
    /// keep their value take it from `kept` (the row as it was, deformed).
    pub fn decode_modified(&self, nodes: &mut Nodes, kept: &[(Datum, bool)]) -> Result<Datum, PlError> {
        match (&self.target, nodes.next()) {
            (Target::Row(row), Some(Node::Composite(_))) => row.decode(nodes, Some(kept)),
            _ => Err(malformed()),
        }
    }

    fn convert(&self, node: Node, nodes: &mut Nodes) -> Result<Datum, PlError> {
        Ok(match (&self.target, node) {
            (Target::Void { .. }, _) => return Err(malformed()),
            (Target::Text, Node::Text(text)) => io::text_datum(&text)?,
            (Target::Json, Node::Text(text)) => self.parse_json_text(&text)?,
            (_, Node::Text(text)) => self.parse(&text)?,
            (Target::Bool, Node::Boolean(b)) => Datum::from(b),
            (Target::Int2, Node::Int(i)) => Datum::from(self.fit::<i16>(i)?),
            (Target::Int4, Node::Int(i)) => Datum::from(self.fit::<i32>(i)?),
            (Target::Int8, Node::Int(i)) => Datum::from(i),
            (Target::Float8, Node::Float(f)) => Datum::from(f.to_bits()),
            (Target::Float4, Node::Float(f)) => Datum::from(self.fit_f32(f)?.to_bits()),
            (Target::Bytea, Node::Bytes(bytes)) => io::bytea_datum(&bytes),
            (Target::Json, Node::Json(text)) => self.parse(&text)?,
            (Target::Interval, Node::Interval(interval)) => {
                datetime::interval_datum(interval.days, interval.microseconds)
            }
            // Python's years 1 to 9999 are all within PostgreSQL's range; other values did not
            // come from Python's types.
            (Target::Date, Node::Date(days)) if datetime::valid_date(days) => Datum::from(days),
            (Target::Timestamp, Node::Timestamp(microseconds)) if datetime::valid_timestamp(microseconds) => {
                Datum::from(microseconds)
            }
            (Target::Timestamptz, Node::Timestamptz(instant)) if datetime::valid_timestamp(instant.microseconds) => {
                Datum::from(instant.microseconds)
            }
            (Target::Array(array), Node::Array(dims)) => array.decode(dims, nodes)?,
            (Target::Row(row), Node::Composite(_)) => row.decode(nodes, None)?,
            _ => return Err(malformed()),
        })
    }

    fn fit<T: TryFrom<i64>>(&self, i: i64) -> Result<T, PlError> {
        T::try_from(i).map_err(|_| self.out_of_range(&i.to_string()))
    }

    fn fit_f32(&self, f: f64) -> Result<f32, PlError> {
        let narrowed = f as f32;
        if f.is_finite() && (narrowed.is_infinite() || (narrowed == 0.0 && f != 0.0)) {
            // float4in's words, for the text PL/Python would have given it.
            return Err(PlError::new(
                PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
                format!("\"{}\" is out of range for type real", python_float_text(f)),
            ));
        }
        Ok(narrowed)
    }

    fn out_of_range(&self, value: &str) -> PlError {
        PlError::new(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{value}\" is out of range for type {}", type_name(self.type_oid)),
        )
    }

    /// Whether `new`, the value of a json or jsonb column in a trigger's "MODIFY", is the one
    /// `kept` held, as jsonb compares them. The function left it as it was, or changed nothing
    /// jsonb can see: the row keeps the value as written (a json's text, a jsonb number's scale),
    /// as it keeps PL/Python's, which are strings.
    pub fn same_json(&self, kept: (Datum, bool), new: (Datum, bool)) -> bool {
        if !matches!(self.target, Target::Json) || kept.1 || new.1 {
            return false;
        }
        let jsonb = self.type_oid == pg_sys::JSONBOID;
        let as_jsonb = move |datum: Datum| unsafe {
            if jsonb {
                return datum;
            }
            let text = pg_sys::text_to_cstring(datum.cast_mut_ptr());
            pg_sys::OidFunctionCall1Coll(pg_sys::F_JSONB_IN.into(), pg_sys::InvalidOid, Datum::from(text))
        };
        // json that jsonb refuses (a \u0000 escape) is not the same.
        pgrx::PgTryBuilder::new(|| unsafe {
            let equal = pg_sys::OidFunctionCall2Coll(pg_sys::F_JSONB_EQ.into(), pg_sys::InvalidOid, as_jsonb(kept.0), as_jsonb(new.0));
            equal.value() != 0
        })
        .catch_others(|_| false)
        .execute()
    }

    /// A str given for json or jsonb: JSON text, as PL/Python and psycopg take it, or, if it is no
    /// JSON text (22P02, as NaN is not), a JSON string of it.
    fn parse_json_text(&self, text: &str) -> Result<Datum, PlError> {
        let parsed = pgrx::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Some(self.parse(text))))
            .catch_when(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, |_| None)
            .execute();
        parsed.unwrap_or_else(|| self.parse(&json_string(text)))
    }

    /// Through the type's input function, exactly as if the text were written in SQL.
    fn parse(&self, text: &str) -> Result<Datum, PlError> {
        match &self.target {
            // `record_in` needs to know which columns an anonymous row (OUT parameters) has.
            Target::Row(row) if self.type_oid == pg_sys::RECORDOID => self.input.parse(text, row.typmod()),
            _ => self.input.parse(text, self.typmod),
        }
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            c if u32::from(c) < 0x20 => literal.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

/// The guest sent nodes that do not fit the shape it was given: its runtime was tampered with.
fn malformed() -> PlError {
    PlError::new(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        "PL/plpywasm guest returned a value that does not match the function's result type",
    )
}

/// A float out of float4's range as Python writes it (`1e+50`, where Rust writes `1e50`): the text
/// PL/Python hands to PostgreSQL, and so its error message.
fn python_float_text(f: f64) -> String {
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = exponent.strip_prefix('-').map_or(("+", exponent), |digits| ("-", digits));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}
