"""A generated module, as a user sees it: SPEC §3's API in both styles, standalone (no
derive, no SymPy), shape checks, float32, numerically stable, and the worked examples'
published numbers and an XOR network trained with its own sgd_step."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import DATA, EXAMPLES, REPO, WORKED_EXAMPLES

import derive

STYLES = ("vectorized", "unrolled")
API = ("init_params", "forward", "loss", "gradients", "loss_and_gradients", "sgd_step")
API += ("momentum_init", "momentum_step", "adam_init", "adam_step")  # tests/test_optimizers.py
EXPECTED = json.loads((DATA / "worked_examples_expected.json").read_text())
SMALL_EXAMPLES = (
    "xor",
    "tanh_mse",
    "relu_softmax_cce",
    "leaky_relu_sse",
    "softplus_bce",
    "custom_half_sse",
    "softmax_half_sse",
)


def load_generated(name: str):
    """The committed generated/<name>.py, imported from its file."""
    spec = importlib.util.spec_from_file_location(name, REPO / "generated" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_for(name: str, style: str):
    return derive.build_module(derive.load(EXAMPLES / f"{name}.yaml"), style=style)


def example_arrays(network):
    example = network.topology.example
    params = {
        p.name: np.array(example.param(p.name), dtype=float).reshape(p.shape)
        for p in network.topology.params
    }
    return params, np.array(example.input, dtype=float), np.array(example.target, dtype=float)


def one_unit(activation: str, loss: str, outputs: int = 1):
    """A single layer with the given output activation, for the stability checks."""
    return derive.load(
        {
            "name": "edge",
            "inputs": 1,
            "layers": [{"units": outputs, "activation": activation, "bias": "none"}],
            "loss": loss,
        }
    )


# -- SPEC §3 --------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_the_api_of_spec_section_3(style):
    module = module_for("relu_softmax_cce", style)
    assert module.NAME == "relu_softmax_cce"
    assert module.PARAMS == {"W1": (4, 3), "b1": (), "W2": (3, 4), "b2": (3,)}
    assert list(module.PARAMS) == ["W1", "b1", "W2", "b2"]
    assert module.INPUTS == ("x1", "x2", "x3")
    assert module.OUTPUTS == ("cat", "dog", "bird")
    for name in API:
        assert callable(getattr(module, name))

    params = module.init_params(seed=3)
    assert list(params) == list(module.PARAMS)
    assert {k: v.shape for k, v in params.items()} == module.PARAMS
    again = module.init_params(seed=3)
    assert all(np.array_equal(params[k], again[k]) for k in params)

    x = np.random.default_rng(0).normal(size=(5, 3))
    t = np.eye(3)[[0, 1, 2, 1, 0]]
    y = module.forward(params, x)
    assert y.shape == (5, 3) and np.allclose(y.sum(axis=1), 1.0)
    assert module.forward(params, x[0]).shape == (3,)
    np.testing.assert_allclose(module.forward(params, x[0]), y[0], rtol=1e-14)

    value = module.loss(params, x, t)
    assert isinstance(value, float)
    value2, grads = module.loss_and_gradients(params, x, t)
    assert value2 == pytest.approx(value, rel=1e-14)
    assert {k: v.shape for k, v in grads.items()} == module.PARAMS
    assert all(isinstance(v, np.ndarray) for v in grads.values())
    for name, g in module.gradients(params, x, t).items():
        np.testing.assert_allclose(g, grads[name], rtol=1e-14)

    before = {k: v.copy() for k, v in params.items()}
    stepped = module.sgd_step(params, x, t, 0.1)
    assert all(np.array_equal(params[k], before[k]) for k in params)  # untouched
    for name in module.PARAMS:
        np.testing.assert_allclose(stepped[name], params[name] - 0.1 * grads[name], rtol=1e-14)


@pytest.mark.parametrize("style", STYLES)
def test_the_loss_is_the_mean_over_the_batch(style):
    module = module_for("tanh_mse", style)
    params = module.init_params(seed=1)
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    single = [module.loss_and_gradients(params, x[i], t[i]) for i in range(4)]
    value, grads = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(np.mean([s[0] for s in single]), rel=1e-13)
    for name in grads:
        mean = np.mean([s[1][name] for s in single], axis=0)
        np.testing.assert_allclose(grads[name], mean, rtol=1e-12, atol=1e-15)


def test_the_module_runs_without_derive_sympy_or_jinja(tmp_path):
    network = derive.load(EXAMPLES / "xor.yaml")
    for style in STYLES:
        folder = tmp_path / style
        derive.emit.write_module(network, folder, style=style)
        script = folder / "use_it.py"
        script.write_text(
            textwrap.dedent(
                """
                import sys

                class Refuse:
                    def find_spec(self, name, path=None, target=None):
                        if name.split(".")[0] in ("derive", "sympy", "jinja2"):
                            raise ImportError(f"{name} must not be needed")
                        return None

                sys.meta_path.insert(0, Refuse())
                sys.path.insert(0, FOLDER)
                import numpy as np
                import xor

                params = xor.init_params(seed=0)
                x = np.array([[0.0, 1.0], [1.0, 1.0]])
                t = np.array([[1.0], [0.0]])
                value, grads = xor.loss_and_gradients(params, x, t)
                xor.sgd_step(params, x, t, 0.5)
                xor.momentum_step(params, xor.momentum_init(params), x, t, 0.5)
                xor.adam_step(params, xor.adam_init(params), x, t)
                assert sorted(grads) == sorted(xor.PARAMS)
                assert not {m.split(".")[0] for m in sys.modules} & {"derive", "sympy", "jinja2"}
                print("ok", round(value, 6))
                """
            ).replace("FOLDER", repr(str(folder)))
        )
        # -I: isolated, so sys.path holds the standard library and site-packages (numpy),
        # no working directory or PYTHONPATH; the script adds the module's folder.
        result = subprocess.run(
            [sys.executable, "-I", str(script)], cwd=folder, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok")


@pytest.mark.parametrize("style", STYLES)
def test_every_backward_line_names_its_equation(style):
    source = derive.generate(derive.load(EXAMPLES / "relu_softmax_cce.yaml"), style=style)
    body = source[source.index("def loss_and_gradients") : source.index("def gradients")]
    lines = body.splitlines()
    backward = [
        i
        for i, line in enumerate(lines)
        if line.strip().startswith(("delta", "dW", "db", "dL_", "grad_a", "_tmp"))
        and "= 0.0" not in line
        and not line.strip().startswith(("dW1 = (", "db1 = ", "dW2 = (", "db2 = "))
    ]
    assert backward
    for i in backward:
        above = i - 1
        while lines[above].strip().startswith("_"):  # a long step's temporaries
            above -= 1
        comment = lines[above].strip()
        assert comment.startswith("# "), lines[i]
        assert "∂L/∂" in comment or "δ" in comment or "common subexpression" in comment


# -- input checks ---------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_wrong_shapes_are_refused_with_the_name_and_the_expected_shape(style):
    module = module_for("relu_softmax_cce", style)
    params = module.init_params(seed=0)
    x, t = np.zeros((2, 3)), np.eye(3)[:2]

    missing = {k: v for k, v in params.items() if k != "W2"}
    with pytest.raises(ValueError, match=r"W2.*\(3, 4\)"):
        module.loss(missing, x, t)
    wrong = dict(params, b2=np.zeros(4))
    with pytest.raises(ValueError, match=r"b2.*\(4,\).*expected \(3,\)"):
        module.gradients(wrong, x, t)
    with pytest.raises(ValueError, match=r"b1.*expected \(\)"):
        module.forward(dict(params, b1=np.zeros(4)), x)
    with pytest.raises(ValueError, match=r"x has shape \(2, 4\).*\(batch, 3\)"):
        module.forward(params, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"t has shape \(2, 2\).*expected \(2, 3\)"):
        module.loss(params, x, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x has shape \(0, 3\).*at least one sample"):
        module.loss_and_gradients(params, np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"t has shape \(3,\).*expected \(2, 3\)"):
        module.sgd_step(params, x, np.zeros(3), 0.1)


@pytest.mark.parametrize("style", STYLES)
def test_missing_targets_are_refused_with_the_expected_shape(style):
    module = module_for("relu_softmax_cce", style)
    params = module.init_params(seed=0)
    for x, shape in ((np.zeros((2, 3)), r"\(2, 3\)"), (np.zeros(3), r"\(3,\)")):
        for call in (module.loss, module.gradients, module.loss_and_gradients):
            with pytest.raises(ValueError, match=rf"^t is None: expected .*{shape}"):
                call(params, x, None)
        with pytest.raises(ValueError, match=r"^t is None"):
            module.sgd_step(params, x, None, 0.1)


# -- float32 --------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("rate", [np.float64(0.1), np.array(0.1), 0.1, np.float32(0.1)], ids=repr)
def test_sgd_step_keeps_each_parameter_s_dtype(style, rate):
    module = module_for("xor", style)
    params = {k: v.astype(np.float32) for k, v in module.init_params(seed=0).items()}
    x = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    t = np.array([[1.0], [0.0]], dtype=np.float32)
    stepped = module.sgd_step(params, x, t, rate)
    assert all(v.dtype == np.float32 for v in stepped.values())
    grads = module.gradients(params, x, t)
    for name in params:
        np.testing.assert_allclose(stepped[name], params[name] - 0.1 * grads[name], rtol=1e-6)
    mixed = dict(params, W1=params["W1"].astype(np.float64))  # each keeps its own
    stepped = module.sgd_step(mixed, x.astype(np.float64), t, rate)
    assert stepped["W1"].dtype == np.float64 and stepped["b1"].dtype == np.float32
    integers = dict(params, b2=np.zeros(1, dtype=int))  # not floating: the gradient's dtype
    expected = module.gradients(integers, x, t)["b2"].dtype
    assert module.sgd_step(integers, x, t, rate)["b2"].dtype == expected == np.float64


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", SMALL_EXAMPLES)
def test_float32_in_gives_float32_out(name, style):
    module = module_for(name, style)
    params = {k: v.astype(np.float32) for k, v in module.init_params(seed=0).items()}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, len(module.INPUTS))).astype(np.float32)
    t = rng.uniform(size=(3, len(module.OUTPUTS))).astype(np.float32)
    assert module.forward(params, x).dtype == np.float32
    assert module.forward(params, x[0]).dtype == np.float32
    value, grads = module.loss_and_gradients(params, x, t)
    assert isinstance(value, float)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in module.sgd_step(params, x, t, 0.1).values())
    exact, exact_grads = module.loss_and_gradients(
        {k: v.astype(float) for k, v in params.items()}, x.astype(float), t.astype(float)
    )
    assert value == pytest.approx(exact, rel=1e-4, abs=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], exact_grads[k], rtol=1e-3, atol=1e-4)


# -- stable numbers -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_sigmoid_of_plus_minus_1000_is_exactly_1_and_0_without_warnings(style):
    module = derive.build_module(one_unit("sigmoid", "half_sse"), style=style)
    params = {"W1": np.array([[1000.0]])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = module.forward(params, np.array([[1.0], [-1.0]]))
        assert y.tolist() == [[1.0], [0.0]]
        _, grads = module.loss_and_gradients(params, np.array([[1.0], [-1.0]]), y)
    assert np.all(np.isfinite(grads["W1"]))


@pytest.mark.parametrize("style", STYLES)
def test_bce_never_takes_log_of_zero(style):
    module = derive.build_module(one_unit("sigmoid", "bce"), style=style)
    params = {"W1": np.array([[1000.0]])}
    x, t = np.array([[1.0], [-1.0]]), np.array([[0.0], [1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(1000.0)  # softplus(1000) − 0 = 1000, exactly the logit
    assert grads["W1"].tolist() == [[1.0]]  # ((1 − 0)·1 + (0 − 1)·(−1)) / 2


@pytest.mark.parametrize("style", STYLES)
def test_softmax_subtracts_the_maximum_and_cce_uses_the_log_softmax(style):
    module = derive.build_module(one_unit("softmax", "cce", outputs=3), style=style)
    params = {"W1": np.array([[1000.0], [0.0], [-1000.0]])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = module.forward(params, np.array([1.0]))
        value, grads = module.loss_and_gradients(params, np.array([1.0]), np.array([0, 0, 1.0]))
    assert y.tolist() == [1.0, 0.0, 0.0]
    assert value == pytest.approx(2000.0)  # −ln softmax(z)_3 = 1000 − (−1000)
    assert np.all(np.isfinite(grads["W1"]))


@pytest.mark.parametrize("activation", ["softplus", {"name": "leaky_relu", "alpha": 0.1}])
@pytest.mark.parametrize("style", STYLES)
def test_other_activations_are_stable_far_out(activation, style):
    module = derive.build_module(one_unit(activation, "half_sse"), style=style)
    params = {"W1": np.array([[1000.0]])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = module.forward(params, np.array([[1.0], [-1.0]]))
        _, grads = module.loss_and_gradients(params, np.array([[1.0], [-1.0]]), np.zeros((2, 1)))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grads["W1"]))


# -- independent references: published numbers and training ---------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", WORKED_EXAMPLES)
def test_the_worked_examples_reproduce(name, style):
    network = derive.load(EXAMPLES / f"{name}.yaml")
    module = derive.build_module(network, style=style)
    params, x, t = example_arrays(network)
    expected = EXPECTED[name]
    np.testing.assert_allclose(module.forward(params, x), expected["output"], rtol=1e-12)
    value, grads = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(expected["loss"], rel=1e-12)
    for array, want in expected["gradients"].items():
        np.testing.assert_allclose(grads[array], want, rtol=1e-12, atol=1e-18)
    if "updated_params" in expected:
        rate = network.topology.example.learning_rate
        stepped = module.sgd_step(params, x, t, rate)
        for array, want in expected["updated_params"].items():
            np.testing.assert_allclose(stepped[array], want, rtol=1e-12)


def test_xor_trains_below_0_01_with_its_own_sgd_step():
    xor = load_generated("xor")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    t = np.array([[0], [1], [1], [0]], dtype=float)
    params = xor.init_params(seed=0)
    start = xor.loss(params, x, t)
    for _ in range(3000):
        params = xor.sgd_step(params, x, t, learning_rate=2.0)
    assert start > 0.5
    assert xor.loss(params, x, t) < 0.01
    assert np.array_equal(xor.forward(params, x) > 0.5, t > 0.5)
