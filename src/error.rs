//! Errors raised by plpywasm, each with its SQLSTATE, and the error context that names the function
//! and carries the Python traceback (`CONTEXT:` lines, as PL/Python reports them).

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

use crate::convert::message_in_server_encoding;
use crate::runtime::{LoadError, PythonError, TrapKind};

/// An error detected by plpywasm. Raised as a PostgreSQL ERROR by the fmgr entry points
/// ([`PlError::stash`], [`raise_stashed`]), with any SQLSTATE and every field PL/Python reports;
/// or, inside code that catches it again, by [`PlError::raise`].
#[derive(Debug)]
pub struct PlError {
    /// The SQLSTATE, as PostgreSQL's MAKE_SQLSTATE packs it (any five digits or capitals).
    pub code: i32,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// A Python traceback, or the context lines of an error a conversion caught, reported in the
    /// error's context before the function's.
    pub traceback: Option<String>,
    /// `plpy.fatal`: ends the session, as in PL/Python.
    pub fatal: bool,
    /// Schema, table, column, data type and constraint names (PG_DIAG_* field codes).
    pub fields: Vec<(u8, String)>,
    /// A cancel or termination that stopped the guest, not an error of its own: see [`raise_stashed`].
    pub interrupted: bool,
}

/// The SQLSTATE of a Python exception that means a resource ran out.
fn resource_code(class_name: &str) -> Option<PgSqlErrorCode> {
    match class_name {
        "MemoryError" => Some(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY),
        "RecursionError" => Some(PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX),
        _ => None,
    }
}

/// `Class: message`, as PL/Python words an exception: with an empty message too ("ValueError: ").
fn class_and_message(error: &PythonError) -> String {
    format!("{}: {}", error.class_name, error.message)
}

impl PlError {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> PlError {
        let message = message.into();
        PlError { code: code as i32, message, detail: None, hint: None, traceback: None, fatal: false, fields: vec![], interrupted: false }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> PlError {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> PlError {
        self.hint = Some(hint.into());
        self
    }

    /// An uncaught Python exception: `Class: message`, the traceback in the context. An error the
    /// guest reports with a SQLSTATE (a result that does not fit its type) is its message alone.
    pub fn python(error: PythonError) -> PlError {
        let default = resource_code(&error.class_name).unwrap_or(PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION);
        let code = error.sqlstate.as_deref().and_then(sqlstate_code).unwrap_or(default as i32);
        let fatal = error.class_name == "plpy.Fatal";
        let message = if error.class_name.is_empty() { error.message.clone() } else { class_and_message(&error) };
        let traceback = (!error.traceback.is_empty()).then_some(error.traceback);
        let fields = diagnostic_fields(error.fields.into_iter().flatten());
        PlError { code, traceback, detail: error.detail, hint: error.hint, fatal, fields, ..PlError::new(default, message) }
    }

    /// A body Python could not compile (`function` as it reads in the message).
    pub fn compile(function: &str, error: PythonError) -> PlError {
        let mut detail = class_and_message(&error);
        if let Some(line) = error.line {
            detail.push_str(&format!(" (line {line})"));
        }
        // A body too large or too deep for the compiler is a resource error, not a syntax error.
        let code = resource_code(&error.class_name).unwrap_or(PgSqlErrorCode::ERRCODE_SYNTAX_ERROR);
        PlError::new(code, format!("could not compile PL/plpywasm {function}")).detail(detail)
    }

    /// The guest stopped abnormally; its interpreter has already been discarded.
    pub fn trap(kind: TrapKind) -> PlError {
        const FRESH: &str = "The interpreter was discarded; the next call starts a fresh one.";
        match kind {
            // `raise` lets PostgreSQL report the pending cancel or termination itself.
            TrapKind::Interrupted => PlError {
                interrupted: true,
                ..PlError::new(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, "canceling statement due to user request")
            },
            TrapKind::StackOverflow => {
                PlError::new(PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX, "stack depth limit exceeded")
                    .detail("The Python code recursed deeper than the WebAssembly stack allows.")
                    .hint(FRESH)
            }
            TrapKind::OutOfMemory => {
                PlError::new(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY, "out of memory")
                    .detail("The Python interpreter reached plpywasm.memory_limit.")
                    .hint(FRESH)
            }
            TrapKind::NoAddressSpace(cause) => {
                PlError::new(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY, "out of memory")
                    .detail(format!("Could not map the memory of a new Python interpreter: {cause}."))
                    .hint("Each interpreter reserves 4 GB of address space, which a limit on the server's (ulimit -v) may refuse.")
            }
            TrapKind::Other(trap) => PlError::new(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                "PL/plpywasm interpreter stopped abnormally",
            )
            .detail(trap)
            .hint(FRESH),
        }
    }

    pub fn load(error: LoadError) -> PlError {
        PlError::new(PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR, error.message).hint(error.hint)
    }

    pub fn unsupported(message: impl Into<String>) -> PlError {
        PlError::new(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, message)
    }

    /// Raises this error through pgrx, for code that catches it again (a subtransaction's guard).
    /// An entry point stashes its error instead, to be reported with all its fields.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(PgSqlErrorCode::from(self.code), self.message, "plpywasm");
        if let Some(detail) = self.detail {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR returned")
    }

    /// Keeps this error to be raised by [`raise_stashed`] once the entry point's guarded frames
    /// have returned.
    pub fn stash(self) {
        STASHED.with(|stashed| *stashed.borrow_mut() = Some(self));
    }
}

/// Raises the error an entry point stashed, if any. Must be called from the entry point's
/// outermost frame, inside its error context, with nothing that needs dropping on the stack:
/// PostgreSQL's error handling leaves it by longjmp.
///
/// # Safety
/// See above.
pub unsafe fn raise_stashed() {
    let Some(error) = STASHED.with(|stashed| stashed.borrow_mut().take()) else { return };
    let mut error = error;
    if error.interrupted {
        // A guest stopped for a cancel or a termination: PostgreSQL reports a pending one with its
        // own SQLSTATE (57014 or 57P01) and message; one already raised inside a query the guest
        // ran is reported as it was raised there.
        if unsafe { pg_sys::InterruptPending } != 0 {
            unsafe { ProcessInterrupts() };
        }
        if let Some(message) = CANCEL_MESSAGE.with(|m| m.borrow().clone()) {
            error.message = message;
        }
    }
    // A guest running further up stops for the same cancel (for a call nested in its own
    // interpreter, without seeing this error), and reports it in the same words.
    if !crate::runtime::lending() {
        CANCEL_MESSAGE.with(|m| m.borrow_mut().take());
    }
    let PlError { code, message, detail, hint, traceback, fatal, fields, interrupted } = error;
    let level = if fatal { pg_sys::FATAL } else { pg_sys::PGERROR } as c_int;
    // Raised where PostgreSQL raises interrupts, so that the query of a guest that called this one
    // takes it for the cancel it is (see `spi::raised_by_interrupt`), however many calls it crosses;
    // not a 57014 of code's own, which that guest may catch.
    let location = if interrupted { c"ProcessInterrupts" } else { c"report" };
    unsafe { report(level, code, message, detail, hint, fields, traceback, location) };
    unreachable!("ERROR returned")
}

// PostgreSQL's own functions, called as they are: outside pgrx's guards, an error in them must
// longjmp (pgrx's wrappers would turn it into a panic with nothing to catch it).
unsafe extern "C-unwind" {
    fn ProcessInterrupts();
    fn pstrdup(text: *const c_char) -> *mut c_char;
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg_internal(fmt: *const c_char, ...) -> c_int;
    fn errdetail_internal(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn err_generic_string(field: c_int, text: *const c_char) -> c_int;
    fn internalerrquery(query: *const c_char) -> c_int;
    fn internalerrposition(position: c_int) -> c_int;
}

/// Reports a message at `level` with PostgreSQL's own error machinery: any SQLSTATE, and the
/// diagnostic fields pgrx's reports do not carry; a traceback goes in the error's context. Below
/// ERROR it returns.
///
/// # Safety
/// At ERROR and above it does not return: the caller's frames must hold nothing that needs dropping.
pub unsafe fn report(
    level: c_int,
    code: i32,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    fields: Vec<(u8, String)>,
    traceback: Option<String>,
    location: &CStr,
) {
    // In PostgreSQL's memory, which its error handling cleans up: nothing of ours outlives a longjmp.
    let pg_string = |text: &str| -> *mut c_char { unsafe { pstrdup(message_in_server_encoding(text).as_ptr()) } };
    let pg_message = pg_string(&message);
    let pg_detail = detail.as_deref().map(pg_string);
    let pg_hint = hint.as_deref().map(pg_string);
    let pg_fields: Vec<(c_int, *mut c_char)> = fields.iter().map(|(code, text)| (*code as c_int, pg_string(text))).collect();
    // After the conversions: an error raised and caught while converting runs the context
    // callback, which would take the traceback.
    let traceback = traceback.map(|traceback| message_in_server_encoding(&traceback));
    PENDING_TRACEBACK.with(|pending| *pending.borrow_mut() = traceback);
    drop((message, detail, hint, fields));
    unsafe {
        if errstart(level, std::ptr::null()) {
            // 0: the level's default (00000 for messages, 01000 for warnings).
            if code != 0 {
                errcode(code);
            }
            errmsg_internal(c"%s".as_ptr(), pg_message);
            if let Some(detail) = pg_detail {
                errdetail_internal(c"%s".as_ptr(), detail);
            }
            if let Some(hint) = pg_hint {
                errhint(c"%s".as_ptr(), hint);
            }
            for &(field, text) in &pg_fields {
                match field as u8 {
                    pg_sys::PG_DIAG_INTERNAL_QUERY => internalerrquery(text),
                    pg_sys::PG_DIAG_INTERNAL_POSITION => internalerrposition(libc::atoi(text)),
                    _ => err_generic_string(field, text),
                };
            }
            drop(pg_fields);
            // LOCATION names this function (as PL/Python's names PLy_elog_impl), or `location`.
            errfinish(concat!(file!(), "\0").as_ptr().cast(), line!() as c_int, location.as_ptr());
        }
    }
}

/// The PG_DIAG field codes of plpy's keyword fields.
pub fn diagnostic_fields(fields: impl IntoIterator<Item = (String, String)>) -> Vec<(u8, String)> {
    fields
        .into_iter()
        .filter_map(|(name, value)| {
            let code = match name.as_str() {
                "schema_name" => pg_sys::PG_DIAG_SCHEMA_NAME,
                "table_name" => pg_sys::PG_DIAG_TABLE_NAME,
                "column_name" => pg_sys::PG_DIAG_COLUMN_NAME,
                "datatype_name" => pg_sys::PG_DIAG_DATATYPE_NAME,
                "constraint_name" => pg_sys::PG_DIAG_CONSTRAINT_NAME,
                // A query's error that Python did not catch: the query and the place in it.
                "internal_query" => pg_sys::PG_DIAG_INTERNAL_QUERY,
                "internal_position" => pg_sys::PG_DIAG_INTERNAL_POSITION,
                _ => return None,
            };
            Some((code, value))
        })
        .collect()
}

/// The packed code of a SQLSTATE such as `22003`; none unless it is five digits or capitals.
pub fn sqlstate_code(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || !bytes.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return None;
    }
    // PostgreSQL's MAKE_SQLSTATE: six bits per character, the first character lowest.
    Some(bytes.iter().enumerate().fold(0i32, |code, (i, &b)| code | (((b - b'0') as i32 & 0x3F) << (6 * i))))
}

/// The five characters of an error code.
pub fn sqlstate_text(code: i32) -> String {
    (0..5).map(|i| (((code >> (6 * i)) & 0x3F) as u8 + b'0') as char).collect()
}

/// A cancel PostgreSQL raised inside a query the guest ran: the guest is stopped, and the entry
/// point reports it with this message (and so does each caller up the stack).
pub fn remember_cancel(message: &str) {
    CANCEL_MESSAGE.with(|m| *m.borrow_mut() = Some(message.to_string()));
}

/// Forgets a cancel that SQL between two calls caught (PL/pgSQL may): at an outermost call.
pub fn forget_cancel() {
    CANCEL_MESSAGE.with(|m| m.borrow_mut().take());
}

thread_local! {
    static CANCEL_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The error an entry point will raise once its guarded frames have returned.
    static STASHED: RefCell<Option<PlError>> = const { RefCell::new(None) };
    /// The traceback of the error being raised, taken by the innermost context callback.
    static PENDING_TRACEBACK: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// Set while the host makes a datum of the guest's result, and left set if that fails.
    static MAKING: Cell<Option<&'static CStr>> = const { Cell::new(None) };
}

/// The context lines of [`making`], PL/Python's words.
pub const RETURN_VALUE: &CStr = c"while creating return value";
pub const TRIGGER_ROW: &CStr = c"while modifying trigger row";

/// Runs `f`, which makes a datum of what the guest returned: an error it raises (an input
/// function's, a domain's constraint) says so in a context line, `what`, as PL/Python's do, and
/// keeps all its fields (see `spi::keeping_fields`).
pub fn making<T>(what: &'static CStr, f: impl FnOnce() -> Result<T, PlError>) -> Result<T, PlError> {
    MAKING.with(|making| making.set(Some(what)));
    let made = crate::spi::keeping_fields(f);
    if made.is_ok() {
        MAKING.with(|making| making.set(None));
    }
    made
}

/// What [`making`] is making now; put back by [`restore_making`] after a caught error raised by a
/// call nested in the guest's queries, which left by longjmp, past `with_context`'s restore.
pub fn making_now() -> Option<&'static CStr> {
    MAKING.with(Cell::get)
}

pub fn restore_making(making: Option<&'static CStr>) {
    MAKING.with(|m| m.set(making));
}

/// What a context callback reports: which function, in which phase.
#[repr(C)]
pub struct ContextArg {
    pub phase: Phase,
    pub name: [u8; 64],
}

#[repr(u8)]
#[derive(Clone, Copy)]
pub enum Phase {
    Call,
    CallProcedure,
    Compile,
    Inline,
}

impl ContextArg {
    pub const fn new(phase: Phase) -> ContextArg {
        ContextArg { phase, name: [0; 64] }
    }

    /// Records the function's name for the context line, in the server encoding: the callback
    /// that writes it runs inside error reporting, where nothing may be converted.
    pub fn set_name(&mut self, name: &str) {
        let converted;
        let bytes = if name.is_ascii() {
            name.as_bytes()
        } else {
            converted = message_in_server_encoding(name);
            converted.as_bytes()
        };
        // A name is shorter than NAMEDATALEN in the server encoding, where it comes from.
        let len = bytes.len().min(self.name.len() - 1);
        self.name = [0; 64];
        self.name[..len].copy_from_slice(&bytes[..len]);
    }

    /// Names a procedure as such in the context line, as PL/Python does.
    pub fn set_procedure(&mut self) {
        if matches!(self.phase, Phase::Call) {
            self.phase = Phase::CallProcedure;
        }
    }

    fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        &self.name[..len]
    }
}

unsafe extern "C" {
    fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
}

/// Runs `f` with an error context callback installed. Only plain data lives in this frame: when `f`
/// raises, PostgreSQL longjmps over it, after the callback has added its lines.
///
/// # Safety
/// `arg` must stay valid while `f` runs; `f` must be a `#[pg_guard]`ed entry point.
pub unsafe fn with_context<R: Copy>(arg: *mut ContextArg, f: impl FnOnce() -> R) -> R {
    let mut callback = pg_sys::ErrorContextCallback {
        previous: unsafe { pg_sys::error_context_stack },
        callback: Some(context_callback),
        arg: arg.cast(),
    };
    unsafe { pg_sys::error_context_stack = &mut callback };
    let making = MAKING.with(|making| making.replace(None));
    let result = f();
    MAKING.with(|m| m.set(making));
    unsafe { pg_sys::error_context_stack = callback.previous };
    result
}

unsafe extern "C-unwind" fn context_callback(arg: *mut c_void) {
    // Nothing here may raise or panic: PostgreSQL is in the middle of reporting an error.
    let Ok(lines) = std::panic::catch_unwind(|| {
        let arg = unsafe { &*(arg as *const ContextArg) };
        let traceback = PENDING_TRACEBACK.with(|pending| pending.try_borrow_mut().ok().and_then(|mut p| p.take()));
        let name = arg.name();
        let place = match arg.phase {
            // Not yet known: the validator's access checks come before the function is read.
            _ if name.is_empty() && !matches!(arg.phase, Phase::Inline) => None,
            Phase::Call => Some([b"PL/plpywasm function \"", name, b"\""].concat()),
            Phase::CallProcedure => Some([b"PL/plpywasm procedure \"", name, b"\""].concat()),
            Phase::Compile => Some([b"compilation of PL/plpywasm function \"", name, b"\""].concat()),
            Phase::Inline => Some(b"PL/plpywasm anonymous code block".to_vec()),
        };
        let making = MAKING.with(Cell::get).filter(|_| matches!(arg.phase, Phase::Call | Phase::CallProcedure));
        traceback
            .into_iter()
            .chain(making.map(CStr::to_owned))
            .chain(place.and_then(|place| CString::new(place).ok()))
            .collect::<Vec<_>>()
    }) else {
        return;
    };
    for line in &lines {
        unsafe { errcontext_msg(c"%s".as_ptr(), line.as_ptr()) };
    }
}
