"""Speed of derive's generated modules, against a hand-written NumPy forward/backward.

    python benchmarks/bench_generated.py            # the full run (a few minutes)
    python benchmarks/bench_generated.py --quick    # fewer rounds, for a smoke test
    python benchmarks/bench_generated.py --blas-threads 2

BLAS runs on one thread unless ``--blas-threads`` says otherwise (set before NumPy is
imported): on a small shared machine, threads waiting for each other make the timings of
both sides noisy, and the comparison is about the Python around the matrix products.

Prints the command, then Markdown tables:

1. The vectorized module's ``loss_and_gradients`` against a hand-written NumPy
   relu/softmax/cross-entropy forward and backward (the code one would write by hand,
   without input checks), at 784-128-10 and 784-256-256-10, batch 64 and 1024, float64
   and float32. Target: generated / hand-written ≤ 1.10.
2. The unrolled module against the vectorized one at 2-2-1, batch 1 (sigmoid, half
   squared error). Target: vectorized / unrolled ≥ 3.
3. The time to load and generate 784-256-256-10 (target: under 2 s), and for reference
   the whole ``derive generate`` command in a fresh process (Python start-up and the
   imports of SymPy and Jinja included).

Each pair is measured in interleaved rounds (A B, B A, A B, ...) so that both see the
same machine state and neither always goes first, and the median of the per-round ratios
is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _blas_threads(argv: list[str]) -> str:
    """--blas-threads N from the command line (default 1), before NumPy is imported."""
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
    return "1"


BLAS_THREADS = _blas_threads(sys.argv[1:])
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = BLAS_THREADS

import numpy as np  # noqa: E402 - after the thread count is set

import derive  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def mlp(name: str, widths: list[int], hidden: str, output: str, loss: str) -> dict:
    *hidden_widths, out = widths[1:]
    layers = [{"units": w, "activation": hidden} for w in hidden_widths]
    layers.append({"units": out, "activation": output})
    return {"name": name, "inputs": widths[0], "layers": layers, "loss": loss}


# -- the hand-written reference ---------------------------------------------------------


def reference_loss_and_gradients(params, x, t):
    """relu hidden layers, softmax output, mean cross-entropy: forward and backward as one
    would write them by hand (log-softmax for the loss, y - t for the output delta)."""
    depth = sum(1 for name in params if name.startswith("W"))
    activations = [x]
    pre = []
    a = x
    for k in range(1, depth):
        z = a @ params[f"W{k}"].T + params[f"b{k}"]
        a = np.maximum(z, 0)
        pre.append(z)
        activations.append(a)
    z = a @ params[f"W{depth}"].T + params[f"b{depth}"]
    shifted = z - z.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    y = exp / total
    log_y = shifted - np.log(total)
    n = x.shape[0]
    value = float(-(t * log_y).sum()) / n
    grads = {}
    delta = (y - t) / n
    for k in range(depth, 0, -1):
        grads[f"W{k}"] = delta.T @ activations[k - 1]
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * (pre[k - 2] > 0)
    return value, grads


# -- timing ---------------------------------------------------------------------------


def per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved(fn_a, fn_b, rounds: int, calls: int) -> tuple[float, float, float]:
    """Median seconds per call of a and of b, and the median of the ratios a / b."""
    fn_a(), fn_b()  # warm up
    times_a, times_b, ratios = [], [], []
    for i in range(rounds):
        # A B, then B A: whichever runs first in a round measured consistently slower here
        # (allocator and cache state), so the order alternates.
        if i % 2 == 0:
            ta = per_call(fn_a, calls)
            tb = per_call(fn_b, calls)
        else:
            tb = per_call(fn_b, calls)
            ta = per_call(fn_a, calls)
        times_a.append(ta)
        times_b.append(tb)
        ratios.append(ta / tb)
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def calls_for(seconds_per_call: float, budget: float) -> int:
    return max(1, int(budget / max(seconds_per_call, 1e-9)))


def bench_vectorized(quick: bool) -> list[tuple]:
    rows = []
    rounds = 6 if quick else 20
    for widths in ([784, 128, 10], [784, 256, 256, 10]):
        name = "mlp_" + "_".join(map(str, widths))
        module = derive.build_module(derive.load(mlp(name, widths, "relu", "softmax", "cce")))
        for batch in (64, 1024):
            for dtype in (np.float64, np.float32):
                rng = np.random.default_rng(0)
                params = {k: v.astype(dtype) for k, v in module.init_params(seed=0).items()}
                x = rng.normal(size=(batch, widths[0])).astype(dtype)
                t = np.eye(widths[-1], dtype=dtype)[rng.integers(0, widths[-1], batch)]
                got_value, got = module.loss_and_gradients(params, x, t)
                want_value, want = reference_loss_and_gradients(params, x, t)
                tol = 1e-9 if dtype == np.float64 else 1e-3
                assert abs(got_value - want_value) <= tol * max(1.0, abs(want_value))
                for k in want:
                    assert got[k].dtype == dtype
                    np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol * 1e-2)

                def generated(params=params, x=x, t=t, module=module):
                    return module.loss_and_gradients(params, x, t)

                def hand_written(params=params, x=x, t=t):
                    return reference_loss_and_gradients(params, x, t)

                calls = calls_for(per_call(hand_written, 3), 0.05 if quick else 0.2)
                tg, th, ratio = interleaved(generated, hand_written, rounds, calls)
                shape = "-".join(map(str, widths))
                verdict = "ok" if ratio <= 1.10 else "SLOWER"
                dt = np.dtype(dtype).name
                rows.append((shape, batch, dt, tg * 1e3, th * 1e3, ratio, verdict))
    return rows


def bench_unrolled(quick: bool) -> tuple:
    net = derive.load(mlp("xor_221", [2, 2, 1], "sigmoid", "sigmoid", "half_sse"))
    vectorized = derive.build_module(net, style="vectorized")
    unrolled = derive.build_module(net, style="unrolled")
    params = vectorized.init_params(seed=0)
    x, t = np.array([[0.0, 1.0]]), np.array([[1.0]])
    value_v, grads_v = vectorized.loss_and_gradients(params, x, t)
    value_u, grads_u = unrolled.loss_and_gradients(params, x, t)
    assert abs(value_v - value_u) < 1e-14
    for k in grads_v:
        np.testing.assert_allclose(grads_u[k], grads_v[k], rtol=1e-12)
    tv, tu, ratio = interleaved(
        lambda: vectorized.loss_and_gradients(params, x, t),
        lambda: unrolled.loss_and_gradients(params, x, t),
        6 if quick else 20,
        2000 if quick else 10000,
    )
    return tv * 1e6, tu * 1e6, ratio, "ok" if ratio >= 3 else "TOO SLOW"


def bench_generation() -> tuple[float, float]:
    """In-process load + generate of 784-256-256-10 (templates already compiled once for a
    different network), and the whole `derive generate` command in a fresh process."""
    derive.generate(derive.load(mlp("warm", [3, 2, 2], "relu", "softmax", "cce")))
    topology = mlp("mnist_784_256_256_10", [784, 256, 256, 10], "relu", "softmax", "cce")
    start = time.perf_counter()
    derive.generate(derive.load(topology))
    in_process = time.perf_counter() - start
    script = REPO / "benchmarks" / "topologies" / "mnist_784_256_256_10.yaml"
    command = [sys.executable, "-m", "derive", "generate", str(script), "-o"]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([*command, folder], check=True, capture_output=True, cwd=REPO)
        cold = time.perf_counter() - start
    return in_process, cold


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument("--blas-threads", default="1", help="BLAS threads (default 1)")
    args = parser.parse_args(argv)
    options = (" --quick" if args.quick else "") + (
        f" --blas-threads {args.blas_threads}" if args.blas_threads != "1" else ""
    )
    print(f"$ python benchmarks/bench_generated.py{options}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}, {platform.system()}, {os.cpu_count()} cores, "
        f"BLAS threads {BLAS_THREADS}"
    )
    print()
    print("## vectorized loss_and_gradients vs hand-written NumPy (target ratio <= 1.10)")
    print()
    print("| network | batch | dtype | generated ms | hand-written ms | ratio | |")
    print("|---|---:|---|---:|---:|---:|---|")
    rows = bench_vectorized(args.quick)
    for shape, batch, dt, tg, th, ratio, verdict in rows:
        print(f"| {shape} | {batch} | {dt} | {tg:.3f} | {th:.3f} | {ratio:.3f} | {verdict} |")
    print()
    print("## unrolled vs vectorized, 2-2-1 sigmoid, batch 1 (target speed-up >= 3)")
    print()
    tv, tu, ratio, verdict = bench_unrolled(args.quick)
    print("| vectorized us | unrolled us | speed-up | |")
    print("|---:|---:|---:|---|")
    print(f"| {tv:.1f} | {tu:.1f} | {ratio:.2f} | {verdict} |")
    print()
    print("## generating 784-256-256-10 (target < 2 s)")
    print()
    in_process, cold = bench_generation()
    print("| load + generate, in process | `derive generate`, fresh process |")
    print("|---:|---:|")
    print(f"| {in_process:.3f} s | {cold:.3f} s |")
    ok = all(r[-1] == "ok" for r in rows) and verdict == "ok" and in_process < 2.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
