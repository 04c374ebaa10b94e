"""Cases for ``softmax_cross_entropy`` and ``logsumexp``.

One builder per fixture file; the order of each list fixes the tcIds: append only.
"""

from __future__ import annotations

import numpy as np

from .cases_common import case, invalid
from .model import Case, Draw, f64, mask

L = "logits"
PM = "positive_mask"
W = "sample_weight"
NEG_INF = -np.inf


def softmax_cross_entropy_cases() -> list[Case]:
    """Cases of ``softmax_cross_entropy_test.json``."""
    out = []
    d = Draw(2501)
    out.append(
        case(
            "B=4, N=4, sum", ["Basic", "SumReduction"], {L: d.normal((4, 4), 2.0)}, "basic", draw=d
        )
    )
    d = Draw(2502)
    out.append(
        case(
            "B=3, N=7 extra columns",
            ["Basic", "ExtraNegatives"],
            {L: d.normal((3, 7), 2.0)},
            "basic",
            draw=d,
        )
    )
    d = Draw(2503)
    x = {L: d.normal((4, 5), 2.0), PM: mask([1, 0, 1, 0])}
    out.append(
        case(
            "positive_mask False for rows 1 and 3",
            ["PositiveMaskFalse", "ReductionNone", "ExtraNegatives"],
            x,
            "basic",
            {"reduction": "none"},
            draw=d,
        )
    )
    d = Draw(2504)
    x = {L: d.normal((4, 4), 2.0), W: f64([0.5, 2.0, 0.0, 1.5])}
    out.append(
        case(
            "weights, mean divides by B",
            ["SampleWeight", "MeanDividesByBatch", "ZeroSampleWeight"],
            x,
            "basic",
            {"reduction": "mean"},
            draw=d,
        )
    )
    d = Draw(2505)
    x = {L: d.normal((3, 3), 2.0), W: f64([1.0, 0.25, 3.0]), PM: mask([1, 1, 0])}
    out.append(
        case(
            "weights and positive_mask, reduction='none'",
            ["SampleWeight", "PositiveMaskFalse", "ReductionNone"],
            x,
            "basic",
            {"reduction": "none"},
            draw=d,
        )
    )
    d = Draw(2506)
    x = {L: d.normal((3, 4), 2.0), W: f64(0.5)}
    out.append(
        case(
            "0-d sample_weight",
            ["ScalarSampleWeight", "SampleWeight", "ExtraNegatives"],
            x,
            "basic",
            draw=d,
        )
    )
    x = {L: f64([[1.5, NEG_INF, NEG_INF], [NEG_INF, -0.5, 2.0], [0.25, NEG_INF, 1.0]])}
    out.append(
        case(
            "-inf entries; row 0 keeps only its positive (loss 0)",
            ["NegInfMasking", "AllNegativesMasked", "ReductionNone"],
            x,
            "basic",
            {"reduction": "none"},
        )
    )
    x = {L: f64([[NEG_INF, NEG_INF], [0.5, 1.0]]), PM: mask([0, 1])}
    out.append(
        case(
            "a fully -inf row whose positive_mask is False has loss 0",
            ["PositiveMaskFalse", "NegInfInput", "ReductionNone"],
            x,
            "basic",
            {"reduction": "none"},
        )
    )
    d = Draw(2507)
    out.append(
        case("logits ~1e4", ["LargeLogits"], {L: d.normal((3, 4), 4096.0)}, "large_logits", draw=d)
    )
    d = Draw(2508)
    out.append(
        case(
            "float64 logits",
            ["Float64Only", "Basic"],
            {L: d.normal((3, 4), 2.0, float64=True)},
            "float64_only",
            draw=d,
            float64_only=True,
        )
    )
    x = {L: f64([[1.0, np.nan], [0.5, 0.25]])}
    out.append(
        case(
            "a NaN logit makes its row NaN",
            ["NaNPropagates", "ReductionNone"],
            x,
            "basic",
            {"reduction": "none"},
        )
    )
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    out.append(
        invalid(
            "unknown reduction 'avg'",
            ["InvalidReduction"],
            {L: logits},
            "ValueError",
            {"reduction": "avg"},
        )
    )
    out.append(
        invalid(
            "sample_weight of length 3 for B=2",
            ["InvalidShape"],
            {L: logits, W: f64([1.0, 2.0, 3.0])},
            "ValueError",
        )
    )
    out.append(
        invalid(
            "positive_mask of length 3 for B=2",
            ["InvalidShape"],
            {L: logits, PM: mask([1, 1, 0])},
            "ValueError",
        )
    )
    return out


def logsumexp_cases() -> list[Case]:
    """Cases of ``logsumexp_test.json``."""
    out = []
    X = "x"
    d = Draw(2601)
    out.append(case("2-D, last axis", ["Basic"], {X: d.normal((3, 5), 2.0)}, "basic", draw=d))
    d = Draw(2602)
    out.append(case("1-D", ["Basic"], {X: d.normal((6,), 2.0)}, "basic", draw=d))
    d = Draw(2603)
    out.append(
        case("2-D, axis 0", ["Axis"], {X: d.normal((4, 3), 2.0)}, "basic", {"axis": 0}, draw=d)
    )
    d = Draw(2604)
    out.append(
        case("3-D, axis 1", ["Axis"], {X: d.normal((2, 3, 4), 2.0)}, "basic", {"axis": 1}, draw=d)
    )
    x = {X: f64([[NEG_INF, NEG_INF, NEG_INF], [NEG_INF, 0.5, NEG_INF], [1.0, NEG_INF, 2.0]])}
    out.append(
        case(
            "a row of -inf gives -inf; -inf entries add nothing",
            ["AllNegInfRow", "NegInfInput"],
            x,
            "basic",
        )
    )
    x = {X: f64([[10000.0, 9999.0, 10000.5], [-10000.0, -10002.0, -10001.0]])}
    out.append(case("entries ~1e4 and ~-1e4", ["LargeLogits"], x, "large_logits"))
    d = Draw(2605)
    out.append(
        case(
            "random entries ~1e4",
            ["LargeLogits"],
            {X: d.normal((2, 5), 4096.0)},
            "large_logits",
            draw=d,
        )
    )
    x = {X: f64([[0.5], [-3.25]])}
    out.append(case("a single element per row returns it exactly", ["SingleColumn"], x, "basic"))
    x = {X: f64([[1.0, np.nan, 0.5], [0.25, 0.5, 1.0]])}
    out.append(case("NaN propagates to its row only", ["NaNPropagates"], x, "basic"))
    d = Draw(2606)
    out.append(
        case(
            "float64 entries",
            ["Float64Only", "Basic"],
            {X: d.normal((3, 4), 2.0, float64=True)},
            "float64_only",
            draw=d,
            float64_only=True,
        )
    )
    return out
