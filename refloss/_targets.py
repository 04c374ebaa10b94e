r"""What a row of logits is scored against: one target column per row, or label weights.

Two kinds of targets cover every softmax loss in refloss:

* :class:`TargetColumns`: row :math:`i` has one target column :math:`t_i` (an integer
  index), or none. The in-batch labels of retrieval, :math:`t_i = i`, are the case
  ``diagonal=True``.
* :class:`TargetWeights`: a ``(B, N)`` matrix of non-negative label weights
  :math:`y_{ij}`, for several positives per row (SupCon, ``num_true > 1``). A row of zeros
  has no target.

Both answer the same question for a tile of the logits matrix (a block of rows and a chunk
of columns, see :mod:`refloss._tiling`): where, inside the tile, can a row's targets be?
"""

from __future__ import annotations

from typing import NamedTuple

import array_api_extra as xpx

from ._lib._compat import device
from ._lib._typing import Array, ArrayNamespace

__all__ = ["TargetColumns", "TargetWeights", "diagonal_targets"]


class TargetColumns(NamedTuple):
    """One target column per row: row ``i``'s target is column ``index[i]``.

    Attributes
    ----------
    index : array, shape (B,), integer
        Target column of each row.
    has_target : array, shape (B,), bool, or None
        False marks a row without a target (its loss and gradient are 0); None: every row
        has one.
    diagonal : bool
        True when ``index`` is ``arange(B)`` (in-batch labels). Then the targets of rows
        ``r0:r1`` lie in columns ``r0:r1``, so a tile only inspects that window.
    bounds : slice or None
        Columns that hold every target, when known (sampled softmax: the true logit is
        column 0); a tile only inspects their intersection with its columns.
    """

    index: Array
    has_target: Array | None
    diagonal: bool
    bounds: slice | None = None

    def window(self, rows: slice, cols: slice) -> slice:
        """The columns (global indices) of the tile ``rows x cols`` that can hold a target."""
        if self.diagonal:
            lo, hi = rows.start, rows.stop
        elif self.bounds is not None:
            lo, hi = self.bounds.start, self.bounds.stop
        else:
            return cols
        start = min(max(lo, cols.start), cols.stop)
        return slice(start, max(start, min(hi, cols.stop)))

    def keep_targets(
        self, masked: Array, original: Array, rows: slice, cols: slice, *, xp: ArrayNamespace
    ) -> Array:
        """``masked`` with each row's target entry put back from ``original``.

        A correction that masks by a comparison which also marks the targets (an id equal to
        the target's own id) masks the whole tile in one select, then restores the targets
        here: only the target window is touched (``b x b`` for in-batch targets).
        """
        window = self.window(rows, cols)
        local = slice(window.start - cols.start, window.stop - cols.start)
        is_target = self.is_target(rows, window, xp=xp)
        restored = xp.where(is_target, original[:, local], masked[:, local])
        return xpx.at(masked)[:, local].set(restored)

    def gather(self, logits: Array, rows: slice, cols: slice, *, xp: ArrayNamespace) -> Array:
        """Each row's target entry of the tile ``logits``, ``(b, 1)``; 0 where it lies elsewhere.

        A gather of ``b`` entries, so the target logit costs no pass over the tile.
        """
        local = self.index[rows] - cols.start
        inside = (local >= 0) & (local < logits.shape[1])
        safe = xp.where(inside, local, xp.zeros_like(local))
        picked = xp.take_along_axis(logits, safe[:, None], axis=1)
        return xp.where(inside[:, None], picked, 0.0)

    def is_target(self, rows: slice, cols: slice, *, xp: ArrayNamespace) -> Array:
        """Boolean ``(b, n)`` matrix, True where column ``cols[j]`` is row ``rows[i]``'s target."""
        columns = xp.arange(cols.start, cols.stop, device=device(self.index))
        return self.index[rows, None] == xp.astype(columns, self.index.dtype)[None, :]


class TargetWeights(NamedTuple):
    r"""Label weights :math:`y_{ij} \ge 0`: loss :math:`\sum_j y_{ij} (\mathrm{lse}_i - S_{ij})`.

    Attributes
    ----------
    weights : array, shape (B, N), real
        The label weights; a boolean matrix is read as 0/1.
    """

    weights: Array


def diagonal_targets(
    num_rows: int, has_target: Array | None, *, like: Array, xp: ArrayNamespace
) -> TargetColumns:
    """In-batch targets: row ``i``'s target is column ``i``."""
    index = xp.arange(num_rows, device=device(like))
    return TargetColumns(index, has_target, diagonal=True)
