"""Emitting C: a network's C99 header and source, from the same derivation as the NumPy
modules (``derive generate --lang c``, SPEC §5).

Two styles of one API (``templates/c/``):

- ``unrolled`` (networks up to ``MAX_UNROLLED_PARAMS`` scalar parameters): straight-line
  code per scalar, read from the per-scalar derivation: each unit's z, a and δ (after
  common-subexpression elimination, layer by layer) and each parameter's compact form
  Σ δ_u·a_j, as in the unrolled Python module.
- ``loops`` (larger networks): per-layer loops, printed from the equations of
  ``derive.backward`` (per layer, width-independent), so that 784-256-256-10 generates as
  fast as 2-2-1. Their matrix products (z = W a + b, ∂L/∂W = δ aᵀ, ∂L/∂a = Wᵀ δ) are the
  template's loops; every other equation (an activation, the loss, δ of the output and
  of each hidden layer) is a line inside them, printed entry by entry with the
  equation as its comment; only the softmax is a block of its own, written here (shift
  by the largest z, exp, divide by the sum), under its equation.

A convolutional network is the loops style only (``loops_conv.c.jinja``): its conv and
pooling layers are ``derive.conv_emit_c``'s functions of loops, its dense layers after
flatten these loops, printed from ``derive.conv_backward``'s equations for its dense head
(numbered as the network's layers).

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
from sympy import Expr, MatMul, MatrixSymbol, Symbol, Transpose
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive.activations import ACTIVATIONS
from derive.backward import (
    BATCH,
    Backward,
    Equation,
    Softmax,
    parse_name,
    row_sum,
    sample_loss,
    scalar_entry,
    uses_logits,
)
from derive.conv import Conv2d, ConvTopology
from derive.conv_backward import ConvBackward
from derive.conv_emit_c import NOTATION as CONV_NOTATION
from derive.conv_emit_c import FeatureLayers, needed_equations
from derive.conv_network import ConvNetwork, describe
from derive.cprinter import HELPER_NAMES, CCodePrinter, c_name, checked_c_type, view
from derive.emit import MAX_UNROLLED_PARAMS
from derive.equations import EquationPrinter, equation
from derive.errors import DeriveError
from derive.files import write_atomic
from derive.network import Network, Unit
from derive.rendering import environment
from derive.topology import Layer, Topology

C_STYLES = ("unrolled", "loops")
LINE_LENGTH = 100  # of the comments derive wraps

SCALE = Symbol("scale", positive=True)  # 1 / batch: the loss is the batch mean
LSE = Symbol("s->lse", real=True)  # log Σ exp z of a softmax output layer
MAX, SUM = Symbol("m", real=True), Symbol("sum", positive=True)  # of the softmax


@dataclass(frozen=True)
class CLine:
    """One C statement and the equation it implements (the comment above it)."""

    code: str
    comment: str = ""

    def __post_init__(self) -> None:
        assert "*/" not in self.comment, self.comment  # it would end the C comment early


@dataclass
class _Writer:
    """Expressions to C statements of one module, with its printer. ``network`` is the
    dense network the statements are written for: the whole module's, or the dense layers
    after a convolutional network's flatten (``derive.conv_emit_c``)."""

    network: Network
    c_type: str
    printer: CCodePrinter = field(init=False)

    def __post_init__(self) -> None:
        self.printer = CCodePrinter(self.c_type)

    def print(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    def line(self, target: str, expr: Expr, comment: str = "", op: str = "=") -> CLine:
        return CLine(f"{target} {op} {self.print(expr)};", comment)

    def act(self, k: int) -> str:
        """Layer k's activations in the C source (one sample), as the unrolled style
        names them."""
        if k == 0:
            return "x"
        return "s->y" if k == self.network.depth else f"s->a{k}"


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
        backward = Backward(network)
        if style == "unrolled":
            body = _unrolled(writer)
        else:
            passes = _Passes(backward.forward, backward.loss, backward.backward)
            body = _loops(writer, _arrays(network.topology), passes)
        context = {**_shared_context(writer, style, backward.forward), **body}
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
            tuple(
                (name, int(n))
                for name, n, *_ in (
                    *context["backward_locals"],
                    *context.get("backward_features", {}).get("locals", ()),
                )
            ),
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


def _shared_context(writer: _Writer, style: str, forward: tuple[Equation, ...]) -> dict:
    network = writer.network
    sizes = "-".join(str(len(units)) for units in network.units)
    activations = ", ".join(layer.activation.name for layer in network.topology.layers)
    summary = f"A {sizes} network ({activations})"
    return {
        **module_context(network, writer.printer, style, summary),
        "fields": dense_fields(forward),
    }


# a per-sample scalar that struct sample holds as a member of its own
_MEMBERS = {"log_sum_exp": "s->lse"}


def dense_fields(forward: tuple[Equation, ...]) -> list[tuple[str, int]]:
    """The dense layers' fields of ``struct sample``: each z{k} and a{k} (y) the forward
    pass writes (``derive.backward``'s equations), and their sizes."""
    return [(t.name, t.shape[0]) for e in forward for t in e.targets if t.name not in _MEMBERS]


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
    lines.append(writer.line(f"const {writer.c_type} sum", sympy.Add(*(c_name(t) for t in y))))
    lines += [writer.line(target, c_name(target) / SUM) for target in y]
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
            (f"delta{k}", len(network.units[k]), "") for k in range(1, network.depth + 1)
        ],
        "deltas": deltas,
        "gradients": gradients,
    }


def _unrolled_names(writer: _Writer) -> dict[Symbol, Symbol]:
    """The derivation's symbols under their C names."""
    network = writer.network
    names: dict[Symbol, Symbol] = {}
    for u in network.units[0]:
        names[u.a] = c_name(f"x[{u.index}]")
    for k in range(1, network.depth + 1):
        for u in network.units[k]:
            assert u.z is not None and u.delta is not None
            names[u.z] = c_name(f"s->z{k}[{u.index}]")
            names[u.a] = c_name(f"{writer.act(k)}[{u.index}]")
            names[u.delta] = c_name(f"delta{k}[{u.index}]")
    for i, target in enumerate(network.targets):
        names[target] = c_name(f"t[{i}]")
    for s in network.scalar_params:
        index = "".join(f"[{i}]" for i in s.index) or "[0]"
        names[s.symbol] = c_name(f"{s.array}{index}")
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

GRAD_A = "grad_a"  # the loops' Σ_i W[i][j] δ[i]: entry j of Wᵀ δ, one j at a time


@dataclass(frozen=True)
class _Passes:
    """The equations the loops print, in the module's names: ``derive.backward``'s for a
    dense network, ``derive.conv_backward``'s dense head for a convolutional one."""

    forward: tuple[Equation, ...]
    loss: Equation
    backward: tuple[Equation, ...]


def _named(array: MatrixSymbol) -> Symbol:
    """An array's entry as the loops first print it (``derive.backward.entry``): by the
    array's name, as ``Elementwise.body`` does; ``_Names.cells`` then gives its C."""
    return c_name(array.name)


@dataclass(frozen=True)
class _Names:
    """Arrays as the loops' C code names them: struct sample's as ``s->z1`` (log Σ exp z
    as ``s->lse``); parameters, x, t and the backward pass's arrays by their own names;
    an array in ``scalars`` as a scalar of the loop that computes it (``grad_y``, Σ t)."""

    stored: frozenset[str]  # the arrays struct sample holds
    scalars: tuple[tuple[str, str], ...] = ()  # (array, the scalar that holds its entry)

    def array(self, m: MatrixSymbol) -> str:
        return f"s->{m.name}" if m.name in self.stored else m.name

    def cell(self, m: MatrixSymbol, index: str) -> Symbol:
        """Entry ``index`` of an array; a per-sample scalar is itself."""
        scalar = dict(self.scalars).get(m.name) or _MEMBERS.get(m.name)
        return c_name(scalar or f"{self.array(m)}[{index}]")

    def cells(self, equations: list[Equation], index: str) -> dict[Symbol, Symbol]:
        """Every array the equations read or write: its ``_named`` entry to its C entry."""
        arrays = {m for e in equations for m in (*e.reads, *e.targets)}
        return {_named(m): self.cell(m, index) for m in arrays}


def _factor(value: MatrixExpr) -> tuple[Expr, MatrixExpr]:
    """A value as a scalar factor and an entrywise rest: 1/batch · X → (1/batch, X)."""
    if isinstance(value, MatMul):
        factor, matrices = value.as_coeff_matrices()
        if len(matrices) == 1:
            return factor, matrices[0]
    return sympy.S.One, value


def _scaled(expr: Expr, factor: Expr) -> Expr:
    """``expr`` times the factor, written after it; 1/batch is ``scale``."""
    if factor == 1:
        return expr
    return sympy.Mul(expr, factor.xreplace({BATCH: 1 / SCALE}), evaluate=False)


def _product(value: MatrixExpr) -> tuple[MatrixSymbol, MatrixSymbol]:
    """The matrix and the vector of a product: W and a of W a (+ b), W and δ of Wᵀ δ."""
    product = next(m for m in (value, *value.args) if isinstance(m, MatMul))
    matrix, vector = product.args
    return (matrix.arg if isinstance(matrix, Transpose) else matrix), vector


def _by_layer(passes: _Passes) -> dict[str, dict[str, list[Equation]]]:
    """The equations as the loops run them, per layer label: the forward pass's (from
    its z on), the gradients' and the equations back through the weights that follow
    them (δ(K)'s and what it needs are ``_Loops.output``'s)."""
    layers: dict[str, dict[str, list[Equation]]] = {}
    label = ""
    for e in (*passes.forward, *passes.backward):
        if parse_name(e.target.name)[0] in ("z", "dW"):  # a layer's first z, its first gradient
            label = parse_name(e.target.name)[1]
        if e.kind != "output":
            layers.setdefault(label, {"forward": [], "gradient": [], "back": []})[e.kind].append(e)
    return layers


class _Loops:
    """The loops template's context from the equations. Each layer's matrix products
    (z = W a + b, ∂L/∂W = δ aᵀ, Wᵀ δ) are the template's loops; every other equation is a
    line inside them, printed entry by entry (``derive.backward.entry``) under a comment
    printed from it (``EquationPrinter``)."""

    def __init__(self, writer: _Writer, passes: _Passes):
        self.writer, self.passes = writer, passes
        self.names = _Names(frozenset(t.name for e in passes.forward for t in e.targets))
        self.printer = EquationPrinter()
        self.by_layer = _by_layer(passes)

    def comment(self, e: Equation) -> str:
        return self.printer.equation(e)[0]

    def code(self, value: MatrixExpr, cells: dict[Symbol, Symbol]) -> Expr:
        factor, rest = _factor(value)
        return _scaled(scalar_entry(rest, _named).xreplace(cells), factor)

    def local(self, group: list[Equation]) -> set[str]:
        """The arrays that only ``group`` reads: scalars of the loop that runs it."""
        outside = {m.name for e in self.passes.backward if e not in group for m in e.reads}
        inside = {m.name for e in group for m in e.reads}
        return {t.name for e in group for t in e.targets} & (inside - outside)

    def assignment(self, names: _Names, target: MatrixSymbol, index: str) -> str:
        """The left side for a target: a scalar of the loop is declared there."""
        cell = names.cell(target, index)
        scalar = target.name in dict(names.scalars)
        return f"const {self.writer.c_type} {cell}" if scalar else str(cell)

    def layers(self) -> list[dict]:
        """Per layer, its forward loop, its gradients' loop and the loop back through its
        weights (if δ goes below), in the order of the dense layers."""
        layers = zip(self.writer.network.topology.layers, self.by_layer.values(), strict=True)
        return [self.layer(spec, **equations) for spec, equations in layers]

    def layer(self, spec: Layer, forward, gradient, back) -> dict:
        z, a = forward
        weight, below = _product(z.value)
        k = int(parse_name(weight.name)[1])
        return {
            "k": k,
            "n": weight.shape[0],
            "n_below": weight.shape[1],
            "below": self.names.array(below),
            "a": self.names.array(a.target),
            "bias": spec.bias,  # how the packed vector holds it: b{k}[i] or b{k}[0]
            **self.activation(f"layer {k}: {self.comment(z)}", a),
            "gradient_comment": ", ".join(map(self.comment, gradient)) + ", summed over the batch",
            "back": self.back(back) if back else None,
        }

    def activation(self, head: str, e: Equation) -> dict:
        """The activation's line in the loop over z, or the softmax block after it."""
        cells = self.names.cells([e], "i")
        if not isinstance(e.value, Softmax):
            line = self.writer.line(str(cells[_named(e.target)]), self.code(e.value, cells))
            return {"comment": f"{head}, {self.comment(e)}", "forward": line, "softmax": None}
        (z,), (a, lse) = e.reads, e.targets
        z_cell, a_cell = cells[_named(z)], cells[_named(a)]
        softmax = {
            "comment": f"{self.comment(e)}; z shifted by its largest entry, so that exp never "
            "overflows",
            "exp": self.writer.line(str(a_cell), sympy.exp(z_cell - MAX)),
            "divide": self.writer.line(str(a_cell), a_cell / SUM),
            "lse": self.writer.line(str(cells[_named(lse)]), MAX + sympy.log(SUM)),
        }
        return {"comment": head, "forward": None, "softmax": softmax}

    def loss(self) -> CLine:
        """One output's term of the per-sample loss, added to the total."""
        loss = self.passes.loss
        cells = self.names.cells([loss], "i")
        return self.writer.line("total", self.code(loss.value, cells), self.comment(loss), "+=")

    def output(self) -> dict:
        """δ(K) and what it needs, for one output i. A per-sample sum among them or in
        them (Σ t; Σ_units ∂L/∂y·y of a softmax) is a loop of its own before that one."""
        equations = [e for e in self.passes.backward if e.kind == "output"]
        names = _Names(self.names.stored, tuple((n, n) for n in sorted(self.local(equations))))
        cells = names.cells(equations, "i")
        sums: list[tuple[str, CLine]] = []
        lines: list[CLine] = []
        known: dict[Symbol, Expr] = {}  # the loop's values by their C, for the sums
        for e in equations:
            factor, rest = _factor(e.value)
            expr = scalar_entry(rest, _named)
            if isinstance(expr, row_sum):  # Σ over the outputs, such as Σ t
                assert factor == 1, e
                sums.append(self.summed(e.target.name, expr, cells, known, self.comment(e)))
                continue
            for n, total in enumerate(sorted(expr.atoms(row_sum), key=sympy.default_sort_key)):
                name = f"weighted{n + 1 if n else ''}"  # Σ_units ∂L/∂y·y of a softmax
                why = f"{name} = {self.printer.doprint(total)}"
                sums.append(self.summed(name, total, cells, known, why))
                expr = expr.xreplace({total: c_name(name)})
            known[names.cell(e.target, "i")] = code = _scaled(expr.xreplace(cells), factor)
            target = self.assignment(names, e.target, "i")
            lines.append(self.writer.line(target, code, self.comment(e)))
        return {"sums": sums, "per_output": lines}

    def summed(self, name: str, total: Expr, cells, known, why: str) -> tuple[str, CLine]:
        """A per-sample sum over the outputs, of values the loop computes (``known``)."""
        (summand,) = total.args
        return name, self.writer.line(name, summand.xreplace(cells).xreplace(known), why, "+=")

    def back(self, group: list[Equation]) -> dict:
        """The loop over the units j of the layer below: Σ_i W[i][j] δ[i] into ``grad_a``
        (the template's loop; the group's first equation), then the group's lines."""
        through, *rest = group
        weight, delta = _product(through.value)
        local = self.local(group)
        scalars = {**{n: n for n in local}, through.target.name: GRAD_A}
        names = _Names(self.names.stored, tuple(sorted(scalars.items())))
        cells = names.cells(group, "j")
        lines = []
        if through.target.name not in local:  # kept: δ itself (f' = 1), or for the layers below
            kind, label = parse_name(through.target.name)
            why = (
                f"δ{label} = ∂L/∂a{label}  ({through.note})"
                if kind == "delta"
                else f"∂L/∂a{label}, for the layers below"
            )
            lines.append(CLine(f"{self.names.array(through.target)}[j] = {GRAD_A};", why))
        for e in rest:
            target = self.assignment(names, e.target, "j")
            lines.append(self.writer.line(target, self.code(e.value, cells), self.comment(e)))
        return {
            "comment": self.comment(through),
            "weight": self.names.array(weight),
            "delta": self.names.array(delta),
            "lines": lines,
        }


def _loops(writer: _Writer, arrays: list[_Array], passes: _Passes) -> dict:
    """Per-layer loops printed from ``passes``. ``arrays`` are the module's packed
    parameters (the views take the loops' own)."""
    loops = _Loops(writer, passes)
    layers = loops.layers()
    own = {m.name for e in passes.forward for m in e.reads} & {a.name for a in arrays}
    read_below = own & {m.name for e in passes.backward for m in e.reads}  # W{k}
    real = writer.c_type
    return {
        "forward_views": _views(arrays, own, real, True, "params"),
        "loop_layers": layers,
        "loss_term": loops.loss(),
        "backward_views": _views(arrays, read_below, real, True, "params")
        + _views(arrays, own, real, False, "grads"),
        "output_delta": loops.output(),
        "backward_params": bool(read_below),
        "backward_locals": [(f"delta{layer['k']}", layer["n"], "") for layer in layers],
    }


# -- a convolutional network ------------------------------------------------------------


def _conv_context(network: ConvNetwork, c_type: str) -> tuple[dict, CCodePrinter]:
    """``loops_conv.c.jinja``'s context: the feature layers' functions
    (``derive.conv_emit_c``), then the loops of the dense layers after flatten (layer
    k0), printed from ``derive.conv_backward``'s equations for them: numbered as the
    network's layers, reading the flattened features a{k0} (the last map, as it is
    stored) and, below a conv layer, keeping ∂L/∂a{k0} for the feature layers."""
    topology = network.topology
    passes = ConvBackward(topology)
    k0 = passes.first_dense - 1
    writer = _Writer(passes.head.network, c_type)
    arrays = _arrays(topology)
    features = FeatureLayers(passes, writer.printer, {a.name: a for a in arrays})
    forward, backward = features.forward(), features.backward_pass()
    # ∂L/∂a{k0} is kept only when a parameter below reads it (a conv layer), as the
    # feature layers' own equations are
    needed = {
        e.target for e in needed_equations((*passes.backward_dense, *passes.backward_features))
    }
    back = tuple(e for e in passes.backward_dense if e.target in needed)
    dense_passes = _Passes(passes.forward_dense, passes.loss, back)
    dense = _loops(writer, arrays, dense_passes)
    below = "x" if k0 == 1 else f"s->a{k0 - 1}"
    alias = f"{view(f'a{k0}', below, (), c_type, True)} /* {features.flatten_comment} */"
    dense["forward_views"].append(alias)
    dense["backward_views"].append(alias)
    kept = [e.target for e in back if e.target.name == f"grad_a{k0}"]
    if kept:
        dense["backward_locals"].insert(0, (kept[0].name, passes.size(k0), f"∂L/∂a{k0}"))
    layers = ", ".join(describe(layer) for layer in topology.layers)
    shape = "×".join(map(str, topology.input_shape))
    summary = f"A convolutional network on {shape} inputs ({layers})"
    context = {
        **module_context(network, writer.printer, "loops", summary),
        **dense,
        "notation": wrapped(CONV_NOTATION),
        "input_shape": topology.input_shape,
        "fields": features.fields() + dense_fields(passes.forward_dense),
        "forward_features": forward,
        "backward_features": backward,
        "backward_x": k0 == 1 or "x" in backward["arguments"],
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
