r"""Streaming item-frequency estimation: the sampling probability that the logQ correction needs.

The logQ correction of an in-batch softmax subtracts :math:`\log p_j` from the logit of
candidate :math:`j`, where :math:`p_j` is the probability that item :math:`j` appears in a
training batch (``candidate_sampling_probability`` of :func:`refloss.retrieval_loss`). In a
stream of batches with no fixed vocabulary these probabilities are not known in advance.
This module estimates them online from the ids of the batches seen so far, in memory fixed
in advance, with the estimator of Yi et al. [1]_ (their Algorithms 2 and 3): for each id,
the mean number of steps between two batches that contain it, :math:`\delta`, is tracked
by an exponential moving average, and :math:`\hat p = 1 / \hat\delta`.

**State.** Ids are hashed by :math:`H` independent hash functions :math:`h_i` into
:math:`M` buckets each (:func:`buckets`). For every hash :math:`i` and bucket :math:`b`,
:math:`A_i[b]` is the last step at which the bucket was hit (0: never) and :math:`B_i[b]`
the estimated mean number of steps between two hits (:class:`FrequencyState`).

**Update (Algorithm 2).** At global step :math:`t`, with the set of ids
:math:`\mathcal{B}_t` of the batch, every bucket hit in this step,
:math:`b \in \{h_i(y) : y \in \mathcal{B}_t\}`, is updated once, from its state before
the step:

.. math::

    B_i[b] \leftarrow (1 - \alpha)\, B_i[b] + \alpha\, (t - A_i[b]), \qquad
    A_i[b] \leftarrow t,

with the learning rate :math:`\alpha \in (0, 1]` (:func:`update`).

**Read (Algorithm 3).** The largest gap over the hashes:

.. math::

    \hat p(y) = \operatorname{clip}\Bigl(\frac{1}{\max_i B_i[h_i(y)]},\;
    p_\text{min},\; 1\Bigr)

(:func:`probability`). Ids that collide in a bucket share its hits, so each bucket's gap
under-estimates the gap of each of its ids; the largest of the :math:`H` estimates is the
least contaminated one, as in a count-min sketch [2]_.

Pinned choices
--------------
Each of these changes the numbers; refloss fixes them as follows.

* **Initialisation.** :math:`A = 0` and :math:`B` = ``initial_gap`` (100 by default, the
  value of the paper's simulation), rounded to the state's dtype.
* **First sighting.** A bucket with :math:`A = 0` has never been hit. With
  ``first_sighting="update"`` (the default, the formula read literally) its first gap is
  counted from step 0: :math:`B \leftarrow (1 - \alpha) B + \alpha t`, a long gap for an
  item first seen late in training. With ``"record"`` only :math:`A \leftarrow t` is
  done and :math:`B` keeps its prior value.
* **One update per bucket and step.** :math:`p` is the probability that an item is *in*
  a batch, so an id repeated in a batch counts once, and a bucket hit by several ids of
  one batch (repeats, or different ids that collide) is updated once. (Applying the
  formula once per occurrence would give a repeat a gap of 0 and drag :math:`B` towards
  0.) The estimate saturates at 1: an item present in every batch reaches :math:`B = 1`
  however many times it occurs per batch. The update gathers :math:`A` and :math:`B` at
  the buckets, computes every new value from the state before the step, and writes them
  back; a bucket listed twice receives the same value twice. No data-dependent shapes
  are involved (no ``unique``), so :func:`update` can be traced by ``jax.jit``.
* **Read after update.** At step :math:`t`, call :func:`update` with the batch, then
  :func:`probability` for the batch's candidates. The estimate then includes the batch
  being corrected: an item seen for the first time already moves away from the prior
  :math:`1/B_0`, and an item seen every step tends to 1 (never above it).
* **Unseen ids** read :math:`1/B_0` (``1 / initial_gap``), clipped, unless they collide
  with an id seen before.
* **Clipping** to :math:`[p_\text{min}, 1]`, with ``min_probability`` = :math:`10^{-6}`
  by default, the floor of the logQ correction. The upper clip matters when
  ``initial_gap < 1``.
* **The step** :math:`t` is the global number of batches consumed, an integer that
  increases strictly from one update to the next (it may skip values) and is never reset
  (resetting it each epoch while :math:`A` persists would produce negative gaps).
  :func:`update` raises when it does not increase. It is stored as an int64, exact up to
  :math:`2^{63}`; a float32 step counter is exact only up to :math:`2^{24}` (about 16.8
  million steps), after which gaps round. In data-parallel training, gather the ids of
  all replicas and update once per global step.
* **Several hashes** take the maximum gap (the minimum probability), as above. Memory is
  :math:`16\,H M` bytes in float64.

The hash
--------
Ids are int64 values (any, negative included; other integer dtypes are converted to int64
first; strings are mapped to int64 by :func:`string_ids`). All arithmetic below is on
64-bit two's complement integers, modulo :math:`2^{64}`; :math:`\oplus` is bitwise XOR and
:math:`\ggg` the *logical* right shift (zeros enter from the left). Bucket :math:`h_i(y)`
of id :math:`y` under seed :math:`s_i`, for :math:`1 \le M \le 2^{32}` buckets:

.. code-block:: text

    z = y XOR s_i
    z = (z XOR (z >>> 30)) * 0xBF58476D1CE4E5B9    mod 2**64
    z = (z XOR (z >>> 27)) * 0x94D049BB133111EB    mod 2**64
    z =  z XOR (z >>> 31)
    h = ((z >>> 32) * M) >>> 32

The three middle lines are the output function of SplitMix64 [3]_, a bijection of 64-bit
words that spreads every input bit over the output; the last line maps the high 32 bits
of :math:`z` to :math:`[0, M)` by a multiplication and a shift [4]_ (:math:`\lfloor
h_{32} M / 2^{32} \rfloor`, with a bias below :math:`M / 2^{32}` between buckets), which is
why :math:`M \le 2^{32}`. The :math:`H` seeds are the first :math:`H` outputs of SplitMix64
seeded with ``seed``: :math:`s_i = \operatorname{mix}\bigl((\text{seed} + (i + 1)\,
\gamma) \bmod 2^{64}\bigr)`, :math:`\gamma` = ``0x9E3779B97F4A7C15``, mix the three middle
lines above; with ``seed=0``, :math:`s_0` = ``0xE220A8397B1DCDAF`` and :math:`s_1` =
``0x6E789E6AA1B965F4``.

Array libraries have int64 but not always uint64, so the hash is computed on int64 arrays:
int64 multiplication wraps modulo :math:`2^{64}` in NumPy, CuPy, PyTorch, JAX and
array-api-strict (refloss relies on this and its tests check it on each), constants at or
above :math:`2^{63}` are used as their signed values, and :math:`z \ggg k` is
``(z >> k) & (2**(64 - k) - 1)`` (``>>`` on signed integers fills with the sign bit). The
product :math:`(z \ggg 32) \cdot M` is below :math:`2^{64}`; when it is at least
:math:`2^{63}` it wraps to a negative int64 with the same bits, whose logical shift is
still its high word. The result is identical, bit for bit, on every library.

Worked example: id :math:`y = 42`, ``seed=0`` (so :math:`s_0` = ``0xE220A8397B1DCDAF``),
:math:`M = 1000`:

.. code-block:: text

    z = 0x000000000000002A XOR 0xE220A8397B1DCDAF = 0xE220A8397B1DCD85
    after the first multiplication:                  0x1273EA5B948CEA60
    after the second multiplication:                 0x4579B96031F30D86
    after the last XOR-shift:                        0x4579B960BB007F46
    z >>> 32 = 0x4579B960 = 1165605216;  1165605216 * 1000 >>> 32 = 271

so ``buckets(ids=[42], seeds=[s_0], num_buckets=1000)`` is ``[[271]]``. Under the same seed,
id :math:`-1` (``0xFFFFFFFFFFFFFFFF``) goes to bucket 948.

Analysis
--------
Without collisions, let an item's gaps between hits :math:`\Delta_1, \Delta_2, \dots` be
independent with mean :math:`\delta`, and :math:`B_n` the estimate after its
:math:`n`-th hit, :math:`B_n = (1 - \alpha) B_{n-1} + \alpha \Delta_n` (Proposition 4.1 of
[1]_). Taking expectations, :math:`\mathbb{E}[B_n] - \delta = (1 - \alpha)
(\mathbb{E}[B_{n-1}] - \delta)`, so

.. math::

    \mathbb{E}[B_n] - \delta = (1 - \alpha)^n\, (B_0 - \delta),

the initial error forgotten geometrically. (The paper prints :math:`(1-\alpha)^n B_0 -
(1-\alpha)^{n-1} \delta`, whose second term has one factor :math:`1 - \alpha` fewer; refloss
follows and tests the recursion.) A periodic stream, one hit every :math:`k` steps, gives
exactly :math:`B_n = k + (1 - \alpha)^n (B_0 - k)`. The stationary variance is
:math:`\frac{\alpha}{2 - \alpha} \operatorname{Var} \Delta`; an item present in each batch
independently with probability :math:`q` has geometric gaps,
:math:`\mathbb{E}\Delta = 1/q` and :math:`\operatorname{Var}\Delta = (1 - q)/q^2`. A
smaller :math:`\alpha` lowers the variance; a larger one forgets the prior and follows
drift faster. :math:`\hat p = 1/B` is biased upwards (Jensen) even when :math:`B` is not.

Backends
--------
The functions are pure: :func:`update` returns a new :class:`FrequencyState` and never
writes to its input, so on NumPy, CuPy and PyTorch it copies both tables, :math:`O(HM)`
per step. :class:`FrequencyEstimator` holds its own arrays and updates them in place
where the library allows (NumPy, CuPy, PyTorch), :math:`O(H n)` per batch of :math:`n`
ids. Under ``jax.jit`` the state is a pytree (a ``NamedTuple``) and ``step`` may be traced;
donate the state's buffers to let XLA update them in place. A library without integer-array
assignment (array-api-strict) writes the new values by a sort-and-merge over the whole
table. The state holds int64 arrays, so JAX needs ``jax_enable_x64``.

Buckets are identical on every library. So are states and probabilities, bit for bit, for
the same stream: each new gap is two products and a sum, each rounded, and each
probability one division. Two exceptions: under ``jax.jit``, XLA may fuse a product and
the sum into one fused multiply-add, which rounds once instead of twice (gaps then differ
in their last bits, and not at all when every product is exact, as with a learning rate of
0.5); and JAX on an NVIDIA GPU divides float32 numbers with an error of up to one unit in
the last place, so its float32 probabilities may differ from the correctly rounded ones by
that much.

References
----------
.. [1] X. Yi, J. Yang, L. Hong, D. Z. Cheng, L. Heldt, A. Kumthekar, Z. Zhao, L. Wei,
   E. Chi, "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
   Recommendations", RecSys 2019 (Algorithms 2 and 3, Proposition 4.1).
.. [2] G. Cormode, S. Muthukrishnan, "An improved data stream summary: the count-min
   sketch and its applications", Journal of Algorithms 55(1), 2005.
.. [3] G. L. Steele Jr., D. Lea, C. H. Flood, "Fast splittable pseudorandom number
   generators", OOPSLA 2014 (SplitMix64).
.. [4] D. Lemire, "Fast random integer generation in an interval", ACM Transactions on
   Modeling and Computer Simulation 29(1), 2019.

Examples
--------
Update with each batch, then read the probabilities of its items:

>>> import numpy as np
>>> from refloss import frequency
>>> estimator = frequency.FrequencyEstimator(1 << 16, learning_rate=0.5, initial_gap=3.0)
>>> for batch in ([3, 5], [3], [3, 5, 5]):  # steps 1, 2, 3
...     estimator.update(np.asarray(batch))
>>> estimator.probability(np.asarray([3, 5, 8]))  # gaps 1.25, 2 and 3 (8 never seen)
array([0.8       , 0.5       , 0.33333333])
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import IO, Any, NamedTuple

import array_api_extra as xpx
import numpy as np

from . import _hashing
from ._lib import _validation as v
from ._lib._compat import (
    array_namespace,
    device,
    is_cupy_array,
    is_jax_array,
    is_numpy_array,
    is_torch_array,
)
from ._lib._typing import Array, ArrayNamespace

__all__ = [
    "FrequencyEstimator",
    "FrequencyState",
    "as_namespace",
    "buckets",
    "init",
    "load",
    "probability",
    "save",
    "string_ids",
    "update",
]

FORMAT = "refloss.frequency.FrequencyState"
FORMAT_VERSION = 1
MAX_BUCKETS = 1 << 32
_FIRST_SIGHTING = ("update", "record")
_INT64_MAX = (1 << 63) - 1


class FrequencyState(NamedTuple):
    """The arrays of the estimator, made by :func:`init` and returned by :func:`update`.

    A ``NamedTuple``, hence a JAX pytree: it passes through ``jax.jit`` as it is.

    Attributes
    ----------
    last_step : array, int64, shape (num_hashes, num_buckets)
        :math:`A`: the last step at which each bucket was hit; 0 if never.
    gap : array, float32 or float64, shape (num_hashes, num_buckets)
        :math:`B`: the estimated mean number of steps between two hits of each bucket.
    seeds : array, int64, shape (num_hashes,)
        The seed of each hash function (see :mod:`refloss.frequency`, The hash).
    step : array, int64, shape ()
        The step of the last update; 0 before any.
    """

    last_step: Array
    gap: Array
    seeds: Array
    step: Array

    @property
    def num_hashes(self) -> int:
        """:math:`H`, the number of hash functions."""
        return int(self.last_step.shape[0])

    @property
    def num_buckets(self) -> int:
        """:math:`M`, the number of buckets of each hash function."""
        return int(self.last_step.shape[1])


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _library(x: object) -> str:
    return type(x).__module__.split(".")[0]


def _resolve_xp(xp: ArrayNamespace | None) -> ArrayNamespace:
    """The standard namespace of ``xp`` (NumPy when None), as its arrays report it."""
    if xp is None:
        return array_namespace(np.empty(0))
    try:
        return array_namespace(xp.empty(0))
    except (AttributeError, TypeError):
        msg = f"xp must be an array namespace (numpy, torch, jax.numpy, ...), got {xp!r}"
        raise TypeError(msg) from None


def _require_int64(xp: ArrayNamespace, *, device: Any = None) -> None:
    """Raise ``TypeError`` if ``xp`` has no int64 arrays (JAX without ``jax_enable_x64``)."""
    integers = xp.__array_namespace_info__().dtypes(kind="signed integer", device=device)
    if "int64" not in integers:
        msg = (
            f"refloss.frequency needs int64 arrays (64-bit hashing, exact step counts) and "
            f"{xp.__name__} has none here; with JAX, enable them first with "
            f"jax.config.update('jax_enable_x64', True)"
        )
        raise TypeError(msg)


def _float_dtype(dtype: object, *, xp: ArrayNamespace, device: Any) -> Any:
    """``dtype`` as a float32 or float64 dtype of ``xp``; None: the widest available."""
    floats = xp.__array_namespace_info__().dtypes(kind="real floating", device=device)
    if dtype is None:
        return floats.get("float64", floats["float32"])
    if isinstance(dtype, str):
        if dtype in ("float32", "float64") and dtype in floats:
            return floats[dtype]
    else:
        for name in ("float32", "float64"):
            if name in floats and dtype == floats[name]:
                return floats[name]
    msg = f"dtype must be float32 or float64 of {xp.__name__} (or None: float64), got {dtype!r}"
    raise TypeError(msg)


def _check_num_buckets(num_buckets: object) -> int:
    value = v.integer_at_least(
        "num_buckets",
        num_buckets,
        expected="an integer in [1, 2**32]",
        meaning=" (buckets per hash function)",
    )
    if value > MAX_BUCKETS:
        msg = (
            f"num_buckets must be <= 2**32 = {MAX_BUCKETS}: a bucket is the high 32 bits "
            f"of the product of a 32-bit hash and num_buckets, got {value}"
        )
        raise ValueError(msg)
    return value


def _check_initial_gap(initial_gap: object) -> float:
    if not v.is_python_real(initial_gap):
        msg = f"initial_gap must be a real number > 0, got {type(initial_gap).__name__}"
        raise TypeError(msg)
    value = float(initial_gap)  # type: ignore[arg-type]
    if not (math.isfinite(value) and value > 0):
        msg = (
            f"initial_gap must be finite and > 0 (the prior mean number of steps between "
            f"two hits of a bucket), got {value!r}"
        )
        raise ValueError(msg)
    return value


def _check_first_sighting(first_sighting: object) -> bool:
    """True for ``"record"``, False for ``"update"``."""
    if not isinstance(first_sighting, str) or first_sighting not in _FIRST_SIGHTING:
        msg = f"first_sighting must be 'update' or 'record', got {first_sighting!r}"
        raise ValueError(msg)
    return first_sighting == "record"


def _check_learning_rate(
    learning_rate: object, *, like: Array, xp: ArrayNamespace
) -> float | Array:
    """A Python real in ``(0, 1]``, or a 0-D real array (cast to ``like``'s dtype)."""
    if v.is_python_real(learning_rate):
        value = float(learning_rate)  # type: ignore[arg-type]
        if not 0 < value <= 1:
            msg = f"learning_rate must lie in (0, 1], got {value!r}"
            raise ValueError(msg)
        return value
    try:
        lr_xp = array_namespace(learning_rate)
    except TypeError:
        msg = (
            f"learning_rate must be a real number in (0, 1] or a 0-D array, got "
            f"{type(learning_rate).__name__} {learning_rate!r}"
        )
        raise TypeError(msg) from None
    if lr_xp is not xp or not xp.isdtype(learning_rate.dtype, "real floating"):
        msg = (
            f"learning_rate must be a real number or a 0-D floating array of the state's "
            f"library, got a {_library(learning_rate)} array of dtype {learning_rate.dtype}"
        )
        raise TypeError(msg)
    if tuple(learning_rate.shape) != ():
        msg = f"learning_rate must be 0-D (one value), got shape {tuple(learning_rate.shape)}"
        raise ValueError(msg)
    if v.read_flag(~((learning_rate > 0) & (learning_rate <= 1))):
        msg = f"learning_rate must lie in (0, 1], got {float(learning_rate)!r}"
        raise ValueError(msg)
    return xp.astype(learning_rate, like.dtype)


def _check_state(state: object) -> ArrayNamespace:
    """Validate the arrays of a :class:`FrequencyState`; return their namespace."""
    if not isinstance(state, FrequencyState):
        msg = (
            f"state must be a FrequencyState (made by frequency.init or frequency.load), got "
            f"{type(state).__name__}"
        )
        raise TypeError(msg)
    arrays = {f"state.{name}": getattr(state, name) for name in FrequencyState._fields}
    xp = v.resolve_namespace(arrays, xp=None)
    last_step, gap, seeds, step = state
    if last_step.ndim != 2:
        msg = (
            f"state.last_step must be 2-D (num_hashes, num_buckets), got shape "
            f"{tuple(last_step.shape)}"
        )
        raise ValueError(msg)
    num_hashes, num_buckets = (int(n) for n in last_step.shape)
    expected = {
        "state.last_step": (last_step, (num_hashes, num_buckets), "int64"),
        "state.gap": (gap, (num_hashes, num_buckets), "float32 or float64"),
        "state.seeds": (seeds, (num_hashes,), "int64"),
        "state.step": (step, (), "int64"),
    }
    for name, (x, shape, kind) in expected.items():
        ok = x.dtype in (xp.float32, xp.float64) if name == "state.gap" else x.dtype == xp.int64
        if not ok:
            msg = f"{name} must have dtype {kind}, got {x.dtype}"
            raise TypeError(msg)
        if tuple(x.shape) != shape:
            msg = (
                f"{name} must have shape {shape} (state.last_step has shape "
                f"{(num_hashes, num_buckets)}), got shape {tuple(x.shape)}"
            )
            raise ValueError(msg)
    if not 1 <= num_buckets <= MAX_BUCKETS or num_hashes < 1:
        msg = (
            f"state.last_step must have shape (num_hashes >= 1, num_buckets in [1, 2**32]), "
            f"got shape {(num_hashes, num_buckets)}"
        )
        raise ValueError(msg)
    v.check_same_device(arrays)
    return xp


def _check_ids(ids: object, *, like: Array, xp: ArrayNamespace, owner: str = "state") -> Array:
    """``ids`` as a 1-D int64 array of ``xp`` on ``like``'s device."""
    try:
        ids_xp = array_namespace(ids)
    except TypeError:
        msg = (
            f"ids must be a 1-D integer array of {owner}'s library ({_library(like)}), got "
            f"{type(ids).__name__}; convert it with xp.asarray(ids)"
        )
        raise TypeError(msg) from None
    if ids_xp is not xp:
        msg = (
            f"ids is a {_library(ids)} array but {owner} holds {_library(like)} arrays; "
            f"convert ids, or move the state with frequency.as_namespace(state, xp)"
        )
        raise TypeError(msg)
    if not xp.isdtype(ids.dtype, "integral"):
        msg = f"ids must have an integer dtype (item ids), got {ids.dtype}"
        raise TypeError(msg)
    v.check_rank("ids", ids, 1, "(one id per item of the batch)")
    v.check_same_device({"ids": ids, f"{owner}.gap" if owner == "state" else owner: like})
    return ids if ids.dtype == xp.int64 else xp.astype(ids, xp.int64)


def _step_value(step: object) -> int:
    """A step given as a Python (or NumPy) integer, range-checked."""
    value = v.integer_at_least(
        "step", step, expected="an integer >= 1 (a Python int or a 0-D integer array)"
    )
    if value > _INT64_MAX:
        msg = f"step must be < 2**63 (an int64), got {value}"
        raise ValueError(msg)
    return value


def _eager_step(step: object, *, xp: ArrayNamespace) -> object:
    """A 0-D integer array of ``xp`` read to the host; anything else unchanged."""
    try:
        step_xp = array_namespace(step)
    except TypeError:
        return step
    if step_xp is not xp or isinstance(step, np.generic):
        return step
    if not xp.isdtype(step.dtype, "integral"):
        msg = f"step must be an integer (a Python int or a 0-D integer array), got {step.dtype}"
        raise TypeError(msg)
    if tuple(step.shape) != ():
        msg = f"step must be 0-D (one global step), got shape {tuple(step.shape)}"
        raise ValueError(msg)
    return int(step)


def _check_step(step: object, *, state: FrequencyState, xp: ArrayNamespace) -> Array:
    """``step`` as a 0-D int64 array; raise unless it is >= 1 and > ``state.step``."""
    try:
        step_xp = array_namespace(step)
    except TypeError:
        step_xp = None
    if step_xp is xp and not isinstance(step, np.generic):
        if not xp.isdtype(step.dtype, "integral"):
            msg = f"step must be an integer (a Python int or a 0-D integer array), got {step.dtype}"
            raise TypeError(msg)
        if tuple(step.shape) != ():
            msg = f"step must be 0-D (one global step), got shape {tuple(step.shape)}"
            raise ValueError(msg)
        v.check_same_device({"step": step, "state.step": state.step})
        t = step if step.dtype == xp.int64 else xp.astype(step, xp.int64)
        if v.read_flag(t < 1):
            msg = f"step must be >= 1 (steps are counted from 1), got {int(t)}"
            raise ValueError(msg)
    else:
        t = xp.asarray(_step_value(step), dtype=xp.int64, device=device(state.step))
    if v.read_flag(t <= state.step):
        msg = (
            f"step must be greater than state.step = {int(state.step)} (the step of the "
            f"last update): the global step increases strictly, once per batch, and is "
            f"never reset; got step = {int(t)}"
        )
        raise ValueError(msg)
    return t


def _check_seeds(seeds: object, *, like: Array, xp: ArrayNamespace) -> Array:
    """``seeds`` as a 1-D int64 array of ``xp`` on ``like``'s device."""
    try:
        array_namespace(seeds)
    except TypeError:
        if isinstance(seeds, str) or not isinstance(seeds, Sequence):
            msg = (
                f"seeds must be a 1-D int64 array or a sequence of integers (state.seeds), "
                f"got {type(seeds).__name__}"
            )
            raise TypeError(msg) from None
        values = []
        for k, s in enumerate(seeds):
            value = v.integer_at_least(f"seeds[{k}]", s, expected="an integer", low=None)
            if not -(1 << 63) <= value < 1 << 64:
                msg = f"seeds[{k}] must lie in [-2**63, 2**64) (a 64-bit word), got {value}"
                raise ValueError(msg) from None
            values.append(_hashing.to_signed(value))
        seeds = xp.asarray(values, dtype=xp.int64, device=device(like))
    if not xp.isdtype(seeds.dtype, "integral"):
        msg = f"seeds must have an integer dtype (int64, as state.seeds), got {seeds.dtype}"
        raise TypeError(msg)
    v.check_rank("seeds", seeds, 1, "(one seed per hash function)")
    if seeds.shape[0] < 1:
        msg = "seeds must hold at least one seed (one per hash function), got none"
        raise ValueError(msg)
    return seeds if seeds.dtype == xp.int64 else xp.astype(seeds, xp.int64)


# ---------------------------------------------------------------------------------------------
# the arithmetic, shared by the functions and the class
# ---------------------------------------------------------------------------------------------


def _flat_buckets(ids: Array, seeds: Array, num_buckets: int, *, xp: ArrayNamespace) -> Array:
    """Indices into the flattened ``(H * M,)`` tables: ``i * M + h_i(id)``, hash-major."""
    index = _hashing.bucket_index(ids, seeds, num_buckets, xp=xp)
    num_hashes = int(index.shape[0])
    if num_hashes == 1:
        return index[0, ...]
    offsets = xp.arange(num_hashes, dtype=xp.int64, device=device(ids)) * num_buckets
    return xp.reshape(index + offsets[:, None], (-1,))


def _scatter_set(
    table: Array, index: Array, values: Array | int, *, copy: bool | None, xp: ArrayNamespace
) -> Array:
    """``table`` with ``table[index] = values``, where repeated indices carry equal values.

    NumPy, CuPy, PyTorch and JAX assign through ``array_api_extra.at``: a copy first when
    ``copy``, in place when False (JAX always returns a new array). Other libraries
    (array-api-strict has no integer-array assignment) merge: each position looks itself up
    in the sorted ``index`` (``searchsorted``) and takes the value found there, if any.
    """
    if is_numpy_array(table) or is_torch_array(table) or is_cupy_array(table):
        if copy is False:
            # the estimator's own, writable arrays: plain assignment, which is what
            # array_api_extra.at does after its checks, without their cost per call
            table[index] = values
            return table
        return xpx.at(table, index).set(values, copy=copy, xp=xp)
    if is_jax_array(table):
        return xpx.at(table, index).set(values, copy=None if copy is False else copy, xp=xp)
    if isinstance(values, int):
        values = xp.asarray(values, dtype=table.dtype, device=device(table))
    order = xp.argsort(index)
    ordered = xp.take(index, order)
    positions = xp.arange(table.shape[0], dtype=index.dtype, device=device(table))
    found = xp.minimum(xp.searchsorted(ordered, positions), index.shape[0] - 1)
    hit = xp.take(ordered, found) == positions
    if values.ndim:
        values = xp.take(values, xp.take(order, found))
    return xp.where(hit, values, table)


def _advance(
    last_step: Array,
    gap: Array,
    index: Array,
    t: int | Array,
    learning_rate: float | Array,
    record_first: bool,
    *,
    copy: bool | None,
    xp: ArrayNamespace,
) -> tuple[Array, Array, Array]:
    """Algorithm 2 on the flat tables at ``index`` (non-empty): ``(A, B, new B at index)``.

    Every new value is computed from the tables before the step, so a bucket listed
    several times receives one value: buckets are updated once per step. ``t`` is a
    Python int or a 0-D int64 array.
    """
    a = xp.take(last_step, index)
    b = xp.take(gap, index)
    observed = xp.astype(t - a, gap.dtype)
    new_gap = (1 - learning_rate) * b + learning_rate * observed
    if record_first:
        new_gap = xp.where(a == 0, b, new_gap)
    gap = _scatter_set(gap, index, new_gap, copy=copy, xp=xp)
    last_step = _scatter_set(last_step, index, t, copy=copy, xp=xp)
    return last_step, gap, new_gap


def _clipped_inverse(gaps: Array, num_hashes: int, min_probability: float, *, xp) -> Array:
    """Algorithm 3: ``clip(1 / max over hashes, min_probability, 1)`` of hash-major gaps."""
    if num_hashes == 1:
        largest = gaps
    else:
        largest = xp.max(xp.reshape(gaps, (num_hashes, gaps.shape[0] // num_hashes)), axis=0)
    # maximum and minimum rather than clip: the same values, and array-api-compat's clip
    # for NumPy costs ten times more on a batch of a few thousand ids
    return xp.minimum(xp.maximum(1.0 / largest, min_probability), 1.0)


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def init(
    num_buckets: int,
    *,
    num_hashes: int = 1,
    initial_gap: float = 100.0,
    seed: int = 0,
    dtype: Any = None,
    device: Any = None,
    xp: ArrayNamespace | None = None,
) -> FrequencyState:
    r"""A new estimator state: no bucket hit, every gap at its prior value.

    Parameters
    ----------
    num_buckets : int
        :math:`M`, buckets per hash function, in :math:`[1, 2^{32}]`. Ids that share a
        bucket share its estimate; use several times the number of distinct ids.
    num_hashes : int, default 1
        :math:`H \ge 1`, independent hash functions; the estimate takes the largest gap.
    initial_gap : float, default 100.0
        :math:`B_0 > 0`, finite: the prior mean number of steps between two hits, so ids
        never seen read :math:`1/B_0`.
    seed : int, default 0
        Any integer (taken modulo :math:`2^{64}`); it determines the hash functions.
    dtype : float32 or float64 of ``xp``, optional
        The dtype of the gaps (a dtype object or its name). None: float64 (float32 on a
        device without float64).
    device : optional
        The device of the arrays; None: the library's default.
    xp : namespace, optional
        The array library; None: NumPy.

    Returns
    -------
    FrequencyState
        ``last_step`` zeros and ``gap`` :math:`B_0` (rounded to ``dtype``), both of shape
        ``(num_hashes, num_buckets)``; ``seeds``; ``step`` 0.

    Raises
    ------
    TypeError
        If an argument has the wrong type, ``dtype`` is not float32 or float64, or the
        library has no int64 (JAX without ``jax_enable_x64``).
    ValueError
        If ``num_buckets`` is outside :math:`[1, 2^{32}]`, ``num_hashes < 1`` or
        ``initial_gap`` is not finite and positive.

    Notes
    -----
    Seed :math:`i` is the :math:`(i+1)`-th output of SplitMix64 seeded with ``seed``:

    .. math::

        s_i = \operatorname{mix}\bigl((\text{seed} + (i + 1)\,\gamma) \bmod 2^{64}\bigr),
        \qquad \gamma = \mathtt{0x9E3779B97F4A7C15},

    stored as signed int64 (see :mod:`refloss.frequency`, The hash).

    Examples
    --------
    >>> from refloss import frequency
    >>> state = frequency.init(8, num_hashes=2, initial_gap=50.0)
    >>> state.gap.shape, state.gap.dtype, int(state.step)
    ((2, 8), dtype('float64'), 0)
    >>> [hex(int(s) % 2**64) for s in state.seeds]
    ['0xe220a8397b1dcdaf', '0x6e789e6aa1b965f4']
    """
    num_buckets = _check_num_buckets(num_buckets)
    num_hashes = v.integer_at_least(
        "num_hashes", num_hashes, expected="an integer >= 1", meaning=" (hash functions)"
    )
    initial_gap = _check_initial_gap(initial_gap)
    seed = v.integer_at_least("seed", seed, expected="an integer", low=None)
    xp = _resolve_xp(xp)
    _require_int64(xp, device=device)
    dtype = _float_dtype(dtype, xp=xp, device=device)
    shape = (num_hashes, num_buckets)
    return FrequencyState(
        last_step=xp.zeros(shape, dtype=xp.int64, device=device),
        gap=xp.full(shape, initial_gap, dtype=dtype, device=device),
        seeds=xp.asarray(
            _hashing.splitmix64_seeds(seed, num_hashes), dtype=xp.int64, device=device
        ),
        step=xp.asarray(0, dtype=xp.int64, device=device),
    )


def update(
    state: FrequencyState,
    ids: Array,
    *,
    step: int | Array,
    learning_rate: float | Array = 0.01,
    first_sighting: str = "update",
) -> FrequencyState:
    r"""The state after the batch of ``ids`` at global step ``step`` (Algorithm 2).

    Parameters
    ----------
    state : FrequencyState
        From :func:`init`, :func:`load` or a previous :func:`update`; not modified.
    ids : array, shape (n,), integer
        The item ids of the batch, of the state's library and device; repeats allowed
        (they count once), ``n = 0`` allowed (only the step advances). Other integer
        dtypes are converted to int64.
    step : int or 0-D integer array
        :math:`t \ge 1`, the global step of this batch, greater than ``state.step``. A
        0-D array may be traced by ``jax.jit``.
    learning_rate : float or 0-D floating array, default 0.01
        :math:`\alpha \in (0, 1]`.
    first_sighting : {"update", "record"}, default "update"
        For a bucket never hit before: ``"update"`` applies the formula with
        :math:`A = 0` (a first gap of :math:`t`); ``"record"`` sets :math:`A = t` and
        leaves :math:`B` at its prior.

    Returns
    -------
    FrequencyState
        New arrays (the input's are never written), of the state's library, dtype and
        device; ``step`` is ``step`` as int64.

    Raises
    ------
    TypeError
        If ``state`` is not a :class:`FrequencyState` of valid dtypes, ``ids`` is not an
        integer array of the state's library, or ``step`` / ``learning_rate`` have the
        wrong type.
    ValueError
        If ``ids`` is not 1-D, is on another device than the state, ``step < 1`` or
        ``step <= state.step``, or ``learning_rate`` is outside :math:`(0, 1]`. Checks
        of array values read one value to the host and are skipped under ``jax.jit``.

    Notes
    -----
    For every hash :math:`i` and every bucket :math:`b \in \{h_i(y) : y \in \text{ids}\}`,
    once:

    .. math::

        B_i[b] \leftarrow (1 - \alpha)\, B_i[b] + \alpha\, (t - A_i[b]), \qquad
        A_i[b] \leftarrow t,

    computed as ``(1 - alpha) * B + alpha * float(t - A)`` in the dtype of the gaps, from
    the state before the step. With ``first_sighting="record"``, :math:`B_i[b]` is kept
    where :math:`A_i[b] = 0`.

    On NumPy, CuPy and PyTorch both tables are copied (``O(num_hashes * num_buckets)``);
    :class:`FrequencyEstimator` updates in place instead.

    Examples
    --------
    >>> import numpy as np
    >>> from refloss import frequency
    >>> state = frequency.init(1000, initial_gap=10.0)
    >>> state = frequency.update(state, np.asarray([7, 7, 42]), step=1, learning_rate=0.5)
    >>> state = frequency.update(state, np.asarray([7]), step=3, learning_rate=0.5)
    >>> frequency.probability(state, np.asarray([7, 42, 5]))  # gaps 3.75, 5.5 and 10
    array([0.26666667, 0.18181818, 0.1       ])
    """
    xp = _check_state(state)
    ids = _check_ids(ids, like=state.gap, xp=xp)
    t = _check_step(step, state=state, xp=xp)
    learning_rate = _check_learning_rate(learning_rate, like=state.gap, xp=xp)
    record_first = _check_first_sighting(first_sighting)
    if ids.shape[0] == 0:
        return state._replace(step=t)
    shape = tuple(state.gap.shape)
    index = _flat_buckets(ids, state.seeds, shape[1], xp=xp)
    last_step, gap, _ = _advance(
        xp.reshape(state.last_step, (-1,)),
        xp.reshape(state.gap, (-1,)),
        index,
        t,
        learning_rate,
        record_first,
        copy=True,
        xp=xp,
    )
    return FrequencyState(xp.reshape(last_step, shape), xp.reshape(gap, shape), state.seeds, t)


def probability(state: FrequencyState, ids: Array, *, min_probability: float = 1e-6) -> Array:
    r"""The estimated probability that each id appears in a batch (Algorithm 3).

    Parameters
    ----------
    state : FrequencyState
        The estimator, after :func:`update` with the current batch.
    ids : array, shape (n,), integer
        Item ids, of the state's library and device.
    min_probability : float, default 1e-6
        The floor of the estimate, in :math:`(0, 1]`.

    Returns
    -------
    array, shape (n,)
        :math:`\hat p`, in the dtype of ``state.gap``, of the state's library and device.

    Raises
    ------
    TypeError
        If ``state`` is not a valid :class:`FrequencyState`, ``ids`` is not an integer
        array of its library, or ``min_probability`` is not a real number.
    ValueError
        If ``ids`` is not 1-D or on another device, or ``min_probability`` is outside
        :math:`(0, 1]`.

    Notes
    -----
    .. math::

        \hat p(y) = \operatorname{clip}\Bigl(\frac{1}{\max_i B_i[h_i(y)]},\;
        p_\text{min},\; 1\Bigr).

    An id never seen (and colliding with no id seen) reads :math:`1 / B_0`, clipped.

    Examples
    --------
    >>> import numpy as np
    >>> from refloss import frequency
    >>> state = frequency.init(64, initial_gap=4.0)
    >>> frequency.probability(state, np.asarray([1, 2]))
    array([0.25, 0.25])
    >>> frequency.probability(state, np.asarray([1]), min_probability=0.5)
    array([0.5])
    """
    xp = _check_state(state)
    ids = _check_ids(ids, like=state.gap, xp=xp)
    min_probability = v.check_min_probability(min_probability)
    num_hashes, num_buckets = (int(n) for n in state.gap.shape)
    index = _flat_buckets(ids, state.seeds, num_buckets, xp=xp)
    gaps = xp.take(xp.reshape(state.gap, (-1,)), index)
    return _clipped_inverse(gaps, num_hashes, min_probability, xp=xp)


def buckets(ids: Array, *, seeds: Array | Sequence[int], num_buckets: int) -> Array:
    r"""The bucket of each id under each hash function.

    Parameters
    ----------
    ids : array, shape (n,), integer
        Item ids (any int64 value; other integer dtypes are converted to int64).
    seeds : array, shape (H,), integer, or a sequence of ints
        One seed per hash function, such as ``state.seeds``; Python ints may be given
        signed or unsigned (in :math:`[-2^{63}, 2^{64})`).
    num_buckets : int
        :math:`M \in [1, 2^{32}]`.

    Returns
    -------
    array, int64, shape (H, n)
        Row :math:`i` holds :math:`h_i(\text{ids}) \in [0, M)`; of the ids' library and
        device.

    Raises
    ------
    TypeError
        If ``ids`` or ``seeds`` are not integer, come from different libraries, or the
        library has no int64 (JAX without ``jax_enable_x64``).
    ValueError
        If ``ids`` or ``seeds`` are not 1-D, ``seeds`` is empty, or ``num_buckets`` is
        outside :math:`[1, 2^{32}]`.

    Notes
    -----
    The hash is specified, with a worked example, in :mod:`refloss.frequency` (The
    hash). It is identical bit for bit on every library.

    Examples
    --------
    >>> import numpy as np
    >>> from refloss import frequency
    >>> frequency.buckets(np.asarray([42, -1]), seeds=[0xE220A8397B1DCDAF], num_buckets=1000)
    array([[271, 948]])
    """
    num_buckets = _check_num_buckets(num_buckets)
    try:
        array_namespace(seeds)
        seeds_array = seeds
    except TypeError:
        seeds_array = None
    xp = v.resolve_namespace({"ids": ids, "seeds": seeds_array}, xp=None)
    _require_int64(xp, device=device(ids))
    if not xp.isdtype(ids.dtype, "integral"):
        msg = f"ids must have an integer dtype (item ids), got {ids.dtype}"
        raise TypeError(msg)
    v.check_rank("ids", ids, 1, "(one id per item)")
    ids = ids if ids.dtype == xp.int64 else xp.astype(ids, xp.int64)
    seeds = _check_seeds(seeds, like=ids, xp=xp)
    v.check_same_device({"ids": ids, "seeds": seeds})
    return _hashing.bucket_index(ids, seeds, num_buckets, xp=xp)


def string_ids(strings: Iterable[str]) -> np.ndarray:
    r"""Deterministic int64 ids for strings, the same in every process and on every platform.

    Parameters
    ----------
    strings : iterable of str
        For example item keys. A single ``str`` is refused (wrap it in a list).

    Returns
    -------
    numpy.ndarray, int64, shape (n,)
        On the host; convert with ``xp.asarray`` for another library.

    Raises
    ------
    TypeError
        If ``strings`` is a single string or holds something other than ``str``.

    Notes
    -----
    The id of ``s`` is the BLAKE2b hash [1]_ of its UTF-8 bytes with an 8-byte digest
    (``hashlib.blake2b(s.encode("utf-8"), digest_size=8)``; the digest size is a parameter
    of BLAKE2b, so this is not a prefix of the 64-byte digest), read as a little-endian
    signed 64-bit integer. Python's ``hash`` is not used: it is salted per process for
    strings. Distinct strings collide with probability about :math:`n^2 / 2^{65}`.

    References
    ----------
    .. [1] M.-J. Saarinen, J.-P. Aumasson, "The BLAKE2 Cryptographic Hash and Message
       Authentication Code (MAC)", RFC 7693, 2015.

    Examples
    --------
    >>> from refloss import frequency
    >>> frequency.string_ids(["", "item-1"]).dtype
    dtype('int64')
    """
    if isinstance(strings, str | bytes):
        msg = (
            f"strings must be an iterable of str, got a single {type(strings).__name__}; "
            f"wrap it in a list"
        )
        raise TypeError(msg)
    return _hashing.string_ids(strings)


def _to_host(x: Array) -> np.ndarray:
    """A host NumPy copy of an array of any supported library."""
    if is_numpy_array(x):
        return np.array(x, copy=True)
    if is_torch_array(x):
        return x.detach().cpu().numpy().copy()
    if is_cupy_array(x):
        return x.get()
    if is_jax_array(x):
        return np.array(x, copy=True)
    xp = array_namespace(x)
    if hasattr(xp, "Device"):  # array-api-strict: DLPack export from its CPU device only
        x = x.to_device(xp.Device("CPU_DEVICE"))
    return np.from_dlpack(x).copy()


def _from_host(arrays: dict[str, np.ndarray], *, xp: ArrayNamespace, device: Any) -> FrequencyState:
    """The state of fresh host arrays (which nobody else holds, so they may be shared)."""
    # no copy=True: PyTorch refuses it together with a transfer to another device
    return FrequencyState(
        *(xp.asarray(arrays[name], device=device) for name in FrequencyState._fields)
    )


def as_namespace(
    state: FrequencyState, xp: ArrayNamespace, *, device: Any = None
) -> FrequencyState:
    """A copy of ``state`` in another array library (or on another device).

    Parameters
    ----------
    state : FrequencyState
        Of any supported library.
    xp : namespace
        The target library (``numpy``, ``torch``, ``jax.numpy``, ``cupy``,
        ``array_api_strict``, ...).
    device : optional
        The target device; None: the library's default.

    Returns
    -------
    FrequencyState
        The same values, bit for bit, and dtypes.

    Raises
    ------
    TypeError
        If ``state`` is not a valid :class:`FrequencyState`, or ``xp`` has no int64
        (JAX without ``jax_enable_x64``).

    Notes
    -----
    The arrays are copied to the host as NumPy arrays, then to ``xp`` on ``device``: two
    transfers for device arrays, whatever the libraries.

    Examples
    --------
    >>> import array_api_strict
    >>> from refloss import frequency
    >>> moved = frequency.as_namespace(frequency.init(4), array_api_strict)
    >>> type(moved.gap).__module__.split(".")[0]
    'array_api_strict'
    """
    _check_state(state)
    xp = _resolve_xp(xp)
    _require_int64(xp, device=device)
    host = {name: _to_host(getattr(state, name)) for name in FrequencyState._fields}
    return _from_host(host, xp=xp, device=device)


def save(state: FrequencyState, path: str | os.PathLike[str] | IO[bytes]) -> None:
    """Write ``state`` to an ``.npz`` archive.

    Parameters
    ----------
    state : FrequencyState
        Of any supported library (copied to the host).
    path : str, path-like or binary file
        Written as given (no suffix is added).

    Raises
    ------
    TypeError
        If ``state`` is not a valid :class:`FrequencyState`.

    Notes
    -----
    An uncompressed NumPy ``.npz`` archive (no pickled objects) with the arrays
    ``last_step``, ``gap``, ``seeds`` and ``step`` as they are, and ``format`` =
    ``"refloss.frequency.FrequencyState"`` and ``format_version`` = 1. :func:`load` reads it
    back bit for bit.

    Examples
    --------
    >>> import io
    >>> from refloss import frequency
    >>> buffer = io.BytesIO()
    >>> frequency.save(frequency.init(4), buffer)
    >>> _ = buffer.seek(0)
    >>> frequency.load(buffer).gap
    array([[100., 100., 100., 100.]])
    """
    _check_state(state)
    arrays = {name: _to_host(getattr(state, name)) for name in FrequencyState._fields}
    header = {"format": np.asarray(FORMAT), "format_version": np.asarray(FORMAT_VERSION)}
    if hasattr(path, "write"):
        np.savez(path, **header, **arrays)
        return
    with open(path, "wb") as file:
        np.savez(file, **header, **arrays)


def load(
    path: str | os.PathLike[str] | IO[bytes],
    *,
    xp: ArrayNamespace | None = None,
    device: Any = None,
) -> FrequencyState:
    """Read a state written by :func:`save`, into any library and device.

    Parameters
    ----------
    path : str, path-like or binary file
        The archive.
    xp : namespace, optional
        The library of the result; None: NumPy.
    device : optional
        Its device; None: the library's default.

    Returns
    -------
    FrequencyState
        The saved arrays, bit for bit.

    Raises
    ------
    ValueError
        If the file is not such an archive, has another format version, or its arrays
        are inconsistent (shapes, a gap that is not finite and positive, a last step
        outside ``[0, step]``).
    TypeError
        If an array has the wrong dtype, or ``xp`` has no int64.
    """
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        msg = f"{path!r} is not an .npz archive (frequency.save writes one)"
        raise ValueError(msg)
    with data:
        names = set(data.files)
        wanted = {"format", "format_version", *FrequencyState._fields}
        if not wanted <= names or str(data["format"]) != FORMAT:
            msg = (
                f"{path!r} is not a refloss.frequency state: expected the arrays "
                f"{sorted(wanted)}, got {sorted(names)}"
            )
            raise ValueError(msg)
        version = int(data["format_version"])
        if version != FORMAT_VERSION:
            msg = (
                f"{path!r} has format_version {version}; this version of refloss reads "
                f"format_version {FORMAT_VERSION}"
            )
            raise ValueError(msg)
        host = {name: np.array(data[name]) for name in FrequencyState._fields}
    _check_state(FrequencyState(**host))
    gap, last_step, step = host["gap"], host["last_step"], int(host["step"])
    if not (np.all(np.isfinite(gap)) and np.all(gap > 0)):
        msg = f"{path!r}: gap must be finite and > 0, got values in [{gap.min()}, {gap.max()}]"
        raise ValueError(msg)
    if step < 0 or np.any(last_step < 0) or np.any(last_step > step):
        msg = (
            f"{path!r}: last_step must lie in [0, step = {step}], got values in "
            f"[{last_step.min()}, {last_step.max()}]"
        )
        raise ValueError(msg)
    xp = _resolve_xp(xp)
    _require_int64(xp, device=device)
    return _from_host(host, xp=xp, device=device)


# ---------------------------------------------------------------------------------------------
# the stateful estimator
# ---------------------------------------------------------------------------------------------


class FrequencyEstimator:
    r"""The estimator as an object that updates its own arrays in place.

    The same arithmetic as :func:`init`, :func:`update` and :func:`probability`, for
    eager training loops: on NumPy, CuPy and PyTorch each update writes only the buckets
    of the batch instead of copying the tables. Under JAX (functional arrays) the arrays
    are replaced at each update; in ``jax.jit`` use the functions.

    Parameters
    ----------
    num_buckets : int
        :math:`M`, buckets per hash function, in :math:`[1, 2^{32}]`.
    num_hashes : int, default 1
        :math:`H \ge 1`.
    initial_gap : float, default 100.0
        :math:`B_0 > 0`.
    learning_rate : float, default 0.01
        :math:`\alpha \in (0, 1]`.
    first_sighting : {"update", "record"}, default "update"
        See :func:`update`.
    seed : int, default 0
        Determines the hash functions (see :func:`init`).
    dtype, device, xp : optional
        As in :func:`init` (NumPy float64 by default).

    Raises
    ------
    TypeError, ValueError
        As :func:`init`, and for a ``learning_rate`` outside :math:`(0, 1]` or an
        unknown ``first_sighting``.

    Notes
    -----
    :attr:`state` returns the live arrays, not a copy: a later :meth:`update` changes
    them in place on NumPy, CuPy and PyTorch. Copy them (or :func:`save` them) to keep a
    snapshot.

    After :meth:`update`, the estimator keeps the batch's ids and their new gaps:
    :meth:`probability` of the same ids (compared by value) reuses them instead of
    hashing again.

    Examples
    --------
    >>> import numpy as np
    >>> from refloss import frequency
    >>> estimator = frequency.FrequencyEstimator(1024, learning_rate=0.5, initial_gap=2.0)
    >>> estimator.update(np.asarray([1, 2]))  # step 1
    >>> estimator.update(np.asarray([1]), step=3)
    >>> estimator.step, estimator.probability(np.asarray([1, 2]))  # gaps 1.75 and 1.5
    (3, array([0.57142857, 0.66666667]))
    """

    def __init__(
        self,
        num_buckets: int,
        *,
        num_hashes: int = 1,
        initial_gap: float = 100.0,
        learning_rate: float = 0.01,
        first_sighting: str = "update",
        seed: int = 0,
        dtype: Any = None,
        device: Any = None,
        xp: ArrayNamespace | None = None,
    ) -> None:
        state = init(
            num_buckets,
            num_hashes=num_hashes,
            initial_gap=initial_gap,
            seed=seed,
            dtype=dtype,
            device=device,
            xp=xp,
        )
        self._adopt(state, learning_rate, first_sighting)

    @classmethod
    def from_state(
        cls,
        state: FrequencyState,
        *,
        learning_rate: float = 0.01,
        first_sighting: str = "update",
    ) -> FrequencyEstimator:
        r"""An estimator that continues from a copy of ``state`` (from :func:`load`, say).

        Parameters
        ----------
        state : FrequencyState
            Of any supported library; copied, so the estimator owns its arrays.
        learning_rate : float, default 0.01
            :math:`\alpha \in (0, 1]`.
        first_sighting : {"update", "record"}, default "update"
            See :func:`update`.

        Returns
        -------
        FrequencyEstimator
            Its :attr:`step` is ``state.step``.

        Examples
        --------
        >>> from refloss import frequency
        >>> frequency.FrequencyEstimator.from_state(frequency.init(16, num_hashes=2))
        FrequencyEstimator(num_buckets=16, num_hashes=2, learning_rate=0.01, first_sighting='update', step=0)
        """  # noqa: E501
        xp = _check_state(state)
        copied = FrequencyState(*(xp.asarray(x, copy=True) for x in state))
        estimator = cls.__new__(cls)
        estimator._adopt(copied, learning_rate, first_sighting)
        return estimator

    def _adopt(self, state: FrequencyState, learning_rate: object, first_sighting: object) -> None:
        xp = _check_state(state)
        self._xp = xp
        self._learning_rate = _check_learning_rate(learning_rate, like=state.gap, xp=xp)
        if not isinstance(self._learning_rate, float):
            msg = (
                f"learning_rate of a FrequencyEstimator must be a real number in (0, 1], got "
                f"a {_library(learning_rate)} array"
            )
            raise TypeError(msg)
        self._record_first = _check_first_sighting(first_sighting)
        self._shape = tuple(int(n) for n in state.gap.shape)
        self._last_step = xp.reshape(state.last_step, (-1,))
        self._gap = xp.reshape(state.gap, (-1,))
        self._seeds = state.seeds
        self._step = int(state.step)
        self._copy: bool | None = False if not is_jax_array(state.gap) else None
        self._array_type = type(state.gap)
        self._device = device(state.gap)
        self._one_device = is_numpy_array(state.gap)
        self._cached_ids: Array | None = None
        self._cached_gaps: Array | None = None

    def _batch(self, ids: object) -> Array:
        """``ids`` validated as by :func:`update`; a 1-D int64 array of ours passes at once."""
        if (
            type(ids) is self._array_type
            and ids.dtype == self._xp.int64  # type: ignore[attr-defined]
            and ids.ndim == 1  # type: ignore[attr-defined]
            and (self._one_device or device(ids) == self._device)
        ):
            return ids
        return _check_ids(ids, like=self._gap, xp=self._xp, owner="the estimator")

    def __repr__(self) -> str:
        num_hashes, num_buckets = self._shape
        return (
            f"FrequencyEstimator(num_buckets={num_buckets}, num_hashes={num_hashes}, "
            f"learning_rate={self._learning_rate}, first_sighting="
            f"{_FIRST_SIGHTING[self._record_first]!r}, step={self._step})"
        )

    @property
    def state(self) -> FrequencyState:
        """The current :class:`FrequencyState` (the live arrays; see Notes)."""
        xp = self._xp
        return FrequencyState(
            xp.reshape(self._last_step, self._shape),
            xp.reshape(self._gap, self._shape),
            self._seeds,
            xp.asarray(self._step, dtype=xp.int64, device=device(self._gap)),
        )

    @property
    def step(self) -> int:
        """The step of the last update (0 before any)."""
        return self._step

    @property
    def num_buckets(self) -> int:
        """:math:`M`."""
        return self._shape[1]

    @property
    def num_hashes(self) -> int:
        """:math:`H`."""
        return self._shape[0]

    @property
    def learning_rate(self) -> float:
        r""":math:`\alpha`."""
        return self._learning_rate  # type: ignore[return-value]

    @property
    def first_sighting(self) -> str:
        """``"update"`` or ``"record"``."""
        return _FIRST_SIGHTING[self._record_first]

    def update(self, ids: Array, *, step: int | Array | None = None) -> None:
        """Count the batch ``ids`` at ``step`` (None: the last step + 1), in place.

        Parameters
        ----------
        ids : array, shape (n,), integer
            As in :func:`update`.
        step : int or 0-D integer array, optional
            Greater than :attr:`step`; None: ``self.step + 1``.

        Raises
        ------
        TypeError, ValueError
            As :func:`update`.
        """
        xp = self._xp
        ids = self._batch(ids)
        if step is None:
            t = self._step + 1
        else:
            t = _step_value(_eager_step(step, xp=xp))
            if t <= self._step:
                msg = (
                    f"step must be greater than the estimator's step = {self._step} (the "
                    f"step of the last update): the global step increases strictly, once "
                    f"per batch, and is never reset; got step = {t}"
                )
                raise ValueError(msg)
        self._cached_ids = self._cached_gaps = None
        if ids.shape[0] > 0:
            index = _flat_buckets(ids, self._seeds, self._shape[1], xp=xp)
            self._last_step, self._gap, new_gaps = _advance(
                self._last_step,
                self._gap,
                index,
                t,
                self._learning_rate,
                self._record_first,
                copy=self._copy,
                xp=xp,
            )
            self._cached_ids = xp.asarray(ids, copy=True)
            self._cached_gaps = new_gaps
        self._step = t

    def probability(self, ids: Array, *, min_probability: float = 1e-6) -> Array:
        """The estimated probability that each id appears in a batch; see :func:`probability`.

        Parameters
        ----------
        ids : array, shape (n,), integer
            Item ids, of the estimator's library and device.
        min_probability : float, default 1e-6
            The floor, in :math:`(0, 1]`.

        Returns
        -------
        array, shape (n,)
            In the dtype of the gaps.
        """
        xp = self._xp
        ids = self._batch(ids)
        min_probability = v.check_min_probability(min_probability)
        num_hashes = self._shape[0]
        cached = self._cached_ids
        if cached is not None and cached.shape == ids.shape and bool(xp.all(cached == ids)):
            gaps = self._cached_gaps
        else:
            index = _flat_buckets(ids, self._seeds, self._shape[1], xp=xp)
            gaps = xp.take(self._gap, index)
        return _clipped_inverse(gaps, num_hashes, min_probability, xp=xp)
