"""However the work is cut into tiles, retrieval_loss and its gradients give the same numbers.

``refloss._tiling`` cuts the ``(B, N)`` logits into blocks of rows and chunks of columns,
merged by a streaming log-sum-exp. Every other test runs one tile; here ``block_size`` is
1, 2 or 3 rows and ``chunk_size`` 1, 2, 3 columns or None (B = 5, N = 8, so the last block
and chunk are often partial and the diagonal of the positives crosses tile borders), with
every correction on and off, against the mpmath oracle of ``conformance/generator``. Then
the streaming edge cases (a maximum that grows by 2000 between chunks, rows masked in their
first chunks, masked targets, NaN), the tiling of label-weight and integer-label targets,
``plan_tiles`` itself, and JAX (one tile by default; given sizes under ``jax.jit``).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import zlib

import mpmath
import numpy as np
import pytest
from _helpers import ABS, as_dtype, pair_params, scale_of, to_numpy, weight_mass

import refloss
from conformance.generator import oracle
from refloss._lib._compat import array_namespace
from refloss._targets import TargetColumns, TargetWeights
from refloss._tiling import (
    BLOCK_ROWS,
    MAX_TILE_ENTRIES,
    Plan,
    ScoreProblem,
    plan_tiles,
    row_losses,
    row_losses_vjp,
)

retrieval_module = importlib.import_module("refloss.retrieval")

# NumPy runs every case; torch and array-api-strict (whose small-array operations are
# slower) run the cases with every option on, array-api-strict in float64 only
NUMPY_PAIRS = [("numpy", "float32"), ("numpy", "float64")]
TORCH_PAIRS = [("torch", "float32"), ("torch", "float64")]
STRICT_PAIRS = [("array_api_strict", "float64")]
EAGER_PAIRS = pair_params(NUMPY_PAIRS + TORCH_PAIRS + STRICT_PAIRS)

B, N, D = 5, 8, 3
BLOCKS = (1, 2, 3)
CHUNKS = (1, 2, 3, None)
# in-batch duplicates: positives 0 and 2 share id 100, positives 1 and 4 share id 101;
# extra-negative duplicates: column 5 repeats id 100 (rows 0 and 2), column 7 id 103 (row 3)
IDS = np.array([100, 101, 100, 103, 101, 100, 106, 103], dtype=np.int64)

ALL = {"logq": True, "ids": True, "mask": True, "weights": True, "temperature": 0.4}
CASES = {
    "plain": {},
    "square": {"n": 5},
    "temperature": {"temperature": 0.35},
    "logq": {"logq": True, "min_probability": 1e-3},
    "ids": {"ids": True},
    "score_mask": {"mask": True},
    "weights_mean": {"weights": True, "reduction": "mean"},
    "all_sum": {**ALL, "temperature_array": True},
    "all_mean": {**ALL, "weights": "scalar", "reduction": "mean", "temperature_array": True},
    "all_none": {**ALL, "reduction": "none"},
    "hard_negatives": {"num_hard_negatives": 2},
    "all_hard_negatives_sum": {**ALL, "num_hard_negatives": 3, "temperature_array": True},
    "all_hard_negatives_mean": {**ALL, "num_hard_negatives": 1, "reduction": "mean"},
}


def _case(name):
    """``(q, c, kw, temperature_array)``: NumPy float64 inputs and options of one case."""
    spec = dict(CASES[name])
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n = spec.pop("n", N)
    q = rng.standard_normal((B, D))
    c = rng.standard_normal((n, D))
    kw = {}
    if spec.pop("logq", False):
        p = rng.uniform(1e-4, 0.5, n)
        p[0], p[1], p[-1] = 0.0, 1e-9, 1.0  # clipped to min_probability; p = 1
        kw["candidate_sampling_probability"] = p
    if spec.pop("ids", False):
        kw["candidate_ids"] = IDS[:n].copy()
    if spec.pop("mask", False):
        m = rng.random((B, n)) < 0.7
        m[np.arange(B), np.arange(B)] = True
        m[1, 1] = False  # a masked positive: row 1 contributes 0
        kw["score_mask"] = m
    weights = spec.pop("weights", False)
    if weights == "scalar":
        kw["sample_weight"] = np.asarray(0.625)
    elif weights:
        w = rng.uniform(-0.5, 2.0, B)
        w[0] = 0.0
        kw["sample_weight"] = w
    temperature_array = spec.pop("temperature_array", False)
    kw.update(spec)
    return q, c, kw, temperature_array


def _mp(function, *args, **kwargs):
    """Call an oracle function at the oracle's working precision."""
    with mpmath.workdps(oracle.DPS):
        return function(*args, **kwargs)


def _oracle_options(kw):
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in kw.items()}


def _f64_list(x):
    return np.array([_f64_list(v) if isinstance(v, list) else oracle.to_float64(v) for v in x])


@functools.cache
def _expected(name, dtype):
    """Oracle values for a case at ``dtype``: loss, dQ, dC, d temperature, d sample_weight."""
    q, c, kw, _ = _case(name)
    q, c, kw = as_dtype(q, c, kw, dtype)
    if kw.get("temperature") is not None:
        kw["temperature"] = float(np.asarray(kw["temperature"], dtype=dtype))
    options = _oracle_options(kw)
    reduction = options.get("reduction", "sum")
    with mpmath.workdps(oracle.DPS):
        if reduction == "none":
            return {"loss": _f64_list(oracle.retrieval_loss(q.tolist(), c.tolist(), **options))}
        value, dq, dc = oracle.retrieval_loss_grad(q.tolist(), c.tolist(), **options)
        out = {"loss": oracle.to_float64(value), "dq": _f64_list(dq), "dc": _f64_list(dc)}
        # L(Q, tau) = F(Q / tau), so dL/dtau = -(1/tau) sum_id Q_id dL/dQ_id
        tau = mpmath.mpf(options.get("temperature") or 1.0)
        dot = mpmath.fsum(
            mpmath.mpf(q[i, k]) * dq[i][k] for i in range(q.shape[0]) for k in range(q.shape[1])
        )
        out["dtau"] = oracle.to_float64(-dot / tau)
        # dL/dw_i = r l_i: the unweighted per-row losses of the oracle
        plain = {k: v for k, v in options.items() if k not in ("sample_weight", "reduction")}
        rows = oracle.retrieval_loss(q.tolist(), c.tolist(), reduction="none", **plain)
        r = mpmath.mpf(1) if reduction == "sum" else mpmath.mpf(1) / q.shape[0]
        weight = kw.get("sample_weight")
        if weight is not None and np.ndim(weight) == 0:
            out["dw"] = oracle.to_float64(r * mpmath.fsum(rows))
        else:
            out["dw"] = _f64_list([r * v for v in rows])
    return out


def _tolerances(dtype, q, c, kw):
    """``(loss rtol, loss atol, grad rtol, grad atol)``."""
    scale = scale_of(q, c, kw)
    loss_atol = ABS[dtype] * scale * weight_mass(kw, q.shape[0])
    if dtype == "float64":
        return 1e-12, loss_atol, 1e-10, 1e-12 * scale
    return 2e-5, loss_atol, 2e-4, 5e-6 * scale


def _backend_inputs(backend, dtype, q, c, kw, temperature_array):
    arrays = {}
    for key, value in kw.items():
        if isinstance(value, np.ndarray):
            arrays[key] = backend.asarray(value, dtype if value.dtype.kind == "f" else None)
        else:
            arrays[key] = value
    if temperature_array:
        arrays["temperature"] = backend.asarray(np.asarray(kw["temperature"]), dtype)
    return backend.asarray(q, dtype), backend.asarray(c, dtype), arrays


def _tilings(kw, n):
    if kw.get("num_hard_negatives") is None:
        return [(b, ch) for b in BLOCKS for ch in CHUNKS]
    # hard-negative mining ranks whole rows: only chunks of at least N columns
    return [(b, ch) for b in BLOCKS for ch in (None, n, n + 3)]


TORCH_CASES = ("all_sum", "all_mean", "all_hard_negatives_sum")
STRICT_CASES = ("all_sum", "all_none", "all_hard_negatives_mean")
TILED_PARAMS = [
    pytest.param(name, b, d, id=f"{name}-{b}-{d}")
    for name in CASES
    for b, d in NUMPY_PAIRS
    + [p for p in TORCH_PAIRS if name in TORCH_CASES]
    + [p for p in STRICT_PAIRS if name in STRICT_CASES]
]


@pytest.mark.parametrize(("name", "backend_name", "dtype"), TILED_PARAMS)
def test_tiled_loss_and_gradients_match_oracle(backend, dtype, name):
    q, c, kw, temperature_array = _case(name)
    expected = _expected(name, dtype)
    q64, c64, kw64 = as_dtype(q, c, kw, dtype)
    rtol, atol, grad_rtol, grad_atol = _tolerances(dtype, q64, c64, kw64)
    qb, cb, kwb = _backend_inputs(backend, dtype, q, c, kw, temperature_array)
    wrt = ["query_embeddings", "candidate_embeddings"]
    if temperature_array:
        wrt.append("temperature")
    if "sample_weight" in kw:
        wrt.append("sample_weight")
    scalar = kw.get("reduction", "sum") != "none"
    for block_size, chunk_size in _tilings(kw, c.shape[0]):
        tiling = f"block_size={block_size}, chunk_size={chunk_size}"
        sizes = {"block_size": block_size, "chunk_size": chunk_size}
        loss = refloss.retrieval_loss(qb, cb, **kwb, **sizes)
        np.testing.assert_allclose(
            to_numpy(loss), expected["loss"], rtol=rtol, atol=atol, err_msg=tiling
        )
        if not scalar:
            continue
        value, grads = refloss.value_and_grad(refloss.retrieval_loss, wrt=wrt)(
            qb, cb, **kwb, **sizes
        )
        np.testing.assert_allclose(
            to_numpy(value), expected["loss"], rtol=rtol, atol=atol, err_msg=tiling
        )
        got = dict(zip(wrt, grads, strict=True))
        np.testing.assert_allclose(
            to_numpy(got["query_embeddings"]),
            expected["dq"],
            rtol=grad_rtol,
            atol=grad_atol,
            err_msg=f"dQ, {tiling}",
        )
        np.testing.assert_allclose(
            to_numpy(got["candidate_embeddings"]),
            expected["dc"],
            rtol=grad_rtol,
            atol=grad_atol,
            err_msg=f"dC, {tiling}",
        )
        if temperature_array:
            tau_atol = grad_atol * float(np.sum(np.abs(q64))) / kw["temperature"]
            np.testing.assert_allclose(
                to_numpy(got["temperature"]),
                expected["dtau"],
                rtol=grad_rtol,
                atol=tau_atol,
                err_msg=f"dtau, {tiling}",
            )
        if "sample_weight" in got:
            np.testing.assert_allclose(
                to_numpy(got["sample_weight"]),
                expected["dw"],
                rtol=grad_rtol,
                atol=atol,
                err_msg=f"dw, {tiling}",
            )


def test_chunks_narrower_than_a_row_are_refused_with_hard_negatives():
    q, c, kw, _ = _case("all_hard_negatives_sum")
    message = "num_hard_negatives ranks whole rows: chunk_size must be None or >= N = 8, got 3"
    with pytest.raises(ValueError, match=message):
        refloss.retrieval_loss(q, c, **kw, chunk_size=3)
    with pytest.raises(ValueError, match=r"chunk_size must be None or >= N = 8, got 7"):
        refloss.value_and_grad(refloss.retrieval_loss)(q, c, **kw, block_size=2, chunk_size=7)
    # N itself is a whole row
    whole = refloss.retrieval_loss(q, c, **kw, chunk_size=8, block_size=2)
    _, atol, _, _ = _tolerances("float64", q, c, kw)
    expected = _expected("all_hard_negatives_sum", "float64")["loss"]
    np.testing.assert_allclose(float(whole), expected, rtol=1e-12, atol=atol)


@pytest.mark.parametrize(
    ("sizes", "error", "message"),
    [
        ({"block_size": 0}, ValueError, "block_size must be >= 1, got 0"),
        ({"chunk_size": -2}, ValueError, "chunk_size must be >= 1, got -2"),
        ({"block_size": True}, TypeError, "block_size must be an integer >= 1 or None, got bool"),
        ({"chunk_size": 2.0}, TypeError, "chunk_size must be an integer >= 1 or None, got float"),
    ],
)
def test_tile_sizes_are_validated(sizes, error, message):
    q, c, _, _ = _case("plain")
    with pytest.raises(error, match=message):
        refloss.retrieval_loss(q, c, **sizes)


# ---------------------------------------------------------------------------------------------
# streaming edge cases: logits given exactly (Q = I, so S = C^T)
# ---------------------------------------------------------------------------------------------

BIG = 1000.0
EDGE_CASES = {
    # row 0: its chunk(s) before the maximum hold only -1000 (the rescale factor underflows to
    # 0); row 1: the maximum appears in the last chunk; row 2: the maximum grows twice.
    "rescale": (
        [
            [-BIG, -BIG, -BIG, BIG, BIG - 1, 0.5, -3.0],
            [-BIG, 3.0, -BIG, -BIG + 2, 2.0, 5.0, 4.0],
            [-BIG, -BIG, BIG, BIG - 0.5, -BIG, BIG + 0.25, BIG + 0.125],
        ],
        None,
    ),
    # rows 1 and 2 have only masked logits in their first chunk(s); row 1's live logits are
    # near -1000 (re-expressing its empty sum against that shift must not make 0 * inf);
    # row 2 keeps its target alone; row 0 keeps everything
    "dead_first_chunks": (
        [
            [0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0],
            [-2.0, -BIG, 4.0, BIG, -BIG + 0.5, -BIG - 0.5, -BIG + 2.5],
            [3.0, 2.0, -1.0, 6.0, -2.0, 7.0, 0.0],
        ],
        [
            [True] * 7,
            [False, True, False, False, True, True, True],
            [False, False, True, False, False, False, False],
        ],
    ),
    # row 1's target is masked (loss and gradient 0); row 2 keeps its target and one column
    # far to the right
    "masked_target": (
        [
            [1.0, 2.0, -3.0, 0.5, 4.0, -1.0, 2.0],
            [BIG, 0.0, 5.0, -BIG, 1.0, 2.0, 3.0],
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, -6.0],
        ],
        [
            [True] * 7,
            [True, False, True, True, True, True, True],
            [False, False, True, False, False, False, True],
        ],
    ),
}


def _edge_inputs(logits):
    s = np.asarray(logits, dtype=np.float64)
    return np.eye(s.shape[0]), np.ascontiguousarray(s.T)


def _edge_expected(logits, mask, weights):
    q, c = _edge_inputs(logits)
    options = {} if mask is None else {"score_mask": mask}
    with mpmath.workdps(oracle.DPS):
        rows = oracle.retrieval_loss(q.tolist(), c.tolist(), reduction="none", **options)
        loss, dq, dc = oracle.retrieval_loss_grad(
            q.tolist(), c.tolist(), sample_weight=weights, **options
        )
    return _f64_list(rows), oracle.to_float64(loss), _f64_list(dq), _f64_list(dc)


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_streaming_edge_cases_match_oracle(backend, dtype, name):
    logits, mask = EDGE_CASES[name]
    weights = [0.5, 2.0, 1.5]
    rows, loss, dq, dc = _edge_expected(logits, mask, weights)
    assert np.all(np.isfinite(rows))
    q, c = _edge_inputs(logits)
    qb, cb = backend.asarray(q, dtype), backend.asarray(c, dtype)
    kwb = {} if mask is None else {"score_mask": backend.asarray(np.array(mask))}
    wb = backend.asarray(np.array(weights), dtype)
    rtol, grad_rtol = (1e-12, 1e-10) if dtype == "float64" else (2e-5, 2e-4)
    atol = 1e-13 if dtype == "float64" else 1e-4  # float32 logits near 1000 hold 6e-5
    for block_size in BLOCKS:
        for chunk_size in CHUNKS:
            sizes = {"block_size": block_size, "chunk_size": chunk_size}
            tiling = f"block_size={block_size}, chunk_size={chunk_size}"
            per_row = refloss.retrieval_loss(qb, cb, reduction="none", **kwb, **sizes)
            np.testing.assert_allclose(
                to_numpy(per_row), rows, rtol=rtol, atol=atol, err_msg=tiling
            )
            value, (dqb, dcb) = refloss.value_and_grad(refloss.retrieval_loss)(
                qb, cb, sample_weight=wb, **kwb, **sizes
            )
            np.testing.assert_allclose(to_numpy(value), loss, rtol=rtol, atol=atol, err_msg=tiling)
            np.testing.assert_allclose(to_numpy(dqb), dq, rtol=grad_rtol, atol=atol, err_msg=tiling)
            np.testing.assert_allclose(to_numpy(dcb), dc, rtol=grad_rtol, atol=atol, err_msg=tiling)


@pytest.mark.parametrize("name", ["dead_first_chunks", "rescale"])
@pytest.mark.parametrize("backend_name", ["torch"])
def test_torch_autograd_through_chunks_matches_oracle(backend, name):
    # refloss is plain array code, so autograd differentiates the streaming log-sum-exp
    # itself: no step of it may produce inf or NaN, even in a branch that where() discards
    torch = backend.module
    logits, mask = EDGE_CASES[name]
    weights = [0.5, 2.0, 1.5]
    _, loss, dq, dc = _edge_expected(logits, mask, weights)
    q, c = _edge_inputs(logits)
    kwt = {"sample_weight": torch.asarray(weights, dtype=torch.float64)}
    if mask is not None:
        kwt["score_mask"] = torch.asarray(mask)
    for chunk_size in CHUNKS:
        qt = torch.tensor(q, requires_grad=True)
        ct = torch.tensor(c, requires_grad=True)
        value = refloss.retrieval_loss(qt, ct, **kwt, block_size=2, chunk_size=chunk_size)
        value.backward()
        tiling = f"chunk_size={chunk_size}"
        np.testing.assert_allclose(float(value.detach()), loss, rtol=1e-12, err_msg=tiling)
        np.testing.assert_allclose(qt.grad.numpy(), dq, rtol=1e-10, atol=1e-13, err_msg=tiling)
        np.testing.assert_allclose(ct.grad.numpy(), dc, rtol=1e-10, atol=1e-13, err_msg=tiling)


def test_rescale_keeps_the_large_margin_exactly():
    # hand algebra: row 0 of "rescale" is lse - S_00 with lse = 1000 + log(1 + e^-1 + tiny)
    logits, _ = EDGE_CASES["rescale"]
    q, c = _edge_inputs(logits)
    with mpmath.workdps(50):
        lse = mpmath.mpf(BIG) + mpmath.log(1 + mpmath.exp(-1) + mpmath.exp(0.5 - BIG))
        expected = oracle.to_float64(lse + BIG)
    for chunk_size in (1, 2, 3, 4):
        per_row = refloss.retrieval_loss(
            q, c, reduction="none", block_size=1, chunk_size=chunk_size
        )
        np.testing.assert_allclose(per_row[0], expected, rtol=1e-15)


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
@pytest.mark.parametrize("nan_column", [0, 6])
def test_nan_propagates_through_chunks(backend, dtype, nan_column):
    # a NaN in candidate row j makes column j NaN: row 0 sees it; row 1 masks that column
    # (finite); row 2 masks its own target (0)
    rng = np.random.default_rng(nan_column)
    q = np.eye(3)
    c = rng.standard_normal((7, 3))
    c[nan_column, 0] = np.nan
    mask = np.ones((3, 7), dtype=bool)
    mask[1, nan_column] = False
    mask[2, 2] = False
    rows = _f64_list(
        _mp(
            oracle.retrieval_loss,
            q.tolist(),
            c.tolist(),
            score_mask=mask.tolist(),
            reduction="none",
        )
    )
    assert np.isnan(rows[0])
    assert np.isfinite(rows[1])
    assert rows[2] == 0.0
    qb, cb = backend.asarray(q, dtype), backend.asarray(c, dtype)
    mb = backend.asarray(mask)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    for block_size in BLOCKS:
        for chunk_size in CHUNKS:
            sizes = {"block_size": block_size, "chunk_size": chunk_size}
            per_row = to_numpy(
                refloss.retrieval_loss(qb, cb, score_mask=mb, reduction="none", **sizes)
            )
            assert np.isnan(per_row[0]), sizes
            np.testing.assert_allclose(per_row[1:], rows[1:], rtol=rtol, err_msg=str(sizes))
            assert np.isnan(to_numpy(refloss.retrieval_loss(qb, cb, score_mask=mb, **sizes)))


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
def test_wide_rows_in_small_blocks_with_a_partial_last_chunk(backend, dtype):
    # B = 3, N = 11, chunks of 4 columns (4 + 4 + 3), every option but hard negatives
    rng = np.random.default_rng(11)
    q = rng.standard_normal((3, 4))
    c = rng.standard_normal((11, 4))
    ids = np.array([5, 6, 5, 7, 6, 8, 9, 5, 10, 11, 6], dtype=np.int64)
    p = rng.uniform(0.001, 0.3, 11)
    mask = rng.random((3, 11)) < 0.8
    mask[np.arange(3), np.arange(3)] = True
    w = np.array([1.5, 0.25, 2.0])
    kw = {
        "candidate_ids": ids,
        "candidate_sampling_probability": p,
        "score_mask": mask,
        "sample_weight": w,
        "temperature": 0.5,
        "reduction": "mean",
    }
    q64, c64, kw64 = as_dtype(q, c, kw, dtype)
    loss, dq, dc = _mp(
        oracle.retrieval_loss_grad, q64.tolist(), c64.tolist(), **_oracle_options(kw64)
    )
    rtol, atol, grad_rtol, grad_atol = _tolerances(dtype, q64, c64, kw64)
    qb, cb, kwb = _backend_inputs(backend, dtype, q, c, kw, temperature_array=False)
    for block_size in (1, 2):
        sizes = {"block_size": block_size, "chunk_size": 4}
        value, (dqb, dcb) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb, **sizes)
        np.testing.assert_allclose(to_numpy(value), oracle.to_float64(loss), rtol=rtol, atol=atol)
        np.testing.assert_allclose(to_numpy(dqb), _f64_list(dq), rtol=grad_rtol, atol=grad_atol)
        np.testing.assert_allclose(to_numpy(dcb), _f64_list(dc), rtol=grad_rtol, atol=grad_atol)
        direct = refloss.retrieval_loss(qb, cb, **kwb, **sizes)
        np.testing.assert_allclose(to_numpy(direct), oracle.to_float64(loss), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# the tiling layer with general targets: label weights and integer target columns
# ---------------------------------------------------------------------------------------------


def _hand_weighted(s, y, scale):
    """mpmath: per-row sum_j y_ij (lse_i - S_ij) and G = scale_i (Y_i p_ij - y_ij)."""
    with mpmath.workdps(50):
        rows, grad = [], []
        for s_row, y_row, r in zip(s, y, scale, strict=True):
            finite = [mpmath.mpf(v) for v in s_row if v != -np.inf]
            total_y = mpmath.fsum(mpmath.mpf(v) for v in y_row)
            if total_y == 0 or not finite:
                rows.append(mpmath.mpf(0))
                grad.append([mpmath.mpf(0)] * len(s_row))
                continue
            lse = oracle.logsumexp([float(v) for v in s_row])  # at 50 digits already
            terms = [
                mpmath.mpf(yv) * (lse - sv) for sv, yv in zip(s_row, y_row, strict=True) if yv != 0
            ]
            rows.append(mpmath.fsum(terms))
            p = [mpmath.mpf(0) if sv == -np.inf else mpmath.exp(sv - lse) for sv in s_row]
            grad.append(
                [mpmath.mpf(r) * (total_y * pj - yv) for pj, yv in zip(p, y_row, strict=True)]
            )
        return rows, grad


@pytest.mark.parametrize("offset", [0.0, -BIG], ids=["moderate", "row0_near_minus_1000"])
@pytest.mark.parametrize("kind", ["weights", "columns"])
def test_row_losses_stream_general_targets(kind, offset):
    # a correction that masks logits (and shifts row 0 by `offset`), cut into tiles and
    # compared with the one-tile answer of hand algebra in mpmath (dQ = G C, dC = G^T Q)
    rng = np.random.default_rng(3)
    q = rng.standard_normal((4, 3))
    c = rng.standard_normal((7, 3))
    masked = np.zeros((4, 7), dtype=bool)
    masked[0, :4] = True  # row 0: nothing but masked logits in its first chunks
    shift = np.array([offset, 0.0, 0.0, 0.0])[:, None]
    s = q @ c.T + shift
    s_masked = np.where(masked, -np.inf, s)
    if kind == "weights":
        y = np.zeros((4, 7))
        y[0, 5], y[0, 6] = 1.0, 0.5
        y[1, [0, 3, 4]] = 1.0
        y[3, 2] = 2.0  # row 2 has no positive
        targets = TargetWeights(y)
    else:
        index = np.array([6, 0, 3, 3])
        y = np.zeros((4, 7))
        y[np.arange(4), index] = 1.0
        y[2] = 0.0
        targets = TargetColumns(index, np.array([True, True, False, True]), diagonal=False)
    scale = np.array([1.0, 0.5, 2.0, -1.5])
    rows, grad = _hand_weighted(s_masked.tolist(), y.tolist(), scale.tolist())
    expected_rows, g = _f64_list(rows), _f64_list(grad)
    # G in float64 is exact enough to form dQ and dC with NumPy
    expected_dq, expected_dc = g @ c, g.T @ q

    def correct(logits, r, cols):
        return np.where(masked[r, cols], -np.inf, logits + shift[r])

    problem = ScoreProblem(q, c, None, correct, targets)
    xp = array_namespace(q)
    for plan in (
        plan_tiles(4, 7, lazy=False, block_size=2, chunk_size=3),
        plan_tiles(4, 7, lazy=False, block_size=3, chunk_size=1),
        plan_tiles(4, 7, lazy=True),
    ):
        np.testing.assert_allclose(row_losses(problem, plan, xp=xp), expected_rows, rtol=1e-12)
        per_row, dq, dc, _, _ = row_losses_vjp(problem, plan, scale[:, None], xp=xp)
        np.testing.assert_allclose(per_row, expected_rows, rtol=1e-12)
        np.testing.assert_allclose(dq, expected_dq, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(dc, expected_dc, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# plan_tiles
# ---------------------------------------------------------------------------------------------


def _sizes(slices):
    return [s.stop - s.start for s in slices]


def _covers(slices, size):
    return (
        slices[0].start == 0
        and slices[-1].stop == size
        and all(a.stop == b.start for a, b in itertools.pairwise(slices))
    )


def test_documented_tile_constants():
    assert BLOCK_ROWS == 128  # "blocks of 128 rows" (retrieval_loss docstring)
    assert MAX_TILE_ENTRIES == 2**22  # "more than 2**22 logits" (retrieval_loss docstring)


def test_eager_default_cuts_rows_only_while_full_rows_fit():
    # blocks of 128 rows of full rows up to N = 2**22 / 128 = 32768
    plan = plan_tiles(1000, 5000, lazy=False)
    assert _sizes(plan.row_blocks) == [128] * 7 + [1000 - 7 * 128]
    assert plan.col_chunks == (slice(0, 5000),)
    assert plan_tiles(300, 32768, lazy=False).col_chunks == (slice(0, 32768),)
    # a batch smaller than one block is one block
    assert plan_tiles(100, 1000, lazy=False) == Plan((slice(0, 100),), (slice(0, 1000),))
    # N = 40000: 128 full rows would exceed 2**22 logits, so the columns are cut into
    # chunks of 2**22 // 128 = 32768
    plan = plan_tiles(300, 40000, lazy=False)
    assert _sizes(plan.row_blocks) == [128, 128, 44]
    assert _sizes(plan.col_chunks) == [32768, 40000 - 32768]


def test_whole_rows_forces_one_chunk():
    plan = plan_tiles(300, 70000, lazy=False, whole_rows=True)
    assert plan.col_chunks == (slice(0, 70000),)
    assert _sizes(plan.row_blocks) == [128, 128, 44]
    plan = plan_tiles(6, 10, lazy=False, block_size=2, chunk_size=3, whole_rows=True)
    assert plan == Plan((slice(0, 2), slice(2, 4), slice(4, 6)), (slice(0, 10),))


def test_lazy_default_is_one_tile():
    assert plan_tiles(4096, 2**20, lazy=True) == Plan((slice(0, 4096),), (slice(0, 2**20),))
    assert plan_tiles(3, 5, lazy=True) == Plan((slice(0, 3),), (slice(0, 5),))


def test_explicit_sizes_override_either_rule():
    expected = Plan(
        (slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)), (slice(0, 4), slice(4, 7))
    )
    for lazy in (False, True):
        assert plan_tiles(10, 7, lazy=lazy, block_size=3, chunk_size=4) == expected
    # a block larger than the batch, a chunk larger than a row
    assert plan_tiles(3, 5, lazy=False, block_size=8, chunk_size=9) == Plan(
        (slice(0, 3),), (slice(0, 5),)
    )
    # a given block_size alone: columns are cut when its full rows do not fit
    plan = plan_tiles(4, 2**22, lazy=False, block_size=2)
    assert _sizes(plan.row_blocks) == [2, 2]
    assert _sizes(plan.col_chunks) == [2**21] * 2
    # a given chunk_size alone, lazy: one block of rows
    assert plan_tiles(5, 9, lazy=True, chunk_size=4).row_blocks == (slice(0, 5),)


def test_huge_n_plan_has_no_one_row_blocks_and_bounded_tiles():
    # B = 4096 queries against N = 2**20 candidates: plan only, no compute
    plan = plan_tiles(4096, 2**20, lazy=False)
    assert _covers(plan.row_blocks, 4096)
    assert _covers(plan.col_chunks, 2**20)
    rows, cols = _sizes(plan.row_blocks), _sizes(plan.col_chunks)
    assert min(rows) == BLOCK_ROWS > 1
    assert len(plan.col_chunks) > 1
    assert max(rows) * max(cols) <= MAX_TILE_ENTRIES
    # the tiles are not needlessly small either: each holds a full 2**22 logits
    assert min(rows) * min(cols) == MAX_TILE_ENTRIES


# ---------------------------------------------------------------------------------------------
# JAX: one tile by default, given sizes honoured under jax.jit
# ---------------------------------------------------------------------------------------------


class _Planned(Exception):
    """Raised by the recording stand-in of the tiling layer: the plan is known, stop there."""


def _record_plans(monkeypatch):
    plans = []

    def stop(problem, plan, *args, **kwargs):
        plans.append(plan)
        raise _Planned

    monkeypatch.setattr(retrieval_module, "row_losses", stop)
    monkeypatch.setattr(retrieval_module, "row_losses_vjp", stop)
    return plans


@pytest.mark.parametrize("backend_name", ["jax"])
def test_default_plan_of_a_jax_array_is_one_tile(backend, monkeypatch):
    jax = backend.module
    # with 2-row blocks of at most 8 logits, NumPy cuts B = 20 rows into blocks and the
    # columns into chunks; JAX still gets one tile (the plan is recorded, nothing is computed)
    monkeypatch.setattr(refloss._tiling, "BLOCK_ROWS", 2)
    monkeypatch.setattr(refloss._tiling, "MAX_TILE_ENTRIES", 8)
    plans = _record_plans(monkeypatch)
    rng = np.random.default_rng(20)
    q, c = rng.standard_normal((20, 2)), rng.standard_normal((24, 2))
    qj, cj = backend.asarray(q), backend.asarray(c)
    one_tile = Plan((slice(0, 20),), (slice(0, 24),))
    calls = [
        lambda: refloss.retrieval_loss(q, c),
        lambda: refloss.retrieval_loss(qj, cj),
        lambda: refloss.value_and_grad(refloss.retrieval_loss)(qj, cj),
        lambda: jax.jit(refloss.retrieval_loss)(qj, cj),
        lambda: jax.jit(refloss.value_and_grad(refloss.retrieval_loss))(qj, cj),
    ]
    for call in calls:
        with pytest.raises(_Planned):
            call()
    numpy_plan, *jax_plans = plans
    assert numpy_plan.row_blocks == tuple(slice(i, i + 2) for i in range(0, 20, 2))
    assert numpy_plan.col_chunks == tuple(slice(j, j + 4) for j in range(0, 24, 4))
    assert jax_plans == [one_tile] * 4
    # a given size is honoured on JAX too
    with pytest.raises(_Planned):
        refloss.retrieval_loss(qj, cj, block_size=8)
    assert plans[-1] == Plan((slice(0, 8), slice(8, 16), slice(16, 20)), (slice(0, 24),))


@pytest.mark.parametrize("backend_name", ["jax"])
def test_jit_with_given_tile_sizes_equals_eager(backend):
    jax = backend.module
    name = "all_sum"
    q, c, kw, _ = _case(name)
    expected = _expected(name, "float64")["loss"]
    eager = float(refloss.retrieval_loss(q, c, **kw))  # NumPy, default plan: one tile
    np.testing.assert_allclose(eager, expected, rtol=1e-12)
    qj, cj = backend.asarray(q), backend.asarray(c)
    kwj = {k: backend.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    tiled = jax.jit(functools.partial(refloss.retrieval_loss, **kwj, block_size=2, chunk_size=3))
    jitted = float(tiled(qj, cj))
    np.testing.assert_allclose(jitted, eager, rtol=1e-13)
    np.testing.assert_allclose(jitted, expected, rtol=1e-12)
