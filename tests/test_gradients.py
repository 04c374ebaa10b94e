"""value_and_grad(retrieval_loss): torch autograd, the analytic oracle, finite differences."""

from __future__ import annotations

import zlib

import naive_oracle
import numpy as np
import pytest
from _helpers import (
    ABS,
    all_pairs,
    as_dtype,
    assert_like,
    make_case,
    namespace_of,
    pair_params,
    scale_of,
    to_backend,
    to_numpy,
)

import refloss

GRAD_CASES = {
    "plain": {},
    "extra_negatives": {"n": 9},
    "one_row": {"b": 1, "n": 3},
    "temperature": {"temperature": 0.3},
    "logq": {"p": "edge"},
    "logq_min_probability": {"p": "edge", "min_probability": 1e-2, "temperature": 2.0},
    "ids": {"ids": "random"},
    "ids_extra": {"ids": "extra"},
    "score_mask": {"mask": "random"},
    "score_mask_positive_masked": {"mask": "pos_masked"},
    "row_only_positive": {"mask": "negatives_of_row0"},
    "weights": {"weights": "zeros_negatives"},
    "weights_scalar": {"weights": "scalar"},
    "hard_negatives_1": {"num_hard_negatives": 1},
    "hard_negatives_3": {"num_hard_negatives": 3, "mask": "random"},
    "hard_negatives_all": {"num_hard_negatives": 20},
    "mean": {"weights": "random", "reduction": "mean"},
    "everything_sum": {
        "b": 5,
        "n": 9,
        "d": 4,
        "p": "edge",
        "ids": "random",
        "mask": "pos_masked",
        "weights": "zeros_negatives",
        "num_hard_negatives": 3,
        "temperature": 0.4,
    },
    "everything_mean": {
        "b": 5,
        "n": 9,
        "d": 4,
        "p": "random",
        "ids": "extra",
        "mask": "random",
        "weights": "random",
        "num_hard_negatives": 2,
        "temperature": 1.7,
        "min_probability": 1e-3,
        "reduction": "mean",
    },
}


def _case(name):
    return make_case(zlib.crc32(name.encode()) + 1, **GRAD_CASES[name])


# ---------------------------------------------------------------------------------------------
# an independent torch formulation, differentiated by autograd
# ---------------------------------------------------------------------------------------------


def torch_loss_and_grads(q, c, kw):
    """The pinned semantics written with torch ops; gradients from autograd (float64)."""
    torch = pytest.importorskip("torch")
    f64 = torch.float64
    qt = torch.tensor(q, dtype=f64, requires_grad=True)
    ct = torch.tensor(c, dtype=f64, requires_grad=True)
    s = qt @ ct.T
    b, n = s.shape
    if kw.get("temperature") is not None:
        s = s / kw["temperature"]
    p = kw.get("candidate_sampling_probability")
    if p is not None:
        pt = torch.tensor(np.asarray(p), dtype=f64)
        s = s - torch.log(torch.clamp(pt, min=kw.get("min_probability", 1e-6), max=1.0))
    eye = torch.eye(b, n, dtype=torch.bool)
    keep = torch.ones(b, n, dtype=torch.bool)
    ids = kw.get("candidate_ids")
    if ids is not None:
        it = torch.tensor(np.asarray(ids))
        keep = keep & ~((it[:b, None] == it[None, :]) & ~eye)
    m = kw.get("score_mask")
    if m is not None:
        keep = keep & torch.tensor(np.asarray(m))
    k = kw.get("num_hard_negatives")
    if k is not None:
        key = s.detach().masked_fill(~keep, -torch.inf).masked_fill(eye, torch.inf)
        order = torch.argsort(key, dim=1, descending=True, stable=True)
        chosen = torch.zeros(b, n, dtype=torch.bool)
        chosen = chosen.scatter(1, order[:, : min(k + 1, n)], True)
        keep = keep & chosen
    has_target = keep[torch.arange(b), torch.arange(b)]
    logits = s.masked_fill(~keep, -torch.inf)
    # rows without a target get a finite dummy row, so no NaN can reach the gradient
    logits = torch.where(has_target[:, None], logits, torch.zeros_like(logits))
    lse = torch.logsumexp(logits, dim=1)
    pos = torch.diagonal(s[:, :b])
    rows = torch.where(has_target, lse - pos, torch.zeros_like(lse))
    w = kw.get("sample_weight")
    wt = torch.ones(b, dtype=f64) if w is None else torch.tensor(np.asarray(w), dtype=f64)
    total = torch.sum(wt * rows)
    if kw.get("reduction", "sum") == "mean":
        total = total / b
    total.backward()
    return float(total.detach()), qt.grad.numpy(), ct.grad.numpy()


def _grad_tols(dtype, q, c, kw):
    scale = scale_of(q, c, kw)
    if dtype == "float64":
        return 1e-10, 1e-12 * scale
    return 2e-4, 5e-6 * scale


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_value_and_grad_matches_torch_autograd(backend, dtype, name):
    q, c, kw = _case(name)
    q, c, kw = as_dtype(q, c, kw, dtype)
    ref_loss, ref_dq, ref_dc = torch_loss_and_grads(q, c, kw)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    loss, grads = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    assert isinstance(grads, tuple)
    assert len(grads) == 2
    dq, dc = grads
    rtol, atol = _grad_tols(dtype, q, c, kw)
    np.testing.assert_allclose(
        float(to_numpy(loss)), ref_loss, rtol=rtol, atol=atol * max(1, q.shape[0])
    )
    np.testing.assert_allclose(to_numpy(dq), ref_dq, rtol=rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), ref_dc, rtol=rtol, atol=atol)
    # the loss returned with the gradients is the loss itself
    direct = to_numpy(refloss.retrieval_loss(qb, cb, **kwb))
    np.testing.assert_allclose(to_numpy(loss), direct, rtol=rtol, atol=atol * q.shape[0])


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_value_and_grad_matches_analytic_oracle(name):
    # G = r w (P - Y); dQ = G C / tau; dC = G^T Q / tau, evaluated in plain Python
    q, c, kw = _case(name)
    ref = naive_oracle.retrieval_loss(q, c, **kw)
    loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(q, c, **kw)
    atol = ABS["float64"] * scale_of(q, c, kw) * 10
    np.testing.assert_allclose(float(loss), ref.loss, rtol=1e-12, atol=atol * q.shape[0])
    np.testing.assert_allclose(dq, np.array(ref.dq), rtol=1e-12, atol=atol)
    np.testing.assert_allclose(dc, np.array(ref.dc), rtol=1e-12, atol=atol)


def test_oracle_gradient_matches_torch_autograd():
    # the two references agree with each other (guards both)
    q, c, kw = _case("everything_sum")
    ref = naive_oracle.retrieval_loss(q, c, **kw)
    t_loss, t_dq, t_dc = torch_loss_and_grads(q, c, kw)
    np.testing.assert_allclose(ref.loss, t_loss, rtol=1e-13)
    np.testing.assert_allclose(np.array(ref.dq), t_dq, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(np.array(ref.dc), t_dc, rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# central finite differences (NumPy float64)
# ---------------------------------------------------------------------------------------------

FD_CASES = [
    "plain",
    "temperature",
    "logq",
    "ids",
    "score_mask_positive_masked",
    "weights",
    "hard_negatives_3",
    "mean",
    "everything_sum",
]


@pytest.mark.parametrize("name", FD_CASES)
def test_value_and_grad_matches_finite_differences(name):
    q, c, kw = _case(name)
    _, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(q, c, **kw)
    h = 1e-6

    def f(qq, cc):
        return float(refloss.retrieval_loss(qq, cc, **kw))

    fd_q = np.zeros_like(q)
    for idx in np.ndindex(q.shape):
        qp, qm = q.copy(), q.copy()
        qp[idx] += h
        qm[idx] -= h
        fd_q[idx] = (f(qp, c) - f(qm, c)) / (2 * h)
    fd_c = np.zeros_like(c)
    for idx in np.ndindex(c.shape):
        cp, cm = c.copy(), c.copy()
        cp[idx] += h
        cm[idx] -= h
        fd_c[idx] = (f(q, cp) - f(q, cm)) / (2 * h)
    np.testing.assert_allclose(dq, fd_q, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dc, fd_c, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# masking, metadata, errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "masking", ["row_fully_masked", "all_masked", "ids_all_same", "positive_masked_hard_negatives"]
)
def test_masking_never_yields_nan_gradients(backend, dtype, masking):
    q, c, kw = make_case(5, b=4, n=7, p="edge", weights="random")
    m = np.ones((4, 7), dtype=bool)
    if masking == "row_fully_masked":
        m[1, :] = False
        kw["score_mask"] = m
    elif masking == "all_masked":
        kw["score_mask"] = ~m
    elif masking == "ids_all_same":
        kw["candidate_ids"] = np.zeros(7, dtype=np.int64)
    else:
        m[0, 0] = False
        m[3, :] = False
        m[3, 3] = True
        kw["score_mask"] = m
        kw["num_hard_negatives"] = 2
    q, c, kw = as_dtype(q, c, kw, dtype)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    for reduction in ("sum", "mean"):
        loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(
            qb, cb, **kwb, reduction=reduction
        )
        assert np.isfinite(to_numpy(loss))
        assert np.all(np.isfinite(to_numpy(dq)))
        assert np.all(np.isfinite(to_numpy(dc)))
    ref = naive_oracle.retrieval_loss(q, c, **kw)
    rtol, atol = _grad_tols(dtype, q, c, kw)
    _, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    np.testing.assert_allclose(to_numpy(dq), np.array(ref.dq), rtol=rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), np.array(ref.dc), rtol=rtol, atol=atol)
    if masking in ("all_masked", "ids_all_same"):
        np.testing.assert_array_equal(to_numpy(dq), np.zeros((4, 3)))
        np.testing.assert_array_equal(to_numpy(dc), np.zeros((7, 3)))


@pytest.mark.parametrize(("backend_name", "dtype"), pair_params(all_pairs()))
def test_grads_match_inputs(backend, dtype):
    q, c, kw = make_case(
        8,
        b=3,
        n=5,
        p="random",
        ids="random",
        weights="random",
        temperature=0.5,
        num_hard_negatives=2,
    )
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    loss, grads = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    assert_like(loss, backend, qb.dtype, (), qb)
    assert isinstance(grads, tuple)
    assert len(grads) == 2
    for g, x in zip(grads, (qb, cb), strict=True):
        assert namespace_of(g) is namespace_of(x)
        assert_like(g, backend, x.dtype, tuple(x.shape), x)


def test_grads_keep_non_default_device():
    xs = pytest.importorskip("array_api_strict")
    dev = xs.Device("device1")
    q, c, kw = make_case(9, b=3, n=5, p="random", weights="random", temperature=0.5)
    qb = xs.asarray(q, device=dev)
    cb = xs.asarray(c, device=dev)
    p = xs.asarray(kw["candidate_sampling_probability"], device=dev)
    w = xs.asarray(kw["sample_weight"], device=dev)
    loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(
        qb, cb, candidate_sampling_probability=p, sample_weight=w, temperature=0.5
    )
    assert loss.device == dev
    assert dq.device == dev
    assert dc.device == dev


def test_reduction_none_raises(backend):
    q, c, kw = make_case(10, b=3, n=4)
    qb, cb, _ = to_backend(backend, q, c, kw, "float64" if backend.has_float64 else "float32")
    grad_fn = refloss.value_and_grad(refloss.retrieval_loss)
    with pytest.raises(ValueError, match="reduction"):
        grad_fn(qb, cb, reduction="none")


def test_value_and_grad_does_not_mutate_inputs(backend, dtype):
    q, c, kw = make_case(
        12,
        b=3,
        n=6,
        p="edge",
        ids="random",
        mask="pos_masked",
        weights="zeros_negatives",
        num_hard_negatives=2,
    )
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    before = {k: to_numpy(v) for k, v in kwb.items() if hasattr(v, "shape")}
    q0, c0 = to_numpy(qb), to_numpy(cb)
    refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    np.testing.assert_array_equal(to_numpy(qb), q0)
    np.testing.assert_array_equal(to_numpy(cb), c0)
    for k, v in before.items():
        np.testing.assert_array_equal(to_numpy(kwb[k]), v)
