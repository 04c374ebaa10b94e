"""Tensor encoding and the canonical JSON form of the fixture files.

A tensor is ``{"dtype", "shape", "data", "bits"?}``: ``data`` lists the elements in
row-major order (non-finite floats spelled ``"NaN"``, ``"Infinity"``, ``"-Infinity"``),
and float tensors also carry ``bits``, the big-endian IEEE-754 patterns of the elements
as one lowercase hex string (16 digits per float64, 8 per float32).
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

FLOAT_DTYPES = ("float64", "float32")
INT_DTYPES = ("int64", "int32")
MAX_SAFE_INT = 2**53 - 1
_PACK = {"float64": ">d", "float32": ">f"}
_HEX_DIGITS = {"float64": 16, "float32": 8}
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def float_to_json(x: float) -> float | str:
    """Return a float as a JSON value: the number itself, or its non-finite spelling."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def json_to_float(v: float | int | str) -> float:
    """Inverse of :func:`float_to_json`."""
    if isinstance(v, str):
        return _NONFINITE[v]
    return float(v)


def float_bits(values, dtype: str) -> str:
    """Return the concatenated big-endian IEEE-754 hex patterns of ``values``."""
    fmt = _PACK[dtype]
    return "".join(struct.pack(fmt, float(v)).hex() for v in values)


def floats_from_bits(bits: str, dtype: str) -> list[float]:
    """Decode a ``bits`` string into Python floats."""
    width = _HEX_DIGITS[dtype]
    if len(bits) % width:
        raise ValueError(f"bits length {len(bits)} is not a multiple of {width}")
    fmt = _PACK[dtype]
    return [
        struct.unpack(fmt, bytes.fromhex(bits[k : k + width]))[0]
        for k in range(0, len(bits), width)
    ]


def encode_tensor(array, dtype: str | None = None) -> dict:
    """Encode a NumPy array (or scalar) as a fixture tensor.

    ``dtype`` defaults to the array's dtype name.  Float tensors are always written with
    their exact value; a float32 tensor must hold float32-representable values.
    """
    arr = np.asarray(array)
    dtype = dtype or arr.dtype.name
    shape = [int(s) for s in arr.shape]
    flat = arr.reshape(-1).tolist()
    if dtype in FLOAT_DTYPES:
        values = [float(v) for v in flat]
        if dtype == "float32":
            for v in values:
                if not math.isnan(v) and float(np.float32(v)) != v:
                    raise ValueError(f"{v!r} is not representable in float32")
        return {
            "bits": float_bits(values, dtype),
            "data": [float_to_json(v) for v in values],
            "dtype": dtype,
            "shape": shape,
        }
    if dtype in INT_DTYPES:
        values = [int(v) for v in flat]
        if any(abs(v) > MAX_SAFE_INT for v in values):
            raise ValueError("integer outside +-(2**53 - 1)")
        return {"data": values, "dtype": dtype, "shape": shape}
    if dtype == "bool":
        return {"data": [bool(v) for v in flat], "dtype": dtype, "shape": shape}
    raise ValueError(f"unsupported dtype {dtype!r}")


def decode_tensor(tensor: dict, *, use_bits: bool = True) -> np.ndarray:
    """Decode a fixture tensor into a NumPy array of its stored dtype."""
    dtype = tensor["dtype"]
    if dtype in FLOAT_DTYPES:
        if use_bits:
            values = floats_from_bits(tensor["bits"], dtype)
        else:
            values = [json_to_float(v) for v in tensor["data"]]
        return np.array(values, dtype=dtype).reshape(tensor["shape"])
    return np.array(tensor["data"], dtype=dtype).reshape(tensor["shape"])


def dumps(document: dict) -> str:
    """Return the canonical text of a fixture file (sorted keys, 2-space indent, LF)."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=True) + "\n"
