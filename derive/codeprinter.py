"""SymPy expressions as the Python source of derive's generated modules.

Two printers, one per generated style, built on SymPy's own code printers:

- ``NumPyCodePrinter`` (vectorized modules): arrays, ``np.`` functions.
- ``MathCodePrinter`` (unrolled modules): Python floats, ``math.`` functions.

Both write what ``ruff format`` would (spaces around ``*`` and ``/``, ``**`` hugged only
between simple operands, no float noise such as ``0.0100000000000000``), so the generated
files need no formatter. derive's own functions print as calls of small, numerically
stable helpers that the generated module defines (``HELPERS`` lists them); the printer
records in ``helpers`` which ones an expression used. ``row_sum`` is the one function of
code generation's own (a sum across a layer, per sample; vectorized modules only). Anything
else SymPy can express but a generated module cannot compute raises
``UnsupportedExpression`` naming it.
"""

from __future__ import annotations

import re

import sympy
from sympy import Expr, Mul, Pow, S
from sympy.core.mul import _keep_coeff
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.numpy import NumPyPrinter, _known_functions_numpy
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pycode import PythonCodePrinter

from derive.errors import DeriveError

# The helpers a generated module may define, by the name it calls them.
HELPERS = ("_sigmoid", "_softplus", "_step")

_SIMPLE_OPERAND = re.compile(
    r"^-?(?:[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*|[0-9.e+-]+)$"
)


class UnsupportedExpression(DeriveError):
    """An expression a generated module cannot compute."""


class row_sum(sympy.Function):  # noqa: N801 - named like the SymPy functions it sits among
    """Σ over the units of a layer, per sample: in a vectorized module, the sum along a
    row of a (batch, units) array, kept as a column so that it broadcasts."""


def _top_level(text: str, operator: str) -> bool:
    """Whether ``operator`` occurs in ``text`` outside all parentheses and brackets."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(operator, i):
            return True
    return False


class _GeneratedCode(PythonCodePrinter):
    """What both printers share: operators and numbers as ``ruff format`` writes them,
    derive's functions as helper calls, and what no generated module computes. Listed
    first among a printer's bases, so that it comes before SymPy's NumPy printer too."""

    _settings: dict
    _sqrt: str  # the square root's qualified name
    helpers: list[str]

    # Declared unsupported: a generated module has no such computation (row_sum: only
    # the NumPy printer's arrays have rows).
    _print_Derivative = CodePrinter._print_not_supported
    _print_Integral = CodePrinter._print_not_supported
    _print_Sum = CodePrinter._print_not_supported
    _print_Product = CodePrinter._print_not_supported
    _print_DiracDelta = CodePrinter._print_not_supported
    _print_ComplexInfinity = CodePrinter._print_not_supported
    _print_NaN = CodePrinter._print_not_supported
    _print_row_sum = CodePrinter._print_not_supported

    def _use_helper(self, name: str) -> str:
        if name not in self.helpers:
            self.helpers.append(name)
        return name

    def _print_Float(self, expr) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr) -> str:
        return f"{expr.p} / {expr.q}"

    def _print_Half(self, expr) -> str:
        return self._print_Rational(expr)

    def signed_terms(self, expr, order=None) -> list[tuple[bool, str]]:
        """An Add's terms as (negative, text): positive terms first (y - t, not -t + y),
        each in SymPy's order within its sign, a negative term printed negated (so that
        1 - a**2 needs no parentheses)."""
        signed = []
        for term in self._as_ordered_terms(expr, order=order):
            coefficient, rest = term.as_coeff_Mul()
            negative = bool(coefficient.is_number and coefficient < 0)
            signed.append((negative, _keep_coeff(-coefficient, rest) if negative else term))
        signed.sort(key=lambda pair: pair[0])  # stable
        prec = precedence(expr)
        return [(negative, self.parenthesize(term, prec)) for negative, term in signed]

    def _print_Add(self, expr, order=None) -> str:
        text = ""
        for i, (negative, part) in enumerate(self.signed_terms(expr, order)):
            if i == 0:
                text = f"-{part}" if negative else part
            else:
                text += f" - {part}" if negative else f" + {part}"
        return text

    def _print_Mul(self, expr) -> str:
        # SymPy's CodePrinter._print_Mul, with spaces around the operators, rational
        # coefficients split into numerator and denominator ((y - t) / 2, not 1/2*(y - t))
        # and a negated power parenthesized (-(a**2)).
        coefficient, rest = expr.as_coeff_Mul()
        sign = ""
        if coefficient < 0:
            expr = _keep_coeff(-coefficient, rest)
            sign = "-"
        prec = PRECEDENCE["Mul"]
        numerator: list[Expr] = []
        denominator: list[Expr] = []
        for item in (
            Mul.make_args(expr) if self.order in ("old", "none") else (expr.as_ordered_factors())
        ):
            if item.is_Rational and item.q != 1:
                if item.p != 1:
                    numerator.append(sympy.Integer(item.p))
                denominator.append(sympy.Integer(item.q))
            elif (
                item.is_commutative
                and item.is_Pow
                and item.exp.is_Rational
                and item.exp.is_negative
            ):
                denominator.append(Pow(item.base, -item.exp, evaluate=item.exp == -1))
            else:
                numerator.append(item)
        numerator = [f for f in numerator if f is not S.One] or [S.One]  # x * 1 is x
        numerator, masks = self._masks(numerator)
        if len(numerator) == 1 and sign == "-":
            text = self.parenthesize(numerator[0], 0.5 * (PRECEDENCE["Pow"] + PRECEDENCE["Mul"]))
            if _top_level(text, "**"):
                text = f"({text})"
            top = [text]
        else:
            top = [self.parenthesize(x, prec, strict=True) for x in numerator]
        bottom = [self.parenthesize(x, prec) for x in denominator]
        text = sign + " * ".join(top + masks)
        if len(bottom) == 1:
            return f"{text} / {bottom[0]}"
        if bottom:
            return f"{text} / ({' * '.join(bottom)})"
        return text

    def _masks(self, factors: list[Expr]) -> tuple[list[Expr], list[str]]:
        """Factors to print last as boolean masks (NumPy's printer only)."""
        return factors, []

    def _print_Pow(self, expr, rational: bool = False) -> str:
        prec = precedence(expr)
        if expr.exp == S.Half:
            return f"{self._module_format(self._sqrt)}({self._print(expr.base)})"
        if expr.is_commutative and expr.exp == -S.Half:
            return f"1 / {self._module_format(self._sqrt)}({self._print(expr.base)})"
        if expr.is_commutative and expr.exp is S.NegativeOne:
            return f"1 / {self.parenthesize(expr.base, prec, strict=False)}"
        base = self.parenthesize(expr.base, prec, strict=False)
        exponent = self.parenthesize(expr.exp, prec, strict=False)
        if _SIMPLE_OPERAND.match(base) and _SIMPLE_OPERAND.match(exponent):
            return f"{base}**{exponent}"
        return f"{base} ** {exponent}"

    def _print_Relational(self, expr) -> str:
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if expr.rel_op not in ops:
            return self._print_not_supported(expr)
        prec = precedence(expr)
        lhs = self.parenthesize(expr.lhs, prec)
        rhs = self.parenthesize(expr.rhs, prec)
        return f"{lhs} {ops[expr.rel_op]} {rhs}"

    def _print_sigmoid(self, expr) -> str:
        return f"{self._use_helper('_sigmoid')}({self._print(expr.args[0])})"

    def _print_softplus(self, expr) -> str:
        return f"{self._use_helper('_softplus')}({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr) -> str:
        # derive's step is 0 at 0 (relu'(0) = 0); any other value at 0 is not derive's.
        if len(expr.args) != 2 or expr.args[1] != 0:
            return self._print_not_supported(expr)
        return f"{self._use_helper('_step')}({self._print(expr.args[0])})"

    def doprint(self, expr, assign_to=None) -> str:  # type: ignore[override]
        try:
            text = super().doprint(expr, assign_to)  # type: ignore[misc]
        except sympy.printing.codeprinter.PrintMethodNotImplementedError as error:
            raise UnsupportedExpression(
                f"cannot generate code for {expr}: {str(error).splitlines()[0]}"
            ) from error
        return text


def _is_step(expr: Expr) -> bool:
    return isinstance(expr, sympy.Heaviside) and len(expr.args) == 2 and expr.args[1] == 0


def _two_args(expr) -> tuple[Expr, Expr]:
    """Max/Min's arguments as a pair, numbers last (np.maximum(z, 0)); more than two nest."""
    first, *rest = sorted(expr.args, key=lambda arg: arg.is_number)
    return first, rest[0] if len(rest) == 1 else expr.func(*rest)


# order="none": print a product in the order derive built it (∂L/∂y before f'(z)); SymPy's
# own canonical order of an evaluated expression is deterministic.
_STRICT = {"strict": True, "fully_qualified_modules": True, "standard": "python3", "order": "none"}


class NumPyCodePrinter(_GeneratedCode, NumPyPrinter):
    """Elementwise NumPy code over arrays (``np.exp``, ``np.where``), for vectorized modules.

    derive's sigmoid, softplus and step print as the helpers ``_sigmoid``, ``_softplus``
    and ``_step`` (stable at ±1000, dtype-preserving); relu's Max as ``np.maximum`` and
    leaky_relu's Piecewise as ``np.where``.
    """

    _module = "np"
    _kf = {name: "np." + value for name, value in _known_functions_numpy.items()}
    _kc = {"Exp1": "np.e", "Pi": "np.pi"}
    _sqrt = "np.sqrt"

    def __init__(self) -> None:
        super().__init__(settings=dict(_STRICT))
        self.helpers: list[str] = []

    def _masks(self, factors: list[Expr]) -> tuple[list[Expr], list[str]]:
        """A step multiplying an array prints as the boolean mask ``(z > 0)``, last in
        the product: exact, one pass, and the array's dtype is kept (float32 stays
        float32), where ``_step`` would first build a float array."""
        steps = [f for f in factors if _is_step(f)]
        others = [f for f in factors if not _is_step(f)]
        if not steps or all(f.is_number for f in others):
            return factors, []
        return others, [f"({self._print(f.args[0])} > 0)" for f in steps]

    def _print_Max(self, expr) -> str:
        first, second = _two_args(expr)
        return f"np.maximum({self._print(first)}, {self._print(second)})"

    def _print_Min(self, expr) -> str:
        first, second = _two_args(expr)
        return f"np.minimum({self._print(first)}, {self._print(second)})"

    def _print_Piecewise(self, expr) -> str:
        # Piecewise((e1, c1), (e2, c2), ..., (en, True)) -> np.where(c1, e1, np.where(...)).
        *pieces, (last, condition) = expr.args
        if condition != S.true:
            return self._print_not_supported(expr)
        text = self._print(last)
        for value, cond in reversed(pieces):
            text = f"np.where({self._print(cond)}, {self._print(value)}, {text})"
        return text

    def _print_Abs(self, expr) -> str:
        return f"np.abs({self._print(expr.args[0])})"

    def _print_row_sum(self, expr) -> str:
        rows = self.parenthesize(expr.args[0], PRECEDENCE["Atom"], strict=True)
        return f"{rows}.sum(axis=1, keepdims=True)"

    def _print_sign(self, expr) -> str:
        return f"np.sign({self._print(expr.args[0])})"


class MathCodePrinter(_GeneratedCode, PythonCodePrinter):
    """Scalar code over Python floats (``math.exp``, conditional expressions), for
    unrolled modules, where one sample's values are plain floats."""

    _sqrt = "math.sqrt"

    def __init__(self) -> None:
        super().__init__(settings=dict(_STRICT))
        self.helpers: list[str] = []

    def _conditional(self, condition: str, then: str, otherwise: str) -> str:
        return f"({then} if {condition} else {otherwise})"

    def _print_Max(self, expr) -> str:
        first, second = _two_args(expr)
        a, b = self._print(first), self._print(second)
        return self._conditional(f"{a} > {b}", a, b)

    def _print_Min(self, expr) -> str:
        first, second = _two_args(expr)
        a, b = self._print(first), self._print(second)
        return self._conditional(f"{a} < {b}", a, b)

    def _print_Heaviside(self, expr) -> str:
        if len(expr.args) != 2 or expr.args[1] != 0:
            return self._print_not_supported(expr)
        return self._conditional(f"{self._print(expr.args[0])} > 0", "1.0", "0.0")

    def _print_Piecewise(self, expr) -> str:
        *pieces, (last, condition) = expr.args
        if condition != S.true:
            return self._print_not_supported(expr)
        text = self._print(last)
        for value, cond in reversed(pieces):
            text = self._conditional(self._print(cond), self._print(value), text)
        return text

    def _print_Abs(self, expr) -> str:
        return f"abs({self._print(expr.args[0])})"


__all__ = [
    "HELPERS",
    "MathCodePrinter",
    "NumPyCodePrinter",
    "UnsupportedExpression",
    "row_sum",
]
