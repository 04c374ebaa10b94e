"""Test configuration: hypothesis profiles and the backend / dtype fixtures.

Backends: ``numpy``, ``numpy_readonly`` (every input array is made read-only, so any
in-place write to an input raises), ``array_api_strict`` (no boolean indexing, no
data-dependent shapes), ``torch`` (CPU), ``jax`` (x64 enabled) and ``jax32`` (x64 disabled:
float32 only). A missing backend library skips its tests.

A test that takes ``xp`` or ``backend`` runs once per backend. A test that also takes
``dtype`` runs once per pair of ``_helpers.default_pairs()``: ``jax32`` never gets
``float64`` (the pair is not generated, rather than skipped), and float32 on JAX is run by
``jax32`` (``test_backends.py`` adds float32 inputs under x64 explicitly, through
``_helpers.all_pairs()``). A test may parametrize ``backend_name`` (and ``dtype``) itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from _helpers import BACKEND_MODULES, BACKENDS, DTYPES, backend_context, default_pairs

settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


def _explicit(metafunc: pytest.Metafunc) -> set[str]:
    """Argument names a test already parametrizes itself."""
    names: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0]
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",")]
        names.update(argnames)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    explicit = _explicit(metafunc)
    if "backend_name" in explicit:
        return
    wants_backend = "xp" in names or "backend" in names
    if not wants_backend:
        if "dtype" in names and "dtype" not in explicit:
            metafunc.parametrize("dtype", DTYPES)
        return
    if "dtype" in names:
        pairs = default_pairs()
        metafunc.parametrize(("backend_name", "dtype"), pairs, ids=[f"{b}-{d}" for b, d in pairs])
    else:
        metafunc.parametrize("backend_name", BACKENDS)


@pytest.fixture
def backend(backend_name: str):
    """The backend under test (see ``_helpers.Backend``); global flags restored after."""
    pytest.importorskip(BACKEND_MODULES[backend_name])
    with backend_context(backend_name) as b:
        yield b


@pytest.fixture
def xp(backend):
    """The array namespace of the backend under test."""
    return backend.xp
