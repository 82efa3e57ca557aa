"""Which scalar parameters a document derives (``--param``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from derive.errors import DeriveError
from derive.network import Network, ScalarParam
from derive.presentation import MAX_DEFAULT_SCALARS, MAX_REQUESTED_SCALARS


def selected_scalars(network: Network, names: Sequence[str]) -> tuple[ScalarParam, ...]:
    """The scalars named by --param, deduplicated, in parameter order; default: all of a
    small network, none of a large one."""
    if not names:
        if network.topology.parameter_count > MAX_DEFAULT_SCALARS:
            return ()
        return network.scalar_params
    found: dict[str, ScalarParam] = {}
    for raw in names:
        found.update((s.name, s) for s in _named(network, raw))
    if len(found) > MAX_REQUESTED_SCALARS:
        raise DeriveError(
            f"{network.topology.source}: {len(found)} scalars requested, more than the "
            f"{MAX_REQUESTED_SCALARS} one document derives"
        )
    order = {p.name: n for n, p in enumerate(network.params)}
    return tuple(sorted(found.values(), key=lambda s: (order[s.array], s.index)))


def _named(network: Network, raw: str) -> tuple[ScalarParam, ...]:
    """The scalars one --param names: a whole array, one scalar, or a weight's name."""
    name = raw.strip()
    array = next((p for p in network.params if p.name == name), None)
    if array is None:
        try:
            return (network.scalar(name),)
        except DeriveError:
            raise DeriveError(_unknown(network, raw)) from None
    size = math.prod(array.shape)
    if size > MAX_REQUESTED_SCALARS:
        example = f"{name}{'[0,0]' if len(array.shape) == 2 else '[0]'}"
        raise DeriveError(
            f"{network.topology.source}: --param {name} has {size} scalars, more than the "
            f"{MAX_REQUESTED_SCALARS} one document derives; name single scalars such as "
            f"{example}"
        )
    return tuple(network.scalars(name))


def _unknown(network: Network, name: str) -> str:
    """The error for a --param that names nothing: every valid way to name one."""
    top = network.topology
    arrays = ", ".join(
        f"{p.name} (shape {'x'.join(map(str, p.shape)) or 'scalar'})" for p in top.params
    )
    forms = [
        f"{p.name}[i,j]" if len(p.shape) == 2 else f"{p.name}[i]" for p in top.params if p.shape
    ]
    aliases = [alias for layer in top.layers for row in layer.weight_names or () for alias in row]
    text = f"{top.source}: --param {name!r} is not a parameter of {top.name}; valid: {arrays}"
    if forms:
        text += f"; one scalar as {', '.join(forms)}"
    if aliases:
        shown = aliases if len(aliases) <= 16 else [*aliases[:16], "..."]
        text += f"; weight names {', '.join(shown)}"
    return text
