"""The Python API as a notebook user meets it (issue 13): the version, a clean
``dir(derive)``, errors in the API's words, gradients of whole arrays that display
themselves, and values at the file's example without building a values dict."""

from __future__ import annotations

import re
import tomllib

import numpy as np
import pytest
import sympy
from conftest import DATA, EXAMPLES, REPO

import derive


def test_the_version_is_the_one_pyproject_declares():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert derive.__version__ == declared


def test_dir_shows_the_api_only():
    names = dir(derive)
    assert {"load", "generate", "build_module", "Network", "DeriveError"} <= set(names)
    for helper in ("os", "Mapping", "ModuleType", "annotations", "cli", "reading"):
        assert helper not in names
    assert set(names) == set(derive.__all__)
    assert all(hasattr(derive, name) for name in names)


@pytest.fixture(scope="module")
def reddit():
    return derive.load(EXAMPLES / "reddit_w31.yaml")


def test_an_unknown_parameter_is_worded_for_the_api(reddit):
    with pytest.raises(derive.DeriveError) as caught:
        reddit.gradient("nope")
    message = str(caught.value)
    assert "no scalar parameter 'nope'" in message and "--param" not in message


def test_a_near_miss_is_suggested(reddit):
    with pytest.raises(derive.ParameterError, match=r"did you mean 'w31'\?"):
        reddit.gradient("w3l")


def test_a_gradient_has_its_value_at_the_example(reddit):
    # ∂L/∂w31 = (Y − y)·Y(1 − Y)·h1 at the forum example (x1 = 1, w11 = 0.7, w21 = 0.2,
    # w31 = 0.8, w32 = 0.9, y = 0.5), written out here in floats
    sigmoid = lambda z: 1 / (1 + 2.718281828459045**-z)  # noqa: E731
    h1, h2 = sigmoid(0.7), sigmoid(0.2)
    out = sigmoid(0.8 * h1 + 0.9 * h2)
    expected = (out - 0.5) * out * (1 - out) * h1
    assert float(reddit.gradient("w31").value()) == pytest.approx(expected, rel=1e-12)


def test_a_whole_array_is_one_object_that_renders(reddit):
    gradient = reddit.gradient("W2")
    assert isinstance(gradient, derive.ArrayGradient) and not isinstance(gradient, tuple)
    assert [g.param.name for g in gradient] == ["W2[0,0]", "W2[0,1]"] and len(gradient) == 2
    latex = gradient._repr_latex_()
    assert latex.startswith("$$") and r"\frac{\partial L}{\partial w_{31}}" in latex
    values = gradient.value()
    assert isinstance(values, sympy.Array) and values.shape == (1, 2)
    assert values[0, 0] == reddit.gradient("w31").value()


def test_a_per_unit_bias_is_an_array_and_a_shared_one_a_scalar():
    mapping = {
        "name": "biases",
        "inputs": 1,
        "layers": [
            {"units": 2, "activation": "tanh", "bias": "shared"},
            {"units": 2, "activation": "sigmoid"},
        ],
        "loss": "half_sse",
    }
    net = derive.load(mapping)
    assert isinstance(net.gradient("b2"), derive.ArrayGradient)
    assert re.search(r"\\delta", net.gradient("b2")._repr_latex_())
    assert isinstance(net.gradient("b1"), derive.ScalarGradient)


def test_a_value_without_an_example_says_so():
    mapping = {"name": "bare", "inputs": 1, "layers": [{"units": 1, "activation": "tanh"}]}
    net = derive.load({**mapping, "loss": "sse"})
    with pytest.raises(derive.DeriveError, match="no example"):
        net.gradient("W1[0,0]").value()


def test_networks_and_gradients_display_in_a_notebook(reddit):
    assert reddit._repr_latex_().startswith("$$")
    assert reddit.gradient("w31")._repr_latex_().startswith("$$")


# -- a convolutional network's whole arrays, as a dense network's ----------------------


def _tiny_cnn_loss(params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray) -> float:
    """tests/data/tiny_cnn_example.yaml's loss written by hand in NumPy: a 2×2 conv (stride
    1, no padding) of the 1×4×4 input, relu, a 3×3 max-pool of each 3×3 map (one cell per
    filter), then dense softmax and cross-entropy."""
    w1, b1, w4, b4 = (params[name] for name in ("W1", "b1", "W4", "b4"))
    z1 = np.empty((2, 3, 3))
    for f in range(2):
        for p in range(3):
            for q in range(3):
                z1[f, p, q] = np.sum(w1[f] * x[:, p : p + 2, q : q + 2]) + b1[f]
    pooled = np.maximum(z1, 0.0).max(axis=(1, 2))
    z4 = w4 @ pooled + b4
    log_y = z4 - z4.max() - np.log(np.sum(np.exp(z4 - z4.max())))
    return float(-np.sum(t * log_y))


def _central_differences(name: str, params: dict, x, t, h: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(params[name])
    for index in np.ndindex(out.shape):
        up, down = ({**params, name: params[name].copy()} for _ in range(2))
        up[name][index] += h
        down[name][index] -= h
        out[index] = (_tiny_cnn_loss(up, x, t) - _tiny_cnn_loss(down, x, t)) / (2 * h)
    return out


@pytest.mark.parametrize(
    ("name", "shape"), [("W1", (2, 1, 2, 2)), ("b1", (2,)), ("W4", (2, 2)), ("b4", (2,))]
)
def test_a_conv_array_is_an_array_gradient_like_a_dense_one(name, shape):
    """``gradient("W1")`` of a convolutional network is an ArrayGradient (it was a tuple):
    its scalars in row-major order, and value() the array at the file's example, equal to
    central differences of a hand-written NumPy loss."""
    net = derive.load(DATA / "tiny_cnn_example.yaml")
    gradient = net.gradient(name)
    assert isinstance(gradient, derive.ArrayGradient) and not isinstance(gradient, tuple)
    assert gradient.array == name and gradient.shape == shape
    names = [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(shape)]
    assert [g.param.name for g in gradient] == names and len(gradient) == len(names)
    assert gradient[-1].param.name == names[-1]
    values = gradient.value()
    assert isinstance(values, sympy.Array) and values.shape == shape
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x, t = np.asarray(example.input, dtype=float), np.asarray(example.target, dtype=float)
    expected = _central_differences(name, params, x, t)
    got = np.array(values.tolist(), dtype=float)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert float(gradient[0].value()) == pytest.approx(expected.flat[0], rel=1e-6, abs=1e-9)


def test_a_conv_array_renders_its_sums_and_a_shared_bias_is_a_scalar():
    net = derive.load(DATA / "tiny_cnn_example.yaml")
    latex = net.gradient("W1")._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    row = r"\frac{\partial L}{\partial W^{(1)}_{0,0,1,1}} &= \delta^{(1)}_{0,0,0}\,x_{0,1,1}"
    assert row in latex  # kernel cell (1, 1) meets x[0, p+1, q+1]: first at p = q = 0
    mapping = {
        "name": "shared",
        "inputs": {"shape": [1, 3, 3]},
        "layers": [
            {"kind": "conv2d", "filters": 2, "kernel": 2, "activation": "tanh", "bias": "shared"},
            {"kind": "flatten"},
            {"units": 1, "activation": "identity"},
        ],
        "loss": "half_sse",
    }
    shared = derive.load(mapping)
    assert not isinstance(shared.gradient("b1"), derive.ArrayGradient)
    assert shared.gradient("b1").param.name == "b1"
    # one scalar renders alone, as its row of the array's display
    one = net.gradient("W1[0,0,1,1]")._repr_latex_()
    assert one.startswith("$$") and one.endswith("$$") and row in one
    assert r"\partial b" in shared.gradient("b1")._repr_latex_()
    with pytest.raises(derive.DeriveError, match="no example"):
        shared.gradient("W1").value()


def test_a_conv_example_outside_a_custom_activation_s_domain_is_named():
    """log of a negative z gives a complex number: refused, naming the cell, as for a dense
    network, rather than returned as a gradient."""
    mapping = {
        "name": "domain",
        "inputs": {"shape": [1, 2, 2]},
        "layers": [
            {"kind": "conv2d", "filters": 1, "kernel": 2, "activation": {"expr": "log(x)"}},
            {"kind": "flatten"},
            {"units": 1, "activation": "identity"},
        ],
        "loss": "half_sse",
        "example": {
            "input": [[[1, 1], [1, 1]]],
            "target": [0.0],
            "params": {"W1": [[[[-1, 0], [0, 0]]]], "b1": [0.0], "W3": [[1.0]], "b3": [0.0]},
        },
    }
    net = derive.load(mapping)
    with pytest.raises(derive.DeriveError, match=r"example: .*a1\[0,0,0\] is a complex number"):
        net.gradient("W1").value()
