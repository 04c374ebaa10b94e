"""retrieval_loss processes the batch in blocks of rows; every block size gives the same numbers.

The default block holds 2**19 logits, so every other test runs one block. Here the block is
shrunk to 1 or 2 rows (batches of 1 to 6 rows, so the last block is sometimes partial), so
the row offsets of every correction step (accidental hits, the score mask's diagonal, hard
negatives, the positive logit) and the gradient accumulation across blocks are exercised,
against the naive oracle and torch autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import as_dtype, to_backend, to_numpy
from test_gradients import GRAD_CASES, _case, _grad_tols, torch_loss_and_grads
from test_retrieval_loss import OPTION_SETS, check_against_oracle, make_case

import refloss
import refloss.retrieval


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_loss_in_blocks_matches_oracle(backend, dtype, name, rows, monkeypatch):
    q, c, kw = make_case(7, **OPTION_SETS[name])
    monkeypatch.setattr(refloss.retrieval, "_BLOCK_ENTRIES", rows * c.shape[0])
    assert len(refloss.retrieval._row_blocks(*q.shape[:1], c.shape[0])) == -(-q.shape[0] // rows)
    check_against_oracle(backend, dtype, q, c, kw)


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradients_in_blocks_match_torch_autograd(backend, dtype, name, rows, monkeypatch):
    q, c, kw = _case(name)
    monkeypatch.setattr(refloss.retrieval, "_BLOCK_ENTRIES", rows * c.shape[0])
    q, c, kw = as_dtype(q, c, kw, dtype)
    ref_loss, ref_dq, ref_dc = torch_loss_and_grads(q, c, kw)
    qb, cb, kwb = to_backend(backend, q, c, kw, dtype)
    loss, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(qb, cb, **kwb)
    rtol, atol = _grad_tols(dtype, q, c, kw)
    np.testing.assert_allclose(float(to_numpy(loss)), ref_loss, rtol=rtol, atol=atol * len(q))
    np.testing.assert_allclose(to_numpy(dq), ref_dq, rtol=rtol, atol=atol)
    np.testing.assert_allclose(to_numpy(dc), ref_dc, rtol=rtol, atol=atol)
