"""Structural checks of fixture files beyond byte-identical regeneration.

Each check returns a list of human-readable problems (empty when the file is sound).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np

from .encoding import FLOAT_DTYPES, floats_from_bits, json_to_float

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "refloss_fixture_v1.schema.json"


def load_schema() -> dict:
    """Return the parsed JSON Schema of format v1."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_problems(doc: dict, schema: dict) -> list[str]:
    """Validate ``doc`` against the JSON Schema."""
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]


def _same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def tensor_problems(where: str, tensor: dict) -> list[str]:
    """Check shape/element count and, for floats, that ``bits`` and ``data`` agree."""
    problems = []
    count = math.prod(tensor["shape"])
    if count != len(tensor["data"]):
        problems.append(
            f"{where}: shape {tensor['shape']} holds {count} elements, "
            f"data has {len(tensor['data'])}"
        )
    if tensor["dtype"] in FLOAT_DTYPES:
        try:
            from_bits = floats_from_bits(tensor["bits"], tensor["dtype"])
        except ValueError as exc:
            return [*problems, f"{where}: {exc}"]
        from_data = [json_to_float(v) for v in tensor["data"]]
        if len(from_bits) != len(from_data) or not all(
            _same_float(a, b) for a, b in zip(from_bits, from_data, strict=True)
        ):
            problems.append(f"{where}: bits and data disagree")
    return problems


def _tensors(test: dict):
    for section in ("inputs", "expected"):
        for name, tensor in test.get(section, {}).items():
            yield section, name, tensor
    for k, step in enumerate(test.get("steps", [])):
        for section in ("inputs", "expected"):
            for name, tensor in step.get(section, {}).items():
                yield f"steps/{k}/{section}", name, tensor
    for name, tensor in test.get("init", {}).get("state", {}).items():
        yield "init/state", name, tensor


def document_problems(doc: dict, schema: dict) -> list[str]:
    """All problems of one parsed fixture document."""
    problems = schema_problems(doc, schema)
    if problems:
        return problems
    tests = [(g, t) for g in doc["testGroups"] for t in g["tests"]]
    if doc["numberOfTests"] != len(tests):
        problems.append(f"numberOfTests is {doc['numberOfTests']}, found {len(tests)} tests")
    ids = [t["tcId"] for _, t in tests]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"duplicate tcIds {dupes}")
    used = {f for _, t in tests for f in t["flags"]}
    if used - doc["notes"].keys():
        problems.append(f"flags without a note: {sorted(used - doc['notes'].keys())}")
    if doc["notes"].keys() - used:
        problems.append(f"notes never used: {sorted(doc['notes'].keys() - used)}")
    outputs = set(doc["arguments"]["outputs"])
    for group, test in tests:
        where = f"tcId {test['tcId']}"
        for section, name, tensor in _tensors(test):
            problems += tensor_problems(f"{where} {section}/{name}", tensor)
        if doc["kind"] == "function":
            problems += _function_test_problems(where, doc, group, test, outputs)
    return problems


def _function_test_problems(where, doc, group, test, outputs) -> list[str]:
    problems = []
    missing = [n for n in doc["arguments"]["positional"] if n not in test["inputs"]]
    if missing and test["result"] != "invalid":
        problems.append(f"{where}: positional inputs missing: {missing}")
    if "float32" in test["dtypes"]:
        for name, tensor in test["inputs"].items():
            if tensor["dtype"] == "float64":
                arr = np.array(floats_from_bits(tensor["bits"], "float64"))
                arr = arr[~np.isnan(arr)]
                if not np.array_equal(arr.astype(np.float32).astype(np.float64), arr):
                    problems.append(
                        f"{where}: input {name} is not float32-exact but the test runs in float32"
                    )
    if test["result"] != "invalid":
        if set(test["expected"]) != outputs:
            problems.append(
                f"{where}: expected outputs {sorted(test['expected'])} != {sorted(outputs)}"
            )
        for dt in test["dtypes"]:
            if dt not in test.get("tolerance", {}) and dt not in group["tolerance"]:
                problems.append(f"{where}: no {dt} tolerance")
    return problems
