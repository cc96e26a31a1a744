//! The WebAssembly side of plpywasm: the engine, the precompiled guest, interpreters and their limits.
//!
//! Nothing here calls PostgreSQL. What the runtime needs from the backend (is a cancel pending?) comes
//! in through [`Limits`], and what the guest asks of the database goes out through [`Database`], so
//! this module can be read, and reasoned about, on its own.

mod bindings;
mod exchange;
mod interpreter;
mod lending;
mod memory;
mod output;
mod poll;
mod stop;
mod ticker;

use std::path::Path;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

pub use bindings::{Cursor, DbError, Decoding, Interval, Node, Plan, PythonError, Rows, Shape, TransactionStep, Zoned};
pub use interpreter::{stack_address, Guest, GuestError, Interpreter, Limits, TrapKind};
pub use lending::{is_lent, lending, Borrowed};
pub use output::Output;

use bindings::PlpywasmPre;
use interpreter::HostState;
use ticker::Ticker;

/// What the guest's `plpy` asks of the database, served on the backend's thread while the guest
/// waits. Implementations catch every PostgreSQL error: nothing may unwind into the guest.
pub trait Database: Sync {
    /// plpy.debug … plpy.warning.
    fn report(
        &self,
        level: u8,
        message: &str,
        detail: Option<&str>,
        hint: Option<&str>,
        sqlstate: Option<&str>,
        fields: Vec<(String, String)>,
    ) -> Result<Result<(), DbError>, Canceled>;
    /// plpy.execute; `Err` when the query was canceled, which stops the guest.
    fn execute(&self, query: &str, limit: u64) -> Result<Result<Rows, DbError>, Canceled>;
    /// plpy.prepare, for the interpreter `interpreter` (a generation): plans and cursors are
    /// only used by the interpreter that made them.
    fn prepare(&self, interpreter: u64, query: &str, types: &[String]) -> Result<Result<Plan, DbError>, Canceled>;
    /// plan.execute.
    fn execute_plan(&self, interpreter: u64, plan: u32, params: &[u8], limit: u64) -> Result<Result<Rows, DbError>, Canceled>;
    fn free_plan(&self, interpreter: u64, plan: u32);
    /// plpy.cursor, over a query or a prepared statement.
    fn open_cursor(&self, interpreter: u64, query: &str, plan: Option<u32>, params: &[u8]) -> Result<Result<Cursor, DbError>, Canceled>;
    /// A cursor's next rows; a negative `count` fetches backward. `ahead`: for iteration reading
    /// ahead, `described` (see the WIT's `fetch`).
    fn fetch(&self, interpreter: u64, cursor: u32, count: i64, ahead: bool, described: bool) -> Result<Result<Rows, DbError>, Canceled>;
    fn close_cursor(&self, interpreter: u64, cursor: u32) -> Result<Result<(), DbError>, Canceled>;
    /// plpy.subtransaction(), plpy.commit(), plpy.rollback().
    fn transaction(&self, step: TransactionStep) -> Result<Result<(), DbError>, Canceled>;
    /// plpy.quote_ident.
    fn quote_ident(&self, name: &str) -> String;
    /// Whether the guest is closing a set its query stopped reading (see `spi::without_queries`):
    /// what it prints then is for the server's log only.
    fn closing(&self) -> bool;
}

/// A query the backend was asked to cancel (or to end): the guest stops, as in running code.
#[derive(Debug)]
pub struct Canceled;

/// The compiled guest and everything needed to instantiate it, built once per backend.
pub struct Runtime {
    engine: Engine,
    pre: PlpywasmPre<HostState>,
    /// One per backend, which keeps its runtime to the end.
    ticker: &'static Ticker,
}

/// Why the precompiled guest could not be loaded.
#[derive(Debug)]
pub struct LoadError {
    pub message: String,
    pub hint: &'static str,
}

const REBUILD_HINT: &str = "Rebuild and reinstall the extension and its guest with `just install`.";

impl Runtime {
    /// Maps the precompiled guest from `path` and links it; nothing is compiled here.
    pub fn load(path: &Path) -> Result<Runtime, LoadError> {
        let engine = Engine::new(&plpywasm_engine::config()).map_err(|err| LoadError {
            message: format!("could not configure the WebAssembly engine: {err:#}"),
            hint: REBUILD_HINT,
        })?;
        if !path.exists() {
            return Err(LoadError {
                message: format!("the plpywasm guest is not installed: {} does not exist", path.display()),
                hint: REBUILD_HINT,
            });
        }
        // SAFETY: the artifact is produced by plpywasm-precompile from our own guest and installed by
        // the same `just install` as this library; wasmtime checks its version and configuration.
        let component = unsafe { Component::deserialize_file(&engine, path) }.map_err(|err| LoadError {
            message: format!(
                "the plpywasm guest at {} does not match this build of the extension: {err:#}",
                path.display()
            ),
            hint: REBUILD_HINT,
        })?;
        let link = || -> wasmtime::Result<PlpywasmPre<HostState>> {
            let mut linker = Linker::<HostState>::new(&engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
            poll::add_to_linker(&mut linker)?;
            bindings::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
            bindings::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
            lending::add_to_linker(&mut linker)?;
            PlpywasmPre::new(linker.instantiate_pre(&component)?)
        };
        let pre = link().map_err(|err| LoadError {
            message: format!("could not link the plpywasm guest: {err:#}"),
            hint: REBUILD_HINT,
        })?;
        let ticker = Ticker::start().map_err(|err| LoadError {
            message: format!("could not start the plpywasm ticker thread: {err}"),
            hint: "The server may be out of threads or memory.",
        })?;
        // wasmtime-wasi serves some WASI calls from a Tokio runtime with worker threads, started on
        // first use. Start it now, with every signal blocked, so that its threads inherit that mask
        // and PostgreSQL's signals keep going to the backend's own thread.
        ticker::with_signals_blocked(|| wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| ()));
        Ok(Runtime { engine, pre, ticker: Box::leak(Box::new(ticker)) })
    }

    /// A fresh interpreter from the guest's pre-initialised snapshot, for `owner` (who may borrow
    /// it while it is lent: see [`Borrowed`]).
    pub fn instantiate(&self, limits: Limits, owner: u32) -> Result<Interpreter, GuestError> {
        Interpreter::new(&self.engine, &self.pre, self.ticker, limits, owner)
    }
}
