r"""The in-batch softmax retrieval loss with extra negatives (TFRS ``tasks.Retrieval``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._corrections import (
    _accidental_hits,
    _hard_negatives,
    _score_mask,
    sampling_log_q,
)
from ._lib import _validation as v
from ._lib._compat import is_lazy_array
from ._lib._typing import Array, ArrayNamespace
from ._reductions import reduce_weighted, row_scale, sample_weight_vjp
from ._scores import scale_query, scale_query_vjp
from ._targets import TargetColumns, diagonal_targets
from ._tiling import Plan, ScoreProblem, plan_tiles, row_losses, row_losses_vjp

__all__ = ["retrieval_loss"]


_POSITIONAL = ("query_embeddings", "candidate_embeddings")


class _Options(NamedTuple):
    """Validated options of one ``retrieval_loss`` call."""

    sample_weight: Array | None
    candidate_sampling_probability: Array | None
    candidate_ids: Array | None
    score_mask: Array | None
    num_hard_negatives: int | None
    temperature: float | Array | None
    min_probability: float
    reduction: str
    plan: Plan
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
    block_size: object,
    chunk_size: object,
    xp: ArrayNamespace | None,
) -> _Options:
    arrays = {
        "query_embeddings": query_embeddings,
        "candidate_embeddings": candidate_embeddings,
        "sample_weight": None if v.is_python_real(sample_weight) else sample_weight,
        "candidate_sampling_probability": candidate_sampling_probability,
        "candidate_ids": candidate_ids,
        "score_mask": score_mask,
        "temperature": None if v.is_python_real(temperature) else temperature,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    q = query_embeddings
    num_rows, num_cols = v.check_embedding_pair(
        _POSITIONAL,
        query_embeddings,
        candidate_embeddings,
        ("(batch B, embedding width D)", "(candidates N, embedding width D)"),
        xp=xp,
    )
    sample_weight = v.weight_array(sample_weight, like=q, xp=xp)
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
    k = None if num_hard_negatives is None else v.check_num_hard_negatives(num_hard_negatives)
    block_size = v.check_size("block_size", block_size)
    chunk_size = v.check_size("chunk_size", chunk_size)
    if k is not None and chunk_size is not None and chunk_size < num_cols:
        msg = (
            f"num_hard_negatives ranks whole rows: chunk_size must be None or >= N = "
            f"{num_cols}, got {chunk_size}"
        )
        raise ValueError(msg)
    options = _Options(
        sample_weight=sample_weight,
        candidate_sampling_probability=candidate_sampling_probability,
        candidate_ids=candidate_ids,
        score_mask=score_mask,
        num_hard_negatives=k,
        temperature=v.check_temperature(temperature, like=q, xp=xp),
        min_probability=v.check_min_probability(min_probability),
        reduction=v.check_reduction(reduction),
        plan=plan_tiles(
            num_rows,
            num_cols,
            lazy=is_lazy_array(q),
            block_size=block_size,
            chunk_size=chunk_size,
            whole_rows=k is not None,
        ),
        xp=xp,
    )
    v.check_same_device(arrays)
    if candidate_sampling_probability is not None:
        v.check_probability("candidate_sampling_probability", candidate_sampling_probability, xp=xp)
    return options


def _targets(o: _Options, *, like: Array) -> TargetColumns:
    """Row i's target is candidate i; a score mask that removes it leaves no target."""
    xp = o.xp
    targets = diagonal_targets(int(like.shape[0]), None, like=like, xp=xp)
    if o.score_mask is None:
        return targets
    has_target = xp.take_along_axis(o.score_mask, targets.index[:, None], axis=1)[:, 0]
    return targets._replace(has_target=has_target)


def _score_problem(
    query_embeddings: Array, candidate_embeddings: Array, o: _Options
) -> ScoreProblem:
    """The retrieval loss as a softmax cross-entropy over corrected scores."""
    xp = o.xp
    targets = _targets(o, like=query_embeddings)
    ids = o.candidate_ids
    log_q = (
        None
        if o.candidate_sampling_probability is None
        else sampling_log_q(
            o.candidate_sampling_probability, o.min_probability, like=query_embeddings, xp=xp
        )
    )

    def correct(logits: Array, rows: slice, cols: slice) -> Array:
        r"""Steps 3-5 of :func:`retrieval_loss` on the tile ``rows x cols``.

        Step 2, the logQ correction, is the column bias :math:`-\log q_j` of the problem,
        which the tiling layer adds inside the score matmul.
        """
        if ids is not None:
            target_ids = xp.take(ids, targets.index[rows])
            logits = _accidental_hits(logits, target_ids, ids[cols], targets, rows, cols, xp=xp)
        if o.score_mask is not None:
            logits = _score_mask(logits, o.score_mask[rows, cols], xp=xp)
        if o.num_hard_negatives is not None:
            is_target = targets.is_target(rows, cols, xp=xp)
            logits = _hard_negatives(logits, o.num_hard_negatives, is_target, xp=xp)
        return logits

    scaled_query = scale_query(query_embeddings, temperature=o.temperature)
    column_bias = None if log_q is None else -log_q
    return ScoreProblem(scaled_query, candidate_embeddings, column_bias, correct, targets)


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
    block_size: int | None = None,
    chunk_size: int | None = None,
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
    temperature : float or 0-D array, optional
        :math:`\tau > 0`; the scores are divided by it. None means 1. A 0-D array of the
        embeddings' dtype (a learnable temperature, or a value traced by ``jax.jit``) can
        be differentiated: ``value_and_grad(retrieval_loss, wrt=(..., "temperature"))``.
    min_probability : float, default 1e-6
        Floor of the probability clip (TFRS's constant).
    reduction : {"sum", "mean", "none"}, default "sum"
        ``"sum"`` (TFRS default): :math:`\sum_i w_i \ell_i`; ``"mean"``:
        :math:`\frac1B \sum_i w_i \ell_i` (divides by B, not by :math:`\sum_i w_i`, as Keras
        ``SUM_OVER_BATCH_SIZE``); ``"none"``: the ``(B,)`` vector :math:`w_i \ell_i`.
    block_size : int, optional
        Rows per block of the computation (an execution strategy: the numbers are the same
        up to rounding). None picks blocks of 128 rows on eager backends and one block on
        JAX (also under ``jax.jit``); see :mod:`refloss._tiling`.
    chunk_size : int, optional
        Columns per chunk; None cuts columns only when a block of full rows would hold more
        than 2**22 logits (N > 32768 with 128-row blocks). Must be None or >= N with
        ``num_hard_negatives``, which ranks whole rows.
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
        block_size=block_size,
        chunk_size=chunk_size,
        xp=xp,
    )
    problem = _score_problem(query_embeddings, candidate_embeddings, o)
    per_row = row_losses(problem, o.plan, xp=o.xp)
    return reduce_weighted(per_row, o.sample_weight, o.reduction, xp=o.xp)


def retrieval_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    r"""``retrieval_loss`` and its gradients, given its bound arguments by name.

    With :math:`G_{ij} = s_i\, \partial \ell_i / \partial S_{ij}` (softmax minus one-hot,
    zero on masked entries and on rows without a target; :math:`s_i = w_i`, or
    :math:`w_i / B` for ``"mean"``) and :math:`Q' = Q / \tau`:

    .. math::

        \frac{\partial L}{\partial Q} = \frac{G C}{\tau}, \qquad
        \frac{\partial L}{\partial C} = G^\top Q', \qquad
        \frac{\partial L}{\partial \tau} = -\frac{1}{\tau} \sum_{i,d} Q'_{id} (G C)_{id},
        \qquad
        \frac{\partial L}{\partial w_i} = r \ell_i.

    The logQ term is constant in the embeddings; masks and hard-negative selection are
    piecewise constant, so they only zero entries of :math:`G`. Returns the loss and a
    mapping from argument name to gradient (None for an argument that is not an array).
    """
    query, candidates = (arguments[name] for name in _POSITIONAL)
    options = {name: value for name, value in arguments.items() if name not in _POSITIONAL}
    o = _validate(query, candidates, **options)
    xp = o.xp
    problem = _score_problem(query, candidates, o)
    num_rows = int(query.shape[0])
    scale = row_scale(num_rows, o.sample_weight, o.reduction, like=query, xp=xp)
    tiles = row_losses_vjp(problem, o.plan, scale, xp=xp)
    per_row = tiles.per_row
    grad_query, grad_temperature = scale_query_vjp(
        tiles.scaled_query, problem.scaled_query, temperature=o.temperature, xp=xp
    )
    grads = {
        "query_embeddings": grad_query,
        "candidate_embeddings": tiles.candidates,
        "temperature": grad_temperature,
        "sample_weight": (
            None
            if o.sample_weight is None
            else sample_weight_vjp(per_row, o.sample_weight, o.reduction, xp=xp)
        ),
    }
    return reduce_weighted(per_row, o.sample_weight, o.reduction, xp=xp), grads
