"""Run fixture files over backends and dtypes and collect one result per case."""

from __future__ import annotations

import importlib.metadata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._backends import available_backends, load_backend
from ._check import CaseSkipped, FixtureMismatch, check_against_fixture
from ._families import reference_callable
from ._fixtures import Case, FixtureDir, encode_tensor, fixture_cases, fixture_names

__all__ = ["CaseResult", "report_dict", "run_verification", "summarize"]

DTYPES = ("float64", "float32")
Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, eq=False)
class CaseResult:
    """Outcome of one case on one backend in one dtype."""

    file: str
    backend: str
    dtype: str
    tc_id: int
    comment: str
    flags: tuple[str, ...]
    result: str
    status: Status
    detail: str
    output: str | None = None
    expected: np.ndarray | None = None
    actual: np.ndarray | None = None


NUMERICS_ONLY = "numerics-only"


def _version() -> str:
    """Installed distribution version, or ``refloss.__version__`` without installed metadata."""
    try:
        return importlib.metadata.version("refloss")
    except importlib.metadata.PackageNotFoundError:
        from .. import __version__

        return __version__


def _result(
    case: Case,
    backend: str,
    dtype: str,
    status: Status,
    detail: str,
    error: FixtureMismatch | None = None,
) -> CaseResult:
    return CaseResult(
        file=case.file,
        backend=backend,
        dtype=dtype,
        tc_id=case.tc_id,
        comment=case.comment,
        flags=case.flags,
        result=case.result,
        status=status,
        detail=detail,
        output=None if error is None else error.output,
        expected=None if error is None else error.expected,
        actual=None if error is None else error.actual,
    )


def _target(impl: Any, cases: Sequence[Case]) -> tuple[Any, Status | None, str]:
    """Return ``(callable, None, "")``, or ``(None, status, reason)`` for the whole file."""
    if impl is not None:
        return impl, None, ""
    first = cases[0]
    try:
        fn = reference_callable(first.function, first.kind)
    except Exception as exc:
        return None, "failed", f"cannot resolve {first.function!r}: {type(exc).__name__}: {exc}"
    if fn is None:
        return None, "skipped", f"no sequence adapter registered for {first.function!r}"
    return fn, None, ""


def _run_file(
    name: str,
    cases: Sequence[Case],
    *,
    impl: Any,
    backends: Sequence[str],
    dtypes: Sequence[str],
    skip_flags: frozenset[str],
    numerics_only: bool,
    exact_error: bool,
) -> Iterable[CaseResult]:
    fn, file_status, file_reason = _target(impl, cases)
    for backend_name in backends:
        try:
            backend = load_backend(backend_name)
        except ImportError as exc:
            backend, backend_problem = None, f"backend {backend_name} unavailable: {exc}"
        else:
            backend_problem = None
        for dtype in dtypes:
            for case in cases:
                if file_status is not None:
                    yield _result(case, backend_name, dtype, file_status, file_reason)
                    continue
                if backend is None:
                    yield _result(case, backend_name, dtype, "skipped", str(backend_problem))
                    continue
                chosen = skip_flags.intersection(case.flags)
                if chosen:
                    reason = f"flag {', '.join(sorted(chosen))} skipped on request"
                    yield _result(case, backend_name, dtype, "skipped", reason)
                    continue
                if numerics_only and case.result == "invalid":
                    yield _result(case, backend_name, dtype, "skipped", NUMERICS_ONLY)
                    continue
                try:
                    report = check_against_fixture(
                        fn,
                        case,
                        xp=backend.xp,
                        dtype=dtype,
                        device=backend.device,
                        exact_error=exact_error,
                    )
                except CaseSkipped as exc:
                    yield _result(case, backend_name, dtype, "skipped", str(exc))
                except FixtureMismatch as exc:
                    yield _result(case, backend_name, dtype, "failed", str(exc), exc)
                except Exception as exc:
                    detail = f"harness error: {type(exc).__name__}: {exc}"
                    yield _result(case, backend_name, dtype, "failed", detail)
                else:
                    yield _result(case, backend_name, dtype, "passed", report.detail)


def run_verification(
    *,
    impl: Any = None,
    fixtures: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] = DTYPES,
    skip_flags: Iterable[str] = (),
    numerics_only: bool = False,
    directory: str | FixtureDir | None = None,
) -> list[CaseResult]:
    """Run fixture files against refloss or a given implementation.

    Parameters
    ----------
    impl : callable, optional
        Implementation under test; refloss's own function named by each file when None.
        With an `impl`, any ValueError or TypeError counts as rejecting an invalid case;
        refloss itself must raise the exception class the fixture names.
    fixtures : sequence of str, optional
        Fixture names; all when None.
    backends : sequence of str, optional
        Backend names; every installed one when None. A backend named here must be
        importable. Loading JAX switches ``jax_enable_x64`` on for the whole process (see
        :func:`~refloss.testing.load_backend`).
    dtypes : sequence of str, optional
        Float dtypes, default ``("float64", "float32")``.
    skip_flags : iterable of str, optional
        Cases carrying any of these flags are skipped (for conventions an implementation
        deliberately does not follow). Each must be a flag described in the ``notes`` of
        one of the files being run.
    numerics_only : bool, default False
        Skip the ``invalid`` cases (inputs that must be rejected), with the reason
        ``"numerics-only"``, for implementations that do not validate their input.
    directory : str or path-like, optional
        Fixture directory instead of refloss's own.

    Returns
    -------
    list of CaseResult
        One per (file, backend, dtype, case), in that nesting order.

    Raises
    ------
    FileNotFoundError
        When a named fixture file does not exist.
    ValueError
        When a fixture file is malformed, or a skip flag is not described in any file run.
    ImportError
        When a backend named in `backends` cannot be imported; the message names it.
    """
    names = list(fixtures) if fixtures is not None else fixture_names(directory)
    files = [cases for cases in (fixture_cases(name, directory) for name in names) if cases]
    skip = frozenset(skip_flags)
    known = sorted({flag for cases in files for flag in cases[0].notes})
    unknown = sorted(skip.difference(known))
    if unknown:
        msg = (
            f"unknown skip flag(s) {', '.join(unknown)}; the fixture files being run know: "
            f"{', '.join(known) or '(none)'}"
        )
        raise ValueError(msg)
    if backends is None:
        chosen_backends = available_backends()
    else:
        chosen_backends = list(backends)
        for name in chosen_backends:
            try:
                load_backend(name)
            except ImportError as exc:
                msg = f"backend {name!r} was requested but cannot be imported: {exc}"
                raise ImportError(msg, name=exc.name) from exc
    results: list[CaseResult] = []
    for cases in files:
        results.extend(
            _run_file(
                cases[0].file,
                cases,
                impl=impl,
                backends=chosen_backends,
                dtypes=list(dtypes),
                skip_flags=skip,
                numerics_only=numerics_only,
                exact_error=impl is None,
            )
        )
    return results


def summarize(results: Iterable[CaseResult]) -> list[dict[str, Any]]:
    """Count passed, failed and skipped cases per (file, backend, dtype).

    Parameters
    ----------
    results : iterable of CaseResult
        Output of :func:`run_verification`.

    Returns
    -------
    list of dict
        Rows ``{"file", "backend", "dtype", "passed", "failed", "skipped"}`` in run order.
    """
    counts: dict[tuple[str, str, str], Counter[str]] = {}
    for r in results:
        counts.setdefault((r.file, r.backend, r.dtype), Counter())[r.status] += 1
    return [
        {
            "file": f,
            "backend": b,
            "dtype": d,
            "passed": c["passed"],
            "failed": c["failed"],
            "skipped": c["skipped"],
        }
        for (f, b, d), c in counts.items()
    ]


def report_dict(results: Sequence[CaseResult], *, impl: str | None) -> dict[str, Any]:
    """Build the machine-readable report that ``refloss verify --json`` prints.

    Parameters
    ----------
    results : sequence of CaseResult
        Output of :func:`run_verification`.
    impl : str or None
        The ``--impl`` target, None for refloss itself.

    Returns
    -------
    dict
        ``{"report", "refloss_version", "impl", "ok", "summary", "failures", "skipped"}``;
        ``ok`` is true when no case failed and at least one passed. ``failures`` entries
        carry ``file``, ``backend``, ``dtype``, ``tcId``, ``comment``, ``flags``, ``result``,
        ``output``, ``detail``, ``expected`` and ``actual`` (fixture tensor encoding or null).
    """
    failures = [
        {
            "file": r.file,
            "backend": r.backend,
            "dtype": r.dtype,
            "tcId": r.tc_id,
            "comment": r.comment,
            "flags": list(r.flags),
            "result": r.result,
            "output": r.output,
            "detail": r.detail,
            "expected": None if r.expected is None else encode_tensor(r.expected),
            "actual": None if r.actual is None else encode_tensor(r.actual),
        }
        for r in results
        if r.status == "failed"
    ]
    skipped = [
        {
            "file": r.file,
            "backend": r.backend,
            "dtype": r.dtype,
            "tcId": r.tc_id,
            "reason": r.detail,
        }
        for r in results
        if r.status == "skipped"
    ]
    return {
        "report": "refloss_verify_v1",
        "refloss_version": _version(),
        "impl": impl,
        "ok": not failures and any(r.status == "passed" for r in results),
        "summary": summarize(results),
        "failures": failures,
        "skipped": skipped,
    }
