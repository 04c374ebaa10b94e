r"""The exact softmax cross-entropy over every class, streamed in chunks of classes.

What sampled softmax, NCE and the in-batch losses estimate: each row against all
``num_classes`` classes. The logits are never materialised: :mod:`refloss._tiling` scores
one chunk of classes at a time and merges it into a streaming log-sum-exp, so memory is
:math:`O(B \cdot \text{chunk\_size})` beyond the inputs and outputs, for any number of
classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._lib import _validation as v
from ._lib._compat import is_lazy_array
from ._lib._typing import Array, ArrayNamespace
from ._reductions import reduce_weighted, row_scale
from ._scores import scale_query, scale_query_vjp
from ._targets import TargetColumns
from ._tiling import Plan, ScoreProblem, plan_tiles, row_losses, row_losses_vjp

__all__ = ["full_softmax_loss"]

_POSITIONAL = ("query_embeddings", "class_embeddings")


class _Options(NamedTuple):
    labels: Array
    class_bias: Array | None
    temperature: float | Array | None
    reduction: str
    plan: Plan
    xp: ArrayNamespace


def _validate(
    query_embeddings: Array,
    class_embeddings: Array,
    *,
    labels: Array,
    class_bias: Array | None,
    temperature: object,
    chunk_size: object,
    reduction: object,
    xp: ArrayNamespace | None,
) -> _Options:
    arrays = {
        "query_embeddings": query_embeddings,
        "class_embeddings": class_embeddings,
        "labels": labels,
        "class_bias": class_bias,
        "temperature": None if v.is_python_real(temperature) else temperature,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    q = query_embeddings
    num_rows, num_classes = v.check_embedding_pair(
        _POSITIONAL,
        query_embeddings,
        class_embeddings,
        ("(batch B, embedding width D)", "(num_classes, embedding width D)"),
        xp=xp,
    )
    if num_rows < 1 or num_classes < 1:
        msg = (
            f"query_embeddings and class_embeddings need at least one row each, got shapes "
            f"{tuple(q.shape)} and {tuple(class_embeddings.shape)}"
        )
        raise ValueError(msg)
    v.check_integer_dtype("labels", labels, xp=xp)
    v.check_shape("labels", labels, (num_rows,), "the true class of each row")
    v.check_index_range("labels", labels, num_classes, xp=xp, what="class ids")
    if class_bias is not None:
        v.check_shape("class_bias", class_bias, (num_classes,), "one bias per class")
        if class_bias.dtype != q.dtype:
            msg = f"class_bias must have the embeddings' dtype {q.dtype}, got {class_bias.dtype}"
            raise TypeError(msg)
    chunk_size = v.check_size("chunk_size", chunk_size)
    options = _Options(
        labels,
        class_bias,
        v.check_temperature(temperature, like=q, xp=xp),
        v.check_reduction(reduction),
        plan_tiles(num_rows, num_classes, lazy=is_lazy_array(q), chunk_size=chunk_size),
        xp,
    )
    v.check_same_device(arrays)
    return options


def _unchanged(scores: Array, rows: slice, cols: slice) -> Array:
    return scores


def _problem(query_embeddings: Array, class_embeddings: Array, o: _Options) -> ScoreProblem:
    targets = TargetColumns(o.labels, None, diagonal=False)
    scaled_query = scale_query(query_embeddings, temperature=o.temperature)
    return ScoreProblem(scaled_query, class_embeddings, o.class_bias, _unchanged, targets)


def full_softmax_loss(
    query_embeddings: Array,
    class_embeddings: Array,
    /,
    *,
    labels: Array,
    class_bias: Array | None = None,
    temperature: float | Array | None = None,
    chunk_size: int | None = None,
    reduction: str = "none",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Exact softmax cross-entropy of each row against every class, computed in chunks.

    Parameters
    ----------
    query_embeddings : array, shape (B, D), float32 or float64
        Row embeddings :math:`q_i`, ``B >= 1``.
    class_embeddings : array, shape (num_classes, D), same dtype
        Class embeddings :math:`c_k` (the whole corpus, or an output layer's weights).
    labels : array, shape (B,), integer
        The true class of each row, in ``[0, num_classes)``.
    class_bias : array, shape (num_classes,), same dtype, optional
        Class biases :math:`b_k`, not divided by the temperature.
    temperature : float or 0-D array, optional
        :math:`\tau > 0`; the scores :math:`\langle q_i, c_k \rangle` are divided by it.
        None means 1. A 0-D array can be differentiated.
    chunk_size : int, optional
        Classes scored at a time (an execution strategy: the numbers are the same up to
        rounding). None: chunks of ``2**22 / 128 = 32768`` classes for blocks of 128 rows
        once a block of full rows would hold more than ``2**22`` logits, one chunk below
        that, and one chunk on JAX; see :mod:`refloss._tiling`.
    reduction : {"none", "sum", "mean"}, default "none"
        ``"none"``: the ``(B,)`` vector of row losses; ``"sum"``; ``"mean"`` over B rows.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        ``(B,)`` (or 0-D for ``"sum"`` and ``"mean"``), in the namespace, dtype and device
        of ``query_embeddings``.

    Raises
    ------
    ValueError
        For wrong shapes, differing widths, a label outside ``[0, num_classes)`` (a value
        check that reads one boolean to the host, skipped under ``jax.jit``), a
        non-positive temperature or ``chunk_size < 1``.
    TypeError
        For non-floating or differing dtypes, floating labels, or arrays from different
        libraries.

    Notes
    -----
    .. math::

        S_{ik} = \langle q_i, c_k \rangle / \tau + b_k, \qquad
        \ell_i = \log \sum_{k=1}^{K} e^{S_{ik}} - S_{i y_i}
               = \operatorname{log1p}\Bigl(\sum_{k \ne y_i} e^{S_{ik} - S_{iy_i}}\Bigr),

    accumulated over chunks of classes by a streaming log-sum-exp: a running maximum
    :math:`m_i` and sum :math:`r_i = \sum_{k \ne y_i} e^{S_{ik} - m_i}`, rescaled by
    :math:`e^{m_\text{old} - m_\text{new}}` when the maximum grows (:mod:`refloss._softmax`).
    Its gradient, ``value_and_grad(full_softmax_loss, wrt=("query_embeddings",
    "class_embeddings", "class_bias"))``, is pulled back chunk by chunk too, so the
    ``(B, num_classes)`` logits never exist at once:

    .. math::

        G_{ik} = p_{ik} - [k = y_i], \qquad
        \frac{\partial L}{\partial q_i} = \frac{1}{\tau} \sum_k G_{ik} c_k, \qquad
        \frac{\partial L}{\partial c_k} = \frac{1}{\tau} \sum_i G_{ik} q_i, \qquad
        \frac{\partial L}{\partial b_k} = \sum_i G_{ik}.

    References
    ----------
    .. [1] M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax",
       arXiv:1805.02867, 2018 (the streaming log-sum-exp).
    .. [2] Y. Bengio, J.-S. Senécal, "Quick Training of Probabilistic Neural Nets by
       Importance Sampling", AISTATS 2003 (the full softmax that sampled softmax
       estimates).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> q = xp.zeros((2, 3))
    >>> c = xp.zeros((5, 3))
    >>> loss = refloss.full_softmax_loss(q, c, labels=xp.asarray([0, 4]), chunk_size=2)
    >>> [round(float(value), 12) for value in loss]  # log 5 per row
    [1.609437912434, 1.609437912434]
    """
    o = _validate(
        query_embeddings,
        class_embeddings,
        labels=labels,
        class_bias=class_bias,
        temperature=temperature,
        chunk_size=chunk_size,
        reduction=reduction,
        xp=xp,
    )
    per_row = row_losses(_problem(query_embeddings, class_embeddings, o), o.plan, xp=o.xp)
    return reduce_weighted(per_row, None, o.reduction, xp=o.xp)


def full_softmax_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    """``full_softmax_loss`` and its gradients, given its bound arguments by name."""
    query, classes = (arguments[name] for name in _POSITIONAL)
    options = {name: value for name, value in arguments.items() if name not in _POSITIONAL}
    o = _validate(query, classes, **options)
    xp = o.xp
    problem = _problem(query, classes, o)
    scale = row_scale(int(query.shape[0]), None, o.reduction, like=query, xp=xp)
    tiles = row_losses_vjp(problem, o.plan, scale, bias_grad=o.class_bias is not None, xp=xp)
    grad_query, grad_temperature = scale_query_vjp(
        tiles.scaled_query, problem.scaled_query, temperature=o.temperature, xp=xp
    )
    grads = {
        "query_embeddings": grad_query,
        "class_embeddings": tiles.candidates,
        "class_bias": tiles.column_bias,
        "temperature": grad_temperature,
    }
    return reduce_weighted(tiles.per_row, None, o.reduction, xp=xp), grads
