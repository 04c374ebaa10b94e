"""retrieval_loss and its correction steps against the mpmath oracle, TFRS and properties.

Expected values come from the mpmath oracle of ``conformance/generator`` (through
``tests/oracle.py``), from TFRS 0.7.7 outputs, or from hand algebra; the hypothesis
properties compare refloss with itself under transformations that must not change the loss.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import oracle
import pytest
from _helpers import (
    ABS,
    PROPERTY_BACKENDS,
    RTOL,
    as_dtype,
    assert_close,
    assert_like,
    hsettings,
    make_case,
    scale_of,
    to_backend,
    to_numpy,
    weight_mass,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

import refloss

# ---------------------------------------------------------------------------------------------
# case construction
# ---------------------------------------------------------------------------------------------


def check_against_oracle(backend, dtype, q, c, kw):
    """refloss on ``backend`` in ``dtype`` against the mpmath oracle on the same rounded inputs."""
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    out = refloss.retrieval_loss(qb, cb, **kwb)
    expected = oracle.retrieval_loss(q, c, **kw)
    b = q.shape[0]
    reduction = kw.get("reduction", "sum")
    shape = (b,) if reduction == "none" else ()
    assert_like(out, backend, backend.dtype(dtype), shape, qb)
    scale = scale_of(q, c, kw)
    if reduction == "none":
        wmax = max(1.0, float(np.max(np.abs(np.broadcast_to(kw.get("sample_weight", 1.0), (b,))))))
        atol = ABS[dtype] * scale * wmax
    else:
        atol = ABS[dtype] * scale * max(1.0, weight_mass(kw, b))
        if reduction == "mean":
            atol /= b
    assert_close(out, expected, rtol=RTOL[dtype], atol=atol)
    return out, expected


# ---------------------------------------------------------------------------------------------
# differential tests vs the mpmath oracle
# ---------------------------------------------------------------------------------------------

OPTION_SETS = {
    "plain": {},
    "one_row": {"b": 1, "n": 1},
    "one_query_extra": {"b": 1, "n": 4},
    "extra_negatives": {"n": 11},
    "temperature": {"temperature": 0.3},
    "temperature_large": {"temperature": 7.5},
    "logq": {"p": "random"},
    "logq_edge": {"p": "edge"},
    "logq_min_probability": {"p": "edge", "min_probability": 1e-3},
    "logq_min_probability_one": {"p": "edge", "min_probability": 1.0},
    "logq_temperature": {"p": "edge", "temperature": 0.2},
    "ids_in_batch": {"b": 5, "n": 5, "ids": "in_batch"},
    "ids_extra": {"ids": "extra"},
    "ids_random": {"ids": "random"},
    "ids_all_same": {"ids": "all_same"},
    "score_mask": {"mask": "random"},
    "score_mask_positive_masked": {"mask": "pos_masked"},
    "score_mask_row_only_positive": {"mask": "negatives_of_row0"},
    "weights": {"weights": "random"},
    "weights_zero_negative": {"weights": "zeros_negatives"},
    "weights_scalar": {"weights": "scalar"},
    "mean": {"weights": "random", "reduction": "mean"},
    "none": {"weights": "zeros_negatives", "reduction": "none"},
    "none_unweighted": {"reduction": "none"},
    "hard_negatives": {"num_hard_negatives": 3},
    "everything_sum": {
        "b": 5,
        "n": 11,
        "d": 4,
        "p": "edge",
        "ids": "random",
        "mask": "pos_masked",
        "weights": "zeros_negatives",
        "num_hard_negatives": 4,
        "temperature": 0.4,
        "min_probability": 1e-4,
    },
    "everything_mean": {
        "b": 6,
        "n": 10,
        "p": "random",
        "ids": "extra",
        "mask": "random",
        "weights": "random",
        "num_hard_negatives": 2,
        "temperature": 2.0,
        "reduction": "mean",
    },
    "everything_none": {
        "b": 4,
        "n": 9,
        "p": "edge",
        "ids": "in_batch",
        "mask": "pos_masked",
        "weights": "zeros_negatives",
        "num_hard_negatives": 1,
        "temperature": 0.7,
        "reduction": "none",
    },
}


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_matches_oracle(backend, dtype, name):
    q, c, kw = make_case(zlib.crc32(name.encode()), **OPTION_SETS[name])
    check_against_oracle(backend, dtype, q, c, kw)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_sample_weight_python_scalar(backend, dtype, reduction):
    # sample_weight may be a scalar: a Python float weights every row
    q, c, kw = make_case(17, weights="python_scalar", reduction=reduction)
    check_against_oracle(backend, dtype, q, c, kw)


@pytest.mark.parametrize("k", range(1, 10))
@pytest.mark.parametrize("combo", ["plain", "corrected"])
def test_hard_negatives_every_k(backend, dtype, k, combo):
    # N = 7, so k runs over 1..N+2 (k >= N-1 keeps everything)
    extra = {} if combo == "plain" else {"p": "edge", "ids": "random", "mask": "random"}
    q, c, kw = make_case(1000 + k, b=4, n=7, num_hard_negatives=k, **extra)
    check_against_oracle(backend, dtype, q, c, kw)


@pytest.mark.parametrize("k", [6, 7, 15])
def test_hard_negatives_large_k_keeps_everything(backend, dtype, k):
    # k >= N-1 keeps every column: same loss as no mining
    q, c, kw = make_case(7, b=4, n=7, p="random", ids="random", mask="random")
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    full = oracle.retrieval_loss(q, c, **kw)
    out = refloss.retrieval_loss(qb, cb, num_hard_negatives=k, **kwb)
    assert_close(out, full, rtol=RTOL[dtype], atol=ABS[dtype] * 4 * scale_of(q, c, kw))


def test_hard_negatives_with_ties(backend, dtype):
    # integer embeddings give many exactly tied logits; the loss must not depend on which of
    # the tied columns is kept, and must match the oracle's lower-index choice
    rng = np.random.default_rng(3)
    q = rng.integers(-1, 2, size=(5, 3)).astype(np.float64)
    c = rng.integers(-1, 2, size=(12, 3)).astype(np.float64)
    for k in (1, 2, 3, 5):
        check_against_oracle(backend, dtype, q, c, {"num_hard_negatives": k})


def test_duplicate_ids_mask_all_duplicates(backend, dtype):
    # ids [5, 5, 5, 8] and an extra negative with id 5: for rows 0..2 only their own column
    # among the id-5 columns survives, so their loss is log(1 + e^{s_i3}/e^{s_ii})-like
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]])
    c = np.array([[0.2, 0.1], [0.3, -0.4], [1.0, 0.5], [-0.3, 0.8], [0.9, 0.9]])
    ids = np.array([5, 5, 5, 8, 5], dtype=np.int64)
    kw = {"candidate_ids": ids, "reduction": "none"}
    out, _ = check_against_oracle(backend, dtype, q, c, kw)
    s = q @ c.T
    expected = [np.logaddexp(s[i, i], s[i, 3]) - s[i, i] for i in range(3)]
    # row 3 (id 8) keeps every column
    expected.append(np.log(np.sum(np.exp(s[3]))) - s[3, 3])
    assert_close(out, expected, rtol=1e-5 if dtype == "float32" else 1e-13, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# float64 within 1e-12 of the oracle (large logits, every option)
# ---------------------------------------------------------------------------------------------

MP_CASES = {
    "temperature_logq": {"b": 3, "n": 5, "d": 2, "temperature": 0.25, "p": "edge"},
    "all_options": {
        "b": 4,
        "n": 7,
        "d": 3,
        "temperature": 0.5,
        "p": "random",
        "ids": "random",
        "mask": "pos_masked",
        "weights": "zeros_negatives",
        "num_hard_negatives": 2,
    },
    "large_logits": {"b": 3, "n": 5, "d": 2, "temperature": 1e-3, "weights": "random"},
}


@pytest.mark.parametrize("name", list(MP_CASES))
def test_float64_within_1e_12_of_oracle(name):
    q, c, kw = make_case(zlib.crc32(name.encode()), **MP_CASES[name])
    expected = float(oracle.retrieval_loss(q, c, **kw))
    out = refloss.retrieval_loss(q, c, **kw)
    assert out.dtype == np.float64
    assert math.isfinite(expected)
    np.testing.assert_allclose(float(out), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# TFRS worked example (tfrs.tasks.Retrieval 0.7.7, float64)
# ---------------------------------------------------------------------------------------------

TFRS_Q = [
    [0.6479, 0.4693, -0.643],
    [-1.1783, -0.1447, 1.2035],
    [1.3336, 0.9083, 0.3466],
    [1.6, 1.2328, -0.2203],
]
TFRS_C = [
    [-1.062, -0.3646, -0.42],
    [0.6875, -1.8991, -0.1914],
    [1.6712, -0.9203, -0.7585],
    [-0.0843, -1.4178, -0.1296],
    [-0.0157, -0.0047, -0.9885],
    [-0.3658, 0.6538, -0.7146],
]
TFRS_IDS = [10, 11, 12, 10, 13, 11]
TFRS_P = [0.02, 0.1, 0.05, 0.02, 0.0, 0.1]
TFRS_W = [1.0, 0.5, 2.0, 0.25]
TFRS_ROWS_K2 = [12.328236717817175, 10.705813074244949, 7.82473708728344, 13.985996795200165]


def _tfrs_call(backend, dtype, **extra):
    return refloss.retrieval_loss(
        backend.asarray(np.array(TFRS_Q), dtype),
        backend.asarray(np.array(TFRS_C), dtype),
        candidate_sampling_probability=backend.asarray(np.array(TFRS_P), dtype),
        candidate_ids=backend.asarray(np.array(TFRS_IDS, dtype=np.int64)),
        temperature=0.5,
        **extra,
    )


@pytest.mark.parametrize(
    ("k", "expected"),
    [(None, 36.827502847777374), (2, 36.82711662830657)],
    ids=["no_hard_negatives", "k2"],
)
def test_tfrs_worked_example(backend, dtype, k, expected):
    w = backend.asarray(np.array(TFRS_W), dtype)
    out = _tfrs_call(backend, dtype, sample_weight=w, num_hard_negatives=k)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    assert_close(out, expected, rtol=rtol)


def test_tfrs_worked_example_per_row(backend, dtype):
    out = _tfrs_call(backend, dtype, num_hard_negatives=2, reduction="none")
    rtol = 1e-12 if dtype == "float64" else 2e-6
    assert_close(out, TFRS_ROWS_K2, rtol=rtol)


def test_tfrs_worked_example_oracle_agrees():
    # the oracle itself reproduces TFRS's numbers (guards the oracle)
    kw = {"candidate_sampling_probability": TFRS_P, "candidate_ids": TFRS_IDS, "temperature": 0.5}
    for k, expected in [(None, 36.827502847777374), (2, 36.82711662830657)]:
        loss = oracle.retrieval_loss(
            TFRS_Q, TFRS_C, sample_weight=TFRS_W, num_hard_negatives=k, **kw
        )
        assert float(loss) == pytest.approx(expected, rel=1e-13)
    rows = oracle.retrieval_loss(TFRS_Q, TFRS_C, num_hard_negatives=2, reduction="none", **kw)
    np.testing.assert_allclose(rows, TFRS_ROWS_K2, rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# correction steps, one at a time and composed
# ---------------------------------------------------------------------------------------------


def test_steps_compose_to_retrieval_loss(backend, dtype):
    q, c, kw = make_case(
        11,
        b=5,
        n=9,
        p="edge",
        ids="random",
        mask="pos_masked",
        weights="random",
        num_hard_negatives=3,
        temperature=0.6,
    )
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    xp = backend.xp
    s = xp.matmul(qb, xp.permute_dims(cb, (1, 0))) / 0.6
    s = refloss.logq_correction(s, kwb["candidate_sampling_probability"])
    s = refloss.remove_accidental_hits(s, kwb["candidate_ids"])
    s = refloss.apply_score_mask(s, kwb["score_mask"])
    s = refloss.mine_hard_negatives(s, num_hard_negatives=3)
    diag = backend.asarray(np.diag(kw["score_mask"]))
    composed = refloss.softmax_cross_entropy(
        s, positive_mask=diag, sample_weight=kwb["sample_weight"]
    )
    direct = refloss.retrieval_loss(qb, cb, **kwb)
    ref = oracle.retrieval(q, c, **kw)
    atol = ABS[dtype] * scale_of(q, c, kw) * 10
    assert_close(composed, ref.loss, rtol=RTOL[dtype], atol=atol)
    assert_close(direct, ref.loss, rtol=RTOL[dtype], atol=atol)
    # the final logits of the steps equal the oracle's (masked entries exactly -inf)
    expected_logits = ref.logits
    got = to_numpy(s).astype(np.float64)
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected_logits))
    fin = np.isfinite(expected_logits)
    np.testing.assert_allclose(got[fin], expected_logits[fin], rtol=RTOL[dtype], atol=atol)


def _logits(seed, b, n):
    return np.random.default_rng(seed).standard_normal((b, n)) * 2


def test_logq_correction_step(backend, dtype):
    s = _logits(1, 3, 6)
    p = np.array([0.0, 1e-9, 2e-6, 0.3, 1.0, 0.05])
    for min_p in (1e-6, 1e-3, 1.0):
        out = refloss.logq_correction(
            backend.asarray(s, dtype), backend.asarray(p, dtype), min_probability=min_p
        )
        p32 = p.astype(dtype).astype(np.float64)
        expected = s.astype(dtype).astype(np.float64) - np.log(np.clip(p32, min_p, 1.0))
        assert_like(out, backend, backend.dtype(dtype), (3, 6), backend.asarray(s, dtype))
        assert_close(out, expected, rtol=RTOL[dtype], atol=ABS[dtype] * 20)


def test_logq_correction_default_floor_is_1e_6(backend, dtype):
    s = np.zeros((2, 3))
    p = np.array([0.0, 1e-7, 1.0])
    out = refloss.logq_correction(backend.asarray(s, dtype), backend.asarray(p, dtype))
    expected = np.broadcast_to([-math.log(1e-6), -math.log(1e-6), 0.0], (2, 3))
    assert_close(out, expected, rtol=RTOL[dtype])


def test_remove_accidental_hits_step(backend, dtype):
    s = _logits(2, 4, 7)
    ids = np.array([3, 1, 3, 2, 1, 3, 9], dtype=np.int64)
    out = to_numpy(refloss.remove_accidental_hits(backend.asarray(s, dtype), backend.asarray(ids)))
    for i in range(4):
        for j in range(7):
            if j != i and ids[j] == ids[i]:
                assert out[i, j] == -np.inf, (i, j)
            else:
                assert out[i, j] == np.float64(s[i, j].astype(dtype)), (i, j)


def test_apply_score_mask_step(backend, dtype):
    s = _logits(3, 3, 5)
    m = np.random.default_rng(0).random((3, 5)) < 0.5
    m[0, 0] = False
    out = to_numpy(refloss.apply_score_mask(backend.asarray(s, dtype), backend.asarray(m)))
    expected = np.where(m, s.astype(dtype), -np.inf)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_mine_hard_negatives_ties_to_lower_index(backend, dtype, k):
    # exact ties everywhere: the kept negatives are the k lowest column indices among the
    # largest values; the positive is always kept even when it is the smallest logit
    s = np.array(
        [
            [-5.0, 1.0, 1.0, 0.5, 1.0, 0.5, 1.0],
            [2.0, -9.0, 2.0, 2.0, -np.inf, 2.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    out = to_numpy(refloss.mine_hard_negatives(backend.asarray(s, dtype), num_hard_negatives=k))
    for i in range(3):
        negatives = sorted((j for j in range(7) if j != i), key=lambda j, i=i: (-s[i, j], j))
        kept = set(negatives[:k]) | {i}
        for j in range(7):
            if j in kept:
                assert out[i, j] == s[i, j], (i, j, k)
            else:
                assert out[i, j] == -np.inf, (i, j, k)


def test_mine_hard_negatives_keeps_masked_positive_masked(backend, dtype):
    s = np.array([[-np.inf, 3.0, 2.0, 1.0], [0.5, 1.5, -1.0, 4.0]])
    out = to_numpy(refloss.mine_hard_negatives(backend.asarray(s, dtype), num_hard_negatives=1))
    np.testing.assert_array_equal(
        out, [[-np.inf, 3.0, -np.inf, -np.inf], [-np.inf, 1.5, -np.inf, 4.0]]
    )


def test_softmax_cross_entropy_step(backend, dtype):
    s = _logits(5, 4, 6)
    s[1, 3] = -np.inf
    s[2, :] = -np.inf
    s[2, 2] = 0.7  # only the positive survives: loss exactly 0
    w = np.array([0.5, 2.0, 3.0, -1.0])
    sd = s.astype(dtype).astype(np.float64)
    wd = w.astype(dtype).astype(np.float64)
    pm = np.array([True, True, True, False])
    sb = backend.asarray(s, dtype)
    for reduction in ("sum", "mean", "none"):
        expected = oracle.softmax_cross_entropy(sd, sample_weight=wd, reduction=reduction)
        out = refloss.softmax_cross_entropy(
            sb, sample_weight=backend.asarray(w, dtype), reduction=reduction
        )
        assert_close(out, expected, rtol=RTOL[dtype], atol=ABS[dtype] * 100)
    out = refloss.softmax_cross_entropy(sb, positive_mask=backend.asarray(pm), reduction="none")
    expected = oracle.softmax_cross_entropy(sd, positive_mask=pm, reduction="none")
    assert_close(out, expected, rtol=RTOL[dtype], atol=ABS[dtype] * 100)
    assert to_numpy(out)[2] == 0.0
    assert to_numpy(out)[3] == 0.0
    assert np.all(expected[:2] > 0)
    default = refloss.softmax_cross_entropy(sb)
    expected = oracle.softmax_cross_entropy(sd)
    assert_close(default, expected, rtol=RTOL[dtype], atol=ABS[dtype] * 100)
    # target columns, and label weights with several positives per row (row 1: none)
    labels = np.array([5, 0, 2, 4], dtype=np.int64)
    weights = np.zeros((4, 6))
    weights[0, [0, 2, 5]] = [1.0, 0.5, 2.0]
    weights[2, 2] = weights[3, [1, 3]] = 1.0
    for target in (labels, weights, weights > 0):
        out = refloss.softmax_cross_entropy(
            sb, labels=backend.asarray(target, dtype), reduction="none"
        )
        expected = oracle.softmax_cross_entropy(sd, labels=target, reduction="none")
        assert_close(out, expected, rtol=RTOL[dtype], atol=ABS[dtype] * 100)


def test_logsumexp_step(backend, dtype):
    x = _logits(6, 3, 5) * 300  # large magnitudes: a naive exp overflows
    x[1, 2] = -np.inf
    x[2, :] = -np.inf
    xd = x.astype(dtype).astype(np.float64)
    expected = oracle.logsumexp(xd)
    assert expected[2] == -np.inf
    out = refloss.logsumexp(backend.asarray(x, dtype))
    assert_like(out, backend, backend.dtype(dtype), (3,), backend.asarray(x, dtype))
    got = to_numpy(out)
    assert got[2] == -np.inf
    np.testing.assert_allclose(got[:2], expected[:2], rtol=RTOL[dtype])
    out0 = refloss.logsumexp(backend.asarray(x[:2], dtype), axis=0)
    assert_close(out0, oracle.logsumexp(xd[:2], axis=0), rtol=RTOL[dtype])


# ---------------------------------------------------------------------------------------------
# hypothesis properties
# ---------------------------------------------------------------------------------------------

FLOATS = st.floats(-3, 3, allow_nan=False, allow_subnormal=False, width=64)


@st.composite
def problems(draw, *, max_b=4, max_extra=4, max_d=3, with_pos_masked=True):
    b = draw(st.integers(1, max_b))
    n = b + draw(st.integers(0, max_extra))
    d = draw(st.integers(1, max_d))
    q = draw(npst.arrays(np.float64, (b, d), elements=FLOATS))
    c = draw(npst.arrays(np.float64, (n, d), elements=FLOATS))
    kw = {}
    if draw(st.booleans()):
        kw["temperature"] = draw(st.sampled_from([0.1, 0.5, 1.0, 3.0]))
    if draw(st.booleans()):
        kw["candidate_sampling_probability"] = draw(
            npst.arrays(np.float64, (n,), elements=st.floats(0, 1, allow_subnormal=False))
        )
        if draw(st.booleans()):
            kw["min_probability"] = draw(st.sampled_from([1e-3, 0.2, 1.0]))
    if draw(st.booleans()):
        kw["candidate_ids"] = draw(npst.arrays(np.int64, (n,), elements=st.integers(0, 3)))
    if draw(st.booleans()):
        m = draw(npst.arrays(np.bool_, (b, n)))
        if not with_pos_masked:
            m[np.arange(b), np.arange(b)] = True
        kw["score_mask"] = m
    if draw(st.booleans()):
        kw["num_hard_negatives"] = draw(st.integers(1, n + 1))
    if draw(st.booleans()):
        kw["sample_weight"] = draw(
            npst.arrays(np.float64, (b,), elements=st.floats(-2, 2, allow_subnormal=False))
        )
    return q, c, kw


def _prec(backend):
    return "float64" if backend.has_float64 else "float32"


def _run(backend, q, c, kw, **extra):
    dtype = _prec(backend)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    return to_numpy(refloss.retrieval_loss(qb, cb, **kwb, **extra)).astype(np.float64)


def _tols(backend, q, c, kw):
    dtype = _prec(backend)
    b = q.shape[0]
    atol = ABS[dtype] * 8 * scale_of(q, c, kw) * max(1.0, weight_mass(kw, b))
    return {"rtol": RTOL[dtype] * 10, "atol": atol}


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_query_permutation_equivariance(backend, data):
    q, c, kw = data.draw(problems())
    b, n = q.shape[0], c.shape[0]
    perm = np.array(data.draw(st.permutations(range(b))), dtype=np.intp)
    cols = np.concatenate([perm, np.arange(b, n)])
    q2, c2 = q[perm], c[cols]
    kw2 = dict(kw)
    for key in ("candidate_sampling_probability", "candidate_ids"):
        if key in kw:
            kw2[key] = kw[key][cols]
    if "score_mask" in kw:
        kw2["score_mask"] = kw["score_mask"][perm][:, cols]
    if "sample_weight" in kw:
        kw2["sample_weight"] = kw["sample_weight"][perm]
    tol = _tols(backend, q, c, kw)
    np.testing.assert_allclose(_run(backend, q2, c2, kw2), _run(backend, q, c, kw), **tol)
    none1 = _run(backend, q, c, kw, reduction="none")
    none2 = _run(backend, q2, c2, kw2, reduction="none")
    np.testing.assert_allclose(none2, none1[perm], **tol)


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_extra_negative_permutation_invariance(backend, data):
    q, c, kw = data.draw(problems(max_extra=5))
    b, n = q.shape[0], c.shape[0]
    extra = np.array(data.draw(st.permutations(range(b, n))), dtype=np.intp)
    cols = np.concatenate([np.arange(b), extra]).astype(np.intp)
    kw2 = dict(kw)
    for key in ("candidate_sampling_probability", "candidate_ids"):
        if key in kw:
            kw2[key] = kw[key][cols]
    if "score_mask" in kw:
        kw2["score_mask"] = kw["score_mask"][:, cols]
    tol = _tols(backend, q, c, kw)
    np.testing.assert_allclose(
        _run(backend, q, c[cols], kw2, reduction="none"),
        _run(backend, q, c, kw, reduction="none"),
        **tol,
    )


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_row_shift_invariance(backend, data):
    # adding c_i to every logit of row i (an extra feature: Q' = [Q, c], C' = [C, 1])
    q, c, kw = data.draw(problems())
    b, n = q.shape[0], c.shape[0]
    shift = data.draw(npst.arrays(np.float64, (b, 1), elements=st.floats(-4, 4, width=64)))
    q2 = np.concatenate([q, shift], axis=1)
    c2 = np.concatenate([c, np.ones((n, 1))], axis=1)
    tol = _tols(backend, q2, c2, kw)
    np.testing.assert_allclose(
        _run(backend, q2, c2, kw, reduction="none"),
        _run(backend, q, c, kw, reduction="none"),
        **tol,
    )


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_zero_weight_row_is_an_extra_negative(backend, data):
    # a row with weight 0 contributes nothing: the loss equals the loss of the batch without
    # that row, its positive candidate moved to the extra negatives
    q, c, kw = data.draw(problems())
    b, n = q.shape[0], c.shape[0]
    if b < 2:
        return
    i = data.draw(st.integers(0, b - 1))
    w = np.asarray(kw.get("sample_weight", np.ones(b)), dtype=np.float64).copy()
    w[i] = 0.0
    kw = {**kw, "sample_weight": w}
    rows = np.array([r for r in range(b) if r != i], dtype=np.intp)
    cols = np.concatenate([rows, np.arange(b, n), [i]]).astype(np.intp)
    kw2 = dict(kw)
    kw2["sample_weight"] = w[rows]
    for key in ("candidate_sampling_probability", "candidate_ids"):
        if key in kw:
            kw2[key] = kw[key][cols]
    if "score_mask" in kw:
        kw2["score_mask"] = kw["score_mask"][rows][:, cols]
    none = _run(backend, q, c, kw, reduction="none")
    assert none[i] == 0.0
    tol = _tols(backend, q, c, kw)
    np.testing.assert_allclose(_run(backend, q[rows], c[cols], kw2), _run(backend, q, c, kw), **tol)


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_reductions_agree(backend, data):
    q, c, kw = data.draw(problems())
    b = q.shape[0]
    none = _run(backend, q, c, kw, reduction="none")
    total = _run(backend, q, c, kw, reduction="sum")
    mean = _run(backend, q, c, kw, reduction="mean")
    default = _run(backend, q, c, kw)
    assert none.shape == (b,)
    assert total.shape == mean.shape == default.shape == ()
    tol = _tols(backend, q, c, kw)
    np.testing.assert_allclose(np.sum(none), total, **tol)
    np.testing.assert_allclose(mean, total / b, **tol)
    np.testing.assert_array_equal(default, total)


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_temperature_is_query_scaling(backend, data):
    q, c, kw = data.draw(problems())
    tau = data.draw(st.sampled_from([0.05, 0.25, 2.0, 8.0]))
    kw = {k: v for k, v in kw.items() if k != "temperature"}
    tol = _tols(backend, q / tau, c, kw)
    np.testing.assert_allclose(
        _run(backend, q, c, kw, temperature=tau, reduction="none"),
        _run(backend, q / tau, c, kw, reduction="none"),
        **tol,
    )


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_matches_oracle(backend, data):
    q, c, kw = data.draw(problems())
    dtype = _prec(backend)
    q, c, kw = as_dtype(q, c, kw, dtype)
    got = _run(backend, q, c, kw, reduction="none")
    ref = oracle.retrieval_loss(q, c, **{**kw, "reduction": "none"})
    np.testing.assert_allclose(got, ref, **_tols(backend, q, c, kw))


@pytest.mark.parametrize("backend_name", PROPERTY_BACKENDS)
@hsettings(25)
@given(data=st.data())
def test_property_masking_never_nan(backend, data):
    q, c, kw = data.draw(problems())
    b, n = q.shape[0], c.shape[0]
    # masks with fully masked rows and fully masked batches
    kind = data.draw(st.sampled_from(["row", "all", "random", "ids"]))
    m = np.asarray(kw.get("score_mask", np.ones((b, n), dtype=bool))).copy()
    if kind == "row":
        m[data.draw(st.integers(0, b - 1)), :] = False
    elif kind == "all":
        m[:] = False
    elif kind == "ids":
        kw = {**kw, "candidate_ids": np.zeros(n, dtype=np.int64)}
    kw = {**kw, "score_mask": m}
    for reduction in ("sum", "mean", "none"):
        out = _run(backend, q, c, kw, reduction=reduction)
        assert np.all(np.isfinite(out)), (reduction, out)
    dtype = _prec(backend)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    loss, grads = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    assert np.isfinite(to_numpy(loss))
    for g in grads:
        assert np.all(np.isfinite(to_numpy(g)))


# ---------------------------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------------------------


def test_large_logits_are_finite_and_exact(backend, dtype):
    # |logits| ~ 1e4: exp overflows without a max shift
    rng = np.random.default_rng(21)
    q = rng.standard_normal((4, 3)) * 60
    c = rng.standard_normal((7, 3)) * 60
    s = q @ c.T
    assert np.max(np.abs(s)) > 5e3
    kw = {"sample_weight": rng.uniform(0.5, 1.5, 4), "num_hard_negatives": 3}
    for reduction in ("sum", "none"):
        kw["reduction"] = reduction
        out, _ = check_against_oracle(backend, dtype, q, c, kw)
        assert np.all(np.isfinite(to_numpy(out)))


def test_row_with_all_negatives_masked_is_exactly_zero(backend, dtype):
    q, c, kw = make_case(31, b=4, n=7, mask="negatives_of_row0", p="random")
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    none = to_numpy(refloss.retrieval_loss(qb, cb, **kwb, reduction="none"))
    assert none[0] == 0.0
    assert np.all(none[1:] > 0)
    _, (dq, _) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    dq = to_numpy(dq)
    np.testing.assert_array_equal(dq[0], np.zeros_like(dq[0]))
    assert np.any(dq[1:] != 0)


def test_row_with_all_negatives_removed_by_ids_is_exactly_zero(backend, dtype):
    q, c, kw = make_case(32, b=4, n=6, ids="all_same", temperature=0.5)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    out = to_numpy(refloss.retrieval_loss(qb, cb, **kwb, reduction="none"))
    np.testing.assert_array_equal(out, np.zeros(4))
    loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    assert to_numpy(loss) == 0.0
    np.testing.assert_array_equal(to_numpy(dq), np.zeros((4, 3)))
    np.testing.assert_array_equal(to_numpy(dc), np.zeros((6, 3)))


def test_masked_positive_row_is_zero_with_zero_gradient(backend, dtype):
    q, c, kw = make_case(33, b=4, n=6, mask="pos_masked", weights="random")
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    none = to_numpy(refloss.retrieval_loss(qb, cb, **kwb, reduction="none"))
    assert none[0] == 0.0
    assert none[2] == 0.0
    assert none[1] != 0.0
    _, (dq, _) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    dq = to_numpy(dq)
    np.testing.assert_array_equal(dq[[0, 2]], np.zeros((2, 3)))
    # also when the whole row is masked (positive included)
    m = np.ones((4, 6), dtype=bool)
    m[1, :] = False
    qb2, cb2, kwb2 = to_backend(backend, q, c, {"score_mask": m}, dtype)
    none = to_numpy(refloss.retrieval_loss(qb2, cb2, **kwb2, reduction="none"))
    assert none[1] == 0.0
    assert np.all(np.isfinite(none))


@pytest.mark.parametrize("where", ["query", "in_batch_candidate", "extra_negative", "weight"])
@pytest.mark.parametrize("k", [None, 1, 10])
def test_nan_propagates(backend, dtype, where, k):
    q, c, kw = make_case(41, b=3, n=6, weights="random", p="random")
    q, c = q.copy(), c.copy()
    w = kw["sample_weight"].copy()
    if where == "query":
        q[1, 0] = np.nan
    elif where == "in_batch_candidate":
        c[1, 2] = np.nan
    elif where == "extra_negative":
        c[4, 1] = np.nan
    else:
        w[2] = np.nan
    kw = {**kw, "sample_weight": w, "num_hard_negatives": k}
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    for reduction in ("sum", "mean"):
        out = to_numpy(refloss.retrieval_loss(qb, cb, **kwb, reduction=reduction))
        assert np.isnan(out), (reduction, out)
    none = to_numpy(refloss.retrieval_loss(qb, cb, **kwb, reduction="none"))
    assert np.any(np.isnan(none))
    if where == "weight":
        assert np.isnan(none[2])
        assert np.all(np.isfinite(none[:2]))
    if where == "query":
        assert np.isnan(none[1])


def _stable_numpy_loss(q, c):
    s = q @ c.T
    m = np.max(s, axis=1, keepdims=True)
    lse = (m + np.log(np.sum(np.exp(s - m), axis=1, keepdims=True)))[:, 0]
    return float(np.sum(lse - np.diag(s)))


def test_float32_agrees_with_float64(backend):
    rng = np.random.default_rng(512)
    q = rng.standard_normal((512, 64)).astype(np.float32).astype(np.float64)
    c = rng.standard_normal((512, 64)).astype(np.float32).astype(np.float64)
    expected = _stable_numpy_loss(q, c)
    out = refloss.retrieval_loss(backend.asarray(q, "float32"), backend.asarray(c, "float32"))
    assert out.dtype == backend.dtype("float32")
    np.testing.assert_allclose(float(to_numpy(out)), expected, rtol=1e-5)
    if backend.has_float64:
        out64 = refloss.retrieval_loss(backend.asarray(q, "float64"), backend.asarray(c, "float64"))
        np.testing.assert_allclose(float(to_numpy(out64)), expected, rtol=1e-12)
