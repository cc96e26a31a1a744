//! plpywasm: a trusted PostgreSQL procedural language whose functions are Python, run by CPython
//! compiled to WebAssembly inside wasmtime.
//!
//! A call flows one way: `handler` (fmgr entry points) → `procedure` (what the function is) →
//! `exec` (one call) → `convert` (Datums to guest values) → `interpreters` / `runtime` (the guest) →
//! `convert` → Datum. What the guest asks of the database goes through `spi`. Errors flow back up
//! to `handler`, which raises them through `error`.

use pgrx::prelude::*;

mod convert;
mod error;
mod exec;
mod gucs;
mod handler;
mod identity;
mod idmap;
mod interpreters;
mod procedure;
mod runtime;
mod spi;
mod stats;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
extern "C-unwind" fn _PG_init() {
    // pgrx attaches a Rust backtrace to re-raised errors when RUST_BACKTRACE is set in the server's
    // environment; users must see PostgreSQL's message, not our stack. No thread exists yet here.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    gucs::register();
    identity::register();
    exec::register();
}

extension_sql!(
    r#"
CREATE FUNCTION plpywasm_call_handler() RETURNS language_handler
    LANGUAGE c AS 'MODULE_PATHNAME', 'plpywasm_call_handler';
CREATE FUNCTION plpywasm_inline_handler(internal) RETURNS void
    STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'plpywasm_inline_handler';
CREATE FUNCTION plpywasm_validator(oid) RETURNS void
    STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'plpywasm_validator';
CREATE TRUSTED LANGUAGE plpywasm
    HANDLER plpywasm_call_handler
    INLINE plpywasm_inline_handler
    VALIDATOR plpywasm_validator;
COMMENT ON LANGUAGE plpywasm IS 'PL/plpywasm: Python in a WebAssembly sandbox';
-- Accepted so that functions ported from PL/Python with `TRANSFORM FOR TYPE jsonb` create; jsonb
-- becomes Python objects with or without it, and these functions are never called.
CREATE FUNCTION plpywasm_jsonb_from_sql(internal) RETURNS internal
    STRICT IMMUTABLE LANGUAGE c AS 'MODULE_PATHNAME', 'plpywasm_jsonb_transform';
CREATE FUNCTION plpywasm_jsonb_to_sql(internal) RETURNS jsonb
    STRICT IMMUTABLE LANGUAGE c AS 'MODULE_PATHNAME', 'plpywasm_jsonb_transform';
CREATE TRANSFORM FOR jsonb LANGUAGE plpywasm (
    FROM SQL WITH FUNCTION plpywasm_jsonb_from_sql(internal),
    TO SQL WITH FUNCTION plpywasm_jsonb_to_sql(internal)
);
"#,
    name = "language",
);
