//! The fmgr entry points PostgreSQL calls: the call handler, the inline handler (`DO`) and the
//! validator. Each installs the error context, then hands over to `exec` in a guarded frame; an
//! error comes back and is raised here, outside that frame, with all its fields.

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

use crate::error::{raise_stashed, with_context, ContextArg, Phase, PlError};
use crate::{convert, exec, procedure};

/// Declares a version-1 fmgr function (PostgreSQL's `PG_FUNCTION_INFO_V1`).
macro_rules! fmgr_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

fmgr_v1!(pg_finfo_plpywasm_call_handler);
fmgr_v1!(pg_finfo_plpywasm_inline_handler);
fmgr_v1!(pg_finfo_plpywasm_validator);
fmgr_v1!(pg_finfo_plpywasm_jsonb_transform);

/// # Safety
/// Called by PostgreSQL's function manager only.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plpywasm_call_handler(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let mut context = ContextArg::new(Phase::Call);
    let arg = &raw mut context;
    unsafe {
        with_context(arg, || {
            let datum = call_handler(fcinfo, arg);
            raise_stashed();
            datum
        })
    }
}

/// # Safety
/// Called by PostgreSQL's function manager only.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plpywasm_inline_handler(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let mut context = ContextArg::new(Phase::Inline);
    let arg = &raw mut context;
    unsafe {
        with_context(arg, || {
            let datum = inline_handler(fcinfo);
            raise_stashed();
            datum
        })
    }
}

/// # Safety
/// Called by PostgreSQL's function manager only.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plpywasm_validator(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let mut context = ContextArg::new(Phase::Compile);
    let arg = &raw mut context;
    unsafe {
        with_context(arg, || {
            let datum = validator(fcinfo, arg);
            raise_stashed();
            datum
        })
    }
}

/// Both functions of `TRANSFORM FOR TYPE jsonb`, which plpywasm never calls: it converts jsonb
/// itself (see the SQL in lib.rs). SQL cannot call them either: it has no values of type internal.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn plpywasm_jsonb_transform(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    pgrx::error!("plpywasm converts jsonb itself: its transform functions are not to be called")
}

#[pg_guard]
unsafe extern "C-unwind" fn call_handler(fcinfo: pg_sys::FunctionCallInfo, context: *mut ContextArg) -> Datum {
    let oid = unsafe { (*(*fcinfo).flinfo).fn_oid };
    let called = procedure::lookup(oid).and_then(|procedure| {
        unsafe { exec::check_call(fcinfo, &procedure) }?;
        unsafe { (*context).set_name(&procedure.name) };
        if procedure.is_procedure {
            unsafe { (*context).set_procedure() };
        }
        procedure.check_supported()?;
        unsafe { exec::call(fcinfo, &procedure) }
    });
    called.unwrap_or_else(|err| {
        err.stash();
        Datum::null()
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn inline_handler(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let block = unsafe { (*fcinfo).args.as_slice(1)[0].value.cast_mut_ptr::<pg_sys::InlineCodeBlock>() };
    let body = unsafe { convert::server_cstr_to_string((*block).source_text) };
    let atomic = unsafe { (*block).atomic };
    if let Err(err) = exec::run_inline(&body, atomic) {
        err.stash();
    }
    Datum::null()
}

#[pg_guard]
unsafe extern "C-unwind" fn validator(fcinfo: pg_sys::FunctionCallInfo, context: *mut ContextArg) -> Datum {
    let oid = Oid::from(unsafe { (*fcinfo).args.as_slice(1)[0].value.value() } as u32);
    if !unsafe { pg_sys::CheckFunctionValidatorAccess((*(*fcinfo).flinfo).fn_oid, oid) } {
        return Datum::null();
    }
    let validated = procedure::read_uncached(oid).and_then(|procedure| {
        unsafe { (*context).set_name(&procedure.name) };
        procedure.check_supported()?;
        procedure.check_signature()?;
        // pg_dump's output turns body checks off: a body is then checked on its first call.
        if unsafe { pg_sys::check_function_bodies } {
            exec::validate(&procedure)?;
        }
        Ok::<(), PlError>(())
    });
    if let Err(err) = validated {
        err.stash();
    }
    Datum::null()
}
