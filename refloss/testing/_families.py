"""From a fixture's ``function`` field to something callable, and the sequence protocol.

A fixture file names the refloss function it pins, e.g. ``"refloss.retrieval_loss"`` or
``"refloss.value_and_grad(refloss.retrieval_loss)"``. Function-kind files resolve that
name directly. Sequence-kind files (state carried across steps) need a
:class:`SequenceAdapter`; refloss's own adapters are registered in
:data:`SEQUENCE_FAMILIES` by the ``function`` they pin, so a new stateful family slots in
with one entry there.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "SEQUENCE_FAMILIES",
    "FrequencyAdapter",
    "SequenceAdapter",
    "load_impl",
    "reference_callable",
    "resolve_function",
]

_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.+)\)\s*$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@runtime_checkable
class SequenceAdapter(Protocol):
    """What a sequence-kind fixture replays.

    ``init(xp=xp, **init_params, **init_state_arrays)`` returns the initial state from the
    case's ``init`` (its ``params`` options and its ``state`` tensors, moved to ``xp``);
    ``step(state, *positional_arrays, **keyword_arrays, **params)`` returns
    ``(new_state, outputs)`` where ``outputs`` follows the same conventions as a
    function-kind return value (one array, a tuple in ``arguments.outputs`` order, or a
    mapping by output name) and is compared with the step's ``expected``. An invalid case
    passes when some step raises ValueError or TypeError. A module that defines ``init``
    and ``step`` is an adapter.
    """

    def init(self, *, xp: Any, **options: Any) -> Any:
        """Return the initial state."""

    def step(self, state: Any, /, *arrays: Any, **options: Any) -> tuple[Any, Any]:
        """Advance the state by one step and return ``(state, outputs)``."""


class FrequencyAdapter:
    """The fixture protocol of :mod:`refloss.frequency`: ``update``, then ``probability``.

    ``step`` returns the new state and the outputs ``buckets`` (the ids' buckets under each
    hash), ``probability`` (of the step's ids, read after the update), ``gap`` and
    ``last_step`` (the whole state).
    """

    @staticmethod
    def init(
        *, xp: Any, num_buckets: int, num_hashes: int = 1, initial_gap: float = 100.0, seed: int = 0
    ) -> Any:
        """The initial state, on the namespace's default device."""
        from refloss import frequency

        return frequency.init(
            num_buckets, num_hashes=num_hashes, initial_gap=initial_gap, seed=seed, xp=xp
        )

    @staticmethod
    def step(
        state: Any,
        ids: Any,
        /,
        *,
        step: int,
        learning_rate: float = 0.01,
        first_sighting: str = "update",
        min_probability: float = 1e-6,
    ) -> tuple[Any, dict[str, Any]]:
        """One ``update`` with the step's ids, then ``probability`` of the same ids.

        The state follows the ids to their device (``init`` knows only the namespace).
        """
        import array_api_compat

        from refloss import frequency

        where = array_api_compat.device(ids)
        if array_api_compat.device(state.gap) != where:
            state = frequency.as_namespace(
                state, array_api_compat.array_namespace(ids), device=where
            )
        state = frequency.update(
            state, ids, step=step, learning_rate=learning_rate, first_sighting=first_sighting
        )
        outputs = {
            "buckets": frequency.buckets(
                ids, seeds=state.seeds, num_buckets=int(state.gap.shape[1])
            ),
            "probability": frequency.probability(state, ids, min_probability=min_probability),
            "gap": state.gap,
            "last_step": state.last_step,
        }
        return state, outputs


#: Adapters for refloss's own sequence fixtures, keyed by the file's ``function`` field.
#: Each value is a zero-argument factory (so that nothing is imported before it is needed).
SEQUENCE_FAMILIES: dict[str, Callable[[], SequenceAdapter]] = {
    "refloss.frequency": FrequencyAdapter,
}


def _import_dotted(name: str) -> Any:
    """Import ``package.module.attr.attr`` by the longest importable module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    msg = f"cannot import {name!r}"
    raise ImportError(msg)


def resolve_function(spec: str) -> Callable[..., Any]:
    """Resolve a fixture's ``function`` field to a refloss callable.

    Parameters
    ----------
    spec : str
        A dotted refloss name (``"refloss.logsumexp"``) or one wrapper applied to another
        (``"refloss.value_and_grad(refloss.retrieval_loss)"``, nesting allowed).

    Returns
    -------
    callable
        The function, or the wrapper applied to the inner function.

    Raises
    ------
    ValueError
        When `spec` is malformed or names something outside ``refloss``.
    """
    call = _CALL.match(spec)
    if call:
        return resolve_function(call[1])(resolve_function(call[2]))
    spec = spec.strip()
    if not _DOTTED.match(spec) or not (spec == "refloss" or spec.startswith("refloss.")):
        msg = f"fixture function {spec!r} is not a refloss name"
        raise ValueError(msg)
    return _import_dotted(spec)


def reference_callable(function: str, kind: str) -> Any:
    """Return refloss's own implementation for a fixture file, or None when there is none.

    Parameters
    ----------
    function : str
        The file's ``function`` field.
    kind : {"function", "sequence"}
        The file's ``kind``.

    Returns
    -------
    callable or SequenceAdapter or None
        None for a sequence family without a registered adapter.
    """
    if kind == "sequence":
        factory = SEQUENCE_FAMILIES.get(function)
        return None if factory is None else factory()
    return resolve_function(function)


def load_impl(target: str) -> Any:
    """Import a third-party implementation given as ``package.module:attribute``.

    Parameters
    ----------
    target : str
        ``module:attr`` (``attr`` may be dotted). ``module`` alone names a module, which is
        how a sequence adapter defining ``init`` and ``step`` is given.

    Returns
    -------
    object
        The attribute (or module).

    Raises
    ------
    ValueError
        When `target` is malformed.
    """
    module_name, _, attr = target.partition(":")
    if not _DOTTED.match(module_name) or (attr and not _DOTTED.match(attr)):
        msg = f"--impl expects 'package.module:function', got {target!r}"
        raise ValueError(msg)
    obj = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj
