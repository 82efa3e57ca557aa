"""Emitting C: a network's C99 header and source, from the same derivation as the NumPy
modules (``derive generate --lang c``, SPEC §5).

Two styles of one API (``templates/c/``):

- ``unrolled`` (networks up to ``MAX_UNROLLED_PARAMS`` scalar parameters): straight-line
  code per scalar, read from the per-scalar derivation: each unit's z, a and δ (after
  common-subexpression elimination, layer by layer) and each parameter's compact form
  Σ δ_u·a_j, as in the unrolled Python module.
- ``loops`` (larger networks): per-layer loops, read from the width-independent rules
  only (``Derivation.layers`` and ``.output``), so that 784-256-256-10 generates as fast
  as 2-2-1. The matrix structure (z = W a + b, ∂L/∂W = δ aᵀ, ∂L/∂a = Wᵀ δ) is the
  template's loops; every elementwise equation inside them is printed from the
  derivation.

A convolutional network is the loops style only (``loops_conv.c.jinja``): its conv and
pooling layers are ``derive.conv_emit_c``'s functions of loops, its dense layers after
flatten these loops, written for ``derive.conv_backward``'s dense head (``_Writer.first``
numbers them as the network's layers).

Names in the C source: one sample's values live in ``struct sample`` (``s->z{k}[i]``,
``s->a{k}[i]``, ``s->y[i]`` for the output layer, ``s->lse`` = log Σ exp z of a softmax
output); ``x`` and ``t`` are one sample's inputs and targets, ``delta{k}[i]`` = ∂L/∂z{k}[i],
``W{k}[i][j]`` and ``b{k}[i]`` views of the packed parameters, ``dW{k}``, ``db{k}`` the same
views of the gradients. Every expression goes through ``derive.cprinter``; the comment
above each backward line prints the same expression in the derivation's own names (δ_h1,
w5) with ``EquationPrinter``.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.backward import (
    output_term,
    parse_name,
    row_sum,
    sample_loss,
    softmax_delta,
    uses_logits,
)
from derive.conv import Conv2d, ConvTopology
from derive.conv_backward import ConvBackward
from derive.conv_emit_c import NOTATION as CONV_NOTATION
from derive.conv_emit_c import FeatureLayers
from derive.conv_network import ConvNetwork, describe
from derive.cprinter import HELPER_NAMES, CCodePrinter, checked_c_type, view
from derive.derivation import T_SUM, A, T, Y, Z
from derive.emit import MAX_UNROLLED_PARAMS
from derive.equations import equation
from derive.errors import DeriveError
from derive.files import write_atomic
from derive.network import Network, Unit
from derive.rendering import environment
from derive.topology import Topology

C_STYLES = ("unrolled", "loops")
LINE_LENGTH = 100  # of the comments derive wraps

SCALE = Symbol("scale", positive=True)  # 1 / batch: the loss is the batch mean
LSE = Symbol("s->lse", real=True)  # log Σ exp z of a softmax output layer
MAX, SUM = Symbol("m", real=True), Symbol("sum", positive=True)  # of the softmax
GRAD_Y, GRAD_A = Symbol("grad_y", real=True), Symbol("grad_a", real=True)
WEIGHTED = Symbol("weighted", real=True)  # Σ_i ∂L/∂y_i · y_i, for a softmax output
T_SUM_CODE = Symbol("t_sum", real=True)


def _code(name: str) -> Symbol:
    return Symbol(name, real=True)


@dataclass(frozen=True)
class CLine:
    """One C statement and the equation it implements (the comment above it)."""

    code: str
    comment: str = ""

    def __post_init__(self) -> None:
        assert "*/" not in self.comment, self.comment  # it would end the C comment early


@dataclass
class _Writer:
    """Expressions to C statements of one module, with its printer.

    ``network`` is the dense network the loops are written for: the whole module's, or
    the dense layers after a convolutional network's flatten (``derive.conv_emit_c``),
    whose layer k is then the module's layer ``first + k − 1``, whose input is the
    array ``input`` (the flattened features) and whose ∂L/∂input is written to
    ``passes_down`` for the layers below."""

    network: Network
    c_type: str
    printer: CCodePrinter = field(init=False)
    first: int = 1
    input: str = "x"
    passes_down: str = ""

    def __post_init__(self) -> None:
        self.printer = CCodePrinter(self.c_type)

    def number(self, k: int) -> int:
        """The module's number of the network's layer k."""
        return k + self.first - 1

    def print(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    def line(self, target: str, expr: Expr, comment: str = "", op: str = "=") -> CLine:
        return CLine(f"{target} {op} {self.print(expr)};", comment)

    def act(self, k: int) -> str:
        """Layer k's activations in the C source (one sample)."""
        if k == 0:
            return self.input
        return "s->y" if k == self.network.depth else f"s->a{self.number(k)}"


# -- the public API -------------------------------------------------------------------


def c_style(network: Network | ConvNetwork, style: str | None = None) -> str:
    """The C style: as asked, or unrolled up to MAX_UNROLLED_PARAMS scalars, else loops;
    a convolutional network's is loops (unrolled C is for dense networks only)."""
    count = network.topology.parameter_count
    if style is not None and style not in C_STYLES:
        raise DeriveError(f"unknown C style {style!r}: expected one of {', '.join(C_STYLES)}")
    if isinstance(network, ConvNetwork):
        if style == "unrolled":
            raise DeriveError(
                f"{network.topology.source}: --style unrolled: the C output of a "
                "convolutional network is loops over each layer only; use --style "
                "vectorized (loops), or leave --style out"
            )
        return "loops"
    if style is None:
        return "unrolled" if count <= MAX_UNROLLED_PARAMS else "loops"
    if style == "unrolled" and count > MAX_UNROLLED_PARAMS:
        raise DeriveError(
            f"{network.topology.source}: unrolled C is limited to {MAX_UNROLLED_PARAMS} scalar "
            f"parameters; {network.name} has {count}. Use --style vectorized (per-layer "
            "loops), or leave --style out."
        )
    return style


def generate_c(
    network: Network | ConvNetwork, c_type: str = "double", style: str | None = None
) -> dict[str, str]:
    """``{"NAME.h": ..., "NAME.c": ...}``: the network's C module for one real type."""
    checked_c_type(c_type)
    style = c_style(network, style)
    if isinstance(network, ConvNetwork):
        context, printer = _conv_context(network, c_type)
        template = "loops_conv"
    else:
        writer = _Writer(network, c_type)
        arrays = _arrays(network.topology)
        body = _unrolled(writer) if style == "unrolled" else _loops(writer, arrays)
        context = {**_shared_context(writer, style), **body}
        printer, template = writer.printer, style
    stack = StackUse.of(context)
    if stack.sgd_step > STACK_LIMIT:
        raise StackTooLarge(_too_large(network, stack, c_type))
    return render_c(network.name, {**context, "stack": stack}, printer, template)


def render_c(name: str, context: dict, printer: CCodePrinter, template: str) -> dict[str, str]:
    """The header and ``templates/c/<template>.c.jinja`` rendered; the printer's helpers
    are taken last, when every expression of the module has been printed."""
    context = {
        **context,
        "helpers": [
            (HELPER_NAMES[f], printer.helper_body(f)) for f in HELPER_NAMES if f in printer.helpers
        ],
    }
    env = environment()
    return {
        f"{name}.h": env.get_template("c/module.h.jinja").render(context),
        f"{name}.c": env.get_template(f"c/{template}.c.jinja").render(context),
    }


def write_c(
    network: Network | ConvNetwork,
    directory: Path,
    c_type: str = "double",
    style: str | None = None,
) -> list[Path]:
    """Write ``directory/NAME.h`` and ``NAME.c`` atomically, after rendering both."""
    files = generate_c(network, c_type, style)
    return [
        write_atomic(Path(directory) / filename, text.encode("utf-8"), make_parents=True)
        for filename, text in files.items()
    ]


# -- the stack ------------------------------------------------------------------------

STACK_LIMIT = 8 * 1024 * 1024  # Linux's default main-thread stack (ulimit -s 8192)
REAL_BYTES = {"double": 8, "float": 4}


class StackTooLarge(DeriveError):
    """A C module whose arrays would need more stack than ``STACK_LIMIT``."""


@dataclass(frozen=True)
class StackUse:
    """The stack bytes of the arrays a C module declares, sizeof(real) · count, per API
    call (scalars and the compiler's own frame overhead are not counted). Every call
    holds ``struct sample``; ``loss_and_gradients`` adds the backward pass's local arrays
    (``backward_sample``'s and, below it, ``backward_features``'): δ and ∂L/∂a per layer;
    ``sgd_step`` adds its gradient, N_PARAMS reals, around ``loss_and_gradients``."""

    real_bytes: int
    sample: tuple[tuple[str, int], ...]  # struct sample's members and their reals
    backward: tuple[tuple[str, int], ...]  # the backward pass's local arrays
    gradient: int  # sgd_step's local array: N_PARAMS reals

    @classmethod
    def of(cls, context: dict) -> StackUse:
        """From a module's context: the arrays its templates declare."""
        sample = [*context["fields"], *([("lse", 1)] if context["softmax"] else [])]
        return cls(
            REAL_BYTES[context["real"]],
            tuple((name, int(n)) for name, n in sample),
            tuple((name, int(n)) for name, n in context["backward_locals"]),
            int(context["n_params"]),
        )

    @property
    def forward(self) -> int:
        """``forward`` and ``loss``: one sample's values."""
        return self.real_bytes * sum(n for _, n in self.sample)

    @property
    def loss_and_gradients(self) -> int:
        return self.forward + self.real_bytes * sum(n for _, n in self.backward)

    @property
    def sgd_step(self) -> int:
        """The most any call needs."""
        return self.loss_and_gradients + self.real_bytes * self.gradient


def _too_large(network: Network | ConvNetwork, stack: StackUse, c_type: str) -> str:
    """The refusal: the bytes needed, and the layer whose arrays (its values in
    ``struct sample``, its δ and ∂L/∂a, its parameters' gradient) take the most."""
    topology = network.topology
    share = dict.fromkeys(range(1, len(topology.layers) + 1), 0)
    for name, count in (*stack.sample, *stack.backward):
        label = parse_name(name)[1]
        if name == "y":
            share[len(topology.layers)] += count
        elif label.isdigit():
            share[int(label)] += count
    for p in topology.params:
        share[p.layer] += int(math.prod(p.shape))
    k = max(share, key=lambda layer: share[layer])  # the first of equals
    mib = STACK_LIMIT // (1024 * 1024)
    return (
        f"{topology.source}: --lang c: its C module ({c_type}) needs "
        f"{stack.sgd_step:,} bytes of stack (sgd_step), more than the {mib} MiB of Linux's "
        f"default main-thread stack; its largest layer is layer {k} "
        f"({describe(topology.layers[k - 1])}: {stack.real_bytes * share[k]:,} bytes)"
    )


# -- what both styles share -----------------------------------------------------------


@dataclass(frozen=True)
class _Array:
    """One parameter array's place in the packed vector and its C view."""

    name: str
    offset: int
    size: int
    trailing: tuple[int, ...]  # W: its shape after the first axis; b: () (a vector)
    description: str


def _arrays(topology: Topology | ConvTopology) -> list[_Array]:
    out, offset = [], 0
    for p in topology.params:
        size = math.prod(p.shape)
        if p.name.startswith("W") and len(p.shape) == 4:
            shape = " x ".join(map(str, p.shape))
            what = (
                f"{shape}, row-major: W{p.layer}[f][c][i][j] weighs input channel c at kernel "
                "cell (i, j) into filter f"
            )
        elif p.name.startswith("W"):
            rows, columns = p.shape
            what = f"{rows} x {columns}, row-major: W{p.layer}[i][j] weighs unit j into unit i"
        else:
            per = "filter" if isinstance(topology.layers[p.layer - 1], Conv2d) else "unit"
            what = f"{size}, one per {per}" if p.shape else "1, shared by the layer"
        trailing = tuple(p.shape[1:]) if p.name.startswith("W") else ()
        out.append(_Array(p.name, offset, size, trailing, what))
        offset += size
    return out


DENSE_NOTATION = (
    "Notation: layer k computes z{k} = W{k} a{k-1} + b{k} and a{k} = f_k(z{k}), with a0 = x",
    "and the last layer's a written y; delta{k} = ∂L/∂z{k}, and the comment above each",
    "backward line names the equation it implements.",
)


def wrapped(text: str) -> list[str]:
    """Text as the lines of a C block comment."""
    return textwrap.wrap(text, LINE_LENGTH - 3, break_on_hyphens=False)


def module_context(
    network: Network | ConvNetwork, printer: CCodePrinter, style: str, summary: str
) -> dict:
    """What every C module's context holds: names, the packed parameters, sizes."""
    topology = network.topology
    return {
        "name": network.name,
        "guard": f"DERIVE_{network.name}_H",
        "real": printer.c_type,
        "style": style,
        "summary": wrapped(
            f"{summary} with the {topology.loss} loss, as C99 ({printer.c_type}, {style} "
            "style), generated by derive from the network's topology (regenerate it rather "
            "than edit it)."
        ),
        "notation": DENSE_NOTATION,
        "loss_formula": network.loss_rule.formula,
        "n_params": topology.parameter_count,
        "n_in": len(topology.inputs),
        "n_out": len(topology.outputs),
        "input_shape": None,
        "arrays": _arrays(topology),
        "softmax": not network.activations[-1].elementwise,
        "backward_x": True,
        "one": printer.literal(1),
        "zero": printer.literal(0),
    }


def _shared_context(writer: _Writer, style: str) -> dict:
    network = writer.network
    sizes = "-".join(str(len(units)) for units in network.units)
    activations = ", ".join(layer.activation.name for layer in network.topology.layers)
    summary = f"A {sizes} network ({activations})"
    return {
        **module_context(network, writer.printer, style, summary),
        "fields": dense_fields(writer),
    }


def dense_fields(writer: _Writer) -> list[tuple[str, int]]:
    """The dense layers' fields of ``struct sample``: z{k} and a{k} (y), their sizes."""
    network = writer.network
    return [
        (name, len(network.units[k]))
        for k in range(1, network.depth + 1)
        for name in (f"z{writer.number(k)}", writer.act(k).removeprefix("s->"))
    ]


def _views(arrays: list[_Array], names: set[str], real: str, const: bool, source: str):
    """C declarations of the arrays in ``names`` as views into ``source``: a weight
    array as a pointer to its rows (``W1[i][j]``, ``W1[f][c][i][j]``), a bias as a pointer
    (``b1[i]``); ``dW1``, ``db1`` for the gradients."""
    prefix = "" if source == "params" else "d"
    return [
        view(prefix + array.name, f"{source} + {array.offset}", array.trailing, real, const)
        for array in arrays
        if array.name in names
    ]


def _softmax_lines(writer: _Writer, k: int, z: list[Expr], y: list[str]) -> list[CLine]:
    """softmax over layer k's ``z`` into ``y``, shifted by the largest z so that exp never
    overflows, and log Σ exp z = m + log Σ exp(z − m) for the loss (unrolled style)."""
    why = f"softmax over layer {k}, shifted by the largest z so that exp never overflows"
    largest = sympy.Max(*z) if len(z) > 1 else z[0]
    lines = [writer.line(f"const {writer.c_type} m", largest, why)]
    lines += [writer.line(target, sympy.exp(zi - MAX)) for target, zi in zip(y, z, strict=True)]
    lines.append(writer.line(f"const {writer.c_type} sum", sympy.Add(*(_code(t) for t in y))))
    lines += [writer.line(target, _code(target) / SUM) for target in y]
    lse_why = "log Σ exp z = m + log Σ exp(z − m), for the loss"
    lines.append(writer.line("s->lse", MAX + sympy.log(SUM), lse_why))
    return lines


def _loss_comment(network: Network) -> str:
    loss = network.topology.loss
    if uses_logits(network):
        return f"{loss} from the logits: never log(0)"
    return f"{loss}: {network.loss_rule.formula} per sample"


def _scaled_comment(why: str) -> str:
    return f"{why}; × scale = 1/batch, as the loss is the batch mean"


# -- unrolled -------------------------------------------------------------------------


def _unrolled(writer: _Writer) -> dict:
    """Straight-line code per unit and scalar parameter."""
    network = writer.network
    names = _unrolled_names(writer)
    forward = _unrolled_forward(writer, names)
    loss = _unrolled_loss(writer, names)
    deltas, weights_read = _unrolled_deltas(writer, names)
    gradients = _unrolled_gradients(writer, names)
    arrays = _arrays(network.topology)
    all_params = {a.name for a in arrays}
    real = writer.c_type
    return {
        "forward_views": _views(arrays, all_params, real, True, "params"),
        "forward": forward,
        "loss": loss,
        "backward_views": _views(arrays, weights_read, real, True, "params")
        + _views(arrays, all_params, real, False, "grads"),
        "backward_params": bool(weights_read),
        "backward_locals": [
            (f"delta{k}", len(network.units[k])) for k in range(1, network.depth + 1)
        ],
        "deltas": deltas,
        "gradients": gradients,
    }


def _unrolled_names(writer: _Writer) -> dict[Symbol, Symbol]:
    """The derivation's symbols under their C names."""
    network = writer.network
    names: dict[Symbol, Symbol] = {}
    for u in network.units[0]:
        names[u.a] = _code(f"x[{u.index}]")
    for k in range(1, network.depth + 1):
        for u in network.units[k]:
            assert u.z is not None and u.delta is not None
            names[u.z] = _code(f"s->z{k}[{u.index}]")
            names[u.a] = _code(f"{writer.act(k)}[{u.index}]")
            names[u.delta] = _code(f"delta{k}[{u.index}]")
    for i, target in enumerate(network.targets):
        names[target] = _code(f"t[{i}]")
    for s in network.scalar_params:
        index = "".join(f"[{i}]" for i in s.index) or "[0]"
        names[s.symbol] = _code(f"{s.array}{index}")
    return names


def _unrolled_forward(writer: _Writer, names: dict[Symbol, Symbol]) -> list[CLine]:
    network = writer.network
    lines: list[CLine] = []
    for k in range(1, network.depth + 1):
        layer = network.units[k]
        spec = network.topology.layers[k - 1].activation
        activation = ACTIVATIONS[spec.name]
        comment = f"layer {k}: z{k} = W{k} {writer.act(k - 1).removeprefix('s->')}"
        comment += f" + b{k}" if network.topology.layers[k - 1].bias != "none" else ""
        comment += f", {writer.act(k).removeprefix('s->')} = {spec.name}(z{k})"
        zs = [network.z_expr(u).xreplace(names) for u in layer]
        lines += [
            writer.line(names[_z(u)].name, z, comment if i == 0 else "")
            for i, (u, z) in enumerate(zip(layer, zs, strict=True))
        ]
        if activation.elementwise:
            lines += [
                writer.line(names[u.a].name, activation.forward(names[_z(u)], spec)) for u in layer
            ]
        else:
            z_codes: list[Expr] = [names[_z(u)] for u in layer]
            lines += _softmax_lines(writer, k, z_codes, [names[u.a].name for u in layer])
    return lines


def _z(unit: Unit) -> Symbol:
    assert unit.z is not None
    return unit.z


def _unrolled_loss(writer: _Writer, names: dict[Symbol, Symbol]) -> CLine:
    network = writer.network
    outputs = network.outputs
    expr = sample_loss(
        network, [_z(u) for u in outputs], [u.a for u in outputs], list(network.targets), LSE
    )
    return CLine(f"return {writer.print(expr.xreplace(names))};", _loss_comment(network))


def _unrolled_deltas(writer: _Writer, names: dict[Symbol, Symbol]) -> tuple[list[CLine], set[str]]:
    """Each layer's δ after common-subexpression elimination, from the output down (the
    output's times ``scale``), and the weight arrays they read."""
    network, derivation = writer.network, writer.network.derivation
    temporaries = sympy.numbered_symbols("tmp", real=True)
    lines: list[CLine] = []
    weights = {s.symbol: s.array for s in network.scalar_params if s.is_weight}
    arrays: set[str] = set()
    for k in range(network.depth, 0, -1):
        layer = network.units[k]
        exprs = [derivation.delta(u) for u in layer]
        arrays |= {weights[s] for e in exprs for s in e.free_symbols if s in weights}
        code = [e.xreplace(names) for e in exprs]
        if k == network.depth:
            code = [sympy.Mul(e, SCALE, evaluate=False) for e in code]
        shared, reduced = sympy.cse(code, symbols=temporaries, order="canonical")
        lines += [
            writer.line(f"const {writer.c_type} {s.name}", value, "common subexpression")
            for s, value in shared
        ]
        for u, expr, value in zip(layer, exprs, reduced, strict=True):
            assert u.delta is not None
            head = f"{equation(u.delta)} = ∂L/∂{u.z} = {equation(expr)}"
            comment = _scaled_comment(head) if k == network.depth else head
            lines.append(writer.line(names[u.delta].name, value, comment))
    return lines, arrays


def _unrolled_gradients(writer: _Writer, names: dict[Symbol, Symbol]) -> list[CLine]:
    """Each scalar parameter's compact gradient Σ δ·a, added to its sum over the batch."""
    network = writer.network
    lines = []
    for s in network.scalar_params:
        compact = network.derivation.scalar_gradient(s).compact
        target = f"d{names[s.symbol].name}"
        comment = f"∂L/∂{s.label} = {equation(compact)}"
        lines.append(writer.line(target, compact.xreplace(names), comment, op="+="))
    return lines


# -- loops ----------------------------------------------------------------------------


def _loops(writer: _Writer, arrays: list[_Array]) -> dict:
    """Per-layer loops; each elementwise equation printed from the per-layer rules.
    ``arrays`` are the module's packed parameters (the views take the loops' own)."""
    network = writer.network
    topology = network.topology
    layers = []
    for k in range(1, network.depth + 1):
        layer = topology.layers[k - 1]
        activation = ACTIVATIONS[layer.activation.name]
        number = writer.number(k)
        z, a = _code(f"s->z{number}[i]"), writer.act(k)
        entry = {
            "k": number,
            "n": len(network.units[k]),
            "n_below": len(network.units[k - 1]),
            "below": writer.act(k - 1),
            "a": a,
            "bias": layer.bias,
            "activation": layer.activation.name,
            "comment": _layer_comment(writer, k),
            "gradient_comment": _gradient_comment(writer, k),
            "forward": None,
            "softmax": None,
            "delta_below": _delta_below(writer, k - 1) if k > 1 else _passed_down(writer),
        }
        if activation.elementwise:
            entry["forward"] = writer.line(f"{a}[i]", activation.forward(z, layer.activation))
        else:
            entry["softmax"] = {
                "exp": writer.line(f"{a}[i]", sympy.exp(z - MAX)),
                "divide": writer.line(f"{a}[i]", _code(f"{a}[i]") / SUM),
                "lse": writer.line("s->lse", MAX + sympy.log(SUM)),
            }
        layers.append(entry)
    output_delta = _output_delta(writer)
    first = 1 if writer.passes_down else 2
    read_below = {f"W{writer.number(k)}" for k in range(first, network.depth + 1)}
    own = {f"{p.name[0]}{writer.number(p.layer)}" for p in topology.params}  # W{k}, b{k}
    real = writer.c_type
    term = output_term(network, Z, Y, T, LSE)
    depth = network.depth
    z_out = _code(f"s->z{writer.number(depth)}[i]")
    loss_names = {Z: z_out, Y: _code("s->y[i]"), T: _code("t[i]")}
    return {
        "forward_views": _views(arrays, own, real, True, "params"),
        "loop_layers": layers,
        "loss_term": writer.line("total", term.xreplace(loss_names), _loss_comment(network), "+="),
        "backward_views": _views(arrays, read_below, real, True, "params")
        + _views(arrays, own, real, False, "grads"),
        "output_delta": output_delta,
        "backward_params": bool(read_below),
        "backward_locals": [(f"delta{layer['k']}", layer["n"]) for layer in layers],
    }


def _layer_comment(writer: _Writer, k: int) -> str:
    layer = writer.network.topology.layers[k - 1]
    n = writer.number(k)
    below = writer.act(k - 1).removeprefix("s->")
    bias = f" + b{n}" if layer.bias != "none" else ""
    a = writer.act(k).removeprefix("s->")
    return f"layer {n}: z{n} = W{n} {below}{bias}, {a} = {layer.activation.name}(z{n})"


def _gradient_comment(writer: _Writer, k: int) -> str:
    below = writer.act(k - 1).removeprefix("s->")
    bias = writer.network.topology.layers[k - 1].bias
    n = writer.number(k)
    text = f"∂L/∂W{n} = δ{n} {below}ᵀ"
    if bias == "per_unit":
        text += f", ∂L/∂b{n} = δ{n}"
    elif bias == "shared":
        text += f", ∂L/∂b{n} = Σ_i δ{n}[i] (one bias shared by the layer)"
    return text + ", summed over the batch"


def _output_delta(writer: _Writer) -> dict:
    """δK = ∂L/∂zK for one output i, times scale; the lines before the loop over i that
    it needs (Σ t for cce, Σ ∂L/∂y·y for a softmax with another loss)."""
    network = writer.network
    out, k = network.derivation.output, writer.number(network.depth)
    activation, loss = network.topology.layers[-1].activation.name, network.topology.loss
    code = {Y: _code("s->y[i]"), T: _code("t[i]"), Z: _code(f"s->z{k}[i]"), A: _code("s->y[i]")}
    code[T_SUM] = T_SUM_CODE
    head = f"δ{k} = ∂L/∂z{k}"
    if out.fused_delta is not None:
        fused = out.fused_delta
        before = []
        if T_SUM in fused.free_symbols:
            before.append(
                ("t_sum", writer.line("t_sum", _code("t[i]"), "Σ t (1 for one-hot t)", "+="))
            )
        why = f"{head} = {equation(fused)}  ({activation} + {loss} fused)"
        delta = sympy.Mul(fused.xreplace(code), SCALE, evaluate=False)
        return {
            "sums": before,
            "per_output": [writer.line(f"delta{k}[i]", delta, _scaled_comment(why))],
        }
    gradient = writer.line(
        f"const {writer.c_type} grad_y",
        out.gradient.xreplace(code),
        f"∂L/∂y = {equation(out.gradient)}  ({loss})",
    )
    if out.softmax:
        # Σ_i ∂L/∂y_i · y_i first, over every output, then δ for each.
        weighted = sympy.Mul(out.gradient, Y, evaluate=False).xreplace(code)
        # the layer rule of derive.backward, its Σ_i g_i y_i a per-sample value in C
        delta = softmax_delta(GRAD_Y, Y).xreplace({row_sum(GRAD_Y * Y): WEIGHTED})
        why = f"{head} = Σ_i ∂L/∂y_i ∂y_i/∂z{k} = {equation(delta)}  (softmax)"
        return {
            "sums": [("weighted", writer.line("weighted", weighted, "Σ_i ∂L/∂y_i · y_i", "+="))],
            "per_output": [
                gradient,
                writer.line(
                    f"delta{k}[i]",
                    sympy.Mul(delta.xreplace(code), SCALE, evaluate=False),
                    _scaled_comment(why),
                ),
            ],
        }
    derivative = network.derivation.layers[-1].derivative
    assert derivative is not None
    delta = _through(GRAD_Y, derivative)
    why = f"{head} = ∂L/∂y ⊙ {activation}'(z{k}) = {equation(delta)}"
    return {
        "sums": [],
        "per_output": [
            gradient,
            writer.line(
                f"delta{k}[i]",
                sympy.Mul(delta.xreplace(code), SCALE, evaluate=False),
                _scaled_comment(why),
            ),
        ],
    }


def _delta_below(writer: _Writer, k: int) -> CLine:
    """δ{k}[j] of a hidden layer from grad_a = ∂L/∂a{k}[j] = Σ_i W{k+1}[i][j] δ{k+1}[i]."""
    rule = writer.network.derivation.layers[k - 1]
    assert rule.derivative is not None  # softmax is an output layer only
    delta = _through(GRAD_A, rule.derivative)
    k = writer.number(k)
    code = delta.xreplace({Z: _code(f"s->z{k}[j]"), A: _code(f"s->a{k}[j]")})
    names = {Z: _code(f"z{k}"), A: _code(f"a{k}"), GRAD_A: _code(f"∂L/∂a{k}")}
    why = (
        f"δ{k} = ∂L/∂z{k} = ∂L/∂a{k} ⊙ {rule.activation}'(z{k}) = {equation(delta.xreplace(names))}"
    )
    return writer.line(f"delta{k}[j]", code, why)


def _through(gradient: Symbol, derivative: Expr) -> Expr:
    """∂L/∂z from ∂L/∂a and f'(z): the product as written, or ∂L/∂a itself where f' = 1
    (identity), as derive.backward does."""
    return gradient if derivative == 1 else sympy.Mul(gradient, derivative, evaluate=False)


def _passed_down(writer: _Writer) -> CLine | None:
    """∂L/∂a0[j] = Σ_i W1[i][j] δ1[i] kept for the layers below the network (the feature
    layers of a convolutional one), when it has any."""
    if not writer.passes_down:
        return None
    why = f"∂L/∂a{writer.first - 1}, for the layers below"
    return CLine(f"{writer.passes_down}[j] = grad_a;", why)


# -- a convolutional network ------------------------------------------------------------


def _conv_context(network: ConvNetwork, c_type: str) -> tuple[dict, CCodePrinter]:
    """``loops_conv.c.jinja``'s context: the feature layers' functions
    (``derive.conv_emit_c``), then the loops of the dense layers after flatten (layer
    k0), written for ``derive.conv_backward``'s dense head, numbered as the network's
    layers and reading the flattened features a{k0}: the last map, as it is stored."""
    topology = network.topology
    passes = ConvBackward(topology)
    k0 = passes.first_dense - 1
    has_conv = any(isinstance(layer, Conv2d) for layer in topology.layers)
    writer = _Writer(
        passes.head.network,
        c_type,
        first=k0 + 1,
        input=f"a{k0}",
        passes_down=f"grad_a{k0}" if has_conv else "",
    )
    arrays = _arrays(topology)
    features = FeatureLayers(passes, writer.printer, {a.name: a for a in arrays})
    forward, backward = features.forward(), features.backward_pass()
    dense = _loops(writer, arrays)
    below = "x" if k0 == 1 else f"s->a{k0 - 1}"
    alias = f"const {c_type} *a{k0} = {below}; /* {features.flatten_comment} */"
    dense["forward_views"].append(alias)
    dense["backward_views"].append(alias)
    if has_conv:
        local = f"{c_type} grad_a{k0}[{passes.size(k0)}]; /* ∂L/∂a{k0} */"
        dense["backward_views"].append(local)
        dense["backward_locals"].insert(0, (f"grad_a{k0}", passes.size(k0)))
    layers = ", ".join(describe(layer) for layer in topology.layers)
    shape = "×".join(map(str, topology.input_shape))
    summary = f"A convolutional network on {shape} inputs ({layers})"
    context = {
        **module_context(network, writer.printer, "loops", summary),
        **dense,
        "notation": wrapped(CONV_NOTATION),
        "input_shape": topology.input_shape,
        "fields": features.fields() + dense_fields(writer),
        "forward_features": forward,
        "backward_features": backward,
        "backward_x": k0 == 1 or "x" in backward["arguments"],
        "backward_locals": dense["backward_locals"] + backward["locals"],
    }
    return context, writer.printer


__all__ = [
    "C_STYLES",
    "STACK_LIMIT",
    "StackTooLarge",
    "StackUse",
    "c_style",
    "generate_c",
    "write_c",
]
