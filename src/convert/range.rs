//! Ranges and multiranges: psycopg 3's `Range` and `Multirange` in Python, their bounds converted
//! as values of the element type. Results come back through the type's input function, from the
//! literal that `str()` of those classes makes (python-guest/plpywasm.py).

use std::ffi::c_void;

use pgrx::pg_sys::{self, Datum, Oid};

use super::ToGuest;
use crate::runtime::Node;

/// A range type's cache entry (which `range_deserialize` needs) and its element's converter.
pub struct RangeIn {
    typcache: *mut pg_sys::TypeCacheEntry,
    convert: ToGuest,
}

impl RangeIn {
    pub fn for_type(range_type: Oid) -> Option<RangeIn> {
        if !unsafe { pg_sys::type_is_range(range_type) } {
            return None;
        }
        Some(RangeIn::of_cache(unsafe { pg_sys::lookup_type_cache(range_type, pg_sys::TYPECACHE_RANGE_INFO as i32) }))
    }

    /// The type cache keeps its entries for the life of the backend, so holding one is safe.
    fn of_cache(typcache: *mut pg_sys::TypeCacheEntry) -> RangeIn {
        let element = unsafe { (*(*typcache).rngelemtype).type_id };
        RangeIn { typcache, convert: ToGuest::for_type(element) }
    }

    /// A `range` node of the value's flags, then its finite bounds, lower first.
    ///
    /// # Safety
    /// `range` must point to a detoasted range of this converter's type.
    unsafe fn encode_range(&self, range: *const pg_sys::RangeType, out: &mut Vec<Node>) {
        let (mut lower, mut upper, mut empty) = (pg_sys::RangeBound::default(), pg_sys::RangeBound::default(), false);
        unsafe { pg_sys::range_deserialize(self.typcache, range, &mut lower, &mut upper, &mut empty) };
        // Only the flags of the value itself (not RANGE_CONTAIN_EMPTY, an index's).
        let own = pg_sys::RANGE_EMPTY
            | pg_sys::RANGE_LB_INC
            | pg_sys::RANGE_UB_INC
            | pg_sys::RANGE_LB_INF
            | pg_sys::RANGE_UB_INF;
        let flags = (unsafe { pg_sys::range_get_flags(range) } as u8 as u32 & own) as u8;
        out.push(Node::Range(flags));
        for bound in [lower, upper] {
            if !empty && !bound.infinite {
                unsafe { self.convert.encode(bound.val, out) };
            }
        }
    }

    /// # Safety
    /// `datum` must be a valid, non-null range Datum of this converter's type.
    pub unsafe fn encode(&self, datum: Datum, out: &mut Vec<Node>) {
        unsafe {
            let range = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *const pg_sys::RangeType;
            self.encode_range(range, out);
        }
    }
}

/// A multirange type: its ranges' converter.
pub struct MultirangeIn {
    range: RangeIn,
}

unsafe extern "C-unwind" {
    // multirangetypes.h, which pgrx does not bind.
    fn multirange_deserialize(
        rangetyp: *mut pg_sys::TypeCacheEntry,
        multirange: *const c_void,
        range_count: *mut i32,
        ranges: *mut *mut *mut pg_sys::RangeType,
    );
}

impl MultirangeIn {
    pub fn for_type(multirange_type: Oid) -> Option<MultirangeIn> {
        if !unsafe { pg_sys::type_is_multirange(multirange_type) } {
            return None;
        }
        let typcache = unsafe { pg_sys::lookup_type_cache(multirange_type, pg_sys::TYPECACHE_MULTIRANGE_INFO as i32) };
        Some(MultirangeIn { range: RangeIn::of_cache(unsafe { (*typcache).rngtype }) })
    }

    /// A `multirange` node of the count of its ranges, then each range's nodes.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null multirange Datum of this converter's type.
    pub unsafe fn encode(&self, datum: Datum, out: &mut Vec<Node>) {
        let (mut count, mut ranges) = (0, std::ptr::null_mut());
        unsafe {
            let multirange = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *const c_void;
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                multirange_deserialize(self.range.typcache, multirange, &mut count, &mut ranges)
            });
            out.push(Node::Multirange(count as u32));
            for i in 0..count as usize {
                let range = *ranges.add(i);
                self.range.encode_range(range, out);
                pg_sys::pfree(range.cast());
            }
            if !ranges.is_null() {
                pg_sys::pfree(ranges.cast());
            }
        }
    }
}
