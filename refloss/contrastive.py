r"""Contrastive losses of two towers or two views: CLIP, SigLIP, NT-Xent and SupCon.

Each is the core's tiled score problem (:mod:`refloss._tiling`) with its own targets:

* CLIP: the softmax cross-entropy of the rows of :math:`S = t\,I T^\top` against the
  diagonal, and of its columns (the rows of :math:`S^\top = t\,T I^\top`), averaged;
* SigLIP: an elementwise sigmoid cross-entropy of every pair, label 1 on the diagonal;
* NT-Xent: the softmax over the other :math:`2B - 1` views, the positive the other view;
* SupCon: the softmax over the other samples against label weights :math:`1/|P(i)|` on
  the anchor's positives (the core's multi-positive targets).

Similarities are dot products of the embeddings as given: a loss defined on cosine
similarity (CLIP, SimCLR, SupCon, sentence-transformers) needs L2-normalised inputs,
which is the caller's step (and part of the caller's autodiff graph).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._lib import _validation as v
from ._lib._compat import device, is_lazy_array
from ._lib._typing import Array, ArrayNamespace
from ._reductions import reduce_weighted, row_scale
from ._scores import multiply_query, multiply_query_vjp, scale_query, scale_query_vjp
from ._targets import TargetColumns, TargetWeights, diagonal_targets
from ._tiling import Plan, ScoreProblem, plan_tiles, row_losses, row_losses_vjp

__all__ = ["clip_loss", "nt_xent_loss", "siglip_loss", "supcon_loss"]


class _Pair(NamedTuple):
    """Validated image/text embeddings and their scalar parameters."""

    image: Array
    text: Array
    scale: float | Array
    bias: float | Array | None
    reduction: str
    xp: ArrayNamespace


def _validate_pair(
    image: Array,
    text: Array,
    logit_scale: object,
    logit_bias: object,
    *,
    reduction: object,
    xp: ArrayNamespace | None,
) -> _Pair:
    arrays = {
        "image_embeddings": image,
        "text_embeddings": text,
        "logit_scale": None if v.is_python_real(logit_scale) else logit_scale,
        "logit_bias": None if v.is_python_real(logit_bias) else logit_bias,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    num_images, num_texts = v.check_embedding_pair(
        ("image_embeddings", "text_embeddings"),
        image,
        text,
        ("(batch B, embedding width D)", "(batch B, embedding width D)"),
        xp=xp,
    )
    if num_images != num_texts:
        msg = (
            f"image_embeddings and text_embeddings must be B matching pairs, got "
            f"{num_images} images and {num_texts} texts"
        )
        raise ValueError(msg)
    if num_images < 2:
        msg = f"a contrastive loss needs B >= 2 pairs (a negative per row), got B = {num_images}"
        raise ValueError(msg)
    scale = v.check_scalar("logit_scale", logit_scale, like=image, xp=xp, bound="nonnegative")
    bias = None
    if logit_bias is not None:
        bias = v.check_scalar("logit_bias", logit_bias, like=image, xp=xp, bound="any")
    reduction = v.check_reduction(reduction)
    v.check_same_device(arrays)
    return _Pair(image, text, scale, bias, reduction, xp)


def _unchanged(scores: Array, rows: slice, cols: slice) -> Array:
    return scores


def _plan(num_rows: int, num_cols: int, like: Array) -> Plan:
    return plan_tiles(num_rows, num_cols, lazy=is_lazy_array(like))


# --- CLIP ---------------------------------------------------------------------------------


def _clip_weights(num: int, label_smoothing: float, *, like: Array, xp: ArrayNamespace):
    """In-batch targets, or label weights :math:`(1 - \\varepsilon) I + \\varepsilon / B`."""
    if label_smoothing == 0.0:
        return diagonal_targets(num, None, like=like, xp=xp)
    dev = device(like)
    eye = xp.eye(num, dtype=like.dtype, device=dev)
    return TargetWeights((1.0 - label_smoothing) * eye + label_smoothing / num)


def _clip_problems(o: _Pair, label_smoothing: float) -> tuple[ScoreProblem, ScoreProblem]:
    """Rows of :math:`S = tIT^\\top` and rows of :math:`S^\\top = tTI^\\top`."""
    num = int(o.image.shape[0])
    targets = _clip_weights(num, label_smoothing, like=o.image, xp=o.xp)
    rows = ScoreProblem(multiply_query(o.image, scale=o.scale), o.text, None, _unchanged, targets)
    cols = ScoreProblem(multiply_query(o.text, scale=o.scale), o.image, None, _unchanged, targets)
    return rows, cols


def _check_label_smoothing(label_smoothing: object) -> float:
    if not v.is_python_real(label_smoothing) or not 0.0 <= float(label_smoothing) < 1.0:
        msg = f"label_smoothing must be a real number in [0, 1), got {label_smoothing!r}"
        raise ValueError(msg)
    return float(label_smoothing)


def clip_loss(
    image_embeddings: Array,
    text_embeddings: Array,
    logit_scale: float | Array,
    /,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Symmetric InfoNCE of CLIP: image-to-text and text-to-image softmax, averaged.

    Parameters
    ----------
    image_embeddings, text_embeddings : array, shape (B, D), float32 or float64
        The two towers' outputs for B matching pairs, ``B >= 2`` (L2-normalised for CLIP's
        cosine similarity: the caller's step).
    logit_scale : float or 0-D array
        The multiplier :math:`t \ge 0` of the similarities (CLIP's
        :math:`\exp(\text{learned log-scale})`, initialised to :math:`1/0.07` and clamped
        at 100 in training): pass open_clip's ``logit_scale.exp()``. A 0-D array can be
        differentiated; for the gradient with respect to the log-scale multiply by
        :math:`t`.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1)`: each row's target puts :math:`1 - \varepsilon` on
        the matching column and :math:`\varepsilon / B` on every column, as PyTorch's
        ``cross_entropy(..., label_smoothing=ε)``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the ``(B,)`` vector :math:`(\ell^{I \to T}_i + \ell^{T \to I}_i) / 2`;
        ``"mean"`` its mean (open_clip's ``ClipLoss``), ``"sum"`` its sum.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        A 0-D array (``(B,)`` for ``"none"``) in the namespace, dtype and device of
        ``image_embeddings``.

    Raises
    ------
    ValueError
        For shapes that differ, ``B < 2``, a negative or non-finite ``logit_scale``,
        ``label_smoothing`` outside ``[0, 1)`` or an unknown reduction.
    TypeError
        For non-floating or differing dtypes, or arrays from different libraries.

    Notes
    -----
    With :math:`S = t\, I T^\top` and :math:`\varepsilon = 0`:

    .. math::

        \ell_i = \frac{1}{2}\Bigl(\log \sum_j e^{S_{ij}} - S_{ii}\Bigr)
               + \frac{1}{2}\Bigl(\log \sum_j e^{S_{ji}} - S_{ii}\Bigr),
        \qquad L = \frac{1}{B} \sum_i \ell_i,

    computed as two row problems of the core (:math:`S` and :math:`S^\top`). Gradients:
    :math:`\partial L / \partial S = \frac12 (G^{\text{rows}} + G^{\text{cols}\top})`
    with :math:`G` the softmax minus the targets of each direction,
    :math:`\partial L / \partial I = t\, (\partial L / \partial S)\, T`,
    :math:`\partial L / \partial T = t\, (\partial L / \partial S)^\top I` and
    :math:`\partial L / \partial t = \sum_{ij} (\partial L / \partial S)_{ij}
    (I T^\top)_{ij}`.

    References
    ----------
    .. [1] A. Radford et al., "Learning Transferable Visual Models From Natural Language
       Supervision", ICML 2021.
    .. [2] A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with Contrastive
       Predictive Coding", arXiv:1807.03748, 2018 (InfoNCE).
    .. [3] C. Szegedy et al., "Rethinking the Inception Architecture for Computer
       Vision", CVPR 2016 (label smoothing).

    Examples
    --------
    Orthogonal unit pairs at scale :math:`\log 3`: each row's positive has :math:`e^{t} = 3`
    against two negatives of weight 1, a loss of :math:`\log(5/3)`:

    >>> import array_api_strict as xp
    >>> import refloss
    >>> e = xp.eye(3)
    >>> round(float(refloss.clip_loss(e, e, 1.0986122886681098)), 12)
    0.510825623766
    """
    ls = _check_label_smoothing(label_smoothing)
    o = _validate_pair(
        image_embeddings, text_embeddings, logit_scale, None, reduction=reduction, xp=xp
    )
    rows, cols = _clip_problems(o, ls)
    plan = _plan(int(o.image.shape[0]), int(o.text.shape[0]), o.image)
    per_row = (row_losses(rows, plan, xp=o.xp) + row_losses(cols, plan, xp=o.xp)) / 2.0
    return reduce_weighted(per_row, None, o.reduction, xp=o.xp)


def clip_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    """``clip_loss`` and its gradients, given its bound arguments by name."""
    ls = _check_label_smoothing(arguments["label_smoothing"])
    o = _validate_pair(
        arguments["image_embeddings"],
        arguments["text_embeddings"],
        arguments["logit_scale"],
        None,
        reduction=arguments["reduction"],
        xp=arguments["xp"],
    )
    xp = o.xp
    rows, cols = _clip_problems(o, ls)
    num = int(o.image.shape[0])
    plan = _plan(num, num, o.image)
    half = row_scale(num, None, o.reduction, like=o.image, xp=xp) / 2.0
    by_rows = row_losses_vjp(rows, plan, half, xp=xp)
    by_cols = row_losses_vjp(cols, plan, half, xp=xp)
    grad_image, scale_rows = multiply_query_vjp(by_rows.scaled_query, o.image, scale=o.scale, xp=xp)
    grad_text, scale_cols = multiply_query_vjp(by_cols.scaled_query, o.text, scale=o.scale, xp=xp)
    grads = {
        "image_embeddings": grad_image + by_cols.candidates,
        "text_embeddings": grad_text + by_rows.candidates,
        "logit_scale": scale_rows + scale_cols,
    }
    per_row = (by_rows.per_row + by_cols.per_row) / 2.0
    return reduce_weighted(per_row, None, o.reduction, xp=xp), grads


# --- SigLIP -------------------------------------------------------------------------------


def _siglip_problem(o: _Pair) -> ScoreProblem:
    """Sigmoid cross-entropy of :math:`tIT^\\top + b`, label 1 on the diagonal."""
    num = int(o.image.shape[0])
    ones = o.xp.ones((num,), dtype=o.image.dtype, device=device(o.image))
    return ScoreProblem(
        multiply_query(o.image, scale=o.scale),
        o.text,
        o.bias * ones,
        _unchanged,
        diagonal_targets(num, None, like=o.image, xp=o.xp),
        criterion="sigmoid",
    )


def siglip_loss(
    image_embeddings: Array,
    text_embeddings: Array,
    logit_scale: float | Array,
    logit_bias: float | Array,
    /,
    *,
    reduction: str = "mean",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""SigLIP's pairwise sigmoid loss, every image-text pair a binary classification.

    Parameters
    ----------
    image_embeddings, text_embeddings : array, shape (B, D), float32 or float64
        The two towers' outputs for B matching pairs, ``B >= 2`` (L2-normalised in the
        paper: the caller's step).
    logit_scale : float or 0-D array
        The multiplier :math:`t \ge 0` (the paper learns :math:`t = \exp(t')` with
        :math:`t' = \log 10` at initialisation; open_clip and big_vision store
        :math:`t'` and pass :math:`\exp(t')`: pass the multiplier).
    logit_bias : float or 0-D array
        The bias :math:`b` (initialised to :math:`-10` in the paper).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the ``(B,)`` row sums :math:`\sum_j \ell_{ij}`; ``"mean"``: their mean,
        i.e. the sum over all :math:`B^2` pairs divided by B, the batch size (the paper,
        open_clip's ``SigLipLoss``), not by :math:`B^2`; ``"sum"``: the sum over pairs.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        A 0-D array (``(B,)`` for ``"none"``) in the namespace, dtype and device of
        ``image_embeddings``.

    Raises
    ------
    ValueError
        For shapes that differ, ``B < 2``, a negative or non-finite ``logit_scale``, a
        non-finite ``logit_bias`` or an unknown reduction.
    TypeError
        For non-floating or differing dtypes, or arrays from different libraries.

    Notes
    -----
    With :math:`z_{ij} = +1` if :math:`i = j` and :math:`-1` otherwise:

    .. math::

        L = -\frac{1}{B} \sum_{i,j} \log \sigma\bigl(z_{ij} (t\, x_i \cdot y_j + b)\bigr),

    each term a sigmoid cross-entropy in the stable form of :mod:`refloss._sigmoid`
    (:math:`-\log\sigma(u) = \operatorname{softplus}(-u)`). Gradients, with
    :math:`G_{ij} = \partial L / \partial S_{ij} = (\sigma(S_{ij}) - [i = j]) / B`:
    :math:`\partial L / \partial X = t\, G Y`, :math:`\partial L / \partial Y = t\, G^\top X`,
    :math:`\partial L / \partial t = \sum_{ij} G_{ij}\, x_i \cdot y_j` and
    :math:`\partial L / \partial b = \sum_{ij} G_{ij}`.

    References
    ----------
    .. [1] X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language Image
       Pre-Training", ICCV 2023.

    Examples
    --------
    Scale 0 and bias 0: every pair costs :math:`\log 2`, and each of the 3 rows has 3
    pairs:

    >>> import array_api_strict as xp
    >>> import refloss
    >>> e = xp.eye(3)
    >>> round(float(refloss.siglip_loss(e, e, 0.0, 0.0)), 12)  # 3 log 2
    2.07944154168
    """
    o = _validate_pair(
        image_embeddings, text_embeddings, logit_scale, logit_bias, reduction=reduction, xp=xp
    )
    num = int(o.image.shape[0])
    per_row = row_losses(_siglip_problem(o), _plan(num, num, o.image), xp=o.xp)
    return reduce_weighted(per_row, None, o.reduction, xp=o.xp)


def siglip_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    """``siglip_loss`` and its gradients, given its bound arguments by name."""
    o = _validate_pair(
        arguments["image_embeddings"],
        arguments["text_embeddings"],
        arguments["logit_scale"],
        arguments["logit_bias"],
        reduction=arguments["reduction"],
        xp=arguments["xp"],
    )
    xp = o.xp
    num = int(o.image.shape[0])
    scale = row_scale(num, None, o.reduction, like=o.image, xp=xp)
    tiles = row_losses_vjp(
        _siglip_problem(o), _plan(num, num, o.image), scale, bias_grad=True, xp=xp
    )
    grad_image, grad_scale = multiply_query_vjp(tiles.scaled_query, o.image, scale=o.scale, xp=xp)
    grads = {
        "image_embeddings": grad_image,
        "text_embeddings": tiles.candidates,
        "logit_scale": grad_scale,
        "logit_bias": xp.sum(tiles.column_bias),
    }
    return reduce_weighted(tiles.per_row, None, o.reduction, xp=xp), grads


# --- NT-Xent and SupCon: one set of samples against itself, self excluded ----------------


class _Views(NamedTuple):
    samples: Array  # (M, D): the views, or the embeddings
    temperature: float | Array
    reduction: str
    xp: ArrayNamespace


def _without_self(scores: Array, rows: slice, cols: slice, *, xp: ArrayNamespace) -> Array:
    """Mask each sample's similarity with itself (:math:`S_{ii} = -\\infty`)."""
    row_ids = xp.arange(rows.start, rows.stop, device=device(scores))
    col_ids = xp.arange(cols.start, cols.stop, device=device(scores))
    return xp.where(row_ids[:, None] == col_ids[None, :], -xp.inf, scores)


def _self_problem(o: _Views, targets: TargetColumns | TargetWeights) -> ScoreProblem:
    xp = o.xp

    def correct(scores: Array, rows: slice, cols: slice) -> Array:
        return _without_self(scores, rows, cols, xp=xp)

    scaled = scale_query(o.samples, temperature=o.temperature)
    return ScoreProblem(scaled, o.samples, None, correct, targets)


def _self_vjp(o: _Views, problem: ScoreProblem, scale: Array) -> tuple[Array, Array, Array | None]:
    """``(per_row, dL/dsamples, dL/dtemperature)`` of a problem ``S = Z Z^T / tau``."""
    num = int(o.samples.shape[0])
    tiles = row_losses_vjp(problem, _plan(num, num, o.samples), scale, xp=o.xp)
    grad_query, grad_temperature = scale_query_vjp(
        tiles.scaled_query, problem.scaled_query, temperature=o.temperature, xp=o.xp
    )
    return tiles.per_row, grad_query + tiles.candidates, grad_temperature


def _validate_views(
    view_a: Array, view_b: Array, temperature: object, reduction: object, xp: ArrayNamespace | None
) -> tuple[_Views, int]:
    arrays = {
        "view_a": view_a,
        "view_b": view_b,
        "temperature": None if v.is_python_real(temperature) else temperature,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    num_a, num_b = v.check_embedding_pair(
        ("view_a", "view_b"),
        view_a,
        view_b,
        ("(batch B, embedding width D)", "(batch B, embedding width D)"),
        xp=xp,
    )
    if num_a != num_b or num_a < 1:
        msg = (
            f"view_a and view_b must hold the two views of the same B >= 1 samples, got "
            f"shapes {tuple(view_a.shape)} and {tuple(view_b.shape)}"
        )
        raise ValueError(msg)
    temperature = v.check_scalar("temperature", temperature, like=view_a, xp=xp)
    reduction = v.check_reduction(reduction)
    v.check_same_device(arrays)
    samples = xp.concat((view_a, view_b), axis=0)
    return _Views(samples, temperature, reduction, xp), num_a


def _pair_targets(num: int, *, like: Array, xp: ArrayNamespace) -> TargetColumns:
    """View ``i``'s positive is view ``i + B`` and view ``i + B``'s is view ``i``."""
    index = (xp.arange(2 * num, device=device(like)) + num) % (2 * num)
    return TargetColumns(index, None, diagonal=False)


def nt_xent_loss(
    view_a: Array,
    view_b: Array,
    /,
    *,
    temperature: float | Array,
    reduction: str = "mean",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""NT-Xent (SimCLR): each of the 2B views against the other 2B - 1, its pair positive.

    Parameters
    ----------
    view_a, view_b : array, shape (B, D), float32 or float64
        Two views of B samples, ``B >= 1``: row i of each is the same sample (L2-normalised
        for SimCLR's cosine similarity: the caller's step).
    temperature : float or 0-D array
        :math:`\tau > 0`; a 0-D array can be differentiated.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the ``(2B,)`` per-view losses, ``view_a``'s first; ``"mean"``: their
        mean over the 2B views (SimCLR, pytorch-metric-learning's ``NTXentLoss``);
        ``"sum"``.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        A 0-D array (``(2B,)`` for ``"none"``) in the namespace, dtype and device of
        ``view_a``.

    Raises
    ------
    ValueError
        For shapes that differ, a non-positive or non-finite temperature, or an unknown
        reduction.
    TypeError
        For non-floating or differing dtypes, or arrays from different libraries.

    Notes
    -----
    With :math:`z = [a; b]` (2B rows) and :math:`S = z z^\top / \tau`, view :math:`k`'s
    positive is :math:`p(k) = (k + B) \bmod 2B` and

    .. math::

        \ell_k = \log \sum_{j \ne k} e^{S_{kj}} - S_{k p(k)},

    the similarity of a view with itself masked (exactly :math:`-\infty`). With B = 1 the
    only other view is the positive and the loss is 0.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for
       Contrastive Learning of Visual Representations", ICML 2020.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> a = xp.asarray([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(refloss.nt_xent_loss(a, a, temperature=1.0)), 12)  # log(e + 2) - 1
    0.551444713932
    """
    o, num = _validate_views(view_a, view_b, temperature, reduction, xp)
    problem = _self_problem(o, _pair_targets(num, like=view_a, xp=o.xp))
    per_row = row_losses(problem, _plan(2 * num, 2 * num, view_a), xp=o.xp)
    return reduce_weighted(per_row, None, o.reduction, xp=o.xp)


def nt_xent_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    """``nt_xent_loss`` and its gradients, given its bound arguments by name."""
    view_a = arguments["view_a"]
    o, num = _validate_views(
        view_a,
        arguments["view_b"],
        arguments["temperature"],
        arguments["reduction"],
        arguments["xp"],
    )
    xp = o.xp
    problem = _self_problem(o, _pair_targets(num, like=view_a, xp=xp))
    scale = row_scale(2 * num, None, o.reduction, like=view_a, xp=xp)
    per_row, grad, grad_temperature = _self_vjp(o, problem, scale)
    grads = {
        "view_a": grad[:num, :],
        "view_b": grad[num:, :],
        "temperature": grad_temperature,
    }
    return reduce_weighted(per_row, None, o.reduction, xp=xp), grads


class _SupCon(NamedTuple):
    views: _Views
    targets: TargetWeights
    has_positive: Array  # (M,) bool
    factor: float | Array  # tau / base_tau, or 1
    base_temperature: float | None


def _validate_supcon(
    embeddings: Array,
    labels: Array,
    temperature: object,
    base_temperature: object,
    reduction: object,
    xp: ArrayNamespace | None,
) -> _SupCon:
    arrays = {
        "embeddings": embeddings,
        "labels": labels,
        "temperature": None if v.is_python_real(temperature) else temperature,
    }
    xp = v.resolve_namespace(arrays, xp=xp)
    v.check_rank("embeddings", embeddings, 2, "(samples N, embedding width D)")
    v.check_floating("embeddings", embeddings, xp=xp)
    num = int(embeddings.shape[0])
    if num < 2:
        msg = f"supcon_loss needs N >= 2 samples, got embeddings of shape {tuple(embeddings.shape)}"
        raise ValueError(msg)
    v.check_integer_dtype("labels", labels, xp=xp)
    v.check_shape("labels", labels, (num,), "one class label per sample")
    temperature = v.check_scalar("temperature", temperature, like=embeddings, xp=xp)
    base = None
    if base_temperature is not None:
        base = float(v.check_scalar("base_temperature", base_temperature, like=embeddings, xp=xp))
    reduction = v.check_reduction(reduction)
    v.check_same_device(arrays)
    dev = device(embeddings)
    index = xp.arange(num, device=dev)
    same = (labels[:, None] == labels[None, :]) & (index[:, None] != index[None, :])
    counts = xp.sum(xp.astype(same, embeddings.dtype), axis=1)
    has_positive = counts > 0
    weights = xp.astype(same, embeddings.dtype) / xp.where(has_positive, counts, 1.0)[:, None]
    factor = 1.0 if base is None else temperature / base
    views = _Views(embeddings, temperature, reduction, xp)
    return _SupCon(views, TargetWeights(weights), has_positive, factor, base)


def _supcon_reduce(per_row: Array, s: _SupCon) -> Array:
    """``factor * l_i``; the mean is over the anchors that have a positive (0 if none has)."""
    xp = s.views.xp
    losses = s.factor * per_row
    if s.views.reduction == "none":
        return losses
    total = xp.sum(losses)
    if s.views.reduction == "sum":
        return total
    anchors = xp.sum(xp.astype(s.has_positive, losses.dtype))
    return total / xp.maximum(anchors, 1.0)


def supcon_loss(
    embeddings: Array,
    /,
    *,
    labels: Array,
    temperature: float | Array,
    base_temperature: float | None = None,
    reduction: str = "mean",
    xp: ArrayNamespace | None = None,
) -> Array:
    r"""Supervised contrastive loss (Khosla et al. 2020, the "out" form).

    Parameters
    ----------
    embeddings : array, shape (N, D), float32 or float64
        One embedding per sample (all views stacked), ``N >= 2`` (L2-normalised for the
        paper's cosine similarity: the caller's step).
    labels : array, shape (N,), integer
        Class of each sample: the positives of anchor :math:`i` are the other samples of its
        class, :math:`P(i) = \{p \ne i : y_p = y_i\}`.
    temperature : float or 0-D array
        :math:`\tau > 0`; a 0-D array can be differentiated.
    base_temperature : float, optional
        :math:`\tau_b`: the loss is multiplied by :math:`\tau / \tau_b` (the original code's
        scaling, :math:`\tau_b = 0.07`); None means no scaling (pytorch-metric-learning).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"``: the ``(N,)`` per-anchor losses, 0 for an anchor without a positive;
        ``"mean"``: their mean over the anchors that have a positive (0 when none has);
        ``"sum"``.
    xp : namespace, optional
        Array namespace; inferred from the arrays when None.

    Returns
    -------
    array
        A 0-D array (``(N,)`` for ``"none"``) in the namespace, dtype and device of
        ``embeddings``.

    Raises
    ------
    ValueError
        For wrong shapes, ``N < 2``, a non-positive or non-finite temperature, or an
        unknown reduction.
    TypeError
        For non-floating embeddings, floating labels, or arrays from different libraries.

    Notes
    -----
    With :math:`S = E E^\top / \tau` and the anchor itself left out of every sum:

    .. math::

        \ell_i = -\frac{\tau}{\tau_b} \frac{1}{|P(i)|} \sum_{p \in P(i)}
            \log \frac{e^{S_{ip}}}{\sum_{a \ne i} e^{S_{ia}}},
        \qquad L = \frac{1}{|\{i : P(i) \ne \emptyset\}|} \sum_i \ell_i,

    the core's softmax cross-entropy against label weights :math:`1 / |P(i)|` on the
    positives (the other positives stay in the denominator: the "out" form). An anchor
    without a positive contributes 0 and is left out of the mean; the original code
    divides by :math:`|P(i)| = 0` there (NaN), pytorch-metric-learning gives 0 and leaves
    it out too. A batch in which every label is the same has no negative: refloss
    computes the formula (pytorch-metric-learning returns 0 then).

    References
    ----------
    .. [1] P. Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> e = xp.asarray([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> loss = refloss.supcon_loss(e, labels=xp.asarray([0, 0, 1]), temperature=1.0)
    >>> round(float(loss), 12)  # two anchors with a positive: log(e + 1) - 1 each
    0.313261687518
    """
    s = _validate_supcon(embeddings, labels, temperature, base_temperature, reduction, xp)
    num = int(embeddings.shape[0])
    per_row = row_losses(
        _self_problem(s.views, s.targets), _plan(num, num, embeddings), xp=s.views.xp
    )
    return _supcon_reduce(per_row, s)


def supcon_loss_vjp(arguments: Mapping[str, Any]) -> tuple[Array, dict[str, Array | None]]:
    r"""``supcon_loss`` and its gradients, given its bound arguments by name.

    With a base temperature, :math:`L = (\tau/\tau_b) L_0(\tau)` and
    :math:`\partial L / \partial \tau = L_0 / \tau_b + (\tau / \tau_b)\, \partial L_0 /
    \partial \tau`.
    """
    embeddings = arguments["embeddings"]
    s = _validate_supcon(
        embeddings,
        arguments["labels"],
        arguments["temperature"],
        arguments["base_temperature"],
        arguments["reduction"],
        arguments["xp"],
    )
    xp = s.views.xp
    num = int(embeddings.shape[0])
    ones = xp.ones((num,), dtype=embeddings.dtype, device=device(embeddings))
    if s.views.reduction == "mean":
        anchors = xp.maximum(xp.sum(xp.astype(s.has_positive, embeddings.dtype)), 1.0)
        ones = ones / anchors
    scale = (s.factor * ones)[:, None]
    problem = _self_problem(s.views, s.targets)
    per_row, grad, grad_temperature = _self_vjp(s.views, problem, scale)
    value = _supcon_reduce(per_row, s)
    if s.base_temperature is not None and grad_temperature is not None:
        grad_temperature = grad_temperature + value / s.views.temperature
    return value, {"embeddings": grad, "temperature": grad_temperature}
