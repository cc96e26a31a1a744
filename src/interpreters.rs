//! The backend's interpreters: one per role, created lazily from the guest's snapshot, each with
//! the handles of the functions compiled into it.
//!
//! A function runs in its owner's interpreter, whoever calls it (a DO block in the current role's):
//! a caller's code never shares Python state with the functions of another role it calls, so it
//! cannot change what they do (a row-level security policy's, a trigger's). A call nested (through
//! SQL) in a running call of the same owner's runs in the same interpreter, as in PL/Python. An
//! interpreter that traps is dropped, never reused.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::path::PathBuf;
use std::time::Instant;

use pgrx::pg_sys::{self, Oid};

use crate::error::PlError;
use crate::idmap::{self, IdMap};
use crate::spi::{self, Access};
use crate::{gucs, stats};
use crate::procedure::{Procedure, Stamp};
use crate::runtime::{is_lent, stack_address, Borrowed, Guest, GuestError, Interpreter, Limits, Output, Runtime, Shape};

struct Backend {
    runtime: Runtime,
    /// The idle interpreters by role and the nesting depth they were made at, least recently used
    /// first. A call nested in a running one of the same role runs in that one (see
    /// `runtime::Borrowed`); a call of another role runs in that role's first idle interpreter; one
    /// that finds none idle (its role's run further up, and it was made outside their queries)
    /// runs in one made for its depth. At most `plpywasm.max_interpreters`: a list is quicker
    /// than a map, boxes quicker to move.
    slots: Vec<((Oid, u32), Box<Interpreter>)>,
}

/// A function compiled into an interpreter: which version, its handle, the result shape it has.
struct Compiled {
    stamp: Stamp,
    handle: u32,
    shape: Vec<Shape>,
}

/// A result set the executor stopped reading early (`LIMIT`), in the interpreter `generation`.
struct Abandoned {
    generation: u64,
    iterator: u32,
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
    /// What has been compiled into each interpreter, by its generation and the function. Kept
    /// beside the interpreters: a nested call reaches an interpreter through its lent store.
    static COMPILED: RefCell<IdMap<(u64, Oid), Compiled>> = const { RefCell::new(idmap::new()) };
    static ABANDONED: RefCell<Vec<Abandoned>> = const { RefCell::new(Vec::new()) };
    /// How many guest uses are running on this backend's stack.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Closes a set before its end, at once: its generator's `finally` runs now. A set whose
/// interpreter is gone went with it; one whose interpreter is not the one the owner's calls would
/// use now is closed on that one's next use (see `close_abandoned`). Without `queries` (the
/// executor stopped reading it: see `exec::abandon`), its queries are refused.
pub fn close_set(
    function: Oid,
    owner: Oid,
    access: Access,
    queries: bool,
    generation: u64,
    iterator: u32,
) -> Result<(Result<(), PlError>, Output), PlError> {
    let idle = BACKEND.with(|cell| {
        let mut backend = cell.borrow_mut();
        backend.as_mut().is_some_and(|b| b.slots.iter_mut().any(|(_, i)| i.guest().generation() == generation))
    });
    if !idle && !is_lent(generation) {
        return Ok((Ok(()), Output::default()));
    }
    with_interpreter(function, owner, access, |session| {
        if session.generation() != generation {
            abandon_set(generation, iterator);
            return Ok(());
        }
        let closed = match queries {
            true => session.guest.close_sets(&[iterator]),
            false => spi::without_queries(|| session.guest.close_sets(&[iterator])),
        };
        session.check_trap(closed)
    })
}

/// Has `iterator` closed the next time its interpreter is used, with no queries allowed: whoever
/// runs then is not who abandoned it. Never calls the guest or PostgreSQL.
pub fn abandon_set(generation: u64, iterator: u32) {
    ABANDONED.with(|abandoned| {
        if let Ok(mut abandoned) = abandoned.try_borrow_mut() {
            abandoned.push(Abandoned { generation, iterator });
        }
    });
}

/// Runs `f` with `role`'s interpreter: the running one when this call is nested in a query it
/// runs, otherwise an idle one. Output the guest wrote is returned beside the result (to
/// be reported by the caller once no guest frame is live), and a trapped interpreter is dropped.
/// `function` is what runs (counted in `plpywasm.stats`; InvalidOid for a DO block), with `access`
/// to the database.
pub fn with_interpreter<T>(
    function: Oid,
    role: Oid,
    access: Access,
    f: impl FnOnce(&mut Session) -> Result<T, PlError>,
) -> Result<(Result<T, PlError>, Output), PlError> {
    let depth = DEPTH.with(Cell::get);
    if depth == 0 {
        crate::error::forget_cancel();
    }
    if depth > 0 {
        check_depth(depth)?;
        if let Some(mut lent) = Borrowed::find(role.to_u32()) {
            let mut session = Session { guest: lent.guest() };
            if session.guest.stack_room() < NESTED_STACK {
                return Err(too_deep());
            }
            return Ok(session.run(function, role, access, depth, f));
        }
        check_native_stack()?;
    }
    let (key, mut interpreter) = BACKEND.with(|cell| {
        let mut backend = cell.borrow_mut();
        if backend.is_none() {
            let runtime = Runtime::load(&guest_path()).map_err(PlError::load)?;
            *backend = Some(Backend { runtime, slots: Vec::new() });
        }
        let backend = backend.as_mut().expect("loaded above");
        // Taken out while it runs: a nested call borrows the backend again. The role's first
        // interpreter, unless it runs (then one made for a deeper call), so that its functions
        // share one GD however they are called.
        let idle = backend.slots.iter().enumerate().filter(|(_, ((r, _), _))| *r == role).min_by_key(|(_, ((_, d), _))| *d);
        match idle.map(|(at, _)| at) {
            Some(at) => Ok(backend.slots.remove(at)),
            None => {
                stats::interpreter_created(role);
                new_interpreter(&backend.runtime, role).map(|interpreter| ((role, depth), Box::new(interpreter)))
            }
        }
    })?;
    interpreter.run_nested(depth > 0);
    let mut session = Session { guest: interpreter.guest() };
    let outcome = session.run(function, role, access, depth, f);
    if session.guest.trapped() {
        forget(session.guest.generation());
    } else {
        let dropped = BACKEND.with(|cell| match cell.borrow_mut().as_mut() {
            Some(backend) => {
                backend.slots.push((key, interpreter));
                // Memory stays bounded however many roles call in: each interpreter holds a few MB,
                // and one that grew keeps what it grew to (WebAssembly memory does not shrink).
                // So idle interpreters beside the one just used hold at most one memory_limit.
                let mut excess = backend.slots.len().saturating_sub(gucs::max_interpreters());
                let idle = &backend.slots[excess..backend.slots.len() - 1];
                let mut grown: usize = idle.iter().map(|(_, interpreter)| interpreter.grown_memory()).sum();
                while grown > gucs::memory_limit_bytes() {
                    grown -= backend.slots[excess].1.grown_memory();
                    excess += 1;
                }
                backend.slots.drain(..excess).map(|(_, mut dropped)| dropped.guest().generation()).collect()
            }
            None => Vec::new(),
        });
        for generation in dropped {
            forget(generation);
        }
    }
    Ok(outcome)
}

/// Forgets what a dropped interpreter had compiled, the sets it had left to close, and its plans
/// and cursors.
fn forget(generation: u64) {
    COMPILED.with(|compiled| compiled.borrow_mut().retain(|&(g, _), _| g != generation));
    ABANDONED.with(|abandoned| abandoned.borrow_mut().retain(|a| a.generation != generation));
    spi::forget_interpreter(generation);
}

fn new_interpreter(runtime: &Runtime, role: Oid) -> Result<Interpreter, PlError> {
    runtime.instantiate(limits(), role.to_u32()).map_err(|err| match err {
        GuestError::Trap(kind) => PlError::trap(kind),
        GuestError::Python(err) => PlError::python(err),
    })
}

/// One more guest use on the stack, until dropped (also when a PostgreSQL error unwinds).
struct Nested(u32);

impl Nested {
    fn enter(depth: u32) -> Nested {
        DEPTH.with(|d| d.set(depth + 1));
        Nested(depth)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(self.0));
    }
}

/// Most plpywasm calls nested through SQL.
const MAX_DEPTH: u32 = 64;

/// The WebAssembly stack a call nested in a running interpreter must find left: room for its
/// Python frames, and for the queries it runs to nest further.
const NESTED_STACK: usize = 256 << 10;

fn too_deep() -> PlError {
    PlError::new(pgrx::PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX, "stack depth limit exceeded")
        .hint("PL/plpywasm functions calling each other through SQL nest too deeply.")
}

/// Refuses a nested call past MAX_DEPTH or PostgreSQL's `max_stack_depth`.
fn check_depth(depth: u32) -> Result<(), PlError> {
    if depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    unsafe { pg_sys::check_stack_depth() };
    Ok(())
}

/// Another interpreter runs on the same native stack as the ones below it: refuse it unless its
/// whole WebAssembly stack fits, whatever `max_stack_depth` says.
fn check_native_stack() -> Result<(), PlError> {
    // PostgreSQL keeps its stack base private: read it by setting it here and putting it back.
    let base = unsafe {
        let base = pg_sys::set_stack_base();
        pg_sys::restore_stack_base(base);
        base as usize
    };
    let used = base.saturating_sub(stack_address());
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    let available = if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
        limit.rlim_cur as usize
    } else {
        8 << 20
    };
    // Room for the guest's stack, and for PostgreSQL's frames around it.
    if used + plpywasm_engine::MAX_WASM_STACK + (1 << 20) > available {
        return Err(too_deep());
    }
    Ok(())
}

/// One use of an interpreter: what the handler asks of the guest.
pub struct Session<'a> {
    guest: Guest<'a>,
}

impl Session<'_> {
    fn run<T>(
        &mut self,
        function: Oid,
        role: Oid,
        access: Access,
        depth: u32,
        f: impl FnOnce(&mut Session) -> Result<T, PlError>,
    ) -> (Result<T, PlError>, Output) {
        let started = Instant::now();
        self.guest.limit_output(gucs::max_output_bytes());
        let result = {
            let _nested = Nested::enter(depth);
            spi::scope(access, || {
                let result = self.close_abandoned().and_then(|()| f(self));
                (result, self.guest.trapped())
            })
        };
        let canceled = matches!(&result, Err(err) if err.code == pgrx::PgSqlErrorCode::ERRCODE_QUERY_CANCELED as i32);
        let outcome = stats::Outcome {
            elapsed: started.elapsed(),
            peak_memory: self.guest.peak_memory(),
            trapped: self.guest.trapped(),
            canceled,
        };
        stats::record(function, role, outcome);
        (result, self.guest.take_output())
    }

    /// Which interpreter this is: a set being read belongs to the one that started it.
    pub fn generation(&self) -> u64 {
        self.guest.generation()
    }

    /// The handle of `procedure` in this interpreter, compiling it if it is new or has changed, and
    /// telling the guest when a call resolved its result to another shape.
    pub fn handle(&mut self, procedure: &Procedure, shape: &[Shape]) -> Result<u32, PlError> {
        let key = (self.generation(), procedure.oid);
        let known = COMPILED.with(|compiled| {
            compiled.borrow().get(&key).map(|c| (c.handle, c.stamp == procedure.stamp, c.shape == shape))
        });
        match known {
            Some((handle, true, true)) => return Ok(handle),
            Some((handle, true, false)) => {
                let reshaped = self.guest.reshape(handle, shape);
                self.check_trap(reshaped)?;
                COMPILED.with(|compiled| {
                    if let Some(c) = compiled.borrow_mut().get_mut(&key) {
                        c.shape = shape.to_vec();
                    }
                });
                return Ok(handle);
            }
            Some((handle, false, _)) => {
                COMPILED.with(|compiled| compiled.borrow_mut().remove(&key));
                let forgotten = self.guest.forget(handle);
                self.check_trap(forgotten)?;
            }
            None => {}
        }
        let handle = self.compile(procedure, shape)?;
        let entry = Compiled { stamp: procedure.stamp, handle, shape: shape.to_vec() };
        COMPILED.with(|compiled| compiled.borrow_mut().insert(key, entry));
        Ok(handle)
    }

    /// Compiles a body only to check it.
    pub fn check(&mut self, procedure: &Procedure) -> Result<(), PlError> {
        let handle = self.compile(procedure, &[Shape::Void])?;
        let forgotten = self.guest.forget(handle);
        self.check_trap(forgotten)
    }

    /// A call whose arguments (with the handle) and result's nodes cross in marshal's format (see
    /// `convert::marshal`).
    pub fn call(&mut self, args: &[u8]) -> Result<Vec<u8>, PlError> {
        let result = self.guest.call(args);
        self.check_trap(result)
    }

    /// A call whose arguments (with the handle) and result cross in marshal's format.
    pub fn call_scalar(&mut self, args: &[u8]) -> Result<Vec<u8>, PlError> {
        let result = self.guest.call_scalar(args);
        self.check_trap(result)
    }

    pub fn call_trigger(&mut self, handle: u32, td: &[u8]) -> Result<Vec<u8>, PlError> {
        let result = self.guest.call_trigger(handle, td);
        self.check_trap(result)
    }

    /// Starts a set-returning call; its rows are read with [`Session::next_row`]. `whole`: the
    /// executor reads them all before it uses one (see the WIT's `call-set`).
    pub fn call_set(&mut self, args: &[u8], whole: bool) -> Result<u32, PlError> {
        let result = self.guest.call_set(args, whole);
        self.check_trap(result)
    }

    /// The next row of a set this interpreter (`generation`) started; none at its end.
    pub fn next_row(&mut self, iterator: u32, generation: u64) -> Result<Option<Vec<u8>>, PlError> {
        self.check_generation(generation)?;
        let result = self.guest.next_row(iterator);
        self.check_trap(result)
    }

    /// [`Session::next_row`] for a set started `whole`: several rows at a time.
    pub fn next_rows(&mut self, iterator: u32, generation: u64) -> Result<Option<Vec<u8>>, PlError> {
        self.check_generation(generation)?;
        let result = self.guest.next_rows(iterator);
        self.check_trap(result)
    }

    /// [`Session::next_row`] for rows that cross in marshal's format (see `convert::marshal`).
    pub fn next_plain(&mut self, iterator: u32, generation: u64) -> Result<Option<Vec<u8>>, PlError> {
        self.check_generation(generation)?;
        let result = self.guest.next_plain(iterator);
        self.check_trap(result)
    }

    fn check_generation(&self, generation: u64) -> Result<(), PlError> {
        if generation != self.generation() {
            return Err(PlError::new(
                pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the PL/plpywasm interpreter of this set-returning function was discarded while it ran",
            ));
        }
        Ok(())
    }

    fn close_abandoned(&mut self) -> Result<(), PlError> {
        let generation = self.generation();
        let iterators: Vec<u32> = ABANDONED.with(|abandoned| {
            let mut abandoned = abandoned.borrow_mut();
            let mine = abandoned.iter().filter(|a| a.generation == generation).map(|a| a.iterator).collect();
            abandoned.retain(|a| a.generation != generation);
            mine
        });
        if iterators.is_empty() {
            return Ok(());
        }
        let closed = spi::without_queries(|| self.guest.close_sets(&iterators));
        self.check_trap(closed)
    }

    pub fn run_inline(&mut self, body: &str) -> Result<(), PlError> {
        match self.guest.run_inline(body) {
            // Only a SyntaxError from compiling the block itself carries a line.
            Err(GuestError::Python(error)) if error.line.is_some() => {
                Err(PlError::compile("anonymous code block", error))
            }
            other => self.check_trap(other),
        }
    }

    fn compile(&mut self, procedure: &Procedure, shape: &[Shape]) -> Result<u32, PlError> {
        let decodings = procedure.decodings();
        match self.guest.compile(&procedure.name, &procedure.params, &procedure.body, shape, &decodings) {
            Err(GuestError::Python(error)) => Err(PlError::compile(&format!("function \"{}\"", procedure.name), error)),
            other => self.check_trap(other),
        }
    }

    /// (The guest remembers a trap: the interpreter is dropped once its use ends.)
    fn check_trap<T>(&self, result: Result<T, GuestError>) -> Result<T, PlError> {
        result.map_err(|error| match error {
            GuestError::Python(error) => PlError::python(error),
            GuestError::Trap(kind) => PlError::trap(kind),
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

/// A query cancel or a backend termination is pending (set by PostgreSQL's signal handlers). The
/// ticker's thread asks too: volatile reads of two `sig_atomic_t`, as a signal handler's are.
fn cancel_pending() -> bool {
    // SAFETY: reads of two variables that exist for the backend's life.
    unsafe {
        std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::QueryCancelPending)) != 0
            || std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::ProcDiePending)) != 0
    }
}

fn guest_path() -> PathBuf {
    let libdir = unsafe { CStr::from_ptr(std::ptr::addr_of!(pg_sys::pkglib_path).cast()) };
    PathBuf::from(libdir.to_string_lossy().into_owned()).join(plpywasm_engine::GUEST_ARTIFACT)
}
