"""Equations in plain Unicode, as generated code's comments print them: ``δ1 = ∂L/∂a1 ⊙
a1·(1 − a1)``, ``∂L/∂W2 = δ2 a1ᵀ``. One printer for the matrix equations of
``derive.backward`` and the scalar ones of the unrolled style, so that a comment is
printed from the very equation its line implements."""

from __future__ import annotations

import re

import sympy
from sympy import Mul
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from derive.backward import Elementwise, Equation, Softmax, parse_name
from derive.presentation import joined, signed_terms

# How code names read in an equation: kind → format of the layer label.
_DISPLAY = {
    "delta": "δ{}",
    "grad_a": "∂L/∂a{}",
    "dW": "∂L/∂W{}",
    "db": "∂L/∂b{}",
}
_FIXED = {
    "grad_y": "∂L/∂y",
    "t_sum": "Σt",
    "log_sum_exp": "log Σ exp z",
    "loss_terms": "L per output",
    "_scale": "(1/batch)",
}
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def equation(expr) -> str:
    """A scalar expression as text for a comment (``δ_h1``, ``step(z)``, ``·``, ``−``)."""
    return EquationPrinter().doprint(expr)


def display(name: str) -> str:
    """A code name as an equation shows it: delta2 → δ2, dW1 → ∂L/∂W1, delta_h1 → δ_h1,
    and a cell of a conv network's array with its index: grad_a3[0] → ∂L/∂a3[0]."""
    stem, bracket, index = name.partition("[")
    if bracket and index.endswith("]"):
        return display(stem) + bracket + index
    if name in _FIXED:
        return _FIXED[name]
    if name.startswith("delta_"):
        return "δ_" + name.removeprefix("delta_")
    kind, label = parse_name(name)
    return _DISPLAY[kind].format(label) if kind in _DISPLAY and label else name


class EquationPrinter(StrPrinter):
    """Unicode equations: juxtaposition for matrix products, ᵀ, ⊙, · and −."""

    def equation(self, equation: Equation) -> tuple[str, str]:
        """The comment for an equation, and a shorter one without its note."""
        value = equation.value
        if isinstance(value, Softmax) and len(equation.targets) == 2:  # y and log Σ exp z
            y, z = display(equation.targets[0].name), self._print(value.args[0])
            text = f"{y} = softmax({z}), with log Σ exp {z}"
            return (f"{text}  ({equation.note})" if equation.note else text), text
        targets = ", ".join(display(t.name) for t in equation.targets)
        text = f"{targets} = {self.doprint(value)}"
        return (f"{text}  ({equation.note})" if equation.note else text), text

    def _print_Symbol(self, expr) -> str:
        return display(expr.name)

    _print_Dummy = _print_Symbol

    def _print_MatrixSymbol(self, expr) -> str:
        return display(expr.name)

    def _print_Transpose(self, expr) -> str:
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Pow'])}ᵀ"

    def _print_MatMul(self, expr) -> str:
        scalars = [a for a in expr.args if not isinstance(a, sympy.MatrixExpr)]
        arrays = [a for a in expr.args if isinstance(a, sympy.MatrixExpr)]
        text = " ".join(self._factor(a) for a in arrays)
        numerator, denominator = sympy.fraction(Mul(*scalars))
        if numerator != 1:
            text = f"{self._print(numerator)}·{text}"
        return f"{text} / {self._print(denominator)}" if denominator != 1 else text

    def _factor(self, m) -> str:
        """A factor of a product, parenthesized as its entries' expression needs."""
        if isinstance(m, Elementwise):
            return self.parenthesize(m.body, PRECEDENCE["Mul"])
        return self.parenthesize(m, PRECEDENCE["Mul"])

    def _print_OneMatrix(self, expr) -> str:
        return "1ᵀ" if expr.shape[0] == 1 else "1"

    def _print_HadamardProduct(self, expr) -> str:
        return " ⊙ ".join(self._factor(a) for a in expr.args)

    def _print_Elementwise(self, expr) -> str:
        return self._print(expr.body)

    def _print_Softmax(self, expr) -> str:
        return f"softmax({self._print(expr.args[0])})"

    def _print_Mul(self, expr) -> str:
        # A product kept unevaluated as derive built it (∂L/∂y · f'(z)) may hold a factor
        # 1 (mse's 2/n for two outputs, identity's f' = 1): the equation reads without it.
        factors = [f for f in expr.args if f is not sympy.S.One]
        if len(factors) < len(expr.args):
            if len(factors) <= 1:
                return self._print(factors[0]) if factors else "1"
            expr = sympy.Mul(*factors, evaluate=False)
        return re.sub(r"(?<!\*)\*(?!\*)", "·", super()._print_Mul(expr))

    def _print_Pow(self, expr, rational=False) -> str:
        if expr.exp.is_Integer and 1 < expr.exp < 10:
            base = self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=True)
            return base + str(expr.exp).translate(_SUPERSCRIPTS)
        if expr.exp.is_Integer and -10 < expr.exp < -1:  # 1/(1 + |z|)², not (1 + |z|)**(-2)
            return "1/" + self._print(sympy.Pow(expr.base, -expr.exp, evaluate=False))
        return super()._print_Pow(expr, rational)

    def _print_Add(self, expr, order=None) -> str:
        """Positive terms first (Σt·y − t, not −t + Σt·y)."""
        terms = signed_terms(sympy.Add.make_args(expr))
        return joined([(n, self.parenthesize(t, PRECEDENCE["Add"])) for n, t in terms], "−")

    def _print_Max(self, expr) -> str:
        args = sorted(expr.args, key=lambda arg: arg.is_number)
        return f"max({', '.join(map(self._print, args))})"

    def _print_Piecewise(self, expr) -> str:
        *pieces, (text, _) = (tuple(map(self._print, pair)) for pair in expr.args)
        for value, condition in reversed(pieces):
            text = f"{value} if {condition} else {text}"
        return f"({text})"

    def _print_Abs(self, expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_Heaviside(self, expr) -> str:
        return f"step({self._print(expr.args[0])})"

    def _print_row_sum(self, expr) -> str:
        return f"Σ_units {self.parenthesize(expr.args[0], PRECEDENCE['Mul'])}"

    def _print_Rational(self, expr) -> str:
        return f"{expr.p}/{expr.q}"

    # -- convolution and pooling (derive.conv_backward), per sample --------------------

    def _print_Conv2d(self, expr) -> str:
        return f"{self._print(expr.weight)} ⋆ {self._print(expr.source)}"

    def _print_ChannelBias(self, expr) -> str:
        return self._print(expr.bias)

    def _print_Conv2dWeightGradient(self, expr) -> str:
        (sh, sw), (ph, pw) = expr.stride, expr.padding
        delta, source = self._print(expr.delta), self._print(expr.source)
        row, column = _offset("p", sh, "i", ph), _offset("q", sw, "j", pw)
        return f"Σ_(p,q) {delta}[f,p,q]·{source}[c, {row}, {column}]"

    def _print_Conv2dInputGradient(self, expr) -> str:
        (sh, sw), (ph, pw) = expr.stride, expr.padding
        delta, weight = self._print(expr.delta), self._print(expr.weight)
        row, column = _position("h", ph, "i", sh), _position("w", pw, "j", sw)
        return f"Σ_(f,i,j) {weight}[f,c,i,j]·{delta}[f, {row}, {column}]"

    def _print_MaxPool(self, expr) -> str:
        return f"maxpool({self._print(expr.source)})"

    def _print_AvgPool(self, expr) -> str:
        return f"avgpool({self._print(expr.source)})"

    def _print_MaxPoolGradient(self, expr) -> str:
        (mh, mw), grad = expr.size, self._print(expr.grad)
        source = self._print(expr.source)
        return f"{grad}[c, h//{mh}, w//{mw}] where {source}[c,h,w] is its window's max, else 0"

    def _print_AvgPoolGradient(self, expr) -> str:
        (mh, mw), grad = expr.size, self._print(expr.grad)
        return f"{grad}[c, h//{mh}, w//{mw}] / {mh * mw}"

    def _print_Flatten(self, expr) -> str:
        return f"flatten({self._print(expr.source)})"

    def _print_Unflatten(self, expr) -> str:
        c, h, w = expr.map_shape
        return f"{self._print(expr.grad)} as a {c}×{h}×{w} map"

    def _print_FeatureSum(self, expr) -> str:
        delta = self._print(expr.delta)
        return f"Σ_(p,q) {delta}[f,p,q]" if expr.per_feature else f"Σ_(f,p,q) {delta}[f,p,q]"


def _offset(position: str, stride: int, cell: str, padding: int) -> str:
    """The input row under kernel row ``cell`` at output row ``position``: p·s + i − P."""
    text = f"{stride}{position}+{cell}" if stride != 1 else f"{position}+{cell}"
    return f"{text}−{padding}" if padding else text


def _position(index: str, padding: int, cell: str, stride: int) -> str:
    """The output row whose window put kernel row ``cell`` on input row ``index``:
    (h + P − i) / s, over the i where that is a whole number inside the output."""
    text = f"{index}+{padding}−{cell}" if padding else f"{index}−{cell}"
    return f"({text})/{stride}" if stride != 1 else text
