"""Names and case builders shared by the case lists."""

from __future__ import annotations

from .model import Case, Draw, f64, i64

Q = "query_embeddings"
C = "candidate_embeddings"
P = "candidate_sampling_probability"
IDS = "candidate_ids"
M = "score_mask"
W = "sample_weight"


def qc(d: Draw, b: int, n: int, dim: int, scale: float = 1.0, **kw) -> dict:
    """Random query (b, dim) and candidate (n, dim) embeddings drawn from ``d``."""
    return {Q: d.normal((b, dim), scale, **kw), C: d.normal((n, dim), scale, **kw)}


def case(comment, flags, inputs, group, params=None, draw=None, note=None, **kw) -> Case:
    """A valid case; its provenance is ``draw``'s record, or "hand-written"."""
    prov = draw.provenance(note) if draw is not None else "hand-written"
    return Case(comment, flags, inputs, group, params or {}, provenance=prov, **kw)


def hit_inputs(seed: int) -> tuple[dict, Draw]:
    """B=4, N=8, D=6; row 0's id reappears at columns 5 and 6 with large logits."""
    d = Draw(seed)
    x = qc(d, 4, 8, 6, 0.5)
    x[C][5] = x[Q][0] * 4.0  # hit logit 4*|q0|^2, far above the positive
    x[C][6] = x[Q][0] * 2.0
    x[IDS] = i64([10, 11, 12, 13, 14, 10, 10, 15])
    return x, d


def hard_inputs() -> dict:
    """Dyadic inputs (multiples of 0.25, D=2) with exact ties and a weak positive.

    Row 0: the positive (column 0) scores -1, below every negative; columns 2 and 3
    are identical candidates, so their logits tie exactly in every row.
    """
    q = f64([[1.0, 0.5], [0.5, -1.0], [-0.75, 0.25]])
    c = f64(
        [
            [-1.0, 0.0],
            [0.5, 0.5],
            [0.75, 0.25],
            [0.75, 0.25],
            [0.25, 1.0],
            [-0.5, -0.75],
        ]
    )
    return {Q: q, C: c}


def invalid(comment, flags, inputs, error, params=None, group="invalid", **kw) -> Case:
    """A case the function must reject with ``error``."""
    return Case(comment, flags, inputs, group, params or {}, "invalid", error, **kw)
