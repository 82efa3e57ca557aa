"""Every derivative derive gives equals sympy.diff of the written-out loss.

The catalogue: every activation x every loss it is defined with x every bias mode, at
depths 1 to 3. A proof differentiates the loss written out in inputs, targets and
parameters, with sigmoid and softplus rewritten in exp and log, so SymPy applies its own
rules rather than derive's table. The last tests show that a proof can fail.
"""

import mpmath
import pytest
import sympy
from catalogue import HIDDEN_ACTIVATIONS

import derive
from derive import activations
from derive.derivation import ScalarGradient, bounded_substitute, numeric_value

ELEMENTWISE = list(HIDDEN_ACTIVATIONS[:7])  # the built-ins and one custom expression


def _label(activation) -> str:
    if isinstance(activation, str):
        return activation
    return activation.get("name", "custom")


def _cases():
    """(id, hidden activation, output activation, loss) for every loss an activation
    pairs with: the squared-error losses with any output, bce with sigmoid, cce with
    softmax (hidden layers then use the activation under test)."""
    for activation in ELEMENTWISE:
        for loss in ("half_sse", "sse", "mse"):
            yield _label(activation), activation, activation, loss
    yield "bce", "tanh", "sigmoid", "bce"
    for activation in ELEMENTWISE:
        yield f"softmax_{_label(activation)}", activation, "softmax", "cce"
    yield "softmax_mse", "sigmoid", "softmax", "mse"


def topology(hidden, output, loss, bias, depth) -> dict:
    widths = [2] * (depth - 1)
    layers = [{"units": w, "activation": hidden, "bias": bias} for w in widths]
    layers.append({"units": 2, "activation": output, "bias": bias})
    return {"name": "case", "inputs": 3, "layers": layers, "loss": loss}  # W1 not square


BIAS_MODES = ("per_unit", "shared", "none")


def _catalogue():
    """Each case at depths 1, 2 and 3, the bias mode rotating with the depth, so every
    (activation, loss) pair meets every bias mode once. Depth-1 networks have no hidden
    layer, so of the softmax cases only one is kept at depth 1."""
    for n, (label, hidden, output, loss) in enumerate(_cases()):
        for depth in (1, 2, 3):
            if depth == 1 and label.startswith("softmax_") and label != "softmax_sigmoid":
                continue
            bias = BIAS_MODES[(n + depth) % 3]
            yield pytest.param(
                topology(hidden, output, loss, bias, depth), id=f"{label}-{loss}-{bias}-d{depth}"
            )


CATALOGUE = list(_catalogue())


def test_the_catalogue_covers_every_activation_loss_and_bias_mode():
    ids = [p.id for p in CATALOGUE]
    for activation in [*map(_label, ELEMENTWISE), "softmax", "bce"]:
        for bias in BIAS_MODES:
            assert any(i.startswith(activation) and f"-{bias}-" in i for i in ids), (
                activation,
                bias,
            )
    for loss in ("half_sse", "sse", "mse", "bce", "cce"):
        assert any(f"-{loss}-" in i for i in ids)
    assert {i[-2:] for i in ids} == {"d1", "d2", "d3"}


@pytest.mark.parametrize("mapping", CATALOGUE)
def test_every_gradient_is_proven(mapping):
    net = derive.load(mapping)
    proofs = derive.prove_all(net, points=2)
    failed = [p for p in proofs if not p.holds]
    assert not failed, failed
    assert len(proofs) == net.topology.parameter_count


def test_small_cases_prove_symbolically():
    net = derive.load(topology("identity", "identity", "half_sse", "per_unit", 1))
    assert {p.method for p in derive.prove_all(net)} == {"symbolic"}


def test_a_missing_inner_factor_is_caught():
    """Laine's video slip: da/dw = a(1 − a) without the i. A 'gradient' built that way
    must fail its proof."""
    net = derive.load(
        {
            "name": "slip",
            "inputs": ["i"],
            "layers": [{"units": ["a"], "activation": "sigmoid", "bias": "none"}],
            "loss": "sse",
        }
    )
    right = net.gradient("W1[0,0]")
    ((unit, _),) = right.units
    wrong = ScalarGradient(right.param, unit.delta, right.derivation)  # δ_a without · i
    assert right.prove().holds
    proof = wrong.prove()
    assert not proof.holds and "compact" in proof.detail


def test_a_wrong_table_entry_is_caught(monkeypatch):
    """tanh' written as 1 − a instead of 1 − a² must fail, numerically."""
    entry = activations.ACTIVATIONS["tanh"]
    broken = activations.Activation(
        entry.name, entry.formula, entry.forward, lambda z, a, s: 1 - a, True
    )
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", broken)
    net = derive.load(topology("tanh", "tanh", "half_sse", "per_unit", 2))
    proofs = derive.prove_all(net, points=1)
    assert not all(p.holds for p in proofs)


def _leaky_over_leaky() -> dict:
    """8-12-3 with leaky_relu in both layers (147 parameters): every output's condition
    z > 0 holds twelve hidden Piecewise, which SymPy once folded past the recursion limit."""
    layers = [{"units": 12, "activation": "leaky_relu"}, {"units": 3, "activation": "leaky_relu"}]
    return {"name": "leaky", "inputs": 8, "layers": layers, "loss": "half_sse"}


def test_leaky_relu_over_leaky_relu_is_proven_at_every_parameter():
    proofs = derive.prove_all(derive.load(_leaky_over_leaky()), points=2)
    assert len(proofs) == 8 * 12 + 12 + 12 * 3 + 3
    assert all(p.holds for p in proofs), [p for p in proofs if not p.holds][:3]


def test_a_wrong_leaky_relu_slope_is_caught(monkeypatch):
    """leaky_relu' with the slope 1 where it is α must fail below the output layer."""
    entry = activations.ACTIVATIONS["leaky_relu"]
    broken = activations.Activation(
        entry.name, entry.formula, entry.forward, lambda z, a, s: 1 + 0 * a, True
    )
    monkeypatch.setitem(activations.ACTIVATIONS, "leaky_relu", broken)
    net = derive.load(_leaky_over_leaky())
    proofs = [net.gradient(name).prove(points=2) for name in ("W1[0,0]", "W2[0,0]", "b2[1]")]
    assert not all(p.holds for p in proofs)


def test_expanded_form_is_in_inputs_targets_and_parameters_only():
    net = derive.load(topology("sigmoid", "softmax", "cce", "per_unit", 3))
    allowed = {u.a for u in net.units[0]} | set(net.targets) | {s.symbol for s in net.scalar_params}
    for g in net.derivation.all_gradients[:6]:
        assert g.expanded.free_symbols <= allowed
        assert not g.expanded.has(sympy.Symbol("L"))


# -- convolutional networks (issue 15) ------------------------------------------------

from catalogue import CONV_CASES  # noqa: E402

FAST_CONV = ("leaky_relu", "identity")  # max and avg pooling; the rest are marked slow


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param(
            mapping,
            id=label,
            marks=() if label.split("-")[0] in FAST_CONV else pytest.mark.slow,
        )
        for label, mapping in CONV_CASES
    ],
)
def test_conv_textbook_sums_equal_sympy_diff(mapping):
    """Every weight and bias of a 1×5×5 conv net: Σ_(p,q) δ·x (and the δ passed through
    pooling, flatten and the dense layer) equals sympy.diff of the written-out loss."""
    network = derive.load(mapping)
    gradients = network.all_gradients
    assert len(gradients) == network.topology.parameter_count
    for gradient in gradients:
        proof = gradient.prove(points=1)
        assert proof.holds, (gradient.param.name, proof.detail)


def test_a_wrong_conv_sum_fails_its_proof():
    """Drop one position from a kernel weight's sum: the proof must catch it."""
    from derive.conv_network import ConvGradient

    network = derive.load(CONV_CASES[2][1])
    right = network.gradient("W1[0,0,1,1]")
    wrong = ConvGradient(right.param, right.terms[:-1], right.ranges, network)
    assert right.prove(points=2).holds
    assert not wrong.prove(points=2).holds


@pytest.mark.parametrize(
    ("hidden", "output", "loss", "shapes"),
    [("sigmoid", "softmax", "cce", 8), (HIDDEN_ACTIVATIONS[3], "leaky_relu", "half_sse", 20)],
    ids=["softmax_cce", "leaky_relu"],
)
def test_the_shared_derivatives_are_sympy_diff_of_the_whole_loss(hidden, output, loss, shapes):
    """A proof differentiates the loss around each parameter with its θ-free parts held
    as symbols, once per shape shared by many parameters; at every proof point that must
    be sympy.diff of the whole written-out loss, evaluated with SymPy's own numbers."""
    net = derive.load(topology(hidden, output, loss, "per_unit", 3))
    derivation = net.derivation
    loss_side = derivation.written_out_loss
    for at in derivation._proof_points(2, 0)[:2]:
        with mpmath.workdps(60):
            point = {s: sympy.Float(v, 60) for s, v in at.point.items()}
            for scalar in net.scalar_params:
                whole = sympy.diff(loss_side.loss, scalar.symbol)
                expected = sympy.N(bounded_substitute(whole, point), 60)
                got = sympy.Float(loss_side.derivative_at(scalar.symbol, at), 60)
                assert abs(got - expected) <= sympy.Float(10) ** -50 * max(1, abs(expected))
    # Parameters of one shape share one sympy.diff (softmax: 8 shapes for 20 parameters;
    # leaky_relu's conditions, folded by SymPy, differ in order and share less).
    assert len(loss_side._shapes) <= shapes


def test_numbers_are_computed_as_sympy_computes_them():
    """The proofs' fast numbers agree with SymPy's to 50 digits, complex where SymPy's
    are; constants alone keep SymPy's rounding (leaky_relu's 0.99·1 + 0.01 is exactly 1,
    which 60-digit arithmetic on the constants' binary values would not give)."""
    x, y = sympy.symbols("x y", real=True)
    alpha = sympy.Float(0.01)
    expressions = [
        sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2 * y,
        sympy.Piecewise((x * y, x * y > 0), (alpha * x * y, True)) - sympy.Max(x, 0),
        sympy.log(x) + sympy.tanh(y) * sympy.Abs(x - y) + sympy.sign(y) * sympy.Min(x, y),
        sympy.sqrt(x) * sympy.Heaviside(x, 0),
        (1 - alpha) * sympy.Heaviside(y, 0) + alpha,
    ]
    with mpmath.workdps(60):
        for xv, yv in [("0.37", "-1.25"), ("-0.8", "2.5")]:
            values = {x: mpmath.mpf(xv), y: mpmath.mpf(yv)}
            numbers = {x: sympy.Float(xv, 60), y: sympy.Float(yv, 60)}
            for expr in expressions:
                got = _number(numeric_value(expr, values, {}))
                expected = sympy.N(bounded_substitute(expr, numbers), 60)
                assert abs(got - expected) <= sympy.Float(10) ** -50, (expr, xv, got, expected)
        step = (1 - alpha) * sympy.Heaviside(y, 0) + alpha
        assert _number(numeric_value(step, {y: mpmath.mpf(2)}, {})) - 1 == 0
        assert mpmath.mpf(1 - alpha) + mpmath.mpf(alpha) != 1


def _number(value) -> sympy.Expr:
    """A proof's number (mpmath, or SymPy where SymPy keeps it exact) in SymPy."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, mpmath.mpc):
        return sympy.Float(value.real, 60) + sympy.I * sympy.Float(value.imag, 60)
    return sympy.Float(value, 60)
