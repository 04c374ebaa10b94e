"""Cases for ``sampled_softmax_loss``, ``nce_loss`` and ``full_softmax_loss`` (refloss 0.2.0).

One builder per fixture file; the order of each list fixes the tcIds: append only.
The sampled losses share their cases (``remove_accidental_hits`` is always given, since
its default differs between them); each gets its own files.
"""

from __future__ import annotations

import numpy as np

from .cases_common import case, invalid
from .model import Case, Draw, f64, i64

V2 = "0.2.0"
WEIGHTS, BIASES, INPUTS = "weights", "biases", "inputs"
LABELS, SAMPLED = "labels", "sampled_candidates"
TRUE_COUNT, SAMPLED_COUNT = "true_expected_count", "sampled_expected_count"
QUERY, CLASSES, CLASS_BIAS = "query_embeddings", "class_embeddings", "class_bias"


def _classifier(d: Draw, num_classes: int, width: int, rows: int, scale: float = 1.0) -> dict:
    """Random class weights, biases and row inputs, float32-representable."""
    return {
        WEIGHTS: d.normal((num_classes, width), scale),
        BIASES: d.normal((num_classes,), 0.5),
        INPUTS: d.normal((rows, width), 1.0),
    }


def _counts(d: Draw, labels: np.ndarray, sampled: np.ndarray) -> dict:
    """Positive expected counts spread over [0.01, 3), float32-representable."""
    return {
        TRUE_COUNT: d.uniform(labels.shape, 0.01, 3.0),
        SAMPLED_COUNT: d.uniform(sampled.shape, 0.01, 3.0),
    }


def _sampled_inputs(seed: int, labels, sampled, *, num_classes: int = 12, width: int = 4):
    d = Draw(seed)
    labels, sampled = i64(labels), i64(sampled)
    x = _classifier(d, num_classes, width, labels.shape[0])
    x.update({LABELS: labels, SAMPLED: sampled, **_counts(d, labels, sampled)})
    return x, d


def _sampled_cases(hits_default: bool) -> list[Case]:
    """The cases of one sampled loss; ``hits_default`` is its remove_accidental_hits default."""
    out = []

    def add(comment, flags, inputs, group, params, draw=None, **kw):
        params = {"remove_accidental_hits": hits_default, **params}
        out.append(case(comment, flags, inputs, group, params, draw=draw, source=V2, **kw))

    # rows 0 and 2 have a label among the sampled classes (7 and 1)
    labels1 = [[7], [2], [1], [5]]
    sampled = [3, 7, 1, 9, 0, 11]
    x, d = _sampled_inputs(3101, labels1, sampled)
    add(
        "B=4, num_true=1, S=6, default options", ["Basic", "PerExampleReduction"], x, "basic", {}, d
    )
    x, d = _sampled_inputs(3102, labels1, sampled)
    add(
        "accidental hits removed",
        ["SampledAccidentalHit", "ExpectedCountNotProbability"],
        x,
        "basic",
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3103, labels1, sampled)
    add(
        "accidental hits kept",
        ["AccidentalHitNotRemoved"],
        x,
        "basic",
        {"remove_accidental_hits": False},
        d,
    )
    x, d = _sampled_inputs(3104, labels1, sampled)
    del x[TRUE_COUNT], x[SAMPLED_COUNT]
    add(
        "subtract_log_q=False, no expected counts",
        ["NoLogQ"],
        x,
        "basic",
        {"subtract_log_q": False},
        d,
    )
    x, d = _sampled_inputs(3105, [[7, 2, 2], [0, 4, 9], [1, 6, 8]], sampled)
    add(
        "num_true=3 (a label repeated in row 0), hits removed",
        ["NumTrue", "SampledAccidentalHit"],
        x,
        "num_true",
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3106, [[7], [2], [7]], [7, 3, 7, 5])
    add(
        "sampled class 7 drawn twice and the label of rows 0 and 2: both copies masked",
        ["EveryDuplicateHitMasked", "SampledAccidentalHit"],
        x,
        "duplicates",
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3107, [[4], [4], [0], [4]], sampled)
    add(
        "class 4 is the label of three rows, sum",
        ["RepeatedLabel", "SumReductionOption"],
        x,
        "basic",
        {"reduction": "sum"},
        d,
    )
    x, d = _sampled_inputs(3108, labels1, sampled)
    add("mean over B rows", ["MeanDividesByBatch"], x, "basic", {"reduction": "mean"}, d)
    x, d = _sampled_inputs(3109, [[3], [2]], [3, 3])
    add(
        "every sampled class of row 0 is its label",
        ["AllSampledAreHits", "EveryDuplicateHitMasked"],
        x,
        "duplicates",
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3110, labels1, sampled)
    x[WEIGHTS] = x[WEIGHTS] * 64.0
    add("logits of magnitude ~100", ["LargeLogits"], x, "large_logits", {}, d)
    # dominant true logits: row i's input is 40 times its label's weight row
    w = f64([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.0, -1.0, 0.5]])
    x = {
        WEIGHTS: w,
        BIASES: f64([0.0, 0.25, -0.5, 0.0, 0.125]),
        INPUTS: f64([[40.0, 0.0, 0.0], [0.0, 0.0, 40.0]]),
        LABELS: i64([[0], [2]]),
        SAMPLED: i64([1, 3, 4]),
        TRUE_COUNT: f64([[0.5], [0.25]]),
        SAMPLED_COUNT: f64([1.5, 0.75, 2.0]),
    }
    add(
        "dominant true logits: losses near 1e-16 keep their relative precision",
        ["DominantTarget"],
        x,
        "large_logits",
        {},
    )
    out.extend(_sampled_invalid(hits_default))
    return out


def _sampled_invalid(hits_default: bool) -> list[Case]:
    group = {"group": "invalid", "source": V2}
    params = {"remove_accidental_hits": hits_default}
    x, _ = _sampled_inputs(3150, [[7], [2]], [3, 7, 1])

    def with_(**changes):
        return {**x, **changes}

    return [
        invalid(
            "sampled expected count 0",
            ["InvalidExpectedCount"],
            with_(**{SAMPLED_COUNT: f64([0.5, 0.0, 1.0])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "true expected count -1",
            ["InvalidExpectedCount"],
            with_(**{TRUE_COUNT: f64([[0.5], [-1.0]])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "true expected count NaN",
            ["InvalidExpectedCount"],
            with_(**{TRUE_COUNT: f64([[np.nan], [1.0]])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "true_expected_count for num_true=2, labels num_true=1",
            ["InvalidShape"],
            with_(**{TRUE_COUNT: f64([[0.5, 0.5], [1.0, 1.0]])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "label 12 outside [0, num_classes=12)",
            ["InvalidLabels"],
            with_(**{LABELS: i64([[12], [2]])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "sampled class -1",
            ["InvalidLabels"],
            with_(**{SAMPLED: i64([3, -1, 1])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "float64 labels",
            ["InvalidDtype"],
            with_(**{LABELS: f64([[7.0], [2.0]])}),
            "TypeError",
            params,
            **group,
        ),
        invalid(
            "labels of shape (B,) instead of (B, num_true)",
            ["InvalidShape"],
            with_(**{LABELS: i64([7, 2])}),
            "ValueError",
            params,
            **group,
        ),
        invalid(
            "S = 0 sampled classes",
            ["EmptySample"],
            with_(**{SAMPLED: np.zeros((0,), dtype=np.int64), SAMPLED_COUNT: f64([])}),
            "ValueError",
            params,
            **group,
        ),
    ]


def sampled_softmax_loss_cases() -> list[Case]:
    """Cases of ``sampled_softmax_loss_test.json``."""
    return _sampled_cases(hits_default=True)


def nce_loss_cases() -> list[Case]:
    """Cases of ``nce_loss_test.json``."""
    cases = _sampled_cases(hits_default=False)
    x, d = _sampled_inputs(3120, [[7, 2], [1, 1]], [3, 7, 1, 9])
    cases.append(
        case(
            "num_true=2: each true class has sigmoid label 1/2",
            ["NumTrue", "NceSoftLabels"],
            x,
            "num_true",
            {"remove_accidental_hits": False},
            draw=d,
            source=V2,
        )
    )
    return cases


def _gradient_cases(hits_default: bool) -> list[Case]:
    out = []

    def add(comment, flags, inputs, params, draw=None):
        params = {"remove_accidental_hits": hits_default, "reduction": "sum", **params}
        out.append(case(comment, flags, inputs, "basic", params, draw=draw, source=V2))

    x, d = _sampled_inputs(3201, [[7], [2], [7], [5]], [3, 7, 1, 9, 0])
    add(
        "num_true=1, class 7 the label of two rows and sampled, hits removed, sum",
        ["SampledAccidentalHit", "RepeatedLabel", "SumReductionOption"],
        x,
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3202, [[7], [2], [7], [5]], [3, 7, 1, 9, 0])
    add(
        "hits kept, mean",
        ["AccidentalHitNotRemoved", "MeanDividesByBatch"],
        x,
        {"remove_accidental_hits": False, "reduction": "mean"},
        d,
    )
    x, d = _sampled_inputs(3203, [[7, 2, 2], [0, 4, 9]], [3, 7, 1, 7])
    add(
        "num_true=3 with a repeated label, a sampled class drawn twice",
        ["NumTrue", "EveryDuplicateHitMasked"],
        x,
        {"remove_accidental_hits": True},
        d,
    )
    x, d = _sampled_inputs(3204, [[4], [1]], [3, 7, 1, 9])
    del x[TRUE_COUNT], x[SAMPLED_COUNT]
    add("subtract_log_q=False", ["NoLogQ"], x, {"subtract_log_q": False}, d)
    return out


def value_and_grad_sampled_softmax_loss_cases() -> list[Case]:
    """Cases of ``value_and_grad_sampled_softmax_loss_test.json``."""
    return _gradient_cases(hits_default=True)


def value_and_grad_nce_loss_cases() -> list[Case]:
    """Cases of ``value_and_grad_nce_loss_test.json``."""
    return _gradient_cases(hits_default=False)


def _full_inputs(seed: int, rows: int, num_classes: int, width: int = 4, *, bias: bool = True):
    d = Draw(seed)
    x = {QUERY: d.normal((rows, width), 1.0), CLASSES: d.normal((num_classes, width), 1.0)}
    x[LABELS] = d.integers((rows,), 0, num_classes)
    if bias:
        x[CLASS_BIAS] = d.normal((num_classes,), 0.5)
    return x, d


def full_softmax_loss_cases() -> list[Case]:
    """Cases of ``full_softmax_loss_test.json``."""
    out = []

    def add(comment, flags, inputs, group, params=None, draw=None):
        out.append(case(comment, flags, inputs, group, params, draw=draw, source=V2))

    x, d = _full_inputs(3301, 4, 9, bias=False)
    add("B=4, 9 classes, default options", ["Basic", "PerExampleReduction"], x, "basic", draw=d)
    x, d = _full_inputs(3302, 4, 9)
    add(
        "class bias, temperature 0.5",
        ["ClassBias", "Temperature", "BiasNotScaledByTemperature"],
        x,
        "basic",
        {"temperature": 0.5},
        d,
    )
    x, d = _full_inputs(3303, 3, 11)
    add(
        "chunk_size=4 over 11 classes",
        ["ChunkedClasses", "ClassBias"],
        x,
        "chunks",
        {"chunk_size": 4},
        d,
    )
    x, d = _full_inputs(3304, 3, 11)
    add(
        "chunk_size=1, sum",
        ["ChunkedClasses", "SumReductionOption"],
        x,
        "chunks",
        {"chunk_size": 1, "reduction": "sum"},
        d,
    )
    x, d = _full_inputs(3305, 5, 7)
    add("mean over B rows", ["MeanDividesByBatch"], x, "basic", {"reduction": "mean"}, d)
    x, d = _full_inputs(3306, 3, 6)
    x[CLASSES] = x[CLASSES] * 256.0
    add(
        "scores of magnitude ~1e3, chunk_size=2",
        ["LargeLogits", "ChunkedClasses"],
        x,
        "large_logits",
        {"chunk_size": 2},
        d,
    )
    x = {
        QUERY: f64([[30.0, 0.0], [0.0, -30.0]]),
        CLASSES: f64([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0], [0.5, 0.5]]),
        LABELS: i64([0, 2]),
    }
    add(
        "dominant targets, temperature 0.125: losses near 1e-100",
        ["DominantTarget", "Temperature"],
        x,
        "large_logits",
        {"temperature": 0.125, "chunk_size": 2},
    )
    group = {"group": "invalid", "source": V2}
    x, _ = _full_inputs(3350, 2, 5)
    out += [
        invalid(
            "label 5 outside [0, 5)",
            ["InvalidLabels"],
            {**x, LABELS: i64([0, 5])},
            "ValueError",
            **group,
        ),
        invalid(
            "float64 labels", ["InvalidDtype"], {**x, LABELS: f64([0.0, 1.0])}, "TypeError", **group
        ),
        invalid(
            "class_bias of length 4 for 5 classes",
            ["InvalidShape"],
            {**x, CLASS_BIAS: f64([0.0] * 4)},
            "ValueError",
            **group,
        ),
        invalid("chunk_size 0", ["InvalidChunkSize"], x, "ValueError", {"chunk_size": 0}, **group),
        invalid(
            "temperature 0", ["InvalidTemperature"], x, "ValueError", {"temperature": 0.0}, **group
        ),
        invalid(
            "query and classes of different widths",
            ["InvalidShape"],
            {**x, CLASSES: f64([[0.0] * 3] * 5)},
            "ValueError",
            **group,
        ),
    ]
    return out


def value_and_grad_full_softmax_loss_cases() -> list[Case]:
    """Cases of ``value_and_grad_full_softmax_loss_test.json``."""
    out = []

    def add(comment, flags, inputs, params, draw=None):
        out.append(case(comment, flags, inputs, "basic", params, draw=draw, source=V2))

    x, d = _full_inputs(3401, 4, 9)
    add(
        "class bias, temperature 0.5, sum",
        ["ClassBias", "Temperature", "SumReductionOption"],
        x,
        {"temperature": 0.5, "reduction": "sum"},
        d,
    )
    x, d = _full_inputs(3402, 3, 11, bias=False)
    add(
        "chunk_size=3, mean",
        ["ChunkedClasses", "MeanDividesByBatch"],
        x,
        {"chunk_size": 3, "reduction": "mean"},
        d,
    )
    x, d = _full_inputs(3403, 5, 4)
    x[LABELS] = i64([1, 1, 3, 1, 0])
    add(
        "a class that is the label of three rows, chunk_size=1",
        ["RepeatedLabel", "ChunkedClasses"],
        x,
        {"chunk_size": 1, "reduction": "sum"},
        d,
    )
    return out
