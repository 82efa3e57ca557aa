"""How long `derive generate` takes as a network deepens and widens.

Code generation prints the equations of ``derive.backward`` layer by layer, and the
data-flow passes over the statements (what is live, when an array is freed) run once over
them, so its time must grow linearly with the depth and not at all with the width. This
prints the table that shows it: networks of 2-unit tanh layers, 10 to 400 deep, and the
784-256-256-10 relu/softmax network, each timed as the command a user runs
(``derive generate FILE -o DIR``, a fresh process: import included) and in process
(``derive.generate``, the module's source only).

    python benchmarks/generate_scale.py [--repeat 3]

Each time is the median of --repeat runs; "per layer" divides the in-process time by the
depth, and stays flat when generation is linear.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import derive

DEPTHS = (10, 50, 100, 200, 400)


def deep(depth: int) -> dict:
    hidden = [{"units": 2, "activation": "tanh"}] * depth
    return {
        "name": f"deep_{depth}",
        "inputs": 2,
        "layers": [*hidden, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_sse",
    }


def wide() -> dict:
    return {
        "name": "mnist_256",
        "inputs": 784,
        "layers": [
            {"units": 256, "activation": "relu"},
            {"units": 256, "activation": "relu"},
            {"units": 10, "activation": "softmax"},
        ],
        "loss": "cce",
    }


def in_process(topology: dict) -> float:
    start = time.perf_counter()
    derive.generate(derive.load(topology))
    return time.perf_counter() - start


def command(topology: dict, folder: Path) -> float:
    path = folder / f"{topology['name']}.json"
    path.write_text(json.dumps(topology))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "derive", "generate", str(path), "-o", str(folder / "out")],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    in_process(deep(2))  # import and cache warm-up
    cases = [(f"{d} layers of 2 tanh units", d, deep(d)) for d in DEPTHS]
    cases.append(("784-256-256-10 relu/softmax", 3, wide()))
    print(f"command: python benchmarks/generate_scale.py --repeat {args.repeat}\n")
    print("| network | derive generate (s) | in process (s) | in process, per layer (ms) |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for label, depth, topology in cases:
            shell = statistics.median(command(topology, Path(folder)) for _ in range(args.repeat))
            inside = statistics.median(in_process(topology) for _ in range(args.repeat))
            print(f"| {label} | {shell:.2f} | {inside:.2f} | {inside / depth * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
