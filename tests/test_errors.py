"""Bad inputs raise ValueError / TypeError whose message names the argument and what was given."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _helpers import BACKENDS, to_numpy

import refloss

B, N, D = 4, 6, 3

SHAPE = re.compile(r"[\(\[]\s*(\d+(?:\s*,\s*\d+)*)?\s*,?\s*[\)\]]")


def _shapes_in(msg):
    """Every shape-like tuple in a message, normalised to a Python tuple."""
    found = []
    for m in SHAPE.finditer(msg):
        body = m.group(1)
        found.append(tuple(int(v) for v in body.split(",")) if body else ())
    return found


def _rng():
    return np.random.default_rng(0)


def _base(backend, dtype="float64"):
    dtype = dtype if backend.has_float64 else "float32"
    rng = _rng()
    q = backend.asarray(rng.standard_normal((B, D)), dtype)
    c = backend.asarray(rng.standard_normal((N, D)), dtype)
    return q, c, dtype


def _assert_error(exc_info, name, given=(), shape=None):
    msg = str(exc_info.value)
    assert name in msg, f"{name!r} not named in: {msg}"
    for g in given:
        assert g.lower() in msg.lower(), f"given value {g!r} not in: {msg}"
    if shape is not None:
        assert tuple(shape) in _shapes_in(msg), f"shape {shape} not in: {msg}"


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "shape"),
    [
        ("query_embeddings", (3,)),
        ("query_embeddings", (2, 3, 4)),
        ("candidate_embeddings", (5,)),
        ("candidate_embeddings", (1, 6, 3)),
    ],
)
def test_wrong_rank(backend, which, shape):
    q, c, dtype = _base(backend)
    bad = backend.asarray(_rng().standard_normal(shape), dtype)
    args = (bad, c) if which == "query_embeddings" else (q, bad)
    with pytest.raises(ValueError, match=which) as exc_info:
        refloss.retrieval_loss(*args)
    _assert_error(exc_info, which, shape=shape)


def test_embedding_widths_differ(backend):
    q, _, dtype = _base(backend)
    c = backend.asarray(_rng().standard_normal((N, 2)), dtype)
    with pytest.raises(ValueError, match="embeddings") as exc_info:
        refloss.retrieval_loss(q, c)
    msg = str(exc_info.value)
    assert "query_embeddings" in msg or "candidate_embeddings" in msg, msg
    assert re.search(r"\b3\b", msg), msg
    assert re.search(r"\b2\b", msg), msg


def test_fewer_candidates_than_queries(backend):
    q, _, dtype = _base(backend)
    c = backend.asarray(_rng().standard_normal((B - 1, D)), dtype)
    with pytest.raises(ValueError, match="candidate_embeddings") as exc_info:
        refloss.retrieval_loss(q, c)
    msg = str(exc_info.value)
    assert "candidate_embeddings" in msg, msg
    assert re.search(rf"\b{B - 1}\b", msg), msg
    assert re.search(rf"\b{B}\b", msg), msg


def test_empty_batch(backend):
    _, c, dtype = _base(backend)
    q = backend.asarray(np.zeros((0, D)), dtype)
    with pytest.raises(ValueError, match="query_embeddings") as exc_info:
        refloss.retrieval_loss(q, c)
    msg = str(exc_info.value)
    assert "query_embeddings" in msg, msg
    assert re.search(r"\b0\b", msg), msg


def _side(backend, dtype, name, shape):
    rng = _rng()
    if name == "candidate_ids":
        return backend.asarray(np.arange(math.prod(shape), dtype=np.int64).reshape(shape))
    if name == "score_mask":
        return backend.asarray(np.ones(shape, dtype=bool))
    return backend.asarray(rng.uniform(0.1, 0.9, size=shape), dtype)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("sample_weight", (B - 1,)),
        ("sample_weight", (B + 1,)),
        ("sample_weight", (B, 2)),
        ("candidate_sampling_probability", (B,)),  # length B, not N
        ("candidate_sampling_probability", (N, 1)),
        ("candidate_ids", (N - 1,)),
        ("candidate_ids", (B,)),
        ("score_mask", (B, N - 1)),
        ("score_mask", (N, B)),
        ("score_mask", (N,)),
    ],
)
def test_wrong_side_input_shape(backend, name, shape):
    q, c, dtype = _base(backend)
    with pytest.raises(ValueError, match=name) as exc_info:
        refloss.retrieval_loss(q, c, **{name: _side(backend, dtype, name, shape)})
    _assert_error(exc_info, name, shape=shape)


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "given"), [(1.5, "1.5"), (-0.25, "-0.25"), (np.nan, "nan")])
def test_probability_out_of_range(backend, bad, given):
    q, c, dtype = _base(backend)
    p = np.full(N, 0.1)
    p[3] = bad
    with pytest.raises(ValueError, match="candidate_sampling_probability") as exc_info:
        refloss.retrieval_loss(q, c, candidate_sampling_probability=backend.asarray(p, dtype))
    _assert_error(exc_info, "candidate_sampling_probability", given=[given])
    # the correction step checks the same
    logits = backend.asarray(np.zeros((B, N)), dtype)
    with pytest.raises(ValueError, match="candidate_sampling_probability") as exc_info:
        refloss.logq_correction(logits, backend.asarray(p, dtype))
    _assert_error(exc_info, "candidate_sampling_probability", given=[given])


@pytest.mark.parametrize(
    ("bad", "given"), [(0, "0"), (0.0, "0"), (-1.0, "-1"), (math.inf, "inf"), (math.nan, "nan")]
)
def test_bad_temperature_value(backend, bad, given):
    q, c, _ = _base(backend)
    with pytest.raises(ValueError, match="temperature") as exc_info:
        refloss.retrieval_loss(q, c, temperature=bad)
    _assert_error(exc_info, "temperature", given=[given])


@pytest.mark.parametrize("bad", ["0.5", [0.5], 1 + 2j])
def test_temperature_not_a_real_number(backend, bad):
    q, c, _ = _base(backend)
    with pytest.raises((TypeError, ValueError)) as exc_info:
        refloss.retrieval_loss(q, c, temperature=bad)
    _assert_error(exc_info, "temperature")


@pytest.mark.parametrize(("bad", "given"), [(0, "0"), (-1, "-1")])
def test_num_hard_negatives_below_one(backend, bad, given):
    q, c, _ = _base(backend)
    with pytest.raises(ValueError, match="num_hard_negatives") as exc_info:
        refloss.retrieval_loss(q, c, num_hard_negatives=bad)
    _assert_error(exc_info, "num_hard_negatives", given=[given])
    logits = backend.asarray(np.zeros((B, N)), "float32")
    with pytest.raises(ValueError, match="num_hard_negatives") as exc_info:
        refloss.mine_hard_negatives(logits, num_hard_negatives=bad)
    _assert_error(exc_info, "num_hard_negatives", given=[given])


@pytest.mark.parametrize(("bad", "given"), [(1.5, "1.5"), (True, "True"), (2.0, "2.0"), ("3", "3")])
def test_num_hard_negatives_not_an_integer(backend, bad, given):
    q, c, _ = _base(backend)
    with pytest.raises((TypeError, ValueError)) as exc_info:
        refloss.retrieval_loss(q, c, num_hard_negatives=bad)
    _assert_error(exc_info, "num_hard_negatives", given=[given])


@pytest.mark.parametrize(
    ("bad", "given"), [(0, "0"), (0.0, "0"), (-1e-6, "-1e-06"), (1.5, "1.5"), (math.nan, "nan")]
)
def test_bad_min_probability(backend, bad, given):
    q, c, dtype = _base(backend)
    p = backend.asarray(np.full(N, 0.1), dtype)
    with pytest.raises(ValueError, match="min_probability") as exc_info:
        refloss.retrieval_loss(q, c, candidate_sampling_probability=p, min_probability=bad)
    _assert_error(exc_info, "min_probability", given=[given])


@pytest.mark.parametrize("bad", ["avg", "SUM", "", "sum_over_batch_size"])
def test_unknown_reduction(backend, bad):
    q, c, dtype = _base(backend)
    with pytest.raises(ValueError, match="reduction") as exc_info:
        refloss.retrieval_loss(q, c, reduction=bad)
    _assert_error(exc_info, "reduction", given=[bad or repr(bad)])
    logits = backend.asarray(np.zeros((B, N)), dtype)
    with pytest.raises(ValueError, match="reduction") as exc_info:
        refloss.softmax_cross_entropy(logits, reduction=bad)
    _assert_error(exc_info, "reduction", given=[bad or repr(bad)])


def test_value_and_grad_validates_too(backend):
    q, c, _ = _base(backend)
    grad_fn = refloss.value_and_grad(refloss.retrieval_loss)
    with pytest.raises(ValueError, match="temperature") as exc_info:
        grad_fn(q, c, temperature=-2.0)
    _assert_error(exc_info, "temperature", given=["-2"])
    with pytest.raises(ValueError, match="num_hard_negatives") as exc_info:
        grad_fn(q, c, num_hard_negatives=0)
    _assert_error(exc_info, "num_hard_negatives", given=["0"])


def test_valid_edge_values_are_accepted(backend):
    # the boundaries of the valid ranges do not raise
    q, c, dtype = _base(backend)
    p = np.full(N, 0.1)
    p[0], p[1] = 0.0, 1.0
    out = refloss.retrieval_loss(
        q,
        c,
        candidate_sampling_probability=backend.asarray(p, dtype),
        min_probability=1.0,
        num_hard_negatives=np.int64(1),
        temperature=1e-3,
    )
    assert math.isfinite(float(to_numpy(out)))


# ---------------------------------------------------------------------------------------------
# dtypes and libraries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["query_embeddings", "candidate_embeddings"])
@pytest.mark.parametrize("bad_dtype", ["int64", "int32", "bool"])
def test_non_floating_embeddings(backend, which, bad_dtype):
    q, c, _ = _base(backend)
    shape = (B, D) if which == "query_embeddings" else (N, D)
    bad = backend.asarray(np.ones(shape).astype(bad_dtype))
    args = (bad, c) if which == "query_embeddings" else (q, bad)
    with pytest.raises(TypeError) as exc_info:
        refloss.retrieval_loss(*args)
    kind = "bool" if bad_dtype == "bool" else "int"
    _assert_error(exc_info, which, given=[kind])


@pytest.mark.parametrize("backend_name", [b for b in BACKENDS if b != "jax32"])
def test_mismatched_embedding_dtypes(backend):
    rng = _rng()
    q = backend.asarray(rng.standard_normal((B, D)), "float32")
    c = backend.asarray(rng.standard_normal((N, D)), "float64")
    with pytest.raises(TypeError) as exc_info:
        refloss.retrieval_loss(q, c)
    msg = str(exc_info.value)
    assert "query_embeddings" in msg or "candidate_embeddings" in msg, msg
    assert "float32" in msg, msg
    assert "float64" in msg, msg


@pytest.mark.parametrize("bad_dtype", ["float32", "float64", "bool"])
def test_non_integer_candidate_ids(backend, bad_dtype):
    q, c, _ = _base(backend)
    if bad_dtype == "float64" and not backend.has_float64:
        bad_dtype = "float32"
    ids = backend.asarray(np.arange(N).astype(bad_dtype))
    with pytest.raises(TypeError) as exc_info:
        refloss.retrieval_loss(q, c, candidate_ids=ids)
    _assert_error(exc_info, "candidate_ids", given=[bad_dtype[:4]])
    logits = backend.asarray(np.zeros((B, N)), "float32")
    with pytest.raises(TypeError) as exc_info:
        refloss.remove_accidental_hits(logits, ids)
    _assert_error(exc_info, "candidate_ids", given=[bad_dtype[:4]])


@pytest.mark.parametrize("bad_dtype", ["int64", "float32", "uint8"])
def test_non_bool_score_mask(backend, bad_dtype):
    q, c, _ = _base(backend)
    m = backend.asarray(np.ones((B, N)).astype(bad_dtype))
    with pytest.raises(TypeError) as exc_info:
        refloss.retrieval_loss(q, c, score_mask=m)
    given = "int" if bad_dtype != "float32" else "float"
    _assert_error(exc_info, "score_mask", given=[given])
    logits = backend.asarray(np.zeros((B, N)), "float32")
    with pytest.raises(TypeError) as exc_info:
        refloss.apply_score_mask(logits, m)
    _assert_error(exc_info, "score_mask", given=[given])


@pytest.mark.parametrize(
    "which",
    [
        "candidate_embeddings",
        "sample_weight",
        "candidate_sampling_probability",
        "candidate_ids",
        "score_mask",
    ],
)
def test_numpy_and_torch_mixed(which):
    torch = pytest.importorskip("torch")
    rng = _rng()
    arrays = {
        "query_embeddings": rng.standard_normal((B, D)),
        "candidate_embeddings": rng.standard_normal((N, D)),
        "sample_weight": np.ones(B),
        "candidate_sampling_probability": np.full(N, 0.1),
        "candidate_ids": np.arange(N),
        "score_mask": np.ones((B, N), dtype=bool),
    }
    arrays[which] = torch.asarray(arrays[which])
    q = arrays.pop("query_embeddings")
    c = arrays.pop("candidate_embeddings")
    with pytest.raises(TypeError) as exc_info:
        refloss.retrieval_loss(q, c, **arrays)
    msg = str(exc_info.value).lower()
    assert "numpy" in msg, msg
    assert "torch" in msg, msg
    assert which in str(exc_info.value), str(exc_info.value)


def test_numpy_and_torch_mixed_in_steps():
    torch = pytest.importorskip("torch")
    logits = np.zeros((B, N))
    with pytest.raises(TypeError) as exc_info:
        refloss.logq_correction(logits, torch.full((N,), 0.1, dtype=torch.float64))
    assert "torch" in str(exc_info.value).lower()
    with pytest.raises(TypeError):
        refloss.apply_score_mask(torch.zeros((B, N)), np.ones((B, N), dtype=bool))
