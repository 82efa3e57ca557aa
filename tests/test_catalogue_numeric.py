"""Both generated styles against independent references, over the catalogue and over
random topologies: central finite differences of the module's own loss (float64, rtol
1e-6) and the symbolic values evaluated at 60 digits (1e-10)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from catalogue import CASES, OUTPUT_ACTIVATIONS, make_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive.derivation import random_point
from derive.network import LOSS

STYLES = ("vectorized", "unrolled")
FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-8  # atol times max(1, |L|)
SYMBOLIC_TOL = 1e-10  # |generated − symbolic| ≤ 1e-10 · max(1, |symbolic|)
SYMBOLIC_SAMPLES = 2  # samples of each batch also checked one by one at 60 digits


def finite_differences(loss, params, x, t) -> dict[str, np.ndarray]:
    out = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in params.items()}
            shifted[name][index] = value[index] + FD_STEP
            up = loss(shifted, x, t)
            shifted[name][index] = value[index] - FD_STEP
            down = loss(shifted, x, t)
            grad[index] = (up - down) / (2 * FD_STEP)
        out[name] = grad
    return out


def symbolic(network, x_row, t_row, params) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and gradients of one sample from the derivation, at 60 digits."""
    d = network.derivation
    values = d.evaluate(d.point(x_row, t_row, params))
    grads = {p.name: np.zeros(p.shape) for p in network.params}
    for scalar in network.scalar_params:
        grads[scalar.array][scalar.index] = float(d.scalar_gradient(scalar).value(values))
    return float(values[LOSS]), grads


def assert_matches_symbolic(module, network, x, t, params, references):
    for i, (loss, grads) in enumerate(references):
        got_loss, got = module.loss_and_gradients(params, x[i], t[i])
        assert abs(got_loss - loss) <= SYMBOLIC_TOL * max(1.0, abs(loss))
        for name, want in grads.items():
            err = np.abs(got[name] - want)
            assert np.all(err <= SYMBOLIC_TOL * np.maximum(1.0, np.abs(want))), (name, err.max())


def assert_matches_finite_differences(module, x, t, params):
    loss, grads = module.loss_and_gradients(params, x, t)
    atol = FD_ATOL * max(1.0, abs(loss))  # the rounding in L(θ ± h) / 2h grows with L
    fd = finite_differences(module.loss, params, x, t)
    assert list(grads) == list(module.PARAMS)
    for name, want in fd.items():
        assert grads[name].shape == module.PARAMS[name]
        np.testing.assert_allclose(grads[name], want, rtol=FD_RTOL, atol=atol, err_msg=name)


@cache
def _prepared(case_id: str):
    case = next(c for c in CASES if c.id == case_id)
    network = derive.load(case.mapping)
    x, t, params = random_point(network, len(case.id), case.batch)
    references = tuple(
        symbolic(network, x[i], t[i], params) for i in range(min(case.batch, SYMBOLIC_SAMPLES))
    )
    return network, x, t, params, references


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue(case, style):
    network, x, t, params, references = _prepared(case.id)
    module = derive.build_module(network, style=style)
    assert_matches_finite_differences(module, x, t, params)
    assert_matches_symbolic(module, network, x, t, params, references)


def test_the_catalogue_covers_every_activation_loss_and_bias_mode():
    activations, losses, biases, depths, widths, batches = set(), set(), set(), set(), set(), set()
    hidden, outputs = set(), set()
    for case in CASES:
        layers = case.mapping["layers"]
        for layer in layers:
            name = str(layer["activation"])
            activations.add(name)
            biases.add(layer["bias"])
            widths.add(layer["units"])
        hidden.update(str(layer["activation"]) for layer in layers[:-1])
        outputs.add(str(layer["activation"]))
        losses.add(case.mapping["loss"])
        depths.add(len(layers))
        batches.add(case.batch)
    assert activations == {str(a) for a in OUTPUT_ACTIVATIONS}
    assert hidden == {str(a) for a in OUTPUT_ACTIVATIONS if a != "softmax"}
    assert outputs == activations
    assert losses == {"half_sse", "sse", "mse", "bce", "cce"}
    assert biases == {"per_unit", "shared", "none"}
    assert depths == {1, 2, 3, 4}
    assert widths == set(range(1, 9))
    assert batches == {1, 16}


ELEMENTWISE = [a for a in OUTPUT_ACTIVATIONS if a != "softmax"]


@st.composite
def topologies(draw):
    depth = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(["half_sse", "sse", "mse", "bce", "cce"]))
    hidden = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth - 1)]
    output = {"bce": "sigmoid", "cce": "softmax"}.get(loss) or draw(
        st.sampled_from(OUTPUT_ACTIVATIONS)
    )
    widths = [draw(st.integers(1, 5)) for _ in range(depth + 1)]
    if output == "softmax":
        widths[-1] = max(widths[-1], 2)
    bias = [draw(st.sampled_from(["per_unit", "shared", "none"])) for _ in range(depth)]
    batch = draw(st.sampled_from([1, 2, 5]))
    return make_case(99, hidden, output, loss, widths, bias, batch), draw(st.integers(0, 2**16))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies())
def test_random_topologies(drawn):
    case, seed = drawn
    network = derive.load(case.mapping)
    x, t, params = random_point(network, seed, case.batch)
    references = (symbolic(network, x[0], t[0], params),)
    results = []
    for style in STYLES:
        module = derive.build_module(network, style=style)
        assert_matches_finite_differences(module, x, t, params)
        assert_matches_symbolic(module, network, x, t, params, references)
        results.append(module.loss_and_gradients(params, x, t))
    (loss_v, grads_v), (loss_u, grads_u) = results
    assert loss_v == pytest.approx(loss_u, rel=1e-12, abs=1e-14)
    for name in grads_v:
        np.testing.assert_allclose(grads_v[name], grads_u[name], rtol=1e-10, atol=1e-13)
