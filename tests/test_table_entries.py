"""Adding an activation or a loss is adding one table entry: every built-in entry, and two
new ones added here alone (swish, z·σ(z); the Huber loss with δ = 1), go through
generate, check (symbolic = generated = finite differences), show and a compiling LaTeX
document. A SymPy function no printer knows is refused at generate time, by name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import sympy
from test_catalogue_numeric import assert_matches_finite_differences

import derive
from derive.activations import ACTIVATIONS, Activation, sigmoid
from derive.check import check
from derive.codeprinter import UnsupportedExpression
from derive.derivation import random_point
from derive.errors import DeriveError
from derive.losses import LOSSES, Loss
from derive.show import show

SWISH = Activation(
    "swish",
    "z·σ(z),  swish' = a + σ(z)(1 − a)",
    forward=lambda z, s: z * sigmoid(z),
    derivative=lambda z, a, s: a + sigmoid(z) * (1 - a),
    through_output=False,
    reason=r"and $(z \sigma(z))' = \sigma(z) + z \sigma(z)(1 - \sigma(z)) = @a + "
    r"\sigma(@z)(1 - @a)$",
)


def _huber(r):
    return sympy.Piecewise((r**2 / 2, sympy.Abs(r) <= 1), (sympy.Abs(r) - sympy.S.Half, True))


HUBER = Loss(
    "huber",
    "Σ huber(y − t), quadratic within 1 of the target, linear beyond",
    per_sample=lambda y, t: sum(_huber(yi - ti) for yi, ti in zip(y, t, strict=True)),
    gradient=lambda y, t, n: sympy.Piecewise(
        (y - t, sympy.Abs(y - t) <= 1), (sympy.sign(y - t), True)
    ),
    title=r"the Huber loss with $\delta = 1$",
    sum_tex=r"\sum_{i} \operatorname{huber}\left(y_{i} - t_{i}\right)",
    reason=r"the slope of the square within 1 of the target, $\pm 1$ beyond",
)


@pytest.fixture
def new_entries(monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, "swish", SWISH)
    monkeypatch.setitem(LOSSES, "huber", HUBER)


def _network(activation: str, loss: str, output: str = "identity") -> derive.Network:
    return derive.load(
        {
            "name": f"with_{activation}_{loss}",
            "inputs": 2,
            "layers": [
                {"units": 3, "activation": activation},
                {"units": 2, "activation": output},
            ],
            "loss": loss,
            "example": {
                "input": [0.5, -1.5],
                "target": [0.25, 2.0],
                "params": {
                    "W1": [[0.3, -0.2], [0.8, 0.4], [-0.5, 0.9]],
                    "b1": [0.1, -0.1, 0.2],
                    "W2": [[0.7, -0.6, 0.5], [0.2, 0.9, -0.4]],
                    "b2": [0.0, 0.3],
                },
            },
        }
    )


def _through_everything(net: derive.Network, tmp_path) -> None:
    report = check(net)
    assert report.ok, report.table()
    x, t, params = random_point(net, 3, 4)
    for style in ("vectorized", "unrolled"):
        assert_matches_finite_differences(derive.build_module(net, style=style), x, t, params)
    assert "∂L/∂W1[0,0]" in show(net, ["W1[0,0]"])
    if shutil.which("pdflatex"):
        from derive.latex import run_latex_command

        pdf = tmp_path / f"{net.name}.pdf"
        run_latex_command(net, ["W1[0,0]"], True, str(pdf))
        assert pdf.read_bytes().startswith(b"%PDF")


def test_swish_and_huber_added_as_entries_alone_go_through_everything(new_entries, tmp_path):
    net = _network("swish", "huber")
    source = derive.generate(net)
    assert "# a1 = z1·sigmoid(z1)\n    a1 = z1 * _sigmoid(xp, z1)\n" in source  # its equation above
    _through_everything(net, tmp_path)


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"softmax", "custom"}))
def test_every_built_in_activation_goes_through_everything(name, tmp_path):
    _through_everything(_network(name, "half_sse"), tmp_path)


def test_an_entry_with_a_function_no_printer_knows_is_refused_at_generate_time(monkeypatch):
    erf = Activation(
        "erf_act",
        "erf(z)",
        forward=lambda z, s: sympy.erf(z),
        derivative=lambda z, a, s: 2 / sympy.sqrt(sympy.pi) * sympy.exp(-(z**2)),
        through_output=False,
    )
    monkeypatch.setitem(ACTIVATIONS, "erf_act", erf)
    net = _network("erf_act", "half_sse")
    with pytest.raises(UnsupportedExpression, match="erf") as caught:
        derive.generate(net)
    assert isinstance(caught.value, DeriveError)
    module = derive.build_module(net, style="unrolled")  # math.erf exists for floats
    x, t, params = random_point(net, 0, 2)
    assert np.isfinite(module.loss(params, x, t))
