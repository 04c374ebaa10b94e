"""Cost of ``retrieval_loss`` and ``value_and_grad`` relative to the logits matmul.

Every ratio is measured in one run: the time of ``retrieval_loss`` (and of
``value_and_grad(retrieval_loss)``) divided by the time of ``q @ c.T`` on the same inputs,
and the peak memory a call allocates beyond its inputs divided by ``B * N * itemsize`` (the
size of one logits matrix). Peak memory is read from the process's maximum resident set
size (``VmHWM``, reset before the call) in a fresh subprocess per measurement, so it
covers NumPy and PyTorch alike (Linux only).

Run: ``python benchmarks/bench_retrieval.py [--size 4096] [--dim 128] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

import refloss

BACKENDS = ("numpy", "torch")
DTYPES = ("float32", "float64")
CALLS = ("matmul", "loss", "value_and_grad")


def _inputs(backend: str, dtype: str, size: int, dim: int):
    rng = np.random.default_rng(0)
    q = (rng.standard_normal((size, dim)) / np.sqrt(dim)).astype(dtype)
    c = rng.standard_normal((size, dim)).astype(dtype)
    if backend == "torch":
        import torch

        return torch.from_numpy(q), torch.from_numpy(c)
    return q, c


def _call(name: str, q, c):
    if name == "matmul":
        return q @ c.T
    if name == "loss":
        return refloss.retrieval_loss(q, c, temperature=0.05)
    return refloss.value_and_grad(refloss.retrieval_loss)(q, c, temperature=0.05)


def _best_times(q, c, repeat: int) -> dict[str, float]:
    """Best wall time of each call; the calls are interleaved so they share the conditions."""
    best = dict.fromkeys(CALLS, float("inf"))
    for name in CALLS:
        _call(name, q, c)  # warm-up
    for _ in range(repeat):
        for name in CALLS:
            start = time.perf_counter()
            _call(name, q, c)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    msg = f"{field} not in /proc/self/status"
    raise RuntimeError(msg)


def _probe(backend: str, dtype: str, name: str, size: int, dim: int) -> None:
    """Print the peak resident-memory growth of one call (run in a fresh interpreter)."""
    q, c = _inputs(backend, dtype, size, dim)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    before = _status_kib("VmRSS")
    _call(name, q, c)
    print(_status_kib("VmHWM") - before)


def _peak_extra_bytes(backend: str, dtype: str, name: str, size: int, dim: int) -> int:
    """Peak resident-memory growth of one call, measured in a fresh interpreter (Linux)."""
    args = [backend, dtype, name, str(size), str(dim)]
    cmd = [sys.executable, __file__, "--probe", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="B = N")
    parser.add_argument("--dim", type=int, default=128, help="D")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        backend, dtype, name, size, dim = args.probe
        _probe(backend, dtype, name, int(size), int(dim))
        return
    print(f"B = N = {args.size}, D = {args.dim}, best of {args.repeat}; temperature 0.05")
    header = "backend dtype    matmul_ms  loss/matmul  v&g/matmul  peak_loss/BN  peak_v&g/BN"
    print(header)
    for backend in BACKENDS:
        for dtype in DTYPES:
            q, c = _inputs(backend, dtype, args.size, args.dim)
            t = _best_times(q, c, args.repeat)
            unit = args.size * args.size * np.dtype(dtype).itemsize
            mem = {
                name: _peak_extra_bytes(backend, dtype, name, args.size, args.dim) / unit
                for name in ("loss", "value_and_grad")
            }
            print(
                f"{backend:7} {dtype:8} {1e3 * t['matmul']:9.1f}  "
                f"{t['loss'] / t['matmul']:11.2f}  {t['value_and_grad'] / t['matmul']:10.2f}  "
                f"{mem['loss']:12.2f}  {mem['value_and_grad']:11.2f}"
            )


if __name__ == "__main__":
    main()
