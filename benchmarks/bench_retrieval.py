"""Cost of refloss's retrieval loss relative to each backend's logits matmul, and its peers.

Method
------
Every number is a ratio measured in one run, on one machine, so that the machine's speed
cancels out. A *row* is one backend x dtype x input distribution x options. For a row, the
inputs are made once and every candidate is called on them:

* ``matmul``, the reference: the backend's own ``q @ c.T`` (NumPy's for NumPy, PyTorch's for
  PyTorch, a ``jax.jit``-compiled one for JAX);
* ``loss``: ``refloss.retrieval_loss`` (under ``jax.jit`` for JAX);
* ``value_and_grad``: ``refloss.value_and_grad(refloss.retrieval_loss)``, the loss and its
  gradients with respect to ``q`` and ``c`` (``jax.jit`` of it for JAX);
* the peer for that backend, when installed (``benchmarks/peers.py``): its loss alone and
  its loss with gradients (PyTorch ``cross_entropy`` with ``.backward()``; a jitted
  ``jax.nn.log_softmax`` loss with ``jax.value_and_grad``; TFRS ``tasks.Retrieval`` in a
  ``tf.function`` with a ``GradientTape``, next to the NumPy rows, divided by TensorFlow's
  own matmul).

Each candidate is called once to warm up (JIT compilation, allocator), then the candidates
are *interleaved*: a round calls every candidate once, in an order rotated from round to
round, so that all of them see the same machine state (other processes, frequency, cache).
A ratio is the *median over rounds of the per-round ratio* ``time(candidate) /
time(reference)`` within that round: a burst of load slows one round's numerator and
denominator alike, and the median drops the rounds where it did not. JAX outputs are
waited for with ``block_until_ready``. The peers' losses are checked once, outside the
timing, against refloss's (relative 1e-4 in float32, 1e-10 in float64).

Input distributions (``D`` = embedding width): ``normalised``, L2-normalised q and c with
temperature 0.05; ``unnormalised``, standard-normal c and q / sqrt(D) with temperature 0.1;
``no-temperature``, the same without a temperature. Options: ``plain``, or ``logq+ids``:
candidate ids drawn from a Zipf popularity over N/2 items (so that popular items recur
within a batch: realistic accidental hits) and each candidate's sampling probability set to
its id's popularity.

The scale point (``--scale``) times loss and ``value_and_grad`` over the matmul at
B = N = 32768, float32, NumPy and PyTorch, normalised inputs, and measures the peak memory
a call allocates as a multiple of one logits matrix (``B * N * itemsize``): in a fresh
interpreter per measurement, the inputs are made, the peak resident size is reset
(``/proc/self/clear_refs``), the call runs, and the growth of the peak (``VmHWM``) over the
resident size before the call is read (Linux only). The matmul is probed too, as a check
that the probe sees one logits matrix.

Run ``python benchmarks/bench_retrieval.py`` (``--help`` for the flags; ``--quick`` for a
short development run). The table goes to stdout, the same numbers as JSON to ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import refloss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import Peer, peer_for  # noqa: E402 (the sibling module, when run as a script)

BACKENDS = ("numpy", "torch", "jax")
DTYPES = ("float32", "float64")
DISTRIBUTIONS = {"normalised": 0.05, "unnormalised": 0.1, "no-temperature": None}
OPTIONS = ("plain", "logq+ids")
ZIPF_EXPONENT = 1.0
# Issue 7, item 6: multiples of the backend's own matmul in the same run.
LOSS_TARGET = {"plain": 1.6, "logq+ids": 1.8}
GRAD_TARGET = 3.5
SCALE_GRAD_TARGET = 4.0
SCALE_MEMORY_TARGET = 0.1  # peak growth over one logits matrix, strictly below
# refloss over the peer: v&g faster than every peer's loss+grad (item 6, strictly below 1);
# under jax.jit, the loss within 1.2x of the idiomatic JAX loss too (item 4).
PEER_GRAD_TARGET = 1.0
PEER_LOSS_TARGET = {"jax": 1.2}
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
ENV_SHOWN = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MALLOC_ARENA_MAX")


def cores() -> int:
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Inputs:
    """One row's inputs, as arrays of its backend."""

    q: Any
    c: Any
    tau: float | None
    kwargs: dict[str, Any]  # candidate_sampling_probability and candidate_ids, or empty


def make_inputs(
    backend: str, dtype: str, distribution: str, options: str, size: int, dim: int
) -> Inputs:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((size, dim))
    c = rng.standard_normal((size, dim))
    if distribution == "normalised":
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    else:
        q /= np.sqrt(dim)
    arrays = {"q": q.astype(dtype), "c": c.astype(dtype)}
    if options == "logq+ids":
        popularity = 1.0 / np.arange(1, size // 2 + 1) ** ZIPF_EXPONENT
        popularity /= popularity.sum()
        ids = rng.choice(popularity.size, size=size, p=popularity)
        arrays["candidate_sampling_probability"] = popularity[ids].astype(dtype)
        arrays["candidate_ids"] = ids.astype(np.int64)
    arrays = _to_backend(backend, arrays)
    return Inputs(arrays.pop("q"), arrays.pop("c"), DISTRIBUTIONS[distribution], arrays)


def _to_backend(backend: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if backend == "torch":
        import torch

        torch.set_num_threads(cores())
        return {k: torch.from_numpy(a) for k, a in arrays.items()}
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        x64 = jax.config.jax_enable_x64
        return {
            k: jnp.asarray(a if x64 or a.dtype != np.int64 else a.astype(np.int32))
            for k, a in arrays.items()
        }
    return arrays


def refloss_calls(backend: str, x: Inputs) -> dict[str, Any]:
    """The reference matmul and refloss's two calls, each a function of no argument."""
    loss = functools.partial(refloss.retrieval_loss, temperature=x.tau)
    grad = refloss.value_and_grad(loss)
    matmul = _matmul
    if backend == "jax":
        import jax

        matmul = jax.jit(_matmul)
        loss = jax.jit(
            lambda q, c, **kwargs: refloss.retrieval_loss(q, c, temperature=x.tau, **kwargs)
        )
        grad = jax.jit(grad)
    q, c, kw = x.q, x.c, x.kwargs
    return {
        "matmul": lambda: matmul(q, c),
        "loss": lambda: loss(q, c, **kw),
        "value_and_grad": lambda: grad(q, c, **kw),
    }


def _matmul(q, c):
    return q @ c.T


def _timed(call, wait) -> float:
    start = time.perf_counter()
    wait(call())
    return time.perf_counter() - start


def interleaved_times(
    calls: dict[str, Any], rounds: int, wait, warm_up: bool = True
) -> dict[str, list[float]]:
    """Seconds per call per round; each round calls every candidate once, order rotated."""
    for call in calls.values() if warm_up else ():
        wait(call())  # warm-up: compilation, allocator, caches
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_timed(calls[name], wait))
    return times


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def waiter(backend: str):
    """What makes a backend's result ready before the clock stops (JAX runs asynchronously)."""
    if backend == "jax":
        import jax

        return jax.block_until_ready
    return lambda out: out


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of per-round values."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3, "min": min(values), "max": max(values)}


def importable(backends: list[str]) -> list[str]:
    """The named backends that import; a line for each one that does not."""
    found = []
    for backend in backends:
        try:
            if backend != "numpy":
                __import__(backend)
            found.append(backend)
        except ImportError:
            print(f"{backend} not installed: no {backend} rows", flush=True)
    return found


def set_torch_threads(threads: int | None, backends: list[str], env: dict[str, Any]) -> None:
    """PyTorch's intra-op threads, when asked for, recorded in ``env``."""
    if threads and "torch" in backends:
        import torch

        torch.set_num_threads(threads)
        env["torch_threads"] = torch.get_num_threads()


def _set_x64(backend: str, dtype: str) -> None:
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", dtype == "float64")


def measure_row(
    backend: str, dtype: str, distribution: str, options: str, args: argparse.Namespace
) -> dict[str, Any]:
    _set_x64(backend, dtype)
    gc.collect()
    x = make_inputs(backend, dtype, distribution, options, args.size, args.dim)
    calls = refloss_calls(backend, x)
    peer: Peer | None = peer_for(backend, x) if args.peers else None
    row: dict[str, Any] = {
        "backend": backend,
        "dtype": dtype,
        "distribution": distribution,
        "temperature": x.tau,
        "options": options,
        "size": args.size,
        "dim": args.dim,
        "rounds": args.rounds,
    }
    if peer is not None:
        ours = float(calls["loss"]())
        theirs = peer.loss_value()
        rel = abs(theirs - ours) / abs(ours)
        row["peer"] = {"name": peer.name, "loss": theirs, "refloss_loss": ours, "rel_diff": rel}
        if not rel <= TOLERANCE[dtype]:
            row["warning"] = (
                f"WARNING: {peer.name} loss {theirs!r} differs from refloss {ours!r} by "
                f"{rel:.2e} relative (tolerance {TOLERANCE[dtype]:g}) in row "
                f"{backend} {dtype} {distribution} {options}"
            )
            print(row["warning"], file=sys.stderr, flush=True)
        calls |= peer.calls
    times = interleaved_times(calls, args.rounds, waiter(backend))
    row["times_ms"] = {name: [1e3 * t for t in ts] for name, ts in times.items()}
    row["matmul_ms"] = 1e3 * statistics.median(times["matmul"])
    row["loss/matmul"] = median_ratio(times, "loss", "matmul")
    row["v&g/matmul"] = median_ratio(times, "value_and_grad", "matmul")
    row["loss_target"] = LOSS_TARGET[options]
    row["v&g_target"] = GRAD_TARGET
    if peer is not None:
        row["peer"] |= {
            "reference": peer.reference,
            "reference_ms": 1e3 * statistics.median(times[peer.reference]),
            "loss/matmul": median_ratio(times, "peer_loss", peer.reference),
            "loss_grad/matmul": median_ratio(times, "peer_loss_grad", peer.reference),
            "refloss_loss/peer_loss": median_ratio(times, "loss", "peer_loss"),
            "refloss_v&g/peer_loss_grad": median_ratio(times, "value_and_grad", "peer_loss_grad"),
            "loss/peer_target": PEER_LOSS_TARGET.get(backend),
            "v&g/peer_target": PEER_GRAD_TARGET,
        }
    return row


# ----------------------------------------------------------------------------- scale point


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    msg = f"{field} not in /proc/self/status"
    raise RuntimeError(msg)


def _probe(backend: str, dtype: str, name: str, size: int, dim: int) -> None:
    """Print the peak resident-memory growth of one call in KiB (run in a fresh interpreter)."""
    small = make_inputs(backend, dtype, "normalised", "plain", 64, dim)
    refloss_calls(backend, small)[name]()  # lazy imports and caches, outside the measurement
    x = make_inputs(backend, dtype, "normalised", "plain", size, dim)
    call = refloss_calls(backend, x)[name]
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    before = _status_kib("VmRSS")
    call()
    print(_status_kib("VmHWM") - before)


def peak_growth(backend: str, dtype: str, name: str, size: int, dim: int) -> float:
    """Peak memory growth of one call over one logits matrix, measured in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--probe", backend, dtype, name, str(size), str(dim)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) * 1024 / (size * size * np.dtype(dtype).itemsize)


def measure_scale(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    dtype, size = "float32", args.scale_size
    gc.collect()
    x = make_inputs(backend, dtype, "normalised", "plain", size, args.dim)
    calls = refloss_calls(backend, x)
    calls["matmul"]()  # warm-up of the BLAS only: refloss's calls take seconds here
    times = interleaved_times(calls, args.scale_rounds, waiter(backend), warm_up=False)
    del calls
    del x
    gc.collect()
    memory = {
        name: peak_growth(backend, dtype, name, size, args.dim)
        for name in ("matmul", "loss", "value_and_grad")
    }
    return {
        "backend": backend,
        "dtype": dtype,
        "distribution": "normalised",
        "temperature": DISTRIBUTIONS["normalised"],
        "options": "plain",
        "size": size,
        "dim": args.dim,
        "rounds": args.scale_rounds,
        "times_ms": {name: [1e3 * t for t in ts] for name, ts in times.items()},
        "matmul_ms": 1e3 * statistics.median(times["matmul"]),
        "loss/matmul": median_ratio(times, "loss", "matmul"),
        "v&g/matmul": median_ratio(times, "value_and_grad", "matmul"),
        "v&g_target": SCALE_GRAD_TARGET,
        "memory/BN": memory,
        "memory_target": SCALE_MEMORY_TARGET,
    }


# ----------------------------------------------------------------------------- output


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": cores(),
        "numpy": np.__version__,
        "refloss": refloss.__version__,
        "env": {name: os.environ.get(name, "unset") for name in ENV_SHOWN},
        "load_average_at_start": os.getloadavg(),
    }
    try:
        rev = ["git", "-C", str(HERE), "describe", "--always", "--dirty"]
        env["git"] = subprocess.run(rev, capture_output=True, text=True).stdout.strip() or None
    except OSError:
        env["git"] = None
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
            f"threads={i.get('num_threads')} ({Path(i['filepath']).name})"
            for i in threadpool_info()
        ]
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        env["blas"] = [f"numpy: {blas.get('name')} {blas.get('version')} (no threadpoolctl)"]
    for module in ("torch", "jax"):
        try:
            env[module] = __import__(module).__version__
        except ImportError:
            env[module] = None
    if env["torch"]:
        import torch

        torch.set_num_threads(cores())
        env["torch_threads"] = torch.get_num_threads()
    return env


def _mark(value: float, target: float | None, strict: bool = False) -> str:
    """``value`` with a ``*`` when it misses ``target`` (``<=``, or ``<`` when strict)."""
    met = target is None or (value < target if strict else value <= target)
    return f"{value:6.2f}{' ' if met else '*'}"


def _bound(target: float | None, strict: bool = False) -> str:
    return "-" if target is None else f"{'<' if strict else '<='}{target:g}"


TABLE = (
    f"{'backend':7} {'dtype':7} {'distribution':14} {'options':8} {'matmul_ms':>9} "
    f"{'loss/mm':>7} {'target':>6} {'v&g/mm':>7} {'target':>6} | {'peer':<36} "
    f"{'loss/mm':>7} {'l+g/mm':>7} {'loss/peer':>9} {'target':>6} {'v&g/peer':>8} {'target':>6}"
)


def format_row(row: dict[str, Any]) -> str:
    line = (
        f"{row['backend']:7} {row['dtype']:7} {row['distribution']:14} {row['options']:8} "
        f"{row['matmul_ms']:9.1f} {_mark(row['loss/matmul'], row['loss_target'])} "
        f"{_bound(row['loss_target']):>6} {_mark(row['v&g/matmul'], GRAD_TARGET)} "
        f"{_bound(GRAD_TARGET):>6} | "
    )
    peer = row.get("peer")
    if peer is None or "loss/matmul" not in peer:
        return line + "-"
    loss_target, grad_target = peer["loss/peer_target"], peer["v&g/peer_target"]
    return line + (
        f"{peer['name']:<36} {peer['loss/matmul']:7.2f} {peer['loss_grad/matmul']:7.2f} "
        f"{_mark(peer['refloss_loss/peer_loss'], loss_target):>9} {_bound(loss_target):>6} "
        f"{_mark(peer['refloss_v&g/peer_loss_grad'], grad_target, strict=True):>8} "
        f"{_bound(grad_target, strict=True):>6}"
    )


SCALE_TABLE = (
    f"{'backend':7} {'dtype':7} {'B=N':>6} {'matmul_ms':>9} {'loss/mm':>7} {'v&g/mm':>7} "
    f"{'target':>6} | {'mem_mm/BN':>9} {'mem_loss/BN':>11} {'mem_v&g/BN':>10} {'target':>6}"
)


def format_scale(row: dict[str, Any]) -> str:
    mem = row["memory/BN"]
    worst = max(mem["loss"], mem["value_and_grad"])
    return (
        f"{row['backend']:7} {row['dtype']:7} {row['size']:6} {row['matmul_ms']:9.0f} "
        f"{row['loss/matmul']:7.2f} {_mark(row['v&g/matmul'], SCALE_GRAD_TARGET)} "
        f"{_bound(SCALE_GRAD_TARGET):>6} | {mem['matmul']:9.2f} {mem['loss']:11.3f} "
        f"{mem['value_and_grad']:9.3f}{' ' if worst < SCALE_MEMORY_TARGET else '*'} "
        f"{_bound(SCALE_MEMORY_TARGET, strict=True):>6}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="B = N (default 4096)")
    parser.add_argument("--dim", type=int, default=128, help="D (default 128)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (default 11)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument(
        "--distributions", nargs="+", choices=list(DISTRIBUTIONS), default=list(DISTRIBUTIONS)
    )
    parser.add_argument("--options", nargs="+", choices=OPTIONS, default=list(OPTIONS))
    parser.add_argument(
        "--peers", action=argparse.BooleanOptionalAction, default=True, help="time the peers"
    )
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the scale point (float32, numpy and torch, minutes)",
    )
    parser.add_argument("--scale-size", type=int, default=32768, help="B = N of the scale point")
    parser.add_argument("--scale-rounds", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="development run: 3 rounds, no peers, no scale point"
    )
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="output JSON")
    parser.add_argument("--probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.peers = args.scale = False
        args.rounds = args.rounds or 3
    args.rounds = args.rounds or 11
    return args


def main() -> None:
    args = parse_args()
    if args.probe:
        backend, dtype, name, size, dim = args.probe
        _probe(backend, dtype, name, int(size), int(dim))
        return
    env = environment()
    print("refloss retrieval_loss benchmark (ratios: medians over interleaved rounds)")
    for key, value in env.items():
        print(f"  {key}: {value}")
    print(
        f"B = N = {args.size}, D = {args.dim}, {args.rounds} rounds; temperatures "
        f"{DISTRIBUTIONS}; '*' marks a ratio that misses its target (issue 7)\n",
        flush=True,
    )
    print(TABLE, flush=True)
    rows, scale = [], []
    for backend in args.backends:
        for dtype in args.dtypes:
            for distribution in args.distributions:
                for options in args.options:
                    rows.append(measure_row(backend, dtype, distribution, options, args))
                    print(format_row(rows[-1]), flush=True)
    for row in rows:
        if "warning" in row:
            print(row["warning"])
    if args.scale:
        print(
            f"\nscale point: normalised inputs, plain, {args.scale_rounds} rounds; memory = "
            "peak growth of one call over B*N*itemsize, fresh interpreter per probe",
            flush=True,
        )
        print(SCALE_TABLE, flush=True)
        for backend in (b for b in ("numpy", "torch") if b in args.backends):
            scale.append(measure_scale(backend, args))
            print(format_scale(scale[-1]), flush=True)
    env["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {env['load_average_at_end']} (other work shares the cores)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "rows": rows, "scale": scale}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
