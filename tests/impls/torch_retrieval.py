"""An in-batch softmax retrieval loss in plain PyTorch, written from the formulas alone.

It does not use refloss. ``retrieval_loss`` follows the pinned semantics and passes
``refloss verify --impl tests.impls.torch_retrieval:retrieval_loss --fixture retrieval_loss
--backend torch``. The other public functions are deliberately wrong variants, each with
one classic mistake, used to check that the fixtures catch it:

- ``logq_scaled_by_temperature``: ``(s - log p) / tau`` instead of ``s / tau - log p``;
- ``finite_hit_mask``: accidental hits set to ``-10`` instead of ``-inf`` (probability leaks);
- ``top_k_can_drop_positive``: plain top-(k+1) over all columns, positive not forced in;
- ``mean_instead_of_sum``: ``reduction="sum"`` divides by the batch size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

REDUCTIONS = ("sum", "mean", "none")


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{name} must be a real number, got {type(value).__name__}"
        raise TypeError(msg)
    return float(value)


def _validate(
    q: torch.Tensor,
    c: torch.Tensor,
    weight: Any,
    prob: torch.Tensor | None,
    ids: torch.Tensor | None,
    mask: torch.Tensor | None,
    k: Any,
    temperature: Any,
    min_probability: Any,
    reduction: str,
) -> None:
    for name, x in (("query_embeddings", q), ("candidate_embeddings", c)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            msg = f"{name} must be a floating-point tensor"
            raise TypeError(msg)
        if x.ndim != 2:
            msg = f"{name} must have rank 2, got shape {tuple(x.shape)}"
            raise ValueError(msg)
    if q.dtype != c.dtype:
        raise TypeError("embedding dtypes differ")
    b, n = q.shape[0], c.shape[0]
    if q.shape[1] != c.shape[1]:
        raise ValueError("embedding widths differ")
    if b == 0 or n < b:
        raise ValueError(f"need 1 <= B <= N, got B={b}, N={n}")
    if isinstance(weight, torch.Tensor) and weight.shape not in ((), (b,)):
        raise ValueError(f"sample_weight must have shape () or ({b},)")
    if prob is not None:
        if tuple(prob.shape) != (n,):
            raise ValueError(f"candidate_sampling_probability must have shape ({n},)")
        if bool(torch.isnan(prob).any()) or bool(((prob < 0) | (prob > 1)).any()):
            raise ValueError("candidate_sampling_probability must lie in [0, 1]")
    if ids is not None:
        if ids.is_floating_point() or ids.dtype == torch.bool or ids.is_complex():
            raise TypeError("candidate_ids must be integers")
        if tuple(ids.shape) != (n,):
            raise ValueError(f"candidate_ids must have shape ({n},)")
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError("score_mask must be boolean")
        if tuple(mask.shape) != (b, n):
            raise ValueError(f"score_mask must have shape ({b}, {n})")
    if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise ValueError(f"num_hard_negatives must be an integer >= 1, got {k!r}")
    if temperature is not None:
        t = _check_real("temperature", temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be finite and > 0, got {t}")
    m = _check_real("min_probability", min_probability)
    if not 0 < m <= 1:
        raise ValueError(f"min_probability must lie in (0, 1], got {m}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def make_retrieval_loss(
    *,
    logq_over_temperature: bool = False,
    hit_fill: float = -math.inf,
    naive_top_k: bool = False,
    sum_as_mean: bool = False,
) -> Callable[..., torch.Tensor]:
    """Build the loss; the defaults give the correct one, each option one mistake."""

    def loss(
        query_embeddings: torch.Tensor,
        candidate_embeddings: torch.Tensor,
        /,
        *,
        sample_weight: Any = None,
        candidate_sampling_probability: torch.Tensor | None = None,
        candidate_ids: torch.Tensor | None = None,
        score_mask: torch.Tensor | None = None,
        num_hard_negatives: Any = None,
        temperature: Any = None,
        min_probability: Any = 1e-6,
        reduction: str = "sum",
    ) -> torch.Tensor:
        q, c = query_embeddings, candidate_embeddings
        _validate(
            q,
            c,
            sample_weight,
            candidate_sampling_probability,
            candidate_ids,
            score_mask,
            num_hard_negatives,
            temperature,
            min_probability,
            reduction,
        )
        b, n = q.shape[0], c.shape[0]
        tau = 1.0 if temperature is None else float(temperature)
        neg_inf = torch.tensor(-math.inf, dtype=q.dtype)
        rows = torch.arange(b)
        is_positive = torch.zeros((b, n), dtype=torch.bool)
        is_positive[rows, rows] = True

        scores = q @ c.T
        log_p = torch.zeros((), dtype=q.dtype)
        if candidate_sampling_probability is not None:
            p = torch.clamp(candidate_sampling_probability.to(q.dtype), min_probability, 1.0)
            log_p = torch.log(p)
        # correct: s / tau - log p (logQ is not scaled by the temperature)
        scores = (scores - log_p) / tau if logq_over_temperature else scores / tau - log_p

        if candidate_ids is not None:
            hit = (candidate_ids[:b, None] == candidate_ids[None, :]) & ~is_positive
            fill = torch.tensor(hit_fill, dtype=q.dtype)
            scores = torch.where(hit, fill, scores)

        positive_kept = torch.ones(b, dtype=torch.bool)
        if score_mask is not None:
            scores = torch.where(score_mask, scores, neg_inf)
            positive_kept = score_mask[rows, rows]

        if num_hard_negatives is not None and num_hard_negatives < n - 1:
            k = int(num_hard_negatives)
            if naive_top_k:
                chosen = torch.topk(scores, k + 1, dim=1).indices
                keep = torch.zeros((b, n), dtype=torch.bool)
                keep[rows[:, None], chosen] = True
            else:
                negatives = torch.where(is_positive, neg_inf, scores)
                order = torch.sort(negatives, dim=1, descending=True, stable=True).indices
                keep = is_positive.clone()
                keep[rows[:, None], order[:, :k]] = True
            scores = torch.where(keep, scores, neg_inf)

        row_loss = torch.logsumexp(scores, dim=1) - scores[rows, rows]
        row_loss = torch.where(positive_kept, row_loss, torch.zeros((), dtype=q.dtype))

        if sample_weight is not None:
            weight = torch.as_tensor(sample_weight, dtype=q.dtype)
            row_loss = weight * row_loss
        if reduction == "none":
            return row_loss
        if reduction == "mean" or sum_as_mean:
            return row_loss.sum() / b
        return row_loss.sum()

    return loss


retrieval_loss = make_retrieval_loss()
logq_scaled_by_temperature = make_retrieval_loss(logq_over_temperature=True)
finite_hit_mask = make_retrieval_loss(hit_fill=-10.0)
top_k_can_drop_positive = make_retrieval_loss(naive_top_k=True)
mean_instead_of_sum = make_retrieval_loss(sum_as_mean=True)
