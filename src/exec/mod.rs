//! One use of the guest: a function call (returning a value or a set), a `DO` block, or a
//! validation, each in the current role's interpreter. Output the guest printed is reported once the
//! guest has returned.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use pgrx::pg_sys::{self, Datum};
use pgrx::pg_guard;
use pgrx::{warning, PgSqlErrorCode};

mod trigger;

use crate::convert::marshal;
use crate::error::{making, with_context, ContextArg, Phase, PlError, RETURN_VALUE};
use crate::identity;
use crate::interpreters::{abandon_set, close_set, with_interpreter};
use crate::procedure::{Procedure, Resolved};
use crate::runtime::{Node, Output};
use crate::spi::Access;

/// Refuses a call `procedure` cannot take at all before it counts as running (no error context
/// names it, as in PL/Python): a trigger function called directly.
///
/// # Safety
/// `fcinfo` must be the live call info of a call to `procedure`.
pub unsafe fn check_call(fcinfo: pg_sys::FunctionCallInfo, procedure: &Procedure) -> Result<(), PlError> {
    if procedure.is_trigger() {
        unsafe { trigger::called_as_trigger(fcinfo) }?;
    }
    Ok(())
}

/// Calls `procedure` with the arguments in `fcinfo`; sets `fcinfo->isnull` for a NULL result.
///
/// # Safety
/// `fcinfo` must be the live call info of a call to `procedure`.
pub unsafe fn call(fcinfo: pg_sys::FunctionCallInfo, procedure: &Procedure) -> Result<Datum, PlError> {
    if procedure.is_trigger() {
        return unsafe { trigger::call(fcinfo, procedure) };
    }
    if procedure.returns_set {
        return unsafe { call_set(fcinfo, procedure) };
    }
    let resolved = unsafe { procedure.result(fcinfo) }?;
    let access = procedure.access(unsafe { is_atomic(fcinfo) });
    let mut args = unsafe { procedure.marshal_args(fcinfo) }?;
    let nodes = finish(with_interpreter(procedure.oid, procedure.owner, access, |session| {
        marshal::set_handle(&mut args, session.handle(procedure, &resolved.shape)?);
        if !resolved.plain {
            return marshal::read_nodes(&session.call(&args)?);
        }
        // The common case, on the cheapest path: a plain result.
        let result = session.call_scalar(&args)?;
        marshal::read_result(&result)
    }))?;
    let (datum, is_null) = making(RETURN_VALUE, || resolved.convert.decode_result(nodes))?;
    unsafe { (*fcinfo).isnull = is_null };
    Ok(datum)
}

/// Whether the call may not end the transaction: all but a `CALL` outside a transaction block.
unsafe fn is_atomic(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    let context = unsafe { (*fcinfo).context };
    let call = !context.is_null() && unsafe { (*context).type_ } == pg_sys::NodeTag::T_CallContext;
    !(call && !unsafe { (*(context as *const pg_sys::CallContext)).atomic })
}

/// A set being returned row by row (value-per-call mode): the guest holds the iterator, which is
/// read one row per call, so `LIMIT` stops a generator early. Rows of a sequence the function had
/// already made, and any rows of a set the executor reads whole, come several at a time (see the
/// WIT's `next-plain` and `next-rows`) and wait here.
struct SetState {
    function: pg_sys::Oid,
    owner: pg_sys::Oid,
    access: Access,
    iterator: u32,
    generation: u64,
    resolved: Rc<Resolved>,
    /// The executor reads all rows before it uses one: they may be made ahead (see the WIT's `call-set`).
    whole: bool,
    econtext: *mut pg_sys::ExprContext,
    read_ahead: RefCell<VecDeque<Vec<Node>>>,
    /// The guest has sent the last row (and released the iterator).
    ended: Cell<bool>,
}

/// # Safety
/// `fcinfo` must be the live call info of a call to `procedure`, a set-returning function.
unsafe fn call_set(fcinfo: pg_sys::FunctionCallInfo, procedure: &Procedure) -> Result<Datum, PlError> {
    let rsi = unsafe { (*fcinfo).resultinfo } as *mut pg_sys::ReturnSetInfo;
    let accepts_rows = !rsi.is_null()
        && unsafe { (*rsi).type_ } == pg_sys::NodeTag::T_ReturnSetInfo
        && unsafe { (*rsi).allowedModes } & pg_sys::SetFunctionReturnMode::SFRM_ValuePerCall as i32 != 0;
    if !accepts_rows {
        return Err(PlError::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "set-valued function called in context that cannot accept a set",
        ));
    }
    if unsafe { (*(*fcinfo).flinfo).fn_extra }.is_null() {
        // Only a function in FROM is offered materialize mode as preferred: the executor then reads
        // the whole set into a tuplestore before it uses a row, and LIMIT cannot stop it early.
        let whole = unsafe { (*rsi).allowedModes } & pg_sys::SetFunctionReturnMode::SFRM_Materialize_Preferred as i32 != 0;
        let state = unsafe { start_set(fcinfo, procedure, rsi, whole) }?;
        let funcctx = unsafe { pg_sys::init_MultiFuncCall(fcinfo) };
        let holder = unsafe { SetHolder::new(state, (*funcctx).multi_call_memory_ctx) };
        unsafe { (*funcctx).user_fctx = holder.cast() };
        // After init_MultiFuncCall's own: callbacks run newest first, so `abandon` runs while the
        // set's memory is still there.
        unsafe { pg_sys::RegisterExprContextCallback((*rsi).econtext, Some(abandon), Datum::from(holder)) };
    }
    let funcctx = unsafe { pg_sys::per_MultiFuncCall(fcinfo) };
    let state = unsafe { &*(*((*funcctx).user_fctx as *const SetHolder)).state };
    let ready = state.read_ahead.borrow_mut().pop_front();
    let row = match ready {
        Some(row) => Ok(Some(row)),
        None if state.ended.get() => Ok(None),
        None => finish(with_interpreter(state.function, state.owner, state.access, |session| {
            let rows = match (state.resolved.plain, state.whole) {
                (false, false) => {
                    let row = session.next_row(state.iterator, state.generation)?;
                    return row.map(|row| marshal::read_nodes(&row)).transpose();
                }
                (false, true) => {
                    let Some(rows) = session.next_rows(state.iterator, state.generation)? else { return Ok(None) };
                    marshal::read_node_rows(&rows)?
                }
                (true, _) => {
                    let Some(plain) = session.next_plain(state.iterator, state.generation)? else { return Ok(None) };
                    let (rows, ended) = marshal::read_rows(&plain)?;
                    state.ended.set(ended);
                    rows
                }
            };
            let mut rows = VecDeque::from(rows);
            let first = rows.pop_front();
            *state.read_ahead.borrow_mut() = rows;
            Ok(first)
        })),
    };
    let decoded =
        row.and_then(|row| row.map(|nodes| making(RETURN_VALUE, || state.resolved.convert.decode_result(nodes))).transpose());
    match decoded {
        Ok(Some((datum, is_null))) => {
            unsafe {
                (*rsi).isDone = pg_sys::ExprDoneCond::ExprMultipleResult;
                (*fcinfo).isnull = is_null;
            }
            Ok(datum)
        }
        Ok(None) => {
            // The guest released the iterator at its end.
            unsafe { finish_set(fcinfo, funcctx, rsi) };
            unsafe { (*fcinfo).isnull = true };
            Ok(Datum::null())
        }
        Err(err) => {
            // Released by the guest if the error was Python's; otherwise closed now (an error
            // closing it matters less than the one that ended it).
            let _ = finish(close_set(state.function, state.owner, state.access, true, state.generation, state.iterator));
            unsafe { finish_set(fcinfo, funcctx, rsi) };
            Err(err)
        }
    }
}

unsafe fn start_set(
    fcinfo: pg_sys::FunctionCallInfo,
    procedure: &Procedure,
    rsi: *mut pg_sys::ReturnSetInfo,
    whole: bool,
) -> Result<SetState, PlError> {
    let resolved = unsafe { procedure.result(fcinfo) }?;
    let mut args = unsafe { procedure.marshal_args(fcinfo) }?;
    let access = procedure.access(true);
    let (iterator, generation) = finish(with_interpreter(procedure.oid, procedure.owner, access, |session| {
        marshal::set_handle(&mut args, session.handle(procedure, &resolved.shape)?);
        Ok((session.call_set(&args, whole)?, session.generation()))
    }))?;
    Ok(SetState {
        function: procedure.oid,
        owner: procedure.owner,
        access,
        iterator,
        generation,
        resolved,
        whole,
        econtext: unsafe { (*rsi).econtext },
        read_ahead: RefCell::new(VecDeque::new()),
        ended: Cell::new(false),
    })
}

/// Ends a set: releases its state and its executor callback.
unsafe fn finish_set(fcinfo: pg_sys::FunctionCallInfo, funcctx: *mut pg_sys::FuncCallContext, rsi: *mut pg_sys::ReturnSetInfo) {
    unsafe {
        let holder = (*funcctx).user_fctx as *mut SetHolder;
        (*funcctx).user_fctx = std::ptr::null_mut();
        let state = SetHolder::take(holder).expect("a set being read has its state");
        pg_sys::UnregisterExprContextCallback(state.econtext, Some(abandon), Datum::from(holder));
        drop(state);
        pg_sys::end_MultiFuncCall(fcinfo, funcctx);
        (*rsi).isDone = pg_sys::ExprDoneCond::ExprEndResult;
    }
}

/// The executor stopped reading a set before its end (`LIMIT`, a rescan, a cursor closed): the
/// guest closes its iterator now, with no queries, as PL/Python's cannot run any there. Its
/// generator's `finally` runs amid the query's shutdown, a portal's drop maybe: a query could
/// reach that portal half dropped, and an error raised there would leave it so. What it raises
/// or prints goes to the server's log. PostgreSQL runs this callback in executor shutdown, never
/// in a transaction's abort.
unsafe extern "C-unwind" fn abandon(arg: Datum) {
    let mut context = ContextArg::new(Phase::Call);
    let context = &raw mut context;
    unsafe { with_context(context, || close_abandoned(arg)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn close_abandoned(arg: Datum) {
    let Some(state) = (unsafe { SetHolder::take(arg.cast_mut_ptr()) }) else { return };
    // Interrupts held: the next message's check for them would raise a pending cancel here. (A
    // running guest still stops for one: see `interpreters::cancel_pending`. An error resets the
    // count.)
    unsafe { pg_sys::InterruptHoldoffCount += 1 };
    let closed = close_set(state.function, state.owner, state.access, false, state.generation, state.iterator);
    let (closed, output) = match closed {
        Ok((closed, output)) => (closed, output),
        Err(err) => (Err(err), Output::default()),
    };
    // A cancel that stopped the close stays pending, for the next check for it after the drop
    // (as for any cancel that arrives as a statement ends), or at the latest as the statement
    // commits: unless this is that commit keeping a WITH HOLD cursor, which then outlives the
    // transaction whatever fails after.
    if closed.as_ref().is_err_and(|err| err.interrupted) && !unsafe { persisting_cursor() } {
        CANCEL_PENDING.with(|pending| pending.set(true));
    }
    let lines = output.lines.into_iter().map(|(_, line)| line);
    let failed = closed.err().map(|err| match err.interrupted {
        // (Its message is a guess until PostgreSQL raises the cancel: a timeout may be pending.)
        true => "PL/plpywasm: closing a set the query stopped reading was stopped by a cancel".to_string(),
        false => format!("PL/plpywasm: closing a set the query stopped reading: {}", err.message),
    });
    for line in lines.chain(failed) {
        unsafe { crate::error::report(pg_sys::LOG_SERVER_ONLY as i32, 0, line, None, None, Vec::new(), None, c"close_abandoned") };
    }
    unsafe { pg_sys::InterruptHoldoffCount -= 1 };
}

/// Whether a commit is keeping a WITH HOLD cursor's rows (the executor it ends is that cursor's).
unsafe fn persisting_cursor() -> bool {
    let portal = unsafe { pg_sys::ActivePortal };
    !portal.is_null() && unsafe { !(*portal).holdStore.is_null() }
}

thread_local! {
    /// A cancel stopped the close of a set (see `abandon`), and was left pending.
    static CANCEL_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Registers the commit callback (once, at load).
pub fn register() {
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}

/// A cancel left pending by a set's close (see `abandon`) that nothing has raised since fails the
/// transaction as it commits: a statement that ends with no check for one would otherwise leave it
/// to fail the next statement.
#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    let pending = CANCEL_PENDING.with(|pending| pending.replace(false));
    if pending && event == pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT {
        pgrx::check_for_interrupts!();
    }
}

/// Where a set's state is found: in the set's own memory (the executor's multi-call context for
/// it), whose release is the one event every set ends with. A set read to its end or stopped
/// early (`abandon`) has its state taken first; one whose memory goes without either (its query or
/// transaction failed, and an abort runs no executor callback) is closed on its interpreter's
/// next use, with no queries (see `interpreters::abandon_set`), as PL/Python's are released when
/// their memory goes.
#[repr(C)]
struct SetHolder {
    callback: pg_sys::MemoryContextCallback,
    state: *mut SetState,
}

impl SetHolder {
    /// # Safety
    /// `memory` must be a valid memory context that lives as long as the set.
    unsafe fn new(state: SetState, memory: pg_sys::MemoryContext) -> *mut SetHolder {
        unsafe {
            let holder = pg_sys::MemoryContextAllocZero(memory, std::mem::size_of::<SetHolder>()) as *mut SetHolder;
            (*holder).state = Box::into_raw(Box::new(state));
            (*holder).callback.func = Some(set_memory_gone);
            (*holder).callback.arg = holder.cast();
            pg_sys::MemoryContextRegisterResetCallback(memory, &raw mut (*holder).callback);
            holder
        }
    }

    /// The set's state, unless it was taken already.
    ///
    /// # Safety
    /// `holder` must be a holder whose memory is still there.
    unsafe fn take(holder: *mut SetHolder) -> Option<Box<SetState>> {
        let state = unsafe { std::mem::replace(&mut (*holder).state, std::ptr::null_mut()) };
        (!state.is_null()).then(|| unsafe { Box::from_raw(state) })
    }
}

/// The set's memory is being released, maybe inside a transaction's abort: calls neither the
/// guest nor PostgreSQL.
unsafe extern "C-unwind" fn set_memory_gone(arg: *mut std::ffi::c_void) {
    if let Some(state) = unsafe { SetHolder::take(arg.cast()) } {
        abandon_set(state.generation, state.iterator);
    }
}

/// Runs the body of a `DO` block; `atomic` unless it may commit. (Unable to change the role: see
/// `identity`.)
pub fn run_inline(body: &str, atomic: bool) -> Result<(), PlError> {
    let role = unsafe { pg_sys::GetUserId() };
    let access = Access { atomic, read_only: false };
    finish(identity::role_fixed(|| with_interpreter(pg_sys::Oid::INVALID, role, access, |session| session.run_inline(body))))
}

/// Compiles `procedure`'s body to report syntax errors at `CREATE FUNCTION`, in the current role's
/// interpreter: only that role's own code has run there, where the owner's may have changed how
/// its interpreter compiles.
pub fn validate(procedure: &Procedure) -> Result<(), PlError> {
    let role = unsafe { pg_sys::GetUserId() };
    let access = Access { atomic: true, read_only: false };
    finish(identity::role_fixed(|| with_interpreter(pg_sys::Oid::INVALID, role, access, |session| session.check(procedure))))
}

fn finish<T>(outcome: Result<(Result<T, PlError>, Output), PlError>) -> Result<T, PlError> {
    let (result, output) = outcome?;
    report(output);
    result
}

/// `print()` becomes NOTICE lines and `sys.stderr` WARNING lines (a closing generator's, the
/// server's log's), in the order written, in the server encoding as plpy's messages are (see
/// `error::report`).
fn report(output: Output) {
    // (The guest's runtime knows the levels by number, as PostgreSQL 15 numbers them.)
    const _: () = assert!(pg_sys::LOG_SERVER_ONLY == 16 && pg_sys::NOTICE == 18 && pg_sys::WARNING == 19);
    for (stream, line) in output.lines {
        let level = i32::from(stream.level());
        // Guarded: sending a message can fail (a character the client's encoding lacks).
        unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| crate::error::report(level, 0, line, None, None, Vec::new(), None, c"report")) };
    }
    if output.dropped > 0 {
        warning!(
            "PL/plpywasm output truncated: {} bytes over plpywasm.max_output were dropped",
            output.dropped
        );
    }
}
