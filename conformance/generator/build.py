"""Assemble the fixture documents from the case lists, the oracle and the tolerances."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from functools import partial

import mpmath
import numpy as np

from refloss._registry import FAMILIES

from . import crosscheck, evaluate, families, oracle
from .encoding import dumps, encode_tensor
from .model import Case, SequenceCase
from .notes import notes_for

SCHEMA_NAME = "refloss_fixture_v1.schema.json"
SOURCE_NAME = "refloss"
# Tolerances: rtol per dtype, and atol = ATOL_SCALE[dtype] * max(max|expected|, work),
# where work is the magnitude of the logits times the rows a reduction sums (times the
# embedding scale over tau for gradients).  See conformance/README.md.
RTOL = {"float64": 1e-12, "float32": 1e-5}
ATOL_SCALE = {"float64": 1e-13, "float32": 2e-6}
# Cases with this flag are compared in float64 with rtol alone (atol 0).
TAIL_FLAG = "DominantTarget"
GRADIENT_HEADER = (
    "Expected gradients come from the analytic formula of the mpmath oracle, evaluated at "
    f"{oracle.DPS} and {oracle.CHECK_DPS} digits, and are checked against central "
    f"differences of the oracle loss at {crosscheck.FD_DPS} digits."
)


@dataclass(frozen=True)
class FileSpec:
    """One fixture file: its function, argument names, cases and evaluator."""

    filename: str
    function: str
    positional: tuple[str, ...]
    outputs: tuple[str, ...]
    header: tuple[str, ...]
    cases: Callable[[], list[Case | None]]
    evaluate: Callable[[int, Case], evaluate.Outcome]
    kind: str = "function"


def file_specs() -> tuple[FileSpec, ...]:
    """The fixture files, in registry order: ``<name>_test.json`` for every family, then
    ``value_and_grad_<name>_test.json`` right after it when ``gradient_fixture`` is set.

    Names, arguments, outputs and headers come from ``refloss._registry.FAMILIES``; the
    cases and the oracle from :data:`.families.ORACLES`.
    """
    problems = families.coverage_problems()
    if problems:
        raise ValueError("families and oracles disagree:\n" + "\n".join(problems))
    specs = []
    for family in FAMILIES:
        entry = families.ORACLES[family.name]
        if family.kind == "sequence":
            specs.append(
                FileSpec(
                    f"{family.name}_test.json",
                    family.qualified_name,
                    family.positional,
                    family.outputs,
                    family.header,
                    entry.cases,
                    partial(evaluate.sequence_values, family, entry),
                    kind="sequence",
                )
            )
            continue
        specs.append(
            FileSpec(
                f"{family.name}_test.json",
                family.qualified_name,
                family.positional,
                family.outputs,
                family.header,
                entry.cases,
                partial(evaluate.values, family, entry),
            )
        )
        if family.gradient_fixture:
            specs.append(
                FileSpec(
                    f"value_and_grad_{family.name}_test.json",
                    f"refloss.value_and_grad({family.qualified_name})",
                    family.positional,
                    family.gradient_outputs,
                    (*family.header, GRADIENT_HEADER),
                    entry.gradient_cases,
                    partial(evaluate.gradients, family, entry),
                )
            )
    return tuple(specs)


FILES = file_specs()


def nice_up(x: float) -> float:
    """Round a positive number up to one significant digit (2.3e-5 -> 3e-5)."""
    d = Decimal(repr(float(x)))
    exponent = d.adjusted()
    lead = (d.scaleb(-exponent)).to_integral_value(rounding=ROUND_CEILING)
    return float(lead.scaleb(exponent))


def _tolerance(atol: dict[str, float], dtypes) -> dict:
    return {dt: {"atol": atol[dt], "rtol": RTOL[dt]} for dt in dtypes}


def _magnitude(expected: dict[str, np.ndarray]) -> float:
    finite = [np.abs(a[np.isfinite(a)]) for a in expected.values()]
    return max([1.0] + [float(f.max()) for f in finite if f.size])


def _needed_atol(outcome: evaluate.Outcome) -> dict[str, float]:
    scale = float(max(_magnitude(outcome.expected), outcome.work))
    return {dt: nice_up(ATOL_SCALE[dt] * scale) for dt in ATOL_SCALE}


def _encode_inputs(case: Case) -> dict:
    out = {}
    for name, arr in case.inputs.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            if not case.float64_only:
                finite = arr[~np.isnan(arr)]
                if not np.array_equal(finite.astype(np.float32).astype(np.float64), finite):
                    raise ValueError(f"{case.comment!r}: {name} is not float32-exact")
            out[name] = encode_tensor(arr, "float64")
        else:
            out[name] = encode_tensor(arr)
    return out


def _split_params(cases: list[tuple[int, Case]]) -> dict:
    first = cases[0][1].params
    return {
        k: v for k, v in first.items() if all(k in c.params and c.params[k] == v for _, c in cases)
    }


def _group(spec: FileSpec, cases: list[tuple[int, Case]]) -> dict:
    common = _split_params(cases)
    sources = {c.source for _, c in cases}
    if len(sources) != 1:
        raise ValueError(f"{spec.filename}: group {cases[0][1].group!r} mixes sources {sources}")
    outcomes = {}
    for tc_id, case in cases:
        if case.result == "valid":
            outcomes[tc_id] = spec.evaluate(tc_id, case)
    needs = {tc: _needed_atol(o) for tc, o in outcomes.items()}
    atol = {}
    for dt in ATOL_SCALE:
        values = sorted(n[dt] for n in needs.values()) or [nice_up(ATOL_SCALE[dt])]
        atol[dt] = values[(len(values) - 1) // 2]
    dtypes = ("float64",) if all(c.float64_only for _, c in cases) else ("float64", "float32")
    tests = []
    for tc_id, case in cases:
        dts = ["float64"] if case.float64_only else ["float64", "float32"]
        test = {
            "comment": case.comment,
            "dtypes": dts,
            "flags": list(case.flags),
            "inputs": _encode_inputs(case),
            "result": case.result,
            "tcId": tc_id,
        }
        extra = {k: v for k, v in case.params.items() if k not in common}
        if extra:
            test["params"] = extra
        provenance = {"inputs": case.provenance}
        if case.result == "valid":
            outcome = outcomes[tc_id]
            test["expected"] = {k: encode_tensor(v, "float64") for k, v in outcome.expected.items()}
            provenance["expected"] = "oracle"
            if outcome.cross_checks:
                provenance["crossChecks"] = outcome.cross_checks
            over = [dt for dt in dts if needs[tc_id][dt] > atol[dt]]
            if TAIL_FLAG in case.flags:
                # values far below the logits: float64 must keep their relative precision
                test["tolerance"] = _tolerance({**needs[tc_id], "float64": 0.0}, dts)
            elif over:
                test["tolerance"] = _tolerance(needs[tc_id], dts)
        else:
            test["error"] = case.error
        test["provenance"] = provenance
        tests.append(test)
    return {
        "oracle": {
            "checkDps": oracle.CHECK_DPS,
            "dps": oracle.DPS,
            "method": "mpmath",
            "rounding": "nearest float64, ties to even",
            "version": mpmath.__version__,
        },
        "params": common,
        "source": {"name": SOURCE_NAME, "version": sources.pop()},
        "tests": tests,
        "tolerance": _tolerance(atol, dtypes),
    }


# Sequence files: exact oracles (integers and rationals), rounded once; float64 only.
SEQUENCE_TOLERANCE = {"float64": {"atol": 0.0, "rtol": 1e-12}}


def _encode_arrays(arrays: dict) -> dict:
    out = {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        out[name] = encode_tensor(arr, "float64") if arr.dtype.kind == "f" else encode_tensor(arr)
    return out


def _sequence_group(spec: FileSpec, cases: list[tuple[int, SequenceCase]]) -> dict:
    sources = {c.source for _, c in cases}
    if len(sources) != 1:
        raise ValueError(f"{spec.filename}: group {cases[0][1].group!r} mixes sources {sources}")
    tests = []
    for tc_id, case in cases:
        expected = spec.evaluate(tc_id, case) if case.result == "valid" else None
        steps = []
        for number, step in enumerate(case.steps):
            encoded = {"inputs": _encode_arrays(step["inputs"])}
            if step.get("params"):
                encoded["params"] = dict(step["params"])
            if expected is not None:
                encoded["expected"] = _encode_arrays(expected[number])
            steps.append(encoded)
        test = {
            "comment": case.comment,
            "dtypes": ["float64"],
            "flags": list(case.flags),
            "init": {"params": dict(case.init)},
            "provenance": {"inputs": case.provenance}
            | ({"expected": "oracle"} if expected is not None else {}),
            "result": case.result,
            "steps": steps,
            "tcId": tc_id,
        }
        if case.result != "valid":
            test["error"] = case.error
        tests.append(test)
    return {
        "oracle": {
            "dps": 53,
            "method": "exact: Python integers and fractions.Fraction",
            "rounding": "nearest float64, ties to even, once",
            "version": "conformance/generator/frequency_oracle.py",
        },
        "params": {},
        "source": {"name": SOURCE_NAME, "version": sources.pop()},
        "tests": tests,
        "tolerance": SEQUENCE_TOLERANCE,
    }


def build_document(spec: FileSpec) -> dict:
    """Build one fixture document (a JSON-ready dict)."""
    numbered = [(i + 1, c) for i, c in enumerate(spec.cases()) if c is not None]
    groups: dict[str, list[tuple[int, Case]]] = {}
    for tc_id, case in numbered:
        groups.setdefault(case.group, []).append((tc_id, case))
    flags = {f for _, c in numbered for f in c.flags}
    group = _sequence_group if spec.kind == "sequence" else _group
    return {
        "arguments": {"outputs": list(spec.outputs), "positional": list(spec.positional)},
        "comparison": "isclose_v1",
        "function": spec.function,
        "header": list(spec.header),
        "kind": spec.kind,
        "notes": notes_for(flags),
        "numberOfTests": len(numbered),
        "schema": SCHEMA_NAME,
        "testGroups": [group(spec, g) for g in groups.values()],
    }


def build_all() -> dict[str, str]:
    """Return ``{filename: canonical text}`` for every fixture file."""
    return {spec.filename: dumps(build_document(spec)) for spec in FILES}


def case_counts(texts: dict[str, str]) -> list[tuple[str, str, int, int, int]]:
    """Rows (file, function, valid, invalid, total) for the README table."""
    rows = []
    for spec in FILES:
        doc = json.loads(texts[spec.filename])
        results = [t["result"] for g in doc["testGroups"] for t in g["tests"]]
        valid = sum(r != "invalid" for r in results)
        rows.append((spec.filename, spec.function, valid, len(results) - valid, len(results)))
    return rows
