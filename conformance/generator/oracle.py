"""High-precision reference values for the conformance fixtures.

Everything here is computed with :mod:`mpmath` from the exact binary values of the
inputs, at the working precision of the mpmath context: the generator evaluates every
case at :data:`DPS` (50) and again at :data:`CHECK_DPS` (100) significant digits and
refuses a value whose float64 rounding differs between the two.  Results are rounded to
float64 exactly once, at the end, by :func:`to_float64` (round to nearest, ties to even,
subnormals included).  The module depends on nothing but the standard library and
mpmath: it never calls the library it checks, so a bug in that library cannot leak into
the expected values.

Row losses are written in forms that keep their relative precision in the tails.  A
row whose target dominates has a loss far below the size of its logits (tcId 9 of
``softmax_cross_entropy_test.json``: about 1.1e-268 from logits near 1e4), so
``lse - S_t`` would cancel to 0 at any fixed precision.  Instead

    loss_i = log1p(sum_{j != t} exp(S_ij - S_it)),

a sum of positive terms whose exponents mpmath does not bound, and each label-weight term
``lse_i - S_ij`` is written the same way.  Gradients use ``1 - p_it = sum_{j != t} p_ij``.

Tensors are plain nested Python lists (row-major) of floats, ints, bools or mpf.  Masked
logits are ``-inf`` (:data:`NEG_INF`); they contribute exactly zero probability.
"""

from __future__ import annotations

import math

import mpmath
from mpmath.libmp import round_nearest, to_float

DPS = 50
CHECK_DPS = 100
PRECISIONS = (DPS, CHECK_DPS)
NEG_INF = mpmath.mpf("-inf")
POS_INF = mpmath.mpf("inf")
NAN = mpmath.mpf("nan")
ZERO = mpmath.mpf(0)
ONE = mpmath.mpf(1)

# float64: the smallest normal exponent and the spacing of the subnormals (2**-1074).
_MIN_NORMAL_EXP = -1022
_SUBNORMAL_EXP = -1074


def _require_precision() -> None:
    """Refuse to compute at less than :data:`DPS` digits (mpmath's default is 15)."""
    if mpmath.mp.dps < DPS:
        raise RuntimeError(
            f"the oracle needs at least {DPS} digits; wrap the call in mpmath.workdps(...)"
        )


def mpf(x) -> mpmath.mpf:
    """Convert a float, int or bool to an mpf (floats keep their exact binary value).

    An mpf is returned as it is: arithmetic rounds its results to the working precision.
    """
    return x if isinstance(x, mpmath.mpf) else mpmath.mpf(x)


def is_nan(x: mpmath.mpf) -> bool:
    """Return True for an mpf NaN."""
    return mpmath.isnan(x)


def to_float64(x) -> float:
    """Round an mpf to the nearest float64 (ties to even), exactly once.

    Normal results are rounded by mpmath to 53 bits.  Results below the smallest normal
    float64 (2**-1022) are rounded directly onto the subnormal grid (multiples of
    2**-1074) with integer arithmetic, so they are rounded once too (``math.ldexp`` of a
    53-bit mantissa would round them a second time); a result below 2**-1075 becomes 0.
    """
    x = mpf(x)
    if mpmath.isnan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.inf if x > 0 else -math.inf
    sign, man, exp, bc = x._mpf_
    if not man:
        return 0.0
    if exp + bc - 1 >= _MIN_NORMAL_EXP:
        return to_float(x._mpf_, rnd=round_nearest)
    # |x| = man * 2**exp < 2**-1022: count multiples of 2**-1074, ties to even.
    shift = _SUBNORMAL_EXP - exp
    if shift <= 0:
        units = man << -shift
    else:
        units, rest = divmod(man, 1 << shift)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and units % 2):
            units += 1
    value = math.ldexp(units, _SUBNORMAL_EXP)  # exact: units <= 2**52
    return -value if sign else value


def _matrix(rows) -> list[list[mpmath.mpf]]:
    return [[mpf(v) for v in row] for row in rows]


def scores(query, candidates, temperature=None):
    """Return ``S = Q @ C^T`` (divided by ``temperature`` when given), shape (B, N)."""
    _require_precision()
    q = _matrix(query)
    c = _matrix(candidates)
    out = [[mpmath.fdot(zip(qi, cj, strict=True)) for cj in c] for qi in q]
    if temperature is not None:
        tau = mpf(temperature)
        out = [[v / tau for v in row] for row in out]
    return out


def logq_correction(logits, probability, min_probability=1e-6):
    """Return ``S - log(clip(p, min_probability, 1))`` for every column (positive included)."""
    _require_precision()
    lo = mpf(min_probability)
    log_p = []
    for p in probability:
        p = mpf(p)
        if is_nan(p):
            log_p.append(NAN)
        else:
            log_p.append(mpmath.log(min(max(p, lo), ONE)))
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


def _exp_sum_over(values, pivot, skip):
    """``sum_{j != skip, values[j] finite} exp(values[j] - pivot)``: positive terms only."""
    return mpmath.fsum(
        mpmath.exp(v - pivot) for j, v in enumerate(values) if j != skip and v != NEG_INF
    )


def _lse(values):
    """Log-sum-exp of a list with IEEE-like handling of NaN and infinities.

    ``m + log1p(sum over the other entries of exp(x_j - m))``, m the (first) maximum.
    """
    vals = [mpf(v) for v in values]
    if any(is_nan(v) for v in vals):
        return NAN
    if any(v == POS_INF for v in vals):
        return POS_INF
    if all(v == NEG_INF for v in vals):
        return NEG_INF
    top = max(range(len(vals)), key=lambda j: vals[j])
    return vals[top] + mpmath.log1p(_exp_sum_over(vals, vals[top], top))


def logsumexp(x, axis=-1):
    """Log-sum-exp of a nested list along ``axis`` (any rank >= 1)."""
    _require_precision()
    shape = _shape(x)
    rank = len(shape)
    ax = axis + rank if axis < 0 else axis
    if not 0 <= ax < rank:
        raise ValueError("axis out of range")
    flat = flatten(x)
    strides = [math.prod(shape[d + 1 :]) for d in range(rank)]
    out_shape = shape[:ax] + shape[ax + 1 :]
    out = []
    for idx in _indices(out_shape):
        full = [*idx[:ax], 0, *idx[ax:]]
        base = sum(f * s for f, s in zip(full, strides, strict=True))
        out.append(_lse([flat[base + t * strides[ax]] for t in range(shape[ax])]))
    return _reshape(out, out_shape)


# --- softmax cross-entropy against general targets ------------------------------------


def _check_row(vals):
    if any(v == POS_INF for v in vals):
        raise ValueError("+inf logits are not pinned by the cross-entropy oracle")


def _column_row_loss(vals, t):
    """Loss of a row whose target is column ``t``: ``log1p(sum_{j != t} e^(S_j - S_t))``.

    NaN gives NaN; a row without a finite logit gives 0; a target of -inf in a row with a
    finite logit gives +inf; a target whose other entries are all -inf gives exactly 0.
    """
    if any(is_nan(v) for v in vals):
        return NAN
    _check_row(vals)
    target = vals[t]
    if target == NEG_INF:
        others = any(v != NEG_INF for j, v in enumerate(vals) if j != t)
        return POS_INF if others else ZERO
    return mpmath.log1p(_exp_sum_over(vals, target, t))


def _weight_row_loss(vals, labels):
    """Loss of a row with label weights: ``sum_j y_j log1p(sum_{k != j} e^(S_k - S_j))``.

    A row whose weights sum to 0, or without a finite logit, gives 0; NaN gives NaN; a
    positive weight on a -inf logit gives +inf.  Each term is >= 0, so the sum does not
    cancel.
    """
    if mpmath.fsum(labels) == 0:
        return ZERO
    if any(is_nan(v) for v in vals):
        return NAN
    _check_row(vals)
    if all(v == NEG_INF for v in vals):
        return ZERO
    terms = []
    for j, (v, y) in enumerate(zip(vals, labels, strict=True)):
        if y == 0:
            continue
        if v == NEG_INF:
            return POS_INF
        terms.append(y * mpmath.log1p(_exp_sum_over(vals, v, j)))
    return mpmath.fsum(terms)


def _column_row_grad(vals, t):
    """``d loss / d S`` of a column-target row with a finite target and no NaN.

    ``p_j = e^(S_j - S_t) / (1 + r)`` off the target and ``p_t - 1 = -r / (1 + r)``, with
    ``r = sum_{j != t} e^(S_j - S_t)``, so no entry loses digits to ``p_t - 1``.
    """
    target = vals[t]
    if any(is_nan(v) for v in vals) or target == NEG_INF:
        raise ValueError("no finite gradient: a NaN or a -inf target")
    rest = _exp_sum_over(vals, target, t)
    grad = [ZERO if v == NEG_INF else mpmath.exp(v - target) / (1 + rest) for v in vals]
    grad[t] = -rest / (1 + rest)
    return grad


def _weight_row_grad(vals, labels):
    """``d loss / d S_j = Y p_j - y_j = (Y - y_j) p_j - y_j (1 - p_j)`` of a weight row."""
    if any(is_nan(v) for v in vals) or any(
        y != 0 and v == NEG_INF for v, y in zip(vals, labels, strict=True)
    ):
        raise ValueError("no finite gradient: a NaN or a positive weight on -inf")
    lse = _lse(vals)
    probs = [ZERO if v == NEG_INF else mpmath.exp(v - lse) for v in vals]
    grad = []
    for j, (p, y) in enumerate(zip(probs, labels, strict=True)):
        others_y = mpmath.fsum(labels[k] for k in range(len(labels)) if k != j)
        others_p = mpmath.fsum(probs[k] for k in range(len(probs)) if k != j)
        grad.append(others_y * p - y * others_p)
    return grad


def _targets(logits, labels, positive_mask):
    """Per row: ``("none",)``, ``("column", t)`` or ``("weights", [y_j])``."""
    rows = []
    for i, row in enumerate(logits):
        if positive_mask is not None and not positive_mask[i]:
            rows.append(("none",))
        elif labels is None:
            rows.append(("column", i))
        elif isinstance(labels[i], list):
            rows.append(("weights", [mpf(y) for y in labels[i]]))
        else:
            t = int(labels[i])
            if not 0 <= t < len(row):
                raise ValueError(f"label {t} outside [0, {len(row)})")
            rows.append(("column", t))
    return rows


def softmax_cross_entropy(
    logits, labels=None, positive_mask=None, sample_weight=None, reduction="sum"
):
    """Softmax cross-entropy against in-batch labels, target columns or label weights.

    ``labels`` is None (row i's target is column i), a list of target columns, or a
    nested list (B, N) of label weights ``y_ij >= 0`` (bools count as 0/1).  Rows with
    ``positive_mask[i]`` False have loss exactly 0.  Returns ``(value, weighted)``:
    ``value`` is an mpf for "sum"/"mean" and a list for "none"; ``weighted`` lists
    ``w_i * loss_i``.
    """
    _require_precision()
    rows = []
    for row, target in zip(logits, _targets(logits, labels, positive_mask), strict=True):
        vals = [mpf(v) for v in row]
        if target[0] == "none":
            rows.append(ZERO)
        elif target[0] == "column":
            rows.append(_column_row_loss(vals, target[1]))
        else:
            rows.append(_weight_row_loss(vals, target[1]))
    b = len(logits)
    weights = _weights(sample_weight, b)
    weighted = [w * r for w, r in zip(weights, rows, strict=True)]
    return _reduce(weighted, reduction, b), weighted


def softmax_cross_entropy_grad(
    logits, labels=None, positive_mask=None, sample_weight=None, reduction="sum"
):
    """Return ``(loss, G)`` with ``G = dL/dS``, shape (B, N), from the analytic formula.

    ``G_ij = s_i (Y_i p_ij - y_ij)`` with ``s_i = w_i`` ("sum") or ``w_i / B`` ("mean"),
    ``Y_i = sum_j y_ij`` and ``p`` the row softmax; zero rows for rows without a target
    (``positive_mask`` False, zero total weight, or no finite logit).
    """
    _require_precision()
    if reduction not in ("sum", "mean"):
        raise ValueError("gradients need a scalar reduction")
    value, _ = softmax_cross_entropy(logits, labels, positive_mask, sample_weight, reduction)
    b = len(logits)
    scale = ONE if reduction == "sum" else ONE / b
    weights = _weights(sample_weight, b)
    grad = []
    for i, (row, target) in enumerate(
        zip(logits, _targets(logits, labels, positive_mask), strict=True)
    ):
        vals = [mpf(v) for v in row]
        dead = target[0] == "none" or all(v == NEG_INF for v in vals)
        if not dead and target[0] == "weights":
            dead = mpmath.fsum(target[1]) == 0
        if dead:
            grad.append([ZERO] * len(vals))
            continue
        if target[0] == "column":
            g = _column_row_grad(vals, target[1])
        else:
            g = _weight_row_grad(vals, target[1])
        grad.append([scale * weights[i] * v for v in g])
    return value, grad


def _weights(sample_weight, b):
    if sample_weight is None:
        return [ONE] * b
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


# --- the retrieval pipeline -----------------------------------------------------------


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
    _require_precision()
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
    s, has_target = retrieval_logits(query, candidates, **options)
    value, _ = softmax_cross_entropy(s, None, has_target, sample_weight, reduction)
    return value


def retrieval_loss_grad(query, candidates, *, sample_weight=None, reduction="sum", **options):
    """Return ``(loss, dQ, dC)`` from the analytic gradient.

    ``G = dL/dS`` from :func:`softmax_cross_entropy_grad` (in-batch targets, rows whose
    positive is masked have no target), then ``dQ = G @ C / tau`` and
    ``dC = G^T @ Q / tau``.
    """
    s, has_target = retrieval_logits(query, candidates, **options)
    value, g = softmax_cross_entropy_grad(s, None, has_target, sample_weight, reduction)
    b, n = len(s), len(s[0])
    tau = ONE if options.get("temperature") is None else mpf(options["temperature"])
    q = _matrix(query)
    c = _matrix(candidates)
    d = len(q[0])
    dq = [
        [mpmath.fsum(g[i][j] * c[j][k] for j in range(n)) / tau for k in range(d)] for i in range(b)
    ]
    dc = [
        [mpmath.fsum(g[i][j] * q[i][k] for i in range(b)) / tau for k in range(d)] for j in range(n)
    ]
    return value, dq, dc


# --- sampled softmax, NCE and the full softmax ---------------------------------------


def sampled_logits(
    weights,
    biases,
    inputs,
    labels,
    sampled_candidates,
    true_expected_count=None,
    sampled_expected_count=None,
    remove_accidental_hits=True,
    subtract_log_q=True,
):
    """Return ``(o, y)``: the (B, T + S) logits, true classes first, and their labels.

    ``o_it = <x_i, w_{y_it}> + b_{y_it} - log Q_it`` and ``o_ij = <x_i, w_{s_j}> + b_{s_j}
    - log Q_j``; a sampled class equal to one of row i's labels is -inf (every copy) when
    ``remove_accidental_hits``.  Labels are ``1/T`` on the true columns, 0 elsewhere.
    """
    _require_precision()
    w = _matrix(weights)
    x = _matrix(inputs)
    b = [mpf(v) for v in biases]

    def logit(i, k):
        return mpmath.fdot(zip(x[i], w[k], strict=True)) + b[k]

    out, lab = [], []
    for i, row_labels in enumerate(labels):
        num_true = len(row_labels)
        true = [logit(i, k) for k in row_labels]
        rest = [logit(i, k) for k in sampled_candidates]
        if subtract_log_q:
            true = [
                v - mpmath.log(mpf(q)) for v, q in zip(true, true_expected_count[i], strict=True)
            ]
            rest = [
                v - mpmath.log(mpf(q)) for v, q in zip(rest, sampled_expected_count, strict=True)
            ]
        if remove_accidental_hits:
            rest = [
                NEG_INF if k in row_labels else v
                for v, k in zip(rest, sampled_candidates, strict=True)
            ]
        out.append(true + rest)
        lab.append([ONE / num_true] * num_true + [ZERO] * len(sampled_candidates))
    return out, lab


def _softplus(z):
    """``log(1 + e^z)``; 0 at -inf, +inf at +inf."""
    if z == NEG_INF:
        return ZERO
    if z == POS_INF:
        return POS_INF
    return mpmath.log1p(mpmath.exp(z))


def _sigmoid(z):
    if z == NEG_INF:
        return ZERO
    return ONE / (1 + mpmath.exp(-z))


def sigmoid_cross_entropy_rows(logits, labels):
    """Per-row ``sum_j y softplus(-x) + (1 - y) softplus(x)``; a zero weight drops its term."""
    _require_precision()
    rows = []
    for row, ys in zip(logits, labels, strict=True):
        terms = []
        for v, y in zip(row, ys, strict=True):
            v, y = mpf(v), mpf(y)
            if is_nan(v):
                terms.append(NAN)
                continue
            if y != 0:
                terms.append(y * _softplus(-v))
            if y != 1:
                terms.append((1 - y) * _softplus(v))
        rows.append(mpmath.fsum(terms))
    return rows


def sigmoid_cross_entropy_row_grads(logits, labels):
    """``d loss_i / d x_ij = (1 - y) sigma(x) - y sigma(-x)``, 0 for a dropped term."""
    grads = []
    for row, ys in zip(logits, labels, strict=True):
        g = []
        for v, y in zip(row, ys, strict=True):
            v, y = mpf(v), mpf(y)
            neg = (1 - y) * _sigmoid(v) if y != 1 else ZERO
            pos = y * _sigmoid(-v) if y != 0 else ZERO
            g.append(neg - pos)
        grads.append(g)
    return grads


def _sampled_rows(kind, o, y):
    """Per-row losses of the sampled logits: softmax (label 1/T) or sigmoid."""
    if kind == "sigmoid":
        return sigmoid_cross_entropy_rows(o, y)
    num_true = sum(1 for v in y[0] if v != 0)
    labels = [0] * len(o) if num_true == 1 else y
    _, rows = softmax_cross_entropy(o, labels, None, None, "none")
    return rows


def sampled_loss(
    kind, weights, biases, inputs, labels, sampled_candidates, *, reduction="none", **options
):
    """``sampled_softmax_loss`` (``kind="softmax"``) or ``nce_loss`` (``kind="sigmoid"``)."""
    o, y = sampled_logits(weights, biases, inputs, labels, sampled_candidates, **options)
    rows = _sampled_rows(kind, o, y)
    return _reduce(rows, reduction, len(rows))


def sampled_loss_grad(
    kind, weights, biases, inputs, labels, sampled_candidates, *, reduction="sum", **options
):
    """Return ``(loss, dW, db, dX)`` from ``G = dL/do`` pulled back through the gathers.

    A class gathered several times (the label of several rows, or also sampled) gets the
    sum of its contributions.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError("gradients need a scalar reduction")
    o, y = sampled_logits(weights, biases, inputs, labels, sampled_candidates, **options)
    value = _reduce(_sampled_rows(kind, o, y), reduction, len(o))
    scale = ONE if reduction == "sum" else ONE / len(o)
    if kind == "sigmoid":
        g = sigmoid_cross_entropy_row_grads(o, y)
    else:
        num_true = len(labels[0])
        targets = [0] * len(o) if num_true == 1 else y
        _, g = softmax_cross_entropy_grad(o, targets, None, None, "sum")
    w, x = _matrix(weights), _matrix(inputs)
    d = len(x[0])
    dw = [[ZERO] * d for _ in w]
    db = [ZERO] * len(w)
    dx = [[ZERO] * d for _ in x]
    for i, row_labels in enumerate(labels):
        classes = list(row_labels) + list(sampled_candidates)
        for j, k in enumerate(classes):
            gij = scale * g[i][j]
            if gij == 0:
                continue
            db[k] += gij
            for c in range(d):
                dw[k][c] += gij * x[i][c]
                dx[i][c] += gij * w[k][c]
    return value, dw, db, dx


def full_softmax_logits(query, classes, class_bias=None, temperature=None):
    """``S_ik = <q_i, c_k> / tau + b_k``."""
    s = scores(query, classes, temperature)
    if class_bias is not None:
        s = [[v + mpf(bk) for v, bk in zip(row, class_bias, strict=True)] for row in s]
    return s


def full_softmax_loss(
    query, classes, labels, *, class_bias=None, temperature=None, reduction="none"
):
    """The exact softmax cross-entropy of each row against every class."""
    s = full_softmax_logits(query, classes, class_bias, temperature)
    value, _ = softmax_cross_entropy(s, list(labels), None, None, reduction)
    return value


def full_softmax_loss_grad(
    query, classes, labels, *, class_bias=None, temperature=None, reduction="sum"
):
    """Return ``(loss, dQ, dC, db, dtau)``.

    ``dQ = G C / tau``, ``dC = G^T Q / tau``, ``db = sum_i G`` and
    ``dtau = -sum(G * Q C^T) / tau^2 = -sum(Q * dQ) / tau`` (None without a temperature).
    """
    s = full_softmax_logits(query, classes, class_bias, temperature)
    value, g = softmax_cross_entropy_grad(s, list(labels), None, None, reduction)
    tau = ONE if temperature is None else mpf(temperature)
    q, c = _matrix(query), _matrix(classes)
    b, k, d = len(q), len(c), len(q[0])
    dq = [
        [mpmath.fsum(g[i][j] * c[j][e] for j in range(k)) / tau for e in range(d)] for i in range(b)
    ]
    dc = [
        [mpmath.fsum(g[i][j] * q[i][e] for i in range(b)) / tau for e in range(d)] for j in range(k)
    ]
    db = [mpmath.fsum(g[i][j] for i in range(b)) for j in range(k)]
    dtau = None
    if temperature is not None:
        dtau = -mpmath.fsum(q[i][e] * dq[i][e] for i in range(b) for e in range(d)) / tau
    return value, dq, dc, db, dtau


# --- contrastive losses -------------------------------------------------------------


def _transpose(m):
    return [list(col) for col in zip(*m, strict=True)]


def _matmul(a, b):
    """``a @ b`` for nested lists of mpf (``b`` given row-major)."""
    bt = _transpose(b)
    return [[mpmath.fdot(zip(row, col, strict=True)) for col in bt] for row in a]


def _scale(m, factor):
    return [[factor * v for v in row] for row in m]


def _add(a, b):
    return [[x + y for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


def _clip_labels(num, label_smoothing):
    """None (the diagonal), or label weights ``(1 - e) I + e / B``."""
    eps = mpf(label_smoothing)
    if eps == 0:
        return None
    return [[(1 - eps) * (i == j) + eps / num for j in range(num)] for i in range(num)]


def clip_loss(image, text, logit_scale, *, label_smoothing=0.0, reduction="mean"):
    """``(CE of the rows of S + CE of its columns) / 2`` with ``S = t I T^T``."""
    _require_precision()
    s = _scale(scores(image, text), mpf(logit_scale))
    labels = _clip_labels(len(s), label_smoothing)
    _, rows = softmax_cross_entropy(s, labels, None, None, "none")
    _, cols = softmax_cross_entropy(_transpose(s), labels, None, None, "none")
    per = [(r + c) / 2 for r, c in zip(rows, cols, strict=True)]
    return _reduce(per, reduction, len(per))


def clip_loss_grad(image, text, logit_scale, *, label_smoothing=0.0, reduction="mean"):
    """``(loss, dI, dT, dt)``: ``dS = r (G_rows + G_cols^T) / 2``, then through ``S = t I T^T``."""
    value = clip_loss(
        image, text, logit_scale, label_smoothing=label_smoothing, reduction=reduction
    )
    t = mpf(logit_scale)
    raw = scores(image, text)
    s = _scale(raw, t)
    labels = _clip_labels(len(s), label_smoothing)
    _, g_rows = softmax_cross_entropy_grad(s, labels, None, None, "sum")
    _, g_cols = softmax_cross_entropy_grad(_transpose(s), labels, None, None, "sum")
    r = ONE if reduction == "sum" else ONE / len(s)
    ds = _scale(_add(g_rows, _transpose(g_cols)), r / 2)
    di = _scale(_matmul(ds, _matrix(text)), t)
    dt_ = _scale(_matmul(_transpose(ds), _matrix(image)), t)
    dscale = mpmath.fsum(
        g * v for gr, vr in zip(ds, raw, strict=True) for g, v in zip(gr, vr, strict=True)
    )
    return value, di, dt_, dscale


def siglip_loss(image, text, logit_scale, logit_bias, *, reduction="mean"):
    """``sum_ij softplus(-z_ij (t x_i.y_j + b))``, reduced over rows (mean divides by B)."""
    _require_precision()
    logits = [[mpf(logit_scale) * v + mpf(logit_bias) for v in row] for row in scores(image, text)]
    eye = [[ONE if i == j else ZERO for j in range(len(logits))] for i in range(len(logits))]
    rows = sigmoid_cross_entropy_rows(logits, eye)
    return _reduce(rows, reduction, len(rows))


def siglip_loss_grad(image, text, logit_scale, logit_bias, *, reduction="mean"):
    """``(loss, dX, dY, dt, db)`` from ``G = r (sigma(S) - I)``."""
    value = siglip_loss(image, text, logit_scale, logit_bias, reduction=reduction)
    t = mpf(logit_scale)
    raw = scores(image, text)
    logits = [[t * v + mpf(logit_bias) for v in row] for row in raw]
    num = len(logits)
    eye = [[ONE if i == j else ZERO for j in range(num)] for i in range(num)]
    r = ONE if reduction == "sum" else ONE / num
    g = _scale(sigmoid_cross_entropy_row_grads(logits, eye), r)
    dx = _scale(_matmul(g, _matrix(text)), t)
    dy = _scale(_matmul(_transpose(g), _matrix(image)), t)
    pairs = [(gv, v) for gr, vr in zip(g, raw, strict=True) for gv, v in zip(gr, vr, strict=True)]
    return value, dx, dy, mpmath.fsum(gv * v for gv, v in pairs), mpmath.fsum(gv for gv, _ in pairs)


def _self_scores(samples, temperature):
    """``S = Z Z^T / tau`` with each sample's similarity to itself at -inf."""
    s = scores(samples, samples, temperature)
    return [[NEG_INF if i == j else v for j, v in enumerate(row)] for i, row in enumerate(s)]


def _self_grads(samples, g, temperature):
    """``dZ = (G + G^T) Z / tau`` and ``dtau = -sum(G * Z Z^T) / tau^2``."""
    tau = mpf(temperature)
    z = _matrix(samples)
    dz = _scale(_matmul(_add(g, _transpose(g)), z), 1 / tau)
    raw = scores(samples, samples)
    dtau = -mpmath.fsum(
        gv * v for gr, vr in zip(g, raw, strict=True) for gv, v in zip(gr, vr, strict=True)
    ) / (tau * tau)
    return dz, dtau


def nt_xent_loss(view_a, view_b, *, temperature, reduction="mean"):
    """Each of the 2B views against the other 2B - 1; the positive is the other view."""
    _require_precision()
    z = list(view_a) + list(view_b)
    num = len(view_a)
    s = _self_scores(z, temperature)
    _, rows = softmax_cross_entropy(
        s, [(k + num) % (2 * num) for k in range(2 * num)], None, None, "none"
    )
    return _reduce(rows, reduction, 2 * num)


def nt_xent_loss_grad(view_a, view_b, *, temperature, reduction="mean"):
    """``(loss, da, db, dtau)``."""
    value = nt_xent_loss(view_a, view_b, temperature=temperature, reduction=reduction)
    z = list(view_a) + list(view_b)
    num = len(view_a)
    s = _self_scores(z, temperature)
    labels = [(k + num) % (2 * num) for k in range(2 * num)]
    _, g = softmax_cross_entropy_grad(s, labels, None, None, reduction)
    dz, dtau = _self_grads(z, g, temperature)
    return value, dz[:num], dz[num:], dtau


def _supcon_weights(labels):
    """Label weights ``1/|P(i)|`` on the anchor's positives; a row of zeros without any."""
    num = len(labels)
    out = []
    for i in range(num):
        positives = [j for j in range(num) if j != i and labels[j] == labels[i]]
        row = [ZERO] * num
        for j in positives:
            row[j] = ONE / len(positives)
        out.append(row)
    return out


def supcon_loss(embeddings, labels, *, temperature, base_temperature=None, reduction="mean"):
    """The "out" form; anchors without a positive give 0 and leave the mean."""
    _require_precision()
    s = _self_scores(embeddings, temperature)
    weights = _supcon_weights(labels)
    _, rows = softmax_cross_entropy(s, weights, None, None, "none")
    factor = ONE if base_temperature is None else mpf(temperature) / mpf(base_temperature)
    rows = [factor * v for v in rows]
    if reduction == "none":
        return rows
    total = mpmath.fsum(rows)
    if reduction == "sum":
        return total
    anchors = sum(1 for w in weights if any(x != 0 for x in w))
    return total / max(anchors, 1)


def supcon_loss_grad(embeddings, labels, *, temperature, base_temperature=None, reduction="mean"):
    """``(loss, dE, dtau)``; with a base temperature ``dtau`` gains ``L / tau``."""
    value = supcon_loss(
        embeddings,
        labels,
        temperature=temperature,
        base_temperature=base_temperature,
        reduction=reduction,
    )
    s = _self_scores(embeddings, temperature)
    weights = _supcon_weights(labels)
    _, g = softmax_cross_entropy_grad(s, weights, None, None, "sum")
    factor = ONE if base_temperature is None else mpf(temperature) / mpf(base_temperature)
    if reduction == "mean":
        anchors = sum(1 for w in weights if any(x != 0 for x in w))
        factor = factor / max(anchors, 1)
    g = _scale(g, factor)
    de, dtau = _self_grads(embeddings, g, temperature)
    if base_temperature is not None:
        dtau += value / mpf(temperature)
    return value, de, dtau


# --- nested lists ---------------------------------------------------------------------


def _shape(x):
    shape = []
    while isinstance(x, list):
        shape.append(len(x))
        x = x[0] if x else None
    return shape


def flatten(x) -> list:
    """The elements of the nested list ``x`` in row-major order (``[x]`` for a scalar)."""
    if not isinstance(x, list):
        return [x]
    out = []
    for item in x:
        out.extend(flatten(item))
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
