r"""The bias of the sampled softmax gradient, with and without the log Q correction.

A classifier over ``K = 1000`` classes (weights :math:`w_k`, biases :math:`b_k`) scores
``B = 8`` fixed inputs :math:`x_i`, whose labels :math:`y_i` are drawn from the proposal
below. The class ids are sorted by popularity and the proposal is refloss's log-uniform
sampler, :math:`P(k) = \log((k + 2)/(k + 1)) / \log(K + 1)`: class 0 is drawn with
probability 0.10, class 999 with 0.00014. The weights are random; the biases hold
:math:`0.7 \log P(k)` plus noise, as those of a trained model hold part of the log
popularity. The exact gradient :math:`g` is that of ``refloss.full_softmax_loss`` (every
class in every row).

For ``S`` in 16, 64, 256 and 1024, ``R`` draws of ``S`` classes each are made, with
replacement (``unique=False``; expected count :math:`S P(k)`). Each draw gives the
gradient :math:`g_S` of ``refloss.sampled_softmax_loss`` (TensorFlow's defaults:
accidental hits removed) with respect to every parameter, the weights, biases and
inputs, with ``subtract_log_q=True`` and with ``subtract_log_q=False`` (on the same
draws). The average over the draws estimates the expected gradient
:math:`\mathbb{E}[g_S]`, and

.. math::

    \text{bias}(S) = \frac{\lVert \overline{g_S} - g \rVert}{\lVert g \rVert}

its relative distance to the exact gradient: the bias of the estimator, not its
variance. The Monte-Carlo error of :math:`\overline{g_S}` has expected squared norm
:math:`\operatorname{tr}\operatorname{Cov}(g_S) / R`; its square root, relative to
:math:`\lVert g \rVert` and estimated from the draws themselves, is reported as the
standard error ``noise``. Since :math:`\mathbb{E}\lVert \overline{g_S} - g \rVert^2 =
\lVert \mathbb{E}[g_S] - g \rVert^2 + \operatorname{tr}\operatorname{Cov}(g_S)/R`, a
``noise`` below a fifth of ``bias`` means the noise adds under 2 % to the bias shown. The
number of draws grows with ``S`` because the bias of the corrected estimator shrinks
faster than the noise.

The limits :math:`S \to \infty` are computed in closed form. With the correction, the
sampled classes estimate :math:`\sum_{k \ne y_i} e^{s_{ik}}` without bias, and the true
column's weight :math:`e^{s_{iy}} / (S P(y_i))` vanishes: the limit is the full softmax
without the true class's own term, an error of the order of the model's probability of
the true class (accidental hits kept, the limit would be exact). Without it, the
sampled sum tends to :math:`S \sum_{k \ne y_i} P(k) e^{s_{ik}}`, a softmax over
:math:`s_{ik} + \log P(k)`: popular classes are pushed down too hard and rare ones too
little, however many classes are sampled.

The per-class panel shows where the bias goes, at ``S = 1024``: the push on class
:math:`k`, the probability the rows put on it in total, which is the gradient on its
bias plus the number of rows whose label it is,
:math:`\partial L / \partial b_k + \#\{i : y_i = k\}` (for the full softmax
:math:`\sum_i p_{ik}`), averaged over the draws, relative to the full softmax, in bins of
popularity rank.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss
from refloss import samplers

NAME = "sampled_bias"
SIZES = (16, 64, 256, 1024)
DRAWS = (400, 500, 800, 1600)  # R for each S
HEAD = 10  # classes 0..9, the most popular
TAIL = 500  # classes 500..999, the rarer half


class SampledBias(NamedTuple):
    """Relative bias of the expected sampled-softmax gradient, and the push per class."""

    num_sampled: np.ndarray  # S, (4,)
    num_draws: np.ndarray  # R per S
    bias_logq: np.ndarray  # ||mean g_S - g|| / ||g||, subtract_log_q=True
    bias_plain: np.ndarray  # the same, subtract_log_q=False
    noise_logq: np.ndarray  # Monte-Carlo standard error: sqrt(tr Cov(g_S) / R) / ||g||
    noise_plain: np.ndarray
    limit_logq: float  # the bias as S -> infinity, in closed form
    limit_plain: float
    popularity: np.ndarray  # P(k), k = 0 .. K - 1, decreasing
    push_full: np.ndarray  # sum_i p_ik, per class
    push_logq: np.ndarray  # dL/db_k + #{i: y_i = k}, averaged over the draws at S = 1024
    push_plain: np.ndarray

    def group_ratio(self, push: np.ndarray, group: slice) -> float:
        """Total push on a group of classes, relative to the full softmax."""
        return float(push[group].sum() / self.push_full[group].sum())


def _flat(grads: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate([g.ravel() for g in grads])


def _limit(
    scores: np.ndarray, labels: np.ndarray, log_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``dL/dscores`` as S -> infinity, and the bias gradient: a softmax over the classes
    other than the label, of ``scores + log_weight``, and -1 on the label."""
    rows = np.arange(scores.shape[0])
    logits = scores + log_weight
    logits[rows, labels] = -np.inf
    grad = np.exp(logits - logits.max(axis=1, keepdims=True))
    grad /= grad.sum(axis=1, keepdims=True)
    grad[rows, labels] = -1.0
    return grad, grad.sum(axis=0)


def compute(
    num_classes: int = 1000,
    dim: int = 16,
    batch_size: int = 8,
    sizes: tuple[int, ...] = SIZES,
    draws: tuple[int, ...] = DRAWS,
    seed: int = 0,
) -> SampledBias:
    """Average the sampled-softmax gradient over many draws for each ``S``."""
    rng = np.random.default_rng(seed)
    sampler = samplers.log_uniform(num_classes)
    popularity = np.asarray(sampler.probability(np.arange(num_classes)))
    weights = 0.4 * rng.standard_normal((num_classes, dim))
    biases = 0.7 * np.log(popularity) + 0.3 * rng.standard_normal(num_classes)
    inputs = rng.standard_normal((batch_size, dim))
    labels = sampler.sample(batch_size, unique=False, rng=rng).candidates

    # The exact gradient, with respect to the same parameters in the same order.
    full = refloss.value_and_grad(
        refloss.full_softmax_loss,
        wrt=("class_embeddings", "class_bias", "query_embeddings"),
    )
    _, g_full = full(inputs, weights, labels=labels, class_bias=biases, reduction="sum")
    exact = _flat(g_full)
    norm = float(np.linalg.norm(exact))
    per_label = np.bincount(labels, minlength=num_classes)
    push_full = g_full[1] + per_label

    # The limits S -> infinity, in closed form (see the module docstring).
    scores = inputs @ weights.T + biases
    limits = []
    for log_weight in (np.zeros(num_classes), np.log(popularity)):
        g, g_bias = _limit(scores, labels, log_weight)
        limit = _flat((g.T @ inputs, g_bias, g @ weights))
        limits.append(float(np.linalg.norm(limit - exact) / norm))

    sampled = refloss.value_and_grad(refloss.sampled_softmax_loss)
    bias = np.zeros((2, len(sizes)))
    noise = np.zeros((2, len(sizes)))
    push = np.zeros((2, num_classes))
    for n, (num_sampled, num_draws) in enumerate(zip(sizes, draws, strict=True)):
        # R independent draws with replacement: one stream of R * S draws, cut in R.
        stream = sampler.sample(num_sampled * num_draws, unique=False, rng=rng).candidates
        candidates = stream.reshape(num_draws, num_sampled)
        sampled_count = sampler.expected_count(candidates, num_sampled=num_sampled, unique=False)
        true_count = sampler.expected_count(labels[:, None], num_sampled=num_sampled, unique=False)
        for c, correct in enumerate((True, False)):
            total = np.zeros_like(exact)
            squares = np.zeros_like(exact)
            bias_grads = np.zeros(num_classes)
            for r in range(num_draws):
                _, grads = sampled(
                    weights,
                    biases,
                    inputs,
                    labels=labels[:, None],
                    sampled_candidates=candidates[r],
                    true_expected_count=true_count,
                    sampled_expected_count=sampled_count[r],
                    subtract_log_q=correct,
                    reduction="sum",
                )
                g = _flat(grads)
                total += g
                squares += g * g
                bias_grads += grads[1]
            mean = total / num_draws
            variance = (squares - num_draws * mean * mean) / (num_draws - 1)
            bias[c, n] = np.linalg.norm(mean - exact) / norm
            noise[c, n] = np.sqrt(variance.sum() / num_draws) / norm
            push[c] = bias_grads / num_draws + per_label  # the last S is kept

    return SampledBias(
        np.asarray(sizes),
        np.asarray(draws),
        bias[0],
        bias[1],
        noise[0],
        noise[1],
        limits[0],
        limits[1],
        popularity,
        push_full,
        push[0],
        push[1],
    )


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/sampled_bias.png``."""
    from _style import COLORS, pyplot, save

    plt = pyplot()
    d = compute()
    fig, (ax, ax_push) = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")

    plain = {"color": COLORS[1], "marker": "o", "ms": 4, "lw": 1.2, "capsize": 3}
    logq = {"color": COLORS[2], "marker": "o", "ms": 4, "lw": 1.2, "capsize": 3}
    ax.errorbar(d.num_sampled, d.bias_plain, yerr=d.noise_plain, label="no correction", **plain)
    ax.errorbar(d.num_sampled, d.bias_logq, yerr=d.noise_logq, label="with log Q", **logq)
    ax.axhline(d.limit_plain, color=COLORS[1], lw=0.8, ls="--", label="S → ∞, no correction")
    ax.axhline(d.limit_logq, color=COLORS[2], lw=0.8, ls="--", label="S → ∞, with log Q")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(d.num_sampled, [str(s) for s in d.num_sampled])
    ax.set_xlabel("sampled classes S")
    ax.set_ylabel(r"$\Vert \overline{g_S} - g \Vert \,/\, \Vert g \Vert$")
    ax.set_title("Bias of the expected gradient")
    ax.legend(loc="lower left")

    # Geometric bins of popularity rank; the ratio of the totals in each bin.
    num_classes = d.popularity.size
    edges = np.unique(np.geomspace(1, num_classes + 1, 16).astype(int))
    centres = np.sqrt(edges[:-1] * edges[1:])

    def binned(push: np.ndarray) -> np.ndarray:
        bins = [slice(lo - 1, hi - 1) for lo, hi in pairwise(edges)]
        return np.array([push[b].sum() / d.push_full[b].sum() for b in bins])

    ax_push.axhline(1.0, color=COLORS[0], lw=2.0, label="full softmax")
    line = {"marker": "o", "ms": 3.5, "lw": 1.0}
    s = int(d.num_sampled[-1])
    ax_push.loglog(centres, binned(d.push_plain), color=COLORS[1], label="no correction", **line)
    ax_push.loglog(centres, binned(d.push_logq), color=COLORS[2], label="with log Q", **line)
    ax_push.set_xlabel("class popularity rank (1 = most popular)")
    ax_push.set_ylabel("push on the class, sampled / full")
    ax_push.set_title(f"Where the bias goes (S = {s})")
    ax_push.legend(loc="lower left")

    fig.suptitle(
        f"Sampled softmax on {num_classes} Zipf-distributed classes, "
        "log-uniform proposal: log Q removes the bias as S grows",
        fontsize=11,
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
