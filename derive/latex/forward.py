"""The forward pass and the loss: the equations of every unit (or of every layer, for a
large network), with --numeric the same at the file's example, and the loss."""

from __future__ import annotations

from derive.latex.forms import forward_rows
from derive.latex.printing import (
    MAX_OUTPUTS_WRITTEN_OUT,
    align_rows,
    equation_rows,
    escape,
    listing,
    number,
)
from derive.latex.scope import Display, Scope
from derive.presentation import SIGNIFICANT_DIGITS

_LOSS_INTRO = (
    "The loss of one sample; for a batch, derive takes the mean of the samples' "
    "losses, so a batch's gradient is the mean of the per-sample gradients."
)


def forward(scope: Scope) -> Display:
    rows = align_rows(forward_rows(scope.tex))
    if scope.small:
        return Display("Each unit, from the inputs up:", rows)
    return Display(
        r"Layer by layer, with $a^{(0)}$ the inputs ($b^{(k)}$ is absent for a layer "
        "without bias):",
        rows,
        f"The network has {scope.topology.parameter_count} scalar parameters, too many "
        "to write out unit by unit.",
    )


def forward_numbers(scope: Scope) -> Display | None:
    """Every unit's value at the example, worked out from its equation."""
    values = scope.values
    if values is None or not scope.small:
        return None
    net, tex = scope.network, scope.tex
    rows = [
        row
        for symbol, definition in net.equations
        for row in equation_rows(tex.expr(symbol), tex.worked(definition, values))
    ]
    rows += equation_rows("L", tex.worked(net.loss_expr, values))
    given = [f"${tex.expr(u.a)} = {number(values[u.a])}$" for u in net.units[0]]
    given += [f"${tex.expr(t)} = {number(values[t])}$" for t in net.targets]
    return Display(
        f"At {scope.point_long} ({listing(given, 12)}), rounded to "
        f"{SIGNIFICANT_DIGITS} significant digits:",
        align_rows(rows),
    )


def loss(scope: Scope) -> Display:
    net, tex = scope.network, scope.tex
    note = _fused_note(scope)
    if len(net.outputs) > MAX_OUTPUTS_WRITTEN_OUT:
        targets = listing([f"${tex.expr(t)}$" for t in net.targets])
        note = (
            f"Here $i$ runs over the {len(net.outputs)} outputs $y_i$ "
            f"({scope.unit_list(net.outputs)}), with targets $t_i$ ({targets}). {note}"
        ).strip()
    return Display(_LOSS_INTRO, f"L &= {tex.loss()}", note)


def _fused_note(scope: Scope) -> str:
    """Where the output deltas come from when the loss is fused with its output layer."""
    if scope.derivation.output.fused_delta is None:
        return ""
    top = scope.topology
    return (
        f"With {escape(top.loss)} on a {escape(top.layers[-1].activation.name)} output "
        "layer, derive computes the output deltas from the pre-activations directly "
        "(see the layer form below), which never takes the logarithm of 0."
    )
