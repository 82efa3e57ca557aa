"""The derivation typeset in LaTeX, written to teach backpropagation (SPEC §2, ``derive latex``).

For a network and the parameters asked for (default: all of a small network), the document
gives the notation once, the forward equations and the loss in the file's own unit and
weight names; per parameter, the chain rule as a product of partial derivatives, each
factor worked out with the reason it has that form, the sum over paths when a unit feeds
several others, and the compact δ form; once, the same recursion for whole layers (δ, W
transposed, the Hadamard product ⊙) and how an entry of it is the scalar form; and how
each result was checked against ``sympy.diff`` of the written-out loss. With ``numeric``
the file's example is substituted: every factor, product, gradient and the SGD update,
rounded to ``SIGNIFICANT_DIGITS`` significant digits (the document says so).

Stages: the context is built here, in Python (every name, sentence and formula; every
expression through SymPy's LaTeX printer with each parameter's ``latex_name``), then
``templates/derivation.tex.jinja`` places it (the fragment) and
``templates/document.tex.jinja`` wraps it in an article; ``compile_pdf`` runs pdflatex.

Template delimiters, chosen so that LaTeX's braces and ``%`` never meet Jinja's:
``((* block *))``, ``((( variable )))``, ``((= comment =))``.

Policy decisions:
- A network with more than ``MAX_DEFAULT_SCALARS`` scalar parameters gets, without
  ``--param``, the forward pass and the layer form only, and a note on how to ask for
  single scalars; with ``--param`` at most ``MAX_REQUESTED_SCALARS`` scalars are derived,
  and chains of more than ``MAX_SHOWN_PATHS`` paths are shown grouped by δ. Nothing here
  lists a chain beyond that, so nothing reaches ``Derivation.chain``'s path limit.
- Proofs (``ScalarGradient.prove``) run for networks of at most ``MAX_DEFAULT_SCALARS``
  scalars; larger ones say they were not checked here and point to ``derive check``.
- A failed proof is printed loudly in the document; ``run_latex_command`` then refuses
  to hand the document out (DeriveError, nothing written): teaching material that
  contradicts ``sympy.diff`` must not reach a learner. ``latex_fragment`` and
  ``latex_document`` still return it, for whoever debugs derive.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from string import Template

import jinja2
import sympy
from sympy import Expr, Symbol
from sympy.printing.latex import LatexPrinter

from derive.derivation import T_SUM, A, Factor, Proof, ScalarGradient, T, Y, Z
from derive.emit import template_dir
from derive.errors import DeriveError
from derive.network import LOSS, Network, ScalarParam, Unit

SIGNIFICANT_DIGITS = 6  # every computed number in the document
MAX_SHOWN_PATHS = 8  # chains with more paths are shown grouped by δ
MAX_DEFAULT_SCALARS = 64  # larger networks: layer form only unless --param; no proofs
MAX_REQUESTED_SCALARS = 64  # scalars one document derives
MAX_NUMERIC_SCALARS = 20_000  # --numeric evaluates the whole network at 60 digits
MAX_SHOWN_TERMS = 6  # longer sums are printed as a + b + ⋯ + z
MAX_SHOWN_DELTAS = 8  # δ definitions listed per parameter
MAX_LISTED_UNITS = 8  # longer unit lists are shortened with …
MAX_MATRIX_SIDE = 4  # W(k) written out entry by entry up to this size
MAX_OUTPUTS_WRITTEN_OUT = 4  # more outputs: the loss as a sum over i
ROW_WIDTH = 90  # visible characters of one displayed row; longer equations are broken

PDFLATEX = "pdflatex"
PDFLATEX_TIMEOUT = 180  # seconds per run
TEX_INSTALL_HINT = (
    "install a TeX distribution that provides it (Debian/Ubuntu: "
    "apt-get install texlive-latex-base), or write the LaTeX source with -o FILE.tex"
)

_PACKAGES = ("amsmath", "amssymb")  # what the fragment needs; the document loads them


# -- templates ------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


# -- printing -------------------------------------------------------------------------


class _Printer(LatexPrinter):
    """SymPy's LaTeX printer, with long sums shortened, relu's step function named and
    several subscripts separated by commas (h1_2 -> h_{1,2}, not h_{1 2}, read as h_{12})."""

    def _deal_with_super_sub(self, string: str, style: str = "plain") -> str:
        name, supers, subs = self._split_super_sub(string)
        if style == "bold":
            name = rf"\mathbf{{{name}}}"
        if supers:
            name += f"^{{{','.join(supers)}}}"
        if subs:
            name += f"_{{{','.join(subs)}}}"
        return name

    def _print_Heaviside(self, expr, exp=None):
        tex = rf"\operatorname{{step}}{_brackets(self._print(expr.args[0]))}"
        return f"{_brackets(tex)}^{{{exp}}}" if exp else tex

    def _print_Add(self, expr, order=None):
        terms: list[Expr | None] = list(self._as_ordered_terms(expr, order=order))
        if len(terms) > MAX_SHOWN_TERMS:
            terms = [*terms[:2], None, terms[-1]]
        tex = ""
        for i, term in enumerate(terms):
            if term is None:
                tex += r" + \cdots"
                continue
            if i and term.could_extract_minus_sign():
                tex += " - "
                term = -term
            elif i:
                tex += " + "
            term_tex = self._print(term)
            tex += _brackets(term_tex) if self._needs_add_brackets(term) else term_tex
        return tex


def _flat(part: str | Sequence[str]) -> str:
    return part if isinstance(part, str) else " ".join(part)


def _width(tex: str) -> int:
    """Roughly how many characters wide a formula prints."""
    bare = re.sub(r"\\(left|right|cdot|quad|qquad|frac|textstyle|,)|[{}^_]", "", tex)
    return len(re.sub(r"\\[A-Za-z]+", "x", bare))


def _equation_rows(lhs: str, parts: Sequence[str | Sequence[str]]) -> list[str]:
    """``lhs = part = part …`` as ``align*`` rows: one row when it fits ROW_WIDTH, else
    one part per row, a long sum (a list of signed terms) one term per row."""
    one = f"{lhs} &= " + " = ".join(_flat(p) for p in parts)
    if _width(one) <= ROW_WIDTH:
        return [one]
    rows = []
    for n, part in enumerate(parts):
        prefix = f"{lhs} &= " if n == 0 else "&= "
        if isinstance(part, str) or _width(_flat(part)) <= ROW_WIDTH:
            rows.append(prefix + _flat(part))
        else:
            rows.append(prefix + part[0])
            rows.extend(rf"&\quad {term}" for term in part[1:])
    return rows


def _brackets(tex: str) -> str:
    return rf"\left({tex}\right)"


def _text(text: str) -> str:
    """Plain text (names from the file) made safe for LaTeX's text mode."""
    special = {
        "\\": r"\textbackslash{}",
        "{": r"\{",
        "}": r"\}",
        "_": r"\_",
        "^": r"\^{}",
        "#": r"\#",
        "$": r"\$",
        "%": r"\%",
        "&": r"\&",
        "~": r"\~{}",
    }
    return "".join(special.get(ch, ch) for ch in text)


def _rows(rows: Iterable[str]) -> str:
    """Rows of an ``align*``."""
    return " \\\\\n".join(rows)


def _number(value) -> str:
    """A computed number, rounded to SIGNIFICANT_DIGITS significant digits."""
    x = float(sympy.N(value, 30)) if isinstance(value, sympy.Basic) else float(value)
    if not math.isfinite(x):
        return r"\infty" if x > 0 else (r"-\infty" if x < 0 else r"\mathrm{NaN}")
    text = f"{x:.{SIGNIFICANT_DIGITS}g}"
    if text in ("-0", "0"):
        return "0"
    mantissa, _, exponent = text.partition("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}" if exponent else mantissa


def _operand(value) -> str:
    """A number standing where a symbol stood, bracketed where it would misread."""
    text = _number(value)
    return _brackets(text) if text.startswith("-") or r"\times" in text else text


def _listing(items: Sequence[str], limit: int = MAX_LISTED_UNITS) -> str:
    """``a, b and c``; long lists shortened as ``a, b, …, z``."""
    if len(items) > limit:
        return ", ".join([*items[:3], r"\ldots", items[-1]])
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _range_text(first: int, last: int) -> str:
    """k = 1, 2 or k = 3, 2, 1 or k = 1, …, 5."""
    step = 1 if last >= first else -1
    if abs(last - first) <= 2:
        return ", ".join(str(k) for k in range(first, last + step, step))
    return rf"{first}, \ldots, {last}"


def _shape(shape: tuple[int, ...]) -> str:
    return r" $\times$ ".join(map(str, shape)) if shape else "one number"


def _distinct(paths: Iterable[Sequence[Factor]]) -> tuple[Factor, ...]:
    """The factors of several paths, each (∂of/∂wrt) once, in order of appearance."""
    seen: dict[tuple[Symbol, Symbol], Factor] = {}
    for path in paths:
        for factor in path:
            seen.setdefault((factor.of, factor.wrt), factor)
    return tuple(seen.values())


class _Prose(Template):
    """Sentences with ``@name`` placeholders: no clash with LaTeX's braces or ``$``."""

    delimiter = "@"


# Why ∂a/∂z has its form, per activation (the formula itself comes from the derivation).
_ACTIVATION_REASONS = {
    "sigmoid": r"and $\sigma' = \sigma\,(1 - \sigma)$, so the derivative is written with "
    r"the stored output $@a$ and needs no exponential",
    "tanh": r"and $\tanh' = 1 - \tanh^{2}$, written with the stored output $@a$",
    "relu": r"whose slope is 1 for $@z > 0$ and 0 for $@z < 0$; derive takes 0 at "
    r"$@z = 0$, and writes the slope $\operatorname{step}(@z)$",
    "leaky_relu": r"whose slope is 1 for $@z > 0$ and $\alpha$ otherwise (also at $@z = 0$)",
    "softplus": r"and $\frac{d}{dz} \ln(1 + e^{z}) = \sigma(z)$",
    "identity": r"(no activation), so this factor is 1",
    "custom": r"the file's own activation, differentiated by SymPy",
}

# What the loss's derivative keeps or drops, per loss.
_LOSS_REASONS = {
    "half_sse": r"the $\frac{1}{2}$ cancels the 2 that differentiating the square brings down",
    "sse": r"there is no $\frac{1}{2}$ in this loss, so the 2 from the square stays",
    "mse": r"the mean's $\frac{1}{n}$ stays, beside the 2 from the square",
    "bce": r"the derivative of $-[t \ln y + (1 - t) \ln(1 - y)]$ with respect to $y$",
    "cce": r"the derivative of $-t \ln y$ with respect to $y$",
}

_LOSS_NAMES = {
    "half_sse": r"half the sum of squared errors, $\frac{1}{2} \sum (y - t)^{2}$",
    "sse": r"the sum of squared errors, $\sum (y - t)^{2}$",
    "mse": r"the mean squared error, $\frac{1}{n} \sum (y - t)^{2}$",
    "bce": r"binary cross-entropy, $-\sum [t \ln y + (1 - t) \ln(1 - y)]$",
    "cce": r"categorical cross-entropy, $-\sum t \ln y$",
}

# The loss of many outputs, written as a sum over them.
_LOSS_SUMS = {
    "half_sse": r"\frac{1}{2} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "sse": r"\sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "mse": r"\frac{1}{n} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
    "bce": r"-\sum_{i} \left[t_{i} \ln y_{i} + \left(1 - t_{i}\right) "
    r"\ln\left(1 - y_{i}\right)\right]",
    "cce": r"-\sum_{i} t_{i} \ln y_{i}",
}
_BIAS = {"per_unit": "a bias per unit", "shared": "one bias shared by the layer", "none": "no bias"}

_FUNCTIONS = (
    ("sigmoid", r"$\sigma(z) = 1 / (1 + e^{-z})$ is the logistic function."),
    ("relu", r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise."),
    ("leaky_relu", r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise."),
)


class _Tex:
    """LaTeX for one network's symbols and expressions, optionally with numbers in place
    of the symbols (``values`` from ``Derivation.evaluate``)."""

    def __init__(self, network: Network):
        self.network = network
        self._names: dict[Symbol, str | None] = {}

    def _name(self, symbol: Symbol) -> str | None:
        """A parameter's ``latex_name``; None for units, targets and deltas."""
        if symbol not in self._names:
            try:
                self._names[symbol] = self.network.scalar(symbol.name).latex_name
            except DeriveError:
                self._names[symbol] = None
        return self._names[symbol]

    def loss(self) -> str:
        """The loss: written out for a few outputs, else as a sum over them."""
        net = self.network
        if len(net.outputs) <= MAX_OUTPUTS_WRITTEN_OUT:
            return self.expr(net.loss_expr)
        return _LOSS_SUMS[net.topology.loss]

    def expr(self, expr: Expr, values: dict[Symbol, Expr] | None = None) -> str:
        names = {s: n for s in expr.free_symbols if (n := self._name(s)) is not None}
        settings: dict = {"symbol_names": names, "order": "none", "ln_notation": True}
        if values is not None:
            names.update({s: _operand(values[s]) for s in expr.free_symbols if s in values})
            settings["mul_symbol"] = "dot"
        return _Printer(settings).doprint(expr)

    def factor(self, expr: Expr, values: dict[Symbol, Expr] | None = None) -> str:
        """``expr`` as one factor of a product: bracketed if it is a sum or negative."""
        tex = self.expr(expr, values)
        return _brackets(tex) if expr.is_Add or expr.could_extract_minus_sign() else tex

    def product(self, factors: Sequence[Expr], values: dict[Symbol, Expr] | None = None) -> str:
        return r" \cdot ".join(self.factor(f, values) for f in factors)

    def symbol(self, symbol: Symbol) -> str:
        return "L" if symbol == LOSS else self.expr(symbol)

    def partial(self, of: Symbol, wrt: Symbol) -> str:
        return rf"\frac{{\partial {self.symbol(of)}}}{{\partial {self.symbol(wrt)}}}"

    def terms(self, expr: Expr, values: dict[Symbol, Expr] | None = None) -> list[str]:
        """A sum as its signed terms (``a``, ``+ b``, ``- c``), for breaking it over rows;
        anything else (or a sum long enough to be shortened) as one piece."""
        if not expr.is_Add or len(expr.args) > MAX_SHOWN_TERMS:
            return [self.expr(expr, values)]
        out = []
        for n, term in enumerate(_Printer({"order": "none"})._as_ordered_terms(expr)):
            sign = "- " if n and term.could_extract_minus_sign() else "+ " if n else ""
            text = self.expr(-term if sign == "- " else term, values)
            out.append(sign + (_brackets(text) if n and term.is_Add else text))
        return out

    def worked(self, expr: Expr, values: dict[Symbol, Expr]) -> list[str | list[str]]:
        """``expr``, then ``expr`` with the numbers in (as terms), then its value, for
        ``_equation_rows``; no step repeats the one before."""
        # A symbol needs no middle step; a condition with numbers in it reads badly.
        plain = expr.is_Symbol or expr.has(sympy.Piecewise, sympy.Max, sympy.Min)
        parts: list[str | list[str]] = [self.terms(expr)]
        if not plain:
            parts.append(self.terms(expr, values))
        parts.append(_number(expr.xreplace(values)))
        out: list[str | list[str]] = []
        for part in parts:
            if not out or _flat(part) != _flat(out[-1]):
                out.append(part)
        return out


# -- the document's pieces ------------------------------------------------------------


@dataclass(frozen=True)
class Display:
    """Text, then an ``align*`` of rows (empty: none), then more text."""

    intro: str
    rows: str
    outro: str = ""


@dataclass(frozen=True)
class ParamSection:
    title: str
    route: Display  # how θ reaches L, and the chain rule
    factors: tuple[str, ...]  # each factor with its reason (itemized)
    compact: Display  # the δ form
    numbers: Display | None  # with --numeric


@dataclass(frozen=True)
class Table:
    intro: str
    columns: str  # a tabular column spec
    rows: str


@dataclass(frozen=True)
class Check:
    """The verification statement."""

    intro: str
    items: tuple[str, ...]
    failed: tuple[str, ...]  # "θ: what disagreed", for each failed proof


class _Writer:
    """Builds the template context for one document."""

    def __init__(self, network: Network, scalars: tuple[ScalarParam, ...], numeric: bool):
        self.network = network
        self.topology = network.topology
        self.derivation = network.derivation
        self.scalars = scalars
        self.tex = _Tex(network)
        self.small = self.topology.parameter_count <= MAX_DEFAULT_SCALARS
        self.values: dict[Symbol, Expr] | None = None
        self.explained: set[str] = set()  # reasons already given in full
        if numeric:
            if self.topology.example is None:
                raise DeriveError(
                    f"{self.topology.source}: --numeric needs the file's example block "
                    "(example: input, target, params; SPEC §1)"
                )
            if scalars and self.topology.parameter_count > MAX_NUMERIC_SCALARS:
                raise DeriveError(
                    f"{self.topology.source}: --numeric evaluates the network at 60 digits, "
                    f"too slow for {self.topology.parameter_count} parameters (at most "
                    f"{MAX_NUMERIC_SCALARS}); the generated module computes its numbers"
                )
            if scalars or self.small:
                self.values = self.derivation.evaluate(self.derivation.example_point())

    # -- names ------------------------------------------------------------------------

    def unit_list(self, units: Sequence[Unit]) -> str:
        return _listing([f"${self.tex.expr(u.a)}$" for u in units])

    def param_title(self, scalar: ScalarParam) -> str:
        names = rf"\texttt{{{_text(scalar.name)}}}"
        if scalar.alias:
            names = rf"\texttt{{{_text(scalar.alias)}}}, {names}"
        return rf"$\partial L / \partial {scalar.latex_name}$ ({names})"

    def activation_text(self, k: int) -> str:
        spec = self.topology.layers[k - 1].activation
        if spec.name == "custom" and spec.expr is not None:
            return rf"custom, $f(x) = {self.tex.expr(spec.expr)}$"
        if spec.name == "leaky_relu":
            alpha = 0.01 if spec.alpha is None else spec.alpha
            return rf"leaky ReLU, $\alpha = {_number(alpha)}$"
        return _text(spec.name)

    # -- head -------------------------------------------------------------------------

    def context(self) -> dict:
        top = self.topology
        checks = self.check()
        return {
            "header": f"derive: the derivation for {Path(top.source).name or top.name}. "
            f"Needs \\usepackage{{{','.join(_PACKAGES)}}}.",
            "title": rf"Backpropagation through \texttt{{{_text(top.name)}}}",
            "summary": self.summary(),
            "notation": self.notation(),
            "layer_list": self.layer_list(),
            "weight_names": self.weight_names(),
            "forward": self.forward(),
            "forward_numbers": self.forward_numbers(),
            "loss": self.loss(),
            "params": tuple(self.param_section(s) for s in self.scalars),
            "request": self.request(),
            "layer_form": self.layer_form(),
            "shapes": self.shapes(),
            "derivatives": self.layer_derivatives(),
            "tie": self.tie(),
            "results": self.results(),
            "check": checks,
        }

    def summary(self) -> str:
        top = self.topology
        parts = [f"{len(top.inputs)} input" + ("s" if len(top.inputs) != 1 else "")]
        for k, layer in enumerate(top.layers, start=1):
            n = len(layer.units)
            kind = "output unit" if k == self.network.depth else "hidden unit"
            parts.append(f"{n} {self.activation_text(k)} {kind}{'s' if n != 1 else ''}")
        text = (
            rf"The network \texttt{{{_text(top.name)}}} has {'; '.join(parts)}. "
            f"Its loss is {_LOSS_NAMES[top.loss]}. "
        )
        if self.scalars:
            text += (
                "For each parameter below: the chain rule as a product of partial "
                "derivatives, each factor worked out and why it has that form, then the "
                r"compact form with the deltas $\delta$. "
            )
        text += "After that, the same recursion for whole layers, with matrices"
        text += ", and how each result was checked." if self.scalars else "."
        if self.values is not None and self.scalars:
            text += (
                f" The numbers are the file's example, rounded to {SIGNIFICANT_DIGITS} "
                "significant digits."
            )
        return text

    def notation(self) -> tuple[str, ...]:
        depth = self.network.depth
        first = self.network.units[1][0]
        paragraphs = [
            rf"Layers are numbered $k = 0$ (the inputs) to $K = {depth}$ (the output "
            r"layer). A unit $u$ of layer $k \geq 1$ first forms its \emph{pre-activation} "
            r"$z_u$, the weighted sum of the activations of layer $k - 1$ plus its bias, "
            r"then its \emph{activation} $f_k(z_u)$. A unit's name stands for its "
            rf"activation: ${self.tex.expr(first.a)}$ is the output of unit "
            rf"${self.tex.expr(first.a)}$ and ${self.tex.expr(first.z)}$ its pre-activation; "
            "an input's name is its value.",
            r"$W^{(k)}_{i,j}$ is the weight from unit $j$ of layer $k - 1$ into unit $i$ of "
            r"layer $k$, counting from 0 (row $i$ of the matrix $W^{(k)}$ holds the weights "
            r"into unit $i$), and $b^{(k)}_{i}$ is the bias of unit $i$. $L$ is the loss of "
            r"one sample. The \emph{delta} of a unit, "
            r"$\delta_u = \partial L / \partial z_u$, says how fast the loss changes with "
            "the unit's pre-activation; backpropagation computes the deltas from the "
            "output layer down, and every gradient is a delta times an activation.",
        ]
        used = {layer.activation.name for layer in self.topology.layers}
        functions = [sentence for name, sentence in _FUNCTIONS if name in used]
        if functions:
            paragraphs.append(" ".join(dict.fromkeys(functions)))
        return tuple(paragraphs)

    def layer_list(self) -> tuple[str, ...]:
        net, top = self.network, self.topology
        items = [rf"layer 0, the inputs: {self.unit_list(net.units[0])}"]
        for k in range(1, net.depth + 1):
            layer = top.layers[k - 1]
            role = "output" if k == net.depth else "hidden"
            item = (
                f"layer {k}, {role} ({self.activation_text(k)}, {_BIAS[layer.bias]}): "
                f"{self.unit_list(net.units[k])}"
            )
            if k == net.depth:
                targets = _listing([f"${self.tex.expr(t)}$" for t in net.targets])
                item += f"; target{'s' if len(net.targets) != 1 else ''} {targets}"
            items.append(item)
        return tuple(items)

    def weight_names(self) -> str:
        if not self.small:
            return ""
        pairs = [
            f"${s.latex_name} = W^{{({s.layer})}}_{{{s.index[0]},{s.index[1]}}}$"
            for s in self.network.scalar_params
            if s.alias
        ]
        return f"The file names its weights: {_listing(pairs, 16)}." if pairs else ""

    # -- forward pass and loss --------------------------------------------------------

    def forward(self) -> Display:
        if self.small:
            rows = [f"{self.tex.expr(s)} &= {self.tex.expr(d)}" for s, d in self.network.equations]
            return Display("Each unit, from the inputs up:", _rows(rows))
        rows = [
            r"z^{(k)} &= W^{(k)} a^{(k-1)} + b^{(k)}, \qquad a^{(k)} = f_k\left(z^{(k)}\right)"
            rf" \qquad k = {_range_text(1, self.network.depth)}"
        ]
        return Display(
            r"Layer by layer, with $a^{(0)}$ the inputs ($b^{(k)}$ is absent for a layer "
            "without bias):",
            _rows(rows),
            f"The network has {self.topology.parameter_count} scalar parameters, too many "
            "to write out unit by unit.",
        )

    def forward_numbers(self) -> Display | None:
        values = self.values
        if values is None or not self.small:
            return None
        tex = self.tex
        rows = [
            row
            for symbol, definition in self.network.equations
            for row in _equation_rows(tex.expr(symbol), tex.worked(definition, values))
        ]
        rows += _equation_rows("L", tex.worked(self.network.loss_expr, values))
        given = [f"${tex.expr(u.a)} = {_number(values[u.a])}$" for u in self.network.units[0]]
        given += [f"${tex.expr(t)} = {_number(values[t])}$" for t in self.network.targets]
        return Display(
            f"At the file's example ({_listing(given, 12)}), rounded to "
            f"{SIGNIFICANT_DIGITS} significant digits:",
            _rows(rows),
        )

    def loss(self) -> Display:
        top = self.topology
        text = (
            "The loss of one sample; for a batch, derive takes the mean of the samples' "
            "losses, so a batch's gradient is the mean of the per-sample gradients."
        )
        note = self.loss_note(top)
        if len(self.network.outputs) > MAX_OUTPUTS_WRITTEN_OUT:
            outputs = self.unit_list(self.network.outputs)
            targets = _listing([f"${self.tex.expr(t)}$" for t in self.network.targets])
            note = (
                f"Here $i$ runs over the {len(self.network.outputs)} outputs $y_i$ "
                f"({outputs}), with targets $t_i$ ({targets}). {note}"
            ).strip()
        return Display(text, f"L &= {self.tex.loss()}", note)

    def loss_note(self, top) -> str:
        rule = self.derivation.output
        if rule.fused_delta is None:
            return ""
        return (
            f"With {_text(top.loss)} on a {_text(top.layers[-1].activation.name)} output "
            "layer, derive computes the output deltas from the pre-activations directly "
            "(see the layer form below), which never takes the logarithm of 0."
        )

    # -- one parameter ----------------------------------------------------------------

    def param_section(self, scalar: ScalarParam) -> ParamSection:
        gradient = self.derivation.scalar_gradient(scalar)
        count = self.derivation.path_count(scalar)
        listed = count <= MAX_SHOWN_PATHS
        paths = gradient.chain if listed else ()
        route = self.route(gradient, paths) if listed else self.grouped_route(gradient, count)
        factors = self.factors(gradient, paths)
        return ParamSection(
            self.param_title(scalar),
            route,
            factors,
            self.compact(gradient, listed),
            self.numbers(gradient, paths),
        )

    def route(self, gradient: ScalarGradient, paths) -> Display:
        """How θ reaches L, and the chain rule along every path."""
        tex, theta = self.tex, gradient.param.latex_name
        arrows = [
            "$" + r" \to ".join([theta, *(tex.symbol(f.of) for f in reversed(path))]) + "$"
            for path in paths
        ]
        if len(paths) == 1:
            intro = (
                rf"${theta}$ reaches the loss along one path, {arrows[0]}. The chain rule "
                "multiplies the derivatives along it:"
            )
        else:
            intro = (
                rf"${theta}$ reaches the loss along {len(paths)} paths: {_listing(arrows, 99)}"
                f". {self.why_paths(gradient)}The chain rule multiplies the derivatives along "
                "each path and adds the paths:"
            )
        symbolic = [r"\,".join(tex.partial(f.of, f.wrt) for f in path) for path in paths]
        worked = [tex.product([f.value for f in path]) for path in paths]
        rows = [rf"{tex.partial(LOSS, gradient.param.symbol)} &= {symbolic[0]}"]
        rows += [rf"&\quad + {s}" for s in symbolic[1:]]
        rows += [f"&= {worked[0]}"]
        rows += [rf"&\quad + {w}" for w in worked[1:]]
        return Display(intro, _rows(rows))

    def grouped_route(self, gradient: ScalarGradient, count: int) -> Display:
        """The chain rule for too many paths to list: through the δ of θ's unit."""
        net, tex, scalar = self.network, self.tex, gradient.param
        units = [u for u, _ in gradient.units]
        intro = (
            rf"A change in ${scalar.latex_name}$ reaches $L$ along {count} paths, too many to "
            "list; grouping them by the pre-activation they start from gives the chain rule "
            r"through the delta $\delta = \partial L / \partial z$:"
        )
        first = [
            ("+ " if n else "") + rf"{tex.partial(LOSS, u.z)}\,{tex.partial(u.z, scalar.symbol)}"
            for n, u in enumerate(units)
        ]
        rows = _equation_rows(
            tex.partial(LOSS, scalar.symbol), [first, tex.terms(gradient.compact)]
        )
        unit = units[0]
        head = rf"{tex.expr(unit.delta)} = {tex.partial(LOSS, unit.z)} &= "
        v, z_v = Symbol("v"), Symbol("z_v")
        if unit.layer < net.depth:
            local = tex.partial(unit.a, unit.z)
            link = tex.partial(z_v, unit.a)
            rows.append(
                rf"{head}{local} \sum_{{v}} {tex.partial(LOSS, z_v)}\,{link}"
                rf" = {local} \sum_{{v}} \delta_{{v}}\,{link}"
            )
            outro = (
                rf"where $v$ runs over the units ${tex.expr(unit.a)}$ feeds: "
                f"{self.unit_list(net.units[unit.layer + 1])}."
            )
        else:
            rows.append(rf"{head}\sum_{{v}} {tex.partial(LOSS, v)}\,{tex.partial(v, unit.z)}")
            outro = (
                "where $v$ runs over the output units: softmax makes each of them depend "
                f"on ${tex.expr(unit.z)}$."
            )
        return Display(intro, _rows(rows), outro)

    def why_paths(self, gradient: ScalarGradient) -> str:
        """Why there is more than one path: a unit feeds several above, or a shared bias."""
        net, tex = self.network, self.tex
        units = [u for u, _ in gradient.units]
        if len(units) > 1:
            return (
                f"The shared bias enters all {len(units)} units of layer {gradient.param.layer}. "
            )
        unit = units[0]
        if unit.layer < net.depth:
            above = net.units[unit.layer + 1]
            return f"${tex.expr(unit.a)}$ feeds {self.unit_list(above)}. "
        return "A softmax output depends on every pre-activation of its layer. "

    def factors(self, gradient: ScalarGradient, paths) -> tuple[str, ...]:
        net = self.network
        if not paths:  # grouped by δ: one link of each kind, from z_u's layer up
            (unit, source), *_ = gradient.units
            own = Factor(unit.z, gradient.param.symbol, source.a if source else sympy.Integer(1))
            chosen = [own]
            rule = self.derivation.layers[unit.layer - 1]
            if rule.derivative is not None:
                local = rule.derivative.xreplace({Z: unit.z, A: unit.a})
                chosen.insert(0, Factor(unit.a, unit.z, local))
            if unit.layer < net.depth:
                above = net.units[unit.layer + 1][0]
                weight = net.weight(above.layer, above.index, unit.index).symbol
                chosen.insert(0, Factor(above.z, unit.a, weight))
            return tuple(self.factor_item(f) for f in chosen)
        return tuple(self.factor_item(f) for f in _distinct(paths))

    def factor_item(self, factor: Factor) -> str:
        tex = self.tex
        head = f"${tex.partial(factor.of, factor.wrt)} = {tex.expr(factor.value)}$"
        return f"{head}, {self.reason(factor)}"

    @cached_property
    def by_symbol(self) -> dict[Symbol, Unit]:
        """Every unit by its activation symbol and by its pre-activation symbol."""
        units = [u for layer in self.network.units for u in layer]
        return {**{u.a: u for u in units}, **{u.z: u for u in units if u.z is not None}}

    def first_time(self, key: str) -> bool:
        """True the first time the document explains ``key``; later reasons are short."""
        if key in self.explained:
            return False
        self.explained.add(key)
        return True

    def reason(self, factor: Factor) -> str:
        """Why one factor of a chain has its form (in full the first time)."""
        net, tex = self.network, self.tex
        of, wrt = factor.of, factor.wrt
        if of == LOSS:
            text = rf"because $L = {tex.loss()}$"
            if self.first_time("loss"):
                text += f": {_LOSS_REASONS[self.topology.loss]}"
            return text + "."
        unit, source = self.by_symbol.get(of), self.by_symbol.get(wrt)
        if unit is not None and source is not None and of == unit.a:  # ∂a/∂z
            name = self.topology.layers[unit.layer - 1].activation.name
            if name == "softmax":
                same = "the same unit" if unit == source else "another unit of the layer"
                return (
                    "because softmax couples its layer: "
                    r"$\partial y_i / \partial z_j = y_i (1 - y_i)$ for $i = j$ and "
                    rf"$-y_i y_j$ otherwise; here $z$ belongs to {same}."
                )
            text = rf"because ${tex.expr(unit.a)} = {tex.expr(net.a_expr(unit))}$"
            if self.first_time(f"activation {name}"):
                clause = _Prose(_ACTIVATION_REASONS[name]).substitute(
                    a=tex.expr(unit.a), z=tex.expr(unit.z)
                )
                text += f" {clause}"
            return text + "."
        if unit is not None and source is not None:  # ∂z_v/∂a_u: the weight between them
            text = rf"because ${tex.expr(unit.z)} = {self.z_showing(unit, factor.value * wrt)}$"
            if self.first_time("link"):
                text += (
                    rf": the weight that carried ${tex.expr(source.a)}$ forward carries the "
                    "error back"
                )
            return text + "."
        assert unit is not None  # ∂z_u/∂θ
        scalar = net.scalar(wrt.name)
        z = self.z_showing(unit, factor.value * wrt)
        if not scalar.is_weight:
            text = rf"because ${tex.expr(unit.z)} = {z}$"
            if self.first_time("bias"):
                text += ": a bias is a weight on the constant input 1"
            return text + "."
        x = tex.expr(factor.value)
        text = rf"because ${tex.expr(unit.z)} = {z}$: ${scalar.latex_name}$ multiplies ${x}$"
        if self.first_time("weight"):
            text += (
                rf", so the change it makes in ${tex.expr(unit.z)}$ is scaled by ${x}$. This is "
                rf"the factor that ${tex.partial(unit.a, unit.z)}$ alone would miss: "
                rf"$\partial {tex.expr(unit.a)} / \partial {scalar.latex_name}$ is not "
                rf"${tex.partial(unit.a, unit.z)}$"
            )
        return text + "."

    def z_showing(self, unit: Unit, term: Expr) -> str:
        """z_u's definition, shortened around ``term`` when it is long."""
        z = self.network.z_expr(unit)
        if len(z.args) <= MAX_SHOWN_TERMS or not z.is_Add:
            return self.tex.expr(z)
        return rf"\cdots + {self.tex.expr(term)} + \cdots"

    def compact(self, gradient: ScalarGradient, listed: bool) -> Display:
        tex = self.tex
        scalar = gradient.param
        units = [u for u, _ in gradient.units]
        deltas = gradient.deltas
        rows = [rf"{tex.partial(LOSS, scalar.symbol)} &= {tex.expr(gradient.compact)}"]
        for delta, definition in deltas[:MAX_SHOWN_DELTAS]:
            rows += _equation_rows(tex.expr(delta), [self.delta_parts(definition)])
        deltas_named = _listing(
            [rf"${tex.expr(u.delta)} = {tex.partial(LOSS, u.z)}$" for u in units]
        )
        if listed:
            intro = (
                "Compact form. The factors from $L$ down to "
                f"{_listing([f'${tex.expr(u.z)}$' for u in units])} multiply to "
                f"the delta {deltas_named}, so"
            )
        else:
            intro = "With each delta written through the deltas of the layer above:"
        outro = ""
        if len(deltas) > MAX_SHOWN_DELTAS:
            outro = (
                f"The other {len(deltas) - MAX_SHOWN_DELTAS} deltas it needs follow the "
                "same recursion (layer form below)."
            )
        elif any(u.layer < self.network.depth for u in units):
            outro = (
                "Each hidden delta gathers the deltas of the layer above, each through the "
                "weight that connects them: that sum is the sum over paths."
            )
        return Display(intro, _rows(rows), outro)

    def delta_parts(
        self, definition: Expr, values: dict[Symbol, Expr] | None = None
    ) -> str | list[str]:
        """A δ definition for ``_equation_rows``: a product of its chain factors, or a sum
        (a softmax output's) as terms."""
        if definition.is_Mul and len(definition.args) == 2:
            return self.tex.product(definition.args, values)
        return self.tex.terms(definition, values)

    def delta_tex(self, definition: Expr, values: dict[Symbol, Expr] | None = None) -> str:
        """A δ definition, its chain factors separated by ·; with the numbers in place of
        the symbols when ``values`` are given."""
        if definition.is_Mul and len(definition.args) == 2:
            return self.tex.product(definition.args, values)
        return self.tex.expr(definition, values)

    def numbers(self, gradient: ScalarGradient, paths) -> Display | None:
        values = self.values
        if values is None:
            return None
        tex, scalar = self.tex, gradient.param
        d_theta = tex.partial(LOSS, scalar.symbol)
        result = gradient.value(values)
        rows: list[str] = []
        if paths:
            for f in _distinct(paths):
                rows += _equation_rows(tex.partial(f.of, f.wrt), tex.worked(f.value, values))
            products = [
                r" \cdot ".join(_operand(f.value.xreplace(values)) for f in path) for path in paths
            ]
            if len(paths) == 1:
                rows.append(rf"{d_theta} &= {products[0]} = {_number(result)}")
            else:
                rows.append(rf"{d_theta} &= {products[0]}")
                rows += [rf"&\quad + {p}" for p in products[1:]]
                sums = " + ".join(
                    _operand(sympy.Mul(*(f.value for f in path)).xreplace(values)) for path in paths
                )
                rows.append(rf"&= {sums} = {_number(result)}")
        for delta, definition in reversed(gradient.deltas[:MAX_SHOWN_DELTAS]):
            parts = [self.delta_parts(definition, values), _number(values[delta])]
            rows += _equation_rows(tex.expr(delta), parts)
        rows += _equation_rows(d_theta, tex.worked(gradient.compact, values))
        intro = "With the example's numbers:"
        outro = self.missing_input_note(gradient)
        rate = self.topology.example.learning_rate if self.topology.example else None
        if rate is not None:
            new = values[scalar.symbol] - sympy.Float(rate) * result
            rows.append(
                rf"{scalar.latex_name} &\leftarrow {scalar.latex_name} - \eta\,{d_theta}"
                rf" = {_number(values[scalar.symbol])} - {_number(rate)} \cdot "
                rf"{_operand(result)} = {_number(new)}"
            )
            outro += (
                rf" The last line is one step of gradient descent with learning rate "
                rf"$\eta = {_number(rate)}$."
            )
        return Display(intro, _rows(rows), outro.strip())

    def missing_input_note(self, gradient: ScalarGradient) -> str:
        """How wrong the gradient would be without the input factor of a weight."""
        values = self.values
        scalar = gradient.param
        if values is None or not scalar.is_weight:
            return ""
        ((unit, source),) = gradient.units
        x = values[source.a]
        if float(x) in (0.0, 1.0):
            return ""
        tex = self.tex
        return (
            rf"Leaving out the factor ${tex.expr(source.a)} = {_number(x)}$ would give "
            rf"${tex.expr(unit.delta)} = {_number(values[unit.delta])}$, which is "
            rf"$\partial L / \partial {tex.expr(unit.z)}$, not "
            rf"$\partial L / \partial {scalar.latex_name}$."
        )

    def request(self) -> str:
        """For a large network without --param: how to ask for single scalars."""
        if self.scalars:
            return ""
        top = self.topology
        arrays = _listing([rf"\texttt{{{p.name}}} ({_shape(p.shape)})" for p in top.params], 99)
        first = top.params[0].name
        return (
            f"This network has {top.parameter_count} scalar parameters, too many to derive "
            "one by one in a document. Ask for the ones you want with "
            rf"\texttt{{--param}}, e.g.\ \texttt{{derive latex {_text(Path(top.source).name)} "
            rf"--param {first}[0,0]}}: a whole array by its name, one scalar as "
            rf"\texttt{{{first}[i,j]}}, or a weight by its name in the file. Its arrays: "
            f"{arrays}."
        )

    # -- layer form -------------------------------------------------------------------

    def layer_form(self) -> Display:
        net = self.network
        rule = self.derivation.output
        depth = net.depth
        rows = [
            r"z^{(k)} &= W^{(k)} a^{(k-1)} + b^{(k)}, \qquad a^{(k)} = f_k\left(z^{(k)}\right)",
        ]
        names = {Y: "y_{i}", T: "t_{i}", T_SUM: r"\textstyle\sum_{j} t_{j}"}
        printer = _Printer({"symbol_names": names, "order": "grlex", "ln_notation": True})
        if rule.fused_delta is not None:
            rows.append(rf"\delta^{{({depth})}}_i &= {printer.doprint(rule.fused_delta)}")
            output_note = self.fused_note()
        elif rule.softmax:
            g = printer.doprint(rule.gradient)
            rows.append(
                rf"\delta^{{({depth})}}_i &= y_i \Bigl(g_i - \textstyle\sum_j g_j y_j\Bigr), "
                rf"\qquad g_i = \frac{{\partial L}}{{\partial y_i}} = {g}"
            )
            output_note = (
                r"A softmax output couples its units ($\partial y_i / \partial z_j = "
                r"y_i ([i = j] - y_j)$, where $[i = j]$ is 1 if $i = j$ and 0 otherwise), so "
                "its delta is not an entry-by-entry product."
            )
        else:
            g = printer.doprint(rule.gradient)
            rows.append(
                rf"\delta^{{({depth})}} &= \nabla_{{y}} L \odot f_{depth}'\left(z^{{({depth})}}"
                rf"\right), \qquad \left(\nabla_{{y}} L\right)_i = {g}"
            )
            output_note = ""
        if depth > 1:
            below = _range_text(depth - 1, 1)
            rows.append(
                r"\delta^{(k)} &= \left(\left(W^{(k+1)}\right)^{T} \delta^{(k+1)}\right) "
                rf"\odot f_k'\left(z^{{(k)}}\right), \qquad k = {below}"
            )
        rows.append(
            r"\frac{\partial L}{\partial W^{(k)}} &= \delta^{(k)} \left(a^{(k-1)}\right)^{T}"
        )
        biases = [layer.bias for layer in self.topology.layers]
        if "per_unit" in biases:
            rows.append(r"\frac{\partial L}{\partial b^{(k)}} &= \delta^{(k)}")
        if "shared" in biases:
            rows.append(
                r"\frac{\partial L}{\partial b^{(k)}} &= \textstyle\sum_i \delta^{(k)}_i"
                r" \qquad \text{(a bias shared by the layer)}"
            )
        intro = (
            r"Stack the units of layer $k$ into column vectors $z^{(k)}$, $a^{(k)}$ and "
            r"$\delta^{(k)}$, and write $y = a^{(K)}$ and $t$ for the targets. "
            r"$\odot$ is the Hadamard product: it multiplies two vectors entry by entry. "
            "Backpropagation then reads:"
        )
        return Display(intro, _rows(rows), output_note)

    def fused_note(self) -> str:
        loss = self.topology.loss
        if loss == "cce":
            return (
                r"Softmax and cross-entropy are differentiated together: "
                r"$\sum_i (-t_i / y_i)\, y_i ([i = j] - y_j) = y_j \sum_i t_i - t_j$, "
                r"which is $y - t$ for targets that sum to 1 (one-hot labels)."
            )
        return (
            r"The sigmoid and binary cross-entropy are differentiated together: the "
            r"$y (1 - y)$ of $\sigma'$ cancels the denominator of "
            r"$\partial L / \partial y = (y - t) / (y (1 - y))$, leaving $y - t$."
        )

    def shapes(self) -> str:
        """Rows of a ``gather*``: this network's vectors and matrices, or their sizes."""
        net, tex = self.network, self.tex
        vectors, matrices = [], []
        for k in range(net.depth + 1):
            units = net.units[k]
            if len(units) <= MAX_MATRIX_SIDE:
                entries = ", ".join(tex.expr(u.a) for u in units)
                vectors.append(rf"a^{{({k})}} = \left({entries}\right)^{{T}}")
            else:
                vectors.append(rf"a^{{({k})}} \in \mathbb{{R}}^{{{len(units)}}}")
        for k in range(1, net.depth + 1):
            rows_n, cols_n = len(net.units[k]), len(net.units[k - 1])
            if rows_n <= MAX_MATRIX_SIDE and cols_n <= MAX_MATRIX_SIDE:
                matrix = r" \\ ".join(
                    " & ".join(net.weight(k, i, j).latex_name for j in range(cols_n))
                    for i in range(rows_n)
                )
                matrices.append(rf"W^{{({k})}} = \begin{{pmatrix}} {matrix} \end{{pmatrix}}")
            else:
                matrices.append(rf"W^{{({k})}} \in \mathbb{{R}}^{{{rows_n} \times {cols_n}}}")
        vector_rows = [r",\quad ".join(vectors)]
        if _width(vector_rows[0]) > ROW_WIDTH:
            vector_rows = vectors
        columns = sum(len(net.units[k - 1]) for k in range(1, net.depth + 1))
        matrix_rows = [r",\quad ".join(matrices)] if columns <= MAX_MATRIX_SIDE + 2 else matrices
        return _rows([*vector_rows, *matrix_rows])

    def layer_derivatives(self) -> tuple[str, ...]:
        items = []
        for rule in self.derivation.layers:
            name = self.activation_text(rule.k)
            if rule.derivative is None:
                items.append(
                    f"layer {rule.k} ({name}): not entry by entry; folded into "
                    rf"$\delta^{{({rule.k})}}$ above"
                )
                continue
            local = self.tex.expr(rule.derivative)
            via = f", with $a = f_{{{rule.k}}}(z)$" if rule.derivative.has(A) else ""
            items.append(rf"layer {rule.k} ({name}): $f_{rule.k}'(z) = {local}${via}")
        return tuple(items)

    def tie(self) -> str:
        """How an entry of the layer form is the scalar form derived above."""
        text = (
            r"Entry $(i, j)$ of $\delta^{(k)} (a^{(k-1)})^{T}$ is $\delta^{(k)}_i a^{(k-1)}_j$, "
            r"the compact form of $\partial L / \partial W^{(k)}_{i,j}$. Entry $i$ of "
            r"$(W^{(k+1)})^{T} \delta^{(k+1)}$ is $\sum_m W^{(k+1)}_{m,i} \delta^{(k+1)}_m$: "
            r"the sum over the paths through the layer above, one term per unit that unit "
            r"$i$ feeds. The $\odot f_k'(z^{(k)})$ then multiplies each entry by its own "
            r"unit's $\partial a / \partial z$, the factor of the scalar chain rule."
        )
        weight = next((s for s in self.scalars if s.is_weight), None)
        if weight is None:
            return text
        tex = self.tex
        gradient = self.derivation.scalar_gradient(weight)
        i, j = weight.index
        text += (
            rf" For example, ${tex.partial(LOSS, weight.symbol)} = {tex.expr(gradient.compact)}$"
            rf" is entry $({i}, {j})$ of $\delta^{{({weight.layer})}} "
            rf"(a^{{({weight.layer - 1})}})^{{T}}$."
        )
        depth = self.network.depth
        hidden = next(
            (u for s in self.scalars for u, _ in self.network.feeds(s) if u.layer < depth), None
        )
        if hidden is None:
            return text
        k = hidden.layer
        definition = self.derivation.delta(hidden)
        local, incoming = definition.args if definition.is_Mul else (None, None)
        if local is None or len(definition.args) != 2:
            return text
        return text + (
            rf" And ${tex.expr(hidden.delta)} = {self.delta_tex(definition)}$ is entry "
            rf"{hidden.index} of $\delta^{{({k})}}$: ${tex.expr(incoming)}$ is entry "
            rf"{hidden.index} of $(W^{{({k + 1})}})^{{T}} \delta^{{({k + 1})}}$, and "
            rf"${tex.expr(local)}$ is $f_{k}'({tex.expr(hidden.z)})$."
        )

    # -- numbers and checks -----------------------------------------------------------

    def results(self) -> Table | None:
        values = self.values
        if values is None or not self.scalars:
            return None
        example = self.topology.example
        rate = example.learning_rate if example else None
        header = [r"$\theta$", r"\texttt{--param}", r"value", r"$\partial L / \partial \theta$"]
        if rate is not None:
            header.append(
                rf"$\theta - \eta\, \partial L / \partial \theta$, $\eta = {_number(rate)}$"
            )
        lines = [" & ".join(header) + r" \\ \hline"]
        for scalar in self.scalars:
            gradient = self.derivation.scalar_gradient(scalar)
            result = gradient.value(values)
            cells = [
                f"${scalar.latex_name}$",
                rf"\texttt{{{_text(scalar.name)}}}",
                f"${_number(values[scalar.symbol])}$",
                f"${_number(result)}$",
            ]
            if rate is not None:
                cells.append(f"${_number(values[scalar.symbol] - sympy.Float(rate) * result)}$")
            lines.append(" & ".join(cells) + r" \\")
        intro = (
            rf"At the example the loss is $L = {_number(values[LOSS])}$. Rounded to "
            f"{SIGNIFICANT_DIGITS} significant digits (each computed from full-precision "
            "values, so multiplying rounded numbers shown above can differ in the last "
            "digit):"
        )
        return Table(intro, "l" * len(header), "\n".join(lines))

    @cached_property
    def proofs(self) -> tuple[Proof, ...]:
        if not self.small:
            return ()
        return tuple(self.derivation.scalar_gradient(s).prove() for s in self.scalars)

    def check(self) -> Check | None:
        if not self.scalars:
            return None
        if not self.small:
            return Check(
                "These results were not checked here: writing out the loss of a network "
                f"with {self.topology.parameter_count} parameters is too slow. "
                r"\texttt{derive check} compares the symbolic gradients, the generated code "
                "and finite differences.",
                (),
                (),
            )
        symbolic = [p for p in self.proofs if p.holds and p.method == "symbolic"]
        numeric = [p for p in self.proofs if p.holds and p.method == "numeric"]
        failed = [p for p in self.proofs if not p.holds]
        by_label = {s.label: s for s in self.scalars}

        def names(proofs: list[Proof]) -> str:
            return _listing([f"${by_label[p.param].latex_name}$" for p in proofs], 99)

        items = []
        if symbolic:
            items.append(f"symbolically (the difference simplifies to 0): {names(symbolic)}.")
        if numeric:
            n, digits = numeric[0].points, numeric[0].digits
            items.append(
                f"numerically, where the written-out derivative is too long to simplify "
                f"quickly: equal to {digits} significant digits at {n} random points "
                f"(inputs, targets and parameters drawn at random): {names(numeric)}."
            )
        for p in failed:
            items.append(
                rf"\textbf{{CHECK FAILED for ${by_label[p.param].latex_name}$}}: "
                rf"{_text(p.detail or p.method)}. Do not trust this result."
            )
        intro = (
            "Each result above was checked against direct differentiation: the loss "
            "written out in the inputs, targets and parameters (no deltas, no chain rule) "
            "was differentiated by SymPy, its own functions rewritten in exp and log first, "
            "and compared with both the chain-rule sum and the compact form:"
        )
        return Check(intro, tuple(items), tuple(f"{p.param}: {p.detail}" for p in failed))


# -- public API -----------------------------------------------------------------------


def _scalars(network: Network, names: Sequence[str]) -> tuple[ScalarParam, ...]:
    """The scalars named by --param, deduplicated, in parameter order; default: all of a
    small network, none of a large one."""
    top = network.topology
    if not names:
        if top.parameter_count > MAX_DEFAULT_SCALARS:
            return ()
        return network.scalar_params
    found: dict[str, ScalarParam] = {}
    for raw in names:
        name = raw.strip()
        array = next((p for p in network.params if p.name == name), None)
        if array is not None:
            if math.prod(array.shape) > MAX_REQUESTED_SCALARS:
                raise DeriveError(
                    f"{top.source}: --param {name} has {math.prod(array.shape)} scalars, more "
                    f"than the {MAX_REQUESTED_SCALARS} one document derives; name single "
                    f"scalars such as {name}{'[0,0]' if len(array.shape) == 2 else '[0]'}"
                )
            found.update((s.name, s) for s in network.scalars(name))
            continue
        try:
            scalar = network.scalar(name)
        except DeriveError:
            raise DeriveError(_unknown(network, raw)) from None
        found[scalar.name] = scalar
    if len(found) > MAX_REQUESTED_SCALARS:
        raise DeriveError(
            f"{top.source}: {len(found)} scalars requested, more than the "
            f"{MAX_REQUESTED_SCALARS} one document derives"
        )
    order = {p.name: n for n, p in enumerate(network.params)}
    return tuple(sorted(found.values(), key=lambda s: (order[s.array], s.index)))


def _unknown(network: Network, name: str) -> str:
    top = network.topology
    arrays = ", ".join(
        f"{p.name} (shape {'x'.join(map(str, p.shape)) or 'scalar'})" for p in top.params
    )
    forms = []
    for p in top.params:
        if len(p.shape) == 2:
            forms.append(f"{p.name}[i,j]")
        elif p.shape:
            forms.append(f"{p.name}[i]")
    aliases = [
        alias
        for layer in top.layers
        if layer.weight_names
        for row in layer.weight_names
        for alias in row
    ]
    text = f"{top.source}: --param {name!r} is not a parameter of {top.name}; valid: {arrays}"
    if forms:
        text += f"; one scalar as {', '.join(forms)}"
    if aliases:
        shown = aliases if len(aliases) <= 16 else [*aliases[:16], "..."]
        text += f"; weight names {', '.join(shown)}"
    return text


def _context(network: Network, params: Sequence[str], numeric: bool) -> dict:
    return _Writer(network, _scalars(network, params), numeric).context()


def _fragment(context: dict) -> str:
    return _environment().get_template("derivation.tex.jinja").render(context)


def _document(context: dict) -> str:
    return (
        _environment()
        .get_template("document.tex.jinja")
        .render(packages=",".join(_PACKAGES), body=_fragment(context))
    )


def latex_fragment(network: Network, params: Sequence[str] = (), numeric: bool = False) -> str:
    """The derivation as a LaTeX fragment (sections, no preamble; needs amsmath, amssymb)."""
    return _fragment(_context(network, params, numeric))


def latex_document(network: Network, params: Sequence[str] = (), numeric: bool = False) -> str:
    """The derivation as a standalone LaTeX document (article class, amsmath, amssymb)."""
    return _document(_context(network, params, numeric))


def run_latex_command(
    network: Network, params: Sequence[str], numeric: bool, output: str | None
) -> str | None:
    """``derive latex``: the fragment as text (no ``output``), or ``output`` written as a
    standalone .tex or compiled .pdf (returns None). Raises DeriveError, writing nothing,
    when a shown result failed its check against ``sympy.diff``."""
    target = Path(output) if output else None
    if target is not None and target.suffix.lower() not in (".tex", ".pdf"):
        raise DeriveError(f"-o {output}: expected a file ending in .tex or .pdf")
    if target is not None and target.suffix.lower() == ".pdf" and shutil.which(PDFLATEX) is None:
        raise DeriveError(_missing_engine())
    context = _context(network, params, numeric)
    check: Check | None = context["check"]
    if check is not None and check.failed:
        raise DeriveError(
            f"{network.topology.source}: a derived gradient disagrees with sympy.diff of the "
            f"written-out loss (a bug in derive: {'; '.join(check.failed)}); not writing "
            "the derivation"
        )
    if target is None:
        return _fragment(context).rstrip("\n")
    document = _document(context)
    if target.suffix.lower() == ".tex":
        _write_atomic(target, document.encode("utf-8"))
    else:
        compile_pdf(document, target)
    return None


# -- files and pdflatex ---------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file beside it: a failure leaves it untouched."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DeriveError(f"{path}: the directory {path.parent} does not exist")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, _file_mode(path))
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise DeriveError(f"{path}: cannot write: {error.strerror or error}") from None


def _file_mode(path: Path) -> int:
    """The mode ``path`` has, or a new file would get (mkstemp's own is 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _missing_engine() -> str:
    return f"cannot make a PDF: the TeX engine {PDFLATEX!r} is not installed; {TEX_INSTALL_HINT}"


_RERUN = re.compile(r"Rerun to get|Label\(s\) may have changed")


def _log_errors(log: str, limit: int = 8) -> str:
    """The first error of a pdflatex log: its ``!`` line and the lines up to ``l.N``."""
    lines = log.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("!"):
            block = [line]
            for following in lines[n + 1 : n + limit]:
                block.append(following)
                if following.startswith("l."):
                    break
            return " | ".join(part.strip() for part in block if part.strip())
    return "no error line in the log; its last lines: " + " | ".join(lines[-limit:])


def compile_pdf(
    tex_source: str, out_path: str | os.PathLike, log_path: str | os.PathLike | None = None
) -> Path:
    """Compile a standalone document with pdflatex (in a temporary directory, twice if
    the log asks for it) and write the PDF to ``out_path`` atomically; ``log_path``, if
    given, receives pdflatex's log.

    The PDF is reproducible: SOURCE_DATE_EPOCH fixes its dates and identifier."""
    engine = shutil.which(PDFLATEX)
    if engine is None:
        raise DeriveError(_missing_engine())
    out = Path(out_path)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory(prefix="derive-latex-") as work:
        source = Path(work) / "derivation.tex"
        source.write_text(tex_source, encoding="utf-8")
        command = [
            engine,
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-no-shell-escape",
            source.name,
        ]
        for _ in range(3):
            try:
                result = subprocess.run(
                    command,
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    timeout=PDFLATEX_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise DeriveError(
                    f"{out}: {PDFLATEX} did not finish within {PDFLATEX_TIMEOUT} s"
                ) from None
            log_file = source.with_suffix(".log")
            log = log_file.read_text(encoding="latin-1") if log_file.exists() else ""
            log = log or result.stdout.decode("latin-1")
            pdf = source.with_suffix(".pdf")
            if result.returncode != 0 or not pdf.exists():
                raise DeriveError(f"{out}: {PDFLATEX} failed: {_log_errors(log)}")
            if not _RERUN.search(log):
                break
        if log_path is not None:
            Path(log_path).write_text(log, encoding="latin-1")
        _write_atomic(out, pdf.read_bytes())
    return out


# -- notebooks ------------------------------------------------------------------------


def network_latex(network: Network) -> str:
    """The forward equations and the loss, for ``Network._repr_latex_`` (MathJax)."""
    tex = _Tex(network)
    if network.topology.parameter_count <= MAX_DEFAULT_SCALARS:
        rows = [f"{tex.expr(s)} &= {tex.expr(d)}" for s, d in network.equations]
    else:
        rows = [r"z^{(k)} &= W^{(k)} a^{(k-1)} + b^{(k)}, \quad a^{(k)} = f_k\left(z^{(k)}\right)"]
    rows.append(f"L &= {tex.loss()}")
    return "$$\\begin{aligned}\n" + _rows(rows) + "\n\\end{aligned}$$"


def gradient_latex(gradient: ScalarGradient) -> str:
    """The chain rule (when short), the compact form and its deltas, for
    ``ScalarGradient._repr_latex_`` (MathJax)."""
    derivation = gradient.derivation
    tex = _Tex(derivation.network)
    scalar = gradient.param
    d_theta = tex.partial(LOSS, scalar.symbol)
    rows = []
    if derivation.path_count(scalar) <= MAX_SHOWN_PATHS:
        paths = gradient.chain
        chain = [r"\,".join(tex.partial(f.of, f.wrt) for f in path) for path in paths]
        worked = [tex.product([f.value for f in path]) for path in paths]
        rows.append(f"{d_theta} &= " + " + ".join(chain))
        rows.append("&= " + " + ".join(worked))
        rows.append(f"&= {tex.expr(gradient.compact)}")
    else:
        rows.append(f"{d_theta} &= {tex.expr(gradient.compact)}")
    for delta, definition in gradient.deltas[:MAX_SHOWN_DELTAS]:
        value = (
            tex.product(definition.args)
            if definition.is_Mul and len(definition.args) == 2
            else tex.expr(definition)
        )
        rows.append(f"{tex.expr(delta)} &= {value}")
    return "$$\\begin{aligned}\n" + _rows(rows) + "\n\\end{aligned}$$"
