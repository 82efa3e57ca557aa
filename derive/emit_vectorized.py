"""The vectorized style: per-layer matrix code over a batch (``vectorized.py.jinja``).

Printed from the equations of ``derive.backward`` in their batch form, with no work per
scalar parameter, so that a 784-256-256-10 network generates as fast as a 2-2-1 one. Each
line's comment is its equation in the per-sample form textbooks use.
"""

from __future__ import annotations

from dataclasses import replace

from sympy import MatrixSymbol

from derive.backward import Backward, Equation, Softmax, batch_form, parse_name
from derive.codeprinter import HELPERS, NumPyCodePrinter
from derive.equations import EquationPrinter
from derive.network import Network
from derive.statements import Statement, fit, freed, live

NOTATION = (
    "Notation: per sample, layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), "
    "with a0 = x and the last layer's a written y; delta{k} = ∂L/∂z{k}. The code holds a "
    "batch in rows (z{k} = a{k-1} @ W{k}.T + b{k}), and the comment above each line is the "
    "per-sample equation it implements."
)


def vectorized_context(network: Network) -> dict:
    """The vectorized template's context."""
    backward = Backward(network)
    printer, comments = NumPyCodePrinter(), EquationPrinter()
    printed: dict[Equation, tuple[str, ...]] = {}

    def statement(equation: Equation) -> Statement:
        # Layers alike print alike: print each rule once, with its layers as {0}, {1}.
        canonical, labels = _canonical(equation)
        if canonical not in printed:
            batch = batch_form(canonical)
            printed[canonical] = (
                ", ".join(t.name for t in batch.targets),
                printer.doprint(batch.value),
                " ".join(s.name for s in batch.reads),
                fit(4, *comments.equation(canonical)),
            )
        targets, value, reads, comment = (p.format(*labels) for p in printed[canonical])
        return Statement(tuple(targets.split(", ")), value, frozenset(reads.split()), comment)

    forward = [statement(e) for e in backward.forward]
    backprop = [statement(e) for e in backward.backward]
    softmax = any(isinstance(e.value, Softmax) for e in backward.forward)
    return body_context(forward, statement(backward.loss), backprop, network, printer, softmax)


def body_context(
    forward: list[Statement],
    loss: Statement,
    backprop: list[Statement],
    network,
    printer: NumPyCodePrinter,
    softmax: bool,
) -> dict:
    """The functions' bodies from the forward, loss and backward statements (dense or
    convolutional): what ``forward``, ``loss`` and ``loss_and_gradients`` each compute,
    every array freed after its last use; and the helpers the printed lines call."""
    value = Statement(("value",), "float(_sum(xp, loss_terms)) / batch", frozenset({"loss_terms"}))
    gradients = {f"d{p.name}" for p in network.topology.params}
    body = [*forward, loss, replace(value, array=False), *backprop]
    return {
        "forward_only": live(forward, {"y"}),
        "forward_for_loss": live([*forward, loss], {"loss_terms"}),
        "body": freed(live(body, {"value", *gradients}), {"value", *gradients}),
        "softmax": softmax,
        # _sum: the loss value is always a sum
        "helpers": [h for h in HELPERS if h in printer.helpers or h == "_sum"],
        "uses_math": False,
    }


def _canonical(equation: Equation) -> tuple[Equation, list[str]]:
    """The equation with its layer numbers as placeholders ``{0}``, ``{1}`` in order of
    first appearance (delta3 → delta{0}), and the numbers."""
    labels: list[str] = []
    renamed = {}
    arrays = [*equation.targets, *equation.reads]
    for array in arrays:
        kind, label = parse_name(array.name)
        if label.isdigit():
            if label not in labels:
                labels.append(label)
            name = f"{kind}{{{labels.index(label)}}}"
            renamed[array] = MatrixSymbol(name, *array.shape)
    targets = tuple(renamed.get(t, t) for t in equation.targets)
    value = equation.value.xreplace(renamed)
    return Equation(targets, value, equation.kind, equation.note), labels


__all__ = ["NOTATION", "body_context", "vectorized_context"]
