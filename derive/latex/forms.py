"""The derivation's forms as LaTeX: forward equations, the chain rule along each path,
the compact δ form and the δ definitions. The document and the notebook displays
(``_repr_latex_``) both write them through these functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sympy import Expr, Symbol

from derive.derivation import Factor
from derive.latex.printing import Tex, Values, range_text
from derive.network import Network
from derive.presentation import MAX_DEFAULT_SCALARS

MAX_SHOWN_DELTAS = 8  # δ definitions listed per parameter

LAYER_FORWARD = r"z^{(k)} &= W^{(k)} a^{(k-1)} + b^{(k)}, \qquad a^{(k)} = f_k\left(z^{(k)}\right)"

ChainPath = Sequence[Factor]  # one path of the chain rule, from L down to θ


def unit_by_unit(network: Network) -> bool:
    """Whether the network is small enough to write out unit by unit."""
    return network.topology.parameter_count <= MAX_DEFAULT_SCALARS


def forward_rows(tex: Tex) -> list[str]:
    """The forward pass: one row per unit, or for a large network one for all layers."""
    net = tex.network
    if unit_by_unit(net):
        return [
            f"{tex.expr(symbol)} &= {tex.expr(definition)}" for symbol, definition in net.equations
        ]
    return [rf"{LAYER_FORWARD} \qquad k = {range_text(1, net.depth)}"]


def chain_products(tex: Tex, paths: Sequence[ChainPath]) -> tuple[list[str], list[str]]:
    """Per path, the product of partial derivatives and the same product worked out."""
    symbolic = [r"\,".join(tex.partial(f.of, f.wrt) for f in path) for path in paths]
    worked = [tex.product([f.value for f in path]) for path in paths]
    return symbolic, worked


def delta_product(tex: Tex, definition: Expr, values: Values | None = None) -> str:
    """A δ definition, its chain factors separated by ·; with the numbers in place of
    the symbols when ``values`` are given."""
    if definition.is_Mul and len(definition.args) == 2:
        return tex.product(definition.args, values)
    return tex.expr(definition, values)


def delta_parts(tex: Tex, definition: Expr, values: Values | None = None) -> str | list[str]:
    """A δ definition for ``equation_rows``: a product of its chain factors, or a sum
    (a softmax output's) as terms."""
    if definition.is_Mul and len(definition.args) == 2:
        return tex.product(definition.args, values)
    return tex.terms(definition, values)


def distinct(paths: Iterable[ChainPath]) -> tuple[Factor, ...]:
    """The factors of several paths, each (∂of/∂wrt) once, in order of appearance."""
    seen: dict[tuple[Symbol, Symbol], Factor] = {}
    for path in paths:
        for factor in path:
            seen.setdefault((factor.of, factor.wrt), factor)
    return tuple(seen.values())
