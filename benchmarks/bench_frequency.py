"""Throughput of refloss's streaming frequency estimator, in ids per second, and a plain baseline.

Method
------
A stream of batches of 4096 item ids is drawn once from a Zipf distribution (exponent 1.1,
NumPy's ``rng.zipf``, draws above 10,000,000 redrawn: popular ids repeat within a batch,
as in training data). A *row* is one backend (NumPy, PyTorch on CPU, JAX on CPU with
``jax_enable_x64``) x number of hashes (1 or 4), with 2**20 buckets per hash, float64 gaps
and the default learning rate. Every candidate owns its own state and consumes the same
stream, each step being an update with the batch followed by the probabilities of the
batch's ids (the read that the logQ correction of the same batch needs):

* ``estimator``: ``frequency.FrequencyEstimator``, in place: ``est.update(ids);
  est.probability(ids)``;
* ``functional``: ``state = frequency.update(state, ids, step=t);
  frequency.probability(state, ids)`` (pure: on NumPy and PyTorch each update copies the
  tables, by design);
* JAX only, ``jit`` and ``jit_donate``: the functional pair in one ``jax.jit``-compiled
  step ``(state, ids, t) -> (state, probability)``, the second with the state donated
  (``donate_argnums=0``) so that XLA may update the tables in place;
* NumPy with one hash, ``baseline``: the plain NumPy loop that the target refers to, on the
  same hash (SplitMix64 on ``uint64``, as specified in ``refloss.frequency``): the buckets
  of the batch, ``np.unique`` of them, a gather of both tables, the update, a scatter, then
  ``clip(1 / gap[buckets], 1e-6, 1)``. Its final state is compared with the estimator's
  (they must be equal bit for bit).

Each round, every candidate processes the next ``--batches-per-round`` batches of the
stream (the same batches for all), in an order rotated from round to round; the call before
the first round is a warm-up (JIT compilation). JAX candidates are waited for
(``block_until_ready``) once per round. Throughput is ``ids in the round / time``, and a
candidate's figure is the *median over rounds*, with the interquartile range;
``estimator / baseline`` is the median over rounds of the per-round ratio of their times.
The target: at least 30 million ids per second on NumPy with one hash, for the
estimator.

Run ``python benchmarks/bench_frequency.py`` (``--help`` for the flags, ``--quick`` for a
smoke run in seconds). The table goes to stdout, the same numbers and every round's raw
times to ``--json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_retrieval import (  # noqa: E402 (sibling module)
    environment,
    importable,
    interleaved_times,
    set_torch_threads,
    spread,
    waiter,
)

from refloss import frequency  # noqa: E402

BACKENDS = ("numpy", "torch", "jax")
HASHES = (1, 4)
NUM_BUCKETS = 1 << 20
BATCH = 4096
ZIPF_EXPONENT = 1.1
MAX_ID = 10_000_000
LEARNING_RATE = 0.01  # refloss's default
MIN_PROBABILITY = 1e-6
TARGET_IDS_PER_S = 30e6  # NumPy, one hash, the estimator

# SplitMix64, as specified in refloss.frequency's module docstring
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


# ----------------------------------------------------------------------------- stream


def zipf_stream(num_batches: int, batch: int, seed: int = 0) -> np.ndarray:
    """``(num_batches, batch)`` int64 ids, Zipf(1.1) over 1..MAX_ID (larger draws redrawn)."""
    rng = np.random.default_rng(seed)
    total = num_batches * batch
    ids = np.empty(0, dtype=np.int64)
    while ids.size < total:
        draw = rng.zipf(ZIPF_EXPONENT, size=total)
        ids = np.concatenate([ids, draw[draw <= MAX_ID]])
    return ids[:total].reshape(num_batches, batch)


def stream_facts(stream: np.ndarray) -> dict[str, float]:
    unique = [np.unique(b).size for b in stream]
    return {
        "batches": int(stream.shape[0]),
        "batch": int(stream.shape[1]),
        "distinct_ids_per_batch_median": float(statistics.median(unique)),
        "distinct_ids_in_stream": int(np.unique(stream).size),
    }


# ----------------------------------------------------------------------------- baseline


def numpy_buckets(ids: np.ndarray, seed: int, num_buckets: int) -> np.ndarray:
    """Bucket of each id under one hash, in plain NumPy ``uint64`` arithmetic."""
    z = ids.view(np.uint64) ^ np.uint64(seed % (1 << 64))
    z = (z ^ (z >> 30)) * _MIX_1
    z = (z ^ (z >> 27)) * _MIX_2
    z ^= z >> 31
    return (((z >> 32) * np.uint64(num_buckets)) >> 32).astype(np.intp)


class Baseline:
    """The unique-then-scatter loop over one hash's tables, in place."""

    def __init__(self, num_buckets: int, seed: int, initial_gap: float = 100.0) -> None:
        self.last_step = np.zeros(num_buckets, dtype=np.int64)
        self.gap = np.full(num_buckets, initial_gap, dtype=np.float64)
        self.seed, self.num_buckets, self.step = seed, num_buckets, 0

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        self.step += 1
        buckets = numpy_buckets(ids, self.seed, self.num_buckets)
        hit = np.unique(buckets)
        a, b = self.last_step[hit], self.gap[hit]
        self.gap[hit] = (1 - LEARNING_RATE) * b + LEARNING_RATE * (self.step - a).astype(b.dtype)
        self.last_step[hit] = self.step
        return np.clip(1.0 / self.gap[buckets], MIN_PROBABILITY, 1.0)


# ----------------------------------------------------------------------------- candidates


def _namespace(backend: str, threads: int | None = None):
    if backend == "torch":
        import torch

        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        return torch
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return jnp
    return np


def _chunks(stream: Any, per_round: int) -> Callable[[], range]:
    """A counter of the stream's chunks of ``per_round`` batches: each call, the next chunk."""
    state = {"next": 0}

    def take() -> range:
        start = state["next"] * per_round
        state["next"] += 1
        if start + per_round > len(stream):
            msg = "the stream is too short for the rounds asked"
            raise RuntimeError(msg)
        return range(start, start + per_round)

    return take


def candidates(
    backend: str,
    num_hashes: int,
    stream: np.ndarray,
    per_round: int,
    num_buckets: int,
    threads: int | None = None,
) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """The row's candidates (each a call that processes its next chunk), and their owners."""
    xp = _namespace(backend, threads)
    batches = [xp.asarray(b) for b in stream]
    owners: dict[str, Any] = {}
    calls: dict[str, Callable[[], Any]] = {}

    estimator = frequency.FrequencyEstimator(num_buckets, num_hashes=num_hashes, xp=xp)
    owners["estimator"] = estimator
    take_e = _chunks(batches, per_round)

    def run_estimator():
        out = None
        for k in take_e():
            estimator.update(batches[k])
            out = estimator.probability(batches[k])
        return out

    calls["estimator"] = run_estimator

    functional = {"state": frequency.init(num_buckets, num_hashes=num_hashes, xp=xp)}
    owners["functional"] = functional
    take_f = _chunks(batches, per_round)

    def run_functional():
        out = None
        for k in take_f():
            state = frequency.update(functional["state"], batches[k], step=k + 1)
            functional["state"] = state
            out = frequency.probability(state, batches[k])
        return out

    calls["functional"] = run_functional

    if backend == "jax":
        import jax

        def step(state, ids, t):
            state = frequency.update(state, ids, step=t)
            return state, frequency.probability(state, ids)

        steps = {"jit": jax.jit(step), "jit_donate": jax.jit(step, donate_argnums=0)}
        for name, compiled in steps.items():
            holder = {"state": frequency.init(num_buckets, num_hashes=num_hashes, xp=xp)}
            owners[name] = holder
            calls[name] = _jit_runner(compiled, holder, batches, _chunks(batches, per_round), xp)

    if backend == "numpy" and num_hashes == 1:
        seed = int(estimator.state.seeds[0])
        baseline = Baseline(num_buckets, seed)
        owners["baseline"] = baseline
        take_b = _chunks(stream, per_round)

        def run_baseline():
            out = None
            for k in take_b():
                out = baseline(stream[k])
            return out

        calls["baseline"] = run_baseline
    return calls, owners


def _jit_runner(compiled, holder, batches, take, xp):
    def run():
        out = None
        for k in take():
            holder["state"], out = compiled(holder["state"], batches[k], xp.asarray(k + 1))
        return holder["state"], out

    return run


# ----------------------------------------------------------------------------- checks


def _host(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a)


def agreement(owners: dict[str, Any]) -> tuple[dict[str, bool], list[str]]:
    """Whether every candidate's final tables equal the estimator's, bit for bit."""
    ref = owners["estimator"].state
    ref_last, ref_gap = _host(ref.last_step), _host(ref.gap)
    same, warnings = {}, []
    for name, owner in owners.items():
        if name == "estimator":
            continue
        if name == "baseline":
            last, gap = owner.last_step[None, :], owner.gap[None, :]
        else:
            last, gap = _host(owner["state"].last_step), _host(owner["state"].gap)
        ok = np.array_equal(last, ref_last) and np.array_equal(gap, ref_gap)
        same[name] = bool(ok)
        if not ok:
            close = np.allclose(gap, ref_gap, rtol=1e-12, atol=0)
            warnings.append(
                f"WARNING: {name}'s final tables differ from the estimator's "
                f"(last_step equal: {np.array_equal(last, ref_last)}, gaps within 1e-12: {close})"
            )
    return same, warnings


# ----------------------------------------------------------------------------- rows


def measure_row(backend: str, num_hashes: int, stream: np.ndarray, args) -> dict[str, Any]:
    gc.collect()
    load = os.getloadavg()
    started = time.perf_counter()
    calls, owners = candidates(
        backend, num_hashes, stream, args.batches_per_round, args.buckets, args.threads
    )
    times = interleaved_times(calls, args.rounds, waiter(backend))
    ids_per_round = args.batches_per_round * stream.shape[1]
    same, warnings = agreement(owners)
    for warning in warnings:
        print(warning, file=sys.stderr, flush=True)
    row: dict[str, Any] = {
        "backend": backend,
        "num_hashes": num_hashes,
        "num_buckets": args.buckets,
        "rounds": args.rounds,
        "ids_per_round": ids_per_round,
        "load_average_at_start": load,
        "seconds": time.perf_counter() - started,
        "times_ms": {name: [1e3 * t for t in ts] for name, ts in times.items()},
        "ids_per_s": {name: spread([ids_per_round / t for t in ts]) for name, ts in times.items()},
        "us_per_batch": {
            name: 1e6 * statistics.median(ts) / args.batches_per_round for name, ts in times.items()
        },
        "equal_to_estimator": same,
        "warnings": warnings,
        "ratios": {},
    }
    if "baseline" in times:
        for name in ("estimator", "functional"):
            per_round = [a / b for a, b in zip(times[name], times["baseline"], strict=True)]
            row["ratios"][f"{name}/baseline"] = spread(per_round)
    return row


# ----------------------------------------------------------------------------- output


def _m(x: float) -> str:
    return f"{x / 1e6:7.2f}"


def format_row(row: dict[str, Any]) -> list[str]:
    lines = []
    for name, r in row["ids_per_s"].items():
        line = (
            f"{row['backend']:6} {row['num_hashes']:6} {name:11} {_m(r['median'])} "
            f"[{_m(r['q1']).strip()}-{_m(r['q3']).strip()}] M ids/s "
            f"{row['us_per_batch'][name]:9.1f} us/batch"
        )
        ratio = row["ratios"].get(f"{name}/baseline")
        if ratio:
            line += (
                f" | time / baseline {ratio['median']:.2f} [{ratio['q1']:.2f}-{ratio['q3']:.2f}]"
            )
        if name == "estimator" and row["backend"] == "numpy" and row["num_hashes"] == 1:
            met = "met" if r["median"] >= TARGET_IDS_PER_S else "MISSED"
            line += f" | target >= {TARGET_IDS_PER_S / 1e6:.0f} M ids/s: {met}"
        if name in row["equal_to_estimator"]:
            line += f" | tables equal to the estimator's: {row['equal_to_estimator'][name]}"
        lines.append(line)
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (default 15)")
    parser.add_argument(
        "--batches-per-round", type=int, help="batches each candidate processes per round (8)"
    )
    parser.add_argument("--batch", type=int, default=BATCH, help="ids per batch (4096)")
    parser.add_argument("--buckets", type=int, default=NUM_BUCKETS, help="buckets per hash (2**20)")
    parser.add_argument("--hashes", nargs="+", type=int, default=list(HASHES))
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, help="default: all (--quick: numpy torch)"
    )
    parser.add_argument(
        "--threads", type=int, help="PyTorch's intra-op threads (default: every core)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 rounds of 2 batches, no JAX"
    )
    parser.add_argument(
        "--json", type=Path, default=HERE / "results_frequency.json", help="output JSON"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = args.rounds or 3
        args.batches_per_round = args.batches_per_round or 2
        args.backends = args.backends or ["numpy", "torch"]
    args.rounds = args.rounds or 15
    args.batches_per_round = args.batches_per_round or 8
    args.backends = args.backends or list(BACKENDS)
    return args


def main() -> None:
    args = parse_args()
    backends = importable(args.backends)
    env = environment()
    set_torch_threads(args.threads, backends, env)
    # the warm-up call and every round each take one chunk of the stream
    stream = zipf_stream((args.rounds + 1) * args.batches_per_round, args.batch)
    facts = stream_facts(stream)
    print("refloss frequency-estimator throughput (medians over interleaved rounds [IQR])")
    for key, value in env.items():
        print(f"  {key}: {value}")
    print(
        f"{args.buckets} buckets per hash, float64 gaps, learning rate {LEARNING_RATE}; "
        f"batches of {args.batch} ids, Zipf({ZIPF_EXPONENT}) over 1..{MAX_ID}: "
        f"{facts['distinct_ids_per_batch_median']:.0f} distinct ids per batch (median); "
        f"{args.rounds} rounds of {args.batches_per_round} batches\n",
        flush=True,
    )
    print(f"{'backend':6} {'hashes':6} {'candidate':11} {'throughput':>27} {'time':>15}")
    rows = []
    for backend in backends:
        for num_hashes in args.hashes:
            rows.append(measure_row(backend, num_hashes, stream, args))
            row = rows[-1]
            print("\n".join(format_row(row)), flush=True)
            print(
                f"{'':14}(load average at start {row['load_average_at_start'][0]:.2f}, "
                f"{row['seconds']:.0f} s)",
                flush=True,
            )
    for row in rows:
        for warning in row["warnings"]:
            print(warning)
    env["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {env['load_average_at_end']} (other work shares the cores)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "num_buckets": args.buckets,
        "batch": args.batch,
        "rounds": args.rounds,
        "batches_per_round": args.batches_per_round,
        "zipf_exponent": ZIPF_EXPONENT,
        "max_id": MAX_ID,
        "learning_rate": LEARNING_RATE,
        "stream": facts,
    }
    args.json.write_text(json.dumps({"environment": env, "config": config, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
