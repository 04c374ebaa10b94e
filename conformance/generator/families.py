"""What the generator adds to each family of ``refloss._registry.FAMILIES``: cases and oracle.

The registry declares each family once (function, positional arrays, outputs, header,
whether a gradient file exists); :mod:`.build` reads it for the file list and metadata.
This module maps each family name to its case lists and its mpmath oracle evaluators,
and nothing else.  The evaluators read a case's inputs as nested lists by argument name
and its options (``params``); they compute at the working precision of the mpmath
context (the generator runs them at 50 and at 100 digits).

Adding a family: declare it in ``refloss/_registry.py``, write its oracle in
:mod:`.oracle` and its cases, and add one :class:`FamilyOracle` entry below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np

from refloss._registry import FAMILIES

from . import (
    cases_contrastive,
    cases_frequency,
    cases_retrieval,
    cases_sampled,
    cases_softmax,
    cases_steps,
    frequency_oracle,
    oracle,
)
from .cases_common import IDS, C, M, P, Q, W
from .model import Case

L = "logits"
MARGIN = 1e-3

Inputs = dict
Params = dict


@dataclass(frozen=True)
class FamilyOracle:
    """The generator's part of one family: its cases and its oracle evaluators.

    Attributes
    ----------
    cases : callable
        The cases of ``<name>_test.json`` in tcId order (None keeps a retired tcId).
    value : callable
        ``value(inputs, params) -> {output name: mpf or nested list}``, the family's
        outputs (``Family.outputs``).  For a gradient family it is also the scalar loss
        that :mod:`.crosscheck` differentiates numerically.
    work : callable
        ``work(inputs, params, *, gradient) -> float``: the magnitude of the numbers the
        case works with (it scales ``atol``, see ``conformance/README.md``).
    check : callable, optional
        ``check(inputs, params, where)``: raise ``ValueError`` for a case whose expected
        value could depend on rounding (e.g. near-ties in hard-negative mining).
    gradient_cases : callable, optional
        The cases of ``value_and_grad_<name>_test.json``.
    loss_and_grad : callable, optional
        ``loss_and_grad(inputs, params) -> (loss, {positional name: gradient})``: the
        analytic oracle gradient.
    """

    cases: Callable[[], list[Case | None]]
    value: Callable[[Inputs, Params], dict]
    work: Callable[..., float]
    check: Callable[[Inputs, Params, str], None] | None = None
    gradient_cases: Callable[[], list[Case | None]] | None = None
    loss_and_grad: Callable[[Inputs, Params], tuple] | None = None


def _max_abs(values) -> float:
    flat = [abs(v) for v in _flat(values) if not (mpmath.isnan(v) or mpmath.isinf(v))]
    return float(max(flat, default=0.0))


def _flat(values):
    if isinstance(values, list):
        for v in values:
            yield from _flat(v)
    else:
        yield mpmath.mpf(values)


def _rows(inputs: Inputs, params: Params, name: str) -> int:
    """Rows a reduction adds up: B for "sum" (the default), else 1."""
    return len(inputs[name]) if params.get("reduction", "sum") == "sum" else 1


# --- retrieval_loss -------------------------------------------------------------------


def _retrieval_options(inputs: Inputs, params: Params) -> dict:
    return {
        "candidate_sampling_probability": inputs.get(P),
        "candidate_ids": inputs.get(IDS),
        "score_mask": inputs.get(M),
        "num_hard_negatives": params.get("num_hard_negatives"),
        "temperature": params.get("temperature"),
        "min_probability": params.get("min_probability", 1e-6),
    }


def _retrieval_value(inputs: Inputs, params: Params) -> dict:
    loss = oracle.retrieval_loss(
        inputs[Q],
        inputs[C],
        sample_weight=inputs.get(W),
        reduction=params.get("reduction", "sum"),
        **_retrieval_options(inputs, params),
    )
    return {"loss": loss}


def _retrieval_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    loss, dq, dc = oracle.retrieval_loss_grad(
        inputs[Q],
        inputs[C],
        sample_weight=inputs.get(W),
        reduction=params.get("reduction", "sum"),
        **_retrieval_options(inputs, params),
    )
    return loss, {Q: dq, C: dc}


def _retrieval_work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
    s, _ = oracle.retrieval_logits(inputs[Q], inputs[C], **_retrieval_options(inputs, params))
    work = max(1.0, _max_abs(s)) * _rows(inputs, params, Q)
    if gradient:
        tau = params.get("temperature") or 1.0
        emb = max(np.max(np.abs(inputs[Q])), np.max(np.abs(inputs[C])))
        work *= max(1.0, emb / tau)
    return work


def _small_dyadic(values) -> bool:
    arr = np.asarray(values, dtype=np.float64)
    scaled = arr * 64.0
    return bool(np.all(scaled == np.round(scaled)) and np.max(np.abs(arr)) <= 8.0)


def check_hard_negative_margins(inputs: Inputs, params: Params, where: str) -> None:
    """Refuse hard-negative cases whose selection could depend on rounding.

    At the k-th/(k+1)-th boundary of every row, the two negatives must either differ by
    at least ``MARGIN * max(1, |v|)`` or tie exactly in any float arithmetic (small
    dyadic inputs, a power-of-two temperature and equal probabilities), or be -inf.
    """
    k = params.get("num_hard_negatives")
    if k is None:
        return
    opts = _retrieval_options(inputs, params)
    opts["num_hard_negatives"] = None
    s, _ = oracle.retrieval_logits(inputs[Q], inputs[C], **opts)
    tau = params.get("temperature")
    exact = (
        _small_dyadic(inputs[Q])
        and _small_dyadic(inputs[C])
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
                raise ValueError(f"{where}: row {i} has an inexact tie at k={k}")
        elif v1 - v2 < MARGIN * max(1, abs(v1)):
            raise ValueError(f"{where}: row {i} near-tie {v1} vs {v2} at k={k}")


# --- the correction steps -------------------------------------------------------------


def _logits_work(name: str = L) -> Callable[..., float]:
    def work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
        return max(1.0, _max_abs(inputs[name]))

    return work


def _logq_value(inputs: Inputs, params: Params) -> dict:
    out = oracle.logq_correction(inputs[L], inputs[P], params.get("min_probability", 1e-6))
    return {"output": out}


def _hits_value(inputs: Inputs, params: Params) -> dict:
    return {"output": oracle.remove_accidental_hits(inputs[L], inputs[IDS])}


def _mask_value(inputs: Inputs, params: Params) -> dict:
    return {"output": oracle.apply_score_mask(inputs[L], inputs[M])}


def _mining_value(inputs: Inputs, params: Params) -> dict:
    """Ties in the stored logits are exact by construction."""
    return {"output": oracle.mine_hard_negatives(inputs[L], params["num_hard_negatives"])}


# --- softmax_cross_entropy and logsumexp ----------------------------------------------


def _softmax_arguments(inputs: Inputs, params: Params) -> tuple:
    return (
        inputs[L],
        inputs.get("labels"),
        inputs.get("positive_mask"),
        inputs.get(W),
        params.get("reduction", "sum"),
    )


def _softmax_value(inputs: Inputs, params: Params) -> dict:
    value, _ = oracle.softmax_cross_entropy(*_softmax_arguments(inputs, params))
    return {"output": value}


def _softmax_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    value, grad = oracle.softmax_cross_entropy_grad(*_softmax_arguments(inputs, params))
    return value, {L: grad}


def _softmax_work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
    return max(1.0, _max_abs(inputs[L])) * _rows(inputs, params, L)


def _logsumexp_value(inputs: Inputs, params: Params) -> dict:
    return {"output": oracle.logsumexp(inputs["x"], params.get("axis", -1))}


# --- sampled_softmax_loss, nce_loss and full_softmax_loss ------------------------------

SAMPLED_ARRAYS = ("true_expected_count", "sampled_expected_count")


def _sampled_arguments(inputs: Inputs, params: Params) -> tuple[tuple, dict]:
    options = {name: inputs.get(name) for name in SAMPLED_ARRAYS}
    options["remove_accidental_hits"] = params["remove_accidental_hits"]
    options["subtract_log_q"] = params.get("subtract_log_q", True)
    arrays = (inputs[n] for n in ("weights", "biases", "inputs", "labels", "sampled_candidates"))
    return tuple(arrays), options


def _sampled_value(kind: str) -> Callable[[Inputs, Params], dict]:
    def value(inputs: Inputs, params: Params) -> dict:
        args, options = _sampled_arguments(inputs, params)
        reduction = params.get("reduction", "none")
        return {"loss": oracle.sampled_loss(kind, *args, reduction=reduction, **options)}

    return value


def _sampled_loss_and_grad(kind: str) -> Callable[[Inputs, Params], tuple]:
    def loss_and_grad(inputs: Inputs, params: Params) -> tuple:
        args, options = _sampled_arguments(inputs, params)
        loss, dw, db, dx = oracle.sampled_loss_grad(
            kind, *args, reduction=params["reduction"], **options
        )
        return loss, {"weights": dw, "biases": db, "inputs": dx}

    return loss_and_grad


def _sampled_work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
    args, options = _sampled_arguments(inputs, params)
    logits, _ = oracle.sampled_logits(*args, **options)
    work = max(1.0, _max_abs(logits))
    if params.get("reduction", "none") == "sum":
        work *= len(inputs["inputs"])
    if gradient:
        work *= max(
            1.0, float(np.max(np.abs(inputs["weights"]))), float(np.max(np.abs(inputs["inputs"])))
        )
    return work


def _full_options(inputs: Inputs, params: Params) -> dict:
    return {"class_bias": inputs.get("class_bias"), "temperature": params.get("temperature")}


def _full_value(inputs: Inputs, params: Params) -> dict:
    loss = oracle.full_softmax_loss(
        inputs["query_embeddings"],
        inputs["class_embeddings"],
        inputs["labels"],
        reduction=params.get("reduction", "none"),
        **_full_options(inputs, params),
    )
    return {"loss": loss}


def _full_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    loss, dq, dc, _, _ = oracle.full_softmax_loss_grad(
        inputs["query_embeddings"],
        inputs["class_embeddings"],
        inputs["labels"],
        reduction=params["reduction"],
        **_full_options(inputs, params),
    )
    return loss, {"query_embeddings": dq, "class_embeddings": dc}


def _full_work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
    s = oracle.full_softmax_logits(
        inputs["query_embeddings"], inputs["class_embeddings"], **_full_options(inputs, params)
    )
    work = max(1.0, _max_abs(s))
    if params.get("reduction", "none") == "sum":
        work *= len(inputs["query_embeddings"])
    if gradient:
        tau = params.get("temperature") or 1.0
        emb = max(
            np.max(np.abs(inputs["query_embeddings"])), np.max(np.abs(inputs["class_embeddings"]))
        )
        work *= max(1.0, emb / tau)
    return work


# --- frequency (a sequence family) -----------------------------------------------------


def _frequency_steps(init: dict, steps: list[dict]) -> list[dict]:
    """Replay the steps on the exact estimator: ``{output name: value}`` per step.

    The defaults are refloss's: ``num_hashes=1``, ``initial_gap=100``, ``seed=0``,
    ``learning_rate=0.01``, ``first_sighting="update"``, ``min_probability=1e-6``.
    """
    estimator = frequency_oracle.Estimator(
        num_buckets=init["num_buckets"],
        num_hashes=init.get("num_hashes", 1),
        initial_gap=init.get("initial_gap", 100.0),
        seed=init.get("seed", 0),
    )
    out = []
    for step in steps:
        ids = [int(i) for i in np.asarray(step["inputs"]["ids"]).ravel()]
        params = step["params"]
        estimator.update(
            ids,
            step=params["step"],
            learning_rate=params.get("learning_rate", 0.01),
            first_sighting=params.get("first_sighting", "update"),
        )
        probability = estimator.probability(
            ids, min_probability=params.get("min_probability", 1e-6)
        )
        width = len(ids)
        out.append(
            {
                "buckets": np.asarray(estimator.buckets(ids), dtype=np.int64).reshape(
                    estimator.num_hashes, width
                ),
                "probability": probability,
                "gap": [list(row) for row in estimator.gap],
                "last_step": np.asarray(estimator.last_step, dtype=np.int64),
            }
        )
    return out


def _no_work(*args, **kwargs) -> float:
    return 1.0


# --- contrastive losses ---------------------------------------------------------------

IMAGE, TEXT = "image_embeddings", "text_embeddings"


def _clip_value(inputs: Inputs, params: Params) -> dict:
    options = {k: params[k] for k in ("label_smoothing", "reduction") if k in params}
    return {"loss": oracle.clip_loss(inputs[IMAGE], inputs[TEXT], inputs["logit_scale"], **options)}


def _clip_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    options = {k: params[k] for k in ("label_smoothing", "reduction") if k in params}
    loss, di, dt, ds = oracle.clip_loss_grad(
        inputs[IMAGE], inputs[TEXT], inputs["logit_scale"], **options
    )
    return loss, {IMAGE: di, TEXT: dt, "logit_scale": ds}


def _siglip_value(inputs: Inputs, params: Params) -> dict:
    loss = oracle.siglip_loss(
        inputs[IMAGE], inputs[TEXT], inputs["logit_scale"], inputs["logit_bias"], **params
    )
    return {"loss": loss}


def _siglip_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    loss, dx, dy, dt, db = oracle.siglip_loss_grad(
        inputs[IMAGE], inputs[TEXT], inputs["logit_scale"], inputs["logit_bias"], **params
    )
    return loss, {IMAGE: dx, TEXT: dy, "logit_scale": dt, "logit_bias": db}


def _nt_xent_value(inputs: Inputs, params: Params) -> dict:
    return {"loss": oracle.nt_xent_loss(inputs["view_a"], inputs["view_b"], **params)}


def _nt_xent_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    loss, da, db, _ = oracle.nt_xent_loss_grad(inputs["view_a"], inputs["view_b"], **params)
    return loss, {"view_a": da, "view_b": db}


def _supcon_value(inputs: Inputs, params: Params) -> dict:
    return {"loss": oracle.supcon_loss(inputs["embeddings"], inputs["labels"], **params)}


def _supcon_loss_and_grad(inputs: Inputs, params: Params) -> tuple:
    loss, de, _ = oracle.supcon_loss_grad(inputs["embeddings"], inputs["labels"], **params)
    return loss, {"embeddings": de}


def _similarity_work(*names: str, scale: str | None = None) -> Callable[..., float]:
    """The magnitude of the scores: embeddings' products times the scale or 1/temperature."""

    def work(inputs: Inputs, params: Params, *, gradient: bool) -> float:
        emb = max(float(np.max(np.abs(inputs[n]))) for n in names)
        width = len(inputs[names[0]][0])
        factor = abs(float(inputs[scale])) if scale else 1.0 / params["temperature"]
        rows = len(inputs[names[0]]) if params.get("reduction") == "sum" else 1
        value = max(1.0, emb * emb * width * factor) * rows
        return value * max(1.0, emb) if gradient else value

    return work


def _contrastive_entry(name: str, value, loss_and_grad, work) -> FamilyOracle:
    cases = getattr(cases_contrastive, f"{name}_cases")
    return FamilyOracle(
        cases,
        value,
        work,
        gradient_cases=lambda: cases(gradient=True),
        loss_and_grad=loss_and_grad,
    )


ORACLES: dict[str, FamilyOracle] = {
    "retrieval_loss": FamilyOracle(
        cases_retrieval.retrieval_loss_cases,
        _retrieval_value,
        _retrieval_work,
        check=check_hard_negative_margins,
        gradient_cases=cases_retrieval.value_and_grad_cases,
        loss_and_grad=_retrieval_loss_and_grad,
    ),
    "logq_correction": FamilyOracle(cases_steps.logq_correction_cases, _logq_value, _logits_work()),
    "remove_accidental_hits": FamilyOracle(
        cases_steps.remove_accidental_hits_cases, _hits_value, _logits_work()
    ),
    "apply_score_mask": FamilyOracle(
        cases_steps.apply_score_mask_cases, _mask_value, _logits_work()
    ),
    "mine_hard_negatives": FamilyOracle(
        cases_steps.mine_hard_negatives_cases, _mining_value, _logits_work()
    ),
    "softmax_cross_entropy": FamilyOracle(
        cases_softmax.softmax_cross_entropy_cases,
        _softmax_value,
        _softmax_work,
        gradient_cases=cases_softmax.value_and_grad_cases,
        loss_and_grad=_softmax_loss_and_grad,
    ),
    "logsumexp": FamilyOracle(cases_softmax.logsumexp_cases, _logsumexp_value, _logits_work("x")),
    "sampled_softmax_loss": FamilyOracle(
        cases_sampled.sampled_softmax_loss_cases,
        _sampled_value("softmax"),
        _sampled_work,
        gradient_cases=cases_sampled.value_and_grad_sampled_softmax_loss_cases,
        loss_and_grad=_sampled_loss_and_grad("softmax"),
    ),
    "nce_loss": FamilyOracle(
        cases_sampled.nce_loss_cases,
        _sampled_value("sigmoid"),
        _sampled_work,
        gradient_cases=cases_sampled.value_and_grad_nce_loss_cases,
        loss_and_grad=_sampled_loss_and_grad("sigmoid"),
    ),
    "frequency": FamilyOracle(cases_frequency.frequency_cases, _frequency_steps, _no_work),
    "clip_loss": _contrastive_entry(
        "clip_loss",
        _clip_value,
        _clip_loss_and_grad,
        _similarity_work(IMAGE, TEXT, scale="logit_scale"),
    ),
    "siglip_loss": _contrastive_entry(
        "siglip_loss",
        _siglip_value,
        _siglip_loss_and_grad,
        _similarity_work(IMAGE, TEXT, scale="logit_scale"),
    ),
    "nt_xent_loss": _contrastive_entry(
        "nt_xent_loss", _nt_xent_value, _nt_xent_loss_and_grad, _similarity_work("view_a", "view_b")
    ),
    "supcon_loss": _contrastive_entry(
        "supcon_loss", _supcon_value, _supcon_loss_and_grad, _similarity_work("embeddings")
    ),
    "full_softmax_loss": FamilyOracle(
        cases_sampled.full_softmax_loss_cases,
        _full_value,
        _full_work,
        gradient_cases=cases_sampled.value_and_grad_full_softmax_loss_cases,
        loss_and_grad=_full_loss_and_grad,
    ),
}


def coverage_problems() -> list[str]:
    """Families without an oracle entry, entries without a family, missing gradient parts."""
    declared = {family.name: family for family in FAMILIES}
    problems = [
        f"{name}: declared in refloss._registry, no oracle entry"
        for name in declared
        if name not in ORACLES
    ]
    problems += [
        f"{name}: oracle entry of an undeclared family" for name in ORACLES if name not in declared
    ]
    for name, family in declared.items():
        entry = ORACLES.get(name)
        if entry is None or not family.gradient_fixture:
            continue
        if entry.gradient_cases is None or entry.loss_and_grad is None:
            problems.append(f"{name}: gradient_fixture is True, no gradient cases or oracle")
        if len(family.outputs) != 1:
            problems.append(f"{name}: a gradient family has one output, its scalar loss")
    return problems
