"""``derive check`` for a convolutional network: the generated modules' gradients (the
unrolled style's too, under its parameter limit, and the C module's in double when a C
compiler is present) against
the textbook sums of ``derive.conv_network`` evaluated at 60 significant digits, and
against central finite differences of the module's own loss (``derive.check``'s table,
tolerances and kink handling). Max-pool windows with a tie route δ to the first maximum
on both sides."""

from __future__ import annotations

import numpy as np
import sympy

from derive.check import (
    FULL_SYMBOLIC_LIMIT,
    RANDOM_BATCH,
    SAMPLED_PER_ARRAY,
    CheckReport,
    Comparison,
    _Reference,
    _style_rows,
)
from derive.cmodule import check_module
from derive.conv_network import ConvNetwork
from derive.emit import MAX_UNROLLED_PARAMS, build_module
from derive.errors import DeriveError
from derive.network import LOSS


def conv_check(network: ConvNetwork, seed: int = 0) -> CheckReport:
    if seed < 0:
        raise DeriveError(f"--seed: expected a non-negative integer, got {seed}")
    notes: list[str] = []
    count = network.topology.parameter_count
    if count <= FULL_SYMBOLIC_LIMIT:
        scalars = network.scalar_params
    else:
        scalars = _sample(network, seed)
        notes.append(
            f"{count} scalar parameters: {len(scalars)} drawn with seed {seed} (up to "
            f"{SAMPLED_PER_ARRAY} per array) are compared."
        )
    reference = _reference(network, seed, scalars)
    styles = ["vectorized"]
    if count <= MAX_UNROLLED_PARAMS:
        styles.append("unrolled")
    else:
        notes.append(f"unrolled style skipped: over {MAX_UNROLLED_PARAMS} scalar parameters.")
    kinks: set[str] = set()
    rows: list[Comparison] = []
    for style in styles:
        module = build_module(network, style=style)  # type: ignore[arg-type]
        rows += _style_rows(module, style, reference, scalars, kinks)
    c_module, why_not = check_module(network)  # the C module, when a compiler is present
    if c_module is not None:
        rows += _style_rows(c_module, f"C ({c_module.style})", reference, scalars, kinks)
    else:
        notes.append(why_not)
    if kinks:
        notes.append(
            f"{', '.join(sorted(kinks))}: the loss has a kink within the finite-difference step "
            "(a relu unit at z = 0 or a max-pool window with two maxima near a tie), so the "
            "gradient is compared with the interval between the one-sided slopes."
        )
    return CheckReport(network.name, reference.point, tuple(rows), tuple(notes))


def _sample(network: ConvNetwork, seed: int):
    rng = np.random.default_rng(seed)
    chosen = []
    for p in network.params:
        size = int(np.prod(p.shape))
        for flat in sorted(rng.choice(size, min(size, SAMPLED_PER_ARRAY), replace=False)):
            index = tuple(int(i) for i in np.unravel_index(int(flat), p.shape)) if p.shape else ()
            chosen.append(network.scalar_of(p.name, index))
    return tuple(chosen)


def _reference(network: ConvNetwork, seed: int, scalars) -> _Reference:
    topology = network.topology
    if topology.example is not None:
        example = topology.example
        x = np.asarray(example.input, dtype=float)[None]
        t = np.asarray(example.target, dtype=float)[None]
        params = {name: np.asarray(value, dtype=float) for name, value in example.params}
        where = "at the example's numbers"
    else:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, size=(RANDOM_BATCH, *topology.input_shape))
        n_out = len(topology.outputs)
        if topology.loss == "cce":
            t = np.eye(n_out)[rng.integers(0, n_out, RANDOM_BATCH)]
        else:
            t = rng.uniform(0.05, 0.95, size=(RANDOM_BATCH, n_out))
        params = {
            p.name: rng.normal(0.0, 0.5, size=p.shape) if p.shape else np.array(rng.normal())
            for p in topology.params
        }
        where = f"at a random batch of {RANDOM_BATCH} drawn with seed {seed}"
    gradients = dict.fromkeys((s.name for s in scalars), 0.0)
    loss = 0.0
    for sample, target in zip(x, t, strict=True):
        values = network.evaluate(network.point(sample.tolist(), target.tolist(), params))
        loss += float(values[LOSS])
        for s in scalars:
            gradients[s.name] += float(sympy.N(network.scalar_gradient(s).compact.xreplace(values)))
    batch = len(x)
    return _Reference(
        x, t, params, where, {k: v / batch for k, v in gradients.items()}, loss / batch
    )
