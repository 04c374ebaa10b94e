r"""The temperature and the softmax over one row of logits.

One query scored against 12 candidates by cosine similarity (scores in ``[-1, 1]``, sorted
in decreasing order; two candidates lie close to the query, the rest are random). refloss
divides the scores by the temperature :math:`\tau` before the softmax,
:math:`\mathrm{softmax}(s/\tau)`: at :math:`\tau = 1` the probabilities spread over every
candidate, since cosine similarities differ by at most 2; as :math:`\tau` falls the mass
concentrates on the highest scores, and at :math:`\tau = 0.05` (a common value for
normalised embeddings) nearly all of it sits on the two closest candidates, in the ratio
:math:`e^{(s_1 - s_2)/\tau}` to each other. The probabilities are the gradient of
``refloss.logsumexp`` (``value_and_grad(logsumexp)`` returns the softmax of its input).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss

NAME = "temperature"
TEMPERATURES = (0.05, 0.1, 0.5, 1.0)


class TemperatureRow(NamedTuple):
    scores: np.ndarray  # (N,), cosine similarities, descending
    temperatures: np.ndarray  # (T,)
    probabilities: np.ndarray  # (T, N), softmax(scores / tau), one row per temperature


def compute(
    num_candidates: int = 12,
    dim: int = 16,
    temperatures: tuple[float, ...] = TEMPERATURES,
    seed: int = 4,
) -> TemperatureRow:
    """Softmax of one row of cosine similarities at each temperature."""
    rng = np.random.default_rng(seed)
    query = rng.standard_normal(dim)
    # Two candidates near the query (its positive and a hard negative), the rest random.
    candidates = rng.standard_normal((num_candidates, dim))
    candidates[:2] = query + 1.2 * rng.standard_normal((2, dim))
    query /= np.linalg.norm(query)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    scores = np.sort(candidates @ query)[::-1].copy()

    softmax = refloss.value_and_grad(refloss.logsumexp)
    probabilities = np.stack([softmax(scores / tau)[1][0] for tau in temperatures])
    return TemperatureRow(scores, np.asarray(temperatures, dtype=float), probabilities)


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/temperature.png``."""
    from _style import COLORS, pyplot, save

    plt = pyplot()
    d = compute()
    n = d.scores.size
    columns = np.arange(n)
    width = 0.8 / d.temperatures.size

    fig, (ax_s, ax_p) = plt.subplots(
        1, 2, figsize=(9.6, 3.8), width_ratios=(1, 2.2), layout="constrained"
    )
    ax_s.bar(columns, d.scores, color=COLORS[0], width=0.6)
    ax_s.axhline(0.0, color="0.4", lw=0.8)
    ax_s.set_xticks(columns, [str(j + 1) for j in columns])
    ax_s.set_xlabel("candidate (by score)")
    ax_s.set_ylabel("cosine similarity $s_j$")
    ax_s.set_title("Scores of one row")
    ax_s.set_ylim(-1.0, 1.0)

    colors = (COLORS[1], COLORS[5], COLORS[3], COLORS[2])
    for t, (tau, p) in enumerate(zip(d.temperatures, d.probabilities, strict=True)):
        offset = (t - (d.temperatures.size - 1) / 2) * width
        ax_p.bar(
            columns + offset,
            p,
            width=width,
            color=colors[t % len(colors)],
            label=f"τ = {tau:g} (max {p.max():.2f})",
        )
    ax_p.set_xticks(columns, [str(j + 1) for j in columns])
    ax_p.set_xlabel("candidate (by score)")
    ax_p.set_ylabel(r"probability softmax$(s/\tau)_j$")
    ax_p.set_title("Softmax of the row at four temperatures")
    ax_p.set_ylim(0.0, 1.0)
    ax_p.legend(loc="upper right")
    fig.suptitle("A lower temperature concentrates the softmax on the highest scores", fontsize=11)
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
