"""The ``refloss verify`` examples of ``docs/verify.md`` run, and print what the page shows.

A plain fence whose first line starts with ``refloss verify`` is a command; the plain fence
that follows it is its expected output, and the command's comment states its exit status
(``# exit status N``). A ```` ```python ```` fence whose first line is ``# NAME.py`` defines
that module: it is written to the directory the commands run in. Each command runs as
``python -m refloss verify ...`` there. In an expected output, a line that is ``...``
matches any run of lines (none included), and ``...`` inside a line matches any text;
everything else, numbers included, must match exactly.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tests._fixture_docs import REPO, run_refloss

PAGE = REPO / "docs" / "verify.md"
_FENCE = re.compile(r"^(`{3,})\s*(\S*)\s*$")
_MODULE = re.compile(r"^# (\w+\.py)$")
_STATUS = re.compile(r"#\s*exit status (\d+)\s*$")


def fences(text: str) -> list[tuple[str, list[str]]]:
    """The page's fenced blocks, as (language, lines)."""
    blocks: list[tuple[str, list[str]]] = []
    lines = iter(text.splitlines())
    for line in lines:
        match = _FENCE.match(line)
        if not match:
            continue
        body = []
        for inner in lines:
            if inner.strip() == match.group(1):
                break
            body.append(inner)
        blocks.append((match.group(2), body))
    return blocks


def modules(blocks) -> dict[str, str]:
    """File name -> source, for the python fences that name their module."""
    return {
        m.group(1): "\n".join(body) + "\n"
        for lang, body in blocks
        if lang == "python" and body and (m := _MODULE.match(body[0]))
    }


def examples(blocks) -> list[tuple[list[str], int, list[str]]]:
    """(arguments after ``refloss``, exit status, expected output lines) per command."""
    found = []
    for i, (lang, body) in enumerate(blocks):
        if lang or not body or not body[0].startswith("refloss verify"):
            continue
        command = " ".join(line.rstrip().removesuffix("\\") for line in body)
        status = _STATUS.search(command)
        assert status, f"no '# exit status N' comment: {command}"
        assert i + 1 < len(blocks), f"no output block: {command}"
        assert not blocks[i + 1][0], f"no plain output block: {command}"
        argv = shlex.split(command[: status.start()])[1:]
        found.append((argv, int(status.group(1)), blocks[i + 1][1]))
    return found


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, line.split("..."))))


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` matches ``expected`` (``...`` lines match any run of lines)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "...":
        return any(matches(rest, actual[k:]) for k in range(len(actual) + 1))
    return (
        bool(actual)
        and _line_pattern(head.rstrip()).fullmatch(actual[0].rstrip()) is not None
        and matches(rest, actual[1:])
    )


BLOCKS = fences(PAGE.read_text(encoding="utf-8"))
EXAMPLES = examples(BLOCKS)


def test_matches():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert matches(["x ... z"], ["x y z"])
    assert not matches(["a", "...", "d"], ["a", "b", "e"])
    assert not matches(["1 passed"], ["11 passed"])


def test_page_has_examples():
    assert {"mypackage.py", "my_adapter.py"} <= set(modules(BLOCKS))
    assert len(EXAMPLES) >= 3
    for argv, _, _ in EXAMPLES:
        # the backend is named, and it is a quick one (JAX is slow to start)
        backend = argv[argv.index("--backend") + 1]
        assert backend in {"numpy", "torch"}, argv


@pytest.mark.parametrize(
    ("argv", "status", "expected"), EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))]
)
def test_example_output(tmp_path: Path, argv, status, expected):
    if "torch" in argv and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    for name, source in modules(BLOCKS).items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    proc = run_refloss(*argv, cwd=tmp_path, pythonpath=(tmp_path, REPO))
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert matches(expected, proc.stdout.splitlines()), (
        "output differs from the page:\n" + proc.stdout
    )
