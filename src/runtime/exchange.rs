//! The exchange (see the WIT's `exchange`): the per-call exports' inputs are written by the host into
//! a buffer of the guest's, and their outputs read from the guest's `bytes` objects, in place. A
//! `list<u8>` costs the guest's bindings more to lift or lower than a scalar call's own work.
//!
//! The host reads CPython's objects as laid out on wasm32: a `bytearray` has its size at 8 and its
//! bytes' address at 20; a `list` its length at 8 and its items' address at 12; a `bytes` object
//! its type at 4, its size at 8 and its bytes from 16. What it finds is checked against a mark the
//! guest made, so a guest laid out otherwise is refused.

use super::memory::GuestMemory;

/// What the guest's exchange holds before its first use, and the bytes object it shows it in.
const MARK: &[u8] = b"plpywasm exchange";

/// An output that lies beyond the memory as it was probed.
pub struct Beyond;

/// An instance's exchange: valid as long as its store lives (see [`GuestMemory`]).
#[derive(Clone, Copy)]
pub struct Exchange {
    memory: GuestMemory,
    input: u32,
    capacity: usize,
    /// The address of the list whose first item is the output.
    output: u32,
    /// The address of the guest's `bytes` type: an output must be one.
    bytes_type: u32,
}

impl Exchange {
    /// The exchange of a fresh instance, from the addresses `exchange` returns.
    pub fn find(memory: GuestMemory, (buffer, output, mark): (u32, u32, u32)) -> Option<Exchange> {
        let (capacity, input) = (read_word(memory, buffer, 8)?, read_word(memory, buffer, 20)?);
        memory.at(input, capacity as usize)?;
        let bytes_type = read_word(memory, mark, 4)?;
        let exchange = Exchange { memory, input, capacity: capacity as usize, output, bytes_type };
        (read(memory, input, MARK.len())? == MARK && exchange.bytes(mark)? == MARK).then_some(exchange)
    }

    /// Puts an input where the guest reads it; None if it does not fit (then it goes by `stage`).
    pub fn put(self, input: &[u8]) -> Option<()> {
        if input.len() > self.capacity {
            return None;
        }
        let to = self.memory.at(self.input, input.len())?;
        // SAFETY: inside the memory (`at`); no guest code runs while the host writes.
        unsafe { std::ptr::copy_nonoverlapping(input.as_ptr(), to, input.len()) };
        Some(())
    }

    /// The output the last per-call export put: None if it put none, `Err` if it lies beyond the
    /// memory as it was when probed (it grew since: see [`Exchange::grown`]).
    pub fn output(self) -> Result<Option<Vec<u8>>, Beyond> {
        let item = |offset| read_word(self.memory, self.output, offset).ok_or(Beyond);
        if item(8)? == 0 {
            return Ok(None);
        }
        let object = read_word(self.memory, item(12)?, 0).ok_or(Beyond)?;
        match read_word(self.memory, object, 4) {
            Some(kind) if kind == self.bytes_type => self.bytes(object).map(Some).ok_or(Beyond),
            Some(_) => Ok(None),
            None => Err(Beyond),
        }
    }

    /// The exchange, once the memory was probed anew.
    pub fn grown(self, memory: GuestMemory) -> Exchange {
        Exchange { memory, ..self }
    }

    /// The bytes of the guest's `bytes` object at `object`, or None if it is not one.
    fn bytes(self, object: u32) -> Option<Vec<u8>> {
        if read_word(self.memory, object, 4)? != self.bytes_type {
            return None;
        }
        let len = read_word(self.memory, object, 8)?;
        read(self.memory, object.checked_add(16)?, len as usize)
    }
}

/// A copy of `len` bytes of the guest's memory at `address`, if it has them.
fn read(memory: GuestMemory, address: u32, len: usize) -> Option<Vec<u8>> {
    let from = memory.at(address, len)?;
    // SAFETY: inside the memory (`at`); no guest code runs while the host reads.
    Some(unsafe { std::slice::from_raw_parts(from, len) }.to_vec())
}

fn read_word(memory: GuestMemory, address: u32, offset: u32) -> Option<u32> {
    let word = memory.at(address.checked_add(offset)?, 4)?;
    // SAFETY: as in `read`.
    Some(u32::from_le_bytes(unsafe { word.cast::<[u8; 4]>().read_unaligned() }))
}
