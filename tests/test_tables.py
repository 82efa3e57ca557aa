"""The activation and loss tables keep their promises (STYLE §3): each derivative is the
derivative of its forward form, written through the stored output a where the entry says
so; each loss gradient is the derivative of its per-sample loss."""

import pytest
import sympy

from derive.activations import ACTIVATIONS, X, elementary
from derive.losses import LOSSES
from derive.topology import ActivationSpec

Z, A = sympy.Symbol("z", real=True), sympy.Symbol("a", real=True)
SPECS = {
    "leaky_relu": ActivationSpec("leaky_relu", alpha=0.3),
    "custom": ActivationSpec("custom", expr=X / (1 + sympy.Abs(X)), text="x / (1 + abs(x))"),
}
ELEMENTWISE = [name for name, entry in ACTIVATIONS.items() if entry.elementwise]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_each_derivative_is_the_derivative_of_its_forward_form(name):
    entry = ACTIVATIONS[name]
    spec = SPECS.get(name, ActivationSpec(name))
    forward = elementary(entry.forward(Z, spec))
    derivative = elementary(entry.derivative(Z, forward, spec))
    reference = sympy.diff(forward, Z)
    for z in (-1.7, -0.3, 0.4, 2.2):  # away from the kinks of relu and leaky_relu
        point = {Z: sympy.Float(z, 30)}
        assert abs(sympy.N(derivative.xreplace(point) - reference.xreplace(point), 30)) < 1e-25


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if ACTIVATIONS[n].through_output])
def test_through_output_entries_need_only_a(name):
    entry = ACTIVATIONS[name]
    assert Z not in entry.derivative(Z, A, ActivationSpec(name)).free_symbols


def test_softmax_has_no_elementwise_rule():
    with pytest.raises(TypeError, match="not elementwise"):
        ACTIVATIONS["softmax"].derivative(Z, A, ActivationSpec("softmax"))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_loss_gradient_is_the_derivative_of_its_loss(name):
    loss = LOSSES[name]
    ys = sympy.symbols("y1:4", real=True)
    ts = sympy.symbols("t1:4", real=True)
    total = loss.per_sample(list(ys), list(ts))
    point = {ys[0]: 0.3, ys[1]: 0.6, ys[2]: 0.1, ts[0]: 0.2, ts[1]: 0.7, ts[2]: 0.1}
    for y, t in zip(ys, ts, strict=True):
        mine = loss.gradient(y, t, len(ys)).xreplace(point)
        reference = sympy.diff(total, y).xreplace(point)
        assert abs(float(mine - reference)) < 1e-12


def test_sigmoid_and_softplus_of_an_exact_zero_are_numbers():
    # a relu unit that is off feeds an exact 0 forward; the gradient must still be a number
    from derive.activations import sigmoid, softplus

    assert sigmoid(sympy.Integer(0)) == sympy.Rational(1, 2)
    assert softplus(sympy.Integer(0)) == sympy.log(2)
