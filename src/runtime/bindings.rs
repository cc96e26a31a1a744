//! Typed host bindings generated from the WIT contract.

wasmtime::component::bindgen!({
    path: "wit/plpywasm.wit",
    world: "plpywasm",
    imports: { "plpywasm:runtime/host.sleep": trappable },
});

pub use exports::plpywasm::runtime::guest::{PythonError, ResultKind, Value};
pub use plpywasm::runtime::{host, types};
