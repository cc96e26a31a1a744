//! Where an instance's linear memory is mapped, for the words and buffers of it that the host reads
//! and writes in place: the stop flag (`stop`) and the exchange (`exchange`).
//!
//! wasmtime offers no public way to reach a component's linear memory, so the host learns where it
//! is the way lifting a result does: `memory-probe` returns a list, and [`Mapping`] lifts it into
//! the address of the memory instead of its contents.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Instance, Lift, TypedFunc};
use wasmtime::{AsContextMut, Result};

use super::bindings::GUEST_INTERFACE;

/// An instance's memory: where it is mapped, and its size when it was probed. It never moves (see
/// the engine's configuration) and never shrinks, so a range inside it stays valid, mapped
/// read-write, as long as the store lives.
#[derive(Clone, Copy)]
pub struct GuestMemory {
    base: usize,
    len: usize,
}

/// Tells where an instance's memory is, and how large it is now.
#[derive(Clone)]
pub struct Probe(TypedFunc<(), (Mapping,)>);

impl Probe {
    pub fn new(mut store: impl AsContextMut, instance: &Instance) -> Result<Probe> {
        let guest = instance
            .get_export_index(&mut store, None, GUEST_INTERFACE)
            .ok_or_else(|| wasmtime::Error::msg("the guest has no guest interface"))?;
        let probe = instance
            .get_export_index(&mut store, Some(&guest), "memory-probe")
            .ok_or_else(|| wasmtime::Error::msg("the guest has no memory-probe"))?;
        Ok(Probe(instance.get_typed_func::<(), (Mapping,)>(&mut store, probe)?))
    }

    pub fn memory(&self, mut store: impl AsContextMut) -> Result<GuestMemory> {
        let (Mapping(memory),) = self.0.call(&mut store, ())?;
        Ok(memory)
    }
}

impl GuestMemory {
    /// The host's address of the guest's `len` bytes at `address`, if they all lie in the memory.
    pub fn at(self, address: u32, len: usize) -> Option<*mut u8> {
        let end = (address as usize).checked_add(len)?;
        (end <= self.len).then_some((self.base + address as usize) as *mut u8)
    }
}

/// A `list<u8>` result read as where the memory it lies in is mapped.
pub struct Mapping(GuestMemory);

// SAFETY: the type's layout and ABI are those of `list<u8>`, which it type-checks as.
unsafe impl ComponentType for Mapping {
    type Lower = <Vec<u8> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <Vec<u8> as ComponentType>::typecheck(ty, types)
    }
}

impl Mapping {
    fn of(cx: &LiftContext<'_>) -> Mapping {
        let memory = cx.memory();
        Mapping(GuestMemory { base: memory.as_ptr() as usize, len: memory.len() })
    }
}

// SAFETY: reads nothing from the guest's memory but where it is.
unsafe impl Lift for Mapping {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, _ty: InterfaceType, _src: &Self::Lower) -> Result<Self> {
        Ok(Mapping::of(cx))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, _bytes: &[u8]) -> Result<Self> {
        Ok(Mapping::of(cx))
    }
}
