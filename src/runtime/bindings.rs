//! Typed host bindings generated from the WIT contract.

wasmtime::component::bindgen!({
    path: "wit/plpywasm.wit",
    world: "plpywasm",
    // A canceled query stops the guest, as a cancel does in running Python.
    imports: {
        "plpywasm:runtime/host.sleep": trappable,
        "plpywasm:runtime/host.execute": trappable,
        "plpywasm:runtime/host.prepare": trappable,
        "plpywasm:runtime/host.execute-plan": trappable,
        "plpywasm:runtime/host.open-cursor": trappable,
        "plpywasm:runtime/host.fetch": trappable,
        "plpywasm:runtime/host.transaction": trappable,
    },
    // Shapes are compared to tell whether a polymorphic result needs a `reshape`.
    additional_derives: [PartialEq],
});

pub use exports::plpywasm::runtime::guest::{Guest as GuestExports, Node, PythonError, Shape};
pub use plpywasm::runtime::types::{DbError, Interval, Rows, TextArg, Zoned};
pub use plpywasm::runtime::host::{Plan, TransactionStep};
pub use plpywasm::runtime::{host, types};
