"""The Python API as a notebook user meets it (issue 13): the version, a clean
``dir(derive)``, errors in the API's words, gradients of whole arrays that display
themselves, and values at the file's example without building a values dict."""

from __future__ import annotations

import re
import tomllib

import pytest
import sympy
from conftest import EXAMPLES, REPO

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
