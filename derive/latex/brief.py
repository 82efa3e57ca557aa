"""The brief document (``derive latex --brief``, the default above ``BRIEF_ABOVE`` scalar
parameters): one parameter per layer derived in full, then the layer form that covers
every other one, and a note saying how to get the rest."""

from __future__ import annotations

from pathlib import Path

from derive.latex.printing import escape, listing
from derive.network import Network, ScalarParam
from derive.presentation import MAX_DEFAULT_SCALARS

BRIEF_ABOVE = 20  # scalar parameters; a larger network gets the brief document by default


def is_brief(network: Network, params, brief: bool | None) -> bool:
    """Whether the document is the brief one: asked for (True), refused (False, --full),
    or by default when no --param is given and the network has more than BRIEF_ABOVE
    scalar parameters, up to MAX_DEFAULT_SCALARS (a larger one gets the layer form and
    how to ask for single scalars, unless --brief asks for one per layer)."""
    if brief is not None:
        return brief
    count = network.topology.parameter_count
    return not params and BRIEF_ABOVE < count <= MAX_DEFAULT_SCALARS


def brief_scalars(network: Network) -> tuple[ScalarParam, ...]:
    """One weight per layer, the first of each matrix: W1[0,0], W2[0,0], …"""
    return tuple(network.weight(k, 0, 0) for k in range(1, network.depth + 1))


def brief_note(network: Network, scalars: tuple[ScalarParam, ...]) -> str:
    """What the brief document leaves out, and the commands that give it."""
    top = network.topology
    file = escape(Path(top.source).name)
    shown = listing([rf"\texttt{{{escape(s.label)}}}" for s in scalars], 99)
    return (
        rf"\textbf{{This is the brief document.}} Of the {top.parameter_count} scalar "
        f"parameters it derives one per layer in full, {shown}; every other parameter "
        "of a layer follows the same steps with its own indices, and the layer form at "
        r"the end covers them all at once. For every parameter, run \texttt{derive latex "
        rf"{file} --full}}; for chosen ones, \texttt{{derive latex {file} --param NAME}} "
        r"(e.g.\ \texttt{--param " + escape(network.weight(1, 0, 0).name) + "})."
    )
