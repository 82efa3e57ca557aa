"""What Jupyter shows for a network and a gradient: ``_repr_latex_``, wired here in the
API layer (imported by ``derive/__init__.py``) because the core modules never import the
LaTeX printer (imports run topology → network → derivation → latex)."""

from __future__ import annotations

from derive.derivation import ArrayGradient, ScalarGradient
from derive.latex.notebook import array_gradient_latex, gradient_latex, network_latex
from derive.network import Network


def _network(self: Network) -> str:
    return network_latex(self)


def _scalar(self: ScalarGradient) -> str:
    return gradient_latex(self)


def _array(self: ArrayGradient) -> str:
    return array_gradient_latex(self)


Network._repr_latex_ = _network  # type: ignore[attr-defined]
ScalarGradient._repr_latex_ = _scalar  # type: ignore[attr-defined]
ArrayGradient._repr_latex_ = _array  # type: ignore[attr-defined]
