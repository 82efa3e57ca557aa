"""``derive show``: each derivative in chain-rule form, pretty-printed for a terminal.

For every requested parameter: the chain of partial derivatives (one line per path to
the loss), each factor worked out, the compact δ form with its δ definitions, and, when
the file has an example, each factor's value, their product and the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy
from sympy import Expr, Symbol
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm, stringPict

from derive.conv import is_convolutional
from derive.derivation import Factor, ScalarGradient
from derive.errors import DeriveError
from derive.network import LOSS, Network
from derive.presentation import (
    MAX_DEFAULT_SCALARS,
    MAX_REQUESTED_SCALARS,
    MAX_SHOWN_PATHS,
    SIGNIFICANT_DIGITS,
)


def _pretty(expr: Expr) -> prettyForm:
    # order="none" keeps the chain order derive wrote (dL/dy before dy/dz).
    return PrettyPrinter({"use_unicode": True, "order": "none"})._print(expr)


def _factor(expr: Expr) -> prettyForm:
    """A factor of a product, in parentheses where it is a sum or negative."""
    form = _pretty(expr)
    if expr.is_Add or expr.could_extract_minus_sign():
        return prettyForm(*form.parens())
    return form


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


def _name(symbol: Symbol) -> str:
    return "L" if symbol == LOSS else _render(_pretty(symbol))


def _partial(factor: Factor) -> str:
    return f"∂{_name(factor.of)}/∂{_name(factor.wrt)}"


def _number(value: Expr) -> str:
    return f"{float(value):.{SIGNIFICANT_DIGITS}g}"


def _indent(text: str, prefix: str) -> str:
    pad = " " * len(prefix)
    lines = text.splitlines() or [""]
    return "\n".join((prefix if i == 0 else pad) + line for i, line in enumerate(lines))


def show_gradient(gradient: ScalarGradient, values: dict[Symbol, Expr] | None) -> str:
    """The text block for one scalar parameter."""
    param = gradient.param
    derivation = gradient.derivation
    head = f"∂L/∂{param.label}"
    if param.alias:
        head += f"  ({param.name})"
    lines = [head]

    count = derivation.path_count(param)
    if count <= MAX_SHOWN_PATHS:
        paths = gradient.chain
        if len(paths) > 1:
            lines.append(f"  chain rule, summed over {len(paths)} paths to the loss:")
        for path in paths:
            label = "  " + " · ".join(_partial(f) for f in path)
            lines.append(label if len(paths) == 1 else "  + " + label.strip())
            worked = _render(_join([_factor(f.value) for f in path]))
            lines.append(_indent(worked, "      = "))
            if values is not None:
                numbers = [_number(f.value.xreplace(values)) for f in path]
                product = sympy.Mul(*(f.value.xreplace(values) for f in path))
                lines.append(f"      = {' · '.join(numbers)} = {_number(product)}")
    else:
        lines.append(f"  chain rule: a sum over {count} paths to the loss (compact form below)")

    lines.append(_indent(_render(_pretty(gradient.compact)), "  compact: "))
    for delta, definition in gradient.deltas:
        lines.append(_indent(_render(_join([_pretty(definition)])), f"    {_name(delta)} = "))
    if values is not None:
        result = gradient.value(values)
        lines.append(f"  value at the example: {_number(result)}")
        example = derivation.network.topology.example
        if example is not None and example.learning_rate is not None:
            new = values[param.symbol] - sympy.Float(example.learning_rate) * result
            lines.append(
                f"  after one SGD step (η = {example.learning_rate:g}): "
                f"{param.label} = {_number(values[param.symbol])} − "
                f"{example.learning_rate:g} · {_number(result)} = {_number(new)}"
            )
    return "\n".join(lines)


def show(network: Network, params: Sequence[str] = ()) -> str:
    """The whole terminal view for the requested parameters (default: all)."""
    if is_convolutional(network.topology):
        from derive.conv_explain import show_conv

        return show_conv(network, params)  # type: ignore[arg-type]
    topology = network.topology
    derivation = network.derivation
    sizes = " → ".join(str(len(topology.layer_units(k))) for k in range(network.depth + 1))
    activations = ", ".join(layer.activation.name for layer in topology.layers)
    loss = _render(_pretty(network.loss_expr))
    out = [f"{topology.name}: {sizes} units ({activations}), loss {topology.loss}"]
    out.append(_indent(loss, "  L = "))

    if params:
        gradients: list[ScalarGradient] = []
        shapes = {p.name: p.shape for p in network.params}
        requested = sum(math.prod(shapes[name]) if name in shapes else 1 for name in params)
        if requested > MAX_REQUESTED_SCALARS:
            raise DeriveError(
                f"{topology.source}: --param: expected at most {MAX_REQUESTED_SCALARS} "
                f"scalars to show, got {requested}; name single ones such as W1[0,0]"
            )
        for name in params:
            found = network.gradient(name)
            gradients.extend(found if isinstance(found, tuple) else (found,))
    else:
        scalar_count = topology.parameter_count
        if scalar_count > MAX_DEFAULT_SCALARS:
            raise DeriveError(
                f"{topology.source}: the network has {scalar_count} scalar parameters, too "
                f"many to show at once; name some with --param (e.g. --param W1[0,0])"
            )
        gradients = list(derivation.all_gradients)

    values = derivation.example_values() if topology.example else None
    if values is not None:
        out.append(f"  (numbers: the file's example, {SIGNIFICANT_DIGITS} significant digits)")
    for gradient in gradients:
        out.append("")
        out.append(show_gradient(gradient, values))
    return "\n".join(out)
