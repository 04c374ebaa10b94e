"""The examples on the documentation pages run as tests.

Each ``docs/*.md`` page is one test: the ``>>>`` examples of all its ```` ```pycon ````
fences, run in order in one namespace (a later block may use the names of an earlier one),
as doctests. Only those fences count: text outside them and the other fences (``bash``,
``python``, plain) never run, so shell examples such as those of ``verify.md`` stay as they
are. Fence lines are blanked before parsing, so an expected output ends where its fence
does, and line numbers in a failure report are those of the page.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

_OPEN = re.compile(r"^\s*(`{3,}|~{3,})\s*pycon\s*$")


def pycon_source(text: str) -> str:
    """The page with everything but the inside of its ```` ```pycon ```` fences blanked."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None:
            match = _OPEN.match(line)
            fence = match.group(1) if match else None
            kept.append("")
        elif stripped.startswith(fence) and not stripped.strip(fence[0]):
            fence = None
            kept.append("")
        else:
            kept.append(line)
    return "\n".join(kept) + "\n"


def test_pycon_source_keeps_only_pycon_fences():
    page = "text\n```pycon\n>>> 1 + 1\n2\n```\n```python\n>>> 3\n```\n>>> 4\n"
    kept = ["", "", ">>> 1 + 1", "2", "", "", "", "", ""]
    assert pycon_source(page) == "\n".join(kept) + "\n"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples(page: Path):
    text = pycon_source(page.read_text(encoding="utf-8"))
    test = doctest.DocTestParser().get_doctest(
        text, {"__name__": page.stem}, page.name, str(page), 0
    )
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    try:
        result = runner.run(test, out=report.append, clear_globs=True)
    finally:
        test.globs.clear()
    if result.failed:
        pytest.fail("".join(report), pytrace=False)
