"""Cases for ``clip_loss``, ``siglip_loss``, ``nt_xent_loss`` and ``supcon_loss`` (0.2.0).

One builder per fixture file; the order of each list fixes the tcIds: append only.
"""

from __future__ import annotations

import numpy as np

from .cases_common import case, invalid
from .model import Case, Draw, f64, i64

V2 = "0.2.0"
IMAGE, TEXT, SCALE, BIAS = "image_embeddings", "text_embeddings", "logit_scale", "logit_bias"
VIEW_A, VIEW_B, EMB, LABELS = "view_a", "view_b", "embeddings", "labels"


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, then rounded to float32 (exact in both dtypes)."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit.astype(np.float32).astype(np.float64)


def _pair(seed: int, num: int, width: int, *, unit: bool = True) -> tuple[dict, Draw]:
    d = Draw(seed)
    image, text = d.normal((num, width)), d.normal((num, width))
    if unit:
        image, text = _unit(image), _unit(text)
    return {IMAGE: image, TEXT: text}, d


def _add(out, comment, flags, inputs, group, params=None, draw=None):
    out.append(case(comment, flags, inputs, group, params, draw=draw, source=V2))


def clip_loss_cases(gradient: bool = False) -> list[Case]:
    """Cases of ``clip_loss_test.json`` (and, with ``gradient``, its gradient file)."""
    out: list[Case] = []
    x, d = _pair(3501, 4, 6)
    _add(
        out,
        "B=4 unit pairs, scale 1/0.07 (float32-rounded)",
        ["Basic"],
        {**x, SCALE: f64(np.float32(1 / 0.07))},
        "basic",
        draw=d,
    )
    x, d = _pair(3502, 5, 4)
    _add(
        out, "scale 100 (CLIP's clamp)", ["LargeLogits"], {**x, SCALE: f64(100.0)}, "basic", draw=d
    )
    x, d = _pair(3503, 4, 5, unit=False)
    _add(
        out,
        "raw embeddings, scale 2, sum",
        ["SumReductionOption"],
        {**x, SCALE: f64(2.0)},
        "basic",
        {"reduction": "sum"},
        d,
    )
    x, d = _pair(3504, 4, 6)
    _add(
        out,
        "label smoothing 0.1",
        ["LabelSmoothing"],
        {**x, SCALE: f64(10.0)},
        "basic",
        {"label_smoothing": 0.1},
        d,
    )
    if not gradient:
        x, d = _pair(3505, 3, 4)
        _add(
            out,
            "reduction none: (row + column) / 2 per pair",
            ["ReductionNone"],
            {**x, SCALE: f64(5.0)},
            "basic",
            {"reduction": "none"},
            d,
        )
        x = {
            IMAGE: f64([[1.0, 0.0], [0.0, 1.0]]),
            TEXT: f64([[1.0, 0.0], [0.0, 1.0]]),
            SCALE: f64(0.0),
        }
        _add(out, "scale 0: log B per direction", ["ClosedForm"], x, "basic")
        x, _ = _pair(3550, 3, 4)
        group = {"group": "invalid", "source": V2}
        out += [
            invalid(
                "negative logit_scale",
                ["InvalidScale"],
                {**x, SCALE: f64(-1.0)},
                "ValueError",
                **group,
            ),
            invalid(
                "label_smoothing 1",
                ["InvalidLabelSmoothing"],
                {**x, SCALE: f64(1.0)},
                "ValueError",
                {"label_smoothing": 1.0},
                **group,
            ),
            invalid(
                "B=1: no negative",
                ["InvalidShape"],
                {IMAGE: x[IMAGE][:1], TEXT: x[TEXT][:1], SCALE: f64(1.0)},
                "ValueError",
                **group,
            ),
            invalid(
                "3 images, 2 texts",
                ["InvalidShape"],
                {**x, TEXT: x[TEXT][:2], SCALE: f64(1.0)},
                "ValueError",
                **group,
            ),
        ]
    return out


def siglip_loss_cases(gradient: bool = False) -> list[Case]:
    """Cases of ``siglip_loss_test.json`` (and, with ``gradient``, its gradient file)."""
    out: list[Case] = []
    x, d = _pair(3601, 4, 6)
    _add(
        out,
        "B=4 unit pairs, the paper's initialisation t=10, b=-10",
        ["Basic", "PairsSumOverBatch"],
        {**x, SCALE: f64(10.0), BIAS: f64(-10.0)},
        "basic",
        draw=d,
    )
    x, d = _pair(3602, 5, 4)
    _add(out, "t=3, b=0.5", ["Basic"], {**x, SCALE: f64(3.0), BIAS: f64(0.5)}, "basic", draw=d)
    x, d = _pair(3603, 4, 5, unit=False)
    _add(
        out,
        "raw embeddings, t=20, b=-5, sum",
        ["SumReductionOption", "LargeLogits"],
        {**x, SCALE: f64(20.0), BIAS: f64(-5.0)},
        "basic",
        {"reduction": "sum"},
        d,
    )
    if not gradient:
        x, d = _pair(3604, 3, 4)
        _add(
            out,
            "reduction none: row sums",
            ["ReductionNone"],
            {**x, SCALE: f64(4.0), BIAS: f64(-2.0)},
            "basic",
            {"reduction": "none"},
            d,
        )
        x, _ = _pair(3650, 3, 4)
        group = {"group": "invalid", "source": V2}
        out += [
            invalid(
                "negative logit_scale",
                ["InvalidScale"],
                {**x, SCALE: f64(-0.5), BIAS: f64(0.0)},
                "ValueError",
                **group,
            ),
            invalid(
                "NaN logit_bias",
                ["InvalidScale"],
                {**x, SCALE: f64(1.0), BIAS: f64(np.nan)},
                "ValueError",
                **group,
            ),
        ]
    return out


def nt_xent_loss_cases(gradient: bool = False) -> list[Case]:
    """Cases of ``nt_xent_loss_test.json`` (and, with ``gradient``, its gradient file)."""
    out: list[Case] = []
    d = Draw(3701)
    a, b = _unit(d.normal((4, 5))), _unit(d.normal((4, 5)))
    _add(
        out,
        "B=4 unit views, temperature 0.5",
        ["Basic", "SelfExcluded"],
        {VIEW_A: a, VIEW_B: b},
        "basic",
        {"temperature": 0.5},
        d,
    )
    d = Draw(3702)
    a, b = _unit(d.normal((3, 4))), _unit(d.normal((3, 4)))
    _add(
        out,
        "temperature 0.1, sum",
        ["SumReductionOption", "SmallTemperature"],
        {VIEW_A: a, VIEW_B: b},
        "basic",
        {"temperature": 0.1, "reduction": "sum"},
        d,
    )
    if not gradient:
        d = Draw(3703)
        a, b = d.normal((3, 4)), d.normal((3, 4))
        _add(
            out,
            "raw views, reduction none (2B losses)",
            ["ReductionNone"],
            {VIEW_A: a, VIEW_B: b},
            "basic",
            {"temperature": 1.0, "reduction": "none"},
            d,
        )
        x = {VIEW_A: f64([[1.0, 0.0]]), VIEW_B: f64([[0.0, 1.0]])}
        _add(
            out,
            "B=1: the only other view is the positive, loss 0",
            ["ClosedForm"],
            x,
            "basic",
            {"temperature": 0.5},
        )
        group = {"group": "invalid", "source": V2}
        out += [
            invalid(
                "temperature 0",
                ["InvalidTemperature"],
                {VIEW_A: a, VIEW_B: b},
                "ValueError",
                {"temperature": 0.0},
                **group,
            ),
            invalid(
                "views of 3 and 2 samples",
                ["InvalidShape"],
                {VIEW_A: a, VIEW_B: b[:2]},
                "ValueError",
                {"temperature": 1.0},
                **group,
            ),
        ]
    return out


def supcon_loss_cases(gradient: bool = False) -> list[Case]:
    """Cases of ``supcon_loss_test.json`` (and, with ``gradient``, its gradient file)."""
    out: list[Case] = []
    d = Draw(3801)
    e = _unit(d.normal((6, 4)))
    labels = i64([0, 0, 1, 2, 2, 2])  # anchor 2 has no positive
    _add(
        out,
        "several positives; anchor 2 without one (left out of the mean)",
        ["SeveralPositives", "AnchorWithoutPositive", "OtherPositivesInDenominator"],
        {EMB: e, LABELS: labels},
        "basic",
        {"temperature": 0.1},
        d,
    )
    d = Draw(3802)
    e = _unit(d.normal((5, 3)))
    _add(
        out,
        "base_temperature 0.07 scales by T/base",
        ["BaseTemperature"],
        {EMB: e, LABELS: i64([1, 1, 0, 0, 1])},
        "basic",
        {"temperature": 0.2, "base_temperature": 0.07},
        d,
    )
    if not gradient:
        d = Draw(3803)
        e = d.normal((4, 3))
        _add(
            out,
            "every label distinct: no positive anywhere, loss 0",
            ["AnchorWithoutPositive", "NoPositivePairs"],
            {EMB: e, LABELS: i64([0, 1, 2, 3])},
            "basic",
            {"temperature": 0.5},
            d,
        )
        d = Draw(3804)
        e = d.normal((4, 3))
        _add(
            out,
            "reduction none: 0 for the anchor without a positive",
            ["ReductionNone", "AnchorWithoutPositive"],
            {EMB: e, LABELS: i64([5, 5, 7, 5])},
            "basic",
            {"temperature": 1.0, "reduction": "none"},
            d,
        )
        d = Draw(3805)
        e = d.normal((4, 3))
        _add(
            out,
            "every label the same: no negative, the formula",
            ["AllPositives"],
            {EMB: e, LABELS: i64([1, 1, 1, 1])},
            "basic",
            {"temperature": 1.0},
            d,
        )
        group = {"group": "invalid", "source": V2}
        out += [
            invalid(
                "float labels",
                ["InvalidDtype"],
                {EMB: e, LABELS: f64([1.0, 1.0, 0.0, 0.0])},
                "TypeError",
                {"temperature": 1.0},
                **group,
            ),
            invalid(
                "labels of length 3 for 4 samples",
                ["InvalidShape"],
                {EMB: e, LABELS: i64([1, 1, 0])},
                "ValueError",
                {"temperature": 1.0},
                **group,
            ),
            invalid(
                "temperature -1",
                ["InvalidTemperature"],
                {EMB: e, LABELS: i64([1, 1, 0, 0])},
                "ValueError",
                {"temperature": -1.0},
                **group,
            ),
        ]
    return out
