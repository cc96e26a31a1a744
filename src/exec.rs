//! One use of the guest: a function call, a `DO` block, or a validation, each in the current role's
//! interpreter. Output the guest printed is reported once the guest has returned.

use pgrx::pg_sys::{self, Datum};
use pgrx::{notice, warning};

use crate::error::PlError;
use crate::interpreters::with_interpreter;
use crate::procedure::Procedure;
use crate::runtime::{Output, Stream, Value};

/// Calls `procedure` with the arguments in `fcinfo`; sets `fcinfo->isnull` for a NULL result.
///
/// # Safety
/// `fcinfo` must be the live call info of a call to `procedure`.
pub unsafe fn call(fcinfo: pg_sys::FunctionCallInfo, procedure: &Procedure) -> Result<Datum, PlError> {
    let flinfo = unsafe { (*fcinfo).flinfo };
    let converters = procedure.arg_converters(flinfo)?;
    let passed = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) };
    let args: Vec<Value> = converters
        .iter()
        .zip(passed)
        .map(|(converter, arg)| if arg.isnull { Value::Null } else { unsafe { converter.to_value(arg.value) } })
        .collect();
    let result = procedure.result_converter(flinfo)?;
    let kind = result.kind();
    let value = finish(with_interpreter(|slot| {
        let handle = slot.handle(procedure)?;
        slot.call(handle, &args, kind)
    }))?;
    let (datum, is_null) = result.to_datum(value)?;
    unsafe { (*fcinfo).isnull = is_null };
    Ok(datum)
}

/// Runs the body of a `DO` block.
pub fn run_inline(body: &str) -> Result<(), PlError> {
    finish(with_interpreter(|slot| slot.run_inline(body)))
}

/// Compiles `procedure`'s body to report syntax errors at `CREATE FUNCTION`.
pub fn validate(procedure: &Procedure) -> Result<(), PlError> {
    finish(with_interpreter(|slot| slot.check(procedure)))
}

fn finish<T>(outcome: Result<(Result<T, PlError>, Output), PlError>) -> Result<T, PlError> {
    let (result, output) = outcome?;
    report(output);
    result
}

/// `print()` becomes NOTICE lines and `sys.stderr` WARNING lines, in the order written.
fn report(output: Output) {
    for (stream, line) in output.lines {
        match stream {
            Stream::Stdout => notice!("{line}"),
            Stream::Stderr => warning!("{line}"),
        }
    }
    if output.dropped > 0 {
        warning!(
            "PL/plpywasm output truncated: {} bytes over plpywasm.max_output were dropped",
            output.dropped
        );
    }
}
