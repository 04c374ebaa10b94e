"""The array libraries that fixtures run on, found by import, set up for float64."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["BACKENDS", "Backend", "available_backends", "backend_scope", "load_backend"]

#: Backend names in reporting order, and the module each one needs.
BACKENDS: dict[str, str] = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "torch": "torch",
    "jax": "jax",
}


class Backend(NamedTuple):
    """An array namespace and the device fixture inputs are placed on."""

    name: str
    xp: Any
    device: Any


def available_backends() -> list[str]:
    """Return the names of the backends whose library is installed (nothing is imported).

    Returns
    -------
    list of str
        A sub-list of ``["numpy", "array_api_strict", "torch", "jax"]``.
    """
    return [name for name, module in BACKENDS.items() if importlib.util.find_spec(module)]


def load_backend(name: str) -> Backend:
    """Import one backend and return its standard-compatible namespace and CPU device.

    JAX gets ``jax_enable_x64`` switched on so that float64 and int64 inputs keep their
    dtype. The switch is process-wide and stays on: that suits the ``refloss verify``
    command, which runs in its own process; inside a longer-lived process (a test session)
    use :func:`backend_scope`, which restores the previous value. PyTorch is pinned to the
    CPU.

    Parameters
    ----------
    name : str
        One of :data:`BACKENDS`.

    Returns
    -------
    Backend
        ``(name, xp, device)``; ``device`` is None where the library's default is used.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        When the library is not installed.
    """
    if name not in BACKENDS:
        msg = f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}"
        raise ValueError(msg)
    if name == "numpy":
        import array_api_compat.numpy as xp

        return Backend(name, xp, None)
    if name == "array_api_strict":
        return Backend(name, importlib.import_module("array_api_strict"), None)
    if name == "torch":
        torch = importlib.import_module("torch")
        import array_api_compat.torch as xp

        return Backend(name, xp, torch.device("cpu"))
    jax = importlib.import_module("jax")
    jax.config.update("jax_enable_x64", True)
    return Backend(name, importlib.import_module("jax.numpy"), None)


@contextlib.contextmanager
def backend_scope(name: str) -> Iterator[Backend]:
    """Load one backend like :func:`load_backend`, and undo its global settings on exit.

    For JAX, ``jax_enable_x64`` is switched on inside the ``with`` block and set back to
    its previous value afterwards, so code that runs outside the block (a user's own tests,
    say) sees JAX as it was configured. Other backends change no global setting.

    Parameters
    ----------
    name : str
        One of :data:`BACKENDS`.

    Yields
    ------
    Backend
        ``(name, xp, device)`` as :func:`load_backend` returns it.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        When the library is not installed.
    """
    if name != "jax":
        yield load_backend(name)
        return
    jax = importlib.import_module("jax")
    previous = bool(jax.config.read("jax_enable_x64"))
    try:
        yield load_backend(name)
    finally:
        jax.config.update("jax_enable_x64", previous)
