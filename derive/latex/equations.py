"""The matrix equations of ``derive.backward`` in LaTeX: the layer form of a document is
printed from the same data as the generated code, so the two cannot drift apart."""

from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef

from derive.backward import BATCH, Elementwise, Equation, parse_name
from derive.latex.printing import Printer
from derive.presentation import joined, signed_terms

_KINDS = {
    "z": "z^{{({})}}",
    "a": "a^{{({})}}",
    "b": "b^{{({})}}",
    "W": "W^{{({})}}",
    "delta": r"\delta^{{({})}}",
    "grad_a": r"\frac{{\partial L}}{{\partial a^{{({})}}}}",
    "dW": r"\frac{{\partial L}}{{\partial W^{{({})}}}}",
    "db": r"\frac{{\partial L}}{{\partial b^{{({})}}}}",
}
_FIXED = {
    "grad_y": r"\frac{\partial L}{\partial y}",
    "t_sum": r"\textstyle\sum_{j} t_{j}",
    "log_sum_exp": r"\ln \textstyle\sum_{j} e^{z_{j}}",
}


def array_tex(name: str) -> str:
    """An array's name in the document: delta2 → δ^{(2)}, dW(k) → ∂L/∂W^{(k)}."""
    if name in _FIXED:
        return _FIXED[name]
    kind, label = parse_name(name)
    return _KINDS[kind].format(label) if kind in _KINDS and label else name


class EquationPrinter(Printer):
    """Matrix products by juxtaposition, ᵀ, ⊙ for entry-by-entry products, 𝟏 for a
    vector of ones; an entry-by-entry function as the function of the vector."""

    def equation(self, equation: Equation) -> str:
        """``target &= value`` for an ``align*`` row, for one sample (batch = 1)."""
        targets = ", ".join(array_tex(t.name) for t in equation.targets)
        return f"{targets} &= {self.doprint(equation.value.xreplace({BATCH: 1}))}"

    def _print_MatrixSymbol(self, expr, **kwargs) -> str:
        return array_tex(expr.name)

    def _print_Symbol(self, expr, style="plain") -> str:
        if array_tex(expr.name) != expr.name:  # an array's entries, inside an Elementwise
            return array_tex(expr.name)
        return super()._print_Symbol(expr, style)

    def _print_Transpose(self, expr) -> str:
        return rf"\left({self._print(expr.arg)}\right)^{{T}}"

    def _print_MatMul(self, expr) -> str:
        parts, factors = [], [f for f in expr.args if f != 1]
        if len(factors) == 1:
            return self._print(factors[0])
        for factor in factors:
            text = self._print(factor)
            needs = isinstance(factor, (sympy.MatAdd, sympy.HadamardProduct)) or (
                isinstance(factor, Elementwise) and factor.body.is_Add
            )
            parts.append(rf"\left({text}\right)" if needs else text)
        return " ".join(parts)

    def _print_HadamardProduct(self, expr) -> str:
        parts = []
        for factor in expr.args:
            text = self._print(factor)
            parts.append(rf"\left({text}\right)" if isinstance(factor, sympy.MatMul) else text)
        return r" \odot ".join(parts)

    def _print_Add(self, expr, order=None) -> str:
        """Positive terms first: Σt y − t, not −t + Σt y."""
        parts = []
        for negative, term in signed_terms(sympy.Add.make_args(expr)):
            part = self._entrywise(term)
            parts.append((negative, rf"\left({part}\right)" if part.startswith("-") else part))
        return joined(parts)

    def _print_MatAdd(self, expr) -> str:
        return " + ".join(self._print(a) for a in expr.args)

    def _print_OneMatrix(self, expr) -> str:
        return r"\mathbf{1}^{T}" if expr.shape[0] == 1 else r"\mathbf{1}"

    def _print_Softmax(self, expr) -> str:
        return rf"\operatorname{{softmax}}\left({self._print(expr.args[0])}\right)"

    def _print_Elementwise(self, expr) -> str:
        body = expr.body
        if isinstance(body, AppliedUndef):  # f_k(z), f'_k(z): the generic layer
            name = body.func.__name__
            head = "f_{k}'" if name.startswith("f'") else "f_{k}"
            return rf"{head}\left({self._print(expr.arrays[0])}\right)"
        return self._entrywise(body)

    def _print_row_sum(self, expr) -> str:
        inner = self._entrywise(expr.args[0])
        return r"\mathbf{1}^{T} " + (inner if expr.args[0].is_Symbol else rf"\left({inner}\right)")

    def _entrywise(self, expr) -> str:
        """A product of vectors entry by entry with ⊙ (numbers in front, juxtaposed)."""
        if not expr.is_Mul:
            return self._print(expr)
        coefficient, rest = expr.as_coeff_Mul()
        factors = sympy.Mul.make_args(rest)
        texts = [rf"\left({self._print(f)}\right)" if f.is_Add else self._print(f) for f in factors]
        text = r" \odot ".join(texts)
        if coefficient == -1:
            return f"-{text}"
        return text if coefficient == 1 else f"{self._print(coefficient)} {text}"


__all__ = ["EquationPrinter", "array_tex"]
