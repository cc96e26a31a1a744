//! The guest's stop flag: a word in its linear memory that every function entry and loop head of
//! the guest checks (`plpywasm-precompile` adds the checks), raised by the ticker thread.
//!
//! wasmtime offers no public way to reach a component's linear memory, so the host learns where it
//! is the way lifting a result does: `memory-probe` returns a list, and [`MemoryBase`] lifts it
//! into the address of the memory instead of its contents.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Instance, Lift};
use wasmtime::{AsContextMut, Result};

use super::bindings::GUEST_INTERFACE;

/// An interpreter's stop flag. It points into the interpreter's memory, so it is valid as long as
/// the interpreter's store lives: the ticker only touches it while the interpreter is watched,
/// which it stops being before its store is dropped.
#[derive(Clone, Copy)]
pub struct StopFlag(NonNull<AtomicU32>);

// SAFETY: the flag is an atomic word; see the type's comment for how long it stays valid.
unsafe impl Send for StopFlag {}

impl StopFlag {
    /// Finds the flag of a freshly made instance. Its memory never moves (see the engine's
    /// configuration).
    pub fn find(mut store: impl AsContextMut, instance: &Instance) -> Result<StopFlag> {
        let guest = instance
            .get_export_index(&mut store, None, GUEST_INTERFACE)
            .ok_or_else(|| wasmtime::Error::msg("the guest has no guest interface"))?;
        let probe = instance
            .get_export_index(&mut store, Some(&guest), "memory-probe")
            .ok_or_else(|| wasmtime::Error::msg("the guest has no memory-probe"))?;
        let probe = instance.get_typed_func::<(), (MemoryBase,)>(&mut store, probe)?;
        let (MemoryBase { base, len },) = probe.call(&mut store, ())?;
        let at = plpywasm_engine::STOP_FLAG as usize;
        let flag = NonNull::new((base + at) as *mut AtomicU32).filter(|flag| at + 4 <= len && flag.is_aligned());
        // Inside the memory and aligned: the memory is mapped read-write while the store lives.
        flag.map(StopFlag).ok_or_else(|| wasmtime::Error::msg("the guest's memory has no room for the stop flag"))
    }

    pub fn raise(self) {
        // SAFETY: valid while the store lives (see the type).
        unsafe { self.0.as_ref() }.store(1, Relaxed);
    }

    pub fn clear(self) {
        unsafe { self.0.as_ref() }.store(0, Relaxed);
    }

    pub fn is_raised(self) -> bool {
        unsafe { self.0.as_ref() }.load(Relaxed) != 0
    }
}

/// A `list<u8>` result read as where the memory it lies in is mapped (its base and length).
struct MemoryBase {
    base: usize,
    len: usize,
}

impl MemoryBase {
    fn of(cx: &LiftContext<'_>) -> MemoryBase {
        let memory = cx.memory();
        MemoryBase { base: memory.as_ptr() as usize, len: memory.len() }
    }
}

// SAFETY: the type's layout and ABI are those of `list<u8>`, which it type-checks as.
unsafe impl ComponentType for MemoryBase {
    type Lower = <Vec<u8> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <Vec<u8> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads nothing from the guest's memory but where it is.
unsafe impl Lift for MemoryBase {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, _ty: InterfaceType, _src: &Self::Lower) -> Result<Self> {
        Ok(MemoryBase::of(cx))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, _bytes: &[u8]) -> Result<Self> {
        Ok(MemoryBase::of(cx))
    }
}
