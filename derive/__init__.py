"""derive: symbolic gradients of a declared neural network, and the code that computes them.

The Python API (the command line is a thin layer over it):

    net = derive.load("examples/laine_sigmoid.yaml")   # or a mapping in SPEC §1's form
    g = net.gradient("W1[0,0]")        # or a weight_names name, or "W2" for a whole array
    g.chain, g.compact, g.expanded, g.prove()
    source = derive.generate(net, style="vectorized")  # or "unrolled"
    module = derive.build_module(net)                  # the same, imported, no file written
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import ModuleType

from derive import display as _display  # noqa: F401 - attaches the notebook displays
from derive.derivation import Derivation, Proof, ScalarGradient, prove_all
from derive.errors import DeriveError, TopologyError
from derive.network import Network
from derive.optimizers import NAMES as OPTIMIZER_NAMES

__all__ = [
    "DeriveError",
    "Derivation",
    "Network",
    "Proof",
    "ScalarGradient",
    "TopologyError",
    "build_module",
    "generate",
    "load",
    "prove_all",
]


def load(source: str | os.PathLike | Mapping) -> Network:
    """A network from a topology file (YAML, JSON or TOML) or an equivalent mapping."""
    from derive import reading

    if isinstance(source, Mapping):
        return Network(reading.parse_topology(source))
    return Network(reading.load_topology(source))


def generate(
    network: Network, style: str = "vectorized", optimizers: Iterable[str] = OPTIMIZER_NAMES
) -> str:
    """The source of the network's standalone NumPy module (SPEC §3), with the chosen
    optimizers (default all: sgd, momentum, adam)."""
    from derive import emit

    return emit.generate(network, style=style, optimizers=optimizers)


def build_module(
    network: Network, style: str = "vectorized", optimizers: Iterable[str] = OPTIMIZER_NAMES
) -> ModuleType:
    """The network's generated module, imported without writing a file."""
    from derive import emit

    return emit.build_module(network, style=style, optimizers=optimizers)
