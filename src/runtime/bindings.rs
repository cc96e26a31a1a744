//! Typed host bindings generated from the WIT contract.

wasmtime::component::bindgen!({
    path: "wit/plpywasm.wit",
    world: "plpywasm",
    imports: { "plpywasm:runtime/host.sleep": trappable },
    // Shapes are compared to tell whether a polymorphic result needs a `reshape`.
    additional_derives: [PartialEq],
});

pub use exports::plpywasm::runtime::guest::{Node, PythonError, Shape};
pub use plpywasm::runtime::types::{Interval, Zoned};
pub use plpywasm::runtime::{host, types};
