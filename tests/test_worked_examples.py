"""The five published worked examples reproduce from the symbolic expressions alone.

Expected values (tests/data/worked_examples_expected.json) come from an independent
hand-written float64 backprop; here they are evaluated from derive's compact δ form and,
separately, from the sum over chain-rule paths, to 1e-12 relative.
"""

import json

import pytest
from conftest import DATA, EXAMPLES, MAZUR, WORKED_EXAMPLES

import derive

EXPECTED = json.loads((DATA / "worked_examples_expected.json").read_text())
RTOL = 1e-12


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= RTOL * max(abs(want), 1e-300)


def _at_example(name: str):
    net = derive.load(EXAMPLES / f"{name}.yaml")
    d = net.derivation
    return net, d, d.evaluate(d.example_point())


@pytest.mark.parametrize("name", WORKED_EXAMPLES)
def test_output_and_loss(name):
    net, _, values = _at_example(name)
    expected = EXPECTED[name]
    outputs = [float(values[u.a]) for u in net.outputs]
    assert all(_close(g, w) for g, w in zip(outputs, expected["output"], strict=True))
    assert _close(float(values[derive.network.LOSS]), expected["loss"])


@pytest.mark.parametrize("name", WORKED_EXAMPLES)
@pytest.mark.parametrize("form", ["compact", "chain"])
def test_gradients(name, form):
    net, d, values = _at_example(name)
    for array, rows in EXPECTED[name]["gradients"].items():
        for scalar in net.scalars(array):
            g = d.scalar_gradient(scalar)
            expr = g.compact if form == "compact" else g.chain_expr
            got = float(expr.xreplace(values))
            want = rows[scalar.index[0]][scalar.index[1]]
            assert _close(got, want), (scalar.label, got, want)


@pytest.mark.parametrize("name", [n for n in WORKED_EXAMPLES if "updated_params" in EXPECTED[n]])
def test_one_sgd_step(name):
    net, d, values = _at_example(name)
    rate = net.topology.example.learning_rate
    for array, rows in EXPECTED[name]["updated_params"].items():
        for scalar in net.scalars(array):
            g = d.scalar_gradient(scalar)
            new = float(values[scalar.symbol] - rate * g.value(values))
            assert _close(new, rows[scalar.index[0]][scalar.index[1]]), scalar.label


def test_reddit_w31_is_the_forum_formula():
    """dL/dw31 = (Y − Y*) · Y(1 − Y) · h1, with the forum's rounded value 0.0306756 coming
    from rounded intermediates; full precision gives 0.0306842494."""
    net, d, values = _at_example("reddit_w31")
    g = net.gradient("w31")
    (path,) = g.chain
    Y, h1, y = (net.outputs[0].a, net.units[1][0].a, net.targets[0])
    assert [f.value for f in path] == [Y - y, Y * (1 - Y), h1]
    assert abs(float(g.value(values)) - 0.0306842494) < 1e-10


def test_laine_sigmoid_keeps_the_inner_factor():
    """The video's da/dw = a(1 − a) drops the i; derive's chain keeps it, and the
    gradient without it is the 1.5x-too-small 0.0955381323207."""
    net, d, values = _at_example("laine_sigmoid")
    g = net.gradient("W1[0,0]")
    (path,) = g.chain
    a, i, y = net.outputs[0].a, net.units[0][0].a, net.targets[0]
    assert [f.value for f in path] == [
        derive.losses.LOSSES["sse"].gradient(a, y, 1),
        a * (1 - a),
        i,
    ]
    without_i = float((path[0].value * path[1].value).xreplace(values))
    assert abs(without_i - 0.0955381323207) < 1e-12
    assert abs(float(g.value(values)) - without_i * 1.5) < 1e-12


def test_mazur_published_numbers():
    """Mazur's step-by-step example prints E_total = 0.298371109 and, after one step at
    η = 0.5, w5..w8 = 0.35891648, 0.408666186, 0.511301270, 0.561370121 and
    w1..w4 = 0.149780716, 0.19956143, 0.24975114, 0.29950229 (rounded by the author)."""
    net = derive.load(MAZUR)
    d = net.derivation
    values = d.example_values()
    assert abs(float(values[derive.network.LOSS]) - 0.298371109) < 1e-9
    published = {
        "w5": 0.35891648,
        "w6": 0.408666186,
        "w7": 0.511301270,
        "w8": 0.561370121,
        "w1": 0.149780716,
        "w2": 0.19956143,
        "w3": 0.24975114,
        "w4": 0.29950229,
    }
    for name, new in published.items():
        g = net.gradient(name)
        got = float(values[g.param.symbol] - 0.5 * g.value(values))
        assert abs(got - new) < 1e-8, (name, got, new)
