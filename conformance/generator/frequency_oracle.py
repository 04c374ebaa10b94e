"""Exact reference of the streaming frequency estimator (Yi et al. 2019, Algorithms 2 and 3).

Written from the documented semantics with Python integers (the 64-bit hash, modulo
``2**64`` by explicit masking) and exact rational arithmetic (:class:`fractions.Fraction`)
for the gaps, so every expected value is exact until it is rounded once to float64.  It
depends on nothing but the standard library and never calls refloss.

Semantics (``refloss.frequency``):

* state per hash ``i``: ``A_i[b]`` the last step bucket ``b`` was hit (0: never) and
  ``B_i[b]`` the estimated gap, initially ``initial_gap``;
* ``update(ids, step=t)``: every bucket hit this step (ids and buckets deduplicated) gets
  ``B <- (1 - alpha) B + alpha (t - A)`` then ``A <- t``; a bucket seen for the first time
  (``A == 0``) with ``first_sighting="record"`` only gets ``A <- t``;
* ``probability(id) = clip(1 / max_i B_i[h_i(id)], min_probability, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def signed64(x: int) -> int:
    """The signed int64 whose two's-complement bits are ``x mod 2**64``."""
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def mix64(z: int) -> int:
    """SplitMix64's finaliser of the 64-bit pattern ``z``, as an unsigned integer."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def seeds(seed: int, num_hashes: int) -> list[int]:
    """Per-hash seeds: SplitMix64's outputs ``mix64(seed + (i + 1) * 0x9E3779B97F4A7C15)``."""
    return [signed64(mix64(seed + (i + 1) * GOLDEN_GAMMA)) for i in range(num_hashes)]


def bucket(item: int, seed: int, num_buckets: int) -> int:
    """``mix64(item XOR seed)``, its high 32 bits reduced to ``[0, num_buckets)``."""
    return ((mix64(item ^ seed) >> 32) * num_buckets) >> 32


@dataclass
class Estimator:
    """The estimator's state, exact."""

    num_buckets: int
    num_hashes: int = 1
    initial_gap: Fraction = Fraction(100)
    seed: int = 0
    step: int = 0
    last_step: list[list[int]] = field(default_factory=list)
    gap: list[list[Fraction]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.initial_gap = Fraction(self.initial_gap)
        self.seeds = seeds(self.seed, self.num_hashes)
        self.last_step = [[0] * self.num_buckets for _ in range(self.num_hashes)]
        self.gap = [[self.initial_gap] * self.num_buckets for _ in range(self.num_hashes)]

    def buckets(self, ids: list[int]) -> list[list[int]]:
        """``(num_hashes, n)`` bucket of each id under each hash."""
        return [[bucket(i, s, self.num_buckets) for i in ids] for s in self.seeds]

    def update(
        self, ids: list[int], *, step: int, learning_rate: float, first_sighting: str
    ) -> None:
        """One step of Algorithm 2 (per hash), buckets deduplicated."""
        if not step > self.step:
            raise ValueError(f"step must increase: {step} after {self.step}")
        alpha = Fraction(learning_rate)
        for hashed, last, gap in zip(self.buckets(ids), self.last_step, self.gap, strict=True):
            for b in sorted(set(hashed)):
                if last[b] != 0 or first_sighting == "update":
                    gap[b] = (1 - alpha) * gap[b] + alpha * (step - last[b])
                last[b] = step
        self.step = step

    def probability(self, ids: list[int], *, min_probability: float) -> list[Fraction]:
        """``clip(1 / max_i B_i[h_i(id)], min_probability, 1)`` of each id."""
        low = Fraction(min_probability)
        out = []
        for column in zip(*self.buckets(ids), strict=True):
            widest = max(gap[b] for gap, b in zip(self.gap, column, strict=True))
            out.append(min(max(1 / widest, low), Fraction(1)))
        return out
