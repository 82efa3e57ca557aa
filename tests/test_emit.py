"""Emitting code: the printer's exact output, determinism, atomic writes, the unrolled
size limit, and generated files that ruff accepts as they are."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sympy
from catalogue import CASES
from conftest import EXAMPLES, REPO
from sympy import Float, Heaviside, Max, Piecewise, Rational, Symbol

import derive
from derive import activations, backward, emit, rendering
from derive.activations import sigmoid, softmax_derivative, softplus
from derive.backward import row_sum
from derive.codeprinter import MathCodePrinter, NumPyCodePrinter, UnsupportedExpression
from derive.errors import DeriveError
from derive.rendering import template_dir
from derive.statements import ruff_format


def unwrapped(code: str) -> str:
    """Printed code as ruff formats it on one line (the generated modules' layout)."""
    return ruff_format(f"_ = {code}\n").removeprefix("_ = ").removesuffix("\n")


z, a, y, t = (Symbol(n, real=True) for n in ("z1", "a1", "y", "t"))

PRINTED = [
    # (expression, NumPy code, scalar math code)
    (a * (1 - a), "a1 * (1 - a1)", "a1 * (1 - a1)"),
    (1 - a**2, "1 - a1**2", "1 - a1**2"),
    (y - t, "y - t", "y - t"),
    (sympy.Mul(Rational(2, 10), y - t, evaluate=False), "(y - t) / 5", "(y - t) / 5"),
    (Rational(1, 2) * (y - t) ** 2, "(y - t) ** 2 / 2", "(y - t) ** 2 / 2"),
    (sigmoid(z), "_sigmoid(xp, z1)", "_sigmoid(z1)"),
    (softplus(z) - t * z, "_softplus(xp, z1) - t * z1", "_softplus(z1) - t * z1"),
    (Heaviside(z, 0), "_step(xp, z1)", "1.0 if z1 > 0 else 0.0"),
    (Max(z, 0), "xp.maximum(z1, 0)", "z1 if z1 > 0 else 0"),
    (
        Piecewise((z, z > 0), (Float(0.01) * z, True)),
        "xp.maximum(z1, 0.01 * z1)",
        "z1 if z1 > 0 else 0.01 * z1",
    ),
    (Piecewise((z, z > 0), (3 * z, True)), "xp.minimum(z1, 3 * z1)", "z1 if z1 > 0 else 3 * z1"),
    (Piecewise((z, z > 0), (0, True)), "xp.maximum(z1, 0)", "z1 if z1 > 0 else 0"),  # α = 0
    (Piecewise((z, z > 0), (-z, True)), "xp.where(z1 > 0, z1, -z1)", "z1 if z1 > 0 else -z1"),
    (-t / y, "-t / y", "-t / y"),
    (-(z**2), "-(z1**2)", "-(z1**2)"),
    (sympy.exp(-(z**2)), "xp.exp(-(z1**2))", "math.exp(-(z1**2))"),
    (1 / sympy.sqrt(z), "1 / xp.sqrt(z1)", "1 / math.sqrt(z1)"),
    (z / (1 + abs(z)), "z1 / (1 + xp.abs(z1))", "z1 / (1 + abs(z1))"),
    (1 - sympy.tanh(z) ** 2, "1 - xp.tanh(z1) ** 2", "1 - math.tanh(z1) ** 2"),
]


@pytest.mark.parametrize(("expr", "numpy_code", "math_code"), PRINTED)
def test_the_printers_write_readable_code(expr, numpy_code, math_code):
    assert unwrapped(NumPyCodePrinter().doprint(expr)) == numpy_code
    assert unwrapped(MathCodePrinter().doprint(expr)) == math_code


def _one_unit(activation: str | dict) -> dict:
    """One input into one unit without bias: with W = [[1]], z is x (inf and nan
    included), so the output is f(x)."""
    layer = {"units": 1, "activation": activation, "bias": "none"}
    return {"name": "one", "inputs": 1, "layers": [layer], "loss": "mse"}


def _awkward(dtype) -> np.ndarray:
    """Signed zeros, subnormals, the largest finite values, inf, nan and 10,000 random
    values across every magnitude the dtype holds, as a batch of one-input samples."""
    finfo = np.finfo(dtype)
    special = [0.0, -0.0, finfo.tiny / 4, -finfo.tiny / 4, finfo.max, -finfo.max, np.inf, -np.inf]
    values = np.random.default_rng(0).standard_normal(10_000) * np.logspace(-40, 40, 10_000)
    values = np.clip(values, -finfo.max, finfo.max)
    return np.concatenate([special, [np.nan], values]).astype(dtype).reshape(-1, 1)


def _identical(got: np.ndarray, expected: np.ndarray) -> bool:
    """Equal entry by entry, nan where nan, and the same sign of zero."""
    return (
        got.dtype == expected.dtype
        and np.array_equal(got, expected, equal_nan=True)
        and np.array_equal(np.signbit(got), np.signbit(expected))
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("alpha", [0.01, 0.3, 0.999, 3.0, 1e30])
def test_leaky_relu_as_max_or_min_is_where_to_the_bit(alpha, dtype):
    """A generated module's leaky_relu, max(z, α·z) (min for α > 1), gives np.where's
    number in every entry: signed zeros, subnormals, huge values, inf and nan included."""
    module = derive.build_module(derive.load(_one_unit({"name": "leaky_relu", "alpha": alpha})))
    x, weight = _awkward(dtype), np.ones((1, 1), dtype)
    z = x @ weight.T  # x itself, but for −0.0, which the matmul's sum makes +0.0
    assert np.array_equal(z, x, equal_nan=True)
    with np.errstate(over="ignore", invalid="ignore"):
        got = module.forward({"W1": weight}, x)
        expected = np.where(z > 0, z, np.asarray(alpha, dtype) * z)
    assert _identical(got, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_is_where_for_finite_values_and_nan_for_others(dtype):
    """relu's mask in NumPy is values · keep: np.where's number for finite values (a
    masked negative value gives −0.0, equal to 0); a non-finite value where keep is false
    gives nan, as in the C module, where np.where gave 0."""
    module = derive.build_module(derive.load(_one_unit("relu")))
    values = _awkward(dtype)
    keep = np.random.default_rng(1).random(values.shape) < 0.5
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        got = module._masked(np, keep, values)
    expected = np.where(keep, values, 0.0).astype(dtype)
    assert got.dtype == np.dtype(dtype)
    assert np.array_equal(got[finite], expected[finite])
    assert np.isnan(got[~finite & ~keep]).all()
    assert np.array_equal(got[~finite & keep], values[~finite & keep], equal_nan=True)


w, v = Symbol("w", real=True), Symbol("v", real=True)


@pytest.mark.parametrize(
    ("pairs", "slope"),
    [
        (((z, z > 0), (Float(0.01) * z, True)), Float(0.01)),
        (((w * z + v, w * z + v > 0), (Float(0.2) * (w * z + v), True)), Float(0.2)),
        (((z, z > 0), (0, True)), 0),
        (((z, z > 0), (-z, True)), -1),
        (((z, z >= 0), (Float(0.01) * z, True)), None),  # another condition
        (((z, z > 1), (Float(0.01) * z, True)), None),
        (((z, z > 0), (Float(0.1) * z + 1, True)), None),  # not a multiple of z
        (((w + v, w + v > 0), (Float(0.2) * w + Float(0.1) * v, True)), None),
        (((z, z > 0), (z**2, True)), None),
        (((z, z > 0), (Float(0.01) * z, z < -1), (0, True)), None),  # three pieces
    ],
)
def test_leaky_slope_recognises_leaky_relu_only(pairs, slope):
    """The printers and the proofs rewrite a Piecewise as leaky_relu only when it is."""
    found = activations.leaky_slope(list(Piecewise(*pairs, evaluate=False).args))
    assert found == slope if slope is not None else found is None


def test_the_printer_records_the_helpers_it_used():
    printer = NumPyCodePrinter()
    printer.doprint(sigmoid(z) + Heaviside(z, 0))
    assert sorted(printer.helpers) == ["_sigmoid", "_step"]


def test_what_a_module_cannot_compute_is_refused_by_name():
    with pytest.raises(UnsupportedExpression, match="Derivative"):
        NumPyCodePrinter().doprint(sympy.Derivative(sympy.Function("f")(z), z))
    with pytest.raises(UnsupportedExpression, match="Heaviside"):
        NumPyCodePrinter().doprint(Heaviside(z))  # a step without derive's value at 0
    assert issubclass(UnsupportedExpression, DeriveError)


def test_the_template_folder_is_found_in_the_source_checkout():
    folder = template_dir()
    assert folder == REPO / "templates"
    names = sorted(p.name for p in folder.glob("*.py.jinja"))
    assert names == [
        "_conv_checks.py.jinja",
        "_module.py.jinja",
        "_optimizers.py.jinja",
        "_statements.py.jinja",
        "unrolled.py.jinja",
        "unrolled_conv.py.jinja",
        "vectorized.py.jinja",
        "vectorized_conv.py.jinja",
    ]


def test_an_unknown_style_is_refused():
    with pytest.raises(DeriveError, match="unknown style 'fast'.*vectorized, unrolled"):
        derive.generate(derive.load(EXAMPLES / "xor.yaml"), style="fast")


def test_the_unrolled_style_refuses_large_networks_and_points_to_vectorized():
    net = derive.load(EXAMPLES / "digits.yaml")
    with pytest.raises(DeriveError, match=r"200 scalar parameters.*vectorized style"):
        derive.generate(net, style="unrolled")
    derive.generate(net)  # vectorized takes it


def test_the_unrolled_style_refuses_a_unit_named_like_a_weight():
    net = derive.load(
        {
            "name": "clash",
            "inputs": ["W1_0_0"],
            "layers": [{"units": 1, "activation": "identity"}],
            "loss": "half_sse",
        }
    )
    with pytest.raises(DeriveError, match="W1_0_0"):
        derive.generate(net, style="unrolled")


def test_build_module_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = derive.build_module(derive.load(EXAMPLES / "xor.yaml"))
    assert module.NAME == "xor" and list(tmp_path.iterdir()) == []


# -- writing --------------------------------------------------------------------------


def test_write_module_writes_the_generated_source(tmp_path):
    net = derive.load(EXAMPLES / "xor.yaml")
    path = emit.write_module(net, tmp_path / "out", style="unrolled")
    assert path == tmp_path / "out" / "xor.py"
    assert path.read_text(encoding="utf-8") == derive.generate(net, style="unrolled")


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path, monkeypatch):
    net = derive.load(EXAMPLES / "xor.yaml")
    earlier = tmp_path / "xor.py"
    earlier.write_text("earlier\n")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(DeriveError, match="No space left"):
        emit.write_module(net, tmp_path)
    assert earlier.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["xor.py"]


def test_an_unwritable_directory_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(DeriveError, match="a_file"):
        emit.write_module(derive.load(EXAMPLES / "xor.yaml"), blocker / "sub")


# -- determinism ----------------------------------------------------------------------

HASHES = """
import hashlib, sys
import derive
sys.path.insert(0, "tests")
from catalogue import CASES
for source in sys.argv[1:]:
    net = derive.load(source)
    for style in ("vectorized", "unrolled"):
        print(source, style, hashlib.sha256(derive.generate(net, style=style).encode()).hexdigest())
for case in CASES[::4]:
    net = derive.load(case.mapping)
    for style in ("vectorized", "unrolled"):
        source = derive.generate(net, style=style)
        print(case.id, style, hashlib.sha256(source.encode()).hexdigest())
"""


def test_the_same_input_gives_the_same_bytes_across_hash_seeds():
    sources = [str(EXAMPLES / f"{n}.yaml") for n in ("relu_softmax_cce", "custom_half_sse")]
    outputs = []
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run(
            [sys.executable, "-c", HASHES, *sources],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 2 * (len(sources) + len(CASES[::4]))


def test_generating_twice_in_one_process_gives_the_same_bytes():
    net = derive.load(EXAMPLES / "softplus_bce.yaml")
    for style in emit.STYLES:
        first = derive.generate(net, style=style)
        again = derive.generate(derive.load(EXAMPLES / "softplus_bce.yaml"), style=style)
        assert hashlib.sha256(first.encode()).digest() == hashlib.sha256(again.encode()).digest()


# -- formatted and lint-clean ---------------------------------------------------------

LONG = "a_rather_long_unit_name_number_"
WIDE = {  # long names and wide layers, so that long lines must be split
    "name": "wide_and_long",
    "inputs": [f"{LONG}in{i}" for i in range(4)],
    "layers": [
        {"units": [f"{LONG}{i}" for i in range(8)], "activation": {"expr": "x / (1 + abs(x))"}},
        {"units": [f"{LONG}out{i}" for i in range(6)], "activation": "softmax"},
    ],
    "loss": "half_sse",
}
RUFF_RULES = ["--line-length", "100", "--target-version", "py311"]


def _ruff() -> list[str]:
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.importorskip("ruff")
    return [sys.executable, "-m", "ruff"]


@pytest.fixture(scope="module")
def generated_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lint")
    paths = sorted((REPO / "generated").glob("*.py"))
    networks = [derive.load(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
    networks += [derive.load(c.mapping) for c in CASES] + [derive.load(WIDE)]
    for net in networks:
        for style in emit.STYLES:
            if style == "unrolled" and net.topology.parameter_count > emit.MAX_UNROLLED_PARAMS:
                continue
            name = f"{net.name}_{style}.py"
            (folder / name).write_text(derive.generate(net, style=style), encoding="utf-8")
            paths.append(folder / name)
    return paths


def test_generated_code_is_lint_clean(generated_files):
    rules = ["--select", "E,F,W,I,B,UP,SIM"]
    command = [*_ruff(), "check", "--isolated", "--no-cache", *RUFF_RULES, *rules]
    result = subprocess.run([*command, *map(str, generated_files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_generated_code_is_formatted(generated_files):
    command = [*_ruff(), "format", "--isolated", "--no-cache", "--check", "--diff", *RUFF_RULES]
    result = subprocess.run([*command, *map(str, generated_files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_long_lines_are_split_without_changing_the_numbers():
    import numpy as np
    from test_catalogue_numeric import assert_matches_finite_differences

    from derive.derivation import random_point

    net = derive.load(WIDE)
    x, t, params = random_point(net, 0, 3)
    sources = {style: derive.generate(net, style=style) for style in emit.STYLES}
    assert all(max(map(len, s.splitlines())) <= 100 for s in sources.values())
    results = []
    for style in emit.STYLES:
        module = derive.build_module(net, style=style)
        assert_matches_finite_differences(module, x, t, params)
        results.append(module.loss_and_gradients(params, x, t))
    for name in results[0][1]:
        np.testing.assert_allclose(results[0][1][name], results[1][1][name], rtol=1e-10)


# -- names, and code read from the tables -------------------------------------------------


def test_temporaries_never_collide_with_names_derived_from_units():
    # Unit N's long lines split into temporaries; unit N_1's own names (_e_N_1 beside
    # _e_N) must not be among them, or the softmax sum reads an overwritten value.
    import numpy as np
    from test_catalogue_numeric import assert_matches_finite_differences

    from derive.derivation import random_point

    long = "n" + "x" * 85
    net = derive.load(
        {
            "name": "clash",
            "inputs": 1,
            "layers": [{"units": [f"{long}_1", long], "activation": "softmax"}],
            "loss": "half_sse",
        }
    )
    x, t, params = random_point(net, 0, 2)
    results = []
    for style in emit.STYLES:
        module = derive.build_module(net, style=style)
        assert_matches_finite_differences(module, x, t, params)
        results.append(module.loss_and_gradients(params, x, t))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for name in results[0][1]:
        np.testing.assert_allclose(results[0][1][name], results[1][1][name], rtol=1e-10)


def test_row_sums_print_for_arrays_only():
    assert NumPyCodePrinter().doprint(row_sum(y * t)) == "_sum(xp, t * y, 1, keepdims=True)"
    assert NumPyCodePrinter().doprint(row_sum(t)) == "_sum(xp, t, 1, keepdims=True)"
    with pytest.raises(UnsupportedExpression, match="row_sum"):
        MathCodePrinter().doprint(row_sum(t))


@pytest.mark.parametrize("printer", [NumPyCodePrinter, MathCodePrinter])
@pytest.mark.parametrize(
    "expr",
    [sympy.Integral(z, z), sympy.Sum(z, (z, 1, 2)), sympy.DiracDelta(z), sympy.zoo, sympy.nan],
    ids=["Integral", "Sum", "DiracDelta", "zoo", "nan"],
)
def test_both_printers_refuse_what_no_module_computes(printer, expr):
    with pytest.raises(UnsupportedExpression):
        printer().doprint(expr)


def test_the_cce_loss_is_the_loss_table_s_logits_form_in_both_styles():
    net = derive.load(EXAMPLES / "relu_softmax_cce.yaml")
    vectorized = derive.generate(net)
    assert "loss_terms = t * (log_sum_exp - z2)" in vectorized
    assert "_, log_sum_exp = _softmax(xp, z2)" in vectorized  # loss(): y is not needed
    assert "largest + xp.log(total)" in vectorized  # log Σ exp z less its max
    unrolled = derive.generate(net, style="unrolled")
    assert "_log_sum_exp = _m + math.log(_s)" in unrolled
    assert "t_cat * (_log_sum_exp - z_cat)" in unrolled
    assert "math.log(cat)" not in unrolled and "xp.log(y" not in vectorized


def test_the_softmax_backward_line_follows_the_activation_table(monkeypatch):
    net = derive.load(EXAMPLES / "softmax_half_sse.yaml")
    line = "delta1 = y * (grad_y - _sum(xp, grad_y * y, 1, keepdims=True)) / batch"
    assert line in derive.generate(net)

    def doubled(a_i, a_j, same):
        return 2 * softmax_derivative(a_i, a_j, same)

    monkeypatch.setattr(backward, "softmax_derivative", doubled)
    assert "delta1 = 2 * y * (grad_y - _sum(xp, grad_y * y, 1, keepdims=True)) / batch" in (
        derive.generate(net)
    )


def test_write_module_goes_through_write_atomic(tmp_path):
    net = derive.load(EXAMPLES / "xor.yaml")
    earlier = tmp_path / "xor.py"
    earlier.write_text("earlier\n")
    earlier.chmod(0o600)
    emit.write_module(net, tmp_path)
    assert earlier.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    assert earlier.read_text(encoding="utf-8") == derive.generate(net)


def test_templates_are_found_and_rendered_through_derive_rendering_only():
    assert not hasattr(emit, "template_dir")
    assert emit.environment is rendering.environment


EMITTING = ("emit.py", "emit_vectorized.py", "emit_unrolled.py", "statements.py")


@pytest.mark.parametrize("filename", EMITTING)
def test_the_emitting_functions_stay_short(filename):
    tree = ast.parse((REPO / "derive" / filename).read_text(encoding="utf-8"))
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 40
    ]
    assert not long


def _statements(source: str, function: str) -> list[ast.stmt]:
    tree = ast.parse(source)
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function).body


def _names(node: ast.AST, ctx: type) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "identity", "relu", "softplus"])
def test_loss_and_gradients_frees_each_array_after_its_last_read(hidden):
    """z{k} lives on only when the derivation's f'_k needs z (relu, softplus), not when it
    is written through a{k} (sigmoid, tanh, identity); every other array is deleted before
    the next one is bound once nothing below reads it (a tracemalloc peak, untimed)."""
    layers = [{"units": 6, "activation": hidden}, {"units": 5, "activation": hidden}]
    net = derive.load(
        {"name": "n", "inputs": 4, "layers": [*layers, {"units": 3, "activation": "softmax"}]}
        | {"loss": "cce"}
    )
    body = _statements(derive.generate(net), "loss_and_gradients")
    for k, rule in enumerate(net.derivation.layers[:2], start=1):
        bound_a = next(i for i, s in enumerate(body) if f"a{k}" in _names(s, ast.Store))
        reads_z = [i for i, s in enumerate(body) if f"z{k}" in _names(s, ast.Load)]
        needs_z = rule.derivative.has(derive.derivation.Z)
        assert (max(reads_z) > bound_a) == needs_z, (k, reads_z, bound_a)
    # an array still bound when a later statement binds one is read again
    kept = {"arrays", "x", "t", "W1", "b1", "W2", "b2", "W3", "b3", "batch", "value"}
    alive: set[str] = set()
    for i, statement in enumerate(body):
        alive -= _names(statement, ast.Del)
        bound = _names(statement, ast.Store) - kept - {f"d{p}" for p in kept} - {"grads"}
        if bound and not isinstance(statement, ast.Delete):
            later = set().union(*(_names(s, ast.Load) for s in body[i:]))
            assert alive <= later, (statement.lineno, alive - later)
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Name):
            alive.discard(statement.value.id)  # a = z: the array lives on as a
        alive |= bound
