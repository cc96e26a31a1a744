//! The guest's stop flag: a word in its linear memory that every function entry and loop head of
//! the guest checks (`plpywasm-precompile` adds the checks), raised by the ticker thread.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::memory::GuestMemory;

/// An interpreter's stop flag. It points into the interpreter's memory, so it is valid as long as
/// the interpreter's store lives: the ticker only touches it while the interpreter is watched,
/// which it stops being before its store is dropped.
#[derive(Clone, Copy)]
pub struct StopFlag(NonNull<AtomicU32>);

/// What the host writes to raise the flag. The guest's checks trap on any other value too, but only
/// this one means a stop: a guest whose failed allocation (a null pointer) led its runtime to write
/// over the bottom of memory traps there as well, and is out of memory, not canceled.
const RAISED: u32 = 0x5354_4f50;

// SAFETY: the flag is an atomic word; see the type's comment for how long it stays valid.
unsafe impl Send for StopFlag {}

impl StopFlag {
    /// The flag of a fresh instance.
    pub fn find(memory: GuestMemory) -> Option<StopFlag> {
        let flag = NonNull::new(memory.at(plpywasm_engine::STOP_FLAG, 4)? as *mut AtomicU32)?;
        // Inside the memory and aligned: valid as long as the store lives (see GuestMemory).
        flag.is_aligned().then_some(StopFlag(flag))
    }

    pub fn raise(self) {
        // SAFETY: valid while the store lives (see the type).
        unsafe { self.0.as_ref() }.store(RAISED, Relaxed);
    }

    pub fn clear(self) {
        unsafe { self.0.as_ref() }.store(0, Relaxed);
    }

    pub fn is_raised(self) -> bool {
        unsafe { self.0.as_ref() }.load(Relaxed) == RAISED
    }
}
