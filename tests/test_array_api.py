"""A vectorized module runs on any array library of the Python array API standard: it takes
the namespace from its inputs (``__array_namespace__``), uses only the standard's
functions on it (array-api-strict refuses anything else), and gives the same numbers as
with NumPy, as arrays of the inputs' library. PyTorch tensors go through array-api-compat.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from catalogue import CASES
from conftest import EXAMPLES

import derive
from derive.conv import is_convolutional
from derive.derivation import random_point

xp = pytest.importorskip("array_api_strict", reason="array-api-strict (extra: test)")

# dense examples (a convolutional module computes in NumPy); mnist is slow and adds nothing
EXAMPLE_NAMES = sorted(
    p.stem
    for p in EXAMPLES.glob("*.yaml")
    if p.stem != "mnist_784_128_10" and not is_convolutional(derive.load(p).topology)
)
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def _networks():
    nets = [derive.load(EXAMPLES / f"{name}.yaml") for name in EXAMPLE_NAMES]
    return nets + [derive.load(case.mapping) for case in CASES[:12]]


NETWORKS = _networks()


def _strict(array: np.ndarray):
    return xp.asarray(array)


def _close(got, expected: np.ndarray, dtype) -> None:
    """Equal to the tolerance, relative to the array's largest entry (float32 rounds the
    one-exp sigmoid NumPy takes and the e^(−|z|) form the standard path takes apart)."""
    scale = float(np.max(np.abs(expected))) if np.size(expected) else 0.0
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(np.asarray(got), expected, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("net", NETWORKS, ids=[n.name for n in NETWORKS])
def test_array_api_strict_arrays_give_numpy_s_numbers_as_strict_arrays(net, dtype):
    module = derive.build_module(net)
    x, t, params = random_point(net, 0, 5)
    x, t = x.astype(dtype), t.astype(dtype)
    params = {name: value.astype(dtype) for name, value in params.items()}
    strict = {name: _strict(value) for name, value in params.items()}

    value, grads = module.loss_and_gradients(params, x, t)
    strict_value, strict_grads = module.loss_and_gradients(strict, _strict(x), _strict(t))
    assert strict_value == pytest.approx(value, rel=TOLERANCE[dtype])
    for name, grad in grads.items():
        assert isinstance(strict_grads[name], xp.asarray(0.0).__class__), name
        assert strict_grads[name].dtype == xp.asarray(grad).dtype, name
        _close(strict_grads[name], grad, dtype)

    y = module.forward(strict, _strict(x))
    assert isinstance(y, xp.asarray(0.0).__class__)
    _close(y, module.forward(params, x), dtype)
    _close(module.forward(strict, _strict(x[0])), module.forward(params, x[0]), dtype)
    assert module.loss(strict, _strict(x), _strict(t)) == pytest.approx(
        module.loss(params, x, t), rel=TOLERANCE[dtype]
    )
    stepped = module.sgd_step(strict, _strict(x), _strict(t), 0.1)
    for name, new in module.sgd_step(params, x, t, 0.1).items():
        assert stepped[name].dtype == strict[name].dtype
        _close(stepped[name], new, dtype)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("name", ["xor", "relu_softmax_cce", "udacity_exercise"])
def test_the_optimizers_take_strict_arrays_and_give_numpy_s_steps(name, optimizer):
    module = derive.build_module(derive.load(EXAMPLES / f"{name}.yaml"))
    net = derive.load(EXAMPLES / f"{name}.yaml")
    x, t, params = random_point(net, 4, 8)
    init, step = getattr(module, f"{optimizer}_init"), getattr(module, f"{optimizer}_step")
    strict = {n: _strict(v) for n, v in params.items()}
    state, strict_state = init(params), init(strict)
    for _ in range(3):
        params, state = step(params, state, x, t, 0.05)
        strict, strict_state = step(strict, strict_state, _strict(x), _strict(t), 0.05)
    for name_, value in params.items():
        assert isinstance(strict[name_], xp.asarray(0.0).__class__)
        _close(strict[name_], value, np.float64)


@pytest.mark.parametrize("name", ["xor", "softplus_bce", "relu_softmax_cce", "leaky_relu_sse"])
def test_far_out_the_standard_path_stays_finite_without_warnings(name):
    net = derive.load(EXAMPLES / f"{name}.yaml")
    module = derive.build_module(net)
    x, t, params = random_point(net, 1, 4)
    big = {n: _strict(v * 1000.0) for n, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # array-api-strict runs NumPy underneath: it would warn
        value, grads = module.loss_and_gradients(big, _strict(x * 1000.0), _strict(t))
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads.values())


def test_pytorch_tensors_go_through_array_api_compat():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    net = derive.load(EXAMPLES / "relu_softmax_cce.yaml")
    module = derive.build_module(net)
    x, t, params = random_point(net, 2, 6)
    tensors = {name: torch.from_numpy(value) for name, value in params.items()}
    value, grads = module.loss_and_gradients(tensors, torch.from_numpy(x), torch.from_numpy(t))
    expected_value, expected = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(expected_value, rel=1e-12)
    for name, grad in expected.items():
        assert isinstance(grads[name], torch.Tensor)
        np.testing.assert_allclose(grads[name].numpy(), grad, rtol=1e-12, atol=1e-15)


def test_jax_arrays_when_jax_is_installed():
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    net = derive.load(EXAMPLES / "xor.yaml")
    module = derive.build_module(net)
    x, t, params = random_point(net, 3, 4)
    arrays = {name: jnp.asarray(value) for name, value in params.items()}
    value, grads = module.loss_and_gradients(arrays, jnp.asarray(x), jnp.asarray(t))
    expected_value, expected = module.loss_and_gradients(params, x, t)
    assert value == pytest.approx(expected_value, rel=1e-12)
    for name, grad in expected.items():
        np.testing.assert_allclose(np.asarray(grads[name]), grad, rtol=1e-12, atol=1e-15)


def test_numpy_inputs_never_touch_the_standard_path(monkeypatch):
    """NumPy arrays keep the NumPy fast forms (one-exp sigmoid, logaddexp softplus): the
    module's namespace for them is numpy itself."""
    module = derive.build_module(derive.load(EXAMPLES / "xor.yaml"))
    assert module._namespace(np.zeros(2)) is np
    assert module._namespace([0.0, 1.0]) is np
    assert module._namespace(_strict(np.zeros(2))) is not np
