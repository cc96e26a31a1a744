"""Compiling function bodies into Python functions, calling them, and describing their failures."""

import ast
import builtins
import copy
import gc
import itertools
import keyword
import sys
import traceback

import plpy
import values
from hostio import optional_text, wit_text
from wit_world.imports.types import PythonError

# Shared by every function of this interpreter, as PL/Python's GD.
GD = {}

_PROCEDURE_NAME = "__plpywasm_procedure"
# A global a call found unset.
_UNSET = object()

# For tracebacks, by the file name given to each compiled body: how to name it, and its lines.
_sources = {}
_serial = itertools.count(1)


class Procedure:
    __slots__ = (
        "name", "function", "namespace", "filename", "wants_args", "running", "decoders", "encode", "exact", "plain",
        "shape", "encode_modified",
    )

    def __init__(self, name, function, namespace, filename):
        self.name = name
        self.function = function
        self.namespace = namespace
        self.filename = filename
        # Whether the body may read the global `args`; setting it costs a dict store per call.
        self.wants_args = _may_read_args(function.__code__)
        # Calls of it running now, more than one when it calls itself through SQL: a cell that the
        # copies `reshaped` makes share, since a nested call may run on one.
        self.running = [0]
        # (position, decoder) of the arguments that need decoding once unmarshalled.
        self.decoders = ()
        # How the result becomes nodes, or a plain marshalled value, set from the result's shape
        # (values.encoder, values.plain_encoder).
        self.encode = None
        self.exact = None
        self.plain = None
        # A trigger's: for rows returned with "MODIFY" (values.modified_row_encoder), made on use.
        self.shape = None
        self.encode_modified = None

    def reshape(self, shape):
        self.encode = values.encoder(shape)
        self.exact, self.plain = values.plain_encoder(shape)
        self.shape = shape
        self.encode_modified = None

    def reshaped(self, shape):
        """A copy for results of `shape`. A copy, since the call that asks may be nested in a call
        of this function, which goes on with the converters it started with."""
        other = copy.copy(self)
        other.reshape(shape)
        return other

    def call(self, argv):
        if not self.wants_args:
            return self.function(*argv)
        return self.with_global("args", argv, self.function, *argv)

    def with_global(self, name, value, step, *rest):
        """Runs `step` (a call, or a step of its generator) with the global `name` (`args`, `TD`)
        set to the call's `value`. Nested in another call of the same function, it gives the outer
        one its value back, as PL/Python does. The outermost leaves it set."""
        namespace = self.namespace
        outer = namespace.get(name, _UNSET)
        namespace[name] = value
        running = self.running
        running[0] += 1
        try:
            return step(*rest)
        finally:
            running[0] -= 1
            if running[0]:
                if outer is _UNSET:
                    namespace.pop(name, None)
                else:
                    namespace[name] = outer

    def release(self):
        _sources.pop(self.filename, None)


def _filename(label):
    """A file name unique to one compiled body (functions may share a name)."""
    return "<plpywasm %d>" % next(_serial), label


def _parse(body, filename, label):
    """Parses a body, tolerating a body that is indented as a whole (as PL/Python does)."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = ast.parse(body, filename)
    except IndentationError as error:
        if error.lineno != _first_code_line(body):
            raise
        tree = _parse_indented(body, filename)
    # Tracebacks show the body's own lines: there is no file to read them from.
    _sources[filename] = (label, body.splitlines())
    return tree


def _first_code_line(body):
    """The number of the body's first line that is neither blank nor a comment."""
    for number, line in enumerate(body.split("\n"), 1):
        text = line.strip(" \t\f")
        if text and not text.startswith("#"):
            return number
    return None


def _parse_indented(body, filename):
    """A body indented as a whole, parsed as the block of an `if`: that takes any indentation and
    leaves what is inside string literals as written (removing the indentation from the text would
    change them). Its mistakes are reported at its own lines; so is a line less indented than the
    first, which would end the block (or be its `else`)."""
    try:
        wrapper = ast.parse("if 1:\n" + body, filename)
    except SyntaxError as error:
        error.lineno -= 1
        if error.end_lineno is not None:
            error.end_lineno -= 1
        raise
    block = wrapper.body[0]
    outside = wrapper.body[1:] or block.orelse
    if outside:
        number = outside[0].lineno - 1 - (0 if wrapper.body[1:] else 1)
        lines = body.split("\n")
        raise IndentationError(
            "unindent does not match any outer indentation level",
            (filename, number, 1, lines[number - 1] if 0 < number <= len(lines) else "", number, 2),
        )
    for statement in block.body:
        ast.increment_lineno(statement, -1)
    return ast.Module(body=block.body, type_ignores=[])


def _parameter(name, position):
    """SQL argument names that are not Python identifiers stay reachable through `args` only."""
    if name and name.isidentifier() and not keyword.iskeyword(name):
        return name
    return "__plpywasm_arg%d" % position


def _namespace():
    return {"__builtins__": builtins, "__name__": "__main__", "GD": GD, "SD": {}, "args": [], "plpy": plpy}


def compile_procedure(name, params, body):
    """Makes `body` the body of a `def` whose parameters are `params`; line numbers stay body-relative."""
    filename, label = _filename('function "%s"' % name)
    try:
        return _defined(name, params, body, filename, label)
    except BaseException:
        _sources.pop(filename, None)
        raise


def _defined(name, params, body, filename, label):
    """The function of `body`. Out of memory, it tries once more after a collection, which may
    free what only reference cycles held (CPython's compiler may then say SystemError)."""
    try:
        return _define(name, params, _parse(body, filename, label), filename)
    except (MemoryError, SystemError):
        gc.collect()
        return _define(name, params, _parse(body, filename, label), filename)


def _define(name, params, tree, filename):
    seen = set()
    arguments = []
    for position, param in enumerate(params):
        param = _parameter(param, position)
        if param in seen:
            param = _parameter("", position)
        seen.add(param)
        arguments.append(ast.arg(arg=param))
    tree = _ArgumentGlobals({a.arg for a in arguments}).visit(tree)
    definition = ast.FunctionDef(
        name=_PROCEDURE_NAME,
        args=ast.arguments(posonlyargs=[], args=arguments, kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        type_params=[],
        lineno=1,
        col_offset=0,
    )
    module = ast.Module(body=[definition], type_ignores=[])
    ast.fix_missing_locations(module)
    namespace = _namespace()
    exec(compile(module, filename, "exec", dont_inherit=True), namespace)
    return Procedure(name, namespace.pop(_PROCEDURE_NAME), namespace, filename)


# Names through which code can reach a global without naming it.
_DYNAMIC_GLOBALS = frozenset(("eval", "exec", "globals", "vars", "locals", "f_globals", "__globals__", "__dict__"))


def _may_read_args(code):
    """Whether `code`, or code nested in it, names `args` or reaches globals some other way."""
    names = code.co_names
    if "args" in names or not _DYNAMIC_GLOBALS.isdisjoint(names):
        return True
    return any(_may_read_args(const) for const in code.co_consts if type(const) is type(code))


class _ArgumentGlobals(ast.NodeTransformer):
    """PL/Python passes arguments as globals, and its documentation tells users to declare
    `global x` before assigning to an argument. Here arguments are parameters, where that
    declaration is a SyntaxError: drop it, so ported bodies keep working; in a function nested in
    the body, it becomes `nonlocal x`, which reaches the same argument."""

    def __init__(self, params):
        self._params = params
        self._nested = False

    def visit_Global(self, node):
        names = [n for n in node.names if n not in self._params]
        arguments = [n for n in node.names if n in self._params]
        statements = []
        if names:
            node.names = names
            statements.append(node)
        if arguments and self._nested:
            statements.append(ast.copy_location(ast.Nonlocal(names=arguments), node))
        return statements or ast.copy_location(ast.Pass(), node)

    def _nested_scope(self, node):
        nested, self._nested = self._nested, True
        try:
            return self.generic_visit(node)
        finally:
            self._nested = nested

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested_scope


def run_inline(body):
    """Runs a DO block, as the body of a function of its own (as PL/Python does: `return` ends
    it); returns a PythonError if it raised, else None."""
    filename, label = _filename("anonymous code block")
    try:
        try:
            block = _defined(_PROCEDURE_NAME, [], body, filename, label)
        except BaseException as exc:
            return describe(exc, compiling=True)
        try:
            values.plain_void(block.function())
        except BaseException as exc:
            return describe(exc, making=RETURN_VALUE)
    finally:
        _sources.pop(filename, None)
    return None


def call_trigger(procedure, td_values):
    """Runs a trigger function with `TD`; returns its verdict and, for MODIFY, the new row's nodes.
    The `hidden` columns of the new row (generated ones, in a BEFORE trigger) are not in TD["new"]."""
    # In the order the host sends them (wit/plpywasm.wit's call-trigger).
    event, when, level, name, table_name, table_schema, relid, args, new, old, hidden = td_values
    hidden = hidden or ()
    # (Only the rows hold values marshal has no type for.)
    values.revive(new)
    values.revive(old)
    # Copies: the function may change TD in place.
    original = None if new is None else dict(new)
    for column in hidden:
        del new[column]
    # A display, not dict(zip(keys, td_values)): no tuple per key.
    td = {
        "event": event, "when": when, "level": level, "name": name, "table_name": table_name,
        "table_schema": table_schema, "relid": relid, "args": args, "new": new, "old": old,
    }
    # (A query it runs may fire it again.)
    verdict = procedure.with_global("TD", td, procedure.call, [])
    if verdict is None:
        return [None]
    if not isinstance(verdict, str):
        raise values.ConversionError(
            "22000", "unexpected return value from trigger procedure", detail="Expected None or a string."
        )
    verdict = verdict.upper()
    if verdict not in ("OK", "SKIP", "MODIFY"):
        raise values.ConversionError(
            "22000",
            "unexpected return value from trigger procedure",
            detail='Expected None, "OK", "SKIP", or "MODIFY".',
        )
    out = [verdict]
    if verdict == "MODIFY" and event in ("INSERT", "UPDATE"):
        try:
            out.extend(_modified_row(procedure, td, original, hidden))
        except values.ConversionError as exc:
            exc.context = TRIGGER_ROW
            raise
    return out


def _modified_row(procedure, td, original, hidden):
    """TD["new"] as changed by the function; columns it deleted keep their values, as in PL/Python."""
    if "new" not in td:
        raise values.ConversionError("42704", 'TD["new"] deleted, cannot modify row')
    new = td["new"]
    # (A statement-level trigger has no row to modify: TD["new"] is None.)
    if not isinstance(new, dict) or original is None:
        raise values.ConversionError("42804", 'TD["new"] is not a dictionary')
    if not new.keys() <= original.keys() or not new.keys().isdisjoint(hidden):
        _refuse_modified_keys(new, original, hidden)
    if procedure.encode_modified is None:
        procedure.encode_modified = values.modified_row_encoder(procedure.shape)
    out = []
    procedure.encode_modified({**original, **new}, original, out)
    return out


# The names PostgreSQL gives every row's system columns.
_SYSTEM_COLUMNS = frozenset(("ctid", "xmin", "cmin", "xmax", "cmax", "tableoid"))


def _refuse_modified_keys(new, original, hidden):
    """Says which key of TD["new"] is not one of the row's columns the function may set."""
    for key in new:
        if not isinstance(key, str):
            raise values.ConversionError("42804", 'TD["new"] dictionary key at ordinal position %d is not a string' % list(new).index(key))
        if key in _SYSTEM_COLUMNS:
            raise values.ConversionError("0A000", 'cannot set system attribute "%s"' % key)
        if key not in original:
            raise values.ConversionError(
                "42703", 'key "%s" found in TD["new"] does not exist as a column in the triggering row' % key
            )
        if key in hidden:
            raise values.ConversionError("39P01", 'cannot set generated column "%s"' % key)


def iterate(result):
    """The rows of a set-returning function's result: any iterable, consumed lazily."""
    try:
        return iter(result)
    except TypeError:
        raise values.ConversionError(
            "42804",
            "returned object cannot be iterated",
            detail="PL/plpywasm set-returning functions must return an iterable object.",
        ) from None


def resumed(procedure, argv, rows):
    """The rows of a generator that may read the global `args`: each time it resumes (and when it
    is closed) `args` is its call's, as PL/Python restores it, though other calls of the function
    ran in between (two in one select list, or one that calls itself)."""
    try:
        while True:
            try:
                row = procedure.with_global("args", argv, next, rows)
            except StopIteration:
                return
            yield row
    finally:
        procedure.with_global("args", argv, rows.close)


def as_fetch_error(error):
    """What a set's iterator raised, reported as PL/Python reports it: "error fetching next item
    from iterator", the exception in the detail (in place of its own; its SQLSTATE, hint and the
    traceback stay). Not a conversion's error, nor plpy.fatal()."""
    if error.class_name and error.class_name != "plpy.Fatal":
        error.detail = error.class_name + ": " + error.message if error.message else error.class_name
        error.message = "error fetching next item from iterator"
        error.class_name = ""


def describe(exc, compiling=False, making=None):
    """A PythonError for the host: class, message and a traceback of the user's frames (for a
    conversion error, what it was making: its own `context`, else `making`).

    Never raises: it also describes a MemoryError or a RecursionError, whose handling must not fail.
    Clears the finished frames of the traceback once described: a cycle through them would
    otherwise keep their locals (a nested call's memory bomb, say) until the next collection.
    """
    try:
        return _describe(exc, compiling, making)
    finally:
        try:
            traceback.clear_frames(exc.__traceback__)
        except BaseException:
            pass


def _describe(exc, compiling, making):
    try:
        line = exc.lineno if compiling and isinstance(exc, SyntaxError) else None
        message = exc.msg if compiling and isinstance(exc, SyntaxError) else _message(exc)
        # Errors that carry their own SQLSTATE, detail and hint: a result that does not fit its type
        # (PostgreSQL's error, not a Python exception: no class name), plpy.error(), plpy.SPIError.
        conversion = isinstance(exc, values.ConversionError)
        fields = exc if conversion or isinstance(exc, plpy._Reported) else None
        return PythonError(
            class_name="" if conversion else _class_name(type(exc)),
            message=wit_text(message),
            traceback=(
                "" if compiling else wit_text(_format_traceback(exc.__traceback__) or _context(exc, making))
            ),
            line=line,
            sqlstate=optional_text(getattr(fields, "sqlstate", None)),
            detail=optional_text(getattr(fields, "detail", None)),
            hint=optional_text(getattr(fields, "hint", None)),
            fields=(fields._extra_fields() or None) if isinstance(fields, plpy._Reported) else None,
        )
    except BaseException:
        return PythonError(
            class_name=_class_name(type(exc)),
            message="",
            traceback="",
            line=None,
            sqlstate=None,
            detail=None,
            hint=None,
            fields=None,
        )


def _message(exc):
    """str(exc), or "unknown" where that raises, as PL/Python has it: the traceback is still told."""
    try:
        return str(exc)
    except Exception:
        return "unknown"


# What a conversion error says it was making, as PL/Python does.
RETURN_VALUE = "while creating return value"
TRIGGER_ROW = "while modifying trigger row"


# Read through `type`'s own descriptors: a metaclass may make cls.__name__ anything, even raise.
_type_name = type.__dict__["__name__"].__get__
_type_module = type.__dict__["__module__"].__get__


def _context(exc, making):
    """What a conversion was making when it failed, where no frame of the user's says more."""
    if not isinstance(exc, values.ConversionError):
        return ""
    return (making or "") if exc.context is None else exc.context


def _class_name(cls):
    name = _type_name(cls)
    module = _type_module(cls)
    if type(module) is not str or module in ("builtins", "__main__"):
        return name
    return module + "." + name


# The guest runtime's own frames are not the user's business.
_RUNTIME_FILES = frozenset({__file__, plpy.__file__, values.__file__, sys.modules["bundled_stdlib"].__file__})

# Deep recursion makes tracebacks of a million frames: show the first and the last ones.
_TRACEBACK_HEAD = 20
_TRACEBACK_TAIL = 20


def _format_traceback(tb):
    entries = []
    while tb is not None:
        entries.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    # The first frames are the guest's own dispatch code; users see from their function on.
    start = 0
    while start < len(entries) and not entries[start][0].f_code.co_filename.startswith("<plpywasm "):
        start += 1
    entries = entries[start:]
    if not entries:
        return ""
    skipped = 0
    if len(entries) > _TRACEBACK_HEAD + _TRACEBACK_TAIL:
        skipped = len(entries) - _TRACEBACK_HEAD - _TRACEBACK_TAIL
        entries = entries[:_TRACEBACK_HEAD] + entries[-_TRACEBACK_TAIL:]
    frames = traceback.StackSummary.extract(iter(entries), lookup_lines=False)
    out = ["Traceback (most recent call last):"]
    for position, frame in enumerate(frames):
        if skipped and position == _TRACEBACK_HEAD:
            out.append("  [... %d frames not shown ...]" % skipped)
        if frame.filename in _RUNTIME_FILES:
            continue
        if _is_user_frame(frame):
            label, lines = _sources.get(frame.filename, ("function", ()))
            where = "<module>" if frame.name == _PROCEDURE_NAME else frame.name
            out.append("  PL/plpywasm %s, line %d, in %s" % (label, frame.lineno, where))
            # Trailing blanks stay, as PL/Python shows the line.
            line = lines[frame.lineno - 1].lstrip() if 0 < frame.lineno <= len(lines) else ""
        else:
            out.append('  File "%s", line %d, in %s' % (frame.filename, frame.lineno, frame.name))
            line = (frame.line or "").strip()
        if line:
            out.append("    " + line)
    return "\n".join(out)


def _is_user_frame(frame):
    return frame.filename.startswith("<plpywasm ")
