"""Where the time of ``retrieval_loss`` goes: each pass of one tile, in units of the matmul.

The floor of an unfused implementation is the sum of the passes it cannot avoid. This
script times, round by round and interleaved with the full logits matmul ``q @ c.T``, each
stage of the eager tiled computation on blocks of ``BLOCK_ROWS`` rows of full rows (the
default plan for N <= 32768), summed over the blocks, and prints the median of per-round
ratios to the matmul:

* ``scores``: the block matmuls ``Q'_b C^T`` (with the logQ column folded in: ``D + 1``);
* ``max``, ``shift`` (subtract the row maximum), ``exp``, ``sums`` (the row sums);
* ``hits``: accidental hits, one id comparison and one select;
* ``grad gemms``: ``G_b C`` and ``G_b^T Q'_b``, and ``grad add``: writing ``G_b^T Q'_b``
  into the ``(N, D)`` candidate gradient.

Run: ``python benchmarks/bench_stages.py [--size 4096] [--dim 128] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import array_api_extra as xpx
import numpy as np

from refloss._tiling import BLOCK_ROWS


def _inputs(backend: str, dtype: str, size: int, dim: int):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((size, dim)).astype(dtype)
    q /= np.linalg.norm(q, axis=1, keepdims=True) * 0.05
    c = rng.standard_normal((size, dim)).astype(dtype)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    ids = rng.zipf(1.5, size) % (size // 2)
    if backend == "torch":
        import torch

        torch.set_num_threads(2)
        return torch.from_numpy(q), torch.from_numpy(c), torch.from_numpy(ids)
    return q, c, ids


def _stages(backend: str, q, c, ids):
    """One callable per stage, each running that stage on every block."""
    if backend == "torch":
        import array_api_compat.torch as xp
    else:
        import array_api_compat.numpy as xp
    size = q.shape[0]
    blocks = [slice(s, min(s + BLOCK_ROWS, size)) for s in range(0, size, BLOCK_ROWS)]
    ct = xp.matrix_transpose(c)
    logits = [q[b, :] @ ct for b in blocks]
    peaks = [xp.max(s, axis=-1, keepdims=True) for s in logits]
    shifted = [s - m for s, m in zip(logits, peaks, strict=True)]
    exps = [xp.exp(d) for d in shifted]
    grads = [e * 1e-3 for e in exps]
    pulled = [xp.matrix_transpose(g) @ q[b, :] for g, b in zip(grads, blocks, strict=True)]
    grad_c = xp.zeros_like(c)

    def accumulate():
        total = grad_c
        for p in pulled:
            total = xpx.at(total)[:, :].add(p)
        return total

    def each(stage):
        """Run ``stage(block_index, rows)`` on every block, keeping no result (as the loss does)."""

        def run():
            for k, b in enumerate(blocks):
                stage(k, b)

        return run

    return {
        "scores": each(lambda k, b: q[b, :] @ ct),
        "max": each(lambda k, b: xp.max(logits[k], axis=-1, keepdims=True)),
        "shift": each(lambda k, b: logits[k] - peaks[k]),
        "exp": each(lambda k, b: xp.exp(shifted[k])),
        "sums": each(lambda k, b: xp.sum(exps[k], axis=-1, keepdims=True)),
        "hits": each(lambda k, b: xp.where(ids[b, None] == ids[None, :], -xp.inf, logits[k])),
        "grad gemms": each(lambda k, b: (grads[k] @ c, xp.matrix_transpose(grads[k]) @ q[b, :])),
        "grad add": accumulate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="B = N")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"B = N = {args.size}, D = {args.dim}, blocks of {BLOCK_ROWS} rows; median ratios")
    for backend in ("numpy", "torch"):
        for dtype in ("float32", "float64"):
            q, c, ids = _inputs(backend, dtype, args.size, args.dim)
            stages = _stages(backend, q, c, ids)
            calls = {"matmul": lambda q=q, c=c: q @ c.T, **stages}
            for f in calls.values():
                f()
            ratios: dict[str, list[float]] = {k: [] for k in stages}
            for _ in range(args.rounds):
                t = {}
                for name, f in calls.items():
                    start = time.perf_counter()
                    f()
                    t[name] = time.perf_counter() - start
                for name in stages:
                    ratios[name].append(t[name] / t["matmul"])
            med = {k: statistics.median(v) for k, v in ratios.items()}
            cells = "  ".join(f"{k} {v:.2f}" for k, v in med.items())
            print(f"{backend:5} {dtype:7} {cells}")


if __name__ == "__main__":
    main()
