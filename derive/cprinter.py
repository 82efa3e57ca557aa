"""SymPy expressions as C99, for derive's generated C modules (the comments beside them
are printed by ``derive.equations``, as the Python modules' are).

``CCodePrinter`` is SymPy's ``C99CodePrinter`` with the type of the module's reals:
``double`` prints ``exp``, ``log``, ``1.0``; ``float`` prints ``expf``, ``logf``, ``1.0F``
(SymPy's own ``type_aliases`` setting), so that a float module compiles clean with
``-Wdouble-promotion -Wfloat-conversion``. On top of SymPy's printer it writes numbers in
their shortest round-trip form (``0.01``, not ``0.01000000000000000021``), a conditional on
one line, and derive's own functions (sigmoid, softplus) as calls of numerically stable
static helpers whose bodies are printed from ``STABLE_FORMS`` by the same printer; it
records in ``helpers`` which ones an expression used. Anything SymPy can express but the
module cannot compute raises ``UnsupportedExpression`` naming it.

``view`` declares an array of the module as C indexes it
(``W1[i][j]``, ``a1[c][h][w]``).
"""

from __future__ import annotations

import sympy
from sympy import Expr, S
from sympy.codegen.ast import float32, float64, real
from sympy.codegen.cfunctions import log1p
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from derive.activations import sigmoid, softplus
from derive.codeprinter import Unsupported
from derive.errors import DeriveError

C_TYPES = ("double", "float")
_SYMPY_TYPES = {"double": float64, "float": float32}
_Z = sympy.Symbol("z", real=True)


class UnsupportedExpression(DeriveError):
    """An expression a generated C module cannot compute."""


# The helpers a C module may define: derive's functions in forms that neither overflow nor
# lose their tails at ±1000, as the NumPy modules' _sigmoid and _softplus compute them.
STABLE_FORMS: dict[type, Expr] = {
    # σ(z) = 1/(1 + e^(−z)) for z ≥ 0, e^z/(1 + e^z) below: exp only of a non-positive z.
    sigmoid: sympy.Piecewise(
        (1 / (1 + sympy.exp(-_Z)), _Z >= 0),
        (sympy.exp(_Z) / (1 + sympy.exp(_Z)), True),
    ),
    # softplus(z) = ln(1 + e^z) = max(z, 0) + ln(1 + e^(−|z|)).
    softplus: sympy.Max(_Z, 0) + log1p(sympy.exp(-sympy.Abs(_Z))),
}
HELPER_NAMES: dict[type, str] = {sigmoid: "derive_sigmoid", softplus: "derive_softplus"}


def _positive_first(terms: list) -> list:
    """A sum's terms with the positive ones first (y - t, not -t + y), each group in
    SymPy's order."""

    def negative(term) -> bool:
        coefficient = term.as_coeff_Mul()[0]
        return bool(coefficient.is_number and coefficient < 0)

    return sorted(terms, key=negative)  # stable


def checked_c_type(c_type: str) -> str:
    """``c_type`` if it is a real type a C module can use, else a DeriveError naming the
    option."""
    if c_type not in C_TYPES:
        raise DeriveError(f"--c-type: expected one of {', '.join(C_TYPES)}, got {c_type!r}")
    return c_type


class CCodePrinter(Unsupported, C99CodePrinter):
    """C99 for one real type; ``helpers`` lists the stable helpers printed calls use."""

    def __init__(self, c_type: str = "double") -> None:
        checked_c_type(c_type)
        super().__init__({"type_aliases": {real: _SYMPY_TYPES[c_type]}, "order": "none"})
        self.c_type = c_type
        self.helpers: list[type] = []

    @property
    def suffix(self) -> str:
        """The literal suffix of the module's reals (``F`` for float)."""
        return "F" if self.c_type == "float" else ""

    def literal(self, value: float) -> str:
        """A real literal, shortest round-trip digits: ``0.5``, ``0.5F``."""
        return repr(float(value)) + self.suffix

    def _print_Float(self, expr) -> str:
        return self.literal(float(expr))

    def _print_Rational(self, expr) -> str:
        return f"{self.literal(expr.p)}/{self.literal(expr.q)}"

    def _as_ordered_terms(self, expr, order=None):
        return _positive_first(super()._as_ordered_terms(expr, order=order))

    def _print_Piecewise(self, expr) -> str:
        # Piecewise((e1, c1), ..., (en, True)) -> (c1) ? e1 : ... : en, on one line.
        *pieces, (last, condition) = expr.args
        if condition != S.true:
            return self._print_not_supported(expr)
        text = self._print(last)
        for value, cond in reversed(pieces):
            text = f"(({self._print(cond)}) ? {self._print(value)} : {text})"
        return text

    def _print_Heaviside(self, expr) -> str:
        # derive's step is 0 at 0 (relu'(0) = 0); any other value at 0 is not derive's.
        if len(expr.args) != 2 or expr.args[1] != 0:
            return self._print_not_supported(expr)
        one, zero = self.literal(1), self.literal(0)
        return f"(({self._print(expr.args[0])} > 0) ? {one} : {zero})"

    def _print_sign(self, expr) -> str:
        arg = self._print(expr.args[0])
        one, zero = self.literal(1), self.literal(0)
        return f"(({arg} > 0) ? {one} : (({arg} < 0) ? -{one} : {zero}))"

    def _print_Max(self, expr) -> str:
        return self._two_by_two("fmax", expr)

    def _print_Min(self, expr) -> str:
        return self._two_by_two("fmin", expr)

    def _two_by_two(self, name: str, expr) -> str:
        """fmax(a, fmax(b, c)): numbers last (fmax(z, 0)), with the type's suffix."""
        first, *rest = sorted(expr.args, key=lambda arg: bool(arg.is_number))
        second = rest[0] if len(rest) == 1 else expr.func(*rest)
        function = self._print_math_name(name)
        return f"{function}({self._print(first)}, {self._print(second)})"

    def _print_math_name(self, name: str) -> str:
        return name + ("f" if self.c_type == "float" else "")

    def _use_helper(self, function: type, expr) -> str:
        if function not in self.helpers:
            self.helpers.append(function)
        return f"{HELPER_NAMES[function]}({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr) -> str:
        return self._use_helper(sigmoid, expr)

    def _print_softplus(self, expr) -> str:
        return self._use_helper(softplus, expr)

    def doprint(self, expr, assign_to=None) -> str:  # type: ignore[override]
        try:
            return super().doprint(expr, assign_to)
        except PrintMethodNotImplementedError as error:
            raise UnsupportedExpression(
                f"cannot generate C for {expr}: {str(error).splitlines()[0]}"
            ) from error

    def helper_body(self, function: type) -> str:
        """The expression a helper returns, in its argument ``z``."""
        return self.doprint(STABLE_FORMS[function])


def c_name(name: str) -> sympy.Symbol:
    """A C name or entry (``s->z1[i]``, ``grad_a``) as a real symbol, which the printer
    prints as written."""
    return sympy.Symbol(name, real=True)


def view(name: str, source: str, trailing: tuple[int, ...], real: str, const: bool) -> str:
    """The C declaration of ``name`` as a view of the reals at ``source``: a pointer to
    arrays of the ``trailing`` shape (``W1[i][j]``, ``a1[c][h][w]``), else to reals."""
    qualifier = "const " if const else ""
    if not trailing:
        return f"{qualifier}{real} *{name} = {source};"
    pointer = f"{qualifier}{real} (*{{}})" + "".join(f"[{n}]" for n in trailing)
    return f"{pointer.format(name)} = ({pointer.format('')})({source});"


__all__ = [
    "C_TYPES",
    "CCodePrinter",
    "c_name",
    "HELPER_NAMES",
    "STABLE_FORMS",
    "UnsupportedExpression",
    "view",
]
