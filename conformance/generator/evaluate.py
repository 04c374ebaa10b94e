"""Expected values (from the oracle) and the size of the numbers each case works with.

Every evaluator returns an :class:`Outcome`: the expected outputs rounded once to
float64, the magnitude used to scale ``atol`` and optional cross-check records.  The
value path runs through :mod:`.oracle` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from . import crosscheck, oracle
from .model import Case

Q = "query_embeddings"
C = "candidate_embeddings"
MARGIN = 1e-3


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


def _max_abs(values) -> float:
    flat = [abs(v) for v in _flat(values) if not (mpmath.isnan(v) or mpmath.isinf(v))]
    return float(max(flat, default=0.0))


def _flat(values):
    if isinstance(values, list):
        for v in values:
            yield from _flat(v)
    else:
        yield mpmath.mpf(values)


def _list(case: Case, name: str):
    arr = case.inputs.get(name)
    return None if arr is None else arr.tolist()


def _retrieval_options(case: Case, params: dict) -> dict:
    return {
        "candidate_sampling_probability": _list(case, "candidate_sampling_probability"),
        "candidate_ids": _list(case, "candidate_ids"),
        "score_mask": _list(case, "score_mask"),
        "num_hard_negatives": params.get("num_hard_negatives"),
        "temperature": params.get("temperature"),
        "min_probability": params.get("min_probability", 1e-6),
    }


def _small_dyadic(arr: np.ndarray) -> bool:
    scaled = arr * 64.0
    return bool(np.all(scaled == np.round(scaled)) and np.max(np.abs(arr)) <= 8.0)


def check_hard_negative_margins(case: Case, params: dict) -> None:
    """Refuse hard-negative cases whose selection could depend on rounding.

    At the k-th/(k+1)-th boundary of every row, the two negatives must either differ by
    at least ``MARGIN * max(1, |v|)`` or tie exactly in any float arithmetic (small
    dyadic inputs, a power-of-two temperature and equal probabilities), or be -inf.
    """
    k = params.get("num_hard_negatives")
    if k is None:
        return
    opts = _retrieval_options(case, params)
    opts["num_hard_negatives"] = None
    s, _ = oracle.retrieval_logits(_list(case, Q), _list(case, C), **opts)
    tau = params.get("temperature")
    exact = (
        _small_dyadic(case.inputs[Q])
        and _small_dyadic(case.inputs[C])
        and (tau is None or math.frexp(tau)[0] == 0.5)
    )
    p = opts["candidate_sampling_probability"]
    for i, row in enumerate(s):
        negs = sorted(((v, j) for j, v in enumerate(row) if j != i), key=lambda t: (-t[0], t[1]))
        if k >= len(negs):
            continue
        (v1, j1), (v2, j2) = negs[k - 1], negs[k]
        if v2 == oracle.NEG_INF:
            continue
        if v1 == v2:
            if not exact or (p is not None and p[j1] != p[j2]):
                raise ValueError(f"{case.comment!r}: row {i} has an inexact tie at k={k}")
        elif v1 - v2 < MARGIN * max(1, abs(v1)):
            raise ValueError(f"{case.comment!r}: row {i} near-tie {v1} vs {v2} at k={k}")


def retrieval(case: Case, params: dict, *, grads: bool = False) -> Outcome:
    """Evaluate ``retrieval_loss`` (and its gradients when ``grads``)."""
    q, c = _list(case, Q), _list(case, C)
    opts = _retrieval_options(case, params)
    reduction = params.get("reduction", "sum")
    weight = _list(case, "sample_weight")
    check_hard_negative_margins(case, params)
    s, _ = oracle.retrieval_logits(q, c, **opts)
    b = len(q)
    rows = b if reduction == "sum" else 1
    work = max(1.0, _max_abs(s)) * rows
    if grads:
        value, dq, dc = oracle.retrieval_loss_grad(
            q, c, sample_weight=weight, reduction=reduction, **opts
        )
        expected = {
            "loss": rounded(value),
            "grad_query_embeddings": rounded(dq),
            "grad_candidate_embeddings": rounded(dc),
        }
        tau = params.get("temperature") or 1.0
        emb = max(np.max(np.abs(case.inputs[Q])), np.max(np.abs(case.inputs[C])))
        work *= max(1.0, emb / tau)
    else:
        value = oracle.retrieval_loss(q, c, sample_weight=weight, reduction=reduction, **opts)
        expected = {"loss": rounded(value)}
    outcome = Outcome(expected, work)
    outcome.cross_checks.append(_torch_check(case, params, expected, grads, work))
    return outcome


def _torch_check(case: Case, params: dict, expected: dict, grads: bool, work: float) -> dict:
    inputs = {k: v.tolist() for k, v in case.inputs.items()}
    loss, dq, dc = crosscheck.retrieval_loss_and_grads(inputs, params, grads=grads)
    scale = max(
        1.0,
        work,
        *(float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)) for e in expected.values()),
    )
    try:
        crosscheck.compare(loss, expected["loss"], scale)
        if grads:
            crosscheck.compare(dq, expected["grad_query_embeddings"], scale)
            crosscheck.compare(dc, expected["grad_candidate_embeddings"], scale)
    except AssertionError as exc:
        raise ValueError(f"torch cross-check failed for {case.comment!r}: {exc}") from exc
    return {
        "dtype": "float64",
        "impl": "torch.autograd" if grads else "torch",
        "passed": True,
        "rtol": crosscheck.RTOL,
        "version": crosscheck.torch_version(),
    }


def value_and_grad(case: Case, params: dict) -> Outcome:
    """Evaluate ``value_and_grad(retrieval_loss)``."""
    return retrieval(case, params, grads=True)


def _step(values, inputs_scale: float, rows: int = 1) -> Outcome:
    return Outcome({"output": rounded(values)}, max(1.0, inputs_scale) * rows)


def logq_correction(case: Case, params: dict) -> Outcome:
    """Evaluate ``logq_correction``."""
    logits = _list(case, "logits")
    out = oracle.logq_correction(
        logits, _list(case, "candidate_sampling_probability"), params.get("min_probability", 1e-6)
    )
    return _step(out, _max_abs(logits))


def remove_accidental_hits(case: Case, params: dict) -> Outcome:
    """Evaluate ``remove_accidental_hits``."""
    logits = _list(case, "logits")
    out = oracle.remove_accidental_hits(logits, _list(case, "candidate_ids"))
    return _step(out, _max_abs(logits))


def apply_score_mask(case: Case, params: dict) -> Outcome:
    """Evaluate ``apply_score_mask``."""
    logits = _list(case, "logits")
    return _step(oracle.apply_score_mask(logits, _list(case, "score_mask")), _max_abs(logits))


def mine_hard_negatives(case: Case, params: dict) -> Outcome:
    """Evaluate ``mine_hard_negatives`` (ties in stored logits are exact by construction)."""
    logits = _list(case, "logits")
    out = oracle.mine_hard_negatives(logits, params["num_hard_negatives"])
    return _step(out, _max_abs(logits))


def softmax_cross_entropy(case: Case, params: dict) -> Outcome:
    """Evaluate ``softmax_cross_entropy``."""
    logits = _list(case, "logits")
    reduction = params.get("reduction", "sum")
    value, _ = oracle.softmax_cross_entropy(
        logits, _list(case, "positive_mask"), _list(case, "sample_weight"), reduction
    )
    rows = len(logits) if reduction == "sum" else 1
    return _step(value, _max_abs(logits), rows)


def logsumexp(case: Case, params: dict) -> Outcome:
    """Evaluate ``logsumexp``."""
    x = _list(case, "x")
    return _step(oracle.logsumexp(x, params.get("axis", -1)), _max_abs(x))
