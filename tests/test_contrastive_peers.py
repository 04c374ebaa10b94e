"""Parity of refloss's contrastive losses with open_clip, pytorch-metric-learning and
sentence-transformers.

The expected values in ``tests/data/contrastive_peers.json`` were recorded by
``tests/contrastive/record_contrastive_peers.py`` with open_clip_torch 3.3.0,
pytorch-metric-learning 2.9.0 and sentence-transformers 6.2.0 on torch 2.13.0 (CPU), in
float64: each peer's scalar loss and its ``torch.autograd`` gradients with respect to
every input it is differentiable in. None of these libraries is needed to run these
tests. To regenerate the data, install them in a separate environment and run the
recorder from the repository root (see its docstring)::

    /tmp/peervenv/bin/python tests/contrastive/record_contrastive_peers.py

Mappings, each pinned by the tests below:

* open_clip ``ClipLoss(image, text, logit_scale)`` is ``clip_loss`` with the same
  ``logit_scale``: open_clip's loss receives the multiplier (its model stores the log
  and passes ``logit_scale.exp()``), so the recorded scale gradient is the one with
  respect to the multiplier. The label-smoothing cases are torch's
  ``cross_entropy(..., label_smoothing=0.1)`` over the row and the column logits,
  averaged. ``SigLipLoss(image, text, logit_scale, logit_bias)`` is ``siglip_loss``
  (sum over the B x B pairs divided by B). Neither normalises its inputs.
* pytorch-metric-learning ``NTXentLoss`` and ``SupConLoss`` use cosine similarity: they
  normalise the embeddings inside the loss. refloss's similarity is the dot product and
  normalisation is the caller's, so the peers equal refloss on the L2-normalised inputs,
  and their gradients with respect to the raw inputs are refloss's gradients pulled back
  through the normalisation, ``(g - u (u . g)) / |x|`` per row (``u = x / |x|``). This
  holds for the unit-norm cases too: the normalisation still projects out the radial
  component of the gradient. On raw inputs refloss differs: normalising is the caller's choice.
* ``SupConLoss``: an anchor without a positive adds 0 and is left out of the mean (both
  libraries); a batch without any positive pair gives 0 (both). A batch without any
  negative pair gives 0 in pytorch-metric-learning (it skips the loss when no negative
  pair exists), whereas refloss evaluates its formula, whose denominator then holds the
  positives only: that case pins refloss to a direct evaluation of the formula.
* sentence-transformers ``MultipleNegativesRankingLoss`` (6.2.0,
  ``compute_loss_from_embeddings``): cosine similarity times ``scale = 20`` between each
  anchor and every document, documents = ``cat([positives, negatives])`` (hard negatives
  are extra columns shared by every anchor), cross-entropy with anchor i's positive at
  column i, mean over anchors. That is ``retrieval_loss(normalize(anchors),
  normalize(cat([positives, negatives])), temperature=1/20, reduction="mean")``.
  ``MultipleNegativesSymmetricRankingLoss`` is the same class with
  ``directions=("query_to_doc", "doc_to_query")`` and ``partition_mode="per_direction"``:
  the loss is the mean over i of ``-(s_ii - (logZ_fwd_i + logZ_bwd_i) / 2)``, where the
  backward row i is positive i against the B anchors only (``similarity(anchors,
  positives).T``): hard negatives appear in the forward direction only and are never
  rows of the backward direction. That is the average of the forward loss above and
  ``retrieval_loss(normalize(positives), normalize(anchors), temperature=1/20,
  reduction="mean")``. Gradients with respect to the raw embeddings flow through the
  normalisation; they are compared with torch autograd through refloss on torch tensors.

Tolerances: losses to 1e-12 relative, gradients to 1e-10 relative with an absolute
floor of 1e-13 times the largest recorded gradient entry of that input.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refloss

DATA = Path(__file__).parent / "data" / "contrastive_peers.json"
DOC = json.loads(DATA.read_text())
CASES = DOC["cases"]

LOSS_RTOL = 1e-12
GRAD_RTOL = 1e-10
GRAD_ATOL = 1e-13  # times the largest |recorded gradient| of the input
MNRL_TEMPERATURE = 1.0 / 20.0  # sentence-transformers' scale=20


def _array(spec, dtype=np.float64):
    """Rebuild a stored {"shape", "data"} array ("nan", "inf", "-inf" decoded)."""
    data = spec["data"]
    if np.dtype(dtype).kind == "f":
        data = [float(v) for v in data]  # float("nan") / float("inf") decode the strings
    return np.asarray(data, dtype=dtype).reshape(spec["shape"])


def _inputs(case, *names):
    return tuple(_array(case["inputs"][n]) for n in names)


def _labels(case):
    return _array(case["inputs"]["labels"], np.int64)


def _want_loss(case):
    return float(case["peer_output"]["loss"])


def _want_grad(case, name):
    return _array(case["peer_output"]["grads"][name])


def _cases(kind, pred=lambda c: True):
    return [pytest.param(c, id=c["id"]) for c in CASES if c["kind"] == kind and pred(c)]


def _assert_loss(got, case):
    got = np.asarray(got)
    assert got.dtype == np.float64
    assert got.shape == ()
    want = _want_loss(case)
    np.testing.assert_allclose(float(got), want, rtol=LOSS_RTOL, atol=0.0)


def _assert_grad(got, case, name):
    want = _want_grad(case, name)
    got = np.asarray(got)
    assert got.dtype == np.float64, name
    assert got.shape == want.shape, (name, got.shape, want.shape)
    atol = GRAD_ATOL * float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=GRAD_RTOL, atol=atol, err_msg=name)


def _normalize(x):
    """Rows of ``x`` divided by their L2 norms, and the norms (shape (n, 1))."""
    norm = np.sqrt(np.sum(x * x, axis=1, keepdims=True))
    return x / norm, norm


def _pull_back(g, u, norm):
    """Gradient w.r.t. x of a function of u = x / |x|, given its gradient g w.r.t. u."""
    return (g - u * np.sum(u * g, axis=1, keepdims=True)) / norm


CLIP = _cases("clip")
SIGLIP = _cases("siglip")
NTXENT = _cases("ntxent")
NTXENT_UNIT = _cases("ntxent", lambda c: c["unit_norm_inputs"])
NTXENT_RAW = _cases("ntxent", lambda c: not c["unit_norm_inputs"])
SUPCON = _cases("supcon", lambda c: c["flag"] != "no_negative")
SUPCON_RAW = _cases("supcon", lambda c: not c["unit_norm_inputs"] and c["flag"] is None)
SUPCON_WITH_SINGLETONS = _cases("supcon", lambda c: c["flag"] is None)
SUPCON_NO_POSITIVE = _cases("supcon", lambda c: c["flag"] == "no_positive")
SUPCON_NO_NEGATIVE = _cases("supcon", lambda c: c["flag"] == "no_negative")
MNRL = _cases("mnrl") + _cases("mnsrl")


def test_data_file_metadata():
    """The data records the peer versions and covers every kind of case."""
    gen = DOC["generator"]
    assert gen["open_clip_torch"] == "3.3.0"
    assert gen["pytorch_metric_learning"] == "2.9.0"
    assert gen["sentence_transformers"] == "6.2.0"
    assert gen["torch"].startswith("2.13.0")
    assert gen["command"] == "python tests/contrastive/record_contrastive_peers.py"
    assert len(CLIP) >= 4
    assert sum("label_smoothing" in c.values[0]["params"] for c in CLIP) >= 1
    assert len(SIGLIP) >= 2
    assert len(NTXENT_UNIT) >= 2
    assert len(NTXENT_RAW) >= 2
    assert len(SUPCON_WITH_SINGLETONS) >= 2
    assert len(SUPCON_NO_POSITIVE) == 1
    assert len(SUPCON_NO_NEGATIVE) == 1
    assert {c.values[0]["kind"] for c in MNRL} == {"mnrl", "mnsrl"}
    assert sum("negatives" in c.values[0]["inputs"] for c in MNRL) >= 2


# ----------------------------------------------------------------------------- open_clip


def _clip_options(case):
    return {"label_smoothing": case["params"].get("label_smoothing", 0.0)}


@pytest.mark.parametrize("case", CLIP)
def test_clip_loss_matches_open_clip(case):
    """clip_loss equals open_clip's ClipLoss (logit_scale = the multiplier)."""
    img, txt = _inputs(case, "image_embeddings", "text_embeddings")
    got = refloss.clip_loss(img, txt, case["params"]["logit_scale"], **_clip_options(case))
    _assert_loss(got, case)


@pytest.mark.parametrize("case", CLIP)
def test_clip_gradients_match_open_clip_autograd(case):
    """Gradients w.r.t. both feature matrices and the scale equal torch autograd's."""
    img, txt = _inputs(case, "image_embeddings", "text_embeddings")
    scale = np.asarray(case["params"]["logit_scale"], dtype=np.float64)
    names = ("image_embeddings", "text_embeddings", "logit_scale")
    fn = refloss.value_and_grad(refloss.clip_loss, wrt=names)
    loss, grads = fn(img, txt, scale, **_clip_options(case))
    _assert_loss(loss, case)
    assert len(grads) == len(names)
    for got, name in zip(grads, names, strict=True):
        _assert_grad(got, case, name)


@pytest.mark.parametrize("case", SIGLIP)
def test_siglip_loss_matches_open_clip(case):
    """siglip_loss equals open_clip's SigLipLoss (sum over pairs / B)."""
    img, txt = _inputs(case, "image_embeddings", "text_embeddings")
    p = case["params"]
    _assert_loss(refloss.siglip_loss(img, txt, p["logit_scale"], p["logit_bias"]), case)


@pytest.mark.parametrize("case", SIGLIP)
def test_siglip_gradients_match_open_clip_autograd(case):
    """Gradients w.r.t. both feature matrices, the scale and the bias equal autograd's."""
    img, txt = _inputs(case, "image_embeddings", "text_embeddings")
    p = case["params"]
    scale = np.asarray(p["logit_scale"], dtype=np.float64)
    bias = np.asarray(p["logit_bias"], dtype=np.float64)
    names = ("image_embeddings", "text_embeddings", "logit_scale", "logit_bias")
    loss, grads = refloss.value_and_grad(refloss.siglip_loss, wrt=names)(img, txt, scale, bias)
    _assert_loss(loss, case)
    assert len(grads) == len(names)
    for got, name in zip(grads, names, strict=True):
        _assert_grad(got, case, name)


# ----------------------------------------------------------------------------- NT-Xent


@pytest.mark.parametrize("case", NTXENT)
def test_nt_xent_loss_matches_pml_on_normalised_views(case):
    """pml's NTXentLoss (cosine similarity) equals nt_xent_loss on L2-normalised views."""
    (ua, _), (ub, _) = (_normalize(v) for v in _inputs(case, "view_a", "view_b"))
    got = refloss.nt_xent_loss(ua, ub, temperature=case["params"]["temperature"])
    _assert_loss(got, case)


@pytest.mark.parametrize("case", NTXENT)
def test_nt_xent_gradients_match_pml_through_normalisation(case):
    """pml's gradients are refloss's pulled back through the normalisation; d/dtau direct."""
    (ua, na), (ub, nb) = (_normalize(v) for v in _inputs(case, "view_a", "view_b"))
    tau = np.asarray(case["params"]["temperature"], dtype=np.float64)
    fn = refloss.value_and_grad(refloss.nt_xent_loss, wrt=("view_a", "view_b", "temperature"))
    loss, (ga, gb, gt) = fn(ua, ub, temperature=tau)
    _assert_loss(loss, case)
    _assert_grad(_pull_back(np.asarray(ga), ua, na), case, "view_a")
    _assert_grad(_pull_back(np.asarray(gb), ub, nb), case, "view_b")
    _assert_grad(gt, case, "temperature")


@pytest.mark.parametrize("case", NTXENT_UNIT)
def test_nt_xent_unit_views_used_as_stored(case):
    """Unit-norm views need no normalisation for the loss: refloss equals pml directly."""
    a, b = _inputs(case, "view_a", "view_b")
    _assert_loss(refloss.nt_xent_loss(a, b, temperature=case["params"]["temperature"]), case)


@pytest.mark.parametrize("case", NTXENT_RAW)
def test_nt_xent_raw_views_differ_from_pml(case):
    """On non-normalised views refloss's dot product differs from pml's cosine."""
    a, b = _inputs(case, "view_a", "view_b")
    got = float(refloss.nt_xent_loss(a, b, temperature=case["params"]["temperature"]))
    want = _want_loss(case)
    assert abs(got - want) > 1e-3 * abs(want), (got, want)


# ----------------------------------------------------------------------------- SupCon


@pytest.mark.parametrize("case", SUPCON)
def test_supcon_loss_matches_pml_on_normalised_embeddings(case):
    """pml's SupConLoss equals supcon_loss (base_temperature=None) on normalised inputs."""
    (u, _) = _normalize(*_inputs(case, "embeddings"))
    got = refloss.supcon_loss(u, labels=_labels(case), temperature=case["params"]["temperature"])
    _assert_loss(got, case)


@pytest.mark.parametrize("case", SUPCON)
def test_supcon_gradients_match_pml_through_normalisation(case):
    """pml's gradients are refloss's pulled back through the normalisation; d/dtau direct."""
    (u, norm) = _normalize(*_inputs(case, "embeddings"))
    tau = np.asarray(case["params"]["temperature"], dtype=np.float64)
    fn = refloss.value_and_grad(refloss.supcon_loss, wrt=("embeddings", "temperature"))
    loss, (ge, gt) = fn(u, labels=_labels(case), temperature=tau)
    _assert_loss(loss, case)
    _assert_grad(_pull_back(np.asarray(ge), u, norm), case, "embeddings")
    _assert_grad(gt, case, "temperature")


@pytest.mark.parametrize("case", SUPCON_RAW)
def test_supcon_raw_embeddings_differ_from_pml(case):
    """On non-normalised embeddings refloss's dot product differs from pml's cosine."""
    (e,) = _inputs(case, "embeddings")
    got = float(
        refloss.supcon_loss(e, labels=_labels(case), temperature=case["params"]["temperature"])
    )
    want = _want_loss(case)
    assert abs(got - want) > 1e-3 * abs(want), (got, want)


@pytest.mark.parametrize("case", SUPCON_WITH_SINGLETONS)
def test_supcon_anchor_without_positive_excluded_from_mean(case):
    """An anchor whose label has no other member adds 0 and is left out of the mean."""
    (u, _) = _normalize(*_inputs(case, "embeddings"))
    labels = _labels(case)
    tau = case["params"]["temperature"]
    alone = np.array([np.sum(labels == v) == 1 for v in labels])
    assert alone.any()
    assert not alone.all()
    per_anchor = np.asarray(
        refloss.supcon_loss(u, labels=labels, temperature=tau, reduction="none")
    )
    assert per_anchor.shape == labels.shape
    assert np.all(per_anchor[alone] == 0.0)
    assert np.all(per_anchor[~alone] > 0.0)
    want = _want_loss(case)
    np.testing.assert_allclose(np.mean(per_anchor[~alone]), want, rtol=LOSS_RTOL, atol=0.0)
    # the plain mean over every anchor (singletons counted) is a different number
    assert abs(np.mean(per_anchor) - want) > 1e-3 * want


@pytest.mark.parametrize("case", SUPCON_NO_POSITIVE)
def test_supcon_batch_without_positive_is_zero(case):
    """No anchor has a positive: pml returns 0 with zero gradients; so does refloss."""
    assert _want_loss(case) == 0.0
    assert not np.any(_want_grad(case, "embeddings"))
    (u, _) = _normalize(*_inputs(case, "embeddings"))
    tau = np.asarray(case["params"]["temperature"], dtype=np.float64)
    fn = refloss.value_and_grad(refloss.supcon_loss, wrt=("embeddings", "temperature"))
    loss, (ge, gt) = fn(u, labels=_labels(case), temperature=tau)
    assert float(loss) == 0.0
    assert not np.any(np.asarray(ge))
    assert float(gt) == 0.0


def _supcon_formula(e, labels, tau):
    """Direct float64 evaluation of the documented 'out' form (every anchor has a positive)."""
    s = (e @ e.T) / tau
    n = s.shape[0]
    off = ~np.eye(n, dtype=bool)
    rows = []
    for i in range(n):
        others = s[i, off[i]]
        m = np.max(others)
        lse = m + np.log(np.sum(np.exp(others - m)))
        pos = off[i] & (labels == labels[i])
        rows.append(-np.mean(s[i, pos] - lse))
    return float(np.mean(rows))


@pytest.mark.parametrize("case", SUPCON_NO_NEGATIVE)
def test_supcon_batch_without_negative_differs_from_pml(case):
    """Every label equal: pml returns 0 (it needs a negative pair); refloss evaluates its
    formula, the softmax then running over the positives only."""
    assert _want_loss(case) == 0.0
    (u, _) = _normalize(*_inputs(case, "embeddings"))
    labels, tau = _labels(case), case["params"]["temperature"]
    assert np.unique(labels).size == 1
    got = float(refloss.supcon_loss(u, labels=labels, temperature=tau))
    want = _supcon_formula(u, labels, tau)
    assert want >= np.log(labels.size - 1) > 0.0  # Jensen: at least log(#positives)
    np.testing.assert_allclose(got, want, rtol=LOSS_RTOL, atol=0.0)


@pytest.mark.parametrize("case", SUPCON_RAW)
def test_supcon_base_temperature_scales_pml_loss(case):
    """base_temperature=b multiplies the loss by T/b (pml has no such factor: b = T)."""
    (u, _) = _normalize(*_inputs(case, "embeddings"))
    labels, tau = _labels(case), case["params"]["temperature"]
    same = refloss.supcon_loss(u, labels=labels, temperature=tau, base_temperature=tau)
    _assert_loss(same, case)
    scaled = float(refloss.supcon_loss(u, labels=labels, temperature=tau, base_temperature=0.07))
    np.testing.assert_allclose(scaled, _want_loss(case) * tau / 0.07, rtol=LOSS_RTOL, atol=0.0)


# ----------------------------------------------------------------------------- MNRL


def _mnrl_refloss(case, arrays, normalize, concat):
    """sentence-transformers' loss through retrieval_loss (see the module docstring)."""
    anchors, positives = arrays["anchors"], arrays["positives"]
    docs = [positives] + ([arrays["negatives"]] if "negatives" in arrays else [])
    forward = refloss.retrieval_loss(
        normalize(anchors),
        normalize(concat(docs)),
        temperature=MNRL_TEMPERATURE,
        reduction="mean",
    )
    if case["kind"] == "mnrl":
        return forward
    # symmetric variant: positive i against the B anchors only (hard negatives unused)
    backward = refloss.retrieval_loss(
        normalize(positives),
        normalize(anchors),
        temperature=MNRL_TEMPERATURE,
        reduction="mean",
    )
    return (forward + backward) / 2


def _mnrl_names(case):
    return [n for n in ("anchors", "positives", "negatives") if n in case["inputs"]]


@pytest.mark.parametrize("case", MNRL)
def test_mnrl_loss_matches_sentence_transformers(case):
    """MNRL / MNSRL equal retrieval_loss on normalised embeddings with temperature 1/20."""
    assert case["params"]["scale"] == 20.0
    arrays = {n: _array(case["inputs"][n]) for n in _mnrl_names(case)}
    got = _mnrl_refloss(
        case,
        arrays,
        normalize=lambda x: _normalize(x)[0],
        concat=lambda xs: np.concatenate(xs, axis=0),
    )
    _assert_loss(got, case)


@pytest.mark.parametrize("case", MNRL)
def test_mnrl_gradients_match_sentence_transformers_autograd(case):
    """Gradients w.r.t. the raw embeddings: torch autograd through normalisation and refloss."""
    torch = pytest.importorskip("torch")
    names = _mnrl_names(case)
    leaves = {
        n: torch.tensor(_array(case["inputs"][n]), dtype=torch.float64, requires_grad=True)
        for n in names
    }
    loss = _mnrl_refloss(
        case,
        leaves,
        normalize=lambda x: torch.nn.functional.normalize(x, p=2.0, dim=1),
        concat=lambda xs: torch.cat(xs, dim=0),
    )
    assert loss.dtype == torch.float64
    loss.backward()
    _assert_loss(loss.detach().numpy(), case)
    for n in names:
        _assert_grad(leaves[n].grad.numpy(), case, n)


@pytest.mark.parametrize("case", _cases("mnsrl", lambda c: "negatives" in c["inputs"]))
def test_mnsrl_backward_direction_ignores_hard_negatives(case):
    """The symmetric loss's backward direction ranks each positive against the B anchors
    only: adding the hard negatives to its candidates gives a different number."""
    a, p, n = (_normalize(x)[0] for x in _inputs(case, "anchors", "positives", "negatives"))
    t = MNRL_TEMPERATURE
    forward = refloss.retrieval_loss(a, np.concatenate([p, n]), temperature=t, reduction="mean")
    backward = refloss.retrieval_loss(p, a, temperature=t, reduction="mean")
    widened = refloss.retrieval_loss(p, np.concatenate([a, n]), temperature=t, reduction="mean")
    want = _want_loss(case)
    _assert_loss((forward + backward) / 2, case)
    assert abs(float(forward + widened) / 2 - want) > 1e-6 * want
