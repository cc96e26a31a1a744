//! What a plpywasm function is, read from `pg_proc` once and cached by OID while its row is unchanged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pg_sys::{self, Oid};
use pgrx::{FromDatum, IntoDatum};

use crate::convert::{type_name, ArgConverter, ResultConverter};
use crate::error::PlError;

/// Identifies one version of a `pg_proc` row: `CREATE OR REPLACE` and `ALTER FUNCTION` change it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    xmin: pg_sys::TransactionId,
    tid: (u32, u16),
}

pub struct Procedure {
    pub oid: Oid,
    pub stamp: Stamp,
    pub name: String,
    /// Names of the IN arguments, in order; empty for unnamed ones.
    pub params: Vec<String>,
    pub body: String,
    arg_types: Vec<Oid>,
    args: Vec<Arg>,
    result: Option<ResultConverter>,
    returns_set: bool,
    return_type: Oid,
}

/// An argument's converter, or, for a polymorphic argument, none until a call tells its type.
enum Arg {
    Fixed(ArgConverter),
    Polymorphic,
}

thread_local! {
    static CACHE: RefCell<HashMap<Oid, Rc<Procedure>>> = RefCell::new(HashMap::new());
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
        let name = unsafe { CStr::from_ptr(form.proname.data.as_ptr()) }.to_string_lossy().into_owned();
        let body = row.source();
        let (types, params) = row.input_args();
        let args = types
            .iter()
            .map(|&t| if is_polymorphic(t) { Arg::Polymorphic } else { Arg::Fixed(ArgConverter::for_type(t)) })
            .collect();
        let result = match form.prorettype {
            pg_sys::TRIGGEROID | pg_sys::EVENT_TRIGGEROID => None,
            t if is_polymorphic(t) => None,
            t => Some(ResultConverter::for_type(t)),
        };
        Ok(Procedure {
            oid,
            stamp: row.stamp(),
            name,
            params,
            body,
            arg_types: types,
            args,
            result,
            returns_set: form.proretset,
            return_type: form.prorettype,
        })
    }

    /// What this version does not handle yet, refused with a clear error rather than a wrong answer.
    pub fn check_supported(&self) -> Result<(), PlError> {
        if self.returns_set {
            return Err(PlError::unsupported("set-returning PL/plpywasm functions are not supported yet"));
        }
        match self.return_type {
            pg_sys::TRIGGEROID => Err(PlError::unsupported("PL/plpywasm trigger functions are not supported yet")),
            pg_sys::EVENT_TRIGGEROID => {
                Err(PlError::unsupported("PL/plpywasm event trigger functions are not supported yet"))
            }
            pg_sys::RECORDOID => {
                Err(PlError::unsupported("PL/plpywasm functions returning record are not supported yet"))
            }
            _ => Ok(()),
        }
    }

    /// Refuses argument types no PL can take (the validator's check, as PL/Python's).
    pub fn check_signature(&self) -> Result<(), PlError> {
        for &t in &self.arg_types {
            if unsafe { pg_sys::get_typtype(t) } == pg_sys::TYPTYPE_PSEUDO as std::ffi::c_char && !is_polymorphic(t) {
                return Err(PlError::unsupported(format!("PL/plpywasm functions cannot accept type {}", type_name(t))));
            }
        }
        Ok(())
    }

    /// Converters for this call's arguments; polymorphic ones are resolved from the call site.
    pub fn arg_converters<'a>(&'a self, flinfo: *mut pg_sys::FmgrInfo) -> Result<Vec<ConverterRef<'a>>, PlError> {
        self.args
            .iter()
            .enumerate()
            .map(|(i, arg)| match arg {
                Arg::Fixed(converter) => Ok(ConverterRef::Borrowed(converter)),
                Arg::Polymorphic => {
                    let actual = unsafe { pg_sys::get_fn_expr_argtype(flinfo, i as i32) };
                    if actual == Oid::INVALID {
                        return Err(PlError::unsupported("could not determine the actual type of a polymorphic argument"));
                    }
                    Ok(ConverterRef::Owned(ArgConverter::for_type(actual)))
                }
            })
            .collect()
    }

    /// The converter for this call's result.
    pub fn result_converter<'a>(&'a self, flinfo: *mut pg_sys::FmgrInfo) -> Result<ResultRef<'a>, PlError> {
        if let Some(converter) = &self.result {
            return Ok(ResultRef::Borrowed(converter));
        }
        let actual = unsafe { pg_sys::get_fn_expr_rettype(flinfo) };
        if actual == Oid::INVALID || is_polymorphic(actual) {
            return Err(PlError::unsupported(format!(
                "could not determine the actual result type of function \"{}\"",
                self.name
            )));
        }
        Ok(ResultRef::Owned(ResultConverter::for_type(actual)))
    }
}

pub enum ConverterRef<'a> {
    Borrowed(&'a ArgConverter),
    Owned(ArgConverter),
}

impl std::ops::Deref for ConverterRef<'_> {
    type Target = ArgConverter;
    fn deref(&self) -> &ArgConverter {
        match self {
            ConverterRef::Borrowed(c) => c,
            ConverterRef::Owned(c) => c,
        }
    }
}

pub enum ResultRef<'a> {
    Borrowed(&'a ResultConverter),
    Owned(ResultConverter),
}

impl std::ops::Deref for ResultRef<'_> {
    type Target = ResultConverter;
    fn deref(&self) -> &ResultConverter {
        match self {
            ResultRef::Borrowed(c) => c,
            ResultRef::Owned(c) => c,
        }
    }
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
        unsafe { String::from_datum(datum, is_null) }.unwrap_or_default()
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
                unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
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
