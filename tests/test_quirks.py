"""The PyTorch float32 ``exp`` workaround: unchanged results, exact zeros for masked entries."""

from __future__ import annotations

import numpy as np
import pytest

import refloss
from refloss._lib import _quirks

torch = pytest.importorskip("torch")

EPS32 = float(np.finfo(np.float32).eps)


def _shifted_logits(seed: int) -> np.ndarray:
    """Shifted logits ``x <= 0`` over [-150, 0] (normal, subnormal and zero exp), some -inf."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-150.0, 0.0, size=(64, 257)).astype(np.float32)
    x[:, 0] = 0.0
    x[rng.uniform(size=x.shape) < 0.05] = -np.inf
    return x


def test_torch_float32_exp_within_float32_resolution():
    x = _shifted_logits(0)
    got = _quirks.exp(torch.from_numpy(x), xp=refloss._lib._compat.array_namespace(torch.ones(1)))
    assert got.dtype == torch.float32
    exact = np.exp(x.astype(np.float64))
    err = np.abs(got.numpy().astype(np.float64) - exact)
    # relative |x| eps from the rounding of x log2(e), plus float32's own rounding and
    # the flush of results below the smallest subnormal: an absolute error below eps
    bound = (np.abs(np.where(np.isfinite(x), x, 0.0)) + 1.0) * EPS32 * exact + 2.0**-149
    assert np.all(err <= bound)
    assert np.max(err) <= EPS32
    # a masked entry carries exactly zero
    assert np.all(got.numpy()[np.isneginf(x)] == 0.0)


def test_row_sums_unchanged_to_float32_resolution():
    x = torch.from_numpy(_shifted_logits(1))
    xp = refloss._lib._compat.array_namespace(x)
    sums = torch.sum(_quirks.exp(x, xp=xp), dim=-1).double()
    reference = torch.sum(torch.exp(x.double()), dim=-1)
    np.testing.assert_allclose(sums.numpy(), reference.numpy(), rtol=4 * EPS32, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_other_backends_and_dtypes_call_exp(dtype):
    x = _shifted_logits(2).astype(dtype)
    import array_api_compat.numpy as xnp

    np.testing.assert_array_equal(_quirks.exp(xnp.asarray(x), xp=xnp), np.exp(x))
    if dtype == "float64":
        t = torch.from_numpy(x)
        xp = refloss._lib._compat.array_namespace(t)
        assert torch.equal(_quirks.exp(t, xp=xp), torch.exp(t))


def test_retrieval_loss_torch_float32_unnormalised_matches_float64():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((48, 32)).astype(np.float32)
    c = rng.standard_normal((64, 32)).astype(np.float32)
    kw = {"temperature": 0.1}
    ids = rng.integers(0, 20, 64)
    loss32, (dq32, dc32) = refloss.value_and_grad(refloss.retrieval_loss)(
        torch.from_numpy(q), torch.from_numpy(c), candidate_ids=torch.from_numpy(ids), **kw
    )
    loss64, (dq64, dc64) = refloss.value_and_grad(refloss.retrieval_loss)(
        torch.from_numpy(q.astype(np.float64)),
        torch.from_numpy(c.astype(np.float64)),
        candidate_ids=torch.from_numpy(ids),
        **kw,
    )
    np.testing.assert_allclose(float(loss32), float(loss64), rtol=2e-5)
    scale = float(torch.max(torch.abs(dq64)))
    np.testing.assert_allclose(dq32.numpy(), dq64.numpy(), rtol=0, atol=2e-5 * scale)
    scale = float(torch.max(torch.abs(dc64)))
    np.testing.assert_allclose(dc32.numpy(), dc64.numpy(), rtol=0, atol=2e-5 * scale)
