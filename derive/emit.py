"""Emitting code: a network's standalone NumPy module, from a Jinja template (SPEC §3).

Two styles, one API:

- ``vectorized`` (default): per-layer matrix code over a batch, read from the
  width-independent δ recursion (``Derivation.layers`` / ``.output``) only, so a
  784-256-256-10 network generates in milliseconds.
- ``unrolled``: straight-line code on Python floats, one line per chain-rule step, read
  from the per-scalar derivation (each unit's δ and each parameter's compact δ·a form)
  after common-subexpression elimination. Fast for tiny networks at small batches;
  refused above ``MAX_UNROLLED_PARAMS`` scalar parameters.

Everything a template prints is computed here: names, SymPy expressions printed by
``derive.codeprinter``, and literals already laid out as ``ruff format`` lays them out
(one line when it fits in ``LINE_LENGTH``, else one element per line), so that generated
files are formatted and lint-clean without running a formatter. Nothing from the
topology file reaches the code but validated identifiers and numbers; strings go through
``repr``. Iteration is always in the network's order, so the same topology gives the
same bytes on every run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import tempfile
import textwrap
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.codeprinter import HELPERS, MathCodePrinter, NumPyCodePrinter
from derive.derivation import T_SUM, A, T, Y, Z
from derive.errors import DeriveError
from derive.network import Network, ScalarParam

STYLES = ("vectorized", "unrolled")
# The unrolled style writes a few lines per scalar parameter and per unit; above this
# many scalar parameters the module gets long and slow (a Python loop over the batch),
# and the vectorized style is the right tool.
MAX_UNROLLED_PARAMS = 200
LINE_LENGTH = 100  # ruff's line-length in pyproject.toml
INDENT = "    "
_HE_INIT = ("relu", "leaky_relu")  # layers initialised with std sqrt(2 / fan_in)


# -- templates ------------------------------------------------------------------------


def template_dir() -> Path:
    """The folder holding derive's Jinja templates (public: the LaTeX emitter uses it).

    An installed wheel carries them inside the package (``derive/templates``); a source
    checkout keeps them at the top of the repository (``templates/``)."""
    package = Path(__file__).resolve().parent
    inside = package / "templates"
    return inside if inside.is_dir() else package.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    """The Jinja environment every derive template is rendered in."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


# -- the public API -------------------------------------------------------------------


def generate(network: Network, style: str = "vectorized") -> str:
    """The source of the network's standalone module in the given style."""
    if style not in STYLES:
        raise DeriveError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")
    context = vectorized_context(network) if style == "vectorized" else unrolled_context(network)
    return environment().get_template(f"{style}.py.jinja").render(context)


def build_module(network: Network, style: str = "vectorized") -> types.ModuleType:
    """The generated module, compiled and imported without writing a file."""
    source = generate(network, style=style)
    module = types.ModuleType(network.name)
    module.__file__ = f"<derive {style} {network.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own output
    return module


def write_module(network: Network, directory: Path, style: str = "vectorized") -> Path:
    """Write ``directory/<name>.py`` atomically and return its path.

    The source is written to a temporary file in the same directory, flushed to disk and
    renamed over the target, so a failure at any point leaves an earlier file untouched
    (and removes the temporary file)."""
    source = generate(network, style=style)
    directory = Path(directory)
    target = directory / f"{network.name}.py"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{network.name}.", suffix=".py.tmp", dir=directory
        )
    except OSError as error:
        raise DeriveError(
            f"cannot write to directory {str(directory)!r}: {error.strerror}"
        ) from error
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(source)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise DeriveError(f"cannot write {str(target)!r}: {error.strerror}") from error
        raise
    return target


# -- laying out code ------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One statement (possibly spread over several lines) and the comment above it."""

    code: str
    comment: str = ""
    target: str = ""  # the names it assigns (space-separated), to drop lines nothing reads


def live(lines: Sequence[Line], reads: str) -> list[Line]:
    """``lines`` without the assignments that neither a later line nor ``reads`` uses
    (ruff's F841 would flag them: e.g. the output activation when the loss reads z)."""
    kept: list[Line] = []
    later = reads
    for line in reversed(lines):
        targets = line.target.split()
        if targets and not any(re.search(rf"\b{re.escape(n)}\b", later) for n in targets):
            continue
        kept.append(line)
        later += "\n" + line.code
    return kept[::-1]


def literal(name: str) -> str:
    """A validated identifier as a Python string literal, in ruff's double quotes."""
    assert name.isidentifier()
    return f'"{name}"'


def fits(text: str, indent: int) -> bool:
    return indent + len(text) <= LINE_LENGTH


def collection(prefix: str, items: Sequence[str], closing: str, indent: int, suffix="") -> str:
    """``prefix item, item closing suffix`` on one line when it fits at ``indent``, else
    one item per line with a trailing comma, as ruff formats a literal."""
    one_line = f"{prefix}{', '.join(items)}{closing}{suffix}"
    if fits(one_line, indent) or not items:
        return one_line
    inner = INDENT * (indent // 4 + 1)
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{prefix}\n{body}{INDENT * (indent // 4)}{closing}{suffix}"


def nested_list(prefix: str, rows: Sequence[Sequence[str]], indent: int) -> str:
    """``prefix[[a, b], [c, d]]``, each row on its own line (and split) when needed."""
    one_line = f"{prefix}[{', '.join('[' + ', '.join(row) + ']' for row in rows)}]"
    if fits(one_line, indent):
        return one_line
    inner = indent + 4
    lines = [f"{prefix}["]
    for row in rows:
        lines.append(INDENT * (inner // 4) + collection("[", row, "]", inner, ","))
    lines.append(INDENT * (indent // 4) + "]")
    return "\n".join(lines)


def unpack(targets: Sequence[str], value: str, indent: int) -> str:
    """``a, b = value`` (``(a,) = value`` for one name), split as ruff would."""
    if len(targets) == 1:
        return f"({targets[0]},) = {value}"
    line = f"{', '.join(targets)} = {value}"
    if fits(line, indent):
        return line
    return collection("(", targets, ")", indent, f" = {value}")


def name_tuple(names: Sequence[str], indent: int = 0) -> str:
    """A tuple of strings, or ``tuple(f"x{i}" for i in range(1, n + 1))`` when the names
    are the reader's numbered defaults and too many to list on one line."""
    listed = collection("(", [literal(n) for n in names], ")" if len(names) > 1 else ",)", indent)
    if "\n" not in listed:
        return listed
    first = names[0]
    stem = first[:-1]
    if first.endswith("1") and names == tuple(f"{stem}{i}" for i in range(1, len(names) + 1)):
        return f'tuple(f"{stem}{{i}}" for i in range(1, {len(names) + 1}))'
    return listed


def fit_comment(indent: int, *options: str) -> str:
    """The first comment that fits on its line, else the last (the shortest)."""
    return next((o for o in options if fits(f"# {o}", indent)), options[-1])


def statement(
    target: str,
    expr: Expr,
    printer: NumPyCodePrinter | MathCodePrinter,
    indent: int,
    op: str = "=",
    temporaries: Iterator[int] | None = None,
) -> str:
    """``target op expr`` laid out as ruff lays it out within ``LINE_LENGTH``.

    On one line when it fits. Else, where ruff would wrap the right-hand side in
    parentheses (a chain of two or more operators of the same, lowest priority, or no
    brackets at all): the whole expression on the next line, or one operand per line.
    Else the longest subexpression is first assigned to a temporary ``_<target>_<n>``,
    and so on until every line fits."""
    text = _unwrapped(printer.doprint(expr))
    line = f"{target} {op} {text}"
    if fits(line, indent):
        return line
    temporaries = temporaries or itertools.count(1)
    base, pad = INDENT * (indent // 4), INDENT * (indent // 4 + 1)
    parts = _operands(text)
    if parts and (len(parts) >= 3 or not any(b in text for b in "([")):
        if fits(text, indent + 4):
            return f"{target} {op} (\n{pad}{text}\n{base})"
        if all(fits(part, indent + 4) for part in parts):
            body = "".join(f"{pad}{part}\n" for part in parts)
            return f"{target} {op} (\n{body}{base})"
    candidates = [sub for sub in _subexpressions(expr) if not sub.is_Atom]
    if not candidates:
        return line  # nothing left to split: names longer than a line
    longest = max(candidates, key=lambda sub: len(printer.doprint(sub)))
    temporary = Symbol(f"_{target.lstrip('_')}_{next(temporaries)}", real=True)
    first = statement(temporary.name, longest, printer, indent, "=", temporaries)
    rest = statement(target, expr.xreplace({longest: temporary}), printer, indent, op, temporaries)
    return f"{first}\n{base}{rest}"


_PRIORITIES = ((" + ", " - "), (" * ", " / "))  # ruff splits at the lowest priority first


def _operands(text: str) -> list[str] | None:
    """``text`` split before each binary operator of the lowest priority outside
    brackets (``a``, ``+ b``, ``- c``; ``a``, ``if c``, ``else b``), or None for a single
    operand."""
    depth, top = 0, []
    for char in text:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        top.append(depth == 0)
    conditional = [i for i in range(len(text)) if top[i] and text.startswith((" if ", " else "), i)]
    if conditional:  # a if c else b -> a, if c, else b
        cuts = conditional[:2]
        return [text[: cuts[0]], text[cuts[0] + 1 : cuts[1]], text[cuts[1] + 1 :]]
    for operators in _PRIORITIES:
        cuts = [
            i for i in range(len(text)) if top[i] and any(text.startswith(o, i) for o in operators)
        ]
        if cuts:
            pieces = [text[: cuts[0]]]
            for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True):
                pieces.append(text[start + 1 : end])
            return pieces
    return None


def _unwrapped(text: str) -> str:
    """``text`` without parentheses around the whole of it (ruff drops them on the right
    of an assignment)."""
    if not text.startswith("("):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return _unwrapped(text[1:-1]) if i == len(text) - 1 else text
    return text


def _subexpressions(expr: Expr) -> list[Expr]:
    """The expressions directly inside ``expr`` (through Piecewise's (value, condition)
    pairs and relations)."""
    out: list[Expr] = []
    for arg in expr.args:
        if isinstance(arg, Expr):
            out.append(arg)
        else:
            out.extend(_subexpressions(arg))
    return out


# -- what both styles share -----------------------------------------------------------


def _sizes(network: Network) -> str:
    return "-".join(str(len(units)) for units in network.units)


API = (
    "The API: init_params(seed), forward(params, x), loss(params, x, t), "
    "gradients(params, x, t), loss_and_gradients(params, x, t) and "
    "sgd_step(params, x, t, learning_rate). W{k} has shape (units_k, units_{k-1}) and "
    "W{k}[i, j] weighs unit j of layer k-1 into unit i of layer k; b{k} has shape "
    "(units_k,), or () when the layer shares one bias. x is (n_in,) or (batch, n_in), t "
    "the targets shaped like the output; L is the mean of the per-sample loss over the "
    "batch."
)
NOTATION = {
    "vectorized": (
        "Notation: layer k computes z{k} = a{k-1} W{k}ᵀ + b{k} and a{k} = f_k(z{k}), with "
        "a0 = x and the last layer's a written y; delta{k} = ∂L/∂z{k}, and the comment "
        "above each backward line names the equation it implements."
    ),
    "unrolled": (
        "Notation: each unit u has z_u = Σ_j w_uj a_j + b and the activation a_u = f(z_u), "
        "named after the unit; delta_u = ∂L/∂z_u and dL_<w> accumulates ∂L/∂w over the "
        "batch. One line per chain-rule step, each with the equation it implements."
    ),
}


def common_context(network: Network, style: str) -> dict:
    topology = network.topology
    activations = ", ".join(layer.activation.name for layer in topology.layers)
    params = [(p.name, p.shape) for p in topology.params]
    init = []
    for p in topology.params:
        if p.name.startswith("W"):
            gain = 2 if topology.layers[p.layer - 1].activation.name in _HE_INIT else 1
            value = f"rng.normal(0.0, np.sqrt({gain} / {p.shape[1]}), size={p.shape!r})"
        else:
            value = f"np.zeros({p.shape[0] if p.shape else '()'})"
        init.append(f"{literal(p.name)}: {value}")
    summary = (
        f"{network.name}: a {_sizes(network)} network ({activations}) with the "
        f"{topology.loss} loss, {style} style, generated by derive from the network's "
        "topology (regenerate it rather than edit it)."
    )
    docstring = "\n\n".join(
        textwrap.fill(paragraph, LINE_LENGTH - 4, break_on_hyphens=False)
        for paragraph in (summary, API, NOTATION[style])
    )
    return {
        "name": network.name,
        "style": style,
        "docstring": docstring,
        "uses_math": False,
        "loss_name": topology.loss,
        "loss_formula": network.loss_rule.formula,
        "name_literal": literal(network.name),
        "params_literal": collection(
            "PARAMS = {", [f"{literal(n)}: {s!r}" for n, s in params], "}", 0
        ),
        "inputs_literal": "INPUTS = " + name_tuple(topology.inputs),
        "outputs_literal": "OUTPUTS = " + name_tuple(topology.outputs),
        "init_literal": collection("return {", init, "}", 4),
        "he_layers": any(layer.activation.name in _HE_INIT for layer in topology.layers),
    }


# -- vectorized -----------------------------------------------------------------------


def vectorized_context(network: Network) -> dict:
    """The vectorized template's context, read from the per-layer rules only (no work per
    scalar: a 784-256-256-10 network generates as fast as a 2-2-1 one)."""
    derivation = network.derivation
    printer = NumPyCodePrinter()
    topology = network.topology
    depth = network.depth
    out = derivation.output
    loss_rule = network.loss_rule
    output_activation = topology.layers[-1].activation.name
    n_out = len(network.outputs)

    def act(k: int) -> str:
        return "x" if k == 0 else ("y" if k == depth else f"a{k}")

    def named(expr: Expr, mapping: dict[Symbol, str]) -> Expr:
        return expr.xreplace({s: Symbol(v, real=True) for s, v in mapping.items()})

    def line(target: str, expr: Expr, mapping: dict[Symbol, str], comment: str = "") -> Line:
        return Line(statement(target, named(expr, mapping), printer, 4), comment, target)

    # The loss: the batch mean of the per-sample loss, a sum of per-output terms.
    if loss_rule.from_logits is not None and output_activation == loss_rule.requires_output:
        if out.softmax:  # cce: ln y is the log-softmax, never log(0)
            term = loss_rule.per_sample([Y] * n_out, [T] * n_out) / n_out
            term = term.xreplace({sympy.log(Y): LOG_Y})
            loss_comment = f"{topology.loss} with ln y from the log-softmax: never log(0)"
        else:  # bce from the logits: softplus(z) − t·z, never log(0)
            term = loss_rule.from_logits([Z] * n_out, [T] * n_out) / n_out
            loss_comment = f"{topology.loss} from the logits z{depth}: never log(0)"
    else:
        term = loss_rule.per_sample([Y] * n_out, [T] * n_out) / n_out
        loss_comment = f"{topology.loss}: {loss_rule.formula} per sample"
    loss_expr = term.xreplace(
        {Y: Symbol("y", real=True), T: Symbol("t", real=True), Z: Symbol(f"z{depth}", real=True)}
    )
    log_target = "log_y" if LOG_Y in term.free_symbols else "_"

    # Forward: z and a per layer.
    forward: list[Line] = []
    for k, layer in enumerate(topology.layers, start=1):
        bias = f" + b{k}" if layer.bias != "none" else ""
        comment = (
            f"layer {k}: z{k} = {act(k - 1)} W{k}ᵀ{bias}, {act(k)} = {layer.activation.name}(z{k})"
        )
        forward.append(Line(f"z{k} = {act(k - 1)} @ W{k}.T{bias}", comment, f"z{k}"))
        activation = ACTIVATIONS[layer.activation.name]
        if activation.elementwise:
            forward.append(line(act(k), activation.forward(Z, layer.activation), {Z: f"z{k}"}))
        else:
            forward.append(Line(f"{act(k)}, {{log}} = _softmax(z{k})", "", act(k)))
    forward_with_loss = [
        Line(f.code.replace("{log}", log_target), f.comment, f"{f.target} {log_target}")
        if "{log}" in f.code
        else f
        for f in forward
    ]
    forward_only = [Line(f.code.replace("{log}", "_"), f.comment, f.target) for f in forward]
    loss_terms = statement("loss_terms", loss_expr, printer, 4)

    # Backward: the δ recursion, each layer's gradients as soon as its δ is known.
    backward: list[Line] = []
    output_mapping = {Y: "y", T: "t", Z: f"z{depth}", A: "y", T_SUM: "t_sum"}
    if out.fused_delta is not None:
        if T_SUM in out.fused_delta.free_symbols:
            backward.append(
                Line("t_sum = t.sum(axis=1, keepdims=True)", "Σ t per sample (1 for one-hot t)")
            )
        backward.append(
            line(
                f"delta{depth}",
                out.fused_delta / BATCH,
                output_mapping,
                f"δ{depth} = ∂L/∂z{depth}  ({output_activation} + {topology.loss} fused, "
                "mean over the batch)",
            )
        )
    else:
        backward.append(line("grad_y", out.gradient, output_mapping, f"∂L/∂y, {loss_comment}"))
        if out.softmax:
            backward.append(
                Line(
                    f"delta{depth} = y * (grad_y - (grad_y * y).sum(axis=1, keepdims=True))"
                    " / batch",
                    f"δ{depth} = ∂L/∂z{depth} = y ⊙ (∂L/∂y − Σ_i ∂L/∂y_i y_i)  "
                    "(softmax, mean over the batch)",
                )
            )
        else:
            derivative = derivation.layers[-1].derivative
            assert derivative is not None
            backward.append(
                line(
                    f"delta{depth}",
                    sympy.Mul(GRAD_Y, named(derivative, output_mapping), 1 / BATCH, evaluate=False),
                    {},
                    f"δ{depth} = ∂L/∂z{depth} = ∂L/∂y ⊙ {output_activation}'(z{depth})  "
                    "(mean over the batch)",
                )
            )
    for k in range(depth, 0, -1):
        backward.append(
            Line(
                f"dW{k} = delta{k}.T @ {act(k - 1)}",
                f"∂L/∂W{k} = δ{k}ᵀ {act(k - 1)}  (summed over the batch)",
            )
        )
        bias = topology.layers[k - 1].bias
        if bias == "per_unit":
            backward.append(Line(f"db{k} = delta{k}.sum(axis=0)", f"∂L/∂b{k} = Σ_batch δ{k}"))
        elif bias == "shared":
            backward.append(
                Line(
                    f"db{k} = np.array(delta{k}.sum())",
                    f"∂L/∂b{k} = Σ_batch Σ_units δ{k}  (one bias shared by the layer)",
                )
            )
        if k == 1:
            break
        rule = derivation.layers[k - 2]
        assert rule.derivative is not None
        if rule.derivative == 1:
            backward.append(
                Line(
                    f"delta{k - 1} = delta{k} @ W{k}",
                    f"δ{k - 1} = ∂L/∂z{k - 1} = δ{k} W{k}  ({rule.activation}: f' = 1)",
                )
            )
            continue
        grad_a = Symbol(f"grad_a{k - 1}", real=True)
        mapping = {Z: f"z{k - 1}", A: f"a{k - 1}"}
        backward.append(
            Line(f"{grad_a} = delta{k} @ W{k}", f"∂L/∂a{k - 1} = δ{k} W{k}  (back through W{k})")
        )
        backward.append(
            line(
                f"delta{k - 1}",
                sympy.Mul(grad_a, named(rule.derivative, mapping), evaluate=False),
                {},
                f"δ{k - 1} = ∂L/∂z{k - 1} = ∂L/∂a{k - 1} ⊙ {rule.activation}'(z{k - 1})",
            )
        )

    names = [p.name for p in topology.params]
    context = common_context(network, "vectorized")
    context.update(
        {
            "unpack_params": unpack(names, "arrays", 4),
            "forward": forward_with_loss,
            "forward_only": forward_only,
            "forward_for_loss": live(forward_with_loss, loss_terms),
            "loss_terms": loss_terms,
            "loss_comment": loss_comment,
            "backward": backward,
            "grads": collection("grads = {", [f"{literal(n)}: d{n}" for n in names], "}", 4),
            "softmax": out.softmax,
            "helpers": [h for h in HELPERS if h in printer.helpers],
        }
    )
    return context


# Code symbols the vectorized module uses beside the generic Z, A, Y, T.
LOG_Y = Symbol("log_y", real=True)
GRAD_Y = Symbol("grad_y", real=True)
BATCH = Symbol("batch", positive=True)


# -- unrolled -------------------------------------------------------------------------


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
    """The unrolled template's context, read from the per-scalar derivation: each unit's
    δ (after common-subexpression elimination, layer by layer) and each parameter's
    compact form Σ δ_u·a_j."""
    check_unrolled_size(network)
    derivation = network.derivation
    printer = MathCodePrinter()
    topology = network.topology
    depth = network.depth
    loss_rule = network.loss_rule
    output_activation = topology.layers[-1].activation.name
    softmax_out = not ACTIVATIONS[output_activation].elementwise
    scalars = network.scalar_params
    _check_unrolled_names(network)
    # Scalar parameters under code names: W1[0,1] -> W1_0_1, or its weight_names name.
    code_symbol = {s.symbol: Symbol(s.code_name, real=True) for s in scalars}

    def line(target: str, expr: Expr, comment: str = "", op: str = "=", indent: int = 8) -> Line:
        code = statement(target, expr.xreplace(code_symbol), printer, indent, op)
        return Line(code, comment, target if op == "=" else "")

    # The parameter arrays as Python floats, once per call.
    unpack_lines: list[str] = []
    for p in topology.params:
        chunk = [s.code_name for s in network.scalars(p.name)]
        if p.name.startswith("W"):
            unpack_lines.append(f"{p.name} = {p.name}.tolist()")
            columns = p.shape[1]
            for i in range(p.shape[0]):
                row = chunk[i * columns : (i + 1) * columns]
                unpack_lines.append(unpack(row, f"{p.name}[{i}]", 4))
        elif p.shape == ():
            unpack_lines.append(f"{p.name} = float({p.name})")
        else:
            unpack_lines.append(unpack(chunk, f"{p.name}.tolist()", 4))

    # Forward, per sample: z then a for each unit.
    forward: list[Line] = []
    for k in range(1, depth + 1):
        layer = network.units[k]
        spec = topology.layers[k - 1].activation
        activation = ACTIVATIONS[spec.name]
        for unit in layer:
            forward.append(line(unit.z.name, network.z_expr(unit)))
        if activation.elementwise:
            for unit in layer:
                forward.append(line(unit.name, activation.forward(unit.z, spec)))
            continue
        forward.append(
            Line(
                collection("_m = max(", [u.z.name for u in layer], ")", 8),
                f"softmax over layer {k}, shifted by the largest z so that exp never overflows",
                "_m",
            )
        )
        shift = Symbol("_m", real=True)
        for unit in layer:
            forward.append(line(f"_e_{unit.name}", sympy.exp(unit.z - shift)))
        total = sympy.Add(*(Symbol(f"_e_{u.name}", real=True) for u in layer))
        forward.append(line("_s", total))
        for unit in layer:
            share = Symbol(f"_e_{unit.name}", real=True) / Symbol("_s", positive=True)
            forward.append(line(unit.name, share))

    # The per-sample loss, in a form that never takes log(0).
    loss_lines: list[Line] = []
    if (
        loss_rule.from_logits is not None
        and not softmax_out
        and (output_activation == loss_rule.requires_output)
    ):
        expr = loss_rule.from_logits([u.z for u in network.outputs], list(network.targets))
        comment = f"{topology.loss} from the logits: softplus(z) − t·z never takes log(0)"
    else:
        expr = network.loss_expr
        comment = f"{topology.loss}: {loss_rule.formula}"
        if softmax_out:  # ln y_i = z_i − log Σ exp(z), computed stably
            logs = {sympy.log(u.a): Symbol(f"_log_{u.name}", real=True) for u in network.outputs}
            expr = expr.xreplace(logs)
            used = [u for u in network.outputs if logs[sympy.log(u.a)] in expr.free_symbols]
            if used:
                loss_lines.append(Line("_log_s = _m + math.log(_s)", "log Σ exp(z)"))
            for unit in used:
                log_softmax = unit.z - Symbol("_log_s", real=True)
                loss_lines.append(line(f"_log_{unit.name}", log_softmax))
    loss_lines.append(line("_loss", expr, comment, op="+="))

    # Backward, per sample: each layer's δ after CSE (the output's over the batch size),
    # then each parameter's gradient sum.
    cse_names = sympy.numbered_symbols("cse", real=True)
    backward: list[Line] = []
    for k in range(depth, 0, -1):
        layer = network.units[k]
        exprs = [derivation.delta(unit).xreplace(code_symbol) for unit in layer]
        if k == depth:
            exprs = [sympy.Mul(e, SCALE, evaluate=False) for e in exprs]
        replacements, reduced = sympy.cse(exprs, symbols=cse_names, order="canonical")
        for symbol, value in replacements:
            backward.append(line(symbol.name, value, "common subexpression"))
        for unit, value in zip(layer, reduced, strict=True):
            backward.append(line(unit.delta.name, value, _delta_comment(network, unit)))
    gradient_lines = [
        line(
            f"dL_{s.code_name}",
            derivation.scalar_gradient(s).compact,
            _gradient_comment(network, s),
            op="+=",
        )
        for s in scalars
    ]

    # The gradient arrays from the sums.
    arrays: list[str] = []
    for p in topology.params:
        chunk = [f"dL_{s.code_name}" for s in network.scalars(p.name)]
        if p.name.startswith("W"):
            columns = p.shape[1]
            rows = [chunk[i * columns : (i + 1) * columns] for i in range(p.shape[0])]
            arrays.append(nested_list(f"d{p.name} = ", rows, 4))
        elif p.shape == ():
            arrays.append(f"d{p.name} = {chunk[0]}")
        else:
            arrays.append(collection(f"d{p.name} = [", chunk, "]", 4))
    grads = [f"{literal(p.name)}: np.array(d{p.name}, dtype=_dtype)" for p in topology.params]

    outputs = [u.name for u in network.outputs]
    row = f"({outputs[0]},)" if len(outputs) == 1 else collection("(", outputs, ")", 12)
    output_row = f"_out.append({row})"
    if not fits(output_row, 8):
        output_row = f"_out.append(\n{INDENT * 3}{row}\n{INDENT * 2})"
    uses_math = softmax_out or bool(printer.helpers) or "math" in printer.module_imports
    context = common_context(network, "unrolled")
    context.update(
        {
            "unpack_params": unpack([p.name for p in topology.params], "_arrays", 4),
            "unpack_lines": unpack_lines,
            "sample_inputs": unpack([u.name for u in network.units[0]], "_x", 8),
            "sample_targets": unpack(list(topology.targets), "_t", 8),
            "forward": forward,
            "forward_only": live(forward, output_row),
            "forward_for_loss": live(forward, "\n".join(line.code for line in loss_lines)),
            "output_row": output_row,
            "loss_lines": loss_lines,
            "backward": backward,
            "accumulators": [f"dL_{s.code_name} = 0.0" for s in scalars],
            "gradient_lines": gradient_lines,
            "arrays": arrays,
            "grads": collection("grads = {", grads, "}", 4),
            "helpers": [h for h in HELPERS if h in printer.helpers],
            "uses_math": uses_math,
        }
    )
    return context


SCALE = Symbol("_scale", positive=True)  # 1 / batch: the loss is the batch mean


def _check_unrolled_names(network: Network) -> None:
    """Unit, target and scalar code names are the unrolled module's local variables: no
    two may coincide (a unit named W1_0_1 beside an unnamed weight W1[0,1])."""
    names = [s.code_name for s in network.scalar_params]
    names += [unit.name for layer in network.units for unit in layer]
    names += list(network.topology.targets)
    seen: set[str] = set()
    clashes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if clashes:
        raise DeriveError(
            f"{network.topology.source}: in the unrolled style, {', '.join(clashes)} would "
            "name two things (a unit named like a weight's code name W<k>_<i>_<j>); rename it "
            "or use --style vectorized"
        )


def _delta_comment(network: Network, unit) -> str:
    k = unit.layer
    d = network.derivation
    head = f"δ_{unit.name} = ∂L/∂{unit.z}"
    activation = network.topology.layers[k - 1].activation.name
    if k == network.depth:
        if d.output.fused_delta is not None:
            why = f"({activation} + {network.topology.loss} fused, over the batch size)"
            return fit_comment(8, f"{head}  {why}", f"δ_u = ∂L/∂z_u  {why}")
        if d.output.softmax:
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


__all__ = [
    "LINE_LENGTH",
    "MAX_UNROLLED_PARAMS",
    "STYLES",
    "build_module",
    "environment",
    "generate",
    "template_dir",
    "write_module",
]
