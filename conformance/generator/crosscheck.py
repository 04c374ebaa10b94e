"""An independent float64 formulation of the retrieval loss in PyTorch autograd.

It shares no code with the mpmath oracle and never calls the library under test; the
generator compares it with the oracle and refuses to write a file when they disagree.
"""

from __future__ import annotations

import math

import numpy as np
import torch

RTOL = 1e-10


def torch_version() -> str:
    """The torch release, without a local build label such as ``+cpu``."""
    return torch.__version__.split("+")[0]


def _hard_negative_drop(s: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean (B, N): True where a column is dropped by hard-negative mining."""
    b, n = s.shape
    drop = torch.ones(b, n, dtype=torch.bool)
    for i in range(b):
        cols = torch.tensor([j for j in range(n) if j != i], dtype=torch.long)
        order = torch.sort(s[i, cols], descending=True, stable=True).indices
        drop[i, cols[order[:k]]] = False
        drop[i, i] = False
    return drop


def retrieval_loss_and_grads(inputs: dict, params: dict, *, grads: bool):
    """Return ``(loss, dQ, dC)`` as NumPy float64 arrays (``dQ``/``dC`` None without grads)."""
    q = torch.tensor(inputs["query_embeddings"], dtype=torch.float64, requires_grad=grads)
    c = torch.tensor(inputs["candidate_embeddings"], dtype=torch.float64, requires_grad=grads)
    tau = params.get("temperature")
    s = q @ c.T
    if tau is not None:
        s = s / tau
    if "candidate_sampling_probability" in inputs:
        p = torch.tensor(inputs["candidate_sampling_probability"], dtype=torch.float64)
        s = s - torch.log(torch.clamp(p, min=params.get("min_probability", 1e-6), max=1.0))
    b, n = s.shape
    eye = torch.zeros(b, n, dtype=torch.bool)
    eye[torch.arange(b), torch.arange(b)] = True
    if "candidate_ids" in inputs:
        ids = torch.tensor(np.asarray(inputs["candidate_ids"], dtype=np.int64))
        s = s.masked_fill((ids[None, :] == ids[:b, None]) & ~eye, -math.inf)
    has_target = torch.ones(b, dtype=torch.bool)
    if "score_mask" in inputs:
        keep = torch.tensor(np.asarray(inputs["score_mask"], dtype=bool))
        s = s.masked_fill(~keep, -math.inf)
        has_target = keep.diagonal().clone()
    if params.get("num_hard_negatives") is not None:
        s = s.masked_fill(_hard_negative_drop(s.detach(), params["num_hard_negatives"]), -math.inf)
    safe = torch.where(has_target[:, None], s, torch.zeros_like(s))
    rows = torch.logsumexp(safe, dim=1) - safe.diagonal()
    rows = torch.where(has_target, rows, torch.zeros_like(rows))
    if "sample_weight" in inputs:
        rows = rows * torch.tensor(inputs["sample_weight"], dtype=torch.float64)
    reduction = params.get("reduction", "sum")
    loss = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / b}[reduction]
    if not grads:
        return loss.detach().numpy(), None, None
    loss.backward()
    return loss.detach().numpy(), q.grad.numpy(), c.grad.numpy()


def compare(actual: np.ndarray, expected: np.ndarray, scale: float) -> float:
    """Return max |actual - expected| (NaN positions must agree; infinities must be equal).

    Raises ``AssertionError`` when a difference exceeds ``RTOL * scale``.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"shape {a.shape} != {e.shape}")
    if not np.array_equal(np.isnan(a), np.isnan(e)):
        raise AssertionError("NaN positions differ")
    finite = np.isfinite(e)
    if not np.array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)]):
        raise AssertionError("infinities differ")
    diff = float(np.max(np.abs(a[finite] - e[finite]), initial=0.0))
    if diff > RTOL * scale:
        raise AssertionError(f"max abs diff {diff:.3e} > {RTOL:.0e} * {scale:.3e}")
    return diff
