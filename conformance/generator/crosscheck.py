"""A second, generic check of the oracle's analytic gradients: numerical differentiation.

For every valid case of every gradient file, the family's scalar oracle loss (its value
file's evaluator, which never computes a gradient) is differentiated numerically by
central differences at :data:`FD_DPS` digits with a tiny step, one input element at a
time, and compared with the analytic oracle gradient evaluated at the same precision.
Nothing here knows about a family: it sees a loss function of named nested lists.

With ``h = STEP * max(1, |x|)``, the truncation error ``h**2 |f'''| / 6`` is far below
the comparison bound, and so is the rounding error ``10**-FD_DPS |f| / h``.  Two cases
are handled on their own:

* a non-finite input element (a masked ``-inf`` logit) is held fixed: a finite step
  cannot move it, the loss does not depend on it, and its analytic gradient must be 0;
* an element at which the loss has a kink (an exact tie in hard-negative mining, where
  the two one-sided differences disagree by far more than ``h |f''|``) is not compared,
  because no derivative exists there; the number of such elements is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import mpmath
import numpy as np

from .oracle import flatten

FD_DPS = 100
STEP = "1e-35"
RTOL = 1e-50  # |central difference - analytic| <= RTOL * scale
KINK_RTOL = 1e-20  # |forward - backward| > KINK_RTOL * scale marks a kink
IMPL = "mpmath central differences of the oracle loss"


def _reshape(flat: list, like):
    """``flat`` in the nested shape of ``like``."""
    if not isinstance(like, list):
        return flat[0]
    out, start = [], 0
    for item in like:
        size = len(flatten(item))
        out.append(_reshape(flat[start : start + size], item))
        start += size
    return out


def _replace(nested, index: int, value):
    """A copy of ``nested`` with its ``index``-th element (row-major) set to ``value``.

    Only the lists on the path to the element are copied.
    """
    if not isinstance(nested, list):
        return value
    size = len(flatten(nested[0])) if nested else 1
    head, rest = divmod(index, size)
    out = list(nested)
    out[head] = _replace(nested[head], rest, value)
    return out


def check_gradients(
    loss: Callable[[Mapping[str, object]], mpmath.mpf],
    inputs: Mapping[str, object],
    analytic: Mapping[str, object],
    scale: float,
) -> dict:
    """Compare ``analytic[name]`` with central differences of ``loss`` for every name.

    ``inputs`` maps every argument to nested lists (the differentiated ones float);
    ``analytic`` maps each differentiated name to its gradient (nested mpf lists, the
    shape of the input).  Returns ``{"kinks": k}``; raises ``AssertionError`` when an
    element differs by more than ``RTOL * scale``.
    """
    kinks = 0
    with mpmath.workdps(FD_DPS):
        # the differentiated arrays as mpf once, so no evaluation converts them again
        inputs = {
            name: _reshape([mpmath.mpf(v) for v in flatten(value)], value)
            if name in analytic
            else value
            for name, value in inputs.items()
        }
        step = mpmath.mpf(STEP)
        f0 = loss(inputs)
        for name, grad in analytic.items():
            values = flatten(inputs[name])
            expected = flatten(grad)
            for k, (x, g) in enumerate(zip(values, expected, strict=True)):
                x = mpmath.mpf(x)
                if not mpmath.isfinite(x):
                    numeric = mpmath.mpf(0)
                else:
                    h = step * max(1, abs(x))
                    up, down = x + h, x - h
                    f_up = loss({**inputs, name: _replace(inputs[name], k, up)})
                    f_down = loss({**inputs, name: _replace(inputs[name], k, down)})
                    forward, backward = (f_up - f0) / (up - x), (f0 - f_down) / (x - down)
                    if abs(forward - backward) > KINK_RTOL * scale:
                        kinks += 1
                        continue
                    numeric = (f_up - f_down) / (up - down)
                diff = abs(numeric - mpmath.mpf(g))
                if not diff <= RTOL * scale:
                    raise AssertionError(
                        f"d loss / d {name}[{k}]: central difference {mpmath.nstr(numeric, 20)}"
                        f" vs analytic {mpmath.nstr(g, 20)} (|diff| {mpmath.nstr(diff, 3)}"
                        f" > {RTOL:.0e} * {scale:.3e})"
                    )
    return {"kinks": kinks}


def record(kinks: int) -> dict:
    """The ``crossChecks`` entry of one passed check (no timings, no differences)."""
    entry = {
        "dps": FD_DPS,
        "impl": IMPL,
        "passed": True,
        "rtol": RTOL,
        "step": float(STEP),
        "version": mpmath.__version__,
    }
    if kinks:
        entry["kinks"] = kinks
    return entry


def magnitude(expected: Mapping[str, np.ndarray], work: float) -> float:
    """``max(1, work, max |expected|)``: the scale both bounds are relative to."""
    finite = [np.abs(e[np.isfinite(e)]) for e in expected.values()]
    return max(1.0, work, *(float(f.max()) for f in finite if f.size))
