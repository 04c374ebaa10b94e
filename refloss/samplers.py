r"""Candidate samplers: the proposal distributions of sampled softmax, NCE and mixed negatives.

A *candidate sampler* [1]_ draws a few class ids (the negatives) out of a large range
:math:`[0, R)` from a fixed distribution :math:`P`, and reports, for any id, how many times
it is expected among the draws. Sampled softmax and NCE subtract the logarithm of that
*expected count* from each logit, so that the loss over a few sampled columns estimates the
loss over all :math:`R` columns; mixed negative sampling adds such draws to the in-batch
negatives, with the same correction.

Three distributions, each a small immutable object made by one function:

* :func:`uniform`: :math:`P(k) = 1 / R`.
* :func:`log_uniform` (Zipf-like), for ids sorted by decreasing frequency:

  .. math::

      P(k) = \frac{\log(k + 2) - \log(k + 1)}{\log(R + 1)}
           = \frac{\operatorname{log1p}(1 / (k + 1))}{\operatorname{log1p}(R)}.

  The sum over :math:`k < R` telescopes to :math:`\log(R + 1) / \log(R + 1) = 1`.
* :func:`unigram`: :math:`P(k) = c_k^{\alpha} / \sum_j c_j^{\alpha}` for counts (or
  unnormalised probabilities) :math:`c` and a distortion :math:`\alpha` (0.75 in word2vec's
  negative sampling [2]_; 1 keeps the counts, 0 flattens them to uniform).

Each sampler answers three questions (:class:`Sampler`): ``probability(ids)``,
``expected_count(ids, num_sampled=S, unique=..., num_tries=...)`` and
``sample(S, unique=..., rng=...)``. The first two are array functions: they take integer ids
of any Array API library and return arrays of that library, on the ids' device. Draws
happen on the host, with NumPy.

**Expected count.** With ``unique=False`` the :math:`S` ids are independent draws (with
replacement) and the expected number of occurrences of id :math:`k` is :math:`S\,P(k)`. With
``unique=True`` ids are drawn one at a time and an id drawn before is rejected, until
:math:`S` distinct ids have been drawn; the draw took :math:`T \ge S` tries (``num_tries``,
rejected draws included) and the count reported is

.. math::

    1 - (1 - P(k))^{T} = -\operatorname{expm1}\bigl(T \operatorname{log1p}(-P(k))\bigr),

the probability that :math:`k` appears at least once in :math:`T` independent draws.

TensorFlow's samplers (``tf.random.*_candidate_sampler`` [3]_) use the same definitions, with two
differences in the numbers: they round :math:`P(k)` to float32 and compute the count in
float32 (refloss computes in float64), and for a unique draw in which no duplicate was
rejected (:math:`T = S`) they report :math:`S\,P(k)` instead of the formula above, a
discontinuity in :math:`T`. refloss always reports the formula for ``unique=True``; to
reproduce TensorFlow's value in that case, pass ``unique=False``. TensorFlow's random
numbers (Philox) are not reproduced: for parity, feed TensorFlow's sampled ids (and the
:math:`T` they took) to :meth:`Sampler.expected_count`.

References
----------
.. [1] S. Jean, K. Cho, R. Memisevic, Y. Bengio, "On Using Very Large Target Vocabulary
   for Neural Machine Translation", ACL 2015.
.. [2] T. Mikolov, I. Sutskever, K. Chen, G. Corrado, J. Dean, "Distributed
   Representations of Words and Phrases and their Compositionality", NeurIPS 2013
   (negative sampling from the unigram distribution raised to the power 3/4).
.. [3] TensorFlow API documentation, ``tf.random.uniform_candidate_sampler``,
   ``tf.random.log_uniform_candidate_sampler``, ``tf.random.fixed_unigram_candidate_sampler``.

Examples
--------
>>> import numpy as np
>>> from refloss import samplers
>>> sampler = samplers.log_uniform(1000)
>>> draw = sampler.sample(5, unique=True, rng=np.random.default_rng(0))
>>> draw.candidates.shape, bool(draw.num_tries >= 5)
((5,), True)
"""

from __future__ import annotations

import abc
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ._lib import _validation as v
from ._lib._compat import array_namespace, device
from ._lib._typing import Array, ArrayNamespace

__all__ = [
    "LogUniformSampler",
    "SampledValues",
    "Sampler",
    "UniformSampler",
    "UnigramSampler",
    "log_uniform",
    "uniform",
    "unigram",
]

# the largest batch of draws held at once by a unique draw (it loops for more)
_MAX_BATCH = 1 << 20


class SampledValues(NamedTuple):
    """The result of :meth:`Sampler.sample`, NumPy arrays on the host.

    Attributes
    ----------
    candidates : numpy.ndarray, int64, shape (S,)
        The sampled ids; for a unique draw, distinct and in the order first drawn.
    num_tries : int
        The number of draws made, rejected duplicates included (``S`` when not unique).
    sampled_expected_count : numpy.ndarray, float64, shape (S,)
        ``expected_count(candidates, num_sampled=S, unique=unique, num_tries=...)``.
    """

    candidates: np.ndarray
    num_tries: int
    sampled_expected_count: np.ndarray


class Sampler(abc.ABC):
    """A distribution over the ids ``[0, range_max)``, to draw candidates from.

    Made by :func:`uniform`, :func:`log_uniform` or :func:`unigram`. A subclass gives the
    formula of :math:`P(k)` on an array, a host-side draw and the number of ids that can be
    drawn; this base class validates arguments and derives the expected counts and unique
    draws from them.
    """

    range_max: int

    def probability(self, ids: Array | int | list[int]) -> Array:
        r"""The probability :math:`P(k)` of drawing each id in one draw.

        Parameters
        ----------
        ids : array of integers, any shape, or a Python int or list
            Ids in ``[0, range_max)``, an array of any Array API library (a Python int or
            list becomes a NumPy array).

        Returns
        -------
        array, float64, shape of ``ids``
            Of the ids' library and device. Under JAX without ``jax_enable_x64`` the dtype
            is float32, the widest that JAX then has.

        Raises
        ------
        TypeError
            If ``ids`` does not have an integer dtype.
        ValueError
            If an id lies outside ``[0, range_max)`` (checked when the ids can be read
            eagerly; not inside ``jax.jit``).

        Examples
        --------
        >>> from refloss import samplers
        >>> samplers.uniform(4).probability([0, 3])
        array([0.25, 0.25])
        """
        ids, xp = _as_ids(ids)
        _check_ids_in_range(ids, self.range_max, xp=xp)
        return self._probability(ids, dtype=_widest_float(ids, xp=xp), xp=xp)

    def expected_count(
        self,
        ids: Array | int | list[int],
        *,
        num_sampled: int,
        unique: bool,
        num_tries: int | None = None,
    ) -> Array:
        r"""The expected count of each id in a draw of ``num_sampled`` candidates.

        Parameters
        ----------
        ids : array of integers, any shape, or a Python int or list
            Ids in ``[0, range_max)``, as in :meth:`probability`.
        num_sampled : int
            :math:`S \ge 1`, the number of candidates drawn.
        unique : bool
            Whether the draw rejected ids drawn before (``sample(..., unique=True)``).
        num_tries : int, optional
            Required when ``unique``, and only then: :math:`T \ge S`, the number of draws
            the unique draw took, rejected duplicates included
            (:attr:`SampledValues.num_tries`).

        Returns
        -------
        array, float64, shape of ``ids``
            Of the ids' library and device (float32 under JAX without x64).

        Raises
        ------
        TypeError
            If ``ids`` is not integer, ``num_sampled`` or ``num_tries`` is not an integer,
            or ``unique`` is not a bool.
        ValueError
            If an id is out of range, ``num_sampled < 1``, ``num_tries`` is missing or
            below ``num_sampled`` for a unique draw, or given for a draw that is not unique.

        Notes
        -----
        With replacement (``unique=False``), the expected number of occurrences of
        :math:`k` among :math:`S` independent draws:

        .. math::

            E_k = S\,P(k).

        For a unique draw, the probability that :math:`k` appears at least once in
        :math:`T` independent draws,

        .. math::

            E_k = 1 - (1 - P(k))^{T}
                = -\operatorname{expm1}\bigl(T \operatorname{log1p}(-P(k))\bigr),

        computed in this form to keep its digits when :math:`P(k)` is tiny. Because
        :math:`T` is itself decided by the draws (they stop at the :math:`S`-th distinct
        id), this is the conventional estimate of the inclusion probability given
        :math:`T`, not its exact value.

        TensorFlow computes these counts from :math:`P(k)` rounded to float32, in float32
        arithmetic; refloss computes in float64. For a unique draw with no rejected
        duplicate (:math:`T = S`), TensorFlow reports :math:`S\,P(k)` instead of the
        inclusion probability, a discontinuity in :math:`T`; refloss always reports the
        inclusion probability when ``unique=True``. To reproduce TensorFlow's value for
        such a draw, pass ``unique=False``.

        Examples
        --------
        >>> from refloss import samplers
        >>> sampler = samplers.uniform(4)
        >>> sampler.expected_count([0, 1], num_sampled=2, unique=False)
        array([0.5, 0.5])
        >>> sampler.expected_count([2], num_sampled=2, unique=True, num_tries=2)  # 1 - 0.75**2
        array([0.4375])
        """
        num_sampled, num_tries = _check_draw_size(num_sampled, unique, num_tries)
        p = self.probability(ids)
        if not unique:
            return p * float(num_sampled)
        xp = array_namespace(p)
        # "double where": log1p never sees -1 (P = 1, a single id that can be drawn)
        certain = p == 1.0
        safe_p = xp.where(certain, 0.0, p)
        return xp.where(certain, 1.0, -xp.expm1(float(num_tries) * xp.log1p(-safe_p)))

    def sample(
        self, num_sampled: int, *, unique: bool, rng: np.random.Generator | int
    ) -> SampledValues:
        r"""Draw ``num_sampled`` candidates, on the host with NumPy.

        Parameters
        ----------
        num_sampled : int
            :math:`S \ge 1`, the number of candidates.
        unique : bool
            False: :math:`S` independent draws (with replacement). True: ids are drawn one
            at a time and an id drawn before is rejected, until :math:`S` distinct ids have
            been drawn; :math:`S` must not exceed the number of ids of nonzero probability.
        rng : numpy.random.Generator or int
            The source of randomness, or an int seed for ``numpy.random.default_rng``.

        Returns
        -------
        SampledValues
            ``(candidates, num_tries, sampled_expected_count)``: int64 ids of shape
            ``(S,)`` (for a unique draw, in the order first drawn), the number of draws made
            (rejected ones included) and the float64 expected count of each candidate
            (:meth:`expected_count`).

        Raises
        ------
        TypeError
            If ``rng`` is neither a ``numpy.random.Generator`` nor an int, or
            ``num_sampled`` is not an integer.
        ValueError
            If ``num_sampled < 1``, or a unique draw asks for more ids than can be drawn.

        Notes
        -----
        The unique draw is computed in batches: a stream of independent draws is made a
        batch at a time, the first occurrence of each id is kept and :math:`T` is the
        position of the draw that completed the :math:`S`-th distinct id. This is the same
        distribution as drawing one at a time with rejection, and a fixed ``rng`` gives a
        fixed result.

        Draws use NumPy's generator, not TensorFlow's (Philox), so they do not reproduce
        TensorFlow's samples: for parity with TensorFlow, pass its sampled ids to
        :meth:`expected_count` instead.

        Examples
        --------
        >>> import numpy as np
        >>> from refloss import samplers
        >>> draw = samplers.uniform(10).sample(3, unique=True, rng=np.random.default_rng(1))
        >>> draw.candidates.dtype, len(set(draw.candidates.tolist()))
        (dtype('int64'), 3)
        >>> bool(np.allclose(draw.sampled_expected_count, 1 - 0.9**draw.num_tries))
        True
        """
        num_sampled = _check_num_sampled(num_sampled)
        _check_unique(unique)
        rng = _as_generator(rng)
        if not unique:
            candidates, num_tries = self._draw(rng, num_sampled), num_sampled
        else:
            candidates, num_tries = self._draw_unique(rng, num_sampled)
        count = self.expected_count(
            candidates,
            num_sampled=num_sampled,
            unique=unique,
            num_tries=num_tries if unique else None,
        )
        return SampledValues(candidates, num_tries, np.asarray(count, dtype=np.float64))

    def _draw_unique(self, rng: np.random.Generator, num_sampled: int) -> tuple[np.ndarray, int]:
        """``(first num_sampled distinct ids in draw order, draws up to the last of them)``."""
        if num_sampled > self._num_drawable:
            msg = (
                f"num_sampled = {num_sampled} distinct ids cannot be drawn: only "
                f"{self._num_drawable} of the {self.range_max} ids have a nonzero probability"
            )
            raise ValueError(msg)
        seen = np.empty(0, dtype=np.int64)  # distinct ids, in the order first drawn
        first = np.empty(0, dtype=np.int64)  # the position of each in the stream of draws
        drawn, batch = 0, num_sampled
        while seen.size < num_sampled:
            stream = self._draw(rng, batch)
            ids, positions = np.unique(stream, return_index=True)
            new = ~np.isin(ids, seen)
            order = np.argsort(positions[new])
            seen = np.concatenate([seen, ids[new][order]])
            first = np.concatenate([first, positions[new][order] + drawn])
            drawn += batch
            batch = min(2 * batch, _MAX_BATCH)
        return seen[:num_sampled], int(first[num_sampled - 1]) + 1

    @property
    @abc.abstractmethod
    def _num_drawable(self) -> int:
        """The number of ids of nonzero probability."""

    @abc.abstractmethod
    def _probability(self, ids: Array, *, dtype: Any, xp: ArrayNamespace) -> Array:
        """:math:`P(k)` of valid integer ids, in ``dtype`` on the ids' device."""

    @abc.abstractmethod
    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent int64 draws."""


@dataclass(frozen=True)
class _RangeSampler(Sampler):
    """A sampler defined by ``range_max`` alone, every id of which can be drawn."""

    range_max: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "range_max", _check_range_max(self.range_max))

    @property
    def _num_drawable(self) -> int:
        return self.range_max


@dataclass(frozen=True)
class UniformSampler(_RangeSampler):
    r"""The uniform distribution :math:`P(k) = 1/R` over ``[0, range_max)``; see :func:`uniform`."""

    def _probability(self, ids: Array, *, dtype: Any, xp: ArrayNamespace) -> Array:
        return xp.full(ids.shape, 1.0 / self.range_max, dtype=dtype, device=device(ids))

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.range_max, size=n, dtype=np.int64)


@dataclass(frozen=True)
class LogUniformSampler(_RangeSampler):
    r"""The log-uniform (Zipf-like) distribution over ``[0, range_max)``: :func:`log_uniform`."""

    def _probability(self, ids: Array, *, dtype: Any, xp: ArrayNamespace) -> Array:
        k = xp.astype(ids, dtype)
        return xp.log1p(1.0 / (k + 1.0)) / math.log1p(self.range_max)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # inverse CDF: P(id <= k) = log(k + 2) / log(R + 1)
        u = rng.random(n)
        k = np.floor(np.exp(u * math.log1p(self.range_max))) - 1.0
        return np.clip(k, 0, self.range_max - 1).astype(np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class UnigramSampler(Sampler):
    r"""The unigram distribution :math:`P(k) \propto c_k^{\alpha}`; see :func:`unigram`.

    Compared by identity. ``probabilities`` is the read-only float64 table of :math:`P`.
    """

    counts_or_probabilities: np.ndarray = field(repr=False)
    distortion: float = 1.0
    range_max: int = field(init=False)
    probabilities: np.ndarray = field(init=False, repr=False)
    _cumulative: np.ndarray = field(init=False, repr=False)
    _last_drawable: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = _check_counts(self.counts_or_probabilities)
        distortion = _check_distortion(self.distortion)
        with np.errstate(over="ignore"):  # an overflow is reported below
            weights = np.power(counts, distortion)  # NumPy's 0.0 ** 0.0 is 1.0
        total = float(np.sum(weights))
        if not (math.isfinite(total) and total > 0):
            msg = (
                f"counts_or_probabilities ** distortion must have a finite, positive sum, "
                f"got {total} with distortion = {distortion}"
            )
            raise ValueError(msg)
        probabilities = weights / total
        cumulative = np.cumsum(probabilities)
        for array in (counts, probabilities, cumulative):
            array.flags.writeable = False
        for name, value in (
            ("counts_or_probabilities", counts),
            ("distortion", distortion),
            ("range_max", int(counts.size)),
            ("probabilities", probabilities),
            ("_cumulative", cumulative),
            ("_last_drawable", int(np.flatnonzero(probabilities)[-1])),
        ):
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"UnigramSampler(range_max={self.range_max}, distortion={self.distortion})"

    @property
    def _num_drawable(self) -> int:
        return int(np.count_nonzero(self.probabilities))

    def _probability(self, ids: Array, *, dtype: Any, xp: ArrayNamespace) -> Array:
        # host-to-device transfer of the table, then a gather
        table = xp.asarray(self.probabilities, dtype=dtype, device=device(ids), copy=True)
        flat = xp.take(table, xp.reshape(ids, (-1,)), axis=0)
        return xp.reshape(flat, ids.shape)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # inverse CDF: the id k with cumulative[k - 1] <= u < cumulative[k]
        u = rng.random(n) * self._cumulative[-1]
        k = np.searchsorted(self._cumulative, u, side="right")
        # u * total may round up to the total: that draw goes to the last id that can be drawn
        return np.minimum(k, self._last_drawable).astype(np.int64)


def uniform(range_max: int) -> UniformSampler:
    r"""The uniform candidate sampler over ``[0, range_max)``.

    Parameters
    ----------
    range_max : int
        :math:`R \ge 1`, the number of ids.

    Returns
    -------
    UniformSampler
        An immutable :class:`Sampler` with :math:`P(k) = 1/R`.

    Raises
    ------
    TypeError
        If ``range_max`` is not an integer.
    ValueError
        If ``range_max < 1``.

    Notes
    -----
    .. math::

        P(k) = \frac{1}{R}, \qquad k \in [0, R).

    Examples
    --------
    >>> from refloss import samplers
    >>> samplers.uniform(8)
    UniformSampler(range_max=8)
    >>> samplers.uniform(8).probability(3)
    array(0.125)
    """
    return UniformSampler(range_max)


def log_uniform(range_max: int) -> LogUniformSampler:
    r"""The log-uniform (Zipf-like) candidate sampler over ``[0, range_max)``.

    Suited to ids sorted by decreasing frequency (id 0 the most frequent), as a word
    vocabulary usually is.

    Parameters
    ----------
    range_max : int
        :math:`R \ge 1`, the number of ids.

    Returns
    -------
    LogUniformSampler
        An immutable :class:`Sampler`.

    Raises
    ------
    TypeError
        If ``range_max`` is not an integer.
    ValueError
        If ``range_max < 1``.

    Notes
    -----
    .. math::

        P(k) = \frac{\log(k + 2) - \log(k + 1)}{\log(R + 1)}, \qquad k \in [0, R),

    computed as :math:`\operatorname{log1p}(1/(k+1)) / \operatorname{log1p}(R)`. Draws invert
    the cumulative distribution :math:`F(k) = \log(k + 2) / \log(R + 1)`: with :math:`U`
    uniform on :math:`[0, 1)`, :math:`k = \lfloor e^{U \log(R + 1)} \rfloor - 1`. In float32
    (JAX without x64), ids above :math:`2^{24}` lose digits.

    Examples
    --------
    >>> import math
    >>> from refloss import samplers
    >>> p = samplers.log_uniform(100).probability([0, 99])
    >>> bool(abs(p[0] - math.log(2) / math.log(101)) < 1e-16)
    True
    """
    return LogUniformSampler(range_max)


def unigram(counts_or_probabilities: Any, *, distortion: float = 1.0) -> UnigramSampler:
    r"""The unigram candidate sampler: ids drawn in proportion to a power of their counts.

    Parameters
    ----------
    counts_or_probabilities : 1-D array-like of real numbers >= 0
        :math:`c_k`, one entry per id (so ``range_max = len(c)``): counts, integer or
        float, or probabilities (which are counts too: they are normalised). Read on the
        host with ``numpy.asarray``. Not all zero.
    distortion : float, default 1.0
        :math:`\alpha \ge 0`, the power the counts are raised to.

    Returns
    -------
    UnigramSampler
        An immutable :class:`Sampler`; its ``probabilities`` attribute is the float64
        table of :math:`P`.

    Raises
    ------
    TypeError
        If ``counts_or_probabilities`` is not real, or ``distortion`` is not a real number.
    ValueError
        If ``counts_or_probabilities`` is not 1-D, is empty, has a negative, NaN or
        infinite entry or is all zero, or ``distortion`` is negative or not finite.

    Notes
    -----
    .. math::

        P(k) = \frac{c_k^{\alpha}}{\sum_j c_j^{\alpha}}, \qquad k \in [0, \operatorname{len}(c)),

    with :math:`0^0 = 1`: ``distortion=0`` gives every id, zero counts included, the same
    probability. Otherwise an id of count 0 is never drawn. word2vec draws its negatives
    with :math:`\alpha = 0.75`.

    :meth:`Sampler.probability` looks ids up in the table: each call copies the float64
    table (``range_max`` entries) to the ids' library and device with ``xp.asarray`` (a
    host-to-device transfer on an accelerator), then gathers with ``xp.take``. Draws invert
    the cumulative table with ``numpy.searchsorted``.

    Examples
    --------
    >>> from refloss import samplers
    >>> sampler = samplers.unigram([1, 4, 9, 0], distortion=0.5)
    >>> sampler
    UnigramSampler(range_max=4, distortion=0.5)
    >>> sampler.probability([0, 1, 2, 3]) * 6
    array([1., 2., 3., 0.])
    """
    return UnigramSampler(counts_or_probabilities, distortion)


def _as_ids(ids: Array | int | list[int]) -> tuple[Array, ArrayNamespace]:
    """``ids`` as an integer array and its namespace; a Python int or list becomes NumPy."""
    try:
        xp = array_namespace(ids)
    except TypeError:
        ids = np.asarray(ids)
        xp = array_namespace(ids)
    if not xp.isdtype(ids.dtype, "integral"):
        msg = f"ids must have an integer dtype (ids in [0, range_max)), got {ids.dtype}"
        raise TypeError(msg)
    return ids, xp


def _check_ids_in_range(ids: Array, range_max: int, *, xp: ArrayNamespace) -> None:
    """Raise ``ValueError`` if an id lies outside ``[0, range_max)`` (when readable eagerly)."""
    outside = ids < 0
    if range_max <= xp.iinfo(ids.dtype).max:  # else no id of this dtype reaches range_max
        outside = outside | (ids >= range_max)
    if v.read_flag(xp.any(outside)):
        lo, hi = int(xp.min(ids)), int(xp.max(ids))
        msg = f"ids must lie in [0, {range_max}) (range_max = {range_max}), got ids in [{lo}, {hi}]"
        raise ValueError(msg)


def _widest_float(ids: Array, *, xp: ArrayNamespace) -> Any:
    """float64, or float32 where the library has no float64 (JAX without x64)."""
    floats = xp.__array_namespace_info__().dtypes(kind="real floating", device=device(ids))
    return floats.get("float64", floats["float32"])


def _check_range_max(range_max: object) -> int:
    return v.integer_at_least(
        "range_max", range_max, expected="an integer >= 1", meaning=" (the number of ids)"
    )


def _check_num_sampled(num_sampled: object) -> int:
    return v.integer_at_least(
        "num_sampled", num_sampled, expected="an integer >= 1", meaning=" (candidates drawn)"
    )


def _check_unique(unique: object) -> None:
    if not isinstance(unique, bool | np.bool_):
        msg = f"unique must be a bool, got {type(unique).__name__} {unique!r}"
        raise TypeError(msg)


def _check_draw_size(
    num_sampled: object, unique: object, num_tries: object
) -> tuple[int, int | None]:
    """Validate ``(num_sampled, unique, num_tries)`` of :meth:`Sampler.expected_count`."""
    num_sampled = _check_num_sampled(num_sampled)
    _check_unique(unique)
    if not unique:
        if num_tries is not None:
            msg = (
                f"num_tries is only meaningful for unique draws (unique=True), got "
                f"num_tries={num_tries!r} with unique=False; omit it"
            )
            raise ValueError(msg)
        return num_sampled, None
    if num_tries is None:
        msg = (
            "num_tries is required when unique=True: the number of draws the unique draw "
            "took, rejected duplicates included (SampledValues.num_tries)"
        )
        raise ValueError(msg)
    num_tries = v.integer_at_least("num_tries", num_tries, expected="an integer >= num_sampled")
    if num_tries < num_sampled:
        msg = (
            f"num_tries must be >= num_sampled = {num_sampled} (a unique draw of "
            f"{num_sampled} ids takes at least {num_sampled} draws), got {num_tries}"
        )
        raise ValueError(msg)
    return num_sampled, num_tries


def _as_generator(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool | np.bool_):
        return np.random.default_rng(int(rng))
    msg = f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__} {rng!r}"
    raise TypeError(msg)


def _check_counts(counts: object) -> np.ndarray:
    """``counts_or_probabilities`` as a fresh 1-D float64 array of finite values >= 0, not all 0."""
    name = "counts_or_probabilities"
    array = np.asarray(counts)
    if array.dtype.kind not in "iuf":
        msg = f"{name} must hold real numbers (integer or float), got dtype {array.dtype}"
        raise TypeError(msg)
    if array.ndim != 1:
        msg = f"{name} must be 1-D (one entry per id), got shape {array.shape}"
        raise ValueError(msg)
    if array.size == 0:
        msg = f"{name} must have at least one entry (range_max >= 1), got an empty array"
        raise ValueError(msg)
    array = np.array(array, dtype=np.float64)
    bad = ~(np.isfinite(array) & (array >= 0))
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        msg = f"{name} must be finite and >= 0, got {array[k]} at index {k}"
        raise ValueError(msg)
    if not np.any(array > 0):
        msg = f"{name} must have a positive entry, got all {array.size} entries zero"
        raise ValueError(msg)
    return array


def _check_distortion(distortion: object) -> float:
    if not v.is_python_real(distortion):
        msg = (
            f"distortion must be a real number >= 0, got {type(distortion).__name__} {distortion!r}"
        )
        raise TypeError(msg)
    value = float(distortion)
    if not (math.isfinite(value) and value >= 0):
        msg = f"distortion must be finite and >= 0, got {value!r}"
        raise ValueError(msg)
    return value
