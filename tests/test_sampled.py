"""The sampled family beyond the fixtures: errors, chunking, memory and framework autodiff.

Values and gradients against the mpmath oracle on every backend are in
``test_backends.py`` and ``test_gradients.py`` (with PyTorch autograd and finite
differences); TensorFlow 2.21 parity is in ``test_tf_sampled_parity.py``.
"""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import oracle
import pytest

import refloss

RNG = np.random.default_rng(7301)
K, D, B, S = 11, 3, 4, 5
W = RNG.standard_normal((K, D))
BIAS = RNG.standard_normal(K)
X = RNG.standard_normal((B, D))
LABELS = np.array([[6], [1], [6], [3]])
SAMPLED = np.array([2, 6, 0, 6, 8])
COUNTS = {
    "true_expected_count": RNG.uniform(0.05, 2.0, (B, 1)),
    "sampled_expected_count": RNG.uniform(0.05, 2.0, S),
}
SAMPLED_KW = {"labels": LABELS, "sampled_candidates": SAMPLED, **COUNTS}
SAMPLED_LOSSES = [refloss.sampled_softmax_loss, refloss.nce_loss]


def _sampled_call(fn, **changes):
    kw = {**SAMPLED_KW, **changes}
    return fn(W, BIAS, X, **kw)


SAMPLED_ERRORS = [
    pytest.param(
        {"labels": np.array([[6], [11], [0], [3]])}, ValueError, "labels", id="label out of range"
    ),
    pytest.param(
        {"sampled_candidates": np.array([2, -1, 0, 6, 8])},
        ValueError,
        "sampled_candidates",
        id="negative sampled id",
    ),
    pytest.param({"labels": LABELS.astype(np.float64)}, TypeError, "labels", id="float labels"),
    pytest.param(
        {"sampled_candidates": SAMPLED.astype(np.float64)},
        TypeError,
        "sampled_candidates",
        id="float sampled ids",
    ),
    pytest.param({"labels": LABELS[:, 0]}, ValueError, r"labels\[:, None\]", id="1-D labels"),
    pytest.param(
        {"sampled_candidates": np.zeros(0, np.int64), "sampled_expected_count": np.zeros(0)},
        ValueError,
        "S >= 1",
        id="S = 0",
    ),
    pytest.param(
        {"sampled_expected_count": np.array([0.5, 0.0, 1.0, 1.0, 1.0])},
        ValueError,
        "sampled_expected_count must be finite and > 0",
        id="zero count",
    ),
    pytest.param(
        {"true_expected_count": -COUNTS["true_expected_count"]},
        ValueError,
        "true_expected_count must be finite and > 0",
        id="negative count",
    ),
    pytest.param(
        {"true_expected_count": np.full((B, 1), np.nan)},
        ValueError,
        "including NaN",
        id="NaN count",
    ),
    pytest.param(
        {"sampled_expected_count": np.full(S, np.inf)},
        ValueError,
        "finite and > 0",
        id="infinite count",
    ),
    pytest.param(
        {"true_expected_count": np.ones((B, 2))},
        ValueError,
        r"true_expected_count must have shape \(4, 1\)",
        id="num_true mismatch",
    ),
    pytest.param(
        {"sampled_expected_count": np.ones(S + 1)},
        ValueError,
        r"sampled_expected_count must have shape \(5,\)",
        id="sampled count shape",
    ),
    pytest.param(
        {"sampled_expected_count": np.ones(S, np.int64)},
        TypeError,
        "sampled_expected_count must have dtype float",
        id="integer counts",
    ),
    pytest.param(
        {"true_expected_count": None},
        ValueError,
        "true_expected_count is required with subtract_log_q=True",
        id="missing counts",
    ),
    pytest.param(
        {"remove_accidental_hits": 1},
        TypeError,
        "remove_accidental_hits must be True or False",
        id="non-bool flag",
    ),
    pytest.param({"reduction": "avg"}, ValueError, "reduction", id="unknown reduction"),
]


@pytest.mark.parametrize("fn", SAMPLED_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("changes", "error", "match"), SAMPLED_ERRORS)
def test_sampled_errors_name_the_argument(fn, changes, error, match):
    with pytest.raises(error, match=match):
        _sampled_call(fn, **changes)


@pytest.mark.parametrize("fn", SAMPLED_LOSSES, ids=lambda f: f.__name__)
def test_sampled_shape_errors(fn):
    with pytest.raises(ValueError, match="biases must have shape"):
        fn(W, BIAS[:-1], X, **SAMPLED_KW)
    with pytest.raises(ValueError, match="weights and inputs must have the same width D"):
        fn(W, BIAS, X[:, :2], **SAMPLED_KW)
    with pytest.raises(TypeError, match="weights and inputs must have the same dtype"):
        fn(W.astype(np.float32), BIAS, X, **SAMPLED_KW)
    with pytest.raises(TypeError, match="biases must have the dtype float64 of weights"):
        fn(W, BIAS.astype(np.float32), X, **SAMPLED_KW)


def test_counts_not_needed_without_log_q():
    # subtract_log_q=False ignores the expected counts: the loss equals the one with Q = 1
    without = refloss.sampled_softmax_loss(
        W, BIAS, X, labels=LABELS, sampled_candidates=SAMPLED, subtract_log_q=False
    )
    ones = {"true_expected_count": np.ones((B, 1)), "sampled_expected_count": np.ones(S)}
    with_ones = refloss.sampled_softmax_loss(
        W, BIAS, X, labels=LABELS, sampled_candidates=SAMPLED, **ones
    )
    np.testing.assert_array_equal(without, with_ones)


def test_a_constant_factor_on_the_counts_cancels_in_the_softmax_not_in_nce():
    # log(cQ) = log c + log Q shifts every logit of a row equally: the softmax ignores it,
    # the binary classifiers of NCE do not
    scaled = {name: 8.0 * value for name, value in COUNTS.items()}
    for fn, same in ((refloss.sampled_softmax_loss, True), (refloss.nce_loss, False)):
        base = _sampled_call(fn)
        moved = _sampled_call(fn, **scaled)
        assert np.allclose(base, moved, rtol=1e-13) == same, fn.__name__


FULL_KW = {"labels": np.array([2, 9, 2, 0]), "class_bias": BIAS}

FULL_ERRORS = [
    pytest.param(
        {"labels": np.array([2, 11, 2, 0])},
        ValueError,
        r"labels must be class ids in \[0, 11\)",
        id="label out of range",
    ),
    pytest.param(
        {"labels": np.array([2.0, 9.0, 2.0, 0.0])}, TypeError, "labels", id="float labels"
    ),
    pytest.param(
        {"labels": np.array([[2], [9], [2], [0]])},
        ValueError,
        r"labels must have shape \(4,\)",
        id="labels shape",
    ),
    pytest.param(
        {"class_bias": BIAS[:5]}, ValueError, r"class_bias must have shape \(11,\)", id="bias shape"
    ),
    pytest.param({"class_bias": BIAS.astype(np.float32)}, TypeError, "class_bias", id="bias dtype"),
    pytest.param({"chunk_size": 0}, ValueError, "chunk_size must be >= 1", id="chunk_size 0"),
    pytest.param({"chunk_size": 2.5}, TypeError, "chunk_size", id="chunk_size float"),
    pytest.param({"temperature": 0.0}, ValueError, "temperature", id="temperature 0"),
]


@pytest.mark.parametrize(("changes", "error", "match"), FULL_ERRORS)
def test_full_softmax_errors_name_the_argument(changes, error, match):
    with pytest.raises(error, match=match):
        refloss.full_softmax_loss(X, W, **{**FULL_KW, **changes})


def test_full_softmax_width_mismatch():
    with pytest.raises(ValueError, match="same width D"):
        refloss.full_softmax_loss(X, W[:, :2], **FULL_KW)


# ---------------------------------------------------------------------------------------------
# chunks: the streaming log-sum-exp gives the numbers of one chunk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 299, 300, None])
def test_full_softmax_chunked_equals_unchunked(chunk_size):
    rng = np.random.default_rng(7302)
    q, c = rng.standard_normal((150, 6)) * 2, rng.standard_normal((300, 6))  # two row blocks
    bias, labels = rng.standard_normal(300), rng.integers(0, 300, 150)
    grad = refloss.value_and_grad(
        functools.partial(refloss.full_softmax_loss, reduction="sum"),
        wrt=("query_embeddings", "class_embeddings", "class_bias", "temperature"),
    )
    kw = {"labels": labels, "class_bias": bias, "temperature": np.asarray(0.4)}
    whole = grad(q, c, **kw, chunk_size=300)
    chunked = grad(q, c, **kw, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-12)
    for got, expected in zip(chunked[1], whole[1], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())
    rows = refloss.full_softmax_loss(q, c, **kw, chunk_size=chunk_size)
    np.testing.assert_allclose(rows, refloss.full_softmax_loss(q, c, **kw), rtol=1e-12)


def test_full_softmax_matches_the_oracle_and_a_dense_softmax():
    value = refloss.full_softmax_loss(X, W, **FULL_KW, temperature=0.5, chunk_size=3)
    np.testing.assert_allclose(
        value, oracle.full_softmax_loss(X, W, **FULL_KW, temperature=0.5), rtol=1e-13
    )
    s = X @ W.T / 0.5 + BIAS
    dense = np.log(np.exp(s).sum(axis=1)) - s[np.arange(B), FULL_KW["labels"]]
    np.testing.assert_allclose(value, dense, rtol=1e-12)


def test_full_softmax_value_and_grad_never_materialises_the_logits():
    # B x num_classes float64 logits would take 64 * 100_000 * 8 = 51 MB; with chunks of
    # 2048 classes the working memory beyond the outputs is a few tiles of 1 MB
    rng = np.random.default_rng(7303)
    num_rows, num_classes, width = 64, 100_000, 8
    q, c = rng.standard_normal((num_rows, width)), rng.standard_normal((num_classes, width))
    bias, labels = rng.standard_normal(num_classes), rng.integers(0, num_classes, num_rows)
    grad = refloss.value_and_grad(
        functools.partial(refloss.full_softmax_loss, reduction="mean", chunk_size=2048),
        wrt=("query_embeddings", "class_embeddings", "class_bias"),
    )
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        value, grads = grad(q, c, labels=labels, class_bias=bias)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = value.nbytes + sum(g.nbytes for g in grads)
    working = peak - before - outputs
    assert working < 12e6, f"{working / 1e6:.1f} MB beyond the outputs"
    assert np.isfinite(value)


# ---------------------------------------------------------------------------------------------
# autodiff through refloss: jax.grad gives value_and_grad's numbers (torch: test_gradients)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["jax"])
@pytest.mark.parametrize("fn", SAMPLED_LOSSES, ids=lambda f: f.__name__)
def test_jax_grad_through_sampled_losses(backend, fn):
    jax = backend.module  # x64 on, restored afterwards
    jnp = jax.numpy
    options = {"remove_accidental_hits": True, "reduction": "sum"}
    value, grads = refloss.value_and_grad(functools.partial(fn, **options))(
        W, BIAS, X, **SAMPLED_KW
    )
    kw = {name: jnp.asarray(v) for name, v in SAMPLED_KW.items()}

    def loss(w, b, x):
        return fn(w, b, x, **kw, **options)

    j_value, j_grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(
        jnp.asarray(W), jnp.asarray(BIAS), jnp.asarray(X)
    )
    np.testing.assert_allclose(np.asarray(j_value), value, rtol=1e-13)
    for got, expected in zip(j_grads, grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("backend_name", ["jax"])
def test_jax_grad_through_full_softmax(backend):
    jax = backend.module  # x64 on, restored afterwards
    jnp = jax.numpy
    wrt = ("query_embeddings", "class_embeddings", "class_bias", "temperature")
    options = {"reduction": "mean", "chunk_size": 4}
    value, grads = refloss.value_and_grad(
        functools.partial(refloss.full_softmax_loss, **options), wrt=wrt
    )(X, W, **FULL_KW, temperature=np.asarray(0.6))
    labels = jnp.asarray(FULL_KW["labels"])

    def loss(q, c, b, t):
        return refloss.full_softmax_loss(
            q, c, labels=labels, class_bias=b, temperature=t, **options
        )

    j_value, j_grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(
        jnp.asarray(X), jnp.asarray(W), jnp.asarray(BIAS), jnp.asarray(0.6)
    )
    np.testing.assert_allclose(np.asarray(j_value), value, rtol=1e-13)
    for got, expected in zip(j_grads, grads, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-11, atol=1e-14)
