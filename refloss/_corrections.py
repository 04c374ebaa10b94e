r"""The correction steps applied to in-batch retrieval logits, one pure function each.

``retrieval_loss`` applies them in this order (TFRS 0.7.7 ``tasks.Retrieval``):

1. temperature, :math:`S / \tau` (folded into the query embeddings);
2. :func:`logq_correction`, :math:`S - \log \operatorname{clip}(p, p_{\min}, 1)`;
3. :func:`remove_accidental_hits`, duplicates of a row's positive id set to :math:`-\infty`;
4. :func:`apply_score_mask`, entries the caller masks set to :math:`-\infty`;
5. :func:`mine_hard_negatives`, all but the positive and the ``k`` largest negatives set to
   :math:`-\infty`.

Every step takes and returns a ``(B, N)`` logits matrix whose row ``i`` has its positive in
column ``i`` (columns ``B..N-1`` are extra negatives shared by all rows). Shapes never
change: a removed entry is an exact :math:`-\infty`, which contributes exactly zero
probability to the softmax. Every step is elementwise or row-wise, so the private helpers
take any tile of the logits (:mod:`refloss._tiling`) together with what they need to know
about it: the ids of its rows' targets and of its columns, and where its targets are.
"""

from __future__ import annotations

from ._lib import _validation as v
from ._lib._typing import Array, ArrayNamespace
from ._targets import TargetColumns, diagonal_targets

__all__ = [
    "apply_score_mask",
    "logq_correction",
    "mine_hard_negatives",
    "remove_accidental_hits",
]


def sampling_log_q(p: Array, min_probability: float, *, like: Array, xp: ArrayNamespace) -> Array:
    r""":math:`\log \operatorname{clip}(p_j, p_{\min}, 1)`, shape ``(N,)``, in ``like``'s dtype."""
    return xp.log(xp.clip(xp.astype(p, like.dtype), min_probability, 1.0))


def _logq(logits: Array, log_q: Array) -> Array:
    """Subtract each column's log sampling probability (``log_q`` holds the tile's columns)."""
    return logits - log_q[None, :]


def _accidental_hits(
    logits: Array,
    target_ids: Array,
    column_ids: Array,
    targets: TargetColumns,
    rows: slice,
    cols: slice,
    *,
    xp: ArrayNamespace,
) -> Array:
    """Mask entries whose column id equals the row's target id, the target itself excepted.

    One comparison and one select over the tile: the comparison marks the targets too
    (a target has its own id), so they are put back afterwards on their window only.
    """
    same_id = target_ids[:, None] == column_ids[None, :]
    masked = xp.where(same_id, -xp.inf, logits)
    return targets.keep_targets(masked, logits, rows, cols, xp=xp)


def _sampled_hits(
    logits: Array, true_ids: Array, sampled_ids: Array, *, xp: ArrayNamespace
) -> Array:
    r"""Mask sampled column :math:`j` of row :math:`i` when :math:`s_j` is one of row i's labels.

    ``true_ids`` is ``(b, T)``, ``sampled_ids`` ``(n,)``: :math:`S_{ij} \leftarrow -\infty`
    if :math:`s_j \in \{y_{i1}, \ldots, y_{iT}\}`. Every copy of a repeated sampled id
    is masked (TensorFlow's ``compute_accidental_hits`` masks the last copy only).
    """
    hit = xp.any(true_ids[:, :, None] == sampled_ids[None, None, :], axis=1)
    return xp.where(hit, -xp.inf, logits)


def _score_mask(logits: Array, score_mask: Array, *, xp: ArrayNamespace) -> Array:
    return xp.where(score_mask, logits, -xp.inf)


def _hard_negatives(logits: Array, k: int, is_target: Array, *, xp: ArrayNamespace) -> Array:
    """Keep each row's target and its ``k`` largest negatives (whole rows only)."""
    if k >= logits.shape[1] - 1:
        return logits
    # The target is kept separately, so it competes for no slot: its key is -inf and it
    # sorts after every finite negative. A stable descending sort ranks equal keys by
    # column index, so ties go to the lower index.
    key = xp.where(is_target, -xp.inf, logits)
    order = xp.argsort(key, axis=-1, descending=True, stable=True)
    rank = xp.argsort(order, axis=-1, stable=True)
    keep = is_target | (rank < k) | xp.isnan(logits)
    return xp.where(keep, logits, -xp.inf)


def _in_batch_positives(logits: Array, *, xp: ArrayNamespace) -> Array:
    """Boolean ``(B, N)``, True at row i's positive, column i."""
    return _in_batch_targets(logits, xp=xp).is_target(*_whole(logits), xp=xp)


def _in_batch_targets(logits: Array, *, xp: ArrayNamespace) -> TargetColumns:
    return diagonal_targets(int(logits.shape[0]), None, like=logits, xp=xp)


def _whole(logits: Array) -> tuple[slice, slice]:
    """The row and column ranges of a whole logits matrix, as a tile."""
    return slice(0, int(logits.shape[0])), slice(0, int(logits.shape[1]))


def logq_correction(
    logits: Array,
    candidate_sampling_probability: Array,
    /,
    *,
    min_probability: float = 1e-6,
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Sampling-bias (logQ) correction: subtract each candidate's log sampling probability.

    Parameters
    ----------
    logits : array, shape (B, N), real floating
        Logits, already divided by the temperature.
    candidate_sampling_probability : array, shape (N,), real floating
        :math:`p_j`, the probability that candidate ``j`` appears as a candidate (e.g.
        ``count(item) / num_interactions``); values in ``[0, 1]``. Cast to the dtype of
        ``logits`` before clipping.
    min_probability : float, default 1e-6
        Floor of the clip (TFRS's constant); must lie in ``(0, 1]``.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array, shape (B, N)
        Corrected logits, dtype and device of ``logits``.

    Raises
    ------
    ValueError
        If a probability is NaN or outside ``[0, 1]`` (this reads one boolean to the host;
        the check is skipped under ``jax.jit``), or a shape is wrong.

    Notes
    -----
    .. math::

        S'_{ij} = S_{ij} - \log \operatorname{clip}(p_j, p_{\min}, 1)

    Every column is corrected, the positive included. The correction is *not* divided by
    the temperature: ``retrieval_loss`` computes :math:`s/\tau - \log p`, never
    :math:`(s - \log p)/\tau`. With the default floor, ``p = 0`` adds
    :math:`-\log 10^{-6} \approx 13.8155`.

    References
    ----------
    .. [1] X. Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
       Recommendations", RecSys 2019, Eq. (3).
    .. [2] TFRS 0.7.7 ``layers.loss.SamplingProbablityCorrection`` (clip to
       ``[1e-6, 1]``).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> s = xp.asarray([[0.0, 0.0]])
    >>> out = refloss.logq_correction(s, xp.asarray([1.0, 0.5]))
    >>> [round(float(x), 6) for x in out[0, :]]
    [0.0, 0.693147]
    """
    xp = v.resolve_namespace(
        {"logits": logits, "candidate_sampling_probability": candidate_sampling_probability},
        xp=xp,
    )
    _, num_cols = v.check_logits("logits", logits, xp=xp)
    p = candidate_sampling_probability
    v.check_shape("candidate_sampling_probability", p, (num_cols,), "one per candidate column")
    v.check_same_device({"logits": logits, "candidate_sampling_probability": p})
    v.check_probability("candidate_sampling_probability", p, xp=xp)
    min_probability = v.check_min_probability(min_probability)
    return _logq(logits, sampling_log_q(p, min_probability, like=logits, xp=xp))


def remove_accidental_hits(
    logits: Array, candidate_ids: Array, /, *, xp: ArrayNamespace | None = None
) -> Array:
    r"""Mask every negative column whose candidate id equals the row's positive id.

    Parameters
    ----------
    logits : array, shape (B, N), real floating
        Row ``i``'s positive is column ``i``.
    candidate_ids : array, shape (N,), integer
        Id of each candidate column; compared exactly.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array, shape (B, N)
        ``logits`` with :math:`-\infty` at every accidental hit, dtype and device of
        ``logits``.

    Notes
    -----
    .. math::

        S'_{ij} = -\infty \quad \text{if } j \ne i \text{ and }
        \mathrm{id}_j = \mathrm{id}_i, \qquad S'_{ij} = S_{ij} \text{ otherwise.}

    The positive itself is never masked. *All* duplicates are masked: in-batch duplicates
    (symmetrically, (i, j) and (j, i)) and extra negatives equal to the positive. TFRS masks
    the same set with an additive finite constant (:math:`-3.4\times 10^{36}`); refloss uses
    :math:`-\infty`, so a masked entry carries exactly zero probability. (TensorFlow's
    ``compute_accidental_hits`` for sampled softmax masks only the last duplicate.)

    References
    ----------
    .. [1] TFRS 0.7.7 ``layers.loss.RemoveAccidentalHits``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> s = xp.zeros((2, 3))
    >>> out = refloss.remove_accidental_hits(s, xp.asarray([7, 8, 7]))
    >>> [float(x) for x in out[0, :]]
    [0.0, 0.0, -inf]
    """
    xp = v.resolve_namespace({"logits": logits, "candidate_ids": candidate_ids}, xp=xp)
    _, num_cols = v.check_logits("logits", logits, xp=xp)
    v.check_integer_dtype("candidate_ids", candidate_ids, xp=xp)
    v.check_shape("candidate_ids", candidate_ids, (num_cols,), "one id per candidate column")
    v.check_same_device({"logits": logits, "candidate_ids": candidate_ids})
    num_rows = int(logits.shape[0])
    targets = _in_batch_targets(logits, xp=xp)
    return _accidental_hits(
        logits, candidate_ids[:num_rows], candidate_ids, targets, *_whole(logits), xp=xp
    )


def apply_score_mask(
    logits: Array, score_mask: Array, /, *, xp: ArrayNamespace | None = None
) -> Array:
    r"""Replace the entries the caller masks by :math:`-\infty`.

    Parameters
    ----------
    logits : array, shape (B, N), real floating
        Logits.
    score_mask : array, shape (B, N), bool
        True keeps an entry, False masks it. Masking a row's positive (its diagonal entry)
        removes that row's target: ``retrieval_loss`` then gives the row a loss of exactly 0.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array, shape (B, N)
        ``where(score_mask, logits, -inf)``, dtype and device of ``logits``.

    Notes
    -----
    .. math::

        S'_{ij} = S_{ij} \text{ if } M_{ij}, \qquad -\infty \text{ otherwise.}

    TFRS replaces masked entries by the finite :math:`-3.4\times 10^{36}`.

    References
    ----------
    .. [1] TFRS 0.7.7 ``tasks.Retrieval.call`` (``score_mask``).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> out = refloss.apply_score_mask(xp.ones((1, 2)), xp.asarray([[True, False]]))
    >>> [float(x) for x in out[0, :]]
    [1.0, -inf]
    """
    xp = v.resolve_namespace({"logits": logits, "score_mask": score_mask}, xp=xp)
    num_rows, num_cols = v.check_logits("logits", logits, xp=xp)
    v.check_bool_dtype("score_mask", score_mask, xp=xp)
    v.check_shape("score_mask", score_mask, (num_rows, num_cols), "one flag per logit")
    v.check_same_device({"logits": logits, "score_mask": score_mask})
    return _score_mask(logits, score_mask, xp=xp)


def mine_hard_negatives(
    logits: Array, /, *, num_hard_negatives: int, xp: ArrayNamespace | None = None
) -> Array:
    r"""Keep each row's positive and its ``k`` largest negatives; mask the rest.

    Parameters
    ----------
    logits : array, shape (B, N), real floating
        Fully corrected logits (temperature, logQ, accidental hits and score mask already
        applied); row ``i``'s positive is column ``i``.
    num_hard_negatives : int
        :math:`k \ge 1`, the number of negatives kept per row. :math:`k \ge N - 1` keeps
        every column.
    xp : namespace, optional
        Array namespace; inferred from ``logits`` when None.

    Returns
    -------
    array, shape (B, N)
        ``logits`` with :math:`-\infty` in every column that is neither the positive nor
        among the ``k`` largest negatives. The shape is kept (TFRS gathers a
        ``(B, k+1)`` matrix instead; the loss is the same).

    Notes
    -----
    .. math::

        K_i = \{i\} \cup \operatorname{top}_k\{S_{ij} : j \ne i\}, \qquad
        S'_{ij} = S_{ij} \text{ if } j \in K_i, \quad -\infty \text{ otherwise.}

    The positive is always kept, whatever its logit. Ties go to the lower column index.
    Masked (:math:`-\infty`) negatives rank last; a NaN logit is always kept, so NaN
    propagates. TFRS returns a loss of 0 for ``k = 0`` and ``k = -1``; refloss raises
    instead.

    References
    ----------
    .. [1] TFRS 0.7.7 ``layers.loss.HardNegativeMining`` (top-(k+1) with the positive
       forced in; TensorFlow's CPU ``TopKV2`` prefers the lower index on ties).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> s = xp.asarray([[0.0, 3.0, 1.0, 3.0]])
    >>> out = refloss.mine_hard_negatives(s, num_hard_negatives=1)
    >>> [float(x) for x in out[0, :]]
    [0.0, 3.0, -inf, -inf]
    """
    xp = v.resolve_namespace({"logits": logits}, xp=xp)
    v.check_logits("logits", logits, xp=xp)
    k = v.check_num_hard_negatives(num_hard_negatives)
    return _hard_negatives(logits, k, _in_batch_positives(logits, xp=xp), xp=xp)
