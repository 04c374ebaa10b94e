"""Record ``tests/data/contrastive_peers.json``: contrastive losses of three PyTorch libraries.

This script is not a test. It needs PyTorch and the three libraries below, which the
project environment does not have; install them in a separate environment and run it
from the repository root::

    python3 -m venv /tmp/peervenv
    /tmp/peervenv/bin/pip install torch==2.13.0 open-clip-torch==3.3.0 \\
        pytorch-metric-learning==2.9.0 sentence-transformers==6.2.0
    /tmp/peervenv/bin/pip uninstall -y torchvision   # see "open_clip" below
    /tmp/peervenv/bin/python tests/contrastive/record_contrastive_peers.py

The libraries are imported inside :func:`main`, so importing this module (pytest collects
doctests from every module under ``tests``) does not need them. Running the script twice
writes byte-identical output.

What is recorded (everything in float64; every input the loss is differentiable in is a
leaf tensor with ``requires_grad``; ``grads`` are ``torch.autograd`` gradients of the
scalar loss with respect to each of them, named after refloss's arguments):

* open_clip ``ClipLoss`` (``world_size=1``), called as its training code calls it:
  ``loss_fn(image_features, text_features, logit_scale)`` with ``logit_scale`` the
  multiplier (open_clip passes ``logit_scale.exp()``; the gradient recorded is the one
  with respect to the multiplier). Label-smoothing cases take the logits and labels
  from the same object (``get_logits``, ``get_ground_truth``) and average
  ``torch.nn.functional.cross_entropy(..., label_smoothing=0.1)`` of the row and the
  column logits, as ``ClipLoss.forward`` does without smoothing.
* open_clip ``SigLipLoss`` (``world_size=1``):
  ``loss_fn(image_features, text_features, logit_scale, logit_bias)``, the scale again
  the multiplier.
* pytorch-metric-learning ``NTXentLoss(temperature=t)`` on ``cat([view_a, view_b])``
  with labels ``cat([arange(B), arange(B)])``, and ``SupConLoss(temperature=t)`` on
  labelled embeddings. Both use cosine similarity (they normalise internally). The
  loss is evaluated with the float temperature; the temperature gradient comes from a
  second evaluation with the temperature a 0-D float64 tensor, whose loss is checked to
  be the same number.
* sentence-transformers ``MultipleNegativesRankingLoss`` and
  ``MultipleNegativesSymmetricRankingLoss`` (scale 20, cosine similarity), through
  their embedding-level entry point ``compute_loss_from_embeddings([anchors,
  positives(, negatives)], labels=None)``; the model passed to the constructor is a
  placeholder that this entry point never calls.

open_clip: the torchvision wheel that pip resolves for torch 2.13 here is built
against the CUDA build of torch and fails to load with the CPU wheel, and
``import open_clip`` imports torchvision. ``open_clip/loss.py`` imports only torch, so
the recorder executes that file of the installed distribution as a standalone module
(the package ``__init__`` is not run). With torchvision uninstalled
sentence-transformers imports normally. The SHA-256 of every peer source file that
defines a recorded loss is stored in the header.

Inputs are float32 standard normals from ``numpy.random.default_rng(SEED)`` stored
exactly as float64. "unit" inputs are the float64 rows of
``torch.nn.functional.normalize`` applied to such draws, stored exactly (the shortest
repr of a float64 round-trips). Scales, biases and temperatures are float64 numbers
stored exactly. JSON has no NaN or infinity: non-finite numbers would be stored as the
strings ``"nan"``, ``"inf"`` and ``"-inf"`` (none occur).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

SEED = 20260412  # NumPy default_rng seed for every input
OUT = Path(__file__).resolve().parents[1] / "data" / "contrastive_peers.json"
SCRIPT = "tests/contrastive/record_contrastive_peers.py"

torch = None  # set by main()
F = None
PEERS = {}  # set by main(): the loss classes


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
    if torch is not None and isinstance(a, torch.Tensor):
        a = a.detach().numpy()
    a = np.asarray(a)
    conv = _num if kind is float else kind
    return {"shape": list(a.shape), "data": [conv(x) for x in a.ravel().tolist()]}


# ----------------------------------------------------------------------------- peers


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _site_file(package, relative):
    """Path of a file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    return Path(spec.submodule_search_locations[0]) / relative


def _load_open_clip_loss():
    """Execute the installed ``open_clip/loss.py`` as a standalone module."""
    path = _site_file("open_clip", "loss.py")
    spec = importlib.util.spec_from_file_location("open_clip_loss_standalone", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCES = {
    "open_clip": ("open_clip", "loss.py"),
    "pml_ntxent": ("pytorch_metric_learning", "losses/ntxent_loss.py"),
    "pml_supcon": ("pytorch_metric_learning", "losses/supcon_loss.py"),
    "pml_generic_pair": ("pytorch_metric_learning", "losses/generic_pair_loss.py"),
    "st_mnrl": (
        "sentence_transformers",
        "sentence_transformer/losses/multiple_negatives_ranking.py",
    ),
    "st_mnsrl": (
        "sentence_transformers",
        "sentence_transformer/losses/multiple_negatives_symmetric_ranking.py",
    ),
}


def _import_peers():
    oc = _load_open_clip_loss()
    from pytorch_metric_learning.losses import NTXentLoss, SupConLoss
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking import (
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_symmetric_ranking import (  # noqa: E501
        MultipleNegativesSymmetricRankingLoss,
    )

    PEERS.update(
        ClipLoss=oc.ClipLoss,
        SigLipLoss=oc.SigLipLoss,
        NTXentLoss=NTXentLoss,
        SupConLoss=SupConLoss,
        MNRL=MultipleNegativesRankingLoss,
        MNSRL=MultipleNegativesSymmetricRankingLoss,
    )


# ----------------------------------------------------------------------------- evaluation


def _leaf(a):
    return torch.tensor(np.asarray(a, np.float64), dtype=torch.float64, requires_grad=True)


def _grads(loss, leaves):
    """autograd gradients of ``loss`` w.r.t. the named leaves (zeros where unused)."""
    names = list(leaves)
    got = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
    out = {}
    for n, g in zip(names, got, strict=True):
        out[n] = torch.zeros_like(leaves[n]) if g is None else g
    return out


def _clip(x, p):
    img, txt, scale = (
        _leaf(x["image_embeddings"]),
        _leaf(x["text_embeddings"]),
        _leaf(p["logit_scale"]),
    )
    loss_fn = PEERS["ClipLoss"](world_size=1)
    smoothing = p.get("label_smoothing", 0.0)
    if smoothing == 0.0:
        loss = loss_fn(img, txt, scale)
        assert torch.equal(loss, loss_fn(img, txt, scale, output_dict=True)["contrastive_loss"])
    else:
        per_image, per_text = loss_fn.get_logits(img, txt, scale)
        labels = loss_fn.get_ground_truth(img.device, per_image.shape[0])
        loss = (
            F.cross_entropy(per_image, labels, label_smoothing=smoothing)
            + F.cross_entropy(per_text, labels, label_smoothing=smoothing)
        ) / 2
    leaves = {"image_embeddings": img, "text_embeddings": txt, "logit_scale": scale}
    return loss, _grads(loss, leaves)


def _siglip(x, p):
    img, txt = _leaf(x["image_embeddings"]), _leaf(x["text_embeddings"])
    scale, bias = _leaf(p["logit_scale"]), _leaf(p["logit_bias"])
    loss = PEERS["SigLipLoss"](world_size=1)(img, txt, scale, bias)
    leaves = {
        "image_embeddings": img,
        "text_embeddings": txt,
        "logit_scale": scale,
        "logit_bias": bias,
    }
    return loss, _grads(loss, leaves)


def _with_tensor_temperature(run, p):
    """Loss with the float temperature; temperature gradient from a 0-D tensor run."""
    loss, leaves = run(p["temperature"])
    grads = _grads(loss, leaves)
    tau = _leaf(p["temperature"])
    loss_t, _ = run(tau)
    assert loss_t.item() == loss.item(), (loss_t.item(), loss.item())
    (g_tau,) = torch.autograd.grad(loss_t, [tau], allow_unused=True)
    grads["temperature"] = torch.zeros_like(tau) if g_tau is None else g_tau
    return loss, grads


def _ntxent(x, p):
    def run(tau):
        a, b = _leaf(x["view_a"]), _leaf(x["view_b"])
        n = a.shape[0]
        embeddings = torch.cat([a, b])
        labels = torch.cat([torch.arange(n), torch.arange(n)])
        loss = PEERS["NTXentLoss"](temperature=tau)(embeddings, labels)
        return loss, {"view_a": a, "view_b": b}

    return _with_tensor_temperature(run, p)


def _supcon(x, p):
    labels = torch.tensor(np.asarray(x["labels"], np.int64))

    def run(tau):
        e = _leaf(x["embeddings"])
        loss = PEERS["SupConLoss"](temperature=tau)(e, labels)
        return loss, {"embeddings": e}

    return _with_tensor_temperature(run, p)


def _mnrl(x, p, symmetric):
    names = [n for n in ("anchors", "positives", "negatives") if n in x]
    leaves = {n: _leaf(x[n]) for n in names}
    cls = PEERS["MNSRL"] if symmetric else PEERS["MNRL"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # MNSRL is deprecated
        loss_fn = cls(torch.nn.Identity(), scale=p["scale"])
    loss = loss_fn.compute_loss_from_embeddings([leaves[n] for n in names], None)
    return loss, _grads(loss, leaves)


RUNNERS = {
    "clip": _clip,
    "siglip": _siglip,
    "ntxent": _ntxent,
    "supcon": _supcon,
    "mnrl": lambda x, p: _mnrl(x, p, False),
    "mnsrl": lambda x, p: _mnrl(x, p, True),
}

ENTRY = {
    "clip": "open_clip.loss.ClipLoss(world_size=1)(image_features, text_features, logit_scale)",
    "clip_ls": "(F.cross_entropy(L_img, y, label_smoothing=s) + F.cross_entropy(L_txt, y, "
    "label_smoothing=s)) / 2 with (L_img, L_txt) = ClipLoss(world_size=1).get_logits(image, "
    "text, logit_scale), y = ClipLoss.get_ground_truth(device, B)",
    "siglip": "open_clip.loss.SigLipLoss(world_size=1)(image_features, text_features, "
    "logit_scale, logit_bias)",
    "ntxent": "pytorch_metric_learning.losses.NTXentLoss(temperature=t)(cat([view_a, view_b]), "
    "cat([arange(B), arange(B)]))",
    "supcon": "pytorch_metric_learning.losses.SupConLoss(temperature=t)(embeddings, labels)",
    "mnrl": "sentence_transformers.sentence_transformer.losses.MultipleNegativesRankingLoss("
    "model, scale=20.0).compute_loss_from_embeddings([anchors, positives(, negatives)], None)",
    "mnsrl": "sentence_transformers.sentence_transformer.losses."
    "MultipleNegativesSymmetricRankingLoss(model, scale=20.0).compute_loss_from_embeddings("
    "[anchors, positives(, negatives)], None)",
}

PEER_OF = {
    "clip": "open_clip",
    "siglip": "open_clip",
    "ntxent": "pytorch-metric-learning",
    "supcon": "pytorch-metric-learning",
    "mnrl": "sentence-transformers",
    "mnsrl": "sentence-transformers",
}


# ----------------------------------------------------------------------------- cases


class _Builder:
    """Draws the inputs of the cases from one NumPy generator, in a fixed order."""

    def __init__(self, rng):
        self.rng = rng
        self.cases = []

    def normal(self, *shape):
        return self.rng.standard_normal(shape, dtype=np.float32).astype(np.float64)

    def unit(self, *shape):
        x = torch.tensor(self.normal(*shape), dtype=torch.float64)
        return F.normalize(x, p=2, dim=1).numpy()

    def draw(self, unit, *shape):
        return self.unit(*shape) if unit else self.normal(*shape)

    def add(self, cid, kind, comment, *, unit, inputs, params, flag=None):
        self.cases.append(
            {
                "id": cid,
                "kind": kind,
                "comment": comment,
                "unit_norm_inputs": unit,
                "flag": flag,
                "inputs": inputs,
                "params": params,
            }
        )


def build_cases(rng):
    """Every case, inputs drawn in a fixed order from ``rng``."""
    bld = _Builder(rng)
    inv007 = 1.0 / 0.07

    # open_clip ClipLoss
    for cid, unit, b, d, scale, comment in (
        ("clip_unit_scale_1_over_0.07", True, 6, 8, inv007, "unit-norm features, CLIP's init"),
        ("clip_unit_scale_100", True, 5, 7, 100.0, "unit-norm features, open_clip's clamp"),
        ("clip_raw_scale_1_over_0.07", False, 6, 5, inv007, "features not normalised"),
        ("clip_raw_scale_2", False, 4, 6, 2.0, "features not normalised, small scale"),
    ):
        bld.add(
            cid,
            "clip",
            comment,
            unit=unit,
            inputs={
                "image_embeddings": bld.draw(unit, b, d),
                "text_embeddings": bld.draw(unit, b, d),
            },
            params={"logit_scale": scale},
        )
    for cid, unit, b, d, scale, comment in (
        ("clip_label_smoothing_0.1_unit", True, 6, 8, inv007, "unit-norm features"),
        ("clip_label_smoothing_0.1_raw", False, 5, 6, 2.0, "features not normalised"),
    ):
        bld.add(
            cid,
            "clip",
            "torch cross_entropy label_smoothing=0.1 over ClipLoss's row and column logits, "
            + comment,
            unit=unit,
            inputs={
                "image_embeddings": bld.draw(unit, b, d),
                "text_embeddings": bld.draw(unit, b, d),
            },
            params={"logit_scale": scale, "label_smoothing": 0.1},
        )

    # open_clip SigLipLoss
    for cid, unit, b, d, scale, bias, comment in (
        ("siglip_unit_scale_10_bias_-10", True, 6, 8, 10.0, -10.0, "SigLIP's initialisation"),
        ("siglip_unit_scale_3_bias_0.5", True, 5, 7, 3.0, 0.5, "unit-norm features"),
        ("siglip_raw_scale_3_bias_0.5", False, 4, 5, 3.0, 0.5, "features not normalised"),
    ):
        bld.add(
            cid,
            "siglip",
            comment,
            unit=unit,
            inputs={
                "image_embeddings": bld.draw(unit, b, d),
                "text_embeddings": bld.draw(unit, b, d),
            },
            params={"logit_scale": scale, "logit_bias": bias},
        )

    # pytorch-metric-learning NTXentLoss
    for cid, unit, b, d, tau in (
        ("ntxent_unit_tau_0.1", True, 5, 6, 0.1),
        ("ntxent_unit_tau_0.5", True, 4, 8, 0.5),
        ("ntxent_raw_tau_0.1", False, 6, 5, 0.1),
        ("ntxent_raw_tau_0.5", False, 4, 7, 0.5),
    ):
        bld.add(
            cid,
            "ntxent",
            ("unit-norm" if unit else "non-normalised") + " views; the peer normalises",
            unit=unit,
            inputs={"view_a": bld.draw(unit, b, d), "view_b": bld.draw(unit, b, d)},
            params={"temperature": tau},
        )

    # pytorch-metric-learning SupConLoss
    labels8 = [0, 1, 0, 2, 1, 0, 3, 2]  # label 0: 3 members; 1, 2: 2; 3: 1 (no positive)
    for cid, unit, labels, d, flag, comment in (
        ("supcon_unit_tau_0.1", True, labels8, 6, None, "anchor 6 has no positive"),
        ("supcon_raw_tau_0.1", False, labels8, 6, None, "anchor 6 has no positive"),
        (
            "supcon_raw_tau_0.1_two_singletons",
            False,
            [2, 0, 5, 2, 0, 2, 7],
            5,
            None,
            "anchors 2 and 6 have no positive",
        ),
        (
            "supcon_no_positive_pair",
            False,
            [0, 1, 2, 3, 4, 5],
            5,
            "no_positive",
            "every label distinct: no anchor has a positive",
        ),
        (
            "supcon_no_negative_pair",
            False,
            [4, 4, 4, 4, 4],
            6,
            "no_negative",
            "every label equal: no anchor has a negative",
        ),
    ):
        bld.add(
            cid,
            "supcon",
            comment,
            unit=unit,
            flag=flag,
            inputs={"embeddings": bld.draw(unit, len(labels), d), "labels": list(labels)},
            params={"temperature": 0.1},
        )

    # sentence-transformers MNRL / MNSRL
    for kind in ("mnrl", "mnsrl"):
        for cid, b, d, hard in (
            (f"{kind}_pairs", 5, 6, False),
            (f"{kind}_hard_negatives", 4, 7, True),
        ):
            inputs = {"anchors": bld.normal(b, d), "positives": bld.normal(b, d)}
            if hard:
                inputs["negatives"] = bld.normal(b, d)
            bld.add(
                cid,
                kind,
                "(anchor, positive, hard negative) triplets" if hard else "(anchor, positive)",
                unit=False,
                inputs=inputs,
                params={"scale": 20.0},
            )
    return bld.cases


# ----------------------------------------------------------------------------- records


def _record(case):
    kind = case["kind"]
    x, p = case["inputs"], case["params"]
    loss, grads = RUNNERS[kind](x, p)
    assert loss.dtype == torch.float64
    assert loss.ndim == 0
    entry = ENTRY["clip_ls" if "label_smoothing" in p else kind]
    inputs = {}
    for name, v in x.items():
        inputs[name] = _arr(v, int) if name == "labels" else _arr(v)
    rec = {k: case[k] for k in ("id", "kind", "comment", "unit_norm_inputs", "flag")}
    rec.update(peer=PEER_OF[kind], entry=entry, params=p, inputs=inputs)
    rec["peer_output"] = {
        "loss": _num(loss.item()),
        "grads": {n: _arr(g) for n, g in grads.items()},
    }
    return rec


def main() -> int:
    """Build the cases, evaluate the peers and write the JSON file."""
    global torch, F
    import torch as _torch
    import torch.nn.functional as _F

    torch, F = _torch, _F
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    _import_peers()

    rng = np.random.default_rng(SEED)
    records = [_record(c) for c in build_cases(rng)]
    version = importlib.metadata.version
    doc = {
        "generator": {
            "open_clip_torch": version("open_clip_torch"),
            "pytorch_metric_learning": version("pytorch-metric-learning"),
            "sentence_transformers": version("sentence-transformers"),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "command": f"python {SCRIPT}",
            "seed": SEED,
            "sources_sha256": {
                f"{pkg}/{rel}": _sha256(_site_file(pkg, rel)) for pkg, rel in SOURCES.values()
            },
            "open_clip_import": "open_clip/loss.py executed as a standalone module (the "
            "package __init__ imports torchvision, which is not installed)",
            "dtype": "float64 throughout",
            "inputs": "float32-representable values from numpy default_rng(seed) standard "
            "normals, stored exactly as float64; unit-norm inputs are the float64 rows of "
            "torch.nn.functional.normalize of such draws, stored exactly; scales, biases and "
            "temperatures are float64 numbers stored exactly",
            "non_finite": 'JSON has no NaN or infinity: stored as "nan", "inf", "-inf"',
            "gradients": "torch.autograd.grad of the scalar loss w.r.t. every float64 leaf "
            "(embeddings, logit_scale as the multiplier, logit_bias, temperature); an input "
            "the loss does not reach gets zeros",
        },
        "cases": records,
    }
    OUT.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    for r in records:
        g = r["peer_output"]["grads"]
        gmax = max(max((abs(v) for v in a["data"]), default=0.0) for a in g.values())
        print(f"{r['id']:36s} loss={r['peer_output']['loss']!r:24s} max|grad|={gmax:.3e}")
    print(f"wrote {len(records)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
