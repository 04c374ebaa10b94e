"""The ``refloss`` command: exit statuses, usage errors, ``--numerics-only``, ``--version``.

The fixture file here is hand-made (``toy``: a log-sum-exp with one invalid case), so the
expected counts are known exactly.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
from _fixture_docs import NOTES, TOY_TESTS, document, run_python, run_refloss

import refloss
from refloss import cli

REPO = Path(__file__).resolve().parent.parent


def toy_document():
    """Two cases: ``log 2`` (flag ``Basic``) and an axis out of range (flag ``BadAxis``)."""
    tests = [
        dict(TOY_TESTS[0]),
        dict(TOY_TESTS[2], tcId=2, flags=["BadAxis"], dtypes=["float64", "float32"]),
    ]
    notes = {
        "Basic": NOTES["Basic"],
        "BadAxis": {"kind": "EDGE_CASE", "description": "an axis out of range"},
    }
    return document(
        tests, header="hand-made fixture for the tests of the refloss command", notes=notes
    )


@pytest.fixture
def toy_dir(tmp_path):
    directory = tmp_path / "fixtures"
    directory.mkdir()
    (directory / "toy_test.json").write_text(json.dumps(toy_document()))
    other = toy_document()
    other["notes"]["OtherFlag"] = {"kind": "BASIC", "description": "only in the other file"}
    (directory / "other_test.json").write_text(json.dumps(other))
    return directory


@pytest.fixture
def no_validation_impl(tmp_path, monkeypatch):
    """``lse:lse``: a correct log-sum-exp that does not validate ``axis`` (returns anyway)."""
    (tmp_path / "lse.py").write_text(
        textwrap.dedent(
            """
            import array_api_compat

            def lse(x, /, *, axis=-1):
                xp = array_api_compat.array_namespace(x)
                m = xp.max(x)
                return m + xp.log(xp.sum(xp.exp(x - m)))
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "lse", raising=False)
    return "lse:lse"


def verify(toy_dir, *argv):
    return cli.main(["verify", "--fixtures-dir", str(toy_dir), *argv])


def usage_error(capsys, toy_dir, *argv):
    """Run a command that must be a usage error; return its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        verify(toy_dir, *argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("usage: refloss verify"), err  # argparse printed it
    assert "refloss verify: error: " in err
    return err


# ---------------------------------------------------------------------------------------------
# backends that cannot be imported
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def torch_missing(monkeypatch):
    """Make ``import torch`` fail as it does where torch is not installed."""
    monkeypatch.setitem(sys.modules, "torch", None)


def test_requested_backend_that_is_missing_is_an_error(torch_missing, toy_dir, capsys):
    err = usage_error(capsys, toy_dir, "--backend", "numpy", "--backend", "torch")
    assert "backend 'torch' was requested but cannot be imported" in err
    assert "import of torch halted" in err  # the ImportError's own message


def test_missing_backend_is_not_run_when_none_is_requested(toy_dir):
    # a fresh process (loading JAX switches x64 on process-wide) in which torch is not found
    code = f"""
import importlib.util, sys
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "torch" else find_spec(name, *a)
from refloss.cli import main
status = main(["verify", "--fixtures-dir", {str(toy_dir)!r}, "--fixture", "toy", "--json"])
assert "torch" not in sys.modules
raise SystemExit(status)
"""
    proc = run_python("-c", code, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    backends = {row["backend"] for row in json.loads(proc.stdout)["summary"]}
    installed = {"numpy", *filter(importlib.util.find_spec, ["array_api_strict", "jax"])}
    assert backends == installed


def test_requested_backend_that_is_missing_in_a_fresh_process(tmp_path):
    # a package named jax that fails to import, ahead of the real one on the path
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text('raise ImportError("jax is broken here")\n')
    argv = ("verify", "--fixture", "logsumexp", "--backend", "jax")
    proc = run_refloss(*argv, cwd=tmp_path, pythonpath=(tmp_path, REPO))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "backend 'jax' was requested but cannot be imported: jax is broken here" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------------------------------------
# a run in which nothing passed
# ---------------------------------------------------------------------------------------------


def test_everything_skipped_is_a_failure(toy_dir, capsys):
    argv = ("--fixture", "toy", "--backend", "numpy", "--skip-flag", "Basic", "--numerics-only")
    assert verify(toy_dir, *argv) == 1
    out = capsys.readouterr().out
    assert "FAILED: refloss: 0 passed, 0 failed, 4 skipped" in out
    assert "FAILED: refloss: no case passed (4 skipped, 0 failed)" in out
    assert "OK" not in out

    assert verify(toy_dir, *argv, "--json") == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False
    assert report["failures"] == []
    assert len(report["skipped"]) == 4
    assert "no case passed" in captured.err


def test_one_passing_case_is_enough(toy_dir, capsys):
    argv = ("--fixture", "toy", "--backend", "numpy", "--dtype", "float64", "--json")
    assert verify(toy_dir, *argv, "--skip-flag", "BadAxis") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert [row["passed"] for row in report["summary"]] == [1]


# ---------------------------------------------------------------------------------------------
# --skip-flag, --impl and --fixture
# ---------------------------------------------------------------------------------------------


def test_unknown_skip_flag_names_the_known_flags(toy_dir, capsys):
    err = usage_error(capsys, toy_dir, "--fixture", "toy", "--skip-flag", "Basik")
    assert "unknown skip flag(s) Basik" in err
    assert "BadAxis, Basic" in err
    assert "OtherFlag" not in err  # only the files being run count


def test_known_flags_are_the_union_over_the_files_run(toy_dir, capsys):
    argv = ("--backend", "numpy", "--dtype", "float64", "--json", "--skip-flag", "OtherFlag")
    assert verify(toy_dir, *argv) == 0  # known in other_test.json
    assert json.loads(capsys.readouterr().out)["ok"] is True
    err = usage_error(capsys, toy_dir, "--fixture", "toy", "--skip-flag", "OtherFlag")
    assert "unknown skip flag(s) OtherFlag" in err


def test_impl_needs_exactly_one_fixture(toy_dir, capsys, no_validation_impl):
    err = usage_error(capsys, toy_dir, "--impl", no_validation_impl)
    assert "--impl goes with exactly one --fixture NAME (got 0)" in err
    err = usage_error(
        capsys, toy_dir, "--impl", no_validation_impl, "--fixture", "toy", "--fixture", "other"
    )
    assert "--impl goes with exactly one --fixture NAME (got 2)" in err


def test_impl_that_cannot_be_imported(toy_dir, capsys, tmp_path, monkeypatch):
    (tmp_path / "broken_impl.py").write_text("raise RuntimeError('broken at import')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    err = usage_error(capsys, toy_dir, "--impl", "broken_impl:f", "--fixture", "toy")
    assert "cannot load broken_impl:f: RuntimeError: broken at import" in err


def test_negative_max_failures_is_a_usage_error(toy_dir, capsys):
    err = usage_error(capsys, toy_dir, "--max-failures", "-1")
    assert "--max-failures must be 0 or more" in err


def test_argparse_rejects_an_unknown_backend_name(toy_dir, capsys):
    err = usage_error(capsys, toy_dir, "--backend", "tensorflow")
    assert "invalid choice: 'tensorflow'" in err


# ---------------------------------------------------------------------------------------------
# --numerics-only
# ---------------------------------------------------------------------------------------------


def test_numerics_only_skips_invalid_cases(toy_dir, capsys, no_validation_impl):
    argv = ("--impl", no_validation_impl, "--fixture", "toy", "--backend", "numpy", "--json")
    # without the switch the implementation fails the invalid case: it returns a value
    assert verify(toy_dir, *argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert {(f["tcId"], f["dtype"]) for f in report["failures"]} == {
        (2, "float64"),
        (2, "float32"),
    }
    assert "returned instead of raising ValueError" in report["failures"][0]["detail"]

    assert verify(toy_dir, *argv, "--numerics-only") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["failures"] == []
    assert {(s["tcId"], s["dtype"], s["reason"]) for s in report["skipped"]} == {
        (2, "float64", "numerics-only"),
        (2, "float32", "numerics-only"),
    }
    assert [row["passed"] for row in report["summary"]] == [1, 1]


def test_numerics_only_in_the_table_and_help(toy_dir, capsys, no_validation_impl):
    argv = ("--impl", no_validation_impl, "--fixture", "toy", "--backend", "numpy")
    assert verify(toy_dir, *argv, "--numerics-only") == 0
    out = capsys.readouterr().out
    assert "OK: lse:lse: 2 passed, 0 failed, 2 skipped" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["verify", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--numerics-only" in help_text
    assert "'numerics-only'" in " ".join(help_text.split())


def test_refloss_itself_still_rejects_invalid_cases(toy_dir, capsys):
    # the refloss run checks the invalid case (it passes by raising), unless told otherwise
    argv = ("--fixture", "toy", "--backend", "numpy", "--dtype", "float64", "--json")
    assert verify(toy_dir, *argv) == 0
    assert [row["passed"] for row in json.loads(capsys.readouterr().out)["summary"]] == [2]
    assert verify(toy_dir, *argv, "--numerics-only") == 0
    assert [row["passed"] for row in json.loads(capsys.readouterr().out)["summary"]] == [1]


# ---------------------------------------------------------------------------------------------
# --version
# ---------------------------------------------------------------------------------------------


def test_version_from_the_installed_metadata():
    proc = run_refloss("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"refloss {importlib.metadata.version('refloss')}\n"


def test_version_falls_back_to_the_package_attribute(monkeypatch, capsys):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(refloss, "__version__", "9.8.7")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == "refloss 9.8.7\n"


def test_json_report_carries_the_version(toy_dir, capsys):
    verify(toy_dir, "--fixture", "toy", "--backend", "numpy", "--json")
    assert json.loads(capsys.readouterr().out)["refloss_version"] == refloss.__version__
