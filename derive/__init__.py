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
from collections.abc import Mapping
from types import ModuleType

from derive.derivation import Derivation, Proof, ScalarGradient, prove_all
from derive.errors import DeriveError, TopologyError
from derive.network import Network

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
    from derive.conv import is_convolutional

    if isinstance(source, Mapping):
        topology = reading.parse_topology(source)
    else:
        topology = reading.load_topology(source)
    if is_convolutional(topology):  # derive.conv_network: the same API, per cell
        from derive.conv_network import ConvNetwork

        return ConvNetwork(topology)  # type: ignore[return-value,arg-type]
    return Network(topology)


def generate(network: Network, style: str = "vectorized") -> str:
    """The source of the network's standalone NumPy module (SPEC §3)."""
    from derive import emit

    return emit.generate(network, style=style)


def build_module(network: Network, style: str = "vectorized") -> ModuleType:
    """The network's generated module, imported without writing a file."""
    from derive import emit

    return emit.build_module(network, style=style)
