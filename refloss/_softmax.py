r"""Stable masked log-sum-exp and the softmax cross-entropy of in-batch retrieval.

Masking convention used everywhere in refloss: a masked logit is exactly :math:`-\infty`.
It contributes exactly zero probability, and no masking pattern, however extreme, turns a
loss or a gradient into NaN:

* the row maximum used as a shift is replaced by 0 when it is not finite (a row masked
  entirely), so :math:`-\infty - (-\infty)` never occurs;
* the sum of exponentials is replaced by 1 *before* the logarithm on such rows (the
  "double where"), so automatic differentiation never sees :math:`\log 0`.

NaN in an input is never hidden: it propagates to the output.
"""

from __future__ import annotations

from typing import NamedTuple

from ._lib import _validation as v
from ._lib._compat import device
from ._lib._typing import Array, ArrayNamespace

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
        \qquad m = \max_j x_j \text{ if finite, else } 0.

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
    if not -x.ndim <= axis < max(x.ndim, 1):
        msg = f"axis must index one of the {x.ndim} dimensions of x, got axis={axis}"
        raise ValueError(msg)
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0.0)
    total = xp.sum(xp.exp(x - shift), axis=axis, keepdims=True)
    live = ~(total == 0)  # NaN stays live, so NaN propagates
    # "double where": log never sees 0, so the gradient of a dead slice is 0, not NaN
    lse = shift + xp.log(xp.where(live, total, 1.0))
    return xp.squeeze(xp.where(live, lse, -xp.inf), axis=axis)


def positive_mask(
    num_rows: int, num_cols: int, *, like: Array, xp: ArrayNamespace, first_row: int = 0
) -> Array:
    """Boolean ``(B, N)`` matrix, True at row i's positive column.

    Row ``i`` of a block that starts at batch row ``first_row`` is batch row
    ``first_row + i``, whose positive is column ``first_row + i``.
    """
    rows = xp.arange(first_row, first_row + num_rows, device=device(like))[:, None]
    cols = xp.arange(num_cols, device=device(like))[None, :]
    return rows == cols


def positive_logits(logits: Array, *, xp: ArrayNamespace, first_row: int = 0) -> Array:
    """Each row's positive logit (``S[i, first_row + i]``), shape ``(B, 1)``."""
    start = first_row
    index = xp.arange(start, start + logits.shape[0], device=device(logits))[:, None]
    return xp.take_along_axis(logits, index, axis=-1)


class RowTerms(NamedTuple):
    """What the gradient of the in-batch cross-entropy needs from the forward pass.

    The columns of a block of rows split into three parts: ``left`` (before the block's
    diagonal), the square ``diagonal`` block, and ``right``; the diagonal block is stored
    with its diagonal (the positives) zeroed, so no ``(B, N)`` pass is needed to remove it.
    """

    left: Array  # (b, first_row): exp(S_ij - m_i)
    diagonal: Array  # (b, b): exp(S_ij - m_i), 0 on the diagonal
    right: Array  # (b, N - first_row - b): exp(S_ij - m_i)
    rest: Array  # (b, 1): the row sums of the three parts, sum over j != i of exp(S_ij - m_i)
    total: Array  # (b, 1): rest + exp(S_ii - m_i), the softmax normaliser (1 where no target)
    target: Array  # (b, 1) bool: the row has a target


def cross_entropy_rows(
    logits: Array, has_target: Array | None, *, xp: ArrayNamespace, first_row: int = 0
) -> tuple[Array, RowTerms]:
    r"""Per-row in-batch cross-entropy ``(B,)`` and the terms its gradient needs.

    Written so that a small loss keeps full relative precision: with
    :math:`m_i = \max_j S_{ij}`, :math:`d_i = S_{ii} - m_i` and
    :math:`r_i = \sum_{j \ne i} e^{S_{ij} - m_i}` (a sum of positive terms that excludes
    the dominant positive),

    .. math::

        \ell_i = (m_i - S_{ii}) + \operatorname{log1p}(r_i + \operatorname{expm1}(d_i)),
        \qquad
        \frac{\partial \ell_i}{\partial S_{ij}} =
        \begin{cases} e^{S_{ij} - m_i} / (r_i + e^{d_i}) & j \ne i \\
                       -r_i / (r_i + e^{d_i}) & j = i \end{cases}

    so neither :math:`\log(1 + \text{tiny})` nor :math:`p_{ii} - 1` loses digits. A row
    with no target (``has_target`` False, or no finite logit) has loss 0 and gradient 0.
    ``logits`` may be a block of rows that starts at batch row ``first_row``.
    """
    num_rows, _ = logits.shape
    stop = first_row + num_rows
    shift = xp.max(logits, axis=-1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0.0)
    positive = positive_logits(logits, xp=xp, first_row=first_row)
    scaled = xp.exp(logits - shift)
    is_pos = positive_mask(num_rows, num_rows, like=logits, xp=xp)
    left, right = scaled[:, :first_row], scaled[:, stop:]
    diagonal = xp.where(is_pos, 0.0, scaled[:, first_row:stop])
    rest = sum(xp.sum(part, axis=-1, keepdims=True) for part in (left, diagonal, right))
    gap = positive - shift
    total = rest + xp.exp(gap)
    target = ~(total == 0)  # a row with no finite logit has no target; NaN stays live
    if has_target is not None:
        target = target & has_target[:, None]
    # "double where": the unselected branches stay finite, so autodiff sees no NaN
    log_arg = xp.where(target, rest + xp.expm1(gap), 0.0)
    margin = xp.where(target, shift - positive, 0.0)
    loss = xp.where(target, margin + xp.log1p(log_arg), 0.0)[:, 0]
    total = xp.where(target, total, 1.0)
    return loss, RowTerms(left, diagonal, right, rest, total, target)


def cross_entropy_grad(terms: RowTerms, scale: Array, *, xp: ArrayNamespace) -> tuple[Array, Array]:
    """``scale * d loss_i / d S`` in factored form ``(row_factor (b, 1), diagonal (b, 1))``.

    Off the diagonal the gradient is ``row_factor * [left, diagonal, right]`` (the stored
    exponentials); on it, ``diagonal``. Callers fold ``row_factor`` into an ``O(b D)``
    operand of their products instead of scaling a ``(b, N)`` matrix.
    """
    factor = xp.where(terms.target, scale / terms.total, 0.0)
    return factor, -terms.rest * factor


def reduce_weighted(
    per_row: Array, sample_weight: Array | None, reduction: str, *, xp: ArrayNamespace
) -> Array:
    """Apply ``sample_weight`` then ``reduction`` ("sum", "mean" over B rows, or "none")."""
    if sample_weight is not None:
        per_row = per_row * xp.astype(sample_weight, per_row.dtype)
    if reduction == "none":
        return per_row
    total = xp.sum(per_row)
    if reduction == "mean":
        return total / per_row.shape[0]
    return total


def reduction_scale(
    num_rows: int, sample_weight: Array | None, reduction: str, *, like: Array, xp: ArrayNamespace
) -> Array:
    """The ``(B, 1)`` factor ``d loss / d row-loss``: the weight, divided by B for "mean"."""
    scale = xp.ones((num_rows,), dtype=like.dtype, device=device(like))
    if sample_weight is not None:
        scale = scale * xp.astype(sample_weight, like.dtype)
    if reduction == "mean":
        scale = scale / num_rows
    return scale[:, None]


def softmax_cross_entropy(
    logits: Array,
    /,
    *,
    positive_mask: Array | None = None,
    sample_weight: Array | None = None,
    reduction: str = "sum",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Softmax cross-entropy with row i's positive in column i (in-batch labels ``eye(B, N)``).

    Parameters
    ----------
    logits : array, shape (B, N), real floating
        Corrected logits, ``N >= B``; masked entries are :math:`-\infty`.
    positive_mask : array, shape (B,), bool, optional
        False marks a row with no target: its loss is exactly 0 (an all-zero label row).
        None means every row has its positive.
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

        \ell_i = \log \sum_{j} \exp S_{ij} - S_{ii}

    A row whose logits are all :math:`-\infty` except the positive has
    :math:`\ell_i = 0` exactly. A row without a target (``positive_mask`` False, or no
    finite logit at all) has :math:`\ell_i = 0`. A positive logit of :math:`-\infty` in a
    row that has a target and a finite negative gives :math:`\ell_i = +\infty` (the target
    has probability 0); use ``positive_mask`` to drop such a row instead.

    References
    ----------
    .. [1] TensorFlow ``tf.nn.softmax_cross_entropy_with_logits`` kernel (row max shift,
       zero loss for an all-zero label row) and tf-keras ``compute_weighted_loss``
       reductions, as used by TFRS 0.7.7 ``tasks.Retrieval``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> s = xp.asarray([[0.0, 0.0], [0.0, 0.0]])
    >>> round(float(refloss.softmax_cross_entropy(s)), 12)  # 2 log 2
    1.38629436112
    """
    weight_arg = None if v.is_python_real(sample_weight) else sample_weight
    xp = v.resolve_namespace(
        {"logits": logits, "positive_mask": positive_mask, "sample_weight": weight_arg}, xp=xp
    )
    num_rows, _ = v.check_logits("logits", logits, xp=xp)
    sample_weight = v.weight_array(sample_weight, like=logits, xp=xp)
    if positive_mask is not None:
        v.check_bool_dtype("positive_mask", positive_mask, xp=xp)
        v.check_shape("positive_mask", positive_mask, (num_rows,), "one flag per row")
    if sample_weight is not None:
        v.check_sample_weight(sample_weight, num_rows, xp=xp)
    reduction = v.check_reduction(reduction)
    v.check_same_device(
        {"logits": logits, "positive_mask": positive_mask, "sample_weight": sample_weight}
    )
    per_row, _ = cross_entropy_rows(logits, positive_mask, xp=xp)
    return reduce_weighted(per_row, sample_weight, reduction, xp=xp)
