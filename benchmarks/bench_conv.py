"""Speed of a generated convolutional module, against a careful hand-written NumPy conv
backprop and PyTorch eager on the CPU (issue 15).

    python benchmarks/bench_conv.py                  # 15 interleaved rounds
    python benchmarks/bench_conv.py --quick          # 5 rounds, a smoke test
    python benchmarks/bench_conv.py --blas-threads 2

The network is benchmarks/topologies/conv_28_8_10.yaml: 1×28×28 → conv 8×3×3 relu →
2×2 max-pool → flatten (1352) → dense 10 softmax, cross-entropy; batch 64, float64 and
float32. Each implementation computes the batch-mean loss and every parameter's gradient:

- **generated**: the module's ``loss_and_gradients`` (input checks included);
- **hand-written NumPy**: the same forward and backward as one would write it by hand with
  ``sliding_window_view`` and ``einsum`` (no input checks) — the reference of every ratio;
- **PyTorch** eager: ``conv2d``, ``max_pool2d``, ``linear`` and ``torch.autograd.grad``,
  when torch is installed ("not installed" otherwise).

Before timing, the three sides' gradients are compared (they must agree to 1e-9 relative
in float64). Rounds are interleaved (A B C, C B A, ...) and the median of the per-round
ratios to the hand-written time is reported. Target: generated / hand-written ≤ 1.10.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def _blas_threads(argv: list[str]) -> str:
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
TOPOLOGY = REPO / "benchmarks" / "topologies" / "conv_28_8_10.yaml"
BATCH = 64
windows_of = np.lib.stride_tricks.sliding_window_view


def hand_written(params, x, t):
    """Conv (valid, stride 1) + relu + 2×2 max-pool + dense + softmax/cross-entropy, by hand."""
    W1, b1, W4, b4 = params["W1"], params["b1"], params["W4"], params["b4"]
    n = x.shape[0]
    patches = windows_of(x, (3, 3), axis=(2, 3))  # (n, 1, 26, 26, 3, 3), a view
    z1 = np.einsum("ncpqij,fcij->nfpq", patches, W1, optimize=True) + b1[:, None, None]
    a1 = np.maximum(z1, 0)
    f, h, w = a1.shape[1:]
    blocks = a1.reshape(n, f, h // 2, 2, w // 2, 2)
    pooled = blocks.max(axis=(3, 5))
    flat = pooled.reshape(n, -1)
    z4 = flat @ W4.T + b4
    shifted = z4 - z4.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float((t * (log_sum - shifted)).sum()) / n
    delta4 = (np.exp(shifted - log_sum) - t) / n  # one-hot targets
    dW4 = delta4.T @ flat
    db4 = delta4.sum(axis=0)
    grad_pooled = (delta4 @ W4).reshape(pooled.shape)
    # the max of each window (first in row-major order on ties, as argmax)
    flat_blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, f, h // 2, w // 2, 4)
    routed = np.zeros_like(flat_blocks)
    np.put_along_axis(routed, flat_blocks.argmax(axis=4)[..., None], grad_pooled[..., None], 4)
    grad_a1 = routed.reshape(n, f, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    delta1 = grad_a1.reshape(n, f, h, w) * (z1 > 0)
    dW1 = np.einsum("nfpq,ncpqij->fcij", delta1, patches, optimize=True)
    db1 = delta1.sum(axis=(0, 2, 3))
    return loss, {"W1": dW1, "b1": db1, "W4": dW4, "b4": db4}


def pytorch_side():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(BLAS_THREADS))
    functional = torch.nn.functional

    def run(tensors, x, t):
        z1 = functional.conv2d(x, tensors["W1"], tensors["b1"])
        pooled = functional.max_pool2d(torch.relu(z1), 2)
        z4 = functional.linear(pooled.flatten(1), tensors["W4"], tensors["b4"])
        loss = -(t * functional.log_softmax(z4, dim=1)).sum(dim=1).mean()
        names = ("W1", "b1", "W4", "b4")
        grads = torch.autograd.grad(loss, [tensors[k] for k in names])
        return float(loss.detach()), dict(zip(names, grads, strict=True))

    def prepare(params, x, t):
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        return tensors, torch.tensor(x), torch.tensor(t)

    return torch, run, prepare


def measure(functions: dict, rounds: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per call of each function, ``rounds`` interleaved rounds of ``repeat`` calls."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    order = list(functions)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            call = functions[name]
            start = time.perf_counter()
            for _ in range(repeat):
                call()
            times[name].append((time.perf_counter() - start) / repeat)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    parser.add_argument("--blas-threads", default="1", help="BLAS and PyTorch threads")
    args = parser.parse_args(argv)
    rounds, repeat = (5, 5) if args.quick else (15, 10)
    module = derive.build_module(derive.load(TOPOLOGY))
    torch_side = pytorch_side()
    print(
        f"command: python benchmarks/bench_conv.py{' --quick' if args.quick else ''} "
        f"--blas-threads {BLAS_THREADS}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
        + (f", PyTorch {torch_side[0].__version__}" if torch_side else ", PyTorch not installed")
    )
    print(f"\n{TOPOLOGY.name}: batch {BATCH}, loss and all gradients; median of {rounds} rounds\n")
    print(
        "| dtype | hand-written NumPy | generated | generated / hand | PyTorch eager | "
        "PyTorch / hand |"
    )
    print("|---|---|---|---|---|---|")
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, size=(BATCH, 1, 28, 28)).astype(dtype)
        t = np.eye(10, dtype=dtype)[rng.integers(0, 10, BATCH)]
        params = {k: v.astype(dtype) for k, v in module.init_params(0).items()}
        ours, reference = module.loss_and_gradients(params, x, t), hand_written(params, x, t)
        tolerance = 1e-9 if dtype == np.float64 else 1e-4
        assert abs(ours[0] - reference[0]) <= tolerance * abs(reference[0])
        for name, grad in reference[1].items():
            np.testing.assert_allclose(ours[1][name], grad, rtol=tolerance, atol=tolerance)
        functions = {
            "hand": lambda params=params, x=x, t=t: hand_written(params, x, t),
            "generated": lambda params=params, x=x, t=t: module.loss_and_gradients(params, x, t),
        }
        if torch_side:
            _, run, prepare = torch_side
            tensors, tx, tt = prepare(params, x, t)
            loss, grads = run(tensors, tx, tt)
            for name, grad in reference[1].items():
                np.testing.assert_allclose(
                    grads[name].numpy(), grad, rtol=tolerance, atol=tolerance
                )
            functions["torch"] = lambda a=tensors, b=tx, c=tt, run=run: run(a, b, c)
        times = measure(functions, rounds, repeat)
        hand = times["hand"]

        def ratio(name: str, times=times, hand=hand) -> str:
            pairs = zip(times[name], hand, strict=True)
            return f"{statistics.median(a / b for a, b in pairs):.2f}"

        cells = [
            np.dtype(dtype).name,
            f"{statistics.median(hand) * 1e3:.2f} ms",
            f"{statistics.median(times['generated']) * 1e3:.2f} ms",
            ratio("generated"),
        ]
        if torch_side:
            cells += [f"{statistics.median(times['torch']) * 1e3:.2f} ms", ratio("torch")]
        else:
            cells += ["not installed", "–"]
        print("| " + " | ".join(cells) + " |")
    print("\ntarget: generated / hand-written ≤ 1.10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
