//! Keeps a role's code from taking back the role a session changed from.
//!
//! A `DO` block, or the check of a body at `CREATE FUNCTION`, runs in the current role's
//! interpreter, where that role's earlier code may have left hooks (an audit hook, a patched
//! `plpy`). After `SET ROLE` (or `SET SESSION AUTHORIZATION`) by a more privileged login, such a
//! hook could `RESET ROLE` and act with the login's privileges, where PL/pgSQL would have run
//! none of that role's code. So they run as a SECURITY DEFINER function's body does: unable to
//! change the role. The flag must not outlive the block: plpy.commit and plpy.rollback clear it
//! while the transaction ends, and an abort after the block clears it from any transaction that
//! started with it set (which that abort would restore).

use std::cell::Cell;

use pgrx::pg_sys;

thread_local! {
    /// Blocks running with the role fixed.
    static FIXED: Cell<u32> = const { Cell::new(0) };
}

const LOCAL_CHANGE: i32 = pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32;

/// Runs `f` unable to change the role, if the current role is not the login's and nothing fixes
/// it already (a SECURITY DEFINER function, a security-restricted operation).
pub fn role_fixed<R>(f: impl FnOnce() -> R) -> R {
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let changed = user != unsafe { pg_sys::GetAuthenticatedUserId() };
    if !changed || context & (LOCAL_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION as i32) != 0 {
        return f();
    }
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            FIXED.with(|fixed| fixed.set(fixed.get() - 1));
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    FIXED.with(|fixed| fixed.set(fixed.get() + 1));
    let _restore = Restore(user, context);
    unsafe { pg_sys::SetUserIdAndSecContext(user, context | LOCAL_CHANGE) };
    f()
}

/// Runs `f`, which ends the transaction (plpy.commit, plpy.rollback), without the flag: the next
/// transaction must start without it, as PostgreSQL expects.
pub fn ending_transaction<R>(f: impl FnOnce() -> R) -> R {
    if FIXED.with(Cell::get) == 0 {
        return f();
    }
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    unsafe { pg_sys::SetUserIdAndSecContext(user, context & !LOCAL_CHANGE) };
    let result = f();
    let mut now = pg_sys::Oid::INVALID;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut now, &mut context) };
    unsafe { pg_sys::SetUserIdAndSecContext(now, context | LOCAL_CHANGE) };
    result
}

/// Registers the abort callback (once, at load).
pub fn register() {
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}

/// A transaction's abort restores the security context it started with: one that started inside a
/// block with the role fixed had the flag, which must not outlive the block.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if event != pg_sys::XactEvent::XACT_EVENT_ABORT || FIXED.with(Cell::get) != 0 {
        return;
    }
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    if context & LOCAL_CHANGE != 0 {
        unsafe { pg_sys::SetUserIdAndSecContext(user, context & !LOCAL_CHANGE) };
    }
}
