"""Parity of refloss's sampled losses and candidate samplers with TensorFlow 2.21.

The expected values in ``tests/data/tf_sampled_parity.json`` were recorded by
``tests/tf/record_tf_sampled.py`` with TensorFlow 2.21.0 (CPU):
``tf.nn.sampled_softmax_loss`` and ``tf.nn.nce_loss`` with fixed ``sampled_values``
(per-example losses; float64 cases also carry GradientTape gradients of their sum),
and ``tf.random.uniform_candidate_sampler``, ``log_uniform_candidate_sampler`` and
``fixed_unigram_candidate_sampler`` (sampled ids and float32 expected counts).
TensorFlow is not needed to run these tests. To regenerate the data, install
TensorFlow in a separate environment and run the recorder from the repository root::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python tests/tf/record_tf_sampled.py

Non-finite numbers are stored as the strings ``"nan"``, ``"inf"`` and ``"-inf"``.

Deliberate differences, each with its own test here: refloss masks an accidental hit
with -inf where TensorFlow adds -FLT_MAX (the same numbers); refloss masks every copy
of a duplicated sampled id that equals a row's label, TensorFlow only the last one; an
expected count <= 0 raises ``ValueError`` where TensorFlow returns NaN.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import refloss

DATA = Path(__file__).parent / "data" / "tf_sampled_parity.json"
DOC = json.loads(DATA.read_text())
LOSS_CASES = DOC["loss_cases"]
SAMPLER_CASES = DOC["sampler_cases"]

F64_LOSS_RTOL = 1e-12
F64_LOSS_ATOL = 1e-14  # times the largest |loss| of the case
F64_GRAD_RTOL = 1e-10
F32_LOSS_RTOL = 1e-5
COUNT_RTOL = 3e-7  # TF rounds probabilities and expected counts to float32
FLT_MAX = float(np.finfo(np.float32).max)


def _array(spec, dtype):
    """Rebuild a stored {"shape", "data"} array ("nan", "inf", "-inf" decoded)."""
    data = spec["data"]
    if np.dtype(dtype).kind == "f":
        data = [float(v) for v in data]  # float("nan") / float("inf") decode the strings
    return np.asarray(data, dtype=dtype).reshape(spec["shape"])


def _loss_fn(case):
    return refloss.sampled_softmax_loss if case["loss"] == "sampled_softmax" else refloss.nce_loss


def _call_args(case, dtype):
    """Return ((weights, biases, inputs), keyword arguments) in ``dtype``."""
    x = case["inputs"]
    arrays = tuple(_array(x[k], dtype) for k in ("weights", "biases", "inputs"))
    kw = {
        "labels": _array(x["labels"], np.int64),
        "sampled_candidates": _array(x["sampled_candidates"], np.int64),
        "true_expected_count": _array(x["true_expected_count"], dtype),
        "sampled_expected_count": _array(x["sampled_expected_count"], dtype),
        "remove_accidental_hits": case["remove_accidental_hits"],
    }
    return arrays, kw


def _cases(pred):
    return [pytest.param(c, id=c["id"]) for c in LOSS_CASES if pred(c)]


PLAIN_F64 = _cases(lambda c: c["flag"] is None and c["dtype"] == "float64")
PLAIN_F32 = _cases(lambda c: c["flag"] is None and c["dtype"] == "float32")
DUPLICATE = _cases(lambda c: c["flag"] == "duplicate_sampled_id")
ZERO_COUNT = _cases(lambda c: c["flag"] == "zero_expected_count")


def test_data_file_metadata():
    """The data records the TensorFlow version and covers every kind of case."""
    gen = DOC["generator"]
    assert gen["tensorflow"] == "2.21.0"
    assert gen["command"] == "python tests/tf/record_tf_sampled.py"
    assert len(PLAIN_F64) >= 16
    assert len(PLAIN_F32) >= 1
    assert len(DUPLICATE) >= 1
    assert len(ZERO_COUNT) >= 1
    kinds = {(c["sampler"], c["unique"]) for c in SAMPLER_CASES}
    assert kinds == {(s, u) for s in ("uniform", "log_uniform", "unigram") for u in (False, True)}


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("case", PLAIN_F64)
def test_float64_loss_matches_tf(case):
    """Per-example float64 losses agree with TensorFlow to 1e-12 relative."""
    (w, b, x), kw = _call_args(case, np.float64)
    got = np.asarray(_loss_fn(case)(w, b, x, **kw, reduction="none"))
    want = _array(case["tf"]["loss"], np.float64)
    assert got.dtype == np.float64
    assert got.shape == want.shape
    atol = F64_LOSS_ATOL * np.max(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=F64_LOSS_RTOL, atol=atol)


@pytest.mark.parametrize("case", PLAIN_F64)
def test_float64_gradients_match_tf_autograd(case):
    """Gradients of the summed loss agree with TF's GradientTape to 1e-10 relative."""
    (w, b, x), kw = _call_args(case, np.float64)
    loss, grads = refloss.value_and_grad(_loss_fn(case))(w, b, x, **kw, reduction="sum")
    want_loss = math.fsum(_array(case["tf"]["loss"], np.float64).tolist())
    assert abs(float(loss) - want_loss) <= F64_LOSS_RTOL * abs(want_loss)
    assert len(grads) == 3
    for got, name in zip(grads, ("grad_weights", "grad_biases", "grad_inputs"), strict=True):
        want = _array(case["tf"][name], np.float64)
        got = np.asarray(got)
        assert got.shape == want.shape, name
        atol = F64_GRAD_RTOL * max(np.max(np.abs(want)), 1e-300)
        np.testing.assert_allclose(got, want, rtol=F64_GRAD_RTOL, atol=atol, err_msg=name)


@pytest.mark.parametrize("case", PLAIN_F32)
def test_float32_loss_matches_tf(case):
    """float32 losses agree with TensorFlow's float32 run to 1e-5 relative."""
    (w, b, x), kw = _call_args(case, np.float32)
    got = np.asarray(_loss_fn(case)(w, b, x, **kw, reduction="none"))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _array(case["tf"]["loss"], np.float64), rtol=F32_LOSS_RTOL)


def _softmax_ce(logits, labels):
    """Row-wise softmax cross-entropy in float64 with a stable log-sum-exp."""
    m = np.max(logits, axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.sum(np.exp(logits - m), axis=1))
    picked = np.where(labels > 0, logits, 0.0)  # avoids 0 * -inf
    return lse * labels.sum(axis=1) - np.sum(labels * picked, axis=1)


def _sigmoid_ce(logits, labels):
    """Summed sigmoid cross-entropy; a -inf logit with label 0 contributes 0."""
    kept = np.isfinite(logits)
    x = np.where(kept, logits, 0.0)
    terms = np.maximum(x, 0.0) - x * labels + np.log1p(np.exp(-np.abs(x)))
    return np.sum(np.where(kept, terms, 0.0), axis=1)


@pytest.mark.parametrize("case", DUPLICATE)
def test_duplicate_sampled_id_masks_every_copy(case):
    """TF masks only the last copy of a duplicated sampled id; refloss masks every copy.

    The recorded logits of TF's ``_compute_sampled_logits`` show -FLT_MAX (minus log Q)
    at the last copy and an ordinary finite logit at the earlier one. refloss's loss
    equals a float64 cross-entropy over those logits with the earlier copy removed too,
    so it differs from TF's loss in the rows whose label is the duplicated id, and
    agrees with it in the other rows.
    """
    (w, b, x), kw = _call_args(case, np.float64)
    labels, sampled = kw["labels"], kw["sampled_candidates"]
    logits = _array(case["tf"]["logits"], np.float64)
    targets = _array(case["tf"]["labels"], np.float64)
    num_true = labels.shape[1]
    ids, counts = np.unique(sampled, return_counts=True)
    dup = ids[counts > 1]
    assert dup.size == 1
    positions = np.flatnonzero(sampled == dup[0])
    first, last = num_true + positions[0], num_true + positions[-1]
    hit_rows = np.flatnonzero((labels == dup[0]).any(axis=1))
    assert hit_rows.size >= 1
    assert np.all(logits[hit_rows, last] < -0.99 * FLT_MAX)  # TF's mask, last copy only
    assert np.all(np.abs(logits[hit_rows, first]) < 1e3)  # earlier copy left in place

    masked = logits.copy()
    for row in range(labels.shape[0]):
        for t in range(num_true):
            masked[row, num_true + np.flatnonzero(sampled == labels[row, t])] = -np.inf
    if case["loss"] == "sampled_softmax":
        want = _softmax_ce(masked, targets)
    else:
        want = _sigmoid_ce(masked, targets)

    got = np.asarray(_loss_fn(case)(w, b, x, **kw, reduction="none"))
    np.testing.assert_allclose(got, want, rtol=F64_LOSS_RTOL, atol=0.0)
    tf_loss = _array(case["tf"]["loss"], np.float64)
    other = np.setdiff1d(np.arange(labels.shape[0]), hit_rows)
    np.testing.assert_allclose(got[other], tf_loss[other], rtol=F64_LOSS_RTOL, atol=0.0)
    assert np.all(np.abs(got[hit_rows] - tf_loss[hit_rows]) > 1e-6 * np.abs(tf_loss[hit_rows]))


@pytest.mark.parametrize("case", ZERO_COUNT)
def test_zero_expected_count_raises(case):
    """TF returns a non-finite loss for a zero expected count; refloss raises."""
    tf_loss = _array(case["tf"]["loss"], np.float64)
    assert not np.all(np.isfinite(tf_loss))
    (w, b, x), kw = _call_args(case, np.float64)
    assert np.any(kw["sampled_expected_count"] == 0.0)
    with pytest.raises(ValueError, match="sampled_expected_count"):
        _loss_fn(case)(w, b, x, **kw, reduction="none")


# ----------------------------------------------------------------------------- samplers


def _sampler_params():
    return [pytest.param(c, id=c["id"]) for c in SAMPLER_CASES]


def _refloss_sampler(case):
    samplers = importlib.import_module("refloss.samplers")
    if case["sampler"] == "uniform":
        return samplers.uniform(case["range_max"])
    if case["sampler"] == "log_uniform":
        return samplers.log_uniform(case["range_max"])
    return samplers.unigram(case["unigrams"], distortion=case["distortion"])


def _max_rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) / np.abs(want)))


@pytest.mark.parametrize("case", _sampler_params())
def test_sampler_ids_in_range(case):
    """TF's sampled ids lie in [0, range_max); a unique draw has distinct ids."""
    sampled = _array(case["tf"]["sampled_candidates"], np.int64)
    assert sampled.shape == (case["num_sampled"],)
    assert np.all((sampled >= 0) & (sampled < case["range_max"]))
    if case["unique"]:
        assert np.unique(sampled).size == sampled.size


@pytest.mark.parametrize("case", _sampler_params())
def test_sampler_expected_counts_match_tf(case):
    """refloss's expected counts reproduce TF's to float32 precision.

    unique=False: p * num_sampled. unique=True: TF does not report its number of draws,
    so the integer num_tries >= num_sampled that best reproduces TF's sampled counts is
    fitted, and then every true and sampled count must match with it.
    """
    sampler = _refloss_sampler(case)
    s = case["num_sampled"]
    true_classes = _array(case["true_classes"], np.int64)
    sampled = _array(case["tf"]["sampled_candidates"], np.int64)
    tec = _array(case["tf"]["true_expected_count"], np.float64)
    sec = _array(case["tf"]["sampled_expected_count"], np.float64)

    def counts(ids, n):
        # n == s is TF's branch for a draw without rejections (always for unique=False):
        # it reports p * num_sampled, which refloss gives with unique=False.
        if n == s:
            return np.asarray(sampler.expected_count(ids, num_sampled=s, unique=False))
        return np.asarray(sampler.expected_count(ids, num_sampled=s, unique=True, num_tries=n))

    if case["unique"]:
        errors = {n: _max_rel(counts(sampled, n), sec) for n in range(s, 100 * s + 1)}
        num_tries = min(errors, key=errors.get)
        assert num_tries == case["num_tries_fit"], (num_tries, case["num_tries_fit"])
        assert (num_tries == s) == ("no_collision" in case["id"])
    else:
        num_tries = s
    assert _max_rel(counts(sampled, num_tries), sec) <= COUNT_RTOL
    got_tec = counts(true_classes.ravel(), num_tries).reshape(true_classes.shape)
    assert got_tec.shape == tec.shape
    assert _max_rel(got_tec, tec) <= COUNT_RTOL
