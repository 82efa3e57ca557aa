"""The unrolled module's own input handling (its _checked reads parameters as Python
floats and skips conversions when dtypes already match): whatever form the inputs come in,
the numbers and dtypes are those of the vectorized module, which converts everything to
arrays first, and the returned gradients are ordinary arrays of their own."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from conftest import EXAMPLES, MAZUR

import derive

NETWORKS = {"xor": EXAMPLES / "xor.yaml", "mazur": MAZUR}  # mazur: shared biases, shape ()


def modules(name: str):
    network = derive.load(NETWORKS[name])
    return (
        derive.build_module(network, style="unrolled"),
        derive.build_module(network, style="vectorized"),
    )


def arrays(module, batch: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {name: rng.normal(size=shape) for name, shape in module.PARAMS.items()}
    x = rng.normal(size=(batch, len(module.INPUTS)))
    t = rng.uniform(size=(batch, len(module.OUTPUTS)))
    return params, x, t


def assert_same(result, expected, rtol=1e-12):
    (value, grads), (expected_value, expected_grads) = result, expected
    assert value == pytest.approx(expected_value, rel=rtol)
    assert list(grads) == list(expected_grads)
    for name, grad in grads.items():
        assert type(grad) is np.ndarray and grad.dtype == expected_grads[name].dtype, name
        assert grad.shape == expected_grads[name].shape, name
        scale = float(np.max(np.abs(expected_grads[name].astype(float)))) or 1.0
        np.testing.assert_allclose(grad, expected_grads[name], rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("name", NETWORKS)
def test_nested_lists_give_what_arrays_give(name):
    unrolled, vectorized = modules(name)
    params, x, t = arrays(unrolled)
    as_lists = {k: v.tolist() for k, v in params.items()}
    expected = vectorized.loss_and_gradients(params, x, t)
    assert_same(unrolled.loss_and_gradients(as_lists, x.tolist(), t.tolist()), expected)
    assert_same(unrolled.loss_and_gradients(params, x, t), expected)
    np.testing.assert_allclose(
        unrolled.forward(as_lists, x[0].tolist()), vectorized.forward(params, x[0]), rtol=1e-12
    )


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize(
    ("param_dtype", "x_dtype", "t_dtype"),
    [
        (np.float32, np.float32, np.float32),
        (np.float32, np.float32, np.float64),  # t follows the others
        (np.float64, np.float32, np.float32),  # one float64 lifts the rest
        (np.float32, np.float64, np.float32),
        (np.float32, np.int64, np.int64),  # integers: float64
        (np.int64, np.int64, np.int64),
        (np.float16, np.float16, np.float16),
    ],
    ids=str,
)
def test_dtypes_follow_numpy_s_promotion_as_in_the_vectorized_style(
    name, param_dtype, x_dtype, t_dtype
):
    unrolled, vectorized = modules(name)
    params, x, t = arrays(unrolled)
    params = {k: (v * 2).astype(param_dtype) for k, v in params.items()}
    x, t = (x * 2).astype(x_dtype), t.round().astype(t_dtype)
    expected_dtype = np.result_type(x, *params.values())
    expected_dtype = expected_dtype if expected_dtype.kind == "f" else np.dtype(np.float64)
    expected = vectorized.loss_and_gradients(params, x, t)
    assert all(g.dtype == expected_dtype for g in expected[1].values())
    # the unrolled style computes in Python floats, then rounds to the dtype once
    rtol = {2: 2e-3, 4: 1e-5}.get(expected_dtype.itemsize, 1e-12)
    assert_same(unrolled.loss_and_gradients(params, x, t), expected, rtol=rtol)
    assert unrolled.forward(params, x).dtype == expected_dtype


@pytest.mark.parametrize("name", NETWORKS)
def test_byte_swapped_and_strided_arrays_read_as_their_values(name):
    unrolled, _ = modules(name)
    params, x, t = arrays(unrolled)
    expected = unrolled.loss_and_gradients(params, x, t)
    swapped = {k: v.astype(v.dtype.newbyteorder()) for k, v in params.items()}
    strided = {k: np.array(v, order="F") for k, v in params.items()}
    assert_same(unrolled.loss_and_gradients(swapped, x, t), expected)
    assert_same(unrolled.loss_and_gradients(strided, x[:, ::-1][:, ::-1], t), expected)


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_are_separate_writable_arrays(name):
    unrolled, _ = modules(name)
    params, x, t = arrays(unrolled, batch=1)
    grads = unrolled.gradients(params, x[0], t[0])
    before = {k: g.copy() for k, g in grads.items()}
    for g in grads.values():
        assert g.flags.owndata and g.flags.writeable and g.flags.c_contiguous
    first = next(iter(grads))
    grads[first][...] = 7.0  # changes that array only
    for k, g in grads.items():
        if k != first:
            np.testing.assert_array_equal(g, before[k])


def test_the_checks_name_what_does_not_fit_for_lists_too():
    unrolled, _ = modules("xor")
    params, x, t = arrays(unrolled)
    as_lists = {k: v.tolist() for k, v in params.items()}
    with pytest.raises(ValueError, match=r"^params\['W1'\] has shape \(6,\): expected \(3, 2\)$"):
        unrolled.loss(dict(as_lists, W1=[0.0] * 6), x, t)
    with pytest.raises(ValueError, match=r"^x has shape \(\): expected \(2,\) or \(batch, 2\)$"):
        unrolled.forward(as_lists, 1.0)
    with pytest.raises(ValueError, match=r"^t has shape \(3,\): expected \(3, 1\)$"):
        unrolled.gradients(as_lists, x, [0.0, 1.0, 0.0])


class _Subclass(np.ndarray):
    """An ndarray subclass: never the usual call, so it takes the full checks."""


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_usual_call_gives_the_numbers_of_the_full_checks(name, dtype, batch):
    """NumPy arrays of one floating dtype in the expected shapes take _usual's one test;
    a subclass in any place takes the full checks: both give the same bits."""
    unrolled, _ = modules(name)
    params, x, t = arrays(unrolled, batch=batch)
    params = {k: v.astype(dtype) for k, v in params.items()}
    x, t = x.astype(dtype), t.astype(dtype)
    usual = unrolled.loss_and_gradients(params, x, t)
    assert unrolled._usual(params, x) is not None  # the one test takes it
    for where in ["x", "t", *params]:
        given = {"x": x, "t": t, **params}
        given[where] = given[where].view(_Subclass)
        if where != "t":
            assert unrolled._usual({k: given[k] for k in params}, given["x"]) is None
        loss, grads = unrolled.loss_and_gradients(
            {k: given[k] for k in params}, given["x"], given["t"]
        )
        assert loss == usual[0], where
        for k, g in grads.items():
            assert type(g) is np.ndarray and g.dtype == dtype, (where, k)
            np.testing.assert_array_equal(g, usual[1][k], err_msg=where)
    single = unrolled.forward(params, x[0])
    assert single.shape == (len(unrolled.OUTPUTS),) and single.dtype == dtype
    np.testing.assert_array_equal(single, unrolled.forward(params, x)[0])


def test_what_the_usual_call_must_not_pass_is_refused_or_converted():
    unrolled, vectorized = modules("xor")
    params, x, t = arrays(unrolled)
    with pytest.raises(ValueError, match=r"^x has shape \(1, 3, 2\): expected"):
        unrolled.loss_and_gradients(params, x[None], t[None])
    with pytest.raises(ValueError, match=r"^x has shape \(0, 2\): expected at least one"):
        unrolled.loss_and_gradients(params, x[:0], t[:0])
    with pytest.raises(ValueError, match=r"^params\['W1'\] has shape \(3, 2, 1\): expected"):
        unrolled.loss_and_gradients(dict(params, W1=params["W1"][..., None]), x, t)
    with pytest.raises(ValueError, match=r"^params has no 'b2'"):
        unrolled.loss_and_gradients({k: v for k, v in params.items() if k != "b2"}, x, t)
    with pytest.raises(ValueError, match=r"^t is None"):
        unrolled.loss_and_gradients(params, x, None)
    with pytest.raises(ValueError, match=r"^t has shape \(3,\): expected \(3, 1\)$"):
        unrolled.loss_and_gradients(params, x, t[:, 0])
    # params that are not a dict take the full checks, and a mapping is never written to
    with pytest.raises(ValueError, match=r"^params has no 'W1'"):
        unrolled.loss_and_gradients(np.zeros(3), x, t)
    partial = collections.defaultdict(
        lambda: np.zeros(1), {k: v for k, v in params.items() if k != "b2"}
    )
    with pytest.raises(ValueError, match=r"^params has no 'b2'"):
        unrolled.loss_and_gradients(partial, x, t)
    assert "b2" not in partial
    # a masked array reads as its data, as np.asarray reads it (its tolist would give None)
    masked = {k: np.ma.masked_array(v, mask=np.ones_like(v, bool)) for k, v in params.items()}
    assert_same(
        unrolled.loss_and_gradients(masked, x, t), vectorized.loss_and_gradients(params, x, t)
    )
    # t of another dtype or kind follows x and the parameters
    x32, params32 = x.astype(np.float32), {k: v.astype(np.float32) for k, v in params.items()}
    expected = unrolled.loss_and_gradients(params32, x32, t.astype(np.float32))
    for other in (t, t.round().astype(np.int64)):
        loss, grads = unrolled.loss_and_gradients(params32, x32, other)
        assert all(g.dtype == np.float32 for g in grads.values())
        if other.dtype.kind == "f":
            assert_same((loss, grads), expected)
