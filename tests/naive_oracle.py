"""A deliberately naive float64 oracle for the retrieval loss, in plain Python loops.

Written from the pinned semantics of ``retrieval_loss`` (scores, temperature, logQ with
clipping, accidental hits, score mask, hard negatives with ties to the lower column index,
softmax cross-entropy against the diagonal, weights and reduction) and from the analytic
gradient ``G = r w (P - Y)``, ``dQ = G C / tau``, ``dC = G^T Q / tau``.

Every number is a Python float; dot products use ``math.fsum`` (correctly rounded), the
log-sum-exp is shifted by the row maximum, and masked entries are ``-inf``. Nothing here
uses an array library, so it shares no code path with the implementation under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

NEG_INF = float("-inf")


def _matrix(a: Any) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def _vector(a: Any) -> list[float]:
    return [float(v) for v in a]


@dataclass
class OracleResult:
    logits: list[list[float]]  # final logits after every correction (masked = -inf)
    probs: list[list[float]]  # row softmax of the final logits (0 on masked entries)
    has_target: list[bool]  # False where the positive is masked (row loss defined as 0)
    per_row: list[float]  # l_i (unweighted)
    weighted: list[float]  # w_i * l_i
    loss: float | list[float]  # reduced loss ("none": the list w_i * l_i)
    dq: list[list[float]] | None  # analytic gradient (None for reduction="none")
    dc: list[list[float]] | None


def final_logits(
    q: Any,
    c: Any,
    *,
    candidate_sampling_probability: Any = None,
    candidate_ids: Any = None,
    score_mask: Any = None,
    num_hard_negatives: int | None = None,
    temperature: float | None = None,
    min_probability: float = 1e-6,
) -> list[list[float]]:
    """Steps 1-5: the (B, N) logits after every correction, masked entries -inf."""
    q = _matrix(q)
    c = _matrix(c)
    b, n = len(q), len(c)
    s = [[0.0] * n for _ in range(b)]
    for i in range(b):
        for j in range(n):
            dot = math.fsum(q[i][d] * c[j][d] for d in range(len(q[i])))
            if temperature is not None:
                dot = dot / float(temperature)
            s[i][j] = dot
    if candidate_sampling_probability is not None:
        p = _vector(candidate_sampling_probability)
        for j in range(n):
            pj = p[j]
            if math.isnan(pj):
                corr = math.nan
            else:
                if pj < min_probability:
                    pj = min_probability
                if pj > 1.0:
                    pj = 1.0
                corr = math.log(pj)
            for i in range(b):
                s[i][j] = s[i][j] - corr
    if candidate_ids is not None:
        ids = [int(v) for v in candidate_ids]
        for i in range(b):
            for j in range(n):
                if j != i and ids[j] == ids[i]:
                    s[i][j] = NEG_INF
    if score_mask is not None:
        m = [[bool(v) for v in row] for row in score_mask]
        for i in range(b):
            for j in range(n):
                if not m[i][j]:
                    s[i][j] = NEG_INF
    if num_hard_negatives is not None:
        k = int(num_hard_negatives)
        for i in range(b):
            negatives = [j for j in range(n) if j != i]
            # largest logit first; equal logits: lower column index first
            negatives.sort(key=lambda j, row=s[i]: (-row[j], j))
            keep = set(negatives[:k])
            keep.add(i)
            for j in range(n):
                if j not in keep:
                    s[i][j] = NEG_INF
    return s


def _row_softmax(row: list[float]) -> tuple[float, list[float]]:
    """(logsumexp, softmax) of one row; -inf entries get probability exactly 0."""
    finite = [v for v in row if v != NEG_INF]
    if not finite:
        return NEG_INF, [0.0] * len(row)
    m = finite[0]
    for v in finite:
        if math.isnan(v) or v > m:
            m = v
            if math.isnan(v):
                break
    total = math.fsum(math.exp(v - m) for v in row if v != NEG_INF)
    lse = m + math.log(total)
    probs = [0.0 if v == NEG_INF else math.exp(v - lse) for v in row]
    return lse, probs


def retrieval_loss(
    q: Any,
    c: Any,
    *,
    sample_weight: Any = None,
    candidate_sampling_probability: Any = None,
    candidate_ids: Any = None,
    score_mask: Any = None,
    num_hard_negatives: int | None = None,
    temperature: float | None = None,
    min_probability: float = 1e-6,
    reduction: str = "sum",
) -> OracleResult:
    qm = _matrix(q)
    cm = _matrix(c)
    b, n = len(qm), len(cm)
    dim = len(qm[0]) if b else 0
    s = final_logits(
        qm,
        cm,
        candidate_sampling_probability=candidate_sampling_probability,
        candidate_ids=candidate_ids,
        score_mask=score_mask,
        num_hard_negatives=num_hard_negatives,
        temperature=temperature,
        min_probability=min_probability,
    )
    if sample_weight is None:
        w = [1.0] * b
    elif hasattr(sample_weight, "__len__") and len(getattr(sample_weight, "shape", (1,))) > 0:
        w = _vector(sample_weight)
    else:
        w = [float(sample_weight)] * b
    if score_mask is not None:
        has_target = [bool(score_mask[i][i]) for i in range(b)]
    else:
        has_target = [True] * b

    per_row: list[float] = []
    probs: list[list[float]] = []
    for i in range(b):
        lse, p_row = _row_softmax(s[i])
        probs.append(p_row)
        if not has_target[i]:
            per_row.append(0.0)
        else:
            per_row.append(lse - s[i][i])
    weighted = [w[i] * per_row[i] for i in range(b)]

    if reduction == "sum":
        loss: float | list[float] = math.fsum(weighted)
        r = 1.0
    elif reduction == "mean":
        loss = math.fsum(weighted) / b
        r = 1.0 / b
    elif reduction == "none":
        loss = list(weighted)
        r = None
    else:
        raise ValueError(reduction)

    dq = dc = None
    if r is not None:
        tau = 1.0 if temperature is None else float(temperature)
        g = [[0.0] * n for _ in range(b)]
        for i in range(b):
            if not has_target[i]:
                continue
            for j in range(n):
                y = 1.0 if j == i else 0.0
                g[i][j] = r * w[i] * (probs[i][j] - y)
        dq = [
            [math.fsum(g[i][j] * cm[j][d] for j in range(n)) / tau for d in range(dim)]
            for i in range(b)
        ]
        dc = [
            [math.fsum(g[i][j] * qm[i][d] for i in range(b)) / tau for d in range(dim)]
            for j in range(n)
        ]
    return OracleResult(s, probs, has_target, per_row, weighted, loss, dq, dc)
