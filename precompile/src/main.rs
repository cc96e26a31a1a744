//! Compiles the guest component to native code: `plpywasm-precompile <guest.wasm> <out.cwasm>`.

use std::process::ExitCode;

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
    let engine = wasmtime::Engine::new(&plpywasm_engine::config())?;
    let wasm = std::fs::read(input)?;
    let compiled = engine.precompile_component(&wasm)?;
    std::fs::write(output, compiled)?;
    Ok(())
}
