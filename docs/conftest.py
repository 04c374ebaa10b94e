"""The examples on the pages run as tests: ``python -m pytest docs``.

Each ``docs/*.md`` page is one test: the ``>>>`` examples of all its ```` ```pycon ````
fences, run in order in one namespace (a later block may use the names of an earlier one),
as doctests. Only those fences count: text outside them, and the other fences (``bash``,
``python``, plain), are never run, so shell examples such as those of ``verify.md`` stay as
they are. The fence lines themselves are blanked before parsing, so an expected output ends
where its fence does; line numbers in a failure report are those of the page.

The Sphinx configuration, the figure scripts (run by the docs build and tested on their
own) and the build outputs are not test modules.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

collect_ignore = ["conf.py"]
collect_ignore_glob = ["_build/*", "_generated/*", "figures/*"]

_OPEN = re.compile(r"^\s*(`{3,}|~{3,})\s*pycon\s*$")


def pycon_source(text: str) -> str:
    """The page with everything but the inside of its ```` ```pycon ```` fences blanked."""
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        if fence is None:
            match = _OPEN.match(line)
            fence = match.group(1) if match else None
            kept.append("")
        elif line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
            kept.append("")
        else:
            kept.append(line)
    return "\n".join(kept) + "\n"


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix == ".md" and file_path.parent == DOCS:
        return MarkdownPage.from_parent(parent, path=file_path)
    return None


class MarkdownPage(pytest.File):
    def collect(self):
        text = pycon_source(self.path.read_text(encoding="utf-8"))
        test = doctest.DocTestParser().get_doctest(
            text, {"__name__": self.path.stem}, self.path.name, str(self.path), 0
        )
        if test.examples:
            yield PageExamples.from_parent(self, name=self.path.name, test=test)


class PageExamples(pytest.Item):
    def __init__(self, *, test: doctest.DocTest, **kwargs):
        super().__init__(**kwargs)
        self.test = test

    def runtest(self) -> None:
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
        try:
            result = runner.run(self.test, out=report.append, clear_globs=True)
        finally:
            self.test.globs.clear()
        if result.failed:
            raise PageFailure("".join(report))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PageFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"[page examples] {self.path.name}"


class PageFailure(Exception):
    """Some example of a page printed something other than what the page shows."""
