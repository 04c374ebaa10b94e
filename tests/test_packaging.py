"""The wheel: what it ships (fixtures, schema, py.typed, license), what it leaves out
(the fixture generator, the Node.js consumer), and that ``refloss.testing`` finds the
fixtures in the installed layout.

The wheel is built once per session from the working tree with ``pip wheel`` (a few
seconds; pip fetches the build backend, hatchling, as for any ``pip install .``).
"""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from _fixture_docs import run_refloss

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = REPO / "conformance"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("refloss-*.whl")
    return built


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(path).decode("utf-8"))


def test_wheel_ships_fixtures_and_schema(wheel, names):
    fixtures = sorted(p.name for p in CONFORMANCE.glob("*_test.json"))
    assert fixtures  # the check below is not vacuous
    shipped = {
        f"refloss/conformance/{name}"
        for name in [*fixtures, "README.md", "CHANGELOG.md"]
        + [f"schema/{p.name}" for p in (CONFORMANCE / "schema").iterdir()]
    }
    assert shipped <= names, sorted(shipped - names)
    with zipfile.ZipFile(wheel) as archive:
        for name in shipped:  # byte for byte the repository's files
            relative = name.removeprefix("refloss/conformance/")
            assert archive.read(name) == (CONFORMANCE / relative).read_bytes(), name


def test_wheel_leaves_out_generator_and_consumers(names):
    conformance = {n for n in names if n.startswith("refloss/conformance/")}
    unexpected = {
        n
        for n in conformance
        if "/" in n.removeprefix("refloss/conformance/")
        and not n.startswith("refloss/conformance/schema/")
    }
    assert not unexpected, sorted(unexpected)
    assert not any("generator" in n or "consumers" in n or n.endswith(".mjs") for n in names)
    assert not any(n.startswith(("conformance/", "tests/", "benchmarks/", "docs/")) for n in names)


def test_wheel_ships_the_package_and_py_typed(names):
    assert "refloss/py.typed" in names
    sources = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "refloss").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert sources <= names, sorted(sources - names)


def test_wheel_metadata(wheel, names, metadata):
    (license_path,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(license_path) == (REPO / "LICENSE").read_bytes()
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in license_text
    assert "Copyright 2026 The refloss authors" in license_text
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Author"] == "The refloss authors"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://github.com/refloss/refloss") for u in urls.values())
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Keywords"]


def test_installed_layout_finds_its_fixtures(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a pure-Python wheel installs by unpacking
    code = textwrap.dedent(
        """
        import json
        import refloss, refloss.testing
        from refloss.testing._fixtures import _conformance_dir
        cases = refloss.testing.fixture_cases("logsumexp")
        print(json.dumps({
            "package": refloss.__file__,
            "directory": str(_conformance_dir()),
            "names": refloss.testing.fixture_names(),
            "cases": len(cases),
        }))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    # run outside the checkout, so that only the unpacked wheel provides refloss
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert Path(found["directory"]) == site / "refloss" / "conformance"
    assert found["names"] == sorted(
        p.name[: -len("_test.json")] for p in CONFORMANCE.glob("*_test.json")
    )
    assert found["cases"] > 0

    argv = ("verify", "--fixture", "logsumexp", "--backend", "numpy")
    proc = run_refloss(*argv, cwd=tmp_path, pythonpath=(site,))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: refloss:" in proc.stdout
