"""The one allow-listed unpickler for pickles another user wrote (stores, docstores).

``pickle.load`` runs whatever the file names: a hostile file executes code. This unpickler
resolves an exact list of globals and nothing else: the plain builtin containers and
numbers, numpy's four array/scalar globals (read without numpy by agent.migrate.arrays:
C-ordered bool, integer and float arrays only), and the
model classes of the named packages, which become a plain attribute holder (``Model``) whose
fields are the pickled state: no class from the file is imported, no method of it runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from agent.migrate.arrays import numpy_global

PLAIN_BUILTINS = frozenset(
    {"list", "dict", "set", "frozenset", "tuple", "int", "float", "complex", "bool", "str"}
    | {"bytes", "bytearray"}
)


class Model:
    """Stands in for a pickled model object (pydantic v1/v2 or a plain class)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict, slots)
        fields = state.get("__dict__", state) if isinstance(state, dict) else {}
        if isinstance(fields, dict):
            self.__dict__.update(fields)


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # What _codecs.encode does for the pickles numpy writes with protocols 0-2.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r} in a pickle")
    return text.encode("latin1")


class SafeUnpickler(pickle.Unpickler):
    """Refuses every global but the allow-list.

    ``model_modules`` names what becomes a ``Model``: a package (every class in it) or one
    class by its qualified name (``package.module.Class``).
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, model_modules: tuple[str, ...]):
        super().__init__(file)
        self._model_modules = model_modules

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocols 0-2 spell it as Python 2 did
            module = "builtins"
        if module == "builtins" and name in PLAIN_BUILTINS:
            return super().find_class(module, name)
        if module.split(".", maxsplit=1)[0] == "numpy":
            found = numpy_global(module, name)  # read without numpy (agent/migrate/arrays.py)
            if found is not None:
                return found
        if module == "_codecs" and name == "encode":
            return _latin1
        qualified = f"{module}.{name}"
        if any(m in (qualified, module) or module.startswith(m + ".") for m in self._model_modules):
            return Model
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    # Persistent ids would hand objects to code outside this list.
    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def loads(data: bytes, model_modules: tuple[str, ...] = ()) -> Any:
    """Unpickle ``data`` with the allow-list; raises pickle.UnpicklingError on anything else."""
    return SafeUnpickler(io.BytesIO(data), model_modules).load()


UNPICKLE_ERRORS: tuple[type[Exception], ...] = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    MemoryError,
)


def describe(exc: BaseException) -> str:
    """One line for an unpickling failure."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
