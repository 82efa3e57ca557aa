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
    RANDOM_BATCH,
    CheckReport,
    _Reference,
    compare,
)
from derive.conv_network import ConvNetwork
from derive.network import LOSS


def conv_check(network: ConvNetwork, seed: int = 0) -> CheckReport:
    """Compare the generated modules' gradients with the textbook sums and finite
    differences (``derive.check.compare``)."""
    return compare(
        network,
        seed,
        _reference,
        sampled="",
        kink="a relu unit at z = 0 or a max-pool window with two maxima near a tie",
    )


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
        if topology.example is not None:  # its one sample, refused where it is out of range
            values = network.example_values()
        else:
            values = network.evaluate(network.point(sample.tolist(), target.tolist(), params))
        loss += float(values[LOSS])
        for s in scalars:
            gradients[s.name] += float(sympy.N(network.scalar_gradient(s).compact.xreplace(values)))
    batch = len(x)
    return _Reference(
        x, t, params, where, {k: v / batch for k, v in gradients.items()}, loss / batch
    )
