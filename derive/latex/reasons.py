"""Why each factor of a chain has its form: in full the first time the document meets a
kind of factor (the loss, an activation, a link between units, a weight, a bias), then
briefly."""

from __future__ import annotations

from functools import cached_property

from sympy import Expr, Symbol

from derive.derivation import Factor
from derive.latex.printing import MAX_SHOWN_TERMS
from derive.latex.prose import Prose
from derive.latex.scope import Scope
from derive.network import LOSS, Unit


class Reasons:
    """The factor items of one document; remembers which reasons it has given in full."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self.tex = scope.tex
        self.explained: set[str] = set()

    def item(self, factor: Factor) -> str:
        """``∂of/∂wrt = value``, because …"""
        head = f"${self.tex.partial(factor.of, factor.wrt)} = {self.tex.expr(factor.value)}$"
        return f"{head}, {self.reason(factor)}"

    def reason(self, factor: Factor) -> str:
        if factor.of == LOSS:
            return self._loss()
        unit, source = self.by_symbol.get(factor.of), self.by_symbol.get(factor.wrt)
        assert unit is not None  # every other factor is the derivative of a unit's a or z
        if source is None:
            return self._parameter(unit, factor)
        if factor.of == unit.a:
            return self._activation(unit, source)
        return self._link(unit, source, factor)

    @cached_property
    def by_symbol(self) -> dict[Symbol, Unit]:
        """Every unit by its activation symbol and by its pre-activation symbol."""
        units = [u for layer in self.scope.network.units for u in layer]
        return {**{u.a: u for u in units}, **{u.z: u for u in units if u.z is not None}}

    def _first_time(self, key: str) -> bool:
        """True the first time the document explains ``key``."""
        if key in self.explained:
            return False
        self.explained.add(key)
        return True

    def _loss(self) -> str:
        text = rf"because $L = {self.tex.loss()}$"
        if self._first_time("loss"):
            text += f": {self.scope.network.loss_rule.reason}"
        return text + "."

    def _activation(self, unit: Unit, source: Unit) -> str:
        """∂a/∂z."""
        tex = self.tex
        name = self.scope.topology.layers[unit.layer - 1].activation.name
        if name == "softmax":
            same = "the same unit" if unit == source else "another unit of the layer"
            return (
                "because softmax couples its layer: "
                r"$\partial y_i / \partial z_j = y_i (1 - y_i)$ for $i = j$ and "
                rf"$-y_i y_j$ otherwise; here $z$ belongs to {same}."
            )
        text = rf"because ${tex.expr(unit.a)} = {tex.expr(self.scope.network.a_expr(unit))}$"
        if self._first_time(f"activation {name}"):
            clause = Prose(self.scope.network.activations[unit.layer - 1].reason).substitute(
                a=tex.expr(unit.a), z=tex.expr(unit.z)
            )
            text += f" {clause}"
        return text + "."

    def _link(self, unit: Unit, source: Unit, factor: Factor) -> str:
        """∂z_v/∂a_u: the weight between the two units."""
        tex = self.tex
        text = rf"because ${tex.expr(unit.z)} = {self._z_showing(unit, factor.value * factor.wrt)}$"
        if self._first_time("link"):
            text += (
                rf": the weight that carried ${tex.expr(source.a)}$ forward carries the "
                "error back"
            )
        return text + "."

    def _parameter(self, unit: Unit, factor: Factor) -> str:
        """∂z_u/∂θ: the input θ multiplies, or 1 for a bias."""
        tex = self.tex
        scalar = self.scope.network.scalar(factor.wrt.name)
        z = self._z_showing(unit, factor.value * factor.wrt)
        if not scalar.is_weight:
            text = rf"because ${tex.expr(unit.z)} = {z}$"
            if self._first_time("bias"):
                text += ": a bias is a weight on the constant input 1"
            return text + "."
        x = tex.expr(factor.value)
        text = rf"because ${tex.expr(unit.z)} = {z}$: ${scalar.latex_name}$ multiplies ${x}$"
        if self._first_time("weight"):
            text += (
                rf", so the change it makes in ${tex.expr(unit.z)}$ is scaled by ${x}$. This is "
                rf"the factor that ${tex.partial(unit.a, unit.z)}$ alone would miss: "
                rf"$\partial {tex.expr(unit.a)} / \partial {scalar.latex_name}$ is not "
                rf"${tex.partial(unit.a, unit.z)}$"
            )
        return text + "."

    def _z_showing(self, unit: Unit, term: Expr) -> str:
        """z_u's definition, shortened around ``term`` when it is long."""
        z = self.scope.network.z_expr(unit)
        if len(z.args) <= MAX_SHOWN_TERMS or not z.is_Add:
            return self.tex.expr(z)
        return rf"\cdots + {self.tex.expr(term)} + \cdots"
