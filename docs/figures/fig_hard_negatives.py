r"""Which columns carry gradient, without and with hard-negative mining.

``B = 8`` queries against ``N = 24`` candidates (the batch's 8 positives on the diagonal and
16 extra negatives), logits :math:`S = QC^\top/\tau`. The gradient of the in-batch softmax
cross-entropy on a logit is :math:`\partial L/\partial S_{ij} = \mathrm{softmax}(S_i)_j -
[j = i]`: without mining every column of a row gets some, most of it small. With
``mine_hard_negatives(S, num_hard_negatives=k)`` each row keeps its positive and its ``k``
largest negatives and masks the rest with :math:`-\infty`, so exactly those ``k + 1``
columns carry gradient and every other entry is exactly 0. The gradients come from
``refloss.value_and_grad(refloss.softmax_cross_entropy)`` on the logits (NumPy).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss

NAME = "hard_negatives"


class HardNegatives(NamedTuple):
    logits: np.ndarray  # (B, N), positives on the diagonal
    grad_all: np.ndarray  # (B, N), dL/dS without mining
    grad_mined: np.ndarray  # (B, N), dL/dS after mine_hard_negatives
    num_hard_negatives: int


def compute(
    batch_size: int = 8,
    num_candidates: int = 24,
    dim: int = 16,
    num_hard_negatives: int = 3,
    temperature: float = 0.2,
    seed: int = 0,
) -> HardNegatives:
    """Gradients of the in-batch softmax cross-entropy on the logits, with and without mining."""
    rng = np.random.default_rng(seed)
    candidates = rng.standard_normal((num_candidates, dim))
    queries = candidates[:batch_size] + 1.5 * rng.standard_normal((batch_size, dim))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    logits = queries @ candidates.T / temperature

    loss_and_grad = refloss.value_and_grad(refloss.softmax_cross_entropy)
    _, (grad_all,) = loss_and_grad(logits)
    mined = refloss.mine_hard_negatives(logits, num_hard_negatives=num_hard_negatives)
    _, (grad_mined,) = loss_and_grad(mined)
    return HardNegatives(logits, grad_all, grad_mined, num_hard_negatives)


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/hard_negatives.png``."""
    from _style import pyplot, save
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch, Rectangle

    plt = pyplot()
    d = compute()
    b, n = d.logits.shape
    magnitudes = [np.abs(d.grad_all), np.abs(d.grad_mined)]
    nonzero = np.concatenate([m[m > 0] for m in magnitudes])
    norm = LogNorm(vmin=max(nonzero.min(), 1e-4), vmax=1.0, clip=True)
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.92")  # exactly zero gradient: masked, drawn light grey

    fig, axes = plt.subplots(2, 1, figsize=(8.8, 6.6), layout="constrained", sharex=True)
    titles = (
        "Without mining: every column carries gradient",
        f"With mine_hard_negatives(k = {d.num_hard_negatives}): "
        f"the positive and the {d.num_hard_negatives} hardest negatives",
    )
    for ax, m, title in zip(axes, magnitudes, titles, strict=True):
        image = ax.imshow(
            np.ma.masked_equal(m, 0.0), cmap=cmap, norm=norm, aspect="equal", origin="upper"
        )
        for i in range(b):
            ax.add_patch(
                Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#D55E00", lw=2.0)
            )
        ax.axvline(b - 0.5, color="white", lw=2.0)
        ax.set_title(f"{title}  ({int((m > 0).sum())} of {b * n} entries)")
        ax.set_ylabel("query i")
        ax.set_yticks(range(b))
        ax.grid(False)
    axes[-1].set_xticks(range(0, n, 2))
    axes[-1].set_xlabel(
        f"candidate j (0-{b - 1}: the batch's positives, {b}-{n - 1}: extra negatives)"
    )
    fig.colorbar(image, ax=axes, label=r"$|\partial L / \partial S_{ij}|$ (log scale)", shrink=0.8)
    axes[-1].legend(
        handles=[
            Patch(facecolor="none", edgecolor="#D55E00", lw=2.0, label="positive (column i)"),
            Patch(facecolor="0.92", edgecolor="0.6", label="exactly 0 (masked)"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=2,
        frameon=False,
    )
    fig.suptitle(
        "Hard-negative mining: which logits of an 8 x 24 batch carry gradient", fontsize=11
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
