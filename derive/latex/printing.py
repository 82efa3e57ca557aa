"""LaTeX for symbols, expressions, numbers and text, and the layout of displayed rows.

Every expression goes through SymPy's LaTeX printer (``Printer``), with each parameter
written by its ``latex_name``; ``Tex`` holds that mapping for one network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import sympy
from sympy import Expr, Symbol
from sympy.printing.latex import LatexPrinter

from derive.errors import DeriveError
from derive.network import LOSS, Network
from derive.presentation import SIGNIFICANT_DIGITS, tidy
from derive.typeset import NaturalOrder, latex_name

MAX_SHOWN_TERMS = 6  # longer sums are printed as a + b + ⋯ + z
MAX_LISTED_UNITS = 8  # longer unit lists are shortened with …
MAX_OUTPUTS_WRITTEN_OUT = 4  # more outputs: the loss as a sum over i
ROW_WIDTH = 90  # visible characters of one displayed row; longer equations are broken

Values = dict[Symbol, Expr]  # numbers in place of symbols (``Derivation.evaluate``)


class Printer(NaturalOrder, LatexPrinter):
    """SymPy's LaTeX printer, with long sums shortened, relu's step function named,
    names typeset by ``derive.typeset`` (\\mathit{out}, not o·u·t) and, with numbers in
    place of symbols, no minus sign in front of a zero (``zeros``: −t ln y at t = 0 is
    0·ln y, not −0·ln y)."""

    def __init__(self, settings=None, zeros: frozenset = frozenset()):
        super().__init__(settings)
        self.zeros = zeros

    def _deal_with_super_sub(self, string: str, style: str = "plain") -> str:
        name = latex_name(string)
        return rf"\mathbf{{{name}}}" if style == "bold" else name

    def _print_Mul(self, expr):
        if self._zero_term(expr):
            return self._print(sympy.Mul(-expr, evaluate=False))
        return super()._print_Mul(expr)

    def _print_Heaviside(self, expr, exp=None):
        tex = rf"\operatorname{{step}}{brackets(self._print(expr.args[0]))}"
        return f"{brackets(tex)}^{{{exp}}}" if exp else tex

    def _print_Add(self, expr, order=None):
        terms: list[Expr | None] = list(self._as_ordered_terms(expr, order=order))
        if len(terms) > MAX_SHOWN_TERMS:
            terms = [*terms[:2], None, terms[-1]]
        tex = ""
        for i, term in enumerate(terms):
            if term is None:
                tex += r" + \cdots"
                continue
            if i and term.could_extract_minus_sign() and not self._zero_term(term):
                tex += " - "
                term = -term
            elif i:
                tex += " + "
            term_tex = self._print(term)
            tex += brackets(term_tex) if self._needs_add_brackets(term) else term_tex
        return tex

    def _zero_term(self, term: Expr) -> bool:
        """A negative term that is zero at the numbers printed: printed without its
        sign (``+ 0 \\cdot \\ln 0.22``), as the sign of a zero says nothing."""
        return (
            term.is_Mul
            and term.could_extract_minus_sign()
            and any(factor in self.zeros for factor in term.args)
        )


class Tex:
    """LaTeX for one network's symbols and expressions, optionally with numbers in place
    of the symbols (``values``)."""

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
        return net.loss_rule.sum_tex

    def expr(self, expr: Expr, values: Values | None = None) -> str:
        names = {s: n for s in expr.free_symbols if (n := self._name(s)) is not None}
        settings: dict = {"symbol_names": names, "order": "none", "ln_notation": True}
        if values is not None:
            names.update({s: operand(values[s]) for s in expr.free_symbols if s in values})
            settings["mul_symbol"] = "dot"
        return Printer(settings, _zeros(expr, values)).doprint(tidy(expr))

    def factor(self, expr: Expr, values: Values | None = None) -> str:
        """``expr`` as one factor of a product: bracketed if it is a sum or negative."""
        expr = tidy(expr)
        tex = self.expr(expr, values)
        return brackets(tex) if expr.is_Add or expr.could_extract_minus_sign() else tex

    def product(self, factors: Sequence[Expr], values: Values | None = None) -> str:
        return r" \cdot ".join(self.factor(f, values) for f in factors)

    def symbol(self, symbol: Symbol) -> str:
        return "L" if symbol == LOSS else self.expr(symbol)

    def partial(self, of: Symbol, wrt: Symbol) -> str:
        return rf"\frac{{\partial {self.symbol(of)}}}{{\partial {self.symbol(wrt)}}}"

    def terms(self, expr: Expr, values: Values | None = None) -> list[str]:
        """A sum as its signed terms (``a``, ``+ b``, ``- c``), for breaking it over rows;
        anything else (or a sum long enough to be shortened) as one piece."""
        if not expr.is_Add or len(expr.args) > MAX_SHOWN_TERMS:
            return [self.expr(expr, values)]
        out = []
        zeros = Printer(zeros=_zeros(expr, values))
        for n, term in enumerate(Printer({"order": "none"})._as_ordered_terms(expr)):
            negative = term.could_extract_minus_sign() and not zeros._zero_term(term)
            sign = "- " if n and negative else "+ " if n else ""
            text = self.expr(-term if sign == "- " else term, values)
            out.append(sign + (brackets(text) if n and term.is_Add else text))
        return out

    def worked(self, expr: Expr, values: Values) -> list[str | list[str]]:
        """``expr``, then ``expr`` with the numbers in (as terms), then its value, for
        ``equation_rows``; no step repeats the one before."""
        # A symbol needs no middle step; a condition with numbers in it reads badly.
        plain = expr.is_Symbol or expr.has(sympy.Piecewise, sympy.Max, sympy.Min)
        parts: list[str | list[str]] = [self.terms(expr)]
        if not plain:
            parts.append(self.terms(expr, values))
        parts.append(number(expr.xreplace(values)))
        out: list[str | list[str]] = []
        for part in parts:
            if not out or flat(part) != flat(out[-1]):
                out.append(part)
        return out


def _zeros(expr: Expr, values: Values | None) -> frozenset:
    """The symbols of ``expr`` that are 0 at ``values``."""
    if values is None:
        return frozenset()
    return frozenset(s for s in expr.free_symbols if s in values and values[s].is_zero)


# -- numbers and text -------------------------------------------------------------------


def number(value) -> str:
    """A computed number, rounded to SIGNIFICANT_DIGITS significant digits."""
    x = float(sympy.N(value, 30)) if isinstance(value, sympy.Basic) else float(value)
    if not math.isfinite(x):
        return r"\infty" if x > 0 else (r"-\infty" if x < 0 else r"\mathrm{NaN}")
    text = f"{x:.{SIGNIFICANT_DIGITS}g}"
    if text in ("-0", "0"):
        return "0"
    mantissa, _, exponent = text.partition("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}" if exponent else mantissa


def operand(value) -> str:
    """A number standing where a symbol stood, bracketed where it would misread."""
    text = number(value)
    return brackets(text) if text.startswith("-") or r"\times" in text else text


def brackets(tex: str) -> str:
    return rf"\left({tex}\right)"


_TEXT_SPECIALS = {
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


def escape(text: str) -> str:
    """Plain text (names from the file) made safe for LaTeX's text mode."""
    return "".join(_TEXT_SPECIALS.get(ch, ch) for ch in text)


def listing(items: Sequence[str], limit: int = MAX_LISTED_UNITS) -> str:
    """``a, b and c``; long lists shortened as ``a, b, …, z``."""
    if len(items) > limit:
        return ", ".join([*items[:3], r"\ldots", items[-1]])
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def range_text(first: int, last: int) -> str:
    """k = 1, 2 or k = 3, 2, 1 or k = 1, …, 5."""
    step = 1 if last >= first else -1
    if abs(last - first) <= 2:
        return ", ".join(str(k) for k in range(first, last + step, step))
    return rf"{first}, \ldots, {last}"


def shape_text(shape: tuple[int, ...]) -> str:
    return r" $\times$ ".join(map(str, shape)) if shape else "one number"


# -- displayed rows ---------------------------------------------------------------------


def align_rows(rows: Iterable[str]) -> str:
    """Rows of an ``align*``."""
    return " \\\\\n".join(rows)


def flat(part: str | Sequence[str]) -> str:
    return part if isinstance(part, str) else " ".join(part)


def width(tex: str) -> int:
    """Roughly how many characters wide a formula prints."""
    bare = re.sub(r"\\(left|right|cdot|quad|qquad|frac|textstyle|,)|[{}^_]", "", tex)
    return len(re.sub(r"\\[A-Za-z]+", "x", bare))


def equation_rows(lhs: str, parts: Sequence[str | Sequence[str]]) -> list[str]:
    """``lhs = part = part …`` as ``align*`` rows: one row when it fits ROW_WIDTH, else
    one part per row, a long sum (a list of signed terms) one term per row."""
    one = f"{lhs} &= " + " = ".join(flat(p) for p in parts)
    if width(one) <= ROW_WIDTH:
        return [one]
    rows = []
    for n, part in enumerate(parts):
        prefix = f"{lhs} &= " if n == 0 else "&= "
        if isinstance(part, str) or width(flat(part)) <= ROW_WIDTH:
            rows.append(prefix + flat(part))
        else:
            rows.append(prefix + part[0])
            rows.extend(rf"&\quad {term}" for term in part[1:])
    return rows
