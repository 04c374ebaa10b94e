"""Cost of refloss's contrastive losses relative to their similarity matmul, and their peers.

Method
------
Every timing is a ratio measured in one run, so that the machine's speed cancels out. A
*row* is one loss x backend; its inputs (float32, unit-norm embeddings, B = 4096 pairs of
width D = 256 by default) are made once and every candidate is called on them:

* ``matmul``, the reference: the similarity matmul of the loss, ``I @ T.T`` (B x B) for
  ``clip_loss`` and ``siglip_loss``, ``z @ z.T`` (2B x 2B, ``z = [a; b]`` made beforehand)
  for ``nt_xent_loss``, ``E @ E.T`` (B x B) for ``supcon_loss`` (a ``jax.jit``-compiled one
  for JAX);
* ``loss``: the refloss loss (``jax.jit`` of it for JAX);
* ``value_and_grad``: ``refloss.value_and_grad`` of it with ``wrt`` naming the embeddings
  and the 0-D scale / bias / temperature arrays (``jax.jit`` of it for JAX);
* JAX only, ``autodiff``: ``jax.jit(jax.value_and_grad(...))`` through the refloss loss,
  with respect to the same arrays;
* PyTorch rows, the peers, written here as those libraries compute the loss (they are not
  imported), each with its loss alone (``torch.no_grad``) and its loss with ``.backward()``
  (autograd with respect to the leaves the library would train):

  * ``clip``: open_clip ``ClipLoss`` on one process, ``logits_per_image = scale * I @ T.T``
    and ``logits_per_text = scale * T @ I.T`` (two products), ``(cross_entropy(rows, arange)
    + cross_entropy(cols, arange)) / 2``; and the same with one product and ``logits.T``
    (open_clip's form after a gather across processes); gradients for I, T and the scale;
  * ``siglip``: open_clip ``SigLipLoss``, ``logits = scale * I @ T.T + bias``, ``labels = 2
    eye - 1`` (made per call), ``-logsigmoid(labels * logits).sum() / B``; gradients for I,
    T, the scale and the bias;
  * ``nt_xent``: pytorch-metric-learning ``NTXentLoss`` on ``[a; b]`` with labels
    ``[0..B-1, 0..B-1]``: cosine similarity (``F.normalize`` then the matmul), one term per
    positive pair, ``-log(e^{s_p/tau} / (e^{s_p/tau} + sum_neg e^{s_n/tau}) + tiny)`` with the
    row maximum subtracted, the mean over the 2B pairs. The library pairs every positive
    pair with the list of all negative pairs (a ``(2B, 2B (2B - 2))`` mask, 2.2 TB at
    B = 4096), so the peer here forms the same terms from the dense ``(2B, 2B)`` similarity
    matrix with the negatives masked; gradients for a and b (the library's temperature is a
    Python float);
  * ``supcon``: pytorch-metric-learning ``SupConLoss`` as written: cosine similarity, all
    pair indices from the labels (``torch.where`` of the match and mismatch masks), the
    positive and negative masks scattered from them, the row maximum subtracted, a masked
    ``logsumexp`` denominator (the "out" form), the mean log-probability over the
    positives, and the mean over the non-zero per-anchor losses (``AvgNonZeroReducer``);
    gradients for the embeddings;

* JAX rows, ``dense``: the same formulas in ``jax.numpy`` over one materialised similarity
  matrix (``logits.T`` for CLIP), ``jax.jit(jax.value_and_grad(...))``: what a JAX user
  would write.

Each candidate is called once to warm up (compilation, allocator), then the candidates are
*interleaved*: a round calls each once, in an order rotated from round to round. A ratio is
the *median over rounds of the per-round ratio* ``time(candidate) / time(reference)``,
printed with its interquartile range; refloss over a peer is likewise the median of the
per-round ``time(refloss) / time(peer)``. Before timing, each peer's loss and gradients are
compared with refloss's ``value_and_grad`` (relative 1e-4 on the loss, 1e-3 on each
gradient's norm of difference); the peers that normalise their inputs (NT-Xent, SupCon)
return gradients projected onto the tangent of the unit sphere, so refloss's gradient is
projected the same way (``g - u (u . g)``) for that comparison. A mismatch prints a
``WARNING`` line.

Run ``python benchmarks/bench_contrastive.py`` (``--help`` for the flags, ``--quick`` for a
smoke run in seconds). The table goes to stdout, the same numbers and every round's raw
times to ``--json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import refloss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_retrieval import (  # noqa: E402 (sibling module)
    cores,
    environment,
    importable,
    interleaved_times,
    set_torch_threads,
    spread,
    waiter,
)

LOSSES = ("clip", "siglip", "nt_xent", "supcon")
BACKENDS = ("numpy", "torch", "jax")
LOSS_RTOL, GRAD_RTOL = 1e-4, 1e-3
CLIP_SCALE = 1.0 / 0.07  # CLIP's initial multiplier
SIGLIP_SCALE, SIGLIP_BIAS = 10.0, -10.0  # SigLIP's initialisation
TEMPERATURE = 0.1  # NT-Xent and SupCon (pytorch-metric-learning's SupConLoss default)
CLASSES_PER_ROW = 1 / 8  # SupCon: about B / 8 classes, so about 7 positives per anchor


class Spec(NamedTuple):
    """How refloss's loss takes its inputs (named as in its signature)."""

    function: Callable[..., Any]
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    wrt: tuple[str, ...]
    matmul: tuple[str, str]  # the operands of the reference matmul (``a @ b.T``)


SPECS = {
    "clip": Spec(
        refloss.clip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale"),
        (),
        ("image_embeddings", "text_embeddings", "logit_scale"),
        ("image_embeddings", "text_embeddings"),
    ),
    "siglip": Spec(
        refloss.siglip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale", "logit_bias"),
        (),
        ("image_embeddings", "text_embeddings", "logit_scale", "logit_bias"),
        ("image_embeddings", "text_embeddings"),
    ),
    "nt_xent": Spec(
        refloss.nt_xent_loss,
        ("view_a", "view_b"),
        ("temperature",),
        ("view_a", "view_b", "temperature"),
        ("z", "z"),
    ),
    "supcon": Spec(
        refloss.supcon_loss,
        ("embeddings",),
        ("labels", "temperature"),
        ("embeddings", "temperature"),
        ("embeddings", "embeddings"),
    ),
}


# ----------------------------------------------------------------------------- inputs


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_inputs(loss: str, size: int, dim: int) -> dict[str, np.ndarray]:
    """The row's float32 inputs on the host: unit-norm embeddings, 0-D scalars."""
    rng = np.random.default_rng(0)
    first = _unit_rows(rng.standard_normal((size, dim)))
    # the second tower / view: correlated with the first, so the loss is not at chance
    second = _unit_rows(first + 0.7 * rng.standard_normal((size, dim)) / np.sqrt(dim))
    f32 = np.float32
    if loss == "clip":
        return {
            "image_embeddings": first,
            "text_embeddings": second,
            "logit_scale": np.asarray(CLIP_SCALE, f32),
        }
    if loss == "siglip":
        return {
            "image_embeddings": first,
            "text_embeddings": second,
            "logit_scale": np.asarray(SIGLIP_SCALE, f32),
            "logit_bias": np.asarray(SIGLIP_BIAS, f32),
        }
    if loss == "nt_xent":
        return {
            "view_a": first,
            "view_b": second,
            "temperature": np.asarray(TEMPERATURE, f32),
            "z": np.concatenate([first, second]),  # for the reference matmul only
        }
    classes = max(2, round(size * CLASSES_PER_ROW))
    labels = rng.integers(0, classes, size)
    centres = _unit_rows(rng.standard_normal((classes, dim)))
    return {
        "embeddings": _unit_rows(centres[labels] + 0.8 * first),
        "labels": labels.astype(np.int64),
        "temperature": np.asarray(TEMPERATURE, f32),
    }


def to_backend(
    backend: str, x: dict[str, np.ndarray], threads: int | None = None
) -> dict[str, Any]:
    if backend == "torch":
        import torch

        torch.set_num_threads(threads or cores())
        return {k: torch.from_numpy(v) for k, v in x.items()}
    if backend == "jax":
        import jax.numpy as jnp

        return {
            k: jnp.asarray(v if v.dtype != np.int64 else v.astype(np.int32)) for k, v in x.items()
        }
    return dict(x)


# ----------------------------------------------------------------------------- refloss


def _call(function: Callable[..., Any], spec: Spec, values: dict[str, Any]) -> Any:
    return function(*(values[n] for n in spec.positional), **{n: values[n] for n in spec.keywords})


def refloss_calls(loss: str, backend: str, x: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    spec = SPECS[loss]
    grad = refloss.value_and_grad(spec.function, wrt=spec.wrt)
    left, right = (x[n] for n in spec.matmul)
    args = {n: x[n] for n in (*spec.positional, *spec.keywords)}
    if backend != "jax":
        return {
            "matmul": lambda: left @ right.T,
            "loss": lambda: _call(spec.function, spec, args),
            "value_and_grad": lambda: _call(grad, spec, args),
        }
    import jax

    matmul = jax.jit(lambda a, b: a @ b.T)
    loss_fn = jax.jit(lambda values: _call(spec.function, spec, values))
    grad_fn = jax.jit(lambda values: _call(grad, spec, values))
    diff = {n: args[n] for n in spec.wrt}
    rest = {n: v for n, v in args.items() if n not in diff}
    autodiff = jax.jit(jax.value_and_grad(lambda d, r: _call(spec.function, spec, d | r)))
    return {
        "matmul": lambda: matmul(left, right),
        "loss": lambda: loss_fn(args),
        "value_and_grad": lambda: grad_fn(args),
        "autodiff": lambda: autodiff(diff, rest),
    }


# ----------------------------------------------------------------------------- peers


class Peer(NamedTuple):
    key: str  # prefix of its calls in the row: "{key}_loss", "{key}_loss_grad"
    name: str
    calls: dict[str, Callable[[], Any]]
    wrt: tuple[str, ...]  # the inputs it returns gradients for
    normalises: bool  # gradients with respect to raw inputs (through a normalisation)


def _torch_peers(loss: str, x: dict[str, Any]) -> list[Peer]:
    import torch
    import torch.nn.functional as F

    def open_clip_clip(v):
        image, text, scale = v["image_embeddings"], v["text_embeddings"], v["logit_scale"]
        logits_per_image = scale * image @ text.T
        logits_per_text = scale * text @ image.T
        labels = torch.arange(logits_per_image.shape[0])
        return (
            F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
        ) / 2

    def clip_transposed(v):
        logits = v["logit_scale"] * v["image_embeddings"] @ v["text_embeddings"].T
        labels = torch.arange(logits.shape[0])
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    def open_clip_siglip(v):
        image = v["image_embeddings"]
        logits = v["logit_scale"] * image @ v["text_embeddings"].T
        logits += v["logit_bias"]
        n = logits.shape[0]
        labels = -torch.ones((n, n), dtype=image.dtype)
        labels = 2 * torch.eye(n, dtype=image.dtype) + labels
        return -F.logsigmoid(labels * logits).sum() / image.shape[0]

    temperature = float(x["temperature"]) if "temperature" in x else None

    def pml_ntxent(v):
        embeddings = torch.cat([v["view_a"], v["view_b"]])
        num = embeddings.shape[0] // 2
        labels = torch.cat([torch.arange(num), torch.arange(num)])
        e = F.normalize(embeddings, p=2, dim=1)  # CosineSimilarity
        mat = e @ e.T
        rows = torch.arange(2 * num)
        pos_pairs = mat[rows, (rows + num) % (2 * num)].unsqueeze(1) / temperature
        neg_mask = labels.unsqueeze(1) != labels.unsqueeze(0)  # the anchor's negative pairs
        neg_pairs = (mat / temperature).masked_fill(~neg_mask, torch.finfo(mat.dtype).min)
        max_val = torch.max(pos_pairs, torch.max(neg_pairs, dim=1, keepdim=True)[0]).detach()
        numerator = torch.exp(pos_pairs - max_val).squeeze(1)
        denominator = torch.sum(torch.exp(neg_pairs - max_val), dim=1) + numerator
        log_exp = torch.log((numerator / denominator) + torch.finfo(mat.dtype).tiny)
        return (-log_exp).mean()  # MeanReducer over the positive pairs

    def pml_supcon(v):
        embeddings, labels = v["embeddings"], v["labels"]
        e = F.normalize(embeddings, p=2, dim=1)  # CosineSimilarity
        mat = e @ e.T
        matches = (labels.unsqueeze(1) == labels.unsqueeze(0)).byte()  # get_all_pairs_indices
        diffs = matches ^ 1
        matches.fill_diagonal_(0)
        a1, p = torch.where(matches)
        a2, n = torch.where(diffs)
        pos_mask, neg_mask = torch.zeros_like(mat), torch.zeros_like(mat)  # mat_based_loss
        pos_mask[a1, p] = 1
        neg_mask[a2, n] = 1
        if not (pos_mask.bool().any() and neg_mask.bool().any()):
            return mat.sum() * 0
        mat = mat / temperature
        mat_max, _ = mat.max(dim=1, keepdim=True)
        mat = mat - mat_max.detach()
        keep = (pos_mask + neg_mask).bool()  # lmu.logsumexp(..., add_one=False)
        denominator = torch.logsumexp(
            mat.masked_fill(~keep, torch.finfo(mat.dtype).min), dim=1, keepdim=True
        )
        denominator = denominator.masked_fill(~torch.any(keep, dim=1, keepdim=True), 0)
        log_prob = mat - denominator
        mean_log_prob_pos = (pos_mask * log_prob).sum(dim=1) / (
            pos_mask.sum(dim=1) + torch.finfo(mat.dtype).tiny
        )
        losses = -mean_log_prob_pos
        kept = losses[losses > 0]  # AvgNonZeroReducer
        return kept.mean() if kept.numel() else losses.sum() * 0

    peers = {
        "clip": [
            ("peer", "open_clip ClipLoss", open_clip_clip, SPECS["clip"].wrt, False),
            ("peerT", "open_clip ClipLoss, logits.T", clip_transposed, SPECS["clip"].wrt, False),
        ],
        "siglip": [("peer", "open_clip SigLipLoss", open_clip_siglip, SPECS["siglip"].wrt, False)],
        "nt_xent": [("peer", "pml NTXentLoss (dense)", pml_ntxent, ("view_a", "view_b"), True)],
        "supcon": [("peer", "pml SupConLoss", pml_supcon, ("embeddings",), True)],
    }[loss]
    return [_torch_peer(x, *p) for p in peers]


def _torch_peer(x, key, name, formula, wrt, normalises) -> Peer:
    import torch

    leaves = {n: x[n].detach().clone().requires_grad_() for n in wrt}
    values = x | leaves

    def loss():
        with torch.no_grad():
            return formula(x)

    def loss_grad():
        for leaf in leaves.values():
            leaf.grad = None
        value = formula(values)
        value.backward()
        return value, {n: leaf.grad for n, leaf in leaves.items()}

    return Peer(key, name, {f"{key}_loss": loss, f"{key}_loss_grad": loss_grad}, wrt, normalises)


def _jax_dense(loss: str, x: dict[str, Any]) -> list[Peer]:
    import jax
    import jax.numpy as jnp

    def normalize(e):
        return e / jnp.linalg.norm(e, axis=1, keepdims=True)

    def clip(v):
        logits = v["logit_scale"] * v["image_embeddings"] @ v["text_embeddings"].T
        diagonal = jnp.diagonal(logits)
        rows = jax.nn.logsumexp(logits, axis=1) - diagonal
        cols = jax.nn.logsumexp(logits, axis=0) - diagonal
        return (jnp.mean(rows) + jnp.mean(cols)) / 2

    def siglip(v):
        image = v["image_embeddings"]
        logits = v["logit_scale"] * image @ v["text_embeddings"].T + v["logit_bias"]
        labels = 2 * jnp.eye(logits.shape[0], dtype=logits.dtype) - 1
        return -jnp.sum(jax.nn.log_sigmoid(labels * logits)) / image.shape[0]

    temperature = float(x["temperature"]) if "temperature" in x else None

    def nt_xent(v):
        e = normalize(jnp.concatenate([v["view_a"], v["view_b"]]))
        num = e.shape[0] // 2
        mat = e @ e.T / temperature
        rows = jnp.arange(2 * num)
        mat = jnp.where(rows[:, None] == rows[None, :], -jnp.inf, mat)
        positive = mat[rows, (rows + num) % (2 * num)]
        return jnp.mean(jax.nn.logsumexp(mat, axis=1) - positive)

    def supcon(v):
        e = normalize(v["embeddings"])
        labels = v["labels"]
        rows = jnp.arange(e.shape[0])
        self_mask = rows[:, None] == rows[None, :]
        positive = (labels[:, None] == labels[None, :]) & ~self_mask
        mat = jnp.where(self_mask, -jnp.inf, e @ e.T / temperature)
        log_prob = mat - jax.nn.logsumexp(mat, axis=1, keepdims=True)
        counts = jnp.sum(positive, axis=1)
        per_anchor = -jnp.sum(jnp.where(positive, log_prob, 0.0), axis=1) / jnp.maximum(counts, 1)
        has = counts > 0
        return jnp.sum(jnp.where(has, per_anchor, 0.0)) / jnp.maximum(jnp.sum(has), 1)

    formula, wrt, normalises = {
        "clip": (clip, SPECS["clip"].wrt, False),
        "siglip": (siglip, SPECS["siglip"].wrt, False),
        "nt_xent": (nt_xent, ("view_a", "view_b"), True),
        "supcon": (supcon, ("embeddings",), True),
    }[loss]
    diff = {n: x[n] for n in wrt}
    rest = {n: v for n, v in x.items() if n not in diff}
    loss_fn = jax.jit(formula)
    grad_fn = jax.jit(jax.value_and_grad(lambda d, r: formula(d | r)))
    calls = {"dense_loss": lambda: loss_fn(x), "dense_loss_grad": lambda: grad_fn(diff, rest)}
    return [Peer("dense", "jax dense formula", calls, wrt, normalises)]


def peers_for(loss: str, backend: str, x: dict[str, Any]) -> list[Peer]:
    if backend == "torch":
        return _torch_peers(loss, x)
    if backend == "jax":
        return _jax_dense(loss, x)
    return []


# ----------------------------------------------------------------------------- checks


def _host(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach()
    return np.asarray(a, dtype=np.float64)


def _rel(got: Any, want: Any) -> float:
    got, want = _host(got), _host(want)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), np.finfo(np.float64).tiny))


def agreement(
    loss: str, x: dict[str, Any], ours: tuple[Any, tuple[Any, ...]], peer: Peer
) -> tuple[dict[str, float], str | None]:
    """Relative differences of a peer's loss and gradients from refloss's, and a warning."""
    value, grads = ours
    ours_by_name = dict(zip(SPECS[loss].wrt, grads, strict=True))
    theirs_value, theirs_grads = peer.calls[f"{peer.key}_loss_grad"]()
    if not isinstance(theirs_grads, dict):  # jax.value_and_grad of a dict: a dict already
        theirs_grads = dict(theirs_grads)
    diffs = {"loss": _rel(theirs_value, value)}
    for name in peer.wrt:
        g = _host(ours_by_name[name])
        if peer.normalises and g.ndim == 2:  # the peer differentiates through normalize()
            u = _host(x[name])
            u = u / np.linalg.norm(u, axis=1, keepdims=True)
            g = g - u * np.sum(u * g, axis=1, keepdims=True)
        diffs[name] = _rel(theirs_grads[name], g)
    bad = {k: d for k, d in diffs.items() if not d <= (LOSS_RTOL if k == "loss" else GRAD_RTOL)}
    warning = None
    if bad:
        warning = f"WARNING: {peer.name} ({loss}) differs from refloss: " + ", ".join(
            f"{k} {d:.1e}" for k, d in diffs.items()
        )
    return diffs, warning


# ----------------------------------------------------------------------------- rows


def measure_row(loss: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    gc.collect()
    load = os.getloadavg()
    started = time.perf_counter()
    x = to_backend(backend, make_inputs(loss, args.size, args.dim), args.threads)
    calls = refloss_calls(loss, backend, x)
    peers = peers_for(loss, backend, x) if args.peers else []
    agree, warnings = {}, []
    if peers:
        ours = calls["value_and_grad"]()
        for peer in peers:
            agree[peer.key], warning = agreement(loss, x, ours, peer)
            if warning:
                warnings.append(warning)
                print(warning, file=sys.stderr, flush=True)
        del ours
    for peer in peers:
        calls |= peer.calls
    times = interleaved_times(calls, args.rounds, waiter(backend))
    pairs = [("loss", "matmul"), ("value_and_grad", "matmul")]
    if "autodiff" in calls:
        pairs += [("autodiff", "matmul"), ("value_and_grad", "autodiff")]
    for peer in peers:
        k = peer.key
        pairs += [
            (f"{k}_loss", "matmul"),
            (f"{k}_loss_grad", "matmul"),
            ("loss", f"{k}_loss"),
            ("value_and_grad", f"{k}_loss_grad"),
        ]
        if "autodiff" in calls:
            pairs.append(("autodiff", f"{k}_loss_grad"))
    ratios = {}
    for num, den in pairs:
        per_round = [a / b for a, b in zip(times[num], times[den], strict=True)]
        ratios[f"{num}/{den}"] = spread(per_round)
    return {
        "loss": loss,
        "backend": backend,
        "size": args.size,
        "dim": args.dim,
        "rounds": args.rounds,
        "load_average_at_start": load,
        "seconds": time.perf_counter() - started,
        "peers": {p.key: p.name for p in peers},
        "agreement": agree,
        "warnings": warnings,
        "times_ms": {name: [1e3 * t for t in ts] for name, ts in times.items()},
        "median_ms": {name: 1e3 * statistics.median(ts) for name, ts in times.items()},
        "ratios": ratios,
    }


# ----------------------------------------------------------------------------- output


def _r(row: dict[str, Any], key: str) -> str:
    r = row["ratios"][key]
    return f"{r['median']:5.2f} [{r['q1']:.2f}-{r['q3']:.2f}]"


def format_row(row: dict[str, Any]) -> list[str]:
    ms = row["median_ms"]
    lines = [
        f"{row['loss']:8} {row['backend']:6} matmul {ms['matmul']:7.1f} ms | "
        f"loss/mm {_r(row, 'loss/matmul'):18} {ms['loss']:7.1f} ms | "
        f"v&g/mm {_r(row, 'value_and_grad/matmul'):18} {ms['value_and_grad']:7.1f} ms "
        f"(load {row['load_average_at_start'][0]:.1f}, {row['seconds']:.0f} s)"
    ]
    if "autodiff" in ms:
        lines.append(
            f"{'':15} jax.value_and_grad through refloss: /mm {_r(row, 'autodiff/matmul')} "
            f"{ms['autodiff']:7.1f} ms; refloss v&g / it {_r(row, 'value_and_grad/autodiff')}"
        )
    for key, name in row["peers"].items():
        line = (
            f"{'':15} {name:30} loss/mm {_r(row, f'{key}_loss/matmul'):18} "
            f"l+g/mm {_r(row, f'{key}_loss_grad/matmul'):18} {ms[f'{key}_loss_grad']:7.1f} ms | "
            f"refloss/peer: loss {_r(row, f'loss/{key}_loss'):18} "
            f"v&g {_r(row, f'value_and_grad/{key}_loss_grad')}"
        )
        if "autodiff" in ms:
            line += f", autodiff {_r(row, f'autodiff/{key}_loss_grad')}"
        lines.append(line)
        diffs = row["agreement"].get(key, {})
        if diffs:
            lines.append(
                f"{'':17}agreement (relative): "
                + ", ".join(f"{k} {d:.1e}" for k, d in diffs.items())
            )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="B, pairs or samples (default 4096)")
    parser.add_argument("--dim", type=int, help="D, embedding width (default 256)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (default 7)")
    parser.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, help="default: all (--quick: numpy torch)"
    )
    parser.add_argument(
        "--peers", action=argparse.BooleanOptionalAction, default=True, help="time the peers"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="PyTorch's intra-op threads (default: every core; NumPy's BLAS reads "
        "OPENBLAS_NUM_THREADS at start)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: B = 256, D = 32, 3 rounds, no JAX"
    )
    parser.add_argument(
        "--json", type=Path, default=HERE / "results_contrastive.json", help="output JSON"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.dim = args.size or 256, args.dim or 32
        args.rounds = args.rounds or 3
        args.backends = args.backends or ["numpy", "torch"]
    args.size, args.dim = args.size or 4096, args.dim or 256
    args.rounds = args.rounds or 7
    args.backends = args.backends or list(BACKENDS)
    return args


def main() -> None:
    args = parse_args()
    backends = importable(args.backends)
    env = environment()
    set_torch_threads(args.threads, backends, env)
    print("refloss contrastive-loss benchmark (ratios: medians over interleaved rounds [IQR])")
    for key, value in env.items():
        print(f"  {key}: {value}")
    print(
        f"B = {args.size}, D = {args.dim}, float32, unit-norm embeddings, {args.rounds} rounds; "
        f"mm = the loss's similarity matmul, l+g = loss + backward\n",
        flush=True,
    )
    rows = []
    for loss in args.losses:
        for backend in backends:
            rows.append(measure_row(loss, backend, args))
            print("\n".join(format_row(rows[-1])), flush=True)
    for row in rows:
        for warning in row["warnings"]:
            print(warning)
    env["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {env['load_average_at_end']} (other work shares the cores)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    config = {"size": args.size, "dim": args.dim, "rounds": args.rounds, "dtype": "float32"}
    args.json.write_text(json.dumps({"environment": env, "config": config, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
