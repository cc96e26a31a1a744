//! wasi:io/poll's blocking calls, made to notice a cancel. Python's `select`, `selectors` and
//! asyncio's event loop, and sleeps in C code, wait there; wasmtime-wasi's own implementation holds
//! the backend until the wait ends (`select.select([], [], [], 1e9)` would outlast
//! pg_terminate_backend). These waits stop the guest within a tick of a cancel, as running code
//! and `time.sleep` do.

use std::future::Future;

use wasmtime::component::{Linker, Resource};
use wasmtime::Trap;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};

use super::interpreter::HostState;
use super::ticker::TICK;

/// The wasi:io/poll version wasmtime-wasi's linker defines (the guest's 0.2.x imports resolve to it).
const POLL_INTERFACE: &str = "wasi:io/poll@0.2.12";

/// Replaces the `poll` and `pollable.block` that wasmtime-wasi added to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL_INTERFACE)?;
    poll.func_wrap("poll", |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
        let (table, should_stop) = store.data_mut().poll_parts();
        if pollables.is_empty() {
            // Waiting for nothing (`select.select([], [], [])`, a deadlocked asyncio loop) waits
            // forever, as it would natively: until a cancel.
            return interruptible(should_stop, std::future::pending());
        }
        Ok((interruptible(should_stop, table.poll(pollables))??,))
    })?;
    poll.func_wrap("[method]pollable.block", |mut store, (pollable,): (Resource<DynPollable>,)| {
        let (table, should_stop) = store.data_mut().poll_parts();
        interruptible(should_stop, table.block(pollable))?
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Waits for `wait`, checking every tick whether the backend wants the guest stopped.
fn interruptible<F: Future>(should_stop: fn() -> bool, wait: F) -> wasmtime::Result<F::Output> {
    wasmtime_wasi::runtime::in_tokio(async move {
        let mut wait = std::pin::pin!(wait);
        loop {
            if let Ok(output) = tokio::time::timeout(TICK, wait.as_mut()).await {
                return Ok(output);
            }
            if should_stop() {
                return Err(Trap::Interrupt.into());
            }
        }
    })
}
