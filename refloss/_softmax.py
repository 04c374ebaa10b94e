r"""Stable log-sum-exp and the row-wise softmax cross-entropy against general targets.

Masking convention used everywhere in refloss: a masked logit is exactly :math:`-\infty`.
It contributes exactly zero probability, and no masking pattern, however extreme, turns a
loss or a gradient into NaN:

* the row maximum used as a shift is replaced by 0 when it is not finite (a row masked
  entirely), so :math:`-\infty - (-\infty)` never occurs;
* the sum of exponentials is replaced by 1 *before* the logarithm on such rows (the
  "double where"), so automatic differentiation never sees :math:`\log 0`.

NaN in an input is never hidden: it propagates to the output.

The cross-entropy of a row is computed from a few per-row statistics (a running maximum,
sums of shifted exponentials, the target logits), which can be merged chunk by chunk of
columns: that is the streaming log-sum-exp :mod:`refloss._tiling` uses for very wide rows.
Two kinds of targets (:mod:`refloss._targets`) each have their statistics here:
:class:`ColumnCrossEntropy` (one target column per row) and :class:`WeightCrossEntropy`
(label weights, several positives per row).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._lib import _quirks
from ._lib import _validation as v
from ._lib._typing import Array, ArrayNamespace
from ._reductions import reduce_weighted, row_scale, sample_weight_vjp
from ._targets import TargetColumns, TargetWeights, diagonal_targets

__all__ = ["logsumexp", "softmax_cross_entropy"]


def logsumexp(x: Array, /, *, axis: int = -1, xp: ArrayNamespace | None = None) -> Array:
    r"""Numerically stable :math:`\log\sum_j \exp x_j` along one axis.

    Parameters
    ----------
    x : array, real floating, any shape
        Logits; masked entries are :math:`-\infty`.
    axis : int, default -1
        Axis to reduce.
    xp : namespace, optional
        Array namespace; inferred from ``x`` when None.

    Returns
    -------
    array
        ``x`` reduced over ``axis``, same dtype and device. A slice whose entries are all
        :math:`-\infty` gives :math:`-\infty` (with a zero gradient, not NaN). NaN propagates.

    Notes
    -----
    .. math::

        \operatorname{lse}(x) = m + \log \sum_j \exp(x_j - m),
        \qquad m = \max_j x_j \text{ if finite, else } 0,

    and its gradient is the softmax, :math:`\partial \operatorname{lse} / \partial x_j =
    \exp(x_j - \operatorname{lse}(x))` (0 on a slice of :math:`-\infty`).

    References
    ----------
    .. [1] N. J. Higham, "Accuracy and Stability of Numerical Algorithms", SIAM, 2002
       (shifted exponentials).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> float(refloss.logsumexp(xp.asarray([0.0, -xp.inf])))
    0.0
    """
    xp = v.resolve_namespace({"x": x}, xp=xp)
    v.check_floating("x", x, xp=xp)
    v.check_axis(axis, x.ndim)
    lse, _ = _logsumexp_and_softmax(x, axis=axis, xp=xp)
    return lse


def _logsumexp_and_softmax(x: Array, *, axis: int, xp: ArrayNamespace) -> tuple[Array, Array]:
    """``(lse(x) reduced over axis, softmax(x) of x's shape)``; both 0 safe on dead slices."""
    shift = row_shift(xp.max(x, axis=axis, keepdims=True), xp=xp)
    exps = _quirks.exp(x - shift, xp=xp)
    total = xp.sum(exps, axis=axis, keepdims=True)
    live = ~(total == 0)  # NaN stays live, so NaN propagates
    # "double where": log never sees 0, so the gradient of a dead slice is 0, not NaN
    safe_total = xp.where(live, total, 1.0)
    lse = xp.where(live, shift + xp.log(safe_total), -xp.inf)
    return xp.squeeze(lse, axis=axis), exps / safe_total


def row_shift(peak: Array, *, xp: ArrayNamespace) -> Array:
    """The shift of a row's exponentials: its maximum, or 0 where that is not finite."""
    return xp.where(xp.isfinite(peak), peak, 0.0)


def _rescale(previous: Array, old_peak: Array, new_shift: Array, *, xp: ArrayNamespace) -> Array:
    r"""``previous`` (a sum of :math:`e^{S - m_\text{old}}`) re-expressed against the new shift.

    A row that had no finite logit yet has ``previous = 0``; its factor is 0 rather than
    :math:`e^{0 - m_\text{new}}`, which could overflow to make :math:`0 \cdot \infty`.
    """
    live = xp.isfinite(old_peak)
    # "double where": exp never sees a dead row's exponent 0 - m_new, which can overflow
    # (and whose discarded branch would give an autodiff backward 0 * inf = NaN)
    exponent = xp.where(live, row_shift(old_peak, xp=xp) - new_shift, 0.0)
    return previous * xp.where(live, xp.exp(exponent), 0.0)


class GradPart(NamedTuple):
    r"""A block of columns of :math:`G = \partial L / \partial S` in factored form.

    ``G[:, cols] = row_factor * matrix`` (``row_factor`` ``(b, 1)``, or None for 1). The
    factor is kept apart so that a caller can fold it into an :math:`O(bD)` operand of its
    products instead of scaling the ``(b, n)`` matrix.
    """

    cols: slice
    matrix: Array
    row_factor: Array | None


class ColumnStats(NamedTuple):
    """Per-row statistics of a softmax cross-entropy with one target column, ``(b, 1)`` each."""

    peak: Array  # running max_j S_ij (-inf while every logit seen is masked)
    rest: Array  # sum over non-target j of exp(S_ij - shift)
    target_logit: Array  # S_{i t_i}, once the chunk that holds it has been seen


class ColumnTile(NamedTuple):
    """A tile's shifted exponentials, split around the columns that can hold a target."""

    before: Array  # columns left of the window
    inside: Array  # the window, 0 at each row's target
    after: Array  # columns right of the window
    window: slice  # global columns of the window
    is_target: Array  # (b, window width) bool


class ColumnCrossEntropy:
    r"""Softmax cross-entropy of rows with one target column each, in its accurate form.

    With :math:`m_i = \max_j S_{ij}`, :math:`d_i = S_{it_i} - m_i` and
    :math:`r_i = \sum_{j \ne t_i} e^{S_{ij} - m_i}` (a sum of positive terms that excludes
    the target, which often dominates),

    .. math::

        \ell_i = (m_i - S_{it_i}) + \operatorname{log1p}(r_i + \operatorname{expm1}(d_i)),
        \qquad
        \frac{\partial \ell_i}{\partial S_{ij}} =
        \begin{cases} e^{S_{ij} - m_i} / (r_i + e^{d_i}) & j \ne t_i \\
                      -r_i / (r_i + e^{d_i}) & j = t_i \end{cases}

    so neither :math:`\log(1 + \text{tiny})` nor :math:`p_{it_i} - 1` loses digits. A row
    with no target (``has_target`` False, or no finite logit) has loss 0 and gradient 0; a
    target logit of :math:`-\infty` in a row with a finite logit gives :math:`+\infty`.
    """

    def __init__(self, targets: TargetColumns, *, xp: ArrayNamespace) -> None:
        self.targets = targets
        self.xp = xp

    def _split(self, exps: Array, rows: slice, cols: slice) -> ColumnTile:
        """The tile's exponentials with the target window cut out and zeroed at the targets."""
        xp = self.xp
        window = self.targets.window(rows, cols)
        start, stop = window.start - cols.start, window.stop - cols.start
        is_target = self.targets.is_target(rows, window, xp=xp)
        inside = xp.where(is_target, 0.0, exps[:, start:stop])
        return ColumnTile(exps[:, :start], inside, exps[:, stop:], window, is_target)

    def update(
        self, previous: ColumnStats | None, logits: Array, rows: slice, cols: slice
    ) -> tuple[ColumnStats, ColumnTile]:
        """Merge the tile ``logits`` (rows x cols) into ``previous``; return its exponentials."""
        xp = self.xp
        peak = xp.max(logits, axis=-1, keepdims=True)
        if previous is not None:
            peak = xp.maximum(previous.peak, peak)
        shift = row_shift(peak, xp=xp)
        tile = self._split(_quirks.exp(logits - shift, xp=xp), rows, cols)
        rest = sum(xp.sum(part, axis=-1, keepdims=True) for part in tile[:3])
        target_logit = self.targets.gather(logits, rows, cols, xp=xp)
        if previous is not None:
            rest = rest + _rescale(previous.rest, previous.peak, shift, xp=xp)
            target_logit = target_logit + previous.target_logit
        return ColumnStats(peak, rest, target_logit), tile

    def exps(self, stats: ColumnStats, logits: Array, rows: slice, cols: slice) -> ColumnTile:
        """The split exponentials of a tile against the final shift (a second pass)."""
        shift = row_shift(stats.peak, xp=self.xp)
        return self._split(_quirks.exp(logits - shift, xp=self.xp), rows, cols)

    def _terms(self, stats: ColumnStats, rows: slice) -> tuple[Array, Array, Array]:
        """``(has_target, shift, total)`` of each row, ``(b, 1)``."""
        xp = self.xp
        shift = row_shift(stats.peak, xp=xp)
        total = stats.rest + xp.exp(stats.target_logit - shift)
        has_target = ~(total == 0)  # no finite logit: no target; NaN stays live
        if self.targets.has_target is not None:
            has_target = has_target & self.targets.has_target[rows, None]
        return has_target, shift, total

    def loss(self, stats: ColumnStats, rows: slice) -> Array:
        """Per-row losses ``(b,)``."""
        xp = self.xp
        has_target, shift, _ = self._terms(stats, rows)
        gap = stats.target_logit - shift
        # "double where": the unselected branches stay finite, so autodiff sees no NaN
        log_arg = xp.where(has_target, stats.rest + xp.expm1(gap), 0.0)
        margin = xp.where(has_target, shift - stats.target_logit, 0.0)
        return xp.where(has_target, margin + xp.log1p(log_arg), 0.0)[:, 0]

    def grad_parts(
        self, stats: ColumnStats, tile: ColumnTile, rows: slice, scale: Array
    ) -> list[GradPart]:
        """``scale_i * d loss_i / d S`` over a tile, from its split exponentials."""
        xp = self.xp
        has_target, _, total = self._terms(stats, rows)
        factor = xp.where(has_target, scale / xp.where(has_target, total, 1.0), 0.0)
        window = tile.window
        at_target = -stats.rest * factor
        grads = [
            GradPart(slice(window.start - tile.before.shape[1], window.start), tile.before, factor),
            GradPart(window, xp.where(tile.is_target, at_target, factor * tile.inside), None),
            GradPart(slice(window.stop, window.stop + tile.after.shape[1]), tile.after, factor),
        ]
        return [g for g in grads if g.matrix.shape[1] > 0]


class WeightStats(NamedTuple):
    """Per-row statistics of a softmax cross-entropy against label weights, ``(b, 1)`` each."""

    peak: Array  # running max_j S_ij
    total: Array  # sum_j exp(S_ij - shift)
    label_sum: Array  # sum_j y_ij
    label_gap: Array  # sum_j y_ij (S_ij - shift), over y_ij > 0


class WeightCrossEntropy:
    r"""Softmax cross-entropy of rows against label weights :math:`y_{ij} \ge 0`.

    .. math::

        \ell_i = \sum_j y_{ij} (\operatorname{lse}_i - S_{ij})
               = Y_i \log \sum_j e^{S_{ij} - m_i} - \sum_j y_{ij} (S_{ij} - m_i),
        \qquad
        \frac{\partial \ell_i}{\partial S_{ij}} = Y_i\, p_{ij} - y_{ij},

    with :math:`Y_i = \sum_j y_{ij}` and :math:`p` the row softmax. Entries with
    :math:`y_{ij} = 0` contribute nothing (a masked one is not :math:`0 \cdot \infty`); a
    positive weight on a masked logit gives :math:`+\infty`. A row with :math:`Y_i = 0`, or
    with no finite logit, has loss 0 and gradient 0.
    """

    def __init__(self, targets: TargetWeights, *, xp: ArrayNamespace) -> None:
        self.targets = targets
        self.xp = xp

    def _labels(self, logits: Array, rows: slice, cols: slice) -> Array:
        return self.xp.astype(self.targets.weights[rows, cols], logits.dtype)

    def update(
        self, previous: WeightStats | None, logits: Array, rows: slice, cols: slice
    ) -> tuple[WeightStats, Array]:
        """Merge the tile ``logits`` into ``previous``; also return its exponentials."""
        xp = self.xp
        labels = self._labels(logits, rows, cols)
        peak = xp.max(logits, axis=-1, keepdims=True)
        if previous is not None:
            peak = xp.maximum(previous.peak, peak)
        shift = row_shift(peak, xp=xp)
        exps = _quirks.exp(logits - shift, xp=xp)
        total = xp.sum(exps, axis=-1, keepdims=True)
        positive = labels > 0
        # a positive weight on a masked logit gives a -inf gap, so a +inf loss
        gaps = xp.where(positive, labels * (xp.where(positive, logits, 0.0) - shift), 0.0)
        label_sum = xp.sum(labels, axis=-1, keepdims=True)
        label_gap = xp.sum(gaps, axis=-1, keepdims=True)
        if previous is not None:
            old_shift = row_shift(previous.peak, xp=xp)
            total = total + _rescale(previous.total, previous.peak, shift, xp=xp)
            label_sum = label_sum + previous.label_sum
            label_gap = label_gap + previous.label_gap + previous.label_sum * (old_shift - shift)
        return WeightStats(peak, total, label_sum, label_gap), exps

    def exps(self, stats: WeightStats, logits: Array, rows: slice, cols: slice) -> Array:
        """The exponentials of a tile against the final shift (a second pass)."""
        return _quirks.exp(logits - row_shift(stats.peak, xp=self.xp), xp=self.xp)

    def _has_target(self, stats: WeightStats) -> Array:
        return (stats.label_sum > 0) & ~(stats.total == 0)

    def loss(self, stats: WeightStats, rows: slice) -> Array:
        """Per-row losses ``(b,)``."""
        xp = self.xp
        has_target = self._has_target(stats)
        log_total = xp.log(xp.where(has_target, stats.total, 1.0))
        label_gap = xp.where(has_target, stats.label_gap, 0.0)
        return xp.where(has_target, stats.label_sum * log_total - label_gap, 0.0)[:, 0]

    def grad_parts(
        self, stats: WeightStats, exps: Array, rows: slice, scale: Array, *, cols: slice
    ) -> list[GradPart]:
        """``scale_i * d loss_i / d S`` over one tile."""
        xp = self.xp
        has_target = self._has_target(stats)
        total = xp.where(has_target, stats.total, 1.0)
        factor = xp.where(has_target, scale * stats.label_sum / total, 0.0)
        labels = self._labels(exps, rows, cols)
        grad = factor * exps - xp.where(has_target, scale, 0.0) * labels
        return [GradPart(cols, grad, None)]


def cross_entropy_for(
    targets: TargetColumns | TargetWeights, *, xp: ArrayNamespace
) -> ColumnCrossEntropy | WeightCrossEntropy:
    """The cross-entropy statistics that fit ``targets``."""
    if isinstance(targets, TargetWeights):
        return WeightCrossEntropy(targets, xp=xp)
    return ColumnCrossEntropy(targets, xp=xp)


def tile_grad_parts(ce, stats, exps, rows: slice, cols: slice, scale: Array) -> list[GradPart]:
    """Dispatch ``grad_parts``: the one-target-column kind splits its tile by itself."""
    if isinstance(ce, ColumnCrossEntropy):
        return ce.grad_parts(stats, exps, rows, scale)
    return ce.grad_parts(stats, exps, rows, scale, cols=cols)


def cross_entropy_rows(
    logits: Array, targets: TargetColumns | TargetWeights, *, xp: ArrayNamespace
) -> Array:
    """Per-row cross-entropy ``(B,)`` of a whole logits matrix (one tile)."""
    num_rows, num_cols = logits.shape
    rows, cols = slice(0, num_rows), slice(0, num_cols)
    ce = cross_entropy_for(targets, xp=xp)
    stats, _ = ce.update(None, logits, rows, cols)
    return ce.loss(stats, rows)


def cross_entropy_rows_vjp(
    logits: Array, targets: TargetColumns | TargetWeights, scale: Array, *, xp: ArrayNamespace
) -> tuple[Array, Array]:
    """``(per_row (B,), G (B, N))`` with ``G = scale * d loss_i / d S`` for a whole matrix."""
    num_rows, num_cols = logits.shape
    rows, cols = slice(0, num_rows), slice(0, num_cols)
    ce = cross_entropy_for(targets, xp=xp)
    stats, exps = ce.update(None, logits, rows, cols)
    parts = tile_grad_parts(ce, stats, exps, rows, cols, scale)
    blocks = [
        part.matrix if part.row_factor is None else part.row_factor * part.matrix for part in parts
    ]
    grad = blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=-1)
    return ce.loss(stats, rows), grad


def softmax_targets(
    logits: Array,
    labels: Array | None,
    positive_mask: Array | None,
    *,
    xp: ArrayNamespace,
) -> TargetColumns | TargetWeights:
    """Validate ``labels`` and ``positive_mask`` against ``logits``; return the targets."""
    num_rows, num_cols = v.check_logits("logits", logits, xp=xp, in_batch=labels is None)
    if positive_mask is not None:
        v.check_bool_dtype("positive_mask", positive_mask, xp=xp)
        v.check_shape("positive_mask", positive_mask, (num_rows,), "one flag per row")
    if labels is None:
        return diagonal_targets(num_rows, positive_mask, like=logits, xp=xp)
    if labels.ndim == 1:
        v.check_integer_dtype("labels", labels, xp=xp)
        v.check_shape("labels", labels, (num_rows,), "one target column per row")
        v.check_index_range("labels", labels, num_cols, xp=xp)
        return TargetColumns(labels, positive_mask, diagonal=False)
    if labels.dtype != xp.bool:
        v.check_floating("labels", labels, xp=xp)
    v.check_shape("labels", labels, (num_rows, num_cols), "one label weight per logit")
    v.check_nonnegative("labels", labels, xp=xp)
    if positive_mask is not None:
        labels = xp.where(positive_mask[:, None], labels, xp.zeros_like(labels))
    return TargetWeights(labels)


def softmax_cross_entropy(
    logits: Array,
    /,
    *,
    labels: Array | None = None,
    positive_mask: Array | None = None,
    sample_weight: Array | float | None = None,
    reduction: str = "sum",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Row-wise softmax cross-entropy against in-batch labels, target columns or label weights.

    Parameters
    ----------
    logits : array, shape (B, N), float32 or float64
        Corrected logits; masked entries are :math:`-\infty`.
    labels : array, optional
        The targets of the rows:

        * None (default): in-batch labels, row ``i``'s target is column ``i`` (``N >= B``);
        * integer array of shape ``(B,)``: row ``i``'s target is column ``labels[i]``, in
          ``[0, N)``;
        * bool or real array of shape ``(B, N)``: label weights :math:`y_{ij} \ge 0`, for
          several positives per row (weights are used as given, not normalised).
    positive_mask : array, shape (B,), bool, optional
        False marks a row with no target: its loss is exactly 0 (an all-zero label row).
        None means every row has its target.
    sample_weight : array of shape (B,) or (), or float, optional
        Per-row weights, cast to the dtype of ``logits``; a scalar weights every row.
    reduction : {"sum", "mean", "none"}, default "sum"
        ``"sum"``: :math:`\sum_i w_i \ell_i` (TFRS ``Retrieval``); ``"mean"``:
        :math:`\frac{1}{B}\sum_i w_i \ell_i` (Keras ``SUM_OVER_BATCH_SIZE``: divides by B,
        not by :math:`\sum w`); ``"none"``: the vector :math:`w_i \ell_i`.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        Scalar (or ``(B,)`` for ``"none"``), dtype and device of ``logits``.

    Notes
    -----
    .. math::

        \ell_i = \sum_j y_{ij} \Bigl(\log \sum_k \exp S_{ik} - S_{ij}\Bigr),
        \qquad
        \frac{\partial \ell_i}{\partial S_{ij}} = \Bigl(\sum_k y_{ik}\Bigr) p_{ij} - y_{ij},

    with :math:`y_i` the one-hot row of the target column for in-batch labels and integer
    labels, for which the accurate form of :class:`ColumnCrossEntropy` is used (a small
    loss keeps its relative precision). A row whose logits are all :math:`-\infty` except
    the target has :math:`\ell_i = 0` exactly. A row without a target (``positive_mask``
    False, an all-zero label row, or no finite logit at all) has :math:`\ell_i = 0`. A
    target logit of :math:`-\infty` in a row that has a finite logit gives
    :math:`\ell_i = +\infty` (the target has probability 0); use ``positive_mask`` to drop
    such a row instead.

    References
    ----------
    .. [1] TensorFlow ``tf.nn.softmax_cross_entropy_with_logits`` kernel (row max shift,
       zero loss for an all-zero label row) and tf-keras ``compute_weighted_loss``
       reductions, as used by TFRS 0.7.7 ``tasks.Retrieval``.
    .. [2] P. Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020 (several
       positives per row).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> s = xp.asarray([[0.0, 0.0], [0.0, 0.0]])
    >>> round(float(refloss.softmax_cross_entropy(s)), 12)  # 2 log 2
    1.38629436112
    >>> round(float(refloss.softmax_cross_entropy(s, labels=xp.asarray([1, 1]))), 12)
    1.38629436112
    """
    xp, targets, sample_weight, reduction = _validate(
        logits,
        labels=labels,
        positive_mask=positive_mask,
        sample_weight=sample_weight,
        reduction=reduction,
        xp=xp,
    )
    per_row = cross_entropy_rows(logits, targets, xp=xp)
    return reduce_weighted(per_row, sample_weight, reduction, xp=xp)


def _validate(
    logits: Array,
    *,
    labels: Array | None,
    positive_mask: Array | None,
    sample_weight: Array | float | None,
    reduction: object,
    xp: ArrayNamespace | None,
) -> tuple[ArrayNamespace, TargetColumns | TargetWeights, Array | None, str]:
    weight_arg = None if v.is_python_real(sample_weight) else sample_weight
    arrays = {
        "logits": logits,
        "labels": labels,
        "positive_mask": positive_mask,
        "sample_weight": weight_arg,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    targets = softmax_targets(logits, labels, positive_mask, xp=xp)
    sample_weight = v.weight_array(sample_weight, like=logits, xp=xp)
    if sample_weight is not None:
        v.check_sample_weight(sample_weight, int(logits.shape[0]), xp=xp)
    reduction = v.check_reduction(reduction)
    v.check_same_device({**arrays, "sample_weight": sample_weight})
    return xp, targets, sample_weight, reduction


def softmax_cross_entropy_vjp(
    arguments: Mapping[str, Any],
) -> tuple[Array, dict[str, Array | None]]:
    r"""``softmax_cross_entropy`` and its gradients, given its bound arguments by name.

    .. math::

        \frac{\partial L}{\partial S_{ij}} = s_i \Bigl(\bigl(\textstyle\sum_k y_{ik}\bigr)
            p_{ij} - y_{ij}\Bigr), \qquad
        \frac{\partial L}{\partial w_i} = r \ell_i,

    with :math:`s_i = r w_i` (:mod:`refloss._reductions`); zero on rows without a target.
    """
    logits = arguments["logits"]
    options = {name: value for name, value in arguments.items() if name != "logits"}
    xp, targets, sample_weight, reduction = _validate(logits, **options)
    scale = row_scale(int(logits.shape[0]), sample_weight, reduction, like=logits, xp=xp)
    per_row, grad_logits = cross_entropy_rows_vjp(logits, targets, scale, xp=xp)
    grads = {
        "logits": grad_logits,
        "sample_weight": (
            None
            if sample_weight is None
            else sample_weight_vjp(per_row, sample_weight, reduction, xp=xp)
        ),
    }
    return reduce_weighted(per_row, sample_weight, reduction, xp=xp), grads


def logsumexp_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    r"""``logsumexp`` of a slice reduced to a scalar and its gradient, the softmax.

    .. math::

        \frac{\partial\, \operatorname{lse}(x)}{\partial x_j} = e^{x_j - \operatorname{lse}(x)}.
    """
    x, axis = arguments["x"], arguments["axis"]
    xp = v.resolve_namespace({"x": x}, xp=arguments["xp"])
    v.check_floating("x", x, xp=xp)
    v.check_axis(axis, x.ndim)
    lse, probabilities = _logsumexp_and_softmax(x, axis=axis, xp=xp)
    return lse, {"x": probabilities}
