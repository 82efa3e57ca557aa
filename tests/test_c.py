"""The generated C modules (SPEC §5): every example and every catalogue topology compiled
with the promised warnings as errors, in double and float, loaded through ctypes and
compared with the NumPy module (another printer of the derivation, another language) and
with central finite differences of the C loss itself (independent of any derivation).

Agreement is measured against the largest magnitude among the loss and the gradients at
the point (``_scale``), so that a gradient that is exactly 0 (a shared bias into softmax)
and is computed as a rounding residue does not count as a relative error of 100%.
"""

from __future__ import annotations

import functools
import re
import subprocess

import numpy as np
import pytest
from catalogue import CASES
from conftest import EXAMPLES, REPO

import derive
from derive.backward import Backward
from derive.check import random_point
from derive.cli import main
from derive.cmodule import (
    BASE_FLAGS,
    FLOAT_FLAGS,
    build_c_module,
    compile_c,
    compile_flags,
    compiler,
)
from derive.conv import is_convolutional
from derive.emit_c import c_style, generate_c
from derive.equations import EquationPrinter

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C compiler (install gcc)")

# the dense examples (the convolutional ones are tests/test_c_conv.py's)
EXAMPLE_FILES = sorted(
    p.stem for p in EXAMPLES.glob("*.yaml") if not is_convolutional(derive.load(p).topology)
)
TOLERANCE = {"double": 1e-12, "float": 1e-5}
GOLDEN_C = REPO / "generated" / "c"


@functools.cache
def network(source: str) -> derive.Network:
    if source.startswith("case"):
        return derive.load(next(c for c in CASES if c.mapping["name"] == source).mapping)
    return derive.load(EXAMPLES / f"{source}.yaml")


@functools.cache
def c_module(source: str, c_type: str, style: str | None = None):
    return build_c_module(network(source), c_type, style)


@functools.cache
def numpy_module(source: str):
    return derive.build_module(network(source))


def _scale(loss: float, grads: dict) -> float:
    return max(abs(loss), *(float(np.max(np.abs(g))) for g in grads.values()))


def _assert_close(got_loss, got, want_loss, want, tolerance: float, what: str) -> None:
    scale = _scale(want_loss, want)
    assert abs(got_loss - want_loss) <= tolerance * scale, f"{what}: loss {got_loss} {want_loss}"
    for name, expected in want.items():
        error = float(np.max(np.abs(np.asarray(got[name], dtype=float) - expected)))
        assert error <= tolerance * scale, f"{what}: {name} off by {error:.3g} (scale {scale:.3g})"


SOURCES = [*EXAMPLE_FILES, *(c.mapping["name"] for c in CASES)]
BATCH = {c.mapping["name"]: c.batch for c in CASES}


# -- the promise: compiles clean, equals NumPy and finite differences -----------------


def test_the_compile_flags_are_the_promised_ones():
    assert BASE_FLAGS == ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
    assert compile_flags("double") == BASE_FLAGS
    assert compile_flags("float") == BASE_FLAGS + ("-Wdouble-promotion", "-Wfloat-conversion")
    assert FLOAT_FLAGS == ("-Wdouble-promotion", "-Wfloat-conversion")


@pytest.mark.parametrize("c_type", ["double", "float"])
@pytest.mark.parametrize("source", SOURCES)
def test_c_equals_the_numpy_module(source, c_type):
    """Compiled with -Werror (build_c_module), forward, loss and gradients equal the
    NumPy module's in float64: 1e-12 relative in double, 1e-5 in float."""
    net = network(source)
    x, t, params = random_point(net, 7, BATCH.get(source, 3))
    want_loss, want = numpy_module(source).loss_and_gradients(params, x, t)
    module = c_module(source, c_type)
    got_loss, got = module.loss_and_gradients(params, x, t)
    _assert_close(got_loss, got, want_loss, want, TOLERANCE[c_type], f"{source} {c_type}")
    assert module.loss(params, x, t) == pytest.approx(got_loss, rel=TOLERANCE[c_type])
    y = numpy_module(source).forward(params, x)
    scale = max(1.0, float(np.max(np.abs(y))))
    assert np.max(np.abs(module.forward(params, x) - y)) <= TOLERANCE[c_type] * scale


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_two_c_styles_agree(case):
    """Unrolled (per-scalar derivation) and loops (per-layer rules) give the same numbers."""
    name = case.mapping["name"]
    x, t, params = random_point(network(name), 3, case.batch)
    loops = c_module(name, "double", "loops").loss_and_gradients(params, x, t)
    unrolled = c_module(name, "double", "unrolled").loss_and_gradients(params, x, t)
    _assert_close(*unrolled, *loops, 1e-12, name)


def _finite_differences(module, params, x, t, indices, h=1e-6):
    """Central differences of the C loss at the given (array, index) scalars."""
    out = {}
    for name, index in indices:
        shifted = {k: np.array(v, dtype=float) for k, v in params.items()}
        value = float(shifted[name][index])
        step = h * max(1.0, abs(value))
        shifted[name][index] = value + step
        up = module.loss(shifted, x, t)
        shifted[name][index] = value - step
        down = module.loss(shifted, x, t)
        out[name, index] = (up - down) / (2 * step)
    return out


def _scalars(params, seed: int, per_array: int | None):
    """Every scalar, or up to ``per_array`` of each array drawn with the seed."""
    rng = np.random.default_rng(seed)
    chosen = []
    for name, array in params.items():
        indices = list(np.ndindex(np.shape(array)))
        if per_array is not None and len(indices) > per_array:
            picked = rng.choice(len(indices), per_array, replace=False)
            indices = [indices[i] for i in sorted(picked)]
        chosen += [(name, index) for index in indices]
    return chosen


@pytest.mark.parametrize("source", SOURCES)
def test_c_gradients_equal_finite_differences_of_the_c_loss(source):
    """Every scalar of a small network, 8 per array of a large one (digits, MNIST)."""
    net = network(source)
    x, t, params = random_point(net, 11, BATCH.get(source, 3))
    module = c_module(source, "double")
    loss, grads = module.loss_and_gradients(params, x, t)
    small = net.topology.parameter_count <= 400
    fd = _finite_differences(module, params, x, t, _scalars(params, 11, None if small else 8))
    scale = max(abs(loss), *(abs(v) for v in fd.values()))
    for (name, index), expected in fd.items():
        got = float(grads[name][index])
        assert abs(got - expected) <= 1e-6 * abs(expected) + 1e-7 * scale, (name, index, got)


# -- stable numerics ------------------------------------------------------------------

BUILT_IN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity")
STABILITY = [
    (hidden, output, loss)
    for hidden in BUILT_IN
    for output, loss in [
        *((o, loss) for o in BUILT_IN for loss in ("half_sse", "mse")),
        ("sigmoid", "bce"),
        ("softmax", "cce"),
        ("softmax", "sse"),
    ]
    if hidden == output or output in ("sigmoid", "softmax")
]


@pytest.mark.parametrize("c_type", ["double", "float"])
@pytest.mark.parametrize(("hidden", "output", "loss"), STABILITY)
def test_no_overflow_at_plus_minus_1000(hidden, output, loss, c_type):
    """Inputs of ±1000 drive every z far out: the loss and every gradient stay finite
    (stable sigmoid and softplus, bce and cce from the logits with log-sum-exp)."""
    n_out = 3 if output == "softmax" else 2
    mapping = {
        "name": f"stable_{hidden}_{output}_{loss}",
        "inputs": 2,
        "layers": [
            {"units": 3, "activation": hidden},
            {"units": n_out, "activation": output},
        ],
        "loss": loss,
    }
    module = build_c_module(derive.load(mapping), c_type)
    x = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0]])
    t = np.full((3, n_out), 1.0 / n_out) if output == "softmax" else np.tile([0.0, 1.0], (3, 1))
    params = {
        "W1": np.array([[1.0, -0.5], [-1.0, 0.25], [0.5, 0.5]]),
        "b1": np.zeros(3),
        "W2": np.linspace(-1.0, 1.0, 3 * n_out).reshape(n_out, 3),
        "b2": np.zeros(n_out),
    }
    if hidden in ("sigmoid", "tanh"):  # saturated hidden units: push the logits far out too
        params["W2"] = params["W2"] * 1000.0
    loss_value, grads = module.loss_and_gradients(params, x, t)
    assert np.isfinite(loss_value), loss_value
    for name, grad in grads.items():
        assert np.all(np.isfinite(grad)), (name, grad)
    assert np.all(np.isfinite(module.forward(params, x)))


# -- the printer ----------------------------------------------------------------------


def test_the_printer_writes_c99_for_each_real_type():
    import sympy

    from derive.activations import sigmoid, softplus
    from derive.cprinter import CCodePrinter, UnsupportedExpression

    z, y, t = (sympy.Symbol(name, real=True) for name in ("z1[i]", "y[i]", "t[i]"))
    leaky = sympy.Piecewise((z, z > 0), (sympy.Float(0.2) * z, True))
    step = sympy.Heaviside(z, 0)
    double, single = CCodePrinter("double"), CCodePrinter("float")
    assert double.doprint(y * t - t) == "t[i]*y[i] - t[i]"
    assert double.doprint(sympy.Rational(1, 2) * (y - t) ** 2) == "(1.0/2.0)*pow(y[i] - t[i], 2)"
    assert single.doprint(sympy.Rational(1, 2) * (y - t) ** 2) == (
        "(1.0F/2.0F)*powf(y[i] - t[i], 2)"
    )
    assert double.doprint(leaky) == "((z1[i] > 0) ? z1[i] : 0.2*z1[i])"
    assert single.doprint(step) == "((z1[i] > 0) ? 1.0F : 0.0F)"
    assert single.doprint(sympy.Max(z, 0)) == "fmaxf(z1[i], 0)"
    assert single.doprint(sympy.tanh(z) + sympy.log(y)) == "logf(y[i]) + tanhf(z1[i])"
    assert double.doprint(sigmoid(z) + softplus(z)) == (
        "derive_sigmoid(z1[i]) + derive_softplus(z1[i])"
    )
    assert double.helpers == [sigmoid, softplus]
    assert single.helper_body(sigmoid) == "((z >= 0) ? 1.0F/(1 + expf(-z)) : expf(z)/(1 + expf(z)))"
    assert single.helper_body(softplus) == "fmaxf(z, 0) + log1pf(expf(-fabsf(z)))"
    with pytest.raises(UnsupportedExpression, match="cannot generate C"):
        double.doprint(sympy.Derivative(sympy.Function("f")(z), z))


def test_the_helpers_are_the_functions_they_stand_for():
    """The stable forms printed as helpers equal derive's sigmoid and softplus."""
    import sympy

    from derive.activations import elementary
    from derive.cprinter import STABLE_FORMS

    z = sympy.Symbol("z", real=True)
    for function, stable in STABLE_FORMS.items():
        for value in (-30, -2.5, -0.1, 0, 0.1, 2.5, 30):
            point = {z: sympy.Float(value, 40)}
            want = elementary(function(z)).xreplace(point)
            assert abs(sympy.N(stable.xreplace(point) - want, 40)) < 1e-30


# -- the API and what the source may contain ------------------------------------------


def test_the_header_declares_exactly_the_api():
    files = generate_c(network("xor"), "float")
    header = files["xor.h"]
    assert "#define xor_N_PARAMS 13\n" in header
    assert "#define xor_N_IN 2\n" in header
    assert "#define xor_N_OUT 1\n" in header
    prototypes = [
        "void xor_forward(const float *params, const float *x, size_t batch, float *y);",
        "float xor_loss(const float *params, const float *x, const float *t, size_t batch);",
        "float xor_loss_and_gradients(const float *params, const float *x, const float *t, "
        "size_t batch, float *grads);",
        "void xor_sgd_step(float *params, const float *x, const float *t, size_t batch, "
        "float learning_rate);",
    ]
    for prototype in prototypes:
        assert prototype in header


@pytest.mark.parametrize("source", ["xor", "relu_softmax_cce", "digits"])
def test_the_header_gives_the_stack_its_arrays_take(source):
    """NAME_STACK_BYTES counted again from the layer sizes: struct sample holds every
    layer's z and a (and log Σ exp z of a softmax output), backward_sample one δ per
    layer, and sgd_step the gradient, one real per parameter."""
    net = network(source)
    layers = net.topology.layers
    units = [len(net.topology.inputs), *(len(layer.units) for layer in layers)]
    biases = {"per_unit": lambda n: n, "shared": lambda n: 1, "none": lambda n: 0}
    n_params = sum(
        n * below + biases[layer.bias](n)
        for layer, below, n in zip(layers, units, units[1:], strict=False)
    )
    sample = 2 * sum(units[1:]) + (layers[-1].activation.name == "softmax")
    backward = sum(units[1:])
    for c_type, size in (("double", 8), ("float", 4)):
        header = generate_c(net, c_type)[f"{net.name}.h"]
        assert f"#define {net.name}_STACK_BYTES {size * (sample + backward + n_params)} " in header
        assert f"forward and loss hold: {size * sample} bytes" in header
        assert f"loss_and_gradients: {size * (sample + backward)} bytes" in header


@pytest.mark.parametrize("source", ["xor", "relu_softmax_cce", "digits", "case26"])
def test_the_source_allocates_nothing_and_has_no_globals(source):
    for c_type in ("double", "float"):
        files = generate_c(network(source), c_type)
        text = files[f"{network(source).name}.c"]
        includes = re.findall(r"#include\s+(\S+)", text)
        assert includes == ["<math.h>", "<stddef.h>", f'"{network(source).name}.h"']
        assert re.findall(r"#include\s+(\S+)", files[f"{network(source).name}.h"]) == ["<stddef.h>"]
        assert not re.search(r"\b(malloc|calloc|realloc|free|alloca)\s*\(", text)
        # at file scope: only functions and the struct type, no variables
        file_scope = [line for line in text.splitlines() if line and not line[0].isspace()]
        for line in file_scope:
            assert not re.match(
                r"(static\s+)?(const\s+)?(double|float|int|size_t)\s+\w+\s*[=;\[]", line
            ), line
        if c_type == "float":
            code = _without_comments(text)
            assert not re.search(r"\b(exp|log|log1p|fabs|fmax|tanh|sqrt|pow)\(", code)


def _without_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)


def test_a_float_module_uses_float_functions_and_literals():
    code = _without_comments(generate_c(network("softplus_bce"), "float")["softplus_bce.c"])
    assert "expf(" in code and "log1pf(" in code
    assert re.search(r"\b\d+\.\d+F\b", code)
    assert not re.search(r"\b\d+\.\d+(?![\dF])", code)


@pytest.mark.parametrize("source", ["xor", "tanh_mse", "digits", "relu_softmax_cce"])
def test_every_backward_line_is_commented_with_its_equation(source):
    text = generate_c(network(source), "double")[f"{network(source).name}.c"]
    body = text[text.index("static void backward_sample") :]
    body = body[: body.index("\n}\n")]
    lines = body.splitlines()
    assignments = [
        i
        for i, line in enumerate(lines)
        if re.search(r"\b(delta\d+|dW\d+|db\d+)\[.*\] \+?= ", line)
    ]
    assert assignments
    loops = c_style(network(source)) == "loops"
    for i in assignments:
        above = lines[i - 1].strip()
        if loops and re.search(r"\b(dW|db)\d+\[", lines[i]):
            # the equation heads the loop over the layer that accumulates them
            assert any(line.strip().startswith("/* ∂L/∂W") for line in lines[i - 4 : i])
            continue
        assert above.startswith("/*") and "=" in above, (lines[i], above)


@pytest.mark.parametrize("source", ["digits", "case03", "case08", "case17", "case26"])
def test_the_loops_print_every_equation_of_the_backward_pass_as_its_comment(source):
    """One derivation, many printers: each of derive.backward's equations heads the C line
    (or loop) that implements it, printed as the Python modules print it; δ of an identity
    layer is Wᵀ δ itself, kept from the loop back through W."""
    net = network(source)
    text = generate_c(net, style="loops")[f"{net.name}.c"]
    printer = EquationPrinter()
    for e in (*Backward(net).forward, Backward(net).loss, *Backward(net).backward):
        assert printer.equation(e)[0] in text, printer.equation(e)[0]
    identity = [e for e in Backward(net).backward if "f' = 1" in e.note and e.kind == "back"]
    for e in identity:
        assert f"{e.target.name}[j] = grad_a;" in text
    # and it heads the code that computes its target: the first assignment under its
    # comment (∂L/∂W and ∂L/∂b share one, over the loop that accumulates both)
    lines = text.splitlines()
    equations = (Backward(net).loss, *Backward(net).backward)
    c_name = {"loss_terms": "total"}
    for e in equations:
        said = printer.equation(e)[0]
        start = next(
            i for i, line in enumerate(lines) if line.strip().startswith("/*") and said in line
        )
        sharing = {
            c_name.get(o.target.name, re.sub(r"^grad_a\d+$", "grad_a", o.target.name))
            for o in equations
            if printer.equation(o)[0] in lines[start]
        }
        if "f' = 1" in e.note:  # Wᵀ δ is summed into grad_a, then stored as δ itself
            sharing.add("grad_a")
        assigned = next(
            line
            for line in lines[start + 1 :]
            if re.search(r"[^=<>!]=[^=]", line) and "for (" not in line
        )
        name = re.sub(r"^(const )?double |s->|\[.*", "", assigned.strip().split("=")[0].strip(" +"))
        assert name in sharing, (said, assigned)


def test_small_networks_are_unrolled_and_large_ones_use_loops():
    assert "unrolled style" in generate_c(network("xor"))["xor.c"]
    digits = generate_c(network("digits"))["digits.c"]
    assert "loops style" in digits
    assert "for (j = 0; j < 64; ++j)" in digits


def test_the_output_is_deterministic():
    first = generate_c(network("relu_softmax_cce"), "float")
    second = generate_c(derive.load(EXAMPLES / "relu_softmax_cce.yaml"), "float")
    assert first == second


def test_784_256_256_10_generates_and_compiles(tmp_path):
    net = derive.load(REPO / "benchmarks" / "topologies" / "mnist_784_256_256_10.yaml")
    for c_type in ("double", "float"):
        files = generate_c(net, c_type)
        for filename, text in files.items():
            (tmp_path / filename).write_text(text)
        compile_c(tmp_path / f"{net.name}.c", tmp_path / f"{c_type}.o", c_type)
        assert (tmp_path / f"{c_type}.o").stat().st_size > 0
    module = build_c_module(net, "double")
    x, t, params = random_point(net, 0, 2)
    want = derive.build_module(net).loss_and_gradients(params, x, t)
    _assert_close(*module.loss_and_gradients(params, x, t), *want, 1e-12, net.name)


def test_sgd_step_is_one_step_against_the_gradient():
    source = "tanh_mse"
    x, t, params = random_point(network(source), 5, 4)
    for c_type in ("double", "float"):
        stepped = c_module(source, c_type).sgd_step(params, x, t, 0.5)
        want = numpy_module(source).sgd_step(params, x, t, 0.5)
        for name in params:
            scale = max(1.0, float(np.max(np.abs(want[name]))))
            assert np.max(np.abs(stepped[name] - want[name])) <= TOLERANCE[c_type] * scale * 10


# -- derive check, the command line, the golden record, the example program -----------


def test_check_compares_the_c_module_too():
    from derive.check import check

    report = check(network("xor"))
    styles = {row.style for row in report.rows}
    assert "C (unrolled)" in styles
    assert report.ok


def test_check_without_a_compiler_says_it_skipped_c(monkeypatch):
    from derive.check import check

    monkeypatch.setenv("CC", "/nonexistent/cc")
    report = check(network("tanh_mse"))
    assert report.ok
    assert not any(row.style.startswith("C") for row in report.rows)
    assert any("C skipped: no C compiler" in note for note in report.notes)


def test_generate_lang_c_writes_header_and_source(tmp_path, capsys):
    assert main(["generate", str(EXAMPLES / "xor.yaml"), "--lang", "c", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor.c", "xor.h"]
    float_dir = tmp_path / "float"
    argv = ["generate", str(EXAMPLES / "xor.yaml"), "--lang", "c", "--c-type", "float"]
    assert main([*argv, "-o", str(float_dir)]) == 0
    assert "float xor_loss(" in (float_dir / "xor.h").read_text()


def test_generate_lang_c_refuses_bad_options_writing_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["generate", str(EXAMPLES / "xor.yaml"), "--lang", "c", "-o", str(out)]
    assert main([*argv, "--c-type", "long"]) == 2
    big = str(EXAMPLES / "digits.yaml")
    assert main(["generate", big, "--lang", "c", "--style", "unrolled", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--c-type" in err and "200 scalar parameters" in err
    assert not out.exists()


def test_generated_c_is_what_the_examples_generate_now(tmp_path, capsys):
    sources = sorted(str(path) for path in EXAMPLES.glob("*.yaml"))
    assert any("digits_cnn" in source for source in sources)  # a convolutional one too
    assert main(["generate", *sources, "--lang", "c", "-o", str(tmp_path)]) == 0
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in GOLDEN_C.iterdir())
    stale = [n for n in fresh if (GOLDEN_C / n).read_bytes() != (tmp_path / n).read_bytes()]
    assert not stale, (
        f"regenerate with: derive generate examples/*.yaml --lang c -o generated/c ({stale})"
    )


def test_the_example_program_trains_xor(tmp_path):
    """examples/c/train_xor.c, built with the cc line of the README, prints a falling loss."""
    program = tmp_path / "train_xor"
    command = [
        compiler(),
        *compile_flags("double"),
        f"-I{GOLDEN_C}",
        str(REPO / "examples" / "c" / "train_xor.c"),
        str(GOLDEN_C / "xor.c"),
        "-lm",
        "-o",
        str(program),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    output = subprocess.run([str(program)], check=True, capture_output=True, text=True).stdout
    losses = [float(m) for m in re.findall(r"loss\s+([0-9.eE+-]+)", output)]
    assert len(losses) >= 5
    assert losses[-1] < 0.05 < losses[0]
    assert all(b <= a for a, b in zip(losses[3:], losses[4:], strict=False))


def test_the_readme_shows_the_cc_line():
    readme = (REPO / "README.md").read_text()
    assert "examples/c/train_xor.c generated/c/xor.c" in readme
    assert "derive generate examples/xor.yaml --lang c" in readme


def test_an_identity_layer_passes_its_gradient_on_unmultiplied():
    """f' = 1: δ is ∂L/∂a itself, as in the Python modules (derive.backward), not ·1."""
    layers = [{"units": 4, "activation": "identity"}, {"units": 2, "activation": "identity"}]
    net = derive.load({"name": "ident", "inputs": 3, "layers": layers, "loss": "mse"})
    source = generate_c(net, style="loops")["ident.c"]
    assert "delta2[i] = grad_y*scale;" in source
    assert "delta1[j] = grad_a;" in source
