//! The guest's queries, and the plpywasm calls they nest, run in the interpreter already running.
//!
//! A query the guest runs (`plpy.execute` and the like) may call plpywasm functions. PL/Python
//! runs those in the caller's interpreter, so that they share `GD`, and so do we: while such a host
//! call runs, its store is lent here, and a call of the same role borrows it and enters the guest
//! again. wasmtime allows that of a store that has not trapped, and componentize-py keeps each
//! export call's state on the native stack. A nested call that traps ends the calls it is nested
//! in: their guest frames are in the same broken instance.

use std::cell::RefCell;

use wasmtime::component::Linker;
use wasmtime::{AsContextMut, StoreContextMut, Trap};

use super::bindings::{DbError, Rows, TransactionStep, DATABASE_INTERFACE};
use super::interpreter::{Guest, HostState, TrapKind, PART};
use super::{Canceled, Database};

struct Loan {
    owner: u32,
    generation: u64,
    store: *mut StoreContextMut<'static, HostState>,
    borrowed: bool,
}

thread_local! {
    /// The stores lent by the host calls running now, innermost last.
    static LOANS: RefCell<Vec<Loan>> = const { RefCell::new(Vec::new()) };
}

/// Defines the `database` interface: whatever may run SQL runs with the store lent (freeing a plan
/// runs none).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut database = linker.instance(DATABASE_INTERFACE)?;
    database.func_wrap("execute", |mut store, (query, limit): (String, u64)| {
        serve(&mut store, |db| db.execute(&query, limit)).map(|rows| (in_parts(&mut store, rows),))
    })?;
    // Plans and cursors belong to the interpreter that made them: another may not use them, even
    // by calling these imports itself with their handles.
    database.func_wrap("prepare", |mut store, (query, types): (String, Option<Vec<String>>)| {
        let interpreter = store.data().generation;
        let types = types.unwrap_or_default();
        serve(&mut store, |db| db.prepare(interpreter, &query, &types)).map(|plan| (plan,))
    })?;
    database.func_wrap("execute-plan", |mut store, (plan, params, limit): (u32, String, u64)| {
        let interpreter = store.data().generation;
        let params = latin1(&params)?;
        serve(&mut store, |db| db.execute_plan(interpreter, plan, &params, limit)).map(|rows| (in_parts(&mut store, rows),))
    })?;
    database.func_wrap("free-plan", |store, (plan,): (u32,)| {
        store.data().database.free_plan(store.data().generation, plan);
        Ok(())
    })?;
    database.func_wrap("open-cursor", |mut store, (query, plan, params): (String, Option<u32>, String)| {
        let interpreter = store.data().generation;
        let params = latin1(&params)?;
        serve(&mut store, |db| db.open_cursor(interpreter, &query, plan, &params)).map(|cursor| (cursor,))
    })?;
    database.func_wrap("fetch", |mut store, (cursor, count, ahead, described): (u32, i64, bool, bool)| {
        let interpreter = store.data().generation;
        serve(&mut store, |db| db.fetch(interpreter, cursor, count, ahead, described)).map(|rows| (in_parts(&mut store, rows),))
    })?;
    database.func_wrap("close-cursor", |mut store, (cursor,): (u32,)| {
        let interpreter = store.data().generation;
        serve(&mut store, |db| db.close_cursor(interpreter, cursor)).map(|done| (done,))
    })?;
    database.func_wrap("transaction", |mut store, (step,): (TransactionStep,)| {
        serve(&mut store, |db| db.transaction(step)).map(|done| (done,))
    })?;
    database.func_wrap("next-part", |mut store, (keep,): (bool,)| {
        let state = store.data_mut();
        let part = match state.reply.as_mut() {
            Some((rows, taken)) if keep && *taken < rows.len() => {
                let part = rows[*taken..rows.len().min(*taken + PART)].to_vec();
                *taken += part.len();
                Some(part)
            }
            _ => None,
        };
        if part.is_none() {
            state.reply = None;
        }
        Ok((part,))
    })?;
    Ok(())
}

/// A reply as it crosses (see the WIT's `rows`): one too large to cross whole is kept for
/// `next-part`, and a zero byte and its length go instead.
fn in_parts(store: &mut StoreContextMut<'_, HostState>, rows: Result<Rows, DbError>) -> Result<Rows, DbError> {
    rows.map(|rows| {
        if rows.len() <= PART {
            return rows;
        }
        let marker = [&[0u8][..], &(rows.len() as u64).to_le_bytes()].concat();
        store.data_mut().reply = Some((rows, 0));
        marker
    })
}

/// The bytes a string of the WIT carries as characters (see `execute-plan`).
fn latin1(text: &str) -> wasmtime::Result<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(c).map_err(|_| wasmtime::Error::msg("parameters not Latin-1")))
        .collect()
}

/// Runs `query` with `store` lent to the calls it nests. A canceled query, or a nested call that
/// trapped, stops the guest.
fn serve<R>(
    store: &mut StoreContextMut<'_, HostState>,
    query: impl FnOnce(&'static dyn Database) -> Result<R, Canceled>,
) -> wasmtime::Result<R> {
    let database = store.data().database;
    // A PostgreSQL error that no query caught goes on unwinding to the host's caller, through
    // the guest's frames: the interpreter they belong to is broken, as by a trap.
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lend(store, || query(database)))) {
        Ok(result) => result,
        Err(panic) => {
            store.data_mut().trapped.get_or_insert(TrapKind::Other("a database error ended the call".into()));
            std::panic::resume_unwind(panic)
        }
    };
    if store.data().trapped.is_some() {
        return Err(Trap::Interrupt.into());
    }
    if result.is_ok() {
        store.data().lower_stale_stop();
    }
    result.map_err(|Canceled| Trap::Interrupt.into())
}

fn lend<R>(store: &mut StoreContextMut<'_, HostState>, f: impl FnOnce() -> R) -> R {
    struct Return;
    impl Drop for Return {
        fn drop(&mut self) {
            LOANS.with(|loans| loans.borrow_mut().pop());
        }
    }
    let loan = Loan {
        owner: store.data().owner,
        generation: store.data().generation,
        store: (store as *mut StoreContextMut<'_, HostState>).cast(),
        borrowed: false,
    };
    LOANS.with(|loans| loans.borrow_mut().push(loan));
    let _return = Return;
    f()
}

/// Whether any interpreter is running further up the stack, in a query of its own.
pub fn lending() -> bool {
    LOANS.with(|loans| !loans.borrow().is_empty())
}

/// Whether the interpreter `generation` is running further up the stack, in a query of its own.
pub fn is_lent(generation: u64) -> bool {
    LOANS.with(|loans| loans.borrow().iter().any(|loan| loan.generation == generation))
}

/// A lent store, used by a nested call until dropped.
pub struct Borrowed {
    index: usize,
}

impl Borrowed {
    /// The running interpreter of `owner` that the innermost lent store is, unless a nested call
    /// already uses it (a nested call converting its result may call plpywasm functions, outside
    /// any query of its guest).
    pub fn find(owner: u32) -> Option<Borrowed> {
        LOANS.with(|loans| {
            let mut loans = loans.borrow_mut();
            let index = loans.iter().rposition(|loan| loan.owner == owner)?;
            let loan = &mut loans[index];
            if loan.borrowed {
                return None;
            }
            loan.borrowed = true;
            Some(Borrowed { index })
        })
    }

    pub fn guest(&mut self) -> Guest<'_> {
        let store = LOANS.with(|loans| loans.borrow()[self.index].store);
        // SAFETY: the loan outlives `self`: its lender's frame is below ours on the stack and ends
        // its loan only once the query that runs us has returned. Nothing else uses the store
        // meanwhile: the lender waits for its query, and `borrowed` keeps other nested calls out.
        Guest::new(unsafe { (*store).as_context_mut() })
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        LOANS.with(|loans| {
            if let Some(loan) = loans.borrow_mut().get_mut(self.index) {
                loan.borrowed = false;
            }
        });
    }
}
