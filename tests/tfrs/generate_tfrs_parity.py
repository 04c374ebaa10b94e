"""Generate ``tests/data/tfrs_retrieval_parity.json``: TFRS reference values.

This script is not a test. It needs TensorFlow, tf_keras and
tensorflow-recommenders 0.7.7, which the project environment does not have::

    TF_USE_LEGACY_KERAS=1 python tests/tfrs/generate_tfrs_parity.py

Each case is evaluated with ``tfrs.tasks.Retrieval`` twice:

* in float64 (``set_floatx("float64")`` before the task is built), with TF
  autograd gradients of the loss with respect to both embedding matrices;
  ``HardNegativeMining.call`` is wrapped to cast its float32 ``tf.eye`` labels
  to the logits dtype, which changes no arithmetic but lets float64 run;
* in the default float32 policy, with a freshly built task.

Random inputs are float32 values stored exactly, so one stored value serves both
precisions; the worked example keeps its decimal inputs (float32 runs round them).
No case masks a diagonal positive: there refloss deliberately differs.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

SEED = 20240611
OUT = Path(__file__).resolve().parents[1] / "data" / "tfrs_retrieval_parity.json"
WORKED = "reference notes 5.1 (decimal inputs): T=0.5, logQ, ids, weights"
TIE_MARGIN = 1e-3  # minimum gap between the k-th and (k+1)-th hardest negative logit


def _install_labels_cast() -> None:
    """Cast HardNegativeMining's labels to the logits dtype before it runs."""
    cls = tfrs.layers.loss.HardNegativeMining
    original = cls.call

    def call(self, logits, labels):
        return original(self, logits, tf.cast(labels, logits.dtype))

    cls.call = call


# ----------------------------------------------------------------------------- inputs


def _emb(rng, n, d, *, unit=False):
    """Standard-normal float32 rows, optionally scaled to unit length in float32."""
    x = rng.standard_normal((n, d), dtype=np.float32)
    if unit:
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x


def _diag_kept_mask(rng, b, n, frac):
    """Random bool mask with ``frac`` False entries, the diagonal always True."""
    m = rng.random((b, n)) >= frac
    m[np.arange(b), np.arange(b)] = True
    return m


def _reference_logits(case):
    """Float64 logits after steps 1-4 of the pinned semantics (-inf masking)."""
    q = case["q"].astype(np.float64)
    s = q @ case["c"].astype(np.float64).T
    b = s.shape[0]
    if case.get("temperature") is not None:
        s = s / case["temperature"]
    if case.get("candidate_sampling_probability") is not None:
        p = case["candidate_sampling_probability"].astype(np.float64)
        s = s - np.log(np.clip(p, 1e-6, 1.0))
    if case.get("candidate_ids") is not None:
        ids = case["candidate_ids"]
        dup = ids[:b, None] == ids[None, :]
        dup[np.arange(b), np.arange(b)] = False
        s[dup] = -np.inf
    if case.get("score_mask") is not None:
        s[~case["score_mask"]] = -np.inf
    return s


def _check_no_near_ties(case):
    """Reject hard-negative cases whose k-th/(k+1)-th negatives nearly tie."""
    k = case.get("num_hard_negatives")
    if k is None:
        return
    s = _reference_logits(case)
    for i, row in enumerate(s):
        neg = np.sort(np.delete(row, i)[np.isfinite(np.delete(row, i))])[::-1]
        if neg.size > k and neg[k - 1] - neg[k] < TIE_MARGIN:
            raise ValueError(f"{case['id']}: near tie in row {i}")


def _worked_example():
    """The B=4, N=6 example of the reference notes (stored decimal values)."""
    q = np.array(
        [
            [0.6479, 0.4693, -0.643],
            [-1.1783, -0.1447, 1.2035],
            [1.3336, 0.9083, 0.3466],
            [1.6, 1.2328, -0.2203],
        ]
    )
    c = np.array(
        [
            [-1.062, -0.3646, -0.42],
            [0.6875, -1.8991, -0.1914],
            [1.6712, -0.9203, -0.7585],
            [-0.0843, -1.4178, -0.1296],
            [-0.0157, -0.0047, -0.9885],
            [-0.3658, 0.6538, -0.7146],
        ]
    )
    return {
        "q": q,
        "c": c,
        "candidate_ids": np.array([10, 11, 12, 10, 13, 11]),
        "candidate_sampling_probability": np.array([0.02, 0.1, 0.05, 0.02, 0.0, 0.1]),
        "sample_weight": np.array([1.0, 0.5, 2.0, 0.25]),
        "temperature": 0.5,
    }


def build_cases(rng):
    """Return the list of deterministic cases (dicts of numpy arrays)."""
    cases = []

    def add(cid, comment, b, n, d, *, unit=False, **opts):
        q, c = _emb(rng, b, d, unit=unit), _emb(rng, n, d, unit=unit)
        cases.append({"id": cid, "comment": comment, "q": q, "c": c, **opts})

    def mask(b, n, frac):
        return _diag_kept_mask(rng, b, n, frac)

    def unif(lo, hi, size):
        return rng.uniform(lo, hi, size).astype(np.float32)

    # fmt: off
    add("inbatch_b1_n3", "single query, two extra negatives", 1, 3, 2)
    add("inbatch_b4", "plain in-batch softmax, N = B", 4, 4, 3)
    add("inbatch_b8_d8", "plain in-batch softmax, N = B", 8, 8, 8)
    add("extra_neg_b3_n7", "four shared extra negatives", 3, 7, 5)
    add("extra_neg_b5_n16", "eleven shared extra negatives", 5, 16, 4)
    add("temp_0.05_unit", "unit-norm embeddings, temperature 0.05", 6, 10, 4, unit=True,
        temperature=0.05)
    add("temp_0.5", "temperature 0.5, in-batch", 4, 4, 3, temperature=0.5)
    add("temp_2.0_extra", "temperature 2.0 with extra negatives", 5, 9, 6, temperature=2.0)

    p = np.array([0.2, 0.0, 3e-7, 1.0, 0.05, 1e-6, 0.5, 2e-3], dtype=np.float32)
    add("logq_mixed", "p = 0 and p < 1e-6 clip to 1e-6; p = 1 adds nothing", 4, 8, 3,
        candidate_sampling_probability=p)
    add("logq_all_one", "p = 1 everywhere: no correction", 3, 5, 4,
        candidate_sampling_probability=np.ones(5, np.float32))
    p = unif(1e-4, 0.3, 7)
    p[[1, 4]] = 0.0, 5e-9
    add("logq_temp_0.5", "logQ after temperature; not divided by it", 5, 7, 3,
        candidate_sampling_probability=p, temperature=0.5)

    add("ids_inbatch_dups", "in-batch duplicate ids are masked symmetrically", 6, 6, 4,
        candidate_ids=np.array([3, 7, 3, 1, 7, 3]))
    add("ids_extra_equals_positive", "extra negatives carrying a positive's id", 4, 9, 3,
        candidate_ids=np.array([10, 11, 12, 13, 11, 20, 10, 21, 13]))
    add("ids_unique", "unique ids: removal active but masks nothing", 4, 6, 2,
        candidate_ids=np.arange(100, 106))
    add("ids_all_same", "every negative is an accidental hit: loss 0", 2, 2, 3,
        candidate_ids=np.array([5, 5]))

    add("mask_random", "score_mask with off-diagonal False entries", 5, 8, 4,
        score_mask=mask(5, 8, 0.3))
    m = mask(4, 6, 0.2)
    m[1] = False
    m[1, 1] = True
    add("mask_row_only_positive", "row 1 keeps only its positive: its loss is 0", 4, 6, 3,
        score_mask=m)

    add("hn_k1", "one hard negative", 6, 10, 5, num_hard_negatives=1)
    add("hn_k2_inbatch", "two hard negatives, N = B", 4, 4, 3, num_hard_negatives=2)
    add("hn_k_n_minus_1", "k = N - 1 keeps every column", 5, 8, 4, num_hard_negatives=7)
    add("hn_k_n_plus_3", "k > N - 1 keeps every column", 3, 5, 2, num_hard_negatives=8)

    add("weights_with_zeros", "sample weights including zeros (SUM reduction)", 6, 6, 3,
        sample_weight=np.array([1.0, 0.0, 2.5, 0.25, 0.0, 1.5], dtype=np.float32))

    p = unif(1e-3, 0.2, 14)
    p[[2, 11]] = 0.0, 1.0
    add("combo_t0.5_logq_ids_mask_hn2_w", "everything together, k = 2", 8, 14, 6,
        temperature=0.5, candidate_sampling_probability=p,
        candidate_ids=np.array([0, 1, 2, 1, 4, 5, 0, 7, 8, 2, 10, 5, 12, 13]),
        score_mask=mask(8, 14, 0.15), num_hard_negatives=2, sample_weight=unif(0, 2, 8))
    w = unif(0, 3, 7)
    w[3] = 0.0
    add("combo_t0.05_logq_ids_hn3_w", "unit-norm, temperature 0.05, logQ, ids, k = 3",
        7, 12, 8, unit=True, temperature=0.05, candidate_sampling_probability=unif(1e-5, 0.1, 12),
        candidate_ids=np.array([4, 9, 4, 2, 8, 1, 3, 9, 6, 2, 1, 0]), num_hard_negatives=3,
        sample_weight=w)
    m = np.ones((4, 4), dtype=bool)
    m[0, [2, 3]] = False
    m[2, 0] = False
    add("combo_ids_mask_hn1_row_all_masked",
        "row 0 loses col 1 to ids and cols 2-3 to the mask; k = 1", 4, 4, 3,
        candidate_ids=np.array([1, 1, 2, 3]), score_mask=m, num_hard_negatives=1)

    ids = rng.integers(0, 80, 96)
    ids[70:75] = ids[[3, 10, 20, 30, 40]]
    p = unif(1e-5, 0.05, 96)
    p[::17] = 0.0
    w = unif(0, 2, 64)
    w[::9] = 0.0
    add("large_b64_n96", "B=64, N=96, D=16: temperature 0.1, logQ, ids, mask, k = 10",
        64, 96, 16, unit=True, temperature=0.1, candidate_sampling_probability=p,
        candidate_ids=ids, score_mask=mask(64, 96, 0.05), num_hard_negatives=10,
        sample_weight=w)
    # fmt: on

    ex = _worked_example()
    cases.append({"id": "worked_example", "comment": WORKED, **ex})
    cases.append(
        {
            "id": "worked_example_hn2",
            "comment": WORKED + ", num_hard_negatives=2",
            **ex,
            "num_hard_negatives": 2,
        }
    )
    return cases


# ----------------------------------------------------------------------------- TFRS


def run_tfrs(case, dtype):
    """Return (loss, grad_q, grad_c) from tfrs.tasks.Retrieval in ``dtype``."""
    tf.keras.backend.set_floatx(dtype)
    task = tfrs.tasks.Retrieval(
        temperature=case.get("temperature"),
        num_hard_negatives=case.get("num_hard_negatives"),
        remove_accidental_hits=case.get("candidate_ids") is not None,
    )
    q = tf.constant(case["q"].astype(dtype))
    c = tf.constant(case["c"].astype(dtype))
    kw = {"compute_metrics": False}
    for name in ("sample_weight", "candidate_sampling_probability"):
        if case.get(name) is not None:
            kw[name] = tf.constant(case[name].astype(dtype))
    if case.get("candidate_ids") is not None:
        kw["candidate_ids"] = tf.constant(case["candidate_ids"].astype(np.int64))
    if case.get("score_mask") is not None:
        kw["score_mask"] = tf.constant(case["score_mask"])
    with tf.GradientTape() as tape:
        tape.watch([q, c])
        loss = task(q, c, **kw)
    gq, gc = tape.gradient(loss, [q, c])
    tf.keras.backend.set_floatx("float32")
    assert loss.dtype == tf.as_dtype(dtype)
    return loss.numpy(), gq.numpy(), gc.numpy()


def _arr(a, kind=float):
    """Serialise an array as {"shape", "data"} with exact Python scalars."""
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [kind(x) for x in a.ravel().tolist()]}


def _record(case):
    """Evaluate one case with TFRS and return its JSON record."""
    _check_no_near_ties(case)
    loss64, gq, gc = run_tfrs(case, "float64")
    loss32, _, _ = run_tfrs(case, "float32")
    inputs = {"query_embeddings": _arr(case["q"]), "candidate_embeddings": _arr(case["c"])}
    for name in ("sample_weight", "candidate_sampling_probability"):
        if case.get(name) is not None:
            inputs[name] = _arr(case[name])
    if case.get("candidate_ids") is not None:
        inputs["candidate_ids"] = _arr(case["candidate_ids"], int)
    if case.get("score_mask") is not None:
        inputs["score_mask"] = _arr(case["score_mask"], bool)
    return {
        "id": case["id"],
        "comment": case["comment"],
        "inputs": inputs,
        "options": {
            "temperature": case.get("temperature"),
            "num_hard_negatives": case.get("num_hard_negatives"),
        },
        "tfrs_float64": {
            "loss": float(loss64),
            "grad_query_embeddings": _arr(gq),
            "grad_candidate_embeddings": _arr(gc),
        },
        "tfrs_float32": {"loss": float(loss32)},
    }


def main() -> int:
    """Build all cases, evaluate them with TFRS and write the JSON file."""
    _install_labels_cast()
    rng = np.random.Generator(np.random.PCG64(SEED))
    records = [_record(case) for case in build_cases(rng)]
    doc = {
        "generator": {
            "tensorflow": tf.__version__,
            "tensorflow_recommenders": version("tensorflow-recommenders"),
            "tf_keras": version("tf-keras"),
            "numpy": np.__version__,
            "seed": SEED,
            "script": "tests/tfrs/generate_tfrs_parity.py",
        },
        "cases": records,
    }
    OUT.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    for r in records:
        print(
            f"{r['id']:40s} f64={r['tfrs_float64']['loss']!r:24} f32={r['tfrs_float32']['loss']!r}"
        )
    print(f"wrote {len(records)} cases to {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
