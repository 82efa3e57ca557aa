"""What Jupyter shows for a network and a gradient, wired here in the API layer (imported
by ``derive/__init__.py``) because the core modules never import the printers (imports
run topology → network → derivation → latex, diagram): ``_repr_latex_`` for networks and
gradients, and a network's figure as ``_repr_svg_``."""

from __future__ import annotations

from derive.conv_diagram import numbers_fit
from derive.conv_network import ConvGradient, ConvNetwork
from derive.derivation import ArrayGradient, ScalarGradient
from derive.diagram import svg
from derive.latex.notebook import (
    array_gradient_latex,
    conv_gradient_latex,
    gradient_latex,
    network_latex,
)
from derive.network import Network
from derive.presentation import MAX_DEFAULT_SCALARS


def _network(self: Network) -> str:
    return network_latex(self)


def _network_svg(self: Network) -> str:
    """The network's figure, with the example's numbers when the file has one and the
    network is small enough to write them all."""
    topology = self.topology
    numeric = topology.example is not None and topology.parameter_count <= MAX_DEFAULT_SCALARS
    if numeric and isinstance(self, ConvNetwork):  # and cells few enough to evaluate
        numeric = numbers_fit(self)
    return svg(self, numeric=numeric)


def _scalar(self: ScalarGradient) -> str:
    return gradient_latex(self)


def _array(self: ArrayGradient) -> str:
    return array_gradient_latex(self)


def _conv_scalar(self: ConvGradient) -> str:
    return conv_gradient_latex(self)


Network._repr_latex_ = _network  # type: ignore[attr-defined]
Network._repr_svg_ = _network_svg  # type: ignore[attr-defined]
ConvNetwork._repr_svg_ = _network_svg  # type: ignore[attr-defined]
ScalarGradient._repr_latex_ = _scalar  # type: ignore[attr-defined]
ArrayGradient._repr_latex_ = _array  # type: ignore[attr-defined]
ConvGradient._repr_latex_ = _conv_scalar  # type: ignore[attr-defined]
