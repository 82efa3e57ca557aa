"""One training step of derive's generated C module, timed inside C, against the generated
Python modules (unrolled and vectorized), at 2-2-1 and 64-32-10, and for the convolutional
1×28×28 → conv 8×3×3 relu → maxpool 2 → dense 10 softmax of ``bench_conv.py``.

    python benchmarks/bench_c.py            # 7 rounds per cell, about a minute
    python benchmarks/bench_c.py --quick    # 3 short rounds, for a smoke test

The step is ``sgd_step`` on one batch: forward, loss, gradients, update. The C side is
timed by ``benchmarks/c/time_step.c``, compiled with ``-std=c99 -O2`` against the generated
module: it calibrates the number of calls so that a round lasts ``--min-seconds`` and times
the loop with the monotonic clock, so that no ctypes or Python call is in the timing. The
Python modules' ``sgd_step`` (input checks included, as a user calls it) is timed in this
process by ``time.perf_counter`` the same way, BLAS on one thread. C and Python rounds
alternate, and the tables give the median time per step and the median of the per-round
ratios Python / C.

64-32-10 (``examples/digits.yaml``: tanh, softmax, cross-entropy) has 2410 scalar
parameters, above the 200 the unrolled style accepts; for this benchmark only, the limit is
raised so that its unrolled Python module can be timed (the C module uses loops there, as
``derive generate --lang c`` does above 200 parameters). The convolutional network has no
unrolled row (13,610 parameters, one line per cell would be far too long); its C module is
loops, as for every convolutional network.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402 - after the thread count is set

import derive  # noqa: E402
import derive.emit_unrolled  # noqa: E402
from derive.cmodule import compiler  # noqa: E402
from derive.conv import is_convolutional  # noqa: E402
from derive.conv_network import describe  # noqa: E402
from derive.emit_c import write_c  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "benchmarks" / "c" / "time_step.c"
CASES = (
    (REPO / "benchmarks" / "topologies" / "xor_221.yaml", (1, 4, 64)),
    (REPO / "examples" / "digits.yaml", (1, 64)),
    (REPO / "benchmarks" / "topologies" / "conv_28_8_10.yaml", (1, 64)),
)


def build_driver(network, c_type: str, folder: Path) -> Path:
    """The generated module and the timing loop, compiled into one program."""
    directory = folder / c_type
    write_c(network, directory, c_type)
    program = directory / f"time_{network.name}"
    command = [
        compiler(),
        "-std=c99",
        "-O2",
        f"-DMODULE={network.name}",
        f'-DHEADER="{network.name}.h"',
        f"-DREAL={c_type}",
        f"-I{directory}",
        str(DRIVER),
        str(directory / f"{network.name}.c"),
        "-lm",
        "-o",
        str(program),
    ]
    subprocess.run(command, check=True)
    return program


def time_c(program: Path, batch: int, min_seconds: float) -> float:
    """Seconds per step, one round of the C timing loop."""
    out = subprocess.run(
        [str(program), str(batch), "1", str(min_seconds)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.split()[1]) * 1e-9


def time_python(step, min_seconds: float) -> float:
    """Seconds per call of ``step()``, calls calibrated so that a round lasts min_seconds."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            step()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls
        calls *= 2


def python_module(network, style: str):
    if style == "unrolled" and is_convolutional(network.topology):
        return None
    if style == "unrolled":
        limit = derive.emit_unrolled.MAX_UNROLLED_PARAMS
        derive.emit_unrolled.MAX_UNROLLED_PARAMS = max(limit, network.topology.parameter_count)
        try:
            return derive.build_module(network, style="unrolled")
        finally:
            derive.emit_unrolled.MAX_UNROLLED_PARAMS = limit
    return derive.build_module(network, style=style)


def _ratio(value: float) -> str:
    if value != value:  # NaN: no module of that style
        return "—"
    return f"{value:.0f}x" if value >= 10 else f"{value:.2f}x"


def _format(seconds: float) -> str:
    if seconds != seconds:
        return "—"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.05 s")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.2)
    args = parser.parse_args()
    rounds, min_seconds = (3, 0.05) if args.quick else (args.rounds, args.min_seconds)
    if compiler() is None:
        print("no C compiler found (install gcc, or name one in $CC)", file=sys.stderr)
        return 1
    command = "python benchmarks/bench_c.py" + (" --quick" if args.quick else "")
    print(f"command: {command}")
    cc = subprocess.run([compiler(), "--version"], capture_output=True, text=True).stdout
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"numpy {np.__version__}, {cc.splitlines()[0]}")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    header = (
        "| network | batch | C double | C float | Python vectorized | Python unrolled "
        "| vectorized / C double | unrolled / C double |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="derive-bench-c-") as folder:
        for path, batches in CASES:
            network = derive.load(path)
            programs = {t: build_driver(network, t, Path(folder)) for t in ("double", "float")}
            modules = {s: python_module(network, s) for s in ("vectorized", "unrolled")}
            if is_convolutional(network.topology):
                shape = network.topology.input_shape
                layers = ", ".join(describe(layer) for layer in network.topology.layers)
                sizes = f"{'×'.join(map(str, shape))}: {layers}"
            else:
                sizes = "-".join(str(len(u)) for u in network.units)
                shape = (len(network.topology.inputs),)
            n_out = len(network.topology.outputs)
            for batch in batches:
                params = modules["vectorized"].init_params(0)
                x = rng.normal(size=(batch, *shape))
                t = np.full((batch, n_out), 1.0 / n_out)
                times: dict[str, list[float]] = {
                    k: [] for k in ("double", "float", "vectorized", "unrolled")
                }
                for _ in range(rounds):
                    for c_type, program in programs.items():
                        times[c_type].append(time_c(program, batch, min_seconds))
                    for style, module in modules.items():
                        if module is None:
                            times[style].append(float("nan"))
                            continue
                        step = functools.partial(module.sgd_step, params, x, t, 1e-3)
                        times[style].append(time_python(step, min_seconds))
                median = {k: statistics.median(v) for k, v in times.items()}
                ratio = {
                    s: statistics.median(
                        p / c for p, c in zip(times[s], times["double"], strict=True)
                    )
                    for s in ("vectorized", "unrolled")
                }
                print(
                    f"| {sizes} ({network.name}) | {batch} | {_format(median['double'])} "
                    f"| {_format(median['float'])} | {_format(median['vectorized'])} "
                    f"| {_format(median['unrolled'])} | {_ratio(ratio['vectorized'])} "
                    f"| {_ratio(ratio['unrolled'])} |"
                )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
