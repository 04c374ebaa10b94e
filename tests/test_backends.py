"""Every public function on every backend: namespace, dtype, shape, device, values, purity, jit."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import oracle
import pytest
from _helpers import (
    all_pairs,
    assert_like,
    namespace_of,
    pair_params,
    to_numpy,
)

import refloss

B, N, D = 4, 7, 3


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, D))
    c = rng.standard_normal((N, D))
    logits = rng.standard_normal((B, N)) * 2
    p = rng.uniform(1e-4, 0.4, size=N)
    p[0] = 0.0
    p[-1] = 1.0
    ids = np.array([4, 1, 4, 2, 1, 9, 2], dtype=np.int64)
    mask = rng.random((B, N)) < 0.7
    mask[np.arange(B), np.arange(B)] = True
    mask[2, 2] = False
    w = rng.uniform(-0.5, 2.0, size=B)
    sampled_inputs = {
        "W": rng.standard_normal((9, D)),  # 9 classes
        "bias": rng.standard_normal(9),
        "labels": np.array([[6], [1], [6], [3]], dtype=np.int64),  # class 6 is also sampled
        "labels2": np.array([[6, 1], [0, 0], [2, 8], [3, 6]], dtype=np.int64),
        "sampled": np.array([2, 6, 0, 6, 8], dtype=np.int64),  # class 6 drawn twice
        "tec": rng.uniform(0.05, 2.0, (B, 1)),
        "tec2": rng.uniform(0.05, 2.0, (B, 2)),
        "sec": rng.uniform(0.05, 2.0, 5),
        "cls_labels": np.array([2, 8, 2, 0], dtype=np.int64),
    }
    contrastive_inputs = {
        "text": rng.standard_normal((B, D)),
        "scale": np.asarray(2.5),
        "logit_bias": np.asarray(-1.5),
        "tau": np.asarray(0.7),
        "classes": np.array([1, 1, 0, 3], dtype=np.int64),  # anchor 2 and 3 without a positive
    }
    return {
        "q": q,
        "c": c,
        "logits": logits,
        "p": p,
        "ids": ids,
        "mask": mask,
        "w": w,
        **sampled_inputs,
        **contrastive_inputs,
    }


# ---------------------------------------------------------------------------------------------
# references: the mpmath oracle (tests/oracle.py), independent of refloss
# ---------------------------------------------------------------------------------------------

RETRIEVAL_OPTIONS = {"num_hard_negatives": 2, "temperature": 0.5, "min_probability": 1e-3}


def _ref_retrieval(a, reduction="sum"):
    res = oracle.retrieval(
        a["q"],
        a["c"],
        sample_weight=a["w"],
        candidate_sampling_probability=a["p"],
        candidate_ids=a["ids"],
        score_mask=a["mask"],
        reduction=reduction,
        **RETRIEVAL_OPTIONS,
    )
    if reduction == "none":
        return (res.loss,)
    return (res.loss, res.dq, res.dc)


def _ref_sce(a, reduction):
    return oracle.softmax_cross_entropy(
        a["logits"], positive_mask=a["pm"], sample_weight=a["w"], reduction=reduction
    )


def _ref_sce_grad(a, reduction):
    value, grad, _ = oracle.softmax_cross_entropy_grad(
        a["logits"], positive_mask=a["pm"], sample_weight=a["w"], reduction=reduction
    )
    return value, grad


SAMPLED_ARRAYS = {
    "labels": "labels",
    "sampled_candidates": "sampled",
    "true_expected_count": "tec",
    "sampled_expected_count": "sec",
}
NCE_ARRAYS = {**SAMPLED_ARRAYS, "labels": "labels2", "true_expected_count": "tec2"}
FULL_ARRAYS = {"labels": "cls_labels", "class_bias": "bias"}
FULL_OPTIONS = {"temperature": 0.5, "chunk_size": 4}


def _ref_sampled(kind, arrays, a, **options):
    kw = {name: a[key] for name, key in arrays.items()}
    if options.get("reduction", "none") == "none":
        return (oracle.sampled_loss(kind, a["W"], a["bias"], a["q"], **kw, **options),)
    return oracle.sampled_loss_grad(kind, a["W"], a["bias"], a["q"], **kw, **options)


def _ref_full(a, **options):
    kw = {**options, "labels": a["cls_labels"], "class_bias": a["bias"], **FULL_OPTIONS}
    if options.get("reduction", "none") == "none":
        return (oracle.full_softmax_loss(a["q"], a["W"], **kw),)
    return oracle.full_softmax_loss_grad(a["q"], a["W"], **kw)[:3]


def _ref_contrastive(name, a, reduction):
    """The oracle's loss (and gradients of every positional array and 0-D parameter)."""
    if name == "clip_loss":
        args, kw = (a["q"], a["text"], a["scale"]), {}
    elif name == "siglip_loss":
        args, kw = (a["q"], a["text"], a["scale"], a["logit_bias"]), {}
    elif name == "nt_xent_loss":
        args, kw = (a["q"], a["text"]), {"temperature": a["tau"]}
    else:
        args, kw = (a["q"],), {"labels": a["classes"], "temperature": a["tau"]}
    if reduction == "none":
        return (getattr(oracle, name)(*args, **kw, reduction="none"),)
    out = getattr(oracle, f"{name}_grad")(*args, **kw, reduction=reduction)
    return out if name in ("clip_loss", "siglip_loss") else out[:-1]


# Each entry: (positional input names, keyword array inputs {kwarg: input name},
#              static options, call, reference, float inputs cast to the tested dtype)
SPECS = {
    "retrieval_loss": (
        ("q", "c"),
        {
            "sample_weight": "w",
            "candidate_sampling_probability": "p",
            "candidate_ids": "ids",
            "score_mask": "mask",
        },
        RETRIEVAL_OPTIONS,
        refloss.retrieval_loss,
        lambda a: _ref_retrieval(a)[:1],
    ),
    "retrieval_loss_none": (
        ("q", "c"),
        {
            "sample_weight": "w",
            "candidate_sampling_probability": "p",
            "candidate_ids": "ids",
            "score_mask": "mask",
        },
        {**RETRIEVAL_OPTIONS, "reduction": "none"},
        refloss.retrieval_loss,
        lambda a: _ref_retrieval(a, "none"),
    ),
    "value_and_grad": (
        ("q", "c"),
        {
            "sample_weight": "w",
            "candidate_sampling_probability": "p",
            "candidate_ids": "ids",
            "score_mask": "mask",
        },
        {**RETRIEVAL_OPTIONS, "reduction": "mean"},
        refloss.value_and_grad(refloss.retrieval_loss),
        lambda a: _ref_retrieval(a, "mean"),
    ),
    "value_and_grad_softmax_cross_entropy": (
        ("logits",),
        {"positive_mask": "pm", "sample_weight": "w"},
        {"reduction": "mean"},
        refloss.value_and_grad(refloss.softmax_cross_entropy),
        lambda a: _ref_sce_grad(a, "mean"),
    ),
    "value_and_grad_logsumexp": (
        ("x",),
        {},
        {},
        refloss.value_and_grad(refloss.logsumexp),
        lambda a: oracle.logsumexp_grad(a["x"]),
    ),
    "sampled_softmax_loss": (
        ("W", "bias", "q"),
        SAMPLED_ARRAYS,
        {"remove_accidental_hits": True},
        refloss.sampled_softmax_loss,
        lambda a: _ref_sampled("softmax", SAMPLED_ARRAYS, a, remove_accidental_hits=True),
    ),
    "value_and_grad_sampled_softmax_loss": (
        ("W", "bias", "q"),
        SAMPLED_ARRAYS,
        {"remove_accidental_hits": True, "reduction": "mean"},
        refloss.value_and_grad(refloss.sampled_softmax_loss),
        lambda a: _ref_sampled(
            "softmax", SAMPLED_ARRAYS, a, remove_accidental_hits=True, reduction="mean"
        ),
    ),
    "nce_loss": (
        ("W", "bias", "q"),
        NCE_ARRAYS,
        {"remove_accidental_hits": False},
        refloss.nce_loss,
        lambda a: _ref_sampled("sigmoid", NCE_ARRAYS, a, remove_accidental_hits=False),
    ),
    "value_and_grad_nce_loss": (
        ("W", "bias", "q"),
        NCE_ARRAYS,
        {"remove_accidental_hits": True, "reduction": "sum"},
        refloss.value_and_grad(refloss.nce_loss),
        lambda a: _ref_sampled(
            "sigmoid", NCE_ARRAYS, a, remove_accidental_hits=True, reduction="sum"
        ),
    ),
    "full_softmax_loss": (
        ("q", "W"),
        FULL_ARRAYS,
        FULL_OPTIONS,
        refloss.full_softmax_loss,
        _ref_full,
    ),
    "value_and_grad_full_softmax_loss": (
        ("q", "W"),
        FULL_ARRAYS,
        {**FULL_OPTIONS, "reduction": "mean"},
        refloss.value_and_grad(refloss.full_softmax_loss),
        lambda a: _ref_full(a, reduction="mean"),
    ),
    "clip_loss": (
        ("q", "text", "scale"),
        {},
        {"reduction": "none"},
        refloss.clip_loss,
        lambda a: _ref_contrastive("clip_loss", a, "none"),
    ),
    "value_and_grad_clip_loss": (
        ("q", "text", "scale"),
        {},
        {},
        refloss.value_and_grad(refloss.clip_loss),
        lambda a: _ref_contrastive("clip_loss", a, "mean"),
    ),
    "siglip_loss": (
        ("q", "text", "scale", "logit_bias"),
        {},
        {"reduction": "none"},
        refloss.siglip_loss,
        lambda a: _ref_contrastive("siglip_loss", a, "none"),
    ),
    "value_and_grad_siglip_loss": (
        ("q", "text", "scale", "logit_bias"),
        {},
        {"reduction": "sum"},
        refloss.value_and_grad(refloss.siglip_loss),
        lambda a: _ref_contrastive("siglip_loss", a, "sum"),
    ),
    "nt_xent_loss": (
        ("q", "text"),
        {"temperature": "tau"},
        {"reduction": "none"},
        refloss.nt_xent_loss,
        lambda a: _ref_contrastive("nt_xent_loss", a, "none"),
    ),
    "value_and_grad_nt_xent_loss": (
        ("q", "text"),
        {"temperature": "tau"},
        {},
        refloss.value_and_grad(refloss.nt_xent_loss),
        lambda a: _ref_contrastive("nt_xent_loss", a, "mean"),
    ),
    "supcon_loss": (
        ("q",),
        {"labels": "classes", "temperature": "tau"},
        {"reduction": "none"},
        refloss.supcon_loss,
        lambda a: _ref_contrastive("supcon_loss", a, "none"),
    ),
    "value_and_grad_supcon_loss": (
        ("q",),
        {"labels": "classes", "temperature": "tau"},
        {},
        refloss.value_and_grad(refloss.supcon_loss),
        lambda a: _ref_contrastive("supcon_loss", a, "mean"),
    ),
    "logq_correction": (
        ("logits", "p"),
        {},
        {"min_probability": 1e-3},
        refloss.logq_correction,
        lambda a: (oracle.logq_correction(a["logits"], a["p"], 1e-3),),
    ),
    "remove_accidental_hits": (
        ("logits", "ids"),
        {},
        {},
        refloss.remove_accidental_hits,
        lambda a: (oracle.remove_accidental_hits(a["logits"], a["ids"]),),
    ),
    "apply_score_mask": (
        ("logits", "mask"),
        {},
        {},
        refloss.apply_score_mask,
        lambda a: (oracle.apply_score_mask(a["logits"], a["mask"]),),
    ),
    "mine_hard_negatives": (
        ("logits",),
        {},
        {"num_hard_negatives": 2},
        refloss.mine_hard_negatives,
        lambda a: (oracle.mine_hard_negatives(a["logits"], 2),),
    ),
    "softmax_cross_entropy": (
        ("logits",),
        {"positive_mask": "pm", "sample_weight": "w"},
        {"reduction": "mean"},
        refloss.softmax_cross_entropy,
        lambda a: (_ref_sce(a, "mean"),),
    ),
    "softmax_cross_entropy_none": (
        ("logits",),
        {"positive_mask": "pm", "sample_weight": "w"},
        {"reduction": "none"},
        refloss.softmax_cross_entropy,
        lambda a: (_ref_sce(a, "none"),),
    ),
    "logsumexp": (
        ("logits",),
        {},
        {},
        refloss.logsumexp,
        lambda a: (oracle.logsumexp(a["logits"]),),
    ),
    "logsumexp_axis0": (
        ("logits",),
        {},
        {"axis": 0},
        refloss.logsumexp,
        lambda a: (oracle.logsumexp(a["logits"], axis=0),),
    ),
}


def _numpy_inputs(dtype):
    a = _inputs()
    a["logits"][1, 3] = -np.inf  # an already-masked entry flows through every step
    a["pm"] = np.array([True, True, False, True])
    a["x"] = a["logits"][1].copy()  # 1-D, with a masked entry: logsumexp to a scalar
    # round float inputs to the tested dtype: the references see what the backend sees
    return {
        k: (v.astype(dtype).astype(np.float64) if v.dtype.kind == "f" else v) for k, v in a.items()
    }


def _convert(backend, a, dtype, names):
    return {k: backend.asarray(a[k], dtype) for k in names}


def _flatten(out):
    if isinstance(out, tuple):
        flat = []
        for o in out:
            flat.extend(_flatten(o))
        return flat
    return [out]


def _call(spec_name, backend, dtype, *, xp=None, jit=False):
    pos, kwarrays, options, fn, ref = SPECS[spec_name]
    a = _numpy_inputs(dtype)
    names = list(pos) + list(kwarrays.values())
    conv = _convert(backend, a, dtype, names)
    args = [conv[n] for n in pos]
    kwargs = {k: conv[v] for k, v in kwarrays.items()}
    extra = {} if xp is None else {"xp": xp}
    if jit:
        import jax

        bound = functools.partial(fn, **options, **extra)
        kwnames = list(kwarrays)

        def traced(*arrays):
            return bound(*arrays[: len(pos)], **dict(zip(kwnames, arrays[len(pos) :], strict=True)))

        out = jax.jit(traced)(*args, *kwargs.values())
    else:
        out = fn(*args, **kwargs, **options, **extra)
    return out, args, ref(a), conv


def _tol(dtype):
    return {"float64": (1e-12, 1e-13), "float32": (2e-5, 2e-5)}[dtype]


def _check_values(outs, expected, dtype):
    rtol, atol = _tol(dtype)
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected, strict=True):
        got = to_numpy(o).astype(np.float64)
        e = np.asarray(e, dtype=np.float64)
        assert got.shape == e.shape
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(e))
        fin = np.isfinite(e)
        assert np.all(np.isfinite(got[fin]))
        np.testing.assert_allclose(got[fin], e[fin], rtol=rtol, atol=atol)


ALL = pair_params(all_pairs())


@pytest.mark.parametrize(("backend_name", "dtype"), ALL)
@pytest.mark.parametrize("spec", list(SPECS))
def test_namespace_dtype_shape_device(backend, dtype, spec):
    out, args, expected, _ = _call(spec, backend, dtype)
    outs = _flatten(out)
    like = args[0]
    for o, e in zip(outs, expected, strict=True):
        assert_like(o, backend, like.dtype, np.shape(e), like)
    if spec.startswith("value_and_grad"):
        # grads: one per positional array, each shaped like it
        for g, x in zip(outs[1:], args, strict=True):
            assert_like(g, backend, x.dtype, tuple(x.shape), x)


@pytest.mark.parametrize(("backend_name", "dtype"), ALL)
@pytest.mark.parametrize("spec", list(SPECS))
def test_values_match_numpy_float64(backend, dtype, spec):
    out, _, expected, _ = _call(spec, backend, dtype)
    _check_values(_flatten(out), expected, dtype)


@pytest.mark.parametrize("spec", list(SPECS))
def test_inputs_not_mutated(backend, spec):
    # numpy_readonly: a write into an input raises; other backends: compare with copies
    dtype = "float64" if backend.has_float64 else "float32"
    _, kwarrays, options, fn, _ = SPECS[spec]
    pos = SPECS[spec][0]
    a = _numpy_inputs(dtype)
    conv = _convert(backend, a, dtype, list(pos) + list(kwarrays.values()))
    before = {k: to_numpy(v) for k, v in conv.items()}
    fn(*[conv[n] for n in pos], **{k: conv[v] for k, v in kwarrays.items()}, **options)
    for k, v in conv.items():
        np.testing.assert_array_equal(to_numpy(v), before[k], err_msg=k)
        np.testing.assert_array_equal(to_numpy(v), np.asarray(a[k]).astype(before[k].dtype))


@pytest.mark.parametrize("spec", list(SPECS))
def test_explicit_xp(backend, spec):
    dtype = "float64" if backend.has_float64 else "float32"
    out, _args, expected, _ = _call(spec, backend, dtype, xp=backend.xp)
    outs = _flatten(out)
    for o in outs:
        assert namespace_of(o) is backend.xp
    _check_values(outs, expected, dtype)


@pytest.mark.parametrize(
    ("backend_name", "dtype"), pair_params([p for p in all_pairs() if p[0] in ("jax", "jax32")])
)
@pytest.mark.parametrize("spec", list(SPECS))
def test_traceable_under_jax_jit(backend, dtype, spec):
    out, args, expected, _ = _call(spec, backend, dtype, jit=True)
    outs = _flatten(out)
    for o, e in zip(outs, expected, strict=True):
        assert_like(o, backend, args[0].dtype, np.shape(e), args[0])
    _check_values(outs, expected, dtype)


@pytest.mark.parametrize("spec", list(SPECS))
def test_non_default_device(spec):
    xs = pytest.importorskip("array_api_strict")
    from _helpers import backend_context

    with backend_context("array_api_strict") as backend:
        backend.device = xs.Device("device1")
        out, _args, expected, conv = _call(spec, backend, "float64")
        for x in conv.values():
            assert x.device == backend.device
        outs = _flatten(out)
        for o in outs:
            assert o.device == backend.device
        _check_values(outs, expected, "float64")


@pytest.mark.parametrize("what", ["candidate_sampling_probability", "sample_weight"])
def test_float64_side_inputs_follow_query_dtype(backend, what):
    # p (and the weights) are cast to the scores' dtype: float32 embeddings stay float32
    side_dtype = "float32" if not backend.has_float64 else "float64"
    a = _numpy_inputs("float32")
    q = backend.asarray(a["q"], "float32")
    c = backend.asarray(a["c"], "float32")
    side = {"candidate_sampling_probability": a["p"], "sample_weight": a["w"]}[what]
    out = refloss.retrieval_loss(q, c, **{what: backend.asarray(side, side_dtype)})
    assert_like(out, backend, q.dtype, (), q)
    kw = {what: side}
    ref = oracle.retrieval_loss(a["q"], a["c"], **kw)
    np.testing.assert_allclose(float(to_numpy(out)), ref, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("ids_dtype", ["int32", "int64", "uint8"])
def test_integer_id_dtypes(backend, ids_dtype):
    dtype = "float64" if backend.has_float64 else "float32"
    a = _numpy_inputs(dtype)
    ids = a["ids"].astype(ids_dtype)
    q = backend.asarray(a["q"], dtype)
    c = backend.asarray(a["c"], dtype)
    out = refloss.retrieval_loss(q, c, candidate_ids=backend.asarray(ids))
    ref = oracle.retrieval_loss(a["q"], a["c"], candidate_ids=a["ids"])
    np.testing.assert_allclose(float(to_numpy(out)), ref, rtol=_tol(dtype)[0])


def test_import_refloss_imports_no_backend():
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys, refloss; "
        "print(sorted({'torch', 'jax', 'cupy', 'array_api_strict'} & set(sys.modules)))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert res.stdout.strip() == "[]", res.stdout
