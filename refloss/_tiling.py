r"""The one place that knows about blocks: softmax cross-entropy over scores, tile by tile.

A loss of the form :math:`\ell_i = \mathrm{CE}(\mathrm{correct}(Q' C^\top)_i, t_i)` is
computed without materialising the ``(B, N)`` logits matrix. The rows are cut into blocks
and, for very wide problems, the columns into chunks; each tile ``rows x cols`` is

1. scored, :math:`S = Q'_{\text{rows}} C_{\text{cols}}^\top + 1\,b_{\text{cols}}^\top`
   (:mod:`refloss._scores`), a column bias :math:`b` (the logQ correction
   :math:`-\log q_j`) added inside the matmul,
2. corrected by the loss's own correction function (masks, hard negatives, ...;
   elementwise or row-wise, so it only needs the tile's row and column ranges),
3. merged into per-row statistics by a streaming log-sum-exp (:mod:`refloss._softmax`):
   a running maximum, sums of exponentials rescaled when the maximum grows, and the
   target logits.

Memory is :math:`O(\text{block} \times \text{chunk})`, never :math:`O(BN)`.

Two extensions serve the sampled and contrastive losses: ``leading`` logits, one
row-specific block of ``T`` columns placed before the shared ones (sampled softmax's true logits,
:math:`\langle x_i, w_{y_i} \rangle + b_{y_i}`, which no shared matmul produces), and the
row loss, a softmax cross-entropy (:mod:`refloss._softmax`) or an elementwise sigmoid
cross-entropy (:mod:`refloss._sigmoid`, NCE and SigLIP). The problem's columns are numbered
``0..T-1`` for the leading block and ``T..T+N-1`` for the candidates; targets use these
numbers.

The gradient :math:`G = \partial L / \partial S` is formed tile by tile too, and pulled
back at once: :math:`\partial L/\partial Q'_{\text{rows}} \mathrel{+}= G\, C_{\text{cols}}`
and :math:`\partial L/\partial C_{\text{cols}} \mathrel{+}= G^\top Q'_{\text{rows}}`, the
latter written into its slice of one ``(N, D)`` buffer. With one chunk per row (the common
case) the forward tile is reused; with several, each tile is scored again against the
final row statistics.

How the work is cut (:func:`plan_tiles`):

* eager backends (NumPy, PyTorch, CuPy, array-api-strict): blocks of ``BLOCK_ROWS`` (128)
  rows; only when a block of full rows would hold more than ``MAX_TILE_ENTRIES`` (2**22)
  logits, that is for ``N > 32768``, chunks of ``MAX_TILE_ENTRIES // BLOCK_ROWS`` columns
  (a chunked value-and-gradient scores every tile twice, so chunks are a last resort).
  A float32 tile of 2**22 logits is 16 MiB; at 2**23 (32 MiB) each temporary of a tile
  reaches glibc's largest mmap threshold and is mapped and page-faulted afresh: the
  chunked ``value_and_grad`` of ``full_softmax_loss`` (B = 256, 10**6 classes, D = 64,
  NumPy) took 4.7x the logits matmul with 65536-column chunks and 3.3x with 32768;
  Measured on 2 cores, float32, D = 128 (median of interleaved per-round ratios to the
  logits matmul): at B = N = 32768, ``value_and_grad`` took 6.7x the matmul with 16-row
  blocks, 3.1x (NumPy) and 2.7x (PyTorch) with 128-row blocks of full rows, 3.1x and 3.5x
  with 256 rows, and 4.2x and 3.1x with 128 x 4096 tiles; at N = 2048 and 4096 blocks of
  about 2**19 logits (256 and 128 rows) were the fastest, and 128 rows stays within noise
  of the best from N = 512 (64K-logit tiles) to 32768;
* lazy backends (JAX, also inside ``jax.jit``, where a Python loop is unrolled into the
  compiled program): one tile, so the program stays small and compiles fast;
* a ``block_size`` or ``chunk_size`` given by the caller overrides either rule;
* a loss whose correction needs whole rows (hard-negative mining ranks a row) is never
  cut into column chunks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import array_api_extra as xpx

from ._lib._compat import device
from ._lib._typing import Array, ArrayNamespace
from ._scores import tile_scores
from ._sigmoid import SigmoidCrossEntropy
from ._softmax import GradPart, cross_entropy_for, tile_grad_parts
from ._targets import TargetColumns, TargetWeights

__all__ = [
    "BLOCK_ROWS",
    "MAX_TILE_ENTRIES",
    "Plan",
    "ScoreProblem",
    "TileGradients",
    "plan_tiles",
    "row_losses",
    "row_losses_vjp",
]

#: Rows per block on eager backends: enough for the three matmuls of a block to run at
#: full speed, few enough that a tile's elementwise passes stay near the cache.
BLOCK_ROWS = 128
#: Most logits in one tile (16 MiB of float32) before the columns are cut into chunks:
#: memory stays O(BLOCK_ROWS x N) up to N = 32768, and O(MAX_TILE_ENTRIES) beyond.
MAX_TILE_ENTRIES = 2**22


class Plan(NamedTuple):
    """The tiles of a ``(B, N)`` problem: row blocks times column chunks."""

    row_blocks: tuple[slice, ...]
    col_chunks: tuple[slice, ...]


def _cut(size: int, step: int) -> tuple[slice, ...]:
    return tuple(slice(start, min(start + step, size)) for start in range(0, size, step))


def plan_tiles(
    num_rows: int,
    num_cols: int,
    *,
    lazy: bool,
    block_size: int | None = None,
    chunk_size: int | None = None,
    whole_rows: bool = False,
) -> Plan:
    """Cut a ``(num_rows, num_cols)`` problem into tiles (see the module docstring)."""
    if block_size is None:
        block_size = num_rows if lazy else min(num_rows, BLOCK_ROWS)
    if chunk_size is None:
        fits = lazy or block_size * num_cols <= MAX_TILE_ENTRIES
        chunk_size = num_cols if fits else max(1, MAX_TILE_ENTRIES // block_size)
    if whole_rows:
        chunk_size = num_cols
    return Plan(_cut(num_rows, block_size), _cut(num_cols, chunk_size))


class ScoreProblem(NamedTuple):
    r"""A row loss over corrected scores :math:`[L \mid \mathrm{correct}(Q' C^\top + 1 b^\top)]`.

    ``column_bias`` :math:`b` (``(N,)`` or None) is added to every row: the logQ correction
    :math:`-\log q_j`, a class bias. ``correct(scores, rows, cols)`` applies the loss's
    other corrections to the tile of the scores that covers batch rows ``rows`` and
    candidates ``cols``. ``leading`` :math:`L` (``(B, T)`` or None) holds row-specific
    logits placed before the candidates' columns. ``criterion`` is ``"softmax"`` or
    ``"sigmoid"``.
    """

    scaled_query: Array  # Q' (B, D): the query with the temperature folded in
    candidates: Array  # C (N, D)
    column_bias: Array | None  # b (N,), added to every row
    correct: Callable[[Array, slice, slice], Array]
    targets: TargetColumns | TargetWeights
    leading: Array | None = None  # L (B, T): columns 0..T-1, before the candidates
    criterion: str = "softmax"

    @property
    def num_leading(self) -> int:
        """``T``, the number of leading columns."""
        return 0 if self.leading is None else int(self.leading.shape[1])

    @property
    def num_columns(self) -> int:
        """``T + N``, the columns of the whole problem."""
        return self.num_leading + int(self.candidates.shape[0])


class _ScoreOperands(NamedTuple):
    r"""The operands of the score matmul, the column bias folded in when it pays.

    Fusion: :math:`Q' C^\top + 1 b^\top = [Q', 1]\,[C, b]^\top`, one matmul with an
    inner dimension of ``D + 1`` instead of a matmul and a pass over the tile. The
    augmented copies cost :math:`O((B + N) D)` memory, made once per call, so they are
    made only when the columns are not cut into chunks (``N <= 32768`` by default); a
    problem wide enough to be chunked adds ``bias`` to each tile instead, and its memory
    stays :math:`O(\text{block} \times \text{chunk})` beyond the inputs.
    """

    query: Array
    candidates: Array
    bias: Array | None  # the column bias when it is not folded into the operands


def _score_operands(problem: ScoreProblem, plan: Plan, *, xp: ArrayNamespace) -> _ScoreOperands:
    query, candidates, bias = problem.scaled_query, problem.candidates, problem.column_bias
    if bias is None or len(plan.col_chunks) > 1:
        return _ScoreOperands(query, candidates, bias)
    ones = xp.ones((query.shape[0], 1), dtype=query.dtype, device=device(query))
    return _ScoreOperands(
        xp.concat((query, ones), axis=1), xp.concat((candidates, bias[:, None]), axis=1), None
    )


def _criterion(problem: ScoreProblem, *, xp: ArrayNamespace):
    """The row loss's statistics: softmax (one target column or label weights) or sigmoid."""
    if problem.criterion == "sigmoid":
        return SigmoidCrossEntropy(problem.targets, xp=xp)
    return cross_entropy_for(problem.targets, xp=xp)


def _candidates_of(cols: slice, num_leading: int) -> slice:
    """The candidate rows behind the problem's columns ``cols`` (empty inside the lead)."""
    start = max(cols.start, num_leading) - num_leading
    return slice(start, max(start, cols.stop - num_leading))


def _tile_logits(
    problem: ScoreProblem, operands: _ScoreOperands, rows: slice, cols: slice, *, xp: ArrayNamespace
) -> Array:
    lead = problem.num_leading
    pieces = []
    if cols.start < lead:
        pieces.append(problem.leading[rows, cols.start : min(cols.stop, lead)])
    shared = _candidates_of(cols, lead)
    if shared.stop > shared.start:
        scores = tile_scores(operands.query[rows, :], operands.candidates[shared, :], xp=xp)
        if operands.bias is not None:
            scores = scores + operands.bias[None, shared]
        pieces.append(problem.correct(scores, rows, shared))
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=1)


def row_losses(problem: ScoreProblem, plan: Plan, *, xp: ArrayNamespace) -> Array:
    """The per-row loss ``(B,)``, tile by tile."""
    ce = _criterion(problem, xp=xp)
    operands = _score_operands(problem, plan, xp=xp)
    per_block = []
    for rows in plan.row_blocks:
        stats = None
        for cols in plan.col_chunks:
            logits = _tile_logits(problem, operands, rows, cols, xp=xp)
            stats, _ = ce.update(stats, logits, rows, cols)
        per_block.append(ce.loss(stats, rows))
    return per_block[0] if len(per_block) == 1 else xp.concat(per_block)


class TileGradients(NamedTuple):
    r"""The per-row losses and :math:`G = \partial L / \partial S` pulled back to the operands.

    ``column_bias`` (``(N,)``, :math:`\sum_i G_{ij}`) is None unless asked for; ``leading``
    (``(B, T)``, :math:`G` on the leading columns) is None without leading logits.
    """

    per_row: Array
    scaled_query: Array
    candidates: Array
    column_bias: Array | None
    leading: Array | None


def _split_lead(part: GradPart, num_leading: int) -> tuple[GradPart | None, GradPart | None]:
    """Cut a gradient part at the end of the leading columns."""
    cut = min(max(num_leading - part.cols.start, 0), part.matrix.shape[1])
    lead = (
        None
        if cut == 0
        else GradPart(
            slice(part.cols.start, part.cols.start + cut), part.matrix[:, :cut], part.row_factor
        )
    )
    if cut == part.matrix.shape[1]:
        return lead, None
    shared = _candidates_of(slice(part.cols.start + cut, part.cols.stop), num_leading)
    return lead, GradPart(shared, part.matrix[:, cut:], part.row_factor)


def row_losses_vjp(
    problem: ScoreProblem,
    plan: Plan,
    scale: Array,
    *,
    bias_grad: bool = False,
    xp: ArrayNamespace,
) -> TileGradients:
    r"""Per-row losses and the gradients of :math:`L = \sum_i s_i \ell_i`.

    ``scale`` is the ``(B, 1)`` column :math:`s_i = \partial L / \partial \ell_i`. With
    ``bias_grad``, also :math:`\partial L / \partial b_j = \sum_i G_{ij}` (a
    matrix-vector product per tile).
    """

    def joined(blocks: list[Array], axis: int = 0) -> Array:
        return blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=axis)

    ce = _criterion(problem, xp=xp)
    operands = _score_operands(problem, plan, xp=xp)
    logits_of = functools.partial(_tile_logits, problem, operands, xp=xp)
    query, candidates = problem.scaled_query, problem.candidates
    lead = problem.num_leading
    grad_candidates = xp.zeros_like(candidates)
    grad_bias = None
    if bias_grad:
        grad_bias = xp.zeros((candidates.shape[0],), dtype=query.dtype, device=device(query))
    per_block, grad_query, grad_lead = [], [], []
    for rows in plan.row_blocks:
        if len(plan.col_chunks) == 1:
            (cols,) = plan.col_chunks
            stats, exps = ce.update(None, logits_of(rows, cols), rows, cols)
            tiles = [(cols, exps)]
        else:
            stats = None
            for cols in plan.col_chunks:
                stats, _ = ce.update(stats, logits_of(rows, cols), rows, cols)
            tiles = (
                (cols, ce.exps(stats, logits_of(rows, cols), rows, cols))
                for cols in plan.col_chunks
            )
        per_block.append(ce.loss(stats, rows))
        block_query, block_grad, block_lead = query[rows, :], 0.0, []
        for cols, exps in tiles:
            for whole in tile_grad_parts(ce, stats, exps, rows, cols, scale[rows, :]):
                lead_part, part = _split_lead(whole, lead)
                if lead_part is not None:
                    factor = lead_part.row_factor
                    block_lead.append(
                        lead_part.matrix if factor is None else factor * lead_part.matrix
                    )
                if part is None:
                    continue
                # G = row_factor * matrix: the factor scales a (b, D) operand, not the tile
                part_candidates = candidates[part.cols, :]
                product = part.matrix @ part_candidates
                weighted_query = block_query
                if part.row_factor is not None:
                    product = part.row_factor * product
                    weighted_query = part.row_factor * block_query
                block_grad = block_grad + product
                transposed = xp.matrix_transpose(part.matrix)
                grad_candidates = xpx.at(grad_candidates)[part.cols, :].add(
                    transposed @ weighted_query
                )
                if grad_bias is not None:
                    column_sums = (
                        xp.sum(part.matrix, axis=0)
                        if part.row_factor is None
                        else (transposed @ part.row_factor)[:, 0]
                    )
                    grad_bias = xpx.at(grad_bias)[part.cols].add(column_sums)
        grad_query.append(block_grad)
        if lead:
            grad_lead.append(joined(block_lead, axis=1))

    return TileGradients(
        joined(per_block),
        joined(grad_query),
        grad_candidates,
        grad_bias,
        joined(grad_lead) if lead else None,
    )
