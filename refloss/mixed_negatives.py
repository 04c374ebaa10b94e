r"""Mixed negative sampling: the logQ correction for batch negatives plus sampled negatives.

In mixed negative sampling (Yang et al. 2020) each query's softmax runs over the items of
its batch and over :math:`K` extra items drawn from a sampler (uniformly from the serving
index in the paper), shared by every query of the batch. ``retrieval_loss`` expresses the
layout directly: ``N = B + K`` candidate rows, the ``B`` positives first and the ``K``
sampled items after them. What it needs from the caller is one probability per column for
the logQ correction (``candidate_sampling_probability``); this module derives it.

**Setting.** A batch holds :math:`B` (query, item) pairs drawn independently from the
training log, so the item of a batch row is a draw from the per-draw item distribution
:math:`q_b` (duplicates possible). The :math:`K` extra items come from a sampler with
per-draw probability :math:`q_s` (:mod:`refloss.samplers`), with replacement or unique.
Row :math:`i`'s negatives are the :math:`B - 1` other batch items and the :math:`K` sampled
items, accidental hits (columns holding row :math:`i`'s own item) removed.

**Derivation.** The softmax of row :math:`i` over all items has the normaliser
:math:`Z_i = \sum_y e^{s(x_i, y)}`. If :math:`E(y)` is the expected number of times item
:math:`y` occurs among the row's negative columns :math:`c_j`, then

.. math::

    \mathbb{E}\Bigl[\sum_{j \in \text{neg}(i)} \frac{e^{s(x_i, c_j)}}{E(c_j)}\Bigr]
    = \sum_{y \ne y_i} E(y)\, \frac{e^{s(x_i, y)}}{E(y)} = \sum_{y \ne y_i} e^{s(x_i, y)}

by linearity of expectation (the sums run over the items that can be drawn,
:math:`E(y) > 0`; the positive's own item is not a negative), so subtracting
:math:`\log E(c_j)` from each logit turns the sampled denominator into an estimate of the
full one. The other batch rows are :math:`B - 1` independent draws from :math:`q_b`, and
the sampler contributes its expected count :math:`E_s`:

.. math::

    E(y) = (B - 1)\, q_b(y) + E_s(y), \qquad
    E_s(y) = \begin{cases}
        K\, q_s(y) & \text{with replacement,} \\
        1 - (1 - q_s(y))^{T} & \text{unique, in } T \text{ draws.}
    \end{cases}

A constant factor on :math:`E` adds the same constant to every logit of a row and cancels
in its softmax, so dividing by the number of negative draws :math:`n = B - 1 + K` changes
nothing but makes the result a probability (for draws with replacement it sums to 1: the
distribution of one negative slot), which the correction's clip at ``min_probability``
treats like any other:

.. math::

    q^*(y) = \frac{E(y)}{B - 1 + K} = p\, q_b(y) + (1 - p)\, \frac{E_s(y)}{K},
    \qquad p = \frac{B - 1}{B - 1 + K},

a mixture of the two distributions weighted by the number of draws from each. With
replacement :math:`E_s / K = q_s`. Counting all :math:`B` batch columns instead
(``count_positive=True``) gives :math:`p = B / (B + K)`, the form in which the correction
is usually quoted; see :func:`mixed_negative_probability`, Notes.

:func:`mixed_negative_probability` computes :math:`q^*` for the ``N`` columns, ready for
``retrieval_loss(..., candidate_sampling_probability=q)``.

References
----------
.. [1] J. Yang, X. Yi, D. Z. Cheng, L. Hong, Y. Li, S. Wang, T. Xu, E. H. Chi, "Mixed
   Negative Sampling for Learning Two-tower Neural Networks in Recommendations",
   Companion Proceedings of the Web Conference (WWW) 2020.
.. [2] X. Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
   Recommendations", RecSys 2019 (in-batch softmax with the logQ correction).
.. [3] Y. Bengio, J.-S. Senécal, "Adaptive Importance Sampling to Accelerate Training of a
   Neural Probabilistic Language Model", IEEE Trans. Neural Networks 19(4), 2008.
"""

from __future__ import annotations

from ._lib import _validation as v
from ._lib._typing import Array, ArrayNamespace
from .samplers import Sampler

__all__ = ["mixed_negative_probability"]


def _check_sampler(sampler: object) -> Sampler:
    if not isinstance(sampler, Sampler):
        msg = (
            "sampler must be a refloss.samplers sampler (samplers.uniform, "
            f"samplers.log_uniform or samplers.unigram), got {type(sampler).__name__} "
            f"{sampler!r}"
        )
        raise TypeError(msg)
    return sampler


def _check_num_batch(num_batch: object, num_cols: int) -> int:
    """Return ``num_batch`` as an int; raise unless ``1 <= num_batch < N``."""
    expected = f"an integer in [1, N - 1] = [1, {num_cols - 1}] (N = {num_cols} columns)"
    number = v.integer_at_least("num_batch", num_batch, expected=expected, low=None)
    if not 1 <= number < num_cols:
        msg = (
            f"num_batch must lie in [1, N - 1] = [1, {num_cols - 1}]: the first num_batch of "
            f"the N = {num_cols} columns are the batch's items and at least one sampled "
            f"column must follow them, got num_batch = {number}"
        )
        if number == num_cols:
            msg += (
                "; with no sampled column the correction is batch_probability itself, "
                "pass it to retrieval_loss directly"
            )
        raise ValueError(msg)
    return number


def mixed_negative_probability(
    batch_probability: Array,
    candidate_ids: Array,
    /,
    *,
    sampler: Sampler,
    num_batch: int,
    unique: bool = False,
    num_tries: int | None = None,
    count_positive: bool = False,
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Per-column sampling probability for batch negatives mixed with sampled negatives.

    The ``N`` columns of a ``retrieval_loss`` call are the ``B = num_batch`` items of the
    batch followed by ``K = N - B`` items drawn from ``sampler``. Returns, per column, the
    probability :math:`q^*_j` to pass as ``candidate_sampling_probability``: the expected
    number of times the column's item occurs among a row's negatives, divided by the
    number of negative draws.

    Parameters
    ----------
    batch_probability : array, shape (N,), float32 or float64
        :math:`q_b(y_j) \in [0, 1]`: for every column (the batch's and the sampled ones
        alike), the probability that one batch row holds that column's item, the per-draw
        probability (e.g. ``count(item) / num_interactions``). Not the probability that
        the item appears somewhere in a batch: see Notes.
    candidate_ids : array, shape (N,), integer
        The item of each column, as ids of ``sampler`` (in ``[0, sampler.range_max)``):
        first the ``num_batch`` batch items, then the ``K`` sampled ones.
    sampler : refloss.samplers.Sampler
        The sampler the ``K`` extra items were drawn from (``samplers.uniform(R)`` for the
        uniform index sampling of the paper, ``samplers.log_uniform``,
        ``samplers.unigram``).
    num_batch : int
        :math:`B`, the number of batch columns, in ``[1, N - 1]``.
    unique : bool, default False
        Whether the ``K`` items were drawn without repeats
        (``sampler.sample(K, unique=True, ...)``).
    num_tries : int, optional
        Required when ``unique``, and only then: :math:`T \ge K`, the number of draws the
        unique draw took (``SampledValues.num_tries``).
    count_positive : bool, default False
        False: count the :math:`B - 1` batch items that are a row's negatives,
        :math:`p = (B - 1)/(B - 1 + K)`. True: count all :math:`B` batch columns, the
        row's own positive included, :math:`p = B / (B + K)` (the form in which the
        correction is usually quoted). Notes compares the two.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array, shape (N,)
        :math:`q^*_j \in [0, 1]`, in the namespace, dtype and device of
        ``batch_probability`` (computed in float64 where the library has it).

    Raises
    ------
    TypeError
        If an argument is not an array, the arrays come from different libraries,
        ``batch_probability`` is not float32 or float64, ``candidate_ids`` is not integer,
        ``sampler`` is not a refloss sampler, ``num_batch`` or ``num_tries`` is not an
        integer, or ``unique`` or ``count_positive`` is not a bool.
    ValueError
        If a shape is wrong, ``num_batch`` lies outside ``[1, N - 1]``, a probability is
        NaN or outside ``[0, 1]``, an id lies outside the sampler's range (value checks
        read one boolean to the host and are skipped under ``jax.jit``), ``num_tries`` is
        missing or below ``K`` for a unique draw or given for one that is not unique, or
        the arrays are on different devices.

    Notes
    -----
    Row :math:`i`'s negatives are :math:`B - 1` draws from :math:`q_b` (the other batch
    rows) and the sampled items, whose expected count is :math:`E_s` (``K q_s`` with
    replacement, :math:`1 - (1 - q_s)^T` for a unique draw of :math:`T` tries; see
    :meth:`refloss.samplers.Sampler.expected_count`). Subtracting the log of the expected
    count of each column's item makes the sampled softmax denominator an unbiased estimate
    of the full one, up to a constant factor that cancels in the row's softmax (module
    docstring); dividing by the number of draws makes it a probability:

    .. math::

        q^*_j = \frac{n_b\, q_b(y_j) + E_s(y_j)}{n_b + K}
              = p\, q_b(y_j) + (1 - p)\, \frac{E_s(y_j)}{K},
        \qquad p = \frac{n_b}{n_b + K},

    with :math:`n_b = B - 1` (default) or :math:`n_b = B` (``count_positive=True``). The
    value lies in :math:`[0, 1]` since :math:`E_s \le K`.

    *Why* :math:`B - 1`. A column is the positive of one row and a negative of the other
    :math:`B - 1` rows (a sampled column, of all :math:`B`); one vector corrects it for
    all of them. As a negative of row :math:`i`, item :math:`y \ne y_i` occurs on average
    :math:`(B - 1) q_b(y) + E_s(y)` times, exactly, accidental hits removed or not.
    Counting :math:`B` batch draws over-weights the batch part by :math:`B / (B - 1)`;
    the difference is :math:`O(1/B)`. With :math:`K = 0` both are proportional to
    :math:`q_b`, which is why the in-batch correction never had to choose. On a Zipf
    corpus (``docs/mixed-negatives.md``) the expected gradient of the loss is closer to
    the full softmax with :math:`B - 1`.

    *Per-draw, not per-batch.* :math:`q_b` must be on the same scale as :math:`q_s`:
    both are probabilities of one draw. The probability that an item appears at least
    once in a batch, :math:`\pi = 1 - (1 - q_b)^B \approx B q_b` (what a streaming
    frequency estimator of the gap between batches containing the item measures), is
    about :math:`B` times larger for tail items and saturates at 1 for head items; passed
    as :math:`q_b` it tilts the mixture toward the batch part. Convert it first with
    :math:`q_b = 1 - (1 - \pi)^{1/B}`.

    *Unique draws from a uniform sampler.* A draw of :math:`K` distinct items from a
    uniform sampler is a uniformly random subset: each item is in it with probability
    exactly :math:`K / R`, whatever :math:`T` was, which is the with-replacement count
    :math:`K q_s`. Pass ``unique=False`` for it; ``unique=True`` gives the conventional
    estimate :math:`1 - (1 - 1/R)^T` of TensorFlow's samplers. For other samplers the
    unique count is the one to use.

    *The positive.* ``retrieval_loss`` corrects every column, the positive included, with
    the same :math:`q^*` (the TFRS convention); an exact estimate of the denominator would
    count the positive once, uncorrected. Changing :math:`B` or :math:`K` from one step
    to the next changes :math:`p`: compute :math:`q^*` for each step from its own shapes.

    References
    ----------
    .. [1] J. Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks
       in Recommendations", WWW 2020 Companion.
    .. [2] X. Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
       Recommendations", RecSys 2019.

    Examples
    --------
    Two batch items then two items drawn uniformly (with replacement) from an index of 4;
    ``q_b`` is each column item's share of the training log. Each row sees one other batch
    item and the two sampled ones, so :math:`p = 1/3` and
    :math:`q^* = q_b / 3 + (2/3)(1/4)`:

    >>> import array_api_strict as xp
    >>> from refloss import samplers
    >>> from refloss.mixed_negatives import mixed_negative_probability
    >>> q_b = xp.asarray([0.5, 0.3, 0.2, 0.5])
    >>> ids = xp.asarray([0, 1, 3, 0])
    >>> q = mixed_negative_probability(q_b, ids, sampler=samplers.uniform(4), num_batch=2)
    >>> [round(float(x), 6) for x in q]
    [0.333333, 0.266667, 0.233333, 0.333333]
    """
    xp = v.resolve_namespace(
        {"batch_probability": batch_probability, "candidate_ids": candidate_ids}, xp=xp
    )
    v.check_floating("batch_probability", batch_probability, xp=xp)
    v.check_rank("batch_probability", batch_probability, 1, "(one per candidate column N)")
    num_cols = int(batch_probability.shape[0])
    v.check_integer_dtype("candidate_ids", candidate_ids, xp=xp)
    v.check_shape(
        "candidate_ids", candidate_ids, (num_cols,), "one item id per column, as batch_probability"
    )
    sampler = _check_sampler(sampler)
    num_batch = _check_num_batch(num_batch, num_cols)
    count_positive = v.check_flag("count_positive", count_positive)
    v.check_same_device({"batch_probability": batch_probability, "candidate_ids": candidate_ids})
    v.check_probability("batch_probability", batch_probability, xp=xp)
    v.check_index_range(
        "candidate_ids",
        candidate_ids,
        sampler.range_max,
        xp=xp,
        what=f"ids of the sampler (range_max = {sampler.range_max})",
    )
    num_sampled = num_cols - num_batch
    # E_s(y_j), float64 in the ids' namespace (float32 under JAX without x64); the sampler
    # validates unique and num_tries
    sampled_count = sampler.expected_count(
        candidate_ids, num_sampled=num_sampled, unique=unique, num_tries=num_tries
    )
    batch_draws = num_batch if count_positive else num_batch - 1
    q_b = xp.astype(batch_probability, sampled_count.dtype)
    # (n_b q_b + E_s) / (n_b + K): numerator <= n_b + K, so the rounded ratio is <= 1
    q = (float(batch_draws) * q_b + sampled_count) / float(batch_draws + num_sampled)
    return xp.astype(q, batch_probability.dtype)
