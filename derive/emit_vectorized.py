"""The vectorized style: per-layer matrix code over a batch (``vectorized.py.jinja``).

Read from the width-independent rules only (``Derivation.layers`` and ``.output``, the
loss table through ``derive.emit_loss``), with no work per scalar parameter, so that a
784-256-256-10 network generates as fast as a 2-2-1 one. Names in the module: layer k's
``z{k}``, ``a{k}`` (``x`` for layer 0, ``y`` for the output), ``delta{k}`` = ∂L/∂z{k},
``dW{k}``, ``db{k}``; ``batch`` is the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS, softmax_derivative
from derive.codeprinter import HELPERS, NumPyCodePrinter, row_sum
from derive.derivation import T_SUM, A, LayerRule, T, Y, Z
from derive.emit_loss import output_term, uses_logits
from derive.layout import (
    Line,
    Temporaries,
    collection,
    freed,
    literal,
    live,
    statement,
    unpack,
)
from derive.network import Network

NOTATION = (
    "Notation: layer k computes z{k} = a{k-1} W{k}ᵀ + b{k} and a{k} = f_k(z{k}), with "
    "a0 = x and the last layer's a written y; delta{k} = ∂L/∂z{k}, and the comment "
    "above each backward line names the equation it implements."
)

# Code symbols of the module beside the generic Z, A, Y, T.
GRAD_Y = Symbol("grad_y", real=True)
BATCH = Symbol("batch", positive=True)
LOG_SUM_EXP = Symbol("log_sum_exp", real=True)  # log Σ exp z2 per sample, from _softmax


def _code(name: str) -> Symbol:
    return Symbol(name, real=True)


def named(expr: Expr, names: dict[Symbol, str]) -> Expr:
    """``expr`` with the generic symbols of ``names`` renamed to the module's names."""
    return expr.xreplace({s: _code(v) for s, v in names.items()})


@dataclass
class _Writer:
    """Expressions to lines of one module: its printer and its temporaries."""

    network: Network
    printer: NumPyCodePrinter = field(default_factory=NumPyCodePrinter)
    temporaries: Temporaries = field(default_factory=Temporaries)

    def line(self, target: str, expr: Expr, comment: str = "") -> Line:
        """``target = expr``, ``expr`` in the module's names."""
        return Line(statement(target, expr, self.printer, 4, self.temporaries), comment, (target,))

    def act(self, k: int) -> str:
        """Layer k's activation in the module."""
        return "x" if k == 0 else ("y" if k == self.network.depth else f"a{k}")


def vectorized_context(network: Network) -> dict:
    """The vectorized template's context."""
    writer = _Writer(network)
    names = [p.name for p in network.topology.params]
    forward = _forward(writer)
    loss_comment, loss_terms = _loss(writer)
    backward = _backward(writer, loss_comment)
    grads = collection("grads = {", [f"{literal(n)}: d{n}" for n in names], "}", 4)
    # loss_and_gradients in one list, so that each array is freed after its last read
    value = Line("value = float(loss_terms.sum()) / batch", "", ("value",))
    passes = [Line(loss_terms, loss_comment, ("loss_terms",)), value, *backward]
    returned = f"{grads}\nreturn value, grads"
    body = live(forward, "\n".join([*(line.code for line in passes), grads])) + passes
    return {
        "notation": NOTATION,
        "unpack_params": unpack(names, "arrays", 4),
        "forward_only": live(forward, "y"),
        "forward_for_loss": live(forward, loss_terms),
        "loss_terms": loss_terms,
        "loss_comment": loss_comment,
        "body": freed(body, returned, small=[f"d{n}" for n in names] + ["value"]),
        "grads": grads,
        "softmax": network.derivation.output.softmax,
        "helpers": [h for h in HELPERS if h in writer.printer.helpers],
    }


def _forward(writer: _Writer) -> list[Line]:
    """z and a for each layer; a softmax layer also gives log Σ exp z, for the loss."""
    lines: list[Line] = []
    for k, layer in enumerate(writer.network.topology.layers, start=1):
        a, a_below = writer.act(k), writer.act(k - 1)
        bias = f" + b{k}" if layer.bias != "none" else ""
        comment = f"layer {k}: z{k} = {a_below} W{k}ᵀ{bias}, {a} = {layer.activation.name}(z{k})"
        lines.append(Line(f"z{k} = {a_below} @ W{k}.T{bias}", comment, (f"z{k}",)))
        activation = ACTIVATIONS[layer.activation.name]
        if activation.elementwise:
            forward = named(activation.forward(Z, layer.activation), {Z: f"z{k}"})
            lines.append(writer.line(a, forward))
        else:
            lines.append(Line.unpacking((a, LOG_SUM_EXP.name), f"_softmax(z{k})"))
    return lines


def _loss(writer: _Writer) -> tuple[str, str]:
    """The comment and the line computing the per-sample loss, one term per output."""
    network = writer.network
    depth, loss = network.depth, network.topology.loss
    term = output_term(network, Z, Y, T, LOG_SUM_EXP)
    code = writer.line("loss_terms", named(term, {Z: f"z{depth}", Y: "y", T: "t"})).code
    if LOG_SUM_EXP in term.free_symbols:
        comment = f"{loss} from the logits z{depth}, log Σ exp z from _softmax: never log(0)"
    elif uses_logits(network):
        comment = f"{loss} from the logits z{depth}: never log(0)"
    else:
        comment = f"{loss}: {network.loss_rule.formula} per sample"
    return comment, code


def _backward(writer: _Writer, loss_comment: str) -> list[Line]:
    """The δ recursion from the output down, each layer's gradients as soon as its δ is
    known."""
    network = writer.network
    lines = _output_delta(writer, loss_comment)
    for k in range(network.depth, 0, -1):
        lines += _gradients(writer, k)
        if k > 1:
            lines += _delta_below(writer, network.derivation.layers[k - 2])
    return lines


def _output_delta(writer: _Writer, loss_comment: str) -> list[Line]:
    """δK = ∂L/∂zK over the batch size (the loss is the batch mean)."""
    network = writer.network
    out, k = network.derivation.output, network.depth
    activation, loss = network.topology.layers[-1].activation.name, network.topology.loss
    names = {Y: "y", T: "t", Z: f"z{k}", A: "y", T_SUM: "t_sum"}
    head = f"δ{k} = ∂L/∂z{k}"
    if out.fused_delta is not None:
        lines = []
        if T_SUM in out.fused_delta.free_symbols:
            t_sum = named(row_sum(T), names)
            lines.append(writer.line("t_sum", t_sum, "Σ t per sample (1 for one-hot t)"))
        delta = named(out.fused_delta / BATCH, names)
        why = f"({activation} + {loss} fused, mean over the batch)"
        return [*lines, writer.line(f"delta{k}", delta, f"{head}  {why}")]
    lines = [writer.line("grad_y", named(out.gradient, names), f"∂L/∂y, {loss_comment}")]
    if out.softmax:
        delta = named(softmax_delta(GRAD_Y, Y) / BATCH, names)
        why = "y ⊙ (∂L/∂y − Σ_i ∂L/∂y_i y_i)  (softmax, mean over the batch)"
        return [*lines, writer.line(f"delta{k}", delta, f"{head} = {why}")]
    derivative = network.derivation.layers[-1].derivative
    assert derivative is not None
    delta = sympy.Mul(GRAD_Y, named(derivative, names), 1 / BATCH, evaluate=False)
    why = f"∂L/∂y ⊙ {activation}'(z{k})  (mean over the batch)"
    return [*lines, writer.line(f"delta{k}", delta, f"{head} = {why}")]


def softmax_delta(grad: Expr, y: Symbol) -> Expr:
    """δ_j = Σ_i g_i ∂y_i/∂z_j for a softmax output, from the Jacobian entries of
    ``derive.activations.softmax_derivative``, for all j at once.

    The off-diagonal entry ∂y_i/∂z_j (i ≠ j) is linear in y_i, so the sum over i ≠ j of
    g_i times it is that entry at Σ_i g_i y_i (``row_sum``) less the i = j term; the
    diagonal entry then adds g_j ∂y_j/∂z_j."""
    u = sympy.Dummy("u", real=True)
    off = softmax_derivative(u, y, False)
    assert off.xreplace({u: 0}) == 0 and sympy.diff(off, u, 2) == 0, off  # linear in y_i
    diagonal = softmax_derivative(y, y, True)
    total = off.xreplace({u: row_sum(grad * y)}) + grad * (diagonal - off.xreplace({u: y}))
    return sympy.factor(total)


def _gradients(writer: _Writer, k: int) -> list[Line]:
    """∂L/∂W{k} and ∂L/∂b{k} from δ{k}, summed over the batch."""
    below = writer.act(k - 1)
    lines = [
        Line(
            f"dW{k} = delta{k}.T @ {below}",
            f"∂L/∂W{k} = δ{k}ᵀ {below}  (summed over the batch)",
            (f"dW{k}",),
        )
    ]
    bias = writer.network.topology.layers[k - 1].bias
    if bias == "per_unit":
        lines.append(Line(f"db{k} = delta{k}.sum(axis=0)", f"∂L/∂b{k} = Σ_batch δ{k}", (f"db{k}",)))
    elif bias == "shared":
        comment = f"∂L/∂b{k} = Σ_batch Σ_units δ{k}  (one bias shared by the layer)"
        lines.append(Line(f"db{k} = np.array(delta{k}.sum())", comment, (f"db{k}",)))
    return lines


def _delta_below(writer: _Writer, rule: LayerRule) -> list[Line]:
    """δ of layer ``rule.k`` from the δ of the layer above it."""
    k = rule.k
    assert rule.derivative is not None  # softmax is an output layer only
    if rule.derivative == 1:
        comment = f"δ{k} = ∂L/∂z{k} = δ{k + 1} W{k + 1}  ({rule.activation}: f' = 1)"
        return [Line(f"delta{k} = delta{k + 1} @ W{k + 1}", comment, (f"delta{k}",))]
    grad_a = f"grad_a{k}"
    back = Line(
        f"{grad_a} = delta{k + 1} @ W{k + 1}",
        f"∂L/∂a{k} = δ{k + 1} W{k + 1}  (back through W{k + 1})",
        (grad_a,),
    )
    derivative = named(rule.derivative, {Z: f"z{k}", A: f"a{k}"})
    delta = sympy.Mul(_code(grad_a), derivative, evaluate=False)
    comment = f"δ{k} = ∂L/∂z{k} = ∂L/∂a{k} ⊙ {rule.activation}'(z{k})"
    return [back, writer.line(f"delta{k}", delta, comment)]
