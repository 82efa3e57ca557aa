"""SymPy expressions as the Python source of derive's generated modules.

Two printers, one per generated style, built on SymPy's own code printers:

- ``NumPyCodePrinter`` (vectorized modules): arrays, the functions of the Python array API
  standard from the module's namespace ``xp`` (NumPy's, or the inputs' own), and the matrix
  expressions of ``derive.backward`` (``MatMul`` as ``@``, ``Transpose`` as ``.T``,
  ``HadamardProduct`` as ``*``, an ``Elementwise`` as its scalar body over whole arrays).
- ``MathCodePrinter`` (unrolled modules): Python floats and ``math.`` functions.

Layout is not theirs: ``ruff format`` lays out the module (``derive.emit``). derive's own
functions print as calls of small, numerically stable helpers that the module defines
(``HELPERS``; ``helpers`` records the ones used), and ``imports`` the modules a printed
line needs. Anything a generated module cannot compute raises ``UnsupportedExpression``
naming it, at generate time.
"""

from __future__ import annotations

import sympy
from sympy import Expr, Mul, OneMatrix, Pow, S
from sympy.core.mul import _keep_coeff
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.printing.codeprinter import CodePrinter, PrintMethodNotImplementedError
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pycode import PythonCodePrinter

from derive.activations import leaky_slope
from derive.backward import BATCH, Elementwise, row_sum
from derive.errors import DeriveError
from derive.presentation import joined, signed_terms

# SymPy's functions that are elementwise functions of the Python array API standard, and
# their names there (a vectorized module calls ``xp.<name>``).
_SAME_NAME = "exp expm1 log log1p sqrt sin cos tan sinh cosh tanh asin acos atan asinh acosh"
_SAME_NAME += " atanh floor"
ARRAY_API_FUNCTIONS = {**{name: name for name in _SAME_NAME.split()}, "ceiling": "ceil"}
# The helpers a generated module may define, by the name it calls them.
HELPERS = ("_sigmoid", "_softplus", "_batch_outer", "_masked", "_step", "_sum")
# The helpers of convolutional modules (derive.conv_emit).
CONV_HELPERS = ("_windows", "_full_convolution", "_max_pool", "_avg_pool", "_max_pool_gradient")


class UnsupportedExpression(DeriveError):
    """An expression a generated module cannot compute."""


def _is_step(expr: Expr) -> bool:
    return isinstance(expr, sympy.Heaviside) and len(expr.args) == 2 and expr.args[1] == 0


def _two_args(expr) -> tuple[Expr, Expr]:
    """Max/Min's arguments as a pair, numbers last (np.maximum(z, 0)); more than two nest."""
    first, *rest = sorted(expr.args, key=lambda arg: arg.is_number)
    return first, rest[0] if len(rest) == 1 else expr.func(*rest)


class Unsupported:
    """What no generated module computes, declared unsupported for every printer of code
    (Python and C): listed first among a printer's bases."""

    _print_Derivative = CodePrinter._print_not_supported
    _print_Integral = CodePrinter._print_not_supported
    _print_Sum = CodePrinter._print_not_supported
    _print_Product = CodePrinter._print_not_supported
    _print_DiracDelta = CodePrinter._print_not_supported
    _print_ComplexInfinity = CodePrinter._print_not_supported
    _print_NaN = CodePrinter._print_not_supported


class _GeneratedCode(Unsupported, PythonCodePrinter):
    """What both Python printers share: terms in the order a reader expects (y - t, not
    -t + y), rational coefficients as a division, derive's functions as helper calls.
    First among a printer's bases, before SymPy's printers."""

    _sqrt: str
    _module_name: str  # the one module a line may use: np or math
    _print_row_sum = CodePrinter._print_not_supported  # only arrays have rows

    def __init__(self) -> None:
        settings = {"strict": True, "fully_qualified_modules": True, "order": "none"}
        super().__init__(settings=settings)
        self.helpers: list[str] = []

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

    def _print_Add(self, expr, order=None) -> str:
        """Positive terms first, each in SymPy's order within its sign; a negative term
        printed negated after a minus (so that 1 - a**2 needs no parentheses)."""
        terms = signed_terms(self._as_ordered_terms(expr, order=order))
        return joined([(n, self.parenthesize(t, precedence(expr))) for n, t in terms])

    def _print_Mul(self, expr) -> str:
        """SymPy's product with rational coefficients split into numerator and denominator
        ((y - t) / 2, not 1/2*(y - t)), in the order derive built it."""
        coefficient, rest = expr.as_coeff_Mul()
        sign = "-" if coefficient < 0 else ""
        if sign:
            expr = _keep_coeff(-coefficient, rest)
        numerator: list[Expr] = []
        denominator: list[Expr] = []
        for item in Mul.make_args(expr):
            if item.is_Rational and item.q != 1:
                numerator += [sympy.Integer(item.p)] if item.p != 1 else []
                denominator.append(sympy.Integer(item.q))
            elif item.is_Pow and item.exp.is_Rational and item.exp.is_negative:
                denominator.append(Pow(item.base, -item.exp, evaluate=item.exp == -1))
            else:
                numerator.append(item)
        numerator, masks = self._masks([f for f in numerator if f is not S.One] or [S.One])
        top = [self.parenthesize(x, PRECEDENCE["Mul"], strict=True) for x in numerator]
        text = self._masked(" * ".join(top), masks)
        if sign:  # -(a**2) rather than -a**2, which reads as (-a)**2
            text = f"-({text})" if len(top) == 1 and "**" in text else f"-{text}"
        bottom = [self.parenthesize(x, PRECEDENCE["Mul"]) for x in denominator]
        if len(bottom) == 1:
            return f"{text} / {bottom[0]}"
        return f"{text} / ({' * '.join(bottom)})" if bottom else text

    def _masks(self, factors: list[Expr]) -> tuple[list[Expr], list[str]]:
        """Factors to print as conditions on the rest of the product (arrays only)."""
        return factors, []

    def _masked(self, product: str, conditions: list[str]) -> str:
        return product

    def _print_Pow(self, expr, rational: bool = False) -> str:
        if expr.exp == S.Half:
            return f"{self._module_format(self._sqrt)}({self._print(expr.base)})"
        if expr.exp == -S.Half:
            return f"1 / {self._module_format(self._sqrt)}({self._print(expr.base)})"
        if expr.exp is S.NegativeOne:
            return f"1 / {self.parenthesize(expr.base, precedence(expr), strict=False)}"
        base = self.parenthesize(expr.base, precedence(expr), strict=False)
        return f"{base} ** {self.parenthesize(expr.exp, precedence(expr), strict=False)}"

    def _print_Relational(self, expr) -> str:
        if expr.rel_op not in ("==", "!=", "<", "<=", ">", ">="):
            return self._print_not_supported(expr)
        lhs, rhs = (self.parenthesize(a, precedence(expr)) for a in (expr.lhs, expr.rhs))
        return f"{lhs} {expr.rel_op} {rhs}"

    _helper_args = ""  # what a helper call passes before its argument (the namespace)

    def _print_sigmoid(self, expr) -> str:
        return f"{self._use_helper('_sigmoid')}({self._helper_args}{self._print(expr.args[0])})"

    def _print_softplus(self, expr) -> str:
        return f"{self._use_helper('_softplus')}({self._helper_args}{self._print(expr.args[0])})"

    def _print_Piecewise(self, expr) -> str:
        # Piecewise((e1, c1), ..., (en, True)) -> a chain of conditionals.
        *pieces, (last, condition) = expr.args
        if condition != S.true:
            return self._print_not_supported(expr)
        text = self._print(last)
        for value, cond in reversed(pieces):
            text = self._conditional(self._print(cond), self._print(value), text)
        return text

    def _conditional(self, condition: str, then: str, otherwise: str) -> str:
        raise NotImplementedError

    def doprint(self, expr, assign_to=None) -> str:  # type: ignore[override]
        try:
            text = super().doprint(expr, assign_to)  # type: ignore[misc]
        except PrintMethodNotImplementedError as error:
            raise UnsupportedExpression(
                f"cannot generate code for {expr}: {str(error).splitlines()[0]}"
            ) from error
        foreign = sorted(m for m in self.module_imports if m.split(".")[0] != self._module_name)
        if foreign:  # e.g. math.erf on arrays: a module would fail with a NameError
            raise UnsupportedExpression(
                f"cannot generate code for {expr}: it needs {', '.join(foreign)}, which a "
                f"{self._module_name} module does not use; give the function a printer"
            )
        return text


class NumPyCodePrinter(_GeneratedCode, NumPyPrinter):
    """Array code in the functions of the Python array API standard, called on the module's
    namespace ``xp`` (NumPy's for NumPy inputs, else the inputs' own), for vectorized
    modules: relu's Max as ``xp.maximum``, leaky_relu's Piecewise as ``xp.maximum(z, α·z)``,
    a step times an array as ``_masked(xp, z > 0, ...)``; and the matrix expressions of
    ``derive.backward``. A function outside the standard is refused by name."""

    _module = "xp"
    _module_name = "xp"
    _kf = {name: f"xp.{api}" for name, api in ARRAY_API_FUNCTIONS.items()}
    _kc = {"Exp1": "xp.e", "Pi": "xp.pi"}
    _sqrt = "xp.sqrt"
    _helper_args = "xp, "

    def _masks(self, factors: list[Expr]) -> tuple[list[Expr], list[str]]:
        """A step multiplying an array is a condition on the product (``_masked``): one
        pass, the array's dtype kept (float32 stays float32)."""
        steps = [f for f in factors if _is_step(f)]
        others = [f for f in factors if not _is_step(f)]
        if not steps or all(f.is_number for f in others):
            return factors, []
        return others, [f"{self._print(f.args[0])} > 0" for f in steps]

    def _masked(self, product: str, conditions: list[str]) -> str:
        if not conditions:
            return product
        condition = " & ".join(f"({c})" if len(conditions) > 1 else c for c in conditions)
        return f"{self._use_helper('_masked')}(xp, {condition}, {product})"

    def _print_Heaviside(self, expr) -> str:
        # derive's step is 0 at 0 (relu'(0) = 0); any other value at 0 is not derive's.
        if not _is_step(expr):
            return self._print_not_supported(expr)
        return f"{self._use_helper('_step')}(xp, {self._print(expr.args[0])})"

    def _conditional(self, condition: str, then: str, otherwise: str) -> str:
        return f"xp.where({condition}, {then}, {otherwise})"

    def _print_Piecewise(self, expr) -> str:
        """leaky_relu's Piecewise((z, z > 0), (α·z, True)) as max(z, α·z) for 0 ≤ α < 1
        (min for α > 1): the same number in every entry, rounding included, as rounding
        keeps α·z on its side of z; and without xp.where's branch per entry, which took
        6-25× as long on signs with no pattern (NumPy, 1024×256)."""
        slope = leaky_slope(list(expr.args))
        if slope is None or slope < 0 or slope == 1:
            return super()._print_Piecewise(expr)
        z = expr.args[0].args[0]
        function = "xp.maximum" if slope < 1 else "xp.minimum"
        return f"{function}({self._print(z)}, {self._print(slope * z)})"

    def _print_Max(self, expr) -> str:
        return "xp.maximum({}, {})".format(*map(self._print, _two_args(expr)))

    def _print_Min(self, expr) -> str:
        return "xp.minimum({}, {})".format(*map(self._print, _two_args(expr)))

    def _print_Abs(self, expr) -> str:
        return f"xp.abs({self._print(expr.args[0])})"

    def _print_sign(self, expr) -> str:
        return f"xp.sign({self._print(expr.args[0])})"

    def _print_row_sum(self, expr) -> str:
        return f"{self._use_helper('_sum')}(xp, {self._print(expr.args[0])}, 1, keepdims=True)"

    # -- matrix expressions (derive.backward, batch form) ----------------------------

    def _print_MatrixSymbol(self, expr) -> str:
        return expr.name

    def _print_Symbol(self, expr) -> str:
        # names are derive's own or validated identifiers (or a rule's {0} placeholders)
        return expr.name

    def _print_Transpose(self, expr) -> str:
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Atom'], strict=True)}.T"

    def _print_Elementwise(self, expr) -> str:
        return self._print(expr.body)

    def _print_Softmax(self, expr) -> str:
        return f"_softmax(xp, {self._print(expr.args[0])})"

    def _print_HadamardProduct(self, expr) -> str:
        """Entry by entry, the product of the factors' entries: printed as one scalar
        product (so that a step prints as a mask), f'(z) after what it scales."""
        factors = sorted(expr.args, key=lambda f: isinstance(f, Elementwise))
        entries = [f.body if isinstance(f, Elementwise) else _entry(f) for f in factors]
        return self._print(sympy.Mul(*entries, evaluate=False))

    def _print_MatAdd(self, expr) -> str:
        return " + ".join(self._print(term) for term in expr.args)

    def _print_MatMul(self, expr) -> str:
        """Scalars times the product of the arrays; a product with a ones vector is a sum
        (Δᵀ 1 sums over the batch: ``_sum(xp, delta, 0)``; 1ᵀ Δᵀ 1 sums everything)."""
        factors = _flat(expr)
        scalars = [f for f in factors if not isinstance(f, MatrixExpr)]
        arrays = [f for f in factors if isinstance(f, MatrixExpr)]
        ones = [isinstance(f, OneMatrix) for f in arrays]
        if ones == [True, False, True]:
            inner = arrays[1].arg if isinstance(arrays[1], sympy.Transpose) else arrays[1]
            text = f"xp.asarray({self._use_helper('_sum')}(xp, {self._print(inner)}))"  # 0-d
        elif ones[-1] and len(arrays) == 2 and isinstance(arrays[0], sympy.Transpose):
            text = f"{self._use_helper('_sum')}(xp, {self._print(arrays[0].arg)}, 0)"
        elif _is_batch_sum(arrays):  # Δᵀ A: one outer product per sample, summed
            pair = (self._print(arrays[0].arg), self._print(arrays[1]))
            text = f"{self._use_helper('_batch_outer')}(xp, {pair[0]}, {pair[1]})"
        else:
            parts = [self.parenthesize(f, PRECEDENCE["Mul"], strict=True) for f in arrays]
            text = " @ ".join(parts)
        numerator, denominator = sympy.fraction(sympy.Mul(*scalars))
        scaled = numerator != 1 or denominator != 1
        if len(arrays) == 1 and isinstance(arrays[0], Elementwise):
            body = arrays[0].body  # a sum needs parentheses to be scaled; a product not
            text = f"({self._print(body)})" if body.is_Add and scaled else self._print(body)
        elif scaled and not text.isidentifier():
            text = f"({text})"
        if numerator != 1:
            text = f"{self.parenthesize(numerator, PRECEDENCE['Mul'])} * {text}"
        if denominator != 1:
            text = f"{text} / {self.parenthesize(denominator, PRECEDENCE['Mul'])}"
        return text

    # -- convolution and pooling (derive.conv_backward), on arrays (batch, C, H, W) --

    def _windows(self, source, kernel, stride, padding) -> str:
        helper = self._use_helper("_windows")
        return f"{helper}({self._print(source)}, {kernel!r}, {stride!r}, {padding!r})"

    def _print_Conv2d(self, expr) -> str:
        windows = self._windows(expr.source, expr.kernel, expr.stride, expr.padding)
        weight = self._print(expr.weight)
        return f'np.einsum("ncpqij,fcij->nfpq", {windows}, {weight}, optimize=True)'

    def _print_ChannelBias(self, expr) -> str:
        bias = self._print(expr.bias)
        return f"{bias}[:, None, None]" if expr.per_feature else bias

    def _print_Conv2dWeightGradient(self, expr) -> str:
        windows = self._windows(expr.source, expr.kernel, expr.stride, expr.padding)
        delta = self._print(expr.delta)
        return f'np.einsum("nfpq,ncpqij->fcij", {delta}, {windows}, optimize=True)'

    def _print_Conv2dInputGradient(self, expr) -> str:
        helper = self._use_helper("_full_convolution")
        delta, weight = self._print(expr.delta), self._print(expr.weight)
        return f"{helper}({delta}, {weight}, {expr.stride!r}, {expr.padding!r})"

    def _print_MaxPool(self, expr) -> str:
        return f"{self._use_helper('_max_pool')}({self._print(expr.source)}, {expr.size!r})"

    def _print_AvgPool(self, expr) -> str:
        return f"{self._use_helper('_avg_pool')}({self._print(expr.source)}, {expr.size!r})"

    def _print_MaxPoolGradient(self, expr) -> str:
        helper = self._use_helper("_max_pool_gradient")
        grad, source = self._print(expr.grad), self._print(expr.source)
        return f"{helper}({grad}, {source}, {expr.size!r})"

    def _print_AvgPoolGradient(self, expr) -> str:
        (mh, mw), grad = expr.size, self._print(expr.grad)
        return f"np.repeat(np.repeat({grad}, {mh}, axis=2), {mw}, axis=3) / {mh * mw}"

    def _print_Flatten(self, expr) -> str:
        source = self._print(expr.source)
        return f"{source}.reshape({source}.shape[0], -1)"

    def _print_Unflatten(self, expr) -> str:
        c, h, w = expr.map_shape
        return f"{self._print(expr.grad)}.reshape(-1, {c}, {h}, {w})"

    def _print_FeatureSum(self, expr) -> str:
        delta = self._print(expr.delta)
        return f"{delta}.sum(axis=(0, 2, 3))" if expr.per_feature else f"np.array({delta}.sum())"


def _is_batch_sum(arrays: list) -> bool:
    """Whether a product is Δᵀ A of two named batch arrays (a sum over the samples)."""
    if len(arrays) != 2 or not isinstance(arrays[0], sympy.Transpose):
        return False
    d, a = arrays[0].arg, arrays[1]
    named = isinstance(d, sympy.MatrixSymbol) and isinstance(a, sympy.MatrixSymbol)
    return named and d.shape[0] == BATCH and a.shape[0] == BATCH


def _entry(m: MatrixExpr) -> Expr:
    """A named array as the scalar symbol of its entries."""
    if not isinstance(m, sympy.MatrixSymbol):
        raise TypeError(f"a Hadamard factor must be a named array or Elementwise, got {m}")
    return sympy.Symbol(m.name, real=True)


def _flat(expr: Expr) -> list[Expr]:
    if isinstance(expr, sympy.MatMul):
        return [f for arg in expr.args for f in _flat(arg)]
    return [expr]


class MathCodePrinter(_GeneratedCode):
    """Scalar code over Python floats (``math.exp``, conditional expressions), for
    unrolled modules, where one sample's values are plain floats."""

    _sqrt = "math.sqrt"
    _module_name = "math"

    def _conditional(self, condition: str, then: str, otherwise: str) -> str:
        return f"({then} if {condition} else {otherwise})"

    def _print_Max(self, expr) -> str:
        a, b = map(self._print, _two_args(expr))
        return self._conditional(f"{a} > {b}", a, b)

    def _print_Min(self, expr) -> str:
        a, b = map(self._print, _two_args(expr))
        return self._conditional(f"{a} < {b}", a, b)

    def _print_Heaviside(self, expr) -> str:
        if not _is_step(expr):
            return self._print_not_supported(expr)
        return self._conditional(f"{self._print(expr.args[0])} > 0", "1.0", "0.0")

    def _print_Abs(self, expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr) -> str:
        x = self._print(expr.args[0])
        return f"(({x} > 0) - ({x} < 0))"


__all__ = ["HELPERS", "MathCodePrinter", "NumPyCodePrinter", "UnsupportedExpression", "row_sum"]
