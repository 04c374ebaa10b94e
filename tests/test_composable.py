"""The composable core: a 0-D temperature, ``wrt``, partials, general targets, half precision.

Expected values never come from refloss: the mpmath oracle of ``conformance/generator``,
hand algebra evaluated with mpmath, central finite differences (of the oracle at 50 digits
for the temperature), and PyTorch autograd through refloss as a second derivative.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
from _helpers import as_dtype, assert_like, namespace_of, pair_params, to_backend, to_numpy

import refloss
from conformance.generator import oracle

TAU = 0.4
NAMES = ("query_embeddings", "candidate_embeddings", "temperature")
RETRIEVAL_DIFFERENTIABLE = (
    "query_embeddings",
    "candidate_embeddings",
    "temperature",
    "sample_weight",
)
EAGER = [("numpy", d) for d in ("float32", "float64")] + [
    (b, d) for b in ("array_api_strict", "torch") for d in ("float32", "float64")
]
TEMPERATURE_PAIRS = pair_params([*EAGER, ("jax", "float64"), ("jax32", "float32")])
EAGER_PAIRS = pair_params(EAGER)


def _mpf_list(x):
    return [_mpf_list(v) for v in x] if isinstance(x, list) else mpmath.mpf(x)


def _f64(x):
    if isinstance(x, list):
        return np.array([_f64(v) for v in x])
    return oracle.to_float64(x)


def _retrieval_case(seed=0):
    """NumPy float64 inputs with every option on (B = 4, N = 6, D = 3), and 2 hard negatives."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((4, 3))
    c = rng.standard_normal((6, 3))
    mask = rng.random((4, 6)) < 0.8
    mask[np.arange(4), np.arange(4)] = True
    mask[2, 2] = False  # a masked positive
    kw = {
        "candidate_sampling_probability": rng.uniform(0.01, 0.5, 6),
        "candidate_ids": np.array([7, 8, 7, 9, 8, 10]),
        "score_mask": mask,
        "sample_weight": rng.uniform(0.5, 2.0, 4),
        "num_hard_negatives": 2,
    }
    return q, c, kw


def _options(kw):
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in kw.items()}


def _oracle_loss(q, c, kw, temperature, **extra):
    with mpmath.workdps(oracle.DPS):
        return oracle.retrieval_loss(
            q.tolist(), c.tolist(), temperature=temperature, **_options(kw), **extra
        )


def _oracle_grad(q, c, kw, temperature):
    with mpmath.workdps(oracle.DPS):
        value, dq, dc = oracle.retrieval_loss_grad(
            q.tolist(), c.tolist(), temperature=temperature, **_options(kw)
        )
        return oracle.to_float64(value), _f64(dq), _f64(dc)


def _oracle_dtau(q, c, kw, temperature):
    """Central finite difference of the oracle loss in tau, at 50 digits (error ~1e-30)."""
    with mpmath.workdps(oracle.DPS):
        tau, h = mpmath.mpf(temperature), mpmath.mpf(2) ** -60
        plus = _oracle_loss(q, c, kw, tau + h)
        minus = _oracle_loss(q, c, kw, tau - h)
        return oracle.to_float64((plus - minus) / (2 * h))


def _arrays(backend, kw, dtype):
    return {
        k: backend.asarray(v, dtype if v.dtype.kind == "f" else None)
        if isinstance(v, np.ndarray)
        else v
        for k, v in kw.items()
    }


# ---------------------------------------------------------------------------------------------
# temperature as a 0-D array
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("backend_name", "dtype"), TEMPERATURE_PAIRS)
def test_array_temperature_loss_and_gradient(backend, dtype):
    q, c, kw = _retrieval_case()
    q64, c64, kw64 = as_dtype(q, c, kw, dtype)
    tau = float(np.float32(TAU)) if dtype == "float32" else TAU
    expected_loss, expected_dq, expected_dc = _oracle_grad(q64, c64, kw64, tau)
    expected_dtau = _oracle_dtau(q64, c64, kw64, tau)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    tb = backend.asarray(np.asarray(TAU), dtype)
    assert tuple(tb.shape) == ()
    vg = refloss.value_and_grad(refloss.retrieval_loss, wrt=NAMES)
    if backend.is_jax:
        jax = backend.module
        arrays = {k: v for k, v in kwb.items() if k != "num_hard_negatives"}
        hard = {"num_hard_negatives": kwb["num_hard_negatives"]}
        loss_float = jax.jit(
            lambda a, b: refloss.retrieval_loss(a, b, temperature=TAU, **arrays, **hard)
        )(qb, cb)
        loss_array = jax.jit(
            lambda a, b, t: refloss.retrieval_loss(a, b, temperature=t, **arrays, **hard)
        )(qb, cb, tb)
        # the temperature is traced: jax.jit(value_and_grad(..., wrt=...))
        value, grads = jax.jit(vg, static_argnames=("num_hard_negatives",))(
            qb, cb, temperature=tb, **arrays, **hard
        )
    else:
        loss_float = refloss.retrieval_loss(qb, cb, temperature=TAU, **kwb)
        loss_array = refloss.retrieval_loss(qb, cb, temperature=tb, **kwb)
        value, grads = vg(qb, cb, temperature=tb, **kwb)
    float_dtype = backend.dtype(dtype)
    for out in (loss_float, loss_array, value):
        assert_like(out, backend, float_dtype, (), qb)
    assert len(grads) == 3
    dq, dc, dtau = grads
    assert_like(dq, backend, float_dtype, qb.shape, qb)
    assert_like(dc, backend, float_dtype, cb.shape, cb)
    assert_like(dtau, backend, tb.dtype, (), tb)  # 0-D, the temperature's dtype
    if dtype == "float64":
        rtol, grad_rtol, atol = 1e-12, 1e-10, 1e-13
        np.testing.assert_allclose(to_numpy(loss_array), to_numpy(loss_float), rtol=1e-15)
    else:
        rtol, grad_rtol, atol = 2e-5, 2e-4, 2e-5
        np.testing.assert_allclose(to_numpy(loss_array), to_numpy(loss_float), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loss_array), expected_loss, rtol=rtol)
    np.testing.assert_allclose(to_numpy(value), expected_loss, rtol=rtol)
    np.testing.assert_allclose(to_numpy(dq), expected_dq, rtol=grad_rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), expected_dc, rtol=grad_rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dtau), expected_dtau, rtol=grad_rtol, atol=atol)


@functools.cache
def _torch_temperature_gradients(seed, hard):
    """``(loss, dQ, dC, dtau)`` from PyTorch autograd through refloss (float64)."""
    torch = pytest.importorskip("torch")
    q, c, kw = _retrieval_case(seed)
    if not hard:
        kw.pop("num_hard_negatives")
    qt = torch.tensor(q, requires_grad=True)
    ct = torch.tensor(c, requires_grad=True)
    tt = torch.tensor(TAU, dtype=torch.float64, requires_grad=True)
    kwt = {k: torch.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    loss = refloss.retrieval_loss(qt, ct, temperature=tt, **kwt)
    loss.backward()
    return (
        float(loss.detach()),
        qt.grad.numpy(),
        ct.grad.numpy(),
        float(tt.grad),
        (q, c, kw),
    )


@pytest.mark.parametrize("hard", [False, True], ids=["all_options", "hard_negatives"])
@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_temperature_gradient_matches_torch_autograd_and_oracle(backend, hard):
    loss, dq, dc, dtau, (q, c, kw) = _torch_temperature_gradients(1, hard)
    # the autograd reference itself agrees with the oracle's finite difference
    np.testing.assert_allclose(dtau, _oracle_dtau(q, c, kw, TAU), rtol=1e-10)
    qb, cb, kwb = to_backend(backend, q, c, kw, "float64")
    tb = backend.asarray(np.asarray(TAU), "float64")
    value, (g_dq, g_dc, g_dtau) = refloss.value_and_grad(refloss.retrieval_loss, wrt=NAMES)(
        qb, cb, temperature=tb, **kwb
    )
    np.testing.assert_allclose(float(to_numpy(value)), loss, rtol=1e-13)
    np.testing.assert_allclose(float(to_numpy(g_dtau)), dtau, rtol=1e-10)
    np.testing.assert_allclose(to_numpy(g_dq), dq, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(to_numpy(g_dc), dc, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("backend_name", ["jax"])
def test_jax_grad_through_refloss_wrt_temperature(backend):
    jax = backend.module
    q, c, kw = _retrieval_case(1)
    kw.pop("num_hard_negatives")
    qj, cj = backend.asarray(q), backend.asarray(c)
    kwj = _arrays(backend, kw, "float64")
    tj = backend.asarray(np.asarray(TAU))

    def loss(t):
        return refloss.retrieval_loss(qj, cj, temperature=t, **kwj)

    dtau = jax.jit(jax.grad(loss))(tj)
    assert namespace_of(dtau) is backend.xp
    assert dtau.dtype == tj.dtype
    assert dtau.shape == ()
    np.testing.assert_allclose(float(dtau), _oracle_dtau(q, c, kw, TAU), rtol=1e-10)
    _, _, _, torch_dtau, _ = _torch_temperature_gradients(1, False)
    np.testing.assert_allclose(float(dtau), torch_dtau, rtol=1e-10)


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "torch"])
def test_temperature_array_errors(backend):
    q, c, _ = _retrieval_case()
    qb, cb = backend.asarray(q), backend.asarray(c)
    vg = refloss.value_and_grad(refloss.retrieval_loss, wrt=NAMES)
    bad = [
        (backend.asarray(np.array([TAU])), ValueError, r"temperature must be a 0-D array.*\(1,\)"),
        (
            backend.asarray(np.array(TAU, dtype=np.float32)),
            TypeError,
            r"temperature must have the embeddings' dtype .*float64.*got .*float32",
        ),
        (backend.asarray(np.array(2)), TypeError, r"temperature must have the embeddings' dtype"),
        (backend.asarray(np.array(0.0)), ValueError, r"temperature must be finite and > 0, got 0"),
        (backend.asarray(np.array(-0.5)), ValueError, r"temperature must be finite and > 0"),
        (backend.asarray(np.array(np.nan)), ValueError, r"temperature must be finite and > 0"),
        (backend.asarray(np.array(np.inf)), ValueError, r"temperature must be finite and > 0"),
        ("0.5", TypeError, r"^temperature must be .*got str"),
    ]
    for temperature, error, message in bad:
        with pytest.raises(error, match=message):
            refloss.retrieval_loss(qb, cb, temperature=temperature)
        # value_and_grad may refuse it earlier, as an argument it cannot differentiate
        with pytest.raises(error, match="temperature"):
            vg(qb, cb, temperature=temperature)


@pytest.mark.parametrize("temperature", [0.5, None])
def test_differentiating_a_temperature_that_is_not_an_array(temperature):
    q, c, _ = _retrieval_case()
    vg = refloss.value_and_grad(refloss.retrieval_loss, wrt=("temperature",))
    with pytest.raises(TypeError, match=r"cannot differentiate with respect to temperature"):
        vg(q, c, temperature=temperature)
    # the loss itself is fine with it
    assert np.isfinite(float(refloss.retrieval_loss(q, c, temperature=temperature)))


# ---------------------------------------------------------------------------------------------
# wrt
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
def test_wrt_order_is_respected(backend):
    q, c, kw = _retrieval_case(2)
    expected_loss, expected_dq, expected_dc = _oracle_grad(q, c, kw, TAU)
    qb, cb, kwb = to_backend(backend, q, c, kw, "float64")
    tb = backend.asarray(np.asarray(TAU))
    wrt = ("temperature", "candidate_embeddings", "sample_weight", "query_embeddings")
    value, grads = refloss.value_and_grad(refloss.retrieval_loss, wrt=wrt)(
        qb, cb, temperature=tb, **kwb
    )
    assert len(grads) == 4
    dtau, dc, dw, dq = grads
    assert_like(dtau, backend, backend.xp.float64, (), tb)
    assert_like(dc, backend, backend.xp.float64, cb.shape, cb)
    assert_like(dw, backend, backend.xp.float64, (4,), qb)
    assert_like(dq, backend, backend.xp.float64, qb.shape, qb)
    np.testing.assert_allclose(float(to_numpy(value)), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(dq), expected_dq, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(to_numpy(dc), expected_dc, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(float(to_numpy(dtau)), _oracle_dtau(q, c, kw, TAU), rtol=1e-10)
    # a single name is a one-element tuple
    _, single = refloss.value_and_grad(refloss.retrieval_loss, wrt="candidate_embeddings")(
        qb, cb, temperature=tb, **kwb
    )
    assert isinstance(single, tuple)
    assert len(single) == 1
    np.testing.assert_allclose(to_numpy(single[0]), expected_dc, rtol=1e-10, atol=1e-14)


def test_unknown_wrt_names_are_refused_with_the_differentiable_names():
    for wrt in (("query_embeddings", "labels"), "candidate_ids", ()):
        with pytest.raises(ValueError, match="wrt must name") as info:
            refloss.value_and_grad(refloss.retrieval_loss, wrt=wrt)
        for name in RETRIEVAL_DIFFERENTIABLE:
            assert name in str(info.value)
    with pytest.raises(ValueError, match=r"'logits', 'sample_weight'"):
        refloss.value_and_grad(refloss.softmax_cross_entropy, wrt=("labels",))
    with pytest.raises(ValueError, match=r"\('x',\)"):
        refloss.value_and_grad(refloss.logsumexp, wrt="axis")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("scalar_weight", [False, True], ids=["per_row", "0-D"])
def test_sample_weight_gradient_is_the_row_losses(reduction, scalar_weight):
    q, c, kw = _retrieval_case(3)
    if scalar_weight:
        kw["sample_weight"] = np.asarray(0.75)
    rows = _f64(
        _oracle_loss(
            q, c, {k: v for k, v in kw.items() if k != "sample_weight"}, TAU, reduction="none"
        )
    )
    expected = rows / (4 if reduction == "mean" else 1)
    if scalar_weight:
        expected = np.sum(expected)
    vg = refloss.value_and_grad(refloss.retrieval_loss, wrt=("sample_weight",))
    value, (dw,) = vg(q, c, temperature=TAU, reduction=reduction, **kw)
    assert dw.shape == np.shape(kw["sample_weight"])
    assert dw.dtype == np.float64
    np.testing.assert_allclose(dw, expected, rtol=1e-12)
    # the loss is linear in the weights: L = dL/dw . w
    np.testing.assert_allclose(float(value), float(np.sum(dw * kw["sample_weight"])), rtol=1e-12)


def test_sample_weight_gradient_of_softmax_cross_entropy():
    rng = np.random.default_rng(4)
    s = rng.standard_normal((3, 5))
    weights = np.array([0.5, 2.0, 1.25])
    with mpmath.workdps(oracle.DPS):
        _, rows = oracle.softmax_cross_entropy(s.tolist(), reduction="none")
    rows = _f64(rows)
    for reduction, r in (("sum", 1.0), ("mean", 1 / 3)):
        vg = refloss.value_and_grad(refloss.softmax_cross_entropy, wrt=("sample_weight", "logits"))
        _, (dw, ds) = vg(s, sample_weight=weights, reduction=reduction)
        assert ds.shape == s.shape
        np.testing.assert_allclose(dw, r * rows, rtol=1e-12)
        _, (dw0,) = refloss.value_and_grad(refloss.softmax_cross_entropy, wrt="sample_weight")(
            s, sample_weight=np.asarray(2.0), reduction=reduction
        )
        assert dw0.shape == ()
        np.testing.assert_allclose(dw0, r * np.sum(rows), rtol=1e-12)


def test_integer_sample_weight_cannot_be_differentiated():
    q, c, _ = _retrieval_case()
    vg = refloss.value_and_grad(refloss.retrieval_loss, wrt=("sample_weight",))
    with pytest.raises(TypeError, match=r"cannot differentiate with respect to sample_weight"):
        vg(q, c, sample_weight=np.array([1, 2, 1, 1]))
    with pytest.raises(TypeError, match=r"cannot differentiate with respect to sample_weight"):
        vg(q, c, sample_weight=2.0)


# ---------------------------------------------------------------------------------------------
# functools.partial and what value_and_grad refuses
# ---------------------------------------------------------------------------------------------


def test_value_and_grad_of_a_partial_retrieval_loss():
    q, c, _ = _retrieval_case(5)
    expected_loss, expected_dq, expected_dc = _oracle_grad(q, c, {}, 0.5)
    partial = functools.partial(refloss.retrieval_loss, temperature=0.5)
    value, (dq, dc) = refloss.value_and_grad(partial)(q, c)
    direct_value, (direct_dq, direct_dc) = refloss.value_and_grad(refloss.retrieval_loss)(
        q, c, temperature=0.5
    )
    np.testing.assert_allclose(float(value), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(dq, expected_dq, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dc, expected_dc, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(value, direct_value)
    np.testing.assert_array_equal(dq, direct_dq)
    np.testing.assert_array_equal(dc, direct_dc)
    # nested partials, a bound positional array, and a call-time keyword that overrides
    nested = functools.partial(functools.partial(refloss.retrieval_loss, q), temperature=2.0)
    value, (dq, dc) = refloss.value_and_grad(nested)(c, temperature=0.5)
    np.testing.assert_allclose(float(value), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(dq, expected_dq, rtol=1e-10, atol=1e-14)


def test_value_and_grad_of_a_partial_softmax_cross_entropy():
    rng = np.random.default_rng(6)
    s = rng.standard_normal((3, 4))
    with mpmath.workdps(oracle.DPS):
        expected, _ = oracle.softmax_cross_entropy(s.tolist(), reduction="mean")
        lse = [oracle.logsumexp(row) for row in s.tolist()]
        # G = (softmax - onehot(i)) / B
        grad = [
            [(mpmath.exp(v - lse[i]) - (1 if j == i else 0)) / 3 for j, v in enumerate(row)]
            for i, row in enumerate(s.tolist())
        ]
    partial = functools.partial(refloss.softmax_cross_entropy, reduction="mean")
    value, (ds,) = refloss.value_and_grad(partial)(s)
    np.testing.assert_allclose(float(value), oracle.to_float64(expected), rtol=1e-12)
    np.testing.assert_allclose(ds, _f64(grad), rtol=1e-10, atol=1e-16)
    direct = refloss.value_and_grad(refloss.softmax_cross_entropy)(s, reduction="mean")
    np.testing.assert_array_equal(value, direct[0])
    np.testing.assert_array_equal(ds, direct[1][0])


@pytest.mark.parametrize(
    "function",
    [
        refloss.logq_correction,
        refloss.remove_accidental_hits,
        refloss.apply_score_mask,
        refloss.mine_hard_negatives,
        functools.partial(refloss.mine_hard_negatives, num_hard_negatives=1),
    ],
)
def test_value_and_grad_of_a_step_function_is_refused(function):
    with pytest.raises(TypeError, match="not a scalar loss"):
        refloss.value_and_grad(function)


def test_value_and_grad_of_other_callables_is_refused():
    with pytest.raises(TypeError, match="value_and_grad supports the scalar losses"):
        refloss.value_and_grad(lambda q, c: refloss.retrieval_loss(q, c))
    with pytest.raises(TypeError, match="value_and_grad supports the scalar losses"):
        refloss.value_and_grad(np.sum)


def test_value_and_grad_needs_a_scalar_reduction():
    q, c, _ = _retrieval_case()
    message = r'value_and_grad needs a scalar loss: use reduction="sum" or "mean", not "none"'
    with pytest.raises(ValueError, match=message):
        refloss.value_and_grad(refloss.retrieval_loss)(q, c, reduction="none")
    partial = refloss.value_and_grad(
        functools.partial(refloss.softmax_cross_entropy, reduction="none")
    )
    with pytest.raises(ValueError, match=message):
        partial(q @ c.T)


# ---------------------------------------------------------------------------------------------
# softmax_cross_entropy with labels
# ---------------------------------------------------------------------------------------------

NEG = -np.inf
LOGITS_TALL = np.array(  # B = 5 > N = 3; row 1 has a masked non-target entry
    [[0.5, -1.0, 2.0], [1.5, 0.25, NEG], [-0.5, 3.0, 1.0], [2.0, 2.5, -3.0], [0.0, 1.0, 0.5]]
)
LOGITS_WIDE = np.array(  # masked entries in rows 0 and 3; row 2 keeps one logit only
    [
        [1.0, NEG, 0.5, -2.0, 3.0],
        [0.25, 0.5, 0.75, 1.0, -1.0],
        [NEG, NEG, 2.0, NEG, NEG],
        [4.0, -1.0, NEG, 0.0, 1.5],
    ]
)
BOOL_LABELS = np.array(
    [
        [True, False, True, False, False],  # two positives
        [False, False, False, False, False],  # no positive: loss 0
        [False, False, True, False, False],  # the only live logit: loss 0
        [True, True, False, True, True],  # four positives
    ]
)
FLOAT_LABELS = np.array(
    [[0.5, 0.0, 2.0, 0.0, 0.25], [0.0] * 5, [0.0, 0.0, 1.5, 0.0, 0.0], [0.0, 3.0, 0.0, 1.0, 0.0]]
)
LABEL_CASES = {
    "integer": (LOGITS_TALL, np.array([2, 0, 2, 1, 0]), None, None),
    "integer_positive_mask": (
        LOGITS_TALL,
        np.array([1, 1, 0, 2, 2]),
        np.array([True, False, True, True, False]),
        np.array([0.5, 1.0, 2.0, 1.5, 1.0]),
    ),
    "bool": (LOGITS_WIDE, BOOL_LABELS, None, np.array([1.0, 2.0, 0.5, 1.5])),
    "bool_positive_mask": (LOGITS_WIDE, BOOL_LABELS, np.array([True, True, True, False]), None),
    "float": (LOGITS_WIDE, FLOAT_LABELS, None, None),
    "float_positive_mask": (
        LOGITS_WIDE,
        FLOAT_LABELS,
        np.array([False, True, True, True]),
        np.array([2.0, 1.0, 1.0, 0.5]),
    ),
}


def _label_matrix(logits, labels, positive_mask):
    """The labels as a (B, N) weight matrix, rows without a target zeroed."""
    if labels.ndim == 1:
        y = np.zeros(logits.shape)
        y[np.arange(len(labels)), labels] = 1.0
    else:
        y = labels.astype(np.float64)
    if positive_mask is not None:
        y[~positive_mask] = 0.0
    return y


def _hand_cross_entropy(logits, y, weights, reduction):
    """mpmath: l_i = sum_j y_ij (lse_i - S_ij); G_ij = r w_i (Y_i p_ij - y_ij) (finite rows)."""
    b = logits.shape[0]
    r = mpmath.mpf(1) if reduction == "sum" else mpmath.mpf(1) / b
    w = np.ones(b) if weights is None else weights
    rows, grad = [], []
    with mpmath.workdps(oracle.DPS):
        for s_row, y_row, w_i in zip(logits.tolist(), y.tolist(), w.tolist(), strict=True):
            total = mpmath.fsum(y_row)
            if total == 0 or all(v == NEG for v in s_row):
                rows.append(mpmath.mpf(0))
                grad.append([mpmath.mpf(0)] * len(s_row))
                continue
            lse = oracle.logsumexp(s_row)
            if any(yv > 0 and sv == NEG for sv, yv in zip(s_row, y_row, strict=True)):
                rows.append(mpmath.inf)
                grad.append(None)
                continue
            rows.append(
                mpmath.fsum(yv * (lse - sv) for sv, yv in zip(s_row, y_row, strict=True) if yv != 0)
            )
            p = [mpmath.mpf(0) if sv == NEG else mpmath.exp(sv - lse) for sv in s_row]
            grad.append([r * w_i * (total * pj - yv) for pj, yv in zip(p, y_row, strict=True)])
        per_row = [w_i * v for w_i, v in zip(w.tolist(), rows, strict=True)]
        loss = mpmath.fsum(per_row) * r
        return oracle.to_float64(loss), _f64(per_row), grad


def _label_inputs(backend, dtype, logits, labels, positive_mask, weights):
    kwargs = {"labels": backend.asarray(labels, dtype)}
    if positive_mask is not None:
        kwargs["positive_mask"] = backend.asarray(positive_mask)
    if weights is not None:
        kwargs["sample_weight"] = backend.asarray(weights, dtype)
    return backend.asarray(logits, dtype), kwargs


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
@pytest.mark.parametrize("name", list(LABEL_CASES))
def test_softmax_cross_entropy_labels_match_hand_algebra(backend, dtype, name):
    logits, labels, positive_mask, weights = LABEL_CASES[name]
    rounded = logits.astype(dtype).astype(np.float64)
    y = _label_matrix(logits, labels, positive_mask)
    rtol, grad_rtol, atol = (1e-12, 1e-10, 1e-15) if dtype == "float64" else (2e-6, 2e-5, 1e-6)
    sb, kwargs = _label_inputs(backend, dtype, logits, labels, positive_mask, weights)
    float_dtype = backend.dtype(dtype)
    for reduction in ("sum", "mean"):
        loss, per_row, grad = _hand_cross_entropy(rounded, y, weights, reduction)
        assert np.all(np.isfinite(per_row))
        # the oracle, with its own tail-accurate row losses, agrees with the hand algebra
        with mpmath.workdps(oracle.DPS):
            oracle_loss, _ = oracle.softmax_cross_entropy(
                rounded.tolist(),
                labels=labels.tolist(),
                positive_mask=None if positive_mask is None else positive_mask.tolist(),
                sample_weight=None if weights is None else weights.tolist(),
                reduction=reduction,
            )
        np.testing.assert_allclose(oracle.to_float64(oracle_loss), loss, rtol=1e-14)
        out = refloss.softmax_cross_entropy(sb, reduction=reduction, **kwargs)
        assert_like(out, backend, float_dtype, (), sb)
        np.testing.assert_allclose(to_numpy(out), loss, rtol=rtol)
        value, (ds,) = refloss.value_and_grad(refloss.softmax_cross_entropy)(
            sb, reduction=reduction, **kwargs
        )
        assert_like(value, backend, float_dtype, (), sb)
        assert_like(ds, backend, float_dtype, sb.shape, sb)
        np.testing.assert_allclose(to_numpy(value), loss, rtol=rtol)
        ds = to_numpy(ds)
        assert not np.any(np.isnan(ds))
        np.testing.assert_allclose(ds, _f64(grad), rtol=grad_rtol, atol=atol)
        assert np.all(ds[np.isneginf(logits)] == 0)  # masked entries get no gradient
    rows = refloss.softmax_cross_entropy(sb, reduction="none", **kwargs)
    assert_like(rows, backend, float_dtype, (logits.shape[0],), sb)
    np.testing.assert_allclose(to_numpy(rows), per_row, rtol=rtol, atol=atol)
    no_target = ~np.any(y > 0, axis=1)
    assert np.all(to_numpy(rows)[no_target] == 0)


@functools.cache
def _torch_label_gradient(name):
    """d sum_i w_i l_i / dS from PyTorch autograd through refloss (float64)."""
    torch = pytest.importorskip("torch")
    logits, labels, positive_mask, weights = LABEL_CASES[name]
    st = torch.tensor(logits, requires_grad=True)
    kwargs = {"labels": torch.asarray(labels)}
    if positive_mask is not None:
        kwargs["positive_mask"] = torch.asarray(positive_mask)
    if weights is not None:
        kwargs["sample_weight"] = torch.asarray(weights)
    loss = refloss.softmax_cross_entropy(st, **kwargs)
    loss.backward()
    return float(loss.detach()), st.grad.numpy()


@pytest.mark.parametrize("name", list(LABEL_CASES))
def test_softmax_cross_entropy_gradient_matches_torch_autograd_and_differences(name):
    logits, labels, positive_mask, weights = LABEL_CASES[name]
    kwargs = {"labels": labels, "positive_mask": positive_mask, "sample_weight": weights}
    value, (ds,) = refloss.value_and_grad(refloss.softmax_cross_entropy)(logits, **kwargs)
    torch_loss, torch_grad = _torch_label_gradient(name)
    assert not np.any(np.isnan(torch_grad))
    np.testing.assert_allclose(float(value), torch_loss, rtol=1e-13)
    np.testing.assert_allclose(ds, torch_grad, rtol=1e-12, atol=1e-15)
    # central differences on the live entries (a masked entry stays -inf: gradient 0)
    h = 1e-6
    fd = np.zeros_like(logits)
    for i, j in zip(*np.nonzero(np.isfinite(logits)), strict=True):
        plus, minus = logits.copy(), logits.copy()
        plus[i, j] += h
        minus[i, j] -= h
        fd[i, j] = (
            float(refloss.softmax_cross_entropy(plus, **kwargs))
            - float(refloss.softmax_cross_entropy(minus, **kwargs))
        ) / (2 * h)
    np.testing.assert_allclose(ds, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
def test_a_positive_on_a_masked_logit_gives_infinity(backend, dtype):
    # row 0's positive (integer label, bool or float weight) sits on a -inf logit; the other
    # rows stay finite, and masked entries with a zero label never give NaN
    logits = LOGITS_WIDE
    kinds = {
        "integer": np.array([1, 0, 2, 4]),
        "bool": BOOL_LABELS | np.array([[False, True, False, False, False]] + [[False] * 5] * 3),
        "float": FLOAT_LABELS + np.array([[0.0, 0.125, 0.0, 0.0, 0.0]] + [[0.0] * 5] * 3),
    }
    sb = backend.asarray(logits, dtype)
    for kind, labels in kinds.items():
        y = _label_matrix(logits, labels, None)
        _, expected, _ = _hand_cross_entropy(logits.astype(dtype).astype(float), y, None, "sum")
        assert expected[0] == np.inf
        rows = to_numpy(
            refloss.softmax_cross_entropy(
                sb, labels=backend.asarray(labels, dtype), reduction="none"
            )
        )
        assert rows[0] == np.inf, kind
        rtol = 1e-12 if dtype == "float64" else 2e-6
        np.testing.assert_allclose(rows[1:], expected[1:], rtol=rtol, atol=1e-6, err_msg=kind)
        total = refloss.softmax_cross_entropy(sb, labels=backend.asarray(labels, dtype))
        assert float(to_numpy(total)) == np.inf


@pytest.mark.parametrize("backend_name", ["numpy", "torch", "array_api_strict"])
def test_softmax_cross_entropy_label_errors(backend):
    s = backend.asarray(LOGITS_TALL)  # B = 5, N = 3
    wide = backend.asarray(LOGITS_WIDE)  # B = 4, N = 5
    bad = [
        (
            s,
            {"labels": np.array([0, 1, 3, 0, 2])},
            ValueError,
            r"labels must be column indices in \[0, 3\), got values in \[0, 3\]",
        ),
        (
            s,
            {"labels": np.array([0, -1, 2, 0, 2])},
            ValueError,
            r"labels must be column indices in \[0, 3\), got values in \[-1, 2\]",
        ),
        (
            s,
            {"labels": np.array([0.0, 1.0, 2.0, 0.0, 1.0])},
            TypeError,
            r"labels must have an integer dtype",
        ),
        (
            s,
            {"labels": np.array([0, 1, 2])},
            ValueError,
            r"labels must have shape \(5,\) \(one target column per row\), got shape \(3,\)",
        ),
        (wide, {"labels": -FLOAT_LABELS}, ValueError, r"labels must be label weights >= 0"),
        (
            wide,
            {"labels": np.where(FLOAT_LABELS > 1, np.nan, FLOAT_LABELS)},
            ValueError,
            r"labels must be label weights >= 0 with no NaN",
        ),
        (
            wide,
            {"labels": FLOAT_LABELS[:, :4]},
            ValueError,
            r"labels must have shape \(4, 5\) \(one label weight per logit\), got shape \(4, 4\)",
        ),
        (wide, {"labels": BOOL_LABELS.T}, ValueError, r"labels must have shape \(4, 5\)"),
        (
            s,
            {"labels": np.array([0, 1, 2, 0, 1]), "positive_mask": np.array([True, False])},
            ValueError,
            r"positive_mask must have shape \(5,\)",
        ),
        (
            s,
            {"labels": np.array([0, 1, 2, 0, 1]), "positive_mask": np.ones(5)},
            TypeError,
            r"positive_mask must have dtype bool",
        ),
        # without labels, row i's target is column i: N >= B is required
        (s, {}, ValueError, r"N = 3 candidate columns but B = 5 rows"),
    ]
    for logits, kwargs, error, message in bad:
        kwargs = {k: backend.asarray(v) for k, v in kwargs.items()}
        with pytest.raises(error, match=message):
            refloss.softmax_cross_entropy(logits, **kwargs)
        with pytest.raises(error, match=message):
            refloss.value_and_grad(refloss.softmax_cross_entropy)(logits, **kwargs)


# ---------------------------------------------------------------------------------------------
# value_and_grad(logsumexp)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("backend_name", "dtype"), EAGER_PAIRS)
def test_value_and_grad_of_logsumexp_is_the_softmax(backend, dtype):
    x = np.array([0.5, -1.25, NEG, 3.0, 2.75, NEG])
    rounded = x.astype(dtype).astype(np.float64)
    with mpmath.workdps(oracle.DPS):
        lse = oracle.logsumexp(rounded.tolist())
        softmax = [mpmath.mpf(0) if v == NEG else mpmath.exp(v - lse) for v in rounded.tolist()]
        expected_value, expected_grad = oracle.to_float64(lse), _f64(softmax)
    rtol = 1e-14 if dtype == "float64" else 1e-6
    xb = backend.asarray(x, dtype)
    for call in (
        lambda: refloss.value_and_grad(refloss.logsumexp)(xb),
        lambda: refloss.value_and_grad(refloss.logsumexp, wrt="x")(xb, axis=0),
    ):
        value, (grad,) = call()
        assert_like(value, backend, backend.dtype(dtype), (), xb)
        assert_like(grad, backend, backend.dtype(dtype), xb.shape, xb)
        np.testing.assert_allclose(to_numpy(value), expected_value, rtol=rtol)
        np.testing.assert_allclose(to_numpy(grad), expected_grad, rtol=rtol, atol=1e-300)
        assert np.all(to_numpy(grad)[np.isneginf(x)] == 0)
    # an all -inf slice: -inf with a zero gradient, not NaN
    dead = backend.asarray(np.full(4, NEG), dtype)
    value, (grad,) = refloss.value_and_grad(refloss.logsumexp)(dead)
    assert float(to_numpy(value)) == -np.inf
    np.testing.assert_array_equal(to_numpy(grad), np.zeros(4))
    # a 2-D x reduces to a vector, which is not a scalar loss
    with pytest.raises(ValueError, match=r"needs a scalar loss.*shape \(2,\)"):
        refloss.value_and_grad(refloss.logsumexp)(backend.asarray(np.ones((2, 3)), dtype))
    with pytest.raises(ValueError, match=r"needs a scalar loss.*shape \(3,\)"):
        refloss.value_and_grad(refloss.logsumexp)(backend.asarray(np.ones((2, 3)), dtype), axis=0)


# ---------------------------------------------------------------------------------------------
# half precision is refused
# ---------------------------------------------------------------------------------------------

HALF = [
    pytest.param("numpy", "float16", id="numpy-float16"),
    pytest.param("torch", "float16", id="torch-float16"),
    pytest.param("torch", "bfloat16", id="torch-bfloat16"),
    pytest.param("jax", "bfloat16", id="jax-bfloat16"),
    pytest.param("jax", "float16", id="jax-float16"),
]


@pytest.mark.parametrize(("backend_name", "half"), HALF)
def test_half_precision_inputs_are_refused(backend, half):
    xp = backend.xp
    half_dtype = getattr(xp, half) if hasattr(xp, half) else getattr(backend.module, half)

    def make(shape, dtype=half_dtype):
        return xp.ones(shape, dtype=dtype)

    q32 = make((2, 3), xp.float32)
    calls = {
        "query_embeddings": lambda: refloss.retrieval_loss(make((2, 3)), make((3, 3))),
        "candidate_embeddings": lambda: refloss.retrieval_loss(q32, make((3, 3))),
        "logits": lambda: refloss.softmax_cross_entropy(make((2, 3))),
        "x": lambda: refloss.logsumexp(make((4,))),
        "labels": lambda: refloss.softmax_cross_entropy(
            make((2, 3), xp.float32), labels=make((2, 3))
        ),
    }
    for name, call in calls.items():
        message = rf"^{name} must have dtype float32 or float64, got \S*{half}"
        with pytest.raises(TypeError, match=message):
            call()
    for function, args in (
        (refloss.retrieval_loss, (make((2, 3)), make((3, 3)))),
        (refloss.softmax_cross_entropy, (make((2, 3)),)),
        (refloss.logsumexp, (make((4,)),)),
    ):
        with pytest.raises(TypeError, match="must have dtype float32 or float64"):
            refloss.value_and_grad(function)(*args)
