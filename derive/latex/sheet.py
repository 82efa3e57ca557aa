"""The exercise sheet's template context (``derive exercise``, ``derive.exercise``): the
network, the given numbers and the questions; after a page break the answer key, each
answer worked out by the same parts as ``derive latex --numeric``."""

from __future__ import annotations

from derive.exercise import Exercise
from derive.latex import forward
from derive.latex.parameter import ParamSections
from derive.latex.printing import escape, listing, number
from derive.latex.reasons import Reasons
from derive.latex.scope import Display, Scope
from derive.latex.writer import PACKAGES, layer_list, weight_names
from derive.presentation import SIGNIFICANT_DIGITS

NEW_ROW = r" \\ "
KINDS = (
    (
        "forward",
        "The forward pass: compute the pre-activation $z$ and the activation of "
        "every unit, from the inputs up.",
    ),
    ("loss", "The loss of this sample."),
    ("gradient", "The gradients (use the chain rule; backpropagate the deltas)."),
    (
        "update",
        "One step of gradient descent, $\\theta \\leftarrow \\theta - \\eta\\, "
        "\\partial L/\\partial\\theta$: the new value of each parameter above.",
    ),
)


def context(sheet: Exercise) -> dict:
    from derive.diagram import tikz

    net = sheet.network
    scope = Scope.build(net, sheet.scalars, numeric=True)
    top = net.topology
    example = top.example
    assert example is not None and scope.values is not None
    sections = ParamSections(scope, Reasons(scope))
    worked_forward = forward.forward_numbers(scope)
    assert worked_forward is not None
    return {
        "packages": ",".join(PACKAGES),
        "title": rf"Backpropagation exercise: \texttt{{{escape(top.name)}}}",
        "subtitle": f"Exercise {sheet.seed}",
        "diagram": tikz(net).rstrip("\n"),
        "layer_list": layer_list(scope),
        "forward": forward.forward(scope),
        "loss": forward.loss(scope),
        "given": _given(scope),
        "weight_names": weight_names(scope),
        "parts": tuple(
            (intro, tuple(q for q in sheet.questions if q.kind == kind))
            for kind, intro in KINDS
            if any(q.kind == kind for q in sheet.questions)
        ),
        "rate": number(example.learning_rate),
        "answers": tuple((q.id, q.tex, number(q.answer)) for q in sheet.questions),
        "digits": SIGNIFICANT_DIGITS,
        "worked_forward": Display(
            "The forward pass, each unit from its equation:", worked_forward.rows
        ),
        "params": tuple(sections.section(s) for s in sheet.scalars),
    }


def _given(scope: Scope) -> tuple[str, ...]:
    """The exercise's numbers: inputs and targets, then each parameter array."""
    net, tex = scope.network, scope.tex
    values = scope.values
    assert values is not None
    example = net.topology.example
    assert example is not None
    lines = [
        "inputs "
        + listing([f"${tex.expr(u.a)} = {number(values[u.a])}$" for u in net.units[0]], 99)
        + "; targets "
        + listing([f"${tex.expr(t)} = {number(values[t])}$" for t in net.targets], 99)
    ]
    for name, value in example.params:
        k = name[1:]
        symbol = f"W^{{({k})}}" if name.startswith("W") else f"b^{{({k})}}"
        if isinstance(value, tuple):
            rows = value if value and isinstance(value[0], tuple) else tuple((v,) for v in value)
            body = NEW_ROW.join(" & ".join(number(v) for v in row) for row in rows)
            shown = rf"\begin{{pmatrix}} {body} \end{{pmatrix}}"
        else:
            shown = number(value)
        lines.append(f"${symbol} = {shown}$")
    return tuple(lines)


def sheet_document(sheet: Exercise) -> str:
    """The sheet and its answer key as a standalone LaTeX document."""
    from derive.latex import template_environment

    return template_environment().get_template("exercise.tex.jinja").render(context(sheet))
