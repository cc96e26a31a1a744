//! Hash maps keyed by ids (OIDs, handles, interpreter numbers), looked up on every call.
//!
//! std's default hasher, SipHash, resists keys chosen to collide. These keys are numbers
//! PostgreSQL and the extension hand out, not input, so a multiply-and-rotate hash (rustc's own)
//! serves as well, at a fraction of the cost per call.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An empty map, made at compile time: a `const` thread-local skips lazy initialisation on every
/// access.
pub const fn new<K, V>() -> IdMap<K, V> {
    HashMap::with_hasher(BuildHasherDefault::new())
}

#[derive(Default)]
pub struct IdHasher(u64);

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.add(u64::from(byte));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
