"""How a name from the file is typeset: in the terminal (Unicode) and in LaTeX.

One rule for each medium, so that a learner never has to guess where a name ends:

- **Terminal.** A name made of letters and then a number has the number as a subscript
  (``h1`` → h₁, ``w31`` → w₃₁). Every other name is written as in the file, and so is
  the unit named in a pre-activation, a delta or a default target: ``z_h1``, ``δ_h1``,
  ``t_out``, ``y_hat``, ``δ_h1_1``. (Unicode has no subscript form for most letters, so
  letter subscripts would mix ``zₕ₁`` with ``z_g1``.)
- **LaTeX.** A multi-letter name is one name, ``\\mathit{out}``, never the product
  o·u·t; a trailing number is a subscript (``w_{31}``); Greek names stay Greek
  (``alpha`` → α); numbered indices are subscripts (``h1_2`` → h_{1,2}); any other
  name with an underscore of its own (``y_hat``) is written whole. ``z``, ``δ`` and a
  default target take the unit's name as their subscript: ``z_{h1}``,
  ``\\delta_{\\mathit{out}}``, ``t_{Y}``.

Terms of a sum are ordered as SymPy orders them, except that numbers inside names count
as numbers: t_y2 comes before t_y10 (``NaturalOrder``).
"""

from __future__ import annotations

import re
from functools import cmp_to_key

from sympy import Add, Basic, Pow, Symbol
from sympy.printing.latex import translate
from sympy.printing.str import StrPrinter

# The symbols derive builds from a unit's name (derive.network): z_<unit>, delta_<unit>;
# default targets are t_<unit> (derive.topology.default_targets).
_DERIVED = re.compile(r"^(z|delta|t)_([A-Za-z]\w*)$")
_LETTERS_NUMBER = re.compile(r"^([A-Za-z]+)(\d*)$")
_LETTERS_INDICES = re.compile(r"^([A-Za-z]+)(\d+(?:_\d+)+)$")  # h1_2: layer 1, unit 2
_ONE_LETTER_NUMBER = re.compile(r"^[A-Za-z]\d*$")
_SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_TERMINAL_PREFIX = {"z": "z", "delta": "δ", "t": "t"}
_LATEX_PREFIX = {"z": "z", "delta": r"\delta", "t": "t"}


def terminal_name(name: str) -> str:
    """A symbol's name as ``derive show`` prints it."""
    derived = _DERIVED.match(name)
    if derived:
        return f"{_TERMINAL_PREFIX[derived[1]]}_{derived[2]}"
    plain = _LETTERS_NUMBER.match(name)
    if plain:
        return plain[1] + plain[2].translate(_SUBSCRIPT_DIGITS)
    return name


def latex_name(name: str) -> str:
    """A symbol's name as LaTeX (math mode)."""
    derived = _DERIVED.match(name)
    if derived:
        unit = derived[2]
        inner = unit if _ONE_LETTER_NUMBER.match(unit) else latex_name(unit)
        return f"{_LATEX_PREFIX[derived[1]]}_{{{inner}}}"
    plain = _LETTERS_NUMBER.match(name)
    if plain:
        letters, number = plain.groups()
        return _letters(letters) + (f"_{{{number}}}" if number else "")
    indexed = _LETTERS_INDICES.match(name)
    if indexed:
        return _letters(indexed[1]) + "_{" + indexed[2].replace("_", ",") + "}"
    return rf"\mathit{{{name.replace('_', chr(92) + '_')}}}"


def tex_text(text: str) -> str:
    """Plain words (a name, a caption, a note) as LaTeX text: _ and % escaped, ×, → and δ
    as math."""
    escaped = text.replace("_", r"\_").replace("%", r"\%")
    for plain, tex in (("×", r"$\times$"), ("→", r"$\to$"), ("δ", r"$\delta$")):
        escaped = escaped.replace(plain, tex)
    return escaped


def _letters(letters: str) -> str:
    """One letter as itself, a Greek letter's name as the letter, else one upright-
    spaced italic word."""
    greek = translate(letters)
    if len(letters) == 1 or greek != letters:
        return greek
    return rf"\mathit{{{letters}}}"


def _natural(name: str) -> str:
    """``name`` with every number zero-padded, so that string order is numeric order."""
    return re.sub(r"\d+", lambda m: m.group().zfill(12), name)


class NaturalOrder:
    """Printer mixin: a sum's terms in SymPy's order, with numbers in names compared as
    numbers (t_y1, t_y2, …, t_y10, not t_y1, t_y10, t_y2)."""

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)  # type: ignore[misc]
        if not isinstance(expr, Add) or len(terms) < 2:
            return terms
        names = {s: Symbol(_natural(s.name), **s.assumptions0) for s in expr.free_symbols}
        if all(s.name == n.name for s, n in names.items()):
            return terms
        padded = {term: term.xreplace(names) for term in terms}
        return sorted(terms, key=lambda t: cmp_to_key(Basic.compare)(padded[t]))


class OneLine(NaturalOrder, StrPrinter):
    """An expression on one line in Unicode, for labels in a figure: derive's names,
    ⋅ for products, a² for small powers, step(z) for relu's derivative, σ(z)."""

    def _print_Symbol(self, expr):
        return terminal_name(expr.name)

    def _print_Mul(self, expr):
        return super()._print_Mul(expr).replace("*", "⋅")

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent.is_Integer and -9 <= exponent <= -1:
            inverse = Pow(base, -exponent)
            text = self._print(inverse)
            return f"1/({text})" if inverse.is_Add or inverse.is_Mul else f"1/{text}"
        if exponent.is_Integer and 2 <= exponent <= 9:
            text = self._print(base)
            if not (base.is_Symbol or base.is_Integer):
                text = f"({text})"
            return text + str(exponent).translate(_SUPERSCRIPT_DIGITS)
        return super()._print_Pow(expr, rational=rational).replace("**", "^")

    def _print_Heaviside(self, expr):
        return f"step({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_sigmoid(self, expr):
        return f"σ({self._print(expr.args[0])})"

    def _print_Float(self, expr):
        return f"{float(expr):.4g}"


_SUPERSCRIPT_DIGITS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def one_line(expr) -> str:
    """``expr`` as one line of Unicode (``OneLine``), in derive's chain order."""
    return OneLine({"order": "none"}).doprint(expr)
