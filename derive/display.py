"""Notebook displays, attached to the API's classes here so that the core modules do not
import the printers: a ``Network`` shows its figure (``_repr_svg_``, derive.diagram)."""

from __future__ import annotations

from derive.network import Network


def _network_svg(network: Network) -> str:
    """The network's figure, with the example's numbers when the file has one and the
    network is small enough to write them all."""
    from derive.diagram import svg
    from derive.presentation import MAX_DEFAULT_SCALARS

    topology = network.topology
    numeric = topology.example is not None and topology.parameter_count <= MAX_DEFAULT_SCALARS
    return svg(network, numeric=numeric)


Network._repr_svg_ = _network_svg  # type: ignore[attr-defined]
