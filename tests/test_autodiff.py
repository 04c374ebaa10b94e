"""Autodiff through refloss: PyTorch autograd and ``jax.grad`` give ``value_and_grad``'s numbers.

refloss is written with the array library's own operations, so a framework's autodiff
traces through it; the README says so, and this pins it (float64, every option on, and a
score mask that masks positives and whole rows).
"""

from __future__ import annotations

import numpy as np
import pytest

import refloss

RNG = np.random.default_rng(20260)
Q = RNG.standard_normal((5, 3))
C = RNG.standard_normal((7, 3))
OPTIONS = {
    "all options": {
        "candidate_sampling_probability": RNG.uniform(0.01, 0.5, 7),
        "candidate_ids": np.array([1, 2, 3, 1, 5, 2, 9]),
        "sample_weight": RNG.uniform(0.5, 2.0, 5),
        "temperature": 0.3,
        "num_hard_negatives": 3,
    },
    "masked positives": {
        # row 1 masks its positive, row 2 masks everything
        "score_mask": np.array(
            [[True] * 7, [True, False] + [True] * 5, [False] * 7, [True] * 7, [True] * 7]
        ),
        "temperature": 0.5,
    },
}


def _inputs(backend, options):
    return {k: backend.asarray(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("backend_name", ["torch", "jax"])
def test_framework_autodiff_matches_value_and_grad(backend_name, backend, name):
    options = OPTIONS[name]
    value, (dq, dc) = refloss.value_and_grad(refloss.retrieval_loss)(Q, C, **options)
    kwargs = _inputs(backend, options)
    if backend_name == "torch":
        torch = backend.module
        q = torch.tensor(Q, requires_grad=True)
        c = torch.tensor(C, requires_grad=True)
        loss = refloss.retrieval_loss(q, c, **kwargs)
        loss.backward()
        got = (loss.detach().numpy(), q.grad.numpy(), c.grad.numpy())
    else:
        jax = backend.module

        def loss_fn(q, c):
            return refloss.retrieval_loss(q, c, **kwargs)

        loss, grads = jax.value_and_grad(loss_fn, argnums=(0, 1))(
            backend.asarray(Q), backend.asarray(C)
        )
        assert loss.dtype == jax.numpy.float64
        got = (np.asarray(loss), *(np.asarray(g) for g in grads))
    np.testing.assert_allclose(got[0], np.asarray(value), rtol=1e-13)
    for actual, expected in zip(got[1:], (dq, dc), strict=True):
        assert np.all(np.isfinite(actual))
        np.testing.assert_allclose(actual, np.asarray(expected), rtol=1e-10, atol=1e-13)
