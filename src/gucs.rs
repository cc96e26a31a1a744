//! Settings. Limits protect the server, so only superusers may change them.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static MEMORY_LIMIT_MB: GucSetting<i32> = GucSetting::<i32>::new(256);
pub static MAX_OUTPUT_KB: GucSetting<i32> = GucSetting::<i32>::new(1024);
pub static MAX_INTERPRETERS: GucSetting<i32> = GucSetting::<i32>::new(32);

pub fn register() {
    GucRegistry::define_int_guc(
        c"plpywasm.memory_limit",
        c"Largest memory, in megabytes, one Python interpreter may use.",
        c"Applies to interpreters created after the change. Exceeding it raises MemoryError in Python.",
        &MEMORY_LIMIT_MB,
        // The interpreter starts with about 25 MB.
        32,
        4096,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"plpywasm.max_interpreters",
        c"Most idle Python interpreters one backend keeps (one per role whose functions run).",
        c"Beyond it, the least recently used one is dropped, with its GD and module state.",
        &MAX_INTERPRETERS,
        1,
        10000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"plpywasm.max_output",
        c"Most output, in kilobytes, one call may print to stdout and stderr.",
        c"Output beyond this is dropped, with a warning saying how much.",
        &MAX_OUTPUT_KB,
        0,
        1 << 20,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    // A misspelt `plpywasm.` setting is an error, as plpgsql's are, not a placeholder that leaves
    // the limit an operator meant to lower as it was.
    // SAFETY: a static C string; called once, from _PG_init.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"plpywasm".as_ptr()) };
}

pub fn memory_limit_bytes() -> usize {
    MEMORY_LIMIT_MB.get() as usize * 1024 * 1024
}

pub fn max_interpreters() -> usize {
    MAX_INTERPRETERS.get() as usize
}

pub fn max_output_bytes() -> usize {
    MAX_OUTPUT_KB.get() as usize * 1024
}
