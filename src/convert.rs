//! Datums ⇄ guest values. A converter is chosen once per function from the declared types (cached
//! with the function) and run once per call. Types with a binary form cross as numbers; every other
//! type crosses as text made by its own output function, and comes back through its input function,
//! so no type is refused.

use std::cell::UnsafeCell;
use std::ffi::{CStr, CString};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use crate::error::PlError;
use crate::runtime::{ResultKind, Value};

/// A type's text I/O function, looked up once and kept for the function's lifetime.
struct IoFunction {
    /// Boxed: PostgreSQL keeps pointers into FmgrInfo, so it must not move; and it writes its cache
    /// (`fn_extra`) into it on calls.
    finfo: Box<UnsafeCell<pg_sys::FmgrInfo>>,
    ioparam: Oid,
}

impl IoFunction {
    fn output(type_oid: Oid) -> IoFunction {
        let (mut func, mut is_varlena) = (Oid::INVALID, false);
        unsafe { pg_sys::getTypeOutputInfo(type_oid, &mut func, &mut is_varlena) };
        IoFunction::new(func, Oid::INVALID)
    }

    fn input(type_oid: Oid) -> IoFunction {
        let (mut func, mut ioparam) = (Oid::INVALID, Oid::INVALID);
        unsafe { pg_sys::getTypeInputInfo(type_oid, &mut func, &mut ioparam) };
        IoFunction::new(func, ioparam)
    }

    fn new(func: Oid, ioparam: Oid) -> IoFunction {
        let finfo = Box::new(UnsafeCell::new(unsafe { std::mem::zeroed::<pg_sys::FmgrInfo>() }));
        unsafe { pg_sys::fmgr_info_cxt(func, finfo.get(), pg_sys::TopMemoryContext) };
        IoFunction { finfo, ioparam }
    }

    fn finfo(&self) -> *mut pg_sys::FmgrInfo {
        self.finfo.get()
    }
}

/// How one argument becomes a guest value.
pub struct ArgConverter(ArgKind);

enum ArgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// text, varchar, bpchar: a varlena holding server-encoded characters.
    Text,
    Name,
    Io(IoFunction),
}

impl ArgConverter {
    pub fn for_type(type_oid: Oid) -> ArgConverter {
        let base = unsafe { pg_sys::getBaseType(type_oid) };
        ArgConverter(match base {
            pg_sys::BOOLOID => ArgKind::Bool,
            pg_sys::INT2OID => ArgKind::Int2,
            pg_sys::INT4OID => ArgKind::Int4,
            pg_sys::INT8OID => ArgKind::Int8,
            pg_sys::FLOAT4OID => ArgKind::Float4,
            pg_sys::FLOAT8OID => ArgKind::Float8,
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => ArgKind::Text,
            pg_sys::NAMEOID => ArgKind::Name,
            _ => ArgKind::Io(IoFunction::output(base)),
        })
    }

    /// # Safety
    /// `datum` must be a valid, non-null Datum of the type this converter was made for.
    pub unsafe fn to_value(&self, datum: Datum) -> Value {
        match &self.0 {
            ArgKind::Bool => Value::Boolean(datum.value() != 0),
            ArgKind::Int2 => Value::Int(datum.value() as i16 as i64),
            ArgKind::Int4 => Value::Int(datum.value() as i32 as i64),
            ArgKind::Int8 => Value::Int(datum.value() as i64),
            ArgKind::Float4 => Value::Float(f32::from_bits(datum.value() as u32) as f64),
            ArgKind::Float8 => Value::Float(f64::from_bits(datum.value() as u64)),
            ArgKind::Text => Value::Text(unsafe { text_to_string(datum) }),
            ArgKind::Name => {
                let name = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
                Value::Text(unsafe { server_to_string(name.to_bytes()) })
            }
            ArgKind::Io(io) => {
                let text = unsafe { CStr::from_ptr(pg_sys::OutputFunctionCall(io.finfo(), datum)) };
                Value::Text(unsafe { server_to_string(text.to_bytes()) })
            }
        }
    }
}

/// How a guest result becomes the function's Datum.
pub struct ResultConverter {
    target: Target,
    type_oid: Oid,
    /// Set when the declared type is a domain: its constraints are checked on every result.
    domain: Option<Oid>,
}

enum Target {
    Void,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Io(IoFunction),
}

impl ResultConverter {
    pub fn for_type(type_oid: Oid) -> ResultConverter {
        let base = unsafe { pg_sys::getBaseType(type_oid) };
        let domain = (base != type_oid).then_some(type_oid);
        let target = match base {
            pg_sys::VOIDOID => Target::Void,
            pg_sys::BOOLOID => Target::Bool,
            pg_sys::INT2OID => Target::Int2,
            pg_sys::INT4OID => Target::Int4,
            pg_sys::INT8OID => Target::Int8,
            pg_sys::FLOAT4OID => Target::Float4,
            pg_sys::FLOAT8OID => Target::Float8,
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Target::Text,
            _ => Target::Io(IoFunction::input(base)),
        };
        ResultConverter { target, type_oid: base, domain }
    }

    /// What the guest should make of the Python result.
    pub fn kind(&self) -> ResultKind {
        match self.target {
            Target::Void => ResultKind::Void,
            Target::Bool => ResultKind::Boolean,
            Target::Int2 | Target::Int4 | Target::Int8 => ResultKind::Int,
            Target::Float4 | Target::Float8 => ResultKind::Float,
            Target::Text | Target::Io(_) => ResultKind::Text,
        }
    }

    /// The Datum for `value`, and whether it is NULL.
    pub fn to_datum(&self, value: Value) -> Result<(Datum, bool), PlError> {
        let (datum, is_null) = match value {
            Value::Null => (Datum::null(), true),
            value => (self.convert(value)?, false),
        };
        if let Some(domain) = self.domain {
            unsafe {
                pg_sys::domain_check(datum, is_null, domain, std::ptr::null_mut(), std::ptr::null_mut())
            };
        }
        Ok((datum, is_null))
    }

    fn convert(&self, value: Value) -> Result<Datum, PlError> {
        Ok(match (&self.target, value) {
            (Target::Void, _) => {
                return Err(PlError::new(
                    PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                    "PL/plpywasm function with return type \"void\" did not return None",
                ))
            }
            (Target::Bool, Value::Boolean(b)) => Datum::from(b),
            (Target::Int2, Value::Int(i)) => Datum::from(self.fit::<i16>(i)?),
            (Target::Int4, Value::Int(i)) => Datum::from(self.fit::<i32>(i)?),
            (Target::Int8, Value::Int(i)) => Datum::from(i),
            (Target::Float8, Value::Float(f)) => Datum::from(f.to_bits()),
            (Target::Float4, Value::Float(f)) => Datum::from((self.fit_f32(f)?).to_bits()),
            (Target::Text, Value::Text(s)) => text_datum(&s)?,
            (_, Value::Text(s)) => self.parse(&s)?,
            (_, other) => self.parse(&display(&other))?,
        })
    }

    fn fit<T: TryFrom<i64>>(&self, i: i64) -> Result<T, PlError> {
        T::try_from(i).map_err(|_| self.out_of_range(&i.to_string()))
    }

    fn fit_f32(&self, f: f64) -> Result<f32, PlError> {
        let narrowed = f as f32;
        if f.is_finite() && (narrowed.is_infinite() || (narrowed == 0.0 && f != 0.0)) {
            return Err(self.out_of_range(&format!("{f:?}")));
        }
        Ok(narrowed)
    }

    fn out_of_range(&self, value: &str) -> PlError {
        PlError::new(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            format!("value \"{value}\" is out of range for type {}", type_name(self.type_oid)),
        )
    }

    /// Through the type's input function, exactly as if the text were written in SQL.
    fn parse(&self, text: &str) -> Result<Datum, PlError> {
        let cstring = server_cstring(text)?;
        let io = match &self.target {
            Target::Io(io) => io,
            _ => &IoFunction::input(self.type_oid),
        };
        Ok(unsafe { pg_sys::InputFunctionCall(io.finfo(), cstring, io.ioparam, -1) })
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Boolean(b) => if *b { "true" } else { "false" }.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(s) => s.clone(),
    }
}

pub fn type_name(type_oid: Oid) -> String {
    let name = unsafe { CStr::from_ptr(pg_sys::format_type_be(type_oid)) };
    name.to_string_lossy().into_owned()
}

/// # Safety
/// `datum` must be a non-null varlena Datum.
unsafe fn text_to_string(datum: Datum) -> String {
    unsafe {
        let varlena = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(varlena);
        let data = pgrx::varlena::vardata_any(varlena) as *const u8;
        server_to_string(std::slice::from_raw_parts(data, len))
    }
}

fn is_utf8_database() -> bool {
    unsafe { pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32 }
}

/// Server-encoded bytes as a Rust string (the guest speaks UTF-8).
unsafe fn server_to_string(bytes: &[u8]) -> String {
    if is_utf8_database() {
        // PostgreSQL only stores validly encoded text; from_utf8 cannot fail on it.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let converted = unsafe {
        pg_sys::pg_server_to_any(bytes.as_ptr().cast(), bytes.len() as i32, pg_sys::pg_enc::PG_UTF8 as i32)
    };
    unsafe { CStr::from_ptr(converted) }.to_string_lossy().into_owned()
}

/// A guest string in the server encoding, NUL-terminated, validated as PostgreSQL validates input.
fn server_cstring(text: &str) -> Result<*mut std::ffi::c_char, PlError> {
    if text.contains('\0') {
        return Err(PlError::new(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence: a Python string returned to PostgreSQL contains a NUL character (0x00)",
        ));
    }
    let owned = CString::new(text).expect("checked for NUL above");
    // pg_any_to_server validates and converts; it returns its input when nothing changes, so copy
    // into palloc'd memory first: the result must outlive `owned`.
    unsafe {
        let copy = pg_sys::pstrdup(owned.as_ptr());
        Ok(pg_sys::pg_any_to_server(copy, text.len() as i32, pg_sys::pg_enc::PG_UTF8 as i32))
    }
}

fn text_datum(text: &str) -> Result<Datum, PlError> {
    let cstring = server_cstring(text)?;
    unsafe {
        let len = CStr::from_ptr(cstring).to_bytes().len();
        Ok(Datum::from(pg_sys::cstring_to_text_with_len(cstring, len as i32)))
    }
}
