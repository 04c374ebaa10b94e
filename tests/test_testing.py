"""refloss.testing: fixture loading, the isclose_v1 rule, assertions, the plugin and the CLI."""

from __future__ import annotations

import json
import sys
import textwrap
import unittest
from pathlib import Path

import array_api_strict
import numpy as np
import pytest
from _fixture_docs import LOG2, TOY_TESTS, document, run_python, run_refloss, tensor

import refloss
from refloss import cli
from refloss.testing import (
    CaseSkipped,
    FixtureMismatch,
    Tolerance,
    assert_array_properties,
    assert_close,
    check_against_fixture,
    decode_tensor,
    encode_tensor,
    fixture_cases,
    fixture_names,
    isclose_v1,
)
from refloss.testing._backends import backend_scope
from refloss.testing._families import resolve_function
from refloss.testing._fixtures import _conformance_dir

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# hand-made fixture files (tests/_fixture_docs.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def toy_dir(tmp_path):
    (tmp_path / "toy_test.json").write_text(json.dumps(document(TOY_TESTS)))
    (tmp_path / "README.md").write_text("not a fixture")
    return tmp_path


@pytest.fixture
def toy(toy_dir):
    return {case.tc_id: case for case in fixture_cases("toy", toy_dir)}


def np_logsumexp(x, /, *, axis=-1):
    """A NumPy-only reference for the toy file (works for array_api_strict through xp)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} out of range for rank {x.ndim}")
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    with np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf row
        return xp.squeeze(m, axis=axis) + xp.log(xp.sum(xp.exp(x - m), axis=axis))


# ---------------------------------------------------------------------------------------------
# tensor decoding
# ---------------------------------------------------------------------------------------------


def test_decode_tensor_non_finite_and_signed_zero():
    x = decode_tensor(tensor("float64", [2, 2], ["NaN", "Infinity", "-Infinity", -0.0]))
    assert x.shape == (2, 2)
    assert x.dtype == np.float64
    assert np.isnan(x[0, 0])
    assert x[0, 1] == np.inf
    assert x[1, 0] == -np.inf
    assert x[1, 1] == 0.0
    assert np.signbit(x[1, 1])
    assert not x.flags.writeable


def test_decode_tensor_scalar_int_bool():
    s = decode_tensor(tensor("float64", [], [1.5]))
    assert s.shape == ()
    assert float(s) == 1.5
    i = decode_tensor(tensor("int32", [3], [1, -2, 3]))
    assert i.dtype == np.int32
    b = decode_tensor(tensor("bool", [1, 2], [True, False]))
    assert b.dtype == np.bool_
    assert b.shape == (1, 2)
    e = decode_tensor(tensor("float64", [0, 3], []))
    assert e.shape == (0, 3)


def test_decode_tensor_bits_are_used_and_checked():
    t = tensor("float64", [2], [0.1, "-Infinity"])
    t["bits"] = "3fb999999999999a" + "fff0000000000000"
    x = decode_tensor(t)
    assert x[0] == 0.1
    t["bits"] = "3fb999999999999b" + "fff0000000000000"
    with pytest.raises(ValueError, match="bits and data disagree"):
        decode_tensor(t)
    t32 = tensor("float32", [1], [0.5])
    t32["bits"] = "3f000000"
    assert decode_tensor(t32).dtype == np.float32


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (tensor("float64", [2, 2], [1.0, 2.0, 3.0]), ValueError, "needs 4 elements"),
        (tensor("float64", [1], ["nan"]), ValueError, "not a number"),
        (tensor("float32", [1], [0.1]), ValueError, "not exactly representable"),
        (tensor("int64", [1], [1.5]), TypeError, "JSON integers"),
        (tensor("bool", [1], [1]), TypeError, "true/false"),
        (tensor("complex64", [1], [1.0]), ValueError, "unknown dtype"),
    ],
)
def test_decode_tensor_rejects(bad, error, match):
    with pytest.raises(error, match=match):
        decode_tensor(bad)


def test_encode_tensor_round_trips():
    x = np.array([[np.nan, -np.inf], [np.inf, -0.0]])
    enc = encode_tensor(x)
    assert enc["data"] == ["NaN", "-Infinity", "Infinity", -0.0]
    json.dumps(enc, allow_nan=False)
    back = decode_tensor(enc)
    assert np.array_equal(back, x, equal_nan=True)
    assert np.signbit(back[1, 1])


# ---------------------------------------------------------------------------------------------
# the loader
# ---------------------------------------------------------------------------------------------


def test_fixture_names_and_name_forms(toy_dir):
    assert fixture_names(toy_dir) == ["toy"]
    for name in ("toy", "toy_test", "toy_test.json"):
        assert [c.tc_id for c in fixture_cases(name, toy_dir)] == [1, 2, 3, 4]
    with pytest.raises(FileNotFoundError, match="available: toy"):
        fixture_cases("missing", toy_dir)


def test_case_fields(toy):
    one = toy[1]
    assert one.file == "toy"
    assert one.function == "refloss.logsumexp"
    assert one.kind == "function"
    assert one.positional == ("x",)
    assert one.outputs == ("output",)
    assert one.flags == ("Basic",)
    assert one.has_flag("Basic")
    assert one.dtypes == ("float64", "float32")
    assert dict(one.params) == {"axis": -1}
    assert one.tolerance["float32"] == Tolerance(2e-6, 0.0)
    assert one.expected["output"].shape == ()
    assert one.id == "toy-tc1"
    assert toy[3].params["axis"] == 5  # a case's params override the group's
    assert toy[3].result == "invalid"
    assert toy[3].error == "ValueError"
    assert toy[3].expected == {}
    assert toy[4].tolerance["float64"] == Tolerance(0.25, 0.0)  # override
    assert toy[4].tolerance["float32"] == Tolerance(2e-6, 0.0)  # inherited
    with pytest.raises(AttributeError):
        one.tc_id = 7
    with pytest.raises(TypeError):
        one.params["axis"] = 0


def test_non_finite_params_are_decoded(tmp_path):
    test = dict(TOY_TESTS[0], params={"temperature": "Infinity", "reduction": "sum"})
    (tmp_path / "p_test.json").write_text(json.dumps(document([test])))
    (case,) = fixture_cases("p", tmp_path)
    assert case.params["temperature"] == float("inf")
    assert case.params["reduction"] == "sum"


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(schema="other_v2.json"), "schema"),
        (lambda d: d["testGroups"][0]["tests"].append(dict(TOY_TESTS[0])), "duplicate tcId"),
        (lambda d: d["testGroups"][0]["tests"][0].update(flags=["Nope"]), "not described"),
        (lambda d: d.update(comparison="allclose"), "comparison"),
    ],
)
def test_malformed_files_are_rejected(tmp_path, mutate, match):
    doc = document([dict(t) for t in TOY_TESTS])
    mutate(doc)
    (tmp_path / "bad_test.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        fixture_cases("bad", tmp_path)


def test_default_fixture_dir_in_a_checkout():
    assert Path(str(_conformance_dir())) == REPO / "conformance"


# ---------------------------------------------------------------------------------------------
# the comparison rule
# ---------------------------------------------------------------------------------------------


def close(actual, expected, rtol=0.0, atol=0.0, **kw):
    return bool(isclose_v1(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, **kw))


@pytest.mark.parametrize(
    ("actual", "expected", "ok"),
    [
        (np.nan, np.nan, True),
        (np.nan, 1.0, False),
        (1.0, np.nan, False),
        (np.inf, np.inf, True),
        (-np.inf, -np.inf, True),
        (np.inf, -np.inf, False),
        (1e308, np.inf, False),
        (np.inf, 1e308, False),
        (-0.0, 0.0, True),
        (0.0, -0.0, True),
    ],
)
def test_isclose_special_values(actual, expected, ok):
    assert close(actual, expected, rtol=1e-12, atol=1e-300) is ok


def test_isclose_signed_zero_and_asymmetry():
    assert not close(-0.0, 0.0, signed_zero=True)
    assert close(0.0, 0.0, signed_zero=True)
    # the expected value is the reference: |a - e| <= atol + rtol * |e|
    assert close(1.0, 2.0, rtol=0.5)
    assert not close(2.0, 1.0, rtol=0.5)
    assert close(1.25, 1.0, atol=0.25)
    assert not close(1.25, 1.0, atol=0.125)


def test_isclose_float32_actual_against_float64_expected():
    expected = np.array(LOG2)
    actual = np.float32(LOG2)
    assert close(actual, expected, rtol=2e-6)
    assert not close(actual, expected, rtol=1e-12)


def test_isclose_integers_and_bools_are_exact():
    assert not close(np.array([3], np.int64), np.array([4], np.int64), rtol=1.0, atol=1.0)
    assert close(np.array([True]), np.array([True]))
    assert not close(np.array([True]), np.array([False]))


# ---------------------------------------------------------------------------------------------
# assertions
# ---------------------------------------------------------------------------------------------


def test_assert_close_passes_on_specials():
    xp = array_api_strict
    assert_close(xp.asarray([1.0, xp.nan, -xp.inf]), xp.asarray([1.0, xp.nan, -xp.inf]))
    assert_close(np.asarray([1.0 + 1e-9]), np.asarray([1.0]), rtol=1e-8)


def test_assert_close_checks_namespace_before_values():
    with pytest.raises(AssertionError, match="namespace differs"):
        assert_close(np.asarray([1.0]), array_api_strict.asarray([1.0]))
    with pytest.raises(AssertionError, match="namespace differs"):
        assert_close(np.asarray([1.0]), np.asarray([1.0]), xp=array_api_strict)


def test_assert_close_checks_dtype_shape_device():
    xp = array_api_strict
    with pytest.raises(AssertionError, match="dtype differs"):
        assert_close(xp.asarray([1.0], dtype=xp.float32), xp.asarray([1.0]))
    with pytest.raises(AssertionError, match="shape differs"):
        assert_close(xp.asarray([1.0]), xp.asarray(1.0))  # no broadcasting
    other = xp.Device("device1")
    with pytest.raises(AssertionError, match="device differs"):
        assert_close(xp.asarray([1.0], device=other), xp.asarray([1.0]))
    with pytest.raises(AssertionError, match="expected an array"):
        assert_close(1.0, xp.asarray(1.0))


def test_assert_close_reports_values():
    with pytest.raises(AssertionError, match=r"at \[1\]: actual") as info:
        assert_close(np.asarray([1.0, 2.0]), np.asarray([1.0, 3.0]), err_msg="context")
    message = str(info.value)
    assert message.startswith("context")
    assert "1 of 2 elements differ" in message
    assert "desired:" in message


def test_assert_close_default_rtol_is_per_dtype():
    xp = array_api_strict
    assert_close(xp.asarray([1.0001], dtype=xp.float32), xp.asarray([1.0], dtype=xp.float32))
    with pytest.raises(AssertionError):
        assert_close(xp.asarray([1.0001]), xp.asarray([1.0]))


def test_assert_array_properties():
    xp = array_api_strict
    x = xp.asarray([[1.0, 2.0]], dtype=xp.float32)
    assert_array_properties(x, xp=xp, dtype=xp.float32, shape=(1, 2), device=x.device)
    assert_array_properties(np.zeros(2), xp=np)  # numpy and array_api_compat.numpy agree
    with pytest.raises(AssertionError, match="dtype"):
        assert_array_properties(x, dtype=xp.float64)
    with pytest.raises(AssertionError, match="shape"):
        assert_array_properties(x, shape=(2,))
    with pytest.raises(AssertionError, match="device"):
        assert_array_properties(x, device=xp.Device("device1"))


# ---------------------------------------------------------------------------------------------
# check_against_fixture
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", [np, array_api_strict], ids=["numpy", "strict"])
def test_check_passes_a_correct_function(toy, namespace, dtype):
    seen = []

    def fn(x, /, *, axis):
        seen.append(x.dtype)
        return np_logsumexp(x, axis=axis)

    outcomes = []
    for case in toy.values():
        try:
            outcomes.append(check_against_fixture(fn, case, xp=namespace, dtype=dtype).outcome)
        except CaseSkipped:
            outcomes.append("skipped")
    if dtype == "float64":
        assert outcomes == ["matched", "matched", "rejected", "matched"]
    else:
        assert outcomes == ["matched", "skipped", "skipped", "skipped"]
    assert all(d == getattr(namespace, dtype) for d in seen)


def test_check_runs_refloss_itself(toy):
    for case in toy.values():
        check_against_fixture(refloss.logsumexp, case, xp=array_api_strict, exact_error=True)


def test_skip_is_a_unittest_skip(toy):
    with pytest.raises(CaseSkipped, match="float64 only") as info:
        check_against_fixture(np_logsumexp, toy[2], xp=np, dtype="float32")
    assert isinstance(info.value, unittest.SkipTest)


@pytest.mark.parametrize(
    "shape_of_return",
    ["array", "tuple", "list", "nested", "mapping"],
)
def test_check_accepts_return_conventions(toy, shape_of_return):
    def fn(x, /, *, axis):
        out = np_logsumexp(x, axis=axis)
        return {
            "array": out,
            "tuple": (out,),
            "list": [out],
            "nested": ((out,),),
            "mapping": {"output": out},
        }[shape_of_return]

    check_against_fixture(fn, toy[1], xp=np)


def test_check_reports_a_wrong_value(toy):
    def wrong(x, /, *, axis):
        return np_logsumexp(x, axis=axis) * 1.001

    with pytest.raises(FixtureMismatch) as info:
        check_against_fixture(wrong, toy[1], xp=np)
    err = info.value
    assert isinstance(err, AssertionError)
    assert err.case.tc_id == 1
    assert err.output == "output"
    assert err.expected is not None
    assert err.actual is not None
    text = str(err)
    for piece in ("tcId 1", "two zeros: log 2", "flags: Basic", "expected:", "actual:", repr(LOG2)):
        assert piece in text


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (
            lambda x, /, *, axis: np.asarray(np_logsumexp(x, axis=axis), dtype=np.float64),
            "dtype differs",
        ),
        (lambda x, /, *, axis: np.asarray([LOG2]), "shape differs"),
        (lambda x, /, *, axis: float(LOG2), "expected an array"),
        (lambda x, /, *, axis: (np.asarray(LOG2), np.asarray(LOG2)), "returned 2 array"),
        (lambda x, /, *, axis: {"loss": np.asarray(LOG2)}, "mapping without"),
    ],
    ids=["dtype", "shape", "python-float", "too-many", "wrong-name"],
)
def test_check_properties_before_values(toy, fn, match):
    dtype = "float32" if match == "dtype differs" else "float64"
    with pytest.raises(FixtureMismatch, match=match):
        check_against_fixture(fn, toy[1], xp=np, dtype=dtype)


def test_check_namespace_of_outputs(toy):
    def returns_numpy(x, /, *, axis):
        return np.asarray(LOG2)

    with pytest.raises(FixtureMismatch, match="namespace differs"):
        check_against_fixture(returns_numpy, toy[1], xp=array_api_strict)


def test_check_device_of_outputs(toy):
    xp = array_api_strict

    def moves_to_default(x, /, *, axis):
        return xp.asarray(np_logsumexp(x, axis=axis), device=xp.Device("CPU_DEVICE"))

    other = xp.Device("device1")
    check_against_fixture(np_logsumexp, toy[1], xp=xp, device=other)
    with pytest.raises(FixtureMismatch, match="device differs"):
        check_against_fixture(moves_to_default, toy[1], xp=xp, device=other)


def test_check_invalid_cases(toy):
    def type_error(x, /, *, axis):
        raise TypeError("bad axis type")

    def runtime_error(x, /, *, axis):
        raise RuntimeError("boom")

    def accepts(x, /, *, axis):
        return x

    report = check_against_fixture(type_error, toy[3], xp=np)
    assert report.outcome == "rejected"
    assert report.detail.startswith("TypeError: bad axis type")
    with pytest.raises(FixtureMismatch, match="the fixture pins ValueError"):
        check_against_fixture(type_error, toy[3], xp=np, exact_error=True)
    with pytest.raises(FixtureMismatch, match="RuntimeError: boom"):
        check_against_fixture(runtime_error, toy[3], xp=np)
    with pytest.raises(FixtureMismatch, match="returned instead of raising ValueError"):
        check_against_fixture(accepts, toy[3], xp=np)


def test_check_valid_case_that_raises(toy):
    def rejects(x, /, *, axis):
        raise ValueError("not supported")

    with pytest.raises(FixtureMismatch, match="raised ValueError: not supported"):
        check_against_fixture(rejects, toy[1], xp=np)


def test_check_acceptable_case(tmp_path):
    test = dict(TOY_TESTS[0], result="acceptable")
    (tmp_path / "acc_test.json").write_text(json.dumps(document([test])))
    (case,) = fixture_cases("acc", tmp_path)

    def rejects(x, /, *, axis):
        raise ValueError("no target")

    assert check_against_fixture(rejects, case, xp=np).outcome == "rejected"
    assert check_against_fixture(np_logsumexp, case, xp=np).outcome == "matched"
    with pytest.raises(FixtureMismatch):
        check_against_fixture(lambda x, /, *, axis: x[0] * np.nan, case, xp=np)


def test_check_detects_input_mutation(toy):
    def mutates(x, /, *, axis):
        out = np_logsumexp(x, axis=axis)
        x[0] = 5.0
        return out

    with pytest.raises(FixtureMismatch, match="modified its input 'x'"):
        check_against_fixture(mutates, toy[1], xp=np)


def test_check_signed_zero_flag(tmp_path):
    tests = [
        {
            "tcId": 1,
            "comment": "-0.0 expected",
            "flags": ["SignedZero"],
            "inputs": {"x": tensor("float64", [1], [-0.0])},
            "dtypes": ["float64"],
            "expected": {"output": tensor("float64", [1], [-0.0])},
            "result": "valid",
            "provenance": {},
        },
    ]
    (tmp_path / "z_test.json").write_text(json.dumps(document(tests, params={})))
    (case,) = fixture_cases("z", tmp_path)
    check_against_fixture(lambda x: x * 1.0, case, xp=np)
    with pytest.raises(FixtureMismatch, match="not close"):
        check_against_fixture(lambda x: x * 0.0 + 0.0, case, xp=np)


def test_check_keyword_arrays_and_outputs_by_name(tmp_path):
    tests = [
        {
            "tcId": 1,
            "comment": "a + w, a * w",
            "flags": [],
            "inputs": {
                "a": tensor("float64", [2], [1.0, 2.0]),
                "w": tensor("float64", [2], [0.5, 0.25]),
                "ids": tensor("int64", [2], [3, 4]),
            },
            "dtypes": ["float64", "float32"],
            "expected": {
                "total": tensor("float64", [2], [1.5, 2.25]),
                "product": tensor("float64", [2], [0.5, 0.5]),
                "ids_out": tensor("int64", [2], [3, 4]),
            },
            "result": "valid",
            "provenance": {},
        },
    ]
    doc = document(
        tests, params={"scale": 1.0}, positional=("a",), outputs=("total", "product", "ids_out")
    )
    (tmp_path / "kw_test.json").write_text(json.dumps(doc))
    (case,) = fixture_cases("kw", tmp_path)

    def fn(a, /, *, w, ids, scale):
        assert ids.dtype == np.int64
        return a + w * scale, (a * w, ids)

    for dtype in ("float64", "float32"):
        check_against_fixture(fn, case, xp=np, dtype=dtype)
    with pytest.raises(FixtureMismatch, match="ids_out"):
        check_against_fixture(lambda a, /, *, w, ids, scale: (a + w, a * w, ids + 1), case, xp=np)


class RunningSum:
    """A toy sequence adapter: the state is a running total."""

    @staticmethod
    def init(*, xp, start=0.0, offset=None):
        total = xp.asarray(float(start), dtype=xp.float64)
        return total if offset is None else total + xp.sum(offset)

    @staticmethod
    def step(state, x, /, *, limit=float("inf")):
        import array_api_compat

        xp = array_api_compat.array_namespace(x)
        total = state + xp.sum(x)
        if float(total) > limit:
            raise ValueError(f"total {float(total)} exceeds limit {limit}")
        return total, total


def sequence_document(second_total):
    steps = [
        {
            "inputs": {"x": tensor("float64", [2], [1.0, 2.0])},
            "expected": {"total": tensor("float64", [], [4.0])},
        },
        {
            "inputs": {"x": tensor("float64", [1], [0.5])},
            "expected": {"total": tensor("float64", [], [second_total])},
        },
    ]
    tests = [
        {
            "tcId": 1,
            "comment": "two steps",
            "flags": [],
            "init": {"params": {"start": 1.0}},
            "steps": steps,
            "dtypes": ["float64"],
            "result": "valid",
            "provenance": {},
        }
    ]
    return document(
        tests, function="refloss.toy.running_sum", kind="sequence", params={}, outputs=("total",)
    )


def test_sequence_cases_replay(tmp_path):
    (tmp_path / "seq_test.json").write_text(json.dumps(sequence_document(4.5)))
    (case,) = fixture_cases("seq", tmp_path)
    assert case.kind == "sequence"
    assert len(case.steps) == 2
    assert check_against_fixture(RunningSum, case, xp=np).outcome == "matched"
    with pytest.raises(CaseSkipped, match="init"):
        check_against_fixture(np_logsumexp, case, xp=np)
    (tmp_path / "seq_test.json").write_text(json.dumps(sequence_document(5.0)))
    (case,) = fixture_cases("seq", tmp_path)
    with pytest.raises(FixtureMismatch, match="step 1"):
        check_against_fixture(RunningSum, case, xp=np)


def test_sequence_init_state_and_invalid_cases(tmp_path):
    doc = sequence_document(4.5)
    (test,) = doc["testGroups"][0]["tests"]
    # the initial state may come as tensors: 1 (start) + 0.25 + 0.25 (offset)
    test["init"] = {
        "params": {"start": 1.0},
        "state": {"offset": tensor("float64", [2], [0.25, 0.25])},
    }
    test["steps"][0]["expected"]["total"]["data"] = [4.5]
    test["steps"][1]["expected"]["total"]["data"] = [5.0]
    rejected = dict(test, tcId=2, result="invalid", error="ValueError")
    rejected["steps"] = [dict(step, params={"limit": 4.75}) for step in test["steps"]]
    rejected = {k: v for k, v in rejected.items() if k != "expected"}
    doc["testGroups"][0]["tests"] = [test, rejected]
    (tmp_path / "seq_test.json").write_text(json.dumps(doc))
    valid, invalid = fixture_cases("seq", tmp_path)
    assert check_against_fixture(RunningSum, valid, xp=array_api_strict).outcome == "matched"
    report = check_against_fixture(RunningSum, invalid, xp=np)
    assert report.outcome == "rejected"
    assert report.detail.startswith("step 1: ValueError")

    class NeverRejects(RunningSum):
        @staticmethod
        def step(state, x, /, *, limit):
            return RunningSum.step(state, x)

    with pytest.raises(FixtureMismatch, match="no step raised ValueError"):
        check_against_fixture(NeverRejects, invalid, xp=np)


# ---------------------------------------------------------------------------------------------
# function lookup
# ---------------------------------------------------------------------------------------------


def test_resolve_function():
    assert resolve_function("refloss.logsumexp") is refloss.logsumexp
    wrapped = resolve_function("refloss.value_and_grad(refloss.retrieval_loss)")
    assert callable(wrapped)
    for bad in ("os.system", "refloss.x; import os", "numpy.sum(refloss.logsumexp)"):
        with pytest.raises(ValueError, match="not a refloss name"):
            resolve_function(bad)


# ---------------------------------------------------------------------------------------------
# import hygiene and the pytest plugin
# ---------------------------------------------------------------------------------------------


def run_code(code, cwd=REPO):
    """``python -c CODE`` (dedented) in a fresh process with the repository importable."""
    return run_python("-c", textwrap.dedent(code), cwd=cwd)


def test_import_does_not_pull_pytest_or_array_libraries():
    proc = run_code(
        """
        import sys
        import refloss.testing, refloss.cli
        heavy = {"pytest", "torch", "jax", "array_api_strict"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    assert proc.returncode == 0, proc.stderr


def test_plugin_provides_refloss_xp_and_cases(toy_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text('pytest_plugins = ["refloss.testing.pytest_plugin"]\n')
    (project / "test_toy.py").write_text(
        textwrap.dedent(
            f"""
        import pytest
        import refloss
        from refloss.testing import check_against_fixture
        from refloss.testing.pytest_plugin import fixture_params

        @pytest.mark.refloss_fixture("toy", directory={str(toy_dir)!r})
        def test_marker(refloss_case, refloss_xp, refloss_device, refloss_dtype):
            check_against_fixture(refloss.logsumexp, refloss_case, xp=refloss_xp,
                                  dtype=refloss_dtype, device=refloss_device)

        @pytest.mark.parametrize("refloss_case", fixture_params("toy", {str(toy_dir)!r}))
        def test_explicit(refloss_case):
            assert refloss_case.file == "toy"
        """
        )
    )
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    proc = run_python("-m", "pytest", "--collect-only", "-q", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_marker[numpy-float64-tc1]" in proc.stdout
    assert "test_explicit[tc4]" in proc.stdout
    proc = run_python("-m", "pytest", "-q", "-k", "numpy or strict or explicit", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout
    assert "skipped" in proc.stdout  # float64-only cases in float32


@pytest.mark.parametrize("initial", [False, True])
def test_plugin_scopes_jax_x64_to_its_tests(initial, toy_dir, tmp_path):
    pytest.importorskip("jax")
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(
        textwrap.dedent(
            f"""
        import jax
        jax.config.update("jax_enable_x64", {initial!r})  # the user's own setting
        pytest_plugins = ["refloss.testing.pytest_plugin"]
        """
        )
    )
    (project / "test_x64.py").write_text(
        textwrap.dedent(
            f"""
        import jax
        import pytest
        import refloss
        from refloss.testing import check_against_fixture

        def test_before():
            assert jax.config.read("jax_enable_x64") is {initial!r}

        @pytest.mark.refloss_fixture("toy", directory={str(toy_dir)!r})
        @pytest.mark.parametrize("refloss_dtype", ["float64"])
        def test_marker(refloss_case, refloss_xp, refloss_device, refloss_dtype):
            if refloss_xp.__name__.startswith("jax"):
                assert jax.config.read("jax_enable_x64") is True
            check_against_fixture(refloss.logsumexp, refloss_case, xp=refloss_xp,
                                  dtype=refloss_dtype, device=refloss_device)

        def test_xp_of_the_user(xp):
            assert xp == "the user's own"

        @pytest.fixture
        def xp():
            return "the user's own"

        def test_after():
            assert jax.config.read("jax_enable_x64") is {initial!r}
        """
        )
    )
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    proc = run_python("-m", "pytest", "-v", "-k", "not torch", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the float64 JAX case ran (it needs x64) and the flag was the user's before and after
    assert "test_marker[jax-tc1-float64] PASSED" in proc.stdout, proc.stdout
    assert "test_xp_of_the_user PASSED" in proc.stdout
    order = [proc.stdout.index(f"{name} PASSED") for name in ("test_before", "test_after")]
    assert order[0] < proc.stdout.index("test_marker[jax-tc1-float64]") < order[1]


def test_backend_scope_restores_jax_x64():
    jax = pytest.importorskip("jax")
    before = jax.config.read("jax_enable_x64")
    try:
        for initial in (False, True):
            jax.config.update("jax_enable_x64", initial)
            with backend_scope("jax") as backend:
                assert jax.config.read("jax_enable_x64") is True
                assert backend.xp.asarray(1.0, dtype=backend.xp.float64).dtype == "float64"
            assert jax.config.read("jax_enable_x64") is initial
            with pytest.raises(RuntimeError, match="inside"), backend_scope("jax"):
                raise RuntimeError("inside")
            assert jax.config.read("jax_enable_x64") is initial
    finally:
        jax.config.update("jax_enable_x64", before)


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def test_cli_verify_passes(toy_dir, capsys):
    status = cli.main(
        [
            "verify",
            "--fixtures-dir",
            str(toy_dir),
            "--backend",
            "numpy",
            "--backend",
            "array_api_strict",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "file | backend          | dtype   | passed | failed | skipped" in out
    assert "toy  | array_api_strict | float32 |      1 |      0 |       3" in out
    assert "OK: refloss" in out


def test_cli_impl_failure_names_cases(toy_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "wrong_impl.py").write_text(
        textwrap.dedent(
            """
        import numpy as np

        def lse(x, /, *, axis):
            with np.errstate(divide="ignore"):
                return np.log(np.sum(np.exp(x), axis=axis)) + 1e-3
        """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    argv = [
        "verify",
        "--impl",
        "wrong_impl:lse",
        "--fixture",
        "toy",
        "--fixtures-dir",
        str(toy_dir),
        "--backend",
        "numpy",
    ]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL toy tcId 1 [numpy float64]: two zeros: log 2" in out
    assert "expected: " in out
    assert "actual: " in out
    assert "FAILED: wrong_impl:lse" in out
    assert cli.main([*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    failed = {(f["tcId"], f["dtype"]) for f in report["failures"]}
    assert failed == {(1, "float64"), (1, "float32"), (2, "float64")}  # tc4's rtol is 0.25
    first = report["failures"][0]
    assert first["comment"] == "two zeros: log 2"
    assert first["expected"] == {"dtype": "float64", "shape": [], "data": [LOG2]}
    assert first["actual"]["shape"] == []
    assert cli.main([*argv, "--skip-flag", "Basic", "--skip-flag", "NegInf", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--impl", "x:y"],  # --impl without --fixture
        ["verify", "--impl", "no_such_module_here:f", "--fixture", "toy"],
        ["verify", "--impl", "not a target", "--fixture", "toy"],
        ["verify", "--fixture", "no_such_fixture"],
    ],
)
def test_cli_usage_errors(argv, toy_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--fixtures-dir", str(toy_dir)])
    assert exit_info.value.code == 2
    assert "refloss verify: error:" in capsys.readouterr().err


def test_cli_sequence_without_adapter_is_skipped(tmp_path, capsys):
    (tmp_path / "seq_test.json").write_text(json.dumps(sequence_document(4.5)))
    # every case is skipped, so nothing was checked: that is not a success
    assert (
        cli.main(["verify", "--fixtures-dir", str(tmp_path), "--backend", "numpy", "--json"]) == 1
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert sum(row["skipped"] for row in report["summary"]) == 2
    assert report["ok"] is False
    assert report["failures"] == []
    assert "no sequence adapter registered" in report["skipped"][0]["reason"]
    assert "no case passed" in captured.err


def test_python_dash_m_refloss(toy_dir):
    proc = run_refloss(
        "verify", "--fixtures-dir", str(toy_dir), "--backend", "numpy", "--dtype", "float64"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: refloss: 4 passed, 0 failed, 0 skipped" in proc.stdout
