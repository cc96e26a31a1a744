//! `plpywasm.stats`: what this backend's plpywasm functions have cost, per function and role.

use std::cell::RefCell;
use std::time::Duration;

use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

use crate::idmap::{self, IdMap};

/// One function's uses by one role (function 0: `DO` blocks and validation).
#[derive(Default, Clone, Copy)]
struct Counters {
    calls: i64,
    guest_time: Duration,
    peak_memory: usize,
    traps: i64,
    cancellations: i64,
}

/// How one use of the guest ended, for the counters.
pub struct Outcome {
    pub elapsed: Duration,
    pub peak_memory: usize,
    pub trapped: bool,
    pub canceled: bool,
}

thread_local! {
    static FUNCTIONS: RefCell<IdMap<(Oid, Oid), Counters>> = const { RefCell::new(idmap::new()) };
    static CREATIONS: RefCell<IdMap<Oid, i64>> = const { RefCell::new(idmap::new()) };
}

pub fn record(function: Oid, role: Oid, outcome: Outcome) {
    FUNCTIONS.with(|functions| {
        let mut functions = functions.borrow_mut();
        let counters = functions.entry((function, role)).or_default();
        counters.calls += 1;
        counters.guest_time += outcome.elapsed;
        counters.peak_memory = counters.peak_memory.max(outcome.peak_memory);
        counters.traps += (outcome.trapped && !outcome.canceled) as i64;
        counters.cancellations += outcome.canceled as i64;
    });
}

/// An interpreter was created (first use, or after the last one was discarded) for `role`.
pub fn interpreter_created(role: Oid) {
    CREATIONS.with(|creations| *creations.borrow_mut().entry(role).or_default() += 1);
}

/// The counters of this backend; the `plpywasm.stats` view shows them with names.
#[pg_extern(name = "plpywasm_stats")]
fn stats() -> TableIterator<
    'static,
    (
        name!(function, Oid),
        name!(role, Oid),
        name!(calls, i64),
        name!(guest_time_ms, f64),
        name!(peak_memory_bytes, i64),
        name!(traps, i64),
        name!(cancellations, i64),
        name!(interpreters_created, i64),
    ),
> {
    let creations = CREATIONS.with(|c| c.borrow().clone());
    let mut rows: Vec<_> = FUNCTIONS.with(|f| f.borrow().iter().map(|(&key, &counters)| (key, counters)).collect());
    rows.sort_by_key(|((function, role), _)| (function.to_u32(), role.to_u32()));
    TableIterator::new(rows.into_iter().map(move |((function, role), c)| {
        (
            function,
            role,
            c.calls,
            c.guest_time.as_secs_f64() * 1000.0,
            c.peak_memory as i64,
            c.traps,
            c.cancellations,
            creations.get(&role).copied().unwrap_or(0),
        )
    }))
}

extension_sql!(
    r#"
CREATE SCHEMA plpywasm;
COMMENT ON SCHEMA plpywasm IS 'PL/plpywasm: operator views';
CREATE VIEW plpywasm.stats AS
    SELECT s.function::regprocedure AS function, s.role::regrole AS role, s.calls, s.guest_time_ms,
           s.peak_memory_bytes, s.traps, s.cancellations, s.interpreters_created
    FROM plpywasm_stats() AS s;
COMMENT ON VIEW plpywasm.stats IS 'This backend''s plpywasm uses per function and role; function NULL is DO blocks and validation';
GRANT USAGE ON SCHEMA plpywasm TO PUBLIC;
GRANT SELECT ON plpywasm.stats TO PUBLIC;
"#,
    name = "stats_view",
    requires = [stats],
);
