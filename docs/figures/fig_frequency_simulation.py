r"""The simulation of Yi et al. (2019), section 6.1: the streaming frequency estimator
tracking a distribution that changes.

:math:`N = 1000` items (the paper's :math:`M`), ids 0 to 999. At every step a batch of
``BATCH = 128`` distinct items is drawn without replacement, item :math:`k` with weight
:math:`q_k \propto (k + 1)^2` for the first ``SWITCH = 10000`` steps, and from the
mirror image, :math:`q_k \propto (N - k)^2`, for the next 10000 (the paper writes the two
as :math:`q_i \propto i^2` and :math:`(M - 1 - i)^2`). Each batch's ids go to
``FrequencyEstimator.update`` (one call per step; the step counts from 1), and every
``EVERY = 10`` steps ``probability`` is read for all :math:`N` items. The estimator
starts as in the paper, :math:`A = 0` and :math:`B = 100`, with the default
``first_sighting="update"``; the paper's memory is :math:`H M = 5000` buckets in total
(in the code's notation: :math:`H` hash functions of :math:`M` buckets each).

**The target.** The paper's error compares :math:`\hat p_k` with :math:`128\, q_k`. What
the estimator estimates, and what the logQ correction needs, is the probability
:math:`\pi_k` that item :math:`k` is in the batch; for draws without replacement it is
not :math:`128\, q_k` (the most frequent item is in 35.3 % of the batches, not 38.3 %).
The error here is therefore

.. math::

    e(t) = \frac{1}{2 \cdot 128} \sum_{k} \bigl|\hat p_k(t) - \pi_k\bigr|,

with :math:`\pi` computed exactly (:func:`inclusion_probability`); a perfect estimator
would score 0.023 against the paper's target. The paper's error against :math:`128\, q` is
kept too (``errors_alpha_paper``).

**Drawing without replacement.** Drawing one item at a time with probability
proportional to :math:`q` among the items not yet drawn (what
``rng.choice(N, 128, replace=False, p=q)`` does) is the same distribution as keeping the
128 smallest of the keys :math:`E_k / q_k`, :math:`E_k` independent standard
exponentials: the item with the smallest key is item :math:`k` with probability
:math:`q_k / \sum_j q_j`, and by the memorylessness of the exponential the rest of the
race is the same race over the remaining items. The keys draw all the batches at once.
The same property gives :math:`\pi` exactly: item :math:`k` is in the batch when fewer
than 128 of the other keys are below its own, so

.. math::

    \pi_k = \int_0^\infty q_k e^{-q_k x}\,
        \Pr\bigl[\#\{j \ne k : E_j / q_j < x\} \le 127\bigr]\, dx,

where the count is a sum of independent Bernoulli variables of probabilities
:math:`1 - e^{-q_j x}` (its distribution up to 127, without item :math:`k`, by products of
the items before and after :math:`k`), and the integral is taken by Gauss-Legendre
quadrature. :math:`\sum_k \pi_k = 128` to 13 digits.

**The runs.** All runs see the same batches.

* :math:`\alpha` in ``ALPHAS`` with one hash of 5000 buckets. At these sizes the hash
  puts 181 of the 1000 items in a bucket shared with another item, so the same three runs
  are repeated on ids chosen to fall in 1000 distinct buckets (``separate``): the
  estimator without collisions, which Proposition 4.1 describes.
* :math:`H` in ``HASHES`` at equal memory, :math:`M = 5000 / H`, at :math:`\alpha` =
  ``HASH_ALPHA``.
* The same three :math:`H` for totals of ``SWEEP_BUCKETS`` buckets, first phase only:
  the error averaged over steps 8001 to 10000 (``steady_sweep``).

The paper's figures show the curves, not how long they ran; here the distribution changes
at step 10000 and the run stops at 20000.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from refloss import frequency

NAME = "frequency_simulation"
NUM_ITEMS = 1000
BATCH = 128
SWITCH = 10_000  # the last step drawn from the first distribution
NUM_STEPS = 20_000
EVERY = 10  # probability() of every item each EVERY steps
INITIAL_GAP = 100.0
TOTAL_BUCKETS = 5000
ALPHAS = (0.01, 0.05, 0.1)
HASHES = (1, 2, 4)
HASH_ALPHA = 0.01
SWEEP_BUCKETS = (500, 1000, 2000, 5000, 10_000, 20_000)
STEADY = (8000, 10_000)  # the window of the steady state before the switch
STEADY_AFTER = (18_000, 20_000)


class Simulation(NamedTuple):
    """Error curves of the estimator on the stream of section 6.1, and what explains them."""

    steps: np.ndarray  # (S,) the steps at which the error was read: EVERY, 2 EVERY, ...
    alphas: np.ndarray  # (3,)
    errors_alpha: np.ndarray  # (3, S) one hash of TOTAL_BUCKETS buckets, error against pi
    errors_alpha_paper: np.ndarray  # (3, S) the same runs, error against 128 q
    errors_separate: np.ndarray  # (3, S) the same, ids in distinct buckets (no collision)
    hashes: np.ndarray  # (3,) H
    errors_hashes: np.ndarray  # (3, S) H hashes of TOTAL_BUCKETS / H buckets, HASH_ALPHA
    sweep_buckets: np.ndarray  # (6,) total buckets H M
    steady_sweep: np.ndarray  # (3, 6) error averaged over STEADY, per H and total
    inclusion: np.ndarray  # (N,) pi_k, first phase (the second is its mirror image)
    weights: np.ndarray  # (N,) q_k, first phase, sums to 1
    last_seen: np.ndarray  # (N,) the last step at which each item was in a batch
    shared: np.ndarray  # (N,) bool: the item shares its bucket (one hash, 5000 buckets)
    at_switch_alpha: np.ndarray  # (3, N) p-hat of every item at step SWITCH
    at_switch_separate: np.ndarray  # (3, N) the same without collisions
    at_end_separate: np.ndarray  # (3, N) p-hat at the last step, without collisions
    predicted_separate: np.ndarray  # (3,) the steady-state error Proposition 4.1 predicts

    def window(self, errors: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The mean error over the reads at steps ``lo < t <= hi`` (last axis)."""
        keep = (self.steps > lo) & (self.steps <= hi)
        return errors[..., keep].mean(axis=-1)

    def steady(self, errors: np.ndarray) -> np.ndarray:
        """The steady-state error before the switch (steps 8001 to 10000)."""
        return self.window(errors, *STEADY)

    def steady_after(self, errors: np.ndarray) -> np.ndarray:
        """The error over the last 2000 steps (18001 to 20000)."""
        return self.window(errors, *STEADY_AFTER)

    def settling(self, errors: np.ndarray, factor: float = 1.1) -> np.ndarray:
        """Per curve, the first step at which the error is within ``factor`` times its
        steady state: how long the initialisation ``B = 100`` takes to forget."""
        target = self.steady(errors)[..., None] * factor
        before = self.steps <= SWITCH
        reached = (errors[..., before] <= target).argmax(axis=-1)
        return self.steps[before][reached]

    def recovery(self, errors: np.ndarray, level: float = 0.3) -> np.ndarray:
        """Per curve, the number of steps after the switch until the error is below
        ``level`` (-1 if it never is)."""
        after = self.steps > SWITCH
        below = errors[..., after] < level
        first = self.steps[after][below.argmax(axis=-1)] - SWITCH
        return np.where(below.any(axis=-1), first, -1)

    def error(self, estimate: np.ndarray, items: np.ndarray | None = None) -> float:
        """The error of one first-phase estimate, over ``items`` (a mask) or all items."""
        terms = np.abs(estimate - self.inclusion) / (2 * BATCH)
        return float(terms.sum() if items is None else terms[items].sum())


def inclusion_probability(weights: np.ndarray, batch: int, nodes: int = 100) -> np.ndarray:
    r"""The probability that each item is in a batch of ``batch`` distinct items drawn
    one at a time with probability proportional to ``weights`` among those not yet drawn.

    See the module docstring: item :math:`k` is in the batch when fewer than ``batch`` of
    the other exponential keys :math:`E_j / q_j` are below its own. For each quadrature
    node :math:`x`, the distribution of that count, truncated to ``batch`` values, is built
    from the items before :math:`k` (prefix) and after it (suffix).
    """
    q = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    n = q.size
    # The scale of the batch-th smallest key: sum_k (1 - exp(-q_k x)) = batch.
    lo, hi = 0.0, 1.0
    while -np.expm1(-q * hi).sum() < batch:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if -np.expm1(-q * mid).sum() < batch else (lo, mid)
    end = 4.0 * hi  # beyond it, batch keys are below x with probability ~ 1
    nodes_01, node_weights = np.polynomial.legendre.leggauss(nodes)
    x = 0.5 * end * (nodes_01 + 1.0)
    dx = 0.5 * end * node_weights
    result = np.zeros(n)
    for chunk in np.array_split(np.arange(nodes), max(1, nodes // 50)):
        xc = x[chunk]
        hit = -np.expm1(-np.outer(q, xc))  # (n, G): P(key_j < x)
        miss = 1.0 - hit
        prefix = np.zeros((n + 1, xc.size, batch))
        prefix[0, :, 0] = 1.0
        for j in range(n):
            prefix[j + 1] = prefix[j] * miss[j][:, None]
            prefix[j + 1, :, 1:] += prefix[j, :, :-1] * hit[j][:, None]
        suffix = np.zeros((xc.size, batch))
        suffix[:, 0] = 1.0
        fewer = np.empty((n, xc.size))  # P(count without k <= batch - 1)
        for k in range(n - 1, -1, -1):
            below = np.cumsum(suffix, axis=1)[:, ::-1]  # P(suffix <= batch - 1 - a)
            fewer[k] = np.einsum("ga,ga->g", prefix[k], below)
            shifted = np.zeros_like(suffix)
            shifted[:, 1:] = suffix[:, :-1] * hit[k][:, None]
            suffix = suffix * miss[k][:, None] + shifted
        density = q[:, None] * np.exp(-np.outer(q, xc))  # of item k's key
        result += (density * fewer) @ dx[chunk]
    return result


def draw_batches(weights: np.ndarray, num_steps: int, rng: np.random.Generator) -> np.ndarray:
    """``(num_steps, BATCH)`` ids: each row the ``BATCH`` smallest keys ``E_k / q_k``."""
    q = weights / weights.sum()
    out = np.empty((num_steps, BATCH), dtype=np.int64)
    for start in range(0, num_steps, 500):
        rows = min(500, num_steps - start)
        keys = rng.standard_exponential((rows, q.size)) / q
        out[start : start + rows] = np.argpartition(keys, BATCH - 1, axis=1)[:, :BATCH]
    return out


def _separate_ids(num_buckets: int, seed: int) -> np.ndarray:
    """``NUM_ITEMS`` ids whose buckets under one hash of ``num_buckets`` are distinct."""
    seeds = frequency.init(num_buckets, seed=seed).seeds
    candidates = np.arange(4 * NUM_ITEMS, dtype=np.int64)
    bucket = np.asarray(frequency.buckets(candidates, seeds=seeds, num_buckets=num_buckets))[0]
    _, first = np.unique(bucket, return_index=True)
    return candidates[np.sort(first)][:NUM_ITEMS]


def _run(
    batches: np.ndarray,
    ids: np.ndarray,
    targets: list[tuple[np.ndarray, np.ndarray]],
    *,
    num_buckets: int,
    num_hashes: int,
    alpha: float,
    seed: int,
    read_from: int = 0,
    snapshots: tuple[int, ...] = (),
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Feed the batches (item k has id ``ids[k]``); every EVERY steps after ``read_from``,
    the error against each target, per phase: ``targets[i] = (first, second)``."""
    estimator = frequency.FrequencyEstimator(
        num_buckets,
        num_hashes=num_hashes,
        initial_gap=INITIAL_GAP,
        learning_rate=alpha,
        seed=seed,
    )
    errors = []
    saved = {}
    for t, batch in enumerate(batches, start=1):
        estimator.update(ids[batch], step=t)
        if (t % EVERY == 0 and t > read_from) or t in snapshots:
            estimate = np.asarray(estimator.probability(ids))
            if t in snapshots:
                saved[t] = estimate
            if t % EVERY == 0 and t > read_from:
                phase = 0 if t <= SWITCH else 1
                errors.append([np.abs(estimate - p[phase]).sum() for p in targets])
    return np.asarray(errors).T / (2 * BATCH), saved


def compute(seed: int = 0) -> Simulation:
    """Run every configuration on one stream of batches (``seed`` draws the stream and
    chooses the hash functions)."""
    rank = np.arange(1, NUM_ITEMS + 1, dtype=np.float64)
    weights = rank**2 / np.sum(rank**2)
    inclusion = inclusion_probability(weights, BATCH)
    rng = np.random.default_rng(seed)
    batches = np.concatenate(
        [
            draw_batches(weights, SWITCH, rng),
            draw_batches(weights[::-1], NUM_STEPS - SWITCH, rng),
        ]
    )
    exact = (inclusion, inclusion[::-1].copy())
    paper = (BATCH * weights, BATCH * weights[::-1])
    items = np.arange(NUM_ITEMS, dtype=np.int64)
    separate = _separate_ids(TOTAL_BUCKETS, seed)
    snaps = (SWITCH, NUM_STEPS)

    alpha_runs, separate_runs = [], []
    for alpha in ALPHAS:
        common = {"num_buckets": TOTAL_BUCKETS, "num_hashes": 1, "alpha": alpha, "seed": seed}
        alpha_runs.append(_run(batches, items, [exact, paper], snapshots=snaps, **common))
        separate_runs.append(_run(batches, separate, [exact], snapshots=snaps, **common))
    errors_alpha = np.stack([e[0] for e, _ in alpha_runs])
    hash_errors = [errors_alpha[ALPHAS.index(HASH_ALPHA)]]
    for h in HASHES[1:]:
        errors, _ = _run(
            batches,
            items,
            [exact],
            num_buckets=TOTAL_BUCKETS // h,
            num_hashes=h,
            alpha=HASH_ALPHA,
            seed=seed,
        )
        hash_errors.append(errors[0])
    errors_hashes = np.stack(hash_errors)

    steps = np.arange(EVERY, NUM_STEPS + 1, EVERY)
    window = (steps > STEADY[0]) & (steps <= STEADY[1])
    steady_sweep = np.empty((len(HASHES), len(SWEEP_BUCKETS)))
    for i, h in enumerate(HASHES):
        for j, total in enumerate(SWEEP_BUCKETS):
            if total == TOTAL_BUCKETS:
                steady_sweep[i, j] = errors_hashes[i, window].mean()
                continue
            errors, _ = _run(
                batches[:SWITCH],
                items,
                [exact],
                num_buckets=total // h,
                num_hashes=h,
                alpha=HASH_ALPHA,
                seed=seed,
                read_from=STEADY[0],
            )
            steady_sweep[i, j] = errors[0].mean()

    seeds = frequency.init(TOTAL_BUCKETS, seed=seed).seeds
    bucket = np.asarray(frequency.buckets(items, seeds=seeds, num_buckets=TOTAL_BUCKETS))[0]
    shared = np.bincount(bucket, minlength=TOTAL_BUCKETS)[bucket] > 1
    last_seen = np.zeros(NUM_ITEMS, dtype=np.int64)
    last_seen[batches] = np.arange(1, NUM_STEPS + 1)[:, None]
    # Proposition 4.1 without collisions: B fluctuates around 1/pi_k with the stationary
    # variance alpha / (2 - alpha) Var(gap), Var(gap) = (1 - pi_k) / pi_k^2 for geometric
    # gaps, so p-hat has the relative standard deviation sqrt(alpha (1 - pi_k) / (2 - alpha));
    # a normal variable's mean absolute deviation is sqrt(2 / pi) times its s.d.
    alphas = np.asarray(ALPHAS)[:, None]
    spread = np.sqrt(alphas / (2.0 - alphas) * (1.0 - inclusion))
    predicted = (inclusion * spread).sum(axis=1) * np.sqrt(2.0 / np.pi) / (2 * BATCH)
    return Simulation(
        steps=steps,
        alphas=np.asarray(ALPHAS),
        errors_alpha=errors_alpha,
        errors_alpha_paper=np.stack([e[1] for e, _ in alpha_runs]),
        errors_separate=np.stack([e[0] for e, _ in separate_runs]),
        hashes=np.asarray(HASHES),
        errors_hashes=errors_hashes,
        sweep_buckets=np.asarray(SWEEP_BUCKETS),
        steady_sweep=steady_sweep,
        inclusion=inclusion,
        weights=weights,
        last_seen=last_seen,
        shared=shared,
        at_switch_alpha=np.stack([s[SWITCH] for _, s in alpha_runs]),
        at_switch_separate=np.stack([s[SWITCH] for _, s in separate_runs]),
        at_end_separate=np.stack([s[NUM_STEPS] for _, s in separate_runs]),
        predicted_separate=predicted,
    )


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/frequency_simulation.png``."""
    from _style import COLORS, pyplot, save
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    plt = pyplot()
    d = compute()
    fig, (ax_alpha, ax_hash, ax_sweep) = plt.subplots(
        1, 3, figsize=(13.2, 4.6), layout="constrained"
    )
    error_ticks = (0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5)

    def ticks(ax, y=error_ticks, x=None):
        for axis, values in ((ax.yaxis, y), (ax.xaxis, x)):
            if values is not None:
                axis.set_major_locator(FixedLocator(values))
                axis.set_major_formatter(lambda v, _: f"{v:g}")
                axis.set_minor_locator(NullLocator())
                axis.set_minor_formatter(NullFormatter())

    colors = (COLORS[2], COLORS[3], COLORS[1])
    for alpha, err, sep, color in zip(
        d.alphas, d.errors_alpha, d.errors_separate, colors, strict=True
    ):
        ax_alpha.plot(d.steps, err, color=color, lw=1.0, label=rf"$\alpha$ = {alpha:g}")
        ax_alpha.plot(d.steps, sep, color=color, lw=0.8, ls="--")
    ax_alpha.plot([], [], color=COLORS[0], lw=0.8, ls="--", label="ids in distinct buckets")
    ax_alpha.set_title(f"Learning rate (H = 1, M = {TOTAL_BUCKETS})")

    hash_colors = (COLORS[2], COLORS[4], COLORS[5])
    for h, err, color in zip(d.hashes, d.errors_hashes, hash_colors, strict=True):
        label = f"H = {h}, M = {TOTAL_BUCKETS // h}"
        ax_hash.plot(d.steps, err, color=color, lw=1.0, label=label)
    separate = d.errors_separate[ALPHAS.index(HASH_ALPHA)]
    ax_hash.plot(d.steps, separate, color=COLORS[0], lw=0.8, ls="--", label="distinct buckets")
    ax_hash.set_title(rf"Hashes, {TOTAL_BUCKETS} buckets in total ($\alpha$ = {HASH_ALPHA:g})")

    for ax in (ax_alpha, ax_hash):
        ax.axvline(SWITCH, color=COLORS[0], lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(0.025, 1.0)
        ticks(ax, x=range(0, NUM_STEPS + 1, 5000))
        ax.set_xlabel("step t (the distribution is reversed after step 10000)")
        ax.set_ylabel(r"error $\sum_k |\hat p_k - \pi_k| \,/\, 256$")
        ax.set_xlim(0, NUM_STEPS)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)

    for h, steady, color in zip(d.hashes, d.steady_sweep, hash_colors, strict=True):
        ax_sweep.loglog(
            d.sweep_buckets, steady, color=color, marker="o", ms=4, lw=1.0, label=f"H = {h}"
        )
    no_collision = float(d.steady(separate))
    ax_sweep.axhline(no_collision, color=COLORS[0], lw=0.8, ls="--", label="distinct buckets")
    ax_sweep.axvline(NUM_ITEMS, color=COLORS[0], lw=0.8, ls=":")
    ticks(ax_sweep, x=d.sweep_buckets)
    ax_sweep.set_xlabel(f"buckets in total, H M (dotted: {NUM_ITEMS}, the number of items)")
    ax_sweep.set_ylabel("mean error, steps 8001 to 10000")
    ax_sweep.set_title(rf"Equal memory, more hashes? ($\alpha$ = {HASH_ALPHA:g})")
    ax_sweep.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)

    fig.suptitle(
        f"Streaming frequency estimation: {NUM_ITEMS} items, batches of {BATCH} drawn "
        "without replacement, $q_k \\propto (k + 1)^2$ then its mirror image",
        fontsize=11,
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
