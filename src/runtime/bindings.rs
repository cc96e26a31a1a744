//! Typed host bindings generated from the WIT contract.

wasmtime::component::bindgen!({
    path: "wit/plpywasm.wit",
    world: "plpywasm",
    // A cancel stops the guest while it sleeps, as it does running Python. (The `database`
    // interface is defined by hand: see `lending`.)
    imports: {
        "plpywasm:runtime/host.sleep": trappable,
        "plpywasm:runtime/host.report": trappable,
    },
    // Shapes are compared to tell whether a polymorphic result needs a `reshape`.
    additional_derives: [PartialEq],
});

pub use exports::plpywasm::runtime::guest::{Guest as GuestExports, Node, PythonError, Shape};
pub use plpywasm::runtime::types::{DbError, Decoding, Interval, Rows, Zoned};
pub use plpywasm::runtime::database::{Cursor, Plan, TransactionStep};
pub use plpywasm::runtime::{host, types};

/// Interface names as the component spells them, the WIT package's version included: for the
/// interfaces linked or called by hand.
pub const DATABASE_INTERFACE: &str = "plpywasm:runtime/database@0.22.0";
pub const GUEST_INTERFACE: &str = "plpywasm:runtime/guest@0.22.0";
