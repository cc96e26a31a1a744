"""The pure-Python standard library, carried inside the guest.

componentize-py keeps only the modules imported while it builds the snapshot, and the host gives the
guest no files.  So at build time we compile every stdlib module to a code object and keep it
marshalled in memory; a meta-path finder then serves `import` from that table at run time.  The table
lives in the pre-initialised snapshot, whose pages the host maps copy-on-write and shares.
"""

import marshal
import os
import sys
from importlib.machinery import ModuleSpec

STDLIB_ROOT = "/python"

# Packages that make no sense without a terminal, a display or a file system, and the test suite.
_SKIPPED = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "turtle", "ensurepip", "venv", "pydoc_data",
    "__phello__", "__hello__", "site-packages", "__pycache__", "lib2to3",
})


def _walk(root, prefix, table):
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if os.path.isdir(path):
            if entry in _SKIPPED or not entry.isidentifier():
                continue
            init = os.path.join(path, "__init__.py")
            if os.path.exists(init):
                name = prefix + entry
                _add(name, init, True, table)
                _walk(path, name + ".", table)
        elif entry.endswith(".py") and entry != "__init__.py":
            # Not only identifiers: sysconfig imports `_sysconfigdata__wasi_wasm32-wasi`.
            stem = entry[:-3]
            if stem not in _SKIPPED:
                _add(prefix + stem, path, False, table)


def _add(name, path, is_package, table):
    with open(path, "rb") as f:
        source = f.read()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except SyntaxError:
        return
    table[name] = (is_package, path, marshal.dumps(code))


# What to change in a module once it is imported, by name (see `after_import`).
_patches = {}


def after_import(name, patch):
    """Has `patch(module)` adapt the stdlib module `name` to the sandbox when a body first imports
    it, rather than importing it into the snapshot for that."""
    _patches[name] = patch


class BundledStdlib:
    """A meta-path finder and loader over the marshalled table."""

    def __init__(self, table):
        self._table = table

    def find_spec(self, fullname, path=None, target=None):
        entry = self._table.get(fullname)
        if entry is None:
            return None
        is_package, origin, _ = entry
        spec = ModuleSpec(fullname, self, origin=origin, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__spec__.name
        exec(marshal.loads(self._table[name][2]), module.__dict__)
        patch = _patches.get(name)
        if patch is not None:
            patch(module)

    def is_package(self, fullname):
        return self._table[fullname][0]

    def get_source(self, fullname):
        return None


def install():
    table = {}
    _walk(STDLIB_ROOT, "", table)
    finder = BundledStdlib(table)
    sys.meta_path.insert(0, finder)
    # Nothing is on disk at run time: no path-based import may succeed or linger in caches.
    sys.path_importer_cache.clear()
    return finder
