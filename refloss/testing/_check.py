"""Run one fixture case against a callable on one array library."""

from __future__ import annotations

import traceback
import unittest
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from ._compare import (
    assert_array_properties,
    format_array,
    isclose_v1,
    mismatch_report,
    namespace_of,
    to_host,
)
from ._families import SequenceAdapter
from ._fixtures import Case

__all__ = ["CaseSkipped", "CheckReport", "FixtureMismatch", "check_against_fixture"]

_REJECTIONS = (ValueError, TypeError)


def describe_values(value: np.ndarray | None) -> str:
    """Render an optional host array for reports.

    Parameters
    ----------
    value : numpy.ndarray or None
        Array to render.

    Returns
    -------
    str
        The array, or ``"-"`` when absent.
    """
    return "-" if value is None else format_array(value)


class CaseSkipped(unittest.SkipTest):
    """The case does not run in the requested configuration (pytest reports it as skipped)."""


class FixtureMismatch(AssertionError):
    """A case failed; carries the case and, for value mismatches, both arrays.

    Attributes
    ----------
    case : Case
        The failing case.
    dtype : str
        The float dtype it ran in.
    detail : str
        What went wrong.
    output : str or None
        Name of the mismatching output, when one is to blame.
    expected, actual : numpy.ndarray or None
        Host copies of the expected and actual output.
    """

    def __init__(
        self,
        case: Case,
        dtype: str,
        detail: str,
        *,
        output: str | None = None,
        expected: np.ndarray | None = None,
        actual: np.ndarray | None = None,
    ) -> None:
        self.case = case
        self.dtype = dtype
        self.detail = detail
        self.output = output
        self.expected = expected
        self.actual = actual
        head = f"{case.file} tcId {case.tc_id} ({dtype}): {case.comment}"
        if case.flags:
            head += f"\n  flags: {', '.join(case.flags)}"
        where = f"output {output!r}: " if output else ""
        text = f"{head}\n  {where}{detail}"
        if expected is not None:
            text += f"\n  expected: {describe_values(expected)}"
        if actual is not None or expected is not None:
            text += f"\n  actual:   {describe_values(actual)}"
        super().__init__(text)


class CheckReport(NamedTuple):
    """How a case passed: ``outcome`` is ``"matched"`` or ``"rejected"``; ``detail`` says more."""

    outcome: str
    detail: str


def check_against_fixture(
    fn: Callable[..., Any] | SequenceAdapter,
    case: Case,
    *,
    xp: Any,
    dtype: str = "float64",
    device: Any = None,
    exact_error: bool = False,
) -> CheckReport:
    """Run one fixture case against `fn` and assert the outcome the fixture pins.

    Inputs are moved to `xp` (and `device`); float inputs are cast to `dtype`, integer and
    boolean inputs keep their dtype. `fn` is called as
    ``fn(*positional, **keyword_arrays, **params)``: the inputs named in the file's
    ``arguments.positional`` in that order, the remaining inputs by keyword, then the
    case's non-array options.

    `fn` may return one array (files with one output), a tuple or list in
    ``arguments.outputs`` order, nested tuples that flatten to that order (``(loss,
    (grad_q, grad_c))`` from a ``value_and_grad`` file) or a mapping by output name. Each
    expected output must have namespace `xp`, dtype `dtype` (integer and boolean outputs:
    the fixture's dtype), the fixture's shape and the inputs' device, and values within
    the case's tolerance for `dtype` under ``isclose_v1``.

    An ``invalid`` case must raise ValueError or TypeError. An ``acceptable`` case may
    raise either; when it returns, it is compared with ``expected`` (refloss's convention,
    named by the case's flags).

    Parameters
    ----------
    fn : callable or SequenceAdapter
        Implementation under test. For ``kind == "sequence"`` cases an object with ``init``
        and ``step`` (see :class:`SequenceAdapter`).
    case : Case
        A case from :func:`fixture_cases`.
    xp : module
        Array namespace to run on.
    dtype : {"float64", "float32"}, optional
        Float dtype to run in.
    device : device, optional
        Device for the inputs; the library default when None.
    exact_error : bool, optional
        Also require the exception class the fixture names in ``error`` (refloss itself
        runs with True; other implementations only need to reject).

    Returns
    -------
    CheckReport
        ``("matched", ...)`` or ``("rejected", "<Exception>: <message>")``.

    Raises
    ------
    FixtureMismatch
        (an AssertionError) naming tcId, comment, flags, and expected and actual values.
    CaseSkipped
        (a ``unittest.SkipTest``) when the case does not run in `dtype`, or the library
        cannot hold one of its inputs' dtypes.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import refloss
    >>> from refloss.testing import check_against_fixture, fixture_cases
    >>> reports = [
    ...     check_against_fixture(refloss.logsumexp, case, xp=xp, dtype="float64")
    ...     for case in fixture_cases("logsumexp")
    ... ]
    >>> {report.outcome for report in reports}
    {'matched'}
    """
    __tracebackhide__ = True
    if dtype not in case.dtypes:
        msg = f"{case.id} runs in {', '.join(case.dtypes)} only, not {dtype}"
        raise CaseSkipped(msg)
    xp = namespace_of(xp)
    if case.kind == "sequence":
        return _check_sequence(fn, case, xp=xp, dtype=dtype, device=device)
    arrays = {
        name: _to_backend(a, xp=xp, dtype=dtype, device=device, case=case, name=name)
        for name, a in case.inputs.items()
    }
    args, kwargs = _arguments(case, arrays, dict(case.params), dtype)
    try:
        result = fn(*args, **kwargs)
    except _REJECTIONS as exc:
        if case.result == "valid":
            raise FixtureMismatch(case, dtype, f"raised {_describe(exc)}") from exc
        if exact_error and case.error and not _is_named(exc, case.error):
            detail = f"raised {_describe(exc)}; the fixture pins {case.error}"
            raise FixtureMismatch(case, dtype, detail) from exc
        return CheckReport("rejected", _describe(exc))
    except Exception as exc:
        expected = "ValueError or TypeError" if case.result == "invalid" else "a result"
        detail = f"raised {_describe(exc)}; expected {expected}"
        raise FixtureMismatch(case, dtype, detail) from exc
    if case.result == "invalid":
        detail = f"returned instead of raising {case.error or 'ValueError or TypeError'}"
        raise FixtureMismatch(case, dtype, detail)
    _check_unchanged(case, dtype, arrays)
    if device is None and arrays:
        device = array_api_compat.device(next(iter(arrays.values())))
    _compare_outputs(case, dtype, result, case.expected, xp=xp, device=device)
    return CheckReport("matched", f"{len(case.expected)} output(s) within tolerance")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def _is_named(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _to_backend(
    array: np.ndarray, *, xp: Any, dtype: str, device: Any, case: Case, name: str
) -> Any:
    if np.issubdtype(array.dtype, np.floating):
        host = array.astype(np.dtype(dtype))
        target_name = dtype
    else:
        host = np.array(array, copy=True)
        target_name = "bool" if array.dtype == np.bool_ else array.dtype.name
    target = getattr(xp, target_name)
    options: dict[str, Any] = {"dtype": target}
    if device is not None:
        options["device"] = device
    converted = xp.asarray(host, **options)
    if converted.dtype != target:
        msg = f"{case.id}: {xp.__name__} stores input {name!r} as {converted.dtype}, not {target}"
        raise CaseSkipped(msg)
    return converted


def _arguments(
    case: Case, arrays: Mapping[str, Any], params: dict[str, Any], dtype: str
) -> tuple[list[Any], dict[str, Any]]:
    missing = [name for name in case.positional if name not in arrays]
    if missing:
        raise FixtureMismatch(case, dtype, f"fixture lacks positional inputs {missing}")
    keyword = {k: v for k, v in arrays.items() if k not in case.positional}
    clash = sorted(set(keyword) & set(params))
    if clash:
        raise FixtureMismatch(case, dtype, f"{clash} given both as inputs and as params")
    return [arrays[name] for name in case.positional], {**keyword, **params}


def _check_unchanged(case: Case, dtype: str, arrays: Mapping[str, Any]) -> None:
    for name, converted in arrays.items():
        original = case.inputs[name]
        if np.issubdtype(original.dtype, np.floating):
            original = original.astype(np.dtype(dtype))
        now = to_host(converted)
        if not np.array_equal(now, original, equal_nan=now.dtype.kind == "f"):
            raise FixtureMismatch(case, dtype, f"modified its input {name!r} in place")


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple | list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _collect_outputs(case: Case, dtype: str, result: Any, names: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(result, Mapping):
        missing = [name for name in names if name not in result]
        if missing:
            raise FixtureMismatch(case, dtype, f"returned a mapping without {missing}")
        return {name: result[name] for name in names}
    flat = list(_flatten(result))
    if len(flat) != len(names):
        detail = (
            f"returned {len(flat)} array(s); the fixture has {len(names)} output(s) {list(names)}"
        )
        raise FixtureMismatch(case, dtype, detail)
    return dict(zip(names, flat, strict=True))


def _compare_outputs(
    case: Case,
    dtype: str,
    result: Any,
    expected: Mapping[str, np.ndarray],
    *,
    xp: Any,
    device: Any,
) -> None:
    names = case.outputs or tuple(expected)
    outputs = _collect_outputs(case, dtype, result, names)
    for name, want in expected.items():
        if name not in outputs:
            raise FixtureMismatch(case, dtype, f"no output named {name!r} in {list(names)}")
        got = outputs[name]
        is_float = np.issubdtype(want.dtype, np.floating)
        target = getattr(
            xp, dtype if is_float else ("bool" if want.dtype == np.bool_ else want.dtype.name)
        )
        try:
            assert_array_properties(got, xp=xp, dtype=target, shape=want.shape, device=device)
        except AssertionError as exc:
            actual = _try_host(got)
            raise FixtureMismatch(
                case, dtype, str(exc), output=name, expected=want, actual=actual
            ) from None
        got_np = to_host(got)
        tolerance = case.tolerance.get(dtype) if is_float else None
        if is_float and tolerance is None:
            raise FixtureMismatch(case, dtype, f"fixture gives no {dtype} tolerance", output=name)
        rtol, atol = tolerance if tolerance is not None else (0.0, 0.0)
        close = isclose_v1(
            got_np, want, rtol=rtol, atol=atol, signed_zero=case.has_flag("SignedZero")
        )
        if not np.all(close):
            report = mismatch_report(got_np, want, close, rtol=rtol, atol=atol)
            raise FixtureMismatch(case, dtype, report, output=name, expected=want, actual=got_np)


def _try_host(value: Any) -> np.ndarray | None:
    try:
        return to_host(value)
    except Exception:
        return None


def _check_sequence(adapter: Any, case: Case, *, xp: Any, dtype: str, device: Any) -> CheckReport:
    if not isinstance(adapter, SequenceAdapter):
        msg = f"{case.id} is a sequence case; it needs an object with init() and step()"
        raise CaseSkipped(msg)

    def move(tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return {
            name: _to_backend(a, xp=xp, dtype=dtype, device=device, case=case, name=name)
            for name, a in tensors.items()
        }

    try:
        state = adapter.init(
            xp=xp, **case.init.get("params", {}), **move(case.init.get("state", {}))
        )
    except Exception as exc:
        raise FixtureMismatch(case, dtype, f"init raised {_describe(exc)}") from exc
    for number, step in enumerate(case.steps):
        arrays = move(step.get("inputs", {}))
        params = {**case.params, **step.get("params", {})}
        args, kwargs = _arguments(case, arrays, params, dtype)
        try:
            state, outputs = adapter.step(state, *args, **kwargs)
        except _REJECTIONS as exc:
            if case.result == "valid":
                detail = f"step {number} raised {_describe(exc)}"
                raise FixtureMismatch(case, dtype, detail) from exc
            return CheckReport("rejected", f"step {number}: {_describe(exc)}")
        except Exception as exc:
            raise FixtureMismatch(case, dtype, f"step {number} raised {_describe(exc)}") from exc
        expected = step.get("expected", {})
        if case.result == "invalid" or not expected:
            continue
        where = device
        if where is None and arrays:
            where = array_api_compat.device(next(iter(arrays.values())))
        try:
            _compare_outputs(case, dtype, outputs, expected, xp=xp, device=where)
        except FixtureMismatch as exc:
            raise FixtureMismatch(
                case,
                dtype,
                f"step {number}: {exc.detail}",
                output=exc.output,
                expected=exc.expected,
                actual=exc.actual,
            ) from None
    if case.result == "invalid":
        detail = f"no step raised {case.error or 'ValueError or TypeError'}"
        raise FixtureMismatch(case, dtype, detail)
    return CheckReport("matched", f"{len(case.steps)} step(s) replayed")
