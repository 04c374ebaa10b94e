"""The contrastive family beyond the fixtures: errors, closed forms, jax.grad through refloss.

Values and gradients against the mpmath oracle on every backend are in
``test_backends.py`` and ``test_gradients.py`` (with PyTorch autograd and finite
differences); parity with open_clip, pytorch-metric-learning and sentence-transformers is
in ``test_contrastive_peers.py``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import refloss

RNG = np.random.default_rng(7401)
IMAGE = RNG.standard_normal((4, 3))
TEXT = RNG.standard_normal((4, 3))
LABELS = np.array([0, 0, 1, 1])


def _clip(**changes):
    kw = {"image": IMAGE, "text": TEXT, "scale": 2.0, **changes}
    options = {k: v for k, v in kw.items() if k not in ("image", "text", "scale")}
    return refloss.clip_loss(kw["image"], kw["text"], kw["scale"], **options)


def _siglip(**changes):
    kw = {"image": IMAGE, "text": TEXT, "scale": 2.0, "bias": -1.0, **changes}
    return refloss.siglip_loss(kw["image"], kw["text"], kw["scale"], kw["bias"])


ERRORS = [
    pytest.param(lambda: _clip(text=TEXT[:3]), ValueError, "4 images and 3 texts", id="clip pairs"),
    pytest.param(lambda: _clip(text=TEXT[:, :2]), ValueError, "same width D", id="clip widths"),
    pytest.param(
        lambda: _clip(image=IMAGE[:1], text=TEXT[:1]), ValueError, "B >= 2", id="clip B=1"
    ),
    pytest.param(
        lambda: _clip(scale=-1.0),
        ValueError,
        "logit_scale must be finite and >= 0",
        id="negative scale",
    ),
    pytest.param(
        lambda: _clip(scale=math.inf), ValueError, "logit_scale must be finite", id="infinite scale"
    ),
    pytest.param(
        lambda: _clip(scale=np.asarray(np.nan)), ValueError, "logit_scale", id="NaN scale array"
    ),
    pytest.param(
        lambda: _clip(scale=np.asarray([2.0])),
        ValueError,
        "logit_scale must be a 0-D array",
        id="1-D scale",
    ),
    pytest.param(
        lambda: _clip(scale=np.asarray(2.0, np.float32)),
        TypeError,
        "logit_scale must have the embeddings' dtype",
        id="scale dtype",
    ),
    pytest.param(lambda: _clip(scale="2"), TypeError, "logit_scale must be", id="scale string"),
    pytest.param(
        lambda: _clip(label_smoothing=1.0),
        ValueError,
        r"label_smoothing must be a real number in \[0, 1\)",
        id="smoothing 1",
    ),
    pytest.param(
        lambda: _clip(label_smoothing=-0.1), ValueError, "label_smoothing", id="smoothing negative"
    ),
    pytest.param(lambda: _clip(reduction="avg"), ValueError, "reduction", id="clip reduction"),
    pytest.param(
        lambda: _siglip(bias=math.nan), ValueError, "logit_bias must be finite", id="NaN bias"
    ),
    pytest.param(
        lambda: _siglip(scale=-0.5), ValueError, "logit_scale", id="siglip negative scale"
    ),
    pytest.param(
        lambda: _siglip(image=IMAGE.astype(np.float32)), TypeError, "same dtype", id="siglip dtypes"
    ),
    pytest.param(
        lambda: refloss.nt_xent_loss(IMAGE, TEXT[:3], temperature=0.5),
        ValueError,
        "same B >= 1 samples",
        id="views",
    ),
    pytest.param(
        lambda: refloss.nt_xent_loss(IMAGE, TEXT, temperature=0.0),
        ValueError,
        "temperature must be finite and > 0",
        id="temperature 0",
    ),
    pytest.param(
        lambda: refloss.supcon_loss(IMAGE, labels=LABELS.astype(float), temperature=0.1),
        TypeError,
        "labels must have an integer dtype",
        id="float labels",
    ),
    pytest.param(
        lambda: refloss.supcon_loss(IMAGE, labels=LABELS[:3], temperature=0.1),
        ValueError,
        r"labels must have shape \(4,\)",
        id="labels shape",
    ),
    pytest.param(
        lambda: refloss.supcon_loss(IMAGE[:1], labels=LABELS[:1], temperature=0.1),
        ValueError,
        "N >= 2",
        id="one sample",
    ),
    pytest.param(
        lambda: refloss.supcon_loss(IMAGE, labels=LABELS, temperature=0.1, base_temperature=0.0),
        ValueError,
        "base_temperature",
        id="base temperature 0",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_closed_forms_at_scale_zero():
    # t = 0: every similarity is 0; CLIP is log B per direction, SigLIP B log(1 + e^b) - b
    # per row (the diagonal's label is 1: softplus(-b) = softplus(b) - b)
    num, b = 4, -1.5
    np.testing.assert_allclose(float(_clip(scale=0.0)), math.log(num), rtol=1e-15)
    per_row = num * math.log1p(math.exp(b)) - b
    np.testing.assert_allclose(float(_siglip(scale=0.0, bias=b)), per_row, rtol=1e-14)


def test_supcon_anchor_without_positive_is_left_out_of_the_mean():
    labels = np.array([0, 0, 1, 2])  # anchors 2 and 3 have no positive
    rows = refloss.supcon_loss(IMAGE, labels=labels, temperature=0.5, reduction="none")
    assert rows[2] == 0.0
    assert rows[3] == 0.0
    mean = refloss.supcon_loss(IMAGE, labels=labels, temperature=0.5)
    np.testing.assert_allclose(float(mean), (rows[0] + rows[1]) / 2, rtol=1e-15)
    none = refloss.supcon_loss(IMAGE, labels=np.arange(4), temperature=0.5)
    assert float(none) == 0.0


def test_supcon_base_temperature_scales_the_loss():
    plain = refloss.supcon_loss(IMAGE, labels=LABELS, temperature=0.2)
    scaled = refloss.supcon_loss(IMAGE, labels=LABELS, temperature=0.2, base_temperature=0.07)
    np.testing.assert_allclose(float(scaled), float(plain) * 0.2 / 0.07, rtol=1e-14)


def test_nt_xent_with_one_sample_is_zero():
    # the only other view is the positive: a softmax over one entry
    loss = refloss.nt_xent_loss(IMAGE[:1], TEXT[:1], temperature=0.3, reduction="none")
    np.testing.assert_array_equal(loss, np.zeros(2))


CASES = {
    "clip_loss": (
        refloss.clip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale"),
        (IMAGE, TEXT, np.asarray(3.0)),
        {"label_smoothing": 0.1},
    ),
    "siglip_loss": (
        refloss.siglip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale", "logit_bias"),
        (IMAGE, TEXT, np.asarray(3.0), np.asarray(-2.0)),
        {},
    ),
}


@pytest.mark.parametrize("backend_name", ["jax"])
@pytest.mark.parametrize("name", list(CASES))
def test_jax_grad_through_two_tower_losses(backend, name):
    jax = backend.module  # x64 on, restored afterwards
    fn, wrt, args, options = CASES[name]
    value, grads = refloss.value_and_grad(functools.partial(fn, **options), wrt=wrt)(*args)
    j_value, j_grads = jax.jit(
        jax.value_and_grad(lambda *a: fn(*a, **options), argnums=tuple(range(len(args))))
    )(*(jax.numpy.asarray(a) for a in args))
    np.testing.assert_allclose(np.asarray(j_value), value, rtol=1e-13)
    for got, expected in zip(j_grads, grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("backend_name", ["jax"])
@pytest.mark.parametrize("name", ["nt_xent_loss", "supcon_loss"])
def test_jax_grad_through_self_similarity_losses(backend, name):
    jax = backend.module  # x64 on, restored afterwards
    jnp = jax.numpy
    tau = np.asarray(0.4)
    if name == "nt_xent_loss":
        wrt = ("view_a", "view_b", "temperature")
        value, grads = refloss.value_and_grad(refloss.nt_xent_loss, wrt=wrt)(
            IMAGE, TEXT, temperature=tau
        )

        def loss(a, b, t):
            return refloss.nt_xent_loss(a, b, temperature=t)

        args = (IMAGE, TEXT, tau)
    else:
        labels = jnp.asarray(LABELS)
        wrt = ("embeddings", "temperature")
        value, grads = refloss.value_and_grad(
            functools.partial(refloss.supcon_loss, base_temperature=0.07), wrt=wrt
        )(IMAGE, labels=LABELS, temperature=tau)

        def loss(e, t):
            return refloss.supcon_loss(e, labels=labels, temperature=t, base_temperature=0.07)

        args = (IMAGE, tau)
    j_value, j_grads = jax.value_and_grad(loss, argnums=tuple(range(len(args))))(
        *(jnp.asarray(a) for a in args)
    )
    np.testing.assert_allclose(np.asarray(j_value), value, rtol=1e-13)
    for got, expected in zip(j_grads, grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-11, atol=1e-14)


def test_value_and_grad_treats_a_python_scale_as_a_constant():
    loss, grads = refloss.value_and_grad(refloss.clip_loss)(IMAGE, TEXT, 2.0)
    assert len(grads) == 2  # the embeddings; the Python number is a constant
    loss_array, grads_array = refloss.value_and_grad(refloss.clip_loss)(
        IMAGE, TEXT, np.asarray(2.0)
    )
    assert len(grads_array) == 3
    np.testing.assert_allclose(loss, loss_array, rtol=0)
    for got, expected in zip(grads, grads_array[:2], strict=True):
        np.testing.assert_array_equal(got, expected)
