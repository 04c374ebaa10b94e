"""Record ``tests/data/tf_sampled_parity.json``: TensorFlow sampled-loss and sampler outputs.

This script is not a test. It needs TensorFlow 2.21, which the project environment
does not have; install it in a separate environment and run it from the repository
root::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python tests/tf/record_tf_sampled.py

TensorFlow is imported inside :func:`main`, so importing this module (pytest collects
doctests from every module under ``tests``) does not need it.

What is recorded:

* ``loss_cases``: ``tf.nn.sampled_softmax_loss`` and ``tf.nn.nce_loss`` with fixed
  ``sampled_values=(sampled, true_expected_count, sampled_expected_count)``. Float64
  cases pass float64 weights, biases, inputs and expected counts (the samplers return
  float32 counts; they are cast, which is exact) and record the per-example loss vector
  (TensorFlow applies no reduction) with GradientTape gradients of the sum of that
  vector with respect to the weights (``IndexedSlices`` densified), biases and inputs.
  Float32 cases record the loss vector only. Two kinds of case carry a ``flag``:

  - ``duplicate_sampled_id``: a sampled id occurs twice and is a row's label;
    TensorFlow masks only the last copy. These also record the logits and labels of
    ``nn_impl._compute_sampled_logits`` (``subtract_log_q=True``,
    ``remove_accidental_hits=True``), which show the masked position.
  - ``zero_expected_count``: one sampled expected count is 0.0; TensorFlow's loss is
    not finite.

* ``sampler_cases``: ``tf.random.uniform_candidate_sampler``,
  ``log_uniform_candidate_sampler`` and ``fixed_unigram_candidate_sampler`` with fixed
  seeds: sampled ids and the float32 expected counts. TensorFlow does not return the
  number of draws of a ``unique=True`` sampler; the recorder fits it (``num_tries_fit``,
  informational) with a float32 emulation of the expected-count formula.

Inputs are float32 values drawn from ``numpy.random.default_rng(SEED)`` and stored
exactly as float64, except the hand-chosen float64 expected counts, which are stored
exactly as float64 as well. JSON has no NaN or infinity: non-finite numbers are
stored as the strings ``"nan"``, ``"inf"`` and ``"-inf"``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

SEED = 20250321  # NumPy default_rng seed for every input
TF_GLOBAL_SEED = 1234  # tf.random.set_seed immediately before every sampler call
OUT = Path(__file__).resolve().parents[1] / "data" / "tf_sampled_parity.json"
SCRIPT = "tests/tf/record_tf_sampled.py"
FLT_MAX = float(np.finfo(np.float32).max)

tf = None  # set by main()
nn_impl = None


# ----------------------------------------------------------------------------- encoding


def _num(x):
    """A JSON number, or "nan" / "inf" / "-inf" for a non-finite value."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _arr(a, kind=float):
    """Serialise an array as {"shape", "data"} with exact Python scalars."""
    a = np.asarray(a)
    conv = _num if kind is float else kind
    return {"shape": list(a.shape), "data": [conv(x) for x in a.ravel().tolist()]}


# ----------------------------------------------------------------------------- samplers


def _sampler(kind, true_classes, num_sampled, unique, range_max, seed, unigrams=None):
    """Run one TensorFlow candidate sampler; return numpy (sampled, tec, sec)."""
    true_classes = tf.constant(np.asarray(true_classes, np.int64))
    num_true = int(true_classes.shape[1])
    common = {
        "true_classes": true_classes,
        "num_true": num_true,
        "num_sampled": num_sampled,
        "unique": unique,
        "range_max": range_max,
        "seed": seed,
    }
    if kind == "uniform":
        out = tf.random.uniform_candidate_sampler(**common)
    elif kind == "log_uniform":
        out = tf.random.log_uniform_candidate_sampler(**common)
    elif kind == "unigram":
        out = tf.random.fixed_unigram_candidate_sampler(
            **common, distortion=0.75, unigrams=list(unigrams)
        )
    else:
        raise ValueError(kind)
    sampled, tec, sec = (t.numpy() for t in out)
    assert sampled.dtype == np.int64
    assert tec.dtype == sec.dtype == np.float32
    return sampled, tec, sec


def _probability32(kind, ids, range_max, unigrams=None):
    """Float32 emulation of the sampler probabilities (used only to fit num_tries)."""
    ids = np.asarray(ids, np.float64)
    if kind == "uniform":
        return np.full(ids.shape, np.float32(1.0 / range_max), np.float32)
    if kind == "log_uniform":
        return (np.log((ids + 2.0) / (ids + 1.0)) / np.log1p(range_max)).astype(np.float32)
    w = np.power(np.asarray(unigrams, np.float64), 0.75).astype(np.float32)
    total = np.float32(0.0)
    for v in w:  # float32 running sum
        total = np.float32(total + v)
    return (w / total).astype(np.float32)[ids.astype(np.int64)]


def _probability64(kind, ids, range_max, unigrams=None):
    """Float64 sampler probabilities (diagnostic only)."""
    ids = np.asarray(ids, np.float64)
    if kind == "uniform":
        return np.full(ids.shape, 1.0 / range_max)
    if kind == "log_uniform":
        return np.log((ids + 2.0) / (ids + 1.0)) / np.log1p(range_max)
    w = np.power(np.asarray(unigrams, np.float64), 0.75)
    return (w / w.sum())[ids.astype(np.int64)]


def _float64_error(case):
    """Max relative gap between TF's float32 counts and the float64 formula (diagnostic)."""
    kind, s, r, u = case["sampler"], case["num_sampled"], case["range_max"], case["unigrams"]
    n = case["num_tries_fit"] or s
    err = 0.0
    for ids, got in ((case["true_classes"], case["_tec"]), (case["_sampled"], case["_sec"])):
        p = _probability64(kind, ids, r, u)
        want = p * s if n == s else -np.expm1(n * np.log1p(-p))
        err = max(err, float(np.max(np.abs(got - want) / want)))
    return err


def _expected32(p, num_sampled, num_tries):
    """Float32 expected counts for a given number of draws (see the notes, section 4.4)."""
    p = np.asarray(p, np.float32)
    if num_tries == num_sampled:
        return (p * np.float32(num_sampled)).astype(np.float32)
    return (-np.expm1(np.float32(num_tries) * np.log1p(-p))).astype(np.float32)


def _fit_num_tries(case):
    """The integer num_tries >= S whose float32 formula best reproduces TF's counts."""
    kind, s, r, u = case["sampler"], case["num_sampled"], case["range_max"], case["unigrams"]
    sampled, sec = case["_sampled"], case["_sec"].astype(np.float64)
    p = _probability32(kind, sampled, r, u)
    best = None
    for n in range(s, 200 * s + 1):
        err = np.max(np.abs(_expected32(p, s, n).astype(np.float64) - sec) / sec)
        if best is None or err < best[1]:
            best = (n, err)
    return best


# ----------------------------------------------------------------------------- losses


def _tf_loss(case, dtype, *, grads):
    """Evaluate one loss case; return (loss, [dW, db, dX] or None)."""
    x = case["inputs"]
    w = tf.constant(x["weights"].astype(dtype))
    b = tf.constant(x["biases"].astype(dtype))
    inp = tf.constant(x["inputs"].astype(dtype))
    labels = tf.constant(x["labels"].astype(np.int64))
    sampled = tf.constant(x["sampled_candidates"].astype(np.int64))
    tec = tf.constant(x["true_expected_count"].astype(dtype))
    sec = tf.constant(x["sampled_expected_count"].astype(dtype))
    fn = tf.nn.sampled_softmax_loss if case["loss"] == "sampled_softmax" else tf.nn.nce_loss
    with tf.GradientTape() as tape:
        tape.watch([w, b, inp])
        loss = fn(
            weights=w,
            biases=b,
            labels=labels,
            inputs=inp,
            num_sampled=int(sampled.shape[0]),
            num_classes=case["num_classes"],
            num_true=int(labels.shape[1]),
            sampled_values=(sampled, tec, sec),
            remove_accidental_hits=case["remove_accidental_hits"],
        )
        total = tf.reduce_sum(loss)
    assert loss.dtype == tf.as_dtype(dtype)
    assert loss.shape == (labels.shape[0],)
    if not grads:
        return loss.numpy(), None
    g = tape.gradient(total, [w, b, inp])
    return loss.numpy(), [tf.convert_to_tensor(t).numpy() for t in g]


def _tf_logits(case):
    """(logits, labels) of TF's private _compute_sampled_logits in float64."""
    x = case["inputs"]
    logits, labels = nn_impl._compute_sampled_logits(
        weights=tf.constant(x["weights"]),
        biases=tf.constant(x["biases"]),
        labels=tf.constant(x["labels"].astype(np.int64)),
        inputs=tf.constant(x["inputs"]),
        num_sampled=int(x["sampled_candidates"].shape[0]),
        num_classes=case["num_classes"],
        num_true=int(x["labels"].shape[1]),
        sampled_values=(
            tf.constant(x["sampled_candidates"].astype(np.int64)),
            tf.constant(x["true_expected_count"]),
            tf.constant(x["sampled_expected_count"]),
        ),
        subtract_log_q=True,
        remove_accidental_hits=True,
        partition_strategy="div",
    )
    return logits.numpy(), labels.numpy()


# ----------------------------------------------------------------------------- cases


class _Builder:
    """Draws the inputs of the loss cases from one NumPy generator."""

    def __init__(self, rng):
        self.rng = rng
        self.cases = []
        self.tf_seed = 100

    def normal(self, *shape):
        return self.rng.standard_normal(shape, dtype=np.float32).astype(np.float64)

    def labels_avoiding(self, b, num_true, num_classes, avoid):
        """(b, num_true) labels, distinct within a row, none in ``avoid``."""
        pool = np.setdiff1d(np.arange(num_classes), np.asarray(avoid))
        return np.stack([self.rng.choice(pool, num_true, replace=False) for _ in range(b)])

    def add(
        self,
        cid,
        comment,
        loss,
        *,
        num_classes,
        d,
        b,
        num_true,
        num_sampled,
        remove,
        hits=(),
        hand_counts=False,
        logit_scale=None,
        dtype="float64",
        flag=None,
        sampled_override=None,
        zero_sampled_count_at=None,
    ):
        """Build one loss case.

        The sampled ids and expected counts come from one unique log-uniform draw (the
        global seed is reset before each call, so a second call with other true classes
        repeats the draw and reports the counts of those classes with the same number of
        tries). Labels avoid the sampled ids, except ``hits``: (row, true position,
        sampled position) sets that label to that sampled id. ``sampled_override``
        replaces the drawn ids; their counts are the ones the same draw reports for them
        as true classes.
        """
        w = self.normal(num_classes, d)
        bias = self.normal(num_classes)
        x = self.normal(b, d)
        self.tf_seed += 1
        seed = self.tf_seed

        def draw(true_classes):
            tf.random.set_seed(TF_GLOBAL_SEED)
            return _sampler("log_uniform", true_classes, num_sampled, True, num_classes, seed)

        sampled, _, sec = draw(np.zeros((b, num_true), np.int64))
        if sampled_override is not None:
            sampled = np.asarray(sampled_override, np.int64)
            sec = draw(sampled[:, None])[1][:, 0]
        labels = self.labels_avoiding(b, num_true, num_classes, sampled)
        for row, t, j in hits:
            labels[row, t] = sampled[j]
        again, tec, _ = draw(labels)
        assert np.array_equal(again, draw(np.zeros((b, num_true), np.int64))[0])
        tec = tec.astype(np.float64)
        sec = sec.astype(np.float64)
        if hand_counts:
            tec = np.exp(self.rng.uniform(math.log(1e-4), math.log(3.0), tec.shape))
            sec = np.exp(self.rng.uniform(math.log(1e-4), math.log(3.0), sec.shape))
            for row, t, j in hits:
                tec[row, t] = sec[j]  # the same id has the same expected count
        if zero_sampled_count_at is not None:
            sec[zero_sampled_count_at] = 0.0
        if logit_scale is not None:
            factor = logit_scale / np.max(np.abs(x @ w.T + bias))
            w = (w * factor).astype(np.float32).astype(np.float64)
            bias = (bias * factor).astype(np.float32).astype(np.float64)
        self.cases.append(
            {
                "id": cid,
                "comment": comment,
                "loss": loss,
                "dtype": dtype,
                "flag": flag,
                "num_classes": num_classes,
                "remove_accidental_hits": remove,
                "counts": (
                    "hand-chosen float64"
                    if hand_counts
                    else f"tf.random.log_uniform_candidate_sampler unique=True seed={seed}"
                ),
                "inputs": {
                    "weights": w,
                    "biases": bias,
                    "inputs": x,
                    "labels": labels.astype(np.int64),
                    "sampled_candidates": sampled.astype(np.int64),
                    "true_expected_count": tec,
                    "sampled_expected_count": sec,
                },
            }
        )


def build_loss_cases(rng):
    """The loss cases, inputs drawn in a fixed order from ``rng``."""
    bld = _Builder(rng)
    # fmt: off
    for loss, remove_default in (("sampled_softmax", True), ("nce", False)):
        p = "ssm" if loss == "sampled_softmax" else "nce"
        bld.add(f"{p}_nt1_unique", "num_true=1, unique sampled ids, no accidental hit",
                loss, num_classes=40, d=6, b=5, num_true=1, num_sampled=8, remove=remove_default)
        bld.add(f"{p}_nt3_unique", "num_true=3, unique sampled ids, no accidental hit",
                loss, num_classes=50, d=8, b=4, num_true=3, num_sampled=10,
                remove=remove_default)
        for remove in (True, False):
            r = "remove" if remove else "keep"
            bld.add(f"{p}_nt1_hits_{r}",
                    f"num_true=1, rows 0, 2, 3 have accidental hits, remove={remove}",
                    loss, num_classes=36, d=6, b=5, num_true=1, num_sampled=9, remove=remove,
                    hits=[(0, 0, 2), (2, 0, 0), (3, 0, 8)])
            bld.add(f"{p}_nt3_hits_{r}",
                    f"num_true=3, hits at (row, true) (0,1), (1,0), (1,2), (4,2), "
                    f"remove={remove}",
                    loss, num_classes=45, d=7, b=6, num_true=3, num_sampled=12, remove=remove,
                    hits=[(0, 1, 3), (1, 0, 0), (1, 2, 7), (4, 2, 11)])
        bld.add(f"{p}_hand_counts_hits_remove",
                "hand-chosen float64 expected counts in [1e-4, 3]; hits removed", loss,
                num_classes=32, d=6, b=5, num_true=2, num_sampled=10, remove=True,
                hand_counts=True, hits=[(1, 0, 4), (3, 1, 9)])
        bld.add(f"{p}_hand_counts_keep",
                "hand-chosen float64 expected counts in [1e-4, 3]; hits kept", loss,
                num_classes=30, d=6, b=4, num_true=1, num_sampled=7, remove=False,
                hand_counts=True, hits=[(2, 0, 1)])
        bld.add(f"{p}_large_logits",
                "weights and biases scaled so that max |logit| is 30; hits removed", loss,
                num_classes=40, d=8, b=6, num_true=1, num_sampled=10, remove=True,
                logit_scale=30.0, hits=[(1, 0, 5)])
        bld.add(f"{p}_float32", "float32 throughout (counts as the sampler returns them)",
                loss, num_classes=40, d=6, b=5, num_true=2, num_sampled=8, remove=True,
                dtype="float32", hits=[(0, 1, 3)])
        bld.add(f"{p}_duplicate_sampled_id",
                "sampled id repeated at positions 1 and 5, label of rows 0 and 3; "
                "TF masks position 5 only", loss,
                num_classes=30, d=6, b=4, num_true=1, num_sampled=8, remove=True,
                flag="duplicate_sampled_id", sampled_override=[0, 4, 11, 2, 7, 4, 19, 1],
                hits=[(0, 0, 5), (3, 0, 1)])
        bld.add(f"{p}_zero_expected_count",
                "sampled_expected_count[2] = 0.0: TF's loss is not finite", loss,
                num_classes=30, d=6, b=4, num_true=1, num_sampled=6, remove=remove_default,
                flag="zero_expected_count", zero_sampled_count_at=2)
    # fmt: on
    return bld.cases


def build_sampler_cases(rng):
    """The sampler cases (true classes drawn from ``rng``)."""
    unigram30 = [int(v) for v in rng.integers(1, 200, 30)]
    unigram40 = [int(v) for v in rng.integers(1, 1000, 40)]
    # fmt: off
    spec = [
        ("uniform_unique_false", "uniform", 50, 8, False, 2, None, "with replacement"),
        ("uniform_unique_true_no_collision", "uniform", 1000, 6, True, 1, None,
         "collisions unlikely: TF reports p*S"),
        ("uniform_unique_true_collisions", "uniform", 30, 20, True, 2, None,
         "num_sampled close to range_max: collisions certain"),
        ("log_uniform_unique_false", "log_uniform", 40, 10, False, 3, None, "with replacement"),
        ("log_uniform_unique_true_no_collision", "log_uniform", 100000, 4, True, 1, None,
         "collisions unlikely: TF reports p*S"),
        ("log_uniform_unique_true_collisions", "log_uniform", 30, 20, True, 2, None,
         "num_sampled close to range_max: collisions certain"),
        ("unigram_unique_false", "unigram", 30, 12, False, 2, unigram30, "with replacement"),
        ("unigram_unique_true_no_collision", "unigram", 40, 3, True, 1, unigram40,
         "collisions unlikely: TF reports p*S"),
        ("unigram_unique_true_collisions", "unigram", 30, 20, True, 3, unigram30,
         "num_sampled close to range_max: collisions certain"),
    ]
    # fmt: on
    cases = []
    for k, (cid, kind, r, s, unique, num_true, uni, comment) in enumerate(spec):
        true_classes = np.stack([rng.choice(r, num_true, replace=False) for _ in range(4)])
        seed = 500 + k
        for _attempt in range(100):
            tf.random.set_seed(TF_GLOBAL_SEED)
            sampled, tec, sec = _sampler(kind, true_classes, s, unique, r, seed, uni)
            case = {
                "id": cid,
                "comment": comment,
                "sampler": kind,
                "range_max": r,
                "num_sampled": s,
                "unique": unique,
                "distortion": 0.75 if kind == "unigram" else None,
                "unigrams": uni,
                "seed": seed,
                "true_classes": true_classes.astype(np.int64),
                "_sampled": sampled,
                "_tec": tec,
                "_sec": sec,
            }
            fit = _fit_num_tries(case) if unique else (s, 0.0)
            # keep the seed whose draw is of the kind the case is named after
            if not unique or ("no_collision" in cid) == (fit[0] == s):
                break
            seed += 100
        else:
            raise RuntimeError(cid)
        case["seed"] = seed
        case["num_tries_fit"] = fit[0] if unique else None
        case["_fit_err"] = fit[1]
        cases.append(case)
    return cases


# ----------------------------------------------------------------------------- records


def _record_loss(case):
    x = case["inputs"]
    rec = {k: case[k] for k in ("id", "comment", "loss", "dtype", "flag", "num_classes")}
    rec["remove_accidental_hits"] = case["remove_accidental_hits"]
    rec["counts"] = case["counts"]
    rec["inputs"] = {k: _arr(v, int if v.dtype.kind == "i" else float) for k, v in x.items()}
    grads = case["dtype"] == "float64" and case["flag"] != "zero_expected_count"
    loss, g = _tf_loss(case, case["dtype"], grads=grads)
    out = {"loss": _arr(loss)}
    if g is not None:
        out.update(grad_weights=_arr(g[0]), grad_biases=_arr(g[1]), grad_inputs=_arr(g[2]))
    if case["flag"] == "duplicate_sampled_id":
        logits, labels = _tf_logits(case)
        out.update(logits=_arr(logits), labels=_arr(labels))
    rec["tf"] = out
    return rec


def _record_sampler(case):
    rec = {
        k: case[k]
        for k in (
            "id",
            "comment",
            "sampler",
            "range_max",
            "num_sampled",
            "unique",
            "distortion",
            "unigrams",
            "seed",
        )
    }
    rec["tf_global_seed"] = TF_GLOBAL_SEED
    rec["true_classes"] = _arr(case["true_classes"], int)
    rec["tf"] = {
        "sampled_candidates": _arr(case["_sampled"], int),
        "true_expected_count": _arr(case["_tec"]),
        "sampled_expected_count": _arr(case["_sec"]),
    }
    rec["num_tries_fit"] = case["num_tries_fit"]
    return rec


def main() -> int:
    """Build the cases, evaluate them with TensorFlow and write the JSON file."""
    global tf, nn_impl
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow
    from tensorflow.python.ops import nn_impl as _nn_impl

    tf, nn_impl = tensorflow, _nn_impl
    rng = np.random.default_rng(SEED)
    loss_records = [_record_loss(c) for c in build_loss_cases(rng)]
    sampler_cases = build_sampler_cases(rng)
    sampler_records = [_record_sampler(c) for c in sampler_cases]
    doc = {
        "generator": {
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "command": f"python {SCRIPT}",
            "seed": SEED,
            "tf_global_seed": TF_GLOBAL_SEED,
            "inputs": "float32-representable values from numpy default_rng(seed) "
            "standard normals, stored exactly as float64; hand-chosen expected counts "
            "are float64 values stored exactly",
            "non_finite": 'JSON has no NaN or infinity: stored as "nan", "inf", "-inf"',
            "gradients": "tf.GradientTape of the sum of the per-example loss vector",
        },
        "loss_cases": loss_records,
        "sampler_cases": sampler_records,
    }
    OUT.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    for r in loss_records:
        print(f"{r['id']:36s} {r['tf']['loss']['data']}")
    for c in sampler_cases:
        print(
            f"{c['id']:36s} sampled={c['_sampled'].tolist()} "
            f"num_tries_fit={c['num_tries_fit']} fit_err={c['_fit_err']:.2e} "
            f"float64_err={_float64_error(c):.2e}"
        )
    print(f"wrote {len(loss_records)} loss and {len(sampler_records)} sampler cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
