//! Composite values (table rows, `CREATE TYPE … AS`, `record`): dicts keyed by attribute name.

use std::cell::RefCell;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgMemoryContexts;

use super::{malformed, FromGuest, Nodes, ToGuest};
use crate::error::PlError;
use crate::runtime::{Node, Shape};

/// A composite argument. Its layout is read from the value itself, so `record` arguments work and
/// an `ALTER TYPE` between calls is seen.
pub struct RowIn {
    layout: RefCell<Option<LayoutIn>>,
}

struct LayoutIn {
    type_oid: Oid,
    typmod: i32,
    /// The type cache's identifier of the row type's current definition (0 for `record`).
    identifier: Option<u64>,
    names: Vec<String>,
    /// One per attribute; `None` for a dropped one.
    attributes: Vec<Option<ToGuest>>,
}

impl RowIn {
    pub fn new() -> RowIn {
        RowIn { layout: RefCell::new(None) }
    }

    /// # Safety
    /// `datum` must be a valid, non-null composite Datum.
    pub unsafe fn encode(&self, datum: Datum, out: &mut Vec<Node>) {
        unsafe {
            // An anonymous record may nest records to any depth (`ROW(ROW(ROW(…)))`), each level a
            // call of this one: an error, not a stack overflow that would take the backend down.
            pg_sys::check_stack_depth();
            let header = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
            let type_oid = (*header).t_choice.t_datum.datum_typeid;
            let typmod = (*header).t_choice.t_datum.datum_typmod;
            let tupdesc = pg_sys::lookup_rowtype_tupdesc(type_oid, typmod);
            let identifier = identifier_of(type_oid);
            let mut layout = self.layout.borrow_mut();
            let current = layout
                .as_ref()
                .is_some_and(|l| l.type_oid == type_oid && l.typmod == typmod && l.identifier == identifier);
            if !current {
                *layout = Some(LayoutIn::read(tupdesc, type_oid, typmod, identifier));
            }
            let layout = layout.as_ref().expect("set above");

            let mut tuple = pg_sys::HeapTupleData {
                t_len: pgrx::varlena::varsize(header.cast()) as u32,
                t_self: std::mem::zeroed(),
                t_tableOid: Oid::INVALID,
                t_data: header,
            };
            let row = deform(&mut tuple, tupdesc);
            pg_sys::DecrTupleDescRefCount(tupdesc);

            out.push(Node::Composite(layout.names.clone()));
            for (attribute, &(value, is_null)) in layout.attributes.iter().zip(&row) {
                let Some(convert) = attribute else { continue };
                if is_null {
                    out.push(Node::Null);
                } else {
                    convert.encode(value, out);
                }
            }
        }
    }
}

impl LayoutIn {
    unsafe fn read(tupdesc: pg_sys::TupleDesc, type_oid: Oid, typmod: i32, identifier: Option<u64>) -> LayoutIn {
        let (names, attributes) = unsafe { layout(tupdesc, |attribute| ToGuest::for_type(attribute.atttypid)) };
        LayoutIn { type_oid, typmod, identifier, names, attributes }
    }
}

/// A composite result: the declared row type, or the row a call resolves (`record`, OUT parameters).
pub struct RowOut {
    /// A blessed copy in TopMemoryContext, so that `record` results carry a usable type.
    tupdesc: pg_sys::TupleDesc,
    /// The definition this was made for (see [`identifier_of`]).
    identifier: Option<u64>,
    names: Vec<String>,
    attributes: Vec<Option<FromGuest>>,
}

impl RowOut {
    pub fn for_type(type_oid: Oid, typmod: i32) -> RowOut {
        unsafe {
            let tupdesc = pg_sys::lookup_rowtype_tupdesc(type_oid, typmod);
            let row = RowOut::for_tupdesc(tupdesc);
            pg_sys::DecrTupleDescRefCount(tupdesc);
            row
        }
    }

    /// # Safety
    /// `tupdesc` must be a valid tuple descriptor; it is copied.
    pub unsafe fn for_tupdesc(tupdesc: pg_sys::TupleDesc) -> RowOut {
        // Row types nested in row types, as deep as their definitions go.
        unsafe { pg_sys::check_stack_depth() };
        let tupdesc = unsafe {
            PgMemoryContexts::TopMemoryContext.switch_to(|_| pg_sys::BlessTupleDesc(pg_sys::CreateTupleDescCopy(tupdesc)))
        };
        let (names, attributes) =
            unsafe { layout(tupdesc, |attribute| FromGuest::for_type(attribute.atttypid, attribute.atttypmod)) };
        RowOut { identifier: identifier_of(unsafe { (*tupdesc).tdtypeid }), tupdesc, names, attributes }
    }

    /// Whether no row type in this one (itself, or an attribute's) was altered since it was made.
    pub fn is_current(&self) -> bool {
        self.identifier.is_some() && identifier_of(unsafe { (*self.tupdesc).tdtypeid }) == self.identifier
            && self.attributes.iter().flatten().all(FromGuest::is_current)
    }

    /// A converter for the current definition of an anonymous row (OUT parameters), whose
    /// attributes may be altered row types.
    pub fn rebuilt(&self) -> RowOut {
        unsafe { RowOut::for_tupdesc(self.tupdesc) }
    }

    /// The typmod under which this backend registered the row's (blessed) descriptor.
    pub fn typmod(&self) -> i32 {
        unsafe { (*self.tupdesc).tdtypmod }
    }

    /// Whether this converter was made for a row of exactly this layout.
    pub fn matches(&self, tupdesc: pg_sys::TupleDesc) -> bool {
        unsafe { pg_sys::equalTupleDescs(self.tupdesc, tupdesc) }
    }

    pub fn shape(&self, out: &mut Vec<Shape>) {
        out.push(Shape::Composite(self.names.clone()));
        for attribute in self.attributes.iter().flatten() {
            attribute.shape(out);
        }
    }

    /// The row whose attributes are the next nodes. An attribute may keep its value from `kept`
    /// (by attribute number), where there is one: where the guest says so, or a json value not
    /// given as text that jsonb finds equal (see [`FromGuest::same_json`]).
    pub fn decode(&self, nodes: &mut Nodes, kept: Option<&[(Datum, bool)]>) -> Result<Datum, PlError> {
        let mut values = Vec::with_capacity(self.attributes.len());
        let mut nulls = Vec::with_capacity(self.attributes.len());
        for (i, attribute) in self.attributes.iter().enumerate() {
            let keep = matches!(nodes.as_slice().first(), Some(Node::Keep));
            let (value, is_null) = match attribute {
                Some(_) if keep => {
                    nodes.next();
                    *kept.and_then(|kept| kept.get(i)).ok_or_else(malformed)?
                }
                Some(convert) => {
                    // A str is JSON text the function wrote (`json.dumps(d, sort_keys=True)`): an
                    // edit even where jsonb sees no change.
                    let written = matches!(nodes.as_slice().first(), Some(Node::Text(_)));
                    let value = convert.decode(nodes)?;
                    match kept.and_then(|kept| kept.get(i)) {
                        Some(&old) if !written && convert.same_json(old, value) => old,
                        _ => value,
                    }
                }
                None => (Datum::null(), true),
            };
            values.push(value);
            nulls.push(is_null);
        }
        if values.len() != unsafe { (*self.tupdesc).natts } as usize {
            return Err(malformed());
        }
        unsafe {
            let tuple = pg_sys::heap_form_tuple(self.tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
            Ok(pg_sys::heap_copy_tuple_as_datum(tuple, self.tupdesc))
        }
    }
}

impl Drop for RowOut {
    fn drop(&mut self) {
        unsafe { pg_sys::FreeTupleDesc(self.tupdesc) };
    }
}

/// The names of a row's live attributes, and a converter for each attribute (none if dropped).
unsafe fn layout<C>(
    tupdesc: pg_sys::TupleDesc,
    convert: impl Fn(&pg_sys::FormData_pg_attribute) -> C,
) -> (Vec<String>, Vec<Option<C>>) {
    let mut names = Vec::new();
    let mut attributes = Vec::new();
    for attribute in unsafe { attributes_of(tupdesc) } {
        if attribute.attisdropped {
            attributes.push(None);
        } else {
            names.push(attribute_name(attribute));
            attributes.push(Some(convert(attribute)));
        }
    }
    (names, attributes)
}

/// A row descriptor's attributes, dropped ones included.
///
/// # Safety
/// `tupdesc` must be a valid descriptor, alive as long as the slice is used.
pub unsafe fn attributes_of<'a>(tupdesc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    unsafe { (*tupdesc).attrs.as_slice((*tupdesc).natts as usize) }
}

/// An attribute's name, in UTF-8.
pub fn attribute_name(attribute: &pg_sys::FormData_pg_attribute) -> String {
    unsafe { super::server_cstr_to_string(attribute.attname.data.as_ptr()) }
}

/// A row's attributes by number: each value and whether it is NULL.
///
/// # Safety
/// `tuple` must be a valid tuple of `tupdesc`.
pub unsafe fn deform(tuple: pg_sys::HeapTuple, tupdesc: pg_sys::TupleDesc) -> Vec<(Datum, bool)> {
    let natts = unsafe { (*tupdesc).natts } as usize;
    let mut values = vec![Datum::null(); natts];
    let mut nulls = vec![false; natts];
    unsafe { pg_sys::heap_deform_tuple(tuple, tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr()) };
    values.into_iter().zip(nulls).collect()
}

/// Changes whenever a named row type is altered; `record` types never change. A dropped type
/// (a trigger's table, say) has none, and matches no converter.
fn identifier_of(type_oid: Oid) -> Option<u64> {
    if type_oid == pg_sys::RECORDOID {
        return Some(0);
    }
    super::type_exists(type_oid)
        .then(|| unsafe { (*pg_sys::lookup_type_cache(type_oid, pg_sys::TYPECACHE_TUPDESC as i32)).tupDesc_identifier })
}
