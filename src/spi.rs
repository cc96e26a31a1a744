//! The database side of `plpy`: messages, queries and quoting, run on the backend's thread while the
//! guest waits in a host call.
//!
//! Each query runs in its own subtransaction, as PL/Python runs them: a PostgreSQL error is caught
//! here (pgrx's guard), the subtransaction is rolled back, and the error goes back to Python as a
//! value it may catch. Nothing unwinds through the guest's frames. A canceled query is the one error
//! Python may not catch: it stops the guest, as a cancel stops running Python.

use std::cell::Cell;
use std::ffi::{CStr, CString};

use pgrx::pg_sys::{self, panic::CaughtError};
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgTryBuilder};

use crate::convert::ToGuest;
use crate::runtime::{Canceled, Database, DbError, Node, Rows};

/// The `Database` every interpreter of this backend uses.
pub static SPI: Spi = Spi;

pub struct Spi;

thread_local! {
    /// Whether the current call connected to SPI (it connects on its first query).
    static CONNECTED: Cell<bool> = const { Cell::new(false) };
}

/// Runs one use of the guest; disconnects from SPI afterwards if a query connected it. On an error
/// PostgreSQL's transaction abort disconnects instead.
pub fn scope<T>(f: impl FnOnce() -> T) -> T {
    let outer = CONNECTED.with(|c| c.replace(false));
    let result = f();
    if CONNECTED.with(|c| c.replace(outer)) {
        unsafe { pg_sys::SPI_finish() };
    }
    result
}

impl Database for Spi {
    fn report(&self, level: u8, message: &str, detail: Option<&str>, hint: Option<&str>, sqlstate: Option<&str>) {
        let level = match level {
            13 => PgLogLevel::DEBUG2,
            15 => PgLogLevel::LOG,
            17 => PgLogLevel::INFO,
            18 => PgLogLevel::NOTICE,
            _ => PgLogLevel::WARNING,
        };
        let code = sqlstate.and_then(crate::error::sqlstate).unwrap_or(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION);
        let mut report = pg_sys::panic::ErrorReport::new(code, message.to_string(), "plpywasm");
        if let Some(detail) = detail {
            report = report.set_detail(detail);
        }
        if let Some(hint) = hint {
            report = report.set_hint(hint);
        }
        // Below ERROR, ereport returns; the guard is for a client that went away meanwhile.
        PgTryBuilder::new(move || report.report(level)).catch_others(|_| ()).execute();
    }

    fn execute(&self, query: &str, limit: u64) -> Result<Result<Rows, DbError>, Canceled> {
        let Ok(query) = CString::new(query) else {
            return Ok(Err(DbError {
                sqlstate: "22021".into(),
                message: "query string contains a NUL character".into(),
                detail: None,
                hint: None,
            }));
        };
        // Connected outside the subtransaction: its end would close a connection made inside.
        connect();
        in_subtransaction(|| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let status = unsafe { pg_sys::SPI_execute(query.as_ptr(), false, limit) };
            if status < 0 {
                let message = unsafe { CStr::from_ptr(pg_sys::SPI_result_code_string(status)) };
                pgrx::error!("SPI_execute failed: {}", message.to_string_lossy());
            }
            unsafe { take_rows(status) }
        })
    }

    fn quote_ident(&self, name: &str) -> String {
        let Ok(name) = CString::new(name) else { return String::new() };
        let quoted = unsafe { CStr::from_ptr(pg_sys::quote_identifier(name.as_ptr())) };
        quoted.to_string_lossy().into_owned()
    }
}

fn connect() {
    if !CONNECTED.with(|c| c.get()) {
        unsafe { pg_sys::SPI_connect() };
        CONNECTED.with(|c| c.set(true));
    }
}

/// Runs `f` in a subtransaction: committed if `f` returns, rolled back if PostgreSQL raised an error,
/// which is returned as a [`DbError`].
fn in_subtransaction(f: impl FnOnce() -> Rows + std::panic::UnwindSafe) -> Result<Result<Rows, DbError>, Canceled> {
    let context = unsafe { pg_sys::CurrentMemoryContext };
    let owner = unsafe { pg_sys::CurrentResourceOwner };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        // The subtransaction switched to its own context; results belong to the caller's.
        pg_sys::MemoryContextSwitchTo(context);
    }
    let outcome = PgTryBuilder::new(|| Ok(f())).catch_others(Err).execute();
    let restore = || unsafe {
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    };
    match outcome {
        Ok(rows) => {
            unsafe { pg_sys::ReleaseCurrentSubTransaction() };
            restore();
            Ok(Ok(rows))
        }
        Err(caught) => {
            unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() };
            restore();
            let report = match caught {
                CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report,
                CaughtError::RustPanic { ereport, .. } => ereport,
            };
            let cancel = report.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
                || unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 };
            if cancel {
                // Raised again once the guest has stopped (with PostgreSQL's own message).
                unsafe { pg_sys::QueryCancelPending = 1 };
                return Err(Canceled);
            }
            Ok(Err(DbError {
                sqlstate: crate::error::sqlstate_text(report.sql_error_code()),
                message: report.message().to_string(),
                detail: report.detail().map(str::to_string),
                hint: report.hint().map(str::to_string),
            }))
        }
    }
}

/// The result of the query that just ran, converted as function arguments are, then released.
unsafe fn take_rows(status: i32) -> Rows {
    let processed = unsafe { pg_sys::SPI_processed };
    let table = unsafe { pg_sys::SPI_tuptable };
    let mut rows = Rows { status, processed, colnames: vec![], coltypes: vec![], coltypmods: vec![], values: vec![] };
    if table.is_null() {
        return rows;
    }
    unsafe {
        let tupdesc = (*table).tupdesc;
        let attributes = (*tupdesc).attrs.as_slice((*tupdesc).natts as usize);
        let mut converters = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            rows.colnames.push(CStr::from_ptr(attribute.attname.data.as_ptr()).to_string_lossy().into_owned());
            rows.coltypes.push(attribute.atttypid.to_u32());
            rows.coltypmods.push(attribute.atttypmod);
            converters.push(ToGuest::for_type(attribute.atttypid));
        }
        let tuples = std::slice::from_raw_parts((*table).vals, processed as usize);
        rows.values.reserve(tuples.len() * converters.len());
        for &tuple in tuples {
            for (i, convert) in converters.iter().enumerate() {
                let mut is_null = false;
                let datum = pg_sys::SPI_getbinval(tuple, tupdesc, i as i32 + 1, &mut is_null);
                if is_null {
                    rows.values.push(Node::Null);
                } else {
                    convert.encode(datum, &mut rows.values);
                }
            }
        }
        pg_sys::SPI_freetuptable(table);
    }
    rows
}
