//! One Python interpreter: a guest instance in its own Store, with its limits and collected output.

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types, DbError, GuestExports, Node, Plan, Plpywasm, PlpywasmPre, PythonError, Rows, Shape, TextArg, TransactionStep};
use super::{Canceled, Database};
use super::output::{Output, Stream};
use super::ticker::{Ticker, TICK};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// How much the nested interpreters running now grew during their running calls, together (see
    /// [`Limits::nested`]): each level of nesting has an interpreter, all alive at once. (What they
    /// hold from earlier calls is bounded by the backend's rule for idle interpreters.)
    static NESTED_GROWTH: Cell<usize> = const { Cell::new(0) };
}

/// What an interpreter may consume, how it learns that the backend wants it to stop, and the
/// database it reaches through `plpy`.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory: usize,
    /// Runs calls nested in another interpreter's (through SQL): the nested interpreters running at
    /// once share one `memory` for what they grow while they run.
    pub nested: bool,
    /// Most bytes of stdout + stderr kept per call.
    pub output: usize,
    /// Polled on every epoch tick while guest code runs; `true` stops the guest.
    pub should_stop: fn() -> bool,
    pub database: &'static dyn Database,
}

/// Per-store state: everything the guest's imports reach.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    output: Output,
    should_stop: fn() -> bool,
    database: &'static dyn Database,
}

impl HostState {
    /// What a wait in wasi:io/poll needs (see `poll`): the pollables, and whether to stop.
    pub(super) fn poll_parts(&mut self) -> (&mut ResourceTable, fn() -> bool) {
        (&mut self.table, self.should_stop)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn report(
        &mut self,
        level: u8,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
        sqlstate: Option<String>,
        fields: Vec<(String, String)>,
    ) {
        // What the guest printed so far comes first, so that messages keep the order they were made in.
        for (stream, line) in self.output.drain_lines() {
            let level = if stream == Stream::Stderr { WARNING } else { NOTICE };
            self.database.report(level, &line, None, None, None, Vec::new());
        }
        self.database.report(level, &message, detail.as_deref(), hint.as_deref(), sqlstate.as_deref(), fields);
    }

    fn execute(&mut self, query: String, limit: u64) -> wasmtime::Result<Result<Rows, DbError>> {
        self.database.execute(&query, limit).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn prepare(&mut self, query: String, types: Vec<String>) -> wasmtime::Result<Result<Plan, DbError>> {
        self.database.prepare(&query, &types).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn execute_plan(&mut self, plan: u32, params: Vec<Node>, limit: u64) -> wasmtime::Result<Result<Rows, DbError>> {
        self.database.execute_plan(plan, params, limit).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn free_plan(&mut self, plan: u32) {
        self.database.free_plan(plan)
    }

    fn open_cursor(&mut self, query: String, plan: Option<u32>, params: Vec<Node>) -> wasmtime::Result<Result<u32, DbError>> {
        self.database.open_cursor(&query, plan, params).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn fetch(&mut self, cursor: u32, count: u64) -> wasmtime::Result<Result<Rows, DbError>> {
        self.database.fetch(cursor, count).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn close_cursor(&mut self, cursor: u32) {
        self.database.close_cursor(cursor)
    }

    fn transaction(&mut self, step: TransactionStep) -> wasmtime::Result<Result<(), DbError>> {
        self.database.transaction(step).map_err(|Canceled| Trap::Interrupt.into())
    }

    fn quote_ident(&mut self, name: String) -> String {
        self.database.quote_ident(&name)
    }

    fn write_output(&mut self, fd: u8, text: String) {
        let stream = if fd == 2 { Stream::Stderr } else { Stream::Stdout };
        self.output.write(stream, &text);
    }

    fn sleep(&mut self, nanoseconds: u64) -> wasmtime::Result<()> {
        // In slices, so that a cancel is noticed within one tick, as in running code.
        let deadline = Instant::now() + Duration::from_nanos(nanoseconds);
        loop {
            if (self.should_stop)() {
                return Err(Trap::Interrupt.into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(TICK));
        }
    }
}

/// Caps linear memory at `plpywasm.memory_limit` (growth beyond is refused: Python raises
/// MemoryError), and the growth of the nested interpreters running at once at that limit too;
/// remembers the largest size reached.
struct Limiter {
    memory: usize,
    peak: usize,
    /// The memory's size from the snapshot, and now (it never shrinks).
    initial: Option<usize>,
    size: usize,
    nested: bool,
    /// Whether a guest call of a nested interpreter runs (its growth counts in NESTED_GROWTH), and
    /// whether growth was refused during the call.
    running: bool,
    refused: bool,
}

impl Limiter {
    /// Whether the guest's memory reached (nearly) all it may have.
    fn near_limit(&self) -> bool {
        self.refused || self.peak + (8 << 20) >= self.memory
    }

    fn grown(&self) -> usize {
        self.size - self.initial.unwrap_or(self.size)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let shared = self.running && self.initial.is_some();
        let running_growth = NESTED_GROWTH.with(Cell::get) + desired.saturating_sub(self.size);
        if desired > self.memory || (shared && running_growth > self.memory) {
            // Remembered so that a trap that follows is seen as memory exhaustion.
            self.refused = true;
            return Ok(false);
        }
        if shared {
            NESTED_GROWTH.with(|growth| growth.set(running_growth));
        }
        self.peak = self.peak.max(desired);
        self.initial.get_or_insert(desired);
        self.size = desired;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Function tables grow with code, not data: a million entries is far beyond CPython's needs.
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        16
    }
}

/// PostgreSQL's elog levels for output written between `plpy` messages.
const NOTICE: u8 = 18;
const WARNING: u8 = 19;

/// Why a guest call failed.
#[derive(Debug)]
pub enum GuestError {
    /// Python raised and did not catch; the interpreter is intact.
    Python(PythonError),
    /// The guest stopped abnormally; the interpreter must be discarded.
    Trap(TrapKind),
}

#[derive(Debug)]
pub enum TrapKind {
    /// The backend asked it to stop (cancel, timeout, termination).
    Interrupted,
    StackOverflow,
    OutOfMemory,
    Other(String),
}

pub struct Interpreter {
    store: Store<HostState>,
    guest: Plpywasm,
    ticker: Arc<Ticker>,
    output_budget: usize,
}

impl Interpreter {
    pub(super) fn new(
        engine: &Engine,
        pre: &PlpywasmPre<HostState>,
        ticker: Arc<Ticker>,
        limits: Limits,
    ) -> Result<Interpreter, GuestError> {
        let state = HostState {
            wasi: deny_all_wasi(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory: limits.memory,
                nested: limits.nested,
                peak: 0,
                initial: None,
                size: 0,
                running: false,
                refused: false,
            },
            output: Output::with_budget(limits.output),
            should_stop: limits.should_stop,
            database: limits.database,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        let should_stop = limits.should_stop;
        store.epoch_deadline_callback(move |_| {
            if should_stop() {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store.set_epoch_deadline(1);
        let guest = {
            let _running = ticker.running();
            pre.instantiate(&mut store).map_err(|err| trap(err, false))?
        };
        Ok(Interpreter { store, guest, ticker, output_budget: limits.output })
    }

    pub fn compile(
        &mut self,
        name: &str,
        params: &[String],
        body: &str,
        shape: &[Shape],
        text_args: &[(u32, TextArg)],
    ) -> Result<u32, GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_compile(store, name, params, body, shape, text_args))
    }

    pub fn reshape(&mut self, handle: u32, shape: &[Shape]) -> Result<(), GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_reshape(store, handle, shape).map(Ok))
    }

    pub fn forget(&mut self, handle: u32) -> Result<(), GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_forget(store, handle).map(Ok))
    }

    pub fn call(&mut self, handle: u32, args: &[Node]) -> Result<Vec<Node>, GuestError> {
        self.run_listing(|guest, store| guest.call_call(store, handle, args))?.ok_or_else(no_result)
    }

    /// `args` is a marshalled list whose last item is the handle (see the WIT).
    pub fn call_scalar(&mut self, args: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.run_listing(|guest, store| guest.call_call_scalar(store, args))?.ok_or_else(no_result)
    }

    pub fn call_trigger(&mut self, handle: u32, td: &[Node], hidden: &[String]) -> Result<Vec<Node>, GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_call_trigger(store, handle, td, hidden))
    }

    pub fn call_set(&mut self, handle: u32, args: &[Node]) -> Result<u32, GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_call_set(store, handle, args))
    }

    pub fn next_row(&mut self, iterator: u32) -> Result<Option<Vec<Node>>, GuestError> {
        self.run_listing(|guest, store| guest.call_next_row(store, iterator))
    }

    pub fn next_plain(&mut self, iterator: u32) -> Result<Option<Vec<u8>>, GuestError> {
        self.run_listing(|guest, store| guest.call_next_plain(store, iterator))
    }

    pub fn close_sets(&mut self, iterators: &[u32]) -> Result<(), GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_close_sets(store, iterators).map(Ok))
    }

    pub fn run_inline(&mut self, body: &str) -> Result<(), GuestError> {
        self.run(|guest, store| guest.plpywasm_runtime_guest().call_run_inline(store, body))
    }

    /// The largest linear memory this interpreter has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak
    }

    /// How much the memory grew beyond the snapshot's: what the interpreter holds of its own
    /// (the snapshot's pages are shared until written), which it keeps until it is dropped.
    pub fn grown_memory(&self) -> usize {
        self.store.data().limiter.grown()
    }

    /// Output written since the last call to this method.
    pub fn take_output(&mut self) -> Output {
        let fresh = Output::with_budget(self.output_budget);
        std::mem::replace(&mut self.store.data_mut().output, fresh).finish()
    }

    /// Runs a per-call export, which returns an empty list instead of raising (see the WIT): then
    /// `take-error` tells what it raised, or none at the end of a set.
    fn run_listing<T>(
        &mut self,
        f: impl FnOnce(&GuestExports, &mut Store<HostState>) -> wasmtime::Result<Vec<T>>,
    ) -> Result<Option<Vec<T>>, GuestError> {
        self.run(|guest, store| {
            let guest = guest.plpywasm_runtime_guest();
            let list = f(guest, store)?;
            if !list.is_empty() {
                return Ok(Ok(Some(list)));
            }
            Ok(guest.call_take_error(store)?.map_or(Ok(None), Err))
        })
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&Plpywasm, &mut Store<HostState>) -> wasmtime::Result<Result<T, PythonError>>,
    ) -> Result<T, GuestError> {
        self.store.set_epoch_deadline(1);
        let _running = self.ticker.running();
        let limiter = &mut self.store.data_mut().limiter;
        let grown_before = limiter.grown();
        limiter.refused = false;
        limiter.running = limiter.nested;
        let result = f(&self.guest, &mut self.store);
        let limiter = &mut self.store.data_mut().limiter;
        if limiter.running {
            limiter.running = false;
            let grown = limiter.grown() - grown_before;
            NESTED_GROWTH.with(|growth| growth.set(growth.get().saturating_sub(grown)));
        }
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(GuestError::Python(error)),
            Err(err) => Err(trap(err, self.store.data().limiter.near_limit())),
        }
    }
}

/// A per-call export returned nothing and raised nothing: only a guest whose runtime was tampered
/// with does that.
fn no_result() -> GuestError {
    GuestError::Trap(TrapKind::Other("the guest returned no result".into()))
}

/// What a trap means. A guest that aborts with its memory at the limit ran out of it: CPython and
/// its bindings abort (an `unreachable` trap) when an allocation fails where they cannot raise.
fn trap(err: wasmtime::Error, memory_exhausted: bool) -> GuestError {
    let kind = match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::Interrupted,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::AllocationTooLarge) => TrapKind::OutOfMemory,
        _ if memory_exhausted => TrapKind::OutOfMemory,
        Some(trap) => TrapKind::Other(trap.to_string()),
        None => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            // WASI keeps only success or failure of os._exit's status: not worth reporting.
            Some(_) => TrapKind::Other("The Python code exited the interpreter (os._exit).".into()),
            None => TrapKind::Other(err.root_cause().to_string()),
        },
    };
    GuestError::Trap(kind)
}

/// The guest's whole view of the host: no files, no environment, no arguments, no network, no name
/// lookups. Clocks and randomness are the only capabilities it gets.
fn deny_all_wasi() -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    builder.build()
}
