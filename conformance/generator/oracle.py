"""High-precision reference values for the conformance fixtures.

Everything here is computed with :mod:`mpmath` at 50 significant digits from the
exact binary values of the inputs, and is rounded to float64 exactly once, at the end,
by :func:`to_float64` (round to nearest, ties to even).  The module depends on nothing
but the standard library and mpmath: it never calls the library it checks, so a bug in
that library cannot leak into the expected values.

Tensors are plain nested Python lists (row-major).  Masked logits are ``-inf``
(:data:`NEG_INF`); they contribute exactly zero probability.
"""

from __future__ import annotations

import math

import mpmath
from mpmath.libmp import round_nearest, to_float

DPS = 50
NEG_INF = mpmath.mpf("-inf")
POS_INF = mpmath.mpf("inf")
ZERO = mpmath.mpf(0)


def mpf(x: float | int) -> mpmath.mpf:
    """Convert a float or int to an mpf holding its exact binary value."""
    return mpmath.mpf(x)


def is_nan(x: mpmath.mpf) -> bool:
    """Return True for an mpf NaN."""
    return mpmath.isnan(x)


def to_float64(x: mpmath.mpf) -> float:
    """Round an mpf to the nearest float64 (ties to even), exactly once.

    Subnormal results would be rounded twice by ``math.ldexp``; they never occur in the
    fixtures, and this function refuses them rather than risk an off-by-one-ulp value.
    """
    if mpmath.isnan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.inf if x > 0 else -math.inf
    value = to_float(x._mpf_, rnd=round_nearest)
    if value != 0.0 and abs(value) < 2.2250738585072014e-308:
        raise ValueError(f"subnormal oracle result {x}")
    return value


def _matrix(rows: list[list[float]]) -> list[list[mpmath.mpf]]:
    return [[mpf(v) for v in row] for row in rows]


def scores(query, candidates, temperature=None):
    """Return ``S = Q @ C^T`` (divided by ``temperature`` when given), shape (B, N)."""
    with mpmath.workdps(DPS):
        q = _matrix(query)
        c = _matrix(candidates)
        out = [[mpmath.fsum(a * b for a, b in zip(qi, cj, strict=True)) for cj in c] for qi in q]
        if temperature is not None:
            tau = mpf(temperature)
            out = [[v / tau for v in row] for row in out]
        return out


def logq_correction(logits, probability, min_probability=1e-6):
    """Return ``S - log(clip(p, min_probability, 1))`` for every column (positive included)."""
    with mpmath.workdps(DPS):
        lo = mpf(min_probability)
        log_p = []
        for p in probability:
            p = mpf(p)
            if is_nan(p):
                log_p.append(mpmath.mpf("nan"))
            else:
                log_p.append(mpmath.log(min(max(p, lo), mpf(1))))
        return [[mpf(v) - lp for v, lp in zip(row, log_p, strict=True)] for row in logits]


def remove_accidental_hits(logits, candidate_ids):
    """Mask ``S[i, j]`` (j != i) whenever ``ids[j] == ids[i]``; column i is kept."""
    out = []
    for i, row in enumerate(logits):
        out.append(
            [
                NEG_INF if (j != i and candidate_ids[j] == candidate_ids[i]) else mpf(v)
                for j, v in enumerate(row)
            ]
        )
    return out


def apply_score_mask(logits, score_mask):
    """Mask ``S[i, j]`` wherever ``score_mask[i][j]`` is False (the positive may be masked)."""
    return [
        [mpf(v) if keep else NEG_INF for v, keep in zip(row, mrow, strict=True)]
        for row, mrow in zip(logits, score_mask, strict=True)
    ]


def hard_negative_columns(row, i, k):
    """Return the set of columns kept in row ``i``: ``i`` plus the ``k`` largest others.

    Ties go to the lower column index.  NaN logits are not allowed here.
    """
    others = [j for j in range(len(row)) if j != i]
    if any(is_nan(mpf(row[j])) for j in others):
        raise ValueError("hard-negative mining of NaN logits is unspecified")
    # Sort by value descending, then by index ascending (a stable sort on -value).
    ranked = sorted(others, key=lambda j: (-mpf(row[j]), j))
    return {i, *ranked[:k]}


def mine_hard_negatives(logits, num_hard_negatives):
    """Keep the positive (column i of row i) and the ``k`` largest negatives; mask the rest."""
    out = []
    for i, row in enumerate(logits):
        keep = hard_negative_columns(row, i, num_hard_negatives)
        out.append([mpf(v) if j in keep else NEG_INF for j, v in enumerate(row)])
    return out


def _lse(values):
    """Log-sum-exp of a list of mpf values with IEEE-like handling of NaN and infinities."""
    vals = [mpf(v) for v in values]
    if any(is_nan(v) for v in vals):
        return mpmath.mpf("nan")
    if any(v == POS_INF for v in vals):
        return POS_INF
    finite = [v for v in vals if v != NEG_INF]
    if not finite:
        return NEG_INF
    m = max(finite)
    return m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in finite))


def logsumexp(x, axis=-1):
    """Log-sum-exp of a nested list along ``axis`` (any rank >= 1)."""
    with mpmath.workdps(DPS):
        shape = _shape(x)
        rank = len(shape)
        ax = axis + rank if axis < 0 else axis
        if not 0 <= ax < rank:
            raise ValueError("axis out of range")
        flat = _flatten(x)
        strides = [math.prod(shape[d + 1 :]) for d in range(rank)]
        out_shape = shape[:ax] + shape[ax + 1 :]
        out = []
        for idx in _indices(out_shape):
            full = [*idx[:ax], 0, *idx[ax:]]
            base = sum(f * s for f, s in zip(full, strides, strict=True))
            out.append(_lse([flat[base + t * strides[ax]] for t in range(shape[ax])]))
        return _reshape(out, out_shape)


def softmax_cross_entropy(logits, positive_mask=None, sample_weight=None, reduction="sum"):
    """Softmax cross-entropy with the positive of row i in column i.

    Returns ``(value, per_row)`` where ``value`` is an mpf for "sum"/"mean" and a list
    for "none".  Rows with ``positive_mask[i]`` False have loss exactly 0.
    """
    with mpmath.workdps(DPS):
        b = len(logits)
        rows = []
        for i, row in enumerate(logits):
            if positive_mask is not None and not positive_mask[i]:
                rows.append(ZERO)
                continue
            lse = _lse(row)
            pos = mpf(row[i])
            if is_nan(lse) or is_nan(pos):
                rows.append(mpmath.mpf("nan"))
            elif lse == pos:
                # The positive is the only unmasked entry (or equal in every digit):
                # the loss is exactly zero, even when both are infinite.
                rows.append(ZERO)
            else:
                rows.append(lse - pos)
        weights = _weights(sample_weight, b)
        weighted = [w * r for w, r in zip(weights, rows, strict=True)]
        return _reduce(weighted, reduction, b), weighted


def _weights(sample_weight, b):
    if sample_weight is None:
        return [mpf(1)] * b
    if isinstance(sample_weight, list):
        return [mpf(w) for w in sample_weight]
    return [mpf(sample_weight)] * b


def _reduce(weighted, reduction, b):
    if reduction == "sum":
        return mpmath.fsum(weighted)
    if reduction == "mean":
        return mpmath.fsum(weighted) / b
    if reduction == "none":
        return list(weighted)
    raise ValueError(f"unknown reduction {reduction!r}")


def retrieval_logits(
    query,
    candidates,
    *,
    candidate_sampling_probability=None,
    candidate_ids=None,
    score_mask=None,
    num_hard_negatives=None,
    temperature=None,
    min_probability=1e-6,
):
    """Return the final logits (B, N) of the retrieval loss and the per-row target flags.

    The steps run in the pinned order: scores / temperature, logQ, accidental hits,
    score mask, hard negatives.  ``has_target[i]`` is False when ``score_mask[i][i]``
    is False.
    """
    with mpmath.workdps(DPS):
        s = scores(query, candidates, temperature)
        if candidate_sampling_probability is not None:
            s = logq_correction(s, candidate_sampling_probability, min_probability)
        if candidate_ids is not None:
            s = remove_accidental_hits(s, candidate_ids)
        if score_mask is not None:
            s = apply_score_mask(s, score_mask)
        if num_hard_negatives is not None:
            s = mine_hard_negatives(s, num_hard_negatives)
        has_target = [score_mask is None or bool(score_mask[i][i]) for i in range(len(s))]
        return s, has_target


def retrieval_loss(query, candidates, *, sample_weight=None, reduction="sum", **options):
    """Return the retrieval loss (an mpf, or a list for ``reduction="none"``)."""
    with mpmath.workdps(DPS):
        s, has_target = retrieval_logits(query, candidates, **options)
        value, _ = softmax_cross_entropy(s, has_target, sample_weight, reduction)
        return value


def retrieval_loss_grad(query, candidates, *, sample_weight=None, reduction="sum", **options):
    """Return ``(loss, dQ, dC)`` from the analytic gradient at 50 digits.

    With ``r = 1`` (sum) or ``1/B`` (mean), ``P`` the row softmax of the final logits and
    ``Y`` the one-hot positives: ``G = r * w * (P - Y)`` (zero rows where the loss is 0 by
    convention), ``dQ = G @ C / tau`` and ``dC = G^T @ Q / tau``.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError("gradients need a scalar reduction")
    with mpmath.workdps(DPS):
        s, has_target = retrieval_logits(query, candidates, **options)
        value, _ = softmax_cross_entropy(s, has_target, sample_weight, reduction)
        b, n = len(s), len(s[0])
        r = mpf(1) if reduction == "sum" else mpf(1) / b
        weights = _weights(sample_weight, b)
        g = []
        for i, row in enumerate(s):
            if not has_target[i]:
                g.append([ZERO] * n)
                continue
            lse = _lse(row)
            probs = [ZERO if v == NEG_INF else mpmath.exp(v - lse) for v in row]
            g.append([r * weights[i] * (probs[j] - (1 if j == i else 0)) for j in range(n)])
        tau = mpf(1) if options.get("temperature") is None else mpf(options["temperature"])
        q = _matrix(query)
        c = _matrix(candidates)
        d = len(q[0])
        dq = [
            [mpmath.fsum(g[i][j] * c[j][k] for j in range(n)) / tau for k in range(d)]
            for i in range(b)
        ]
        dc = [
            [mpmath.fsum(g[i][j] * q[i][k] for i in range(b)) / tau for k in range(d)]
            for j in range(n)
        ]
        return value, dq, dc


def _shape(x):
    shape = []
    while isinstance(x, list):
        shape.append(len(x))
        x = x[0] if x else None
    return shape


def _flatten(x):
    if not isinstance(x, list):
        return [x]
    out = []
    for item in x:
        out.extend(_flatten(item))
    return out


def _indices(shape):
    if not shape:
        yield ()
        return
    for head in range(shape[0]):
        for tail in _indices(shape[1:]):
            yield (head, *tail)


def _reshape(flat, shape):
    if not shape:
        return flat[0]
    step = math.prod(shape[1:])
    return [_reshape(flat[k * step : (k + 1) * step], shape[1:]) for k in range(shape[0])]
