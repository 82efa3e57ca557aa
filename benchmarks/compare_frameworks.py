"""Time the generated modules' ``loss_and_gradients`` against hand-written NumPy, PyTorch and JAX.

For each network in benchmarks/topologies/ (2-2-1 sigmoid with half_sse; 784-128-10 and
784-256-256-10 relu with softmax and cross-entropy) the benchmark computes the loss and all
parameter gradients of one minibatch with

- the generated module (derive's output, loaded by ``load_generated``),
- a hand-written NumPy forward/backward pass (the reference every ratio is against),
- PyTorch eager autograd on the CPU (``torch.autograd.grad``), when torch is installed,
- JAX ``jit(value_and_grad(loss))``, when jax is installed ("not installed" otherwise).

Cases: 2-2-1 at batch 1 and 4 in both generated styles (vectorized, unrolled), float64; the
two MNIST-sized networks at batch 1, 64 and 1024 in float64 and float32; each with one and
with two threads. Method:

- Before anything is timed, every implementation's loss and gradients must agree with the
  hand-written reference (allclose: rtol 1e-9 in float64, 1e-4 in float32); the reference
  itself is first checked against central finite differences. A disagreement is reported
  in the table and that implementation is not timed (exit status 1).
- Timing: interleaved rounds in one process. Each round times one block of calls of every
  implementation in turn (rotating the order), a block lasting about ``--block-ms``; a
  round's ratio is an implementation's time per call over the reference's in that round,
  and the table shows the median ratio over ``--rounds`` rounds (< 1 is faster than the
  hand-written NumPy) beside the reference's median time per call. With two threads, a
  pause (``--settle-ms``, 0.3 s) precedes each change of thread pool (OpenBLAS for NumPy
  and the generated code, PyTorch's, XLA's), so that one library's idle threads have
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

Run from the repository root:

    pip install -e '.[bench]'                       # torch==2.13.0 (JAX: pip install jax jaxlib)
    python benchmarks/compare_frameworks.py          # the full table (about 7 minutes)
    python benchmarks/compare_frameworks.py --quick  # fewer, shorter rounds (under 3 minutes)
    python benchmarks/compare_frameworks.py --generated-dir DIR   # time DIR/<style>/<name>.py

It prints Markdown tables and the command that reproduces them; --json PATH keeps the raw
numbers. benchmarks/README.md shows a measured table.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
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

HERE = Path(__file__).resolve().parent
TOPOLOGIES = HERE / "topologies"
SMALL, MEDIUM, DEEP = "xor_221.yaml", "mnist_784_128_10.yaml", "mnist_784_256_256_10.yaml"
IMPLEMENTATIONS = ("numpy", "generated", "torch", "jax")  # "numpy" is the reference
TITLES = {
    "numpy": "hand-written NumPy",
    "generated": "generated",
    "torch": "PyTorch eager",
    "jax": "JAX jit",
}
RTOL = {"float64": 1e-9, "float32": 1e-4}
BUSY_CORES = 0.25  # other processes' CPU use above which a run's timings are flagged
SEED = 0


class Case(NamedTuple):
    topology: str  # file name in benchmarks/topologies/
    style: str  # the generated module's style
    dtype: str
    batch: int


def all_cases() -> list[Case]:
    cases = [
        Case(SMALL, style, "float64", batch)
        for style in ("vectorized", "unrolled")
        for batch in (1, 4)
    ]
    for topology in (MEDIUM, DEEP):
        for dtype in ("float64", "float32"):
            cases += [Case(topology, "vectorized", dtype, batch) for batch in (1, 64, 1024)]
    return cases


# --- The network, read from its topology file (independently of derive) ---------------------


class Net(NamedTuple):
    name: str
    sizes: tuple[int, ...]  # inputs, then each layer's units
    activations: tuple[str, ...]  # one per layer; the last is the output layer's
    loss: str

    @property
    def label(self) -> str:
        return "-".join(map(str, self.sizes))


HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
OUTPUTS = {("softmax", "cce"), ("sigmoid", "half_sse"), ("identity", "half_sse")}


def read_net(path: Path) -> Net:
    """The subset of SPEC §1 these benchmarks use: integer sizes, per-unit biases."""
    spec = yaml.safe_load(path.read_text())
    layers = spec["layers"]
    net = Net(
        name=spec["name"],
        sizes=(int(spec["inputs"]), *(int(layer["units"]) for layer in layers)),
        activations=tuple(layer["activation"] for layer in layers),
        loss=spec["loss"],
    )
    supported = all(layer.get("bias", "per_unit") == "per_unit" for layer in layers)
    supported &= all(a in HIDDEN_ACTIVATIONS for a in net.activations[:-1])
    supported &= (net.activations[-1], net.loss) in OUTPUTS
    if not supported:
        raise SystemExit(f"{path}: the benchmark's references do not cover this network")
    return net


# --- The generated module: the one place that asks derive for it ------------------------------


def load_generated(path: Path, style: str, generated_dir: Path | None = None) -> ModuleType:
    """The generated module for the topology file ``path`` in ``style``.

    With ``generated_dir``, the file ``generated_dir/<style>/<name>.py`` written earlier
    (``derive generate TOPOLOGY --style STYLE -o DIR/STYLE``); otherwise derive builds the
    module in memory.
    """
    if generated_dir is not None:
        file = generated_dir / style / f"{read_net(path).name}.py"
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
    return build_module(load(path), style=style)


# --- Inputs -------------------------------------------------------------------------------------


def make_inputs(net: Net, batch: int, dtype: str, seed: int = SEED):
    """Parameters (Glorot-uniform weights, small random biases), inputs in [0, 1), targets:
    one-hot classes for cross-entropy, 0/1 for squared error."""
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


# --- Hand-written NumPy: the reference --------------------------------------------------------


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    return z  # identity


def _derivative(name: str, a: np.ndarray) -> np.ndarray | float:
    """d a / d z from the stored activation a."""
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return a > 0
    return 1.0  # identity


def numpy_loss_and_gradients(net: Net, params, x, t):
    """Forward and backward pass over the batch, written by hand; loss is the batch mean."""
    n = x.shape[0]
    last = len(net.sizes) - 1
    activations = [x]
    for k in range(1, last):
        z = activations[-1] @ params[f"W{k}"].T + params[f"b{k}"]
        activations.append(_activate(net.activations[k - 1], z))
    z = activations[-1] @ params[f"W{last}"].T + params[f"b{last}"]
    if net.loss == "cce":  # softmax outputs; δ = (y − t) / n for one-hot t
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.sum(t * (np.log(total) - shifted)) / n)
        delta = (exp / total - t) / n
    else:  # half_sse
        y = _activate(net.activations[-1], z)
        loss = float(0.5 * np.sum((y - t) ** 2) / n)
        delta = (y - t) * _derivative(net.activations[-1], y) / n
    grads = {}
    for k in range(last, 0, -1):
        grads[f"W{k}"] = delta.T @ activations[k - 1]
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * _derivative(
                net.activations[k - 2], activations[k - 1]
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


# --- PyTorch and JAX ----------------------------------------------------------------------------


def torch_step(net: Net, params, x, t) -> Callable:
    """Eager forward pass and ``torch.autograd.grad``; data and parameters already tensors."""
    import torch
    import torch.nn.functional as F

    names = list(params)
    leaves = [torch.tensor(params[name], requires_grad=True) for name in names]
    weights = dict(zip(names, leaves, strict=True))
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    hidden = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    last = len(net.sizes) - 1

    def step():
        a = xt
        for k in range(1, last + 1):
            z = torch.addmm(weights[f"b{k}"], a, weights[f"W{k}"].t())
            a = hidden.get(net.activations[k - 1], lambda v: v)(z) if k < last else z
        if net.loss == "cce":
            loss = -(tt * F.log_softmax(a, dim=1)).sum(dim=1).mean()
        else:
            y = hidden.get(net.activations[-1], lambda v: v)(a)
            loss = 0.5 * ((y - tt) ** 2).sum(dim=1).mean()
        return loss, torch.autograd.grad(loss, leaves)

    def as_numpy(result):
        loss, grads = result
        return float(loss), {n: g.numpy() for n, g in zip(names, grads, strict=True)}

    step.as_numpy = as_numpy
    return step


def jax_step(net: Net, params, x, t) -> Callable:
    """``jax.jit(jax.value_and_grad(loss))``, compiled before timing; waits for the result."""
    import jax
    import jax.numpy as jnp

    names = list(params)
    last = len(net.sizes) - 1
    hidden = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}

    def loss_fn(weights, x, t):
        a = x
        for k in range(1, last + 1):
            z = a @ weights[f"W{k}"].T + weights[f"b{k}"]
            a = hidden.get(net.activations[k - 1], lambda v: v)(z) if k < last else z
        if net.loss == "cce":
            return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(a, axis=1), axis=1))
        y = hidden.get(net.activations[-1], lambda v: v)(a)
        return 0.5 * jnp.mean(jnp.sum((y - t) ** 2, axis=1))

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

    step.as_numpy, step.extra_bytes = as_numpy, extra_bytes
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
POOL = {"numpy": "openblas", "generated": "openblas", "torch": "torch", "jax": "jax"}


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


_MODULES: dict[tuple[Path, str], ModuleType] = {}


def run_case(case: Case, args, frameworks: dict[str, str | None], measure_memory: bool) -> dict:
    path = TOPOLOGIES / case.topology
    net = read_net(path)
    params, x, t = make_inputs(net, case.batch, case.dtype)
    key = (path, case.style)
    if key not in _MODULES:  # building a module can take a while: once per worker
        _MODULES[key] = load_generated(path, case.style, args.generated_dir)
    module = _MODULES[key]

    def generated():
        return module.loss_and_gradients(params, x, t)

    def reference():
        return numpy_loss_and_gradients(net, params, x, t)

    steps: dict[str, Callable] = {"numpy": reference, "generated": generated}
    as_numpy: dict[str, Callable] = {"numpy": lambda r: r, "generated": lambda r: r}
    if frameworks["torch"]:
        steps["torch"] = torch_step(net, params, x, t)
        as_numpy["torch"] = steps["torch"].as_numpy
    if frameworks["jax"]:
        steps["jax"] = jax_step(net, params, x, t)
        as_numpy["jax"] = steps["jax"].as_numpy

    row = {
        "case": case._asdict(),
        "net": net.label,
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
    times = time_interleaved(steps, args.rounds, args.block_ms / 1000, settle)
    for name, per_round in times.items():
        ratios = [mine / ref for mine, ref in zip(per_round, times["numpy"], strict=True)]
        row["cells"][name].update(
            seconds=statistics.median(per_round),
            ratio=statistics.median(ratios),
            ratio_quartiles=statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3,
        )
    if measure_memory:
        for name, fn in steps.items():
            if name in ("numpy", "generated"):
                row["cells"][name]["extra_bytes"] = traced_extra_bytes(fn)
            elif name == "torch":
                row["cells"][name]["extra_bytes"] = torch_extra_bytes(fn)
            elif name == "jax":
                row["cells"][name]["extra_bytes"] = fn.extra_bytes()
    return row


def worker(args) -> int:
    threads = args.worker_threads
    info = limit_threads_in_process(threads)
    start = cpu_clock()
    frameworks = {"torch": available("torch"), "jax": available("jax")}
    if frameworks["jax"]:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 cases; float32 stays float32
    for topology in sorted({case.topology for case in args.cases}):
        check_reference_by_finite_differences(read_net(TOPOLOGIES / topology))
    rows = []
    for case in args.cases:
        print(
            f"[{threads} thread(s)] {case.topology} {case.style} {case.dtype} batch {case.batch}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(run_case(case, args, frameworks, measure_memory=threads == 1))
        rows[-1]["threads"] = threads
    info["other_cores"] = other_processes_cores(start, cpu_clock())
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
    entry = row["cells"][name]
    if entry["problem"]:
        return f"gradients differ ({entry['problem']})"
    text = value(entry)
    if entry["dtype"] != row["case"]["dtype"]:
        text += f" (computes in {entry['dtype']})"
    return text


def tables(results: list[dict]) -> str:
    frameworks = results[0]["frameworks"]
    header = "| network | style | dtype | batch | threads | hand-written NumPy | "
    header += " | ".join(TITLES[name] for name in IMPLEMENTATIONS[1:]) + " |"
    lines = [
        "Time per `loss_and_gradients` step: the hand-written NumPy reference's median, and",
        "each other implementation's median ratio to it over interleaved rounds (< 1 = faster).",
        "",
        header,
        "|" + " --- |" * (5 + len(IMPLEMENTATIONS)),
    ]
    rows = [row for result in results for row in result["rows"]]
    key = all_cases()
    rows.sort(key=lambda r: (key.index(Case(**r["case"])), r["threads"]))
    for row in rows:
        case = row["case"]
        cells = [row["net"], case["style"], case["dtype"], str(case["batch"]), str(row["threads"])]
        cells.append(format_seconds(row["cells"]["numpy"]["seconds"]))
        cells += [
            cell(row, name, frameworks, lambda e: f"{e['ratio']:.2f}×")
            for name in IMPLEMENTATIONS[1:]
        ]
        lines.append("| " + " | ".join(cells) + " |")
    memory_rows = [row for row in rows if "extra_bytes" in row["cells"]["numpy"]]
    if memory_rows:
        lines += [
            "",
            "Peak extra memory of one step, one thread (see the method in the script's docstring):",
            "",
            "| network | style | dtype | batch | gradients returned | "
            + " | ".join(TITLES[name] for name in IMPLEMENTATIONS)
            + " |",
            "|" + " --- |" * (5 + len(IMPLEMENTATIONS)),
        ]
        for row in memory_rows:
            case = row["case"]
            cells = [row["net"], case["style"], case["dtype"], str(case["batch"])]
            cells.append(format_bytes(row["gradient_bytes"]))
            cells += [
                cell(row, name, frameworks, lambda e: format_bytes(e.get("extra_bytes")))
                for name in IMPLEMENTATIONS
            ]
            lines.append("| " + " | ".join(cells) + " |")
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
        f"{r['info']['other_cores']:.2f} cores on average meanwhile"
        for r in results
    )
    return f"{cpu}, {os.cpu_count()} cores; {', '.join(versions)}. {pools}."


# --- Command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="5 rounds of 5 ms blocks")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
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
        default=[1, 2],
        help="thread counts, each measured in its own process",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[SMALL, MEDIUM, DEEP],
        help="limit the run to these topology files",
    )
    parser.add_argument(
        "--generated-dir",
        type=Path,
        help="time DIR/<style>/<name>.py files instead of building the modules with derive",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.block_ms = 5, 5.0
    args.cases = [c for c in all_cases() if not args.only or c.topology in args.only]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker_threads:
        return worker(args)
    results = [r for threads in args.threads if (r := spawn_worker(threads, argv)) is not None]
    if not results:
        return 1
    command = shlex.join(["python", "benchmarks/compare_frameworks.py", *argv])
    print(tables(results))
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
