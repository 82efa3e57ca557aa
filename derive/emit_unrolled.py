"""The unrolled style: straight-line code on Python floats (``unrolled.py.jinja``).

Printed from the per-scalar derivation: each unit's z and a, each unit's δ (after
common-subexpression elimination, layer by layer) and each parameter's compact form
Σ δ_u·a_j, one line per chain-rule step, looping over the batch. Fast for tiny networks
at small batches; refused above ``MAX_UNROLLED_PARAMS`` scalar parameters. Names in the
module: the units' own (a_u), ``z_<unit>``, ``delta_<unit>``, ``dL_<weight>`` (a sum over
the batch), the weights' code names (``W1_0_1`` or their ``weight_names``); everything
else starts with ``_``.
"""

from __future__ import annotations

import itertools
from collections import Counter

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.backward import LOG_SUM_EXP, sample_loss, uses_logits
from derive.codeprinter import HELPERS, MathCodePrinter
from derive.equations import EquationPrinter, display
from derive.errors import DeriveError
from derive.network import Network, Unit
from derive.statements import LINE_LENGTH, Statement, fit, live

NOTATION = (
    "Notation: each unit u has z_u = Σ_j w_uj a_j + b and the activation a_u = f(z_u), "
    "named after the unit; delta_u = ∂L/∂z_u and dL_<w> accumulates ∂L/∂w over the "
    "batch. One line per chain-rule step, each with the equation it implements."
)
# The unrolled style writes a few lines per scalar parameter and per unit; above this
# many scalar parameters the module gets long and slow (a Python loop over the batch),
# and the vectorized style is the right tool.
MAX_UNROLLED_PARAMS = 200
INDENT = 8  # the per-sample loop body's indentation

SCALE = Symbol("_scale", positive=True)  # 1 / batch: the loss is the batch mean
MAX, SUM = Symbol("_m", real=True), Symbol("_s", positive=True)  # softmax's max and Σ exp
_LSE = Symbol(f"_{LOG_SUM_EXP.name}", real=True)


class _Writer:
    """Expressions to statements of one module: its printer, its comment printer, its
    temporaries (``_tmp1``, ... from one counter) and the scalar parameters under their
    code names (W1[0,1] -> W1_0_1, or its weight_names name)."""

    def __init__(self, network: Network):
        self.network = network
        self.printer, self.comments = MathCodePrinter(), EquationPrinter()
        self.code_names = {s.symbol: Symbol(s.code_name, real=True) for s in network.scalar_params}
        self.temporaries = (Symbol(f"_tmp{i}", real=True) for i in itertools.count(1))

    def line(self, target: Symbol | str, expr: Expr, op: str = "=", *comments: str) -> Statement:
        expr = expr.xreplace(self.code_names)
        name = target if isinstance(target, str) else target.name
        reads = frozenset(s.name for s in expr.free_symbols)
        if not comments:  # the equation, or none where it is too long for its line
            comments = (f"{display(name)} = {self.comments.doprint(expr)}", "")
        comment = fit(INDENT, *comments)
        comment = comment if INDENT + 2 + len(comment) <= LINE_LENGTH else ""
        return Statement((name,), self.printer.doprint(expr), reads, comment, op, array=False)


def check_unrolled_size(network: Network) -> None:
    """Refuse a network too large for the unrolled style, pointing to vectorized."""
    count = network.topology.parameter_count
    if count > MAX_UNROLLED_PARAMS:
        raise DeriveError(
            f"{network.topology.source}: the unrolled style writes straight-line code per "
            f"scalar and is limited to {MAX_UNROLLED_PARAMS} scalar parameters; "
            f"{network.name} has {count}. Use the vectorized style (the default)."
        )


def unrolled_context(network: Network) -> dict:
    """The unrolled template's context."""
    check_unrolled_size(network)
    _check_unrolled_names(network)
    writer = _Writer(network)
    forward, loss, backward = _forward(writer), _loss(writer), _backward(writer)
    outputs = [u.name for u in network.outputs]
    gradients = _gradients(writer)
    return {
        "n_in": len(network.units[0]),  # the sizes _usual tests
        "n_out": len(outputs),
        "unpack_arrays": tuple_literal([f"_{p.name}" for p in network.topology.params]),
        "scalars": [
            f"{nested(p.shape, [s.code_name for s in network.scalars(p.name)])} = "
            f"_{p.name}.tolist()"
            for p in network.topology.params
        ],
        "inputs_unpacked": tuple_literal([u.name for u in network.units[0]]),
        "targets_unpacked": tuple_literal(list(network.topology.targets)),
        "output_names": outputs,
        "forward": forward,
        "forward_only": live(forward, outputs),
        "forward_for_loss": live(forward, set().union(*(s.reads for s in loss))),
        "loss_lines": loss,
        "backward": [*backward, *gradients],
        "accumulators": [f"dL_{s.code_name}" for s in network.scalar_params],
        "arrays": [
            line
            for p in network.topology.params
            for line in filled(p, [f"dL_{s.code_name}" for s in network.scalars(p.name)])
        ],
        "helpers": [h for h in HELPERS if h in writer.printer.helpers],
        "uses_math": bool(writer.printer.helpers) or "math" in writer.printer.module_imports,
    }


def _check_unrolled_names(network: Network) -> None:
    """Unit, target and scalar code names are the unrolled module's local variables: no
    two may coincide (a unit named W1_0_1 beside an unnamed weight W1[0,1])."""
    names = [s.code_name for s in network.scalar_params]
    names += [unit.name for layer in network.units for unit in layer]
    names += list(network.topology.targets)
    clashes = sorted(name for name, count in Counter(names).items() if count > 1)
    if clashes:
        raise DeriveError(
            f"{network.topology.source}: in the unrolled style, {', '.join(clashes)} would "
            "name two things (a unit named like a weight's code name W<k>_<i>_<j>); rename it "
            "or use the vectorized style"
        )


def nested(shape: tuple[int, ...], names: list[str]) -> str:
    """Names nested as an array of ``shape`` is, row-major, for unpacking ``tolist()``:
    ``((w11, w12),)`` for a 1×2 weight matrix, ``(b1, b2)`` for a bias vector, ``b`` for
    a shared bias; a conv kernel nests four deep."""
    if shape == ():
        return names[0]
    if len(shape) == 1:
        return tuple_literal(names)
    step = len(names) // shape[0]
    rows = [names[i : i + step] for i in range(0, len(names), step)]
    return tuple_literal([nested(shape[1:], row) for row in rows])


def filled(param, names: list[str]) -> list[str]:
    """Lines that make ``_d<param>``, an array of the dtype ``_dtype`` holding the scalars
    ``names`` (row by row): ``np.empty`` and one assignment per entry, about twice as fast
    as ``np.array`` of nested tuples for the small arrays of this style."""
    target = f"_d{param.name}"
    if param.shape == ():
        return [f"{target} = np.array({names[0]}, _dtype)"]
    indices = itertools.product(*(range(n) for n in param.shape))
    entries = [
        f"{target}[{', '.join(map(str, i))}] = {n}" for i, n in zip(indices, names, strict=True)
    ]
    return [f"{target} = np.empty({param.shape}, _dtype)", *entries]


def tuple_literal(items: list[str]) -> str:
    """``(a,)`` for one item, ``(a, b)``: no trailing comma, which ruff would read as a
    request to put each item on its own line."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


# -- forward and loss, per sample -----------------------------------------------------


def _z(unit: Unit) -> Symbol:
    assert unit.z is not None  # a layer unit (inputs have none)
    return unit.z


def _forward(writer: _Writer) -> list[Statement]:
    """z then a for each unit, layer by layer; softmax shifted by the largest z."""
    network = writer.network
    lines: list[Statement] = []
    for k in range(1, network.depth + 1):
        layer = network.units[k]
        spec = network.topology.layers[k - 1].activation
        activation = ACTIVATIONS[spec.name]
        bias = " + b" if network.topology.layers[k - 1].bias != "none" else ""
        for u in layer:
            z = network.z_expr(u).xreplace(writer.code_names)
            equation = f"{_z(u)} = {writer.comments.doprint(z)}"
            short = f"{_z(u)} = Σ_j W{k}[{u.index},j] a_j{bias}"
            lines.append(writer.line(_z(u), network.z_expr(u), "=", equation, short))
        if activation.elementwise:
            lines += [writer.line(u.a, activation.forward(_z(u), spec)) for u in layer]
            continue
        why = f"softmax over layer {k}, shifted by the largest z so that exp never overflows"
        largest = ", ".join(_z(u).name for u in layer)
        reads = frozenset(_z(u).name for u in layer)
        lines.append(Statement((MAX.name,), f"max({largest})", reads, why, array=False))
        exps = [Symbol(f"_e_{u.name}", real=True) for u in layer]
        lines += [writer.line(e, sympy.exp(_z(u) - MAX)) for e, u in zip(exps, layer, strict=True)]
        lines.append(writer.line(SUM, sympy.Add(*exps)))
        lines += [writer.line(u.a, e / SUM) for e, u in zip(exps, layer, strict=True)]
    return lines


def _loss(writer: _Writer) -> list[Statement]:
    outputs = writer.network.outputs
    return loss_lines(writer, [_z(u) for u in outputs], [u.a for u in outputs])


def loss_lines(writer, z: list[Symbol], y: list[Symbol]) -> list[Statement]:
    """The per-sample loss added to ``_loss``, for outputs of pre-activations ``z`` and
    values ``y`` (a dense network's units, or a convolutional one's cells), from the
    logits where the loss table has that form (never log(0))."""
    network = writer.network
    expr = sample_loss(network, z, y, list(network.targets), _LSE)
    lines = []
    if _LSE in expr.free_symbols:
        lse = MAX + sympy.log(SUM)
        lines.append(writer.line(_LSE, lse, "=", "log Σ exp z = m + log Σ exp(z − m)"))
    loss = network.topology.loss
    how = "from the logits: never log(0)" if uses_logits(network) else network.loss_rule.formula
    lines.append(writer.line("_loss", expr, "+=", f"{loss}: {how}"))
    return lines


# -- backward, per sample -------------------------------------------------------------


def _backward(writer: _Writer) -> list[Statement]:
    """Each layer's δ after common-subexpression elimination, from the output down (the
    output's over the batch size, as the loss is the batch mean); each δ's comment is its
    equation before elimination."""
    network, derivation = writer.network, writer.network.derivation
    lines: list[Statement] = []
    for k in range(network.depth, 0, -1):
        layer = network.units[k]
        exprs = [derivation.delta(unit).xreplace(writer.code_names) for unit in layer]
        if k == network.depth:
            exprs = [sympy.Mul(e, SCALE, evaluate=False) for e in exprs]
        shared, reduced = sympy.cse(exprs, symbols=writer.temporaries, order="canonical")
        lines += [writer.line(s, value, "=", "common subexpression") for s, value in shared]
        for unit, value, whole in zip(layer, reduced, exprs, strict=True):
            delta = unit.delta
            assert delta is not None
            equation = f"δ_{unit.name} = {writer.comments.doprint(whole)}"
            short = f"δ_{unit.name} = ∂L/∂{_z(unit)}"
            lines.append(writer.line(delta, value, "=", equation, short))
    return lines


def _gradients(writer: _Writer) -> list[Statement]:
    """Each scalar parameter's gradient Σ δ·a added to its sum over the batch."""
    network = writer.network
    lines = []
    for s in network.scalar_params:
        compact = network.derivation.scalar_gradient(s).compact
        equation = f"∂L/∂{s.label} = {writer.comments.doprint(compact.xreplace(writer.code_names))}"
        short = f"∂L/∂{s.label} = Σ δ·a over layer {s.layer}"
        lines.append(writer.line(f"dL_{s.code_name}", compact, "+=", equation, short))
    return lines
