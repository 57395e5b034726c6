"""The one allow-listed unpickler for pickles another user wrote (stores, docstores).

``pickle.load`` runs whatever the file names: a hostile file executes code. This unpickler
resolves an exact list of globals and nothing else: the plain builtin containers and
numbers, numpy's reconstruction of plain numeric arrays (dtype kinds b/i/u/f/c only), and the
model classes of the named packages, which become a plain attribute holder (``Model``) whose
fields are the pickled state: no class from the file is imported, no method of it runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

PLAIN_BUILTINS = frozenset(
    {"list", "dict", "set", "frozenset", "tuple", "int", "float", "complex", "bool", "str"}
    | {"bytes", "bytearray"}
)
NUMERIC_KINDS = frozenset("biufc")
# numpy 1 (numpy.core) and numpy 2 (numpy._core) spellings of what ndarray.__reduce__ emits.
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy")


class Model:
    """Stands in for a pickled model object (pydantic v1/v2 or a plain class)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict, slots)
        fields = state.get("__dict__", state) if isinstance(state, dict) else {}
        if isinstance(fields, dict):
            self.__dict__.update(fields)


def _numeric_dtype(*args: Any) -> Any:
    import numpy as np

    dtype = np.dtype(*args)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise pickle.UnpicklingError(f"array of dtype {dtype} is not a plain numeric array")
    return dtype


def _reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:
    import numpy as np

    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, _numeric_dtype(dtype))


def _scalar(dtype: Any, data: Any) -> Any:
    import numpy as np

    return np.frombuffer(bytes(data), dtype=_numeric_dtype(dtype), count=1)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str) -> Any:
    # What ndarray.__reduce_ex__(5) emits: the array's bytes out of band or in the pickle.
    import numpy as np

    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"unexpected array order {order!r} in a pickle")
    flat = np.frombuffer(buffer, dtype=_numeric_dtype(dtype))
    return flat.reshape(shape, order="F" if order == "F" else "C").copy(order="K")


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # What _codecs.encode does for the pickles numpy writes with protocols 0-2.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r} in a pickle")
    return text.encode("latin1")


def _numpy_global(module: str, name: str) -> Any:
    import numpy as np

    if name == "_reconstruct":
        return _reconstruct
    if name == "ndarray":
        return np.ndarray
    if name == "dtype":
        return _numeric_dtype
    if name == "scalar":
        return _scalar
    raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a pickle")


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
        if module in _NUMPY_MODULES and name in ("_reconstruct", "ndarray", "dtype", "scalar"):
            return _numpy_global(module, name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _frombuffer
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
