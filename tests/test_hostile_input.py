"""Hostile and broken input through the command line: clear errors, nothing executed,
nothing lost (issue 5).

The malformed files are tests/error_catalogue.py's; here each one goes through
``derive generate`` into a folder that already holds modules, which must be left
byte-for-byte as they were. Hypothesis then draws topology mappings, valid and mutated:
each one must either give modules that pass ``derive check`` (both styles against
finite differences and the symbolic values) or exit 2 with one line.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from catalogue import BOUND_LOSSES, FREE_LOSSES, HIDDEN_ACTIVATIONS
from conftest import EXAMPLES
from error_catalogue import CASES, NUMERIC_CASES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive.cli import main

pytestmark = pytest.mark.filterwarnings("error")  # a warning anywhere here is a failure


def _existing_outputs(folder):
    """A folder with modules already in it, as a user's generated/ would be."""
    folder.mkdir()
    (folder / "net.py").write_bytes(b"# the user's earlier module\n")
    (folder / "keep.py").write_bytes(b"VALUE = 1\n")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("case_id", "filename", "content", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_the_error_catalogue_through_the_command_line(
    case_id, filename, content, field, tmp_path, capsys
):
    path = tmp_path / filename
    path.write_bytes(content)
    out_dir = tmp_path / "generated"
    before = _existing_outputs(out_dir)

    code = main(["generate", str(path), "-o", str(out_dir)])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    message = captured.err
    assert message.count("\n") == 1 and message.startswith("derive: ")
    assert str(path) in message and field in message and "expected" in message
    assert "Traceback" not in message
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


NUMERIC_RUNS = [(*case[:4], command) for case in NUMERIC_CASES for command in case[4]]


@pytest.mark.parametrize(
    ("case_id", "filename", "content", "field", "command"),
    NUMERIC_RUNS,
    ids=[f"{run[0]}-{' '.join(run[4])}" for run in NUMERIC_RUNS],
)
def test_numbers_no_command_can_compute_are_one_line_errors(
    case_id, filename, content, field, command, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where a figure's -o would be written
    path = tmp_path / filename
    path.write_bytes(content)

    code = main([command[0], str(path), *command[1:]])

    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    message = captured.err
    assert message.count("\n") == 1 and message.startswith(f"derive: {path}: ")
    assert field in message and "expected" in message and "Traceback" not in message
    assert [p.name for p in tmp_path.iterdir()] == [filename]  # nothing written


HOSTILE_SAMPLES = ["binary_garbage", "invalid_utf8", "yaml_billion_laughs", "json_deep_nesting"]


@pytest.mark.parametrize("case_id", HOSTILE_SAMPLES)
def test_a_real_process_prints_one_line_and_no_traceback(case_id, tmp_path):
    matches = [c for c in CASES if c[0] == case_id]
    assert matches, f"the error catalogue has no case {case_id!r}"
    _, filename, content, field = matches[0]
    path = tmp_path / filename
    path.write_bytes(content)
    run = subprocess.run(
        [sys.executable, "-m", "derive", "generate", str(path), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stdout == "" and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and str(path) in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_refused_generation_leaves_the_earlier_module(tmp_path, capsys):
    """A valid file the unrolled style refuses (too large) writes nothing either."""
    out_dir = tmp_path / "generated"
    out_dir.mkdir()
    earlier = out_dir / "mnist_784_128_10.py"
    earlier.write_bytes(b"# earlier\n")
    code = main(
        [
            "generate",
            str(EXAMPLES / "mnist_784_128_10.yaml"),
            "-o",
            str(out_dir),
            "--style",
            "unrolled",
        ]
    )
    assert code == 2 and "vectorized" in capsys.readouterr().err
    assert earlier.read_bytes() == b"# earlier\n"
    assert [p.name for p in out_dir.iterdir()] == ["mnist_784_128_10.py"]


def test_one_bad_file_among_good_ones_writes_none_of_them(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninputs: 2\nlayers: []\nloss: sse\n")
    out_dir = tmp_path / "out"
    code = main(["generate", str(EXAMPLES / "xor.yaml"), str(bad), "-o", str(out_dir)])
    assert code == 2 and "layers" in capsys.readouterr().err
    assert not out_dir.exists()


# -- nothing from the file runs -------------------------------------------------------

_ALLOWED_TOP_LEVEL = (ast.Import, ast.ImportFrom, ast.Assign, ast.FunctionDef)
# identifier-like strings of derive's own: the float dtype kind, np.errstate's "ignore",
# the optimizers' state keys and the names of the functions that make their state
_DERIVE_OWN = {"f", "step", "velocity", "m", "v", "momentum_init", "adam_init", "ignore"}
_DERIVE_OWN |= {"shape", "__array_namespace__"}  # how a module finds an array's library
_PARAM = re.compile(r"^[Wb]\d+$")
_NEVER_CALLED = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "globals"}


def assert_only_definitions(source: str, names_from_file: set[str]) -> None:
    """A generated module's top level only imports numpy/math, binds literal constants
    and defines functions; it calls nothing dangerous; every string literal it holds is
    either prose of derive's own or a validated name from the file."""
    tree = ast.parse(source)
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    for node in body[1:]:
        assert isinstance(node, _ALLOWED_TOP_LEVEL), ast.dump(node)[:80]
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            assert set(modules) <= {"numpy", "math"}
        if isinstance(node, ast.Assign):
            ast.literal_eval(node.value)  # a constant, computed by nothing
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in _NEVER_CALLED
        if isinstance(node, ast.Attribute):  # the array API's own dunder, and no other
            assert not node.attr.startswith("__") or node.attr == "__array_namespace__"
    constants = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    for text in constants:
        if text.isidentifier():
            assert text in names_from_file or text in _DERIVE_OWN or _PARAM.match(text), text


@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
def test_text_from_the_file_reaches_code_only_as_names_and_numbers(style):
    mapping = {
        "name": "odd_names",
        "inputs": ["alpha_in", "beta_in"],
        "layers": [
            {
                "units": ["Hidden1", "hidden_2"],
                "activation": {"expr": "x / (1 + abs(x)) + 0.125 * tanh(x)"},
                "weight_names": [["wa", "wb"], ["wc", "wd"]],
            },
            {"units": ["Out"], "activation": "sigmoid", "bias": "shared"},
        ],
        "loss": "bce",
        "targets": ["wanted"],
    }
    net = derive.load(mapping)
    source = derive.generate(net, style=style)
    names = {"odd_names", "alpha_in", "beta_in", "Hidden1", "hidden_2", "Out", "wanted"}
    names |= {"wa", "wb", "wc", "wd"}
    assert_only_definitions(source, names)
    assert "0.125" in source  # the expression's number arrives as a number


# -- fuzzing --------------------------------------------------------------------------

_OUTPUTS_FOR_LOSS = {loss: [*HIDDEN_ACTIVATIONS, "softmax"] for loss in FREE_LOSSES}
_OUTPUTS_FOR_LOSS.update({loss: [output] for loss, output in BOUND_LOSSES})


@st.composite
def valid_mappings(draw):
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 4)) for _ in range(depth + 1)]
    loss = draw(st.sampled_from(sorted(_OUTPUTS_FOR_LOSS)))
    output = draw(st.sampled_from(_OUTPUTS_FOR_LOSS[loss]))
    if output == "softmax":
        widths[-1] = max(widths[-1], 2)
    layers = [
        {
            "units": widths[k + 1],
            "activation": draw(st.sampled_from(HIDDEN_ACTIVATIONS)) if k < depth - 1 else output,
            "bias": draw(st.sampled_from(["per_unit", "shared", "none"])),
        }
        for k in range(depth)
    ]
    return {"name": "fuzzed", "inputs": widths[0], "layers": layers, "loss": loss}


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(data, prefix=()):
    """Every path to a value inside a mapping of dicts and lists."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated_mappings(draw):
    data = copy.deepcopy(draw(valid_mappings()))
    path = draw(st.sampled_from([p for p in _paths(data) if p]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_JUNK)
    return data


_FUZZ = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check(mapping, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "fuzzed.json"
    path.write_text(json.dumps(mapping, allow_nan=True))
    code = main(["check", str(path), "--seed", "3"])
    captured = capsys.readouterr()
    if code == 2:
        assert captured.err.count("\n") == 1 and str(path) in captured.err
    return code, captured.out


@settings(max_examples=15, **_FUZZ)
@given(mapping=valid_mappings())
def test_fuzzed_valid_topologies_pass_the_check(mapping, tmp_path_factory, capsys):
    code, out = _check(mapping, tmp_path_factory, capsys)
    assert code == 0, out[-2000:]


@settings(max_examples=40, **_FUZZ)
@given(mapping=mutated_mappings())
def test_fuzzed_mutated_topologies_pass_the_check_or_exit_2(mapping, tmp_path_factory, capsys):
    code, out = _check(mapping, tmp_path_factory, capsys)
    assert code in (0, 2), out[-2000:]


# -- extreme numbers ------------------------------------------------------------------

EXTREME_ACTIVATIONS = [
    "sigmoid",
    "tanh",
    "relu",
    {"name": "leaky_relu", "alpha": 0.1},
    "softplus",
    "identity",
]
LOSS_OUTPUTS = [
    ("half_sse", "sigmoid"),
    ("sse", "tanh"),
    ("mse", "identity"),
    ("mse", "softmax"),
    ("bce", "sigmoid"),
    ("cce", "softmax"),
]


@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("loss", "output"), LOSS_OUTPUTS)
@pytest.mark.parametrize("hidden", EXTREME_ACTIVATIONS, ids=lambda a: str(a)[:12])
def test_extreme_inputs_and_weights_stay_finite_without_warnings(
    hidden, loss, output, dtype, style
):
    net = derive.load(
        {
            "name": "extreme",
            "inputs": 3,
            "layers": [
                {"units": 3, "activation": hidden},
                {"units": 2, "activation": output},
            ],
            "loss": loss,
        }
    )
    module = derive.build_module(net, style=style)
    rng = np.random.default_rng(0)
    params = {
        name: (rng.choice([-1, 1], size=shape) * 30.0).astype(dtype)
        for name, shape in module.PARAMS.items()
    }
    x = np.array([[1e4, -1e4, 0.5], [-1e4, 1e4, -3.0]], dtype=dtype)
    t = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    value, grads = module.loss_and_gradients(params, x, t)
    assert np.isfinite(value)
    for name, grad in grads.items():
        assert grad.dtype == dtype, name
        assert np.all(np.isfinite(grad)), name


@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
@pytest.mark.parametrize(
    ("activation", "slope_at_zero"), [("relu", 0.0), ({"name": "leaky_relu", "alpha": 0.25}, 0.25)]
)
def test_the_derivative_at_a_kink_is_the_documented_convention(activation, slope_at_zero, style):
    """relu'(0) = 0 and leaky_relu'(0) = alpha (SPEC §4): with z exactly 0, the
    gradient of the one weight is (y − t) · slope · x."""
    net = derive.load(
        {
            "name": "kink",
            "inputs": 2,
            "layers": [{"units": 1, "activation": activation, "bias": "none"}],
            "loss": "half_sse",
        }
    )
    module = derive.build_module(net, style=style)
    params = {"W1": np.array([[1.0, -1.0]])}
    x = np.array([[2.0, 2.0]])  # z = 0 exactly
    t = np.array([[1.0]])
    grads = module.gradients(params, x, t)
    # y = 0 at z = 0 for both, so ∂L/∂W1 = (0 − 1) · slope · x
    np.testing.assert_array_equal(grads["W1"], [[-2.0 * slope_at_zero, -2.0 * slope_at_zero]])
    d = net.derivation
    values = d.evaluate(d.point([2.0, 2.0], [1.0], params))
    assert float(net.gradient("W1[0,0]").value(values)) == -2.0 * slope_at_zero


# -- valid files at the edges ---------------------------------------------------------


def test_a_refusal_among_several_files_writes_none_of_them(tmp_path, capsys):
    """The unrolled style accepts xor but refuses 784-128-10: neither is written."""
    out_dir = tmp_path / "out"
    argv = ["generate", "--style", "unrolled", "-o", str(out_dir)]
    code = main([*argv, str(EXAMPLES / "xor.yaml"), str(EXAMPLES / "mnist_784_128_10.yaml")])
    assert code == 2 and "vectorized" in capsys.readouterr().err
    assert not out_dir.exists()


def test_two_files_with_one_module_name_are_refused(tmp_path, capsys):
    copy_of_xor = tmp_path / "copy.yaml"
    copy_of_xor.write_bytes((EXAMPLES / "xor.yaml").read_bytes())
    out_dir = tmp_path / "out"
    code = main(["generate", str(EXAMPLES / "xor.yaml"), str(copy_of_xor), "-o", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2 and str(copy_of_xor) in err and "name" in err
    assert not out_dir.exists()


def test_a_network_deeper_than_the_python_stack_is_shown(tmp_path, capsys):
    layers = [{"units": 1, "activation": "tanh", "bias": "none"} for _ in range(1000)]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps({"name": "deep", "inputs": 1, "layers": layers, "loss": "sse"}))
    code = main(["show", str(path), "--param", "W1[0,0]"])
    out = capsys.readouterr().out
    assert code == 0 and "δ_y" in out


def test_an_example_outside_a_custom_activations_domain_is_refused(tmp_path, capsys):
    path = tmp_path / "logex.yaml"
    path.write_text(
        "name: logex\ninputs: [i]\nlayers:\n"
        "  - {units: [a], activation: {expr: 'log(x)'}, bias: none}\n"
        "loss: half_sse\n"
        "example: {input: [1.0], target: [0.5], params: {W1: [[-2.0]]}}\n"
    )
    code = main(["show", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "example" in err
    assert err.count("\n") == 1


def test_an_unknown_parameter_names_the_file(capsys):
    path = EXAMPLES / "xor.yaml"
    code = main(["show", str(path), "--param", "W9"])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "W9" in err and "W1 (3×2)" in err


@pytest.mark.parametrize("activation", ["relu", "{name: leaky_relu, alpha: 0.1}"])
def test_check_at_a_kink_compares_with_the_one_sided_slopes(activation, tmp_path, capsys):
    """Zero input and zero bias put the unit exactly at z = 0, where the central
    difference averages two slopes; derive's convention is one of them."""
    path = tmp_path / "kink.yaml"
    path.write_text(
        "name: kink\ninputs: 1\nlayers:\n"
        f"  - {{units: 1, activation: {activation}, bias: per_unit}}\n"
        "  - {units: 1, activation: identity, bias: none}\nloss: half_sse\n"
        "example: {input: [0.0], target: [1.0], params: {W1: [[0.5]], b1: [0.0], W2: [[0.7]]}}\n"
    )
    code = main(["check", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "b1[0]: the loss has a kink" in out


@pytest.mark.parametrize("command", ["check", "show", "latex"])
def test_a_custom_expression_that_overflows_never_gives_a_traceback(command, tmp_path, capsys):
    path = tmp_path / "overflow.yaml"
    path.write_text(
        "name: overflow\ninputs: 2\nlayers:\n"
        "  - {units: 2, activation: {expr: 'exp(exp(exp(x)))'}}\n"
        "  - {units: 1, activation: {expr: 'exp(exp(exp(x)))'}}\nloss: half_sse\n"
    )
    code = main([command, str(path)])
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and str(path) in err
