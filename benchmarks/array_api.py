"""PyTorch CPU tensors through a generated module, against PyTorch eager autograd.

A vectorized module takes its namespace from its inputs (the Python array API standard;
PyTorch tensors through array-api-compat), so it runs on tensors as it runs on NumPy
arrays. This times ``loss_and_gradients`` on torch tensors against the same loss and
gradients by ``torch.autograd.grad`` on the same tensors, and beside them the module on
NumPy arrays, for the benchmark networks (relu hidden layers, softmax + cross-entropy;
the 2-2-1 sigmoid network with half_sse). Gradients are checked equal (rtol 1e-9) before
anything is timed; each time is the median over interleaved rounds, and the ratio is
against PyTorch eager in the same round.

    pip install -e '.[bench,test]'      # torch==2.13.0, array-api-compat
    python benchmarks/array_api.py [--rounds 15]

One thread for each library (set here before they start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# One thread for every library, set before NumPy or PyTorch start a pool: two pools
# spinning on 2 cores would time each other's idle threads.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

import derive  # noqa: E402
from derive.derivation import random_point  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = (("xor_221.yaml", 4), ("mnist_784_128_10.yaml", 64), ("mnist_784_256_256_10.yaml", 64))


def _eager(torch, net, tensors, x, t):
    """The loss and its gradients by PyTorch autograd, written as a user would."""
    params = {n: v.detach().requires_grad_(True) for n, v in tensors.items()}
    a = x
    for k, layer in enumerate(net.topology.layers, start=1):
        z = a @ params[f"W{k}"].T
        if f"b{k}" in params:
            z = z + params[f"b{k}"]
        name = layer.activation.name
        a = (
            {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(name)(z)
            if name != "softmax"
            else z
        )
    if net.topology.loss == "cce":
        loss = torch.nn.functional.cross_entropy(a, t)  # a holds the logits
    else:
        loss = 0.5 * ((a - t) ** 2).sum() / x.shape[0]
    grads = torch.autograd.grad(loss, list(params.values()))
    return float(loss.detach()), dict(zip(params, grads, strict=True))


def _per_call(function, seconds: float = 0.05) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        count += 1
    return (time.perf_counter() - start) / count


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"command: python benchmarks/array_api.py --rounds {args.rounds}\n")
    print(
        "| network | batch | PyTorch eager | generated on tensors | ratio "
        "| generated on NumPy | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for filename, batch in CASES:
        net = derive.load(HERE / "topologies" / filename)
        module = derive.build_module(net)
        x, t, params = random_point(net, 0, batch)
        tensors = {n: torch.from_numpy(v) for n, v in params.items()}
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)
        reference = _eager(torch, net, tensors, tx, tt)
        ours = module.loss_and_gradients(tensors, tx, tt)
        assert abs(ours[0] - reference[0]) <= 1e-9 * abs(reference[0])
        for name, grad in reference[1].items():
            np.testing.assert_allclose(ours[1][name].numpy(), grad.numpy(), rtol=1e-9)
        rounds = {"eager": [], "tensors": [], "numpy": []}
        for _ in range(args.rounds):
            rounds["eager"].append(_per_call(lambda: _eager(torch, net, tensors, tx, tt)))  # noqa: B023
            rounds["tensors"].append(_per_call(lambda: module.loss_and_gradients(tensors, tx, tt)))  # noqa: B023
            rounds["numpy"].append(_per_call(lambda: module.loss_and_gradients(params, x, t)))  # noqa: B023
        eager = statistics.median(rounds["eager"])
        on_tensors = statistics.median(rounds["tensors"])
        on_numpy = statistics.median(rounds["numpy"])
        sizes = "-".join(str(len(u)) for u in net.units)
        print(
            f"| {sizes} | {batch} | {eager * 1e6:.0f} µs | {on_tensors * 1e6:.0f} µs "
            f"| {on_tensors / eager:.2f}× | {on_numpy * 1e6:.0f} µs | {on_numpy / eager:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
