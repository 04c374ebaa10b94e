"""Parity of ``refloss.retrieval_loss`` with TensorFlow Recommenders 0.7.7.

The expected values in ``tests/data/tfrs_retrieval_parity.json`` were produced by
``tests/tfrs/generate_tfrs_parity.py`` with ``tfrs.tasks.Retrieval`` (default
SUM loss), in float64 with TF autograd gradients and in the default float32
policy. TensorFlow is not needed to run these tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refloss

DATA = Path(__file__).parent / "data" / "tfrs_retrieval_parity.json"
CASES = json.loads(DATA.read_text())["cases"]

F64_LOSS_RTOL = 1e-12
F64_GRAD_RTOL = 1e-10
F32_LOSS_RTOL = 1e-5


def _array(spec, dtype):
    """Rebuild a stored {"shape", "data"} array with the given dtype."""
    return np.asarray(spec["data"], dtype=dtype).reshape(spec["shape"])


def _call_args(case, dtype):
    """Return (q, c, options) for ``refloss.retrieval_loss`` in ``dtype``."""
    inputs = case["inputs"]
    q = _array(inputs["query_embeddings"], dtype)
    c = _array(inputs["candidate_embeddings"], dtype)
    opts = {k: v for k, v in case["options"].items() if v is not None}
    for name in ("sample_weight", "candidate_sampling_probability"):
        if name in inputs:
            opts[name] = _array(inputs[name], dtype)
    if "candidate_ids" in inputs:
        opts["candidate_ids"] = _array(inputs["candidate_ids"], np.int64)
    if "score_mask" in inputs:
        opts["score_mask"] = _array(inputs["score_mask"], np.bool_)
    return q, c, opts


def _rel_err(got, want):
    """Relative error; exact agreement is required when ``want`` is 0."""
    got, want = float(got), float(want)
    if want == 0.0:
        return 0.0 if got == 0.0 else float("inf")
    return abs(got - want) / abs(want)


def _case_params():
    return [pytest.param(case, id=case["id"]) for case in CASES]


def test_data_file_metadata():
    """The data records the TFRS version it was generated with."""
    gen = json.loads(DATA.read_text())["generator"]
    assert gen["tensorflow_recommenders"] == "0.7.7"
    assert len(CASES) >= 24


@pytest.mark.parametrize("case", _case_params())
def test_float64_loss_matches_tfrs(case):
    """float64 loss agrees with TFRS (floatx float64) to 1e-12 relative."""
    q, c, opts = _call_args(case, np.float64)
    loss = refloss.retrieval_loss(q, c, **opts)
    assert loss.dtype == np.float64
    want = case["tfrs_float64"]["loss"]
    assert _rel_err(loss, want) <= F64_LOSS_RTOL, (float(loss), want)


@pytest.mark.parametrize("case", _case_params())
def test_float64_gradients_match_tf_autograd(case):
    """Analytic gradients agree with TF autograd through the TFRS task."""
    q, c, opts = _call_args(case, np.float64)
    loss, (gq, gc) = refloss.value_and_grad(refloss.retrieval_loss)(q, c, **opts)
    assert _rel_err(loss, case["tfrs_float64"]["loss"]) <= F64_LOSS_RTOL
    want_q = _array(case["tfrs_float64"]["grad_query_embeddings"], np.float64)
    want_c = _array(case["tfrs_float64"]["grad_candidate_embeddings"], np.float64)
    scale = max(np.max(np.abs(want_q)), np.max(np.abs(want_c)), 1e-300)
    for got, want in ((gq, want_q), (gc, want_c)):
        got = np.asarray(got)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=F64_GRAD_RTOL, atol=F64_GRAD_RTOL * scale)


@pytest.mark.parametrize("case", _case_params())
def test_float32_loss_matches_tfrs(case):
    """float32 loss agrees with TFRS's default float32 policy to 1e-5 relative."""
    q, c, opts = _call_args(case, np.float32)
    loss = refloss.retrieval_loss(q, c, **opts)
    assert loss.dtype == np.float32
    want = case["tfrs_float32"]["loss"]
    assert _rel_err(loss, want) <= F32_LOSS_RTOL, (float(loss), want)


def test_masked_positive_is_a_deliberate_difference():
    """A masked positive gives that row loss 0 and gradient 0 (TFRS does not).

    TFRS 0.7.7 behaviour (reference notes on TFRS semantics, sections 2.3 and
    2.4): it replaces masked logits with the finite constant -3.4028236e36, so
    a row whose positive is masked scores about +3.4e36 without hard-negative
    mining, and 0 only when mining happens to drop the positive. refloss masks
    with -inf and defines such a row as having no target: its loss and its
    gradient are exactly 0, the same as giving the row a sample weight of 0.
    """
    rng = np.random.Generator(np.random.PCG64(7))
    q = rng.standard_normal((4, 3))
    c = rng.standard_normal((6, 3))
    mask = np.ones((4, 6), dtype=bool)
    mask[2, 2] = False
    per_row = refloss.retrieval_loss(q, c, score_mask=mask, reduction="none")
    assert per_row[2] == 0.0
    assert np.all(np.delete(per_row, 2) > 0.0)

    grad = refloss.value_and_grad(refloss.retrieval_loss)
    loss, (gq, gc) = grad(q, c, score_mask=mask)
    loss_w, (gq_w, gc_w) = grad(q, c, sample_weight=np.array([1.0, 1.0, 0.0, 1.0]))
    assert float(loss) < 1e6  # TFRS reports about 3.4e36 for this input
    assert np.all(np.asarray(gq)[2] == 0.0)
    np.testing.assert_allclose(loss, loss_w, rtol=1e-13)
    np.testing.assert_allclose(gq, gq_w, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gc, gc_w, rtol=1e-13, atol=1e-15)
