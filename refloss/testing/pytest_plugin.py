"""Opt-in pytest plugin: a ``refloss_xp`` fixture over installed backends, fixture-case params.

Enable it in a ``conftest.py`` (it is not auto-loaded)::

    pytest_plugins = ["refloss.testing.pytest_plugin"]

It provides (every name starts with ``refloss_``, so none clashes with a project's own
``xp`` or ``device`` fixture)

- ``refloss_xp``: a standard-compatible namespace, parametrized over ``numpy``,
  ``array_api_strict``, ``torch`` and ``jax``; a backend that is not installed is skipped.
  PyTorch runs on the CPU. JAX runs with ``jax_enable_x64`` switched on for the duration
  of each test that uses it, and set back to its previous value afterwards, so the other
  tests of the session see JAX as they configured it.
- ``refloss_device``: the device inputs should be placed on for the current
  ``refloss_xp`` (or None).
- ``refloss_dtype``: ``"float64"`` then ``"float32"``.
- ``refloss_case``: one fixture case; a test asks for it with the marker
  ``@pytest.mark.refloss_fixture("retrieval_loss")`` and is parametrized over every case of
  that file, with ids ``tc<tcId>``. :func:`fixture_params` gives the same parameters for an
  explicit ``@pytest.mark.parametrize``.

Examples
--------
A test module that checks an implementation against one fixture file on every backend
and dtype::

    import pytest
    import refloss
    from refloss.testing import check_against_fixture

    @pytest.mark.refloss_fixture("retrieval_loss")
    def test_retrieval(refloss_case, refloss_xp, refloss_device, refloss_dtype):
        check_against_fixture(refloss.retrieval_loss, refloss_case, xp=refloss_xp,
                              dtype=refloss_dtype, device=refloss_device)

Cases that do not run in a dtype raise :class:`refloss.testing.CaseSkipped`, a
``unittest.SkipTest``, so pytest reports them as skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from ._backends import BACKENDS, Backend, backend_scope
from ._fixtures import fixture_cases

__all__ = ["fixture_params"]

_MARKER = "refloss_fixture"


def fixture_params(name: str, directory: Any = None) -> list[Any]:
    """Return ``pytest.param`` objects, one per case of a fixture file, with ids ``tc<tcId>``.

    Parameters
    ----------
    name : str
        Fixture name, e.g. ``"retrieval_loss"``.
    directory : str or path-like, optional
        Fixture directory instead of refloss's own.

    Returns
    -------
    list
        For ``@pytest.mark.parametrize("refloss_case", fixture_params("logsumexp"))``.
    """
    return [pytest.param(case, id=f"tc{case.tc_id}") for case in fixture_cases(name, directory)]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``refloss_fixture`` marker."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(name, directory=None): parametrize the refloss_case fixture over the "
        "cases of a refloss conformance fixture file",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``refloss_case`` for tests marked ``refloss_fixture``."""
    marker = metafunc.definition.get_closest_marker(_MARKER)
    if marker is None or "refloss_case" not in metafunc.fixturenames:
        return
    params = fixture_params(*marker.args, **marker.kwargs)
    metafunc.parametrize("refloss_case", params)


@pytest.fixture(params=list(BACKENDS))
def _refloss_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with contextlib.ExitStack() as stack:
        try:
            backend = stack.enter_context(backend_scope(request.param))
        except ImportError as exc:
            pytest.skip(f"{request.param} is not installed: {exc}")
        yield backend  # JAX's x64 flag is restored when the stack unwinds


@pytest.fixture
def refloss_xp(_refloss_backend: Backend) -> Any:
    """Standard-compatible array namespace, one per installed backend."""
    return _refloss_backend.xp


@pytest.fixture
def refloss_device(_refloss_backend: Backend) -> Any:
    """Device for inputs on the current backend (None: the library default)."""
    return _refloss_backend.device


@pytest.fixture(params=["float64", "float32"])
def refloss_dtype(request: pytest.FixtureRequest) -> str:
    """Float dtype name a fixture case runs in."""
    return request.param


@pytest.fixture
def refloss_case(request: pytest.FixtureRequest) -> Any:
    """One conformance case; parametrize with the ``refloss_fixture`` marker."""
    if not hasattr(request, "param"):
        msg = (
            "refloss_case needs parameters: mark the test with "
            '@pytest.mark.refloss_fixture("<name>") or parametrize it with fixture_params()'
        )
        raise pytest.UsageError(msg)
    return request.param
