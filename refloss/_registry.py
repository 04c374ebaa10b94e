r"""Every family of refloss, declared once.

A family is a public function together with what the rest of the project needs to know
about it: its positional (differentiable) arrays, the names ``value_and_grad`` may
differentiate, its outputs, its vector-Jacobian rule, and its conformance fixture files.
:func:`refloss.value_and_grad`, the fixture generator (``conformance/generator``),
:mod:`refloss.testing`, the ``refloss`` command and the test suite all read
:data:`FAMILIES`; none of them keeps a list of its own.

Adding a family is: write the function (and its ``*_vjp`` rule when it returns a scalar
loss), declare it here, and give the generator its mpmath oracle and cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._corrections import (
    apply_score_mask,
    logq_correction,
    mine_hard_negatives,
    remove_accidental_hits,
)
from ._lib._typing import Array
from ._softmax import logsumexp, logsumexp_vjp, softmax_cross_entropy, softmax_cross_entropy_vjp
from .contrastive import (
    clip_loss,
    clip_loss_vjp,
    nt_xent_loss,
    nt_xent_loss_vjp,
    siglip_loss,
    siglip_loss_vjp,
    supcon_loss,
    supcon_loss_vjp,
)
from .frequency import update as frequency_update
from .full_softmax import full_softmax_loss, full_softmax_loss_vjp
from .retrieval import retrieval_loss, retrieval_loss_vjp
from .sampled import nce_loss, nce_loss_vjp, sampled_softmax_loss, sampled_softmax_loss_vjp

__all__ = ["FAMILIES", "Family", "family_named", "family_of"]

#: ``rule(arguments) -> (value, {name: gradient or None})``, arguments bound by name with
#: the function's defaults applied.
VjpRule = Callable[[Mapping[str, Any]], tuple[Array, dict[str, Array | None]]]


@dataclass(frozen=True)
class Family:
    """One public function and what the project needs to know about it.

    Attributes
    ----------
    name : str
        The function's name in ``refloss``; also the fixture name (``<name>_test.json``).
    function : callable
        The function.
    positional : tuple of str
        Its positional-only arrays, in order: the arguments ``value_and_grad``
        differentiates by default.
    outputs : tuple of str
        Names of its outputs in the fixture file.
    header : tuple of str
        What the fixture file's ``header`` says about the function.
    vjp : callable or None
        Its value-and-gradient rule, for a function that returns a scalar loss.
    differentiable : tuple of str
        Every argument ``wrt`` may name (positional arrays first, then keyword arrays).
    gradient_fixture : bool
        Whether ``value_and_grad_<name>_test.json`` pins its gradients.
    kind : {"function", "sequence"}
        ``"sequence"`` for a stateful family whose fixtures replay steps on a state
        (``refloss.testing`` replays them through the adapter registered for it).
    """

    name: str
    function: Callable[..., Any]
    positional: tuple[str, ...]
    outputs: tuple[str, ...]
    header: tuple[str, ...]
    vjp: VjpRule | None = None
    differentiable: tuple[str, ...] = ()
    gradient_fixture: bool = False
    kind: str = "function"

    @property
    def qualified_name(self) -> str:
        """``"refloss.<name>"``, the ``function`` field of its fixture file."""
        return f"refloss.{self.name}"

    @property
    def gradient_outputs(self) -> tuple[str, ...]:
        """Outputs of ``value_and_grad(<function>)``: the loss, then one gradient per array."""
        return ("loss", *(f"grad_{name}" for name in self.positional))


_STEP_HEADER = "Masked logits are exactly -inf. The output has the shape of the logits."

_SAMPLED_HEADER = (
    "Logits o = <x_i, w_k> + b_k - log(expected count of k), the num_true true classes "
    "first, then the S sampled classes shared by every row (TensorFlow 2.21 semantics).",
    "remove_accidental_hits sets every sampled column whose class is one of the row's "
    "labels to -inf (TensorFlow: the last copy only).",
    "Inputs not listed in arguments.positional are keyword arguments.",
)
_SAMPLED = ("weights", "biases", "inputs")

FAMILIES: tuple[Family, ...] = (
    Family(
        "retrieval_loss",
        retrieval_loss,
        ("query_embeddings", "candidate_embeddings"),
        ("loss",),
        (
            "In-batch softmax retrieval loss with extra negatives, temperature, logQ "
            "correction, accidental-hit removal, score mask and hard-negative mining.",
            "Row i's positive is column i; columns B..N-1 are shared extra negatives.",
            "Inputs not listed in arguments.positional are keyword arguments.",
        ),
        vjp=retrieval_loss_vjp,
        differentiable=(
            "query_embeddings",
            "candidate_embeddings",
            "temperature",
            "sample_weight",
        ),
        gradient_fixture=True,
    ),
    Family(
        "logq_correction",
        logq_correction,
        ("logits", "candidate_sampling_probability"),
        ("output",),
        ("logits - log(clip(p, min_probability, 1)) for every column.", _STEP_HEADER),
    ),
    Family(
        "remove_accidental_hits",
        remove_accidental_hits,
        ("logits", "candidate_ids"),
        ("output",),
        (
            "logits[i, j] = -inf for every j != i with candidate_ids[j] == candidate_ids[i].",
            _STEP_HEADER,
        ),
    ),
    Family(
        "apply_score_mask",
        apply_score_mask,
        ("logits", "score_mask"),
        ("output",),
        ("logits where score_mask is True, -inf where it is False.", _STEP_HEADER),
    ),
    Family(
        "mine_hard_negatives",
        mine_hard_negatives,
        ("logits",),
        ("output",),
        (
            "Per row i keep column i and the num_hard_negatives largest other columns "
            "(ties to the lower index); every other entry becomes -inf.",
            _STEP_HEADER,
        ),
    ),
    Family(
        "softmax_cross_entropy",
        softmax_cross_entropy,
        ("logits",),
        ("output",),
        (
            "Softmax cross-entropy with the positive of row i in column i (or the target "
            "columns or label weights given as labels); rows with positive_mask False have "
            "loss 0; weighted, then reduced.",
        ),
        vjp=softmax_cross_entropy_vjp,
        differentiable=("logits", "sample_weight"),
        gradient_fixture=True,
    ),
    Family(
        "logsumexp",
        logsumexp,
        ("x",),
        ("output",),
        ("log(sum(exp(x))) along axis (default -1); a slice of -inf gives -inf.",),
        vjp=logsumexp_vjp,
        differentiable=("x",),
    ),
    Family(
        "sampled_softmax_loss",
        sampled_softmax_loss,
        _SAMPLED,
        ("loss",),
        (
            "Sampled softmax cross-entropy with label 1/num_true on each true class; "
            "(B,) row losses unless reduced.",
            *_SAMPLED_HEADER,
        ),
        vjp=sampled_softmax_loss_vjp,
        differentiable=_SAMPLED,
        gradient_fixture=True,
    ),
    Family(
        "nce_loss",
        nce_loss,
        _SAMPLED,
        ("loss",),
        (
            "Noise-contrastive estimation: sigmoid cross-entropy of every logit, label "
            "1/num_true on true classes and 0 on sampled ones, summed per row.",
            *_SAMPLED_HEADER,
        ),
        vjp=nce_loss_vjp,
        differentiable=_SAMPLED,
        gradient_fixture=True,
    ),
    Family(
        "full_softmax_loss",
        full_softmax_loss,
        ("query_embeddings", "class_embeddings"),
        ("loss",),
        (
            "Exact softmax cross-entropy of each row against every class: logits "
            "<q_i, c_k> / temperature + class_bias_k, target column labels[i].",
            "Inputs not listed in arguments.positional are keyword arguments.",
        ),
        vjp=full_softmax_loss_vjp,
        differentiable=("query_embeddings", "class_embeddings", "class_bias", "temperature"),
        gradient_fixture=True,
    ),
    Family(
        "clip_loss",
        clip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale"),
        ("loss",),
        (
            "CLIP's symmetric InfoNCE: (softmax cross-entropy of the rows of "
            "S = logit_scale * I T^T + of its columns) / 2, targets on the diagonal.",
            "logit_scale is the multiplier (open_clip's logit_scale.exp()).",
        ),
        vjp=clip_loss_vjp,
        differentiable=("image_embeddings", "text_embeddings", "logit_scale"),
        gradient_fixture=True,
    ),
    Family(
        "siglip_loss",
        siglip_loss,
        ("image_embeddings", "text_embeddings", "logit_scale", "logit_bias"),
        ("loss",),
        (
            "SigLIP: -(1/B) sum_ij log sigmoid(z_ij (logit_scale x_i.y_j + logit_bias)), "
            "z = +1 on the diagonal and -1 elsewhere.",
        ),
        vjp=siglip_loss_vjp,
        differentiable=("image_embeddings", "text_embeddings", "logit_scale", "logit_bias"),
        gradient_fixture=True,
    ),
    Family(
        "nt_xent_loss",
        nt_xent_loss,
        ("view_a", "view_b"),
        ("loss",),
        (
            "NT-Xent (SimCLR): each of the 2B views [view_a; view_b] against the other "
            "2B - 1 (dot products / temperature), its positive the other view of its sample.",
            "Inputs not listed in arguments.positional are keyword arguments.",
        ),
        vjp=nt_xent_loss_vjp,
        differentiable=("view_a", "view_b", "temperature"),
        gradient_fixture=True,
    ),
    Family(
        "supcon_loss",
        supcon_loss,
        ("embeddings",),
        ("loss",),
        (
            "Supervised contrastive loss, the out form: -(1/|P(i)|) sum over the anchor's "
            "positives of log softmax over the other samples; anchors without a positive "
            "contribute 0 and are left out of the mean.",
            "Inputs not listed in arguments.positional are keyword arguments.",
        ),
        vjp=supcon_loss_vjp,
        differentiable=("embeddings", "temperature"),
        gradient_fixture=True,
    ),
    Family(
        "frequency",
        frequency_update,
        ("ids",),
        ("buckets", "probability", "gap", "last_step"),
        (
            "The streaming frequency estimator (Yi et al. 2019, Algorithms 2 and 3): each "
            "step updates the state with the step's ids, then reads their probabilities.",
            "init(num_buckets, num_hashes, initial_gap, seed); step(ids, step, "
            "learning_rate, first_sighting, min_probability) -> buckets (num_hashes, n) "
            "int64, probability (n,), gap and last_step (num_hashes, num_buckets).",
        ),
        kind="sequence",
    ),
)


def family_named(name: str) -> Family:
    """The family whose function is ``refloss.<name>``."""
    for family in FAMILIES:
        if family.name == name:
            return family
    msg = f"no refloss family named {name!r}; known: {', '.join(f.name for f in FAMILIES)}"
    raise KeyError(msg)


def family_of(function: object) -> Family | None:
    """The family of a refloss function, or None."""
    for family in FAMILIES:
        if family.function is function:
            return family
    return None
