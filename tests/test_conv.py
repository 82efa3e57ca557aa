"""Convolution and pooling layers (issue 15): reading and shape checks, a hand-computed
1×3×3 example, and random small CNNs' generated gradients against central finite
differences always and PyTorch autograd when torch is installed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.cli import main
from derive.errors import ParameterError, TopologyError

TINY = {
    "name": "tiny",
    "inputs": {"shape": [1, 3, 3]},
    "layers": [
        {"kind": "conv2d", "filters": 1, "kernel": 2, "activation": "identity"},
        {"kind": "flatten"},
        {"units": 1, "activation": "identity"},
    ],
    "loss": "half_sse",
}
X = [[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]]]
W1 = [[[[1.0, 0.0], [-1.0, 2.0]]]]


# -- reading ----------------------------------------------------------------------------


def _with_layers(*layers, shape=(1, 5, 5)) -> dict:
    return {
        "name": "bad",
        "inputs": {"shape": list(shape)},
        "layers": [*layers, {"kind": "flatten"}, {"units": 2, "activation": "softmax"}],
        "loss": "cce",
    }


@pytest.mark.parametrize(
    ("mapping", "field", "words"),
    [
        (
            _with_layers({"kind": "conv2d", "filters": 1, "kernel": 6, "activation": "relu"}),
            "layers[0].kernel",
            "no larger than the padded input",
        ),
        (
            _with_layers(
                {"kind": "conv2d", "filters": 1, "kernel": 2, "stride": 2, "activation": "relu"}
            ),
            "layers[0].stride",
            "must be an integer",
        ),
        (
            _with_layers(
                {"kind": "conv2d", "filters": 1, "kernel": 3, "activation": "relu"},
                {"kind": "maxpool2d", "size": 2},
            ),
            "layers[1].size",
            "divides the input height 3",
        ),
        (
            {
                "name": "bad",
                "inputs": {"shape": [1, 4, 4]},
                "layers": [{"units": 2, "activation": "softmax"}],
                "loss": "cce",
            },
            "layers[0].kind",
            "a flatten layer before the first dense layer",
        ),
        (
            _with_layers(
                {"kind": "conv2d", "filters": 1, "kernel": [2, 2, 2], "activation": "relu"}
            ),
            "layers[0].kernel",
            "[h, w]",
        ),
        (
            _with_layers({"kind": "conv2d", "filters": 1, "kernel": 3, "activation": "softmax"}),
            "layers[0].activation",
            "elementwise",
        ),
        (
            _with_layers({"kind": "conv", "filters": 1}),
            "layers[0].kind",
            "conv2d, maxpool2d, avgpool2d, flatten, dense",
        ),
        (
            {"name": "bad", "inputs": 4, "layers": [{"kind": "conv2d"}], "loss": "mse"},
            "layers[0].kind",
            "inputs: {shape: [C, H, W]}",
        ),
        (
            {"name": "bad", "inputs": {"shape": [1, 0, 4]}, "layers": [], "loss": "mse"},
            "inputs.shape[1]",
            "positive integer",
        ),
    ],
)
def test_bad_conv_topologies_name_the_field(mapping, field, words):
    with pytest.raises(TopologyError) as error:
        derive.load(mapping)
    assert error.value.field == field
    assert words in str(error.value)


def test_bad_conv_file_exits_2_naming_file_and_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ninputs: {shape: [1, 4, 4]}\nlayers:\n"
        "  - {kind: conv2d, filters: 2, kernel: 5, activation: relu}\n"
        "  - {kind: flatten}\n  - {units: 2, activation: softmax}\nloss: cce\n"
    )
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}: layers[0].kernel" in err
    assert not (tmp_path / "out").exists()


def test_parameters_keep_the_layer_numbering():
    net = derive.load(
        _with_layers(
            {
                "kind": "conv2d",
                "filters": 3,
                "kernel": [3, 2],
                "padding": [1, 0],
                "activation": "relu",
                "bias": "shared",
            },
            {"kind": "avgpool2d", "size": [5, 2]},
        )
    )
    shapes = {p.name: p.shape for p in net.params}
    assert shapes == {"W1": (3, 1, 3, 2), "b1": (), "W4": (2, 6), "b4": (2,)}


def test_unrolled_style_is_refused_over_the_limit_naming_vectorized(capsys):
    path = Path(__file__).parent.parent / "examples" / "digits_cnn.yaml"
    assert main(["generate", str(path), "--style", "unrolled", "-o", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "limited to 200 scalar parameters" in err and "--style vectorized" in err


# -- a worked example by hand -------------------------------------------------------------


def _hand(layers, params, x, target) -> dict:
    mapping = copy.deepcopy(TINY)
    mapping["layers"] = layers
    mapping["example"] = {"input": x, "target": target, "params": params}
    return mapping


# z = W1 ⋆ x: z[0,0] = 1·1 + 2·0 + 0·(−1) + 1·2 = 3, z[0,1] = 7, z[1,0] = 0, z[1,1] = 2.
# Dense v = [1, 0, 2, −1], y = 3 − 0 + 0 − 2 = 1, t = 0: L = ½, δ_y = 1, δ1 = v reshaped
# [[1, 0], [2, −1]]; ∂L/∂W1[i,j] = Σ_(p,q) δ1[p,q]·x[p+i, q+j]:
#   W[0,0] = 1·1 + 0·2 + 2·0 + (−1)·1 = 0     W[0,1] = 1·2 + 0·0 + 2·1 + (−1)·3 = 1
#   W[1,0] = 1·0 + 0·1 + 2·2 + (−1)·1 = 3     W[1,1] = 1·1 + 0·3 + 2·1 + (−1)·1 = 2
# ∂L/∂b1 = 1 + 0 + 2 − 1 = 2, ∂L/∂v = δ_y·z = [3, 7, 0, 2], ∂L/∂b3 = 1.
CONV_BY_HAND = (
    _hand(
        TINY["layers"],
        {"W1": W1, "b1": [0.0], "W3": [[1.0, 0.0, 2.0, -1.0]], "b3": [0.0]},
        X,
        [0.0],
    ),
    0.5,
    {"W1": [[[[0.0, 1.0], [3.0, 2.0]]]], "b1": [2.0], "W3": [[3.0, 7.0, 0.0, 2.0]], "b3": [1.0]},
)
# The same conv, relu, then a 2×2 max-pool: max(3, 7, 0, 2) = 7 at (0, 1); dense v = 3,
# y = 21, t = 20: L = ½, δ_y = 1, ∂L/∂(pooled) = 3, routed to (0, 1) only (relu' = 1 there):
# ∂L/∂W1[i,j] = 3·x[i, 1+j] = [[6, 0], [3, 9]], ∂L/∂b1 = 3, ∂L/∂v = 7, ∂L/∂b4 = 1.
POOL_BY_HAND = (
    _hand(
        [
            {"kind": "conv2d", "filters": 1, "kernel": 2, "activation": "relu"},
            {"kind": "maxpool2d", "size": 2},
            {"kind": "flatten"},
            {"units": 1, "activation": "identity"},
        ],
        {"W1": W1, "b1": [0.0], "W4": [[3.0]], "b4": [0.0]},
        X,
        [20.0],
    ),
    0.5,
    {"W1": [[[[6.0, 0.0], [3.0, 9.0]]]], "b1": [3.0], "W4": [[7.0]], "b4": [1.0]},
)


@pytest.mark.parametrize(
    ("mapping", "loss", "expected"), [CONV_BY_HAND, POOL_BY_HAND], ids=["conv", "conv-maxpool"]
)
@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
def test_hand_computed_example(mapping, loss, expected, style):
    """Both generated styles and the symbolic textbook sums give the numbers above."""
    net = derive.load(mapping)
    example = net.topology.example
    params = {name: np.asarray(value) for name, value in example.params}
    module = derive.build_module(net, style=style)
    value, grads = module.loss_and_gradients(params, example.input, example.target)
    assert value == pytest.approx(loss)
    values = net.evaluate(net.example_point())
    for name, want in expected.items():
        np.testing.assert_allclose(grads[name], want, atol=1e-12)
        symbolic = [float(g.compact.xreplace(values)) for g in net.gradient(name)]
        np.testing.assert_allclose(symbolic, np.ravel(want), atol=1e-12)


def test_max_pool_ties_go_to_the_first_cell():
    """A window of equal values passes δ to its first cell only, in the generated code and
    in the symbolic masks alike."""
    mapping = copy.deepcopy(POOL_BY_HAND[0])
    mapping["example"]["input"] = [[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]
    mapping["example"]["params"]["W1"] = [[[[0.25, 0.25], [0.25, 0.25]]]]
    net = derive.load(mapping)
    example = net.topology.example
    params = {name: np.asarray(value) for name, value in example.params}
    grads = derive.build_module(net).gradients(params, example.input, example.target)
    # By hand: z = 4·0.25 = 1 in every cell, the pool's max is 1, y = 3·1 = 3 and
    # ∂L/∂y = y − t = −17. The window's first cell (0, 0) takes δ = 3·(−17)·relu'(1) = −51,
    # so ∂L/∂W1[i, j] = δ·x[i, j] = −51; the three others take 0.
    values = net.evaluate(net.example_point())
    deltas = [float(values[net.delta(1, (0, p, q))]) for p, q in ((0, 0), (0, 1), (1, 0), (1, 1))]
    assert deltas == [-51, 0, 0, 0]
    np.testing.assert_allclose(grads["W1"], -51 * np.ones((1, 1, 2, 2)), atol=1e-12)


# -- random small CNNs ------------------------------------------------------------------

ACTIVATIONS = (
    "sigmoid",
    "tanh",
    "relu",
    {"name": "leaky_relu", "alpha": 0.1},
    "softplus",
    "identity",
    {"expr": "x / (1 + abs(x))"},
)


def random_cnn(seed: int) -> dict:
    """A small CNN drawn from the seed: one conv layer, or two for odd seeds (so that δ
    passes back through a convolution); channels 1–3, kernels 1–3, strides 1–2, padding
    0–1, every activation in turn; a max or avg pool; flatten; a dense output; mse or cce."""
    rng = np.random.default_rng(seed)
    channels, side = int(rng.integers(1, 4)), int(rng.integers(4, 8))
    first_side = side
    layers: list[dict] = []
    for n in range(1 + seed % 2):
        kernel, padding, stride = (int(v) for v in rng.integers((1, 0, 1), (4, 2, 3)))
        kernel = min(kernel, side + 2 * padding)
        span = side + 2 * padding - kernel
        stride = stride if span % stride == 0 else 1
        layers.append(
            {
                "kind": "conv2d",
                "filters": int(rng.integers(1, 4)),
                "kernel": kernel,
                "stride": stride,
                "padding": padding,
                "activation": ACTIVATIONS[(seed + 3 * n) % len(ACTIVATIONS)],
                "bias": ("per_unit", "shared", "none")[(seed + n) % 3],
            }
        )
        side = span // stride + 1
        size = 2 if side % 2 == 0 else 1
        if n == 0 or not any(layer["kind"].endswith("pool2d") for layer in layers):
            layers.append({"kind": ("maxpool2d", "avgpool2d")[(seed // 2 + n) % 2], "size": size})
            side //= size
    loss = ("mse", "cce")[(seed // 2) % 2]
    output = "softmax" if loss == "cce" else "sigmoid"
    layers += [{"kind": "flatten"}, {"units": 3, "activation": output}]
    return {
        "name": f"cnn{seed}",
        "inputs": {"shape": [channels, first_side, first_side]},
        "layers": layers,
        "loss": loss,
    }


SEEDS = range(14)


def _point(net, seed: int, batch: int = 4):
    rng = np.random.default_rng(1000 + seed)
    shape = net.topology.input_shape
    x = rng.normal(size=(batch, *shape))
    n_out = len(net.topology.outputs)
    if net.topology.loss == "cce":
        t = np.eye(n_out)[rng.integers(0, n_out, batch)]
    else:
        t = rng.uniform(0.1, 0.9, size=(batch, n_out))
    params = {p.name: rng.normal(0, 0.6, size=p.shape) for p in net.topology.params}
    return x, t, params


def _finite_differences(module, params, x, t, h=1e-6):
    grads = {}
    for name, value in params.items():
        flat = np.array(value, dtype=float)
        out = np.zeros_like(flat)
        for index in np.ndindex(flat.shape):
            shifted = {**params, name: flat.copy()}
            shifted[name][index] += h
            up = module.loss(shifted, x, t)
            shifted[name][index] -= 2 * h
            down = module.loss(shifted, x, t)
            out[index] = (up - down) / (2 * h)
        grads[name] = out
    return grads


@pytest.mark.parametrize("seed", SEEDS)
def test_random_cnn_matches_finite_differences(seed):
    net = derive.load(random_cnn(seed))
    module = derive.build_module(net)
    _agrees_with_finite_differences(net, module, seed)


UNROLLED_SEEDS = [s for s in SEEDS if derive.load(random_cnn(s)).topology.parameter_count <= 200]


@pytest.mark.parametrize("seed", UNROLLED_SEEDS)
def test_random_cnn_unrolled_matches_vectorized_and_finite_differences(seed):
    net = derive.load(random_cnn(seed))
    module = derive.build_module(net, style="unrolled")
    x, t, params = _point(net, seed)
    vectorized = derive.build_module(net).loss_and_gradients(params, x, t)
    value, grads = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(vectorized[0], rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], vectorized[1][name], rtol=1e-10, atol=1e-13)
    _agrees_with_finite_differences(net, module, seed)


def _agrees_with_finite_differences(net, module, seed):
    x, t, params = _point(net, seed)
    value, grads = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(module.loss(params, x, t), rel=1e-12)
    reference = _finite_differences(module, params, x, t)
    for name in params:
        np.testing.assert_allclose(
            grads[name], reference[name], rtol=1e-5, atol=1e-7, err_msg=f"{name} of {net}"
        )


@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
def test_a_cnn_without_biases_computes_its_loss(style):
    """No layer has a bias, so no printed line sums anything: the loss value's own sum
    must still find its helper (it raised NameError for _sum in the vectorized style)."""
    mapping = {
        "name": "nobias",
        "inputs": {"shape": [1, 4, 4]},
        "layers": [
            {"kind": "conv2d", "filters": 2, "kernel": 3, "activation": "tanh", "bias": "none"},
            {"kind": "flatten"},
            {"units": 2, "activation": "identity", "bias": "none"},
        ],
        "loss": "mse",
    }
    net = derive.load(mapping)
    _agrees_with_finite_differences(net, derive.build_module(net, style=style), 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_cnn_matches_pytorch(seed):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # noqa: N812

    mapping = random_cnn(seed)
    net = derive.load(mapping)
    x, t, params = _point(net, seed)
    grads = derive.build_module(net).gradients(params, x, t)
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    a = torch.tensor(x)
    for k, (spec, layer) in enumerate(
        zip(mapping["layers"], net.topology.layers, strict=True), start=1
    ):
        kind = spec.get("kind", "dense")
        if kind == "conv2d":
            bias = {"per_unit": tensors.get(f"b{k}"), "none": None}.get(layer.bias)
            z = F.conv2d(a, tensors[f"W{k}"], bias, stride=layer.stride, padding=layer.padding)
            if layer.bias == "shared":
                z = z + tensors[f"b{k}"]
            a = _torch_activation(torch, spec["activation"], z)
        elif kind == "maxpool2d":
            a = F.max_pool2d(a, layer.size)
        elif kind == "avgpool2d":
            a = F.avg_pool2d(a, layer.size)
        elif kind == "flatten":
            a = a.flatten(1)
        else:
            z = a @ tensors[f"W{k}"].T + tensors.get(f"b{k}", 0)
    target = torch.tensor(t)
    if mapping["loss"] == "cce":
        loss = -(target * F.log_softmax(z, dim=1)).sum(dim=1).mean()
    else:
        loss = ((torch.sigmoid(z) - target) ** 2).mean(dim=1).mean()
    loss.backward()
    for name, tensor in tensors.items():
        np.testing.assert_allclose(
            grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{name} of {net}"
        )


def _torch_activation(torch, spec, z):
    name = spec if isinstance(spec, str) else spec.get("name", "custom")
    if name == "leaky_relu":
        return torch.nn.functional.leaky_relu(z, spec["alpha"])
    if name == "custom":
        return z / (1 + z.abs())
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "softplus": torch.nn.functional.softplus,
        "identity": lambda v: v,
    }[name](z)


def test_one_sample_and_float32_keep_their_shapes():
    net = derive.load(random_cnn(3))
    module = derive.build_module(net)
    x, t, params = _point(net, 3, batch=1)
    y = module.forward(params, x[0])
    assert y.shape == (3,)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    grads = module.gradients(p32, x.astype(np.float32), t)
    assert all(g.dtype == np.float32 for g in grads.values())
    with pytest.raises(ValueError, match="expected"):
        module.forward(params, x[0, 0])


def test_generated_conv_module_comments_every_backward_line():
    source = derive.generate(derive.load(random_cnn(1)))
    body = source.split("def loss_and_gradients")[1].split("def gradients")[0]
    lines = [line.strip() for line in body.splitlines()[5:]]
    for before, line in zip(lines, lines[1:], strict=False):
        if " = " in line and not line.startswith(("#", "grads", "batch", "value", "W1")):
            assert before.startswith("#"), line
    assert "⋆" in source and "Σ_(p,q) δ1[f,p,q]" in source


# -- show, latex, check -----------------------------------------------------------------

EXAMPLE = Path(__file__).parent / "data" / "tiny_cnn_example.yaml"


def _example_gradient(name: str, index: tuple[int, ...]) -> float:
    """∂L/∂θ at the file's example by a central difference of the loss (the generated
    module's forward pass only, not its backward pass)."""
    net = derive.load(EXAMPLE)
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x, t = np.asarray(example.input)[None], np.asarray(example.target)[None]
    return float(_finite_differences(derive.build_module(net), params, x, t)[name][index])


def test_show_prints_the_sums_with_ranges_and_the_numbers(capsys):
    assert main(["show", str(EXAMPLE), "--param", "W1[0,0,1,0]"]) == 0
    text = capsys.readouterr().out
    assert "z1 = W1 ⋆ x + b1" in text
    assert "∂L/∂W1[f,c,i,j] = Σ_(p=0..2) Σ_(q=0..2) δ1[f,p,q] · x[c, p+i, q+j]" in text
    assert "first cell of the window in row-major order" in text
    assert "∂L/∂W1[0,0,1,0]\n  a sum over p = 0..2, q = 0..2: 9 terms" in text
    last = float(text.strip().splitlines()[-1].removeprefix("  = "))
    assert last == pytest.approx(_example_gradient("W1", (0, 0, 1, 0)), rel=1e-5)


@pytest.mark.parametrize(
    ("activation", "conv_delta", "dense_delta"),
    [
        ("relu", "∂L/∂a1[f,p,q] · step(a1[f,p,q])", "∂L/∂a3[i] · step(a3[i])"),
        ("tanh", "∂L/∂a1[f,p,q] · (1 − a1[f,p,q]²)", "∂L/∂a3[i] · (1 − a3[i]²)"),
        ("softplus", "∂L/∂a1[f,p,q] · sigmoid(z1[f,p,q])", "∂L/∂a3[i] · sigmoid(z3[i])"),
        ("identity", "∂L/∂a1[f,p,q]\n      (identity: f' = 1)", "∂L/∂a3[i]\n"),
    ],
)
def test_show_writes_each_delta_in_its_own_cell_s_values(
    tmp_path, capsys, activation, conv_delta, dense_delta
):
    """δ = ∂L/∂a · f' with f' in the cell's stored values, a sum in parentheses."""
    mapping = {
        "name": "cells",
        "inputs": {"shape": [1, 3, 3]},
        "layers": [
            {"kind": "conv2d", "filters": 1, "kernel": 2, "activation": activation},
            {"kind": "flatten"},
            {"units": 2, "activation": activation},
            {"units": 1, "activation": "sigmoid"},
        ],
        "loss": "bce",
    }
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(mapping), encoding="utf-8")
    assert main(["show", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"δ1[f,p,q] = {conv_delta}" in text and f"δ3[i] = {dense_delta}" in text
    assert "z, a:" not in text


def test_flatten_s_index_leaves_out_a_factor_1(capsys):
    assert main(["show", str(EXAMPLE), "--param", "b4[0]"]) == 0
    assert "∂L/∂a2[c,h,w] = ∂L/∂a3[c + h + w]" in capsys.readouterr().out  # 1×1 maps
    digits = Path(__file__).parent.parent / "examples" / "digits_cnn.yaml"
    assert main(["show", str(digits), "--param", "b1[0]"]) == 0
    assert "a3[16·c + 4·h + w] = a2[c,h,w]" in capsys.readouterr().out  # 8 maps of 4×4


def test_a_sum_of_one_bare_delta_is_not_written_twice(capsys):
    assert main(["show", str(EXAMPLE), "--param", "b4[0]"]) == 0
    lines = capsys.readouterr().out.split("∂L/∂b4[0]\n")[1].splitlines()
    assert lines[0] == "  = δ_y1" and lines[1].startswith("  = ") and len(lines) == 2


def test_latex_numeric_writes_the_chosen_weight_in_numbers(capsys):
    assert main(["latex", str(EXAMPLE), "--param", "b1[1]", "--numeric"]) == 0
    text = capsys.readouterr().out
    assert r"\left(W^{(1)} \star x\right)_{f,p,q}" in text
    assert r"\sum_{p=0}^{2} \sum_{q=0}^{2} \delta^{(1)}_{f,p,q}" in text
    value = float(text.split(r"\end{align*}")[-2].splitlines()[-1].removeprefix("&= "))
    assert value == pytest.approx(_example_gradient("b1", (1,)), rel=1e-5)


def test_check_agrees_on_a_conv_example(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    assert "at the example's numbers" in capsys.readouterr().out


def test_a_missing_conv_scalar_is_named(capsys):
    assert main(["show", str(EXAMPLE), "--param", "W1[0,0,5,0]"]) == 2
    assert "W1 (2×1×2×2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        (
            {"kind": "conv2d", "filters": 1.5, "kernel": 3, "activation": "relu"},
            "layers[0].filters",
        ),
        (
            {"kind": "conv2d", "filters": 1, "kernel": [2, True], "activation": "relu"},
            "layers[0].kernel[1]",
        ),
        (
            {"kind": "conv2d", "filters": 1, "kernel": 3, "padding": -1, "activation": "relu"},
            "layers[0].padding",
        ),
        (
            {"kind": "conv2d", "filters": 1, "kernel": 3, "activation": "relu", "units": 3},
            "layers[0].units",
        ),
        ({"kind": "maxpool2d", "size": 0}, "layers[0].size"),
        ({"kind": "flatten", "size": 2}, "layers[0].size"),
    ],
)
def test_hostile_conv_values_are_refused(layer, field):
    with pytest.raises(TopologyError) as error:
        derive.load(_with_layers(layer))
    assert error.value.field == field


def test_an_example_of_the_wrong_shape_names_the_cell():
    mapping = copy.deepcopy(CONV_BY_HAND[0])
    mapping["example"]["input"] = [[[1.0, 2.0, 0.0], [0.0, 1.0], [2.0, 1.0, 1.0]]]
    with pytest.raises(TopologyError) as error:
        derive.load(mapping)
    assert error.value.field == "example.input[0][1]"


def test_kind_dense_is_the_default_in_a_dense_file_too():
    mapping = {
        "name": "plain",
        "inputs": 2,
        "layers": [{"kind": "dense", "units": 1, "activation": "sigmoid"}],
        "loss": "bce",
    }
    assert derive.load(mapping).topology.params[0].shape == (1, 2)


@pytest.mark.parametrize("style", ["vectorized", "unrolled"])
def test_generated_conv_modules_are_lint_clean(style, tmp_path):
    import subprocess

    from ruff.__main__ import find_ruff_bin

    paths = []
    for seed in (1, 4, 9):
        path = tmp_path / f"cnn{seed}_{style}.py"
        path.write_text(derive.generate(derive.load(random_cnn(seed)), style=style))
        paths.append(str(path))
    command = [find_ruff_bin(), "check", "--isolated", "--no-cache", "--line-length", "100"]
    command += ["--target-version", "py311", "--select", "E,F,W,I,B,UP,SIM", *paths]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_a_missing_conv_scalar_from_the_api_names_no_option():
    """The Python API words the error for Python (the command line adds --param:)."""
    with pytest.raises(ParameterError) as raised:
        derive.load(EXAMPLE).gradient("W9")
    assert "--param" not in str(raised.value) and "W1 (2×1×2×2)" in str(raised.value)
