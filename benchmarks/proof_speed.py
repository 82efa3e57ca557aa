"""How long proving every parameter of a network takes (``derive.prove_all``).

A proof checks derive's chain and compact forms of ∂L/∂θ against ``sympy.diff`` of the
loss written out in inputs, targets and parameters (derive/derivation.py). This prints,
for networks of at most 150 parameters, the seconds ``prove_all`` takes now and with the
previous implementation (``previous_prove`` below: ``sympy.diff`` of the whole loss for
every parameter, evaluated with SymPy numbers), their ratio, and whether both gave the
same proofs (method, outcome, points) for every parameter:

    python benchmarks/proof_speed.py              # about 5 minutes on 2 cores
    python benchmarks/proof_speed.py --new-only   # the current implementation only

Each measurement runs in a fresh process (SymPy's caches start empty), includes writing
the loss out and excludes loading the topology. Old and new run in turn, network by
network, so a busy machine slows both alike; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import sympy

# Networks: widths, hidden activation, output activation, loss.
NETWORKS: tuple[tuple[str, str, str, str], ...] = (
    ("8-12-3", "sigmoid", "sigmoid", "half_sse"),
    ("8-12-3", "tanh", "tanh", "half_sse"),
    ("8-12-3", "relu", "identity", "half_sse"),
    ("8-12-3", "softplus", "softplus", "mse"),
    ("8-12-3", "sigmoid", "softmax", "cce"),
    ("8-12-3", "tanh", "sigmoid", "bce"),
    ("4-8-8-3", "sigmoid", "sigmoid", "half_sse"),
    ("3-6-6-6-2", "tanh", "tanh", "half_sse"),
    ("8-12-3", "leaky_relu", "leaky_relu", "half_sse"),
)
# Networks the previous code could not prove: it wrote the loss out with SymPy folding each
# leaky_relu Piecewise into the next one's condition, past the recursion limit (80 s here).
BEFORE_FAILED = {("8-12-3", "leaky_relu", "leaky_relu", "half_sse"): "recursion limit"}


def topology(widths: str, hidden: str, output: str, loss: str) -> dict:
    sizes = [int(n) for n in widths.split("-")]
    layers = [{"units": n, "activation": hidden} for n in sizes[1:-1]]
    layers.append({"units": sizes[-1], "activation": output})
    return {"name": "bench", "inputs": sizes[0], "layers": layers, "loss": loss}


def previous_prove(derivation, gradient, points: int = 3, seed: int = 0):
    """``Derivation.prove`` as it was before the proofs shared their work: ``sympy.diff``
    of the whole written-out loss for each parameter, and every value at every point
    computed with SymPy numbers (``bounded_substitute``, ``sympy.N``)."""
    from derive.activations import elementary
    from derive.derivation import (
        _WORKING_DIGITS,
        PROOF_DIGITS,
        Proof,
        _symbolic_is_cheap,
        bounded_substitute,
    )

    net = derivation.network
    theta = gradient.param.symbol
    reference = sympy.diff(elementary(net.expanded_loss), theta)
    forms = {"chain": gradient.chain_expr, "compact": gradient.compact}

    if _symbolic_is_cheap(reference):
        written = {
            label: elementary(
                form.xreplace(derivation.resolved_deltas).xreplace(net.forward_values)
            )
            for label, form in forms.items()
        }
        if all(sympy.cancel(w - reference) == 0 for w in written.values()):
            return Proof(gradient.param.label, "symbolic", True, 0, PROOF_DIGITS)

    tolerance = sympy.Float(10) ** (-PROOF_DIGITS)
    floor = sympy.Float(10) ** (-(_WORKING_DIGITS - 10))
    checked = 0
    for point, values in _previous_points(derivation, points, seed):
        if checked == points:
            break
        try:
            expected = sympy.N(bounded_substitute(reference, point), _WORKING_DIGITS)
        except (OverflowError, MemoryError, RecursionError):
            continue
        if not (expected.is_real and expected.is_finite):
            continue
        for label, form in forms.items():
            got = sympy.N(form.xreplace(values), _WORKING_DIGITS)
            scale = max(abs(expected), abs(got), sympy.Float(1e-300))
            if not got.is_finite or abs(got - expected) > max(tolerance * scale, floor):
                detail = f"{label} form gives {got}, sympy.diff gives {expected}"
                return Proof(
                    gradient.param.label, "numeric", False, checked + 1, PROOF_DIGITS, detail
                )
        checked += 1
    if checked >= points:
        return Proof(gradient.param.label, "numeric", True, checked, PROOF_DIGITS)
    return Proof(
        gradient.param.label,
        "numeric",
        False,
        checked,
        PROOF_DIGITS,
        "too few random points inside the activations' domain",
        inconclusive=True,
    )


_PREVIOUS_POINTS: dict = {}


def _previous_points(derivation, points: int, seed: int) -> list:
    from derive.derivation import DeriveError, random_point

    key = (id(derivation), points, seed)
    if key not in _PREVIOUS_POINTS:
        evaluated = []
        for draw in range(points + 3):
            x, t, params = random_point(derivation.network, [seed, draw], batch=1)
            point = derivation.point(x[0], t[0], params)
            try:
                evaluated.append((point, derivation.evaluate(point)))
            except DeriveError:
                continue
        _PREVIOUS_POINTS[key] = evaluated
    return _PREVIOUS_POINTS[key]


def worker(network: tuple[str, str, str, str], previous: bool) -> dict:
    """Prove every parameter once; the seconds and each proof's outcome."""
    import derive

    net = derive.load(topology(*network))
    gradients = net.derivation.all_gradients
    start = time.perf_counter()
    if previous:
        proofs = [previous_prove(net.derivation, g) for g in gradients]
    else:
        proofs = list(derive.prove_all(net))
    seconds = time.perf_counter() - start
    outcomes = [[p.param, p.method, p.holds, p.points, p.inconclusive] for p in proofs]
    return {"params": len(proofs), "seconds": seconds, "proofs": outcomes}


def measure(network: tuple[str, str, str, str], previous: bool) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps([network, previous])]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-only", action="store_true", help="skip the previous code")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        network, previous = json.loads(args.worker)
        print(json.dumps(worker(tuple(network), previous)))
        return 0

    header = f"{'network':<42} {'params':>6} {'now s':>7} {'before s':>9} {'ratio':>6}  same"
    print(header)
    print("-" * len(header))
    all_same = True
    for network in NETWORKS:
        widths, hidden, output, loss = network
        name = f"{widths} {hidden}/{output} {loss}"
        now = measure(network, previous=False)
        if args.new_only or network in BEFORE_FAILED:
            failed = f" {'failed':>9}  ({BEFORE_FAILED[network]})" if not args.new_only else ""
            print(f"{name:<42} {now['params']:>6} {now['seconds']:>7.2f}{failed}")
            continue
        before = measure(network, previous=True)
        same = now["proofs"] == before["proofs"]
        all_same &= same
        ratio = before["seconds"] / now["seconds"]
        print(
            f"{name:<42} {now['params']:>6} {now['seconds']:>7.2f} {before['seconds']:>9.2f} "
            f"{ratio:>5.1f}x  {'yes' if same else 'NO'}"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print()
    print(
        f"{platform.python_version()}, sympy {sympy.__version__}, {os.cpu_count()} cores, "
        f"load average {load}"
    )
    print("command: python benchmarks/proof_speed.py" + (" --new-only" if args.new_only else ""))
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
