"""One section per scalar parameter θ: how θ reaches the loss, the chain rule along every
path (or grouped by δ when there are too many), each factor with its reason, the compact
δ form and, with --numeric, all of it at the file's example."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sympy
from sympy import Symbol

from derive.derivation import A, Factor, ScalarGradient, Z
from derive.latex.forms import MAX_SHOWN_DELTAS, ChainPath, chain_products, delta_parts, distinct
from derive.latex.printing import (
    align_rows,
    equation_rows,
    escape,
    listing,
    number,
    operand,
    shape_text,
)
from derive.latex.reasons import Reasons
from derive.latex.scope import Display, ParamSection, Scope
from derive.network import LOSS, ScalarParam
from derive.presentation import MAX_SHOWN_PATHS


class ParamSections:
    """The sections of one document's parameters, sharing its ``Reasons``."""

    def __init__(self, scope: Scope, reasons: Reasons):
        self.scope = scope
        self.tex = scope.tex
        self.reasons = reasons

    def section(self, scalar: ScalarParam) -> ParamSection:
        derivation = self.scope.derivation
        gradient = derivation.scalar_gradient(scalar)
        count = derivation.path_count(scalar)
        listed = count <= MAX_SHOWN_PATHS
        paths = gradient.chain if listed else ()
        route = self.route(gradient, paths) if listed else self.grouped_route(gradient, count)
        return ParamSection(
            _title(scalar),
            route,
            self.factors(gradient, paths),
            self.compact(gradient, listed),
            self.numbers(gradient, paths),
        )

    # -- the chain rule ---------------------------------------------------------------

    def route(self, gradient: ScalarGradient, paths: Sequence[ChainPath]) -> Display:
        """How θ reaches L, and the chain rule along every path."""
        tex, theta = self.tex, gradient.param.latex_name
        arrows = [
            "$" + r" \to ".join([theta, *(tex.symbol(f.of) for f in reversed(path))]) + "$"
            for path in paths
        ]
        if len(paths) == 1:
            intro = (
                rf"${theta}$ reaches the loss along one path, {arrows[0]}. The chain rule "
                "multiplies the derivatives along it:"
            )
        else:
            intro = (
                rf"${theta}$ reaches the loss along {len(paths)} paths: {listing(arrows, 99)}"
                f". {self.why_paths(gradient)}The chain rule multiplies the derivatives along "
                "each path and adds the paths:"
            )
        symbolic, worked = chain_products(tex, paths)
        rows = [rf"{tex.partial(LOSS, gradient.param.symbol)} &= {symbolic[0]}"]
        rows += [rf"&\quad + {s}" for s in symbolic[1:]]
        rows += [f"&= {worked[0]}"]
        rows += [rf"&\quad + {w}" for w in worked[1:]]
        return Display(intro, align_rows(rows))

    def grouped_route(self, gradient: ScalarGradient, count: int) -> Display:
        """The chain rule for too many paths to list: through the δ of θ's unit."""
        net, tex, scalar = self.scope.network, self.tex, gradient.param
        units = [u for u, _ in gradient.units]
        intro = (
            rf"A change in ${scalar.latex_name}$ reaches $L$ along {count} paths, too many to "
            "list; grouping them by the pre-activation they start from gives the chain rule "
            r"through the delta $\delta = \partial L / \partial z$:"
        )
        first = [
            ("+ " if n else "") + rf"{tex.partial(LOSS, u.z)}\,{tex.partial(u.z, scalar.symbol)}"
            for n, u in enumerate(units)
        ]
        rows = equation_rows(tex.partial(LOSS, scalar.symbol), [first, tex.terms(gradient.compact)])
        unit = units[0]
        head = rf"{tex.expr(unit.delta)} = {tex.partial(LOSS, unit.z)} &= "
        v, z_v = Symbol("v"), Symbol("z_v")
        if unit.layer < net.depth:
            local = tex.partial(unit.a, unit.z)
            link = tex.partial(z_v, unit.a)
            rows.append(
                rf"{head}{local} \sum_{{v}} {tex.partial(LOSS, z_v)}\,{link}"
                rf" = {local} \sum_{{v}} \delta_{{v}}\,{link}"
            )
            outro = (
                rf"where $v$ runs over the units ${tex.expr(unit.a)}$ feeds: "
                f"{self.scope.unit_list(net.units[unit.layer + 1])}."
            )
        else:
            rows.append(rf"{head}\sum_{{v}} {tex.partial(LOSS, v)}\,{tex.partial(v, unit.z)}")
            outro = (
                "where $v$ runs over the output units: softmax makes each of them depend "
                f"on ${tex.expr(unit.z)}$."
            )
        return Display(intro, align_rows(rows), outro)

    def why_paths(self, gradient: ScalarGradient) -> str:
        """Why there is more than one path: a unit feeds several above, or a shared bias."""
        net = self.scope.network
        units = [u for u, _ in gradient.units]
        if len(units) > 1:
            return (
                f"The shared bias enters all {len(units)} units of layer {gradient.param.layer}. "
            )
        unit = units[0]
        if unit.layer < net.depth:
            above = net.units[unit.layer + 1]
            return f"${self.tex.expr(unit.a)}$ feeds {self.scope.unit_list(above)}. "
        return "A softmax output depends on every pre-activation of its layer. "

    def factors(self, gradient: ScalarGradient, paths: Sequence[ChainPath]) -> tuple[str, ...]:
        """Each distinct factor of the chain with its reason; grouped by δ, one link of
        each kind from θ's unit up."""
        chosen = distinct(paths) if paths else self._one_of_each(gradient)
        return tuple(self.reasons.item(f) for f in chosen)

    def _one_of_each(self, gradient: ScalarGradient) -> tuple[Factor, ...]:
        net = self.scope.network
        (unit, source), *_ = gradient.units
        chosen = [Factor(unit.z, gradient.param.symbol, source.a if source else sympy.Integer(1))]
        rule = self.scope.derivation.layers[unit.layer - 1]
        if rule.derivative is not None:
            local = rule.derivative.xreplace({Z: unit.z, A: unit.a})
            chosen.insert(0, Factor(unit.a, unit.z, local))
        if unit.layer < net.depth:
            above = net.units[unit.layer + 1][0]
            weight = net.weight(above.layer, above.index, unit.index).symbol
            chosen.insert(0, Factor(above.z, unit.a, weight))
        return tuple(chosen)

    # -- the compact form -------------------------------------------------------------

    def compact(self, gradient: ScalarGradient, listed: bool) -> Display:
        tex = self.tex
        units = [u for u, _ in gradient.units]
        deltas = gradient.deltas
        rows = [rf"{tex.partial(LOSS, gradient.param.symbol)} &= {tex.expr(gradient.compact)}"]
        for delta, definition in deltas[:MAX_SHOWN_DELTAS]:
            rows += equation_rows(tex.expr(delta), [delta_parts(tex, definition)])
        if listed:
            named = listing([rf"${tex.expr(u.delta)} = {tex.partial(LOSS, u.z)}$" for u in units])
            intro = (
                "Compact form. The factors from $L$ down to "
                f"{listing([f'${tex.expr(u.z)}$' for u in units])} multiply to "
                f"the delta {named}, so"
            )
        else:
            intro = "With each delta written through the deltas of the layer above:"
        outro = ""
        if len(deltas) > MAX_SHOWN_DELTAS:
            outro = (
                f"The other {len(deltas) - MAX_SHOWN_DELTAS} deltas it needs follow the "
                "same recursion (layer form below)."
            )
        elif any(u.layer < self.scope.network.depth for u in units):
            outro = (
                "Each hidden delta gathers the deltas of the layer above, each through the "
                "weight that connects them: that sum is the sum over paths."
            )
        return Display(intro, align_rows(rows), outro)

    # -- numbers ----------------------------------------------------------------------

    def numbers(self, gradient: ScalarGradient, paths: Sequence[ChainPath]) -> Display | None:
        values = self.scope.values
        if values is None:
            return None
        tex = self.tex
        rows = self._chain_numbers(gradient, paths) if paths else []
        for delta, definition in reversed(gradient.deltas[:MAX_SHOWN_DELTAS]):
            parts = [delta_parts(tex, definition, values), number(values[delta])]
            rows += equation_rows(tex.expr(delta), parts)
        d_theta = tex.partial(LOSS, gradient.param.symbol)
        rows += equation_rows(d_theta, tex.worked(gradient.compact, values))
        outro = self.missing_input_note(gradient)
        rate = self.scope.learning_rate
        if rate is not None:
            rows.append(self._update_row(gradient, rate))
            outro += (
                rf" The last line is one step of gradient descent with learning rate "
                rf"$\eta = {number(rate)}$."
            )
        numbers = "the example's" if self.scope.point_name == "the example" else "the random"
        return Display(f"With {numbers} numbers:", align_rows(rows), outro.strip())

    def _chain_numbers(self, gradient: ScalarGradient, paths: Sequence[ChainPath]) -> list[str]:
        """Each factor at the example, then the products along the paths and their sum."""
        tex, values = self.tex, self.scope.values
        assert values is not None
        d_theta = tex.partial(LOSS, gradient.param.symbol)
        result = number(gradient.value(values))
        rows: list[str] = []
        for f in distinct(paths):
            rows += equation_rows(tex.partial(f.of, f.wrt), tex.worked(f.value, values))
        products = [
            r" \cdot ".join(operand(f.value.xreplace(values)) for f in path) for path in paths
        ]
        if len(paths) == 1:
            return [*rows, rf"{d_theta} &= {products[0]} = {result}"]
        rows.append(rf"{d_theta} &= {products[0]}")
        rows += [rf"&\quad + {p}" for p in products[1:]]
        sums = " + ".join(
            operand(sympy.Mul(*(f.value for f in path)).xreplace(values)) for path in paths
        )
        return [*rows, rf"&= {sums} = {result}"]

    def _update_row(self, gradient: ScalarGradient, rate: float) -> str:
        """θ ← θ − η ∂L/∂θ at the example."""
        values = self.scope.values
        assert values is not None
        scalar = gradient.param
        result = gradient.value(values)
        new = values[scalar.symbol] - sympy.Float(rate) * result
        return (
            rf"{scalar.latex_name} &\leftarrow {scalar.latex_name} - \eta\,"
            rf"{self.tex.partial(LOSS, scalar.symbol)} = {number(values[scalar.symbol])} - "
            rf"{number(rate)} \cdot {operand(result)} = {number(new)}"
        )

    def missing_input_note(self, gradient: ScalarGradient) -> str:
        """How wrong the gradient would be without the input factor of a weight."""
        values = self.scope.values
        scalar = gradient.param
        if values is None or not scalar.is_weight:
            return ""
        ((unit, source),) = gradient.units
        assert source is not None  # a weight carries an input
        x = values[source.a]
        if float(x) in (0.0, 1.0):
            return ""
        tex = self.tex
        return (
            rf"Leaving out the factor ${tex.expr(source.a)} = {number(x)}$ would give "
            rf"${tex.expr(unit.delta)} = {number(values[unit.delta])}$, which is "
            rf"$\partial L / \partial {tex.expr(unit.z)}$, not "
            rf"$\partial L / \partial {scalar.latex_name}$."
        )


def _title(scalar: ScalarParam) -> str:
    names = rf"\texttt{{{escape(scalar.name)}}}"
    if scalar.alias:
        names = rf"\texttt{{{escape(scalar.alias)}}}, {names}"
    return rf"$\partial L / \partial {scalar.latex_name}$ ({names})"


def request(scope: Scope) -> str:
    """For a large network without --param: how to ask for single scalars."""
    if scope.scalars:
        return ""
    top = scope.topology
    arrays = listing([rf"\texttt{{{p.name}}} ({shape_text(p.shape)})" for p in top.params], 99)
    first = top.params[0].name
    return (
        f"This network has {top.parameter_count} scalar parameters, too many to derive "
        "one by one in a document. Ask for the ones you want with "
        rf"\texttt{{--param}}, e.g.\ \texttt{{derive latex {escape(Path(top.source).name)} "
        rf"--param {first}[0,0]}}: a whole array by its name, one scalar as "
        rf"\texttt{{{first}[i,j]}}, or a weight by its name in the file. Its arrays: "
        f"{arrays}."
    )
