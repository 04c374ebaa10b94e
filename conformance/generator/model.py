"""The in-memory description of one fixture case, and input-drawing helpers.

A case lists its inputs as NumPy arrays, its options, flags and group.  Test ids are
not written here: the generator numbers cases in the order their builder returns them
(see ``README.md`` in ``conformance/``), so new cases are appended at the end of a
builder and existing cases are never reordered or removed (replace a retired case by
:data:`RETIRED` so that later ids keep their numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RNG_METHOD = "numpy.random.Generator(PCG64)"


@dataclass
class Case:
    """One fixture test before numbering and evaluation."""

    comment: str
    flags: list[str]
    inputs: dict[str, np.ndarray]
    group: str
    params: dict = field(default_factory=dict)
    result: str = "valid"
    error: str | None = None
    float64_only: bool = False
    provenance: str | dict = "hand-written"
    source: str = "0.1.0"  # the refloss release that introduced the case (one per group)


RETIRED = None  # placeholder that keeps a retired case's tcId reserved


class Draw:
    """Seeded draws of float32-representable values, recorded for provenance."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.dists: list[str] = []

    def normal(self, shape, scale: float = 1.0, *, float64: bool = False) -> np.ndarray:
        """Standard normal values times ``scale``, rounded to float32 unless ``float64``."""
        if float64:
            self.dists.append(f"normal(0,1)*{scale!r} float64 {list(shape)}")
            return self.rng.standard_normal(shape) * scale
        self.dists.append(f"normal(0,1)*{scale!r} -> float32 {list(shape)}")
        x = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
        return x.astype(np.float64)

    def uniform(self, shape, low: float, high: float) -> np.ndarray:
        """Uniform values in [low, high), rounded to float32."""
        self.dists.append(f"uniform({low!r},{high!r}) -> float32 {list(shape)}")
        x = self.rng.uniform(low, high, shape).astype(np.float32)
        return x.astype(np.float64)

    def grid(self, shape, step: float = 0.25, span: int = 4) -> np.ndarray:
        """Multiples of ``step`` in [-span*step, span*step] (exact in any float format)."""
        self.dists.append(f"integers(-{span},{span})*{step!r} {list(shape)}")
        return self.rng.integers(-span, span + 1, shape).astype(np.float64) * step

    def integers(self, shape, low: int, high: int) -> np.ndarray:
        """Integers in [low, high)."""
        self.dists.append(f"integers({low},{high}) {list(shape)}")
        return self.rng.integers(low, high, shape).astype(np.int64)

    def bools(self, shape, p_true: float) -> np.ndarray:
        """Booleans, True with probability ``p_true``."""
        self.dists.append(f"bernoulli({p_true!r}) {list(shape)}")
        return self.rng.random(shape) < p_true

    def provenance(self, note: str | None = None) -> dict:
        """Return the provenance record of everything drawn so far."""
        record = {"dist": "; ".join(self.dists), "method": RNG_METHOD, "seed": self.seed}
        if note:
            record["note"] = note
        return record


def f64(values) -> np.ndarray:
    """A float64 array from nested lists."""
    return np.asarray(values, dtype=np.float64)


def i64(values) -> np.ndarray:
    """An int64 array from nested lists."""
    return np.asarray(values, dtype=np.int64)


def mask(values) -> np.ndarray:
    """A bool array from nested lists of 0/1 or bools."""
    return np.asarray(values, dtype=bool)


@dataclass
class SequenceCase:
    """One stateful fixture test: an initial state, then steps replayed in order.

    ``init`` holds the initial state's options; each step is ``{"inputs": {name: array},
    "params": {...}}``.  ``pinned`` names the outputs whose expected values each step
    records (all the family's outputs when None).
    """

    comment: str
    flags: list[str]
    init: dict
    steps: list[dict]
    group: str
    result: str = "valid"
    error: str | None = None
    provenance: str | dict = "hand-written"
    source: str = "0.2.0"
    pinned: tuple[str, ...] | None = None
