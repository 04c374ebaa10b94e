"""Cases for the correction steps (logQ, accidental hits, score mask, hard negatives).

One builder per fixture file; the order of each list fixes the tcIds: append only.
"""

from __future__ import annotations

import numpy as np

from .cases_common import case, invalid
from .model import Case, Draw, f64, i64, mask

L = "logits"
P = "candidate_sampling_probability"
IDS = "candidate_ids"
M = "score_mask"
NEG_INF = -np.inf


def logq_correction_cases() -> list[Case]:
    """Cases of ``logq_correction_test.json``."""
    out = []
    d = Draw(2101)
    x = {L: d.normal((3, 5), 2.0), P: d.uniform((5,), 0.001, 0.5)}
    out.append(
        case(
            "random logits and probabilities",
            ["Basic", "LogQ", "LogQOnPositive"],
            x,
            "basic",
            draw=d,
        )
    )
    d = Draw(2102)
    x = {
        L: d.normal((2, 6), 2.0),
        P: f64([1e-30, 0.0, 1e-7, 1e-6, 0.5, 1.0]).astype(np.float32).astype(np.float64),
    }
    out.append(
        case(
            "p = 1e-30, 0, 1e-7 clipped to 1e-6; p = 1 leaves logits unchanged",
            ["LogQ", "MinProbabilityClip", "TinyProbability"],
            x,
            "basic",
            draw=d,
        )
    )
    d = Draw(2103)
    x = {L: d.normal((2, 5), 2.0), P: f64([0.001, 0.5, 0.004, 0.25, 0.0625])}
    x[P] = x[P].astype(np.float32).astype(np.float64)
    out.append(
        case(
            "min_probability=0.01",
            ["LogQ", "MinProbabilityClip"],
            x,
            "basic",
            {"min_probability": 0.01},
            draw=d,
        )
    )
    d = Draw(2104)
    x = {L: d.normal((2, 4), 2.0), P: f64([0.001, 0.5, 0.25, 0.125])}
    x[P] = x[P].astype(np.float32).astype(np.float64)
    out.append(
        case(
            "min_probability=1: no correction",
            ["LogQ", "MinProbabilityClip"],
            x,
            "basic",
            {"min_probability": 1.0},
            draw=d,
        )
    )
    x = {L: f64([[1.5, NEG_INF, -0.25], [NEG_INF, NEG_INF, 2.0]]), P: f64([0.5, 0.25, 0.125])}
    out.append(case("-inf logits stay -inf", ["LogQ", "NegInfInput"], x, "basic"))
    x = {L: f64([[1.5, np.nan, -0.25], [0.5, 1.0, 2.0]]), P: f64([0.5, 0.25, 0.125])}
    out.append(case("a NaN logit stays NaN", ["LogQ", "NaNPropagates"], x, "basic"))
    d = Draw(2105)
    x = {L: d.normal((2, 4), 4096.0), P: d.uniform((4,), 0.0001, 0.9)}
    out.append(case("logits ~1e4", ["LogQ", "LargeLogits"], x, "large_logits", draw=d))
    d = Draw(2106)
    x = {L: d.normal((2, 4), 2.0, float64=True), P: d.rng.uniform(0.001, 0.9, 4)}
    d.dists.append("uniform(0.001,0.9) float64 [4]")
    out.append(
        case(
            "float64 logits and probabilities",
            ["LogQ", "Float64Only"],
            x,
            "float64_only",
            draw=d,
            float64_only=True,
        )
    )
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    out.append(
        invalid(
            "p of length 2 for N=3",
            ["InvalidShape"],
            {L: logits, P: f64([0.5, 0.25])},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "p = 1.5 > 1",
            ["InvalidProbability"],
            {L: logits, P: f64([0.5, 1.5, 0.25])},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "p = -0.25 < 0",
            ["InvalidProbability"],
            {L: logits, P: f64([0.5, -0.25, 0.25])},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "p NaN", ["InvalidProbability"], {L: logits, P: f64([0.5, np.nan, 0.25])}, "ValueError"
        )
    )
    out.append(
        invalid(
            "min_probability 0",
            ["InvalidMinProbability"],
            {L: logits, P: f64([0.5, 0.25, 0.125])},
            "ValueError",
            {"min_probability": 0.0},
        )
    )
    return out


def remove_accidental_hits_cases() -> list[Case]:
    """Cases of ``remove_accidental_hits_test.json``."""
    out = []
    d = Draw(2201)
    x = {L: d.normal((3, 6), 2.0), IDS: i64([4, 9, 2, 4, 4, 7])}
    out.append(
        case(
            "row 0's id repeats at columns 3 and 4",
            [
                "AccidentalHit",
                "AccidentalHitsAllDuplicates",
                "PositiveNeverMaskedAsHit",
                "ExtraNegatives",
            ],
            x,
            "basic",
            draw=d,
        )
    )
    d = Draw(2202)
    x = {L: d.normal((3, 3), 2.0), IDS: i64([5, 5, 5])}
    out.append(
        case(
            "all ids equal: only the diagonal survives",
            ["AccidentalHitsAllDuplicates", "PositiveNeverMaskedAsHit"],
            x,
            "basic",
            draw=d,
        )
    )
    d = Draw(2203)
    x = {L: d.normal((3, 5), 2.0), IDS: i64([1, 1, 2, 2, 1])}
    out.append(
        case(
            "in-batch duplicates: rows 0 and 1 share an id",
            [
                "AccidentalHit",
                "AccidentalHitsAllDuplicates",
                "PositiveNeverMaskedAsHit",
                "ExtraNegatives",
            ],
            x,
            "basic",
            draw=d,
        )
    )
    d = Draw(2204)
    x = {L: d.normal((2, 4), 2.0), IDS: i64([0, 1, 2, 3])}
    out.append(case("distinct ids: unchanged", ["NoDuplicateIds"], x, "basic", draw=d))
    d = Draw(2205)
    x = {L: d.normal((2, 4), 2.0), IDS: np.asarray([3, 8, 3, 8], dtype=np.int32)}
    out.append(
        case("int32 ids", ["AccidentalHit", "Int32Ids", "ExtraNegatives"], x, "basic", draw=d)
    )
    x = {L: f64([[NEG_INF, 1.0, 2.0], [0.5, NEG_INF, 1.5]]), IDS: i64([1, 2, 1])}
    out.append(
        case(
            "-inf logits stay -inf, the positive included",
            ["AccidentalHit", "NegInfInput", "ExtraNegatives"],
            x,
            "basic",
        )
    )
    x = {L: f64([[0.5, 1.0], [1.5, 2.0]]), IDS: i64([-(2**53 - 1), 2**53 - 1])}
    out.append(
        case("ids at the limits of the safe JSON integer range", ["NoDuplicateIds"], x, "basic")
    )
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    out.append(
        invalid(
            "candidate_ids of length 2 for N=3",
            ["InvalidShape"],
            {L: logits, IDS: i64([1, 2])},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "float64 candidate_ids",
            ["InvalidDtype"],
            {L: logits, IDS: f64([1.0, 2.0, 1.0])},
            "TypeError",
        )
    )
    return out


def apply_score_mask_cases() -> list[Case]:
    """Cases of ``apply_score_mask_test.json``."""
    out = []
    d = Draw(2301)
    x = {L: d.normal((3, 5), 2.0), M: d.bools((3, 5), 0.7)}
    out.append(
        case("random mask", ["ScoreMask", "NegInfMasking", "ExtraNegatives"], x, "basic", draw=d)
    )
    x = {L: f64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), M: mask([[1, 0, 1], [1, 0, 1]])}
    out.append(
        case(
            "the positive of row 1 is masked too",
            ["ScoreMask", "NegInfMasking", "ExtraNegatives"],
            x,
            "basic",
        )
    )
    d = Draw(2302)
    x = {L: d.normal((2, 3), 2.0), M: mask(np.zeros((2, 3)))}
    out.append(case("mask all False", ["ScoreMask", "NegInfMasking"], x, "basic", draw=d))
    d = Draw(2303)
    x = {L: d.normal((2, 3), 2.0), M: mask(np.ones((2, 3)))}
    out.append(case("mask all True: unchanged", ["MaskAllTrue"], x, "basic", draw=d))
    x = {L: f64([[NEG_INF, 1.0], [2.0, NEG_INF]]), M: mask([[1, 0], [1, 1]])}
    out.append(case("-inf logits stay -inf", ["ScoreMask", "NegInfInput"], x, "basic"))
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    out.append(
        invalid(
            "score_mask of shape (2, 2) for (2, 3)",
            ["InvalidShape"],
            {L: logits, M: mask(np.ones((2, 2)))},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "int64 score_mask", ["InvalidDtype"], {L: logits, M: i64(np.ones((2, 3)))}, "TypeError"
        )
    )
    return out


def _hard_logits() -> np.ndarray:
    """Dyadic logits with exact ties; row 0's positive is the smallest entry."""
    return f64(
        [
            [-1.0, 0.75, 0.875, 0.875, 0.75, -0.875],
            [-0.5, -0.25, 0.125, 0.125, -0.875, 0.5],
            [0.75, -0.25, -0.5, -0.5, 0.0625, 0.1875],
        ]
    )


def mine_hard_negatives_cases() -> list[Case]:
    """Cases of ``mine_hard_negatives_test.json``."""
    out = []
    for k in (1, 2, 3):
        out.append(
            case(
                f"k={k} with exact ties",
                [
                    "HardNegatives",
                    "HardNegativeTiesLowerIndex",
                    "HardNegativePositiveKept",
                    "ExtraNegatives",
                ],
                {L: _hard_logits()},
                "basic",
                {"num_hard_negatives": k},
            )
        )
    out.append(
        case(
            "k=5 = N-1 keeps every column",
            ["HardNegatives", "HardNegativesKeepAll", "ExtraNegatives"],
            {L: _hard_logits()},
            "basic",
            {"num_hard_negatives": 5},
        )
    )
    out.append(
        case(
            "k=10 > N-1 keeps every column",
            ["HardNegatives", "HardNegativesKeepAll", "ExtraNegatives"],
            {L: _hard_logits()},
            "basic",
            {"num_hard_negatives": 10},
        )
    )
    x = {L: f64([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])}
    out.append(
        case(
            "all logits equal: the lowest-index negatives are kept",
            ["HardNegatives", "HardNegativeTiesLowerIndex"],
            x,
            "basic",
            {"num_hard_negatives": 2},
        )
    )
    x = {L: f64([[2.0, NEG_INF, 1.0, NEG_INF], [NEG_INF, 0.5, NEG_INF, NEG_INF]])}
    out.append(
        case(
            "fewer finite negatives than k",
            ["HardNegatives", "NegInfInput"],
            x,
            "basic",
            {"num_hard_negatives": 2},
        )
    )
    d = Draw(2401)
    out.append(
        case(
            "random logits, k=3",
            ["HardNegatives", "ExtraNegatives"],
            {L: d.normal((4, 9), 2.0)},
            "basic",
            {"num_hard_negatives": 3},
            draw=d,
        )
    )
    out.append(
        invalid(
            "num_hard_negatives 0",
            ["InvalidNumHardNegatives"],
            {L: _hard_logits()},
            "ValueError",
            {"num_hard_negatives": 0},
        )
    )
    out.append(
        invalid(
            "num_hard_negatives -1",
            ["InvalidNumHardNegatives"],
            {L: _hard_logits()},
            "ValueError",
            {"num_hard_negatives": -1},
        )
    )
    return out
