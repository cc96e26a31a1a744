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
use crate::{gucs, spi};
use crate::procedure::{Procedure, Stamp};
use crate::runtime::{GuestError, Interpreter, Limits, Node, Output, Runtime, Shape};

struct Backend {
    runtime: Runtime,
    by_role: HashMap<Oid, Slot>,
}

/// An interpreter and what has been compiled into it.
pub struct Slot {
    interpreter: Interpreter,
    /// Which interpreter this is: a set being read belongs to the one that started it.
    pub generation: u64,
    functions: HashMap<Oid, Compiled>,
    /// Set when the guest trapped: the slot is dropped once the current use ends.
    broken: bool,
}

/// A function compiled into an interpreter: which version, its handle, the result shape it has.
struct Compiled {
    stamp: Stamp,
    handle: u32,
    shape: Vec<Shape>,
}

/// A result set the executor stopped reading early (`LIMIT`): which interpreter holds it.
struct Abandoned {
    role: Oid,
    generation: u64,
    iterator: u32,
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
    static ABANDONED: RefCell<Vec<Abandoned>> = const { RefCell::new(Vec::new()) };
    static GENERATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Has `iterator` closed the next time its interpreter is used. Called from executor callbacks:
/// it never calls the guest or PostgreSQL.
pub fn abandon_set(role: Oid, generation: u64, iterator: u32) {
    ABANDONED.with(|abandoned| {
        if let Ok(mut abandoned) = abandoned.try_borrow_mut() {
            abandoned.push(Abandoned { role, generation, iterator });
        }
    });
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
            let generation = GENERATIONS.with(|g| {
                g.set(g.get() + 1);
                g.get()
            });
            backend.by_role.insert(role, Slot { interpreter, generation, functions: HashMap::new(), broken: false });
        }
        let slot = backend.by_role.get_mut(&role).expect("inserted above");
        let result = spi::scope(|| slot.close_abandoned(role).and_then(|()| f(slot)));
        let output = slot.interpreter.take_output();
        if slot.broken {
            backend.by_role.remove(&role);
        }
        Ok((result, output))
    })
}

impl Slot {
    /// The handle of `procedure` in this interpreter, compiling it if it is new or has changed, and
    /// telling the guest when a call resolved its result to another shape.
    pub fn handle(&mut self, procedure: &Procedure, shape: &[Shape]) -> Result<u32, PlError> {
        if let Some(compiled) = self.functions.get(&procedure.oid) {
            let handle = compiled.handle;
            if compiled.stamp != procedure.stamp {
                self.functions.remove(&procedure.oid);
                let forgotten = self.interpreter.forget(handle);
                self.check_trap(forgotten)?;
            } else if compiled.shape != shape {
                let reshaped = self.interpreter.reshape(handle, shape);
                self.check_trap(reshaped)?;
                self.functions.get_mut(&procedure.oid).expect("present").shape = shape.to_vec();
                return Ok(handle);
            } else {
                return Ok(handle);
            }
        }
        let handle = self.compile(procedure, shape)?;
        self.functions.insert(procedure.oid, Compiled { stamp: procedure.stamp, handle, shape: shape.to_vec() });
        Ok(handle)
    }

    /// Compiles a body only to check it.
    pub fn check(&mut self, procedure: &Procedure) -> Result<(), PlError> {
        let handle = self.compile(procedure, &[Shape::Void])?;
        let forgotten = self.interpreter.forget(handle);
        self.check_trap(forgotten)
    }

    pub fn call(&mut self, handle: u32, args: &[Node]) -> Result<Vec<Node>, PlError> {
        let result = self.interpreter.call(handle, args);
        self.check_trap(result)
    }

    /// Starts a set-returning call; its rows are read with [`Slot::next_row`].
    pub fn call_set(&mut self, handle: u32, args: &[Node]) -> Result<u32, PlError> {
        let result = self.interpreter.call_set(handle, args);
        self.check_trap(result)
    }

    /// The next row of a set this interpreter (`generation`) started; none at its end.
    pub fn next_row(&mut self, iterator: u32, generation: u64) -> Result<Option<Vec<Node>>, PlError> {
        if generation != self.generation {
            return Err(PlError::new(
                pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the PL/plpywasm interpreter of this set-returning function was discarded while it ran",
            ));
        }
        let result = self.interpreter.next_row(iterator);
        self.check_trap(result)
    }

    fn close_abandoned(&mut self, role: Oid) -> Result<(), PlError> {
        let generation = self.generation;
        let iterators: Vec<u32> = ABANDONED.with(|abandoned| {
            let mut abandoned = abandoned.borrow_mut();
            let mine = abandoned.iter().filter(|a| a.role == role && a.generation == generation).map(|a| a.iterator).collect();
            // Sets of interpreters that are gone are gone with them.
            abandoned.retain(|a| a.role != role);
            mine
        });
        if iterators.is_empty() {
            return Ok(());
        }
        let closed = self.interpreter.close_sets(&iterators);
        self.check_trap(closed)
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

    fn compile(&mut self, procedure: &Procedure, shape: &[Shape]) -> Result<u32, PlError> {
        match self.interpreter.compile(&procedure.name, &procedure.params, &procedure.body, shape) {
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
    Limits {
        memory: gucs::memory_limit_bytes(),
        output: gucs::max_output_bytes(),
        should_stop: cancel_pending,
        database: &spi::SPI,
    }
}

/// A query cancel or a backend termination is pending (set by PostgreSQL's signal handlers).
fn cancel_pending() -> bool {
    unsafe { pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0 }
}

fn guest_path() -> PathBuf {
    let libdir = unsafe { CStr::from_ptr(std::ptr::addr_of!(pg_sys::pkglib_path).cast()) };
    PathBuf::from(libdir.to_string_lossy().into_owned()).join(plpywasm_engine::GUEST_ARTIFACT)
}
