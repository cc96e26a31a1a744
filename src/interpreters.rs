//! The backend's interpreters: one per effective role, created lazily from the guest's snapshot,
//! each with the handles of the functions compiled into it.
//!
//! Code running as one role never shares Python state with code running as another: a
//! `SECURITY DEFINER` function runs in its owner's interpreter, since PostgreSQL switches the
//! effective role before calling the handler. An interpreter that traps is dropped, never reused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::PathBuf;

use pgrx::pg_sys::{self, Oid};

use crate::error::PlError;
use crate::gucs;
use crate::procedure::{Procedure, Stamp};
use crate::runtime::{GuestError, Interpreter, Limits, Output, ResultKind, Runtime, Value};

struct Backend {
    runtime: Runtime,
    by_role: HashMap<Oid, Slot>,
}

/// An interpreter and what has been compiled into it.
pub struct Slot {
    interpreter: Interpreter,
    functions: HashMap<Oid, (Stamp, u32)>,
    /// Set when the guest trapped: the slot is dropped once the current use ends.
    broken: bool,
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
}

/// Runs `f` with the current role's interpreter. Output the guest wrote is returned beside the result
/// (to be reported by the caller once no guest frame is live), and a trapped interpreter is dropped.
pub fn with_interpreter<T>(f: impl FnOnce(&mut Slot) -> Result<T, PlError>) -> Result<(Result<T, PlError>, Output), PlError> {
    BACKEND.with(|cell| {
        let mut guard = cell.try_borrow_mut().map_err(|_| {
            PlError::unsupported("a PL/plpywasm function cannot yet be called from inside another one")
        })?;
        if guard.is_none() {
            *guard = Some(Backend { runtime: Runtime::load(&guest_path()).map_err(PlError::load)?, by_role: HashMap::new() });
        }
        let backend = guard.as_mut().expect("loaded above");
        let role = unsafe { pg_sys::GetUserId() };
        if !backend.by_role.contains_key(&role) {
            let interpreter = backend.runtime.instantiate(limits()).map_err(|err| match err {
                GuestError::Trap(kind) => PlError::trap(kind),
                GuestError::Python(err) => PlError::python(err),
            })?;
            backend.by_role.insert(role, Slot { interpreter, functions: HashMap::new(), broken: false });
        }
        let slot = backend.by_role.get_mut(&role).expect("inserted above");
        let result = f(slot);
        let output = slot.interpreter.take_output();
        if slot.broken {
            backend.by_role.remove(&role);
        }
        Ok((result, output))
    })
}

impl Slot {
    /// The handle of `procedure` in this interpreter, compiling it if it is new or has changed.
    pub fn handle(&mut self, procedure: &Procedure) -> Result<u32, PlError> {
        if let Some(&(stamp, handle)) = self.functions.get(&procedure.oid) {
            if stamp == procedure.stamp {
                return Ok(handle);
            }
            self.functions.remove(&procedure.oid);
            let forgotten = self.interpreter.forget(handle);
            self.check_trap(forgotten)?;
        }
        let handle = self.compile(procedure)?;
        self.functions.insert(procedure.oid, (procedure.stamp, handle));
        Ok(handle)
    }

    /// Compiles a body only to check it.
    pub fn check(&mut self, procedure: &Procedure) -> Result<(), PlError> {
        let handle = self.compile(procedure)?;
        let forgotten = self.interpreter.forget(handle);
        self.check_trap(forgotten)
    }

    pub fn call(&mut self, handle: u32, args: &[Value], kind: ResultKind) -> Result<Value, PlError> {
        let result = self.interpreter.call(handle, args, kind);
        self.check_trap(result)
    }

    pub fn run_inline(&mut self, body: &str) -> Result<(), PlError> {
        match self.interpreter.run_inline(body) {
            // Only a SyntaxError from compiling the block itself carries a line.
            Err(GuestError::Python(error)) if error.line.is_some() => {
                Err(PlError::compile("anonymous code block", error))
            }
            other => self.check_trap(other),
        }
    }

    fn compile(&mut self, procedure: &Procedure) -> Result<u32, PlError> {
        match self.interpreter.compile(&procedure.name, &procedure.params, &procedure.body) {
            Err(GuestError::Python(error)) => Err(PlError::compile(&format!("function \"{}\"", procedure.name), error)),
            other => self.check_trap(other),
        }
    }

    fn check_trap<T>(&mut self, result: Result<T, GuestError>) -> Result<T, PlError> {
        result.map_err(|error| match error {
            GuestError::Python(error) => PlError::python(error),
            GuestError::Trap(kind) => {
                self.broken = true;
                PlError::trap(kind)
            }
        })
    }
}

fn limits() -> Limits {
    Limits { memory: gucs::memory_limit_bytes(), output: gucs::max_output_bytes(), should_stop: cancel_pending }
}

/// A query cancel or a backend termination is pending (set by PostgreSQL's signal handlers).
fn cancel_pending() -> bool {
    unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 }
}

fn guest_path() -> PathBuf {
    let libdir = unsafe { CStr::from_ptr(std::ptr::addr_of!(pg_sys::pkglib_path).cast()) };
    PathBuf::from(libdir.to_string_lossy().into_owned()).join(plpywasm_engine::GUEST_ARTIFACT)
}
