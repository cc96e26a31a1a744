//! Text: a type's own I/O functions (the fallback every type has) and the server encoding.

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_char, CStr, CString};

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::{PgSqlErrorCode, PgTryBuilder};

use crate::error::PlError;

thread_local! {
    /// Bytes the values being converted for the guest may still take (see [`with_budget`]).
    static LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Runs `f`, a conversion of values for the guest, which may take at most `plpywasm.memory_limit`
/// of the backend's memory in all (see [`charge`]). What a value takes there can be far more than
/// its own size (the 12 bytes of `'1e131071'::numeric` print as 131,073 digits; each of an
/// array's NULLs, a bit in its bitmap, is a node): what the interpreter could not take must not
/// fill the backend's memory first.
pub fn with_budget<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(LEFT.with(|t| t.replace(crate::gucs::memory_limit_bytes())));
    f()
}

/// Counts `bytes` more taken by the conversion running now; beyond its budget, an error.
pub fn charge(bytes: usize) {
    let left = LEFT.with(Cell::get);
    if bytes > left {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("values for Python take more than plpywasm.memory_limit ({} MB) to convert", crate::gucs::memory_limit_bytes() >> 20)
        );
    }
    LEFT.with(|t| t.set(left - bytes));
}

/// A type's text input or output function, looked up once and kept with the function.
pub struct IoFunction {
    /// Boxed: PostgreSQL keeps pointers into FmgrInfo, so it must not move; and it writes its cache
    /// (`fn_extra`) into it on calls.
    finfo: Box<UnsafeCell<pg_sys::FmgrInfo>>,
    ioparam: Oid,
}

impl IoFunction {
    pub fn output(type_oid: Oid) -> IoFunction {
        let (mut func, mut is_varlena) = (Oid::INVALID, false);
        unsafe { pg_sys::getTypeOutputInfo(type_oid, &mut func, &mut is_varlena) };
        IoFunction::new(func, Oid::INVALID)
    }

    pub fn input(type_oid: Oid) -> IoFunction {
        let (mut func, mut ioparam) = (Oid::INVALID, Oid::INVALID);
        unsafe { pg_sys::getTypeInputInfo(type_oid, &mut func, &mut ioparam) };
        IoFunction::new(func, ioparam)
    }

    fn new(func: Oid, ioparam: Oid) -> IoFunction {
        let finfo = Box::new(UnsafeCell::new(unsafe { std::mem::zeroed::<pg_sys::FmgrInfo>() }));
        unsafe { pg_sys::fmgr_info_cxt(func, finfo.get(), pg_sys::TopMemoryContext) };
        IoFunction { finfo, ioparam }
    }

    /// The text form of `datum`, in UTF-8.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null Datum of the type this output function was made for.
    pub unsafe fn to_text(&self, datum: Datum) -> String {
        // Many values' text can take a while: a cancel stops it.
        pgrx::check_for_interrupts!();
        let cstring = unsafe { pg_sys::OutputFunctionCall(self.finfo.get(), datum) };
        let bytes = unsafe { CStr::from_ptr(cstring) }.to_bytes();
        charge(bytes.len());
        let text = unsafe { server_to_string(bytes) };
        unsafe { pg_sys::pfree(cstring.cast()) };
        text
    }

    /// Parses `text` exactly as if it were written in SQL (a literal of the type, with `typmod`).
    pub fn parse(&self, text: &str, typmod: i32) -> Result<Datum, PlError> {
        let cstring = server_cstring(text)?;
        Ok(unsafe { pg_sys::InputFunctionCall(self.finfo.get(), cstring, self.ioparam, typmod) })
    }
}

pub fn type_name(type_oid: Oid) -> String {
    unsafe { server_cstr_to_string(pg_sys::format_type_be(type_oid)) }
}

/// A text-like varlena as a string.
///
/// # Safety
/// `datum` must be a non-null varlena Datum holding server-encoded characters.
pub unsafe fn text_to_string(datum: Datum) -> String {
    unsafe { server_to_string(varlena_bytes(datum)) }
}

/// The payload of a (possibly toasted or short-header) varlena Datum.
///
/// # Safety
/// `datum` must be a non-null varlena Datum; the slice lives as long as the current memory context.
pub unsafe fn varlena_bytes<'a>(datum: Datum) -> &'a [u8] {
    unsafe {
        let varlena = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(varlena);
        let data = pgrx::varlena::vardata_any(varlena) as *const u8;
        std::slice::from_raw_parts(data, len)
    }
}

fn is_utf8_database() -> bool {
    unsafe { pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32 }
}

/// Server-encoded bytes as a Rust string (the guest speaks UTF-8).
///
/// # Safety
/// `bytes` must be validly encoded in the server encoding.
pub unsafe fn server_to_string(bytes: &[u8]) -> String {
    if is_utf8_database() {
        // PostgreSQL only stores validly encoded text; from_utf8 cannot fail on it.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let converted = unsafe {
        pg_sys::pg_server_to_any(bytes.as_ptr().cast(), bytes.len() as i32, pg_sys::pg_enc::PG_UTF8 as i32)
    };
    // Where nothing needed converting (SQL_ASCII, an empty string) PostgreSQL returns the input
    // itself, which ends where `bytes` does, not at a NUL.
    if converted.cast_const() == bytes.as_ptr().cast() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let text = unsafe { CStr::from_ptr(converted) }.to_string_lossy().into_owned();
    unsafe { pg_sys::pfree(converted.cast()) };
    text
}

/// A NUL-terminated string in the server encoding (a name, a function body) in UTF-8.
///
/// # Safety
/// `text` must point to a NUL-terminated string validly encoded in the server encoding.
pub unsafe fn server_cstr_to_string(text: *const c_char) -> String {
    unsafe { server_to_string(CStr::from_ptr(text).to_bytes()) }
}

/// A message (a caught error's) in the server encoding, in UTF-8. Never raises: a byte sequence
/// the server encoding does not allow (SQL_ASCII holds any) is replaced.
///
/// # Safety
/// `text` must point to a NUL-terminated string.
pub unsafe fn message_from_server(text: *const c_char) -> String {
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    if is_utf8_database() || bytes.is_ascii() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    PgTryBuilder::new(|| unsafe { server_to_string(bytes) })
        .catch_others(|_| String::from_utf8_lossy(bytes).into_owned())
        .execute()
}

/// A query or a type name from the guest in the server encoding, for as long as the current
/// memory context lives; a character the server encoding lacks raises PostgreSQL's error (22P05).
pub fn in_server_encoding(text: &CStr) -> *const c_char {
    if is_utf8_database() {
        return text.as_ptr();
    }
    let len = text.to_bytes().len() as i32;
    unsafe { pg_sys::pg_any_to_server(text.as_ptr(), len, pg_sys::pg_enc::PG_UTF8 as i32) }
}

/// Text for a message (an error, a notice, a traceback) in the server encoding. Never raises: a
/// message must not fail for want of a character, so NULs are dropped and a character the server
/// encoding lacks is written as a `\u` escape.
pub fn message_in_server_encoding(text: &str) -> CString {
    let text = if text.contains('\0') { text.replace('\0', "") } else { text.to_string() };
    if is_utf8_database() || text.is_ascii() {
        return CString::new(text).expect("NULs removed above");
    }
    let whole = CString::new(text.as_str()).expect("NULs removed above");
    if let Some(converted) = try_to_server(&whole) {
        return converted;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buffer = [0u8; 4];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
            continue;
        }
        let one = CString::new(c.encode_utf8(&mut buffer).as_bytes()).expect("not a NUL");
        match try_to_server(&one) {
            Some(converted) => out.extend_from_slice(converted.as_bytes()),
            None if (c as u32) < 0x10000 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            None => out.extend_from_slice(format!("\\U{:08x}", c as u32).as_bytes()),
        }
    }
    CString::new(out).expect("no NULs: converted characters are not NULs")
}

/// `text` converted to the server encoding, or None where it has a character the encoding lacks.
fn try_to_server(text: &CStr) -> Option<CString> {
    PgTryBuilder::new(|| Some(unsafe { CStr::from_ptr(in_server_encoding(text)) }.to_owned()))
        .catch_others(|_| None)
        .execute()
}

/// A guest string in the server encoding, NUL-terminated, validated as PostgreSQL validates input.
fn server_cstring(text: &str) -> Result<*mut c_char, PlError> {
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

/// A `text` Datum holding `text` in the server encoding.
pub fn text_datum(text: &str) -> Result<Datum, PlError> {
    let cstring = server_cstring(text)?;
    unsafe {
        let len = CStr::from_ptr(cstring).to_bytes().len();
        Ok(Datum::from(pg_sys::cstring_to_text_with_len(cstring, len as i32)))
    }
}

/// A `bytea` Datum holding `bytes`.
pub fn bytea_datum(bytes: &[u8]) -> Datum {
    unsafe {
        let total = bytes.len() + pg_sys::VARHDRSZ;
        let varlena = pg_sys::palloc(total) as *mut pg_sys::varlena;
        pgrx::set_varsize_4b(varlena, total as i32);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), pgrx::varlena::vardata_any(varlena) as *mut u8, bytes.len());
        Datum::from(varlena)
    }
}
