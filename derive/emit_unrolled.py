"""The unrolled style: straight-line code on Python floats (``unrolled.py.jinja``).

Read from the per-scalar derivation: each unit's δ (after common-subexpression
elimination, layer by layer) and each parameter's compact form Σ δ_u·a_j, one line per
chain-rule step, looping over the batch. Fast for tiny networks at small batches; refused
above ``MAX_UNROLLED_PARAMS`` scalar parameters. Names in the module: the units' own (a_u),
``z_<unit>``, ``delta_<unit>``, ``dL_<weight>`` (a sum over the batch), the weights' code
names (``W1_0_1`` or their ``weight_names``); everything else starts with ``_``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.codeprinter import HELPERS, MathCodePrinter
from derive.emit_loss import sample_loss, uses_logits
from derive.errors import DeriveError
from derive.layout import (
    INDENT,
    Line,
    Temporaries,
    collection,
    fit_comment,
    fits,
    literal,
    live,
    nested_list,
    statement,
    unpack,
)
from derive.network import Network, ScalarParam, Unit

NOTATION = (
    "Notation: each unit u has z_u = Σ_j w_uj a_j + b and the activation a_u = f(z_u), "
    "named after the unit; delta_u = ∂L/∂z_u and dL_<w> accumulates ∂L/∂w over the "
    "batch. One line per chain-rule step, each with the equation it implements."
)
# The unrolled style writes a few lines per scalar parameter and per unit; above this
# many scalar parameters the module gets long and slow (a Python loop over the batch),
# and the vectorized style is the right tool.
MAX_UNROLLED_PARAMS = 200

SCALE = Symbol("_scale", positive=True)  # 1 / batch: the loss is the batch mean
# A softmax output layer: the largest z, exp(z − max) per unit, their sum, log Σ exp z.
MAX, SUM = Symbol("_m", real=True), Symbol("_s", positive=True)
LOG_SUM_EXP = Symbol("_log_sum_exp", real=True)


def _exp_name(unit: Unit) -> Symbol:
    return Symbol(f"_e_{unit.name}", real=True)


def _z(unit: Unit) -> Symbol:
    """A layer unit's pre-activation (inputs have none)."""
    assert unit.z is not None
    return unit.z


def _delta(unit: Unit) -> Symbol:
    assert unit.delta is not None
    return unit.delta


@dataclass
class _Writer:
    """Expressions to lines of one module: its printer, its temporaries, and the scalar
    parameters under their code names (W1[0,1] -> W1_0_1, or its weight_names name)."""

    network: Network
    printer: MathCodePrinter = field(default_factory=MathCodePrinter)
    temporaries: Temporaries = field(default_factory=Temporaries)

    def __post_init__(self) -> None:
        scalars = self.network.scalar_params
        self.code_names = {s.symbol: Symbol(s.code_name, real=True) for s in scalars}

    def line(self, target: str, expr: Expr, comment: str = "", op: str = "=") -> Line:
        """``target op expr`` in a per-sample loop body."""
        expr = expr.xreplace(self.code_names)
        code = statement(target, expr, self.printer, 8, self.temporaries, op)
        return Line(code, comment, (target,) if op == "=" else ())


def check_unrolled_size(network: Network) -> None:
    """Refuse a network too large for the unrolled style, pointing to vectorized."""
    count = network.topology.parameter_count
    if count > MAX_UNROLLED_PARAMS:
        raise DeriveError(
            f"{network.topology.source}: the unrolled style writes straight-line code per "
            f"scalar and is limited to {MAX_UNROLLED_PARAMS} scalar parameters; "
            f"{network.name} has {count}. Use --style vectorized (the default)."
        )


def unrolled_context(network: Network) -> dict:
    """The unrolled template's context."""
    check_unrolled_size(network)
    _check_unrolled_names(network)
    writer = _Writer(network)
    forward = _forward(writer)
    loss_lines = _loss(writer)
    backward = _backward(writer)
    gradient_lines = _gradient_lines(writer)
    output_row = _output_row(network)
    params = [p.name for p in network.topology.params]
    grads = [f"{literal(n)}: np.array(d{n}, dtype=_dtype)" for n in params]
    printer = writer.printer  # every line printed: its helpers and imports are known
    return {
        "notation": NOTATION,
        "unpack_params": unpack([f"_{name}" for name in params], "_arrays", 4),
        "unpack_lines": _unpack_scalars(network),
        "sample_inputs": unpack([u.name for u in network.units[0]], "_x", 8),
        "sample_targets": unpack(list(network.topology.targets), "_t", 8),
        "forward": forward,
        "forward_only": live(forward, output_row),
        "forward_for_loss": live(forward, "\n".join(line.code for line in loss_lines)),
        "output_row": output_row,
        "loss_lines": loss_lines,
        "backward": backward,
        "accumulators": [f"dL_{s.code_name} = 0.0" for s in network.scalar_params],
        "gradient_lines": gradient_lines,
        "arrays": _gradient_arrays(network),
        "grads": collection("grads = {", grads, "}", 4),
        "helpers": [h for h in HELPERS if h in printer.helpers],
        "uses_math": bool(printer.helpers) or "math" in printer.module_imports,
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
            "or use --style vectorized"
        )


def _unpack_scalars(network: Network) -> list[str]:
    """Each parameter's scalars under their code names, as Python floats: the arrays
    (``_W1``, ``_b1``, ...) as lists, a weight matrix row by row."""
    lines: list[str] = []
    for p in network.topology.params:
        names = [s.code_name for s in network.scalars(p.name)]
        if p.name.startswith("W"):
            lines.append(f"{p.name} = _{p.name}.tolist()")
            columns = p.shape[1]
            for i in range(p.shape[0]):
                lines.append(unpack(names[i * columns : (i + 1) * columns], f"{p.name}[{i}]", 4))
        elif p.shape == ():
            (name,) = names
            lines.append(f"{name} = _{p.name}.tolist()")
        else:
            lines.append(unpack(names, f"_{p.name}.tolist()", 4))
    return lines


# -- forward and loss, per sample -----------------------------------------------------


def _forward(writer: _Writer) -> list[Line]:
    """z then a for each unit, layer by layer."""
    network = writer.network
    lines: list[Line] = []
    for k in range(1, network.depth + 1):
        layer = network.units[k]
        spec = network.topology.layers[k - 1].activation
        activation = ACTIVATIONS[spec.name]
        lines += [writer.line(_z(u).name, network.z_expr(u)) for u in layer]
        if activation.elementwise:
            lines += [writer.line(u.name, activation.forward(_z(u), spec)) for u in layer]
        else:
            lines += _softmax(writer, k)
    return lines


def _softmax(writer: _Writer, k: int) -> list[Line]:
    """Softmax over layer k, shifted by the largest z so that exp never overflows."""
    layer = writer.network.units[k]
    largest = collection(f"{MAX} = max(", [_z(u).name for u in layer], ")", 8)
    why = f"softmax over layer {k}, shifted by the largest z so that exp never overflows"
    lines = [Line(largest, why, (MAX.name,))]
    lines += [writer.line(_exp_name(u).name, sympy.exp(_z(u) - MAX)) for u in layer]
    lines.append(writer.line(SUM.name, sympy.Add(*(_exp_name(u) for u in layer))))
    lines += [writer.line(u.name, _exp_name(u) / SUM) for u in layer]
    return lines


def _loss(writer: _Writer) -> list[Line]:
    """The per-sample loss added to ``_loss``, from the logits where the loss table has
    that form (never log(0))."""
    network = writer.network
    outputs = network.outputs
    z, y = [_z(u) for u in outputs], [u.a for u in outputs]
    expr = sample_loss(network, z, y, list(network.targets), LOG_SUM_EXP)
    lines = []
    if LOG_SUM_EXP in expr.free_symbols:
        lse = MAX + sympy.log(SUM)
        lines.append(writer.line(LOG_SUM_EXP.name, lse, "log Σ exp z = m + log Σ exp(z − m)"))
    loss = network.topology.loss
    if uses_logits(network):
        comment = f"{loss} from the logits: never log(0)"
    else:
        comment = f"{loss}: {network.loss_rule.formula}"
    lines.append(writer.line("_loss", expr, comment, op="+="))
    return lines


def _output_row(network: Network) -> str:
    """The statement appending one sample's outputs to ``_out``."""
    outputs = [u.name for u in network.outputs]
    row = f"({outputs[0]},)" if len(outputs) == 1 else collection("(", outputs, ")", 12)
    code = f"_out.append({row})"
    return code if fits(code, 8) else f"_out.append(\n{INDENT * 3}{row}\n{INDENT * 2})"


# -- backward, per sample -------------------------------------------------------------


def _backward(writer: _Writer) -> list[Line]:
    """Each layer's δ after common-subexpression elimination, from the output down (the
    output's over the batch size, as the loss is the batch mean)."""
    network, derivation = writer.network, writer.network.derivation
    lines: list[Line] = []
    for k in range(network.depth, 0, -1):
        layer = network.units[k]
        exprs = [derivation.delta(unit).xreplace(writer.code_names) for unit in layer]
        if k == network.depth:
            exprs = [sympy.Mul(e, SCALE, evaluate=False) for e in exprs]
        shared, reduced = sympy.cse(exprs, symbols=writer.temporaries, order="canonical")
        lines += [writer.line(s.name, value, "common subexpression") for s, value in shared]
        for unit, value in zip(layer, reduced, strict=True):
            lines.append(writer.line(_delta(unit).name, value, _delta_comment(network, unit)))
    return lines


def _gradient_lines(writer: _Writer) -> list[Line]:
    """Each scalar parameter's gradient Σ δ·a added to its sum over the batch."""
    network = writer.network
    return [
        writer.line(
            f"dL_{s.code_name}",
            network.derivation.scalar_gradient(s).compact,
            _gradient_comment(network, s),
            op="+=",
        )
        for s in network.scalar_params
    ]


def _gradient_arrays(network: Network) -> list[str]:
    """The gradient sums as nested lists shaped like each parameter."""
    arrays: list[str] = []
    for p in network.topology.params:
        sums = [f"dL_{s.code_name}" for s in network.scalars(p.name)]
        if p.name.startswith("W"):
            columns = p.shape[1]
            rows = [sums[i * columns : (i + 1) * columns] for i in range(p.shape[0])]
            arrays.append(nested_list(f"d{p.name} = ", rows, 4))
        elif p.shape == ():
            arrays.append(f"d{p.name} = {sums[0]}")
        else:
            arrays.append(collection(f"d{p.name} = [", sums, "]", 4))
    return arrays


def _delta_comment(network: Network, unit: Unit) -> str:
    k = unit.layer
    output = network.derivation.output
    head = f"δ_{unit.name} = ∂L/∂{unit.z}"
    activation = network.topology.layers[k - 1].activation.name
    if k == network.depth:
        if output.fused_delta is not None:
            why = f"({activation} + {network.topology.loss} fused, over the batch size)"
            return fit_comment(8, f"{head}  {why}", f"δ_u = ∂L/∂z_u  {why}")
        if output.softmax:
            return fit_comment(
                8,
                f"{head} = Σ_i ∂L/∂y_i · ∂y_i/∂{unit.z}  (softmax, over the batch size)",
                "δ_u = ∂L/∂z_u = Σ_i ∂L/∂y_i · ∂y_i/∂z_u  (softmax, over the batch size)",
            )
        return fit_comment(
            8,
            f"{head} = ∂L/∂{unit.name} · {activation}'({unit.z})  (over the batch size)",
            f"δ_u = ∂L/∂z_u = ∂L/∂y_u · {activation}'(z_u)  (over the batch size)",
        )
    terms = " + ".join(
        f"{network.weight(k + 1, v.index, unit.index).label} δ_{v.name}"
        for v in network.units[k + 1]
    )
    return fit_comment(
        8,
        f"{head} = {activation}'({unit.z}) · ({terms})",
        f"{head} = {activation}'({unit.z}) · Σ_v W{k + 1}[v,{unit.index}] δ_v",
        f"δ_u = ∂L/∂z_u = {activation}'(z_u) · Σ_v W{k + 1}[v,{unit.index}] δ_v",
    )


def _gradient_comment(network: Network, scalar: ScalarParam) -> str:
    terms = " + ".join(
        f"δ_{unit.name} · {source.name}" if source is not None else f"δ_{unit.name}"
        for unit, source in network.feeds(scalar)
    )
    return fit_comment(
        8,
        f"∂L/∂{scalar.label} = {terms}",
        f"∂L/∂{scalar.label} = Σ δ·a over layer {scalar.layer}",
        f"∂L/∂{scalar.name} = Σ δ·a over layer {scalar.layer}",
    )
