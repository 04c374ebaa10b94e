"""Assemble the fixture documents from the case lists, the oracle and the tolerances."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

import mpmath
import numpy as np

from . import cases_retrieval, cases_softmax, cases_steps, evaluate
from .encoding import dumps, encode_tensor
from .model import Case
from .notes import notes_for

SCHEMA_NAME = "refloss_fixture_v1.schema.json"
SOURCE = {"name": "refloss", "version": "0.1.0"}
ORACLE_DPS = 50
# Tolerances: rtol per dtype, and atol = ATOL_SCALE[dtype] * max(max|expected|, work),
# where work is the magnitude of the logits times the rows a reduction sums (times the
# embedding scale over tau for gradients).  See conformance/README.md.
RTOL = {"float64": 1e-12, "float32": 1e-5}
ATOL_SCALE = {"float64": 1e-13, "float32": 2e-6}


@dataclass(frozen=True)
class FileSpec:
    """One fixture file: its function, argument names and case list."""

    filename: str
    function: str
    positional: tuple[str, ...]
    outputs: tuple[str, ...]
    header: tuple[str, ...]
    cases: Callable[[], list[Case | None]]
    evaluate: Callable[[Case, dict], evaluate.Outcome]


_STEP_HEADER = "Masked logits are exactly -inf. The output has the shape of the logits."

FILES = (
    FileSpec(
        "retrieval_loss_test.json",
        "refloss.retrieval_loss",
        ("query_embeddings", "candidate_embeddings"),
        ("loss",),
        (
            "In-batch softmax retrieval loss with extra negatives, temperature, logQ "
            "correction, accidental-hit removal, score mask and hard-negative mining.",
            "Row i's positive is column i; columns B..N-1 are shared extra negatives.",
            "Inputs not listed in arguments.positional are keyword arguments.",
        ),
        cases_retrieval.retrieval_loss_cases,
        evaluate.retrieval,
    ),
    FileSpec(
        "value_and_grad_retrieval_loss_test.json",
        "refloss.value_and_grad(refloss.retrieval_loss)",
        ("query_embeddings", "candidate_embeddings"),
        ("loss", "grad_query_embeddings", "grad_candidate_embeddings"),
        (
            "Loss and gradients of refloss.retrieval_loss with respect to both embeddings.",
            "Expected gradients come from the analytic formula evaluated at 50 digits and are "
            "cross-checked against an independent float64 autograd formulation.",
        ),
        cases_retrieval.value_and_grad_cases,
        evaluate.value_and_grad,
    ),
    FileSpec(
        "logq_correction_test.json",
        "refloss.logq_correction",
        ("logits", "candidate_sampling_probability"),
        ("output",),
        ("logits - log(clip(p, min_probability, 1)) for every column.", _STEP_HEADER),
        cases_steps.logq_correction_cases,
        evaluate.logq_correction,
    ),
    FileSpec(
        "remove_accidental_hits_test.json",
        "refloss.remove_accidental_hits",
        ("logits", "candidate_ids"),
        ("output",),
        (
            "logits[i, j] = -inf for every j != i with candidate_ids[j] == candidate_ids[i].",
            _STEP_HEADER,
        ),
        cases_steps.remove_accidental_hits_cases,
        evaluate.remove_accidental_hits,
    ),
    FileSpec(
        "apply_score_mask_test.json",
        "refloss.apply_score_mask",
        ("logits", "score_mask"),
        ("output",),
        ("logits where score_mask is True, -inf where it is False.", _STEP_HEADER),
        cases_steps.apply_score_mask_cases,
        evaluate.apply_score_mask,
    ),
    FileSpec(
        "mine_hard_negatives_test.json",
        "refloss.mine_hard_negatives",
        ("logits",),
        ("output",),
        (
            "Per row i keep column i and the num_hard_negatives largest other columns "
            "(ties to the lower index); every other entry becomes -inf.",
            _STEP_HEADER,
        ),
        cases_steps.mine_hard_negatives_cases,
        evaluate.mine_hard_negatives,
    ),
    FileSpec(
        "softmax_cross_entropy_test.json",
        "refloss.softmax_cross_entropy",
        ("logits",),
        ("output",),
        (
            "Softmax cross-entropy with the positive of row i in column i; rows with "
            "positive_mask False have loss 0; weighted, then reduced.",
        ),
        cases_softmax.softmax_cross_entropy_cases,
        evaluate.softmax_cross_entropy,
    ),
    FileSpec(
        "logsumexp_test.json",
        "refloss.logsumexp",
        ("x",),
        ("output",),
        ("log(sum(exp(x))) along axis (default -1); a slice of -inf gives -inf.",),
        cases_softmax.logsumexp_cases,
        evaluate.logsumexp,
    ),
)


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
    outcomes = {}
    for tc_id, case in cases:
        if case.result == "valid":
            outcomes[tc_id] = spec.evaluate(case, case.params)
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
            if over:
                test["tolerance"] = _tolerance(needs[tc_id], dts)
        else:
            test["error"] = case.error
        test["provenance"] = provenance
        tests.append(test)
    return {
        "oracle": {
            "dps": ORACLE_DPS,
            "method": "mpmath",
            "rounding": "nearest float64, ties to even",
            "version": mpmath.__version__,
        },
        "params": common,
        "source": dict(SOURCE),
        "tests": tests,
        "tolerance": _tolerance(atol, dtypes),
    }


def build_document(spec: FileSpec) -> dict:
    """Build one fixture document (a JSON-ready dict)."""
    numbered = [(i + 1, c) for i, c in enumerate(spec.cases()) if c is not None]
    groups: dict[str, list[tuple[int, Case]]] = {}
    for tc_id, case in numbered:
        groups.setdefault(case.group, []).append((tc_id, case))
    flags = {f for _, c in numbered for f in c.flags}
    return {
        "arguments": {"outputs": list(spec.outputs), "positional": list(spec.positional)},
        "comparison": "isclose_v1",
        "function": spec.function,
        "header": list(spec.header),
        "kind": "function",
        "notes": notes_for(flags),
        "numberOfTests": len(numbered),
        "schema": SCHEMA_NAME,
        "testGroups": [_group(spec, g) for g in groups.values()],
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
