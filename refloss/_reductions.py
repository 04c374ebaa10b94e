r"""Sample weights and reductions of per-row losses, and their vector-Jacobian products.

.. math::

    L = \sum_i w_i \ell_i \ (\text{"sum"}), \qquad
    L = \frac{1}{B} \sum_i w_i \ell_i \ (\text{"mean"}), \qquad
    L_i = w_i \ell_i \ (\text{"none"}).

"mean" divides by the batch size B, not by :math:`\sum_i w_i` (Keras
``SUM_OVER_BATCH_SIZE``). For a scalar loss,

.. math::

    \frac{\partial L}{\partial \ell_i} = r\, w_i, \qquad
    \frac{\partial L}{\partial w_i} = r\, \ell_i, \qquad
    r = 1 \ (\text{sum}), \ 1/B \ (\text{mean}),

and a scalar weight :math:`w` has :math:`\partial L / \partial w = r \sum_i \ell_i`.
"""

from __future__ import annotations

from ._lib._compat import device
from ._lib._typing import Array, ArrayNamespace

__all__ = ["reduce_weighted", "row_scale", "sample_weight_vjp"]


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


def row_scale(
    num_rows: int, sample_weight: Array | None, reduction: str, *, like: Array, xp: ArrayNamespace
) -> Array:
    r"""The ``(B, 1)`` column :math:`\partial L / \partial \ell_i = r\, w_i`."""
    scale = xp.ones((num_rows,), dtype=like.dtype, device=device(like))
    if sample_weight is not None:
        scale = scale * xp.astype(sample_weight, like.dtype)
    if reduction == "mean":
        scale = scale / num_rows
    return scale[:, None]


def sample_weight_vjp(
    per_row: Array, sample_weight: Array, reduction: str, *, xp: ArrayNamespace
) -> Array:
    r""":math:`\partial L / \partial w`: :math:`r \ell_i` per row (a 0-D weight: their sum)."""
    grad = per_row / per_row.shape[0] if reduction == "mean" else per_row
    if sample_weight.ndim == 0:
        grad = xp.sum(grad)
    return xp.astype(grad, sample_weight.dtype)
