"""Cost and memory of refloss's full and sampled softmax losses, next to their peers.

Method
------
Every timing is a ratio measured in one run, so that the machine's speed cancels out. A
*row* is one problem x backend; its inputs (float32) are made once and every candidate is
called on them:

``full`` (``refloss.full_softmax_loss`` with a class bias, B = 256 rows against
num_classes = 1,000,000 classes, D = 64):

* ``matmul``, the reference: the full logits ``q @ c.T`` (B x num_classes, materialised);
* ``loss``: ``full_softmax_loss(q, c, labels=..., class_bias=b, reduction="sum")``;
* ``value_and_grad``: ``refloss.value_and_grad`` of it with respect to ``query_embeddings``,
  ``class_embeddings`` and ``class_bias``;
* ``dense_loss`` and ``dense_loss_grad``, the naive formulation with the logits
  materialised: NumPy, a log-sum-exp over one ``(B, num_classes)`` matrix computed in place
  and its analytic gradient; PyTorch, ``cross_entropy(q @ c.T + b, labels)`` and
  ``.backward()``.

``sampled`` (``refloss.sampled_softmax_loss``, B = 4096, S = 8192 sampled classes,
D = 128, num_classes = 1,000,000, num_true = 1):

* ``matmul``, the reference: the sampled logits ``x @ w[sampled].T`` (B x S);
* ``loss``: ``sampled_softmax_loss(w, b, x, ..., reduction="sum")``;
* ``value_and_grad``: with respect to ``weights``, ``biases`` and ``inputs`` (the weights'
  gradient is a dense ``(num_classes, D)`` array);
* when TensorFlow is installed, next to the NumPy row: ``tf.nn.sampled_softmax_loss`` on the
  same inputs with the same ``sampled_values``, summed, in a ``tf.function``
  (``tf_loss``), the same under a ``GradientTape`` with the gradients for weights (an
  ``IndexedSlices``), biases and inputs (``tf_loss_grad``), and TensorFlow's own
  ``x @ w[sampled].T`` (``tf_matmul``), which TensorFlow's ratios are divided by.

The sampled ids are ``refloss.samplers.log_uniform(num_classes).sample(S, unique=True)``
with their expected counts; the labels are drawn from the same log-uniform distribution
(with replacement), so that popular classes are both labels and samples and accidental
hits occur (their number is printed).

Each candidate is called once to warm up, then the candidates are *interleaved*: a round
calls each once, in an order rotated from round to round. A ratio is the *median over
rounds of the per-round ratio* ``time(candidate) / time(reference)``; its spread is the
interquartile range and the extremes of the per-round ratios. Before
timing, each peer's loss and gradients are compared with refloss's (relative 1e-4 on the
loss, 1e-3 on the gradients' norm of difference); for ``full`` on a problem with 1/8 of the
classes (still cut into column chunks).

Peak memory beyond inputs and outputs, in MiB (2**20 bytes), two probes:

* ``tracemalloc`` (NumPy only: NumPy reports its allocations to it, PyTorch's allocator does
  not): tracing starts after the inputs exist, the call runs, and the size of what the
  call returns (loss and gradients) is subtracted from the traced peak;
* resident memory (NumPy and PyTorch, Linux): in a fresh interpreter per measurement, the
  inputs are made and a small problem is run once (lazy imports), the peak resident size is
  reset (``/proc/self/clear_refs``), the call runs, and the output's size is subtracted from
  the growth of ``VmHWM`` over ``VmRSS`` before the call. It counts the pages touched, so an
  output allocated zeroed (``calloc``) and written sparsely can count less than its size
  (with transparent huge pages, NumPy's large arrays are touched 2 MiB at a time).

Run ``python benchmarks/bench_sampled.py`` (``--help`` for the flags, ``--quick`` for a
smoke run in seconds). The table goes to stdout, the same numbers and every round's raw
times to ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

import refloss

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_retrieval import environment, interleaved_times, spread  # noqa: E402 (sibling module)

BACKENDS = ("numpy", "torch")
PROBLEMS = ("full", "sampled")
SIZES = {
    "full": {"rows": 256, "classes": 1_000_000, "dim": 64},
    "sampled": {"rows": 4096, "sampled": 8192, "classes": 1_000_000, "dim": 128},
}
QUICK_SIZES = {  # with chunks of 16384 classes (QUICK_CHUNK) unless --chunk-size
    "full": {"rows": 64, "classes": 40_000, "dim": 16},
    "sampled": {"rows": 256, "sampled": 512, "classes": 20_000, "dim": 32},
}
QUICK_CHUNK = 16384  # --quick: the full problem still goes through several column chunks
FULL_MEMORY_TARGET_MB = 256  # MiB: value_and_grad's peak beyond inputs and outputs, NumPy
LOSS_RTOL, GRAD_RTOL = 1e-4, 1e-3
MB = 2**20  # the "MB" of every figure here is a MiB
# (candidate, reference) pairs reported, in table order
RATIOS = {
    "full": (
        ("loss", "matmul"),
        ("value_and_grad", "matmul"),
        ("dense_loss", "matmul"),
        ("dense_loss_grad", "matmul"),
        ("loss", "dense_loss"),
        ("value_and_grad", "dense_loss_grad"),
    ),
    "sampled": (
        ("loss", "matmul"),
        ("value_and_grad", "matmul"),
        ("tf_loss", "tf_matmul"),
        ("tf_loss_grad", "tf_matmul"),
        ("loss", "tf_loss"),
        ("value_and_grad", "tf_loss_grad"),
    ),
}
# refloss's call and the peer's, compared before timing
PEER_PAIRS = {
    "full": (("loss", "dense_loss"), ("value_and_grad", "dense_loss_grad")),
    "sampled": (("loss", "tf_loss"), ("value_and_grad", "tf_loss_grad")),
}
MEMORY_CANDIDATES = ("matmul", "loss", "value_and_grad", "dense_loss", "dense_loss_grad")


# ----------------------------------------------------------------------------- inputs


def _log_uniform_fallback(num_classes: int, size: int, *, unique: bool, rng) -> tuple:
    """``(ids, num_tries, probability)`` of TensorFlow's log-uniform sampler, with NumPy.

    Only used while ``refloss.samplers`` is missing.
    """

    def probability(ids):
        return np.log1p(1.0 / (ids + 1.0)) / np.log1p(num_classes)

    def draw(n):
        ids = np.floor(np.exp(rng.random(n) * np.log1p(num_classes))).astype(np.int64) - 1
        return np.clip(ids, 0, num_classes - 1)

    if not unique:
        return draw(size), size, probability
    seen: dict[int, None] = {}
    tries = 0
    while len(seen) < size:
        for k in draw(size).tolist():
            tries += 1
            seen.setdefault(k)
            if len(seen) == size:
                break
    return np.fromiter(seen, dtype=np.int64), tries, probability


def sampled_values(num_classes: int, num_sampled: int, rows: int, rng) -> dict[str, Any]:
    """Unique log-uniform samples, labels from the same distribution, expected counts."""
    try:
        from refloss import samplers
    except ImportError:
        samplers = None
    if samplers is not None:
        sampler = samplers.log_uniform(num_classes)
        draw = sampler.sample(num_sampled, unique=True, rng=rng)
        labels = sampler.sample(rows, unique=False, rng=rng).candidates[:, None]
        count = functools.partial(
            sampler.expected_count, num_sampled=num_sampled, unique=True, num_tries=draw.num_tries
        )
        sampled, tries, source = draw.candidates, draw.num_tries, "refloss.samplers.log_uniform"
        true_count, sampled_count = count(labels), draw.sampled_expected_count
    else:
        sampled, tries, p = _log_uniform_fallback(num_classes, num_sampled, unique=True, rng=rng)
        labels = _log_uniform_fallback(num_classes, rows, unique=False, rng=rng)[0][:, None]
        true_count = -np.expm1(tries * np.log1p(-p(labels)))
        sampled_count = -np.expm1(tries * np.log1p(-p(sampled)))
        source = "NumPy log-uniform (refloss.samplers missing)"
    return {
        "labels": labels.astype(np.int64),
        "sampled_candidates": sampled.astype(np.int64),
        "true_expected_count": np.asarray(true_count, dtype=np.float32),
        "sampled_expected_count": np.asarray(sampled_count, dtype=np.float32),
        "num_tries": int(tries),
        "sampler": source,
    }


def make_inputs(problem: str, size: dict[str, int]) -> dict[str, Any]:
    """The row's float32 inputs as NumPy arrays (and a few facts about them)."""
    rng = np.random.default_rng(0)
    rows, classes, dim = size["rows"], size["classes"], size["dim"]
    x = {}
    if problem == "full":
        x["q"] = (rng.standard_normal((rows, dim), dtype=np.float32) / np.sqrt(dim)).astype(
            np.float32
        )
        x["c"] = rng.standard_normal((classes, dim), dtype=np.float32)
        x["b"] = 0.1 * rng.standard_normal(classes, dtype=np.float32)
        x["labels"] = rng.integers(0, classes, rows, dtype=np.int64)
        return x
    x["w"] = (rng.standard_normal((classes, dim), dtype=np.float32) / np.sqrt(dim)).astype(
        np.float32
    )
    x["b"] = 0.1 * rng.standard_normal(classes, dtype=np.float32)
    x["x"] = rng.standard_normal((rows, dim), dtype=np.float32)
    x |= sampled_values(classes, size["sampled"], rows, rng)
    x["accidental_hits"] = int(np.isin(x["labels"][:, 0], x["sampled_candidates"]).sum())
    return x


def to_backend(backend: str, x: dict[str, Any]) -> dict[str, Any]:
    if backend != "torch":
        return dict(x)
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in x.items()}


# ----------------------------------------------------------------------------- candidates


def full_calls(backend: str, x: dict[str, Any], chunk_size: int | None = None) -> dict[str, Any]:
    q, c, b, labels = x["q"], x["c"], x["b"], x["labels"]
    loss = functools.partial(refloss.full_softmax_loss, reduction="sum", chunk_size=chunk_size)
    grad = refloss.value_and_grad(loss, wrt=("query_embeddings", "class_embeddings", "class_bias"))
    calls = {
        "matmul": lambda: q @ c.T,
        "loss": lambda: loss(q, c, labels=labels, class_bias=b),
        "value_and_grad": lambda: grad(q, c, labels=labels, class_bias=b),
    }
    if backend == "torch":
        calls |= _torch_dense_full(q, c, b, labels)
    else:
        calls["dense_loss"] = lambda: _numpy_dense_full(q, c, b, labels, grad=False)
        calls["dense_loss_grad"] = lambda: _numpy_dense_full(q, c, b, labels, grad=True)
    return calls


def _numpy_dense_full(q, c, b, labels, *, grad: bool):
    """Softmax cross-entropy over one materialised (B, num_classes) logits matrix, in place."""
    rows = np.arange(q.shape[0])
    logits = q @ c.T
    logits += b
    target = logits[rows, labels]
    peak = logits.max(axis=1, keepdims=True)
    logits -= peak
    np.exp(logits, out=logits)
    total = logits.sum(axis=1, keepdims=True)
    loss = np.sum(np.log(total[:, 0]) + peak[:, 0] - target)
    if not grad:
        return loss
    logits /= total  # softmax, then G = p - onehot
    logits[rows, labels] -= 1.0
    return loss, (logits @ c, logits.T @ q, logits.sum(axis=0))


def _torch_dense_full(q, c, b, labels) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    def loss(q, c, b):
        return F.cross_entropy(torch.addmm(b, q, c.T), labels, reduction="sum")

    leaves = [t.detach().clone().requires_grad_() for t in (q, c, b)]

    def loss_grad():
        for leaf in leaves:
            leaf.grad = None
        value = loss(*leaves)
        value.backward()
        return value, tuple(leaf.grad for leaf in leaves)

    def no_grad_loss():
        with torch.no_grad():
            return loss(q, c, b)

    return {"dense_loss": no_grad_loss, "dense_loss_grad": loss_grad}


def sampled_calls(backend: str, x: dict[str, Any]) -> dict[str, Any]:
    w, b, inputs, sampled = x["w"], x["b"], x["x"], x["sampled_candidates"]
    options = {
        "labels": x["labels"],
        "sampled_candidates": sampled,
        "true_expected_count": x["true_expected_count"],
        "sampled_expected_count": x["sampled_expected_count"],
    }
    loss = functools.partial(refloss.sampled_softmax_loss, reduction="sum")
    grad = refloss.value_and_grad(loss, wrt=("weights", "biases", "inputs"))
    return {
        "matmul": lambda: inputs @ w[sampled].T,
        "loss": lambda: loss(w, b, inputs, **options),
        "value_and_grad": lambda: grad(w, b, inputs, **options),
    }


def tensorflow_sampled_calls(x: dict[str, Any]) -> dict[str, Any] | None:
    """TensorFlow's sampled softmax on the same NumPy inputs, or None when not installed."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    w, b, inputs = (tf.constant(x[k]) for k in ("w", "b", "x"))
    labels, sampled = tf.constant(x["labels"]), tf.constant(x["sampled_candidates"])
    true_count = tf.constant(x["true_expected_count"])
    sampled_count = tf.constant(x["sampled_expected_count"])
    num_classes, num_sampled = int(w.shape[0]), int(sampled.shape[0])

    def loss(w, b, inputs, labels, sampled, true_count, sampled_count):
        return tf.reduce_sum(
            tf.nn.sampled_softmax_loss(
                weights=w,
                biases=b,
                labels=labels,
                inputs=inputs,
                num_sampled=num_sampled,
                num_classes=num_classes,
                sampled_values=(sampled, true_count, sampled_count),
                remove_accidental_hits=True,
            )
        )

    @tf.function
    def loss_grad(w, b, inputs, *rest):
        with tf.GradientTape() as tape:
            tape.watch((w, b, inputs))
            value = loss(w, b, inputs, *rest)
        return value, tape.gradient(value, (w, b, inputs))

    @tf.function
    def matmul(inputs, w, sampled):
        return tf.matmul(inputs, tf.gather(w, sampled), transpose_b=True)

    loss_fn = tf.function(loss)
    args = (w, b, inputs, labels, sampled, true_count, sampled_count)
    return {
        "tf_matmul": lambda: matmul(inputs, w, sampled),
        "tf_loss": lambda: loss_fn(*args),
        "tf_loss_grad": lambda: loss_grad(*args),
    }


def calls_for(
    problem: str, backend: str, x: dict[str, Any], chunk_size: int | None = None
) -> dict[str, Any]:
    if problem == "full":
        return full_calls(backend, x, chunk_size)
    return sampled_calls(backend, x)


# ----------------------------------------------------------------------------- checks


def _host(a: Any) -> np.ndarray:
    """A NumPy copy of a NumPy, PyTorch or TensorFlow array (IndexedSlices densified)."""
    if type(a).__name__ == "IndexedSlices":  # TensorFlow's sparse gradient of a gather
        import tensorflow as tf

        a = tf.convert_to_tensor(a)
    if hasattr(a, "detach"):
        a = a.detach()
    return np.asarray(a, dtype=np.float64)


def _rel(a: Any, b: Any) -> float:
    a, b = _host(a), _host(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def agreement(
    calls: dict[str, Any], pairs: tuple[tuple[str, str], ...]
) -> tuple[dict[str, list[float]], list[str]]:
    """Relative differences of the peers' losses and gradients from refloss's; warnings."""
    diffs, warnings = {}, []
    for ours, theirs in pairs:
        if theirs not in calls:
            continue
        a, b = calls[ours](), calls[theirs]()
        if isinstance(a, tuple):
            rel = [_rel(b[0], a[0])] + [_rel(g, h) for g, h in zip(b[1], a[1], strict=True)]
            limits = [LOSS_RTOL] + [GRAD_RTOL] * len(a[1])
        else:
            rel, limits = [_rel(b, a)], [LOSS_RTOL]
        diffs[f"{theirs}/{ours}"] = rel
        if any(not d <= limit for d, limit in zip(rel, limits, strict=True)):
            warnings.append(
                f"WARNING: {theirs} differs from refloss's {ours}: relative differences "
                f"{', '.join(f'{d:.1e}' for d in rel)} (loss, gradients)"
            )
    return diffs, warnings


# ----------------------------------------------------------------------------- memory


def output_bytes(out: Any) -> int:
    """Bytes of every array in a (nested) call result."""
    if isinstance(out, tuple | list):
        return sum(output_bytes(o) for o in out)
    if hasattr(out, "nbytes"):
        return int(out.nbytes)
    if hasattr(out, "element_size"):  # torch
        return int(out.numel() * out.element_size())
    return 0


def tracemalloc_peak(call) -> dict[str, float]:
    """Peak traced allocation of one call (started after the inputs exist), in MB."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outputs = output_bytes(out)
    return {"peak_MB": peak / MB, "outputs_MB": outputs / MB, "beyond_MB": (peak - outputs) / MB}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    msg = f"{field} not in /proc/self/status"
    raise RuntimeError(msg)


def _probe(
    problem: str, backend: str, name: str, size: dict[str, int], chunk_size: int | None
) -> None:
    """Print the resident-memory growth of one call (run in a fresh interpreter), as JSON."""
    small = {k: max(2, v // 64) for k, v in size.items()}
    if problem == "full":
        small |= {"rows": size["rows"], "classes": 70_000}  # chunked (> 2**23 logits per block)
    warm = calls_for(problem, backend, to_backend(backend, make_inputs(problem, small)))
    warm[name]()  # lazy imports, thread pools, caches: outside the measurement
    del warm
    x = to_backend(backend, make_inputs(problem, size))
    call = calls_for(problem, backend, x, chunk_size)[name]
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current resident size
    before = _status_kib("VmRSS")
    out = call()
    growth = (_status_kib("VmHWM") - before) * 1024
    print(json.dumps({"growth": growth, "outputs": output_bytes(out)}))


def rss_peak(
    problem: str, backend: str, name: str, size: dict[str, int], chunk_size: int | None
) -> dict[str, float]:
    probe = [problem, backend, name, json.dumps(size), json.dumps(chunk_size)]
    cmd = [sys.executable, __file__, "--probe", *probe]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "growth_MB": probe["growth"] / MB,
        "outputs_MB": probe["outputs"] / MB,
        "beyond_MB": (probe["growth"] - probe["outputs"]) / MB,
    }


# ----------------------------------------------------------------------------- rows


def measure_row(problem: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    size = args.sizes[problem]
    gc.collect()
    load = os.getloadavg()
    raw = make_inputs(problem, size)
    x = to_backend(backend, raw)
    calls = calls_for(problem, backend, x, args.chunk_size)
    tf_version = None
    if problem == "sampled" and backend == "numpy" and args.tf:
        tf_calls = tensorflow_sampled_calls(raw)
        if tf_calls is None:
            print("TensorFlow not installed: no tf.nn.sampled_softmax_loss rows", flush=True)
        else:
            import tensorflow as tf

            tf_version = tf.__version__
            calls |= tf_calls
    if problem == "full":  # check on 1/8 of the classes: these calls take seconds
        small = dict(size, classes=min(size["classes"], max(70_000, size["classes"] // 8)))
        small_x = to_backend(backend, make_inputs(problem, small))
        check = calls_for(problem, backend, small_x, args.chunk_size)
        agree, warnings = agreement(check, PEER_PAIRS[problem])
        del check
    else:
        agree, warnings = agreement(calls, PEER_PAIRS[problem])
    for warning in warnings:
        print(warning, file=sys.stderr, flush=True)
    times = interleaved_times(calls, args.rounds, lambda out: out)
    row: dict[str, Any] = {
        "problem": problem,
        "backend": backend,
        "sizes": size,
        "chunk_size": args.chunk_size if problem == "full" else None,
        "rounds": args.rounds,
        "load_average_at_start": load,
        "agreement": agree,
        "warnings": warnings,
        "times_ms": {name: [1e3 * t for t in ts] for name, ts in times.items()},
        "median_ms": {name: 1e3 * statistics.median(ts) for name, ts in times.items()},
        "ratios": {},
    }
    if tf_version:
        row["tensorflow"] = tf_version
    if problem == "sampled":
        row |= {k: raw[k] for k in ("num_tries", "accidental_hits", "sampler")}
    for num, den in RATIOS[problem]:
        if num in times and den in times:
            per_round = [a / b for a, b in zip(times[num], times[den], strict=True)]
            row["ratios"][f"{num}/{den}"] = spread(per_round)
    del calls, x
    gc.collect()
    row["tracemalloc"], row["rss"] = {}, {}
    names = [n for n in MEMORY_CANDIDATES if n in times]
    if backend == "numpy":
        calls = calls_for(problem, backend, raw, args.chunk_size)
        for name in names:
            row["tracemalloc"][name] = tracemalloc_peak(calls[name])
        del calls
        gc.collect()
    if args.rss:
        for name in names:
            row["rss"][name] = rss_peak(problem, backend, name, size, args.chunk_size)
    return row


# ----------------------------------------------------------------------------- output

TABLE = (
    f"{'problem':7} {'operation':15} {'backend':10} {'over':15} {'median':>6} "
    f"{'IQR':>13} {'min-max':>13} {'median_ms':>9} {'over_ms':>9} | "
    f"{'tracemalloc MiB':>15} {'RSS MiB':>8}"
)


def _mb(memory: dict[str, Any], name: str) -> str:
    return f"{memory[name]['beyond_MB']:.1f}" if name in memory else "-"


def format_rows(row: dict[str, Any]) -> list[str]:
    """One line per ratio; memory (MB beyond inputs and outputs) on the lines over a matmul."""
    lines = []
    for key, r in row["ratios"].items():
        num, den = key.split("/")
        backend = "tensorflow" if num.startswith("tf_") else row["backend"]
        own = den == "matmul"
        iqr = f"{r['q1']:.2f}-{r['q3']:.2f}"
        extremes = f"{r['min']:.2f}-{r['max']:.2f}"
        lines.append(
            f"{row['problem']:7} {num:15} {backend:10} {den:15} {r['median']:6.2f} "
            f"{iqr:>13} {extremes:>13} "
            f"{row['median_ms'][num]:9.1f} {row['median_ms'][den]:9.1f} | "
            f"{_mb(row['tracemalloc'], num) if own else '-':>15} "
            f"{_mb(row['rss'], num) if own else '-':>8}"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (default 7)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--problems", nargs="+", choices=PROBLEMS, default=list(PROBLEMS))
    parser.add_argument(
        "--num-classes",
        type=int,
        help="num_classes of the sampled problem (default 1,000,000; 100,000 saves memory)",
    )
    parser.add_argument(
        "--tf",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time tf.nn.sampled_softmax_loss when TensorFlow is installed",
    )
    parser.add_argument(
        "--rss",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="resident-memory probes, a fresh interpreter each (off with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: small sizes, chunks of 16384 classes, 3 rounds, no resident-memory probes",
    )
    parser.add_argument(
        "--json", type=Path, default=HERE / "results_sampled.json", help="output JSON"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        help="chunk_size of full_softmax_loss (default: refloss's, 32768 classes here)",
    )
    parser.add_argument("--probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = {k: dict(v) for k, v in (QUICK_SIZES if args.quick else SIZES).items()}
    if args.num_classes:
        args.sizes["sampled"]["classes"] = args.num_classes
    if args.rss is None:
        args.rss = not args.quick
    if args.quick:
        args.rounds = args.rounds or 3
        args.chunk_size = args.chunk_size or QUICK_CHUNK
    args.rounds = args.rounds or 7
    return args


def main() -> None:
    args = parse_args()
    if args.probe:
        problem, backend, name, size, chunk_size = args.probe
        _probe(problem, backend, name, json.loads(size), json.loads(chunk_size))
        return
    backends = []
    for backend in args.backends:
        try:
            if backend == "torch":
                import torch  # noqa: F401
            backends.append(backend)
        except ImportError:
            print("PyTorch not installed: no torch rows", flush=True)
    env = environment()
    try:
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
    except ImportError:
        env["tensorflow"] = None
    print("refloss full and sampled softmax benchmark (ratios: medians over interleaved rounds)")
    for key, value in env.items():
        print(f"  {key}: {value}")
    print(f"sizes: {args.sizes}, {args.rounds} rounds, float32", flush=True)
    rows = []
    for problem in args.problems:
        for backend in backends:
            started = time.perf_counter()
            rows.append(measure_row(problem, backend, args))
            row = rows[-1]
            if problem == "sampled":
                print(
                    f"\n{problem} {backend}: {row['sampler']}, {row['num_tries']} tries for "
                    f"{args.sizes['sampled']['sampled']} unique ids, "
                    f"{row['accidental_hits']} of {args.sizes['sampled']['rows']} labels sampled "
                    f"(accidental hits), {time.perf_counter() - started:.0f} s, load average "
                    f"at start {row['load_average_at_start'][0]:.2f}",
                    flush=True,
                )
            else:
                print(
                    f"\n{problem} {backend}: chunk_size {args.chunk_size or 'default'}, "
                    f"{time.perf_counter() - started:.0f} s, load average at start "
                    f"{row['load_average_at_start'][0]:.2f}",
                    flush=True,
                )
            print(TABLE)
            print("\n".join(format_rows(row)), flush=True)
            for name, mem in row["tracemalloc"].items():
                print(
                    f"  tracemalloc {name}: peak {mem['peak_MB']:.1f} MiB - outputs "
                    f"{mem['outputs_MB']:.1f} MiB = {mem['beyond_MB']:.1f} MiB"
                )
            for name, mem in row["rss"].items():
                print(
                    f"  RSS {name}: VmHWM growth {mem['growth_MB']:.1f} MiB - outputs "
                    f"{mem['outputs_MB']:.1f} MiB = {mem['beyond_MB']:.1f} MiB"
                )
            vg = row["tracemalloc"].get("value_and_grad")
            if problem == "full" and vg is not None and not args.quick:
                met = "met" if vg["beyond_MB"] < FULL_MEMORY_TARGET_MB else "MISSED"
                print(
                    f"  target: value_and_grad beyond inputs and outputs < "
                    f"{FULL_MEMORY_TARGET_MB} MiB: {met}"
                )
            sys.stdout.flush()
    for row in rows:
        for warning in row["warnings"]:
            print(warning)
    env["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {env['load_average_at_end']} (other work shares the cores)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "sizes": args.sizes,
        "rounds": args.rounds,
        "dtype": "float32",
        "chunk_size": args.chunk_size,
    }
    args.json.write_text(json.dumps({"environment": env, "config": config, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
