"""Hand-made fixture documents for the tests of ``refloss.testing`` and the ``refloss``
command, and a run of that command in a fresh process.

The documents are small log-sum-exp fixture files whose expected results are known
exactly (``LOG2`` is log 2 in float64), so the tests can count cases precisely.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "refloss_fixture_v1.schema.json"
LOG2 = 0.6931471805599453

NOTES = {
    "Basic": {"kind": "BASIC", "description": "a plain case"},
    "NegInf": {"kind": "EDGE_CASE", "description": "-inf entries"},
    "SignedZero": {"kind": "EDGE_CASE", "description": "the sign of zero matters"},
}


def tensor(dtype, shape, data):
    return {"dtype": dtype, "shape": shape, "data": data}


def document(
    tests,
    *,
    function="refloss.logsumexp",
    kind="function",
    params=None,
    outputs=("output",),
    positional=("x",),
    header="hand-made fixture for the tests of refloss.testing",
    notes=None,
):
    """A fixture document with one test group holding ``tests`` (notes default: ``NOTES``)."""
    return {
        "schema": SCHEMA,
        "function": function,
        "kind": kind,
        "arguments": {"positional": list(positional), "outputs": list(outputs)},
        "numberOfTests": len(tests),
        "header": [header],
        "comparison": "isclose_v1",
        "notes": {
            name: dict(note) for name, note in (notes if notes is not None else NOTES).items()
        },
        "testGroups": [
            {
                "source": {"name": "refloss", "version": "0.1.0"},
                "oracle": {"method": "closed-form"},
                "params": params if params is not None else {"axis": -1},
                "tolerance": {
                    "float64": {"rtol": 1e-12, "atol": 0.0},
                    "float32": {"rtol": 2e-6, "atol": 0.0},
                },
                "tests": tests,
            }
        ],
    }


TOY_TESTS = [
    {
        "tcId": 1,
        "comment": "two zeros: log 2",
        "flags": ["Basic"],
        "inputs": {"x": tensor("float64", [2], [0.0, 0.0])},
        "dtypes": ["float64", "float32"],
        "expected": {"output": tensor("float64", [], [LOG2])},
        "result": "valid",
        "provenance": {"inputs": "hand-written", "expected": {"closed_form": "log(2)"}},
    },
    {
        "tcId": 2,
        "comment": "a row of -inf and a row with one finite entry",
        "flags": ["NegInf"],
        "inputs": {"x": tensor("float64", [2, 2], ["-Infinity", "-Infinity", 1.0, "-Infinity"])},
        "dtypes": ["float64"],
        "expected": {"output": tensor("float64", [2], ["-Infinity", 1.0])},
        "result": "valid",
        "provenance": {"inputs": "hand-written", "expected": "oracle"},
    },
    {
        "tcId": 3,
        "comment": "axis out of range",
        "flags": [],
        "params": {"axis": 5},
        "inputs": {"x": tensor("float64", [2], [0.0, 0.0])},
        "dtypes": ["float64"],
        "result": "invalid",
        "error": "ValueError",
        "provenance": {"inputs": "hand-written"},
    },
    {
        "tcId": 4,
        "comment": "looser tolerance for this case",
        "flags": ["Basic"],
        "inputs": {"x": tensor("float64", [1], [0.5])},
        "dtypes": ["float64"],
        "expected": {"output": tensor("float64", [], [0.5])},
        "result": "valid",
        "tolerance": {"float64": {"rtol": 0.25, "atol": 0.0}},
        "provenance": {},
    },
]


def run_python(*args, cwd=REPO, pythonpath: Iterable[Path] = (REPO,)):
    """``python ARGS`` in a fresh process, with ``PYTHONPATH`` set to ``pythonpath``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, pythonpath))),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_refloss(*argv, cwd=REPO, pythonpath: Iterable[Path] = (REPO,)):
    """``python -m refloss ARGV`` in a fresh process, with ``PYTHONPATH`` set to ``pythonpath``."""
    return run_python("-m", "refloss", *argv, cwd=cwd, pythonpath=pythonpath)
