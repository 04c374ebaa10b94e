"""Input validation with errors that name the argument, the expectation and what was given.

Every public function validates its inputs here before any arithmetic, so a user sees
``ValueError: candidate_sampling_probability must have shape (6,) (one entry per candidate
column), got shape (4,)`` rather than a broadcasting error from deep inside a backend.

Shape, rank and dtype checks are static and always run. Checks on array *values* (a
probability outside ``[0, 1]``) read one boolean to the host; they are skipped when the
array cannot be read eagerly (a ``jax.jit`` tracer, a lazy array).
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Mapping

from ._compat import array_namespace, device, is_jax_array, is_lazy_array
from ._typing import Array, ArrayNamespace

REDUCTIONS = ("sum", "mean", "none")


def _library(x: object) -> str:
    """Name of the library an array comes from, for error messages."""
    return type(x).__module__.split(".")[0]


def resolve_namespace(
    arrays: Mapping[str, Array | None], *, xp: ArrayNamespace | None
) -> ArrayNamespace:
    """Return the array namespace shared by the named arrays (``None`` entries ignored).

    Parameters
    ----------
    arrays : mapping of str to array or None
        Argument name to value, in signature order.
    xp : namespace or None
        An explicit namespace; when given it is returned unchanged after the arrays are
        checked to belong to one library.

    Raises
    ------
    TypeError
        If a value is not an array, or arrays come from different libraries.
    """
    first_name, first_xp = None, None
    for name, value in arrays.items():
        if value is None:
            continue
        try:
            value_xp = array_namespace(value)
        except TypeError:
            msg = (
                f"{name} must be an array of an Array API library (NumPy, CuPy, PyTorch, "
                f"JAX, array-api-strict), got {type(value).__name__}"
            )
            raise TypeError(msg) from None
        if first_xp is None:
            first_name, first_xp = name, value_xp
        elif value_xp is not first_xp:
            msg = (
                f"all arrays must come from one library: {first_name} is a "
                f"{_library(arrays[first_name])} array but {name} is a {_library(value)} "
                f"array; convert one of them"
            )
            raise TypeError(msg)
    if xp is not None:
        return xp
    if first_xp is None:
        msg = "no array given: pass at least one array or an explicit xp"
        raise TypeError(msg)
    return first_xp


def check_same_device(arrays: Mapping[str, Array | None]) -> None:
    """Raise ``ValueError`` if the named arrays are not all on one device.

    Arrays whose device is unknown (``None``: a JAX tracer inside ``jax.jit``) are skipped.
    """
    ref_name, ref_device = None, None
    for name, value in arrays.items():
        if value is None:
            continue
        dev = device(value)
        if dev is None:
            continue
        if ref_name is None:
            ref_name, ref_device = name, dev
        elif dev != ref_device:
            msg = (
                f"{name} is on device {dev!r} but {ref_name} is on device {ref_device!r}; "
                f"all arrays must be on one device"
            )
            raise ValueError(msg)


def check_floating(name: str, x: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``TypeError`` unless ``x`` is float32 or float64.

    Half precision (float16, bfloat16) is rejected rather than computed silently: a
    reference value needs at least float32's 24-bit significand, and its exponent range
    (float16 overflows at 65504). Cast such inputs to float32 and the result back.
    """
    if x.dtype not in (xp.float32, xp.float64):
        hint = (
            "; refloss computes in float32 or float64 only: cast half-precision inputs "
            f"with xp.astype({name}, xp.float32) and the result back"
            if xp.isdtype(x.dtype, "real floating") or "bfloat16" in str(x.dtype)
            else f"; cast it with xp.astype({name}, xp.float32) or xp.float64"
        )
        msg = f"{name} must have dtype float32 or float64, got {x.dtype}{hint}"
        raise TypeError(msg)


def check_rank(name: str, x: Array, ndim: int, meaning: str) -> None:
    """Raise ``ValueError`` unless ``x`` has ``ndim`` dimensions."""
    if x.ndim != ndim:
        msg = f"{name} must be {ndim}-D {meaning}, got {x.ndim}-D with shape {tuple(x.shape)}"
        raise ValueError(msg)


def check_shape(name: str, x: Array, shape: tuple[int, ...], meaning: str) -> None:
    """Raise ``ValueError`` unless ``x`` has exactly ``shape``."""
    if tuple(x.shape) != shape:
        msg = f"{name} must have shape {shape} ({meaning}), got shape {tuple(x.shape)}"
        raise ValueError(msg)


def check_logits(
    name: str, x: Array, *, xp: ArrayNamespace, in_batch: bool = True
) -> tuple[int, int]:
    """Validate a ``(B, N)`` logits matrix; return ``(B, N)``.

    ``B >= 1`` always; with ``in_batch`` (row i's positive is column i) also ``N >= B``,
    otherwise ``N >= 1``.
    """
    check_floating(name, x, xp=xp)
    check_rank(name, x, 2, "(batch B, candidates N)")
    num_rows, num_cols = (int(n) for n in x.shape)
    if in_batch:
        check_batch(name, num_rows, num_cols)
    elif num_rows < 1 or num_cols < 1:
        msg = f"{name} must have at least one row and one column, got shape {tuple(x.shape)}"
        raise ValueError(msg)
    return num_rows, num_cols


def check_axis(axis: object, ndim: int) -> None:
    """Raise ``ValueError`` unless ``axis`` indexes one of ``ndim`` dimensions."""
    if not -ndim <= axis < max(ndim, 1):  # type: ignore[operator]
        msg = f"axis must index one of the {ndim} dimensions of x, got axis={axis}"
        raise ValueError(msg)


def check_embedding_pair(
    names: tuple[str, str],
    first: Array,
    second: Array,
    meanings: tuple[str, str],
    *,
    xp: ArrayNamespace,
) -> tuple[int, int]:
    """Validate two embedding matrices of one model; return their numbers of rows.

    Both must be 2-D (``meanings`` say what their axes are), float32 or float64, of one
    dtype and of one width ``D``.
    """
    for name, x, meaning in zip(names, (first, second), meanings, strict=True):
        check_rank(name, x, 2, meaning)
        check_floating(name, x, xp=xp)
    if first.dtype != second.dtype:
        msg = (
            f"{names[0]} and {names[1]} must have the same dtype, got {first.dtype} and "
            f"{second.dtype}; cast one of them"
        )
        raise TypeError(msg)
    if first.shape[1] != second.shape[1]:
        msg = (
            f"{names[0]} and {names[1]} must have the same width D, got {names[0]} shape "
            f"{tuple(first.shape)} and {names[1]} shape {tuple(second.shape)}"
        )
        raise ValueError(msg)
    return int(first.shape[0]), int(second.shape[0])


def check_index_range(
    name: str, index: Array, size: int, *, xp: ArrayNamespace, what: str = "column indices"
) -> None:
    """Raise ``ValueError`` if an entry of ``index`` lies outside ``[0, size)``.

    Reads one boolean to the host; skipped for arrays that cannot be read eagerly.
    """
    if read_flag(xp.any((index < 0) | (index >= size))):
        lo, hi = int(xp.min(index)), int(xp.max(index))
        msg = f"{name} must be {what} in [0, {size}), got values in [{lo}, {hi}]"
        raise ValueError(msg)


def check_nonnegative(name: str, x: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``ValueError`` if a (non-bool) entry of ``x`` is negative or NaN.

    Reads one boolean to the host; skipped for arrays that cannot be read eagerly.
    """
    if x.dtype == xp.bool:
        return
    if read_flag(xp.any(~(x >= 0))):
        msg = f"{name} must be label weights >= 0 with no NaN, got a minimum of {float(xp.min(x))}"
        raise ValueError(msg)


def check_batch(name: str, num_rows: int, num_cols: int) -> None:
    """Raise ``ValueError`` unless ``num_cols >= num_rows >= 1``."""
    if num_rows < 1:
        msg = f"{name} must have at least one row (B >= 1), got B = {num_rows}"
        raise ValueError(msg)
    if num_cols < num_rows:
        msg = (
            f"{name} has N = {num_cols} candidate columns but B = {num_rows} rows; N >= B is "
            f"required because row i's positive is candidate i"
        )
        raise ValueError(msg)


def check_integer_dtype(name: str, x: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``TypeError`` unless ``x`` has an integer dtype."""
    if not xp.isdtype(x.dtype, "integral"):
        msg = f"{name} must have an integer dtype (ids compared exactly), got {x.dtype}"
        raise TypeError(msg)


def check_bool_dtype(name: str, x: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``TypeError`` unless ``x`` is boolean."""
    if x.dtype != xp.bool:
        msg = f"{name} must have dtype bool (True keeps an entry), got {x.dtype}"
        raise TypeError(msg)


def is_python_real(value: object) -> bool:
    """True for a Python (or NumPy) real scalar that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def weight_array(sample_weight: object, *, like: Array, xp: ArrayNamespace) -> Array | None:
    """``sample_weight`` as an array: a Python real becomes a 0-D array like ``like``."""
    if is_python_real(sample_weight):
        return xp.asarray(float(sample_weight), dtype=like.dtype, device=device(like))
    return sample_weight


def check_sample_weight(sample_weight: Array, num_rows: int, *, xp: ArrayNamespace) -> None:
    """Raise unless ``sample_weight`` is a real array of shape ``(B,)`` or ``()``."""
    if not xp.isdtype(sample_weight.dtype, ("real floating", "integral")):
        msg = f"sample_weight must have a real dtype, got {sample_weight.dtype}"
        raise TypeError(msg)
    if tuple(sample_weight.shape) not in ((num_rows,), ()):
        msg = (
            f"sample_weight must have shape ({num_rows},) (one weight per query) or () "
            f"(one weight for all), got shape {tuple(sample_weight.shape)}"
        )
        raise ValueError(msg)


def read_flag(flag: Array) -> bool | None:
    """Read a 0-D boolean array on the host, or ``None`` when it cannot be read eagerly."""
    if is_jax_array(flag):
        jax = sys.modules["jax"]
        try:
            return bool(flag)
        except jax.errors.ConcretizationTypeError:
            return None
    if is_lazy_array(flag):
        return None
    return bool(flag)


def check_probability(name: str, p: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``ValueError`` if any entry of ``p`` is NaN or outside ``[0, 1]``.

    Reads one boolean to the host; skipped for arrays that cannot be read eagerly.
    """
    check_floating(name, p, xp=xp)
    bad = xp.any(~((p >= 0) & (p <= 1)))
    if read_flag(bad):
        lo, hi = float(xp.min(p)), float(xp.max(p))
        msg = f"{name} must be probabilities in [0, 1] with no NaN, got values in [{lo}, {hi}]" + (
            " including NaN" if read_flag(xp.any(xp.isnan(p))) else ""
        )
        raise ValueError(msg)


def check_positive(name: str, x: Array, *, xp: ArrayNamespace) -> None:
    """Raise ``ValueError`` if an entry of ``x`` is <= 0, NaN or infinite.

    Reads one boolean to the host; skipped for arrays that cannot be read eagerly.
    """
    if read_flag(xp.any(~((x > 0) & (x < xp.inf)))):
        lo, hi = float(xp.min(x)), float(xp.max(x))
        nan = " including NaN" if read_flag(xp.any(xp.isnan(x))) else ""
        msg = f"{name} must be finite and > 0, got values in [{lo}, {hi}]{nan}"
        raise ValueError(msg)


def check_flag(name: str, value: object) -> bool:
    """Return ``value``; raise ``TypeError`` unless it is a Python bool."""
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    return value


#: The lower bounds :func:`check_scalar` knows: ``(test on a float, words)``.
_BOUNDS = {
    "positive": (lambda v: v > 0, "> 0"),
    "nonnegative": (lambda v: v >= 0, ">= 0"),
    "any": (lambda v: True, "real"),
}


def check_scalar(
    name: str, value: object, *, like: Array, xp: ArrayNamespace, bound: str = "positive"
) -> float | Array:
    """Validate a scalar parameter: a finite real number or a 0-D array of ``like``'s dtype.

    ``bound`` is ``"positive"`` (> 0, e.g. a temperature), ``"nonnegative"`` (>= 0, a logit
    scale) or ``"any"`` (a bias). A 0-D array (a learnable parameter, a value traced by
    ``jax.jit``) is returned as it is, so gradients can flow to it; its value is checked
    only when it can be read eagerly (one boolean read to the host).
    """
    holds, words = _BOUNDS[bound]
    requirement = "finite" if bound == "any" else f"finite and {words}"
    if is_python_real(value):
        number = float(value)
        if not (math.isfinite(number) and holds(number)):
            msg = f"{name} must be {requirement}, got {number!r}"
            raise ValueError(msg)
        return number
    try:
        array_namespace(value)
    except TypeError:
        msg = (
            f"{name} must be a real number ({requirement}) or a 0-D array, got "
            f"{type(value).__name__} {value!r}"
        )
        raise TypeError(msg) from None
    if tuple(value.shape) != ():
        msg = f"{name} must be a 0-D array (one value), got shape {tuple(value.shape)}"
        raise ValueError(msg)
    if value.dtype != like.dtype:
        msg = (
            f"{name} must have the embeddings' dtype {like.dtype}, got {value.dtype}; cast it "
            f"with xp.astype({name}, {like.dtype})"
        )
        raise TypeError(msg)
    if read_flag(~(xp.isfinite(value) & holds(value))):
        msg = f"{name} must be {requirement}, got {float(value)!r}"
        raise ValueError(msg)
    return value


def check_temperature(
    temperature: object, *, like: Array, xp: ArrayNamespace
) -> float | Array | None:
    """Validate ``temperature``: None, a finite real > 0, or a 0-D array of ``like``'s dtype."""
    if temperature is None:
        return None
    return check_scalar("temperature", temperature, like=like, xp=xp)


def check_min_probability(min_probability: object) -> float:
    """Return ``min_probability`` as a float; raise unless it lies in ``(0, 1]``."""
    if not is_python_real(min_probability):
        msg = f"min_probability must be a real number in (0, 1], got {min_probability!r}"
        raise TypeError(msg)
    value = float(min_probability)
    if not 0 < value <= 1:
        msg = f"min_probability must lie in (0, 1], got {value!r}"
        raise ValueError(msg)
    return value


def integer_at_least(
    name: str,
    value: object,
    *,
    expected: str,
    low: int | None = 1,
    meaning: str = "",
    advice: str = "",
) -> int:
    """Return ``value`` as an int; raise unless it is an integer (not a bool) >= ``low``.

    ``low=None`` checks the type alone, for a caller that checks the range itself.
    """
    if isinstance(value, bool):
        msg = f"{name} must be {expected}, got bool {value!r}"
        raise TypeError(msg)
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        msg = f"{name} must be {expected}, got {type(value).__name__} {value!r}"
        raise TypeError(msg) from None
    if low is not None and number < low:
        msg = f"{name} must be >= {low}{meaning}, got {number}{advice}"
        raise ValueError(msg)
    return number


def check_num_hard_negatives(num_hard_negatives: object) -> int:
    """Return ``num_hard_negatives`` as an int; raise unless it is an integer >= 1."""
    return integer_at_least(
        "num_hard_negatives",
        num_hard_negatives,
        expected="an integer >= 1",
        meaning=" (the number of negatives kept per row)",
        advice="; pass None to keep every negative",
    )


def check_size(name: str, value: object) -> int | None:
    """Return ``value`` as an int; raise unless it is None or an integer >= 1."""
    if value is None:
        return None
    return integer_at_least(name, value, expected="an integer >= 1 or None")


def check_reduction(reduction: object) -> str:
    """Return ``reduction``; raise ``ValueError`` unless it is one of ``REDUCTIONS``."""
    if reduction not in REDUCTIONS:
        msg = f"reduction must be one of {REDUCTIONS}, got {reduction!r}"
        raise ValueError(msg)
    return reduction  # type: ignore[return-value]
