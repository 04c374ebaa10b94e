"""Array assertions: namespace, dtype, shape and device first, then values (``isclose_v1``)."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "assert_array_properties",
    "assert_close",
    "format_array",
    "isclose_v1",
    "mismatch_report",
    "namespace_of",
    "to_host",
]

_MAX_LISTED = 5


def namespace_of(xp: Any) -> Any:
    """Return the standard-compatible namespace that arrays created by `xp` report.

    ``numpy`` maps to ``array_api_compat.numpy``, ``torch`` to ``array_api_compat.torch``;
    ``array_api_strict`` and ``jax.numpy`` map to themselves.

    Parameters
    ----------
    xp : module
        An array namespace, wrapped or not.

    Returns
    -------
    module
        ``array_api_compat.array_namespace(xp.empty(0))``.
    """
    return array_api_compat.array_namespace(xp.empty(0))


def to_host(x: Any) -> np.ndarray:
    """Copy an array of any supported library to a host NumPy array.

    Parameters
    ----------
    x : array
        NumPy, CuPy, PyTorch (any device, with or without autograd history), JAX,
        array-api-strict or any DLPack-capable array.

    Returns
    -------
    numpy.ndarray
        A host copy with the same dtype and shape.
    """
    if array_api_compat.is_torch_array(x):
        return x.detach().resolve_conj().cpu().numpy().copy()
    if array_api_compat.is_numpy_array(x):
        return np.array(x, copy=True)
    if array_api_compat.is_cupy_array(x):
        return x.get()  # a device-to-host copy (CuPy refuses an implicit one)
    if array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(x)):
        x = x.to_device(array_api_compat.array_namespace(x).Device("CPU_DEVICE"))
    if array_api_compat.is_jax_array(x):
        return np.array(x, copy=True)
    try:
        return np.from_dlpack(x).copy()
    except (TypeError, BufferError, RuntimeError):
        return np.array(x, copy=True)


def isclose_v1(
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    rtol: float,
    atol: float,
    signed_zero: bool = False,
) -> np.ndarray:
    """Element-wise ``isclose_v1`` rule of the conformance fixtures, on host arrays.

    Floats: ``|actual - expected| <= atol + rtol * |expected|`` (the expected value is the
    reference); NaN matches only NaN; an infinity matches only the same infinity, sign
    included; ``-0.0`` equals ``+0.0`` unless `signed_zero`. Integers and booleans: exact.

    Parameters
    ----------
    actual, expected : numpy.ndarray
        Arrays of equal shape.
    rtol, atol : float
        Relative and absolute tolerance.
    signed_zero : bool, optional
        Whether a zero must also match the sign of an expected zero.

    Returns
    -------
    numpy.ndarray of bool
        True where the element passes.
    """
    if not (np.issubdtype(expected.dtype, np.floating) or np.issubdtype(actual.dtype, np.floating)):
        return np.asarray(actual == expected)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(a - e) <= atol + rtol * np.abs(e)
    close = np.where(np.isinf(a) | np.isinf(e), a == e, close)
    close = np.where(np.isnan(a) | np.isnan(e), np.isnan(a) & np.isnan(e), close)
    if signed_zero:
        close &= ~((e == 0) & (np.signbit(a) != np.signbit(e)))
    return close


def format_array(x: np.ndarray) -> str:
    """Render a host array with every float digit needed to round-trip it.

    Parameters
    ----------
    x : numpy.ndarray
        Array to render.

    Returns
    -------
    str
        ``numpy.array2string`` with shortest round-trip floats, one line per row.
    """
    return np.array2string(
        np.asarray(x), precision=17, floatmode="unique", max_line_width=120, threshold=200
    )


def mismatch_report(
    actual: np.ndarray, expected: np.ndarray, close: np.ndarray, *, rtol: float, atol: float
) -> str:
    """Describe where `actual` and `expected` differ.

    Parameters
    ----------
    actual, expected : numpy.ndarray
        Host arrays of equal shape.
    close : numpy.ndarray of bool
        Result of :func:`isclose_v1`.
    rtol, atol : float
        The tolerance used, for the message.

    Returns
    -------
    str
        Counts, the first mismatching indices and the largest differences.
    """
    bad = np.argwhere(~np.asarray(close).reshape(actual.shape))
    lines = [
        f"not close under isclose_v1 (rtol={rtol:g}, atol={atol:g}): "
        f"{len(bad)} of {max(actual.size, 1)} elements differ"
    ]
    for index in bad[:_MAX_LISTED]:
        idx = tuple(int(i) for i in index)
        lines.append(
            f"  at {list(idx)}: actual {actual[idx].item()!r}, expected {expected[idx].item()!r}"
        )
    if len(bad) > _MAX_LISTED:
        lines.append(f"  ... and {len(bad) - _MAX_LISTED} more")
    if np.issubdtype(expected.dtype, np.floating):
        a = actual.astype(np.float64)
        e = expected.astype(np.float64)
        finite = np.isfinite(a) & np.isfinite(e)
        if finite.any():
            diff = np.abs(a - e)[finite]
            scale = np.abs(e)[finite]
            rel = np.divide(diff, scale, out=np.full_like(diff, np.inf), where=scale > 0)
            lines.append(f"  max abs diff {diff.max():.3e}, max rel diff {rel.max():.3e}")
    return "\n".join(lines)


def _same_device(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def assert_array_properties(
    actual: Any,
    *,
    xp: Any = None,
    dtype: Any = None,
    shape: tuple[int, ...] | None = None,
    device: Any = None,
) -> None:
    """Assert that `actual` is an array of the given namespace, dtype, shape and device.

    Each property is checked only when given. Check these before values: a loss that
    silently returns a NumPy scalar for torch inputs, or float64 for float32 inputs, is
    wrong even when the number is right.

    Parameters
    ----------
    actual : array
        Array under test.
    xp : module, optional
        Expected namespace (wrapped or not: ``numpy`` and ``array_api_compat.numpy`` are
        the same here).
    dtype : dtype, optional
        Expected dtype, a dtype object of the namespace of `actual`.
    shape : tuple of int, optional
        Expected shape, compared exactly.
    device : device, optional
        Expected device (compared by equality or by string form).

    Raises
    ------
    AssertionError
        On the first property that differs.
    """
    __tracebackhide__ = True
    try:
        actual_xp = array_api_compat.array_namespace(actual)
    except TypeError:
        msg = f"expected an array, got {type(actual).__name__}: {actual!r}"
        raise AssertionError(msg) from None
    if xp is not None:
        expected_xp = namespace_of(xp)
        assert actual_xp is expected_xp, (
            f"namespace differs: actual {actual_xp.__name__}, expected {expected_xp.__name__}"
        )
    if dtype is not None:
        assert actual.dtype == dtype, f"dtype differs: actual {actual.dtype}, expected {dtype}"
    if shape is not None:
        actual_shape = tuple(actual.shape)
        assert actual_shape == tuple(shape), (
            f"shape differs: actual {actual_shape}, expected {tuple(shape)}"
        )
    if device is not None:
        actual_device = array_api_compat.device(actual)
        assert _same_device(actual_device, device), (
            f"device differs: actual {actual_device}, expected {device}"
        )


def assert_close(
    actual: Any,
    desired: Any,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
    xp: Any = None,
    signed_zero: bool = False,
    err_msg: str = "",
) -> None:
    """Assert that two arrays match in namespace, dtype, shape, device, then values.

    Values follow the fixtures' ``isclose_v1`` rule:
    ``|actual - desired| <= atol + rtol * |desired|``, NaN only matches NaN, infinities
    match exactly, integers and booleans exactly.

    Parameters
    ----------
    actual : array
        Array under test.
    desired : array
        Reference array; must be of the same namespace, dtype, shape and device.
    rtol : float, optional
        Relative tolerance. Default: ``4 * sqrt(eps)`` of the dtype for floats (about
        6e-8 for float64, 1.4e-3 for float32), as in ``array_api_extra.testing``; 0 for
        integers and booleans.
    atol : float, optional
        Absolute tolerance. Default 0.
    xp : module, optional
        Namespace both arrays must belong to; by default the namespace of `desired`.
    signed_zero : bool, optional
        Whether ``-0.0`` and ``+0.0`` differ.
    err_msg : str, optional
        Prepended to the failure message.

    Raises
    ------
    AssertionError
        When a property or a value differs.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from refloss.testing import assert_close
    >>> assert_close(xp.asarray([1.0, xp.nan]), xp.asarray([1.0, xp.nan]))
    """
    __tracebackhide__ = True
    prefix = f"{err_msg}\n" if err_msg else ""
    try:
        ref_xp = array_api_compat.array_namespace(desired) if xp is None else namespace_of(xp)
        assert_array_properties(desired, xp=ref_xp)
        assert_array_properties(
            actual,
            xp=ref_xp,
            dtype=desired.dtype,
            shape=tuple(desired.shape),
            device=array_api_compat.device(desired),
        )
    except (AssertionError, TypeError) as exc:
        raise AssertionError(f"{prefix}{exc}") from None
    actual_np = to_host(actual)
    desired_np = to_host(desired)
    if rtol is None:
        if np.issubdtype(desired_np.dtype, np.floating):
            rtol = 4 * math.sqrt(float(np.finfo(desired_np.dtype).eps))
        else:
            rtol = 0.0
    close = isclose_v1(actual_np, desired_np, rtol=rtol, atol=atol, signed_zero=signed_zero)
    if not np.all(close):
        report = mismatch_report(actual_np, desired_np, close, rtol=rtol, atol=atol)
        arrays = f"\n  actual:   {format_array(actual_np)}\n  desired:  {format_array(desired_np)}"
        raise AssertionError(f"{prefix}{report}{arrays}")
