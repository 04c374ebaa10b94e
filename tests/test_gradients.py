"""value_and_grad against the mpmath oracle, PyTorch autograd through refloss, finite differences.

Three references, none of them refloss's own gradient code:

* the analytic gradients of the mpmath oracle (``conformance/generator/oracle.py``, through
  ``tests/oracle.py``): ``retrieval_loss`` on every backend and dtype, and every family in
  NumPy float64;
* PyTorch autograd *through refloss*: each family of ``refloss._registry.FAMILIES`` that has
  a VJP rule runs on float64 tensors that require grad, ``.backward()`` differentiates the
  forward computation, and ``value_and_grad``'s hand-written VJP must agree to 1e-10
  relative. One test, parametrized over the families and a few calls of each;
* central finite differences of the loss (NumPy float64), over the same calls.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import oracle
import pytest
from _helpers import (
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
from refloss._registry import FAMILIES, Family, family_named

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


def _grad_tols(dtype, q, c, kw):
    scale = scale_of(q, c, kw)
    if dtype == "float64":
        return 1e-12, 1e-13 * scale
    return 2e-4, 5e-6 * scale


# ---------------------------------------------------------------------------------------------
# the mpmath oracle's analytic gradients, on every backend and dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_value_and_grad_matches_oracle(backend, dtype, name):
    # G = r w (P - Y); dQ = G C / tau; dC = G^T Q / tau, evaluated by the oracle at 50 digits
    q, c, kw = _case(name)
    q, c, kw = as_dtype(q, c, kw, dtype)
    ref = oracle.retrieval(q, c, **kw)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    loss, grads = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    assert isinstance(grads, tuple)
    assert len(grads) == 2
    dq, dc = grads
    rtol, atol = _grad_tols(dtype, q, c, kw)
    np.testing.assert_allclose(
        float(to_numpy(loss)), ref.loss, rtol=rtol, atol=atol * max(1, q.shape[0])
    )
    np.testing.assert_allclose(to_numpy(dq), ref.dq, rtol=rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), ref.dc, rtol=rtol, atol=atol)
    # the loss returned with the gradients is the loss itself
    direct = to_numpy(refloss.retrieval_loss(qb, cb, **kwb))
    np.testing.assert_allclose(to_numpy(loss), direct, rtol=rtol, atol=atol * q.shape[0])


WRT_ALL = ("query_embeddings", "candidate_embeddings", "temperature", "sample_weight")


@pytest.mark.parametrize("name", ["everything_sum", "everything_mean", "weights_scalar"])
def test_value_and_grad_wrt_temperature_and_weights_matches_oracle(backend, dtype, name):
    # a 0-D temperature array and the sample weights differentiated with the embeddings;
    # the oracle's dL/dtau = -(1/tau) sum Q * dQ and dL/dw_i = r l_i, at 50 digits
    q, c, kw = _case(name)
    kw = {"temperature": 0.8, **kw}
    kw["temperature"] = float(np.asarray(kw["temperature"], dtype))  # what the backend holds
    q, c, kw = as_dtype(q, c, kw, dtype)
    ref = oracle.retrieval(q, c, **kw)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    kwb["temperature"] = backend.asarray(np.asarray(kw["temperature"]), dtype)
    loss, grads = refloss.value_and_grad(refloss.retrieval_loss, wrt=WRT_ALL)(qb, cb, **kwb)
    rtol, atol = _grad_tols(dtype, q, c, kw)
    np.testing.assert_allclose(float(to_numpy(loss)), ref.loss, rtol=rtol, atol=atol * len(q))
    expected = (ref.dq, ref.dc, ref.dtemperature, ref.dsample_weight)
    like = (qb, cb, kwb["temperature"], kwb["sample_weight"])
    # absolute error relative to the gradient's largest entry (measured: up to 3.3e-16 in
    # float64, 3.4e-7 in float32, over every backend)
    tol = {"float64": 1e-13, "float32": 2e-6}[dtype]
    for what, g, e, x in zip(WRT_ALL, grads, expected, like, strict=True):
        assert_like(g, backend, x.dtype, tuple(x.shape), x)
        scaled = tol * max(1.0, float(np.max(np.abs(e))))
        np.testing.assert_allclose(to_numpy(g), e, rtol=rtol, atol=scaled, err_msg=what)


# ---------------------------------------------------------------------------------------------
# calls of every family with a VJP rule: PyTorch autograd through refloss, finite differences
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of a family, NumPy float64: positional arrays, keyword arrays, Python options.

    The options are bound with ``functools.partial`` (value_and_grad accepts partials); the
    arrays are passed at call time. ``wrt`` differentiates every positional array and every
    floating keyword array the family declares differentiable.
    """

    args: tuple[np.ndarray, ...]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def wrt(self, family: Family) -> tuple[str, ...]:
        keywords = tuple(
            name
            for name in family.differentiable
            if name in self.arrays and np.asarray(self.arrays[name]).dtype.kind == "f"
        )
        return family.positional + keywords

    def inputs(self, family: Family) -> dict[str, np.ndarray]:
        return {**dict(zip(family.positional, self.args, strict=True)), **self.arrays}


def _retrieval_call(name: str) -> Call:
    q, c, kw = _case(name)
    arrays, options = {}, {}
    for key, value in kw.items():
        if isinstance(value, np.ndarray):
            arrays[key] = value
        elif key == "temperature":
            arrays[key] = np.asarray(value)  # a 0-D array, differentiated too
        else:
            options[key] = value
    return Call((q, c), arrays, options)


def _softmax_calls() -> dict[str, Call]:
    rng = np.random.default_rng(601)
    s = rng.standard_normal((4, 6)) * 2
    s[1, 4] = s[3, 0] = -np.inf  # masked negatives
    dead = s.copy()
    dead[2, :] = -np.inf  # a row with no finite logit: loss 0, gradient 0
    w = rng.uniform(-0.5, 2.0, 4)
    labels = np.array([5, 0, 2, 4], dtype=np.int64)
    several = rng.random((4, 6)) < 0.45
    several[0, [1, 3]] = True  # several positives
    several[2, :] = False  # no positive: loss 0
    several[1, 4] = several[3, 0] = False  # no weight on a masked logit
    weights = rng.uniform(0.1, 1.5, (4, 6)) * (rng.random((4, 6)) < 0.6)
    weights[1, 4] = weights[3, 0] = 0.0
    weights[3, 5] = 0.7
    return {
        "in_batch": Call((s,), {"sample_weight": w}),
        "in_batch_positive_mask_mean": Call(
            (s,), {"positive_mask": np.array([True, False, True, True])}, {"reduction": "mean"}
        ),
        "in_batch_dead_row": Call((dead,), {"sample_weight": w}, {"reduction": "mean"}),
        "labels": Call((s,), {"labels": labels, "sample_weight": w}),
        "labels_scalar_weight_mean": Call(
            (s,), {"labels": labels, "sample_weight": np.asarray(0.75)}, {"reduction": "mean"}
        ),
        "label_weights_bool": Call((s,), {"labels": several}),
        "label_weights_real": Call(
            (s,), {"labels": weights, "sample_weight": w}, {"reduction": "mean"}
        ),
    }


def _logsumexp_calls() -> dict[str, Call]:
    rng = np.random.default_rng(602)
    x = rng.standard_normal(7) * 3
    masked = x.copy()
    masked[[1, 4]] = -np.inf
    return {
        "plain": Call((x,)),
        "masked": Call((masked,)),
        "large": Call((x * 300,)),  # a naive exp overflows
    }


def _sampled_calls(remove_accidental_hits: bool) -> dict[str, Call]:
    rng = np.random.default_rng(603)
    w, b, x = rng.standard_normal((9, 3)), rng.standard_normal(9), rng.standard_normal((4, 3))
    sampled = np.array([2, 6, 0, 6, 8])  # class 6 drawn twice
    one = np.array([[6], [1], [6], [3]])  # class 6: the label of rows 0 and 2, and sampled
    three = np.array([[6, 1, 1], [0, 4, 5], [2, 3, 7], [8, 8, 6]])
    counts = {
        "true_expected_count": rng.uniform(0.05, 2.0, (4, 1)),
        "sampled_expected_count": rng.uniform(0.05, 2.0, 5),
    }
    hits = {"remove_accidental_hits": remove_accidental_hits}
    return {
        "num_true_1_sum": Call(
            (w, b, x),
            {"labels": one, "sampled_candidates": sampled, **counts},
            {**hits, "reduction": "sum"},
        ),
        "num_true_3_mean": Call(
            (w, b, x),
            {
                "labels": three,
                "sampled_candidates": sampled,
                "true_expected_count": rng.uniform(0.05, 2.0, (4, 3)),
                "sampled_expected_count": counts["sampled_expected_count"],
            },
            {**hits, "reduction": "mean"},
        ),
        "no_log_q": Call(
            (w * 3, b, x),
            {"labels": one, "sampled_candidates": sampled},
            {**hits, "subtract_log_q": False, "reduction": "sum"},
        ),
    }


def _full_softmax_calls() -> dict[str, Call]:
    rng = np.random.default_rng(604)
    q, c = rng.standard_normal((4, 3)), rng.standard_normal((7, 3))
    labels = np.array([2, 6, 2, 0])
    bias = rng.standard_normal(7)
    return {
        "bias_temperature_chunks": Call(
            (q, c),
            {"labels": labels, "class_bias": bias, "temperature": np.asarray(0.7)},
            {"chunk_size": 3, "reduction": "sum"},
        ),
        "plain_mean": Call((q * 4, c), {"labels": labels}, {"reduction": "mean"}),
    }


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _contrastive_calls() -> dict[str, dict[str, Call]]:
    rng = np.random.default_rng(605)
    image, text = _unit_rows(rng.standard_normal((4, 3))), _unit_rows(rng.standard_normal((4, 3)))
    raw = rng.standard_normal((4, 3))
    e = rng.standard_normal((6, 3))
    labels = np.array([0, 0, 1, 2, 2, 2])  # anchor 2 has no positive
    return {
        "clip_loss": {
            "unit_mean": Call((image, text, np.asarray(7.0))),
            "raw_sum_smoothing": Call(
                (raw, text, np.asarray(1.5)), options={"reduction": "sum", "label_smoothing": 0.2}
            ),
        },
        "siglip_loss": {
            "init": Call((image, text, np.asarray(10.0), np.asarray(-10.0))),
            "raw_sum": Call(
                (raw, text, np.asarray(2.0), np.asarray(0.5)), options={"reduction": "sum"}
            ),
        },
        "nt_xent_loss": {
            "unit": Call((image, text), {"temperature": np.asarray(0.5)}),
            "raw_sum": Call((raw, text), {"temperature": np.asarray(2.0)}, {"reduction": "sum"}),
        },
        "supcon_loss": {
            "mean": Call((e,), {"labels": labels, "temperature": np.asarray(0.7)}),
            "base_sum": Call(
                (e,),
                {"labels": labels, "temperature": np.asarray(0.3)},
                {"base_temperature": 0.07, "reduction": "sum"},
            ),
        },
    }


FAMILY_CALLS: dict[str, dict[str, Call]] = {
    "retrieval_loss": {name: _retrieval_call(name) for name in GRAD_CASES},
    "softmax_cross_entropy": _softmax_calls(),
    "logsumexp": _logsumexp_calls(),
    "sampled_softmax_loss": _sampled_calls(remove_accidental_hits=True),
    "nce_loss": _sampled_calls(remove_accidental_hits=False),
    "full_softmax_loss": _full_softmax_calls(),
    **_contrastive_calls(),
}


def _retrieval_oracle(call: Call):
    q, c = call.args
    ref = oracle.retrieval(q, c, **call.arrays, **call.options)
    grads = {
        "query_embeddings": ref.dq,
        "candidate_embeddings": ref.dc,
        "temperature": ref.dtemperature,
        "sample_weight": ref.dsample_weight,
    }
    return ref.loss, grads


def _softmax_oracle(call: Call):
    (logits,) = call.args
    value, grad, dw = oracle.softmax_cross_entropy_grad(logits, **call.arrays, **call.options)
    return value, {"logits": grad, "sample_weight": dw}


def _logsumexp_oracle(call: Call):
    value, grad = oracle.logsumexp_grad(*call.args)
    return value, {"x": grad}


def _sampled_oracle(kind: str):
    def gradients(call: Call):
        value, dw, db, dx = oracle.sampled_loss_grad(
            kind, *call.args, **call.arrays, **call.options
        )
        return value, {"weights": dw, "biases": db, "inputs": dx}

    return gradients


def _full_softmax_oracle(call: Call):
    value, dq, dc, db, dtau = oracle.full_softmax_loss_grad(
        *call.args, **call.arrays, **call.options
    )
    grads = {"query_embeddings": dq, "class_embeddings": dc, "class_bias": db}
    return value, {**grads, "temperature": dtau}


def _clip_oracle(call: Call):
    value, di, dt, ds = oracle.clip_loss_grad(*call.args, **call.options)
    return value, {"image_embeddings": di, "text_embeddings": dt, "logit_scale": ds}


def _siglip_oracle(call: Call):
    value, dx, dy, ds, db = oracle.siglip_loss_grad(*call.args, **call.options)
    grads = {"image_embeddings": dx, "text_embeddings": dy, "logit_scale": ds, "logit_bias": db}
    return value, grads


def _nt_xent_oracle(call: Call):
    value, da, db, dtau = oracle.nt_xent_loss_grad(*call.args, **call.arrays, **call.options)
    return value, {"view_a": da, "view_b": db, "temperature": dtau}


def _supcon_oracle(call: Call):
    value, de, dtau = oracle.supcon_loss_grad(*call.args, **call.arrays, **call.options)
    return value, {"embeddings": de, "temperature": dtau}


# each family's value and gradients from the mpmath oracle: (value, {argument: gradient})
ORACLE_GRADIENTS = {
    "retrieval_loss": _retrieval_oracle,
    "softmax_cross_entropy": _softmax_oracle,
    "logsumexp": _logsumexp_oracle,
    "sampled_softmax_loss": _sampled_oracle("softmax"),
    "nce_loss": _sampled_oracle("sigmoid"),
    "full_softmax_loss": _full_softmax_oracle,
    "clip_loss": _clip_oracle,
    "siglip_loss": _siglip_oracle,
    "nt_xent_loss": _nt_xent_oracle,
    "supcon_loss": _supcon_oracle,
}
VJP_FAMILIES = [f.name for f in FAMILIES if f.vjp is not None]
CALLS = [
    pytest.param(family, name, id=f"{family}-{name}")
    for family in VJP_FAMILIES
    for name in FAMILY_CALLS.get(family, {})
]


def test_every_family_with_a_vjp_has_calls():
    # a family declared with a VJP rule is cross-checked here as soon as it is declared
    assert VJP_FAMILIES
    missing = [name for name in VJP_FAMILIES if not FAMILY_CALLS.get(name)]
    assert not missing, f"declare calls in FAMILY_CALLS for {missing}"
    missing = [name for name in VJP_FAMILIES if name not in ORACLE_GRADIENTS]
    assert not missing, f"declare the oracle's gradients in ORACLE_GRADIENTS for {missing}"


def _value_and_grad(family: Family, call: Call):
    """refloss.value_and_grad of a partial of the family, on the NumPy float64 inputs."""
    fn = functools.partial(family.function, **call.options)
    value, grads = refloss.value_and_grad(fn, wrt=call.wrt(family))(*call.args, **call.arrays)
    return np.asarray(value), [np.asarray(g) for g in grads]


def _torch_autograd(family: Family, call: Call):
    """The family's forward computation on torch float64 tensors, differentiated by autograd."""
    torch = pytest.importorskip("torch")
    wrt = call.wrt(family)
    tensors = {}
    for name, value in call.inputs(family).items():
        t = torch.tensor(np.asarray(value))
        if name in wrt:
            t.requires_grad_(True)
        tensors[name] = t
    args = [tensors[name] for name in family.positional]
    kwargs = {name: tensors[name] for name in call.arrays}
    loss = family.function(*args, **kwargs, **call.options)
    assert loss.dtype == torch.float64
    loss.backward()
    grads = []
    for name in wrt:
        assert tensors[name].grad is not None, name
        grads.append(tensors[name].grad.numpy())
    return loss.detach().numpy(), grads


@pytest.mark.parametrize(("family_name", "call_name"), CALLS)
def test_value_and_grad_matches_oracle_gradients(family_name, call_name):
    # NumPy float64 against the oracle's analytic gradients at 50 digits, every argument
    family = family_named(family_name)
    call = FAMILY_CALLS[family_name][call_name]
    value, grads = _value_and_grad(family, call)
    ref_value, ref_grads = ORACLE_GRADIENTS[family_name](call)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12, atol=1e-13)
    for name, g in zip(call.wrt(family), grads, strict=True):
        expected = ref_grads[name]
        assert g.shape == expected.shape, name
        atol = 1e-13 * max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=atol, err_msg=name)


@pytest.mark.parametrize(("family_name", "call_name"), CALLS)
def test_value_and_grad_matches_torch_autograd_through_refloss(family_name, call_name):
    family = family_named(family_name)
    call = FAMILY_CALLS[family_name][call_name]
    value, grads = _value_and_grad(family, call)
    t_value, t_grads = _torch_autograd(family, call)
    np.testing.assert_allclose(value, t_value, rtol=1e-13, atol=1e-300)
    for name, g, t in zip(call.wrt(family), grads, t_grads, strict=True):
        assert g.shape == t.shape, name
        assert np.all(np.isfinite(t)), name
        atol = 1e-13 * max(1.0, float(np.max(np.abs(t))))
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=atol, err_msg=name)


@pytest.mark.parametrize(("family_name", "call_name"), CALLS)
def test_value_and_grad_matches_finite_differences(family_name, call_name):
    # central differences with h = 1e-6 max(1, |x|), one input element at a time; a masked
    # (-inf) element cannot be moved by a finite step: its gradient must be 0
    family = family_named(family_name)
    call = FAMILY_CALLS[family_name][call_name]
    _, grads = _value_and_grad(family, call)
    inputs = call.inputs(family)
    fn = functools.partial(family.function, **call.options)

    def f(name, value):
        moved = {**inputs, name: value}
        args = [moved[n] for n in family.positional]
        return float(fn(*args, **{k: moved[k] for k in call.arrays}))

    for name, g in zip(call.wrt(family), grads, strict=True):
        x = np.asarray(inputs[name], dtype=np.float64)
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            if not np.isfinite(x[idx]):
                continue
            h = 1e-6 * max(1.0, abs(float(x[idx])))
            plus, minus = x.copy(), x.copy()
            plus[idx] += h
            minus[idx] -= h
            fd[idx] = (f(name, plus) - f(name, minus)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7, err_msg=name)


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
    ref = oracle.retrieval(q, c, **kw)
    rtol, atol = _grad_tols(dtype, q, c, kw)
    _, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    np.testing.assert_allclose(to_numpy(dq), ref.dq, rtol=rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), ref.dc, rtol=rtol, atol=atol)
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
