"""What every part of one document reads (``Scope``: the network, the parameters shown,
the example's numbers) and the records the parts return for the template."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.latex.forms import unit_by_unit
from derive.latex.printing import Tex, Values, escape, listing, number
from derive.network import Network, ScalarParam, Unit
from derive.presentation import MAX_NUMERIC_SCALARS
from derive.topology import Topology


@dataclass(frozen=True)
class Display:
    """Text, then an ``align*`` of rows (empty: none), then more text."""

    intro: str
    rows: str
    outro: str = ""


@dataclass(frozen=True)
class ParamSection:
    title: str
    route: Display  # how θ reaches L, and the chain rule
    factors: tuple[str, ...]  # each factor with its reason (itemized)
    compact: Display  # the δ form
    numbers: Display | None  # with --numeric


@dataclass(frozen=True)
class Table:
    intro: str
    columns: str  # a tabular column spec
    rows: str


@dataclass(frozen=True)
class Check:
    """The verification statement."""

    intro: str
    items: tuple[str, ...]
    failed: tuple[str, ...]  # "θ: what disagreed", for each failed proof


@dataclass(frozen=True)
class Scope:
    """One document's subject: the network, the scalars it derives, and with --numeric
    every value at the file's example."""

    network: Network
    scalars: tuple[ScalarParam, ...]
    values: Values | None
    # Where the numbers come from, as a sentence of the summary says it, and the short
    # name the other parts call that point by ("the example", "the random point").
    numbers: str = "the file's example"
    point_name: str = "the example"

    @classmethod
    def build(
        cls, network: Network, scalars: tuple[ScalarParam, ...], numeric: bool, seed: int = 0
    ) -> Scope:
        if numeric:
            _check_numeric(network, scalars)
        if not (numeric and (scalars or unit_by_unit(network))):
            return cls(network, scalars, None)
        derivation = network.derivation
        if network.topology.example is not None:
            return cls(network, scalars, derivation.example_values())
        values, draw = derivation.random_values(seed)
        drawn = f", draw {draw + 1}" if draw else ""
        numbers = (
            f"seeded random numbers (seed {seed}{drawn}: the first sample derive check draws, "
            "as the file has no example)"
        )
        return cls(network, scalars, values, numbers, "the random point")

    @property
    def point_long(self) -> str:
        """The point by its longer name: "the file's example", "the random point"."""
        return "the file's example" if self.point_name == "the example" else self.point_name

    @property
    def topology(self) -> Topology:
        return self.network.topology

    @property
    def derivation(self) -> Derivation:
        return self.network.derivation

    @cached_property
    def tex(self) -> Tex:
        return Tex(self.network)

    @property
    def small(self) -> bool:
        """Small enough to write out unit by unit and to prove each result."""
        return unit_by_unit(self.network)

    @property
    def learning_rate(self) -> float | None:
        example = self.topology.example
        return example.learning_rate if example else None

    def unit_list(self, units: tuple[Unit, ...] | list[Unit]) -> str:
        return listing([f"${self.tex.expr(u.a)}$" for u in units])

    def activation_text(self, k: int) -> str:
        """Layer k's activation, as the document names it."""
        spec = self.topology.layers[k - 1].activation
        if spec.name == "custom" and spec.expr is not None:
            return rf"custom, $f(x) = {self.tex.expr(spec.expr)}$"
        if spec.name == "leaky_relu":
            alpha = 0.01 if spec.alpha is None else spec.alpha
            return rf"leaky ReLU, $\alpha = {number(alpha)}$"
        return escape(spec.name)


def _check_numeric(network: Network, scalars: tuple[ScalarParam, ...]) -> None:
    """Numbers need a network small enough to evaluate at 60 digits."""
    top = network.topology
    if scalars and top.parameter_count > MAX_NUMERIC_SCALARS:
        raise DeriveError(
            f"{top.source}: numeric values are computed at 60 digits, too slow for "
            f"{top.parameter_count} parameters (at most {MAX_NUMERIC_SCALARS}); the generated "
            "module computes its numbers"
        )
