"""The conformance fixture data: regeneration, schema, a non-Python consumer, size."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "conformance"
MAX_BYTES = 2 * 1024 * 1024


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_generator_check_passes():
    result = _run(sys.executable, "-m", "conformance.generator", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "conformance check passed" in result.stdout


def test_node_consumer_passes():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = _run(node, str(CONFORMANCE / "consumers" / "check_retrieval_loss.mjs"))
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"\d+ passed, 0 failed", lines[-1]), lines[-1]
    doc = json.loads((CONFORMANCE / "retrieval_loss_test.json").read_text(encoding="utf-8"))
    assert int(lines[-1].split()[0]) == doc["numberOfTests"]


def test_total_size_under_2_mb():
    files = [p for p in CONFORMANCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total < MAX_BYTES, f"conformance/ holds {total} bytes"


def _schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (CONFORMANCE / "schema" / "refloss_fixture_v1.schema.json").read_text(encoding="utf-8")
    )
    return jsonschema.Draft202012Validator(schema)


def _sequence_document(test: dict) -> dict:
    return {
        "schema": "refloss_fixture_v1.schema.json",
        "function": "refloss.frequency",
        "kind": "sequence",
        "arguments": {"positional": ["ids"], "outputs": ["probability"]},
        "numberOfTests": 1,
        "header": [],
        "comparison": "isclose_v1",
        "notes": {"Basic": {"kind": "BASIC", "description": "d"}},
        "testGroups": [
            {
                "source": {"name": "refloss", "version": "0.1.0"},
                "oracle": {"method": "mpmath", "version": "1.3.0", "dps": 50, "rounding": "n"},
                "params": {"num_buckets": 8},
                "tolerance": {"float64": {"rtol": 1e-12, "atol": 0.0}},
                "tests": [test],
            }
        ],
    }


def test_schema_defines_sequence_tests():
    validator = _schema()
    step = {
        "inputs": {"ids": {"dtype": "int64", "shape": [2], "data": [3, 5]}},
        "expected": {
            "probability": {
                "dtype": "float64",
                "shape": [],
                "data": [0.5],
                "bits": "3fe0000000000000",
            }
        },
    }
    test = {
        "tcId": 1,
        "comment": "c",
        "flags": ["Basic"],
        "init": {"params": {"alpha": 0.5}},
        "steps": [step],
        "result": "valid",
        "provenance": {"inputs": "hand-written"},
    }
    assert list(validator.iter_errors(_sequence_document(test))) == []
    function_style = {**test, "inputs": {}}
    del function_style["steps"]
    assert list(validator.iter_errors(_sequence_document(function_style)))


def test_schema_rejects_malformed_tensors():
    validator = _schema()
    doc = json.loads((CONFORMANCE / "logsumexp_test.json").read_text(encoding="utf-8"))
    tensor = doc["testGroups"][0]["tests"][0]["inputs"]["x"]
    for bad in (
        {**tensor, "bits": tensor["bits"][:-1]},
        {k: v for k, v in tensor.items() if k != "bits"},
        {**tensor, "extra": 1},
        {"dtype": "int64", "shape": [1], "data": [2**53]},
    ):
        doc["testGroups"][0]["tests"][0]["inputs"]["x"] = bad
        assert list(validator.iter_errors(doc)), bad
