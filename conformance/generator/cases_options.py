"""Valid retrieval-loss cases: options, reductions, logQ, accidental hits, score mask."""

from __future__ import annotations

import numpy as np

from .cases_common import IDS, C, M, P, Q, W, case, hit_inputs, qc
from .model import Case, Draw, f64, i64, mask


def basic() -> list[Case]:
    """Default options: shapes, extra negatives, a closed form."""
    out: list[Case] = []
    add = out.append
    d = Draw(101)
    add(
        case(
            "B=4, N=4, D=8, default options",
            ["Basic", "SumReduction"],
            qc(d, 4, 4, 8),
            "basic",
            draw=d,
        )
    )
    add(
        case(
            "B=1, N=1: a single candidate gives loss exactly 0",
            ["SingleColumn"],
            {Q: f64([[0.5, -1.5, 2.0]]), C: f64([[1.25, 0.75, -0.5]])},
            "basic",
        )
    )
    d = Draw(102)
    add(
        case(
            "B=3, N=8: five extra negatives shared by all rows",
            ["Basic", "ExtraNegatives"],
            qc(d, 3, 8, 5),
            "basic",
            draw=d,
        )
    )
    d = Draw(103)
    add(
        case(
            "B=8, N=16, D=4",
            ["Basic", "ExtraNegatives", "SumReduction"],
            qc(d, 8, 16, 4),
            "basic",
            draw=d,
        )
    )
    add(
        case(
            "B=2, N=2, identity embeddings: 2*log(1+exp(-1))",
            ["ClosedForm", "SumReduction"],
            {Q: f64([[1.0, 0.0], [0.0, 1.0]]), C: f64([[1.0, 0.0], [0.0, 1.0]])},
            "basic",
        )
    )
    return out


def reductions() -> list[Case]:
    """Reductions and sample weights."""
    out: list[Case] = []
    add = out.append
    d = Draw(201)
    x = qc(d, 4, 6, 5)
    x[W] = f64([0.5, 2.0, 0.0, 1.25])
    add(
        case(
            "reduction='mean' with weights summing to 3.75: divides by B=4",
            ["MeanDividesByBatch", "SampleWeight", "ZeroSampleWeight", "ExtraNegatives"],
            x,
            "reductions",
            {"reduction": "mean"},
            draw=d,
        )
    )
    d = Draw(202)
    x = qc(d, 5, 5, 4)
    x[W] = f64([1.0, 0.25, 3.0, 0.5, 2.0])
    add(
        case(
            "reduction='none' returns weighted per-row losses",
            ["ReductionNone", "SampleWeight"],
            x,
            "reductions",
            {"reduction": "none"},
            draw=d,
        )
    )
    d = Draw(203)
    x = qc(d, 4, 4, 6)
    x[W] = f64([2.0, 0.0, 0.5, 1.5])
    add(
        case(
            "sum reduction with a zero weight",
            ["SampleWeight", "ZeroSampleWeight", "SumReduction"],
            x,
            "reductions",
            {"reduction": "sum"},
            draw=d,
        )
    )
    d = Draw(204)
    x = qc(d, 3, 5, 4)
    x[W] = f64(2.5)
    add(
        case(
            "0-d sample_weight 2.5 scales every row",
            ["ScalarSampleWeight", "SampleWeight"],
            x,
            "reductions",
            {"reduction": "sum"},
            draw=d,
        )
    )
    d = Draw(205)
    add(
        case(
            "reduction='mean' without weights, B=5",
            ["MeanDividesByBatch"],
            qc(d, 5, 7, 3),
            "reductions",
            {"reduction": "mean"},
            draw=d,
        )
    )
    return out


def temperature_logq() -> list[Case]:
    """Temperature and the logQ correction, with clipping."""
    out: list[Case] = []
    add = out.append
    d = Draw(301)
    add(
        case(
            "temperature 0.05, D=8",
            ["Temperature"],
            qc(d, 4, 4, 8),
            "temperature_logq",
            {"temperature": 0.05},
            draw=d,
        )
    )
    d = Draw(302)
    x = qc(d, 4, 7, 5)
    x[P] = f64([0.5, 0.001953125, 0.125, 0.03125, 0.25, 0.0078125, 0.0625])
    add(
        case(
            "temperature 0.5 with non-uniform p: S/tau - log p",
            [
                "LogQ",
                "LogQNotScaledByTemperature",
                "LogQOnPositive",
                "Temperature",
                "ExtraNegatives",
            ],
            x,
            "temperature_logq",
            {"temperature": 0.5},
            draw=d,
        )
    )
    d = Draw(303)
    x = qc(d, 3, 6, 4)
    x[P] = d.uniform((6,), 0.001, 0.3)
    add(
        case(
            "temperature 2.0 with non-uniform p",
            ["LogQ", "LogQNotScaledByTemperature", "Temperature", "ExtraNegatives"],
            x,
            "temperature_logq",
            {"temperature": 2.0},
            draw=d,
        )
    )
    d = Draw(304)
    x = qc(d, 4, 4, 4)
    x[P] = f64([0.001, 0.5, 0.02, 0.2])
    x[P] = x[P].astype(np.float32).astype(np.float64)
    add(
        case(
            "logQ only: the positive column is corrected too",
            ["LogQ", "LogQOnPositive"],
            x,
            "temperature_logq",
            draw=d,
        )
    )
    d = Draw(305)
    x = qc(d, 3, 5, 4)
    x[P] = f64([1e-30, 0.0, 0.5, 1e-7, 0.25]).astype(np.float32).astype(np.float64)
    add(
        case(
            "p = 1e-30, 0 and 1e-7 are clipped to min_probability=1e-6",
            ["LogQ", "MinProbabilityClip", "TinyProbability"],
            x,
            "temperature_logq",
            draw=d,
        )
    )
    d = Draw(306)
    x = qc(d, 3, 6, 4)
    x[P] = f64([0.001, 0.5, 0.004, 0.25, 0.0001, 0.0625]).astype(np.float32).astype(np.float64)
    add(
        case(
            "min_probability=0.01 clips three columns",
            ["LogQ", "MinProbabilityClip"],
            x,
            "temperature_logq",
            {"min_probability": 0.01},
            draw=d,
        )
    )
    d = Draw(307)
    x = qc(d, 3, 4, 4)
    x[P] = f64([0.001, 0.5, 0.25, 0.125]).astype(np.float32).astype(np.float64)
    add(
        case(
            "min_probability=1 clips every p to 1: no correction",
            ["LogQ", "MinProbabilityClip"],
            x,
            "temperature_logq",
            {"min_probability": 1.0},
            draw=d,
        )
    )
    d = Draw(308)
    x = qc(d, 4, 6, 8)
    x[P] = d.uniform((6,), 0.0001, 0.05)
    x[W] = f64([1.0, 0.5, 2.0, 1.5])
    add(
        case(
            "temperature 0.05, logQ, weights, reduction='mean'",
            [
                "LogQ",
                "LogQNotScaledByTemperature",
                "Temperature",
                "SampleWeight",
                "MeanDividesByBatch",
                "ExtraNegatives",
            ],
            x,
            "temperature_logq",
            {"temperature": 0.05, "reduction": "mean"},
            draw=d,
        )
    )
    return out


def accidental_hits() -> list[Case]:
    """Accidental-hit removal."""
    out: list[Case] = []
    add = out.append
    x, d = hit_inputs(401)
    add(
        case(
            "row 0's id repeats at columns 5 and 6, both with large logits",
            [
                "AccidentalHit",
                "AccidentalHitsAllDuplicates",
                "NegInfMasking",
                "PositiveNeverMaskedAsHit",
                "ExtraNegatives",
            ],
            x,
            "accidental_hits",
            draw=d,
            note="C[5] = 4*Q[0], C[6] = 2*Q[0]",
        )
    )
    d = Draw(402)
    x = qc(d, 4, 4, 3)
    x[IDS] = i64([7, 7, 7, 7])
    add(
        case(
            "all ids equal: every row keeps only its positive, loss 0",
            ["AccidentalHitsAllDuplicates", "PositiveNeverMaskedAsHit", "AllNegativesMasked"],
            x,
            "accidental_hits",
            draw=d,
        )
    )
    d = Draw(403)
    x = qc(d, 4, 6, 4)
    x[C][1] = x[Q][0] * 2.0
    x[C][0] = x[Q][1] * 2.0
    x[IDS] = i64([3, 3, 5, 8, 9, 5])
    add(
        case(
            "in-batch duplicates: rows 0 and 1 share an id; row 2's id repeats at column 5",
            [
                "AccidentalHit",
                "AccidentalHitsAllDuplicates",
                "PositiveNeverMaskedAsHit",
                "NegInfMasking",
                "ExtraNegatives",
            ],
            x,
            "accidental_hits",
            draw=d,
            note="C[1] = 2*Q[0], C[0] = 2*Q[1]",
        )
    )
    d = Draw(404)
    x = qc(d, 3, 5, 4)
    x[IDS] = i64([0, 1, 2, 3, 4])
    add(case("distinct ids: nothing is masked", ["NoDuplicateIds"], x, "accidental_hits", draw=d))
    x, d = hit_inputs(405)
    x[P] = f64([0.25, 0.0625, 0.5, 0.125, 0.03125, 0.015625, 0.5, 0.001953125])
    add(
        case(
            "accidental hits with temperature 0.5 and logQ",
            [
                "AccidentalHit",
                "AccidentalHitsAllDuplicates",
                "LogQ",
                "LogQNotScaledByTemperature",
                "Temperature",
                "NegInfMasking",
                "ExtraNegatives",
            ],
            x,
            "accidental_hits",
            {"temperature": 0.5},
            draw=d,
            note="C[5] = 4*Q[0], C[6] = 2*Q[0]",
        )
    )
    x, d = hit_inputs(406)
    x[IDS] = x[IDS].astype(np.int32)
    add(
        case(
            "int32 candidate_ids",
            ["AccidentalHit", "Int32Ids", "ExtraNegatives"],
            x,
            "accidental_hits",
            draw=d,
            note="C[5] = 4*Q[0], C[6] = 2*Q[0]",
        )
    )
    return out


def score_mask() -> list[Case]:
    """Score masks, masked positives and fully masked rows."""
    out: list[Case] = []
    add = out.append
    d = Draw(501)
    x = qc(d, 4, 6, 4)
    x[C][4] = x[Q][2] * 4.0
    x[M] = mask([[1, 1, 0, 1, 1, 1], [1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1], [0, 1, 1, 1, 1, 0]])
    add(
        case(
            "score_mask hides one negative per row; row 2's masked entry is large",
            ["ScoreMask", "NegInfMasking", "ExtraNegatives"],
            x,
            "score_mask",
            draw=d,
            note="C[4] = 4*Q[2]",
        )
    )
    d = Draw(502)
    x = qc(d, 4, 4, 4)
    x[M] = mask([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1], [1, 1, 0, 1]])
    add(
        case(
            "the positive of rows 1 and 2 is masked: their losses are 0",
            ["ScoreMask", "MaskedPositiveRowIsZero", "ReductionNone"],
            x,
            "score_mask",
            {"reduction": "none"},
            draw=d,
        )
    )
    d = Draw(503)
    x = qc(d, 4, 4, 4)
    x[M] = mask([[1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 1], [1, 1, 0, 1]])
    add(
        case(
            "masked positives with sum reduction",
            ["ScoreMask", "MaskedPositiveRowIsZero", "SumReduction"],
            x,
            "score_mask",
            draw=d,
        )
    )
    d = Draw(504)
    x = qc(d, 3, 5, 4)
    x[M] = mask([[1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    add(
        case(
            "row 0 keeps only its positive (loss 0); row 2 is fully masked (loss 0)",
            [
                "ScoreMask",
                "AllNegativesMasked",
                "MaskedPositiveRowIsZero",
                "ReductionNone",
                "ExtraNegatives",
            ],
            x,
            "score_mask",
            {"reduction": "none"},
            draw=d,
        )
    )
    d = Draw(505)
    x = qc(d, 3, 3, 4)
    x[M] = mask([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    add(
        case(
            "every positive masked: the loss is exactly 0",
            ["ScoreMask", "MaskedPositiveRowIsZero"],
            x,
            "score_mask",
            draw=d,
        )
    )
    d = Draw(506)
    x = qc(d, 3, 4, 4)
    x[M] = mask(np.ones((3, 4)))
    add(
        case(
            "score_mask all True",
            ["ScoreMask", "MaskAllTrue", "ExtraNegatives"],
            x,
            "score_mask",
            draw=d,
        )
    )
    d = Draw(507)
    x = qc(d, 3, 5, 4)
    x[M] = mask([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0], [1, 1, 1, 0, 1]])
    x[W] = f64([1.0, 3.0, 0.5])
    add(
        case(
            "score_mask with weights, reduction='mean'",
            ["ScoreMask", "SampleWeight", "MeanDividesByBatch", "ExtraNegatives"],
            x,
            "score_mask",
            {"reduction": "mean"},
            draw=d,
        )
    )
    return out
