r"""Sampled softmax and NCE over a shared set of sampled classes (TensorFlow semantics).

A classifier over a very large set of classes (weights :math:`W`, biases :math:`b`) is
trained on its true classes and ``S`` classes drawn from a proposal distribution, shared
by the whole batch. Every loss here scores the same logits, true logits first:

.. math::

    o_{it} = \langle x_i, w_{y_{it}} \rangle + b_{y_{it}} - \log Q(y_{it}),
    \qquad
    o_{ij} = \langle x_i, w_{s_j} \rangle + b_{s_j} - \log Q(s_j),

:math:`t = 1..T` (``num_true``), :math:`j = 1..S`, where :math:`Q` is the **expected
count** of a class in the sample (not a probability: :mod:`refloss.samplers`), and a
sampled class equal to one of row i's labels (an accidental hit) may be removed,
:math:`o_{ij} = -\infty`. The scores are computed by :mod:`refloss._tiling` with the true
logits as its leading columns; the row losses are the core's softmax
(:mod:`refloss._softmax`) and sigmoid (:mod:`refloss._sigmoid`) cross-entropies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._corrections import _sampled_hits
from ._lib import _validation as v
from ._lib._compat import device, is_lazy_array
from ._lib._scatter import scatter_add
from ._lib._typing import Array, ArrayNamespace
from ._reductions import reduce_weighted, row_scale
from ._targets import TargetColumns, TargetWeights
from ._tiling import Plan, ScoreProblem, plan_tiles, row_losses, row_losses_vjp

__all__ = ["nce_loss", "sampled_softmax_loss"]

_POSITIONAL = ("weights", "biases", "inputs")


class _Sampled(NamedTuple):
    """Validated arguments of one sampled-loss call."""

    labels: Array  # (B, T)
    sampled: Array  # (S,)
    log_true_count: Array | None  # log Q of the true classes (B, T), None without logQ
    log_sampled_count: Array | None  # log Q of the sampled classes (S,)
    remove_accidental_hits: bool
    reduction: str
    plan: Plan
    xp: ArrayNamespace


def _validate(
    weights: Array,
    biases: Array,
    inputs: Array,
    *,
    labels: Array,
    sampled_candidates: Array,
    true_expected_count: Array | None,
    sampled_expected_count: Array | None,
    remove_accidental_hits: object,
    subtract_log_q: object,
    reduction: object,
    xp: ArrayNamespace | None,
) -> _Sampled:
    arrays = {
        "weights": weights,
        "biases": biases,
        "inputs": inputs,
        "labels": labels,
        "sampled_candidates": sampled_candidates,
        "true_expected_count": true_expected_count,
        "sampled_expected_count": sampled_expected_count,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    num_classes, num_rows = v.check_embedding_pair(
        ("weights", "inputs"),
        weights,
        inputs,
        ("(num_classes, embedding width D)", "(batch B, embedding width D)"),
        xp=xp,
    )
    v.check_floating("biases", biases, xp=xp)
    v.check_shape("biases", biases, (num_classes,), "one bias per class of weights")
    if biases.dtype != weights.dtype:
        msg = f"biases must have the dtype {weights.dtype} of weights, got {biases.dtype}"
        raise TypeError(msg)
    if num_rows < 1:
        msg = f"inputs must have at least one row (B >= 1), got shape {tuple(inputs.shape)}"
        raise ValueError(msg)
    v.check_integer_dtype("labels", labels, xp=xp)
    if labels.ndim != 2 or int(labels.shape[0]) != num_rows or int(labels.shape[1]) < 1:
        msg = (
            f"labels must have shape ({num_rows}, num_true) with num_true >= 1 (the true "
            f"classes of each row; for one class per row use labels[:, None]), got shape "
            f"{tuple(labels.shape)}"
        )
        raise ValueError(msg)
    v.check_integer_dtype("sampled_candidates", sampled_candidates, xp=xp)
    if sampled_candidates.ndim != 1 or int(sampled_candidates.shape[0]) < 1:
        msg = (
            f"sampled_candidates must have shape (S,) with S >= 1 (the sampled classes, "
            f"shared by every row), got shape {tuple(sampled_candidates.shape)}"
        )
        raise ValueError(msg)
    what = "class ids (rows of weights)"
    v.check_index_range("labels", labels, num_classes, xp=xp, what=what)
    v.check_index_range("sampled_candidates", sampled_candidates, num_classes, xp=xp, what=what)
    remove_accidental_hits = v.check_flag("remove_accidental_hits", remove_accidental_hits)
    subtract_log_q = v.check_flag("subtract_log_q", subtract_log_q)
    num_true, num_sampled = int(labels.shape[1]), int(sampled_candidates.shape[0])
    counts = (
        ("true_expected_count", true_expected_count, (num_rows, num_true), "labels' shape"),
        ("sampled_expected_count", sampled_expected_count, (num_sampled,), "one per sample"),
    )
    log_counts = []
    for name, count, shape, meaning in counts:
        if count is None:
            if subtract_log_q:
                msg = (
                    f"{name} is required with subtract_log_q=True (the expected count of each "
                    f"class in the sample, e.g. from refloss.samplers); pass "
                    f"subtract_log_q=False to train without the correction"
                )
                raise ValueError(msg)
            continue
        v.check_floating(name, count, xp=xp)
        v.check_shape(name, count, shape, meaning)
    reduction = v.check_reduction(reduction)
    v.check_same_device(arrays)
    for name, count, _, _ in counts:
        if count is not None and subtract_log_q:
            v.check_positive(name, count, xp=xp)
            log_counts.append(xp.log(xp.astype(count, weights.dtype)))
        else:
            log_counts.append(None)
    plan = plan_tiles(num_rows, num_true + num_sampled, lazy=is_lazy_array(inputs))
    return _Sampled(
        labels, sampled_candidates, *log_counts, remove_accidental_hits, reduction, plan, xp
    )


class _SampledProblem(NamedTuple):
    """The logits of a sampled loss as a tiled problem, and the gathered true weights."""

    problem: ScoreProblem
    true_weights: Array  # W[y] (B, T, D)


def _sampled_problem(
    weights: Array, biases: Array, inputs: Array, o: _Sampled, *, criterion: str
) -> _SampledProblem:
    """True logits first (the leading columns), then the sampled classes' scores."""
    xp = o.xp
    num_rows, num_true = (int(n) for n in o.labels.shape)
    flat_labels = xp.reshape(o.labels, (num_rows * num_true,))
    true_weights = xp.reshape(
        xp.take(weights, flat_labels, axis=0), (num_rows, num_true, int(weights.shape[1]))
    )
    true_logits = xp.sum(inputs[:, None, :] * true_weights, axis=-1)
    true_logits = true_logits + xp.reshape(xp.take(biases, flat_labels), (num_rows, num_true))
    column_bias = xp.take(biases, o.sampled)
    if o.log_true_count is not None:
        true_logits = true_logits - o.log_true_count
        column_bias = column_bias - o.log_sampled_count

    def correct(scores: Array, rows: slice, cols: slice) -> Array:
        if o.remove_accidental_hits:
            return _sampled_hits(scores, o.labels[rows, :], o.sampled[cols], xp=xp)
        return scores

    problem = ScoreProblem(
        inputs,
        xp.take(weights, o.sampled, axis=0),
        column_bias,
        correct,
        _true_targets(o.labels, int(o.sampled.shape[0]), criterion, like=inputs, xp=xp),
        leading=true_logits,
        criterion=criterion,
    )
    return _SampledProblem(problem, true_weights)


def _true_targets(
    labels: Array, num_sampled: int, criterion: str, *, like: Array, xp: ArrayNamespace
) -> TargetColumns | TargetWeights:
    """Label ``1 / T`` on each of the ``T`` true columns, 0 on the sampled ones."""
    dev = device(like)
    num_rows, num_true = (int(n) for n in labels.shape)
    if num_true == 1:
        index = xp.zeros((num_rows,), dtype=labels.dtype, device=dev)
        return TargetColumns(index, None, diagonal=False, bounds=slice(0, 1))
    true = xp.full((num_rows, num_true), 1.0 / num_true, dtype=like.dtype, device=dev)
    rest = xp.zeros((num_rows, num_sampled), dtype=like.dtype, device=dev)
    return TargetWeights(xp.concat((true, rest), axis=1))


def _loss(
    criterion: str, weights: Array, biases: Array, inputs: Array, options: dict[str, Any]
) -> Array:
    o = _validate(weights, biases, inputs, **options)
    sampled = _sampled_problem(weights, biases, inputs, o, criterion=criterion)
    per_row = row_losses(sampled.problem, o.plan, xp=o.xp)
    return reduce_weighted(per_row, None, o.reduction, xp=o.xp)


def _loss_vjp(
    criterion: str, arguments: Mapping[str, Any]
) -> tuple[Array, dict[str, Array | None]]:
    r"""The loss and its gradients for the weights, biases and inputs.

    With :math:`G = \partial L / \partial o` (true columns :math:`G^{y}`, sampled columns
    :math:`G^{s}`):

    .. math::

        \frac{\partial L}{\partial x_i} = \sum_t G^{y}_{it} w_{y_{it}}
            + \sum_j G^{s}_{ij} w_{s_j}, \qquad
        \frac{\partial L}{\partial w_k} = \sum_{(i,t): y_{it} = k} G^{y}_{it} x_i
            + \sum_{j: s_j = k} \sum_i G^{s}_{ij} x_i, \qquad
        \frac{\partial L}{\partial b_k} = \sum_{(i,t): y_{it} = k} G^{y}_{it}
            + \sum_{j: s_j = k} \sum_i G^{s}_{ij},

    a class that appears several times (the label of several rows, or a label that is
    also sampled) receiving the sum of its contributions.
    """
    weights, biases, inputs = (arguments[name] for name in _POSITIONAL)
    options = {name: value for name, value in arguments.items() if name not in _POSITIONAL}
    o = _validate(weights, biases, inputs, **options)
    xp = o.xp
    sampled = _sampled_problem(weights, biases, inputs, o, criterion=criterion)
    num_rows, num_true = (int(n) for n in o.labels.shape)
    num_classes, width = (int(n) for n in weights.shape)
    scale = row_scale(num_rows, None, o.reduction, like=inputs, xp=xp)
    tiles = row_losses_vjp(sampled.problem, o.plan, scale, bias_grad=True, xp=xp)
    grad_true = tiles.leading  # (B, T)
    grad_inputs = tiles.scaled_query + xp.sum(grad_true[:, :, None] * sampled.true_weights, axis=1)
    grad_true_weights = xp.reshape(
        grad_true[:, :, None] * inputs[:, None, :], (num_rows * num_true, width)
    )
    ids = xp.concat((xp.reshape(o.labels, (num_rows * num_true,)), o.sampled))
    grads = {
        "weights": scatter_add(
            num_classes, ids, xp.concat((grad_true_weights, tiles.candidates)), xp=xp
        ),
        "biases": scatter_add(
            num_classes,
            ids,
            xp.concat((xp.reshape(grad_true, (num_rows * num_true,)), tiles.column_bias)),
            xp=xp,
        ),
        "inputs": grad_inputs,
    }
    return reduce_weighted(tiles.per_row, None, o.reduction, xp=xp), grads


def sampled_softmax_loss(
    weights: Array,
    biases: Array,
    inputs: Array,
    /,
    *,
    labels: Array,
    sampled_candidates: Array,
    true_expected_count: Array | None = None,
    sampled_expected_count: Array | None = None,
    remove_accidental_hits: bool = True,
    subtract_log_q: bool = True,
    reduction: str = "none",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Sampled softmax cross-entropy, as TensorFlow's ``tf.nn.sampled_softmax_loss``.

    Parameters
    ----------
    weights : array, shape (num_classes, D), float32 or float64
        Class embeddings :math:`w_k`.
    biases : array, shape (num_classes,), same dtype
        Class biases :math:`b_k`.
    inputs : array, shape (B, D), same dtype
        Row embeddings :math:`x_i` (the query tower's output), ``B >= 1``.
    labels : array, shape (B, num_true), integer
        The true classes of each row, in ``[0, num_classes)``; ``num_true >= 1``.
    sampled_candidates : array, shape (S,), integer
        The sampled classes, shared by every row, ``S >= 1`` (``samplers.*.sample``, or
        the first output of a TensorFlow candidate sampler).
    true_expected_count : array, shape (B, num_true), floating, optional
        Expected count :math:`Q(y_{it}) > 0` of each true class in the sample; cast to
        the dtype of ``weights``. Required with ``subtract_log_q``.
    sampled_expected_count : array, shape (S,), floating, optional
        Expected count :math:`Q(s_j) > 0` of each sampled class.
    remove_accidental_hits : bool, default True
        Remove every sampled column whose class is one of the row's labels.
    subtract_log_q : bool, default True
        Subtract :math:`\log Q` from every logit, true ones included.
    reduction : {"none", "sum", "mean"}, default "none"
        ``"none"`` (TensorFlow): the ``(B,)`` vector of row losses; ``"sum"``; ``"mean"``
        (over the B rows).
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        ``(B,)`` (or a 0-D array for ``"sum"`` and ``"mean"``), in the namespace, dtype and
        device of ``inputs``.

    Raises
    ------
    ValueError
        For wrong shapes, ``num_true`` differing between ``labels`` and
        ``true_expected_count``, a class outside ``[0, num_classes)``, ``S = 0``, an
        expected count that is <= 0, infinite or NaN (value checks that read one boolean
        to the host, skipped under ``jax.jit``), or a missing expected count with
        ``subtract_log_q``.
    TypeError
        For floating labels or sampled ids, non-floating or differing embedding dtypes, or
        arrays from different libraries.

    Notes
    -----
    With the logits :math:`o` of :mod:`refloss.sampled` (true classes first, accidental
    hits at :math:`-\infty`), each row is a softmax cross-entropy whose label puts
    :math:`1/T` on each true class:

    .. math::

        \ell_i = \frac{1}{T} \sum_{t=1}^{T} \Bigl(\log \Bigl(\sum_{t'} e^{o_{it'}}
            + \sum_j e^{o_{ij}}\Bigr) - o_{it}\Bigr).

    The order of TensorFlow 2.21's ``_compute_sampled_logits`` is kept (accidental hits,
    then :math:`\log Q`; with an exact :math:`-\infty` the order does not change a
    number). Deliberate differences, each pinned by a flagged conformance case:

    * every copy of a repeated sampled class equal to a row's label is removed
      (TensorFlow removes the last copy only; it documents unique samples);
    * a removed logit is exactly :math:`-\infty` (TensorFlow adds
      :math:`-3.4 \times 10^{38}`, which gives the same numbers);
    * an expected count <= 0 or NaN raises (TensorFlow returns NaN or infinity).

    TensorFlow computes its samplers' expected counts in float32 and refuses float64
    weights with float32 counts; refloss casts the counts to the weights' dtype.

    References
    ----------
    .. [1] S. Jean, K. Cho, R. Memisevic, Y. Bengio, "On Using Very Large Target
       Vocabulary for Neural Machine Translation", ACL 2015 (sampled softmax with a
       :math:`\log Q` correction).
    .. [2] Y. Bengio, J.-S. Senécal, "Adaptive Importance Sampling to Accelerate
       Training of a Neural Probabilistic Language Model", IEEE TNN 19(4), 2008.
    .. [3] TensorFlow 2.21, ``tf.nn.sampled_softmax_loss`` and
       ``tf.nn.compute_accidental_hits``.

    Examples
    --------
    All scores 0 and equal expected counts: a uniform softmax over the true class and
    the two sampled ones that are not accidental hits, :math:`\log 3` per row:

    >>> import array_api_strict as xp
    >>> import refloss
    >>> w, b, x = xp.zeros((5, 2)), xp.zeros(5), xp.zeros((2, 2))
    >>> loss = refloss.sampled_softmax_loss(
    ...     w, b, x,
    ...     labels=xp.asarray([[0], [1]]),
    ...     sampled_candidates=xp.asarray([1, 2, 3]),
    ...     true_expected_count=xp.full((2, 1), 0.5),
    ...     sampled_expected_count=xp.full(3, 0.5),
    ... )
    >>> [round(float(value), 12) for value in loss]  # row 1's label 1 is sampled: removed
    [1.38629436112, 1.098612288668]
    """
    options = {name: value for name, value in locals().items() if name not in _POSITIONAL}
    return _loss("softmax", weights, biases, inputs, options)


def nce_loss(
    weights: Array,
    biases: Array,
    inputs: Array,
    /,
    *,
    labels: Array,
    sampled_candidates: Array,
    true_expected_count: Array | None = None,
    sampled_expected_count: Array | None = None,
    remove_accidental_hits: bool = False,
    subtract_log_q: bool = True,
    reduction: str = "none",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Noise-contrastive estimation loss, as TensorFlow's ``tf.nn.nce_loss``.

    Parameters
    ----------
    weights, biases, inputs, labels, sampled_candidates
        As :func:`sampled_softmax_loss`.
    true_expected_count, sampled_expected_count, subtract_log_q, reduction, xp
        As :func:`sampled_softmax_loss`.
    remove_accidental_hits : bool, default False
        Remove every sampled column whose class is one of the row's labels (TensorFlow's
        default is False here: with True the loss is "sampled logistic" rather than NCE).

    Returns
    -------
    array
        ``(B,)`` (or a 0-D array for ``"sum"`` and ``"mean"``), in the namespace, dtype and
        device of ``inputs``.

    Raises
    ------
    ValueError, TypeError
        As :func:`sampled_softmax_loss`.

    Notes
    -----
    With the logits :math:`o` of :mod:`refloss.sampled`, every column is a binary
    classifier, true class against noise: label :math:`1/T` on each true class, 0 on each
    sampled class, a sigmoid cross-entropy per entry (:mod:`refloss._sigmoid`), summed
    over the row:

    .. math::

        \ell_i = \sum_{t=1}^{T} \Bigl(\tfrac{1}{T} \operatorname{softplus}(-o_{it})
            + \bigl(1 - \tfrac{1}{T}\bigr) \operatorname{softplus}(o_{it})\Bigr)
            + \sum_{j=1}^{S} \operatorname{softplus}(o_{ij}).

    With :math:`o = s - \log Q`, :math:`\sigma(o) = e^{s} / (e^{s} + Q)`: the posterior
    that the class came from the data rather than from :math:`Q` noise samples, with the
    model's :math:`e^s` as an unnormalised density. A removed accidental hit
    (:math:`-\infty`, label 0) contributes exactly 0. The deliberate differences from
    TensorFlow are those of :func:`sampled_softmax_loss`.

    References
    ----------
    .. [1] M. Gutmann, A. Hyvärinen, "Noise-contrastive estimation: A new estimation
       principle for unnormalized statistical models", AISTATS 2010.
    .. [2] A. Mnih, Y. W. Teh, "A fast and simple algorithm for training neural
       probabilistic language models", ICML 2012.
    .. [3] TensorFlow 2.21, ``tf.nn.nce_loss``.

    Examples
    --------
    All scores 0 and expected counts 1: each of the 1 + 2 columns costs :math:`\log 2`:

    >>> import array_api_strict as xp
    >>> import refloss
    >>> w, b, x = xp.zeros((5, 2)), xp.zeros(5), xp.zeros((1, 2))
    >>> loss = refloss.nce_loss(
    ...     w, b, x,
    ...     labels=xp.asarray([[0]]),
    ...     sampled_candidates=xp.asarray([3, 4]),
    ...     true_expected_count=xp.ones((1, 1)),
    ...     sampled_expected_count=xp.ones(2),
    ... )
    >>> round(float(loss[0]), 12)
    2.07944154168
    """
    options = {name: value for name, value in locals().items() if name not in _POSITIONAL}
    return _loss("sigmoid", weights, biases, inputs, options)


def sampled_softmax_loss_vjp(
    arguments: Mapping[str, Any],
) -> tuple[Array, dict[str, Array | None]]:
    """``sampled_softmax_loss`` and its gradients, given its bound arguments by name."""
    return _loss_vjp("softmax", arguments)


def nce_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    """``nce_loss`` and its gradients, given its bound arguments by name."""
    return _loss_vjp("sigmoid", arguments)
