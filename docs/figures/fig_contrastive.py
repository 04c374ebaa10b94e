r"""CLIP and SigLIP on one batch of unit embeddings, as the scale :math:`t` grows.

A batch of :math:`B = 16` image-text pairs in :math:`D = 32` dimensions, every vector of
unit length; each text is its image plus noise, so that every positive similarity
:math:`s_{ii}` is the largest of its row and of its column of :math:`s = I T^\top`.
Left: the loss as a function of the scale :math:`t` (``logit_scale``, the multiplier) for
``clip_loss`` and for ``siglip_loss`` at two fixed biases, SigLIP's initial
:math:`b = -10` and :math:`b^* = -\log(B - 1)`, the bias that is optimal when the scores
carry no information (:math:`t \to 0`). Right: the share of the gradient
:math:`|\partial L / \partial S|` that falls on the :math:`B` positive pairs, the rest
pushing the :math:`B(B - 1)` negatives down. The gradient :math:`G = \partial L /
\partial S` is read from refloss: ``value_and_grad`` gives :math:`\partial L / \partial I
= t\, G\, T`, solved for :math:`G` (the :math:`B \times D` matrix :math:`T` has full row
rank).

What it shows: CLIP's loss starts at :math:`\log B` and falls toward 0 as :math:`t`
grows, and its positives always carry exactly half of the gradient (each row of the
softmax minus its target sums to 0, in either direction). SigLIP's loss at
:math:`t \to 0` is :math:`\operatorname{softplus}(-b) + (B - 1)\operatorname{softplus}(b)`,
about 10 at :math:`b = -10`: every pair starts out classified as a negative, so the
negatives cost almost nothing and nearly all the gradient (99.93 % here) goes to the
positives. The positives and the negatives balance, as in CLIP, only at :math:`b^*`, i.e.
when :math:`\sigma(b) = 1/B`: :math:`b = -10` is that bias for :math:`B = e^{10} + 1
\approx 22\,000`. With a fixed bias the loss has a minimum in :math:`t` and then grows
linearly: the scale and the bias are learned together.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

import refloss

NAME = "contrastive"
BATCH = 16
DIM = 32
SIGLIP_INIT_BIAS = -10.0
SIGLIP_INIT_SCALE = 10.0
CLIP_INIT_SCALE = 1.0 / 0.07
CLIP_MAX_SCALE = 100.0


class ContrastiveScale(NamedTuple):
    image: np.ndarray  # (B, D), unit rows
    text: np.ndarray  # (B, D), unit rows
    scales: np.ndarray  # (K,), t, log-spaced, > 0
    biases: np.ndarray  # (2,), SigLIP's b: -10 and -log(B - 1)
    clip: np.ndarray  # (K,), clip_loss at each t
    siglip: np.ndarray  # (2, K), siglip_loss at each bias and t
    clip_at_zero: float  # clip_loss at t = 0
    siglip_at_zero: np.ndarray  # (2,), siglip_loss at t = 0
    clip_grad: np.ndarray  # (K, B, B), G = dL/dS of clip_loss, recovered from refloss
    siglip_grad: np.ndarray  # (2, K, B, B), the same for siglip_loss

    @staticmethod
    def positive_share(grad: np.ndarray) -> np.ndarray:
        """The share of sum |G| on the diagonal (the positive pairs), per matrix."""
        magnitude = np.abs(grad)
        diagonal = np.trace(magnitude, axis1=-2, axis2=-1)
        return diagonal / magnitude.sum(axis=(-2, -1))


def batch(num: int = BATCH, dim: int = DIM, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Unit image embeddings and unit texts near them (each positive leads its row and column)."""
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((num, dim))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text = image + 0.9 * rng.standard_normal((num, dim)) / math.sqrt(dim)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return image, text


def compute(num_scales: int = 61) -> ContrastiveScale:
    """Both losses and their gradients with respect to the scores, over a range of t."""
    image, text = batch()
    num = image.shape[0]
    scales = np.geomspace(0.1, CLIP_MAX_SCALE, num_scales)
    biases = np.array([SIGLIP_INIT_BIAS, -math.log(num - 1)])
    # dL/dI = t G T: G = (dL/dI / t) T^+, with T^+ = T^T (T T^T)^-1 the right inverse of T
    right_inverse = text.T @ np.linalg.inv(text @ text.T)
    clip_wrt_image = refloss.value_and_grad(refloss.clip_loss, wrt=("image_embeddings",))
    siglip_wrt_image = refloss.value_and_grad(refloss.siglip_loss, wrt=("image_embeddings",))

    clip = np.empty(num_scales)
    clip_grad = np.empty((num_scales, num, num))
    siglip = np.empty((biases.size, num_scales))
    siglip_grad = np.empty((biases.size, num_scales, num, num))
    for k, t in enumerate(scales):
        value, (d_image,) = clip_wrt_image(image, text, float(t))
        clip[k] = float(value)
        clip_grad[k] = (d_image / t) @ right_inverse
        for m, b in enumerate(biases):
            value, (d_image,) = siglip_wrt_image(image, text, float(t), float(b))
            siglip[m, k] = float(value)
            siglip_grad[m, k] = (d_image / t) @ right_inverse
    clip_at_zero = float(refloss.clip_loss(image, text, 0.0))
    siglip_at_zero = np.array([float(refloss.siglip_loss(image, text, 0.0, b)) for b in biases])
    return ContrastiveScale(
        image,
        text,
        scales,
        biases,
        clip,
        siglip,
        clip_at_zero,
        siglip_at_zero,
        clip_grad,
        siglip_grad,
    )


def main(outdir: str | Path) -> Path:
    """Draw the figure into ``outdir/contrastive.png``."""
    from _style import COLORS, pyplot, save

    plt = pyplot()
    d = compute()
    num = d.image.shape[0]
    labels = (
        f"SigLIP, b = {d.biases[0]:g}",
        f"SigLIP, b = -log(B - 1) = {d.biases[1]:.2f}",
    )
    styles = ((COLORS[1], "-"), (COLORS[3], "--"))

    fig, (ax_l, ax_g) = plt.subplots(1, 2, figsize=(10.4, 4.0), layout="constrained")
    ax_l.plot(d.scales, d.clip, color=COLORS[2], lw=2.0, label="CLIP")
    for m, label in enumerate(labels):
        color, ls = styles[m]
        ax_l.plot(d.scales, d.siglip[m], color=color, ls=ls, lw=1.8, label=label)
    ax_l.axhline(math.log(num), color="0.5", lw=0.8, ls=":")
    ax_l.annotate(
        "log B",
        (d.scales[0], math.log(num)),
        xytext=(2, 4),
        textcoords="offset points",
        fontsize=8,
        color="0.35",
    )
    ax_l.set_xscale("log")
    ax_l.set_yscale("log")
    ax_l.set_ylim(1e-6, 200.0)
    ax_l.set_xlabel("scale t (logit_scale, the multiplier)")
    ax_l.set_ylabel("loss (mean over the B rows)")
    ax_l.set_title(f"Loss against the scale, B = {num} unit pairs")

    shares = (d.positive_share(d.clip_grad), *d.positive_share(d.siglip_grad))
    ax_g.plot(d.scales, shares[0], color=COLORS[2], lw=2.0, label="CLIP")
    for m, label in enumerate(labels):
        color, ls = styles[m]
        ax_g.plot(d.scales, shares[m + 1], color=color, ls=ls, lw=1.8, label=label)
    ax_g.set_xscale("log")
    ax_g.set_ylim(-0.02, 1.02)
    ax_g.set_xlabel("scale t")
    ax_g.set_ylabel("share of |∂L/∂S| on the positive pairs")
    ax_g.set_title("Who carries the gradient: positives or negatives")

    marks = (
        (SIGLIP_INIT_SCALE, "SigLIP init"),
        (CLIP_INIT_SCALE, "CLIP init"),
        (CLIP_MAX_SCALE, "clamp"),
    )
    for ax in (ax_l, ax_g):
        for t, _ in marks:
            ax.axvline(t, color="0.6", lw=0.8, ls=":")
        ax.legend(loc="lower left", fontsize=8)
    for t, label in marks:
        ax_g.annotate(
            label,
            (t, 1.0),
            xytext=(-3, -4),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
            color="0.35",
        )
    fig.suptitle(
        "CLIP balances positives and negatives at every scale; SigLIP's bias decides",
        fontsize=11,
    )
    return save(fig, outdir, NAME)


if __name__ == "__main__":
    from _style import cli

    raise SystemExit(cli(main))
