"""Unpickling what another user wrote, without running anything of theirs.

``pickle`` calls whatever global a file names, so ``find_class`` here resolves none of them: an
exact allow-list of plain builtins is returned as they are, the model classes the caller names
(``ModelNames``: qdrant-client's for an embedded store, LangChain's docstore and document
classes for a FAISS ``index.pkl``) become the inert ``Model`` holder, and the few names an
array of plain numbers pickles to (numpy's ``_reconstruct``/``_frombuffer``, ``ndarray``,
``dtype``, ``scalar``, and protocol 2's ``_codecs.encode`` of latin1 bytes) are replaced by
functions of this module that rebuild the numbers from their bytes with ``struct``: numpy
itself is never imported or called. Any other global, whatever its module (``numpy.*``
included), an object or structured dtype, or bytes that do not match the shape stop the load
(UnpicklingError).

"""

from __future__ import annotations

import io
import itertools
import math
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Exactly these, by name: constructors of plain values that run no code of the file.
SAFE_BUILTINS = frozenset(
    {"bool", "bytes", "bytearray", "dict", "float", "frozenset", "int", "list"}
    | {"set", "str", "tuple"}
)
# numpy dtype code -> struct format; bool, signed and unsigned ints, half/single/double floats.
NUMERIC_DTYPES = {
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
_DTYPE_ALIASES = {"?": "b1", "bool": "b1", "float32": "f4", "float64": "f8", "float16": "f2"}
_MAX_ELEMENTS = 1 << 26


class Frozen(type):
    """Metaclass of every class a pickle may name: pickle's BUILD can set attributes on what
    ``find_class`` returned; on these it cannot, so one row cannot change how the next is read."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise pickle.UnpicklingError(f"cannot set {name!r} on {cls.__name__}")

    def __delattr__(cls, name: str) -> None:
        raise pickle.UnpicklingError(f"cannot delete {name!r} of {cls.__name__}")


class Model(metaclass=Frozen):
    """Stands in for a pickled model object (pydantic v1/v2 or a plain class): its fields only;
    no class of the file is imported and no method of it runs."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | None):
            slots = state[1] if isinstance(state[1], dict) else {}
            state = {**(state[0] or {}), **slots}  # (dict, slots) of a class with __slots__
        fields = state.get("__dict__", state) if isinstance(state, dict) else None
        if not isinstance(fields, dict):
            raise pickle.UnpicklingError("a model's state is not a mapping")
        self.__dict__.update(fields)


@dataclass(frozen=True)
class ModelNames:
    """The globals that become ``Model``: any class of these packages, or exactly these
    classes (``module.Class``). Nothing else of the file's is resolved."""

    packages: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()

    def allows(self, module: str, name: str) -> bool:
        if f"{module}.{name}" in self.classes:
            return True
        return name.isidentifier() and any(
            module == p or module.startswith(p + ".") for p in self.packages
        )


QDRANT_MODELS = ModelNames(packages=("qdrant_client",))


class _Fn:
    """A stand-in function behind an object without attributes (no __defaults__ to set)."""

    __slots__ = ("_fn",)
    _fn: Callable[..., Any]

    def __init__(self, fn: Callable[..., Any]) -> None:
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise pickle.UnpicklingError(f"cannot set {name!r}")


class _NdarrayToken(metaclass=Frozen):
    """What ``numpy.ndarray`` resolves to: only a marker for ``_reconstruct``."""


class _DType(metaclass=Frozen):
    """A plain numeric dtype: its code and byte order, nothing else."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.order = "<"

    def __setstate__(self, state: Any) -> None:
        # numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 5:
            raise pickle.UnpicklingError("unexpected dtype state")
        order, subarray, names, fields = state[1], state[2], state[3], state[4]
        if subarray is not None or names is not None or fields is not None:
            raise pickle.UnpicklingError("a structured dtype is not a plain numeric array")
        if order not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"unexpected byte order {order!r}")
        self.order = "<" if order in ("|", "=") else order

    @property
    def format(self) -> str:
        return NUMERIC_DTYPES[self.code]


def _make_dtype(spec: Any, align: Any = False, copy: Any = True) -> _DType:
    code = _DTYPE_ALIASES.get(spec, spec) if isinstance(spec, str) else None
    if code not in NUMERIC_DTYPES:
        raise pickle.UnpicklingError(f"dtype {spec!r} is not a plain numeric type")
    return _DType(code)


class _Array(metaclass=Frozen):
    """A rebuilt array: ``tolist()`` gives the nested lists numpy's own would."""

    def __init__(self, values: Any = None) -> None:
        self.values: Any = values

    def tolist(self) -> Any:
        return self.values

    def __setstate__(self, state: Any) -> None:
        # ndarray's state: (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("unexpected array state")
        _, shape, dtype, fortran, raw = state
        self.values = _decode(raw, dtype, shape, bool(fortran))


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NdarrayToken:
        raise pickle.UnpicklingError("_reconstruct of something other than ndarray")
    return _Array()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _Array:
    return _Array(_decode(buffer, dtype, shape, order == "F"))


def _scalar(dtype: Any, raw: Any) -> Any:
    return _decode(raw, dtype, (), False)


def _decode(raw: Any, dtype: Any, shape: Any, fortran: bool) -> Any:
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError("an array without a plain numeric dtype")
    if not isinstance(raw, bytes | bytearray):
        raise pickle.UnpicklingError("an array whose data are not bytes (an object array?)")
    if not isinstance(shape, tuple) or not all(
        type(n) is int and 0 <= n <= _MAX_ELEMENTS for n in shape
    ):
        raise pickle.UnpicklingError("an array with an unexpected shape")
    count = math.prod(shape)
    size = struct.calcsize(dtype.format)
    if count > _MAX_ELEMENTS or count * size != len(raw):
        raise pickle.UnpicklingError("an array whose data do not match its shape")
    flat = list(struct.unpack(f"{dtype.order}{count}{dtype.format}", bytes(raw)))
    if not shape:
        return flat[0]
    return _nest(flat, list(shape), fortran)


def _nest(flat: list[Any], shape: list[int], fortran: bool) -> Any:
    if fortran and len(shape) > 1:
        # Column-major bytes: reorder into row-major before nesting.
        strides = [math.prod(shape[:i]) for i in range(len(shape))]
        flat = [
            flat[sum(i * s for i, s in zip(index, strides, strict=True))]
            for index in itertools.product(*(range(n) for n in shape))
        ]
    return _rows(flat, shape)


def _rows(flat: list[Any], shape: list[int]) -> Any:
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_rows(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 spells bytes as _codecs.encode(str, 'latin1'); no other codec is run.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode with anything but a latin1 string")
    return text.encode("latin1")


_NUMPY: dict[tuple[str, str], Any] = {("_codecs", "encode"): _Fn(_latin1)}
for _core in ("numpy.core", "numpy._core"):
    _NUMPY[(f"{_core}.multiarray", "_reconstruct")] = _Fn(_reconstruct)
    _NUMPY[(f"{_core}.multiarray", "scalar")] = _Fn(_scalar)
    _NUMPY[(f"{_core}.numeric", "_frombuffer")] = _Fn(_frombuffer)
_NUMPY[("numpy", "ndarray")] = _NdarrayToken
_NUMPY[("numpy", "dtype")] = _Fn(_make_dtype)


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, models: ModelNames | None) -> None:
        super().__init__(io.BytesIO(data))
        self._models = models

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 2's spelling (fix_imports)
            module = "builtins"
        if module == "builtins" and name in SAFE_BUILTINS:
            return super().find_class(module, name)
        if self._models is not None and self._models.allows(module, name):
            return Model
        stand_in = _NUMPY.get((module, name))
        if stand_in is not None:
            return stand_in
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent references are not allowed")


def restricted_load(data: bytes, models: ModelNames | None = None) -> Any:
    """Unpickle ``data`` under the rules above; the classes ``models`` names load as ``Model``;
    without it every class is refused (a point id is a plain value)."""
    return RestrictedUnpickler(data, models).load()


def describe(exc: BaseException) -> str:
    """One line for whatever a load raised (bytes can make the unpickler raise anything)."""
    text = str(exc)
    return text.splitlines()[0][:200] if text.strip() else type(exc).__name__
