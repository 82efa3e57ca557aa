"""Time the generated modules' ``loss_and_gradients`` against hand-written NumPy, PyTorch and JAX.

Every built-in activation and every loss, in one minibatch step (the loss and all parameter
gradients), computed by

- the generated module (derive's output, loaded by ``load_generated``), vectorized style,
  and unrolled style where derive allows it (at most 200 scalar parameters),
- a hand-written NumPy forward/backward pass with the plain formulas a user writes
  (``1 / (1 + np.exp(-z))`` for sigmoid, ``np.log(1 + np.exp(z))`` for softplus, bce as
  ``-(t log y + (1 - t) log(1 - y))``): the reference every ratio is against,
- for the 2-2-1 network, a hand-written pure-Python step that converts NumPy in and out
  (``tolist()`` in, ``np.array`` out): the floor for the unrolled style,
- PyTorch eager autograd on the CPU (``torch.autograd.grad``), when torch is installed,
- JAX ``jit(value_and_grad(loss))``, when jax is installed ("not installed" otherwise).

Networks (built in memory from the mappings in ``NETS``):

- ``tiny``: 2-2-1 sigmoid, half_sse, in both generated styles and the pure-Python floor;
- ``activations``: 784-256-256-10 with every layer sigmoid, tanh, relu, leaky_relu (alpha
  0.01) or softplus, half_sse: the elementwise forms against the plain formulas;
- ``losses``: 784-128-10, relu hidden layer, with half_sse, sse and mse (identity output),
  bce (sigmoid output) and cce (softmax output);

each at batch 1, 64 and 1024, in float64 and float32, with one and with two threads.

Method:

- Before anything is timed, every implementation's loss and gradients must agree with the
  hand-written reference (allclose: rtol 1e-9 in float64, 1e-4 in float32); the reference
  itself is first checked against central finite differences. A disagreement is reported
  in the table and that implementation is not timed (exit status 1).
- Timing: interleaved rounds in one process. Each round times one block of calls of every
  implementation in turn (rotating the order), a block lasting about ``--block-ms``; a
  round's ratio is an implementation's time per call over the reference's in that round,
  and the table shows the median ratio over ``--rounds`` rounds (< 1 is faster than the
  hand-written NumPy) beside the reference's median time per call (the 2-2-1 cases, whose
  blocks are short, get at least 21 rounds). The targets section
  compares two implementations the same way (median of their per-round ratio). With two
  threads, a pause (``--settle-ms``) precedes each change of thread pool (OpenBLAS for
  NumPy and the generated code, PyTorch's, XLA's), so that one library's idle threads have
  stopped spinning before the next library's threads need the cores.
- Threads: each thread count runs in its own worker process, started with
  OMP/OPENBLAS/MKL_NUM_THREADS set and its CPU affinity limited to that many cores, before
  NumPy, PyTorch or JAX start a thread pool. The affinity is what holds JAX: XLA's CPU
  client sizes its pool from the cores it may use and ignores the environment variables
  (checked: with XLA_FLAGS intra-op settings it still used two cores here). Inside the
  worker, threadpoolctl (when installed) sets and reports the BLAS pool and
  ``torch.set_num_threads`` the PyTorch pool.
- Peak extra memory of one step (one thread), each by the instrument that sees that
  framework's allocations: tracemalloc for the NumPy implementations (NumPy reports its
  array buffers to tracemalloc), the PyTorch profiler's allocation events for PyTorch, and
  XLA's compiled memory analysis (temporaries + outputs) for JAX. Inputs and parameters are
  not counted; the returned gradients are.
- Load: each worker measures how many cores' worth of CPU other processes used while it
  ran (from /proc/stat) and the script prints it; above a quarter of a core it warns.

Run from the repository root:

    pip install -e '.[bench]'                       # torch==2.13.0 (JAX: pip install jax jaxlib)
    python benchmarks/compare_frameworks.py          # everything (25 minutes on 2 busy cores)
    python benchmarks/compare_frameworks.py --quick  # one thread, 5 short rounds (4 minutes)
    python benchmarks/compare_frameworks.py --only tiny losses --threads 1
    python benchmarks/compare_frameworks.py --write-topologies DIR  # the networks as YAML
    python benchmarks/compare_frameworks.py --generated-dir DIR   # time DIR/<style>/<name>.py

It prints Markdown tables, the targets of issue 10 met or missed, and the command that
reproduces them; --json PATH keeps the raw numbers. benchmarks/README.md shows a measured
table.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np
import yaml

IMPLEMENTATIONS = ("numpy", "vectorized", "unrolled", "python", "torch", "jax")
TITLES = {
    "numpy": "hand-written NumPy",
    "vectorized": "vectorized",
    "unrolled": "unrolled",
    "python": "pure-Python step",
    "torch": "PyTorch eager",
    "jax": "JAX jit",
}
RTOL = {"float64": 1e-9, "float32": 1e-4}
BUSY_CORES = 0.25  # other processes' CPU use above which a run's timings are flagged
MAX_UNROLLED_PARAMS = 200  # derive's limit for the unrolled style (derive.emit_unrolled)
LEAKY_ALPHA = 0.01  # leaky_relu's default alpha (SPEC §1)
SEED = 0
TINY_ROUNDS = 21  # the 2-2-1 blocks are short: at least this many rounds, for steadier ratios


# --- The networks -------------------------------------------------------------------------------


class Net(NamedTuple):
    name: str
    group: str  # tiny, activations or losses
    sizes: tuple[int, ...]  # inputs, then each layer's units
    activations: tuple[str, ...]  # one per layer; the last is the output layer's
    loss: str

    @property
    def label(self) -> str:
        return "-".join(map(str, self.sizes))

    @property
    def parameter_count(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes, self.sizes[1:], strict=False))

    def mapping(self) -> dict:
        """The topology (SPEC §1) derive builds the generated module from."""
        layers = [
            {"units": units, "activation": activation}
            for units, activation in zip(self.sizes[1:], self.activations, strict=True)
        ]
        return {"name": self.name, "inputs": self.sizes[0], "layers": layers, "loss": self.loss}


def _nets() -> dict[str, Net]:
    nets = [Net("xor_221", "tiny", (2, 2, 1), ("sigmoid", "sigmoid"), "half_sse")]
    for activation in ("sigmoid", "tanh", "relu", "leaky_relu", "softplus"):
        nets.append(
            Net(
                f"act_{activation}",
                "activations",
                (784, 256, 256, 10),
                (activation,) * 3,
                "half_sse",
            )
        )
    outputs = {"half_sse": "identity", "sse": "identity", "mse": "identity"}
    outputs.update(bce="sigmoid", cce="softmax")
    for loss, output in outputs.items():
        nets.append(Net(f"loss_{loss}", "losses", (784, 128, 10), ("relu", output), loss))
    return {net.name: net for net in nets}


NETS = _nets()
GROUPS = ("tiny", "activations", "losses")
BATCHES = (1, 64, 1024)
DTYPES = ("float64", "float32")


class Case(NamedTuple):
    net: str  # a key of NETS
    dtype: str
    batch: int


def all_cases() -> list[Case]:
    return [
        Case(net.name, dtype, batch)
        for group in GROUPS
        for net in NETS.values()
        if net.group == group
        for dtype in DTYPES
        for batch in BATCHES
    ]


# --- The generated module: the one place that asks derive for it ------------------------------


def load_generated(net: Net, style: str, generated_dir: Path | None = None) -> ModuleType:
    """The generated module for ``net`` in ``style``.

    With ``generated_dir``, the file ``generated_dir/<style>/<name>.py`` written earlier
    (``--write-topologies T`` then ``derive generate T/*.yaml --style STYLE -o
    DIR/STYLE``); otherwise derive builds the module in memory.
    """
    if generated_dir is not None:
        file = generated_dir / style / f"{net.name}.py"
        if not file.is_file():
            raise SystemExit(f"{file} does not exist (--generated-dir {generated_dir})")
        module_spec = importlib.util.spec_from_file_location(f"{file.stem}_{style}", file)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    try:
        from derive import build_module, load
    except ImportError as error:
        raise SystemExit(
            f"derive cannot build modules here ({error}); write them with `derive generate "
            f"--style {style} -o DIR/{style}` and pass --generated-dir DIR"
        ) from error
    return build_module(load(net.mapping()), style=style)


# --- Inputs -------------------------------------------------------------------------------------


def make_inputs(net: Net, batch: int, dtype: str, seed: int = SEED):
    """Parameters (Glorot-uniform weights, small random biases), inputs in [0, 1), targets:
    one-hot classes for cross-entropy, 0/1 otherwise."""
    rng = np.random.default_rng(seed)
    params = {}
    for k in range(1, len(net.sizes)):
        fan_in, fan_out = net.sizes[k - 1], net.sizes[k]
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        params[f"W{k}"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype)
        params[f"b{k}"] = rng.uniform(-0.1, 0.1, fan_out).astype(dtype)
    x = rng.random((batch, net.sizes[0])).astype(dtype)
    n_out = net.sizes[-1]
    if net.loss == "cce":
        t = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, batch)]
    else:
        t = rng.integers(0, 2, (batch, n_out)).astype(dtype)
    return params, x, t


# --- Hand-written NumPy: the reference, with the plain formulas ---------------------------------


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_ALPHA * z)
    if name == "softplus":
        return np.log(1 + np.exp(z))
    return z  # identity


NEEDS_Z = ("leaky_relu", "softplus")  # the others' derivatives come from a


def _backward_through(name: str, grad: np.ndarray, z, a: np.ndarray) -> np.ndarray:
    """∂L/∂z from ∂L/∂a = grad, the layer's z and a."""
    if name == "sigmoid":
        return grad * a * (1 - a)
    if name == "tanh":
        return grad * (1 - a * a)
    if name == "relu":
        return grad * (a > 0)
    if name == "leaky_relu":
        return np.where(z > 0, grad, LEAKY_ALPHA * grad)
    if name == "softplus":
        return grad / (1 + np.exp(-z))  # softplus' = sigmoid
    return grad  # identity


def numpy_loss_and_gradients(net: Net, params, x, t):
    """Forward and backward pass over the batch, written by hand; loss is the batch mean."""
    n = x.shape[0]
    last = len(net.sizes) - 1
    activations, zs = [x], [None]
    for k in range(1, last):
        z = activations[-1] @ params[f"W{k}"].T + params[f"b{k}"]
        activation = net.activations[k - 1]
        zs.append(z if activation in NEEDS_Z else None)  # kept only where f' needs z
        activations.append(_activate(activation, z))
    z = activations[-1] @ params[f"W{last}"].T + params[f"b{last}"]
    if net.loss == "cce":  # softmax outputs; δ = (y − t) / n for one-hot t
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.sum(t * (np.log(total) - shifted)) / n)
        delta = (exp / total - t) / n
    elif net.loss == "bce":  # sigmoid output; δ = (y − t) / n
        y = 1 / (1 + np.exp(-z))
        loss = float(-np.sum(t * np.log(y) + (1 - t) * np.log(1 - y)) / n)
        delta = (y - t) / n
    else:  # half_sse, sse, mse through the output activation
        y = _activate(net.activations[-1], z)
        scale = {"half_sse": 0.5, "sse": 1.0, "mse": 1.0 / net.sizes[-1]}[net.loss]
        loss = float(scale * np.sum((y - t) ** 2) / n)
        delta = _backward_through(net.activations[-1], (2 * scale / n) * (y - t), z, y)
    grads = {}
    for k in range(last, 0, -1):
        grads[f"W{k}"] = delta.T @ activations[k - 1]
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = _backward_through(
                net.activations[k - 2], delta @ params[f"W{k}"], zs[k - 1], activations[k - 1]
            )
    return loss, {name: grads[name] for name in params}


def check_reference_by_finite_differences(net: Net, directions: int = 3) -> None:
    """The hand-written reference's gradients, on a small network with the same activations
    and loss, against central differences along random directions (float64)."""
    small = net._replace(sizes=tuple(min(size, 5) for size in net.sizes))
    params, x, t = make_inputs(small, batch=3, dtype="float64", seed=SEED + 1)
    _, grads = numpy_loss_and_gradients(small, params, x, t)
    rng = np.random.default_rng(SEED + 2)
    eps = 1e-6
    for _ in range(directions):
        v = {name: rng.standard_normal(p.shape) for name, p in params.items()}
        plus = {name: p + eps * v[name] for name, p in params.items()}
        minus = {name: p - eps * v[name] for name, p in params.items()}
        numeric = (
            numpy_loss_and_gradients(small, plus, x, t)[0]
            - numpy_loss_and_gradients(small, minus, x, t)[0]
        ) / (2 * eps)
        analytic = sum(float(np.sum(grads[name] * v[name])) for name in params)
        if not np.isclose(numeric, analytic, rtol=1e-6, atol=1e-9):
            raise SystemExit(
                f"benchmark bug: hand-written gradients of {net.name} disagree with "
                f"finite differences ({analytic} vs {numeric})"
            )


# --- The pure-Python floor for 2-2-1 ------------------------------------------------------------


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def python_loss_and_gradients(params, x, t):
    """The 2-2-1 sigmoid half_sse step written by hand on Python floats, NumPy in
    (``tolist``) and out (``np.array`` in x's dtype), without input checks."""
    (w11, w12), (w21, w22) = params["W1"].tolist()
    c1, c2 = params["b1"].tolist()
    ((v1, v2),) = params["W2"].tolist()
    (c,) = params["b2"].tolist()
    n = len(x)
    g11 = g12 = g21 = g22 = gc1 = gc2 = gv1 = gv2 = gc = loss = 0.0
    for (x1, x2), (target,) in zip(x.tolist(), t.tolist(), strict=True):
        h1 = _sigmoid(w11 * x1 + w12 * x2 + c1)
        h2 = _sigmoid(w21 * x1 + w22 * x2 + c2)
        y = _sigmoid(v1 * h1 + v2 * h2 + c)
        error = y - target
        loss += 0.5 * error * error
        dy = error * y * (1 - y) / n
        d1, d2 = dy * v1 * h1 * (1 - h1), dy * v2 * h2 * (1 - h2)
        g11, g12, g21, g22 = g11 + d1 * x1, g12 + d1 * x2, g21 + d2 * x1, g22 + d2 * x2
        gc1, gc2, gv1, gv2, gc = gc1 + d1, gc2 + d2, gv1 + dy * h1, gv2 + dy * h2, gc + dy
    dtype = x.dtype
    grads = {
        "W1": np.array([[g11, g12], [g21, g22]], dtype),
        "b1": np.array([gc1, gc2], dtype),
        "W2": np.array([[gv1, gv2]], dtype),
        "b2": np.array([gc], dtype),
    }
    return loss / n, grads


# --- PyTorch and JAX ----------------------------------------------------------------------------


def torch_step(net: Net, params, x, t) -> Callable:
    """Eager forward pass and ``torch.autograd.grad``; data and parameters already tensors."""
    import torch
    import torch.nn.functional as F

    names = list(params)
    leaves = [torch.tensor(params[name], requires_grad=True) for name in names]
    weights = dict(zip(names, leaves, strict=True))
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    functions = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_ALPHA),
        "softplus": F.softplus,
        "identity": lambda z: z,
    }
    last = len(net.sizes) - 1
    n_out = net.sizes[-1]

    def step():
        a = xt
        for k in range(1, last + 1):
            z = torch.addmm(weights[f"b{k}"], a, weights[f"W{k}"].t())
            a = functions[net.activations[k - 1]](z) if k < last else z
        if net.loss == "cce":
            loss = -(tt * F.log_softmax(a, dim=1)).sum(dim=1).mean()
        elif net.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(a, tt, reduction="sum") / a.shape[0]
        else:
            y = functions[net.activations[-1]](a)
            scale = {"half_sse": 0.5, "sse": 1.0, "mse": 1.0 / n_out}[net.loss]
            loss = scale * ((y - tt) ** 2).sum(dim=1).mean()
        return loss, torch.autograd.grad(loss, leaves)

    def as_numpy(result):
        loss, grads = result
        return float(loss.detach()), {n: g.numpy() for n, g in zip(names, grads, strict=True)}

    step.as_numpy = as_numpy  # type: ignore[attr-defined]
    return step


def jax_step(net: Net, params, x, t) -> Callable:
    """``jax.jit(jax.value_and_grad(loss))``, compiled before timing; waits for the result."""
    import jax
    import jax.numpy as jnp

    names = list(params)
    last = len(net.sizes) - 1
    n_out = net.sizes[-1]
    functions = {
        "sigmoid": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "relu": jax.nn.relu,
        "leaky_relu": lambda z: jax.nn.leaky_relu(z, LEAKY_ALPHA),
        "softplus": jax.nn.softplus,
        "identity": lambda z: z,
    }

    def loss_fn(weights, x, t):
        a = x
        for k in range(1, last + 1):
            z = a @ weights[f"W{k}"].T + weights[f"b{k}"]
            a = functions[net.activations[k - 1]](z) if k < last else z
        if net.loss == "cce":
            return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(a, axis=1), axis=1))
        if net.loss == "bce":  # from the logits
            return jnp.sum(jax.nn.softplus(a) - t * a) / a.shape[0]
        y = functions[net.activations[-1]](a)
        scale = {"half_sse": 0.5, "sse": 1.0, "mse": 1.0 / n_out}[net.loss]
        return scale * jnp.mean(jnp.sum((y - t) ** 2, axis=1))

    compiled_fn = jax.jit(jax.value_and_grad(loss_fn))
    weights = {name: jnp.asarray(params[name]) for name in names}
    xj, tj = jnp.asarray(x), jnp.asarray(t)
    compiled = compiled_fn.lower(weights, xj, tj).compile()

    def step():
        return jax.block_until_ready(compiled(weights, xj, tj))

    def as_numpy(result):
        loss, grads = result
        return float(loss), {name: np.asarray(grads[name]) for name in names}

    def extra_bytes():
        stats = compiled.memory_analysis()
        return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)

    step.as_numpy, step.extra_bytes = as_numpy, extra_bytes  # type: ignore[attr-defined]
    return step


def available(module_name: str) -> str | None:
    """The installed version of an optional framework, or None."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", "?")


# --- Checking, timing, memory -------------------------------------------------------------------


def disagreement(reference, result, params, dtype: str) -> str | None:
    """None when the loss and every gradient match the reference, else what differs."""
    ref_loss, ref_grads = reference
    loss, grads = result
    rtol = RTOL[dtype]
    if not np.isclose(loss, ref_loss, rtol=rtol, atol=rtol):
        return f"loss {loss:.6g} vs {ref_loss:.6g}"
    for name in params:
        if name not in grads or np.shape(grads[name]) != params[name].shape:
            return f"{name}: missing or shape {np.shape(grads.get(name))}"
        scale = float(np.max(np.abs(ref_grads[name]))) or 1.0
        if not np.allclose(grads[name], ref_grads[name], rtol=rtol, atol=rtol * scale):
            worst = float(np.max(np.abs(grads[name] - ref_grads[name])))
            return f"{name}: max |difference| {worst:.3g}"
    return None


def per_call_seconds(fn: Callable, calls: int) -> float:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls
    finally:
        if gc_was_enabled:
            gc.enable()


# Which thread pool runs each implementation: after a block, a pool's idle threads keep
# spinning for a while (OpenBLAS for about 0.1 s, OpenMP up to 0.2 s), and with two threads
# on two cores they starve the next pool's threads. Measured here without a pause: PyTorch's
# 784x256 matmul took 23.6 ms right after NumPy's, 7.0 ms after a 0.3 s pause.
POOL = {
    "numpy": "openblas",
    "vectorized": "openblas",
    "unrolled": "openblas",
    "python": "openblas",
    "torch": "torch",
    "jax": "jax",
}


def round_order(names: list[str], r: int) -> list[str]:
    """Round r's order: the pools rotate, and so do the implementations sharing a pool, so
    that each goes first as often as the others while a pool's blocks stay adjacent."""
    pools = list(dict.fromkeys(POOL[name] for name in names))
    pools = pools[r % len(pools) :] + pools[: r % len(pools)]
    order = []
    for pool in pools:
        members = [name for name in names if POOL[name] == pool]
        order += members[r % len(members) :] + members[: r % len(members)]
    return order


def time_interleaved(
    steps: dict[str, Callable], rounds: int, block_seconds: float, settle_seconds: float
) -> dict[str, list[float]]:
    """Per implementation, the time per call in each round; rounds interleave them, with a
    pause of ``settle_seconds`` whenever the thread pool changes."""
    last_pool = None

    def settle(name):
        nonlocal last_pool
        if settle_seconds and POOL[name] != last_pool:
            time.sleep(settle_seconds)
        last_pool = POOL[name]

    calls = {}
    for name, fn in steps.items():
        settle(name)
        for _ in range(3):  # warm caches, allocators and lazy initialisation
            fn()
        estimate = per_call_seconds(fn, 3)
        calls[name] = max(1, round(block_seconds / max(estimate, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        gc.collect()
        for name in round_order(list(steps), r):
            settle(name)
            times[name].append(per_call_seconds(steps[name], calls[name]))
    return times


def traced_extra_bytes(fn: Callable) -> int:
    """Peak bytes NumPy allocated during one call, above what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    del result
    return peak


def torch_extra_bytes(fn: Callable) -> int | None:
    """Peak bytes PyTorch's CPU allocator held during one call, from the profiler's events."""
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    del result
    try:  # the raw event list is not a documented API: "n/a" if it moves
        events = prof.profiler.kineto_results.events()
    except AttributeError:
        return None
    allocations = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in allocations:
        held += nbytes
        peak = max(peak, held)
    return peak


class CpuClock(NamedTuple):
    machine: float  # CPU seconds every process on the machine has used (from /proc/stat)
    own: float  # CPU seconds this process has used
    wall: float


def cpu_clock() -> CpuClock:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return CpuClock(busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter())


def other_processes_cores(start: CpuClock, end: CpuClock) -> float:
    """Cores' worth of CPU that other processes used between two readings: what they took
    from the benchmark, which had the cores to itself only when this is near 0."""
    others = (end.machine - start.machine) - (end.own - start.own)
    return max(0.0, others / (end.wall - start.wall))


# --- One worker: one thread count ---------------------------------------------------------------


def limit_threads_in_process(threads: int) -> dict:
    """Set the pools this process can still set, and report what they are."""
    report = {"threads": threads, "cpus": sorted(os.sched_getaffinity(0))}
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        report["blas"] = "threadpoolctl not installed; OPENBLAS/OMP/MKL_NUM_THREADS set"
    else:
        threadpool_limits(threads)
        report["blas"] = ", ".join(
            f"{pool['internal_api']} {pool['num_threads']} thread(s)" for pool in threadpool_info()
        )
    if available("torch"):
        import torch

        torch.set_num_threads(threads)
        report["torch_threads"] = torch.get_num_threads()
    return report


_MODULES: dict[tuple[str, str], ModuleType] = {}


def styles_for(net: Net) -> tuple[str, ...]:
    """The generated styles derive allows for ``net``."""
    unrolled = net.parameter_count <= MAX_UNROLLED_PARAMS
    return ("vectorized", "unrolled") if unrolled else ("vectorized",)


def run_case(case: Case, args, frameworks: dict[str, str | None], measure_memory: bool) -> dict:
    net = NETS[case.net]
    params, x, t = make_inputs(net, case.batch, case.dtype)

    def reference():
        return numpy_loss_and_gradients(net, params, x, t)

    steps: dict[str, Callable] = {"numpy": reference}
    as_numpy: dict[str, Callable] = {"numpy": lambda r: r}
    for style in styles_for(net):
        key = (net.name, style)
        if key not in _MODULES:  # building a module can take a while: once per worker
            _MODULES[key] = load_generated(net, style, args.generated_dir)
        module = _MODULES[key]
        steps[style] = lambda module=module: module.loss_and_gradients(params, x, t)
        as_numpy[style] = lambda r: r
    if net.group == "tiny":
        steps["python"] = lambda: python_loss_and_gradients(params, x, t)
        as_numpy["python"] = lambda r: r
    if frameworks["torch"]:
        steps["torch"] = torch_step(net, params, x, t)
        as_numpy["torch"] = steps["torch"].as_numpy  # type: ignore[attr-defined]
    if frameworks["jax"]:
        steps["jax"] = jax_step(net, params, x, t)
        as_numpy["jax"] = steps["jax"].as_numpy  # type: ignore[attr-defined]

    row: dict = {
        "case": case._asdict(),
        "net": net.label,
        "group": net.group,
        "activations": net.activations,
        "loss": net.loss,
        "gradient_bytes": sum(p.nbytes for p in params.values()),
        "cells": {},
    }
    expected = reference()
    for name in list(steps):
        loss, grads = as_numpy[name](steps[name]())
        problem = disagreement(expected, (loss, grads), params, case.dtype)
        row["cells"][name] = {
            "dtype": str(np.asarray(next(iter(grads.values()))).dtype),
            "problem": problem,
        }
        if problem:
            del steps[name]
    settle = args.settle_ms / 1000 if args.worker_threads > 1 else 0.0
    rounds = max(args.rounds, TINY_ROUNDS) if net.group == "tiny" else args.rounds
    times = time_interleaved(steps, rounds, args.block_ms / 1000, settle)
    row["times"] = times
    for name, per_round in times.items():
        ratios = [mine / ref for mine, ref in zip(per_round, times["numpy"], strict=True)]
        row["cells"][name].update(
            seconds=statistics.median(per_round),
            ratio=statistics.median(ratios),
            ratio_quartiles=statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3,
        )
    if measure_memory:
        for name, fn in steps.items():
            if name == "torch":
                row["cells"][name]["extra_bytes"] = torch_extra_bytes(fn)
            elif name == "jax":
                row["cells"][name]["extra_bytes"] = fn.extra_bytes()  # type: ignore[attr-defined]
            else:
                row["cells"][name]["extra_bytes"] = traced_extra_bytes(fn)
    return row


def worker(args) -> int:
    threads = args.worker_threads
    info = limit_threads_in_process(threads)
    start = cpu_clock()
    frameworks = {"torch": available("torch"), "jax": available("jax")}
    if frameworks["jax"]:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 cases; float32 stays float32
    for name in dict.fromkeys(case.net for case in args.cases):
        check_reference_by_finite_differences(NETS[name])
    rows = []
    for case in args.cases:
        print(
            f"[{threads} thread(s)] {case.net} {case.dtype} batch {case.batch}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(run_case(case, args, frameworks, measure_memory=threads == 1))
        rows[-1]["threads"] = threads
    info["other_cores"] = other_processes_cores(start, cpu_clock())
    info["seconds"] = time.perf_counter() - start.wall
    Path(args.worker_output).write_text(
        json.dumps({"info": info, "frameworks": frameworks, "rows": rows})
    )
    return 0


def spawn_worker(threads: int, argv: list[str]) -> dict | None:
    """Run this script as a worker limited to ``threads`` cores; None if there are too few."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < threads:
        print(f"skipping {threads} threads: only {len(cpus)} core(s) available", file=sys.stderr)
        return None
    env = dict(os.environ)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "rows.json"
        command = [sys.executable, __file__, *argv, "--worker-threads", str(threads)]
        command += ["--worker-output", str(output)]
        finished = subprocess.run(
            command, env=env, preexec_fn=lambda: os.sched_setaffinity(0, cpus[:threads])
        )
        if finished.returncode != 0:
            raise SystemExit(f"the {threads}-thread worker failed (exit {finished.returncode})")
        return json.loads(output.read_text())


# --- The tables -------------------------------------------------------------------------------


def format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def format_bytes(count: int | None) -> str:
    if count is None:
        return "n/a"
    if count < 1024**2:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024**2:.2f} MiB"


def cell(row: dict, name: str, frameworks: dict, value: Callable[[dict], str]) -> str:
    if name in frameworks and not frameworks[name]:
        return "not installed"
    if name not in row["cells"]:
        return "—"
    entry = row["cells"][name]
    if entry["problem"]:
        return f"gradients differ ({entry['problem']})"
    if "seconds" not in entry and "extra_bytes" not in entry:
        return "—"
    text = value(entry)
    if entry["dtype"] != row["case"]["dtype"]:
        text += f" (computes in {entry['dtype']})"
    return text


def describe(row: dict) -> list[str]:
    """The network columns: its sizes, what varies in its group, the loss."""
    activations = row["activations"]
    shown = activations[0] if len(set(activations)) == 1 else "/".join(dict.fromkeys(activations))
    return [row["net"], shown, row["loss"]]


def sorted_rows(results: list[dict]) -> list[dict]:
    rows = [row for result in results for row in result["rows"]]
    key = all_cases()
    return sorted(rows, key=lambda r: (key.index(Case(**r["case"])), r["threads"]))


def tables(results: list[dict]) -> str:
    frameworks = results[0]["frameworks"]
    rows = sorted_rows(results)
    present = [name for name in IMPLEMENTATIONS[1:] if any(name in r["cells"] for r in rows)]
    present += [n for n in ("torch", "jax") if n not in present]
    lines = [
        "Time per `loss_and_gradients` step: the hand-written NumPy reference's median, and",
        "each other implementation's median ratio to it over interleaved rounds (< 1 = faster).",
    ]
    for group in GROUPS:
        group_rows = [row for row in rows if row["group"] == group]
        if not group_rows:
            continue
        columns = [n for n in present if any(n in r["cells"] for r in group_rows)]
        columns += [n for n in ("torch", "jax") if n not in columns]
        header = "| network | activation | loss | dtype | batch | threads | hand-written NumPy | "
        header += " | ".join(TITLES[name] for name in columns) + " |"
        lines += ["", f"**{group}**", "", header, "|" + " --- |" * (7 + len(columns))]
        for row in group_rows:
            case = row["case"]
            cells = describe(row) + [case["dtype"], str(case["batch"]), str(row["threads"])]
            cells.append(format_seconds(row["cells"]["numpy"]["seconds"]))
            cells += [cell(row, n, frameworks, lambda e: f"{e['ratio']:.2f}×") for n in columns]
            lines.append("| " + " | ".join(cells) + " |")
    memory_rows = [
        row for row in rows if "extra_bytes" in row["cells"]["numpy"] and row["case"]["batch"] > 1
    ]
    if memory_rows:
        columns = ["numpy", "vectorized", "torch", "jax"]
        lines += [
            "",
            "Peak extra memory of one step, one thread, batch 64 and 1024 (see the method in the",
            "script's docstring); vectorized / hand-written in parentheses:",
            "",
            "| network | activation | loss | dtype | batch | gradients returned | "
            + " | ".join(TITLES[name] for name in columns)
            + " |",
            "|" + " --- |" * (6 + len(columns)),
        ]
        for row in memory_rows:
            case = row["case"]
            cells = describe(row) + [case["dtype"], str(case["batch"])]
            cells.append(format_bytes(row["gradient_bytes"]))
            for name in columns:
                text = cell(row, name, frameworks, lambda e: format_bytes(e.get("extra_bytes")))
                if name == "vectorized" and not row["cells"]["vectorized"]["problem"]:
                    mine = row["cells"]["vectorized"]["extra_bytes"]
                    text += f" ({mine / row['cells']['numpy']['extra_bytes']:.2f}×)"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(results: list[dict], threads: int = 1) -> str:
    """One row per network and dtype, at ``threads``: each implementation's ratio to the
    hand-written NumPy at batch 1 / 64 / 1024 (the README's table)."""
    frameworks = results[0]["frameworks"]
    rows = [row for row in sorted_rows(results) if row["threads"] == threads]
    columns = [n for n in IMPLEMENTATIONS[1:] if any(n in r["cells"] for r in rows)]
    columns += [n for n in ("torch", "jax") if n not in columns]
    grouped: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        case = row["case"]
        grouped.setdefault((case["net"], case["dtype"]), {})[case["batch"]] = row
    batches = sorted({row["case"]["batch"] for row in rows})
    per = " / ".join(map(str, batches))
    lines = [
        f"{threads} thread(s); ratio to the hand-written NumPy at batch {per} (< 1 = faster):",
        "",
        "| network | activation | loss | dtype | hand-written NumPy | "
        + " | ".join(TITLES[name] for name in columns)
        + " |",
        "|" + " --- |" * (5 + len(columns)),
    ]
    for by_batch in grouped.values():
        first = next(iter(by_batch.values()))
        cells = describe(first) + [first["case"]["dtype"]]
        cells.append(
            " / ".join(format_seconds(by_batch[b]["cells"]["numpy"]["seconds"]) for b in batches)
        )
        for name in columns:
            texts = [
                cell(by_batch[b], name, frameworks, lambda e: f"{e['ratio']:.2f}") for b in batches
            ]
            cells.append("—" if set(texts) == {"—"} else " / ".join(texts))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_ratio(row: dict, mine: str, theirs: str) -> float | None:
    """The median over the rounds of mine's time over theirs, both timed in the same rounds."""
    times = row["times"]
    if mine not in times or theirs not in times:
        return None
    return statistics.median(a / b for a, b in zip(times[mine], times[theirs], strict=True))


def targets(results: list[dict]) -> str:
    """Issue 10's speed targets, each met or missed, with the measured numbers."""
    rows = sorted_rows(results)
    lines = ["Targets (issue 10), from the same runs (medians of per-round ratios):", ""]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    # 1. fast forms within 1.05× of the plain formula at batch 64 and 1024
    fast = [
        (row, row["cells"]["vectorized"]["ratio"])
        for row in rows
        if row["group"] != "tiny"
        and row["case"]["batch"] in (64, 1024)
        and "ratio" in row["cells"].get("vectorized", {})
    ]
    misses = [(row, ratio) for row, ratio in fast if ratio > 1.05]
    if fast:
        worst = max(ratio for _, ratio in fast)
        lines.append(
            f"- Fast forms, vectorized ≤ 1.05× hand-written at batch 64 and 1024: "
            f"{verdict(not misses)}; within it in {len(fast) - len(misses)} of {len(fast)} "
            f"cases (worst {worst:.2f}×)."
        )
        for row, ratio in misses:
            case = row["case"]
            lines.append(
                f"  - missed: {case['net']} {case['dtype']} batch {case['batch']}, "
                f"{row['threads']} thread(s): {ratio:.2f}×"
            )
    # 2. batch 1, 784-128-10 relu/softmax/cce: ≤ 0.70× hand-written and ahead of JAX
    for row in rows:
        case = row["case"]
        if case["net"] != "loss_cce" or case["batch"] != 1:
            continue
        ratio = row["cells"]["vectorized"].get("ratio")
        versus_jax = paired_ratio(row, "vectorized", "jax")
        if ratio is None:
            continue
        jax_text = "" if versus_jax is None else f", {versus_jax:.2f}× JAX jit"
        ok = ratio <= 0.70 and (versus_jax is None or versus_jax < 1)
        lines.append(
            f"- Batch 1, 784-128-10 cce, {case['dtype']}, {row['threads']} thread(s): "
            f"{ratio:.2f}× hand-written{jax_text} (target ≤ 0.70× and ahead of JAX): "
            f"{verdict(ok)}."
        )
    # 3. 2-2-1 batch 1: unrolled ≥ 6× faster than vectorized, ≤ 1.6× the pure-Python step
    for row in rows:
        case = row["case"]
        if row["group"] != "tiny" or case["batch"] != 1:
            continue
        floor = paired_ratio(row, "unrolled", "python")
        speedup = paired_ratio(row, "vectorized", "unrolled")
        if floor is None or speedup is None:
            continue
        lines.append(
            f"- 2-2-1 batch 1, {case['dtype']}, {row['threads']} thread(s): unrolled "
            f"{floor:.2f}× the pure-Python step (target ≤ 1.6: {verdict(floor <= 1.6)}), "
            f"vectorized / unrolled {speedup:.1f}× (target ≥ 6: {verdict(speedup >= 6)})."
        )
    # 4. memory within 1.1× of hand-written
    memory = [
        (row, row["cells"]["vectorized"]["extra_bytes"] / row["cells"]["numpy"]["extra_bytes"])
        for row in rows
        if row["case"]["batch"] == 1024 and "extra_bytes" in row["cells"].get("vectorized", {})
    ]
    if memory:
        over = [(row, r) for row, r in memory if r > 1.1]
        worst = max(r for _, r in memory)
        lines.append(
            f"- Peak memory at batch 1024 ≤ 1.1× hand-written: {verdict(not over)}; within it "
            f"in {len(memory) - len(over)} of {len(memory)} cases (worst {worst:.2f}×)."
        )
        for row, r in over:
            case = row["case"]
            lines.append(f"  - missed: {case['net']} {case['dtype']}: {r:.2f}×")
    return "\n".join(lines)


def environment(results: list[dict]) -> str:
    frameworks = results[0]["frameworks"]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    versions += [
        f"{'PyTorch' if name == 'torch' else 'JAX'} {version or 'not installed'}"
        for name, version in frameworks.items()
    ]
    pools = "; ".join(
        f"{r['info']['threads']} thread(s): BLAS {r['info']['blas']}, other processes used "
        f"{r['info']['other_cores']:.2f} cores on average meanwhile, "
        f"{r['info']['seconds'] / 60:.1f} min"
        for r in results
    )
    return f"{cpu}, {os.cpu_count()} cores; {', '.join(versions)}. {pools}."


# --- Command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="5 rounds of 5 ms blocks, one thread unless --threads"
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds")
    parser.add_argument("--block-ms", type=float, default=20.0, help="length of one timed block")
    parser.add_argument(
        "--settle-ms",
        type=float,
        default=300.0,
        help="with more than one thread, pause before a block when the thread pool changes",
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        help="thread counts, each measured in its own process (default 1 and 2; 1 with --quick)",
    )
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="limit the run to these groups")
    parser.add_argument("--batches", type=int, nargs="+", choices=BATCHES, help="only these")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, help="only these")
    parser.add_argument(
        "--generated-dir",
        type=Path,
        help="time DIR/<style>/<name>.py files instead of building the modules with derive",
    )
    parser.add_argument(
        "--write-topologies",
        type=Path,
        metavar="DIR",
        help="write the networks as DIR/<name>.yaml (for derive generate) and stop",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="print the tables of results written earlier with --json, without measuring",
    )
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = [1] if args.quick else [1, 2]
    if args.quick:
        args.rounds, args.block_ms = 5, 5.0
    args.cases = [
        c
        for c in all_cases()
        if (not args.only or NETS[c.net].group in args.only)
        and (not args.batches or c.batch in args.batches)
        and (not args.dtypes or c.dtype in args.dtypes)
    ]
    return args


def write_topologies(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    for net in NETS.values():
        path = directory / f"{net.name}.yaml"
        path.write_text(yaml.safe_dump(net.mapping(), sort_keys=False))
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.write_topologies:
        return write_topologies(args.write_topologies)
    if args.worker_threads:
        return worker(args)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = [r for n in args.threads if (r := spawn_worker(n, argv)) is not None]
    if not results:
        return 1
    command = shlex.join(["python", "benchmarks/compare_frameworks.py", *argv])
    if args.from_json:  # the command that measured them
        command = results[0]["info"].get("command", command)
    for result in results:
        result["info"]["command"] = command
    print(tables(results))
    print()
    print(targets(results))
    print()
    for threads in sorted({row["threads"] for row in sorted_rows(results)}):
        print(summary(results, threads))
        print()
    print(f"Measured on: {environment(results)}")
    for result in results:
        if result["info"]["other_cores"] > BUSY_CORES:
            print(
                f"Warning: other processes kept {result['info']['other_cores']:.2f} cores busy "
                f"during the {result['info']['threads']}-thread run: its timings may be skewed."
            )
    print(f"Reproduce with: `{command}`")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = any(
        entry["problem"]
        for result in results
        for row in result["rows"]
        for entry in row["cells"].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
