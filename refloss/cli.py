"""The ``refloss`` command.

``refloss verify`` runs the conformance fixtures (``conformance/*_test.json``) against refloss
itself on every installed array library (NumPy, array-api-strict, PyTorch on the CPU, JAX
with float64 enabled: the command switches ``jax_enable_x64`` on for its whole process) in
float64 and float32, prints a table

    file | backend | dtype | passed | failed | skipped

and exits with status

- 0 when no case failed and at least one passed;
- 1 when a case failed, or when no case passed (everything skipped: the run proved
  nothing);
- 2 on a usage error, reported by argparse: a backend named with ``--backend`` that
  cannot be imported, an unknown ``--skip-flag`` (the message lists the flags of the files
  being run), ``--impl`` without exactly one ``--fixture``, an implementation or fixture
  file that cannot be loaded.

``refloss verify --impl package.module:function --fixture NAME`` checks another
implementation instead. The adapter convention: the callable is called as

    fn(*positional_arrays, **keyword_arrays, **params)

where ``positional_arrays`` are the inputs the file lists in ``arguments.positional`` (in
order), ``keyword_arrays`` the other inputs under their fixture names (e.g.
``candidate_sampling_probability``, ``candidate_ids``, ``score_mask``, ``sample_weight``),
and ``params`` the case's non-array options (e.g. ``temperature``, ``num_hard_negatives``,
``reduction``). Arrays are of the chosen ``--backend``; float inputs are cast to the
``--dtype`` being run. The callable returns one array for a one-output file, a tuple in
``arguments.outputs`` order (nested tuples flatten: ``(loss, (grad_q, grad_c))`` for a
``value_and_grad`` file), or a dict by output name. Invalid cases must raise ValueError or
TypeError; ``--numerics-only`` skips them instead (reported as skipped, reason
``numerics-only``), for implementations that do not validate their input. Each failing
case is printed with its tcId, comment, flags, expected and actual values. ``--json``
prints a machine-readable report instead. ``refloss --version`` prints the version. See
``docs/verify.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .testing._backends import BACKENDS
from .testing._families import load_impl
from .testing._runner import (
    DTYPES,
    NUMERICS_ONLY,
    CaseResult,
    _version,
    report_dict,
    run_verification,
    summarize,
)

__all__ = ["main"]

_COLUMNS = ("file", "backend", "dtype", "passed", "failed", "skipped")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refloss", description="refloss: reference retrieval losses and their fixtures."
    )
    parser.add_argument(
        "--version", action="version", version=f"refloss {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="run the conformance fixtures against refloss or another implementation",
        description=(
            "Run conformance fixtures on every installed backend in float64 and float32. "
            "With --impl, check a third-party callable: it is called as "
            "fn(*positional_arrays, **keyword_arrays, **params) with the fixture's "
            "argument names and returns the outputs (one array, a tuple in output order, "
            "or a dict by output name). Exit status: 0 when no case failed and at least one "
            "passed; 1 when a case failed or none passed; 2 on a usage error (including a "
            "--backend that cannot be imported and an unknown --skip-flag)."
        ),
    )
    verify.set_defaults(command_parser=verify)
    verify.add_argument(
        "--impl",
        metavar="MODULE:FUNCTION",
        help="implementation to check instead of refloss (the current directory is importable)",
    )
    verify.add_argument(
        "--fixture",
        action="append",
        metavar="NAME",
        help="fixture file to run, e.g. retrieval_loss (repeatable; default: all; "
        "--impl takes exactly one)",
    )
    verify.add_argument(
        "--backend",
        action="append",
        choices=list(BACKENDS),
        help="backend to run on (repeatable; default: every installed one); a backend "
        "named here that cannot be imported is an error",
    )
    verify.add_argument(
        "--dtype",
        action="append",
        choices=list(DTYPES),
        help="float dtype to run in (repeatable; default: both)",
    )
    verify.add_argument(
        "--skip-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="skip cases carrying FLAG, for a convention the implementation does not follow "
        "(repeatable); FLAG must be one of the flags in the notes of the files being run",
    )
    verify.add_argument(
        "--numerics-only",
        action="store_true",
        help="skip the invalid-input cases (those that must raise ValueError or TypeError), "
        f"reported as skipped with reason {NUMERICS_ONLY!r}: for implementations that do not "
        "validate their input",
    )
    verify.add_argument(
        "--fixtures-dir", metavar="DIR", help="read fixtures from DIR instead of refloss's own"
    )
    verify.add_argument(
        "--max-failures",
        type=int,
        default=20,
        metavar="N",
        help="print details of at most N failing cases (default 20; all with --json)",
    )
    verify.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON report instead"
    )
    return parser


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [list(_COLUMNS)] + [[str(row[c]) for c in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    numeric = {3, 4, 5}

    def render(line: list[str]) -> str:
        return " | ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([render(cells[0]), rule, *(render(line) for line in cells[1:])])


def _print_failures(results: Sequence[CaseResult], limit: int, out: TextIO) -> None:
    failures = [r for r in results if r.status == "failed"]
    for r in failures[:limit]:
        print(f"FAIL {r.file} tcId {r.tc_id} [{r.backend} {r.dtype}]: {r.comment}", file=out)
        # A mismatch's detail starts with the same headline; print what follows it.
        body = r.detail.split("\n", 1)[1] if "\n" in r.detail else f"  {r.detail}"
        print(body, file=out)
        print(file=out)
    if len(failures) > limit:
        print(f"... {len(failures) - limit} more failing case(s); see --json", file=out)


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    parser: argparse.ArgumentParser = args.command_parser
    if args.max_failures < 0:
        parser.error("--max-failures must be 0 or more")
    impl = None
    if args.impl:
        if not args.fixture or len(args.fixture) != 1:
            given = len(args.fixture or ())
            parser.error(f"--impl goes with exactly one --fixture NAME (got {given})")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            impl = load_impl(args.impl)
        except Exception as exc:
            parser.error(f"cannot load {args.impl}: {type(exc).__name__}: {exc}")
    try:
        results = run_verification(
            impl=impl,
            fixtures=args.fixture,
            backends=args.backend,
            dtypes=args.dtype or DTYPES,
            skip_flags=args.skip_flag,
            numerics_only=args.numerics_only,
            directory=args.fixtures_dir,
        )
    except (FileNotFoundError, ValueError, ImportError) as exc:
        parser.error(str(exc))
    rows = summarize(results)
    totals = {k: sum(row[k] for row in rows) for k in ("passed", "failed", "skipped")}
    failed = totals["failed"] > 0
    none_passed = totals["passed"] == 0
    status = 1 if failed or none_passed else 0
    target = args.impl or "refloss"
    nothing = f"no case passed ({totals['skipped']} skipped, {totals['failed']} failed)"
    if args.json:
        json.dump(report_dict(results, impl=args.impl), out, indent=2, allow_nan=False)
        print(file=out)
        if none_passed:
            print(f"refloss verify: {target}: {nothing}", file=sys.stderr)
        return status
    _print_failures(results, args.max_failures, out)
    print(_table(rows), file=out)
    verdict = "OK" if status == 0 else "FAILED"
    print(
        f"\n{verdict}: {target}: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped",
        file=out,
    )
    if none_passed:
        print(f"{verdict}: {target}: {nothing}", file=out)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``refloss`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        Exit status: 0 when no case failed and at least one passed, 1 when a case failed
        or none passed.

    Raises
    ------
    SystemExit
        From argparse: status 2 on a usage error, 0 after ``--help`` or ``--version``.
    """
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return _verify(args, sys.stdout)
    return 2  # pragma: no cover - argparse rejects unknown commands
