r"""Deterministic 64-bit hashing of integer ids with int64 array operations only.

The bucket hash of :mod:`refloss.frequency`, whose module docstring specifies it bit for
bit. Every value is a 64-bit two's complement integer held in an int64 array; the
functions rely on two properties that NumPy, CuPy, PyTorch, JAX (with ``jax_enable_x64``)
and array-api-strict share, and that ``tests/test_frequency.py`` checks on each of them:

* int64 multiplication wraps modulo :math:`2^{64}` (the low 64 bits of the product, read
  as two's complement);
* ``>>`` on int64 is the arithmetic (sign-filling) shift, so the *logical* shift
  :math:`z \ggg k` is ``(z >> k) & (2**(64 - k) - 1)``.

Constants at or above :math:`2^{63}` are written as their signed int64 values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from ._lib._typing import Array, ArrayNamespace

__all__ = [
    "GOLDEN_GAMMA",
    "MIX_1",
    "MIX_2",
    "bucket_index",
    "mix64",
    "splitmix64_seeds",
    "string_ids",
]

_MASK64 = (1 << 64) - 1

GOLDEN_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment, 2**64 / golden ratio (odd)
MIX_1 = 0xBF58476D1CE4E5B9  # the multipliers of SplitMix64's output function
MIX_2 = 0x94D049BB133111EB


def to_signed(value: int) -> int:
    """The int64 two's complement reading of ``value mod 2**64``."""
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


_MIX_1_SIGNED = to_signed(MIX_1)
_MIX_2_SIGNED = to_signed(MIX_2)


def _mix64_int(z: int) -> int:
    """SplitMix64's output function on a Python int in ``[0, 2**64)``."""
    z = ((z ^ (z >> 30)) * MIX_1) & _MASK64
    z = ((z ^ (z >> 27)) * MIX_2) & _MASK64
    return z ^ (z >> 31)


def splitmix64_seeds(seed: int, count: int) -> list[int]:
    """The first ``count`` outputs of SplitMix64 seeded with ``seed``, as signed int64 values.

    Output ``i`` (from 0) is ``mix64((seed + (i + 1) * GOLDEN_GAMMA) mod 2**64)``.
    """
    return [to_signed(_mix64_int((seed + (i + 1) * GOLDEN_GAMMA) & _MASK64)) for i in range(count)]


def _shift_right_logical(z: Array, k: int) -> Array:
    """:math:`z \\ggg k` for ``0 < k < 64`` on an int64 array: zeros enter from the left."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def mix64(z: Array) -> Array:
    """SplitMix64's output function, elementwise on an int64 array (wrapping arithmetic)."""
    z = (z ^ _shift_right_logical(z, 30)) * _MIX_1_SIGNED
    z = (z ^ _shift_right_logical(z, 27)) * _MIX_2_SIGNED
    return z ^ _shift_right_logical(z, 31)


def bucket_index(ids: Array, seeds: Array, num_buckets: int, *, xp: ArrayNamespace) -> Array:
    r"""``(H, n)`` int64 buckets in ``[0, num_buckets)``: hash ``i`` of id ``j`` in row ``i``.

    ``ids`` is a 1-D int64 array, ``seeds`` a 1-D int64 array of ``H`` seeds, and
    ``1 <= num_buckets <= 2**32``. The high 32 bits :math:`h` of the mixed value are mapped
    to :math:`\lfloor h M / 2^{32} \rfloor`; :math:`h M < 2^{64}`, so its wrapped int64
    product has the bit pattern of the exact product and the logical shift by 32 reads
    its high word. Two shortcuts give the same values with fewer operations: for
    :math:`M = 2^k`, :math:`k \ge 1`, the result is :math:`z \ggg (64 - k)`; for
    :math:`M \le 2^{31}` the product is below :math:`2^{63}` (non-negative), so the
    arithmetic shift equals the logical one.
    """
    z = mix64(ids[None, :] ^ seeds[:, None])
    if num_buckets > 1 and num_buckets & (num_buckets - 1) == 0:
        return _shift_right_logical(z, 65 - num_buckets.bit_length())
    product = _shift_right_logical(z, 32) * num_buckets
    if num_buckets <= 1 << 31:
        return product >> 32
    return _shift_right_logical(product, 32)


def string_ids(strings: Iterable[str]) -> np.ndarray:
    """BLAKE2b (8-byte digest) of each string's UTF-8 bytes, read as little-endian int64."""
    digests = []
    for k, s in enumerate(strings):
        if not isinstance(s, str):
            msg = f"strings[{k}] must be a str, got {type(s).__name__} {s!r}"
            raise TypeError(msg)
        digests.append(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest())
    return np.frombuffer(b"".join(digests), dtype="<i8").astype(np.int64)
