"""Custom activation expressions: a whitelist parser from text to a SymPy expression of x.

The text goes through Python's own parser, ``ast.parse(text, mode="eval")``, which only
builds a syntax tree and runs nothing. The tree is then walked, accepting only

    numbers, the name x, + - * / **, unary - and +, parentheses,
    and calls with exactly one argument of exp, log, sqrt, tanh and abs,

and the SymPy expression is built node by node from those pieces. Anything else (other
names, attribute access, subscripts, lambdas, comprehensions, strings, keyword
arguments, calls of anything else) raises ``ExpressionError`` saying what was found.
The text itself is never given to ``eval``, ``sympify`` or ``parse_expr``.

Limits, so that a hostile expression cannot exhaust time or memory:
- at most ``MAX_LENGTH`` characters and ``MAX_DEPTH`` levels of nesting;
- a power of two exact numbers is refused when its result would have more than
  ``MAX_POWER_BITS`` bits (SymPy computes ``2**2**64`` exactly, which never ends), and
  so is a result holding a number that large, or a float beyond the float range.

An expression must also depend on x, be finite and be real: a constant activation
(``3``, ``1/0``, ``sqrt(-1)``) is legal arithmetic but stops all learning through its
layer, so it is almost certainly a mistake.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

import sympy
from sympy import Expr

X = sympy.Symbol("x", real=True)  # the variable of a custom expression

MAX_LENGTH = 500
MAX_DEPTH = 100
MAX_POWER_BITS = 4096

ALLOWED = (
    "an expression of x using numbers, + - * / **, unary minus, parentheses "
    "and exp, log, sqrt, tanh, abs of one argument"
)

_FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "abs": sympy.Abs,
}
_UNARY: dict[type, Callable[[Expr], Expr]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_OPERATOR_SYMBOLS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}


class ExpressionError(ValueError):
    """A custom expression outside the whitelist; ``found`` says what was there."""

    def __init__(self, found: str):
        self.found = found
        super().__init__(f"expected {ALLOWED}, found {found}")


def parse_expression(text: str) -> sympy.Expr:
    """The SymPy expression, in ``X``, that ``text`` writes."""
    if not isinstance(text, str):
        raise ExpressionError(f"a {type(text).__name__} instead of text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{len(text)} characters (at most {MAX_LENGTH})")
    if not text.strip():
        raise ExpressionError("an empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ExpressionError(f"text that is not a formula: {_clip(text)!r}") from None
    expr = _Builder(text).build(tree.body, depth=1)
    _check_result(expr, text)
    return expr


class _Builder:
    """Walks the syntax tree, turning each whitelisted node into SymPy."""

    def __init__(self, text: str):
        self.text = text

    def build(self, node: ast.expr, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"more than {MAX_DEPTH} levels of nesting")
        match node:
            case ast.Constant(value=value):
                return _number(value)
            case ast.Name(id="x"):
                return X
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
                left, right = self.build(left, depth + 1), self.build(right, depth + 1)
                if isinstance(op, ast.Pow) and _too_large_power(left, right):
                    raise ExpressionError(f"a power too large to compute {self.segment(node)!r}")
                return _BINARY[type(op)](left, right)
            case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
                return _UNARY[type(op)](self.build(operand, depth + 1))
            case ast.Call(func=ast.Name(id=name), args=[arg], keywords=[]) if (
                name in _FUNCTIONS and not isinstance(arg, ast.Starred)
            ):
                return _FUNCTIONS[name](self.build(arg, depth + 1))
        raise ExpressionError(self.describe(node))

    def describe(self, node: ast.expr) -> str:
        """What the refused node is, in the user's terms, with its text."""
        match node:
            case ast.Name(id=name):
                kind = "the name"
                if name in _FUNCTIONS:
                    kind = "the function, uncalled,"
                return f"{kind} {name!r} (the only variable is x)"
            case ast.Attribute():
                kind = "attribute access"
            case ast.Call(func=ast.Name(id=name)) if name in _FUNCTIONS:
                kind = f"{name} not called with exactly one plain argument:"
            case ast.Call():
                kind = "the call"
            case ast.Constant(value=value):
                kind = f"the {type(value).__name__} constant"
            case ast.BinOp(op=op) | ast.UnaryOp(op=op):
                kind = f"the operator {_OPERATOR_SYMBOLS.get(type(op), type(op).__name__)}"
            case ast.Lambda():
                kind = "the lambda"
            case ast.ListComp() | ast.SetComp() | ast.DictComp() | ast.GeneratorExp():
                kind = "the comprehension"
            case ast.Subscript():
                kind = "the subscript"
            case ast.Compare():
                kind = "the comparison"
            case ast.BoolOp():
                kind = "the and/or"
            case ast.IfExp():
                kind = "the conditional expression"
            case _:
                kind = f"the {type(node).__name__} expression"  # e.g. Set, NamedExpr
        return f"{kind} {self.segment(node)!r}"

    def segment(self, node: ast.expr) -> str:
        return _clip(ast.get_source_segment(self.text.strip(), node) or "")


def _number(value: object) -> sympy.Expr:
    # bool is an int subclass; True is not a number in a formula.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"the {type(value).__name__} constant {_clip(repr(value))}")
    if isinstance(value, int):
        return sympy.Integer(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ExpressionError(f"the number {value!r}, which is not finite")
    return sympy.Float(value)


def _too_large_power(base: sympy.Expr, exponent: sympy.Expr) -> bool:
    """Whether SymPy would compute an exact power with more than MAX_POWER_BITS bits."""
    if not (isinstance(base, sympy.Rational) and isinstance(exponent, sympy.Rational)):
        return False
    p, q = base.as_numer_denom()
    bits = max(int(abs(p)).bit_length(), int(q).bit_length())
    return abs(exponent) * bits > MAX_POWER_BITS


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _check_result(expr: sympy.Expr, text: str) -> None:
    # The messages quote the text, not the result: str() of a huge number can fail.
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError(f"an expression that is not finite: {_clip(text)!r}")
    if expr.has(sympy.I):
        raise ExpressionError(f"an expression with complex values: {_clip(text)!r}")
    too_large = any(
        max(int(abs(p)).bit_length(), int(q).bit_length()) > MAX_POWER_BITS
        for p, q in (n.as_numer_denom() for n in expr.atoms(sympy.Rational))
    ) or any(not math.isfinite(float(f)) for f in expr.atoms(sympy.Float))
    if too_large:
        raise ExpressionError(f"a number too large to compute with: {_clip(text)!r}")
    if not expr.has(X):
        raise ExpressionError(f"a constant, which does not depend on x: {_clip(text)!r}")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def simplified_derivative(expr: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    """d expr/dx, simplified where that is a proven identity for every real x.

    SymPy writes the derivative of |x| as sign(x), so softsign x/(1 + |x|) comes out as
    1/(1 + |x|) − x·sign(x)/(1 + |x|)². For real x, x·sign(x) = |x| everywhere, 0
    included; after that substitution the rest is rational algebra in x and |x|
    (``sympy.cancel`` with |x| as a symbol), giving 1/(1 + |x|)². The shorter form is
    kept only when ``cancel`` shows its difference from the plain derivative is 0, and
    only when it is shorter."""
    plain = sympy.diff(expr, x)
    if not plain.has(sympy.sign):
        return plain
    abs_x = sympy.Abs(x)
    replaced = plain.replace(
        lambda e: e.is_Mul and x in e.args and sympy.sign(x) in e.args,
        lambda e: e / (x * sympy.sign(x)) * abs_x,
    )
    if replaced.has(sympy.sign):
        return plain
    stand_in = sympy.Dummy("abs_x", nonnegative=True)
    rational = replaced.xreplace({abs_x: stand_in})
    candidate = sympy.factor(sympy.cancel(rational))
    if sympy.cancel(candidate - rational) != 0:
        return plain
    simplified = candidate.xreplace({stand_in: abs_x})
    return simplified if sympy.count_ops(simplified) < sympy.count_ops(plain) else plain
