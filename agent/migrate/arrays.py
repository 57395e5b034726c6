"""numpy's pickled arrays and scalars, read without numpy. Pure: bytes in, lists out.

Older qdrant-client versions stored vectors as numpy arrays inside the pickled points. The
.deb carries no numpy (it is only a dependency of qdrant-client, which only the tests
install), so the migration's unpickler maps numpy's four pickle globals here; any other
numpy global stays refused. Only C-ordered arrays of booleans, integers and floats exist
in stored points: anything else is an UnpicklingError naming it.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

# numpy's type code (kind + size) -> struct's.
_FORMATS = {
    "b1": "?",
    "i1": "b",
    "i2": "h",
    "i4": "i",
    "i8": "q",
    "u1": "B",
    "u2": "H",
    "u4": "I",
    "u8": "Q",
    "f2": "e",
    "f4": "f",
    "f8": "d",
}
_MULTIARRAY = frozenset({"numpy.core.multiarray", "numpy._core.multiarray"})


class DType:
    """numpy.dtype('f4', ...) with its byte order from __setstate__."""

    def __init__(self, code: str, _align: bool = False, _copy: bool = True) -> None:
        if code not in _FORMATS:
            raise pickle.UnpicklingError(f"a stored numpy value has the unsupported type {code!r}")
        self.code = code
        self.order = "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
            self.order = state[1]

    def unpack(self, raw: bytes) -> list[Any]:
        fmt = _FORMATS[self.code]
        count = len(raw) // struct.calcsize(fmt)
        return list(struct.unpack(f"{self.order}{count}{fmt}", raw))


class NdArray:
    """numpy.ndarray as pickled by _reconstruct + __setstate__; ``tolist`` as numpy's."""

    def __init__(self) -> None:
        self._values: Any = []

    def __setstate__(self, state: Any) -> None:
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, DType) or not isinstance(raw, bytes):
            raise pickle.UnpicklingError("a stored numpy array holds objects, not numbers")
        if fortran and len(shape) > 1:
            raise pickle.UnpicklingError("a stored numpy array is in Fortran order")
        self._values = _nest(dtype.unpack(raw), tuple(shape))

    def tolist(self) -> Any:
        return self._values


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _reconstruct(_cls: Any, _shape: Any, _typecode: Any) -> NdArray:
    return NdArray()


def _scalar(dtype: DType, raw: bytes) -> Any:
    return dtype.unpack(raw)[0]


def numpy_global(module: str, name: str) -> Any:
    """The stand-in for one numpy pickle global, or None when it is not one of the four."""
    if module in _MULTIARRAY:
        return {"_reconstruct": _reconstruct, "scalar": _scalar}.get(name)
    if module == "numpy":
        return {"ndarray": NdArray, "dtype": DType}.get(name)
    return None
