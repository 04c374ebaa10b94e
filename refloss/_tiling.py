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

The gradient :math:`G = \partial L / \partial S` is formed tile by tile too, and pulled
back at once: :math:`\partial L/\partial Q'_{\text{rows}} \mathrel{+}= G\, C_{\text{cols}}`
and :math:`\partial L/\partial C_{\text{cols}} \mathrel{+}= G^\top Q'_{\text{rows}}`, the
latter written into its slice of one ``(N, D)`` buffer. With one chunk per row (the common
case) the forward tile is reused; with several, each tile is scored again against the
final row statistics.

How the work is cut (:func:`plan_tiles`):

* eager backends (NumPy, PyTorch, CuPy, array-api-strict): blocks of ``BLOCK_ROWS`` (128)
  rows; only when a block of full rows would hold more than ``MAX_TILE_ENTRIES`` (2**23)
  logits, that is for ``N > 65536``, chunks of ``MAX_TILE_ENTRIES // BLOCK_ROWS`` columns
  (a chunked value-and-gradient scores every tile twice, so chunks are a last resort).
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
from ._softmax import cross_entropy_for, tile_grad_parts
from ._targets import TargetColumns, TargetWeights

__all__ = ["BLOCK_ROWS", "MAX_TILE_ENTRIES", "Plan", "ScoreProblem", "plan_tiles"]

#: Rows per block on eager backends: enough for the three matmuls of a block to run at
#: full speed, few enough that a tile's elementwise passes stay near the cache.
BLOCK_ROWS = 128
#: Most logits in one tile (32 MiB of float32) before the columns are cut into chunks:
#: memory stays O(BLOCK_ROWS x N) up to N = 65536, and O(MAX_TILE_ENTRIES) beyond.
MAX_TILE_ENTRIES = 2**23


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
    r"""Softmax cross-entropy over corrected scores :math:`\mathrm{correct}(Q' C^\top + 1 b^\top)`.

    ``column_bias`` :math:`b` (``(N,)`` or None) is added to every row: the logQ correction
    :math:`-\log q_j`, a class bias. ``correct(logits, rows, cols)`` applies the loss's
    other corrections to the tile of the logits that covers batch rows ``rows`` and
    columns ``cols``.
    """

    scaled_query: Array  # Q' (B, D): the query with the temperature folded in
    candidates: Array  # C (N, D)
    column_bias: Array | None  # b (N,), added to every row
    correct: Callable[[Array, slice, slice], Array]
    targets: TargetColumns | TargetWeights


class _ScoreOperands(NamedTuple):
    """The operands of the score matmul, the column bias folded in.

    Fusion: :math:`Q' C^\top + 1 b^\top = [Q', 1]\\,[C, b]^\top`, one matmul with an
    inner dimension of ``D + 1`` instead of a matmul and a pass over the tile. The
    augmented copies cost :math:`O((B + N) D)`, made once per call.
    """

    query: Array
    candidates: Array


def _score_operands(problem: ScoreProblem, *, xp: ArrayNamespace) -> _ScoreOperands:
    query, candidates, bias = problem.scaled_query, problem.candidates, problem.column_bias
    if bias is None:
        return _ScoreOperands(query, candidates)
    ones = xp.ones((query.shape[0], 1), dtype=query.dtype, device=device(query))
    return _ScoreOperands(
        xp.concat((query, ones), axis=1), xp.concat((candidates, bias[:, None]), axis=1)
    )


def _tile_logits(
    problem: ScoreProblem, operands: _ScoreOperands, rows: slice, cols: slice, *, xp: ArrayNamespace
) -> Array:
    scores = tile_scores(operands.query[rows, :], operands.candidates[cols, :], xp=xp)
    return problem.correct(scores, rows, cols)


def row_losses(problem: ScoreProblem, plan: Plan, *, xp: ArrayNamespace) -> Array:
    """The per-row cross-entropy ``(B,)``, tile by tile."""
    ce = cross_entropy_for(problem.targets, xp=xp)
    operands = _score_operands(problem, xp=xp)
    per_block = []
    for rows in plan.row_blocks:
        stats = None
        for cols in plan.col_chunks:
            logits = _tile_logits(problem, operands, rows, cols, xp=xp)
            stats, _ = ce.update(stats, logits, rows, cols)
        per_block.append(ce.loss(stats, rows))
    return per_block[0] if len(per_block) == 1 else xp.concat(per_block)


def row_losses_vjp(
    problem: ScoreProblem, plan: Plan, scale: Array, *, xp: ArrayNamespace
) -> tuple[Array, Array, Array]:
    r"""``(per_row (B,), dL/dQ' (B, D), dL/dC (N, D))`` for :math:`L = \sum_i s_i \ell_i`.

    ``scale`` is the ``(B, 1)`` column :math:`s_i = \partial L / \partial \ell_i`.
    """
    ce = cross_entropy_for(problem.targets, xp=xp)
    operands = _score_operands(problem, xp=xp)
    logits_of = functools.partial(_tile_logits, problem, operands, xp=xp)
    query, candidates = problem.scaled_query, problem.candidates
    grad_candidates = xp.zeros_like(candidates)
    per_block, grad_query = [], []
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
        block_query, block_grad = query[rows, :], 0.0
        for cols, exps in tiles:
            for part in tile_grad_parts(ce, stats, exps, rows, cols, scale[rows, :]):
                # G = row_factor * matrix: the factor scales a (b, D) operand, not the tile
                part_candidates = candidates[part.cols, :]
                product = part.matrix @ part_candidates
                weighted_query = block_query
                if part.row_factor is not None:
                    product = part.row_factor * product
                    weighted_query = part.row_factor * block_query
                block_grad = block_grad + product
                pulled = xp.matrix_transpose(part.matrix) @ weighted_query
                grad_candidates = xpx.at(grad_candidates)[part.cols, :].add(pulled)
        grad_query.append(block_grad)
    if len(per_block) == 1:
        return per_block[0], grad_query[0], grad_candidates
    return xp.concat(per_block), xp.concat(grad_query), grad_candidates
