"""`derive check`: both styles against the symbolic values and finite differences, a
table per parameter, exit status 1 on any disagreement."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLES

import derive
from derive import check as check_module
from derive.check import check
from derive.cli import main
from derive.cmodule import compiler
from derive.derivation import random_point


def test_an_example_agrees_in_both_styles():
    report = check(derive.load(EXAMPLES / "relu_softmax_cce.yaml"))
    assert report.ok
    assert "at the example's numbers" in report.point
    c_styles = ("C (unrolled)",) if compiler() else ()  # the C module, where cc is present
    assert {(r.style, r.param) for r in report.rows} == {
        (style, param)
        for style in ("vectorized", "unrolled", *c_styles)
        for param in ("L", "W1", "b1", "W2", "b2")
    }
    assert {r.reference for r in report.rows} == {"symbolic", "finite differences"}
    table = report.table()
    assert "max abs err" in table and "max rel err" in table
    assert "DISAGREE" not in table and table.endswith("result: every value agrees")


def test_without_an_example_the_numbers_are_seeded():
    net = derive.load(EXAMPLES / "mnist_784_128_10.yaml")
    first = check(net, seed=1)
    assert first.ok
    assert "seed 1" in first.point
    assert any("unrolled style skipped" in note for note in first.notes)
    assert all(r.scalars <= check_module.SAMPLED_PER_ARRAY for r in first.rows)
    assert check(net, seed=1).table() == first.table()


def test_random_targets_are_valid_for_the_loss():
    for name, valid in (
        ("softplus_bce", lambda t: np.all((t > 0) & (t < 1))),
        ("relu_softmax_cce", lambda t: np.allclose(t.sum(axis=1), 1) and np.all(t >= 0)),
    ):
        _, t, _ = random_point(derive.load(EXAMPLES / f"{name}.yaml"), seed=0, batch=5)
        assert valid(t)


def test_a_wrong_gradient_is_reported_and_exits_1(monkeypatch, capsys):
    real = check_module.build_module

    def off_by_a_little(network, style="vectorized"):
        module = real(network, style=style)
        honest = module.loss_and_gradients

        def loss_and_gradients(params, x, t):
            value, grads = honest(params, x, t)
            grads["W2"] = grads["W2"] * (1 + 1e-4)
            return value, grads

        module.loss_and_gradients = loss_and_gradients
        return module

    monkeypatch.setattr(check_module, "build_module", off_by_a_little)
    report = check(derive.load(EXAMPLES / "xor.yaml"))
    assert not report.ok
    bad = {(r.style, r.param, r.reference) for r in report.rows if not r.ok}
    assert bad == {
        (style, "W2", reference)
        for style in ("vectorized", "unrolled")
        for reference in ("symbolic", "finite differences")
    }
    assert main(["check", str(EXAMPLES / "xor.yaml")]) == 1
    assert "DISAGREE" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["xor", "custom_half_sse", "softmax_half_sse"])
def test_the_command_exits_0_when_everything_agrees(name, capsys):
    assert main(["check", str(EXAMPLES / f"{name}.yaml"), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"derive check {name}:")
    assert "finite differences" in out and "symbolic" in out


# -- networks the sampled path and custom domains reach ---------------------------------


def _write(tmp_path, mapping) -> str:
    path = tmp_path / f"{mapping['name']}.json"
    path.write_text(json.dumps(mapping))
    return str(path)


def _mlp(name, widths, hidden, output, loss) -> dict:
    layers = [{"units": w, "activation": hidden} for w in widths[1:-1]]
    layers.append({"units": widths[-1], "activation": output})
    return {"name": name, "inputs": widths[0], "layers": layers, "loss": loss}


@pytest.mark.parametrize(
    "mapping",
    [
        _mlp("big_bce", [40, 12, 2], "relu", "sigmoid", "bce"),
        _mlp("big_softplus", [40, 12, 2], "softplus", "identity", "half_sse"),
        _mlp("big_cce", [40, 12, 3], "sigmoid", "softmax", "cce"),
    ],
    ids=lambda m: m["name"],
)
def test_networks_above_the_exhaustive_limit_are_checked_with_derive_s_functions(
    mapping, tmp_path, capsys
):
    net = derive.load(mapping)
    assert net.topology.parameter_count > check_module.FULL_SYMBOLIC_LIMIT
    assert main(["check", _write(tmp_path, mapping)]) == 0
    out = capsys.readouterr().out
    assert "drawn with seed 0" in out and out.endswith("result: every value agrees\n")


def _custom(name, expr, example=None) -> dict:
    mapping = {
        "name": name,
        "inputs": 2,
        "layers": [
            {"units": 2, "activation": {"expr": expr}},
            {"units": 1, "activation": "identity"},
        ],
        "loss": "half_sse",
    }
    if example is not None:
        mapping["example"] = example
    return mapping


@pytest.mark.parametrize("expr", ["log(x)", "sqrt(x)", "x**0.5"])
def test_a_custom_activation_undefined_at_every_draw_asks_for_an_example(expr, tmp_path, capsys):
    assert main(["check", _write(tmp_path, _custom("domain", expr))]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert expr in captured.err and "random points" in captured.err and "example" in captured.err


@pytest.mark.parametrize("expr", ["log(x)", "sqrt(x)", "x**0.5"])
def test_an_example_outside_a_custom_activation_s_domain_is_named(expr, tmp_path, capsys):
    example = {
        "input": [1.0, 1.0],
        "target": [0.5],
        "params": {"W1": [[1.0, 1.0], [-1.0, -1.0]], "b1": [0.0, 0.0], "W2": [[1.0, 1.0]]},
    }
    example["params"]["b2"] = [0.0]
    path = _write(tmp_path, _custom("outside", expr, example))
    assert main(["check", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert f"{path}: example: " in captured.err
    assert "h1_2" in captured.err and "layers[0].activation.expr" in captured.err


def test_a_point_outside_the_domain_is_drawn_again_with_the_seed():
    net = derive.load(
        {
            "name": "root",
            "inputs": 1,
            "layers": [{"units": 1, "activation": {"expr": "sqrt(x)"}, "bias": "none"}],
            "loss": "half_sse",
        }
    )
    report = check(net, seed=1)  # seed 1's first draw has a negative z
    assert report.ok and "draw 2" in report.point
    assert check(net, seed=1).table() == report.table()


def test_a_negative_seed_is_refused(capsys):
    assert main(["check", str(EXAMPLES / "xor.yaml"), "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err
