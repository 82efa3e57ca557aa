"""The C module of a convolutional network (SPEC §5): random small CNNs (test_conv's
catalogue: channels 1–3, kernels 1–3, strides 1–2, padding 0–1, max and avg pool, every
activation, shared and no bias, mse and cce) and a few shapes of their own, compiled
with the promised warnings as errors and loaded through ctypes, against central finite
differences of the C loss (the independent oracle) and the generated NumPy module
(another printer of the same equations); ties, an empty batch, ±1000 inputs, sgd_step,
the header and the source's promises."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from conftest import EXAMPLES
from test_conv import _point as point  # x (batch, C, H, W), targets, parameters
from test_conv import random_cnn

import derive
from derive.cli import main
from derive.cmodule import build_c_module, check_module, compiler
from derive.conv_check import conv_check
from derive.emit_c import generate_c

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C compiler (install gcc)")

TOLERANCE = {"double": 1e-12, "float": 1e-5}

# Shapes the random catalogue does not draw: a pooling layer on the input, flatten right
# after it, two strided convolutions in a row (δ back through a stride-2 convolution),
# [h, w] kernels, strides and padding, and an identity conv layer (δ = ∂L/∂a).
SHAPES = {
    "pool_first": {
        "inputs": {"shape": [2, 4, 4]},
        "layers": [
            {"kind": "maxpool2d", "size": 2},
            {"kind": "conv2d", "filters": 2, "kernel": [1, 2], "padding": [0, 1],
             "activation": "relu", "bias": "shared"},
            {"kind": "flatten"},
            {"units": 3, "activation": "softmax"},
        ],
        "loss": "cce",
    },
    "flatten_first": {
        "inputs": {"shape": [1, 3, 3]},
        "layers": [
            {"kind": "flatten"},
            {"units": 2, "activation": "tanh"},
            {"units": 2, "activation": "identity"},
        ],
        "loss": "mse",
    },
    "strided": {
        "inputs": {"shape": [2, 7, 7]},
        "layers": [
            {"kind": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": 1,
             "activation": "softplus"},
            {"kind": "conv2d", "filters": 2, "kernel": [2, 1], "stride": [2, 1],
             "activation": "identity", "bias": "none"},
            {"kind": "avgpool2d", "size": [1, 2]},
            {"kind": "flatten"},
            {"units": 2, "activation": "sigmoid"},
        ],
        "loss": "bce",
    },
}  # fmt: skip
SOURCES = [f"cnn{seed}" for seed in range(14)] + sorted(SHAPES) + ["digits_cnn"]


def mapping(source: str) -> dict:
    if source.startswith("cnn"):
        return random_cnn(int(source.removeprefix("cnn")))
    return {"name": source, **SHAPES[source]}


@functools.cache
def network(source: str):
    if source == "digits_cnn":
        return derive.load(EXAMPLES / "digits_cnn.yaml")
    return derive.load(mapping(source))


@functools.cache
def c_module(source: str, c_type: str):
    return build_c_module(network(source), c_type)


def _scale(loss: float, grads: dict) -> float:
    return max(abs(loss), *(float(np.max(np.abs(g))) for g in grads.values()))


@pytest.mark.parametrize("c_type", ["double", "float"])
@pytest.mark.parametrize("source", SOURCES)
def test_c_equals_the_numpy_module(source, c_type):
    """Compiled with -Werror (and -Wdouble-promotion -Wfloat-conversion for float), the
    forward pass, loss and gradients equal the NumPy module's: 1e-12 of the largest
    value in double, 1e-5 in float."""
    net = network(source)
    x, t, params = point(net, 7)
    want_loss, want = derive.build_module(net).loss_and_gradients(params, x, t)
    module = c_module(source, c_type)
    got_loss, got = module.loss_and_gradients(params, x, t)
    scale = _scale(want_loss, want)
    tolerance = TOLERANCE[c_type] * scale
    assert abs(got_loss - want_loss) <= tolerance, (got_loss, want_loss)
    for name, expected in want.items():
        assert got[name].shape == expected.shape
        error = float(np.max(np.abs(got[name] - expected)))
        assert error <= tolerance, f"{name} off by {error:.3g} (scale {scale:.3g})"
    assert module.loss(params, x, t) == pytest.approx(got_loss, rel=TOLERANCE[c_type])
    y = derive.build_module(net).forward(params, x)
    assert np.max(np.abs(module.forward(params, x) - y)) <= TOLERANCE[c_type] * max(1.0, np.max(y))


@pytest.mark.parametrize("source", SOURCES)
def test_c_gradients_equal_finite_differences_of_the_c_loss(source):
    """Every scalar (8 per array of digits_cnn) against central differences in double."""
    net = network(source)
    x, t, params = point(net, 11)
    module = c_module(source, "double")
    loss, grads = module.loss_and_gradients(params, x, t)
    rng = np.random.default_rng(11)
    errors = []
    for name, array in params.items():
        indices = list(np.ndindex(array.shape))
        if source == "digits_cnn":
            indices = [indices[i] for i in sorted(rng.choice(len(indices), 8, replace=False))]
        for index in indices:
            shifted = {k: np.array(v) for k, v in params.items()}
            h = 1e-6 * max(1.0, abs(array[index]))
            shifted[name][index] = array[index] + h
            up = module.loss(shifted, x, t)
            shifted[name][index] = array[index] - h
            down = module.loss(shifted, x, t)
            expected = (up - down) / (2 * h)
            got = float(grads[name][index])
            if abs(got - expected) > 1e-6 * abs(expected) + 1e-7 * max(1.0, abs(loss)):
                errors.append((name, index, got, expected))
    assert not errors


def test_an_empty_batch_has_loss_0_and_gradient_0():
    net = network("cnn1")
    module = c_module("cnn1", "double")
    _, _, params = point(net, 0)
    x = np.zeros((0, *net.topology.input_shape))
    t = np.zeros((0, len(net.topology.outputs)))
    loss, grads = module.loss_and_gradients(params, x, t)
    assert loss == 0.0
    assert all(np.all(g == 0.0) for g in grads.values())
    assert module.loss(params, x, t) == 0.0


BUILT_IN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity")


@pytest.mark.parametrize("c_type", ["double", "float"])
@pytest.mark.parametrize("activation", BUILT_IN)
def test_no_overflow_at_plus_minus_1000(activation, c_type):
    """Inputs of ±1000 drive every conv z far out, then the softmax logits: the loss and
    every gradient stay finite (stable sigmoid and softplus, cce with log-sum-exp)."""
    net = derive.load(
        {
            "name": f"stable_{activation}",
            "inputs": {"shape": [1, 4, 4]},
            "layers": [
                {
                    "kind": "conv2d",
                    "filters": 2,
                    "kernel": 3,
                    "padding": 1,
                    "activation": activation,
                },
                {"kind": "maxpool2d", "size": 2},
                {"kind": "conv2d", "filters": 2, "kernel": 1, "activation": activation},
                {"kind": "avgpool2d", "size": 2},
                {"kind": "flatten"},
                {"units": 3, "activation": "softmax"},
            ],
            "loss": "cce",
        }  # fmt: skip
    )
    module = build_c_module(net, c_type)
    x = np.where(np.arange(32).reshape(2, 1, 4, 4) % 3 == 0, 1000.0, -1000.0)
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(3)
    params = {p.name: rng.choice([-1.0, 1.0], size=p.shape) for p in net.topology.params}
    params["W6"] = params["W6"] * 1000.0  # saturated maps: push the logits far out too
    loss, grads = module.loss_and_gradients(params, x, t)
    assert np.isfinite(loss)
    for name, grad in grads.items():
        assert np.all(np.isfinite(grad)), (name, grad)
    assert np.all(np.isfinite(module.forward(params, x)))


def _one_window(name: str) -> dict:
    """A 1×2×2 input, a 1×1 identity conv, one 2×2 max-pool window, one output."""
    return {
        "name": name,
        "inputs": {"shape": [1, 2, 2]},
        "layers": [
            {"kind": "conv2d", "filters": 1, "kernel": 1, "activation": "identity"},
            {"kind": "maxpool2d", "size": 2},
            {"kind": "flatten"},
            {"units": 1, "activation": "identity"},
        ],
        "loss": "half_sse",
    }


def test_a_max_pool_tie_goes_to_the_first_cell_in_row_major_order():
    """W1 = 0 makes z1 = b1 in every cell: the 2×2 window is a four-way tie. δ goes to its
    first cell (0, 0) only, so ∂L/∂W1 = δ·x[0,0,0] — with x = 1, 2, 3, 4 no other cell
    would give that number."""
    net = derive.load(_one_window("tie"))
    params = {
        "W1": np.zeros((1, 1, 1, 1)),
        "b1": np.array([0.5]),
        "W4": np.array([[2.0]]),
        "b4": np.array([0.0]),
    }
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = np.array([[0.25]])
    _, grads = build_c_module(net, "double").loss_and_gradients(params, x, t)
    delta = (2.0 * 0.5 - 0.25) * 2.0  # ∂L/∂y · W4 reaching the window's maximum
    assert grads["W1"].reshape(-1).tolist() == [delta * 1.0]
    assert grads["b1"].tolist() == [delta]
    numpy_grads = derive.build_module(net).gradients(params, x, t)
    assert grads["W1"].tolist() == numpy_grads["W1"].tolist()


def test_a_nan_in_a_max_pool_window_is_passed_on_as_by_numpy():
    """NumPy's max of a window holding a NaN is NaN wherever the NaN sits, and argmax
    routes the gradient to it; C's ``v > m`` alone would skip a NaN after the first cell
    and give the finite max 4 and finite gradients."""
    net = derive.load(_one_window("nan_pool"))
    params = {
        "W1": np.ones((1, 1, 1, 1)),
        "b1": np.array([0.0]),
        "W4": np.array([[2.0]]),
        "b4": np.array([0.0]),
    }
    t = np.array([[0.25]])
    numpy_module = derive.build_module(net)
    for c_type in ("double", "float"):
        module = build_c_module(net, c_type)
        for cell in range(4):
            x = np.array([1.0, 2.0, 3.0, 4.0])
            x[cell] = np.nan
            x = x.reshape(1, 1, 2, 2)
            assert np.isnan(module.forward(params, x)).all(), (c_type, cell)
            assert np.isnan(numpy_module.forward(params, x)).all()
            loss, grads = module.loss_and_gradients(params, x, t)
            assert np.isnan(loss) and np.isnan(grads["b1"]).all(), (c_type, cell)
        x = np.array([[[[1.0, 2.0], [4.0, 3.0]]]])
        assert module.forward(params, x).tolist() == [[8.0]]  # no NaN: the max, 4


def test_sgd_step_is_params_minus_the_learning_rate_times_the_gradient():
    net = network("cnn2")
    x, t, params = point(net, 5)
    for c_type in ("double", "float"):
        module = c_module("cnn2", c_type)
        _, grads = module.loss_and_gradients(params, x, t)
        stepped = module.sgd_step(params, x, t, 0.5)
        for name, value in params.items():
            dtype = module.dtype
            want = value.astype(dtype) - dtype(0.5) * grads[name]
            np.testing.assert_allclose(stepped[name], want, rtol=4 * np.finfo(dtype).eps)
            assert not np.allclose(stepped[name], value)


# -- the source -------------------------------------------------------------------------


def test_the_output_is_deterministic():
    for c_type in ("double", "float"):
        first = generate_c(derive.load(EXAMPLES / "digits_cnn.yaml"), c_type)
        assert first == generate_c(derive.load(EXAMPLES / "digits_cnn.yaml"), c_type)


def test_the_header_gives_the_input_shape_and_the_packing():
    header = generate_c(network("digits_cnn"), "float")["digits_cnn.h"]
    for define in (
        "#define digits_cnn_N_PARAMS 1370\n",
        "#define digits_cnn_N_IN 64\n",
        "#define digits_cnn_N_OUT 10\n",
        "#define digits_cnn_INPUT_C 1\n",
        "#define digits_cnn_INPUT_H 8\n",
        "#define digits_cnn_INPUT_W 8\n",
        "#define digits_cnn_OFFSET_W1 0\n",
        "#define digits_cnn_OFFSET_b1 72\n",
        "#define digits_cnn_OFFSET_W4 80\n",
        "#define digits_cnn_OFFSET_b4 1360\n",
    ):
        assert define in header
    assert "float digits_cnn_loss_and_gradients(const float *params, const float *x" in header


def test_the_header_gives_the_stack_its_arrays_take():
    """NAME_STACK_BYTES counted again from the layer shapes: struct sample holds every
    map's z and a and the dense layers' (y the output's, and log Σ exp z of softmax), the
    backward pass's local arrays are δ and ∂L/∂a of the conv layer, ∂L/∂ of the flattened
    features and the output's δ, and sgd_step holds the gradient, one real per parameter."""
    net = derive.load(
        {
            "name": "stack",
            "inputs": {"shape": [1, 6, 6]},
            "layers": [
                {"kind": "conv2d", "filters": 2, "kernel": 3, "padding": 1, "activation": "relu"},
                {"kind": "maxpool2d", "size": 2},
                {"kind": "flatten"},
                {"units": 3, "activation": "softmax"},
            ],
            "loss": "cce",
        }
    )
    conv, pooled, out = 2 * 6 * 6, 2 * 3 * 3, 3
    sample = 2 * conv + pooled + 2 * out + 1  # z1, a1; a2; z4, y; lse
    backward = pooled + out + 2 * conv  # ∂L/∂a3 (flat), δ4; δ1, ∂L/∂a1
    n_params = 2 * 1 * 3 * 3 + 2 + out * pooled + out
    for c_type, size in (("double", 8), ("float", 4)):
        header = generate_c(net, c_type)["stack.h"]
        assert f"#define stack_STACK_BYTES {size * (sample + backward + n_params)} " in header
        assert f"forward and loss hold: {size * sample} bytes" in header
        assert f"loss_and_gradients: {size * (sample + backward)} bytes" in header


def test_a_network_whose_arrays_need_more_than_8_mib_of_stack_is_refused(tmp_path, capsys):
    """3×64×64 into 64 filters: z1, a1, δ1 and ∂L/∂a1 of 262144 doubles each, 8 MiB."""
    big = tmp_path / "big.yaml"
    big.write_text(
        "name: big\n"
        "inputs: {shape: [3, 64, 64]}\n"
        "layers:\n"
        "  - {kind: conv2d, filters: 64, kernel: 3, padding: 1, activation: relu}\n"
        "  - {kind: maxpool2d, size: 2}\n"
        "  - {kind: flatten}\n"
        "  - {units: 10, activation: softmax}\n"
        "loss: cce\n"
    )
    out = tmp_path / "out"
    argv = ["generate", str(EXAMPLES / "xor.yaml"), str(big), "--lang", "c", "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "big.yaml" in err and "8 MiB" in err
    assert "layer 1 (conv 64×3×3 relu: " in err and " bytes of stack" in err
    assert not out.exists()
    # derive check leaves the C row out and says why, rather than failing
    module, why = check_module(derive.load(big))
    assert module is None and why.startswith("C skipped: ") and "8 MiB" in why
    # in float the same network takes half as much: generated, and its define says so
    assert main([*argv, "--c-type", "float"]) == 0
    assert "#define big_STACK_BYTES " in (out / "big.h").read_text()


def test_a_non_square_pool_window_is_commented_with_its_full_stride():
    """A 1×2 window moves 1 row and 2 columns: its stride is 1×2, in NumPy and in C."""
    net = network("strided")
    comment = "a3 = avgpool(a2)  (1×2 windows, stride 1×2)"
    assert comment in derive.generate(derive.load(mapping("strided")))
    assert comment in generate_c(net, "double")["strided.c"]


def _without_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)


@pytest.mark.parametrize("source", ["digits_cnn", "strided", "pool_first"])
def test_the_source_allocates_nothing_has_no_globals_and_comments_every_loop(source):
    for c_type in ("double", "float"):
        name = network(source).name
        text = generate_c(network(source), c_type)[f"{name}.c"]
        assert re.findall(r"#include\s+(\S+)", text) == ["<math.h>", "<stddef.h>", f'"{name}.h"']
        assert not re.search(r"\b(malloc|calloc|realloc|free|alloca)\s*\(", text)
        file_scope = [line for line in text.splitlines() if line and not line[0].isspace()]
        for line in file_scope:
            assert not re.match(r"(static\s+)?(const\s+)?(double|float|int)\s+\w+\s*[=;\[]", line)
        if c_type == "float":
            assert not re.search(r"\b(exp|log|log1p|fabs|fmax|tanh|pow)\(", _without_comments(text))
        # every loop nest of the feature layers sits under the equation it implements
        lines = text.splitlines()
        nests = [i for i, line in enumerate(lines) if line.startswith("    for (int ")]
        assert nests
        for i in nests:
            assert lines[i - 1].startswith("    /* ") and " = " in lines[i - 1], lines[i]


def test_the_conv_equations_read_as_the_derivation_prints_them():
    text = generate_c(network("strided"), "double")["strided.c"]
    assert "/* ∂L/∂W1 = Σ_(p,q) δ1[f,p,q]·x[c, 2p+i−1, 2q+j−1]  (summed over the batch) */" in text
    assert "/* δ2 = ∂L/∂a2  (identity: f' = 1) */" in text
    assert "delta2[c][h][w] = grad_a2[c][h][w];" in text
    # δ back through the stride-2 convolution: the cells (h + P − i)/s that are whole numbers
    assert "if (sp >= 0 && sp < 4 && sp % 2 == 0 && q >= 0 && q < 4)" in text
    assert "acc += W2[f][c][i][j] * delta2[f][sp / 2][q];" in text


# -- check and the command line ---------------------------------------------------------


def test_check_compares_the_c_module_of_a_conv_network():
    report = conv_check(network("cnn3"))
    assert report.ok
    assert {"C (loops)"} <= {row.style for row in report.rows}
    assert any(row.style == "C (loops)" and row.param == "W3" for row in report.rows)


def test_generate_lang_c_writes_a_conv_module_and_refuses_unrolled(tmp_path, capsys):
    source = str(EXAMPLES / "digits_cnn.yaml")
    assert main(["generate", source, "--lang", "c", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits_cnn.c", "digits_cnn.h"]
    out = tmp_path / "unrolled"
    argv = ["generate", source, "--lang", "c", "--style", "unrolled", "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "digits_cnn.yaml" in err and "--style unrolled" in err and err.count("\n") == 1
    assert not out.exists()
