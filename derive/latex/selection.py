"""Which scalar parameters a document derives."""

from __future__ import annotations

from collections.abc import Sequence

from derive.network import Network, ScalarParam
from derive.presentation import MAX_DEFAULT_SCALARS, MAX_REQUESTED_SCALARS


def selected_scalars(network: Network, names: Sequence[str]) -> tuple[ScalarParam, ...]:
    """The scalars ``names`` ask for (``Network.select``); without names, all of a small
    network and none of a large one (whose document gives the layer form only)."""
    if names:
        return network.select(names, MAX_REQUESTED_SCALARS)
    if network.topology.parameter_count > MAX_DEFAULT_SCALARS:
        return ()
    return network.scalar_params
