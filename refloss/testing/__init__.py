"""Conformance fixtures and array assertions for refloss and for other implementations.

The fixture files in ``conformance/`` pin refloss's numbers as data. This module reads them
(:func:`fixture_names`, :func:`fixture_cases`), runs a case against any callable on any
array library (:func:`check_against_fixture`), and offers the assertions used for that
(:func:`assert_close`, :func:`assert_array_properties`), which check namespace, dtype,
shape and device before values.

Importing this module imports neither pytest nor any array library besides NumPy. The
pytest integration is the opt-in plugin ``refloss.testing.pytest_plugin``::

    pytest_plugins = ["refloss.testing.pytest_plugin"]

Examples
--------
Check an implementation against every case of one file, in float32 on PyTorch::

    import torch
    from refloss.testing import CaseSkipped, check_against_fixture, fixture_cases

    for case in fixture_cases("retrieval_loss"):
        try:
            check_against_fixture(my_loss, case, xp=torch, dtype="float32")
        except CaseSkipped:
            pass  # e.g. a float64-only case

The same loop over every file, backend and dtype is the ``refloss verify`` command.
"""

from ._backends import BACKENDS, Backend, available_backends, backend_scope, load_backend
from ._check import CaseSkipped, CheckReport, FixtureMismatch, check_against_fixture
from ._compare import assert_array_properties, assert_close, isclose_v1
from ._families import SequenceAdapter
from ._fixtures import Case, Tolerance, decode_tensor, encode_tensor, fixture_cases, fixture_names
from ._runner import CaseResult, run_verification

__all__ = [
    "BACKENDS",
    "Backend",
    "Case",
    "CaseResult",
    "CaseSkipped",
    "CheckReport",
    "FixtureMismatch",
    "SequenceAdapter",
    "Tolerance",
    "assert_array_properties",
    "assert_close",
    "available_backends",
    "backend_scope",
    "check_against_fixture",
    "decode_tensor",
    "encode_tensor",
    "fixture_cases",
    "fixture_names",
    "isclose_v1",
    "load_backend",
    "run_verification",
]
