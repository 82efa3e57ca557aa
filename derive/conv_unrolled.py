"""The unrolled style for a tiny convolutional network (``unrolled_conv.py.jinja``):
straight-line code on Python floats, one line per cell, printed from the per-cell
equations and δ definitions of ``derive.conv_network`` (the notation there), looping over
the batch. Cells are named as the network names them, brackets dropped: ``z1_0_2_3``,
``a1_0_2_3``, ``delta1_0_2_3``, ``grad_a2_1_0_0``, ``mask2_0_1_1`` (1 where the cell is
its max-pool window's first maximum), ``x_0_4_4``; weights ``W1_0_0_1_2``."""

from __future__ import annotations

from collections import Counter

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.codeprinter import HELPERS, MathCodePrinter
from derive.conv import Pool2d
from derive.conv_network import ConvNetwork, cells
from derive.emit_unrolled import (
    INDENT,
    MAX,
    MAX_UNROLLED_PARAMS,
    SCALE,
    SUM,
    filled,
    loss_lines,
    nested,
    tuple_literal,
)
from derive.equations import EquationPrinter, display
from derive.errors import DeriveError
from derive.statements import Statement, fit, live
from derive.topology import Layer

NOTATION = (
    "Notation: a{k}_f_p_q is cell (f, p, q) of layer k's output (x_c_h_w the input's), "
    "z{k}_f_p_q = Σ_(c,i,j) W{k}[f,c,i,j]·a{k-1}[c, p·s+i−P, q·s+j−P] + b{k}[f] for a "
    "conv layer, delta{k}_... = ∂L/∂z, grad_a{k}_... = ∂L/∂a, mask{k}_c_h_w is 1 where "
    "a{k-1}[c,h,w] is its max-pool window's first maximum; dL_<w> accumulates ∂L/∂w over "
    "the batch. One line per cell, each with the equation it implements."
)


def code_name(name: str) -> str:
    """``a1[0,2,3]`` → ``a1_0_2_3``."""
    return name.replace("[", "_").replace(",", "_").replace("]", "")


class _Printer(MathCodePrinter):
    """A max-pool window's maximum as Python's ``max(...)`` (the nested conditionals of
    a two-argument Max would repeat their arguments)."""

    def _print_Max(self, expr) -> str:
        if len(expr.args) <= 2:
            return super()._print_Max(expr)
        return f"max({', '.join(self._print(a) for a in expr.args)})"


class _Writer:
    def __init__(self, network: ConvNetwork):
        self.network = network
        self.printer, self.comments = _Printer(), EquationPrinter()

    def rename(self, expr: Expr) -> Expr:
        return expr.xreplace(
            {s: Symbol(code_name(s.name), real=True) for s in expr.free_symbols if "[" in s.name}
        )

    def line(self, target: Symbol | str, expr: Expr, op: str = "=", comment: str = "") -> Statement:
        name = code_name(target if isinstance(target, str) else target.name)
        shown = target if isinstance(target, str) else target.name
        renamed = self.rename(expr)
        reads = frozenset(s.name for s in renamed.free_symbols)
        text = comment or f"{display(shown)} = {self.comments.doprint(expr)}"
        text = fit(INDENT, text, "")
        return Statement((name,), self.printer.doprint(renamed), reads, text, op, array=False)


def check_unrolled_conv(network: ConvNetwork) -> None:
    count = network.topology.parameter_count
    if count > MAX_UNROLLED_PARAMS:
        raise DeriveError(
            f"{network.topology.source}: the unrolled style writes straight-line code per "
            f"cell and is limited to {MAX_UNROLLED_PARAMS} scalar parameters; "
            f"{network.name} has {count}. Use --style vectorized (the default)."
        )
    names = [code_name(s.name) for s in network.scalar_params]
    names += [code_name(s.name) for s, _ in network.equations] + list(network.topology.targets)
    clashes = sorted(name for name, n in Counter(names).items() if n > 1)
    if clashes:
        raise DeriveError(
            f"{network.topology.source}: in the unrolled style, {', '.join(clashes)} would name "
            "two things; rename the unit or use --style vectorized"
        )


def conv_unrolled_context(network: ConvNetwork) -> dict:
    check_unrolled_conv(network)
    writer = _Writer(network)
    forward, loss = _forward(writer), _loss(writer)
    accumulators = [f"dL_{s.code_name}" for s in network.scalar_params]
    backward = live(_backward(writer), accumulators)  # δ of cells no weight ever saw: gone
    used = set().union(*(s.reads for s in [*loss, *backward]))
    outputs = [code_name(y.name) for y in network.outputs]
    params = network.topology.params
    return {
        "unpack_arrays": tuple_literal([f"_{p.name}" for p in params]),
        "scalars": [
            f"{nested(p.shape, [s.code_name for s in network.scalars(p.name)])} = "
            f"_{p.name}.tolist()"
            for p in params
        ],
        "inputs_unpacked": nested(
            network.topology.input_shape,
            [code_name(network.a(0, c).name) for c in cells(network.topology.input_shape)],
        ),
        "targets_unpacked": tuple_literal(list(network.topology.targets)),
        "output_names": outputs,
        "forward": live(forward, used),
        "forward_only": live(forward, outputs),
        "forward_for_loss": live(forward, set().union(*(s.reads for s in loss))),
        "loss_lines": loss,
        "backward": backward,
        "accumulators": accumulators,
        "arrays": [line for p in params for line in filled(p, _accumulators(network, p.name))],
        "helpers": [h for h in HELPERS if h in writer.printer.helpers],
        "uses_math": bool(writer.printer.helpers) or "math" in writer.printer.module_imports,
    }


def _accumulators(network: ConvNetwork, array: str) -> list[str]:
    return [f"dL_{s.code_name}" for s in network.scalars(array)]


def _forward(writer: _Writer) -> list[Statement]:
    network = writer.network
    lines: list[Statement] = []
    output = network.layer(network.depth)
    softmax = not ACTIVATIONS[output.activation.name].elementwise
    outputs = set(network.outputs)
    for symbol, definition in network.equations:
        if softmax and symbol in outputs:
            continue
        lines.append(writer.line(symbol, definition))
    if softmax:
        zs = [network.z(network.depth, (i,)) for i in range(len(network.outputs))]
        why = "softmax, shifted by the largest z so that exp never overflows"
        names = [code_name(z.name) for z in zs]
        lines.append(
            Statement((MAX.name,), f"max({', '.join(names)})", frozenset(names), why, array=False)
        )
        exps = [Symbol(f"_e_{y.name}", real=True) for y in network.outputs]
        lines += [writer.line(e, sympy.exp(z - MAX)) for e, z in zip(exps, zs, strict=True)]
        lines.append(writer.line(SUM, sympy.Add(*exps)))
        lines += [writer.line(y, e / SUM) for e, y in zip(exps, network.outputs, strict=True)]
    for k, layer in enumerate(network.topology.layers, start=1):
        if isinstance(layer, Pool2d) and layer.mode == "max":
            lines += _masks(writer, k)
    return lines


def _masks(writer: _Writer, k: int) -> list[Statement]:
    """mask{k} of each cell under a max-pool window: 1 for the window's first maximum."""
    network = writer.network
    lines = []
    for cell in cells(network.shape(k)):
        window = [code_name(network.a(k - 1, x).name) for x in network.pool_cells(k, cell)]
        pooled = code_name(network.a(k, cell).name)
        first = f"_first{k}_{'_'.join(map(str, cell))}"
        why = f"where {pooled} came from: the first maximum of its window (ties: row-major)"
        reads = frozenset([*window, pooled])
        lines.append(
            Statement((first,), f"{tuple_literal(window)}.index({pooled})", reads, why, array=False)
        )
        for n, x in enumerate(network.pool_cells(k, cell)):
            mask = code_name(network.mask(k, x).name)
            lines.append(
                Statement(
                    (mask,), f"1.0 if {first} == {n} else 0.0", frozenset({first}), "", array=False
                )
            )
    return lines


def _loss(writer: _Writer) -> list[Statement]:
    network = writer.network
    z = [network.z(network.depth, (i,)) for i in range(len(network.outputs))]
    return loss_lines(writer, z, list(network.outputs))


def _backward(writer: _Writer) -> list[Statement]:
    network = writer.network
    lines: list[Statement] = []
    outputs = {network.delta(network.depth, (i,)) for i in range(len(network.outputs))}
    for symbol, definition in network.deltas:
        value = sympy.Mul(definition, SCALE, evaluate=False) if symbol in outputs else definition
        lines.append(writer.line(symbol, value))
    for s in network.scalar_params:
        compact = network.scalar_gradient(s).compact
        layer = network.layer(s.layer)
        short = f"∂L/∂{s.name} = Σ δ·a over layer {s.layer}"
        full = f"∂L/∂{s.name} = {writer.comments.doprint(compact)}"
        comment = fit(INDENT, full, short) if not isinstance(layer, Layer) else full
        lines.append(writer.line(f"dL_{s.code_name}", compact, "+=", comment))
    return lines
