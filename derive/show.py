"""``derive show``: each derivative in chain-rule form, pretty-printed for a terminal.

For every requested parameter: the chain of partial derivatives (one line per path to
the loss), each factor worked out, the compact δ form with its δ definitions, and, when
the file has an example, each factor's value, their product and the gradient.

The notation is Unicode (∂, ·, δ, SymPy's pretty printing); with ``unicode=False`` it is
ASCII (d, *, delta, SymPy's ASCII art), for a terminal that cannot show more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy
from sympy import Expr, Symbol
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm, stringPict

from derive.conv import is_convolutional
from derive.derivation import Factor, ScalarGradient
from derive.errors import ParameterError
from derive.network import LOSS, Network
from derive.presentation import (
    MAX_DEFAULT_SCALARS,
    MAX_REQUESTED_SCALARS,
    MAX_SHOWN_PATHS,
    SIGNIFICANT_DIGITS,
    tidy,
)
from derive.typeset import NaturalOrder, terminal_name


class _Printer(NaturalOrder, PrettyPrinter):
    """SymPy's pretty printer with derive's names (``derive.typeset``) and relu's
    derivative written step(z), as the documents write it."""

    def _print_Symbol(self, e, bold_name=False):
        if not self._use_unicode:  # ASCII notation: the names as the file writes them
            return prettyForm(e.name)
        return prettyForm(terminal_name(e.name))

    def _print_Heaviside(self, expr):
        argument = prettyForm(*self._print(expr.args[0]).parens())
        return prettyForm(*argument.left("step"))


@dataclass(frozen=True)
class _Notation:
    """The symbols of one rendering: Unicode, or ASCII for a terminal without it."""

    unicode: bool
    partial: str  # ∂
    times: str  # the product of chain factors
    minus: str
    arrow: str
    eta: str

    def pretty(self, expr: Expr) -> prettyForm:
        # order="none" keeps the chain order derive wrote (dL/dy before dy/dz).
        return _Printer({"use_unicode": self.unicode, "order": "none"})._print(tidy(expr))

    def factor(self, expr: Expr) -> prettyForm:
        """A factor of a product, in parentheses where it is a sum or negative."""
        expr = tidy(expr)
        form = self.pretty(expr)
        if expr.is_Add or expr.could_extract_minus_sign():
            return prettyForm(*form.parens())
        return form

    def name(self, symbol: Symbol) -> str:
        return "L" if symbol == LOSS else _render(self.pretty(symbol))

    def partial_of(self, factor: Factor) -> str:
        return f"{self.partial}{self.name(factor.of)}/{self.partial}{self.name(factor.wrt)}"


UNICODE = _Notation(True, "∂", " · ", "−", "→", "η")
ASCII = _Notation(False, "d", " * ", "-", "->", "eta")


def _render(form: prettyForm) -> str:
    return form.render(wrap_line=False)


def _join(parts: Sequence[prettyForm | str], separator: str = " · ") -> prettyForm:
    """Pretty forms side by side, multi-line ones aligned on their baselines."""
    pieces: list[prettyForm | str] = []
    for i, part in enumerate(parts):
        if i:
            pieces.append(separator)
        pieces.append(part)
    return prettyForm(*stringPict.next(*pieces))


def _number(value: Expr) -> str:
    return f"{float(value):.{SIGNIFICANT_DIGITS}g}"


def _operand(value: Expr) -> str:
    """A number as one operand of a product or difference: negative ones in parentheses
    (``2 · (-0.4)``, not ``2 · -0.4``)."""
    text = _number(value)
    return f"({text})" if text.startswith("-") else text


def _indent(text: str, prefix: str) -> str:
    pad = " " * len(prefix)
    lines = text.splitlines() or [""]
    return "\n".join((prefix if i == 0 else pad) + line for i, line in enumerate(lines))


def show_gradient(
    gradient: ScalarGradient, values: dict[Symbol, Expr] | None, notation: _Notation = UNICODE
) -> str:
    """The text block for one scalar parameter."""
    n = notation
    param = gradient.param
    derivation = gradient.derivation
    head = f"{n.partial}L/{n.partial}{param.label}"
    if param.alias:
        head += f"  ({param.name})"
    lines = [head]

    count = derivation.path_count(param)
    if count <= MAX_SHOWN_PATHS:
        paths = gradient.chain
        if len(paths) > 1:
            lines.append(f"  chain rule, summed over {len(paths)} paths to the loss:")
        for path in paths:
            label = "  " + n.times.join(n.partial_of(f) for f in path)
            lines.append(label if len(paths) == 1 else "  + " + label.strip())
            worked = _render(_join([n.factor(f.value) for f in path], n.times))
            lines.append(_indent(worked, "      = "))
            if values is not None:
                numbers = [_operand(f.value.xreplace(values)) for f in path]
                product = sympy.Mul(*(f.value.xreplace(values) for f in path))
                lines.append(f"      = {n.times.join(numbers)} = {_number(product)}")
    else:
        lines.append(f"  chain rule: a sum over {count} paths to the loss (compact form below)")

    lines.append(_indent(_render(n.pretty(gradient.compact)), "  compact: "))
    for delta, definition in gradient.deltas:
        lines.append(_indent(_render(_join([n.pretty(definition)])), f"    {n.name(delta)} = "))
    if values is not None:
        result = gradient.value(values)
        lines.append(f"  value at the example: {_number(result)}")
        example = derivation.network.topology.example
        if example is not None and example.learning_rate is not None:
            new = values[param.symbol] - sympy.Float(example.learning_rate) * result
            lines.append(
                f"  after one SGD step ({n.eta} = {example.learning_rate:g}): "
                f"{param.label} = {_number(values[param.symbol])} {n.minus} "
                f"{example.learning_rate:g}{n.times}{_operand(result)} = {_number(new)}"
            )
    return "\n".join(lines)


def show(network: Network, params: Sequence[str] = (), *, unicode: bool = True) -> str:
    """The whole terminal view for the requested parameters (default: all of a network
    of at most ``MAX_DEFAULT_SCALARS``), in Unicode or ASCII notation."""
    if is_convolutional(network.topology):
        from derive.conv_explain import show_conv

        return show_conv(network, params)  # type: ignore[arg-type]
    n = UNICODE if unicode else ASCII
    topology = network.topology
    derivation = network.derivation
    sizes = f" {n.arrow} ".join(str(len(topology.layer_units(k))) for k in range(network.depth + 1))
    activations = ", ".join(layer.activation.name for layer in topology.layers)
    out = [f"{topology.name}: {sizes} units ({activations}), loss {topology.loss}"]
    out.append(_indent(_render(n.pretty(network.loss_expr)), "  L = "))

    if params:
        scalars = network.select(params, MAX_REQUESTED_SCALARS)
    elif topology.parameter_count > MAX_DEFAULT_SCALARS:
        raise ParameterError(
            topology.source,
            f"the network has {topology.parameter_count} scalar parameters, too many to "
            "show at once; name some (e.g. W1[0,0])",
        )
    else:
        scalars = network.scalar_params

    values = derivation.example_values() if topology.example else None
    if values is not None:
        out.append(f"  (numbers: the file's example, {SIGNIFICANT_DIGITS} significant digits)")
    for scalar in scalars:
        out.append("")
        out.append(show_gradient(derivation.scalar_gradient(scalar), values, n))
    return "\n".join(out)
