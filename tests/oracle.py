"""The project's one mpmath oracle (``conformance/generator/oracle.py``), NumPy in and out.

The tests use the oracle that writes the conformance fixtures, not a copy of their own.
This adapter only converts: NumPy arrays (or nested lists, or numbers) become plain
Python lists, the oracle runs at its working precision (``oracle.DPS`` digits, from the
exact binary values of the inputs), and every result is rounded once to float64 by
``oracle.to_float64`` into a NumPy array.

The oracle costs up to a millisecond per logit, so results are cached by the exact values
of their inputs: a case evaluated once serves every backend that checks against it. Keep
the shapes of oracle cases small (a few rows, a few dozen logits).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from conformance.generator import oracle as mp

__all__ = [
    "Retrieval",
    "apply_score_mask",
    "clip_loss",
    "clip_loss_grad",
    "full_softmax_loss",
    "full_softmax_loss_grad",
    "logq_correction",
    "logsumexp",
    "logsumexp_grad",
    "mine_hard_negatives",
    "nt_xent_loss",
    "nt_xent_loss_grad",
    "remove_accidental_hits",
    "retrieval",
    "retrieval_loss",
    "sampled_loss",
    "sampled_loss_grad",
    "siglip_loss",
    "siglip_loss_grad",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "supcon_loss",
    "supcon_loss_grad",
]


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------


def _plain(x: Any) -> Any:
    """NumPy arrays and scalars -> Python lists and numbers (exact binary values kept)."""
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _key(x: Any) -> Any:
    """A hashable, exact key for an argument (arrays by dtype, shape and bytes)."""
    if isinstance(x, np.ndarray | np.generic):
        a = np.asarray(x)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(x, list | tuple):
        return ("list", tuple(_key(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((k, _key(v)) for k, v in x.items())))
    if isinstance(x, float):
        return ("float", x.hex())
    return (type(x).__name__, x)


def _f64(x: Any) -> Any:
    """Nested lists of mpf -> a float64 NumPy array (each entry rounded once); mpf -> float."""
    if isinstance(x, list):
        return np.array([_f64(v) for v in x], dtype=np.float64)
    return mp.to_float64(x)


def _cached(fn):
    """Cache ``fn(*args, **kwargs)`` by the exact values of its arguments; return copies."""
    cache: dict[Any, Any] = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key = (_key(list(args)), _key(kwargs))
        if key not in cache:
            with mpmath.workdps(mp.DPS):
                cache[key] = fn(*args, **kwargs)
        return _copy(cache[key])

    return wrapper


def _copy(x: Any) -> Any:
    """A copy of a cached result, so that a test cannot change the cache."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, tuple):
        return tuple(_copy(v) for v in x)
    if isinstance(x, Retrieval):
        return Retrieval(*(_copy(getattr(x, f)) for f in x.__dataclass_fields__))
    return x


# ---------------------------------------------------------------------------------------------
# the retrieval loss
# ---------------------------------------------------------------------------------------------

_LOGIT_OPTIONS = (
    "candidate_sampling_probability",
    "candidate_ids",
    "score_mask",
    "num_hard_negatives",
    "temperature",
    "min_probability",
)


@dataclass(frozen=True)
class Retrieval:
    """The oracle's view of one ``retrieval_loss`` call, rounded to float64."""

    logits: np.ndarray  # (B, N) final logits after every correction, masked entries -inf
    has_target: np.ndarray  # (B,) bool: False where the positive is masked (row loss 0)
    rows: np.ndarray  # (B,) weighted row losses w_i * l_i (the "none" output)
    loss: np.ndarray  # the reduced loss: a 0-D array, or (B,) for "none"
    dq: np.ndarray | None  # analytic gradients (None for reduction="none")
    dc: np.ndarray | None
    dtemperature: np.ndarray | None  # 0-D; None without a temperature or for "none"
    dsample_weight: np.ndarray | None  # shaped like sample_weight; None without one


def _split_options(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword options of ``retrieval_loss`` -> (options of the logits, weight/reduction)."""
    unknown = set(kw) - {*_LOGIT_OPTIONS, "sample_weight", "reduction"}
    if unknown:
        raise TypeError(f"options the oracle does not know: {sorted(unknown)}")
    logit_kw = {k: _plain(v) for k, v in kw.items() if k in _LOGIT_OPTIONS and v is not None}
    rest = {"sample_weight": _plain(kw.get("sample_weight")), "reduction": kw.get("reduction")}
    return logit_kw, {k: v for k, v in rest.items() if v is not None}


@_cached
def retrieval(q: Any, c: Any, **kw: Any) -> Retrieval:
    """Final logits, row losses, loss and (for "sum" / "mean") gradients of one call."""
    logit_kw, rest = _split_options(kw)
    qs, cs = _plain(np.asarray(q, np.float64)), _plain(np.asarray(c, np.float64))
    logits, has_target = mp.retrieval_logits(qs, cs, **logit_kw)
    reduction = rest.get("reduction", "sum")
    weight = rest.get("sample_weight")
    rows = mp.retrieval_loss(qs, cs, sample_weight=weight, reduction="none", **logit_kw)
    loss = rows
    dq = dc = dtau = dw = None
    if reduction != "none":
        loss, dq, dc = mp.retrieval_loss_grad(
            qs, cs, sample_weight=weight, reduction=reduction, **logit_kw
        )
        # hand algebra on the oracle's values, before rounding:
        # dL/dtau = -(1/tau) sum_id Q_id dQ_id (S = Q C^T / tau - log p),
        # dL/dw_i = r l_i with r = 1 ("sum") or 1/B ("mean") and l_i the unweighted row loss
        if logit_kw.get("temperature") is not None:
            tau = mp.mpf(logit_kw["temperature"])
            dot = mpmath.fsum(
                mp.mpf(a) * g
                for qi, gi in zip(qs, dq, strict=True)
                for a, g in zip(qi, gi, strict=True)
            )
            dtau = -dot / tau
        if weight is not None:
            r = mp.mpf(1) if reduction == "sum" else mp.mpf(1) / len(qs)
            plain = mp.retrieval_loss(qs, cs, reduction="none", **logit_kw)
            dw = [r * v for v in plain] if isinstance(weight, list) else r * mpmath.fsum(plain)
    return Retrieval(
        _f64(logits),
        np.array(has_target, dtype=bool),
        _f64(rows),
        np.asarray(_f64(loss), dtype=np.float64),
        None if dq is None else _f64(dq),
        None if dc is None else _f64(dc),
        None if dtau is None else np.asarray(_f64(dtau), dtype=np.float64),
        None if dw is None else np.asarray(_f64(dw), dtype=np.float64),
    )


@_cached
def retrieval_loss(q: Any, c: Any, **kw: Any) -> np.ndarray:
    """The loss alone (no gradient): a 0-D array, or (B,) for ``reduction="none"``."""
    logit_kw, rest = _split_options(kw)
    qs, cs = _plain(np.asarray(q, np.float64)), _plain(np.asarray(c, np.float64))
    return np.asarray(_f64(mp.retrieval_loss(qs, cs, **rest, **logit_kw)), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# the steps and the cross-entropy underneath
# ---------------------------------------------------------------------------------------------


@_cached
def logq_correction(logits: Any, probability: Any, min_probability: float = 1e-6) -> np.ndarray:
    return _f64(mp.logq_correction(_plain(logits), _plain(probability), min_probability))


@_cached
def remove_accidental_hits(logits: Any, candidate_ids: Any) -> np.ndarray:
    return _f64(mp.remove_accidental_hits(_plain(logits), _plain(candidate_ids)))


@_cached
def apply_score_mask(logits: Any, score_mask: Any) -> np.ndarray:
    return _f64(mp.apply_score_mask(_plain(logits), _plain(score_mask)))


@_cached
def mine_hard_negatives(logits: Any, num_hard_negatives: int) -> np.ndarray:
    return _f64(mp.mine_hard_negatives(_plain(logits), int(num_hard_negatives)))


@_cached
def logsumexp(x: Any, axis: int = -1) -> np.ndarray:
    return np.asarray(_f64(mp.logsumexp(_plain(x), axis=axis)), dtype=np.float64)


@_cached
def logsumexp_grad(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(lse(x), softmax(x))`` of a 1-D ``x``: the gradient is ``exp(x_j - lse)``, 0 at -inf."""
    xs = [mp.mpf(v) for v in _plain(np.asarray(x, np.float64))]
    lse = mp.logsumexp(xs)
    grad = [mp.ZERO if v == mp.NEG_INF or lse == mp.NEG_INF else mpmath.exp(v - lse) for v in xs]
    return np.asarray(_f64(lse), dtype=np.float64), _f64(grad)


def _sce_arguments(labels: Any, positive_mask: Any, sample_weight: Any) -> dict[str, Any]:
    return {
        "labels": _plain(labels),
        "positive_mask": _plain(positive_mask),
        "sample_weight": _plain(sample_weight),
    }


@_cached
def softmax_cross_entropy(
    logits: Any,
    *,
    labels: Any = None,
    positive_mask: Any = None,
    sample_weight: Any = None,
    reduction: str = "sum",
) -> np.ndarray:
    """Softmax cross-entropy: in-batch targets, integer ``labels`` or label-weight matrices."""
    value, _ = mp.softmax_cross_entropy(
        _plain(logits),
        **_sce_arguments(labels, positive_mask, sample_weight),
        reduction=reduction,
    )
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def softmax_cross_entropy_grad(
    logits: Any,
    *,
    labels: Any = None,
    positive_mask: Any = None,
    sample_weight: Any = None,
    reduction: str = "sum",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(loss, dL/dlogits, dL/dsample_weight)``; the last is None without a sample weight.

    ``dL/dw_i = r l_i`` (``r`` 1 or 1/B, ``l_i`` the unweighted row loss; a 0-D weight gets
    their sum), hand algebra on the oracle's row losses before rounding.
    """
    s = _plain(logits)
    args = _sce_arguments(labels, positive_mask, sample_weight)
    value, grad = mp.softmax_cross_entropy_grad(s, **args, reduction=reduction)
    dw = None
    weight = args.pop("sample_weight")
    if weight is not None:
        _, rows = mp.softmax_cross_entropy(s, **args, reduction="none")
        r = mp.mpf(1) if reduction == "sum" else mp.mpf(1) / len(s)
        dw = [r * v for v in rows] if isinstance(weight, list) else r * mpmath.fsum(rows)
    return (
        np.asarray(_f64(value), dtype=np.float64),
        _f64(grad),
        None if dw is None else np.asarray(_f64(dw), dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------
# sampled softmax, NCE and the full softmax
# ---------------------------------------------------------------------------------------------

_SAMPLED_ARRAYS = ("labels", "sampled_candidates", "true_expected_count", "sampled_expected_count")


def _sampled_arguments(weights: Any, biases: Any, inputs: Any, kw: dict[str, Any]) -> tuple:
    arrays = [_plain(weights), _plain(biases), _plain(inputs)]
    arrays += [_plain(kw.pop(name)) for name in _SAMPLED_ARRAYS[:2]]
    options = {name: _plain(kw.pop(name, None)) for name in _SAMPLED_ARRAYS[2:]}
    return arrays, options


@_cached
def sampled_loss(kind: str, weights: Any, biases: Any, inputs: Any, **kw: Any) -> np.ndarray:
    """``sampled_softmax_loss`` (``kind="softmax"``) or ``nce_loss`` (``"sigmoid"``).

    ``remove_accidental_hits`` must be given (its default differs between the two).
    """
    arrays, options = _sampled_arguments(weights, biases, inputs, kw)
    value = mp.sampled_loss(kind, *arrays, **options, **kw)
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def sampled_loss_grad(
    kind: str, weights: Any, biases: Any, inputs: Any, **kw: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(loss, dL/dweights, dL/dbiases, dL/dinputs)`` of a sampled loss."""
    arrays, options = _sampled_arguments(weights, biases, inputs, kw)
    value, dw, db, dx = mp.sampled_loss_grad(kind, *arrays, **options, **kw)
    return np.asarray(_f64(value), dtype=np.float64), _f64(dw), _f64(db), _f64(dx)


def _full_arguments(kw: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kw) - {"class_bias", "temperature", "reduction", "chunk_size"}
    if unknown:
        raise TypeError(f"options the oracle does not know: {sorted(unknown)}")
    kw.pop("chunk_size", None)  # an execution strategy: the numbers do not depend on it
    return {name: _plain(value) for name, value in kw.items() if value is not None}


@_cached
def full_softmax_loss(query: Any, classes: Any, labels: Any, **kw: Any) -> np.ndarray:
    """The exact softmax cross-entropy over every class."""
    value = mp.full_softmax_loss(
        _plain(query), _plain(classes), _plain(labels), **_full_arguments(kw)
    )
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def full_softmax_loss_grad(query: Any, classes: Any, labels: Any, **kw: Any) -> tuple:
    """``(loss, dQ, dC, db, dtau)``; ``db`` and ``dtau`` are None without a bias or temperature."""
    args = _full_arguments(kw)
    value, dq, dc, db, dtau = mp.full_softmax_loss_grad(
        _plain(query), _plain(classes), _plain(labels), **args
    )
    return (
        np.asarray(_f64(value), dtype=np.float64),
        _f64(dq),
        _f64(dc),
        None if "class_bias" not in args else _f64(db),
        None if dtau is None else np.asarray(_f64(dtau), dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------
# contrastive losses
# ---------------------------------------------------------------------------------------------


def _scalar(x: Any) -> Any:
    return float(x) if isinstance(x, np.ndarray | np.generic) else x


@_cached
def clip_loss_grad(image: Any, text: Any, logit_scale: Any, **kw: Any) -> tuple:
    """``(loss, dI, dT, dscale)`` of ``clip_loss`` (``reduction`` "mean" or "sum")."""
    value, di, dt, ds = mp.clip_loss_grad(_plain(image), _plain(text), _scalar(logit_scale), **kw)
    return tuple(np.asarray(_f64(x), dtype=np.float64) for x in (value, di, dt, ds))


@_cached
def clip_loss(image: Any, text: Any, logit_scale: Any, **kw: Any) -> np.ndarray:
    """``clip_loss``, any reduction."""
    value = mp.clip_loss(_plain(image), _plain(text), _scalar(logit_scale), **kw)
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def siglip_loss_grad(image: Any, text: Any, logit_scale: Any, logit_bias: Any, **kw: Any) -> tuple:
    """``(loss, dX, dY, dscale, dbias)`` of ``siglip_loss``."""
    out = mp.siglip_loss_grad(
        _plain(image), _plain(text), _scalar(logit_scale), _scalar(logit_bias), **kw
    )
    return tuple(np.asarray(_f64(x), dtype=np.float64) for x in out)


@_cached
def siglip_loss(image: Any, text: Any, logit_scale: Any, logit_bias: Any, **kw: Any) -> np.ndarray:
    """``siglip_loss``, any reduction."""
    value = mp.siglip_loss(
        _plain(image), _plain(text), _scalar(logit_scale), _scalar(logit_bias), **kw
    )
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def nt_xent_loss_grad(view_a: Any, view_b: Any, *, temperature: Any, **kw: Any) -> tuple:
    """``(loss, da, db, dtau)`` of ``nt_xent_loss``."""
    out = mp.nt_xent_loss_grad(
        _plain(view_a), _plain(view_b), temperature=_scalar(temperature), **kw
    )
    return tuple(np.asarray(_f64(x), dtype=np.float64) for x in out)


@_cached
def nt_xent_loss(view_a: Any, view_b: Any, *, temperature: Any, **kw: Any) -> np.ndarray:
    """``nt_xent_loss``, any reduction."""
    value = mp.nt_xent_loss(_plain(view_a), _plain(view_b), temperature=_scalar(temperature), **kw)
    return np.asarray(_f64(value), dtype=np.float64)


@_cached
def supcon_loss_grad(embeddings: Any, *, labels: Any, temperature: Any, **kw: Any) -> tuple:
    """``(loss, dE, dtau)`` of ``supcon_loss``."""
    out = mp.supcon_loss_grad(
        _plain(embeddings), _plain(labels), temperature=_scalar(temperature), **kw
    )
    return tuple(np.asarray(_f64(x), dtype=np.float64) for x in out)


@_cached
def supcon_loss(embeddings: Any, *, labels: Any, temperature: Any, **kw: Any) -> np.ndarray:
    """``supcon_loss``, any reduction."""
    value = mp.supcon_loss(
        _plain(embeddings), _plain(labels), temperature=_scalar(temperature), **kw
    )
    return np.asarray(_f64(value), dtype=np.float64)
