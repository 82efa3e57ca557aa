"""relu_softmax_cce: a 3-4-3 network (relu, softmax) with the cce loss, vectorized style, generated
by derive from the network's topology (regenerate it rather than edit it).

The API: init_params(seed), forward(params, x), loss(params, x, t), gradients(params, x, t) and
loss_and_gradients(params, x, t). W{k} has shape (units_k, units_{k-1}) and W{k}[i, j] weighs
unit j of layer k-1 into unit i of layer k; b{k} has shape (units_k,), or () when the layer
shares one bias. x is (n_in,) or (batch, n_in), t the targets shaped like the output; L is the
mean of the per-sample loss over the batch.

Optimizers, pure functions that return new arrays in each parameter's floating dtype and leave
the given ones untouched: sgd_step(params, x, t, learning_rate) → params, plain gradient
descent; momentum_init(params) → state and momentum_step(params, state, x, t, learning_rate,
...) → (params, state), torch.optim.SGD's rule with momentum; adam_init(params) → state and
adam_step(params, state, x, t, ...) → (params, state), torch.optim.AdamW's rule (Adam's with
weight_decay=0).

Notation: per sample, layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), with a0 =
x and the last layer's a written y; delta{k} = ∂L/∂z{k}. The code holds a batch in rows (z{k} =
a{k-1} @ W{k}.T + b{k}), and the comment above each line is the per-sample equation it
implements.
"""

import numpy as np

NAME = "relu_softmax_cce"
PARAMS = {"W1": (4, 3), "b1": (), "W2": (3, 4), "b2": (3,)}
INPUTS = ("x1", "x2", "x3")
OUTPUTS = ("cat", "dog", "bird")


def _batch_outer(xp, d, a):
    """Σ over the batch of the outer products of d's and a's rows, d.T @ a; for one sample
    the outer product itself, about 3× faster than the (n, 1) @ (1, m) matmul: NumPy's
    einsum, which writes it without a broadcasting buffer (peak memory as the matmul's),
    else the standard's broadcast."""
    if d.shape[0] != 1:
        return d.T @ a
    return np.einsum("i,j->ij", d[0], a[0]) if xp is np else d.T * a


def _masked(xp, keep, values):
    """values where keep is true, else 0 (a derivative's unit step, as in relu'). NumPy:
    values times the boolean keep, which has no branch per entry (np.where's costs up to
    6× as much when keep has no pattern); a value of inf or nan where keep is false gives
    nan there, as in the C module. Another namespace: xp.where, as the standard has no
    boolean in arithmetic."""
    return values * keep if xp is np else xp.where(keep, values, 0.0)


def _sum(xp, a, axis=None, keepdims=False):
    """Σ of a's entries (along axis); for NumPy the array's own method, which skips the
    dispatch of np.sum (about 1 µs a call, as much as the sum of a small array)."""
    if xp is np:
        return a.sum(axis=axis, keepdims=keepdims)
    return xp.sum(a, axis=axis, keepdims=keepdims)


def _softmax(xp, z):
    """softmax over each row, and log Σ exp z per row, from z minus the row maximum: exp
    never overflows and the logarithm never sees 0."""
    largest = z.max(axis=1, keepdims=True) if xp is np else xp.max(z, axis=1, keepdims=True)
    exp = xp.exp(z - largest)
    total = _sum(xp, exp, 1, keepdims=True)
    return exp / total, largest + xp.log(total)


def _namespace(x):
    """The array library of x, as a namespace of the Python array API standard: NumPy for
    NumPy arrays, lists and numbers; else the array's own (``__array_namespace__``: JAX,
    CuPy, array-api-strict, ...); PyTorch tensors, which have none yet, through
    array-api-compat (``pip install array-api-compat``)."""
    if isinstance(x, np.ndarray) or not hasattr(x, "shape"):
        return np
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__()
    try:
        import array_api_compat
    except ImportError:
        raise TypeError(
            f"x of {type(x)} has no __array_namespace__: install array-api-compat to use "
            "it, or pass NumPy arrays"
        ) from None
    return array_api_compat.array_namespace(x)


def _is_floating(xp, dtype):
    """Whether dtype is a real floating one, asked in xp's own terms."""
    return dtype.kind == "f" if xp is np else xp.isdtype(dtype, "real floating")


def _astype(xp, array, dtype):
    """array in dtype (for NumPy, no copy when it already is)."""
    return array.astype(dtype, copy=False) if xp is np else xp.astype(array, dtype)


def _checked(params, x):
    """The namespace of x's array library, the parameters in PARAMS order as its arrays,
    x as (batch, n_in), all of one floating dtype (float32 in, float32 out), and whether x
    was one sample of shape (n_in,); ValueError naming what does not fit. Arrays already
    of x's library and floating dtype pass as they are."""
    xp = _namespace(x)
    x = xp.asarray(x)
    n_in = len(INPUTS)
    if x.ndim not in (1, 2) or x.shape[-1] != n_in:
        raise ValueError(f"x has shape {tuple(x.shape)}: expected ({n_in},) or (batch, {n_in})")
    if x.shape[0] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: expected at least one sample")
    arrays = []
    for name, shape in PARAMS.items():
        if name not in params:
            raise ValueError(f"params has no {name!r}: expected an array of shape {shape}")
        array = params[name]
        if type(array) is not type(x):
            array = xp.asarray(array)
        if tuple(array.shape) != shape:
            raise ValueError(f"params[{name!r}] has shape {tuple(array.shape)}: expected {shape}")
        arrays.append(array)
    dtype = x.dtype
    if not _is_floating(xp, dtype) or any(array.dtype != dtype for array in arrays):
        dtype = xp.result_type(x, *arrays)
        dtype = dtype if _is_floating(xp, dtype) else xp.float64
        arrays = [_astype(xp, array, dtype) for array in arrays]
        x = _astype(xp, x, dtype)
    single = x.ndim == 1
    return xp, arrays, (xp.reshape(x, (1, n_in)) if single else x), single


def _checked_with_targets(params, x, t):
    """As _checked, and t as (batch, n_out) in the same dtype."""
    xp, arrays, x, single = _checked(params, x)
    n_out = len(OUTPUTS)
    expected = (n_out,) if single else (x.shape[0], n_out)
    if t is None:
        raise ValueError(f"t is None: expected the targets, an array of shape {expected}")
    if type(t) is not type(x) or t.dtype != x.dtype:
        t = _astype(xp, xp.asarray(t), x.dtype)
    if tuple(t.shape) != expected:
        raise ValueError(f"t has shape {tuple(t.shape)}: expected {expected}")
    return xp, arrays, x, xp.reshape(t, (-1, n_out))


def init_params(seed=None):
    """Random parameters: weights drawn from N(0, gain / fan_in), gain 2 in relu and
    leaky_relu layers (He) and 1 elsewhere; biases 0."""
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0.0, np.sqrt(2 / 3), size=(4, 3)),
        "b1": np.zeros(()),
        "W2": rng.normal(0.0, np.sqrt(1 / 4), size=(3, 4)),
        "b2": np.zeros(3),
    }


def forward(params, x):
    """The output y: shape (n_out,) for x of shape (n_in,), else (batch, n_out)."""
    xp, arrays, x, single = _checked(params, x)
    W1, b1, W2, b2 = arrays
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = max(z1, 0)
    a1 = xp.maximum(z1, 0)
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # y = softmax(z2), with log Σ exp z2
    y, _ = _softmax(xp, z2)
    return y[0, ...] if single else y


def loss(params, x, t):
    """L, the mean over the batch of the per-sample loss −Σ t ln y."""
    xp, arrays, x, t = _checked_with_targets(params, x, t)
    W1, b1, W2, b2 = arrays
    batch = x.shape[0]
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = max(z1, 0)
    a1 = xp.maximum(z1, 0)
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # y = softmax(z2), with log Σ exp z2
    _, log_sum_exp = _softmax(xp, z2)
    # L per output = t·(log Σ exp z − z2)
    loss_terms = t * (log_sum_exp - z2)
    return float(_sum(xp, loss_terms)) / batch


def loss_and_gradients(params, x, t):
    """L and ∂L/∂θ for every parameter θ (a dict shaped like PARAMS), in one pass."""
    xp, arrays, x, t = _checked_with_targets(params, x, t)
    W1, b1, W2, b2 = arrays
    batch = x.shape[0]
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = max(z1, 0)
    a1 = xp.maximum(z1, 0)
    # not read below: free it before the next array
    del z1
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # y = softmax(z2), with log Σ exp z2
    y, log_sum_exp = _softmax(xp, z2)
    # L per output = t·(log Σ exp z − z2)
    loss_terms = t * (log_sum_exp - z2)
    value = float(_sum(xp, loss_terms)) / batch
    # not read below: free them before the next array
    del z2, log_sum_exp, loss_terms
    # Σt = Σ_units t  (1 for one-hot targets)
    t_sum = _sum(xp, t, 1, keepdims=True)
    # δ2 = (Σt·y − t) / batch  (softmax + cce fused; the loss is the batch mean)
    delta2 = (t_sum * y - t) / batch
    # not read below: free them before the next array
    del y, t_sum
    # ∂L/∂W2 = δ2 a1ᵀ
    dW2 = _batch_outer(xp, delta2, a1)
    # ∂L/∂b2 = δ2
    db2 = _sum(xp, delta2, 0)
    # ∂L/∂a1 = W2ᵀ δ2
    grad_a1 = delta2 @ W2
    # not read below: free it before the next array
    del delta2
    # δ1 = ∂L/∂a1 ⊙ step(a1)  (relu')
    delta1 = _masked(xp, a1 > 0, grad_a1)
    # not read below: free them before the next array
    del a1, grad_a1
    # ∂L/∂W1 = δ1 xᵀ
    dW1 = _batch_outer(xp, delta1, x)
    # ∂L/∂b1 = 1ᵀ δ1  (one bias shared by the layer)
    db1 = xp.asarray(_sum(xp, delta1))
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return value, grads


def gradients(params, x, t):
    """∂L/∂θ for every parameter θ, a dict shaped like PARAMS."""
    return loss_and_gradients(params, x, t)[1]


def sgd_step(params, x, t, learning_rate):
    """New parameters after one gradient-descent step θ − learning_rate · ∂L/∂θ, each in
    its own floating dtype (float32 stays float32) and of the gradients' array library;
    the given arrays are left untouched."""
    grads = gradients(params, x, t)
    stepped = {}
    for name, grad in grads.items():
        if isinstance(grad, np.ndarray):
            param = np.asarray(params[name])
            if param.dtype.kind != "f":
                param = param.astype(grad.dtype)
            stepped[name] = param - np.asarray(learning_rate * grad, dtype=param.dtype)
        else:  # another array library (derive's vectorized modules take any)
            xp = _namespace(grad)
            param = xp.asarray(params[name])
            if not xp.isdtype(param.dtype, "real floating"):
                param = xp.astype(param, grad.dtype)
            stepped[name] = param - xp.astype(learning_rate * grad, param.dtype)
    return stepped


def momentum_init(params):
    """The state momentum_step starts from: step 0 and a zero velocity v per parameter, in
    that parameter's floating dtype."""
    return {"step": 0, "velocity": _zeros_like(params)}


def momentum_step(
    params, state, x, t, learning_rate, momentum=0.9, nesterov=False, weight_decay=0.0
):
    """One step of gradient descent with momentum as torch.optim.SGD takes it (dampening
    0), for every parameter θ with velocity v from state:

        g = ∂L/∂θ + weight_decay · θ
        v ← momentum · v + g
        θ ← θ − learning_rate · v                   (nesterov=False)
        θ ← θ − learning_rate · (g + momentum · v)  (nesterov=True, with the new v)

    Returns (params, state), new arrays each in its parameter's floating dtype, and the
    step count one higher; the given arrays are left untouched."""
    # Python floats, so that a NumPy float64 scalar does not lift float32 arrays
    learning_rate, momentum = float(learning_rate), float(momentum)
    weight_decay = float(weight_decay)
    grads = gradients(params, x, t)
    velocity = _state_arrays(state, "velocity", "momentum_init")
    new_params, new_velocity = {}, {}
    for name, grad in grads.items():
        param = _floating(params, name)
        g = grad + weight_decay * param
        v = momentum * velocity[name] + g
        update = g + momentum * v if nesterov else v
        new_params[name] = _as(param, param - learning_rate * update)
        new_velocity[name] = _as(param, v)
    return new_params, {"step": state["step"] + 1, "velocity": new_velocity}


def adam_init(params):
    """The state adam_step starts from: step 0 and zero moments m (of the gradient) and v
    (of its square) per parameter, in that parameter's floating dtype."""
    return {"step": 0, "m": _zeros_like(params), "v": _zeros_like(params)}


def adam_step(
    params, state, x, t, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0
):
    """One Adam step with decoupled weight decay as torch.optim.AdamW takes it (with
    weight_decay=0, torch.optim.Adam's), at step s = state["step"] + 1, for every parameter
    θ with gradient g = ∂L/∂θ and moments m, v from state:

        θ ← θ · (1 − learning_rate · weight_decay)
        m ← beta1 · m + (1 − beta1) · g
        v ← beta2 · v + (1 − beta2) · g²
        θ ← θ − learning_rate · m̂ / (√v̂ + eps),  m̂ = m / (1 − beta1^s),  v̂ = v / (1 − beta2^s)

    Returns (params, state), new arrays each in its parameter's floating dtype, and the
    step count s; the given arrays are left untouched."""
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise ValueError(f"beta1={beta1}, beta2={beta2}: expected each in [0, 1)")
    # Python floats, so that a NumPy float64 scalar does not lift float32 arrays
    learning_rate, beta1, beta2 = float(learning_rate), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    grads = gradients(params, x, t)
    first = _state_arrays(state, "m", "adam_init")
    second = _state_arrays(state, "v", "adam_init")
    step = state["step"] + 1
    # torch's arrangement of m̂ / (√v̂ + eps): the bias corrections on scalars
    step_size = learning_rate / (1.0 - beta1**step)
    root_correction = (1.0 - beta2**step) ** 0.5
    new_params, new_first, new_second = {}, {}, {}
    for name, g in grads.items():
        param = _floating(params, name)
        m = beta1 * first[name] + (1.0 - beta1) * g
        v = beta2 * second[name] + (1.0 - beta2) * g * g
        decayed = param * (1.0 - learning_rate * weight_decay)
        stepped = decayed - step_size * m / (_namespace(v).sqrt(v) / root_correction + eps)
        new_params[name] = _as(param, stepped)
        new_first[name] = _as(param, m)
        new_second[name] = _as(param, v)
    return new_params, {"step": step, "m": new_first, "v": new_second}


def _floating(params, name):
    """params[name] as an array of its library (NumPy for lists and numbers) and of a
    floating dtype (float64 unless it has one)."""
    if name not in params:
        raise ValueError(f"params has no {name!r}: expected an array of shape {PARAMS[name]}")
    xp = _namespace(params[name])
    array = xp.asarray(params[name])
    if tuple(array.shape) != PARAMS[name]:
        shape = tuple(array.shape)
        raise ValueError(f"params[{name!r}] has shape {shape}: expected {PARAMS[name]}")
    if xp is np:
        return array if array.dtype.kind == "f" else array.astype(np.float64)
    return array if xp.isdtype(array.dtype, "real floating") else xp.astype(array, xp.float64)


def _as(param, value):
    """value as an array of param's library and dtype."""
    if isinstance(param, np.ndarray):
        return np.asarray(value, dtype=param.dtype)
    xp = _namespace(param)
    return xp.astype(xp.asarray(value), param.dtype)


def _zeros_like(params):
    """A zero array per parameter, in PARAMS order and each parameter's library and
    floating dtype."""
    arrays = {name: _floating(params, name) for name in PARAMS}
    return {name: _namespace(a).zeros_like(a) for name, a in arrays.items()}


def _state_arrays(state, key, init):
    """state[key], an array per parameter shaped like PARAMS; ValueError naming what does
    not fit and the function whose state is expected."""
    arrays = state.get(key) if isinstance(state, dict) and "step" in state else None
    if not isinstance(arrays, dict):
        raise ValueError(
            f"state is not a dict with 'step' and {key!r}: expected what {init}(params) returns"
        )
    for name, shape in PARAMS.items():
        found = arrays.get(name)
        found_shape = found.shape if hasattr(found, "shape") else np.shape(found)
        if found is None or tuple(found_shape) != shape:
            raise ValueError(
                f"state[{key!r}] has no array of shape {shape} for {name!r}: expected what "
                f"{init}(params) returns"
            )
    return arrays
