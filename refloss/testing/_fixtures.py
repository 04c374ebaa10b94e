"""Locate, read and decode the conformance fixture files.

Everything here runs on the host with NumPy: a fixture tensor is decoded into a read-only
:class:`numpy.ndarray`; moving it to an array library is :mod:`refloss.testing._check`'s job.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "Case",
    "Tolerance",
    "decode_params",
    "decode_tensor",
    "encode_tensor",
    "fixture_cases",
    "fixture_names",
]

SCHEMA_NAME = "refloss_fixture_v1.schema.json"
_SUFFIX = "_test.json"
_FLOAT_DTYPES = {"float64": np.float64, "float32": np.float32}
_INT_DTYPES = {"int64": np.int64, "int32": np.int32}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

FixtureDir = Path | Traversable


class Tolerance(NamedTuple):
    """Tolerance of the ``isclose_v1`` rule: ``|actual - expected| <= atol + rtol * |expected|``."""

    rtol: float
    atol: float


@dataclass(frozen=True, eq=False)
class Case:
    """One test case of a fixture file, decoded to host NumPy arrays.

    Attributes
    ----------
    file : str
        Fixture name, the file name without ``_test.json`` (e.g. ``"retrieval_loss"``).
    function : str
        The ``function`` field of the file, e.g. ``"refloss.retrieval_loss"``.
    kind : {"function", "sequence"}
        ``"function"``: one call per case. ``"sequence"``: a replay of state-update steps.
    tc_id : int
        Test-case id, unique and stable within the file.
    comment : str
        What the case exercises.
    flags : tuple of str
        Conventions and edge cases the case depends on; keys of :attr:`notes`.
    inputs : mapping of str to numpy.ndarray
        Input arrays by argument name (read-only).
    params : mapping of str to object
        Non-array keyword options; the group's, overridden by the case's own.
    dtypes : tuple of str
        Float dtypes the case runs in (``"float64"``, ``"float32"``).
    expected : mapping of str to numpy.ndarray
        Expected outputs by output name (read-only); empty for invalid cases.
    result : {"valid", "invalid", "acceptable"}
        ``valid``: must match ``expected``. ``invalid``: must raise. ``acceptable``: may
        raise, and when it returns it is compared with refloss's convention in ``expected``.
    error : str or None
        Exception an invalid case raises in Python (``"ValueError"`` or ``"TypeError"``).
    tolerance : mapping of str to Tolerance
        Tolerance per float dtype; the group's, overridden by the case's own.
    positional : tuple of str
        Input names passed positionally, in order; other inputs are passed by keyword.
    outputs : tuple of str
        Names of the outputs, in the order the function returns them.
    notes : mapping of str to mapping
        The file's ``notes``: ``{flag: {"kind": ..., "description": ...}}``.
    steps : tuple of mapping
        For sequence cases: the steps, ``{"inputs", "params"?, "expected"?}``, decoded.
    init : mapping of str to object
        For sequence cases: ``{"params": options, "state": tensors}`` for the initial state.
    """

    file: str
    function: str
    kind: Literal["function", "sequence"]
    tc_id: int
    comment: str
    flags: tuple[str, ...]
    inputs: Mapping[str, np.ndarray]
    params: Mapping[str, Any]
    dtypes: tuple[str, ...]
    expected: Mapping[str, np.ndarray]
    result: Literal["valid", "invalid", "acceptable"]
    error: str | None
    tolerance: Mapping[str, Tolerance]
    positional: tuple[str, ...]
    outputs: tuple[str, ...]
    notes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    steps: tuple[Mapping[str, Any], ...] = ()
    init: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable test id, ``"<file>-tc<tcId>"``."""
        return f"{self.file}-tc{self.tc_id}"

    def has_flag(self, flag: str) -> bool:
        """Return whether the case carries `flag`.

        Parameters
        ----------
        flag : str
            A key of the file's ``notes``.

        Returns
        -------
        bool
            True when `flag` is in :attr:`flags`.
        """
        return flag in self.flags


def _conformance_dir() -> FixtureDir:
    """Return the directory holding the ``*_test.json`` fixture files.

    An installed wheel carries the files as package data at
    ``importlib.resources.files("refloss") / "conformance"`` (the build force-includes the
    repository's top-level ``conformance/`` there). A source checkout or an editable install
    has no such directory inside the package, so the fallback is ``conformance/`` next to the
    ``refloss/`` package directory, i.e. the repository root.

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
        The fixture directory.

    Raises
    ------
    FileNotFoundError
        When neither location exists.
    """
    packaged = resources.files("refloss") / "conformance"
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parent.parent.parent / "conformance"
    if source.is_dir():
        return source
    msg = (
        "refloss conformance fixtures not found: looked for package data at "
        f"{packaged} and for a source checkout at {source}"
    )
    raise FileNotFoundError(msg)


def _resolve_dir(directory: str | FixtureDir | None) -> FixtureDir:
    if directory is None:
        return _conformance_dir()
    if isinstance(directory, str):
        return Path(directory)
    return directory


def _file_stem(name: str) -> str:
    """Normalise ``x``, ``x_test`` and ``x_test.json`` to ``x``."""
    for suffix in (_SUFFIX, "_test"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def fixture_names(directory: str | FixtureDir | None = None) -> list[str]:
    """List the available fixture files.

    Parameters
    ----------
    directory : str or path-like, optional
        Directory to read instead of refloss's own fixtures.

    Returns
    -------
    list of str
        Sorted names without the ``_test.json`` suffix, e.g. ``["logsumexp", ...]``.

    Examples
    --------
    >>> import refloss.testing
    >>> "retrieval_loss" in refloss.testing.fixture_names()
    True
    """
    root = _resolve_dir(directory)
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in root.iterdir()
        if entry.name.endswith(_SUFFIX) and entry.is_file()
    )


def fixture_cases(name: str, directory: str | FixtureDir | None = None) -> list[Case]:
    """Read every test case of one fixture file.

    Parameters
    ----------
    name : str
        Fixture name (``"retrieval_loss"``; ``"retrieval_loss_test.json"`` also works).
    directory : str or path-like, optional
        Directory to read instead of refloss's own fixtures.

    Returns
    -------
    list of Case
        The cases in file order.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is malformed (wrong schema name, inconsistent tensor, unknown flag).

    Examples
    --------
    >>> import refloss.testing
    >>> cases = refloss.testing.fixture_cases("retrieval_loss")
    >>> cases[0].inputs["query_embeddings"].shape
    (4, 8)
    """
    root = _resolve_dir(directory)
    stem = _file_stem(name)
    entry = root / f"{stem}{_SUFFIX}"
    if not entry.is_file():
        available = ", ".join(fixture_names(root)) or "none"
        msg = f"no fixture file {stem}{_SUFFIX!s} in {root} (available: {available})"
        raise FileNotFoundError(msg)
    return list(_load_cases(stem, entry.read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=64)
def _load_cases(stem: str, text: str) -> tuple[Case, ...]:
    doc = json.loads(text)
    try:
        return tuple(_iter_cases(stem, doc))
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"malformed fixture file {stem}{_SUFFIX}: {exc!r}"
        raise ValueError(msg) from exc


def _iter_cases(stem: str, doc: Mapping[str, Any]) -> Iterator[Case]:
    if doc.get("schema") != SCHEMA_NAME:
        msg = f"schema is {doc.get('schema')!r}, expected {SCHEMA_NAME!r}"
        raise ValueError(msg)
    if doc.get("comparison", "isclose_v1") != "isclose_v1":
        msg = f"unknown comparison rule {doc['comparison']!r}"
        raise ValueError(msg)
    kind = doc.get("kind", "function")
    arguments = doc.get("arguments", {})
    positional = tuple(arguments.get("positional", ()))
    outputs = tuple(arguments.get("outputs", ()))
    notes = MappingProxyType({k: MappingProxyType(v) for k, v in doc.get("notes", {}).items()})
    seen: set[int] = set()
    for group in doc["testGroups"]:
        group_params = group.get("params", {})
        group_tol = _tolerances(group.get("tolerance", {}))
        for test in group["tests"]:
            tc_id = int(test["tcId"])
            if tc_id in seen:
                msg = f"duplicate tcId {tc_id}"
                raise ValueError(msg)
            seen.add(tc_id)
            flags = tuple(test.get("flags", ()))
            unknown = [f for f in flags if f not in notes]
            if unknown:
                msg = f"tcId {tc_id}: flags {unknown} are not described in notes"
                raise ValueError(msg)
            tolerance = {**group_tol, **_tolerances(test.get("tolerance", {}))}
            yield Case(
                file=stem,
                function=doc["function"],
                kind=kind,
                tc_id=tc_id,
                comment=test.get("comment", ""),
                flags=flags,
                inputs=_tensors(test.get("inputs", {})),
                params=MappingProxyType(decode_params({**group_params, **test.get("params", {})})),
                dtypes=tuple(test.get("dtypes", ("float64", "float32"))),
                expected=_tensors(test.get("expected", {})),
                result=test["result"],
                error=test.get("error"),
                tolerance=MappingProxyType(tolerance),
                positional=positional,
                outputs=outputs,
                notes=notes,
                steps=tuple(_step(s) for s in test.get("steps", ())),
                init=_init(test.get("init", {})),
            )


def decode_params(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a case's non-array options.

    JSON has no non-finite numbers, so a non-finite option is spelled as in tensor data
    (``"temperature": "Infinity"``); those three strings become floats, everything else is
    kept as is.

    Parameters
    ----------
    obj : mapping
        Options as read from JSON.

    Returns
    -------
    dict
        Options with ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` decoded.
    """
    return {k: _NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in obj.items()}


def _tolerances(obj: Mapping[str, Mapping[str, float]]) -> dict[str, Tolerance]:
    return {
        dtype: Tolerance(float(tol.get("rtol", 0.0)), float(tol.get("atol", 0.0)))
        for dtype, tol in obj.items()
    }


def _tensors(obj: Mapping[str, Mapping[str, Any]]) -> Mapping[str, np.ndarray]:
    return MappingProxyType({name: decode_tensor(t, name=name) for name, t in obj.items()})


def _step(step: Mapping[str, Any]) -> Mapping[str, Any]:
    decoded = dict(step)
    for key in ("inputs", "expected"):
        if key in decoded:
            decoded[key] = _tensors(decoded[key])
    if "params" in decoded:
        decoded["params"] = MappingProxyType(decode_params(decoded["params"]))
    return MappingProxyType(decoded)


def _init(init: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(
        {
            "params": MappingProxyType(decode_params(init.get("params", {}))),
            "state": _tensors(init.get("state", {})),
        }
    )


def _decode_float(value: float | int | str) -> float:
    if isinstance(value, str):
        if value not in _NON_FINITE:
            msg = f"float element {value!r} is not a number nor one of {sorted(_NON_FINITE)}"
            raise ValueError(msg)
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"float element {value!r} is not a number"
        raise TypeError(msg)
    return float(value)


def _decode_bits(bits: str, dtype: str, size: int) -> np.ndarray:
    width = {"float64": 16, "float32": 8}
    if len(bits) == 16 * size:
        fmt, host = "d", np.float64
    elif len(bits) == 8 * size:
        fmt, host = "f", np.float32
    else:
        msg = f"bits has {len(bits)} hex digits, expected {width[dtype] * size} for {size} elements"
        raise ValueError(msg)
    raw = bytes.fromhex(bits)
    values = struct.unpack(f">{size}{fmt}", raw)
    return np.asarray(values, dtype=host).astype(_FLOAT_DTYPES[dtype])


def decode_tensor(obj: Mapping[str, Any], *, name: str = "tensor") -> np.ndarray:
    """Decode one fixture tensor into a read-only NumPy array.

    Parameters
    ----------
    obj : mapping
        ``{"dtype", "shape", "data", "bits"?}`` as written in a fixture file. Floats are
        JSON numbers or the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; ``bits``,
        when present, holds the same elements as big-endian IEEE-754 hex and is the value
        used (it must agree with ``data``).
    name : str, optional
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        Array of the declared dtype and shape, C order, not writeable.

    Raises
    ------
    ValueError
        When the element count, dtype or ``bits`` disagree with the declaration.
    """
    dtype = obj["dtype"]
    shape = tuple(int(n) for n in obj["shape"])
    data = obj["data"]
    size = math.prod(shape)
    if len(data) != size:
        msg = f"{name}: shape {list(shape)} needs {size} elements, data has {len(data)}"
        raise ValueError(msg)
    if dtype in _FLOAT_DTYPES:
        values = np.asarray([_decode_float(v) for v in data], dtype=np.float64)
        if dtype == "float32" and not np.array_equal(
            values.astype(np.float32).astype(np.float64), values, equal_nan=True
        ):
            msg = f"{name}: float32 data holds values not exactly representable in float32"
            raise ValueError(msg)
        array = values.astype(_FLOAT_DTYPES[dtype])
        if "bits" in obj:
            exact = _decode_bits(obj["bits"], dtype, size)
            same = (exact == array) | (np.isnan(exact) & np.isnan(array))
            same &= np.signbit(exact) == np.signbit(array)
            if not np.all(same):
                msg = f"{name}: bits and data disagree at flat index {int(np.argmin(same))}"
                raise ValueError(msg)
            array = exact
    elif dtype in _INT_DTYPES:
        if any(isinstance(v, bool) or not isinstance(v, int) for v in data):
            msg = f"{name}: {dtype} data must be JSON integers"
            raise TypeError(msg)
        array = np.asarray(data, dtype=_INT_DTYPES[dtype])
    elif dtype == "bool":
        if any(not isinstance(v, bool) for v in data):
            msg = f"{name}: bool data must be JSON true/false"
            raise TypeError(msg)
        array = np.asarray(data, dtype=np.bool_)
    else:
        msg = f"{name}: unknown dtype {dtype!r}"
        raise ValueError(msg)
    array = np.array(array.reshape(shape), order="C")
    array.flags.writeable = False
    return array


def encode_tensor(array: np.ndarray) -> dict[str, Any]:
    """Encode a host array in the fixture tensor format (without ``bits``).

    Parameters
    ----------
    array : numpy.ndarray
        Float, integer or boolean array.

    Returns
    -------
    dict
        ``{"dtype", "shape", "data"}``; non-finite floats as ``"NaN"``, ``"Infinity"``,
        ``"-Infinity"`` so the result is strict JSON.
    """
    array = np.asarray(array)
    flat = array.reshape(-1)
    if np.issubdtype(array.dtype, np.floating):
        data: list[Any] = [
            float(v)
            if math.isfinite(v)
            else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
            for v in flat.tolist()
        ]
    else:
        data = flat.tolist()
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": data}
