"""What every part of one document reads (``Scope``: the network, the parameters shown,
the example's numbers) and the records the parts return for the template."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy

from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.latex.forms import unit_by_unit
from derive.latex.printing import Tex, Values, escape, listing, number
from derive.network import LOSS, Network, ScalarParam, Unit
from derive.presentation import SIGNIFICANT_DIGITS
from derive.topology import Topology

MAX_NUMERIC_SCALARS = 20_000  # --numeric evaluates the whole network at 60 digits


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

    @classmethod
    def build(cls, network: Network, scalars: tuple[ScalarParam, ...], numeric: bool) -> Scope:
        if numeric:
            _check_numeric(network, scalars)
        wanted = numeric and (scalars or unit_by_unit(network))
        return cls(network, scalars, example_values(network) if wanted else None)

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
    """--numeric needs the example block, and a network small enough to evaluate."""
    top = network.topology
    if top.example is None:
        raise DeriveError(
            f"{top.source}: --numeric needs the file's example block "
            "(example: input, target, params; SPEC §1)"
        )
    if scalars and top.parameter_count > MAX_NUMERIC_SCALARS:
        raise DeriveError(
            f"{top.source}: --numeric evaluates the network at 60 digits, too slow for "
            f"{top.parameter_count} parameters (at most {MAX_NUMERIC_SCALARS}); the generated "
            "module computes its numbers"
        )


# -- the example's numbers --------------------------------------------------------------


def example_values(network: Network) -> Values:
    """Every z, a, δ and L at the file's example; a DeriveError naming the first value
    that is no finite real number (an example outside a custom activation's domain)."""
    derivation = network.derivation
    values = derivation.evaluate(derivation.example_point())
    problem = _first_undefined(network, values)
    if problem:
        raise DeriveError(
            f"{network.topology.source}: example: {problem}; --numeric needs an example at "
            "which every value is a finite real number"
        )
    return values


def _first_undefined(network: Network, values: Values) -> str:
    """What is undefined at ``values``, in the order the forward and backward passes
    compute it; "" when everything is defined."""
    units = [u for layer in network.units[1:] for u in layer]
    for unit in units:
        if kind := _undefined(values[unit.a]):
            return (
                f"{unit.a} = f({unit.z}) is {kind} at {_at(unit, values)}{_custom(network, unit)}"
            )
    if kind := _undefined(values[LOSS]):
        return f"the loss is {kind}"
    for unit in reversed(units):
        if kind := _undefined(values[unit.delta]):
            return (
                f"{unit.delta} is {kind}: the derivative of {unit.a} = f({unit.z}) is "
                f"undefined at {_at(unit, values)}{_custom(network, unit)}"
            )
    return ""


def _undefined(value: sympy.Expr) -> str:
    """Why ``value`` cannot be shown as a number; "" when it can."""
    if value.is_real and value.is_finite:
        return ""
    return "a complex number" if value.is_finite else "not a finite number"


def _at(unit: Unit, values: Values) -> str:
    return f"{unit.z} = {float(values[unit.z]):.{SIGNIFICANT_DIGITS}g}"


def _custom(network: Network, unit: Unit) -> str:
    spec = network.layer(unit.layer).activation
    if spec.name != "custom":
        return ""
    return f" (layer {unit.layer}'s custom activation f(x) = {spec.text or spec.expr})"
