"""Expected values of one case: the oracle at two precisions, rounded once to float64.

Nothing here knows about a family.  :func:`values` and :func:`gradients` take a family
declaration (``refloss._registry.Family``, metadata only) and its generator-side entry
(:class:`.families.FamilyOracle`), evaluate the oracle at 50 and at 100 digits, refuse a
value whose float64 rounding differs between the two, and return an :class:`Outcome`.
Gradients are also checked against central differences of the oracle loss
(:mod:`.crosscheck`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mpmath
import numpy as np

from . import crosscheck, oracle
from .model import Case, SequenceCase

if TYPE_CHECKING:
    from refloss._registry import Family

    from .families import FamilyOracle


@dataclass
class Outcome:
    """Expected outputs of one valid case and the magnitude of its computation."""

    expected: dict[str, np.ndarray]
    work: float
    cross_checks: list[dict] = field(default_factory=list)


def rounded(value) -> np.ndarray:
    """Round an mpf or a nested list of mpf to a float64 array, once per element."""
    if isinstance(value, list):
        return np.array([rounded(v) for v in value], dtype=np.float64)
    return np.array(oracle.to_float64(value), dtype=np.float64)


def inputs_of(case: Case) -> dict:
    """The case's inputs as nested Python lists (what the oracle reads)."""
    return {name: np.asarray(arr).tolist() for name, arr in case.inputs.items()}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def at_two_precisions(where: str, compute: Callable[[], dict]) -> tuple[dict, dict]:
    """Run ``compute()`` at :data:`oracle.DPS` and :data:`oracle.CHECK_DPS` digits.

    Returns ``(rounded values at DPS, raw values at CHECK_DPS)``.  Raises ``ValueError``
    naming ``where`` when any element rounds to a different float64 at the two
    precisions (NaN counts as equal to NaN).
    """
    results = {}
    raw = {}
    for dps in oracle.PRECISIONS:
        with mpmath.workdps(dps):
            raw = compute()
        results[dps] = {name: rounded(value) for name, value in raw.items()}
    low, high = (results[d] for d in oracle.PRECISIONS)
    for name in low:
        a, b = low[name], high[name]
        same = a.shape == b.shape and bool(
            np.all((_bits(a) == _bits(b)) | (np.isnan(a) & np.isnan(b)))
        )
        if not same:
            raise ValueError(
                f"{where}: {name} rounds differently at {oracle.DPS} and {oracle.CHECK_DPS} "
                f"digits: {a.ravel().tolist()} vs {b.ravel().tolist()}"
            )
    return low, raw


def where(tc_id: int, case: Case) -> str:
    """How an error names a case."""
    return f"tcId {tc_id} ({case.comment!r})"


def values(family: Family, entry: FamilyOracle, tc_id: int, case: Case) -> Outcome:
    """Expected outputs of a valid case of ``<family>_test.json``."""
    inputs, params = inputs_of(case), case.params
    with mpmath.workdps(oracle.DPS):
        if entry.check is not None:
            entry.check(inputs, params, where(tc_id, case))
        work = entry.work(inputs, params, gradient=False)
    expected, _ = at_two_precisions(where(tc_id, case), lambda: entry.value(inputs, params))
    if set(expected) != set(family.outputs):
        raise ValueError(f"{where(tc_id, case)}: oracle outputs {sorted(expected)}")
    return Outcome(expected, work)


def gradients(family: Family, entry: FamilyOracle, tc_id: int, case: Case) -> Outcome:
    """Expected loss and gradients of a valid case of ``value_and_grad_<family>_test.json``.

    The analytic oracle gradient is evaluated at two precisions, then compared with
    central differences of the family's value oracle (the loss alone).
    """
    inputs, params = inputs_of(case), case.params
    label = where(tc_id, case)
    with mpmath.workdps(oracle.DPS):
        if entry.check is not None:
            entry.check(inputs, params, label)
        work = entry.work(inputs, params, gradient=True)

    def compute() -> dict:
        loss, grads = entry.loss_and_grad(inputs, params)
        return {"loss": loss, **{f"grad_{name}": grads[name] for name in family.positional}}

    expected, raw = at_two_precisions(label, compute)
    (output,) = family.outputs

    def loss(arguments: dict):
        return entry.value(arguments, params)[output]

    analytic = {name: raw[f"grad_{name}"] for name in family.positional}
    try:
        result = crosscheck.check_gradients(
            loss, inputs, analytic, crosscheck.magnitude(expected, work)
        )
    except AssertionError as exc:
        raise ValueError(f"{label}: numerical gradient check failed: {exc}") from exc
    return Outcome(expected, work, [crosscheck.record(result["kinks"])])


def sequence_values(
    family: Family, entry: FamilyOracle, tc_id: int, case: SequenceCase
) -> list[dict[str, np.ndarray]]:
    """Expected outputs of each step of a valid sequence case.

    The sequence oracle computes exactly (integers and rationals); integer outputs are
    stored as int64 and every rational is rounded once to float64.
    """
    names = case.pinned or family.outputs
    steps = entry.value(case.init, case.steps)
    out = []
    for number, values in enumerate(steps):
        if set(values) != set(family.outputs):
            raise ValueError(f"{where(tc_id, case)} step {number}: outputs {sorted(values)}")
        out.append({name: _exact(values[name]) for name in names})
    return out


def _exact(value) -> np.ndarray:
    """An int64 array as it is; nested lists of rationals -> float64, rounded once each."""
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(_rounded(value), dtype=np.float64)


def _rounded(value):
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return float(value)  # a Fraction: correctly rounded to the nearest float64
