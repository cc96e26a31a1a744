//! The database side of `plpy`: messages, queries and quoting, run on the backend's thread while the
//! guest waits in a host call.
//!
//! Each query runs in its own subtransaction, as PL/Python runs them: a PostgreSQL error is caught
//! here (pgrx's guard), the subtransaction is rolled back, and the error goes back to Python as a
//! value it may catch. Nothing unwinds through the guest's frames. A canceled query is the one error
//! Python may not catch: it stops the guest, as a cancel stops running Python.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_char, CStr, CString};
use std::rc::Rc;

use pgrx::pg_guard;
use pgrx::pg_sys::{self, panic::CaughtError, Datum};
use pgrx::prelude::*;
use pgrx::{PgList, PgSqlErrorCode, PgTryBuilder};

use crate::convert::{
    attribute_name, attributes_of, in_server_encoding, input_size, marshal, message_from_server, type_exists, with_budget, FromGuest,
    ToGuest,
};
use crate::error::PlError;
use crate::idmap::{self, IdMap};
use crate::runtime::{Canceled, Cursor, Database, DbError, Node, Plan, Rows, Shape, TransactionStep};

/// The `Database` every interpreter of this backend uses.
pub static SPI: Spi = Spi;

pub struct Spi;

/// A statement prepared by plpy.prepare, kept across transactions, with its parameters' converters.
struct Prepared {
    /// The interpreter (generation) that prepared it: the only one that may use it.
    interpreter: u64,
    plan: pg_sys::SPIPlanPtr,
    params: RefCell<Vec<FromGuest>>,
    /// The shapes the guest was given for the parameters, and encodes them by.
    shapes: Vec<Vec<Shape>>,
    /// Released while it ran (see [`release`]): its last use frees it.
    released: Cell<bool>,
}

impl Prepared {
    /// Follows an ALTER TYPE of a row-typed parameter, as PL/Python's plans do; one that changes
    /// what the guest must send (the names or types of attributes) needs the plan prepared again,
    /// and its converters stay as they were, so that every use says so. Raises that as a
    /// PostgreSQL error: call it inside [`in_subtransaction`].
    fn refresh(&self) {
        if let Ok(mut params) = self.params.try_borrow_mut() {
            if params.iter().all(FromGuest::is_current) {
                return;
            }
            // What PostgreSQL says of a plan whose parameter type was dropped, as PL/Python's plans do.
            if let Some(dropped) = params.iter().map(FromGuest::declared_type).find(|&t| !type_exists(t)) {
                pgrx::ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    format!("type with OID {} does not exist", dropped.to_u32())
                );
            }
            let rebuilt: Vec<FromGuest> = params.iter().map(FromGuest::rebuilt).collect();
            if rebuilt.iter().map(FromGuest::shapes).eq(self.shapes.iter().cloned()) {
                *params = rebuilt;
                return;
            }
        }
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "a row type of the prepared plan's parameters was altered: prepare the plan again"
        );
    }
}

/// A reply to a fetch, and the number of rows it stands for.
type Reply = (usize, Result<Rows, DbError>);

/// A cursor plpy opened, by handle: the interpreter that opened it (the only one that may use it)
/// and its portal, looked up anew by name each time (a portal dies with its transaction).
struct OpenCursor {
    interpreter: u64,
    name: CString,
    portal: pg_sys::Portal,
    /// Cleared as the portal's memory goes (see [`watch_portal`]): once the portal has gone, SQL
    /// may declare another by its name, even at its address.
    alive: Cell<bool>,
    /// What iteration read ahead and the guest has not had yet (see [`fetch_ahead`]): replies
    /// for the next fetches, each with the number of rows it stands for.
    pending: RefCell<VecDeque<Reply>>,
    /// Its columns, once a fetch has seen them: the same for every fetch.
    columns: RefCell<Option<Rc<Columns>>>,
}

impl OpenCursor {
    /// The cursor's portal, if it is still there.
    fn portal(&self) -> Option<pg_sys::Portal> {
        let portal = unsafe { pg_sys::SPI_cursor_find(self.name.as_ptr()) };
        (self.alive.get() && portal == self.portal && !portal.is_null()).then_some(portal)
    }

    /// After a fetch that raised: a portal that failed can run no more, and a commit or rollback
    /// must not try to keep it (PostgreSQL's "pinned portal is not ready to be auto-held").
    fn unpin_if_failed(&self) {
        if let Some(portal) = self.portal() {
            if unsafe { (*portal).status } == pg_sys::PortalStatus::PORTAL_FAILED {
                unsafe { unpin(portal) };
            }
        }
    }

    /// Its columns, made from `tupdesc` (the portal's) at the first fetch that needs them.
    ///
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor; call where a catalog lookup may raise an error.
    unsafe fn columns(&self, tupdesc: pg_sys::TupleDesc) -> Rc<Columns> {
        self.columns.borrow_mut().get_or_insert_with(|| Rc::new(unsafe { Columns::of(tupdesc) })).clone()
    }
}

/// Has cursor `id` marked gone when `portal`'s memory goes, whenever and however it does (CLOSE,
/// the end of its transaction, an abort).
///
/// # Safety
/// `portal` must be a valid portal.
unsafe fn watch_portal(portal: pg_sys::Portal, id: u32) {
    unsafe {
        let memory = (*portal).portalContext;
        let callback = pg_sys::MemoryContextAllocZero(memory, std::mem::size_of::<pg_sys::MemoryContextCallback>())
            as *mut pg_sys::MemoryContextCallback;
        (*callback).func = Some(portal_gone);
        (*callback).arg = id as usize as *mut std::ffi::c_void;
        pg_sys::MemoryContextRegisterResetCallback(memory, callback);
    }
}

/// Runs as a portal's memory goes, maybe inside an abort: calls nothing.
unsafe extern "C-unwind" fn portal_gone(id: *mut std::ffi::c_void) {
    let _ = CURSORS.try_with(|cursors| {
        if let Some(open) = cursors.try_borrow().ok().and_then(|cursors| cursors.get(&(id as usize as u32)).cloned()) {
            open.alive.set(false);
        }
    });
}

/// A subtransaction `with plpy.subtransaction()` opened, and what to restore when it ends.
struct Explicit {
    context: pg_sys::MemoryContext,
    owner: pg_sys::ResourceOwner,
}

/// What a guest use may do with the database.
#[derive(Clone, Copy)]
pub struct Access {
    /// It may not end the transaction: all but procedures and DO blocks run outside a
    /// transaction block.
    pub atomic: bool,
    /// Its queries may not write and see the snapshot of the statement that called it: a
    /// STABLE or IMMUTABLE function's, as in PL/Python and PL/pgSQL.
    pub read_only: bool,
}

/// The SPI state of the guest use running now.
#[derive(Clone, Copy)]
struct Scope {
    /// Whether it connected to SPI (it connects on its first query).
    connected: bool,
    access: Access,
    /// How many explicit subtransactions were open when it started.
    explicit_base: usize,
    /// The trigger it runs for, whose transition tables its queries see.
    trigger: *mut pg_sys::TriggerData,
    /// How many cursors were pinned when it started.
    pinned_base: usize,
    /// Its queries are refused (see [`without_queries`]).
    refused: bool,
}

thread_local! {
    static SCOPE: Cell<Scope> = const {
        Cell::new(Scope {
            connected: false,
            access: Access { atomic: true, read_only: false },
            explicit_base: 0,
            trigger: std::ptr::null_mut(),
            pinned_base: 0,
            refused: false,
        })
    };
    static EXPLICIT: RefCell<Vec<Explicit>> = const { RefCell::new(Vec::new()) };
    /// Rc: a plan is taken out of the table before it runs, since what it runs may prepare more.
    static PLANS: RefCell<IdMap<u32, Rc<Prepared>>> = const { RefCell::new(idmap::new()) };
    static CURSORS: RefCell<IdMap<u32, Rc<OpenCursor>>> = const { RefCell::new(idmap::new()) };
    /// The portals of cursors opened by the guest uses running now, pinned so that a commit keeps
    /// them (as held cursors), as PL/Python's and PL/pgSQL's cursor loops are kept.
    static PINNED: RefCell<Vec<CString>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// Runs one use of the guest, `f`, which says whether the guest was stopped. Afterwards, aborts the
/// subtransactions it left open (as PL/Python does, with a warning, unless the guest was stopped
/// before its `with` blocks could exit), unpins the cursors it opened (a cursor kept in `GD` then
/// ends with its transaction, unless a commit made it a held one) and disconnects from SPI if a
/// query connected it. On an error PostgreSQL's transaction abort does all three instead.
pub fn scope<T>(access: Access, f: impl FnOnce() -> (T, bool)) -> T {
    let explicit_base = EXPLICIT.with(|e| e.borrow().len());
    let pinned_base = PINNED.with(|p| p.borrow().len());
    let outer = SCOPE.with(|s| {
        s.replace(Scope { connected: false, access, explicit_base, trigger: std::ptr::null_mut(), pinned_base, refused: false })
    });
    // A PostgreSQL error raised through this use (by a call nested in it that failed outside any
    // query's catch) first ends the subtransactions it left open, as PL/Python does: the query
    // that catches the error rolls back its own subtransaction, which must then be the current one.
    // (pgrx has made the error a Rust panic by now, and flushed PostgreSQL's error state.)
    // `stopped`: the guest was stopped (a trap, a cancel) before its `with` blocks could exit.
    let (result, stopped) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(error) => {
            SCOPE.with(|s| s.set(outer));
            while EXPLICIT.with(|e| e.borrow().len()) > explicit_base {
                end_explicit(false);
            }
            PINNED.with(|p| p.borrow_mut().truncate(pinned_base));
            std::panic::resume_unwind(error)
        }
    };
    let mine = SCOPE.with(|s| s.replace(outer));
    // All ended before any warning: a warning may notice a cancel, and raise it.
    let mut forced = 0;
    while EXPLICIT.with(|e| e.borrow().len()) > mine.explicit_base {
        end_explicit(false);
        forced += 1;
    }
    if !stopped {
        for _ in 0..forced {
            warning!("forcibly aborting a subtransaction that has not been exited");
        }
    }
    let pinned: Vec<CString> = PINNED.with(|p| {
        let mut p = p.borrow_mut();
        let from = mine.pinned_base.min(p.len());
        p.drain(from..).collect()
    });
    for name in pinned {
        unsafe { unpin(pg_sys::GetPortalByName(name.as_ptr())) };
    }
    if mine.connected {
        unsafe { pg_sys::SPI_finish() };
    }
    result
}

/// Runs `f` with the guest's queries refused: a generator that an earlier query stopped reading,
/// closed in another query, must not use that one's privileges.
pub fn without_queries<T>(f: impl FnOnce() -> T) -> T {
    SCOPE.with(|s| s.set(Scope { refused: true, ..s.get() }));
    let result = f();
    SCOPE.with(|s| s.set(Scope { refused: false, ..s.get() }));
    result
}

fn refused() -> DbError {
    db_error("55000", "a generator closed after its query ended cannot run queries")
}

/// Unpins a cursor's portal, if it is still there and pinned.
unsafe fn unpin(portal: pg_sys::Portal) {
    if !portal.is_null() && unsafe { (*portal).portalPinned } {
        unsafe { pg_sys::UnpinPortal(portal) };
    }
}

/// Lets the queries of the guest use running now see `trigger`'s transition tables (`REFERENCING
/// NEW TABLE AS …`), as PL/Python's do. Lasts until the end of that use.
pub fn use_trigger_data(trigger: *mut pg_sys::TriggerData) {
    SCOPE.with(|s| s.set(Scope { trigger, ..s.get() }));
}

fn next_id() -> u32 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

fn db_error(sqlstate: &str, message: impl Into<String>) -> DbError {
    DbError {
        sqlstate: sqlstate.into(),
        message: message.into(),
        detail: None,
        hint: None,
        query: None,
        position: 0,
        fields: None,
    }
}

fn query_cstring(query: &str) -> Result<CString, DbError> {
    CString::new(query).map_err(|_| db_error("22021", "query string contains a NUL character"))
}

/// Raises SPI's failure `status` of `call` (caught by the subtransaction around it).
fn spi_failed(call: &str, status: i32) -> ! {
    let message = unsafe { CStr::from_ptr(pg_sys::SPI_result_code_string(status)) };
    pgrx::error!("{call} failed: {}", message.to_string_lossy())
}

impl Database for Spi {
    fn report(
        &self,
        level: u8,
        message: &str,
        detail: Option<&str>,
        hint: Option<&str>,
        sqlstate: Option<&str>,
        fields: Vec<(String, String)>,
    ) -> Result<Result<(), DbError>, Canceled> {
        let level = match level {
            13 => pg_sys::DEBUG2,
            15 => pg_sys::LOG,
            16 => pg_sys::LOG_SERVER_ONLY,
            17 => pg_sys::INFO,
            18 => pg_sys::NOTICE,
            _ => pg_sys::WARNING,
        } as i32;
        let code = sqlstate.and_then(crate::error::sqlstate_code).unwrap_or(0);
        let fields = crate::error::diagnostic_fields(fields);
        let message = message.to_string();
        let (detail, hint) = (detail.map(str::to_string), hint.map(str::to_string));
        // Below ERROR, ereport returns, unless sending the message fails (a character the
        // client's encoding lacks) or a cancel is noticed as it ends: that error comes back to
        // Python, as PL/Python's does, rather than jump over the guest's frames.
        let reported = catching(|| unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| crate::error::report(level, code, message, detail, hint, fields, None, c"report"))
        });
        match reported {
            Ok(()) => Ok(Ok(())),
            Err(caught) => caught_error(caught),
        }
    }

    fn execute(&self, query: &str, limit: u64) -> Result<Result<Rows, DbError>, Canceled> {
        let query = match query_cstring(query) {
            Ok(query) => query,
            Err(err) => return Ok(Err(err)),
        };
        // in_subtransaction connects first, outside: the subtransaction's end would close a
        // connection made inside it.
        in_subtransaction(|| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            // Several statements go SPI's own way, guarded: it keeps the last one's rows, which a
            // destination of our own could not tell from the others'.
            let mut received = one_statement(query.as_bytes()).then(Received::whole);
            let mut guarded = received.is_none().then(Guarded::new);
            let options = execute_options(destination(&mut received, &mut guarded), limit, std::ptr::null_mut());
            let status = unsafe { pg_sys::SPI_execute_extended(in_server_encoding(&query), &options) };
            unsafe { statement_rows("SPI_execute", status, received) }
        })
        .map(Result::flatten)
    }

    fn prepare(&self, interpreter: u64, query: &str, types: &[String]) -> Result<Result<Plan, DbError>, Canceled> {
        let query = match query_cstring(query) {
            Ok(query) => query,
            Err(err) => return Ok(Err(err)),
        };
        in_subtransaction(|| {
            let (mut type_oids, mut typmods) = (Vec::with_capacity(types.len()), Vec::with_capacity(types.len()));
            for name in types {
                let name = CString::new(name.as_str()).unwrap_or_else(|_| {
                    pgrx::ereport!(ERROR, PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE, "type name contains a NUL character");
                });
                let (mut type_oid, mut typmod) = (pg_sys::Oid::INVALID, -1);
                unsafe { pg_sys::parseTypeString(in_server_encoding(&name), &mut type_oid, &mut typmod, false) };
                type_oids.push(type_oid);
                typmods.push(typmod);
            }
            let plan = unsafe { pg_sys::SPI_prepare(in_server_encoding(&query), type_oids.len() as i32, type_oids.as_mut_ptr()) };
            if plan.is_null() {
                spi_failed("SPI_prepare", unsafe { pg_sys::SPI_result });
            }
            unsafe { pg_sys::SPI_keepplan(plan) };
            // A parameter takes its type's modifier, as a column's value does: varchar(2) refuses
            // longer text, numeric(5,2) rounds (as PL/Python's plans do).
            let params: Vec<FromGuest> = type_oids.iter().zip(&typmods).map(|(&t, &typmod)| FromGuest::for_type(t, typmod)).collect();
            let shapes: Vec<Vec<Shape>> = params.iter().map(FromGuest::shapes).collect();
            let id = next_id();
            PLANS.with(|p| {
                p.borrow_mut().insert(id, Rc::new(Prepared {
                    interpreter,
                    plan,
                    params: RefCell::new(params),
                    shapes: shapes.clone(),
                    released: Cell::new(false),
                }))
            });
            Plan { id, params: Some(shapes).filter(|shapes| !shapes.is_empty()) }
        })
    }

    fn execute_plan(&self, interpreter: u64, plan: u32, params: &[u8], limit: u64) -> Result<Result<Rows, DbError>, Canceled> {
        let prepared = match prepared(interpreter, plan) {
            Ok(prepared) => prepared,
            Err(err) => return Ok(Err(err)),
        };
        let done = in_subtransaction(|| {
            prepared.refresh();
            let (values, nulls) = param_values(&prepared.params.borrow(), params);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let statements = unsafe { PgList::<pg_sys::CachedPlanSource>::from_pg(pg_sys::SPI_plan_get_plan_sources(prepared.plan)) };
            let mut received = (statements.len() == 1).then(Received::whole);
            let mut guarded = received.is_none().then(Guarded::new);
            let params = unsafe { param_list(prepared.plan, &values, &nulls) };
            let options = execute_options(destination(&mut received, &mut guarded), limit, params);
            let status = unsafe { pg_sys::SPI_execute_plan_extended(prepared.plan, &options) };
            unsafe { statement_rows("SPI_execute_plan", status, received) }
        });
        used(prepared);
        done.map(Result::flatten)
    }

    fn free_plan(&self, interpreter: u64, plan: u32) {
        if prepared(interpreter, plan).is_err() {
            return;
        }
        if let Some(prepared) = PLANS.with(|p| p.borrow_mut().remove(&plan)) {
            release(prepared);
        }
    }

    fn open_cursor(&self, interpreter: u64, query: &str, plan: Option<u32>, params: &[u8]) -> Result<Result<Cursor, DbError>, Canceled> {
        let prepared = match plan.map(|plan| prepared(interpreter, plan)).transpose() {
            Ok(prepared) => prepared,
            Err(err) => return Ok(Err(err)),
        };
        let query = match query_cstring(query) {
            Ok(query) => query,
            Err(err) => return Ok(Err(err)),
        };
        let opened = in_subtransaction(|| {
            let (portal, read_ahead) = unsafe {
                match &prepared {
                    Some(prepared) => {
                        prepared.refresh();
                        let (mut values, nulls) = param_values(&prepared.params.borrow(), params);
                        let portal =
                            pg_sys::SPI_cursor_open(std::ptr::null(), prepared.plan, values.as_mut_ptr(), nulls.as_ptr(), read_only());
                        (portal, reads_ahead(prepared.plan))
                    }
                    None => {
                        // Prepared here (as SPI_cursor_open_with_args would), to see what it runs.
                        let plan = pg_sys::SPI_prepare_cursor(in_server_encoding(&query), 0, std::ptr::null_mut(), 0);
                        if plan.is_null() {
                            spi_failed("SPI_prepare_cursor", pg_sys::SPI_result);
                        }
                        let portal = pg_sys::SPI_cursor_open(std::ptr::null(), plan, std::ptr::null_mut(), std::ptr::null(), read_only());
                        let read_ahead = reads_ahead(plan);
                        // The portal keeps its own copy of an unsaved plan.
                        pg_sys::SPI_freeplan(plan);
                        (portal, read_ahead)
                    }
                }
            };
            if portal.is_null() {
                pgrx::error!("could not open a cursor");
            }
            let name = unsafe { CStr::from_ptr((*portal).name) }.to_owned();
            unsafe { pg_sys::PinPortal(portal) };
            PINNED.with(|p| p.borrow_mut().push(name.clone()));
            let id = next_id();
            let cursor = OpenCursor {
                interpreter,
                name,
                portal,
                alive: Cell::new(true),
                pending: RefCell::new(VecDeque::new()),
                columns: RefCell::new(None),
            };
            CURSORS.with(|c| c.borrow_mut().insert(id, Rc::new(cursor)));
            unsafe { watch_portal(portal, id) };
            Cursor { id, read_ahead }
        });
        if let Some(prepared) = prepared {
            used(prepared);
        }
        opened
    }

    fn fetch(&self, interpreter: u64, cursor: u32, count: i64, ahead: bool, described: bool) -> Result<Result<Rows, DbError>, Canceled> {
        let Some(cursor) = open_cursor(interpreter, cursor) else {
            return Ok(Err(db_error("34000", "cursor is closed")));
        };
        let mut count = count;
        if ahead && count <= 0 {
            // Stepping back over the rows iteration read ahead, those the host still holds too.
            let held: usize = cursor.pending.borrow_mut().drain(..).map(|(rows, _)| rows).sum();
            count = count.saturating_sub(held as i64);
        } else if let Some((_, next)) = cursor.pending.borrow_mut().pop_front() {
            return Ok(next);
        }
        if ahead && count > 0 {
            return fetch_ahead(&cursor, count);
        }
        let fetched = in_subtransaction(|| {
            let portal = live_portal(&cursor);
            // Stepping back over the rows iteration read ahead: over the end too, if it went past it.
            let count = if ahead && unsafe { (*portal).atEnd } { count - 1 } else { count };
            // Forward with a negative count is backward, as FETCH has it. Refused once the rows
            // outgrow plpywasm.memory_limit, as a statement's are, not after all are fetched.
            let count = std::ffi::c_long::try_from(count).unwrap_or(std::ffi::c_long::MAX);
            let mut received = Received::whole();
            unsafe { received.fetch(portal, count) };
            unsafe { received.fetched(&cursor, described, portal) }
        });
        if matches!(fetched, Ok(Err(_))) {
            cursor.unpin_if_failed();
        }
        fetched
    }

    fn close_cursor(&self, interpreter: u64, cursor: u32) -> Result<Result<(), DbError>, Canceled> {
        let Some(open) = open_cursor(interpreter, cursor) else { return Ok(Ok(())) };
        // In a subtransaction, as a query: closing runs what the portal had left (a data-modifying
        // WITH finishes, its AFTER triggers fire).
        let closed = in_subtransaction(|| unsafe {
            let portal = live_portal(&open);
            // PostgreSQL refuses to drop a portal that is being read (a call nested in its fetch
            // closes it) only once it is unpinned: it must stay pinned, and open.
            if (*portal).status == pg_sys::PortalStatus::PORTAL_ACTIVE {
                pgrx::ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_INVALID_CURSOR_STATE,
                    format!("cannot drop active portal \"{}\"", open.name.to_string_lossy())
                );
            }
            unpin(portal);
            pg_sys::SPI_cursor_close(portal);
        });
        if open.portal().is_none() {
            CURSORS.with(|c| c.borrow_mut().remove(&cursor));
        }
        closed
    }

    fn transaction(&self, step: TransactionStep) -> Result<Result<(), DbError>, Canceled> {
        if SCOPE.with(Cell::get).refused {
            return Ok(Err(refused()));
        }
        if let Err(caught) = catching(connect) {
            return caught_error(caught);
        }
        let scope = SCOPE.with(Cell::get);
        let open_here = EXPLICIT.with(|e| e.borrow().len()) - scope.explicit_base;
        let outcome = match step {
            TransactionStep::BeginSub => catching(|| unsafe {
                let explicit = Explicit { context: pg_sys::CurrentMemoryContext, owner: pg_sys::CurrentResourceOwner };
                pg_sys::BeginInternalSubTransaction(std::ptr::null());
                pg_sys::MemoryContextSwitchTo(explicit.context);
                EXPLICIT.with(|e| e.borrow_mut().push(explicit));
            }),
            TransactionStep::ReleaseSub | TransactionStep::RollbackSub if open_here == 0 => {
                // (The guest knows these words: see plpy's _NO_SUBTRANSACTION.)
                return Ok(Err(db_error("25000", "there is no subtransaction to exit from")));
            }
            TransactionStep::ReleaseSub | TransactionStep::RollbackSub => {
                let keep = matches!(step, TransactionStep::ReleaseSub);
                catching(|| end_explicit(keep))
            }
            TransactionStep::Commit | TransactionStep::Rollback => {
                let commit = matches!(step, TransactionStep::Commit);
                // Refused as SPI_commit and SPI_rollback refuse it: their words, in their order
                // (an atomic call first).
                if open_here > 0 {
                    let message = match (scope.access.atomic, commit) {
                        (true, _) => "invalid transaction termination",
                        (false, true) => "cannot commit while a subtransaction is active",
                        (false, false) => "cannot roll back while a subtransaction is active",
                    };
                    return Ok(Err(db_error("2D000", message)));
                }
                crate::identity::ending_transaction(|| {
                    catching(|| unsafe {
                        if commit {
                            pg_sys::SPI_commit();
                        } else {
                            pg_sys::SPI_rollback();
                        }
                    })
                })
            }
        };
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(caught) => caught_error(caught),
        }
    }

    fn quote_ident(&self, name: &str) -> String {
        let Ok(name) = CString::new(name) else { return String::new() };
        let quoted = unsafe { CStr::from_ptr(pg_sys::quote_identifier(name.as_ptr())) };
        quoted.to_string_lossy().into_owned()
    }

    fn closing(&self) -> bool {
        SCOPE.with(Cell::get).refused
    }
}

fn read_only() -> bool {
    SCOPE.with(Cell::get).access.read_only
}

fn connect() {
    let scope = SCOPE.with(Cell::get);
    if !scope.connected {
        let options = if scope.access.atomic { 0 } else { pg_sys::SPI_OPT_NONATOMIC as i32 };
        unsafe { pg_sys::SPI_connect_ext(options) };
        if !scope.trigger.is_null() {
            unsafe { pg_sys::SPI_register_trigger_data(scope.trigger) };
        }
        SCOPE.with(|s| s.set(Scope { connected: true, ..scope }));
    }
}

/// Converts a statement's parameters from the guest's marshalled nodes, one value per parameter.
fn param_values(params: &[FromGuest], nodes: &[u8]) -> (Vec<Datum>, Vec<c_char>) {
    let mut nodes = marshal::read_nodes(nodes).unwrap_or_else(|err| err.raise()).into_iter();
    let mut values = Vec::with_capacity(params.len());
    let mut nulls = Vec::with_capacity(params.len());
    for param in params {
        let (value, is_null) = param.decode(&mut nodes).unwrap_or_else(|err| err.raise());
        values.push(value);
        nulls.push(if is_null { b'n' } else { b' ' } as c_char);
    }
    (values, nulls)
}

/// A plan `interpreter` prepared.
fn prepared(interpreter: u64, plan: u32) -> Result<Rc<Prepared>, DbError> {
    PLANS
        .with(|p| p.borrow().get(&plan).filter(|prepared| prepared.interpreter == interpreter).cloned())
        .ok_or_else(|| db_error("26000", "the prepared plan no longer exists"))
}

/// Whether iterating a cursor over `plan` may fetch rows ahead (see the WIT's `cursor`): nothing
/// in its statements, their views and subqueries included, could tell when a row was made.
///
/// # Safety
/// `plan` must be a valid plan, revalidated (as opening a cursor over it does).
unsafe fn reads_ahead(plan: pg_sys::SPIPlanPtr) -> bool {
    let sources = unsafe { PgList::<pg_sys::CachedPlanSource>::from_pg(pg_sys::SPI_plan_get_plan_sources(plan)) };
    let steady = sources.iter_ptr().all(|source| {
        let queries = unsafe { PgList::<pg_sys::Query>::from_pg((*source).query_list) };
        let steady = queries
            .iter_ptr()
            .all(|query| unsafe { !pg_sys::contain_volatile_functions(query.cast()) && !telling(query.cast(), std::ptr::null_mut()) });
        steady
    });
    steady
}

/// Whether `node` holds what `contain_volatile_functions` does not see but could tell when a row
/// was made: a statement other than a SELECT, row locks, a data-modifying WITH, an aggregate with
/// a volatile support function (an aggregate itself is always marked immutable) or a domain's
/// check (which may call anything).
#[pg_guard]
unsafe extern "C-unwind" fn telling(node: *mut pg_sys::Node, context: *mut std::ffi::c_void) -> bool {
    if node.is_null() {
        return false;
    }
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_Query => {
                let query = node as *mut pg_sys::Query;
                return (*query).commandType != pg_sys::CmdType::CMD_SELECT
                    || !(*query).rowMarks.is_null()
                    || (*query).hasModifyingCTE
                    || pg_sys::query_tree_walker(query, Some(telling), context, 0);
            }
            pg_sys::NodeTag::T_Aggref if volatile_aggregate((*(node as *mut pg_sys::Aggref)).aggfnoid) => return true,
            pg_sys::NodeTag::T_WindowFunc => {
                // A plain window function's own volatility is contain_volatile_functions' to see.
                let window = node as *mut pg_sys::WindowFunc;
                if (*window).winagg && volatile_aggregate((*window).winfnoid) {
                    return true;
                }
            }
            pg_sys::NodeTag::T_CoerceToDomain => return true,
            _ => {}
        }
        pg_sys::expression_tree_walker(node, Some(telling), context)
    }
}

/// Whether a function the aggregate `aggregate` runs (transition, final, combine, serialization,
/// their moving-aggregate forms) is volatile. None of PostgreSQL's own aggregates has one.
///
/// # Safety
/// Call where a catalog lookup may raise an error.
unsafe fn volatile_aggregate(aggregate: pg_sys::Oid) -> bool {
    // pg_aggregate's regproc columns, aggtransfn to aggmfinalfn (catalog/pg_aggregate.h).
    const SUPPORT_FUNCTIONS: std::ops::RangeInclusive<pg_sys::AttrNumber> = 4..=11;
    let cache = pg_sys::SysCacheIdentifier::AGGFNOID as i32;
    unsafe {
        let tuple = pg_sys::SearchSysCache1(cache, aggregate.into());
        if tuple.is_null() {
            // Not an aggregate PostgreSQL knows: treated as one that could tell.
            return true;
        }
        let volatile = SUPPORT_FUNCTIONS.into_iter().any(|column| {
            let mut is_null = false;
            let function = pg_sys::Oid::from_datum(pg_sys::SysCacheGetAttr(cache, tuple, column, &mut is_null), is_null);
            function.is_some_and(|function| function != pg_sys::InvalidOid && pg_sys::func_volatile(function) == pg_sys::PROVOLATILE_VOLATILE as c_char)
        });
        pg_sys::ReleaseSysCache(tuple);
        volatile
    }
}

/// A cursor `interpreter` opened.
fn open_cursor(interpreter: u64, cursor: u32) -> Option<Rc<OpenCursor>> {
    CURSORS.with(|c| c.borrow().get(&cursor).filter(|open| open.interpreter == interpreter).cloned())
}

/// Frees a plan no longer in [`PLANS`]; one that is running (what it runs released it) is freed
/// when its last use ends (see [`used`]).
fn release(prepared: Rc<Prepared>) {
    match Rc::try_unwrap(prepared) {
        Ok(prepared) => {
            PgTryBuilder::new(|| unsafe { pg_sys::SPI_freeplan(prepared.plan) }).catch_others(|_| 0).execute();
        }
        Err(running) => running.released.set(true),
    }
}

/// Ends a use of a plan, freeing it if it was released meanwhile.
fn used(prepared: Rc<Prepared>) {
    if prepared.released.get() {
        release(prepared);
    }
}

/// Frees the plans of a discarded interpreter and forgets its cursors: their Python objects went
/// with it, finalizers unrun. (The portals of its cursors end with their transaction, or with the
/// session or a CLOSE if a commit made them held, as SQL's own cursors.)
pub fn forget_interpreter(generation: u64) {
    let plans: Vec<Rc<Prepared>> = PLANS.with(|plans| {
        plans.borrow_mut().extract_if(|_, prepared| prepared.interpreter == generation).map(|(_, prepared)| prepared).collect()
    });
    for prepared in plans {
        release(prepared);
    }
    CURSORS.with(|cursors| cursors.borrow_mut().retain(|_, open| open.interpreter != generation));
}

/// The cursor's portal, or the error PostgreSQL would raise for a closed one. Call inside
/// [`in_subtransaction`].
fn live_portal(cursor: &OpenCursor) -> pg_sys::Portal {
    let Some(portal) = cursor.portal() else {
        pgrx::ereport!(ERROR, PgSqlErrorCode::ERRCODE_INVALID_CURSOR_NAME, "cursor is closed or its transaction has ended");
    };
    portal
}

/// Iteration reading ahead: the next `count` rows, as one-row fetches would give them. Rows once
/// fetched cannot be left in the portal, so what the guest should not take at once waits in the
/// cursor's `pending` for the next fetches: rows beyond what fits the budget, a row that failed to
/// convert (an error in its place, the rows after it still there), and the error of the query
/// itself, after the rows made before it.
fn fetch_ahead(cursor: &OpenCursor, count: i64) -> Result<Result<Rows, DbError>, Canceled> {
    let mut received = Received::new();
    let failed = match in_subtransaction(|| unsafe { received.run(live_portal(cursor), count) })? {
        Ok(()) => None,
        Err(failed) => {
            cursor.unpin_if_failed();
            if received.tuples.is_empty() {
                return Ok(Err(failed));
            }
            Some(failed)
        }
    };
    let mut replies = unsafe { received.replies(cursor) }?;
    replies.extend(failed.map(|failed| (0, Err(failed))));
    let (_, first) = replies.pop_front().expect("at least one reply");
    *cursor.pending.borrow_mut() = replies;
    Ok(first)
}

/// The most a read-ahead reply may hold: the guest holds it twice while it reads it, beside what
/// it holds already.
fn read_ahead_budget() -> usize {
    crate::gucs::memory_limit_bytes() / 16
}

/// A destination for a cursor's rows that keeps them in memory of its own, so that the rows made
/// before the query failed outlive the subtransaction it failed in (SPI's are freed with it).
#[repr(C)]
struct Received {
    /// First, as PostgreSQL calls back with a pointer to it.
    receiver: pg_sys::DestReceiver,
    memory: pg_sys::MemoryContext,
    tupdesc: pg_sys::TupleDesc,
    tuples: Vec<pg_sys::HeapTuple>,
    /// The [`expansion`] of each tuple, and their sum.
    expansions: Vec<usize>,
    expanded: usize,
    /// A statement's whole result (plpy.execute), held to plpywasm.memory_limit as it is made,
    /// not a cursor's rows (which the read-ahead budget holds back).
    whole: bool,
}

impl Received {
    fn new() -> Box<Self> {
        let receiver = pg_sys::DestReceiver {
            receiveSlot: Some(receive_slot),
            rStartup: Some(receive_startup),
            rShutdown: Some(receive_nothing),
            rDestroy: Some(receive_nothing),
            // A store of rows, as PL/pgSQL's RETURN QUERY gives SPI: not DestNone, for which SPI
            // says a SELECT is a utility statement and PortalRunFetch only counts a re-fetch, nor
            // DestSPI, whose own tuple table SPI would check.
            mydest: pg_sys::CommandDest::DestTuplestore,
        };
        // Under the transaction's memory: the caller's may be a per-row context, and the rows
        // must outlive the subtransaction that fetched them.
        let memory = unsafe {
            pg_sys::AllocSetContextCreateExtended(
                pg_sys::TopTransactionContext,
                c"plpywasm cursor rows".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            )
        };
        Box::new(Received {
            receiver,
            memory,
            tupdesc: std::ptr::null_mut(),
            tuples: Vec::new(),
            expansions: Vec::new(),
            expanded: 0,
            whole: false,
        })
    }

    /// For a statement's whole result: refused (54000) as soon as it outgrows plpywasm.memory_limit,
    /// before the backend holds more of it.
    fn whole() -> Box<Self> {
        let mut received = Received::new();
        received.whole = true;
        received
    }

    /// The statement's result for the guest (see the WIT's `rows`).
    ///
    /// # Safety
    /// Call inside [`in_subtransaction`], right after the statement ran into this.
    unsafe fn result(&self, status: i32) -> Rows {
        let size = self.size();
        // The rows it returned, when it returned rows: SPI counts none for a utility statement's
        // (EXPLAIN, SHOW) that it did not keep itself.
        let processed = if self.tupdesc.is_null() { unsafe { pg_sys::SPI_processed } } else { self.tuples.len() as u64 };
        unsafe { rows_reply(status, processed as i64, self.tupdesc, &self.tuples, size) }
    }

    /// Fetches up to `count` rows forward from `portal` into this; fewer at the end, or once they
    /// take the read-ahead budget.
    ///
    /// # Safety
    /// `portal` must be a live portal; call inside [`in_subtransaction`].
    unsafe fn run(&mut self, portal: pg_sys::Portal, count: i64) {
        let budget = read_ahead_budget();
        // A few rows at a time, as many as the budget has room for at the size rows took so far:
        // the next rows may be far larger, and once fetched they cannot be left for later.
        const MOST_AT_ONCE: usize = 4;
        let mut want = 1;
        loop {
            let before = self.tuples.len();
            unsafe { self.fetch(portal, want) };
            let size = self.size();
            let left = count.saturating_sub(self.tuples.len() as i64);
            let room = budget.saturating_sub(size) / (size / self.tuples.len().max(1)).max(1);
            if ((self.tuples.len() - before) as i64) < i64::from(want) || left <= 0 || room == 0 {
                break;
            }
            want = std::ffi::c_long::try_from(left.min(room.min(MOST_AT_ONCE) as i64)).unwrap_or(1);
        }
    }

    /// Fetches `count` rows from `portal` into this, backward if it is negative, as FETCH does.
    ///
    /// # Safety
    /// `portal` must be a live portal; call inside [`in_subtransaction`].
    unsafe fn fetch(&mut self, portal: pg_sys::Portal, count: std::ffi::c_long) {
        unsafe { pg_sys::PortalRunFetch(portal, pg_sys::FetchDirection::FETCH_FORWARD, count, &mut self.receiver) };
        // The portal's query keeps the destination it last ran with: not this one, soon gone.
        let query = unsafe { (*portal).queryDesc };
        if !query.is_null() {
            unsafe { (*query).dest = pg_sys::None_Receiver };
        }
    }

    /// The rows fetched from `cursor`'s `portal`, for the guest; its columns described unless the
    /// guest has them already.
    ///
    /// # Safety
    /// Call inside the [`in_subtransaction`] that fetched them.
    unsafe fn fetched(&self, cursor: &OpenCursor, described: bool, portal: pg_sys::Portal) -> Rows {
        let tupdesc = if self.tupdesc.is_null() { unsafe { (*portal).tupDesc } } else { self.tupdesc };
        let (status, processed) = (pg_sys::SPI_OK_FETCH as i32, self.tuples.len() as i64);
        unsafe { cursor.columns(tupdesc).reply(status, processed, !described, tupdesc, &self.tuples, self.size()) }
    }

    /// The memory the rows take once read.
    fn size(&self) -> usize {
        self.expanded + unsafe { pg_sys::MemoryContextMemAllocated(self.memory, true) }
    }

    /// The replies for the rows, in order, with `cursor`'s columns: groups that each fit the
    /// read-ahead budget (one, with no rows, at the end of the cursor); a group that fails to
    /// convert is converted row by row, so that only the rows that fail are errors, each in its
    /// place.
    ///
    /// # Safety
    /// Call outside any subtransaction of this fetch, which `cursor` ran into this.
    unsafe fn replies(&self, cursor: &OpenCursor) -> Result<VecDeque<Reply>, Canceled> {
        let tupdesc = self.tupdesc;
        let reply = |rows: &[pg_sys::HeapTuple], size: usize| {
            in_subtransaction(|| unsafe {
                let status = pg_sys::SPI_OK_FETCH as i32;
                if tupdesc.is_null() {
                    rows_reply(status, rows.len() as i64, tupdesc, rows, size)
                } else {
                    cursor.columns(tupdesc).reply(status, rows.len() as i64, true, tupdesc, rows, size)
                }
            })
        };
        let sizes: Vec<usize> =
            self.tuples.iter().zip(&self.expansions).map(|(&tuple, &expansion)| unsafe { (*tuple).t_len as usize } + expansion).collect();
        let budget = read_ahead_budget();
        let mut groups = vec![(0, 0)];
        for (i, &size) in sizes.iter().enumerate() {
            let (start, taken) = groups.last_mut().expect("a group");
            if i > *start && *taken + size > budget {
                groups.push((i, size));
            } else {
                *taken += size;
            }
        }
        let mut replies = VecDeque::new();
        for (n, &(start, size)) in groups.iter().enumerate() {
            let end = groups.get(n + 1).map_or(self.tuples.len(), |&(next, _)| next);
            let rows = &self.tuples[start..end];
            match reply(rows, size)? {
                Err(_) if rows.len() > 1 => {
                    for (i, row) in rows.iter().enumerate() {
                        replies.push_back((1, reply(std::slice::from_ref(row), sizes[start + i])?));
                    }
                }
                converted => replies.push_back((rows.len(), converted)),
            }
        }
        Ok(replies)
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        unsafe { pg_sys::MemoryContextDelete(self.memory) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn receive_startup(receiver: *mut pg_sys::DestReceiver, _operation: i32, tupdesc: pg_sys::TupleDesc) {
    let received = unsafe { &mut *receiver.cast::<Received>() };
    if received.whole && !received.tupdesc.is_null() {
        // A rule may have made the statement several queries; only one returns rows. Anew.
        unsafe { pg_sys::MemoryContextReset(received.memory) };
        received.tuples.clear();
        received.tupdesc = std::ptr::null_mut();
        received.expansions.clear();
        received.expanded = 0;
    }
    if received.tupdesc.is_null() {
        let outer = unsafe { pg_sys::MemoryContextSwitchTo(received.memory) };
        received.tupdesc = unsafe { pg_sys::CreateTupleDescCopy(tupdesc) };
        unsafe { pg_sys::MemoryContextSwitchTo(outer) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn receive_slot(slot: *mut pg_sys::TupleTableSlot, receiver: *mut pg_sys::DestReceiver) -> bool {
    let received = unsafe { &mut *receiver.cast::<Received>() };
    let outer = unsafe { pg_sys::MemoryContextSwitchTo(received.memory) };
    let mut copy = unsafe { (*(*slot).tts_ops).copy_heap_tuple.expect("a slot copies its tuple")(slot) };
    // Values stored out of line are read now, while the portal's snapshot sees them: the rows may
    // outlive the portal (a fetch that failed further on) and the snapshot (a commit).
    if unsafe { u32::from((*(*copy).t_data).t_infomask) } & pg_sys::HEAP_HASEXTERNAL != 0 {
        unsafe {
            let header = pg_sys::heap_copy_tuple_as_datum(copy, received.tupdesc).cast_mut_ptr::<pg_sys::HeapTupleHeaderData>();
            let flat = pg_sys::palloc0(std::mem::size_of::<pg_sys::HeapTupleData>()).cast::<pg_sys::HeapTupleData>();
            (*flat).t_len = pgrx::varlena::varsize_any(header.cast()) as u32;
            (*flat).t_self = (*copy).t_self;
            (*flat).t_tableOid = (*copy).t_tableOid;
            (*flat).t_data = header;
            pg_sys::heap_freetuple(copy);
            copy = flat;
        }
    }
    unsafe { pg_sys::MemoryContextSwitchTo(outer) };
    received.tuples.push(copy);
    let expansion = unsafe { expansion(received.tupdesc, copy) };
    received.expansions.push(expansion);
    received.expanded += expansion;
    if received.whole {
        hold_to_limit(received.size());
    }
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn receive_nothing(_receiver: *mut pg_sys::DestReceiver) {}

/// Ends the innermost explicit subtransaction, keeping or undoing its work.
fn end_explicit(keep: bool) {
    let Some(explicit) = EXPLICIT.with(|e| e.borrow_mut().pop()) else { return };
    unsafe {
        if keep {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(explicit.context);
        pg_sys::CurrentResourceOwner = explicit.owner;
    }
}

/// Runs `f` in a subtransaction: committed if `f` returns, rolled back if PostgreSQL raised an error,
/// which is returned as a [`DbError`].
fn in_subtransaction<T>(f: impl FnOnce() -> T) -> Result<Result<T, DbError>, Canceled> {
    if SCOPE.with(Cell::get).refused {
        return Ok(Err(refused()));
    }
    let context = unsafe { pg_sys::CurrentMemoryContext };
    let owner = unsafe { pg_sys::CurrentResourceOwner };
    // Connecting and beginning may fail as well (no subtransaction starts in parallel mode): the
    // query's error, raised before anything needs undoing.
    let begun = catching(|| unsafe {
        connect();
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
    });
    if let Err(caught) = begun {
        unsafe { pg_sys::MemoryContextSwitchTo(context) };
        return caught_error(caught);
    }
    // The subtransaction switched to its own context; results belong to the caller's.
    unsafe { pg_sys::MemoryContextSwitchTo(context) };
    let outcome = catching(f);
    let restore = || unsafe {
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    };
    match outcome {
        Ok(value) => {
            unsafe { pg_sys::ReleaseCurrentSubTransaction() };
            restore();
            Ok(Ok(value))
        }
        Err(caught) => {
            unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() };
            restore();
            caught_error(caught)
        }
    }
}

/// A PostgreSQL error caught by [`catching`], as the guest gets it; a cancel stops the guest instead.
fn caught_error<T>((caught, raised): (CaughtError, Raised)) -> Result<Result<T, DbError>, Canceled> {
    let report = match caught {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    let cancel = (report.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED && raised_by_interrupt(&raised))
        || unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 };
    if cancel {
        // Raised again, with this message, once the guest has stopped.
        crate::error::remember_cancel(report.message());
        return Err(Canceled);
    }
    Ok(Err(whole_error(&report, &raised)))
}

/// Whether a 57014 error is a cancel or a timeout (which PostgreSQL raises where it checks for
/// interrupts), not code that raised that SQLSTATE itself (`plpy.error(sqlstate=...)`, PL/pgSQL's
/// RAISE), which Python may catch as any other.
fn raised_by_interrupt(raised: &Raised) -> bool {
    let copy = raised.error().filter(|copy| copy.sqlerrcode == PgSqlErrorCode::ERRCODE_QUERY_CANCELED as i32);
    let function = copy.map(|copy| copy.funcname).filter(|name| !name.is_null());
    function.is_none_or(|name| unsafe { CStr::from_ptr(name) } == c"ProcessInterrupts")
}

/// A caught error as `catching` copied it, all its fields kept.
fn whole_error(report: &pgrx::pg_sys::panic::ErrorReportWithLevel, raised: &Raised) -> DbError {
    let code = report.sql_error_code();
    let copy = raised.copy_of(report);
    let sqlstate = crate::error::sqlstate_text(copy.map_or(code as i32, |copy| copy.sqlerrcode));
    match copy {
        Some(copy) => {
            let text = |text: *const c_char| (!text.is_null()).then(|| unsafe { message_from_server(text) });
            let fields = [
                ("schema_name", copy.schema_name),
                ("table_name", copy.table_name),
                ("column_name", copy.column_name),
                ("datatype_name", copy.datatype_name),
                ("constraint_name", copy.constraint_name),
            ];
            DbError {
                sqlstate,
                message: text(copy.message).unwrap_or_default(),
                detail: text(copy.detail),
                hint: text(copy.hint),
                query: text(copy.internalquery),
                position: u32::try_from(copy.internalpos).unwrap_or(0),
                fields: Some(fields.into_iter().filter_map(|(name, value)| Some((name.to_string(), text(value)?))).collect::<Vec<_>>())
                    .filter(|fields| !fields.is_empty()),
            }
        }
        None => DbError {
            message: report.message().to_string(),
            detail: report.detail().map(str::to_string),
            hint: report.hint().map(str::to_string),
            ..db_error(&sqlstate, "")
        },
    }
}

/// Runs a conversion of a result (see `error::making`), which may raise a PostgreSQL error (a
/// domain's check): the error comes back whole, with the schema, data type and constraint names
/// that pgrx's own rethrow of it would drop.
pub fn keeping_fields<T>(f: impl FnOnce() -> Result<T, PlError>) -> Result<T, PlError> {
    catching(f).unwrap_or_else(|(caught, raised)| {
        let report = match caught {
            CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        let interrupted = report.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED && raised_by_interrupt(&raised);
        let error = whole_error(&report, &raised);
        let code = crate::error::sqlstate_code(&error.sqlstate).unwrap_or(report.sql_error_code() as i32);
        let fields = crate::error::diagnostic_fields(error.fields.into_iter().flatten());
        // The context lines of where it was raised (a function a domain's check calls), before
        // ours, as PL/Python keeps them.
        let context = raised.copy_of(&report).map(|copy| copy.context).filter(|context| !context.is_null());
        Err(PlError {
            code,
            detail: error.detail,
            hint: error.hint,
            traceback: context.map(|context| unsafe { message_from_server(context) }),
            fields,
            interrupted,
            ..PlError::new(report.sql_error_code(), error.message)
        })
    })
}

/// Runs `f`, catching a PostgreSQL error it raises. pgrx's catch keeps only the error's code,
/// message (in UTF-8, lossily), detail and hint; a context callback copies the whole error as it
/// is raised, so that plpy.SPIError carries its query, position and fields too, as PL/Python's does.
fn catching<T>(f: impl FnOnce() -> T) -> Result<T, (CaughtError, Raised)> {
    let raised = Raised { context: Cell::new(std::ptr::null_mut()), error: Cell::new(std::ptr::null_mut()) };
    let making = crate::error::making_now();
    let mut callback = pg_sys::ErrorContextCallback {
        previous: unsafe { pg_sys::error_context_stack },
        callback: Some(copy_raised),
        arg: (&raised as *const Raised).cast_mut().cast(),
    };
    unsafe { pg_sys::error_context_stack = &mut callback };
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        // pgrx's catch reads what was raised and flushes PostgreSQL's error state; it costs a few
        // hundred instructions, which every call would pay if it ran `f` itself.
        Err(raised) => {
            let raised = std::panic::AssertUnwindSafe(raised);
            PgTryBuilder::new(move || std::panic::resume_unwind({ raised }.0)).catch_others(Err).execute()
        }
    };
    unsafe { pg_sys::error_context_stack = callback.previous };
    outcome.map_err(|caught| {
        crate::error::restore_making(making);
        (caught, raised)
    })
}

/// The last error raised inside [`catching`], copied into a memory context of its own (the
/// caller's may not outlive the transaction's abort).
struct Raised {
    context: Cell<pg_sys::MemoryContext>,
    error: Cell<*mut pg_sys::ErrorData>,
}

impl Raised {
    fn error(&self) -> Option<&pg_sys::ErrorData> {
        unsafe { self.error.get().as_ref() }
    }

    /// The copy, if it is of the error caught: not if another one was raised since (pgrx raises a
    /// Rust panic as an error of its own). pgrx reads a code it has no name for (an application's
    /// own, such as P0099) as XX000: the copy keeps it.
    fn copy_of(&self, report: &pgrx::pg_sys::panic::ErrorReportWithLevel) -> Option<&pg_sys::ErrorData> {
        let code = report.sql_error_code();
        self.error().filter(|copy| {
            copy.sqlerrcode == code as i32
                || (PgSqlErrorCode::from(copy.sqlerrcode) == code
                    && !copy.message.is_null()
                    && unsafe { CStr::from_ptr(copy.message) }.to_string_lossy() == report.message())
        })
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        let context = self.context.get();
        if !context.is_null() {
            unsafe { pg_sys::MemoryContextDelete(context) };
        }
    }
}

// PostgreSQL's own functions, called as they are: inside error reporting, pgrx's wrappers would
// catch and flush the very error being reported.
unsafe extern "C-unwind" {
    fn CopyErrorData() -> *mut pg_sys::ErrorData;
    fn FreeErrorData(error: *mut pg_sys::ErrorData);
    fn AllocSetContextCreateInternal(
        parent: pg_sys::MemoryContext,
        name: *const c_char,
        min_context_size: usize,
        init_block_size: usize,
        max_block_size: usize,
    ) -> pg_sys::MemoryContext;
}

/// The error context callback of [`catching`]: runs inside errfinish, as each error is raised.
unsafe extern "C-unwind" fn copy_raised(arg: *mut std::ffi::c_void) {
    unsafe {
        let raised = &*(arg as *const Raised);
        if raised.context.get().is_null() {
            // ALLOCSET_SMALL_SIZES.
            let context = AllocSetContextCreateInternal(pg_sys::TopMemoryContext, c"plpywasm raised error".as_ptr(), 0, 1024, 8192);
            raised.context.set(context);
        }
        let previous = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = raised.context.get();
        let error = CopyErrorData();
        pg_sys::CurrentMemoryContext = previous;
        let dropped = if (*error).elevel >= pg_sys::PGERROR as i32 { raised.error.replace(error) } else { error };
        if !dropped.is_null() {
            FreeErrorData(dropped);
        }
    }
}

/// The rows SPI's last statement left in `SPI_tuptable`, for the guest (see the WIT's `rows`); frees them.
///
/// # Safety
/// Call right after an SPI statement, inside [`in_subtransaction`] (it may raise errors).
unsafe fn take_rows(status: i32) -> Rows {
    let processed = unsafe { pg_sys::SPI_processed };
    let table = unsafe { pg_sys::SPI_tuptable };
    if table.is_null() {
        return unsafe { rows_reply(status, i64::try_from(processed).unwrap_or(i64::MAX), std::ptr::null_mut(), &[], 0) };
    }
    unsafe {
        let (tuples, size) = spi_table(table, processed);
        let reply = rows_reply(status, processed as i64, (*table).tupdesc, tuples, size);
        pg_sys::SPI_freetuptable(table);
        reply
    }
}

/// The `processed` rows of an SPI tuple table, and what they take once read (see [`expansion`]).
///
/// # Safety
/// `table` must be SPI's tuple table of the last statement, which made `processed` rows.
unsafe fn spi_table<'a>(table: *mut pg_sys::SPITupleTable, processed: u64) -> (&'a [pg_sys::HeapTuple], usize) {
    unsafe {
        let tuples = std::slice::from_raw_parts((*table).vals, processed as usize);
        let expanded: usize = tuples.iter().map(|&tuple| expansion((*table).tupdesc, tuple)).sum();
        (tuples, pg_sys::MemoryContextMemAllocated((*table).tuptabcxt, true) + expanded)
    }
}

/// Whether `query` is one statement, by the look of it: no `;` but at its end (a `;` in a literal
/// or a comment only sends it the way of several).
fn one_statement(query: &[u8]) -> bool {
    let end = query.iter().rposition(|&b| !matches!(b, b';' | b' ' | b'\t' | b'\n' | b'\r')).map_or(0, |i| i + 1);
    !query[..end].contains(&b';')
}

/// The result of a statement plpy.execute ran (`call`), for the guest: from `received` if its rows
/// went there, else from SPI's table.
///
/// # Safety
/// Call inside [`in_subtransaction`], right after the statement ran.
unsafe fn statement_rows(call: &str, status: i32, received: Option<Box<Received>>) -> Result<Rows, DbError> {
    if status < 0 {
        // SPI refused the statement (a transaction command, COPY to the client) without raising:
        // a plain plpy.SPIError, with no SQLSTATE, as PL/Python's.
        let message = unsafe { CStr::from_ptr(pg_sys::SPI_result_code_string(status)) };
        return Err(db_error("", format!("{call} failed: {}", message.to_string_lossy())));
    }
    Ok(match received {
        Some(received) => unsafe { received.result(status) },
        None => unsafe { take_rows(status) },
    })
}

/// Where a statement's rows go: into `received`, for one statement; else into SPI's own, `guarded`.
fn destination<'a>(received: &'a mut Option<Box<Received>>, guarded: &'a mut Option<Box<Guarded>>) -> &'a mut pg_sys::DestReceiver {
    match (received, guarded) {
        (Some(received), _) => &mut received.receiver,
        (None, Some(guarded)) => &mut guarded.receiver,
        (None, None) => unreachable!("a destination for one statement or for several"),
    }
}

/// How plpy.execute runs a statement: its rows go to `dest`, which holds them to the limit.
fn execute_options(dest: &mut pg_sys::DestReceiver, limit: i64, params: pg_sys::ParamListInfo) -> pg_sys::SPIExecuteOptions {
    pg_sys::SPIExecuteOptions {
        params,
        read_only: read_only(),
        tcount: limit as u64,
        dest,
        ..Default::default()
    }
}

/// SPI's own destination, for a query of several statements, refusing each statement's rows as
/// soon as they outgrow plpywasm.memory_limit, as [`Received::whole`] does one statement's: SPI
/// would hold them all first. It says it is SPI's, so that SPI treats the rows as its own.
#[repr(C)]
struct Guarded {
    /// First, as PostgreSQL calls back with a pointer to it.
    receiver: pg_sys::DestReceiver,
    spi: *mut pg_sys::DestReceiver,
    tupdesc: pg_sys::TupleDesc,
    /// What the statement's rows take once read (see [`expansion`]).
    size: usize,
}

impl Guarded {
    fn new() -> Box<Self> {
        let spi = unsafe { pg_sys::CreateDestReceiver(pg_sys::CommandDest::DestSPI) };
        let receiver = pg_sys::DestReceiver {
            receiveSlot: Some(guarded_slot),
            rStartup: Some(guarded_startup),
            rShutdown: Some(guarded_shutdown),
            rDestroy: Some(receive_nothing),
            mydest: pg_sys::CommandDest::DestSPI,
        };
        Box::new(Guarded { receiver, spi, tupdesc: std::ptr::null_mut(), size: 0 })
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn guarded_startup(receiver: *mut pg_sys::DestReceiver, operation: i32, tupdesc: pg_sys::TupleDesc) {
    let guarded = unsafe { &mut *receiver.cast::<Guarded>() };
    // Each statement anew: SPI frees the rows of the one before once this one's are kept.
    guarded.tupdesc = tupdesc;
    guarded.size = 0;
    unsafe { (*guarded.spi).rStartup.expect("SPI's destination starts")(guarded.spi, operation, tupdesc) };
}

#[pg_guard]
unsafe extern "C-unwind" fn guarded_shutdown(receiver: *mut pg_sys::DestReceiver) {
    let guarded = unsafe { &mut *receiver.cast::<Guarded>() };
    unsafe { (*guarded.spi).rShutdown.expect("SPI's destination ends")(guarded.spi) };
}

#[pg_guard]
unsafe extern "C-unwind" fn guarded_slot(slot: *mut pg_sys::TupleTableSlot, receiver: *mut pg_sys::DestReceiver) -> bool {
    let guarded = unsafe { &mut *receiver.cast::<Guarded>() };
    let kept = unsafe { (*guarded.spi).receiveSlot.expect("SPI's destination takes rows")(slot, guarded.spi) };
    let mut copied = false;
    let tuple = unsafe { pg_sys::ExecFetchSlotHeapTuple(slot, false, &mut copied) };
    guarded.size += unsafe { (*tuple).t_len as usize + expansion(guarded.tupdesc, tuple) };
    if copied {
        unsafe { pg_sys::heap_freetuple(tuple) };
    }
    hold_to_limit(guarded.size);
    kept
}

/// A plan's parameter values as SPI_execute_plan_extended takes them.
///
/// # Safety
/// `values` and `nulls` must hold one value for each of `plan`'s parameters.
unsafe fn param_list(plan: pg_sys::SPIPlanPtr, values: &[Datum], nulls: &[c_char]) -> pg_sys::ParamListInfo {
    if values.is_empty() {
        return std::ptr::null_mut();
    }
    unsafe {
        let list = pg_sys::makeParamList(values.len() as i32);
        for (i, param) in (*list).params.as_mut_slice(values.len()).iter_mut().enumerate() {
            *param = pg_sys::ParamExternData {
                value: values[i],
                isnull: nulls[i] == b'n' as c_char,
                pflags: pg_sys::PARAM_FLAG_CONST as u16,
                ptype: pg_sys::SPI_getargtypeid(plan, i as i32),
            };
        }
        list
    }
}

/// Refuses a result of `size` bytes if that is more than the interpreter may hold.
fn hold_to_limit(size: usize) {
    if size > crate::gucs::memory_limit_bytes() {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("query result of {} MB does not fit in plpywasm.memory_limit", size >> 20),
            "Read it in parts: with plpy.cursor(), and fewer rows to a fetch."
        );
    }
}

/// How much more than its copy `tuple` takes once read: a toasted value is still small in a
/// result's memory, and counts as the size it will be read at.
///
/// # Safety
/// `tupdesc` must describe `tuple`.
unsafe fn expansion(tupdesc: pg_sys::TupleDesc, tuple: pg_sys::HeapTuple) -> usize {
    let mut size = 0;
    for (i, _) in unsafe { attributes_of(tupdesc) }.iter().enumerate().filter(|(_, attribute)| attribute.attlen == -1) {
        for datum in unsafe { column(tupdesc, std::slice::from_ref(&tuple), i) }.flatten() {
            size += unsafe { input_size(datum, -1).saturating_sub(pgrx::varlena::varsize_any(datum.cast_mut_ptr())) };
        }
    }
    size
}

/// Column `i` (from 0) of `tuples`, None for NULL.
///
/// # Safety
/// `tupdesc` must describe `tuples`.
unsafe fn column(tupdesc: pg_sys::TupleDesc, tuples: &[pg_sys::HeapTuple], i: usize) -> impl ExactSizeIterator<Item = Option<Datum>> + '_ {
    tuples.iter().map(move |&tuple| {
        let mut is_null = false;
        let datum = unsafe { pg_sys::SPI_getbinval(tuple, tupdesc, i as i32 + 1, &mut is_null) };
        (!is_null).then_some(datum)
    })
}

/// A statement's status, row count and rows (`tuples`, described by `tupdesc`, none if it is null),
/// for the guest; `size` is what the rows take once read (see [`expansion`]).
///
/// # Safety
/// `tupdesc` must describe `tuples`; call inside [`in_subtransaction`] (it may raise errors).
unsafe fn rows_reply(status: i32, processed: i64, tupdesc: pg_sys::TupleDesc, tuples: &[pg_sys::HeapTuple], size: usize) -> Rows {
    if tupdesc.is_null() {
        // No result set: no names, types, typmods, decodings or columns.
        let mut reply = reply_head(status, processed);
        for _ in 0..5 {
            marshal::write_scalar(&Node::Null, &mut reply);
        }
        return reply;
    }
    unsafe { Columns::of(tupdesc).reply(status, processed, true, tupdesc, tuples, size) }
}

/// The start of a reply (see the WIT's `rows`): the list's head, the status and the row count.
fn reply_head(status: i32, processed: i64) -> Rows {
    let mut reply = Vec::new();
    marshal::write_list_head(7, &mut reply);
    marshal::write_scalar(&Node::Int(status.into()), &mut reply);
    marshal::write_scalar(&Node::Int(processed), &mut reply);
    reply
}

/// A result's columns as the guest gets them: their converters, and their names, type OIDs,
/// typmods and decodings, marshalled.
struct Columns {
    converters: Vec<ToGuest>,
    description: Vec<u8>,
}

impl Columns {
    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor.
    unsafe fn of(tupdesc: pg_sys::TupleDesc) -> Columns {
        let attributes = unsafe { attributes_of(tupdesc) };
        let mut description = Vec::new();
        marshal::write_list(attributes.iter().map(|attribute| Node::Text(attribute_name(attribute))), &mut description);
        marshal::write_list(attributes.iter().map(|attribute| Node::Int(attribute.atttypid.to_u32().into())), &mut description);
        marshal::write_list(attributes.iter().map(|attribute| Node::Int(attribute.atttypmod.into())), &mut description);
        let converters: Vec<ToGuest> = attributes.iter().map(|attribute| ToGuest::for_type(attribute.atttypid)).collect();
        marshal::write_decodings(&marshal::decodings(converters.iter().map(Some)), &mut description);
        Columns { converters, description }
    }

    /// A reply with `tuples` (described by `tupdesc`, of these columns), saying what the columns
    /// are if `describe`, else an Ellipsis for each part of that; `size` is what the rows take
    /// once read (see [`expansion`]).
    ///
    /// # Safety
    /// `tupdesc` must describe `tuples`; call inside [`in_subtransaction`] (it may raise errors).
    unsafe fn reply(
        &self,
        status: i32,
        processed: i64,
        describe: bool,
        tupdesc: pg_sys::TupleDesc,
        tuples: &[pg_sys::HeapTuple],
        size: usize,
    ) -> Rows {
        // Whatever does not fit in the interpreter must not be copied for it either: a result
        // larger than its memory limit would only grow the backend's own memory.
        hold_to_limit(size);
        let mut reply = reply_head(status, processed);
        if describe {
            reply.extend_from_slice(&self.description);
        } else {
            reply.extend_from_slice(&[marshal::ELLIPSIS; 4]);
        }
        // Column after column, in marshal's format (see convert::marshal).
        marshal::write_list_head(self.converters.len(), &mut reply);
        with_budget(|| {
            for (i, convert) in self.converters.iter().enumerate() {
                marshal::write_column(convert, unsafe { column(tupdesc, tuples, i) }, &mut reply);
            }
        });
        reply
    }
}
