//! One Python interpreter: a guest instance in its own Store, with its limits and collected output.

use wasmtime::component::ResourceTable;
use wasmtime::{AsContextMut, Engine, ResourceLimiter, Store, StoreContextMut, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types, DbError, Decoding, GuestExports, Plpywasm, PlpywasmPre, PythonError, Shape};
use super::{Canceled, Database};
use super::exchange::{Beyond, Exchange};
use super::memory::Probe;
use super::output::{Output, Stream};
use super::stop::StopFlag;
use super::ticker::{Ticker, TICK};
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// Numbers the interpreters of this backend, never reusing one.
    static GENERATIONS: Cell<u64> = const { Cell::new(0) };
    /// How much the nested interpreters running now grew during their running calls, together (see
    /// [`Interpreter::run_nested`]): a call nested in another role's runs in an interpreter of its
    /// own, all alive at once. (What they hold from earlier calls is bounded by the backend's rule
    /// for idle interpreters.)
    static NESTED_GROWTH: Cell<usize> = const { Cell::new(0) };
}

/// What an interpreter may consume, how it learns that the backend wants it to stop, and the
/// database it reaches through `plpy`.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory: usize,
    /// Most bytes of stdout + stderr kept per call.
    pub output: usize,
    /// Polled on every tick while guest code runs, on the ticker's thread too (so it must only read
    /// memory); `true` stops the guest.
    pub should_stop: fn() -> bool,
    pub database: &'static dyn Database,
}

/// Per-store state: everything the guest's imports reach, and what a call that enters the guest
/// through a lent store (see `lending`) needs.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    output: Output,
    should_stop: fn() -> bool,
    pub(super) database: &'static dyn Database,
    /// Set once the instance exists (cloned for each call: it is a few function handles).
    exports: Option<GuestExports>,
    /// Set once the instance exists; raised by the ticker.
    stop: Option<StopFlag>,
    /// Set once the instance exists.
    exchange: Option<Exchange>,
    probe: Option<Probe>,
    ticker: &'static Ticker,
    /// Which interpreter this is (see [`Guest::generation`]).
    pub(super) generation: u64,
    /// Who may borrow the store while it is lent (the backend's role).
    pub(super) owner: u32,
    /// Why the guest trapped, once it did: nothing may run in it again.
    pub(super) trapped: Option<TrapKind>,
    /// Guest calls running in this store (nested ones entered through a lent store), and the
    /// native stack's address where the outermost one entered: all of them share its
    /// `MAX_WASM_STACK`.
    entered: u32,
    entry_stack: usize,
    /// A query's reply too large to cross whole, and how much of it the guest took (see `lending`).
    pub(super) reply: Option<(Vec<u8>, usize)>,
}

impl HostState {
    /// Lowers the stop flag if no cancel is pending any more, as a query the guest ran returns: the
    /// ticker raised it for a cancel that SQL in the query caught (PL/pgSQL may), which must not
    /// stop the guest that goes on.
    pub(super) fn lower_stale_stop(&self) {
        // (The flag is read first: lowering takes the ticker's lock, which a query's every return
        // should not.)
        if let Some(stop) = self.stop.filter(|stop| stop.is_raised()) {
            if !(self.should_stop)() {
                self.ticker.lower(stop);
            }
        }
    }

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
        fields: Option<Vec<(String, String)>>,
    ) -> wasmtime::Result<Result<(), DbError>> {
        // What the guest printed so far comes first, so that messages keep the order they were made in.
        for (stream, line) in self.output.drain_lines() {
            match self.database.report(stream.level(), &line, None, None, None, Vec::new()) {
                Ok(Ok(())) => {}
                failed => return failed.map_err(|Canceled| Trap::Interrupt.into()),
            }
        }
        self.database
            .report(level, &message, detail.as_deref(), hint.as_deref(), sqlstate.as_deref(), fields.unwrap_or_default())
            .map_err(|Canceled| Trap::Interrupt.into())
    }

    fn quote_ident(&mut self, name: String) -> String {
        self.database.quote_ident(&name)
    }

    fn write_output(&mut self, fd: u8, text: String) {
        let stream = match fd {
            _ if self.database.closing() => Stream::Log,
            2 => Stream::Stderr,
            _ => Stream::Stdout,
        };
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

    fn process_id(&mut self) -> u32 {
        std::process::id()
    }

    fn cpu_times(&mut self) -> (u64, u64) {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return (0, 0);
        }
        let nanoseconds = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
        (nanoseconds(usage.ru_utime), nanoseconds(usage.ru_stime))
    }
}

/// The most bytes that cross into the guest at once as a `list<u8>`: the bindings trap if they
/// cannot allocate one, so larger inputs and replies go in parts, into room Python makes for them
/// (and for a part beside them: see the guest's `_PART_ROOM`).
pub const PART: usize = 256 << 10;

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

/// Why a guest call failed.
#[derive(Debug)]
pub enum GuestError {
    /// Python raised and did not catch; the interpreter is intact.
    Python(PythonError),
    /// The guest stopped abnormally; the interpreter must be discarded.
    Trap(TrapKind),
}

#[derive(Clone, Debug)]
pub enum TrapKind {
    /// The backend asked it to stop (cancel, timeout, termination).
    Interrupted,
    StackOverflow,
    OutOfMemory,
    /// A new interpreter's memory could not be mapped (the process's address space is limited).
    NoAddressSpace(String),
    Other(String),
}

/// An interpreter the backend owns, idle between its uses.
pub struct Interpreter {
    store: Store<HostState>,
}

impl Interpreter {
    pub(super) fn new(
        engine: &Engine,
        pre: &PlpywasmPre<HostState>,
        ticker: &'static Ticker,
        limits: Limits,
        owner: u32,
    ) -> Result<Interpreter, GuestError> {
        let state = HostState {
            wasi: deny_all_wasi(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory: limits.memory,
                nested: false,
                peak: 0,
                initial: None,
                size: 0,
                running: false,
                refused: false,
            },
            output: Output::with_budget(limits.output),
            should_stop: limits.should_stop,
            database: limits.database,
            exports: None,
            stop: None,
            exchange: None,
            probe: None,
            reply: None,
            ticker,
            generation: GENERATIONS.with(|g| {
                g.set(g.get() + 1);
                g.get()
            }),
            owner,
            trapped: None,
            entered: 0,
            entry_stack: 0,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        let instantiate = |store: &mut Store<HostState>| {
            let instance = pre.instance_pre().instantiate(&mut *store)?;
            let exports = Plpywasm::new(&mut *store, &instance)?.plpywasm_runtime_guest().clone();
            let probe = Probe::new(&mut *store, &instance)?;
            let memory = probe.memory(&mut *store)?;
            let stop = StopFlag::find(memory).ok_or_else(|| wasmtime::Error::msg("the guest's memory has no room for the stop flag"))?;
            let exchange = exports.call_exchange(&mut *store)?;
            let exchange = Exchange::find(memory, exchange).ok_or_else(|| wasmtime::Error::msg("the guest's exchange is not where it says"))?;
            wasmtime::Result::Ok((exports, stop, exchange, probe))
        };
        let (exports, stop, exchange, probe) = instantiate(&mut store).map_err(|err: wasmtime::Error| {
            let unmapped = err.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::OutOfMemory)
            });
            GuestError::Trap(if unmapped { TrapKind::NoAddressSpace(err.root_cause().to_string()) } else { trap(err, false, false) })
        })?;
        let state = store.data_mut();
        state.exports = Some(exports);
        state.stop = Some(stop);
        state.exchange = Some(exchange);
        state.probe = Some(probe);
        ticker.watch(state.generation, stop, limits.should_stop);
        Ok(Interpreter { store })
    }

    pub fn guest(&mut self) -> Guest<'_> {
        Guest { store: self.store.as_context_mut() }
    }

    /// Whether the next uses run nested in another interpreter's call (through SQL, but not in
    /// it: see `lending`): the nested interpreters running at once share one memory limit for what
    /// they grow while they run.
    pub fn run_nested(&mut self, nested: bool) {
        self.store.data_mut().limiter.nested = nested;
    }

    /// How much the memory grew beyond the snapshot's: what the interpreter holds of its own
    /// (the snapshot's pages are shared until written), which it keeps until it is dropped.
    pub fn grown_memory(&self) -> usize {
        self.store.data().limiter.grown()
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        let state = self.store.data();
        // Before the memory the flag lies in goes.
        state.ticker.forget(state.generation);
    }
}

/// An interpreter being used: one the backend owns, or one lent by a running call of it.
pub struct Guest<'a> {
    store: StoreContextMut<'a, HostState>,
}

impl<'a> Guest<'a> {
    pub(super) fn new(store: StoreContextMut<'a, HostState>) -> Guest<'a> {
        Guest { store }
    }

    pub fn compile(
        &mut self,
        name: &str,
        params: &[String],
        body: &str,
        shape: &[Shape],
        decodings: &[(u32, Decoding)],
    ) -> Result<u32, GuestError> {
        let params = (!params.is_empty()).then_some(params);
        let decodings = (!decodings.is_empty()).then_some(decodings);
        self.run(|guest, store| guest.call_compile(store, name, params, body, shape, decodings))
    }

    pub fn reshape(&mut self, handle: u32, shape: &[Shape]) -> Result<(), GuestError> {
        self.run(|guest, store| guest.call_reshape(store, handle, shape).map(Ok))
    }

    pub fn forget(&mut self, handle: u32) -> Result<(), GuestError> {
        self.run(|guest, store| guest.call_forget(store, handle).map(Ok))
    }

    /// `args` is a marshalled pair of the handle and the arguments (see the WIT).
    pub fn call(&mut self, args: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.put(args)?;
        let output = self.run_exchanging(|guest, store| guest.call_call(store))?;
        self.required(output)
    }

    pub fn call_scalar(&mut self, args: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.put(args)?;
        let output = self.run_exchanging(|guest, store| guest.call_call_scalar(store))?;
        self.required(output)
    }

    pub fn call_trigger(&mut self, handle: u32, td: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.put(td)?;
        let output = self.run_exchanging(|guest, store| guest.call_call_trigger(store, handle))?;
        self.required(output)
    }

    pub fn call_set(&mut self, args: &[u8], whole: bool) -> Result<u32, GuestError> {
        self.put(args)?;
        let handle = |guest: &GuestExports, store: &mut StoreContextMut<'a, HostState>| {
            Ok(Some(guest.call_call_set(store, whole)?).filter(|&handle| handle != 0))
        };
        let handle = self.run_or_taken(handle)?;
        self.required(handle)
    }

    pub fn next_row(&mut self, iterator: u32) -> Result<Option<Vec<u8>>, GuestError> {
        self.run_exchanging(|guest, store| guest.call_next_row(store, iterator))
    }

    pub fn next_rows(&mut self, iterator: u32) -> Result<Option<Vec<u8>>, GuestError> {
        self.run_exchanging(|guest, store| guest.call_next_rows(store, iterator))
    }

    pub fn next_plain(&mut self, iterator: u32) -> Result<Option<Vec<u8>>, GuestError> {
        self.run_exchanging(|guest, store| guest.call_next_plain(store, iterator))
    }

    pub fn close_sets(&mut self, iterators: &[u32]) -> Result<(), GuestError> {
        self.run(|guest, store| guest.call_close_sets(store, iterators).map(Ok))
    }

    pub fn run_inline(&mut self, body: &str) -> Result<(), GuestError> {
        self.run(|guest, store| guest.call_run_inline(store, body))
    }

    /// The largest linear memory this interpreter has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak
    }

    /// Which interpreter this is: a number never given to another one in this backend.
    pub fn generation(&self) -> u64 {
        self.store.data().generation
    }

    /// The guest trapped: the interpreter must be dropped.
    pub fn trapped(&self) -> bool {
        self.store.data().trapped.is_some()
    }

    /// Output written since the last call to this method.
    /// Bounds what this use may write (`plpywasm.max_output`, read anew for each use).
    pub fn limit_output(&mut self, budget: usize) {
        self.store.data_mut().output.set_budget(budget);
    }

    pub fn take_output(&mut self) -> Output {
        self.store.data_mut().output.take()
    }

    /// How much of the WebAssembly stack the calls running in this interpreter left: a nested call
    /// shares what the outermost one was given.
    pub fn stack_room(&self) -> usize {
        let state = self.store.data();
        if state.entered == 0 {
            return plpywasm_engine::MAX_WASM_STACK;
        }
        let used = state.entry_stack.saturating_sub(stack_address());
        plpywasm_engine::MAX_WASM_STACK.saturating_sub(used)
    }

    /// What a per-call export gave, which it must give unless it raised: a guest whose runtime was
    /// tampered with gives none, and is discarded.
    fn required<T>(&mut self, given: Option<T>) -> Result<T, GuestError> {
        given.ok_or_else(|| {
            let kind = TrapKind::Other("the guest returned no result".into());
            self.store.data_mut().trapped = Some(kind.clone());
            GuestError::Trap(kind)
        })
    }

    /// Puts a per-call export's input where the guest takes it (see `exchange`), or stages it in
    /// parts (see the WIT's `begin-stage`).
    fn put(&mut self, input: &[u8]) -> Result<(), GuestError> {
        if self.store.data().exchange.and_then(|exchange| exchange.put(input)).is_none() {
            self.run(|guest, store| guest.call_begin_stage(store, input.len() as u64))?;
            for part in input.chunks(PART) {
                self.run(|guest, store| guest.call_stage(store, part).map(Ok))?;
            }
        }
        Ok(())
    }

    /// Runs a per-call export that puts its output in the exchange (none instead of raising, see
    /// [`Self::run_or_taken`]).
    fn run_exchanging(
        &mut self,
        f: impl FnOnce(&GuestExports, &mut StoreContextMut<'a, HostState>) -> wasmtime::Result<()>,
    ) -> Result<Option<Vec<u8>>, GuestError> {
        self.run_or_taken(|guest, store| {
            f(guest, store)?;
            let Some(exchange) = store.data().exchange else { return Ok(None) };
            let output = match exchange.output() {
                Ok(output) => output,
                Err(Beyond) => {
                    // In memory grown since it was last probed.
                    let Some(probe) = store.data().probe.clone() else { return Ok(None) };
                    let exchange = exchange.grown(probe.memory(&mut *store)?);
                    store.data_mut().exchange = Some(exchange);
                    exchange.output().map_err(|Beyond| wasmtime::Error::msg("the guest's output lies outside its memory"))?
                }
            };
            Ok(output.filter(|output| !output.is_empty()))
        })
    }

    /// Runs a per-call export, which returns nothing (`f` gives None) instead of raising (see the
    /// WIT): then `take-error` tells what it raised, or none at the end of a set.
    fn run_or_taken<T>(
        &mut self,
        f: impl FnOnce(&GuestExports, &mut StoreContextMut<'a, HostState>) -> wasmtime::Result<Option<T>>,
    ) -> Result<Option<T>, GuestError> {
        self.run(|guest, store| match f(guest, store)? {
            Some(value) => Ok(Ok(Some(value))),
            None => Ok(guest.call_take_error(store)?.map_or(Ok(None), Err)),
        })
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&GuestExports, &mut StoreContextMut<'a, HostState>) -> wasmtime::Result<Result<T, PythonError>>,
    ) -> Result<T, GuestError> {
        let state = self.store.data_mut();
        if let Some(kind) = &state.trapped {
            return Err(GuestError::Trap(kind.clone()));
        }
        let (Some(exports), ticker) = (state.exports.clone(), state.ticker) else {
            return Err(GuestError::Trap(TrapKind::Other("the guest has not been instantiated".into())));
        };
        let outermost = state.entered == 0;
        state.entered += 1;
        let mut grown_before = 0;
        if outermost {
            if let Some(stop) = state.stop {
                ticker.lower(stop);
            }
            state.entry_stack = stack_address();
            let limiter = &mut state.limiter;
            grown_before = limiter.grown();
            limiter.refused = false;
            limiter.running = limiter.nested;
        }
        let _running = ticker.running();
        let result = f(&exports, &mut self.store);
        let state = self.store.data_mut();
        state.entered -= 1;
        // A reply the guest did not take in full is not kept after the call (see `lending`); a
        // call nested in it (a query it ran) leaves the caller's alone.
        if outermost {
            state.reply = None;
        }
        let limiter = &mut state.limiter;
        if outermost && limiter.running {
            limiter.running = false;
            let grown = limiter.grown() - grown_before;
            NESTED_GROWTH.with(|growth| growth.set(growth.get().saturating_sub(grown)));
        }
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(GuestError::Python(error)),
            Err(err) => {
                // A call nested in this one that trapped ends this one too, and says why.
                let kind = match state.trapped.clone() {
                    Some(kind) => kind,
                    None => trap(err, state.limiter.near_limit(), state.stop.is_some_and(StopFlag::is_raised)),
                };
                state.trapped = Some(kind.clone());
                Err(GuestError::Trap(kind))
            }
        }
    }
}

/// Roughly where the native stack is now.
#[inline(never)]
pub fn stack_address() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

/// What a trap means. A guest that aborts with its memory at the limit ran out of it: CPython and
/// its bindings abort (an `unreachable` trap) when an allocation fails where they cannot raise.
/// A stop check traps with `unreachable` too, once the flag is raised.
fn trap(err: wasmtime::Error, memory_exhausted: bool, stop_raised: bool) -> TrapKind {
    // An exit is what the code asked for, whatever its memory (which never shrinks) reached earlier.
    if err.downcast_ref::<wasmtime_wasi::I32Exit>().is_some() {
        // WASI keeps only success or failure of os._exit's status: not worth reporting.
        return TrapKind::Other("The Python code exited the interpreter (os._exit).".into());
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::Interrupted,
        Some(Trap::UnreachableCodeReached) if stop_raised => TrapKind::Interrupted,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(Trap::AllocationTooLarge) => TrapKind::OutOfMemory,
        _ if memory_exhausted => TrapKind::OutOfMemory,
        Some(trap) => TrapKind::Other(trap.to_string()),
        None => TrapKind::Other(err.root_cause().to_string()),
    }
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
