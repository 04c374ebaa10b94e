r"""Popularity bias of the in-batch softmax gradient, without and with the logQ correction.

A corpus of ``N = 200`` items whose popularity follows Zipf's law (:math:`p_j \propto 1/j`).
Each batch is ``B = 32`` (query, item) pairs drawn from the interaction log, so items enter
the batch with probability :math:`p_j`, duplicates included; a popular item is in nearly
every batch, a tail item in about one batch in forty. Each row's softmax runs over the
batch's items only (accidental hits of the row's own item removed), and the gradient of
the loss on a negative's logit, :math:`\partial L / \partial S_{ij} = \mathrm{softmax}(S_i)_j`,
is the force that pushes item ``j`` down. Averaged over many batches and divided by the
number of queries, it is compared with the same force under the full softmax over all
``N`` items (what in-batch sampling approximates).

Without correction an item is pushed down in proportion to how often it is sampled:
popular items far too much (about ``N p_j`` times the full softmax), tail items too little.
Subtracting :math:`\log p_j` from every logit (``candidate_sampling_probability = p``, the
probability with which a batch slot holds item ``j``) makes the average match the full
softmax. Batches hold duplicates, so the probability to pass is the per-slot sampling
probability :math:`p_j` (proportional to the expected count :math:`B p_j`; the constant
factor cancels in the softmax), not the probability :math:`1 - (1 - p_j)^B` that the item
appears at all, which under-corrects the head.

Everything is computed with refloss on NumPy: ``logq_correction``,
``remove_accidental_hits`` and ``value_and_grad(softmax_cross_entropy)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss

NAME = "popularity_bias"


class PopularityBias(NamedTuple):
    """Per item, in order of popularity: the average negative gradient per query."""

    rank: np.ndarray  # 1 .. N
    popularity: np.ndarray  # p_j, Zipf, sums to 1
    full: np.ndarray  # full softmax over all N items
    in_batch: np.ndarray  # in-batch softmax, no correction
    in_batch_logq: np.ndarray  # in-batch softmax, candidate_sampling_probability = p

    @staticmethod
    def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
        """``||estimate - reference|| / ||reference||`` over the items."""
        return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def compute(
    num_items: int = 200,
    batch_size: int = 32,
    num_batches: int = 1500,
    dim: int = 8,
    zipf_exponent: float = 1.0,
    scale: float = 0.15,
    seed: int = 0,
) -> PopularityBias:
    """Average gradient on each item's logit, per query, over ``num_batches`` batches."""
    rng = np.random.default_rng(seed)
    rank = np.arange(1, num_items + 1)
    popularity = rank ** (-zipf_exponent)
    popularity /= popularity.sum()
    # Small random embeddings: scores near 0, so the full softmax is close to uniform and
    # the bias comes from sampling alone. A query lies near the item it interacted with.
    items = scale * rng.standard_normal((num_items, dim))
    loss_and_grad = refloss.value_and_grad(refloss.softmax_cross_entropy)

    full = np.zeros(num_items)
    plain = np.zeros(num_items)
    logq = np.zeros(num_items)
    rows = np.arange(batch_size)
    for _ in range(num_batches):
        ids = rng.choice(num_items, size=batch_size, p=popularity)
        queries = items[ids] + scale * rng.standard_normal((batch_size, dim))

        # Full softmax: every item is a candidate; the target is the row's own item.
        _, (g_full,) = loss_and_grad(queries @ items.T, labels=ids)
        g_full[rows, ids] = 0.0  # keep the negatives' share only
        full += g_full.sum(axis=0)

        # In-batch softmax: the batch's items are the candidates (column i is row i's item).
        scores = queries @ items[ids].T
        for corrected, acc in ((False, plain), (True, logq)):
            logits = scores
            if corrected:
                logits = refloss.logq_correction(logits, popularity[ids])
            logits = refloss.remove_accidental_hits(logits, ids)
            _, (g,) = loss_and_grad(logits)
            g[rows, rows] = 0.0
            np.add.at(acc, ids, g.sum(axis=0))

    n = num_batches * batch_size
    return PopularityBias(rank, popularity, full / n, plain / n, logq / n)


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/popularity_bias.png``."""
    from _style import COLORS, pyplot, save

    plt = pyplot()
    d = compute()
    err_plain = d.relative_error(d.in_batch, d.full)
    err_logq = d.relative_error(d.in_batch_logq, d.full)

    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained")
    ax.loglog(d.rank, d.full, color=COLORS[0], lw=2.0, label="full softmax (all items)")
    plain = {"color": COLORS[1], "marker": "o", "ms": 2.5, "lw": 0.8}
    logq = {"color": COLORS[2], "marker": "o", "ms": 2.5, "lw": 0.8}
    ax.loglog(
        d.rank, d.in_batch, label=f"in-batch, no correction (rel. error {err_plain:.0%})", **plain
    )
    ax.loglog(
        d.rank, d.in_batch_logq, label=f"in-batch with logQ (rel. error {err_logq:.0%})", **logq
    )
    ax.set_xlabel("item popularity rank (1 = most popular)")
    ax.set_ylabel("average gradient pushing the item down\n(per query)")
    ax.set_title("Negative gradient per item")
    ax.legend(loc="lower left")

    ax_ratio.axhline(1.0, color=COLORS[0], lw=2.0, label="full softmax")
    ax_ratio.loglog(d.rank, d.in_batch / d.full, label="in-batch, no correction", **plain)
    ax_ratio.loglog(d.rank, d.in_batch_logq / d.full, label="in-batch with logQ", **logq)
    ax_ratio.set_xlabel("item popularity rank (1 = most popular)")
    ax_ratio.set_ylabel("in-batch / full softmax")
    ax_ratio.set_title("Ratio to the full softmax")
    ax_ratio.legend(loc="upper right")

    fig.suptitle(
        f"In-batch softmax on a Zipf corpus (N = {d.rank.size} items, batches of 32): "
        "logQ removes the popularity bias",
        fontsize=11,
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
