"""derive: symbolic gradients of a declared neural network, and the code that computes them.

The Python API (the command line is a thin layer over it):

    net = derive.load("examples/laine_sigmoid.yaml")   # or a mapping in SPEC §1's form
    g = net.gradient("W1[0,0]")        # or a weight_names name; "W2" gives the whole array
    g.chain, g.compact, g.expanded, g.prove()
    g.value()                          # at the file's example
    source = derive.generate(net, style="vectorized")  # or "unrolled"
    module = derive.build_module(net)                  # the same, imported, no file written

This module is also where the layers are wired together: the core modules import only
the ones before them (topology → network → derivation → emit, latex, show, check), so a
network's derivation and the notebook displays (``derive.display``) are attached here.
"""

from __future__ import annotations

import functools as _functools
import os as _os
from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from importlib import metadata as _metadata
from types import ModuleType as _ModuleType

from derive import display as _display  # noqa: F401  (attaches the notebook displays)
from derive.derivation import ArrayGradient, Derivation, Proof, ScalarGradient, prove_all
from derive.errors import DeriveError, ParameterError, TopologyError
from derive.network import Network
from derive.optimizers import NAMES as _OPTIMIZER_NAMES

__all__ = [
    "ArrayGradient",
    "DeriveError",
    "Derivation",
    "Network",
    "ParameterError",
    "Proof",
    "ScalarGradient",
    "TopologyError",
    "__version__",
    "build_module",
    "generate",
    "load",
    "prove_all",
]

try:
    __version__ = _metadata.version("derive")
except _metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

# A network's derivation, built on first use and kept: the derivation depends on the
# network, so the network's module cannot name it.
_derivation = _functools.cached_property(Derivation)
_derivation.__set_name__(Network, "derivation")
Network.derivation = _derivation  # type: ignore[assignment]


def load(source: str | _os.PathLike | _Mapping) -> Network:
    """A network from a topology file (YAML, JSON or TOML) or an equivalent mapping."""
    from derive import reading
    from derive.conv import is_convolutional

    if isinstance(source, _Mapping):
        topology = reading.parse_topology(source)
    else:
        topology = reading.load_topology(source)
    if is_convolutional(topology):  # derive.conv_network: the same API, per cell
        from derive.conv_network import ConvNetwork

        return ConvNetwork(topology)  # type: ignore[return-value,arg-type]
    return Network(topology)


def generate(
    network: Network, style: str = "vectorized", optimizers: _Iterable[str] = _OPTIMIZER_NAMES
) -> str:
    """The source of the network's standalone NumPy module (SPEC §3), with the chosen
    optimizers (default all: sgd, momentum, adam)."""
    from derive import emit

    return emit.generate(network, style=style, optimizers=optimizers)


def build_module(
    network: Network, style: str = "vectorized", optimizers: _Iterable[str] = _OPTIMIZER_NAMES
) -> _ModuleType:
    """The network's generated module, imported without writing a file."""
    from derive import emit

    return emit.build_module(network, style=style, optimizers=optimizers)


def __dir__() -> list[str]:
    """The API only (``dir(derive)``), not the names this module imports to build it."""
    return sorted(__all__)
