"""The documentation figures: each script writes its PNG, and the claim it shows holds.

Each ``docs/figures/fig_<name>.py`` runs as the docs build runs it (``python
fig_<name>.py OUTDIR``, in a subprocess), and its ``compute()`` is imported to check the
numbers behind the picture.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("matplotlib")

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
NAMES = (
    "popularity_bias",
    "temperature",
    "hard_negatives",
    "sampled_bias",
    "frequency_simulation",
    "frequency_training",
    "contrastive",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FIGURES))  # the scripts import _style from their folder
    spec = importlib.util.spec_from_file_location(f"fig_{name}", FIGURES / f"fig_{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Figures whose compute() takes seconds: their PNG is drawn in this process from the
#: numbers the claims tests use (computed once); the docs build runs every script on its own.
HEAVY = ("sampled_bias", "frequency_simulation", "frequency_training")
_COMPUTED: dict[str, object] = {}


def _computed(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, object]:
    """The figure's module and its ``compute()``, evaluated once per test session."""
    module = _load(name, monkeypatch)
    if name not in _COMPUTED:
        _COMPUTED[name] = module.compute()
    return module, _COMPUTED[name]


@pytest.mark.parametrize("name", NAMES)
def test_script_writes_png(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "generated"
    png = out / f"{name}.png"
    if name in HEAVY:
        module, data = _computed(name, monkeypatch)
        monkeypatch.setattr(module, "compute", lambda: data)
        assert Path(module.main(out)) == png
    else:
        result = subprocess.run(
            [sys.executable, str(FIGURES / f"fig_{name}.py"), str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(png)
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000
    assert [p.name for p in out.iterdir()] == [png.name]


def test_script_usage() -> None:
    result = subprocess.run(
        [sys.executable, str(FIGURES / "fig_temperature.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_popularity_bias_logq_matches_full_softmax(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _load("popularity_bias", monkeypatch).compute()
    assert np.all(np.diff(d.popularity) < 0)
    assert d.popularity.sum() == pytest.approx(1.0)
    err_plain = d.relative_error(d.in_batch, d.full)
    err_logq = d.relative_error(d.in_batch_logq, d.full)
    # The uncorrected in-batch gradient is off by a factor ~N p_j; logQ removes the bias.
    assert err_logq * 3 < err_plain
    assert err_logq < 0.25
    # Without logQ the head is pushed down too much and the tail too little.
    assert d.in_batch[0] > 10 * d.full[0]
    assert d.in_batch[-1] < 0.5 * d.full[-1]
    # With logQ the head item is within 20 % of the full softmax.
    assert d.in_batch_logq[0] == pytest.approx(d.full[0], rel=0.2)


def test_temperature_lower_concentrates(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _load("temperature", monkeypatch).compute()
    np.testing.assert_allclose(d.probabilities.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.diff(d.temperatures) > 0)
    max_prob = d.probabilities.max(axis=1)
    assert np.all(np.diff(max_prob) < 0)  # higher temperature, lower peak
    # The probabilities are softmax(s / tau), and the argmax is the highest score.
    for tau, p in zip(d.temperatures, d.probabilities, strict=True):
        e = np.exp((d.scores - d.scores.max()) / tau)
        np.testing.assert_allclose(p, e / e.sum(), rtol=1e-12)
        assert int(np.argmax(p)) == 0


def test_hard_negatives_gradient_support(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _load("hard_negatives", monkeypatch).compute()
    b, n = d.logits.shape
    k = d.num_hard_negatives
    rows = np.arange(b)
    # Without mining every entry carries gradient.
    assert np.all(d.grad_all != 0)
    nonzero = d.grad_mined != 0
    assert np.all(nonzero.sum(axis=1) <= k + 1)
    assert np.all(nonzero[rows, rows])  # the positive always carries gradient
    # The negatives that keep gradient are the row's k largest logits other than the positive.
    for i in range(b):
        negatives = np.delete(np.arange(n), i)
        hardest = negatives[np.argsort(-d.logits[i, negatives], kind="stable")[:k]]
        assert set(np.flatnonzero(nonzero[i])) == {i, *hardest.tolist()}
    # Each row's gradient still sums to zero (softmax minus one-hot).
    np.testing.assert_allclose(d.grad_mined.sum(axis=1), 0.0, atol=1e-12)


def test_sampled_bias_logq_removes_the_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    _, d = _computed("sampled_bias", monkeypatch)
    assert d.num_sampled.tolist() == [16, 64, 256, 1024]
    assert np.all(np.diff(d.popularity) < 0)
    assert d.popularity.sum() == pytest.approx(1.0)
    # The Monte-Carlo error is well below the bias it measures: at a fifth of it, it adds
    # under 2 % to ||mean - g||, since E||mean - g||^2 = ||bias||^2 + noise^2.
    assert np.all(d.noise_logq < d.bias_logq / 5)
    assert np.all(d.noise_plain < d.bias_plain / 5)
    # With log Q the bias shrinks strictly as S grows, by more than the noise each time,
    # toward its limit O(p_y) (accidental hits removed). At S = 1024 the expected gradient
    # is within 10 % of the exact one (measured about 4.4 %, some 11 standard errors below
    # the bound), and at least 3 times closer than at S = 16.
    assert np.all(np.diff(d.bias_logq) < -np.maximum(d.noise_logq[:-1], d.noise_logq[1:]))
    assert d.bias_logq[-1] < 0.1
    assert d.bias_logq[-1] < d.bias_logq[0] / 3
    assert d.limit_logq < 0.05
    assert np.all(d.bias_logq > d.limit_logq)
    # Without it the bias does not go away: it stays at its limit, a softmax over
    # s + log P, at every S, and is a clear factor above the corrected one at S = 1024.
    assert d.limit_plain > 0.3
    assert np.all(d.bias_plain > 0.9 * d.limit_plain)
    assert d.bias_plain[-1] > 5 * d.bias_logq[-1]
    # Where it goes: popular classes are pushed down far too hard, rare ones too little;
    # with log Q both groups get the push of the full softmax, within 15 %.
    head, tail = slice(0, 10), slice(500, None)
    assert d.group_ratio(d.push_plain, head) > 3
    assert d.group_ratio(d.push_plain, tail) < 0.3
    assert d.group_ratio(d.push_logq, head) == pytest.approx(1.0, abs=0.15)
    assert d.group_ratio(d.push_logq, tail) == pytest.approx(1.0, abs=0.15)
    # The push of the full softmax is a probability: one unit per row.
    assert d.push_full.sum() == pytest.approx(8.0)


def test_frequency_simulation_draws_the_inclusion_probabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fig = _load("frequency_simulation", monkeypatch)
    rank = np.arange(1, fig.NUM_ITEMS + 1, dtype=np.float64)
    weights = rank**2 / np.sum(rank**2)
    exact = fig.inclusion_probability(weights, fig.BATCH)
    assert exact.sum() == pytest.approx(fig.BATCH, abs=1e-9)
    # The exponential keys and NumPy's sequential draw without replacement give batches
    # of distinct items that contain item k with probability pi_k (z-scores of the counts
    # over 3000 batches, for the items expected at least 5 times: mean square about 1,
    # none far out).
    num = 3000
    keys = fig.draw_batches(weights, num, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    choice = np.stack(
        [rng.choice(fig.NUM_ITEMS, fig.BATCH, replace=False, p=weights) for _ in range(num)]
    )
    for batches in (keys, choice):
        assert all(np.unique(row).size == fig.BATCH for row in batches)
        counts = np.bincount(batches.ravel(), minlength=fig.NUM_ITEMS)
        z = (counts - num * exact) / np.sqrt(num * exact * (1 - exact))
        z = z[num * exact >= 5]
        assert np.mean(z**2) < 1.25
        assert np.abs(z).max() < 5.0
    # 128 q is not the inclusion probability: the head is in fewer batches than 128 q says.
    assert exact.max() == pytest.approx(0.35273, abs=1e-5)
    assert fig.BATCH * weights.max() == pytest.approx(0.38342, abs=1e-5)


def test_frequency_simulation_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    fig, d = _computed("frequency_simulation", monkeypatch)
    alpha = d.alphas.tolist()
    assert alpha == [0.01, 0.05, 0.1]
    assert d.hashes.tolist() == [1, 2, 4]
    # A perfect estimator scores about 0.023 against the paper's target 128 q.
    floor = np.abs(d.inclusion - fig.BATCH * d.weights).sum() / (2 * fig.BATCH)
    assert 0.02 < floor < 0.027
    steady = d.steady(d.errors_alpha)
    separate = d.steady(d.errors_separate)
    paper = d.steady(d.errors_alpha_paper)
    # A smaller alpha has the lower steady-state error, with and without shared buckets,
    # and against either target.
    assert steady[0] * 1.1 < steady[1]
    assert steady[1] * 1.1 < steady[2]
    assert separate[0] * 1.7 < separate[1]
    assert separate[1] * 1.3 < separate[2]
    assert paper[0] < paper[1] < paper[2]
    assert np.all((paper > steady) & (paper < steady + floor))
    # Without collisions the error is what the stationary variance of Proposition 4.1,
    # alpha / (2 - alpha) Var(gap), predicts (slightly above: Jensen, and at alpha = 0.01
    # the rare items still remember B = 100).
    ratio = separate / d.predicted_separate
    assert np.all((ratio > 1.0) & (ratio < 1.2))
    assert ratio[1] < 1.08
    assert ratio[2] < 1.08
    # A larger alpha forgets the initialisation sooner and follows the switch sooner.
    settle = d.settling(d.errors_alpha)
    settle_separate = d.settling(d.errors_separate)
    for s in (settle, settle_separate):
        assert s[0] > 3 * s[1]
        assert s[1] > 1.5 * s[2]
    # At alpha = 0.01 the items of middling frequency are still converging at the end.
    slow = d.errors_separate[0]
    assert d.window(slow, 16_000, 17_000) > 1.1 * d.window(slow, 19_000, 20_000)
    recovery = d.recovery(d.errors_alpha)
    assert np.all(recovery > 0)
    assert recovery[0] > 3 * recovery[1]
    assert recovery[1] > 1.2 * recovery[2]
    # Everything is wrong right after the switch.
    assert np.all(d.errors_alpha[:, d.steps == fig.SWITCH + fig.EVERY] > 0.6)
    # With one hash of 5000 buckets, about 18 % of the items share a bucket (1000 (1 -
    # (1 - 1/5000)^999) = 181 expected) and they make most of the error at alpha = 0.01.
    assert 150 < d.shared.sum() < 215
    at_switch = d.at_switch_alpha[0]
    assert d.error(at_switch, d.shared) > 0.7 * d.error(at_switch)
    assert steady[0] > 2.5 * separate[0]
    # At equal memory (5000 buckets) more hashes lower the error: H = 2 by a third or more,
    # H = 4 lowers it further, most clearly after the switch.
    hashes = d.steady(d.errors_hashes)
    hashes_after = d.steady_after(d.errors_hashes)
    assert hashes[1] < 0.7 * hashes[0]
    assert hashes[2] < hashes[1]
    assert hashes_after[1] < 0.7 * hashes_after[0]
    assert hashes_after[2] < 0.85 * hashes_after[1]
    separate_after = d.steady_after(d.errors_separate)[alpha.index(fig.HASH_ALPHA)]
    assert hashes_after[2] == pytest.approx(separate_after, rel=0.15)
    # Not with fewer buckets than items: at 500 in total each extra hash makes it worse.
    sweep = dict(zip(d.sweep_buckets.tolist(), d.steady_sweep.T, strict=True))
    assert sweep[500][0] * 1.15 < sweep[500][1]
    assert sweep[500][1] * 1.15 < sweep[500][2]
    assert sweep[1000][2] > 1.2 * max(sweep[1000][0], sweep[1000][1])
    assert sweep[1000][1] == pytest.approx(sweep[1000][0], rel=0.15)
    for total in (5000, 10_000, 20_000):
        assert sweep[total][1] < 0.8 * sweep[total][0]
        assert sweep[total][2] < 0.8 * sweep[total][0]
    # At 20000 buckets H = 4 is at the error without collisions; H = 1 is well above it.
    no_collision = separate[alpha.index(fig.HASH_ALPHA)]
    assert sweep[20_000][1] == pytest.approx(no_collision, rel=0.1)
    assert sweep[20_000][2] == pytest.approx(no_collision, rel=0.1)
    assert sweep[20_000][0] > 1.3 * no_collision
    # Items that stop appearing keep their estimate: those not drawn after the switch still
    # read about their old probability, and make a large part of the final error.
    gone = d.last_seen <= fig.SWITCH
    assert 5 <= gone.sum() <= 30
    after = d.inclusion[::-1]
    assert np.all(after[gone] < 1e-3)
    assert np.all(d.at_end_separate[:, gone] > 0.2)
    terms = np.abs(d.at_end_separate - after)
    share = terms[:, gone].sum(axis=1) / terms.sum(axis=1)
    assert share[0] > 0.3  # alpha = 0.01
    assert np.all(share > 0.15)


def test_frequency_training_estimator_matches_true_correction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, d = _computed("frequency_training", monkeypatch)
    assert d.runs == ("none", "estimated", "true")
    assert d.num_test[:3].sum() == d.num_test[3] == 10_000
    assert np.all(np.diff(d.popularity) <= 0)
    assert d.popularity[:200].sum() == pytest.approx(0.68, abs=0.01)  # the head's share
    np.testing.assert_allclose(d.hit_probability, 1 - (1 - d.popularity) ** d.batch_size)
    assert d.hit_probability[0] == pytest.approx(0.95, abs=0.01)
    assert d.hit_probability[-1] == pytest.approx(0.0002, rel=0.1)
    none, estimated, true = d.recall  # columns: head, middle, tail, all
    p_model, p_over_q = d.reference
    # The correction, fed by the estimator, raises recall@10 overall and on the head.
    assert estimated[3] > none[3] + 0.15
    assert estimated[0] > none[0] + 0.2
    assert estimated[1] > none[1] + 0.01
    # The bottom half loses: without it the model ranks by P(j|x) / q_j, which favours
    # rare items, as the reference rankings do.
    assert none[2] > estimated[2] + 0.1
    assert p_over_q[2] > p_model[2] + 0.1
    # Each run lands near the ranking its loss estimates.
    assert estimated[3] == pytest.approx(p_model[3], abs=0.06)
    assert none[3] == pytest.approx(p_over_q[3], abs=0.05)
    assert none[0] == pytest.approx(p_over_q[0], abs=0.05)
    # Estimated probabilities train as well as the true ones, within 0.03 in every group.
    np.testing.assert_allclose(estimated, true, atol=0.03)
    # The estimator: head and middle within about 10 %; the rare half, seen about 11 times
    # each, still leans on the initial gap. Every group's error falls during training.
    assert d.relative_error("head") < 0.15
    assert d.relative_error("middle") < 0.2
    assert 0.3 < d.relative_error("tail") < 1.0
    tail = d.group == 2
    assert d.trace_steps[-1] * np.median(d.hit_probability[tail]) == pytest.approx(11, abs=1)
    low, high = np.quantile(d.estimated[tail & ~d.shares_bucket], [0.1, 0.9])
    assert 0.004 < low < high < 0.011
    assert np.all(d.trace_error[:, -1] < 0.6 * d.trace_error[:, 0])
    # A tail item read above 0.02 shares its bucket with another item.
    assert d.shares_bucket.sum() == 198
    assert np.all(d.shares_bucket[(d.group == 2) & (d.estimated > 0.02)])


def test_contrastive_scale_and_gradient_balance(monkeypatch: pytest.MonkeyPatch) -> None:
    import refloss

    fig = _load("contrastive", monkeypatch)
    d = fig.compute()
    num = d.image.shape[0]
    eye = np.eye(num, dtype=bool)
    s = d.image @ d.text.T
    np.testing.assert_allclose(np.linalg.norm(d.image, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(d.text, axis=1), 1.0, rtol=1e-12)
    # Every positive leads its row and its column; the smallest margin is 0.021.
    others = np.where(eye, -np.inf, s)
    margin = np.minimum(np.diag(s) - others.max(axis=1), np.diag(s) - others.max(axis=0))
    assert margin.min() == pytest.approx(0.0212, abs=1e-4)

    def softplus(x):
        return np.logaddexp(0.0, x)

    def sigmoid(x):
        return np.exp(-softplus(-x))

    def lse(a, axis):
        m = a.max(axis=axis, keepdims=True)
        return m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))

    # t = 0: every logit equal. CLIP is log B; SigLIP softplus(-b) + (B - 1) softplus(b).
    assert d.clip_at_zero == pytest.approx(np.log(num), rel=1e-12)
    closed = softplus(-d.biases) + (num - 1) * softplus(d.biases)
    np.testing.assert_allclose(d.siglip_at_zero, closed, rtol=1e-12)
    assert d.siglip_at_zero[0] == pytest.approx(10.00073, abs=1e-5)
    assert d.siglip_at_zero[1] == pytest.approx(3.74067, abs=1e-5)
    # b = -log(B - 1) is the optimum at t = 0: refloss's derivative in b vanishes there.
    assert d.biases[1] == pytest.approx(-np.log(num - 1), rel=1e-15)
    bias_grad = refloss.value_and_grad(refloss.siglip_loss, wrt=("logit_bias",))
    _, (d_b,) = bias_grad(d.image, d.text, 0.0, np.asarray(d.biases[1]))
    assert abs(float(d_b)) < 1e-12
    # Every plotted value and every gradient matrix G = dL/dS (read from refloss's
    # gradient) equals the closed form, computed here without refloss.
    for k, t in enumerate(d.scales):
        scores = t * s
        rows = lse(scores, 1) - scores
        cols = lse(scores, 0) - scores
        clip = np.mean((np.diag(rows) + np.diag(cols)) / 2)
        assert d.clip[k] == pytest.approx(clip, rel=1e-12)
        g_clip = (np.exp(-rows) + np.exp(-cols) - 2 * eye) / (2 * num)
        np.testing.assert_allclose(d.clip_grad[k], g_clip, rtol=0, atol=1e-11 * abs(g_clip).max())
        for m, b in enumerate(d.biases):
            logits = scores + b
            siglip = np.sum(softplus(np.where(eye, -logits, logits))) / num
            assert d.siglip[m, k] == pytest.approx(siglip, rel=1e-12)
            g_siglip = (sigmoid(logits) - eye) / num
            np.testing.assert_allclose(
                d.siglip_grad[m, k], g_siglip, rtol=0, atol=1e-11 * abs(g_siglip).max()
            )
    # CLIP: from log B toward 0, eventually as exp(-t x the smallest margin).
    assert d.clip[0] < np.log(num)
    assert np.all(np.diff(d.clip) < 0)
    assert d.clip[-1] < 0.005
    slope = np.diff(np.log(d.clip[-2:])) / np.diff(d.scales[-2:])
    assert slope[0] == pytest.approx(-margin.min(), rel=0.02)
    # SigLIP with a fixed bias: a minimum inside the range, then growing about linearly.
    for curve in d.siglip:
        low = int(np.argmin(curve))
        assert 0 < low < curve.size - 1
        assert curve[-1] > 10 * curve[low]
    # CLIP's positives carry exactly half of sum |G| at every scale.
    np.testing.assert_allclose(d.positive_share(d.clip_grad), 0.5, rtol=0, atol=1e-12)
    # SigLIP's share tends to (1 - s(b)) / (1 - s(b) + (B - 1) s(b)) as t -> 0: 1/2 only at
    # b = -log(B - 1); 99.93 % at b = -10, still above 99 % at SigLIP's initial t = 10.
    share = d.positive_share(d.siglip_grad)
    limit = (1 - sigmoid(d.biases)) / (1 - sigmoid(d.biases) + (num - 1) * sigmoid(d.biases))
    assert limit[1] == pytest.approx(0.5, rel=1e-12)
    assert limit[0] == pytest.approx(0.99932, abs=1e-5)
    np.testing.assert_allclose(share[:, 0], limit, atol=0.003)
    at_init = int(np.argmin(np.abs(d.scales - fig.SIGLIP_INIT_SCALE)))
    assert d.scales[at_init] == pytest.approx(10.0)
    assert share[0, at_init] > 0.99
    # There the negatives make under 1 % of the SigLIP loss: the all-negative prior.
    logits = 10.0 * s - 10.0
    negatives = np.sum(softplus(logits)[~eye]) / num
    assert negatives < 0.01 * d.siglip[0, at_init]
