"""Shared test helpers: backends, conversions, tolerances and hypothesis settings."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np
from hypothesis import HealthCheck, settings

BACKENDS = ("numpy", "numpy_readonly", "array_api_strict", "torch", "jax", "jax32")
# hypothesis properties run where eager calls are cheap (JAX recompiles each new shape)
PROPERTY_BACKENDS = ("numpy", "array_api_strict", "torch")
DTYPES = ("float32", "float64")

# backend name -> importable module that must be present
BACKEND_MODULES = {
    "numpy": "numpy",
    "numpy_readonly": "numpy",
    "array_api_strict": "array_api_strict",
    "torch": "torch",
    "jax": "jax",
    "jax32": "jax",
}

# float32 vs float64 oracle; float64 vs float64 oracle
RTOL = {"float32": 2e-5, "float64": 1e-12}


def supports(backend_name: str, dtype: str) -> bool:
    """Whether a backend can hold arrays of ``dtype`` (jax without x64 has no float64)."""
    return not (backend_name == "jax32" and dtype == "float64")


def all_pairs() -> list[tuple[str, str]]:
    """Every (backend, dtype) pair a backend can hold."""
    return [(b, d) for b in BACKENDS for d in DTYPES if supports(b, d)]


def default_pairs() -> list[tuple[str, str]]:
    """The pairs most tests run: float32 on JAX is covered by ``jax32``."""
    return [pair for pair in all_pairs() if pair != ("jax", "float32")]


def pair_params(pairs: list[tuple[str, str]]) -> list[Any]:
    import pytest

    return [pytest.param(b, d, id=f"{b}-{d}") for b, d in pairs]


def examples(n: int) -> int:
    """Scale a per-test example budget by the active hypothesis profile.

    The built-in ``default`` and ``ci`` profiles run 100 examples; ``n`` is the budget at
    that level, so ``dev`` runs fewer and ``thorough`` runs more.
    """
    return max(2, n * settings.default.max_examples // 100)


def hsettings(n: int) -> settings:
    """Hypothesis settings for a property test that uses the (stateless) backend fixture."""
    return settings(
        max_examples=examples(n),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@dataclass
class Backend:
    """One array library as the tests see it."""

    name: str
    module: Any = field(repr=False)
    xp: Any = field(repr=False)
    device: Any = None

    @property
    def readonly(self) -> bool:
        return self.name == "numpy_readonly"

    @property
    def has_float64(self) -> bool:
        return self.name != "jax32"

    @property
    def is_jax(self) -> bool:
        return self.name in ("jax", "jax32")

    def dtype(self, name: str) -> Any:
        """The backend dtype object for an Array API dtype name."""
        if self.name == "jax32" and name in ("float64", "int64"):
            name = {"float64": "float32", "int64": "int32"}[name]
        return getattr(self.xp, name)

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        """Convert a NumPy array (or nested list) to this backend.

        ``dtype`` (a dtype name) applies to floating inputs only; integer and boolean inputs
        keep their kind.
        """
        arr = np.asarray(a)
        if dtype is not None and arr.dtype.kind == "f":
            arr = arr.astype(dtype)
        if self.name == "jax32":
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            elif arr.dtype == np.int64:
                arr = arr.astype(np.int32)
        arr = np.array(arr, copy=True, order="C")
        if self.name in ("numpy", "numpy_readonly"):
            if self.readonly:
                arr.flags.writeable = False
            return arr
        if self.name == "array_api_strict":
            if self.device is None:
                return self.module.asarray(arr)
            return self.module.asarray(arr, device=self.device)
        if self.name == "torch":
            return self.module.asarray(arr)
        # jax / jax32
        return self.module.numpy.asarray(arr)

    def to_numpy(self, x: Any) -> np.ndarray:
        return to_numpy(x)


def to_numpy(x: Any) -> np.ndarray:
    """Any supported backend array (or Python scalar) -> a NumPy array (a copy)."""
    if isinstance(x, np.ndarray | np.generic | float | int | bool):
        return np.array(x)
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy().copy()
    if array_api_compat.is_jax_array(x):
        return np.array(x)
    mod = type(x).__module__
    if mod.startswith("array_api_strict"):
        import array_api_strict

        if x.device != array_api_strict.Device("CPU_DEVICE"):
            x = array_api_strict.asarray(x, device=array_api_strict.Device("CPU_DEVICE"))
        return np.array(np.from_dlpack(x))
    return np.array(np.from_dlpack(x))


@contextlib.contextmanager
def backend_context(name: str) -> Iterator[Backend]:
    """Set up one backend (global flags included) and restore global state afterwards."""
    if name in ("numpy", "numpy_readonly"):
        yield Backend(name, np, array_api_compat.array_namespace(np.empty(0)))
    elif name == "array_api_strict":
        import array_api_strict

        flags = array_api_strict.ArrayAPIStrictFlags(
            boolean_indexing=False, data_dependent_shapes=False
        )
        with flags:
            yield Backend(name, array_api_strict, array_api_strict)
    elif name == "torch":
        import torch

        yield Backend(name, torch, array_api_compat.array_namespace(torch.empty(0)), "cpu")
    elif name in ("jax", "jax32"):
        import jax

        old = bool(jax.config.jax_enable_x64)
        jax.config.update("jax_enable_x64", name == "jax")
        try:
            yield Backend(name, jax, jax.numpy)
        finally:
            jax.config.update("jax_enable_x64", old)
    else:  # pragma: no cover
        raise ValueError(name)


def namespace_of(x: Any) -> Any:
    return array_api_compat.array_namespace(x)


def assert_like(out: Any, backend: Backend, dtype: Any, shape: tuple[int, ...], like: Any) -> None:
    """Check namespace, dtype, shape and device of ``out`` before any value check."""
    assert namespace_of(out) is backend.xp, (namespace_of(out), backend.xp)
    assert out.dtype == dtype, (out.dtype, dtype)
    assert tuple(out.shape) == tuple(shape), (tuple(out.shape), shape)
    assert array_api_compat.device(out) == array_api_compat.device(like), (
        array_api_compat.device(out),
        array_api_compat.device(like),
    )


def assert_close(actual: Any, expected: Any, *, rtol: float, atol: float = 0.0, err_msg=""):
    np.testing.assert_allclose(
        to_numpy(actual).astype(np.float64),
        np.asarray(expected, dtype=np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=err_msg,
    )


def logit_scale(q: np.ndarray, c: np.ndarray, temperature: float | None = None) -> float:
    """An upper bound on |logit| magnitudes, for absolute tolerances of differences."""
    q = np.asarray(q, np.float64)
    c = np.asarray(c, np.float64)
    s = float(np.max(np.abs(q) @ np.abs(c).T)) if q.size and c.size else 0.0
    if temperature is not None:
        s /= temperature
    return 1.0 + s


# ---------------------------------------------------------------------------------------------
# retrieval_loss cases: NumPy float64 inputs plus keyword options
# ---------------------------------------------------------------------------------------------

ARRAY_KEYS = ("sample_weight", "candidate_sampling_probability", "candidate_ids", "score_mask")
FLOAT_KEYS = ("sample_weight", "candidate_sampling_probability")

# absolute error per unit of logit scale, per row
ABS = {"float32": 2e-6, "float64": 1e-14}


def make_case(
    seed,
    *,
    b=4,
    n=None,
    d=3,
    p=None,
    ids=None,
    mask=None,
    weights=None,
    **options,
):
    """NumPy float64 inputs and keyword options for one retrieval_loss call."""
    rng = np.random.default_rng(seed)
    n = b + 3 if n is None else n
    kw = dict(options)
    q = rng.standard_normal((b, d))
    c = rng.standard_normal((n, d))
    if p == "random":
        kw["candidate_sampling_probability"] = rng.uniform(1e-4, 0.5, size=n)
    elif p == "edge":  # p = 0 and tiny (clipped), p = 1, p between min_probability and 1
        pr = rng.uniform(1e-4, 0.5, size=n)
        pr[0] = 0.0
        pr[-1] = 1.0
        if n > 2:
            pr[1] = 1e-9
        if n > 3:
            pr[2] = 5e-4
        kw["candidate_sampling_probability"] = pr
    if ids == "in_batch":  # duplicates among the in-batch positives
        idv = np.arange(n, dtype=np.int64) + 100
        idv[min(2, b - 1)] = idv[0]
        if b > 3:
            idv[3] = idv[1]
        kw["candidate_ids"] = idv
    elif ids == "extra":  # extra negatives that equal some row's positive
        idv = np.arange(n, dtype=np.int64) + 100
        for j in range(b, n):
            idv[j] = idv[(j - b) % b]
        kw["candidate_ids"] = idv
    elif ids == "random":
        kw["candidate_ids"] = rng.integers(0, max(2, n // 2), size=n).astype(np.int64)
    elif ids == "all_same":
        kw["candidate_ids"] = np.full(n, 7, dtype=np.int64)
    if mask == "random":  # positives kept
        m = rng.random((b, n)) < 0.7
        m[np.arange(b), np.arange(b)] = True
        kw["score_mask"] = m
    elif mask == "pos_masked":  # some positives masked too
        m = rng.random((b, n)) < 0.7
        m[np.arange(b), np.arange(b)] = True
        m[0, 0] = False
        if b > 2:
            m[2, 2] = False
        kw["score_mask"] = m
    elif mask == "negatives_of_row0":  # row 0 keeps only its positive
        m = np.ones((b, n), dtype=bool)
        m[0, :] = False
        m[0, 0] = True
        kw["score_mask"] = m
    if weights == "random":
        kw["sample_weight"] = rng.uniform(0.1, 2.0, size=b)
    elif weights == "zeros_negatives":
        w = rng.uniform(-1.5, 2.0, size=b)
        w[0] = 0.0
        if b > 2:
            w[-1] = -0.75
        kw["sample_weight"] = w
    elif weights == "scalar":  # a 0-d array
        kw["sample_weight"] = np.asarray(0.625)
    elif weights == "python_scalar":
        kw["sample_weight"] = 0.625
    return q, c, kw


def as_dtype(q, c, kw, dtype):
    """Round the float inputs to ``dtype`` (the oracle then sees exactly what the backend sees)."""
    q = q.astype(dtype).astype(np.float64)
    c = c.astype(dtype).astype(np.float64)
    kw = dict(kw)
    for key in FLOAT_KEYS:
        if isinstance(kw.get(key), np.ndarray):
            kw[key] = kw[key].astype(dtype).astype(np.float64)
    return q, c, kw


def to_backend(backend, q, c, kw, dtype):
    qb = backend.asarray(q, dtype)
    cb = backend.asarray(c, dtype)
    kwb = dict(kw)
    for key in ARRAY_KEYS:
        if isinstance(kw.get(key), np.ndarray):
            kwb[key] = backend.asarray(kw[key], dtype if key in FLOAT_KEYS else None)
    return qb, cb, kwb


def scale_of(q, c, kw):
    s = logit_scale(q, c, kw.get("temperature"))
    p = kw.get("candidate_sampling_probability")
    if p is not None:
        s += -math.log(kw.get("min_probability", 1e-6))
    return s


def weight_mass(kw, b):
    w = kw.get("sample_weight")
    if w is None:
        return float(b)
    return float(np.sum(np.abs(np.broadcast_to(np.asarray(w, np.float64), (b,)))))
