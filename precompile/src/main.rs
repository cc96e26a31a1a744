//! Compiles the guest component to native code: `plpywasm-precompile <guest.wasm> <out.cwasm>`.
//! The guest's constant globals are folded into its code first (see `constant_globals`), then it
//! gets its stop checks (see `stop_checks`).

use std::process::ExitCode;

mod constant_globals;
mod stop_checks;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: plpywasm-precompile <guest.wasm> <out.cwasm>");
        return ExitCode::from(2);
    };
    match precompile(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("plpywasm-precompile: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn precompile(input: &str, output: &str) -> wasmtime::Result<()> {
    let mut config = plpywasm_engine::config();
    // `PLPYWASM_BASELINE_CPU=1` compiles for any x86-64 rather than this CPU: slower code, but
    // code valgrind can run (to count instructions with callgrind).
    if std::env::var_os("PLPYWASM_BASELINE_CPU").is_some_and(|v| v == "1") {
        config.target(&format!("{}-unknown-linux-gnu", std::env::consts::ARCH))?;
    }
    let engine = wasmtime::Engine::new(&config)?;
    let wasm = std::fs::read(input)?;
    let folded = constant_globals::fold(&wasm).map_err(wasmtime::Error::msg)?;
    eprintln!("plpywasm-precompile: {} reads of constant globals folded", folded.folds);
    let checked = stop_checks::add(&folded.wasm, plpywasm_engine::STOP_FLAG).map_err(wasmtime::Error::msg)?;
    eprintln!("plpywasm-precompile: {} stop checks added", checked.checks);
    let compiled = engine.precompile_component(&checked.wasm)?;
    std::fs::write(output, compiled)?;
    Ok(())
}
