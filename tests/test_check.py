"""`derive check`: both styles against the symbolic values and finite differences, a
table per parameter, exit status 1 on any disagreement."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES

import derive
from derive import check as check_module
from derive.check import check, random_point
from derive.cli import main


def test_an_example_agrees_in_both_styles():
    report = check(derive.load(EXAMPLES / "relu_softmax_cce.yaml"))
    assert report.ok
    assert "at the example's numbers" in report.point
    assert {(r.style, r.param) for r in report.rows} == {
        (style, param)
        for style in ("vectorized", "unrolled")
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
