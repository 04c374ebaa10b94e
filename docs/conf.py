"""Sphinx configuration of the refloss documentation site.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are MyST Markdown; the API reference comes from the numpydoc docstrings. Every
``docs/figures/fig_*.py`` script runs at the start of the build as
``python docs/figures/fig_x.py docs/_generated``, so the figures the pages show
(``_generated/<name>.png``) are always those of the current code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FIGURES = DOCS / "figures"
GENERATED = DOCS / "_generated"

sys.path.insert(0, str(ROOT))  # document the checkout, also without an editable install

import refloss  # noqa: E402

project = "refloss"
author = "The refloss authors"
copyright = "The refloss authors"
version = release = refloss.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "figures", "Thumbs.db", ".DS_Store"]
nitpicky = False

# MyST: $...$ and $$...$$ math, \begin{align} environments, anchors for ## and ### headings.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# numpydoc renders the docstrings; the class members are listed by the pages themselves.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autosummary_generate = False
autodoc_typehints = "none"  # the signatures and the Parameters sections say it already
autodoc_member_order = "bysource"

html_theme = "furo"
html_title = f"refloss {release}"
html_static_path: list[str] = []


def _run_figure_scripts(app) -> None:
    """Run every ``docs/figures/fig_*.py`` as ``python SCRIPT docs/_generated``."""
    GENERATED.mkdir(exist_ok=True)
    for script in sorted(FIGURES.glob("fig_*.py")):
        print(f"refloss docs: running {script.relative_to(ROOT)}")
        result = subprocess.run(
            [sys.executable, str(script), str(GENERATED)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{script.relative_to(ROOT)} exited with status {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )


def _module_sections_as_rubrics(app, what, name, obj, options, lines) -> None:
    """Render a module docstring's numpydoc sections (``Examples``, underlined) as rubrics.

    numpydoc rewrites the sections of functions and classes into rubrics but leaves module
    docstrings as reStructuredText, where each becomes a section with a page-wide label, so
    two modules with an ``Examples`` section would clash. This does for modules what
    numpydoc does for everything else.
    """
    if what != "module":
        return
    for i in range(len(lines) - 1):
        title, underline = lines[i].strip(), lines[i + 1].strip()
        if title and len(underline) == len(title) and set(underline) == {"-"}:
            lines[i], lines[i + 1] = f".. rubric:: {title}", ""


REPOSITORY = "https://github.com/refloss/refloss/blob/main/"


def _repository_links(app, relative_path, parent_docname, content) -> None:
    """In a file included from outside ``docs/``, point its links to other repository files
    (``[CHANGELOG.md](CHANGELOG.md)`` in ``conformance/README.md``) at the repository."""
    path = (app.srcdir / relative_path).resolve()
    if DOCS in path.parents:
        return
    folder = path.parent.relative_to(ROOT).as_posix()
    text = content[0]
    content[0] = re.sub(
        r"\]\((?![a-z]+:|#|/)([^)\s]+)\)",
        lambda m: f"]({REPOSITORY}{folder}/{m.group(1)})",
        text,
    )


def setup(app):
    app.connect("builder-inited", _run_figure_scripts)
    app.connect("autodoc-process-docstring", _module_sections_as_rubrics)
    app.connect("include-read", _repository_links)
    return {"parallel_read_safe": True}
