"""refloss: reference retrieval and contrastive losses on every Array API backend."""

from . import frequency, samplers
from ._corrections import (
    apply_score_mask,
    logq_correction,
    mine_hard_negatives,
    remove_accidental_hits,
)
from ._softmax import logsumexp, softmax_cross_entropy
from .contrastive import clip_loss, nt_xent_loss, siglip_loss, supcon_loss
from .full_softmax import full_softmax_loss
from .gradients import value_and_grad
from .mixed_negatives import mixed_negative_probability
from .retrieval import retrieval_loss
from .sampled import nce_loss, sampled_softmax_loss

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "apply_score_mask",
    "clip_loss",
    "frequency",
    "full_softmax_loss",
    "logq_correction",
    "logsumexp",
    "mine_hard_negatives",
    "mixed_negative_probability",
    "nce_loss",
    "nt_xent_loss",
    "remove_accidental_hits",
    "retrieval_loss",
    "sampled_softmax_loss",
    "samplers",
    "siglip_loss",
    "softmax_cross_entropy",
    "supcon_loss",
    "value_and_grad",
]
