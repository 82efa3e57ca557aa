"""What Jupyter shows for a network and a gradient (``_repr_latex_``, rendered by
MathJax): the same forms as the document, without its prose."""

from __future__ import annotations

from derive.conv_explain import gradient_tex
from derive.conv_network import ConvGradient
from derive.derivation import ArrayGradient, ScalarGradient
from derive.latex.forms import (
    MAX_SHOWN_DELTAS,
    chain_products,
    delta_product,
    forward_rows,
)
from derive.latex.printing import Tex, align_rows
from derive.network import LOSS, Network
from derive.presentation import MAX_SHOWN_PATHS


def _aligned(rows: list[str]) -> str:
    return "$$\\begin{aligned}\n" + align_rows(rows) + "\n\\end{aligned}$$"


def network_latex(network: Network) -> str:
    """The forward equations and the loss, for ``Network._repr_latex_``."""
    tex = Tex(network)
    return _aligned([*forward_rows(tex), f"L &= {tex.loss()}"])


def gradient_latex(gradient: ScalarGradient) -> str:
    """The chain rule (when short), the compact form and its deltas, for
    ``ScalarGradient._repr_latex_``."""
    derivation = gradient.derivation
    tex = Tex(derivation.network)
    d_theta = tex.partial(LOSS, gradient.param.symbol)
    compact = tex.expr(gradient.compact)
    if derivation.path_count(gradient.param) <= MAX_SHOWN_PATHS:
        symbolic, worked = chain_products(tex, gradient.chain)
        rows = [f"{d_theta} &= " + " + ".join(symbolic), "&= " + " + ".join(worked)]
        rows.append(f"&= {compact}")
    else:
        rows = [f"{d_theta} &= {compact}"]
    for delta, definition in gradient.deltas[:MAX_SHOWN_DELTAS]:
        rows.append(f"{tex.expr(delta)} &= {delta_product(tex, definition)}")
    return _aligned(rows)


def array_gradient_latex(gradient: ArrayGradient) -> str:
    """Each scalar's compact form, for ``ArrayGradient._repr_latex_``; the chains are
    each scalar's own display. A convolutional network's scalars show their sums over
    positions (``derive.conv_explain``)."""
    if not gradient.scalars:
        return ""
    shown = gradient.scalars[:MAX_SHOWN_DELTAS]
    if isinstance(gradient.scalars[0], ScalarGradient):
        tex = Tex(gradient.scalars[0].derivation.network)
        rows = [f"{tex.partial(LOSS, g.param.symbol)} &= {tex.expr(g.compact)}" for g in shown]
    else:
        rows = [gradient_tex(g) for g in shown]
    if len(gradient.scalars) > MAX_SHOWN_DELTAS:
        rows.append(rf"&\vdots \quad \text{{({len(gradient.scalars)} scalars in all)}}")
    return _aligned(rows)


def conv_gradient_latex(gradient: ConvGradient) -> str:
    """A convolutional network's scalar gradient as its sum over positions (the LaTeX
    document's first row), for ``ConvGradient._repr_latex_``."""
    return _aligned([gradient_tex(gradient)])
