//! What a plpywasm function is, read from `pg_proc` once and cached by OID while its row is unchanged.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::pg_sys::{self, Oid};
use pgrx::{IntoDatum, PgSqlErrorCode};

use crate::convert::{
    attributes_of, check_fits, input_size, marshal, server_cstr_to_string, text_to_string, type_name, with_budget, FromGuest,
    ToGuest,
};
use crate::error::PlError;
use crate::idmap::{self, IdMap};
use crate::runtime::{Decoding, Shape};
use crate::spi::Access;

/// Identifies one version of a `pg_proc` row: `CREATE OR REPLACE` and `ALTER FUNCTION` change it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    xmin: pg_sys::TransactionId,
    tid: (u32, u16),
}

pub struct Procedure {
    pub oid: Oid,
    /// Whose interpreter the function runs in, whoever calls it.
    pub owner: Oid,
    pub stamp: Stamp,
    pub name: String,
    /// Names of the IN arguments, in order; empty for unnamed ones.
    pub params: Vec<String>,
    pub body: String,
    pub returns_set: bool,
    /// A `CREATE PROCEDURE`, which errors name as such.
    pub is_procedure: bool,
    /// STABLE or IMMUTABLE: its queries are read-only (see `spi::Access`).
    read_only: bool,
    arg_types: Vec<Oid>,
    args: Vec<Arg>,
    /// The arguments whose values may be large, by position, with their type's `typlen` (negative:
    /// varlena or cstring), or `None` for a polymorphic one, whose calls tell.
    sized_args: Vec<(usize, Option<i16>)>,
    result: ResultPlan,
    return_type: Oid,
}

/// An argument's converter; a polymorphic argument's is made for the type a call passes, and kept
/// while calls pass that type.
enum Arg {
    Fixed(ToGuest),
    Polymorphic(RefCell<Option<(Oid, Rc<ToGuest>)>>),
}

/// The converter for the type a call passes a polymorphic argument as, kept while calls pass
/// that type.
///
/// # Safety
/// `fcinfo` must be the live call info of a call to the function the argument is of.
unsafe fn resolve_arg(
    fcinfo: pg_sys::FunctionCallInfo,
    position: usize,
    cache: &RefCell<Option<(Oid, Rc<ToGuest>)>>,
) -> Result<Rc<ToGuest>, PlError> {
    let actual = unsafe { pg_sys::get_fn_expr_argtype((*fcinfo).flinfo, position as i32) };
    if actual == Oid::INVALID {
        return Err(PlError::unsupported("could not determine the actual type of a polymorphic argument"));
    }
    let mut cache = cache.borrow_mut();
    if let Some((oid, convert)) = &*cache {
        if *oid == actual {
            return Ok(convert.clone());
        }
    }
    let convert = Rc::new(ToGuest::for_type(actual));
    *cache = Some((actual, convert.clone()));
    Ok(convert)
}

/// The result's converter: known from the declaration, or resolved by each call (a polymorphic
/// result, or `record` with a column definition list), and kept while calls resolve it alike.
enum ResultPlan {
    /// Replaced when a row type in it is altered.
    Fixed(RefCell<Rc<Resolved>>),
    PerCall(RefCell<Option<Rc<Resolved>>>),
    /// A trigger function's "MODIFY" returns a row of the table that fired it; TD's rows cross
    /// with `rows`, which keeps their layout from one call to the next.
    Trigger { modified: RefCell<Option<Rc<Resolved>>>, rows: ToGuest },
    /// Event trigger functions return nothing.
    None,
}

/// A result converter and the shape the guest needs to produce what it takes.
pub struct Resolved {
    pub convert: FromGuest,
    pub shape: Vec<Shape>,
    /// Whether results of this shape cross in marshal's format (see `convert::marshal`).
    pub plain: bool,
    /// The type a per-call resolution found: a scalar type, or the row type (RECORD for a
    /// column definition list, whose layout `convert` itself compares).
    type_oid: Oid,
}

impl Resolved {
    fn new(convert: FromGuest, type_oid: Oid) -> Rc<Resolved> {
        let shape = convert.shapes();
        Rc::new(Resolved { plain: marshal::is_plain_shape(&shape), shape, convert, type_oid })
    }
}

thread_local! {
    static CACHE: RefCell<IdMap<Oid, Rc<Procedure>>> = const { RefCell::new(idmap::new()) };
}

/// The function `oid`, from the cache if its `pg_proc` row has not changed since it was read.
/// The caller checks [`Procedure::check_supported`] once it has named the function in the context.
pub fn lookup(oid: Oid) -> Result<Rc<Procedure>, PlError> {
    let row = ProcRow::fetch(oid)?;
    let stamp = row.stamp();
    if let Some(cached) = CACHE.with(|cache| cache.borrow().get(&oid).cloned()) {
        if cached.stamp == stamp {
            return Ok(cached);
        }
    }
    let procedure = Rc::new(Procedure::read(oid, &row)?);
    CACHE.with(|cache| cache.borrow_mut().insert(oid, procedure.clone()));
    Ok(procedure)
}

/// Reads a function without caching it (the validator's view of a row that may yet roll back).
pub fn read_uncached(oid: Oid) -> Result<Procedure, PlError> {
    Procedure::read(oid, &ProcRow::fetch(oid)?)
}

impl Procedure {
    fn read(oid: Oid, row: &ProcRow) -> Result<Procedure, PlError> {
        let form = row.form();
        let name = unsafe { server_cstr_to_string(form.proname.data.as_ptr()) };
        let body = row.source();
        let (types, params) = row.input_args();
        let args: Vec<Arg> = types
            .iter()
            .map(|&t| if is_polymorphic(t) { Arg::Polymorphic(RefCell::new(None)) } else { Arg::Fixed(ToGuest::for_type(t)) })
            .collect();
        let sized_args = (0..)
            .zip(&types)
            .filter_map(|(position, &t)| {
                if is_polymorphic(t) {
                    return Some((position, None));
                }
                let typlen = unsafe { pg_sys::get_typlen(t) };
                (typlen < 0).then_some((position, Some(typlen)))
            })
            .collect();
        Ok(Procedure {
            oid,
            owner: form.proowner,
            stamp: row.stamp(),
            name,
            params,
            body,
            returns_set: form.proretset,
            is_procedure: row.is_procedure(),
            read_only: form.provolatile != pg_sys::PROVOLATILE_VOLATILE as std::ffi::c_char,
            arg_types: types,
            args,
            sized_args,
            result: row.result_plan(),
            return_type: form.prorettype,
        })
    }

    /// What a call of this function may do with the database; `atomic` unless it may end the
    /// transaction (a procedure called outside a transaction block).
    pub fn access(&self, atomic: bool) -> Access {
        Access { atomic, read_only: self.read_only }
    }

    /// What this version does not handle yet, refused with a clear error rather than a wrong answer.
    pub fn check_supported(&self) -> Result<(), PlError> {
        match self.return_type {
            pg_sys::EVENT_TRIGGEROID => {
                Err(PlError::unsupported("PL/plpywasm event trigger functions are not supported yet"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses argument types no PL can take (the validator's check, as PL/Python's).
    pub fn check_signature(&self) -> Result<(), PlError> {
        for &t in &self.arg_types {
            let pseudo = unsafe { pg_sys::get_typtype(t) } == pg_sys::TYPTYPE_PSEUDO as std::ffi::c_char;
            // `record` arguments take their layout from each value (PL/Python refuses them).
            if pseudo && !is_polymorphic(t) && t != pg_sys::RECORDOID {
                return Err(PlError::unsupported(format!("PL/plpywasm functions cannot accept type {}", type_name(t))));
            }
        }
        Ok(())
    }

    /// How the guest decodes the arguments that need it, by position (see `convert::marshal`).
    pub fn decodings(&self) -> Vec<(u32, Decoding)> {
        marshal::decodings(self.args.iter().map(|arg| match arg {
            Arg::Fixed(convert) => Some(convert),
            Arg::Polymorphic(_) => None,
        }))
    }

    /// This call's arguments in marshal's format, with a place for the handle (see
    /// `marshal::write_args`).
    ///
    /// # Safety
    /// `fcinfo` must be the live call info of a call to this function.
    pub unsafe fn marshal_args(&self, fcinfo: pg_sys::FunctionCallInfo) -> Result<Vec<u8>, PlError> {
        unsafe { self.check_arg_sizes(fcinfo) }?;
        let passed = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
        let mut resolved = Vec::new();
        for (position, arg) in self.args.iter().enumerate() {
            if let Arg::Polymorphic(cache) = arg {
                resolved.push(unsafe { resolve_arg(fcinfo, position, cache) }?);
            }
        }
        let mut resolved = resolved.iter();
        let args = self.args.iter().zip(passed).map(|(arg, passed)| {
            let datum = (!passed.isnull).then_some(passed.value);
            match arg {
                Arg::Fixed(convert) => (convert, false, datum),
                // Decoded as tagged, whatever its type (see `decodings`).
                Arg::Polymorphic(_) => (&**resolved.next().expect("resolved above"), true, datum),
            }
        });
        let mut out = Vec::with_capacity(16);
        with_budget(|| unsafe { marshal::write_args(args, &mut out) });
        Ok(out)
    }

    /// Refuses arguments too large for the interpreter before they are copied for it.
    ///
    /// # Safety
    /// `fcinfo` must be the live call info of a call to this function.
    unsafe fn check_arg_sizes(&self, fcinfo: pg_sys::FunctionCallInfo) -> Result<(), PlError> {
        if self.sized_args.is_empty() {
            return Ok(());
        }
        let passed = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
        let mut total = 0;
        for &(position, typlen) in &self.sized_args {
            let Some(arg) = passed.get(position).filter(|arg| !arg.isnull) else { continue };
            let typlen = typlen.unwrap_or_else(|| unsafe {
                pg_sys::get_typlen(pg_sys::get_fn_expr_argtype((*fcinfo).flinfo, position as i32))
            });
            total += unsafe { input_size(arg.value, typlen) };
        }
        check_fits(total, "arguments")
    }

    /// The converter for this call's result.
    ///
    /// # Safety
    /// `fcinfo` must be the live call info of a call to this function.
    pub unsafe fn result(&self, fcinfo: pg_sys::FunctionCallInfo) -> Result<Rc<Resolved>, PlError> {
        let cache = match &self.result {
            ResultPlan::Fixed(fixed) => {
                let resolved = fixed.borrow().clone();
                if resolved.convert.is_current() {
                    return Ok(resolved);
                }
                let rebuilt = Resolved::new(resolved.convert.rebuilt(), resolved.type_oid);
                *fixed.borrow_mut() = rebuilt.clone();
                return Ok(rebuilt);
            }
            ResultPlan::PerCall(cache) => cache,
            ResultPlan::Trigger { .. } | ResultPlan::None => {
                return Err(PlError::unsupported("trigger functions can only be called as triggers"))
            }
        };
        let (mut type_oid, mut tupdesc) = (Oid::INVALID, std::ptr::null_mut());
        let class = unsafe { pg_sys::get_call_result_type(fcinfo, &mut type_oid, &mut tupdesc) };
        let cached = current(cache);
        let resolved = match class {
            pg_sys::TypeFuncClass::TYPEFUNC_SCALAR => match cached {
                Some(resolved) if resolved.type_oid == type_oid => resolved,
                _ => Resolved::new(FromGuest::for_type(type_oid, -1), type_oid),
            },
            pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE | pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE_DOMAIN => {
                match cached {
                    Some(resolved) if resolved.type_oid == type_oid && resolved.convert.matches_row(tupdesc) => resolved,
                    _ => Resolved::new(unsafe { FromGuest::for_row(tupdesc, type_oid) }, type_oid),
                }
            }
            _ => {
                return Err(PlError::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "function returning record called in context that cannot accept type record",
                ))
            }
        };
        *cache.borrow_mut() = Some(resolved.clone());
        Ok(resolved)
    }
}

impl Procedure {
    pub fn is_trigger(&self) -> bool {
        matches!(self.result, ResultPlan::Trigger { .. })
    }

    /// The converter for rows of the table a trigger fired on (for "MODIFY").
    ///
    /// # Safety
    /// `relation` must be the open relation of the firing trigger.
    pub unsafe fn trigger_row(&self, relation: pg_sys::Relation) -> Rc<Resolved> {
        let ResultPlan::Trigger { modified: cache, .. } = &self.result else { unreachable!("checked by is_trigger") };
        let tupdesc = unsafe { (*relation).rd_att };
        let type_oid = unsafe { (*(*relation).rd_rel).reltype };
        let resolved = match current(cache) {
            Some(resolved) if resolved.type_oid == type_oid && resolved.convert.matches_row(tupdesc) => resolved,
            _ => Resolved::new(unsafe { FromGuest::for_row(tupdesc, pg_sys::RECORDOID) }, type_oid),
        };
        *cache.borrow_mut() = Some(resolved.clone());
        resolved
    }

    /// The converter of a trigger's rows into TD.
    pub fn trigger_rows(&self) -> &ToGuest {
        let ResultPlan::Trigger { rows, .. } = &self.result else { unreachable!("checked by is_trigger") };
        rows
    }
}

/// A cached converter, unless a row type in it was altered since it was made.
fn current(cache: &RefCell<Option<Rc<Resolved>>>) -> Option<Rc<Resolved>> {
    cache.borrow().clone().filter(|resolved| resolved.convert.is_current())
}

fn is_polymorphic(type_oid: Oid) -> bool {
    matches!(
        type_oid,
        pg_sys::ANYELEMENTOID
            | pg_sys::ANYARRAYOID
            | pg_sys::ANYNONARRAYOID
            | pg_sys::ANYENUMOID
            | pg_sys::ANYRANGEOID
            | pg_sys::ANYMULTIRANGEOID
            | pg_sys::ANYCOMPATIBLEOID
            | pg_sys::ANYCOMPATIBLEARRAYOID
            | pg_sys::ANYCOMPATIBLENONARRAYOID
            | pg_sys::ANYCOMPATIBLERANGEOID
            | pg_sys::ANYCOMPATIBLEMULTIRANGEOID
    )
}

/// A `pg_proc` row pinned in the syscache, released on drop.
struct ProcRow(pg_sys::HeapTuple);

impl ProcRow {
    fn fetch(oid: Oid) -> Result<ProcRow, PlError> {
        let tuple = unsafe {
            pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::PROCOID as i32, oid.into_datum().unwrap())
        };
        if tuple.is_null() {
            return Err(PlError::new(
                pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
                format!("cache lookup failed for function {}", oid.to_u32()),
            ));
        }
        Ok(ProcRow(tuple))
    }

    fn form(&self) -> &pg_sys::FormData_pg_proc {
        unsafe { &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_proc>(self.0) }
    }

    fn is_procedure(&self) -> bool {
        self.form().prokind == pg_sys::PROKIND_PROCEDURE as std::ffi::c_char
    }

    fn stamp(&self) -> Stamp {
        unsafe {
            let tuple = &*self.0;
            let tid = tuple.t_self;
            Stamp {
                xmin: pg_sys::HeapTupleHeaderGetRawXmin(tuple.t_data),
                tid: (
                    ((tid.ip_blkid.bi_hi as u32) << 16) | tid.ip_blkid.bi_lo as u32,
                    tid.ip_posid,
                ),
            }
        }
    }

    fn result_plan(&self) -> ResultPlan {
        let return_type = self.form().prorettype;
        match return_type {
            pg_sys::TRIGGEROID => ResultPlan::Trigger { modified: RefCell::new(None), rows: ToGuest::any_row() },
            pg_sys::EVENT_TRIGGEROID => ResultPlan::None,
            t if is_polymorphic(t) => ResultPlan::PerCall(RefCell::new(None)),
            pg_sys::VOIDOID if self.is_procedure() => {
                ResultPlan::Fixed(RefCell::new(Resolved::new(FromGuest::for_procedure(), return_type)))
            }
            pg_sys::RECORDOID => {
                // OUT parameters declare the row; without them a call site's column list does.
                let tupdesc = unsafe { pg_sys::build_function_result_tupdesc_t(self.0) };
                let fixed = !tupdesc.is_null()
                    && unsafe { attributes_of(tupdesc) }
                        .iter()
                        .all(|attribute| !is_polymorphic(attribute.atttypid));
                if fixed {
                    ResultPlan::Fixed(RefCell::new(Resolved::new(
                        unsafe { FromGuest::for_row(tupdesc, return_type) },
                        return_type,
                    )))
                } else {
                    ResultPlan::PerCall(RefCell::new(None))
                }
            }
            t => ResultPlan::Fixed(RefCell::new(Resolved::new(FromGuest::for_type(t, -1), t))),
        }
    }

    fn source(&self) -> String {
        let mut is_null = false;
        let datum = unsafe {
            pg_sys::SysCacheGetAttr(
                pg_sys::SysCacheIdentifier::PROCOID as i32,
                self.0,
                pg_sys::Anum_pg_proc_prosrc as pg_sys::AttrNumber,
                &mut is_null,
            )
        };
        if is_null { String::new() } else { unsafe { text_to_string(datum) } }
    }

    /// Types and names of the arguments a call passes (IN, INOUT and VARIADIC).
    fn input_args(&self) -> (Vec<Oid>, Vec<String>) {
        let mut types: *mut Oid = std::ptr::null_mut();
        let mut names: *mut *mut std::ffi::c_char = std::ptr::null_mut();
        let mut modes: *mut std::ffi::c_char = std::ptr::null_mut();
        let count = unsafe { pg_sys::get_func_arg_info(self.0, &mut types, &mut names, &mut modes) } as usize;
        let mut in_types = Vec::with_capacity(count);
        let mut in_names = Vec::with_capacity(count);
        for i in 0..count {
            let mode = if modes.is_null() { b'i' } else { (unsafe { *modes.add(i) }) as u8 };
            if mode == b'o' || mode == b't' {
                continue;
            }
            in_types.push(unsafe { *types.add(i) });
            let name = if names.is_null() { std::ptr::null_mut() } else { unsafe { *names.add(i) } };
            in_names.push(if name.is_null() {
                String::new()
            } else {
                unsafe { server_cstr_to_string(name) }
            });
        }
        (in_types, in_names)
    }
}

impl Drop for ProcRow {
    fn drop(&mut self) {
        unsafe { pg_sys::ReleaseSysCache(self.0) };
    }
}
