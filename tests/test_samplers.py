"""refloss.samplers against independent derivations.

Probabilities against hand formulas, expected counts against exact rational arithmetic,
draws against their distributions with chi-square goodness-of-fit tests at fixed seeds, and
unique draws against exact expectations derived two ways (a Markov chain over the set of ids
seen, and Poissonisation). Every random test uses a fixed seed, so it is deterministic.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from _helpers import assert_like, to_numpy
from scipy import integrate, stats

from refloss import samplers

R = 20  # the range of the goodness-of-fit tests
COUNTS = np.array([5, 0, 3, 8, 1, 0, 2, 13, 4, 4, 7, 1, 9, 2, 6, 3, 0, 11, 2, 5])
DISTORTION = 0.75


def _log_uniform_p(k, range_max):
    """The log-uniform probability from its definition, at 40 digits, rounded once."""
    with mpmath.workdps(40):
        return float((mpmath.log(k + 2) - mpmath.log(k + 1)) / mpmath.log(range_max + 1))


def _unigram_p(counts, distortion):
    weights = [float(c) ** distortion if c > 0 else float(distortion == 0) for c in counts]
    total = math.fsum(weights)
    return np.array([w / total for w in weights])


EXPECTED_P = {
    "uniform": np.full(R, 1.0 / R),
    "log_uniform": np.array([_log_uniform_p(k, R) for k in range(R)]),
    "unigram": _unigram_p(COUNTS, DISTORTION),
}


def _sampler(kind):
    return {
        "uniform": lambda: samplers.uniform(R),
        "log_uniform": lambda: samplers.log_uniform(R),
        "unigram": lambda: samplers.unigram(COUNTS, distortion=DISTORTION),
    }[kind]()


KINDS = tuple(EXPECTED_P)


# ---------------------------------------------------------------------------------------------
# probability
# ---------------------------------------------------------------------------------------------


def test_log_uniform_hand_values():
    p = samplers.log_uniform(100).probability([0, 1, 9, 99])
    expected = [
        math.log(2) / math.log(101),
        math.log(3 / 2) / math.log(101),
        math.log(11 / 10) / math.log(101),
        math.log(101 / 100) / math.log(101),
    ]
    np.testing.assert_allclose(p, expected, rtol=1e-15)


def test_uniform_probability():
    np.testing.assert_array_equal(samplers.uniform(8).probability([0, 7, 3]), [0.125] * 3)
    assert samplers.uniform(1).probability(0) == 1.0


@pytest.mark.parametrize(
    "sampler",
    [
        samplers.uniform(7),
        samplers.uniform(1),
        samplers.log_uniform(1),
        samplers.log_uniform(1000),
        samplers.log_uniform(100_003),
        samplers.unigram(COUNTS, distortion=DISTORTION),
        samplers.unigram([3.5, 1e-300, 1e300], distortion=1.0),
    ],
    ids=repr,
)
def test_probabilities_sum_to_one(sampler):
    p = sampler.probability(np.arange(sampler.range_max))
    assert p.dtype == np.float64
    assert np.all(p >= 0)
    assert abs(math.fsum(p.tolist()) - 1.0) < 1e-13


@pytest.mark.parametrize(
    ("counts", "distortion", "expected"),
    [
        ([1, 4, 9, 0], 0.5, [1 / 6, 2 / 6, 3 / 6, 0.0]),
        ([2, 6], 1.0, [0.25, 0.75]),
        ([0.2, 0.3, 0.5], 1.0, [0.2, 0.3, 0.5]),  # probabilities are counts too
        ([16, 1], 0.75, [8 / 9, 1 / 9]),
        ([0, 5, 0, 2], 0.0, [0.25] * 4),  # 0 ** 0 = 1: every id equally likely
        ([7], 2.0, [1.0]),
    ],
)
def test_unigram_normalisation_and_distortion(counts, distortion, expected):
    sampler = samplers.unigram(counts, distortion=distortion)
    assert sampler.range_max == len(counts)
    np.testing.assert_allclose(sampler.probability(np.arange(len(counts))), expected, rtol=1e-15)
    np.testing.assert_allclose(sampler.probabilities, expected, rtol=1e-15)


def test_probability_keeps_the_shape_of_ids():
    sampler = samplers.log_uniform(10)
    ids = np.array([[0, 3, 9], [1, 1, 2]], dtype=np.int32)
    p = sampler.probability(ids)
    assert p.shape == (2, 3)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, [[_log_uniform_p(int(k), 10) for k in row] for row in ids])
    assert sampler.probability(3).shape == ()
    assert sampler.probability(np.empty((0, 2), dtype=np.int64)).shape == (0, 2)


# ---------------------------------------------------------------------------------------------
# expected_count
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_expected_count_with_replacement_is_p_times_s(kind):
    count = _sampler(kind).expected_count(np.arange(R), num_sampled=7, unique=False)
    np.testing.assert_allclose(count, 7 * EXPECTED_P[kind], rtol=1e-15)


def _inclusion_exact(p: float, num_tries: int) -> Fraction:
    """``1 - (1 - p) ** num_tries`` in exact rational arithmetic, ``p`` the float as given."""
    return 1 - (1 - Fraction(p)) ** num_tries


@pytest.mark.parametrize(
    ("sampler", "ids", "num_sampled", "num_tries"),
    [
        (samplers.uniform(10**12), [0, 999_999_999_999], 1000, 1000),  # p = 1e-12
        (samplers.uniform(10**12), [5], 3, 4321),
        (samplers.log_uniform(10**6), [0, 17, 999_999], 64, 80),
        (samplers.uniform(4), [0, 1], 2, 5),
        (samplers.unigram([1e-12, 1.0]), [0, 1], 1, 3),
    ],
)
def test_expected_count_unique_is_the_exact_inclusion_probability(
    sampler, ids, num_sampled, num_tries
):
    count = sampler.expected_count(ids, num_sampled=num_sampled, unique=True, num_tries=num_tries)
    p = sampler.probability(ids)
    for c, pk in zip(count.tolist(), p.tolist(), strict=True):
        exact = _inclusion_exact(pk, num_tries)
        assert abs(Fraction(c) - exact) <= Fraction(1e-15) * exact, (c, float(exact))


def test_naive_inclusion_formula_would_lose_digits():
    """The case above has power: the naive float formula is far from the exact value."""
    p, n = 1e-12, 1000
    exact = _inclusion_exact(p, n)
    naive = 1 - (1 - p) ** n
    assert abs(Fraction(naive) - exact) > Fraction(1e-6) * exact


def test_expected_count_unique_edge_probabilities():
    # P = 1 (one id that can be drawn) is certain; P = 0 is never included
    sampler = samplers.unigram([0, 1, 0])
    count = sampler.expected_count([0, 1, 2], num_sampled=1, unique=True, num_tries=4)
    np.testing.assert_array_equal(count, [0.0, 1.0, 0.0])
    assert not np.signbit(count[0])
    assert samplers.uniform(1).expected_count(0, num_sampled=1, unique=True, num_tries=1) == 1.0


def test_expected_count_unique_without_rejection_is_not_p_times_s():
    """num_tries == num_sampled still gives the inclusion probability (unlike TF)."""
    count = samplers.uniform(4).expected_count([0], num_sampled=2, unique=True, num_tries=2)
    assert count[0] == pytest.approx(1 - 0.75**2, rel=1e-15)
    assert count[0] != 0.5


# ---------------------------------------------------------------------------------------------
# draws with replacement: goodness of fit
# ---------------------------------------------------------------------------------------------


def _pool(observed, expected, minimum=5.0):
    """Merge the smallest expected bins until each holds at least ``minimum``."""
    order = np.argsort(expected, kind="stable")
    obs, exp = [], []
    acc_o = acc_e = 0.0
    for k in order:
        acc_o += observed[k]
        acc_e += expected[k]
        if acc_e >= minimum:
            obs.append(acc_o)
            exp.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0:  # leftovers join the last bin
        obs[-1] += acc_o
        exp[-1] += acc_e
    return np.array(obs), np.array(exp)


def _chisquare_pvalue(ids, probabilities):
    """p-value of the chi-square test of the histogram of ``ids`` against ``probabilities``.

    Ids of probability 0 must never occur; they are left out of the test.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    observed = np.bincount(ids, minlength=probabilities.size).astype(np.float64)
    assert observed.size == probabilities.size, "an id outside the range was drawn"
    assert np.all(observed[probabilities == 0] == 0), "an id of probability 0 was drawn"
    live = probabilities > 0
    expected = probabilities[live] / probabilities[live].sum() * ids.size
    obs, exp = _pool(observed[live], expected)
    return stats.chisquare(obs, exp).pvalue


NUM_DRAWS = 200_000


@pytest.mark.parametrize("kind", KINDS)
def test_draws_follow_the_distribution(kind):
    draw = _sampler(kind).sample(NUM_DRAWS, unique=False, rng=np.random.default_rng(20240601))
    assert draw.candidates.dtype == np.int64
    assert draw.candidates.shape == (NUM_DRAWS,)
    assert draw.num_tries == NUM_DRAWS
    assert _chisquare_pvalue(draw.candidates, EXPECTED_P[kind]) > 1e-3


def test_goodness_of_fit_has_power():
    """Log-uniform draws are told apart from the off-by-one table over R + 1 ids, cut at R."""
    draw = samplers.log_uniform(R).sample(NUM_DRAWS, unique=False, rng=20240601)
    wrong = np.array([_log_uniform_p(k, R + 1) for k in range(R)])
    wrong[-1] = 1.0 - math.fsum(wrong[:-1].tolist())  # k = floor(e^{U log(R + 2)}) - 1, clipped
    assert _chisquare_pvalue(draw.candidates, wrong) < 1e-12
    uniform = samplers.uniform(R).sample(NUM_DRAWS, unique=False, rng=1)
    assert _chisquare_pvalue(uniform.candidates, EXPECTED_P["log_uniform"]) < 1e-12


def test_draws_with_replacement_expected_counts():
    draw = samplers.log_uniform(R).sample(50, unique=False, rng=3)
    expected = [50 * _log_uniform_p(int(k), R) for k in draw.candidates]
    assert draw.sampled_expected_count.dtype == np.float64
    np.testing.assert_allclose(draw.sampled_expected_count, expected, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# unique draws
# ---------------------------------------------------------------------------------------------

S = 8  # distinct ids per unique draw
REPEATS = 4000


@functools.cache
def _unique_draws(kind):
    """``REPEATS`` unique draws of ``S`` ids: (candidates (REPEATS, S), num_tries (REPEATS,))."""
    sampler = _sampler(kind)
    rng = np.random.default_rng(7)
    draws = [sampler.sample(S, unique=True, rng=rng) for _ in range(REPEATS)]
    candidates = np.stack([d.candidates for d in draws])
    tries = np.array([d.num_tries for d in draws], dtype=np.float64)
    return candidates, tries


def _fewer_than(q, s):
    """P(fewer than ``s`` successes) among independent Bernoulli trials of probabilities ``q``."""
    dist = np.zeros(s)
    dist[0] = 1.0  # P(count = c) for c < s; mass that reaches s is dropped
    for qi in q:
        dist[1:] = dist[1:] * (1.0 - qi) + dist[:-1] * qi
        dist[0] *= 1.0 - qi
    return dist.sum()


def _poissonised_mean_tries(p, s):
    r"""E[T] for a unique draw of ``s`` ids from ``p``, by Poissonisation.

    Make the draws at the events of a rate-1 Poisson process: the S-th distinct id appears
    at time :math:`\tau = X_1 + \dots + X_T`, :math:`X_m` i.i.d. Exp(1) independent of the
    ids drawn, so :math:`E[\tau] = E[T]`. Id :math:`i` has been seen by time :math:`t` with
    probability :math:`1 - e^{-p_i t}`, independently of the others, and
    :math:`E[\tau] = \int_0^\infty P(N(t) < s)\,dt`, N(t) the number of ids seen.
    """
    value, _ = integrate.quad(lambda t: _fewer_than(-np.expm1(-p * t), s), 0, np.inf)
    return value


def _poissonised_inclusion(p, s):
    r"""P(id i is among the ``s`` ids of a unique draw), by Poissonisation.

    Id :math:`i` is included when, at its first appearance (time :math:`E_i \sim`
    Exp(:math:`p_i`)), fewer than :math:`s` other ids have appeared:
    :math:`\int_0^\infty p_i e^{-p_i t} P(N_{-i}(t) < s)\,dt`.
    """
    out = []
    for i, pi in enumerate(p):
        others = np.delete(p, i)

        def density(t, pi=pi, others=others):
            return pi * math.exp(-pi * t) * _fewer_than(-np.expm1(-others * t), s)

        out.append(integrate.quad(density, 0, np.inf)[0] if pi > 0 else 0.0)
    return np.array(out)


def _z(sample, mean):
    return (sample.mean() - mean) / (sample.std(ddof=1) / math.sqrt(sample.size))


@pytest.mark.parametrize("kind", KINDS)
def test_unique_draws_are_distinct_and_consistent(kind):
    candidates, tries = _unique_draws(kind)
    assert candidates.dtype == np.int64
    assert all(len(set(row)) == S for row in candidates.tolist())
    assert np.all((candidates >= 0) & (candidates < R))
    assert np.all(tries >= S)
    assert np.all(EXPECTED_P[kind][candidates] > 0)
    draw = _sampler(kind).sample(S, unique=True, rng=11)
    expected = [1 - (1 - EXPECTED_P[kind][k]) ** draw.num_tries for k in draw.candidates]
    np.testing.assert_allclose(draw.sampled_expected_count, expected, rtol=1e-12)


def test_unique_uniform_mean_tries_is_the_coupon_collector():
    _, tries = _unique_draws("uniform")
    exact = math.fsum(R / (R - k) for k in range(S))
    assert abs(_z(tries, exact)) < 4


@pytest.mark.parametrize("kind", ["log_uniform", "unigram"])
def test_unique_mean_tries_matches_poissonisation(kind):
    _, tries = _unique_draws(kind)
    exact = _poissonised_mean_tries(EXPECTED_P[kind], S)
    assert abs(_z(tries, exact)) < 4


def test_poissonisation_matches_the_coupon_collector():
    """The Poissonised oracle itself, on the uniform case with a closed form."""
    exact = math.fsum(R / (R - k) for k in range(S))
    assert _poissonised_mean_tries(EXPECTED_P["uniform"], S) == pytest.approx(exact, rel=1e-8)


@pytest.mark.parametrize("kind", ["log_uniform", "unigram"])
def test_unique_inclusion_frequencies(kind):
    candidates, _ = _unique_draws(kind)
    inclusion = _poissonised_inclusion(EXPECTED_P[kind], S)
    assert math.fsum(inclusion.tolist()) == pytest.approx(S, rel=1e-7)  # the oracle is coherent
    frequency = np.bincount(candidates.ravel(), minlength=R) / REPEATS
    live = inclusion > 0
    assert np.all(frequency[~live] == 0)
    q = inclusion[live]
    z = (frequency[live] - q) / np.sqrt(q * (1 - q) / REPEATS)
    assert np.max(np.abs(z)) < 4.5, z


@pytest.mark.parametrize("kind", KINDS)
def test_unique_first_two_candidates(kind):
    """The first draw is never rejected: it follows P. The second follows
    sum_i P(i) P(j) / (1 - P(i)) over i != j."""
    candidates, _ = _unique_draws(kind)
    p = EXPECTED_P[kind]
    assert _chisquare_pvalue(candidates[:, 0], p) > 1e-3
    second = np.array(
        [math.fsum(p[i] * p[j] / (1 - p[i]) for i in range(R) if i != j) for j in range(R)]
    )
    assert math.fsum(second.tolist()) == pytest.approx(1.0, rel=1e-12)
    assert _chisquare_pvalue(candidates[:, 1], second) > 1e-3


def _markov_mean_tries(counts, s):
    """E[T] of a unique draw of ``s`` ids, exact, from the chain over the set of ids seen.

    From a set A of fewer than s ids, a draw stays in A with probability P(A) and moves to
    A + {j} with probability P(j): E(A) = (1 + sum_j P(j) E(A + {j})) / (1 - P(A)).
    """
    total = sum(counts)
    p = [Fraction(c, total) for c in counts]
    ids = range(len(counts))

    @functools.cache
    def expected(seen):
        if len(seen) == s:
            return Fraction(0)
        moves = sum(p[j] * expected(seen | {j}) for j in ids if j not in seen)
        return (1 + moves) / (1 - sum(p[j] for j in seen))

    return expected(frozenset())


def test_markov_chain_matches_the_coupon_collector():
    """The exact chain oracle itself, on the uniform case."""
    assert _markov_mean_tries([1] * 6, 4) == sum(Fraction(6, 6 - k) for k in range(4))


def test_unique_skewed_draw_needs_many_batches():
    """One heavy id: the S-th distinct id takes hundreds of draws (many batches)."""
    counts = [400, 1, 2, 1, 3]
    sampler = samplers.unigram(counts)
    rng = np.random.default_rng(5)
    draws = [sampler.sample(5, unique=True, rng=rng) for _ in range(600)]
    tries = np.array([d.num_tries for d in draws], dtype=np.float64)
    assert all(sorted(d.candidates.tolist()) == [0, 1, 2, 3, 4] for d in draws)
    exact = float(_markov_mean_tries(counts, 5))
    assert exact > 300
    assert abs(_z(tries, exact)) < 4


# ---------------------------------------------------------------------------------------------
# determinism, immutability, repr
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "unique"), list(itertools.product(KINDS, [False, True])))
def test_fixed_seed_is_deterministic(kind, unique):
    sampler = _sampler(kind)
    a = sampler.sample(6, unique=unique, rng=np.random.default_rng(123))
    b = sampler.sample(6, unique=unique, rng=np.random.default_rng(123))
    c = sampler.sample(6, unique=unique, rng=123)
    d = sampler.sample(6, unique=unique, rng=np.int64(123))
    for other in (b, c, d):
        np.testing.assert_array_equal(a.candidates, other.candidates)
        assert a.num_tries == other.num_tries
        np.testing.assert_array_equal(a.sampled_expected_count, other.sampled_expected_count)
    assert isinstance(a.num_tries, int)
    assert isinstance(a, samplers.SampledValues)


def test_samplers_are_immutable_with_a_useful_repr():
    counts = np.array([1.0, 2.0, 5.0])
    sampler = samplers.unigram(counts, distortion=0.5)
    counts[0] = 100.0  # the sampler keeps its own copy
    np.testing.assert_allclose(
        sampler.probabilities * (1 + math.sqrt(2) + math.sqrt(5)), [1, math.sqrt(2), math.sqrt(5)]
    )
    assert not sampler.probabilities.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        sampler.probabilities[0] = 0.5
    for s in (sampler, samplers.uniform(3), samplers.log_uniform(3)):
        assert isinstance(s, samplers.Sampler)
        with pytest.raises(dataclasses.FrozenInstanceError):
            s.range_max = 10  # type: ignore[misc]
    assert repr(samplers.uniform(3)) == "UniformSampler(range_max=3)"
    assert repr(samplers.log_uniform(50)) == "LogUniformSampler(range_max=50)"
    assert repr(sampler) == "UnigramSampler(range_max=3, distortion=0.5)"
    assert samplers.log_uniform(5) == samplers.log_uniform(5) != samplers.uniform(5)
    assert isinstance(samplers.uniform(np.int32(4)).range_max, int)


# ---------------------------------------------------------------------------------------------
# every Array API backend
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_array_api_backends(backend, kind):
    sampler = _sampler(kind)
    host_ids = np.array([[0, 5, 19], [3, 1, 16]])
    ids = backend.asarray(host_ids)
    dtype = backend.dtype("float64")  # float32 under JAX without x64
    rtol = 1e-14 if backend.has_float64 else 1e-6
    p = EXPECTED_P[kind][host_ids]
    calls = {  # name: (call, independent expected value)
        "probability": (lambda i: sampler.probability(i), p),
        "with replacement": (
            lambda i: sampler.expected_count(i, num_sampled=4, unique=False),
            4 * p,
        ),
        "unique": (
            lambda i: sampler.expected_count(i, num_sampled=4, unique=True, num_tries=9),
            1 - (1 - p) ** 9,
        ),
    }
    for name, (call, expected) in calls.items():
        out = call(ids)
        assert_like(out, backend, dtype, host_ids.shape, ids)
        np.testing.assert_allclose(to_numpy(out), expected, rtol=rtol, err_msg=name)
        np.testing.assert_allclose(to_numpy(out), call(host_ids), rtol=rtol, err_msg=name)
    scalar = sampler.probability(backend.asarray(np.int64(3)))
    assert_like(scalar, backend, dtype, (), ids)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 20\).*\[0, 20\]"):
        sampler.probability(backend.asarray(np.array([0, 20])))
    if backend.is_jax:
        jax = backend.module
        call, expected = calls["unique"]
        np.testing.assert_allclose(to_numpy(jax.jit(call)(ids)), expected, rtol=rtol)


def test_small_integer_dtypes():
    sampler = samplers.log_uniform(1000)
    ids = np.array([0, 5, 127], dtype=np.int8)
    np.testing.assert_allclose(
        sampler.probability(ids), [_log_uniform_p(k, 1000) for k in (0, 5, 127)]
    )
    with pytest.raises(ValueError, match="ids"):
        sampler.probability(np.array([-1], dtype=np.int8))
    np.testing.assert_allclose(
        samplers.uniform(3).probability(np.array([2], dtype=np.uint8)), [1 / 3]
    )


# ---------------------------------------------------------------------------------------------
# errors name the argument
# ---------------------------------------------------------------------------------------------


def _params(table):
    """``(id, call, error, match)`` rows as pytest params named by their id."""
    return [pytest.param(call, error, match, id=name) for name, call, error, match in table]


CONSTRUCTOR_ERRORS = [
    ("range_max=0", lambda: samplers.uniform(0), ValueError, r"range_max must be >= 1.*got 0"),
    ("range_max<0", lambda: samplers.log_uniform(-3), ValueError, r"range_max must be >= 1.*-3"),
    ("range_max float", lambda: samplers.uniform(2.5), TypeError, r"range_max must be an .*2\.5"),
    ("range_max str", lambda: samplers.log_uniform("5"), TypeError, r"range_max must be .*'5'"),
    ("range_max bool", lambda: samplers.uniform(True), TypeError, r"range_max.*bool"),
    (
        "counts 2-D",
        lambda: samplers.unigram([[1, 2]]),
        ValueError,
        r"counts_or_probabilities must be 1-D.*\(1, 2\)",
    ),
    ("counts 0-D", lambda: samplers.unigram(3), ValueError, r"counts_or_probabilities must be 1-D"),
    ("counts empty", lambda: samplers.unigram([]), ValueError, r"counts_or_probabilities.*empty"),
    (
        "counts negative",
        lambda: samplers.unigram([1, -2]),
        ValueError,
        r"counts_or_probabilities.*>= 0.*-2",
    ),
    (
        "counts nan",
        lambda: samplers.unigram([1, math.nan]),
        ValueError,
        r"counts_or_probabilities.*nan",
    ),
    (
        "counts inf",
        lambda: samplers.unigram([math.inf, 1]),
        ValueError,
        r"counts_or_probabilities.*inf",
    ),
    (
        "counts all zero",
        lambda: samplers.unigram([0, 0.0]),
        ValueError,
        r"counts_or_probabilities.*zero",
    ),
    ("counts str", lambda: samplers.unigram(["a"]), TypeError, r"counts_or_probabilities.*real"),
    ("counts bool", lambda: samplers.unigram([True]), TypeError, r"counts_or_probabilities.*bool"),
    (
        "distortion<0",
        lambda: samplers.unigram([1], distortion=-0.5),
        ValueError,
        r"distortion.*>= 0.*-0\.5",
    ),
    (
        "distortion inf",
        lambda: samplers.unigram([1], distortion=math.inf),
        ValueError,
        r"distortion.*inf",
    ),
    (
        "distortion nan",
        lambda: samplers.unigram([1], distortion=math.nan),
        ValueError,
        r"distortion.*nan",
    ),
    (
        "distortion str",
        lambda: samplers.unigram([1], distortion="x"),
        TypeError,
        r"distortion.*real",
    ),
    (
        "overflow",
        lambda: samplers.unigram([1e300, 1], distortion=2),
        ValueError,
        r"distortion.*finite",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), _params(CONSTRUCTOR_ERRORS))
def test_constructor_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


SAMPLER = samplers.log_uniform(R)

METHOD_ERRORS = [
    (
        "ids below and above",
        lambda: SAMPLER.probability([-1, 20]),
        ValueError,
        r"ids must lie in \[0, 20\).*\[-1, 20\]",
    ),
    ("ids above", lambda: SAMPLER.probability([3, 25]), ValueError, r"ids.*\[0, 20\).*\[3, 25\]"),
    (
        "ids float",
        lambda: SAMPLER.probability([0.5]),
        TypeError,
        r"ids must have an integer dtype.*float64",
    ),
    ("ids bool", lambda: SAMPLER.probability(np.array([True])), TypeError, r"ids.*integer.*bool"),
    (
        "num_sampled=0",
        lambda: SAMPLER.expected_count([1], num_sampled=0, unique=False),
        ValueError,
        r"num_sampled must be >= 1.*got 0",
    ),
    (
        "num_sampled float",
        lambda: SAMPLER.expected_count([1], num_sampled=1.5, unique=False),
        TypeError,
        r"num_sampled.*1\.5",
    ),
    (
        "unique str",
        lambda: SAMPLER.expected_count([1], num_sampled=2, unique="yes"),
        TypeError,
        r"unique must be a bool",
    ),
    (
        "num_tries missing",
        lambda: SAMPLER.expected_count([1], num_sampled=2, unique=True),
        ValueError,
        r"num_tries is required when unique=True",
    ),
    (
        "num_tries<num_sampled",
        lambda: SAMPLER.expected_count([1], num_sampled=4, unique=True, num_tries=3),
        ValueError,
        r"num_tries must be >= num_sampled = 4.*got 3",
    ),
    (
        "num_tries float",
        lambda: SAMPLER.expected_count([1], num_sampled=4, unique=True, num_tries=2.0),
        TypeError,
        r"num_tries",
    ),
    (
        "num_tries not unique",
        lambda: SAMPLER.expected_count([1], num_sampled=2, unique=False, num_tries=3),
        ValueError,
        r"num_tries is only meaningful for unique draws",
    ),
    (
        "expected_count ids",
        lambda: SAMPLER.expected_count([30], num_sampled=2, unique=False),
        ValueError,
        r"ids must lie in \[0, 20\)",
    ),
    (
        "sample num_sampled=0",
        lambda: SAMPLER.sample(0, unique=False, rng=0),
        ValueError,
        r"num_sampled must be >= 1",
    ),
    (
        "rng None",
        lambda: SAMPLER.sample(2, unique=False, rng=None),
        TypeError,
        r"rng must be a numpy\.random\.Generator.*None",
    ),
    (
        "rng RandomState",
        lambda: SAMPLER.sample(2, unique=False, rng=np.random.RandomState(0)),
        TypeError,
        r"rng.*RandomState",
    ),
    ("rng float", lambda: SAMPLER.sample(2, unique=False, rng=1.5), TypeError, r"rng.*1\.5"),
    (
        "sample unique None",
        lambda: SAMPLER.sample(2, unique=None, rng=0),
        TypeError,
        r"unique must be a bool",
    ),
    (
        "unique too many",
        lambda: SAMPLER.sample(21, unique=True, rng=0),
        ValueError,
        r"num_sampled = 21 distinct ids cannot be drawn.*20 of the 20",
    ),
    (
        "unique zero counts",
        lambda: samplers.unigram([0, 1, 1]).sample(3, unique=True, rng=0),
        ValueError,
        r"num_sampled = 3.*only 2 of the 3 ids",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), _params(METHOD_ERRORS))
def test_method_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_unique_draw_of_every_drawable_id():
    draw = samplers.unigram([0, 1, 1, 0, 3]).sample(3, unique=True, rng=0)
    assert sorted(draw.candidates.tolist()) == [1, 2, 4]
    draw = samplers.uniform(R).sample(R, unique=True, rng=0)
    assert sorted(draw.candidates.tolist()) == list(range(R))
