//! Trigger functions: `TD` in, the function's verdict out, as in PL/Python.
//!
//! `TD` is a row of the trigger's data (event, when, level, name, table, args, new and old rows);
//! the function returns None or "OK" (the row goes on unchanged), "SKIP" (a BEFORE or INSTEAD OF row
//! trigger drops it) or "MODIFY" (the row goes on as `TD["new"]` now is).

use pgrx::pg_sys::{self, Datum};
use pgrx::{warning, PgSqlErrorCode};

use super::finish;
use crate::convert::{
    attribute_name, attributes_of, check_fits, deform, input_size, marshal, server_cstr_to_string, with_budget, ToGuest,
};
use crate::error::{making, PlError, TRIGGER_ROW};
use crate::interpreters::with_interpreter;
use crate::procedure::Procedure;
use crate::runtime::Node;
use crate::spi;

/// The trigger data a trigger function is called with; refused when it was called directly
/// (`SELECT f()`).
///
/// # Safety
/// `fcinfo` must be the live call info of a call.
pub unsafe fn called_as_trigger<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Result<&'a pg_sys::TriggerData, PlError> {
    let context = unsafe { (*fcinfo).context };
    if context.is_null() || unsafe { (*context).type_ } != pg_sys::NodeTag::T_TriggerData {
        return Err(PlError::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "trigger functions can only be called as triggers",
        ));
    }
    Ok(unsafe { &*(context as *const pg_sys::TriggerData) })
}

/// # Safety
/// `fcinfo` must be the live call info of a call to `procedure`, a trigger function.
pub unsafe fn call(fcinfo: pg_sys::FunctionCallInfo, procedure: &Procedure) -> Result<Datum, PlError> {
    let data = unsafe { called_as_trigger(fcinfo) }?;
    let event = data.tg_event;
    let operation = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let row_level = event & pg_sys::TRIGGER_EVENT_ROW != 0;
    // The row the trigger fired for, as it goes on unless the function says otherwise.
    let (new, old) = match (row_level, operation) {
        (false, _) => (std::ptr::null_mut(), std::ptr::null_mut()),
        (true, pg_sys::TRIGGER_EVENT_INSERT) => (data.tg_trigtuple, std::ptr::null_mut()),
        (true, pg_sys::TRIGGER_EVENT_UPDATE) => (data.tg_newtuple, data.tg_trigtuple),
        (true, _) => (std::ptr::null_mut(), data.tg_trigtuple),
    };
    let unchanged = if operation == pg_sys::TRIGGER_EVENT_UPDATE { data.tg_newtuple } else { data.tg_trigtuple };

    let row_shape = unsafe { procedure.trigger_row(data.tg_relation) };
    let before = event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE;
    let hidden = if before && !new.is_null() { unsafe { generated_columns(data.tg_relation) } } else { Vec::new() };
    let td = with_budget(|| unsafe { trigger_data(data, new, old, procedure.trigger_rows(), hidden) })?;
    let access = procedure.access(true);
    let nodes = finish(with_interpreter(procedure.oid, procedure.owner, access, |session| {
        spi::use_trigger_data((data as *const pg_sys::TriggerData).cast_mut());
        let handle = session.handle(procedure, &row_shape.shape)?;
        marshal::read_nodes(&session.call_trigger(handle, &td)?)
    }))?;

    let mut nodes = nodes.into_iter();
    let verdict = match nodes.next() {
        Some(Node::Text(verdict)) => verdict,
        _ => "OK".to_string(),
    };
    let returned = match verdict.as_str() {
        "SKIP" => std::ptr::null_mut(),
        // (As PL/Python says it of TRUNCATE too; a statement-level INSERT or UPDATE trigger's
        // MODIFY was refused by the guest: it has no row.)
        "MODIFY" if operation != pg_sys::TRIGGER_EVENT_INSERT && operation != pg_sys::TRIGGER_EVENT_UPDATE => {
            warning!("PL/plpywasm trigger function returned \"MODIFY\" in a DELETE trigger -- ignored");
            unchanged
        }
        "MODIFY" if row_level => {
            let kept = unsafe { deform(unchanged, (*data.tg_relation).rd_att) };
            let datum = making(TRIGGER_ROW, || row_shape.convert.decode_modified(&mut nodes, &kept))?;
            unsafe { tuple_of(datum) }
        }
        _ => unchanged,
    };
    Ok(Datum::from(returned))
}

/// `TD`'s values, then the `hidden` columns of the new row, marshalled.
unsafe fn trigger_data(
    data: &pg_sys::TriggerData,
    new: pg_sys::HeapTuple,
    old: pg_sys::HeapTuple,
    rows: &ToGuest,
    hidden: Vec<String>,
) -> Result<Vec<u8>, PlError> {
    let event = data.tg_event;
    let relation = data.tg_relation;
    let trigger = unsafe { &*data.tg_trigger };
    let text = |s: &str| Node::Text(s.to_string());
    let cstr = |p: *const std::ffi::c_char| Node::Text(unsafe { server_cstr_to_string(p) });

    // TD's values in the order the WIT's `call-trigger` gives its keys.
    let mut td = Vec::with_capacity(12);
    td.push(text(match event & pg_sys::TRIGGER_EVENT_OPMASK {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => "TRUNCATE",
    }));
    td.push(text(match event & pg_sys::TRIGGER_EVENT_TIMINGMASK {
        pg_sys::TRIGGER_EVENT_BEFORE => "BEFORE",
        pg_sys::TRIGGER_EVENT_INSTEAD => "INSTEAD OF",
        _ => "AFTER",
    }));
    td.push(text(if event & pg_sys::TRIGGER_EVENT_ROW != 0 { "ROW" } else { "STATEMENT" }));
    td.push(cstr(trigger.tgname));
    unsafe {
        let form = &*(*relation).rd_rel;
        td.push(cstr(form.relname.data.as_ptr()));
        td.push(cstr(pg_sys::get_namespace_name(form.relnamespace)));
        // A string, as PL/Python gives it.
        td.push(text(&(*relation).rd_id.to_u32().to_string()));
    }
    if trigger.tgnargs > 0 {
        td.push(Node::Array(vec![trigger.tgnargs as u32]));
        for i in 0..trigger.tgnargs as usize {
            td.push(cstr(unsafe { *trigger.tgargs.add(i) }));
        }
    } else {
        td.push(Node::Null);
    }
    let tupdesc = unsafe { (*relation).rd_att };
    let mut size = 0;
    for tuple in [new, old] {
        if tuple.is_null() {
            td.push(Node::Null);
        } else {
            // Flattened: its toasted values read in.
            let datum = unsafe { pg_sys::heap_copy_tuple_as_datum(tuple, tupdesc) };
            size += unsafe { input_size(datum, -1) };
            check_fits(size, "the trigger's rows")?;
            unsafe { rows.encode(datum, &mut td) };
        }
    }
    if hidden.is_empty() {
        td.push(Node::Null);
    } else {
        td.push(Node::Array(vec![hidden.len() as u32]));
        td.extend(hidden.into_iter().map(Node::Text));
    }
    let mut marshalled = Vec::new();
    marshal::write_values(td, &mut marshalled);
    Ok(marshalled)
}

/// The names of a table's generated columns.
unsafe fn generated_columns(relation: pg_sys::Relation) -> Vec<String> {
    let tupdesc = unsafe { (*relation).rd_att };
    if unsafe { (*tupdesc).constr.is_null() || !(*(*tupdesc).constr).has_generated_stored } {
        return Vec::new();
    }
    unsafe { attributes_of(tupdesc) }
        .iter()
        .filter(|attribute| !attribute.attisdropped && attribute.attgenerated != 0)
        .map(attribute_name)
        .collect()
}

/// The heap tuple of a composite Datum, as a trigger returns it.
unsafe fn tuple_of(datum: Datum) -> pg_sys::HeapTuple {
    unsafe {
        let header = datum.cast_mut_ptr::<pg_sys::HeapTupleHeaderData>();
        let mut tuple = pg_sys::HeapTupleData {
            t_len: pgrx::varlena::varsize(header.cast()) as u32,
            t_self: std::mem::zeroed(),
            t_tableOid: pg_sys::Oid::INVALID,
            t_data: header,
        };
        pg_sys::heap_copytuple(&mut tuple)
    }
}
