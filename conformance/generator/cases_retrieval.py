"""Cases for ``refloss.retrieval_loss`` and ``refloss.value_and_grad(retrieval_loss)``.

The order of the lists below fixes the tcIds: append new cases at the end only.
"""

from __future__ import annotations

import numpy as np

from . import cases_mining, cases_options
from .cases_common import IDS, C, M, P, Q, W, qc
from .model import Case, Draw, f64, i64, mask


def valid_cases() -> list[Case]:
    """Valid ``retrieval_loss`` cases (numbered first, in this order)."""
    return [
        *cases_options.basic(),
        *cases_options.reductions(),
        *cases_options.temperature_logq(),
        *cases_options.accidental_hits(),
        *cases_options.score_mask(),
        *cases_mining.hard_negatives(),
        *cases_mining.large_logits(),
        *cases_mining.float64_only(),
        *cases_mining.nan_propagation(),
    ]


def invalid_cases() -> list[Case]:
    """Inputs ``retrieval_loss`` must reject."""
    out: list[Case] = []

    def bad(comment, flags, inputs, error, params=None):
        out.append(Case(comment, flags, inputs, "invalid", params or {}, "invalid", error))

    q = f64([[0.5, 1.0, -0.25, 2.0], [1.5, -0.5, 0.75, 0.25], [-1.0, 0.125, 0.5, 1.0]])
    c = f64(
        [
            [1.0, 0.5, 0.25, -0.5],
            [0.25, -1.0, 0.5, 0.75],
            [0.5, 0.5, -0.5, 0.5],
            [2.0, 0.0, 1.0, -1.0],
        ]
    )
    p = f64([0.5, 0.25, 0.125, 0.0625])

    def base(**extra):
        return {Q: q.copy(), C: c.copy(), **extra}

    bad("N=2 < B=3", ["InvalidShape"], {Q: q, C: c[:2]}, "ValueError")
    bad("embedding widths differ (4 vs 3)", ["InvalidShape"], {Q: q, C: c[:, :3]}, "ValueError")
    bad("query_embeddings of rank 1", ["InvalidShape"], {Q: q[0], C: c}, "ValueError")
    bad("B=0 rows", ["EmptyBatch"], {Q: q[:0], C: c}, "ValueError")
    bad(
        "candidate_sampling_probability of length 3 for N=4",
        ["InvalidShape"],
        base(**{P: p[:3]}),
        "ValueError",
    )
    bad(
        "candidate_ids of length 5 for N=4",
        ["InvalidShape"],
        base(**{IDS: i64([1, 2, 3, 4, 5])}),
        "ValueError",
    )
    bad(
        "sample_weight of length 2 for B=3",
        ["InvalidShape"],
        base(**{W: f64([1.0, 2.0])}),
        "ValueError",
    )
    bad(
        "score_mask of shape (3, 3) for (B, N) = (3, 4)",
        ["InvalidShape"],
        base(**{M: mask(np.ones((3, 3)))}),
        "ValueError",
    )
    bad(
        "candidate_sampling_probability 1.5 > 1",
        ["InvalidProbability"],
        base(**{P: f64([0.5, 1.5, 0.25, 0.125])}),
        "ValueError",
    )
    bad(
        "candidate_sampling_probability -0.25 < 0",
        ["InvalidProbability"],
        base(**{P: f64([0.5, 0.25, -0.25, 0.125])}),
        "ValueError",
    )
    bad(
        "candidate_sampling_probability NaN",
        ["InvalidProbability"],
        base(**{P: f64([0.5, np.nan, 0.25, 0.125])}),
        "ValueError",
    )
    bad("temperature 0", ["InvalidTemperature"], base(), "ValueError", {"temperature": 0.0})
    bad("temperature -0.5", ["InvalidTemperature"], base(), "ValueError", {"temperature": -0.5})
    bad(
        "temperature +inf",
        ["InvalidTemperature"],
        base(),
        "ValueError",
        {"temperature": "Infinity"},
    )
    bad("temperature NaN", ["InvalidTemperature"], base(), "ValueError", {"temperature": "NaN"})
    bad(
        "num_hard_negatives 0",
        ["InvalidNumHardNegatives"],
        base(),
        "ValueError",
        {"num_hard_negatives": 0},
    )
    bad(
        "num_hard_negatives -1",
        ["InvalidNumHardNegatives"],
        base(),
        "ValueError",
        {"num_hard_negatives": -1},
    )
    bad("unknown reduction 'avg'", ["InvalidReduction"], base(), "ValueError", {"reduction": "avg"})
    bad(
        "int64 embeddings",
        ["InvalidDtype"],
        {Q: i64([[1, 2], [3, 4]]), C: i64([[1, 0], [0, 1]])},
        "TypeError",
    )
    bad(
        "float64 candidate_ids",
        ["InvalidDtype"],
        base(**{IDS: f64([1.0, 2.0, 3.0, 4.0])}),
        "TypeError",
    )
    bad("int64 score_mask", ["InvalidDtype"], base(**{M: i64(np.ones((3, 4)))}), "TypeError")
    bad(
        "min_probability 0",
        ["InvalidMinProbability"],
        base(**{P: p}),
        "ValueError",
        {"min_probability": 0.0},
    )
    bad(
        "min_probability 1.5",
        ["InvalidMinProbability"],
        base(**{P: p}),
        "ValueError",
        {"min_probability": 1.5},
    )
    return out


# The lists above are frozen at format v1: their order fixes the tcIds of both files.
# New cases go into new builder functions appended at the END of the two lists below.


def retrieval_loss_cases() -> list[Case]:
    """All cases of ``retrieval_loss_test.json`` in tcId order."""
    return valid_cases() + invalid_cases()


def value_and_grad_cases() -> list[Case]:
    """All cases of ``value_and_grad_retrieval_loss_test.json`` in tcId order.

    The valid retrieval cases with a scalar reduction and no NaN, then one invalid case.
    """
    out = []
    for case in valid_cases():
        if case.params.get("reduction", "sum") == "none" or "NaNPropagates" in case.flags:
            continue
        out.append(
            Case(
                case.comment,
                list(case.flags),
                case.inputs,
                case.group,
                dict(case.params),
                case.result,
                case.error,
                case.float64_only,
                case.provenance,
            )
        )
    d = Draw(1001)
    x = qc(d, 3, 4, 4)
    out.append(
        Case(
            "reduction='none' is not a scalar loss",
            ["NonScalarLoss"],
            x,
            "invalid",
            {"reduction": "none"},
            "invalid",
            "ValueError",
            provenance=d.provenance(),
        )
    )
    return out
