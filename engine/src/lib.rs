//! The one wasmtime configuration of plpywasm.
//!
//! The guest is compiled ahead of time by `plpywasm-precompile` and loaded by the extension, which
//! carries no compiler. wasmtime only accepts a precompiled artifact from an engine configured the same
//! way, so both sides take their configuration from here.

use wasmtime::Config;

/// File name of the precompiled guest, installed in PostgreSQL's `$libdir` beside the extension.
pub const GUEST_ARTIFACT: &str = "plpywasm_guest.cwasm";

/// Address in the guest's linear memory of the word that stops it: `plpywasm-precompile` makes every
/// function entry and loop head of the guest trap (`unreachable`) once the host makes it non-zero.
/// It lies at the bottom of the guest's 1 MB shadow stack, which grows down towards it and reaches
/// it only in its last 16 bytes; no data is placed there (the precompiler checks).
///
/// This replaces wasmtime's epoch interruption, whose check at every loop head kept two values live
/// across CPython's whole eval loop: 14% more instructions on recursive calls, 23% on a `while`
/// loop. This check costs 2% and 4%.
pub const STOP_FLAG: u32 = 16;

/// Largest native stack the guest may use before it traps. The guest runs on the backend's own
/// stack, so this stays well inside PostgreSQL's default 8 MB thread stack.
pub const MAX_WASM_STACK: usize = 2 << 20;

pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Cancellation is the guest's own check of `STOP_FLAG`, which the host writes while the guest
    // runs: the memory must stay where it was mapped (it does anyway, in its 4 GB reservation).
    config.memory_may_move(false);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Cranelift inlines small functions within and across the guest's modules (CPython's helpers,
    // the bindings' glue): about a tenth off pure-Python compute.
    config.compiler_inlining(wasmtime::Inlining::Yes);
    // Instances map the snapshot's memory image copy-on-write: ~1 ms instead of copying ~30 MB.
    config.memory_init_cow(true);
    // Function tables filled at instantiation, so that an indirect call (CPython makes one for
    // every type slot it uses) does not first check whether its entry is there yet.
    config.table_lazy_init(false);
    // `PLPYWASM_PERFMAP=1` in the server's environment names the guest's functions for `perf`.
    if std::env::var_os("PLPYWASM_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}
