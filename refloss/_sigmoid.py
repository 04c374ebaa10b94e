r"""The elementwise sigmoid cross-entropy and its per-row statistics.

Each logit :math:`x` is scored against a label :math:`y \in [0, 1]` on its own (a binary
classifier per entry: NCE, SigLIP):

.. math::

    \ell(x, y) = y \operatorname{softplus}(-x) + (1 - y) \operatorname{softplus}(x)
               = -y \log \sigma(x) - (1 - y) \log(1 - \sigma(x)),
    \qquad
    \frac{\partial \ell}{\partial x} = (1 - y)\, \sigma(x) - y\, \sigma(-x),

with :math:`\operatorname{softplus}(z) = \max(z, 0) + \operatorname{log1p}(e^{-|z|})`.
Both terms are non-negative, so the sum never cancels, whatever the order of evaluation
(the common form :math:`\max(x, 0) - xy + \operatorname{log1p}(e^{-|x|})` is exact only
when :math:`\max(x, 0) - xy` is formed first, and gives NaN for :math:`x = -\infty`
through :math:`-\infty \cdot 0`); the gradient is written without
:math:`\sigma(x) - 1`. A term whose weight (:math:`y` or :math:`1 - y`) is 0 is dropped
before it is evaluated: a masked logit (:math:`-\infty`) with :math:`y = 0` contributes
exactly 0 and a zero gradient, never :math:`0 \cdot \infty`.

A row's loss is the sum of its entries' losses, which merges chunk by chunk of columns
by addition: :class:`SigmoidCrossEntropy` offers the same interface as the softmax
statistics of :mod:`refloss._softmax`, so :mod:`refloss._tiling` computes either.
"""

from __future__ import annotations

from typing import NamedTuple

from ._lib import _quirks
from ._lib._typing import Array, ArrayNamespace
from ._softmax import GradPart
from ._targets import TargetColumns, TargetWeights

__all__ = ["SigmoidCrossEntropy", "sigmoid_cross_entropy"]


def _softplus(z: Array, *, xp: ArrayNamespace) -> Array:
    r""":math:`\log(1 + e^z) = \max(z, 0) + \operatorname{log1p}(e^{-|z|})`, never overflowing."""
    return xp.maximum(z, 0.0) + xp.log1p(_quirks.exp(-xp.abs(z), xp=xp))


def _sigmoid(z: Array, *, xp: ArrayNamespace) -> Array:
    r""":math:`\sigma(z)` from :math:`e^{-|z|}`, which never overflows."""
    small = _quirks.exp(-xp.abs(z), xp=xp)
    return xp.where(z >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def sigmoid_cross_entropy(logits: Array, labels: Array, *, xp: ArrayNamespace) -> Array:
    r"""Elementwise :math:`y \operatorname{softplus}(-x) + (1 - y) \operatorname{softplus}(x)`."""
    positive, negative = labels > 0, labels < 1
    # "double where": a dropped term sees 0, so neither value nor gradient meets inf * 0
    pos_term = labels * _softplus(-xp.where(positive, logits, 0.0), xp=xp)
    neg_term = (1.0 - labels) * _softplus(xp.where(negative, logits, 0.0), xp=xp)
    return xp.where(positive, pos_term, 0.0) + xp.where(negative, neg_term, 0.0)


def sigmoid_cross_entropy_grad(logits: Array, labels: Array, *, xp: ArrayNamespace) -> Array:
    r"""Elementwise :math:`(1 - y) \sigma(x) - y \sigma(-x)`, zero where a weight is 0."""
    positive, negative = labels > 0, labels < 1
    pos_term = labels * _sigmoid(-xp.where(positive, logits, 0.0), xp=xp)
    neg_term = (1.0 - labels) * _sigmoid(xp.where(negative, logits, 0.0), xp=xp)
    return xp.where(negative, neg_term, 0.0) - xp.where(positive, pos_term, 0.0)


class SigmoidStats(NamedTuple):
    """Per-row running sum of the entries' losses, ``(b, 1)``."""

    total: Array


class SigmoidCrossEntropy:
    r"""Row sums of the sigmoid cross-entropy, :math:`\ell_i = \sum_j \ell(S_{ij}, y_{ij})`.

    The labels :math:`y_{ij}` come from the targets: a label weight matrix
    (:class:`~refloss._targets.TargetWeights`), or 1 on each row's target column and 0
    elsewhere (:class:`~refloss._targets.TargetColumns`).
    """

    def __init__(self, targets: TargetColumns | TargetWeights, *, xp: ArrayNamespace) -> None:
        self.targets = targets
        self.xp = xp

    def _labels(self, logits: Array, rows: slice, cols: slice) -> Array:
        xp = self.xp
        if isinstance(self.targets, TargetWeights):
            return xp.astype(self.targets.weights[rows, cols], logits.dtype)
        return xp.astype(self.targets.is_target(rows, cols, xp=xp), logits.dtype)

    def update(
        self, previous: SigmoidStats | None, logits: Array, rows: slice, cols: slice
    ) -> tuple[SigmoidStats, Array]:
        """Add the tile's losses to ``previous``; return the tile itself for the gradient."""
        xp = self.xp
        losses = sigmoid_cross_entropy(logits, self._labels(logits, rows, cols), xp=xp)
        total = xp.sum(losses, axis=-1, keepdims=True)
        if previous is not None:
            total = total + previous.total
        return SigmoidStats(total), logits

    def exps(self, stats: SigmoidStats, logits: Array, rows: slice, cols: slice) -> Array:
        """What the gradient of a tile needs in a second pass: its logits."""
        return logits

    def loss(self, stats: SigmoidStats, rows: slice) -> Array:
        """Per-row losses ``(b,)``."""
        return stats.total[:, 0]

    def grad_parts(
        self, stats: SigmoidStats, logits: Array, rows: slice, scale: Array, *, cols: slice
    ) -> list[GradPart]:
        """``scale_i * d loss_i / d S`` over one tile."""
        labels = self._labels(logits, rows, cols)
        grad = sigmoid_cross_entropy_grad(logits, labels, xp=self.xp)
        return [GradPart(cols, grad, scale)]
