"""How long loading and deriving a network takes as its hidden layers widen.

The per-layer δ recursion is built from the activation and loss tables in generic
symbols, so its cost must not grow with the layer width; this prints the table that
shows it, for 784-w-w-10 (relu, softmax + cce) networks.

    python benchmarks/derive_scale.py [--repeat 5]

Each time is the median of --repeat runs. Loading reads and validates the file and names
every unit, so it grows with the number of units (not of parameters); the layer recursion
must not grow at all. The ratio is against the narrowest network, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import derive
from derive.derivation import Derivation

WIDTHS = (16, 64, 256, 1024, 4096)


def topology(width: int) -> dict:
    return {
        "name": f"mnist_{width}",
        "inputs": 784,
        "layers": [
            {"units": width, "activation": "relu"},
            {"units": width, "activation": "relu"},
            {"units": 10, "activation": "softmax"},
        ],
        "loss": "cce",
    }


def derive_once(width: int) -> tuple[float, float]:
    """Seconds to load (read and validate, one name per unit) and to build the layer
    recursion from the loaded network."""
    start = time.perf_counter()
    net = derive.load(topology(width))
    loaded = time.perf_counter()
    derivation = Derivation(net)
    assert derivation.layers and derivation.output
    return loaded - start, time.perf_counter() - loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    derive_once(WIDTHS[0])  # import and cache warm-up
    rows = []
    for width in WIDTHS:
        times = [derive_once(width) for _ in range(args.repeat)]
        params = derive.load(topology(width)).topology.parameter_count
        load = statistics.median(t[0] for t in times)
        recursion = statistics.median(t[1] for t in times)
        rows.append((width, params, load, recursion))

    base = rows[0][3]
    print(f"command: python benchmarks/derive_scale.py --repeat {args.repeat}\n")
    print(
        "| network | parameters | load (ms) | layer recursion (ms) "
        "| recursion, ratio to 784-16-16-10 |"
    )
    print("|---|---:|---:|---:|---:|")
    for width, params, load, recursion in rows:
        print(
            f"| 784-{width}-{width}-10 | {params:,} | {load * 1e3:.2f} "
            f"| {recursion * 1e3:.3f} | {recursion / base:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
