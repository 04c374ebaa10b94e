"""Sequence cases for ``refloss.frequency`` (``frequency_test.json``, refloss 0.2.0).

Each case builds a state with ``init`` options and replays steps of ``update`` followed
by ``probability`` on the step's ids.  The order of the list fixes the tcIds: append only.
"""

from __future__ import annotations

import numpy as np

from .model import Draw, SequenceCase, i64

# JSON-safe integers: the fixture format stores integers within +-(2**53 - 1); the unit
# tests cover the whole int64 range
SAFE = 2**53 - 1


def _step(ids, step, **params) -> dict:
    return {"inputs": {"ids": i64(ids)}, "params": {"step": step, **params}}


def _case(comment, flags, init, steps, group="basic", **kw) -> SequenceCase:
    return SequenceCase(comment, flags, init, steps, group, **kw)


def _invalid(comment, flags, init, steps, error) -> SequenceCase:
    return SequenceCase(comment, flags, init, steps, "invalid", "invalid", error)


def frequency_cases() -> list[SequenceCase]:
    """Cases of ``frequency_test.json``."""
    small = {"num_buckets": 8, "initial_gap": 100.0, "seed": 0}
    rate = {"learning_rate": 0.25}
    out = [
        _case(
            "one hash, 8 buckets, six steps; ids repeated within a step count once",
            ["DeduplicatedWithinStep"],
            small,
            [
                _step([3, 7, 3, 3], 1, **rate),
                _step([7], 2, **rate),
                _step([3, 11, 7], 4, **rate),
                _step([], 5, **rate),
                _step([11, 11], 6, **rate),
                _step([3, 7, 11, 42], 9, **rate),
            ],
        ),
        _case(
            "first sighting with first_sighting='record': only the step is recorded",
            ["FirstSightingRecord"],
            small,
            [
                _step([5], 10, first_sighting="record", **rate),
                _step([5], 14, first_sighting="record", **rate),
                _step([5, 6], 15, first_sighting="record", **rate),
            ],
        ),
        _case(
            "first sighting at step 50, paper-literal: gap (1 - a) B0 + a * 50",
            ["FirstSightingUpdate"],
            small,
            [_step([5], 50, **rate), _step([5], 53, **rate)],
        ),
        _case(
            "periodic stream, one item every 3 steps: B_n = 3 + (1 - a)^n (B_1 - 3)",
            ["PeriodicStream"],
            {"num_buckets": 4, "initial_gap": 20.0, "seed": 1},
            [_step([9], t, learning_rate=0.125) for t in range(3, 40, 3)],
        ),
        _case(
            "two hashes over 4 buckets: collisions; the probability uses the largest gap",
            ["MultiHash", "BucketCollision"],
            {"num_buckets": 4, "num_hashes": 2, "initial_gap": 50.0, "seed": 7},
            [
                _step([1, 2, 3, 4, 5, 6], 1, **rate),
                _step([1, 2], 2, **rate),
                _step([1, 5], 4, **rate),
                _step([1, 2, 3, 4, 5, 6, 7, 8], 8, **rate),
            ],
        ),
        _case(
            "an id never seen reads 1/initial_gap, clipped to min_probability",
            ["UnseenId", "ProbabilityClip"],
            {"num_buckets": 64, "initial_gap": 1e7, "seed": 3},
            [
                _step([1], 1, min_probability=1e-6, **rate),
                _step([2], 2, min_probability=1e-9, **rate),
            ],
        ),
        _case(
            "an item in every step: the gap tends to 1 and the probability saturates at 1",
            ["Saturation"],
            {"num_buckets": 8, "initial_gap": 4.0, "seed": 0},
            [_step([2, 2, 2], t, learning_rate=0.5) for t in range(1, 13)],
        ),
        _case(
            "steps far apart (2**40): integer steps stay exact",
            ["LargeStep"],
            small,
            [
                _step([4], 1, **rate),
                _step([4], 2**40, **rate),
                _step([4], 2**40 + 1, **rate),
            ],
        ),
        _case(
            "extreme and negative ids (up to 2**53 - 1), 65537 buckets, three hashes: hash pinned",
            ["HashPinned"],
            {"num_buckets": 65537, "num_hashes": 3, "initial_gap": 100.0, "seed": 12345},
            [
                _step([0, -1, 1, -SAFE, SAFE, 2**52, -(2**52), 123456789], 1, **rate),
                _step(list(Draw(4101).integers((24,), -SAFE, SAFE)), 2, **rate),
            ],
            pinned=("buckets", "probability"),
        ),
        _case(
            "learning_rate 1: the gap is the last interval",
            ["LearningRateOne"],
            small,
            [_step([6], 2, learning_rate=1.0), _step([6], 7, learning_rate=1.0)],
        ),
        _case(
            "int32 ids",
            ["WidenedIds"],
            small,
            [
                {"inputs": {"ids": np.asarray([1, 2, 1], np.int32)}, "params": {"step": 1}},
                {"inputs": {"ids": np.asarray([2, 9], np.int32)}, "params": {"step": 3}},
            ],
        ),
        _case(
            "default options (learning_rate 0.01, first_sighting 'update', min 1e-6)",
            ["Basic"],
            {"num_buckets": 16},
            [_step([1, 2], 1), _step([2, 3], 2), _step([1], 5)],
        ),
    ]
    out += [
        _invalid(
            "a step equal to the previous one",
            ["NonIncreasingStep"],
            small,
            [_step([1], 3), _step([2], 3)],
            "ValueError",
        ),
        _invalid("step 0", ["NonIncreasingStep"], small, [_step([1], 0)], "ValueError"),
        _invalid(
            "learning_rate 0",
            ["InvalidLearningRate"],
            small,
            [_step([1], 1, learning_rate=0.0)],
            "ValueError",
        ),
        _invalid(
            "learning_rate 1.5",
            ["InvalidLearningRate"],
            small,
            [_step([1], 1, learning_rate=1.5)],
            "ValueError",
        ),
        _invalid(
            "float ids",
            ["InvalidDtype"],
            small,
            [{"inputs": {"ids": np.asarray([1.0, 2.0])}, "params": {"step": 1}}],
            "TypeError",
        ),
        _invalid(
            "2-D ids",
            ["InvalidShape"],
            small,
            [{"inputs": {"ids": i64([[1, 2]])}, "params": {"step": 1}}],
            "ValueError",
        ),
        _invalid(
            "min_probability 0",
            ["InvalidMinProbability"],
            small,
            [_step([1], 1, min_probability=0.0)],
            "ValueError",
        ),
    ]
    return out
