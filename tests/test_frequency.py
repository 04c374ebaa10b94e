r"""Tests of refloss.frequency: the hash, the estimator's arithmetic, its statistics, its errors,
its backends and its state I/O.

Expected values come from derivations independent of the code under test:

* the hash from a pure-Python transcription of the documented formula (Python ints, explicit
  ``& (2**64 - 1)``), anchored by the published first outputs of SplitMix64 for seed 0;
* a periodic stream from its closed form: with one hit every :math:`k` steps, the gap after
  hit :math:`m \ge 1` (the first hit is hit 0) is :math:`k + (1 - \alpha)^m (B'_0 - k)`,
  where :math:`B'_0` is the gap left by the first hit (solve the linear recursion
  :math:`B_m - k = (1 - \alpha)(B_{m-1} - k)`);
* a Bernoulli stream from the stationary moments of the moving average of i.i.d. geometric
  gaps: mean :math:`1/q`, variance :math:`\frac{\alpha}{2 - \alpha} \frac{1 - q}{q^2}`.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import backend_context, to_numpy

from refloss import frequency
from refloss.frequency import FrequencyEstimator, FrequencyState

# libraries with int64 arrays; jax32 (JAX without x64) has none and is tested for its error
INT64_BACKENDS = ("numpy", "numpy_readonly", "array_api_strict", "torch", "jax")
BACKEND_PARAMS = [pytest.param(name, id=name) for name in INT64_BACKENDS]
BACKEND_DTYPE_PARAMS = [
    pytest.param(name, dtype, id=f"{name}-{dtype}")
    for name in INT64_BACKENDS
    for dtype in ("float32", "float64")
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SPECIAL_IDS = [0, 1, -1, 2, -2, 42, 2**31, -(2**31), 2**32, 2**62, -(2**62), INT64_MIN, INT64_MAX]

# ---------------------------------------------------------------------------------------------
# the reference hash: the documented formula on Python ints
# ---------------------------------------------------------------------------------------------

MASK = 2**64 - 1


def ref_mix(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def ref_seeds(seed: int, count: int) -> list[int]:
    """Unsigned: the first ``count`` outputs of SplitMix64 seeded with ``seed``."""
    return [ref_mix(seed + (i + 1) * 0x9E3779B97F4A7C15) for i in range(count)]


def ref_bucket(item: int, seed: int, num_buckets: int) -> int:
    z = ref_mix((item & MASK) ^ (seed & MASK))
    return ((z >> 32) * num_buckets) >> 32


def signed(u: int) -> int:
    u &= MASK
    return u - 2**64 if u >= 2**63 else u


def ref_string_id(s: str) -> int:
    digest = hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def ids_of(backend, values, dtype=np.int64):
    return backend.asarray(np.asarray(values, dtype=dtype))


def host_state(state: FrequencyState) -> dict[str, np.ndarray]:
    return {name: to_numpy(getattr(state, name)) for name in FrequencyState._fields}


def assert_states_equal(actual: FrequencyState, expected: FrequencyState) -> None:
    """Bit for bit: same dtypes, same values (floats compared exactly)."""
    got, want = host_state(actual), host_state(expected)
    for name in FrequencyState._fields:
        assert got[name].dtype == want[name].dtype, (name, got[name].dtype, want[name].dtype)
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def freeze(state: FrequencyState) -> FrequencyState:
    """Make NumPy arrays read-only, so that any write to them raises."""
    for x in state:
        if isinstance(x, np.ndarray):
            x.flags.writeable = False
    return state


def new_state(backend, num_buckets, **kw):
    state = frequency.init(num_buckets, xp=backend.xp, device=backend.device, **kw)
    return freeze(state) if backend.readonly else state


def random_stream(seed, *, steps=12, high=40):
    """Batches (with repeats, negative and extreme ids, one empty) at increasing steps.

    Batches have one size (8) but for the empty one, so that eager JAX compiles each
    operation for few shapes.
    """
    rng = np.random.default_rng(seed)
    step = 0
    for k in range(steps):
        step += int(rng.integers(1, 4))
        batch = rng.integers(-high, high, size=0 if k == 3 else 8)
        if k == 5:
            batch[-3:] = [INT64_MIN, INT64_MAX, INT64_MAX]
        yield step, batch.astype(np.int64), ("record" if k % 4 == 1 else "update")


def distinct_bucket_ids(count, num_buckets, *, seed=0):
    """``count`` ids whose buckets under hash 0 are pairwise distinct."""
    seeds = ref_seeds(seed, 1)
    chosen, used = [], set()
    item = 0
    while len(chosen) < count:
        b = ref_bucket(item, seeds[0], num_buckets)
        if b not in used:
            used.add(b)
            chosen.append(item)
        item += 1
    return np.asarray(chosen, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# the hash
# ---------------------------------------------------------------------------------------------


def test_reference_hash_anchors():
    # the published first outputs of SplitMix64 seeded with 0
    assert ref_seeds(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    # the worked example of the module docstring
    s0 = ref_seeds(0, 1)[0]
    assert ref_bucket(42, s0, 1000) == 271
    assert ref_bucket(-1, s0, 1000) == 948


@pytest.mark.parametrize("seed", [0, 1, -1, 123456789, 2**64 + 7, -(2**70)])
def test_init_seeds_are_splitmix64_outputs(seed):
    state = frequency.init(4, num_hashes=5, seed=seed)
    assert state.seeds.dtype == np.int64
    assert state.seeds.tolist() == [signed(u) for u in ref_seeds(seed % 2**64, 5)]


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_buckets_match_reference(backend):
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            np.asarray(SPECIAL_IDS, dtype=np.int64),
            rng.integers(INT64_MIN, INT64_MAX, size=200, dtype=np.int64, endpoint=True),
            rng.integers(-1000, 1000, size=50),
        ]
    ).astype(np.int64)
    seeds = [signed(u) for u in ref_seeds(2024, 2)] + [INT64_MIN, -1]
    ids = ids_of(backend, values)
    seed_array = ids_of(backend, seeds)
    for num_buckets in (1, 2, 7, 1000, 2**20, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32):
        out = frequency.buckets(ids, seeds=seed_array, num_buckets=num_buckets)
        assert type(out) is type(ids)
        assert out.dtype == backend.xp.int64
        assert tuple(out.shape) == (len(seeds), values.size)
        expected = [[ref_bucket(int(x), s, num_buckets) for x in values] for s in seeds]
        np.testing.assert_array_equal(to_numpy(out), np.asarray(expected), err_msg=num_buckets)
    # seeds as Python ints, signed or unsigned
    unsigned = [s % 2**64 for s in seeds]
    out = frequency.buckets(ids, seeds=unsigned, num_buckets=1000)
    expected = [[ref_bucket(int(x), s, 1000) for x in values] for s in seeds]
    np.testing.assert_array_equal(to_numpy(out), np.asarray(expected))


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_buckets_of_int32_ids_equal_int64(backend):
    values = np.asarray([0, -1, 1, 2**31 - 1, -(2**31), 12345, -98765], dtype=np.int64)
    seeds = ids_of(backend, [signed(u) for u in ref_seeds(3, 2)])
    wide = frequency.buckets(ids_of(backend, values), seeds=seeds, num_buckets=4099)
    narrow = frequency.buckets(ids_of(backend, values, np.int32), seeds=seeds, num_buckets=4099)
    assert narrow.dtype == backend.xp.int64
    np.testing.assert_array_equal(to_numpy(narrow), to_numpy(wide))


def test_buckets_of_small_and_unsigned_dtypes():
    values = np.asarray([0, 1, 100, 127], dtype=np.int64)
    seeds = [123]
    expected = frequency.buckets(values, seeds=seeds, num_buckets=97)
    for dtype in (np.int8, np.int16, np.uint8, np.uint16, np.uint32):
        got = frequency.buckets(values.astype(dtype), seeds=seeds, num_buckets=97)
        np.testing.assert_array_equal(got, expected)
    # uint64 ids keep their bit pattern (two's complement)
    big = np.asarray([2**64 - 1, 2**63], dtype=np.uint64)
    got = frequency.buckets(big, seeds=seeds, num_buckets=97)
    np.testing.assert_array_equal(got, [[ref_bucket(-1, 123, 97), ref_bucket(-(2**63), 123, 97)]])


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_int64_arithmetic_wraps_and_shifts_arithmetically(backend):
    # the two properties of int64 arrays the hash relies on, checked on each library
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [SPECIAL_IDS, rng.integers(INT64_MIN, INT64_MAX, size=50, dtype=np.int64)]
    ).astype(np.int64)
    x = ids_of(backend, values)
    for constant in (signed(0xBF58476D1CE4E5B9), signed(0x94D049BB133111EB), 2**32, 3):
        product = to_numpy(x * constant)
        np.testing.assert_array_equal(product, [signed(int(v) * constant) for v in values])
    np.testing.assert_array_equal(to_numpy(x >> 30), [int(v) >> 30 for v in values])
    # (2**32 - 1) * 2**32 exceeds 2**63: wraps to a negative int64 with the same bits
    hi = ids_of(backend, [2**32 - 1, 2**31])
    np.testing.assert_array_equal(to_numpy(hi * 2**32), [signed((2**32 - 1) << 32), INT64_MIN])


def test_hash_is_uniform():
    scipy_stats = pytest.importorskip("scipy.stats")
    ids = np.arange(2**16, dtype=np.int64)
    state = frequency.init(64, num_hashes=2, seed=5)
    for num_buckets in (64, 1000):
        table = frequency.buckets(ids, seeds=state.seeds, num_buckets=num_buckets)
        for row in table:
            counts = np.bincount(row, minlength=num_buckets)
            assert counts.size == num_buckets
            result = scipy_stats.chisquare(counts)
            assert result.pvalue > 1e-4, (num_buckets, result)


def test_hashes_of_different_seeds_are_independent():
    scipy_stats = pytest.importorskip("scipy.stats")
    num_buckets, n = 64, 2**16
    ids = np.arange(n, dtype=np.int64) * 7919 - 10**6
    b0, b1 = frequency.buckets(ids, seeds=frequency.init(1, num_hashes=2).seeds, num_buckets=64)
    # the same bucket under both hashes: Binomial(n, 1/M)
    same = int(np.sum(b0 == b1))
    mean, sd = n / num_buckets, math.sqrt(n / num_buckets * (1 - 1 / num_buckets))
    assert abs(same - mean) < 5 * sd, (same, mean, sd)
    # the joint histogram is that of independent uniform pairs
    joint = np.bincount(b0 * num_buckets + b1, minlength=num_buckets**2)
    result = scipy_stats.chisquare(joint)
    assert result.pvalue > 1e-4, result
    # another seed gives other buckets
    other = frequency.buckets(ids, seeds=frequency.init(1, seed=1).seeds, num_buckets=64)[0]
    assert abs(int(np.sum(other == b0)) - mean) < 5 * sd


# ---------------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("backend_name", "dtype"), BACKEND_DTYPE_PARAMS)
def test_init(backend, dtype):
    state = frequency.init(
        10, num_hashes=3, initial_gap=0.1, xp=backend.xp, dtype=dtype, device=backend.device
    )
    xp = backend.xp
    assert isinstance(state, FrequencyState)
    assert (state.num_hashes, state.num_buckets) == (3, 10)
    expected = {
        "last_step": (xp.int64, (3, 10)),
        "gap": (getattr(xp, dtype), (3, 10)),
        "seeds": (xp.int64, (3,)),
        "step": (xp.int64, ()),
    }
    for name, (want_dtype, shape) in expected.items():
        x = getattr(state, name)
        assert x.dtype == want_dtype, name
        assert tuple(x.shape) == shape, name
    host = host_state(state)
    assert np.all(host["last_step"] == 0)
    assert np.all(host["gap"] == np.asarray(0.1, dtype=dtype))
    assert int(host["step"]) == 0


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_init_default_dtype_is_float64(backend):
    state = frequency.init(4, xp=backend.xp)
    assert state.gap.dtype == backend.xp.float64


def test_init_defaults_to_numpy_and_accepts_bare_modules():
    assert isinstance(frequency.init(3).gap, np.ndarray)
    assert isinstance(frequency.init(3, xp=np, dtype=np.float32).gap, np.ndarray)
    torch = pytest.importorskip("torch")
    state = frequency.init(3, xp=torch, dtype=torch.float32)
    assert state.gap.dtype == torch.float32
    assert state.last_step.dtype == torch.int64


def test_jax_without_x64_is_refused():
    pytest.importorskip("jax")
    with backend_context("jax32") as b:
        with pytest.raises(TypeError, match="jax_enable_x64"):
            frequency.init(8, xp=b.xp)
        with pytest.raises(TypeError, match="jax_enable_x64"):
            frequency.FrequencyEstimator(8, xp=b.xp)
        with pytest.raises(TypeError, match="jax_enable_x64"):
            frequency.buckets(b.xp.asarray([1, 2]), seeds=[1], num_buckets=8)
        with pytest.raises(TypeError, match="jax_enable_x64"):
            frequency.as_namespace(frequency.init(8), b.xp)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_buckets": 0}, ValueError, r"num_buckets must be >= 1.*got 0"),
        ({"num_buckets": 2**32 + 1}, ValueError, r"num_buckets must be <= 2\*\*32.*high 32 bits"),
        ({"num_buckets": 2.0}, TypeError, r"num_buckets must be an integer.*float"),
        ({"num_buckets": True}, TypeError, r"num_buckets must be an integer.*bool"),
        ({"num_hashes": 0}, ValueError, r"num_hashes must be >= 1.*got 0"),
        ({"num_hashes": 1.5}, TypeError, r"num_hashes must be an integer"),
        ({"initial_gap": 0.0}, ValueError, r"initial_gap must be finite and > 0.*0\.0"),
        ({"initial_gap": -1}, ValueError, r"initial_gap must be finite and > 0.*-1"),
        ({"initial_gap": math.inf}, ValueError, r"initial_gap must be finite"),
        ({"initial_gap": math.nan}, ValueError, r"initial_gap must be finite"),
        ({"initial_gap": "100"}, TypeError, r"initial_gap must be a real number"),
        ({"seed": 0.5}, TypeError, r"seed must be an integer"),
        ({"dtype": "int64"}, TypeError, r"dtype must be float32 or float64.*int64"),
        ({"dtype": np.float16}, TypeError, r"dtype must be float32 or float64"),
        ({"xp": "numpy"}, TypeError, r"xp must be an array namespace"),
    ],
)
def test_init_errors(kwargs, error, match):
    kwargs = {"num_buckets": 8, **kwargs}
    with pytest.raises(error, match=match):
        frequency.init(kwargs.pop("num_buckets"), **kwargs)


# ---------------------------------------------------------------------------------------------
# the update: closed forms, statistics, deduplication, saturation, reading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first_sighting", ["update", "record"])
@pytest.mark.parametrize("period", [1, 2, 5, 37])
def test_periodic_stream_closed_form(period, first_sighting):
    alpha, b0, first = 0.1, 100.0, 3
    item = np.asarray([12345], dtype=np.int64)
    state = frequency.init(1 << 10, initial_gap=b0)
    bucket = int(frequency.buckets(item, seeds=state.seeds, num_buckets=1 << 10)[0, 0])
    # the gap left by the first hit, as each mode defines it
    b_first = (1 - alpha) * b0 + alpha * first if first_sighting == "update" else b0
    for m in range(60):
        t = first + m * period
        state = frequency.update(
            state, item, step=t, learning_rate=alpha, first_sighting=first_sighting
        )
        expected = period + (1 - alpha) ** m * (b_first - period)
        assert float(state.gap[0, bucket]) == pytest.approx(expected, rel=1e-12, abs=0)
        assert int(state.last_step[0, bucket]) == t
        assert int(state.step) == t
        p = float(frequency.probability(state, item)[0])
        assert p == pytest.approx(min(1.0, 1 / expected), rel=1e-12)
    # every other bucket is untouched
    assert np.sum(state.last_step != 0) == 1
    assert np.sum(state.gap != b0) == 1


def test_empty_batches_and_skipped_steps_agree():
    # the same hits, with empty batches in between or with steps skipped
    item = np.asarray([77], dtype=np.int64)
    empty = np.asarray([], dtype=np.int64)
    a = frequency.init(256)
    b = frequency.init(256)
    for t in range(1, 31):
        a = frequency.update(a, item if t % 3 == 1 else empty, step=t, learning_rate=0.2)
        if t % 3 == 1:
            b = frequency.update(b, item, step=t, learning_rate=0.2)
    b = frequency.update(b, empty, step=30)
    assert_states_equal(a, b)


def test_empty_batch_only_advances_the_step():
    state = frequency.update(frequency.init(16), np.asarray([1, 2]), step=2)
    after = frequency.update(state, np.asarray([], dtype=np.int64), step=9)
    assert int(after.step) == 9
    np.testing.assert_array_equal(after.gap, state.gap)
    np.testing.assert_array_equal(after.last_step, state.last_step)


def test_bernoulli_stream_moments():
    r"""Items present in each batch independently with probability q.

    After the burn-in, B of each item is a draw of the stationary distribution of
    :math:`B_n = (1 - \alpha) B_{n-1} + \alpha \Delta_n`, :math:`\Delta \sim
    \text{Geometric}(q)` on {1, 2, ...}: mean :math:`1/q`, variance
    :math:`\frac{\alpha}{2-\alpha}\frac{1-q}{q^2}` (looking back from a fixed step, the
    completed gaps of a Bernoulli process are i.i.d. geometric). Replicas are distinct ids
    in one state, in distinct buckets. The initial gap decays as :math:`\mathbb{E}(1 -
    \alpha)^{N} = (1 - \alpha q)^T`: at most :math:`e^{-10} \cdot 80/0.95 < 0.004`, a
    twentieth of a standard error of the mean.
    """
    alpha, steps, replicas = 0.05, 4000, 2000
    qs = (0.2, 0.05)
    num_buckets = 1 << 16
    ids = distinct_bucket_ids(replicas * len(qs), num_buckets)
    estimator = FrequencyEstimator(num_buckets, learning_rate=alpha)
    table = frequency.buckets(ids, seeds=estimator.state.seeds, num_buckets=num_buckets)[0]
    assert np.unique(table).size == ids.size  # no collisions
    q_of_id = np.repeat(qs, replicas)
    rng = np.random.default_rng(20190916)
    for _ in range(steps):
        estimator.update(ids[rng.random(ids.size) < q_of_id])
    gaps = estimator.state.gap[0, table]
    np.testing.assert_allclose(estimator.probability(ids), 1 / gaps, rtol=1e-15)
    for k, q in enumerate(qs):
        g = gaps[k * replicas : (k + 1) * replicas]
        mean, variance = 1 / q, alpha / (2 - alpha) * (1 - q) / q**2
        z_mean = (g.mean() - mean) / math.sqrt(variance / replicas)
        s2 = g.var(ddof=1)
        m4 = np.mean((g - g.mean()) ** 4)
        z_var = (s2 - variance) / math.sqrt((m4 - s2**2) / replicas)
        assert abs(z_mean) < 4.5, (q, g.mean(), mean, z_mean)
        assert abs(z_var) < 4.5, (q, s2, variance, z_var)


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_int32_ids_update_like_int64(backend):
    values = [3, -7, 2**31 - 1, 3]
    wide = frequency.update(new_state(backend, 64), ids_of(backend, values), step=2)
    narrow = frequency.update(new_state(backend, 64), ids_of(backend, values, np.int32), step=2)
    assert_states_equal(narrow, wide)
    estimator = FrequencyEstimator(64, xp=backend.xp, device=backend.device)
    estimator.update(ids_of(backend, values, np.int32), step=2)
    assert_states_equal(estimator.state, wide)
    np.testing.assert_array_equal(
        to_numpy(estimator.probability(ids_of(backend, values, np.int32))),
        to_numpy(frequency.probability(wide, ids_of(backend, values))),
    )


def test_repeated_id_updates_once():
    once = frequency.update(frequency.init(64), np.asarray([5]), step=4, learning_rate=0.3)
    many = frequency.update(frequency.init(64), np.asarray([5, 5, 5, 5]), step=4, learning_rate=0.3)
    assert_states_equal(many, once)
    once = frequency.update(once, np.asarray([5]), step=6, learning_rate=0.3)
    many = frequency.update(many, np.asarray([5, 5]), step=6, learning_rate=0.3)
    assert_states_equal(many, once)
    bucket = int(frequency.buckets(np.asarray([5]), seeds=once.seeds, num_buckets=64)[0, 0])
    first = 0.7 * 100 + 0.3 * 4
    assert float(once.gap[0, bucket]) == pytest.approx(0.7 * first + 0.3 * 2, rel=1e-15)


def test_colliding_ids_update_their_bucket_once():
    num_buckets = 8
    seeds = frequency.init(num_buckets).seeds
    table = frequency.buckets(np.arange(100), seeds=seeds, num_buckets=num_buckets)[0]
    x, y = (int(i) for i in np.flatnonzero(table == table[0])[:2])
    both = frequency.update(frequency.init(num_buckets), np.asarray([x, y]), step=3)
    one = frequency.update(frequency.init(num_buckets), np.asarray([x]), step=3)
    assert_states_equal(both, one)
    both = frequency.update(both, np.asarray([y, x, y]), step=5)
    one = frequency.update(one, np.asarray([y]), step=5)
    assert_states_equal(both, one)
    # and they read the same estimate
    p = frequency.probability(both, np.asarray([x, y]))
    assert p[0] == p[1]


def test_item_in_every_batch_saturates_at_one():
    alpha, b0 = 0.1, 100.0
    estimator = FrequencyEstimator(1 << 12, learning_rate=alpha, initial_gap=b0)
    batch = np.asarray([3, 3, 3, 9], dtype=np.int64)
    for _ in range(200):
        estimator.update(batch)
    # B - 1 = 0.9**199 (B'_0 - 1) with B'_0 = 0.9 * 100 + 0.1 * 1 (the first gap is 1)
    residual = (1 - alpha) ** 199 * ((1 - alpha) * b0 + alpha - 1)
    p = estimator.probability(batch)
    np.testing.assert_allclose(1 / p - 1, residual, rtol=1e-6)
    for _ in range(200):
        estimator.update(batch)
    p = estimator.probability(batch)
    # the float64 recursion stops a few units in the last place above 1
    assert np.all(p <= 1.0)
    assert np.all(p > 1 - 1e-14)


def test_several_hashes_read_the_largest_gap():
    num_buckets, num_hashes = 16, 3
    state = frequency.init(num_buckets, num_hashes=num_hashes, seed=9)
    rng = np.random.default_rng(3)
    for t in range(1, 40):
        state = frequency.update(state, rng.integers(0, 20, size=6), step=t, learning_rate=0.2)
    ids = np.arange(-5, 60, dtype=np.int64)
    table = frequency.buckets(ids, seeds=state.seeds, num_buckets=num_buckets)
    gaps = np.stack([state.gap[i, table[i]] for i in range(num_hashes)])
    expected = np.clip(1 / gaps.max(axis=0), 1e-6, 1)
    np.testing.assert_array_equal(frequency.probability(state, ids), expected)
    # the hashes disagree somewhere, so the max is not any single hash's estimate
    assert np.any(gaps.max(axis=0) != gaps.min(axis=0))
    for i in range(num_hashes):
        assert np.any(gaps.max(axis=0) != gaps[i])


def test_unseen_ids_and_clipping():
    state = frequency.init(1 << 12, initial_gap=40.0)
    state = frequency.update(state, np.asarray([1, 2]), step=1)
    # each chosen id's bucket differs from the buckets of all smaller ids
    unseen = distinct_bucket_ids(10, 1 << 12)
    unseen = unseen[unseen > 2]
    np.testing.assert_array_equal(frequency.probability(state, unseen), 1 / 40.0)
    np.testing.assert_array_equal(frequency.probability(state, unseen, min_probability=0.5), 0.5)
    tiny = frequency.init(64, initial_gap=1e8)
    np.testing.assert_array_equal(frequency.probability(tiny, np.asarray([4])), [1e-6])
    np.testing.assert_array_equal(
        frequency.probability(tiny, np.asarray([4]), min_probability=1e-9), [1e-8]
    )
    short = frequency.init(64, initial_gap=0.25)
    np.testing.assert_array_equal(frequency.probability(short, np.asarray([4, 5])), [1.0, 1.0])
    np.testing.assert_array_equal(
        frequency.probability(tiny, np.asarray([4]), min_probability=1.0), [1.0]
    )
    assert frequency.probability(state, np.asarray([], dtype=np.int64)).shape == (0,)


def test_first_sighting_modes():
    item = np.asarray([8])
    updated = frequency.update(
        frequency.init(32, initial_gap=10.0), item, step=5, learning_rate=0.5
    )
    recorded = frequency.update(
        frequency.init(32, initial_gap=10.0),
        item,
        step=5,
        learning_rate=0.5,
        first_sighting="record",
    )
    np.testing.assert_array_equal(frequency.probability(updated, item), [1 / 7.5])
    np.testing.assert_array_equal(frequency.probability(recorded, item), [1 / 10.0])
    np.testing.assert_array_equal(updated.last_step, recorded.last_step)
    # after the first sighting the two modes apply the same formula
    updated = frequency.update(updated, item, step=7, learning_rate=0.5, first_sighting="record")
    recorded = frequency.update(recorded, item, step=7, learning_rate=0.5)
    np.testing.assert_array_equal(frequency.probability(updated, item), [1 / 4.75])
    np.testing.assert_array_equal(frequency.probability(recorded, item), [1 / 6.0])


def test_learning_rate_one_and_array_learning_rate():
    state = frequency.update(frequency.init(32), np.asarray([1]), step=3, learning_rate=1)
    state = frequency.update(state, np.asarray([1]), step=10, learning_rate=1.0)
    np.testing.assert_array_equal(frequency.probability(state, np.asarray([1])), [1 / 7])
    a = frequency.update(frequency.init(32), np.asarray([1, 2]), step=3, learning_rate=0.25)
    b = frequency.update(
        frequency.init(32), np.asarray([1, 2]), step=3, learning_rate=np.asarray(0.25)
    )
    assert_states_equal(a, b)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_step_errors():
    state = frequency.update(frequency.init(16), np.asarray([1]), step=5)
    ids = np.asarray([1])
    for bad in (5, 4, np.asarray(5), np.int64(3)):
        with pytest.raises(
            ValueError, match=r"step must be greater than state\.step = 5.*got step = [345]"
        ):
            frequency.update(state, ids, step=bad)
    with pytest.raises(ValueError, match=r"step must be >= 1.*got 0"):
        frequency.update(frequency.init(16), ids, step=0)
    with pytest.raises(ValueError, match=r"step must be >= 1.*got -3"):
        frequency.update(frequency.init(16), ids, step=np.asarray(-3))
    for bad in (6.0, True, "6", None):
        with pytest.raises(TypeError, match=r"step must be an integer"):
            frequency.update(state, ids, step=bad)
    with pytest.raises(TypeError, match=r"step must be an integer.*float64"):
        frequency.update(state, ids, step=np.asarray(6.0))
    with pytest.raises(ValueError, match=r"step must be 0-D"):
        frequency.update(state, ids, step=np.asarray([6]))
    with pytest.raises(ValueError, match=r"step must be < 2\*\*63"):
        frequency.update(state, ids, step=2**63)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, math.nan, np.asarray(0.0), np.asarray(2.0)])
def test_learning_rate_out_of_range(bad):
    with pytest.raises(ValueError, match=r"learning_rate must lie in \(0, 1\]"):
        frequency.update(frequency.init(8), np.asarray([1]), step=1, learning_rate=bad)


def test_learning_rate_type_errors():
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        frequency.update(frequency.init(8), np.asarray([1]), step=1, learning_rate="0.1")
    with pytest.raises(TypeError, match=r"learning_rate must be a real number.*int64"):
        frequency.update(frequency.init(8), np.asarray([1]), step=1, learning_rate=np.asarray(1))
    with pytest.raises(ValueError, match="learning_rate must be 0-D"):
        frequency.update(
            frequency.init(8), np.asarray([1]), step=1, learning_rate=np.asarray([0.1])
        )
    with pytest.raises(ValueError, match=r"learning_rate must lie in \(0, 1\]"):
        FrequencyEstimator(8, learning_rate=2.0)


def test_first_sighting_errors():
    for bad in ("Update", "skip", None, 1):
        with pytest.raises(ValueError, match="first_sighting must be 'update' or 'record'"):
            frequency.update(frequency.init(8), np.asarray([1]), step=1, first_sighting=bad)
    with pytest.raises(ValueError, match="first_sighting"):
        FrequencyEstimator(8, first_sighting="sequential")


def test_ids_errors():
    state = frequency.init(8)
    with pytest.raises(ValueError, match=r"ids must be 1-D.*got 2-D with shape \(2, 1\)"):
        frequency.update(state, np.asarray([[1], [2]]), step=1)
    with pytest.raises(ValueError, match=r"ids must be 1-D.*got 0-D"):
        frequency.probability(state, np.asarray(3))
    with pytest.raises(TypeError, match=r"ids must have an integer dtype.*float64"):
        frequency.update(state, np.asarray([1.0]), step=1)
    with pytest.raises(TypeError, match=r"ids must have an integer dtype.*bool"):
        frequency.probability(state, np.asarray([True]))
    with pytest.raises(TypeError, match=r"ids must be a 1-D integer array.*list"):
        frequency.update(state, [1, 2], step=1)
    with pytest.raises(ValueError, match=r"ids must be 1-D"):
        FrequencyEstimator(8).update(np.zeros((2, 2), dtype=np.int64))


def test_min_probability_errors():
    state = frequency.init(8)
    for bad in (0.0, -1e-6, 1.5):
        with pytest.raises(ValueError, match=r"min_probability must lie in \(0, 1\]"):
            frequency.probability(state, np.asarray([1]), min_probability=bad)
    with pytest.raises(TypeError, match="min_probability must be a real number"):
        frequency.probability(state, np.asarray([1]), min_probability="1e-6")


def test_state_from_another_library():
    torch = pytest.importorskip("torch")
    state = frequency.init(8)
    with pytest.raises(TypeError, match=r"ids is a torch array but state holds numpy arrays"):
        frequency.update(state, torch.asarray([1]), step=1)
    with pytest.raises(TypeError, match=r"state holds numpy arrays.*as_namespace"):
        frequency.probability(state, torch.asarray([1]))
    mixed = state._replace(gap=torch.asarray(state.gap))
    with pytest.raises(
        TypeError, match=r"state\.last_step is a numpy array but state\.gap is a torch"
    ):
        frequency.probability(mixed, np.asarray([1]))
    with pytest.raises(TypeError, match=r"the estimator holds numpy arrays"):
        FrequencyEstimator(8).update(torch.asarray([1]))


def test_state_with_wrong_dtypes_or_shapes():
    state = frequency.init(8, num_hashes=2)
    ids = np.asarray([1])
    cases = [
        (
            state._replace(gap=state.gap.astype(np.float16)),
            TypeError,
            r"state\.gap must have dtype float32 or float64, got float16",
        ),
        (
            state._replace(last_step=state.last_step.astype(np.int32)),
            TypeError,
            r"state\.last_step must have dtype int64, got int32",
        ),
        (
            state._replace(seeds=state.seeds.astype(np.uint64)),
            TypeError,
            r"state\.seeds must have dtype int64",
        ),
        (state._replace(step=np.asarray(0.0)), TypeError, r"state\.step must have dtype int64"),
        (
            state._replace(gap=state.gap[:, :4]),
            ValueError,
            r"state\.gap must have shape \(2, 8\).*got shape \(2, 4\)",
        ),
        (state._replace(seeds=state.seeds[:1]), ValueError, r"state\.seeds must have shape \(2,\)"),
        (state._replace(step=np.asarray([0])), ValueError, r"state\.step must have shape \(\)"),
        (
            state._replace(last_step=np.zeros(8, dtype=np.int64)),
            ValueError,
            r"state\.last_step must be 2-D",
        ),
        (tuple(state), TypeError, r"state must be a FrequencyState.*got tuple"),
        (state._replace(gap=[1.0]), TypeError, r"state\.gap must be an array"),
    ]
    for bad, error, match in cases:
        with pytest.raises(error, match=match):
            frequency.update(bad, ids, step=1)
        with pytest.raises(error, match=match):
            frequency.probability(bad, ids)


def test_state_on_another_device():
    xp = pytest.importorskip("array_api_strict")
    state = frequency.init(8, xp=xp, device=xp.Device("device1"))
    assert state.gap.device == xp.Device("device1")
    ids = xp.asarray([1, 2])
    with pytest.raises(
        ValueError, match=r"state\.gap is on device .*device1.* but ids is on device"
    ):
        frequency.update(state, ids, step=1)
    with pytest.raises(ValueError, match=r"state\.gap is on device"):
        frequency.probability(state, ids)
    moved = xp.asarray(ids, device=xp.Device("device1"))
    after = frequency.update(state, moved, step=1)
    assert after.gap.device == xp.Device("device1")
    assert after.step.device == xp.Device("device1")
    assert frequency.probability(after, moved).device == xp.Device("device1")
    with pytest.raises(ValueError, match=r"step is on device"):
        frequency.update(state, moved, step=xp.asarray(1))


def test_buckets_errors():
    ids = np.asarray([1, 2])
    with pytest.raises(ValueError, match=r"num_buckets must be <= 2\*\*32"):
        frequency.buckets(ids, seeds=[1], num_buckets=2**32 + 1)
    with pytest.raises(ValueError, match=r"num_buckets must be >= 1"):
        frequency.buckets(ids, seeds=[1], num_buckets=0)
    with pytest.raises(TypeError, match=r"seeds must have an integer dtype.*float64"):
        frequency.buckets(ids, seeds=np.asarray([1.0]), num_buckets=8)
    with pytest.raises(ValueError, match=r"seeds must be 1-D"):
        frequency.buckets(ids, seeds=np.asarray([[1]]), num_buckets=8)
    with pytest.raises(ValueError, match=r"seeds must hold at least one seed"):
        frequency.buckets(ids, seeds=[], num_buckets=8)
    with pytest.raises(ValueError, match=r"seeds\[1\] must lie in \[-2\*\*63, 2\*\*64\)"):
        frequency.buckets(ids, seeds=[1, 2**64], num_buckets=8)
    with pytest.raises(TypeError, match=r"seeds\[0\] must be an integer"):
        frequency.buckets(ids, seeds=[1.0], num_buckets=8)
    with pytest.raises(TypeError, match=r"seeds must be a 1-D int64 array or a sequence"):
        frequency.buckets(ids, seeds=7, num_buckets=8)
    with pytest.raises(TypeError, match=r"ids must have an integer dtype"):
        frequency.buckets(np.asarray([1.0]), seeds=[1], num_buckets=8)
    with pytest.raises(ValueError, match=r"ids must be 1-D"):
        frequency.buckets(np.asarray(1), seeds=[1], num_buckets=8)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"ids is a numpy array but seeds is a torch array"):
        frequency.buckets(ids, seeds=torch.asarray([1]), num_buckets=8)


# ---------------------------------------------------------------------------------------------
# purity, the class, backends, jax.jit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_update_never_writes_its_input(backend):
    state = new_state(backend, 32, num_hashes=2)
    for t, batch, mode in random_stream(1, steps=6):
        before = host_state(state)
        after = frequency.update(state, ids_of(backend, batch), step=t, first_sighting=mode)
        for name, value in host_state(state).items():
            np.testing.assert_array_equal(value, before[name], err_msg=name)
        state = freeze(after) if backend.readonly else after


@pytest.mark.parametrize(("backend_name", "dtype"), BACKEND_DTYPE_PARAMS)
def test_backends_agree_bit_for_bit(backend, dtype):
    """The same stream gives the same state, bit for bit, as NumPy's, and the same reads."""
    num_buckets = 24
    reference = frequency.init(num_buckets, num_hashes=2, initial_gap=30.0, dtype=dtype, seed=4)
    state = new_state(backend, num_buckets, num_hashes=2, initial_gap=30.0, dtype=dtype, seed=4)
    probe = np.arange(-30, 30, dtype=np.int64)
    for t, batch, mode in random_stream(2):
        kwargs = {"step": t, "learning_rate": 0.15, "first_sighting": mode}
        reference = frequency.update(reference, batch, **kwargs)
        state = frequency.update(state, ids_of(backend, batch), **kwargs)
        state = freeze(state) if backend.readonly else state
        assert_states_equal(state, reference)
    xp = backend.xp
    for x in state:
        assert type(x) is type(state.gap)
    assert state.gap.dtype == getattr(xp, dtype)
    p = frequency.probability(state, ids_of(backend, probe))
    assert p.dtype == getattr(xp, dtype)
    assert tuple(p.shape) == probe.shape
    np.testing.assert_array_equal(to_numpy(p), frequency.probability(reference, probe))


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_estimator_equals_the_functions(backend):
    xp = backend.xp
    estimator = FrequencyEstimator(
        40, num_hashes=2, learning_rate=0.2, first_sighting="record", xp=xp, device=backend.device
    )
    state = new_state(backend, 40, num_hashes=2)
    gap_before = estimator.state.gap
    for t, batch, _ in random_stream(3):
        ids = ids_of(backend, batch)
        estimator.update(ids, step=t)
        state = frequency.update(state, ids, step=t, learning_rate=0.2, first_sighting="record")
        assert_states_equal(estimator.state, state)
        np.testing.assert_array_equal(
            to_numpy(estimator.probability(ids)), to_numpy(frequency.probability(state, ids))
        )
    estimator.update(ids_of(backend, [1, 2, 3]))  # step: the last one + 1
    state = frequency.update(
        state,
        ids_of(backend, [1, 2, 3]),
        step=int(state.step) + 1,
        learning_rate=0.2,
        first_sighting="record",
    )
    assert estimator.step == int(state.step)
    assert_states_equal(estimator.state, state)
    if backend.name in ("numpy", "numpy_readonly"):
        assert np.shares_memory(estimator.state.gap, gap_before)  # updated in place
        assert not np.array_equal(gap_before, frequency.init(40, num_hashes=2).gap)
    elif backend.name == "torch":
        assert estimator.state.gap.data_ptr() == gap_before.data_ptr()


def test_estimator_reads_fresh_values_after_its_ids_change():
    estimator = FrequencyEstimator(64, learning_rate=0.5)
    buffer = np.asarray([1, 2, 3], dtype=np.int64)
    estimator.update(buffer)
    cached = estimator.probability(buffer)
    np.testing.assert_array_equal(cached, frequency.probability(estimator.state, buffer))
    buffer[:] = [4, 5, 1]  # the caller reuses its buffer
    np.testing.assert_array_equal(
        estimator.probability(buffer), frequency.probability(estimator.state, buffer)
    )
    np.testing.assert_array_equal(
        estimator.probability(np.asarray([1, 2])),
        frequency.probability(estimator.state, np.asarray([1, 2])),
    )
    estimator.update(np.asarray([], dtype=np.int64))
    np.testing.assert_array_equal(
        estimator.probability(buffer), frequency.probability(estimator.state, buffer)
    )


def test_estimator_steps_and_errors():
    estimator = FrequencyEstimator(16)
    assert estimator.step == 0
    estimator.update(np.asarray([1]))
    estimator.update(np.asarray([1]), step=np.asarray(7))
    estimator.update(np.asarray([1]))
    assert estimator.step == 8
    assert int(estimator.state.step) == 8
    with pytest.raises(ValueError, match=r"step must be greater than the estimator's step = 8"):
        estimator.update(np.asarray([1]), step=8)
    with pytest.raises(TypeError, match=r"step must be an integer"):
        estimator.update(np.asarray([1]), step=9.0)
    with pytest.raises(ValueError, match=r"step must be 0-D"):
        estimator.update(np.asarray([1]), step=np.asarray([9]))
    assert estimator.step == 8
    assert repr(estimator) == (
        "FrequencyEstimator(num_buckets=16, num_hashes=1, learning_rate=0.01, "
        "first_sighting='update', step=8)"
    )
    assert (estimator.num_buckets, estimator.num_hashes) == (16, 1)
    assert (estimator.learning_rate, estimator.first_sighting) == (0.01, "update")


def test_estimator_from_state_copies():
    state = freeze(frequency.update(frequency.init(16), np.asarray([3]), step=2))
    estimator = FrequencyEstimator.from_state(state, learning_rate=0.5)
    estimator.update(np.asarray([3, 4]))
    assert estimator.step == 3
    assert int(state.step) == 2
    expected = frequency.update(state, np.asarray([3, 4]), step=3, learning_rate=0.5)
    assert_states_equal(estimator.state, expected)


@pytest.mark.parametrize("learning_rate", [0.5, 0.3])
def test_jit_matches_eager(learning_rate):
    """``jax.jit`` of update (traced step and learning rate) and of probability.

    Under jit XLA may fuse ``(1 - a) * B + a * gap`` into fused multiply-adds (one rounding
    instead of two): with a = 0.5 every product is exact and the results are identical;
    otherwise they may differ in the last bits.
    """
    jax = pytest.importorskip("jax")
    with backend_context("jax") as b:
        jnp = b.xp
        update = jax.jit(frequency.update, static_argnames=("first_sighting",))
        read = jax.jit(frequency.probability)
        eager = traced = frequency.init(32, num_hashes=2, xp=jnp)
        for t, batch, mode in random_stream(4, steps=8):
            ids = jnp.asarray(batch)
            kwargs = {"learning_rate": learning_rate, "first_sighting": mode}
            eager = frequency.update(eager, ids, step=t, **kwargs)
            traced = update(traced, ids, step=jnp.asarray(t), **kwargs)
            assert isinstance(traced, FrequencyState)
            if learning_rate == 0.5:
                assert_states_equal(traced, eager)
            else:
                for name in ("last_step", "seeds", "step"):
                    np.testing.assert_array_equal(
                        to_numpy(getattr(traced, name)), to_numpy(getattr(eager, name))
                    )
                np.testing.assert_allclose(
                    to_numpy(traced.gap), to_numpy(eager.gap), rtol=2e-15, atol=0
                )
            np.testing.assert_array_equal(
                to_numpy(read(eager, ids)), to_numpy(frequency.probability(eager, ids))
            )
        # value checks read to the host, so they are skipped under jit
        stale = update(traced, jnp.asarray([1]), step=jnp.asarray(1))
        assert int(stale.step) == 1


def test_estimator_on_jax():
    pytest.importorskip("jax")
    with backend_context("jax") as b:
        estimator = FrequencyEstimator(32, xp=b.xp, learning_rate=0.5)
        state = frequency.init(32, xp=b.xp)
        for t, batch, _ in random_stream(5, steps=5):
            estimator.update(b.xp.asarray(batch), step=t)
            state = frequency.update(state, b.xp.asarray(batch), step=t, learning_rate=0.5)
        assert_states_equal(estimator.state, state)


# ---------------------------------------------------------------------------------------------
# state I/O and moving between libraries
# ---------------------------------------------------------------------------------------------


def _trained(xp=None, device=None, dtype=None):
    state = frequency.init(16, num_hashes=2, dtype=dtype, xp=xp, device=device, seed=-3)
    for t, batch, mode in random_stream(6, steps=5):
        ids = batch if xp is None else xp.asarray(batch, device=device)
        state = frequency.update(state, ids, step=t, first_sighting=mode, learning_rate=1 / 3)
    return state


@pytest.mark.parametrize("backend_name", BACKEND_PARAMS)
def test_save_load_round_trip(backend, tmp_path):
    state = _trained(backend.xp, backend.device, dtype="float32")
    path = tmp_path / "estimator"  # no suffix: written as given
    frequency.save(state, path)
    assert path.exists()
    assert_states_equal(frequency.load(path), state)
    loaded = frequency.load(str(path), xp=backend.xp, device=backend.device)
    assert type(loaded.gap) is type(state.gap)
    assert_states_equal(loaded, state)
    # and the loaded state goes on like the original
    ids = ids_of(backend, [1, 2, 3])
    assert_states_equal(
        frequency.update(loaded, ids, step=100), frequency.update(state, ids, step=100)
    )


def test_save_load_file_objects_and_contents():
    state = _trained()
    buffer = io.BytesIO()
    frequency.save(state, buffer)
    buffer.seek(0)
    with np.load(buffer) as data:
        assert sorted(data.files) == sorted(
            ["format", "format_version", "last_step", "gap", "seeds", "step"]
        )
        assert str(data["format"]) == "refloss.frequency.FrequencyState"
        assert int(data["format_version"]) == 1
    buffer.seek(0)
    assert_states_equal(frequency.load(buffer), state)


def _archive(path, **overrides):
    state = _trained()
    arrays = {
        "format": np.asarray("refloss.frequency.FrequencyState"),
        "format_version": np.asarray(1),
        **{name: getattr(state, name) for name in FrequencyState._fields},
        **overrides,
    }
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_load_errors(tmp_path):
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"is not an \.npz archive"):
        frequency.load(tmp_path / "plain.npy")
    with pytest.raises(ValueError, match="has format_version 2"):
        frequency.load(_archive(tmp_path / "v2.npz", format_version=np.asarray(2)))
    with pytest.raises(ValueError, match=r"is not a refloss\.frequency state"):
        frequency.load(_archive(tmp_path / "other.npz", format=np.asarray("something else")))
    with pytest.raises(ValueError, match=r"is not a refloss\.frequency state"):
        frequency.load(_archive(tmp_path / "partial.npz", seeds=None))
    with pytest.raises(ValueError, match="gap must be finite and > 0"):
        frequency.load(_archive(tmp_path / "gap.npz", gap=np.full((2, 16), -1.0)))
    with pytest.raises(ValueError, match=r"last_step must lie in \[0, step"):
        frequency.load(_archive(tmp_path / "last.npz", step=np.asarray(0)))
    with pytest.raises(TypeError, match=r"state\.last_step must have dtype int64"):
        frequency.load(_archive(tmp_path / "dtype.npz", last_step=np.zeros((2, 16))))


@pytest.mark.parametrize("backend_name", ["array_api_strict", "torch", "jax"])
def test_as_namespace_round_trips(backend):
    state = _trained(dtype="float32")
    moved = frequency.as_namespace(state, backend.xp, device=backend.device)
    assert type(moved.gap) is type(backend.asarray(np.zeros(1)))
    assert_states_equal(moved, state)
    back = frequency.as_namespace(moved, np)
    assert isinstance(back.gap, np.ndarray)
    assert_states_equal(back, state)


def test_as_namespace_copies():
    state = _trained()
    moved = frequency.as_namespace(state, np)
    moved.gap[0, 0] = -1.0
    assert state.gap[0, 0] != -1.0


def test_as_namespace_to_another_device():
    xp = pytest.importorskip("array_api_strict")
    device = xp.Device("device1")
    moved = frequency.as_namespace(_trained(), xp, device=device)
    assert all(x.device == device for x in moved)
    assert_states_equal(frequency.as_namespace(moved, np), _trained())
    assert_states_equal(frequency.load(_saved(moved), xp=xp, device=device), moved)


def _saved(state):
    buffer = io.BytesIO()
    frequency.save(state, buffer)
    buffer.seek(0)
    return buffer


# ---------------------------------------------------------------------------------------------
# string ids
# ---------------------------------------------------------------------------------------------

STRINGS = ["", "item-1", "héllo", "video:123456", "💡", "a" * 1000]


def test_string_ids():
    out = frequency.string_ids(STRINGS)
    assert out.dtype == np.int64
    assert out.shape == (len(STRINGS),)
    assert out.tolist() == [ref_string_id(s) for s in STRINGS]
    # pinned values: these must never change
    assert out[:4].tolist() == [
        -5426141060434712860,
        8406168460641299428,
        -3769739651933053677,
        6771529524842847271,
    ]
    assert frequency.string_ids(iter(["item-1"])).tolist() == [8406168460641299428]
    assert frequency.string_ids([]).shape == (0,)
    assert frequency.string_ids(np.asarray(["item-1"])).tolist() == [8406168460641299428]


def test_string_ids_errors():
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        frequency.string_ids("item-1")
    with pytest.raises(TypeError, match=r"strings\[1\] must be a str, got int"):
        frequency.string_ids(["a", 3])
    with pytest.raises(TypeError, match=r"strings\[0\] must be a str, got bytes"):
        frequency.string_ids([b"a"])


def test_string_ids_do_not_depend_on_the_process():
    code = (
        "import sys; from refloss import frequency; "
        "print(frequency.string_ids(sys.argv[1:]).tolist())"
    )
    root = Path(__file__).resolve().parents[1]
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(root))
        result = subprocess.run(
            [sys.executable, "-c", code, *STRINGS[:4]],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        outputs.append(result.stdout.strip())
    expected = str(frequency.string_ids(STRINGS[:4]).tolist())
    assert outputs == [expected, expected]


def test_fixture_adapter_follows_the_ids_device():
    # refloss.testing replays frequency_test.json with the ids on the device under test
    # (a GPU in benchmarks/gpu_check.py); init() knows only the namespace
    xs = pytest.importorskip("array_api_strict")
    from refloss.testing import check_against_fixture, fixture_cases
    from refloss.testing._families import FrequencyAdapter

    cases = [case for case in fixture_cases("frequency") if case.result == "valid"]
    assert cases
    for case in cases:
        report = check_against_fixture(FrequencyAdapter, case, xp=xs, device=xs.Device("device1"))
        assert report.outcome == "matched"
