"""``refloss verify --impl`` against an independent PyTorch retrieval loss and wrong variants.

``tests/impls/torch_retrieval.py`` implements the loss from the pinned formulas without
refloss. The correct version must pass the ``retrieval_loss`` fixtures; each deliberately
wrong variant must fail, and exactly on cases whose inputs can expose its mistake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refloss.testing import Case, fixture_cases, fixture_names

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent
IMPL = "tests.impls.torch_retrieval"
FIXTURE = "retrieval_loss"
VARIANTS = (
    "retrieval_loss",
    "logq_scaled_by_temperature",
    "finite_hit_mask",
    "top_k_can_drop_positive",
    "mean_instead_of_sum",
)

pytestmark = pytest.mark.skipif(
    FIXTURE not in fixture_names(), reason="conformance/retrieval_loss_test.json is missing"
)


def verify_command(function: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "refloss", "verify", "--impl", f"{IMPL}:{function}",
        "--fixture", FIXTURE, "--backend", "torch", *extra,
    ]  # fmt: skip


def start(function: str, *extra: str) -> subprocess.Popen[str]:
    # the repository root makes ``tests.impls`` importable in the child process
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.Popen(
        verify_command(function, *extra),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[int, dict]]:
    """Run every variant once (concurrently): name -> (exit status, JSON report)."""
    procs = {name: start(name, "--json") for name in VARIANTS}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert stdout, stderr
        out[name] = (proc.returncode, json.loads(stdout))
    return out


@pytest.fixture(scope="module")
def cases() -> dict[int, Case]:
    return {case.tc_id: case for case in fixture_cases(FIXTURE)}


def failing(report: dict, dtype: str | None = None) -> set[int]:
    return {f["tcId"] for f in report["failures"] if dtype is None or f["dtype"] == dtype}


def temperature(case: Case) -> float:
    value = case.params.get("temperature")
    return 1.0 if value is None else float(value)


def has_accidental_hit(case: Case) -> bool:
    ids = case.inputs.get("candidate_ids")
    if ids is None:
        return False
    batch = case.inputs["query_embeddings"].shape[0]
    return any(np.any(np.delete(ids, i) == ids[i]) for i in range(batch))


def test_independent_implementation_passes(runs, cases):
    status, report = runs["retrieval_loss"]
    assert status == 0, report["failures"][:3]
    assert report["ok"] is True
    (f64,) = [row for row in report["summary"] if row["dtype"] == "float64"]
    assert f64["passed"] == len(cases)  # valid and invalid cases alike
    assert f64["failed"] == 0


def test_logq_divided_by_temperature_fails(runs, cases):
    status, report = runs["logq_scaled_by_temperature"]
    assert status == 1
    bad = failing(report)
    assert bad
    for tc in bad:
        case = cases[tc]
        assert temperature(case) != 1.0, tc
        assert "candidate_sampling_probability" in case.inputs, tc
    pinned = {tc for tc, c in cases.items() if c.has_flag("LogQNotScaledByTemperature")}
    assert pinned
    assert pinned <= failing(report, "float64")


def test_finite_hit_mask_fails(runs, cases):
    status, report = runs["finite_hit_mask"]
    assert status == 1
    bad = failing(report)
    assert bad
    for tc in bad:
        assert has_accidental_hit(cases[tc]), tc
    assert any(cases[tc].has_flag("AllNegativesMasked") for tc in bad)


def test_top_k_that_drops_the_positive_fails(runs, cases):
    status, report = runs["top_k_can_drop_positive"]
    assert status == 1
    bad = failing(report)
    assert bad
    for tc in bad:
        k = cases[tc].params.get("num_hard_negatives")
        n = cases[tc].inputs["candidate_embeddings"].shape[0]
        assert k is not None, tc
        assert k < n - 1, tc  # k >= N-1 keeps every column either way
    pinned = {tc for tc, c in cases.items() if c.has_flag("HardNegativePositiveKept")}
    assert pinned
    assert pinned <= failing(report, "float64")


def test_mean_instead_of_sum_fails(runs, cases):
    status, report = runs["mean_instead_of_sum"]
    assert status == 1
    bad = failing(report)
    assert bad
    for tc in bad:
        case = cases[tc]
        assert case.params.get("reduction", "sum") == "sum", tc
        assert case.inputs["query_embeddings"].shape[0] > 1, tc
        assert case.result == "valid", tc


def test_text_output_names_failing_cases(runs, cases):
    _, report = runs["logq_scaled_by_temperature"]
    proc = start("logq_scaled_by_temperature", "--dtype", "float64")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr
    for tc in failing(report, "float64"):
        assert f"FAIL retrieval_loss tcId {tc} [torch float64]: {cases[tc].comment}" in stdout
    assert "expected: " in stdout
    assert "actual: " in stdout
    assert "FAILED: tests.impls.torch_retrieval:logq_scaled_by_temperature" in stdout
