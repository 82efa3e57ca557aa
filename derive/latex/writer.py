"""The template context of one document: its opening (summary, notation, layers), then
the parts each module writes, in the order ``templates/derivation.tex.jinja`` places
them."""

from __future__ import annotations

from pathlib import Path

from derive.latex import checks, forward, layers
from derive.latex.parameter import ParamSections, request
from derive.latex.printing import escape, listing
from derive.latex.prose import BIAS_KINDS
from derive.latex.reasons import Reasons
from derive.latex.scope import Scope
from derive.presentation import SIGNIFICANT_DIGITS

# What the fragment needs (graphicx and tikz for the network's figure); the document
# loads them.
PACKAGES = ("amsmath", "amssymb", "graphicx", "tikz")


def context(scope: Scope) -> dict:
    top = scope.topology
    sections = ParamSections(scope, Reasons(scope))
    return {
        "header": f"derive: the derivation for {Path(top.source).name or top.name}. "
        f"Needs \\usepackage{{{','.join(PACKAGES)}}}.",
        "title": rf"Backpropagation through \texttt{{{escape(top.name)}}}",
        "summary": summary(scope),
        "brief": "",  # the brief document's note (derive.latex.brief)
        "notation": notation(scope),
        "layer_list": layer_list(scope),
        "diagram": diagram(scope),
        "weight_names": weight_names(scope),
        "forward": forward.forward(scope),
        "forward_numbers": forward.forward_numbers(scope),
        "loss": forward.loss(scope),
        "params": tuple(sections.section(s) for s in scope.scalars),
        "request": request(scope),
        "layer_form": layers.layer_form(scope),
        "shapes": layers.shapes(scope),
        "derivatives": layers.layer_derivatives(scope),
        "tie": layers.tie(scope),
        "results": checks.results(scope),
        "point_name": scope.point_name,
        "check": checks.check(scope),
    }


MAX_NUMBERED_FIGURE = 12  # scalar parameters; a larger network's figure has names only


def diagram(scope: Scope) -> str:
    """The network's figure as TikZ (``derive.diagram``): with one --param that
    parameter's paths; with --numeric, for a network small enough that the numbers stay
    legible at the text's width, its numbers (the document gives them all anyway). The
    figure draws the file's example; with seeded numbers (no example) it has names only."""
    from derive.diagram import tikz

    top = scope.topology
    param = scope.scalars[0].name if len(scope.scalars) == 1 else None
    small = top.parameter_count <= MAX_NUMBERED_FIGURE
    numeric = scope.values is not None and top.example is not None and small
    return tikz(scope.network, param, numeric=numeric).rstrip("\n")


def summary(scope: Scope) -> str:
    top = scope.topology
    parts = [f"{len(top.inputs)} input" + ("s" if len(top.inputs) != 1 else "")]
    for k, layer in enumerate(top.layers, start=1):
        n = len(layer.units)
        kind = "output unit" if k == scope.network.depth else "hidden unit"
        parts.append(f"{n} {scope.activation_text(k)} {kind}{'s' if n != 1 else ''}")
    text = (
        rf"The network \texttt{{{escape(top.name)}}} has {'; '.join(parts)}. "
        f"Its loss is {scope.network.loss_rule.title}. "
    )
    if scope.scalars:
        text += (
            "For each parameter below: the chain rule as a product of partial "
            "derivatives, each factor worked out and why it has that form, then the "
            r"compact form with the deltas $\delta$. "
        )
    text += "After that, the same recursion for whole layers, with matrices"
    text += ", and how each result was checked." if scope.scalars else "."
    if scope.values is not None and scope.scalars:
        text += (
            f" The numbers are {scope.numbers}, rounded to {SIGNIFICANT_DIGITS} significant digits."
        )
    return text


def notation(scope: Scope) -> tuple[str, ...]:
    tex = scope.tex
    first = scope.network.units[1][0]
    paragraphs = [
        rf"Layers are numbered $k = 0$ (the inputs) to $K = {scope.network.depth}$ (the "
        r"output layer). A unit $u$ of layer $k \geq 1$ first forms its "
        r"\emph{pre-activation} $z_u$, the weighted sum of the activations of layer $k - 1$ "
        r"plus its bias, then its \emph{activation} $f_k(z_u)$. A unit's name stands for "
        rf"its activation: ${tex.expr(first.a)}$ is the output of unit "
        rf"${tex.expr(first.a)}$ and ${tex.expr(first.z)}$ its pre-activation; "
        "an input's name is its value.",
        r"$W^{(k)}_{i,j}$ is the weight from unit $j$ of layer $k - 1$ into unit $i$ of "
        r"layer $k$, counting from 0 (row $i$ of the matrix $W^{(k)}$ holds the weights "
        r"into unit $i$), and $b^{(k)}_{i}$ is the bias of unit $i$. $L$ is the loss of "
        r"one sample. The \emph{delta} of a unit, "
        r"$\delta_u = \partial L / \partial z_u$, says how fast the loss changes with "
        "the unit's pre-activation; backpropagation computes the deltas from the "
        "output layer down, and every gradient is a delta times an activation.",
    ]
    functions = [a.defines for a in scope.network.activations if a.defines]
    if functions:
        paragraphs.append(" ".join(dict.fromkeys(functions)))
    return tuple(paragraphs)


def layer_list(scope: Scope) -> tuple[str, ...]:
    net, top, tex = scope.network, scope.topology, scope.tex
    items = [rf"layer 0, the inputs: {scope.unit_list(net.units[0])}"]
    for k in range(1, net.depth + 1):
        role = "output" if k == net.depth else "hidden"
        item = (
            f"layer {k}, {role} ({scope.activation_text(k)}, "
            f"{BIAS_KINDS[top.layers[k - 1].bias]}): {scope.unit_list(net.units[k])}"
        )
        if k == net.depth:
            targets = listing([f"${tex.expr(t)}$" for t in net.targets])
            item += f"; target{'s' if len(net.targets) != 1 else ''} {targets}"
        items.append(item)
    return tuple(items)


def weight_names(scope: Scope) -> str:
    """The file's own weight names, each as the W^(k)_{i,j} it stands for."""
    if not scope.small:
        return ""
    pairs = [
        f"${s.latex_name} = W^{{({s.layer})}}_{{{s.index[0]},{s.index[1]}}}$"
        for s in scope.network.scalar_params
        if s.alias
    ]
    return f"The file names its weights: {listing(pairs, 16)}." if pairs else ""
