r"""End to end: the streaming frequency estimator feeds the logQ correction while a model trains.

**Data.** A corpus of ``N = 2000`` items with a Zipf prior :math:`\pi_j \propto 1/j` and
hidden vectors :math:`v_j \in \mathbb{R}^{15}` (entries :math:`\mathcal{N}(0, 1/15)`), and
users with features :math:`x \in \mathbb{R}^{15}` (entries :math:`\mathcal{N}(0, 1)`). A
user picks item :math:`j` with probability

.. math::

    P(j \mid x) \propto \pi_j \exp(4 \langle x, v_j \rangle),

so what a user picks depends on both their taste and the item's popularity. The training
log is a stream of (user, item) pairs: a user drawn uniformly from 4000 training users, and
the item they pick. Its item distribution :math:`q_j`, the mean of :math:`P(j \mid x)` over
the training users (exact, since they are drawn uniformly), is close to Zipf's law: the
top 10 % of the items fill 68 % of the log. A batch holds ``B = 128`` pairs, so item
:math:`j` is in a batch with probability :math:`1 - (1 - q_j)^B`, from 0.95 for the most
popular item to about 0.0002.

**Model.** Two linear towers without normalisation: the query is :math:`u = [x, 1]\, W`
(:math:`W` of shape 16 x 16, the constant 1 a bias), the item :math:`e_j`, row :math:`j` of
an embedding table :math:`E` (2000 x 16), and the score :math:`\langle u, e_j \rangle`
(temperature 1). The model can represent the data's own scores exactly: :math:`W` the
identity and :math:`e_j = [4 v_j, \log \pi_j]` give :math:`\log P(j \mid x)` up to a
constant per user.

**Training.** 3000 batches (384 000 pairs), Adam (learning rate 0.01) on the gradients of
``refloss.retrieval_loss`` (``reduction="mean"``) from ``refloss.value_and_grad``, with
respect to the query and candidate embeddings, chained to the towers by hand:
:math:`\partial L / \partial W = [X, 1]^\top\, \partial L / \partial U`, and each row of
:math:`\partial L / \partial C` added to the table row of its item (an item repeated in the
batch gets the sum). Three runs start from the same towers and see the same batches, with
``candidate_ids`` (accidental hits removed) in all three:

* ``none``: no correction;
* ``estimated``: ``candidate_sampling_probability`` read from a
  ``refloss.frequency.FrequencyEstimator`` (:math:`2^{14}` buckets, one hash, learning
  rate 0.05, the other settings the defaults: initial gap 100, first sighting counted from
  step 0), updated with the batch's item ids at step ``t`` (the batch number) and read
  afterwards;
* ``true``: the exact probability :math:`1 - (1 - q_j)^B` that the estimator estimates.

The estimator's learning rate is five times Yi et al.'s 0.01 because the stream is short:
at 0.01 an item that is in one batch out of 30 has been counted about 100 times after
3000 steps and still carries :math:`0.99^{100} \approx 37\,\%` of its initial error.

**Evaluation.** 10 000 held-out users (not in the training set) pick one item each from
:math:`P(\cdot \mid x)`. Recall@10: the fraction of them whose item is among the 10
highest-scoring items of the whole corpus, by the group of that item: head (the 10 % most
popular items, ranks 1 to 200), middle (ranks 201 to 1000), tail (the less popular half).
Two rankings computed from the ground truth are references: by :math:`\log P(j \mid x)`,
the best any model can do, which the full softmax and the corrected in-batch softmax
estimate; and by :math:`\log P(j \mid x) - \log q_j`, which is what the uncorrected in-batch
softmax estimates. An item is a negative in proportion to how often it is sampled, so
without the correction its score is lowered by :math:`\log q_j` (up to a constant): popular
items are ranked too low and rare ones too high.

The estimator's accuracy is the relative error :math:`|\hat p_j / p_j - 1|` of its reading
at the end against the true per-batch probability, and its median over each group every
50 steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss
from refloss import frequency

NAME = "frequency_training"
RUNS = ("none", "estimated", "true")
GROUPS = ("head", "middle", "tail", "all")
TRACE_EVERY = 50  # steps between two readings of the estimator's error


class Corpus(NamedTuple):
    """The synthetic interaction log, its held-out queries and the item groups."""

    train_users: np.ndarray  # (U, F) features of the training users
    batch_users: np.ndarray  # (steps, B) row of train_users of each training pair
    batches: np.ndarray  # (steps, B) the item of each training pair
    popularity: np.ndarray  # (N,) q_j, the probability that a pair of the log holds item j
    test_users: np.ndarray  # (T, F) held-out users, one query each
    test_items: np.ndarray  # (T,) the item each held-out user picked
    test_log_prob: np.ndarray  # (T, N) log P(j | x) of the held-out users
    group: np.ndarray  # (N,) 0 head, 1 middle, 2 tail, by rank of q_j


class FrequencyTraining(NamedTuple):
    """Recall of the trained models, and the accuracy of the estimator."""

    runs: tuple[str, ...]
    groups: tuple[str, ...]
    k: int
    batch_size: int
    recall: np.ndarray  # (runs, groups): recall@k on the held-out queries
    reference: np.ndarray  # (2, groups): ranking by log P(j|x), and by log P(j|x) - log q_j
    num_test: np.ndarray  # (groups,): held-out queries whose item is in the group
    popularity: np.ndarray  # (N,) q_j, items by decreasing popularity
    hit_probability: np.ndarray  # (N,) 1 - (1 - q_j)^B, same order
    estimated: np.ndarray  # (N,) the estimator's reading after the last step, same order
    group: np.ndarray  # (N,) the group of each item, same order
    shares_bucket: np.ndarray  # (N,) bool: another item hashes to the same bucket
    trace_steps: np.ndarray  # (K,) steps at which the estimator's error was read
    trace_error: np.ndarray  # (3, K) median relative error per group (head, middle, tail)

    def relative_error(self, group: str) -> float:
        """Median of ``|estimated / hit_probability - 1|`` over the items of ``group``."""
        items = self.group == self.groups.index(group)
        return float(np.median(np.abs(self.estimated[items] / self.hit_probability[items] - 1)))


def _corpus(
    *,
    num_items: int,
    num_users: int,
    num_test: int,
    latent: int,
    affinity: float,
    batch_size: int,
    steps: int,
    rng: np.random.Generator,
) -> Corpus:
    log_prior = -np.log(np.arange(1.0, num_items + 1))  # Zipf: pi_j proportional to 1/j
    item_vectors = rng.standard_normal((num_items, latent)) / np.sqrt(latent)
    users = rng.standard_normal((num_users + num_test, latent))

    def log_prob(x: np.ndarray) -> np.ndarray:
        logits = affinity * (x @ item_vectors.T) + log_prior
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def pick(log_p: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Inverse-CDF draws: one item from row ``rows[i]`` of ``log_p`` given ``u[i]``."""
        cdf = np.cumsum(np.exp(log_p), axis=1)
        cdf /= cdf[:, -1:]
        # Row r's CDF shifted by r: one increasing array, searched once for every draw.
        flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
        found = np.searchsorted(flat, rows + u) - rows * num_items
        return np.minimum(found, num_items - 1)

    train_log_prob = log_prob(users[:num_users])
    popularity = np.exp(train_log_prob).mean(axis=0)
    batch_users = rng.integers(0, num_users, (steps, batch_size))
    batches = pick(train_log_prob, batch_users, rng.random((steps, batch_size)))
    test_log_prob = log_prob(users[num_users:])
    test_items = pick(test_log_prob, np.arange(num_test), rng.random(num_test))

    rank = np.empty(num_items, dtype=np.int64)
    rank[np.argsort(-popularity, kind="stable")] = np.arange(num_items)
    group = np.searchsorted([num_items // 10, num_items // 2], rank, side="right")
    return Corpus(
        users[:num_users],
        batch_users,
        batches,
        popularity,
        users[num_users:],
        test_items,
        test_log_prob,
        group,
    )


def _features(users: np.ndarray) -> np.ndarray:
    """The query tower's input: the user's features and a constant 1."""
    return np.concatenate([users, np.ones((users.shape[0], 1))], axis=1)


def _recall(scores: np.ndarray, items: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Recall@k by group of the held-out item (head, middle, tail), then over all queries."""
    rows = np.arange(items.size)
    rank = (scores > scores[rows, items][:, None]).sum(axis=1)  # items scored higher
    hit = rank < k
    return np.array([*(hit[group[items] == g].mean() for g in range(3)), hit.mean()])


class Adam:
    """Adam (Kingma and Ba), updating the parameter arrays in place."""

    def __init__(self, params: tuple[np.ndarray, ...], learning_rate: float) -> None:
        self.params = params
        self.learning_rate = learning_rate
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: tuple[np.ndarray, ...]) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        for param, grad, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m += (1 - beta1) * (grad - m)
            v += (1 - beta2) * (grad * grad - v)
            m_hat, v_hat = m / (1 - beta1**self.t), v / (1 - beta2**self.t)
            param -= self.learning_rate * m_hat / (np.sqrt(v_hat) + eps)


class _Trained(NamedTuple):
    tower: np.ndarray  # W, (F + 1, D)
    table: np.ndarray  # E, (N, D)
    estimated: np.ndarray  # (N,) the estimator's final reading, or empty
    shares_bucket: np.ndarray  # (N,) bool, or empty
    trace_error: np.ndarray  # (3, K), or empty


def _train(
    corpus: Corpus,
    correction: str,
    *,
    dim: int,
    learning_rate: float,
    estimator_learning_rate: float,
    num_buckets: int,
    seed: int,
) -> _Trained:
    """Train the two towers with Adam on ``corpus.batches``, with the given correction."""
    steps, batch_size = corpus.batches.shape
    num_items = corpus.popularity.size
    hit_probability = 1.0 - (1.0 - corpus.popularity) ** batch_size
    features = _features(corpus.train_users)
    init = np.random.default_rng([seed, 1])  # the same towers for every run
    tower = 0.1 * init.standard_normal((features.shape[1], dim))
    table = 0.1 * init.standard_normal((num_items, dim))
    optimizer = Adam((tower, table), learning_rate)

    loss_and_grads = refloss.value_and_grad(refloss.retrieval_loss)
    estimator = frequency.FrequencyEstimator(num_buckets, learning_rate=estimator_learning_rate)
    all_items = np.arange(num_items)
    trace = []
    for t in range(1, steps + 1):
        ids = corpus.batches[t - 1]
        x = features[corpus.batch_users[t - 1]]
        if correction == "estimated":
            estimator.update(ids, step=t)  # first count the batch, then read
            p = estimator.probability(ids)
            if t % TRACE_EVERY == 0:
                error = np.abs(estimator.probability(all_items) / hit_probability - 1)
                trace.append([np.median(error[corpus.group == g]) for g in range(3)])
        elif correction == "true":
            p = hit_probability[ids]
        else:
            p = None
        _, (d_queries, d_candidates) = loss_and_grads(
            x @ tower,
            table[ids],
            candidate_sampling_probability=p,
            candidate_ids=ids,
            reduction="mean",
        )
        grad_table = np.zeros_like(table)
        np.add.at(grad_table, ids, d_candidates)  # repeated items: their rows add up
        optimizer.step((x.T @ d_queries, grad_table))
    if correction != "estimated":
        return _Trained(tower, table, np.empty(0), np.empty(0, dtype=bool), np.empty((3, 0)))
    bucket = frequency.buckets(all_items, seeds=estimator.state.seeds, num_buckets=num_buckets)[0]
    shares_bucket = np.bincount(bucket, minlength=num_buckets)[bucket] > 1
    return _Trained(
        tower, table, estimator.probability(all_items), shares_bucket, np.array(trace).T
    )


def compute(
    *,
    num_items: int = 2000,
    num_users: int = 4000,
    num_test: int = 10_000,
    latent: int = 15,
    affinity: float = 4.0,
    batch_size: int = 128,
    steps: int = 3000,
    dim: int = 16,
    learning_rate: float = 0.01,
    estimator_learning_rate: float = 0.05,
    num_buckets: int = 1 << 14,
    k: int = 10,
    seed: int = 0,
) -> FrequencyTraining:
    """Train the three runs on the same batches and evaluate them on held-out queries."""
    corpus = _corpus(
        num_items=num_items,
        num_users=num_users,
        num_test=num_test,
        latent=latent,
        affinity=affinity,
        batch_size=batch_size,
        steps=steps,
        rng=np.random.default_rng(seed),
    )
    test_x = _features(corpus.test_users)
    recall = []
    for correction in RUNS:
        trained = _train(
            corpus,
            correction,
            dim=dim,
            learning_rate=learning_rate,
            estimator_learning_rate=estimator_learning_rate,
            num_buckets=num_buckets,
            seed=seed,
        )
        scores = (test_x @ trained.tower) @ trained.table.T
        recall.append(_recall(scores, corpus.test_items, corpus.group, k))
        if correction == "estimated":
            estimated, shares_bucket = trained.estimated, trained.shares_bucket
            trace_error = trained.trace_error
    reference = [
        _recall(scores, corpus.test_items, corpus.group, k)
        for scores in (corpus.test_log_prob, corpus.test_log_prob - np.log(corpus.popularity))
    ]
    order = np.argsort(-corpus.popularity, kind="stable")
    hit_probability = 1.0 - (1.0 - corpus.popularity) ** batch_size
    return FrequencyTraining(
        runs=RUNS,
        groups=GROUPS,
        k=k,
        batch_size=batch_size,
        recall=np.array(recall),
        reference=np.array(reference),
        num_test=np.array([*np.bincount(corpus.group[corpus.test_items], minlength=3), num_test]),
        popularity=corpus.popularity[order],
        hit_probability=hit_probability[order],
        estimated=estimated[order],
        group=corpus.group[order],
        shares_bucket=shares_bucket[order],
        trace_steps=np.arange(1, trace_error.shape[1] + 1) * TRACE_EVERY,
        trace_error=trace_error,
    )


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/frequency_training.png``."""
    from _style import COLORS, pyplot, save

    plt = pyplot()
    d = compute()
    fig, (ax, ax_p, ax_t) = plt.subplots(
        1, 3, figsize=(14.0, 4.4), layout="constrained", width_ratios=(1.25, 1.0, 1.0)
    )

    labels = {
        "none": "no correction",
        "estimated": "logQ, estimated p",
        "true": "logQ, true p",
    }
    x = np.arange(len(d.groups))
    width = 0.26
    for i, run in enumerate(d.runs):
        ax.bar(x + (i - 1) * width, d.recall[i], width, color=COLORS[1 + i], label=labels[run])
    reference = {"marker": "_", "ms": 26, "mew": 2.0, "ls": "none"}
    ax.plot(x, d.reference[0], color=COLORS[0], label="ranking by true P(item | user)", **reference)
    ax.plot(
        x,
        d.reference[1],
        color=COLORS[5],
        label="ranking by P(item | user) / popularity",
        **reference,
    )
    ax.set_xticks(
        x,
        [
            f"{name}\n{share}\n{n} queries"
            for name, share, n in zip(
                d.groups, ("top 10 %", "10-50 %", "bottom half", "items"), d.num_test, strict=True
            )
        ],
    )
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(f"recall@{d.k} against all {d.hit_probability.size} items")
    ax.set_title("Held-out queries, by popularity of their item")
    ax.legend(loc="upper center", ncol=2, fontsize=8)

    group_colors = (COLORS[2], COLORS[3], COLORS[4])
    for g, name in enumerate(d.groups[:3]):
        items = d.group == g
        ax_p.loglog(
            d.hit_probability[items],
            d.estimated[items],
            "o",
            ms=2.5,
            alpha=0.6,
            color=group_colors[g],
            label=f"{name} (median error {d.relative_error(name):.0%})",
        )
    lo = d.hit_probability.min() / 2
    ax_p.loglog([lo, 1], [lo, 1], color=COLORS[0], lw=1.0, label="estimate = truth")
    ax_p.set_xlabel(f"true probability to be in a batch, 1 - (1 - q)^{d.batch_size}")
    ax_p.set_ylabel("estimator's reading after training")
    ax_p.set_title("Estimated vs true, one dot per item")
    ax_p.legend(loc="upper left")

    for g, name in enumerate(d.groups[:3]):
        ax_t.semilogy(d.trace_steps, d.trace_error[g], color=group_colors[g], label=name)
    ax_t.set_xlabel("training step")
    ax_t.set_ylabel("median relative error |p_hat / p - 1|")
    ax_t.set_title("The estimator during training")
    ax_t.legend(loc="upper right")

    fig.suptitle(
        f"A two-tower model trained on a Zipf-distributed log ({d.hit_probability.size} items, "
        f"batches of {d.batch_size}) with the frequency estimator feeding the logQ correction",
        fontsize=11,
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
