"""GPU checks: every conformance fixture on CuPy and PyTorch CUDA, then the sampled family at scale.

Run on a machine with an NVIDIA GPU, CuPy and PyTorch (CUDA)::

    python benchmarks/gpu_check.py [--json PATH]

Part 1 runs every case of every fixture file through :func:`refloss.testing.check_against_fixture`
with the inputs on the GPU (CuPy arrays, and PyTorch tensors on ``cuda:0``), in float64 and
float32: namespace, dtype, shape, device and values, as ``refloss verify`` does on the CPU.
Part 2 times ``full_softmax_loss`` and its gradient at B=256, 1,000,000 classes, D=64,
float32 on PyTorch CUDA, as ratios to the full logits matmul in the same run (median of
interleaved rounds), and reads the peak GPU memory beyond inputs and outputs from
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections import Counter

import refloss
from refloss.testing import (
    CaseSkipped,
    check_against_fixture,
    fixture_cases,
    fixture_names,
)
from refloss.testing._families import reference_callable


def _backends():
    import array_api_compat.cupy as cupy_xp
    import array_api_compat.torch as torch_xp
    import cupy
    import torch

    return [
        ("cupy", cupy_xp, cupy.cuda.Device(0)),
        ("torch-cuda", torch_xp, torch.device("cuda:0")),
    ]


def fixtures() -> dict:
    """Part 1: every fixture case on the GPU backends; counts of passed/failed/skipped."""
    counts: Counter = Counter()
    failures = []
    for backend, xp, device in _backends():
        for name in fixture_names():
            cases = list(fixture_cases(name))
            fn = reference_callable(cases[0].function, cases[0].kind)
            if fn is None:
                counts[(backend, "skipped")] += len(cases) * 2
                continue
            for dtype in ("float64", "float32"):
                for case in cases:
                    try:
                        check_against_fixture(fn, case, xp=xp, dtype=dtype, device=device)
                    except CaseSkipped:
                        counts[(backend, "skipped")] += 1
                    except Exception as exc:  # a mismatch or a crash: both reported
                        counts[(backend, "failed")] += 1
                        where = f"{backend} {dtype} {name} tcId {case.tc_id}"
                        failures.append(f"{where}: {type(exc).__name__}: {exc}"[:400])
                    else:
                        counts[(backend, "passed")] += 1
    summary = {f"{b} {s}": n for (b, s), n in sorted(counts.items())}
    print(json.dumps(summary, indent=1))
    for line in failures[:20]:
        print("FAIL", line)
    return {"counts": summary, "failures": failures}


def _median_ratio(candidates, baseline, rounds: int, sync) -> dict:
    """Interleaved rounds: each candidate's time over the baseline's in the same round."""
    times = {name: [] for name in [*candidates, "baseline"]}
    for _ in range(rounds):
        for name, fn in [*candidates.items(), ("baseline", baseline)]:
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name in candidates:
        ratios = [t / b for t, b in zip(times[name], times["baseline"], strict=True)]
        out[name] = {
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "ms_median": 1e3 * statistics.median(times[name]),
        }
    out["baseline_ms_median"] = 1e3 * statistics.median(times["baseline"])
    return out


def full_softmax_at_scale(rounds: int) -> dict:
    """Part 2: full_softmax_loss at B=256, 1M classes, D=64, float32 on PyTorch CUDA."""
    import torch

    dev = torch.device("cuda:0")
    gen = torch.Generator(device=dev).manual_seed(0)
    num_rows, num_classes, width = 256, 1_000_000, 64
    q = torch.randn(num_rows, width, device=dev, generator=gen)
    c = torch.randn(num_classes, width, device=dev, generator=gen) * 0.3
    bias = torch.randn(num_classes, device=dev, generator=gen)
    labels = torch.randint(0, num_classes, (num_rows,), device=dev, generator=gen)
    loss_fn = functools.partial(refloss.full_softmax_loss, reduction="sum")
    grad_fn = refloss.value_and_grad(
        loss_fn, wrt=("query_embeddings", "class_embeddings", "class_bias")
    )
    sync = torch.cuda.synchronize
    result = _median_ratio(
        {
            "loss": lambda: loss_fn(q, c, labels=labels, class_bias=bias),
            "value_and_grad": lambda: grad_fn(q, c, labels=labels, class_bias=bias),
        },
        lambda: q @ c.T,
        rounds,
        sync,
    )
    peaks = {}
    for name, call in (
        ("loss", lambda: loss_fn(q, c, labels=labels, class_bias=bias)),
        ("value_and_grad", lambda: grad_fn(q, c, labels=labels, class_bias=bias)),
        ("dense logits matmul", lambda: q @ c.T),
    ):
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = call()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
        outputs = [out] if isinstance(out, torch.Tensor) else [out[0], *out[1]]
        out_bytes = sum(t.numel() * t.element_size() for t in outputs)
        peaks[name] = {"peak_beyond_inputs_mb": peak / 2**20, "outputs_mb": out_bytes / 2**20}
        peaks[name]["working_mb"] = (peak - out_bytes) / 2**20
        del out
    reference = loss_fn(q.double(), c.double(), labels=labels, class_bias=bias.double())
    got = loss_fn(q, c, labels=labels, class_bias=bias)
    result["float32_vs_float64_relative"] = float(abs(got - reference) / abs(reference))
    result["memory"] = peaks
    result["device"] = torch.cuda.get_device_name(0)
    print(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    results = {"fixtures": fixtures(), "full_softmax": full_softmax_at_scale(args.rounds)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
