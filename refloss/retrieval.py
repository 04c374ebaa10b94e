r"""The in-batch softmax retrieval loss with extra negatives (TFRS ``tasks.Retrieval``)."""

from __future__ import annotations

import inspect
from typing import NamedTuple

from ._corrections import _accidental_hits, _hard_negatives, _logq, _score_mask
from ._lib import _validation as v
from ._lib._typing import Array, ArrayNamespace
from ._softmax import (
    RowTerms,
    cross_entropy_grad,
    cross_entropy_rows,
    positive_logits,
    reduce_weighted,
    reduction_scale,
)

__all__ = ["retrieval_loss"]


class _Options(NamedTuple):
    """Validated options of one ``retrieval_loss`` call."""

    sample_weight: Array | None
    candidate_sampling_probability: Array | None
    candidate_ids: Array | None
    score_mask: Array | None
    num_hard_negatives: int | None
    temperature: float | None
    min_probability: float
    reduction: str
    shape: tuple[int, int]  # (B, N)
    xp: ArrayNamespace


def _validate(
    query_embeddings: Array,
    candidate_embeddings: Array,
    *,
    sample_weight: Array | None,
    candidate_sampling_probability: Array | None,
    candidate_ids: Array | None,
    score_mask: Array | None,
    num_hard_negatives: object,
    temperature: object,
    min_probability: object,
    reduction: object,
    xp: ArrayNamespace | None,
) -> _Options:
    arrays = {
        "query_embeddings": query_embeddings,
        "candidate_embeddings": candidate_embeddings,
        "sample_weight": None if v.is_python_real(sample_weight) else sample_weight,
        "candidate_sampling_probability": candidate_sampling_probability,
        "candidate_ids": candidate_ids,
        "score_mask": score_mask,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    q, c = query_embeddings, candidate_embeddings
    v.check_rank("query_embeddings", q, 2, "(batch B, embedding width D)")
    v.check_rank("candidate_embeddings", c, 2, "(candidates N, embedding width D)")
    v.check_floating("query_embeddings", q, xp=xp)
    v.check_floating("candidate_embeddings", c, xp=xp)
    sample_weight = v.weight_array(sample_weight, like=q, xp=xp)
    if q.dtype != c.dtype:
        msg = (
            f"query_embeddings and candidate_embeddings must have the same dtype, got "
            f"{q.dtype} and {c.dtype}; cast one of them"
        )
        raise TypeError(msg)
    if q.shape[1] != c.shape[1]:
        msg = (
            f"query_embeddings and candidate_embeddings must have the same width D, got "
            f"query_embeddings shape {tuple(q.shape)} and candidate_embeddings shape "
            f"{tuple(c.shape)}"
        )
        raise ValueError(msg)
    num_rows, num_cols = int(q.shape[0]), int(c.shape[0])
    if num_rows < 1:
        msg = f"query_embeddings must have at least one row (B >= 1), got shape {tuple(q.shape)}"
        raise ValueError(msg)
    if num_cols < num_rows:
        msg = (
            f"candidate_embeddings must have N >= B rows (the first B are the queries' "
            f"positives, the rest extra negatives), got N = {num_cols} for B = {num_rows}"
        )
        raise ValueError(msg)
    if sample_weight is not None:
        v.check_sample_weight(sample_weight, num_rows, xp=xp)
    if candidate_sampling_probability is not None:
        v.check_shape(
            "candidate_sampling_probability",
            candidate_sampling_probability,
            (num_cols,),
            "one per candidate row, extra negatives included",
        )
    if candidate_ids is not None:
        v.check_integer_dtype("candidate_ids", candidate_ids, xp=xp)
        v.check_shape("candidate_ids", candidate_ids, (num_cols,), "one id per candidate row")
    if score_mask is not None:
        v.check_bool_dtype("score_mask", score_mask, xp=xp)
        v.check_shape("score_mask", score_mask, (num_rows, num_cols), "queries x candidates")
    options = _Options(
        sample_weight=sample_weight,
        candidate_sampling_probability=candidate_sampling_probability,
        candidate_ids=candidate_ids,
        score_mask=score_mask,
        num_hard_negatives=(
            None if num_hard_negatives is None else v.check_num_hard_negatives(num_hard_negatives)
        ),
        temperature=v.check_temperature(temperature),
        min_probability=v.check_min_probability(min_probability),
        reduction=v.check_reduction(reduction),
        shape=(num_rows, num_cols),
        xp=xp,
    )
    v.check_same_device(arrays)
    if candidate_sampling_probability is not None:
        v.check_probability("candidate_sampling_probability", candidate_sampling_probability, xp=xp)
    return options


#: Logits entries processed at once (2 MiB of float32): the batch is cut into blocks of
#: rows so the elementwise passes stay in cache and memory stays O(block * N), not O(B * N).
_BLOCK_ENTRIES = 2**19


def _row_blocks(num_rows: int, num_cols: int) -> list[tuple[int, int]]:
    """``[(first_row, stop), ...]`` covering ``range(num_rows)`` in blocks of rows."""
    size = max(1, _BLOCK_ENTRIES // num_cols)
    return [(start, min(start + size, num_rows)) for start in range(0, num_rows, size)]


def _block_loss(
    query: Array, candidates: Array, o: _Options, first_row: int, stop: int
) -> tuple[Array, RowTerms]:
    """Pipeline steps 1-6 for batch rows ``first_row:stop``: per-row losses and terms."""
    xp = o.xp
    logits = query[first_row:stop, :] @ xp.matrix_transpose(candidates)
    if o.candidate_sampling_probability is not None:
        logits = _logq(logits, o.candidate_sampling_probability, o.min_probability, xp=xp)
    if o.candidate_ids is not None:
        logits = _accidental_hits(logits, o.candidate_ids, xp=xp, first_row=first_row)
    has_target = None
    if o.score_mask is not None:
        block_mask = o.score_mask[first_row:stop, :]
        logits = _score_mask(logits, block_mask, xp=xp)
        has_target = positive_logits(block_mask, xp=xp, first_row=first_row)[:, 0]
    if o.num_hard_negatives is not None:
        logits = _hard_negatives(logits, o.num_hard_negatives, xp=xp, first_row=first_row)
    return cross_entropy_rows(logits, has_target, xp=xp, first_row=first_row)


def _scaled_query(query_embeddings: Array, o: _Options) -> Array:
    """Fold ``1 / temperature`` into the query, the smaller operand of the matmul."""
    if o.temperature is None:
        return query_embeddings
    return query_embeddings / o.temperature


def retrieval_loss(
    query_embeddings: Array,
    candidate_embeddings: Array,
    /,
    *,
    sample_weight: Array | None = None,
    candidate_sampling_probability: Array | None = None,
    candidate_ids: Array | None = None,
    score_mask: Array | None = None,
    num_hard_negatives: int | None = None,
    temperature: float | None = None,
    min_probability: float = 1e-6,
    reduction: str = "sum",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""In-batch softmax retrieval loss with extra negatives, as TFRS ``tasks.Retrieval``.

    Query ``i``'s positive is candidate ``i``; the other candidates of the batch, and the
    ``N - B`` extra candidates appended after them (mixed negative sampling), are its
    negatives.

    Parameters
    ----------
    query_embeddings : array, shape (B, D), float32 or float64
        Query tower outputs, ``B >= 1``.
    candidate_embeddings : array, shape (N, D), same dtype
        Candidate tower outputs, ``N >= B``: rows ``0..B-1`` are the positives of the B
        queries, rows ``B..N-1`` extra negatives shared by every query.
    sample_weight : array of shape (B,) or (), or float, optional
        Weight of each query's loss, cast to the embeddings' dtype; a scalar weights every
        row.
    candidate_sampling_probability : array, shape (N,), optional
        :math:`p_j \in [0, 1]`, each candidate's sampling probability for the logQ
        correction (extra negatives included); clipped to ``[min_probability, 1]``.
    candidate_ids : array, shape (N,), integer, optional
        Candidate ids. Passing them turns accidental-hit removal on.
    score_mask : array, shape (B, N), bool, optional
        False removes a logit. Removing a row's positive (its diagonal entry) leaves the row
        without a target: its loss and gradient are exactly 0.
    num_hard_negatives : int, optional
        :math:`k \ge 1`: keep only each row's ``k`` largest negatives (after every other
        correction); the positive is always kept; ties go to the lower column index.
    temperature : float, optional
        :math:`\tau > 0`; the scores are divided by it. None means 1.
    min_probability : float, default 1e-6
        Floor of the probability clip (TFRS's constant).
    reduction : {"sum", "mean", "none"}, default "sum"
        ``"sum"`` (TFRS default): :math:`\sum_i w_i \ell_i`; ``"mean"``:
        :math:`\frac1B \sum_i w_i \ell_i` (divides by B, not by :math:`\sum_i w_i`, as Keras
        ``SUM_OVER_BATCH_SIZE``); ``"none"``: the ``(B,)`` vector :math:`w_i \ell_i`.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        The loss: a 0-D array (``(B,)`` for ``reduction="none"``) in the namespace, dtype
        and device of ``query_embeddings``.

    Raises
    ------
    ValueError
        For a wrong rank or shape, ``N < B``, ``B = 0``, a probability outside ``[0, 1]`` or
        NaN (a value check that reads one boolean to the host, skipped under ``jax.jit``),
        a non-positive or non-finite temperature, ``num_hard_negatives < 1``, an unknown
        reduction, or arrays on different devices.
    TypeError
        For non-floating embeddings, differing embedding dtypes, non-integer ids, a non-bool
        mask, a non-integer ``num_hard_negatives``, or arrays from different libraries.

    Notes
    -----
    The logits pass through these steps, in this order (TFRS 0.7.7; ``_corrections``
    documents each):

    .. math::

        S_{ij} &= \langle q_i, c_j \rangle / \tau \\
        S_{ij} &\leftarrow S_{ij} - \log \operatorname{clip}(p_j, p_{\min}, 1)
            \quad \text{(every column, positive included; not divided by } \tau) \\
        S_{ij} &\leftarrow -\infty \quad \text{if } j \ne i,\ \mathrm{id}_j = \mathrm{id}_i
            \quad \text{(accidental hits)} \\
        S_{ij} &\leftarrow -\infty \quad \text{if } \lnot M_{ij} \quad
            \text{(score mask)} \\
        S_{ij} &\leftarrow -\infty \quad \text{if } j \notin \{i\} \cup
            \operatorname{top}_k\{S_{il}\}_{l \ne i} \quad \text{(hard negatives)} \\
        \ell_i &= \log \sum_j \exp S_{ij} - S_{ii}, \qquad
        L = \sum_i w_i \ell_i \ (\text{sum}).

    Deliberate differences from TFRS 0.7.7, each pinned by a flagged conformance case:

    * masked logits are exactly :math:`-\infty` (TFRS uses finite :math:`\pm 3.4 \times
      10^{36}` constants): a masked entry carries exactly zero probability;
    * a row whose positive is removed by ``score_mask`` contributes 0 (TFRS gives about
      :math:`3.4 \times 10^{36}`, or 0 when hard-negative mining drops it);
    * ``num_hard_negatives < 1`` raises (TFRS returns a loss of 0);
    * the loss and its gradient are float64-capable (TFRS effectively runs in float32).

    A row whose negatives are all masked has :math:`\ell_i = 0` exactly. NaN in an input
    propagates to the loss.

    References
    ----------
    .. [1] X. Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
       Recommendations", RecSys 2019 (in-batch softmax, logQ correction).
    .. [2] J. Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks
       in Recommendations", WWW 2020 (extra negatives appended to the batch).
    .. [3] TensorFlow Recommenders 0.7.7, ``tasks.Retrieval`` (order of the steps,
       ``Reduction.SUM``).

    Examples
    --------
    Two queries, two positives and one extra negative; every score is 0, so each row is a
    uniform softmax over 3 columns and the summed loss is :math:`2 \log 3`:

    >>> import array_api_strict as xp
    >>> import refloss
    >>> q = xp.zeros((2, 4))
    >>> c = xp.zeros((3, 4))
    >>> round(float(refloss.retrieval_loss(q, c)), 12)
    2.197224577336
    """
    o = _validate(
        query_embeddings,
        candidate_embeddings,
        sample_weight=sample_weight,
        candidate_sampling_probability=candidate_sampling_probability,
        candidate_ids=candidate_ids,
        score_mask=score_mask,
        num_hard_negatives=num_hard_negatives,
        temperature=temperature,
        min_probability=min_probability,
        reduction=reduction,
        xp=xp,
    )
    query = _scaled_query(query_embeddings, o)
    blocks = _row_blocks(*o.shape)
    per_row = [_block_loss(query, candidate_embeddings, o, *rows)[0] for rows in blocks]
    return reduce_weighted(o.xp.concat(per_row), o.sample_weight, o.reduction, xp=o.xp)


def retrieval_loss_value_and_grad(
    query_embeddings: Array, candidate_embeddings: Array, /, **options: object
) -> tuple[Array, tuple[Array, Array]]:
    r"""``retrieval_loss`` and its analytic gradients w.r.t. both embedding matrices.

    With :math:`G_{ij} = s_i\, \partial \ell_i / \partial S_{ij}` (softmax minus one-hot,
    zero on masked entries and on rows without a target; :math:`s_i = w_i`, or
    :math:`w_i / B` for ``"mean"``):

    .. math::

        \frac{\partial L}{\partial Q} = \frac{G C}{\tau}, \qquad
        \frac{\partial L}{\partial C} = \frac{G^\top Q}{\tau}.

    The logQ term is constant in the embeddings; masks and hard-negative selection are
    piecewise constant, so they only zero entries of :math:`G`. Takes exactly the arguments
    of :func:`retrieval_loss`; ``reduction="none"`` raises ``ValueError``.
    """
    bound = inspect.signature(retrieval_loss).bind(
        query_embeddings, candidate_embeddings, **options
    )
    bound.apply_defaults()  # the same defaults, and the same TypeError for unknown options
    o = _validate(*bound.args, **bound.kwargs)
    if o.reduction == "none":
        msg = 'value_and_grad needs a scalar loss: use reduction="sum" or "mean", not "none"'
        raise ValueError(msg)
    xp = o.xp
    query = _scaled_query(query_embeddings, o)
    num_rows, _ = o.shape
    scale = reduction_scale(num_rows, o.sample_weight, o.reduction, like=query, xp=xp)
    per_row, grad_query, grad_candidates = [], [], 0
    for first_row, stop in _row_blocks(*o.shape):
        block_loss, t = _block_loss(query, candidate_embeddings, o, first_row, stop)
        factor, g_diag = cross_entropy_grad(t, scale[first_row:stop, :], xp=xp)
        per_row.append(block_loss)
        block_query = query[first_row:stop, :]
        left, positives, right = (
            candidate_embeddings[:first_row, :],
            candidate_embeddings[first_row:stop, :],
            candidate_embeddings[stop:, :],
        )
        # G = factor * [left | diagonal | right] off the diagonal and g_diag on it; the row
        # factor is folded into the (b, D) operands instead of scaling the (b, N) parts
        products = t.left @ left + t.diagonal @ positives + t.right @ right
        grad_query.append(factor * products + g_diag * positives)
        weighted_query = factor * block_query
        block_grad_candidates = [
            xp.matrix_transpose(t.left) @ weighted_query,
            xp.matrix_transpose(t.diagonal) @ weighted_query + g_diag * block_query,
            xp.matrix_transpose(t.right) @ weighted_query,
        ]
        grad_candidates = grad_candidates + xp.concat(block_grad_candidates)
    loss = reduce_weighted(xp.concat(per_row), o.sample_weight, o.reduction, xp=xp)
    grad_query = xp.concat(grad_query)
    if o.temperature is not None:
        grad_query = grad_query / o.temperature
    return loss, (grad_query, grad_candidates)
