//! Arrays of any element type and any number of dimensions: nested lists in Python.
//! Lower bounds are not kept (Python lists start at 0), as in PL/Python; int2vector and oidvector
//! count from 0, as their input functions make them.

use std::ffi::c_char;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;

use super::{malformed, unpack, FromGuest, Nodes, ToGuest};
use crate::error::PlError;
use crate::runtime::{Node, Shape};

/// PostgreSQL's MAXDIM.
const MAX_DIMENSIONS: usize = 6;

/// How an element type is stored, as construct/deconstruct_array need it.
struct Element {
    type_oid: Oid,
    len: i16,
    by_value: bool,
    align: c_char,
}

impl Element {
    fn of_array(array_type: Oid) -> Option<Element> {
        let type_oid = unsafe { pg_sys::get_element_type(array_type) };
        if type_oid == Oid::INVALID {
            return None;
        }
        let (mut len, mut by_value, mut align) = (0, false, 0 as c_char);
        unsafe { pg_sys::get_typlenbyvalalign(type_oid, &mut len, &mut by_value, &mut align) };
        Some(Element { type_oid, len, by_value, align })
    }
}

pub struct ArrayIn {
    element: Element,
    convert: ToGuest,
}

impl ArrayIn {
    pub fn for_type(array_type: Oid) -> Option<ArrayIn> {
        let element = Element::of_array(array_type)?;
        let convert = ToGuest::for_type(element.type_oid);
        Some(ArrayIn { element, convert })
    }

    pub fn element(&self) -> &ToGuest {
        &self.convert
    }

    /// # Safety
    /// `datum` must be a valid, non-null array Datum of this converter's type.
    pub unsafe fn encode(&self, datum: Datum, out: &mut Vec<Node>) {
        unsafe {
            let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            let ndim = (*array).ndim as usize;
            // ARR_DIMS: the dimensions follow the fixed header.
            let dims = std::slice::from_raw_parts((array as *const u8).add(size_of::<pg_sys::ArrayType>()) as *const i32, ndim);
            out.push(Node::Array(dims.iter().map(|&d| d as u32).collect()));
            // Each element, NULLs too, becomes a node, beside its Datum and flag.
            let elements = pg_sys::ArrayGetNItems(ndim as i32, dims.as_ptr()) as usize;
            super::charge(elements * (size_of::<Node>() + size_of::<Datum>() + 1));
            let (mut values, mut nulls, mut count) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
            let e = &self.element;
            pg_sys::deconstruct_array(array, e.type_oid, e.len as i32, e.by_value, e.align, &mut values, &mut nulls, &mut count);
            for i in 0..count as usize {
                match *nulls.add(i) {
                    true => out.push(Node::Null),
                    false => self.convert.encode(*values.add(i), out),
                }
            }
            pg_sys::pfree(values.cast());
            pg_sys::pfree(nulls.cast());
        }
    }
}

pub struct ArrayOut {
    element: Element,
    convert: FromGuest,
    /// The name of int2vector or oidvector: one dimension counted from 0, no NULLs.
    vector: Option<&'static str>,
}

impl ArrayOut {
    /// An array type's typmod is its elements' (as in varchar(2)[]).
    pub fn for_type(array_type: Oid, typmod: i32) -> Option<ArrayOut> {
        let element = Element::of_array(array_type)?;
        let convert = FromGuest::for_type(element.type_oid, typmod);
        let vector = match array_type {
            pg_sys::INT2VECTOROID => Some("int2vector"),
            pg_sys::OIDVECTOROID => Some("oidvector"),
            _ => None,
        };
        Some(ArrayOut { element, convert, vector })
    }

    pub fn is_current(&self) -> bool {
        self.convert.is_current()
    }

    pub fn shape(&self, out: &mut Vec<Shape>) {
        out.push(Shape::Array);
        self.convert.shape(out);
    }

    /// The array whose dimensions are `dims`; its elements are the next nodes.
    pub fn decode(&self, dims: Vec<u32>, nodes: &mut Nodes) -> Result<Datum, PlError> {
        if dims.len() > MAX_DIMENSIONS {
            return Err(PlError::new(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!("number of array dimensions ({}) exceeds the maximum allowed ({MAX_DIMENSIONS})", dims.len()),
            ));
        }
        let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d as usize)).ok_or_else(malformed)?;
        let e = &self.element;
        if (dims.is_empty() || count == 0) && self.vector.is_none() {
            return Ok(Datum::from(unsafe { pg_sys::construct_empty_array(e.type_oid) }));
        }
        let packed = matches!(nodes.as_slice().first(), Some(Node::Ints(_) | Node::Floats(_) | Node::Texts(_)));
        let mut unpacked = match packed {
            true => nodes.next().and_then(unpack).ok_or_else(malformed)?.into_iter(),
            false => Vec::new().into_iter(),
        };
        let elements = if packed { &mut unpacked } else { &mut *nodes };
        // Every element is at least one node: a count beyond what is there is a lie.
        if count > elements.len() || (packed && count != elements.len()) {
            return Err(malformed());
        }
        let mut values = Vec::with_capacity(count);
        let mut nulls = Vec::with_capacity(count);
        for _ in 0..count {
            let (value, is_null) = self.convert.decode(elements)?;
            values.push(value);
            nulls.push(is_null);
        }
        if let Some(name) = self.vector {
            return Self::vector(name, self.element.type_oid, dims.len(), &values, &nulls);
        }
        let mut dims: Vec<i32> = dims.iter().map(|&d| d as i32).collect();
        let mut lower_bounds = vec![1i32; dims.len()];
        Ok(Datum::from(unsafe {
            pg_sys::construct_md_array(
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
                dims.len() as i32,
                dims.as_mut_ptr(),
                lower_bounds.as_mut_ptr(),
                e.type_oid,
                e.len as i32,
                e.by_value,
                e.align,
            )
        }))
    }

    /// An int2vector or oidvector, as its input function makes them.
    fn vector(name: &str, element: Oid, dimensions: usize, values: &[Datum], nulls: &[bool]) -> Result<Datum, PlError> {
        if dimensions > 1 || nulls.contains(&true) {
            return Err(PlError::new(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("{name} must have one dimension and no NULLs"),
            ));
        }
        let n = values.len() as i32;
        Ok(Datum::from(unsafe {
            if element == pg_sys::INT2OID {
                let items: Vec<i16> = values.iter().map(|d| d.value() as i16).collect();
                pg_sys::buildint2vector(items.as_ptr(), n) as *mut u8
            } else {
                let items: Vec<Oid> = values.iter().map(|d| Oid::from(d.value() as u32)).collect();
                pg_sys::buildoidvector(items.as_ptr(), n) as *mut u8
            }
        }))
    }
}
