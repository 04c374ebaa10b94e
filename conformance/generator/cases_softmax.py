"""Cases for ``softmax_cross_entropy`` and ``logsumexp``.

One builder per fixture file; the order of each list fixes the tcIds: append only.
"""

from __future__ import annotations

import numpy as np

from .cases_common import case, invalid
from .model import Case, Draw, f64, i64, mask

L = "logits"
PM = "positive_mask"
W = "sample_weight"
Y = "labels"
NEG_INF = -np.inf
V2 = "0.2.0"  # cases added with the labels option


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
        case(
            "logits ~1e4",
            ["LargeLogits", "DominantTarget"],
            {L: d.normal((3, 4), 4096.0)},
            "large_logits",
            draw=d,
        )
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
    out += label_cases()
    out += invalid_label_cases()
    return out


def label_cases() -> list[Case]:
    """Valid cases of the ``labels`` option (refloss 0.2.0), appended to the file."""
    out = []
    d = Draw(2511)
    x = {L: d.normal((4, 3), 2.0), Y: i64([2, 0, 1, 2])}
    out.append(
        case(
            "integer labels, B=4 rows, N=3 columns (N < B)",
            ["IntegerLabels", "FewerColumnsThanRows", "SumReduction"],
            x,
            "labels",
            draw=d,
            source=V2,
        )
    )
    d = Draw(2512)
    x = {L: d.normal((3, 5), 2.0), Y: i64([4, 4, 0])}
    out.append(
        case(
            "integer labels, rows 0 and 1 share target column 4",
            ["IntegerLabels", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            draw=d,
            source=V2,
        )
    )
    d = Draw(2513)
    x = {L: d.normal((3, 4), 2.0), Y: i64([1, 3, 3]), PM: mask([1, 0, 1])}
    out.append(
        case(
            "integer labels, positive_mask False for row 1, mean divides by B",
            ["IntegerLabels", "PositiveMaskFalse", "MeanDividesByBatch"],
            x,
            "labels",
            {"reduction": "mean"},
            draw=d,
            source=V2,
        )
    )
    d = Draw(2514)
    x = {L: d.normal((3, 5), 2.0), Y: mask(np.eye(3, 5))}
    out.append(
        case(
            "one-hot bool labels on the diagonal give the in-batch loss",
            ["LabelWeights", "BoolLabelWeights"],
            x,
            "labels",
            draw=d,
            source=V2,
        )
    )
    d = Draw(2515)
    y = mask([[1, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]])
    out.append(
        case(
            "bool labels: several positives per row, row 2 has none (loss 0)",
            ["LabelWeights", "BoolLabelWeights", "SeveralPositives", "ZeroLabelRow"],
            {L: d.normal((4, 5), 2.0), Y: y},
            "labels",
            {"reduction": "none"},
            draw=d,
            source=V2,
        )
    )
    d = Draw(2516)
    y = f64([[0.5, 0.0, 1.5, 0.0], [0.0, 2.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    x = {L: d.normal((3, 4), 2.0), Y: y, W: f64([1.0, 0.5, 2.0])}
    out.append(
        case(
            "float label weights used as given (not normalised), sample weights, mean",
            [
                "LabelWeights",
                "SeveralPositives",
                "LabelWeightsNotNormalised",
                "SampleWeight",
                "MeanDividesByBatch",
            ],
            x,
            "labels",
            {"reduction": "mean"},
            draw=d,
            source=V2,
        )
    )
    d = Draw(2517)
    y = f64([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.5, 0.0], [0.0, 0.75, 0.0, 0.25]])
    x = {L: d.normal((3, 4), 2.0), Y: y, PM: mask([1, 1, 0])}
    out.append(
        case(
            "float label weights: row 0 all zero, row 2 positive_mask False (both loss 0)",
            ["LabelWeights", "ZeroLabelRow", "PositiveMaskFalse", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            draw=d,
            source=V2,
        )
    )
    x = {
        L: f64([[1.5, NEG_INF, 0.25, NEG_INF], [NEG_INF, NEG_INF, 2.0, NEG_INF]]),
        Y: f64([[1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0]]),
    }
    out.append(
        case(
            "-inf logits under zero weights add nothing; row 1 keeps only its target (loss 0)",
            ["LabelWeights", "NegInfMasking", "AllNegativesMasked", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            source=V2,
        )
    )
    x = {
        L: f64([[0.5, NEG_INF, 1.0], [0.25, -1.0, 2.0]]),
        Y: f64([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]),
    }
    out.append(
        case(
            "a positive label weight on a -inf logit gives +inf",
            ["LabelWeights", "NegInfTargetIsInf", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            source=V2,
        )
    )
    x = {L: f64([[0.5, NEG_INF, 1.0], [0.25, -1.0, 2.0]]), Y: i64([1, 2])}
    out.append(
        case(
            "an integer target on a -inf logit gives +inf",
            ["IntegerLabels", "NegInfTargetIsInf", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            source=V2,
        )
    )
    x = {L: f64([[500.0, 40.0, -3.0], [0.0, 470.0, 1.0]]), Y: i64([0, 1])}
    out.append(
        case(
            "dominant targets: losses near 1e-200 keep their relative precision",
            ["IntegerLabels", "DominantTarget", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            source=V2,
        )
    )
    d = Draw(2518)
    y = f64([[1.0, 0.0, 0.5, 0.0], [0.0, 0.25, 0.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
    out.append(
        case(
            "logits ~1e4 with float label weights",
            ["LabelWeights", "SeveralPositives", "LargeLogits"],
            {L: d.normal((3, 4), 4096.0), Y: y},
            "labels_large_logits",
            draw=d,
            source=V2,
        )
    )
    d = Draw(2519)
    x = {L: d.normal((3, 4), 2.0, float64=True), Y: i64([3, 0, 0])}
    out.append(
        case(
            "float64 logits, integer labels",
            ["Float64Only", "IntegerLabels"],
            x,
            "labels_float64_only",
            draw=d,
            float64_only=True,
            source=V2,
        )
    )
    x = {L: f64([[1.0, np.nan, 0.5], [0.5, 0.25, 1.0]]), Y: f64([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])}
    out.append(
        case(
            "a NaN logit makes its row NaN, with label weights too",
            ["NaNPropagates", "LabelWeights", "ReductionNone"],
            x,
            "labels",
            {"reduction": "none"},
            source=V2,
        )
    )
    return out


def invalid_label_cases() -> list[Case]:
    """``labels`` the function must reject (refloss 0.2.0)."""
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    group = {"group": "invalid_labels", "source": V2}
    return [
        invalid(
            "integer label 3 outside [0, N=3)",
            ["InvalidLabels"],
            {L: logits, Y: i64([0, 3])},
            "ValueError",
            **group,
        ),
        invalid(
            "integer label -1",
            ["InvalidLabels"],
            {L: logits, Y: i64([-1, 2])},
            "ValueError",
            **group,
        ),
        invalid(
            "float64 labels of shape (B,)",
            ["InvalidDtype"],
            {L: logits, Y: f64([0.0, 1.0])},
            "TypeError",
            **group,
        ),
        invalid(
            "int64 label matrix of shape (B, N)",
            ["InvalidDtype"],
            {L: logits, Y: i64([[1, 0, 0], [0, 1, 0]])},
            "TypeError",
            **group,
        ),
        invalid(
            "a negative label weight",
            ["InvalidLabels"],
            {L: logits, Y: f64([[1.0, -0.5, 0.0], [0.0, 1.0, 0.0]])},
            "ValueError",
            **group,
        ),
        invalid(
            "a NaN label weight",
            ["InvalidLabels"],
            {L: logits, Y: f64([[1.0, np.nan, 0.0], [0.0, 1.0, 0.0]])},
            "ValueError",
            **group,
        ),
        invalid(
            "label weights of shape (2, 2) for logits (2, 3)",
            ["InvalidShape"],
            {L: logits, Y: f64([[1.0, 0.0], [0.0, 1.0]])},
            "ValueError",
            **group,
        ),
        invalid(
            "integer labels of length 3 for B=2",
            ["InvalidShape"],
            {L: logits, Y: i64([0, 1, 2])},
            "ValueError",
            **group,
        ),
        invalid(
            "in-batch labels (labels=None) need N >= B: B=3, N=2",
            ["InvalidShape"],
            {L: f64([[0.5, 1.0], [2.0, -0.5], [0.25, 0.75]])},
            "ValueError",
            **group,
        ),
    ]


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


def value_and_grad_cases() -> list[Case]:
    """Cases of ``value_and_grad_softmax_cross_entropy_test.json`` (refloss 0.2.0)."""
    out = []

    def add(comment, flags, inputs, group="basic", params=None, draw=None, **kw):
        out.append(case(comment, flags, inputs, group, params, draw=draw, source=V2, **kw))

    d = Draw(2701)
    add(
        "in-batch labels, B=4, N=4, sum",
        ["Basic", "SumReduction"],
        {L: d.normal((4, 4), 2.0)},
        draw=d,
    )
    d = Draw(2702)
    add(
        "in-batch labels with extra columns (N=6 > B=3), mean",
        ["ExtraNegatives", "MeanDividesByBatch"],
        {L: d.normal((3, 6), 2.0)},
        params={"reduction": "mean"},
        draw=d,
    )
    d = Draw(2703)
    add(
        "integer labels, B=4 rows, N=3 columns (N < B)",
        ["IntegerLabels", "FewerColumnsThanRows"],
        {L: d.normal((4, 3), 2.0), Y: i64([2, 0, 0, 1])},
        draw=d,
    )
    d = Draw(2704)
    add(
        "integer labels, positive_mask False for row 0 (zero gradient row), sample weights",
        ["IntegerLabels", "PositiveMaskFalse", "SampleWeight"],
        {
            L: d.normal((3, 5), 2.0),
            Y: i64([1, 4, 4]),
            PM: mask([0, 1, 1]),
            W: f64([2.0, 0.5, 1.5]),
        },
        draw=d,
    )
    d = Draw(2705)
    y = mask([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 1], [0, 0, 1, 0, 0]])
    add(
        "bool labels: several positives per row, row 1 has none (zero gradient row)",
        ["LabelWeights", "BoolLabelWeights", "SeveralPositives", "ZeroLabelRow"],
        {L: d.normal((4, 5), 2.0), Y: y},
        draw=d,
    )
    d = Draw(2706)
    y = f64([[0.5, 0.0, 1.5, 0.25], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    add(
        "float label weights used as given, a zero row, sample weights with a 0, mean",
        [
            "LabelWeights",
            "SeveralPositives",
            "LabelWeightsNotNormalised",
            "ZeroLabelRow",
            "SampleWeight",
            "ZeroSampleWeight",
            "MeanDividesByBatch",
        ],
        {L: d.normal((3, 4), 2.0), Y: y, W: f64([1.5, 0.0, 1.0])},
        params={"reduction": "mean"},
        draw=d,
    )
    x = {L: f64([[1.5, NEG_INF, NEG_INF], [NEG_INF, -0.5, 2.0], [0.25, NEG_INF, 1.0]])}
    add(
        "-inf entries get zero gradient; row 0 keeps only its target (loss 0, gradient 0)",
        ["NegInfMasking", "AllNegativesMasked"],
        x,
    )
    x = {
        L: f64([[1.5, NEG_INF, 0.25, -0.75], [NEG_INF, 0.5, 2.0, NEG_INF]]),
        Y: f64([[1.0, 0.0, 0.5, 0.0], [0.0, 0.25, 1.0, 0.0]]),
    }
    add("label weights with -inf entries under zero weights", ["LabelWeights", "NegInfMasking"], x)
    x = {L: f64([[NEG_INF, NEG_INF], [0.5, 1.0]]), PM: mask([0, 1])}
    add(
        "a fully -inf row whose positive_mask is False has loss 0 and gradient 0",
        ["PositiveMaskFalse", "NegInfInput"],
        x,
    )
    d = Draw(2707)
    add(
        "0-d sample_weight",
        ["ScalarSampleWeight", "SampleWeight", "ExtraNegatives"],
        {L: d.normal((3, 4), 2.0), W: f64(0.5)},
        draw=d,
    )
    x = {L: f64([[500.0, 40.0, -3.0], [0.0, 470.0, 1.0]]), Y: i64([0, 1])}
    add(
        "dominant targets: gradients near 1e-200 keep their relative precision",
        ["IntegerLabels", "DominantTarget"],
        x,
    )
    d = Draw(2708)
    add("logits ~1e4", ["LargeLogits"], {L: d.normal((3, 4), 4096.0)}, "large_logits", draw=d)
    d = Draw(2709)
    add(
        "float64 logits, integer labels",
        ["Float64Only", "IntegerLabels"],
        {L: d.normal((3, 4), 2.0, float64=True), Y: i64([1, 1, 3])},
        "float64_only",
        draw=d,
        float64_only=True,
    )
    logits = f64([[0.5, 1.0, -1.5], [2.0, -0.5, 0.25]])
    out.append(
        invalid(
            "reduction='none' is not a scalar loss",
            ["NonScalarLoss"],
            {L: logits},
            "ValueError",
            {"reduction": "none"},
            source=V2,
        )
    )
    out.append(
        invalid(
            "integer label 3 outside [0, N=3)",
            ["InvalidLabels"],
            {L: logits, Y: i64([0, 3])},
            "ValueError",
            source=V2,
        )
    )
    return out
