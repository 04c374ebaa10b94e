r"""Analytic gradients: ``value_and_grad(loss_fn)`` for every refloss loss.

The gradients are derived by hand from each loss's formula (its docstring shows the
derivation) and computed with the same array operations as the loss, so they run on every
Array API backend without an autodiff system. They are checked against PyTorch autograd and
finite differences in the test suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._lib._typing import Array
from .retrieval import retrieval_loss, retrieval_loss_value_and_grad

__all__ = ["value_and_grad"]

_RULES: dict[Callable[..., Any], Callable[..., tuple[Array, tuple[Array, ...]]]] = {
    retrieval_loss: retrieval_loss_value_and_grad,
}


def value_and_grad(
    loss_fn: Callable[..., Array],
) -> Callable[..., tuple[Array, tuple[Array, ...]]]:
    r"""Return a function computing ``loss_fn`` and its gradient w.r.t. every positional array.

    Parameters
    ----------
    loss_fn : callable
        A refloss loss, e.g. ``refloss.retrieval_loss``.

    Returns
    -------
    callable
        ``f(*arrays, **options) -> (loss, grads)``, taking exactly the arguments of
        ``loss_fn``. ``grads`` is a tuple with one gradient per positional array, each with
        that array's shape, dtype, namespace and device. The loss must be scalar:
        ``reduction="none"`` raises ``ValueError``.

    Raises
    ------
    TypeError
        If ``loss_fn`` is not a refloss loss with an analytic gradient.

    Notes
    -----
    For ``retrieval_loss`` with corrected logits :math:`S = QC^\top/\tau + \ldots`,
    per-row weight :math:`s_i` (:math:`w_i`, divided by B for ``"mean"``):

    .. math::

        G_{ij} = s_i \bigl(\operatorname{softmax}(S_i)_j - [j = i]\bigr), \qquad
        \nabla_Q L = G C / \tau, \qquad \nabla_C L = G^\top Q / \tau,

    with :math:`G_{ij} = 0` on masked entries and on rows without a target.

    References
    ----------
    .. [1] C. M. Bishop, "Pattern Recognition and Machine Learning", Springer, 2006,
       Eq. (4.109) (gradient of the softmax cross-entropy).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> q = xp.asarray([[1.0, 0.0]])
    >>> c = xp.asarray([[1.0, 0.0], [0.0, 1.0]])
    >>> loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(q, c)
    >>> dq.shape, dc.shape
    ((1, 2), (2, 2))
    """
    try:
        return _RULES[loss_fn]
    except (KeyError, TypeError):
        names = ", ".join(f"refloss.{fn.__name__}" for fn in _RULES)
        msg = f"value_and_grad supports {names}; got {loss_fn!r}"
        raise TypeError(msg) from None
