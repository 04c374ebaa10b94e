"""The conformance fixture data: regeneration, schema, a non-Python consumer, size.

Also the generator's own guarantees: the file list follows ``refloss._registry``, values
that depend on the precision are refused, subnormals are rounded once, row losses keep
their relative precision in the tails, and the numerical gradient check bites.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
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


def _generator(module: str):
    """Import ``conformance.generator.<module>`` from the repository root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"conformance.generator.{module}")


def test_files_follow_the_registry():
    from refloss._registry import FAMILIES

    build = _generator("build")
    expected = []
    for family in FAMILIES:
        expected.append(
            (f"{family.name}_test.json", family.qualified_name, family.outputs, family.header)
        )
        if family.gradient_fixture:
            expected.append(
                (
                    f"value_and_grad_{family.name}_test.json",
                    f"refloss.value_and_grad({family.qualified_name})",
                    family.gradient_outputs,
                    (*family.header, build.GRADIENT_HEADER),
                )
            )
    assert [(f.filename, f.function, f.outputs, f.header) for f in build.FILES] == expected
    assert _generator("families").coverage_problems() == []
    on_disk = {p.name for p in CONFORMANCE.glob("*_test.json")}
    assert on_disk == {f.filename for f in build.FILES}
    for spec in build.FILES:
        doc = json.loads((CONFORMANCE / spec.filename).read_text(encoding="utf-8"))
        assert doc["function"] == spec.function
        assert doc["header"] == list(spec.header)
        assert doc["arguments"] == {
            "outputs": list(spec.outputs),
            "positional": list(spec.positional),
        }


def test_oracle_never_imports_refloss():
    generator = CONFORMANCE / "generator"
    for path in generator.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        refloss_names = {n for n in names if n.split(".")[0] == "refloss"}
        assert refloss_names <= {"refloss._registry"}, (path.name, refloss_names)
        if path.name == "oracle.py":
            assert {n.split(".")[0] for n in names} <= {"__future__", "math", "mpmath", ""}


def test_refuses_a_value_that_depends_on_the_precision():
    mpmath = pytest.importorskip("mpmath")
    evaluate = _generator("evaluate")

    def steady():
        return {"output": [mpmath.log(3), mpmath.mpf(0)]}

    values, _ = evaluate.at_two_precisions("tcId 7 ('steady')", steady)
    assert values["output"].tolist() == [math.log(3), 0.0]

    def drifting():  # 2**-prec: a different float64 at every precision
        return {"output": [mpmath.mpf(1), mpmath.mpf(2) ** -mpmath.mp.prec]}

    with pytest.raises(ValueError, match=r"tcId 7 \('drifting'\): output rounds differently"):
        evaluate.at_two_precisions("tcId 7 ('drifting')", drifting)


def test_to_float64_rounds_subnormals_once():
    mpmath = pytest.importorskip("mpmath")
    to_float64 = _generator("oracle").to_float64
    tiny = mpmath.mpf(2) ** -1074  # the smallest subnormal, 5e-324
    with mpmath.workdps(50):
        assert to_float64(tiny) == 5e-324
        assert to_float64(-3 * tiny) == -1.5e-323
        assert to_float64(tiny * mpmath.mpf(2.5)) == 1e-323  # tie to even: 2
        assert to_float64(tiny * mpmath.mpf(1.5)) == 1e-323  # tie to even: 2
        assert to_float64(tiny / 2) == 0.0  # tie to even: 0
        # 53-bit rounding first would make this a tie, then round it to 0 (twice rounded)
        assert to_float64(tiny * (mpmath.mpf(0.5) + mpmath.mpf(2) ** -60)) == 5e-324
        below_normal = mpmath.mpf(2) ** -1022 * (1 - mpmath.mpf(2) ** -60)
        assert to_float64(below_normal) == 2.2250738585072014e-308
        assert to_float64(mpmath.mpf(2) ** -1022 * 3) == 3 * 2.2250738585072014e-308
        assert to_float64(mpmath.mpf(2) ** 1024) == math.inf


def test_oracle_keeps_relative_precision_in_the_tails():
    mpmath = pytest.importorskip("mpmath")
    oracle = _generator("oracle")
    logits = [[700.0, 0.0, -1.0], [0.5, 0.25, 0.0]]
    with mpmath.workdps(50):
        _, rows = oracle.softmax_cross_entropy(logits, [0, 1], None, None, "none")
        _, grad = oracle.softmax_cross_entropy_grad(logits, [0, 1], None, None, "sum")
        _, weighted = oracle.softmax_cross_entropy(logits, [[1, 0, 0], [0, 0, 0]], None, None)
        exact = mpmath.log1p(mpmath.exp(-700) + mpmath.exp(-701))
        assert oracle.to_float64(rows[0]) == oracle.to_float64(exact)
        assert oracle.to_float64(weighted[0]) == oracle.to_float64(exact)
        assert weighted[1] == 0
        assert oracle.to_float64(grad[0][0]) == -oracle.to_float64(exact)
        expected = math.exp(-700) + math.exp(-701)
        assert math.isclose(oracle.to_float64(rows[0]), expected, rel_tol=1e-12)
    doc = json.loads((CONFORMANCE / "softmax_cross_entropy_test.json").read_text())
    (test,) = [t for g in doc["testGroups"] for t in g["tests"] if t["tcId"] == 9]
    assert test["expected"]["output"]["data"] == [1.1369078041628691e-268]


def test_numerical_gradient_check():
    mpmath = pytest.importorskip("mpmath")
    crosscheck = _generator("crosscheck")

    def loss(arguments):
        x = arguments["x"]
        squares = (mpmath.mpf(v) ** 2 for row in x for v in row if mpmath.isfinite(v))
        return mpmath.fsum(squares) + abs(mpmath.mpf(arguments["y"][0]))

    inputs = {"x": [[1.0, -2.0], [0.5, -math.inf]], "y": [0.0]}
    right = {"x": [[2, -4], [1, 0]]}
    assert crosscheck.check_gradients(loss, inputs, right, 1.0) == {"kinks": 0}
    assert crosscheck.check_gradients(loss, inputs, {**right, "y": [1]}, 1.0) == {"kinks": 1}
    wrong = {"x": [[2, -4], [1 + 2.0**-40, 0]]}
    with pytest.raises(AssertionError, match=r"x\[2\]"):
        crosscheck.check_gradients(loss, inputs, wrong, 1.0)


def test_gradient_files_record_the_numerical_check():
    for path in sorted(CONFORMANCE.glob("value_and_grad_*_test.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for group in doc["testGroups"]:
            assert group["oracle"]["dps"] == 50
            assert group["oracle"]["checkDps"] == 100
            for test in group["tests"]:
                if test["result"] == "invalid":
                    continue
                (check,) = test["provenance"]["crossChecks"]
                assert check["passed"] is True
                assert check["impl"] == "mpmath central differences of the oracle loss"
                # elements skipped at a kink only where hard-negative ties make one
                if "kinks" in check:
                    assert "HardNegativeTiesLowerIndex" in test["flags"], test["tcId"]
