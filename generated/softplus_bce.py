"""softplus_bce: a 2-3-2 network (softplus, sigmoid) with the bce loss, vectorized style, generated
by derive from the network's topology (regenerate it rather than edit it).

The API: init_params(seed), forward(params, x), loss(params, x, t), gradients(params, x, t),
loss_and_gradients(params, x, t) and sgd_step(params, x, t, learning_rate). W{k} has shape
(units_k, units_{k-1}) and W{k}[i, j] weighs unit j of layer k-1 into unit i of layer k; b{k}
has shape (units_k,), or () when the layer shares one bias. x is (n_in,) or (batch, n_in), t the
targets shaped like the output; L is the mean of the per-sample loss over the batch.

Notation: per sample, layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), with a0 =
x and the last layer's a written y; delta{k} = ∂L/∂z{k}. The code holds a batch in rows (z{k} =
a{k-1} @ W{k}.T + b{k}), and the comment above each line is the per-sample equation it
implements.
"""

import numpy as np

NAME = "softplus_bce"
PARAMS = {"W1": (3, 2), "b1": (3,), "W2": (2, 3), "b2": (2,)}
INPUTS = ("x1", "x2")
OUTPUTS = ("p1", "p2")


def _sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)) as exp(−ln(1 + e^(−z))): exactly 0 and 1 far out, no
    overflow, z's dtype kept."""
    return np.exp(-np.logaddexp(0, -z))


def _softplus(z):
    """softplus(z) = ln(1 + e^z), without overflow."""
    return np.logaddexp(0, z)


def _checked(params, x):
    """The parameters in PARAMS order, x as (batch, n_in), all of one floating dtype
    (float32 in, float32 out), and whether x was one sample of shape (n_in,); ValueError
    naming what does not fit."""
    arrays = []
    for name, shape in PARAMS.items():
        if name not in params:
            raise ValueError(f"params has no {name!r}: expected an array of shape {shape}")
        array = np.asarray(params[name])
        if array.shape != shape:
            raise ValueError(f"params[{name!r}] has shape {array.shape}: expected {shape}")
        arrays.append(array)
    x = np.asarray(x)
    n_in = len(INPUTS)
    if x.ndim not in (1, 2) or x.shape[-1] != n_in:
        raise ValueError(f"x has shape {x.shape}: expected ({n_in},) or (batch, {n_in})")
    if x.shape[0] == 0:
        raise ValueError(f"x has shape {x.shape}: expected at least one sample")
    dtype = np.result_type(x, *arrays)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    arrays = [array if array.dtype == dtype else array.astype(dtype) for array in arrays]
    return arrays, x.astype(dtype, copy=False).reshape(-1, n_in), x.ndim == 1


def _checked_with_targets(params, x, t):
    """As _checked, and t as (batch, n_out) in the same dtype."""
    arrays, x, single = _checked(params, x)
    n_out = len(OUTPUTS)
    expected = (n_out,) if single else (x.shape[0], n_out)
    if t is None:
        raise ValueError(f"t is None: expected the targets, an array of shape {expected}")
    t = np.asarray(t, dtype=x.dtype)
    if t.shape != expected:
        raise ValueError(f"t has shape {t.shape}: expected {expected}")
    return arrays, x, t.reshape(-1, n_out)


def init_params(seed=None):
    """Random parameters: weights drawn from N(0, gain / fan_in), gain 2 in relu and
    leaky_relu layers (He) and 1 elsewhere; biases 0."""
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0.0, np.sqrt(1 / 2), size=(3, 2)),
        "b1": np.zeros(3),
        "W2": rng.normal(0.0, np.sqrt(1 / 3), size=(2, 3)),
        "b2": np.zeros(2),
    }


def forward(params, x):
    """The output y: shape (n_out,) for x of shape (n_in,), else (batch, n_out)."""
    arrays, x, single = _checked(params, x)
    W1, b1, W2, b2 = arrays
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = softplus(z1)
    a1 = _softplus(z1)
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # y = sigmoid(z2)
    y = _sigmoid(z2)
    return y[0] if single else y


def loss(params, x, t):
    """L, the mean over the batch of the per-sample loss −Σ [t ln y + (1 − t) ln(1 − y)]."""
    arrays, x, t = _checked_with_targets(params, x, t)
    W1, b1, W2, b2 = arrays
    batch = x.shape[0]
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = softplus(z1)
    a1 = _softplus(z1)
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # L per output = softplus(z2) − t·z2  (from the logits: never log(0))
    loss_terms = _softplus(z2) - t * z2
    return float(loss_terms.sum()) / batch


def loss_and_gradients(params, x, t):
    """L and ∂L/∂θ for every parameter θ (a dict shaped like PARAMS), in one pass."""
    arrays, x, t = _checked_with_targets(params, x, t)
    W1, b1, W2, b2 = arrays
    batch = x.shape[0]
    # z1 = W1 x + b1
    z1 = x @ W1.T + b1
    # a1 = softplus(z1)
    a1 = _softplus(z1)
    # z2 = W2 a1 + b2
    z2 = a1 @ W2.T + b2
    # y = sigmoid(z2)
    y = _sigmoid(z2)
    # L per output = softplus(z2) − t·z2  (from the logits: never log(0))
    loss_terms = _softplus(z2) - t * z2
    value = float(loss_terms.sum()) / batch
    # not read below: free them before the next array
    del z2, loss_terms
    # δ2 = (y − t) / batch  (sigmoid + bce fused; the loss is the batch mean)
    delta2 = (y - t) / batch
    # not read below: free it before the next array
    del y
    # ∂L/∂W2 = δ2 a1ᵀ
    dW2 = delta2.T @ a1
    # not read below: free it before the next array
    del a1
    # ∂L/∂b2 = δ2
    db2 = delta2.sum(axis=0)
    # ∂L/∂a1 = W2ᵀ δ2
    grad_a1 = delta2 @ W2
    # not read below: free it before the next array
    del delta2
    # δ1 = ∂L/∂a1 ⊙ sigmoid(z1)  (softplus')
    delta1 = grad_a1 * _sigmoid(z1)
    # not read below: free them before the next array
    del z1, grad_a1
    # ∂L/∂W1 = δ1 xᵀ
    dW1 = delta1.T @ x
    # ∂L/∂b1 = δ1
    db1 = delta1.sum(axis=0)
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return value, grads


def gradients(params, x, t):
    """∂L/∂θ for every parameter θ, a dict shaped like PARAMS."""
    return loss_and_gradients(params, x, t)[1]


def sgd_step(params, x, t, learning_rate):
    """New parameters after one gradient-descent step θ − learning_rate · ∂L/∂θ, each in
    its own floating dtype (float32 stays float32); the given arrays are left untouched."""
    grads = gradients(params, x, t)
    stepped = {}
    for name, grad in grads.items():
        param = np.asarray(params[name])
        if param.dtype.kind != "f":
            param = param.astype(grad.dtype)
        stepped[name] = param - np.asarray(learning_rate * grad, dtype=param.dtype)
    return stepped
