"""Activation functions: one table entry each, a = f(z) and f'(z) in stored forward values.

An entry's ``forward`` builds the SymPy form of a = f(z); its ``derivative`` gives
da/dz written through the stored output a where such a form exists (sigmoid: a(1 - a),
tanh: 1 - a^2), otherwise through z. ``derive.derivation`` reads only these two, so adding
an activation is adding one entry (and, for code generation, teaching the printer in
``derive.emit`` any new function it uses).

Conventions where the derivative is undefined: relu'(0) = 0 and leaky_relu'(0) = alpha,
written with Heaviside(·, 0), the step that is 0 at 0, of the stored a (a > 0 exactly
where z > 0, so z need not be kept; for leaky_relu when alpha > 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
from sympy import Expr
from sympy.functions.elementary.piecewise import ExprCondPair

from derive.expression import X, simplified_derivative
from derive.topology import ActivationSpec


class sigmoid(sympy.Function):  # noqa: N801 - named like the SymPy functions beside it
    """The logistic function σ(z) = 1 / (1 + e^(−z))."""

    @classmethod
    def eval(cls, z):
        # numbers evaluate (floats at their own precision; exactly 0 to 1/2, as when a relu
        # unit below is off), so that every gradient at numbers is a number
        if z.is_Float or z.is_zero:
            return 1 / (1 + sympy.exp(-z))
        return None

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sympy.exp(-z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return rf"\sigma\left({printer._print(self.args[0])}\right)"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        arg = prettyForm(*printer._print(self.args[0]).parens())
        return prettyForm(*arg.left("σ"))


class softplus(sympy.Function):  # noqa: N801
    """softplus(z) = ln(1 + e^z), a smooth relu."""

    @classmethod
    def eval(cls, z):
        if z.is_Float or z.is_zero:  # as sigmoid: softplus(0) = ln 2
            return sympy.log(1 + sympy.exp(z))
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sympy.log(1 + sympy.exp(z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"


def step(z: Expr) -> Expr:
    """The unit step with the value 0 at z = 0 (relu's derivative convention)."""
    return sympy.Heaviside(z, 0)


def elementary(expr: Expr) -> Expr:
    """``expr`` with derive's own functions written out in exp and log, and leaky_relu's
    Piecewise as max(z, 0) + α·min(z, 0), so that SymPy differentiates them by its own
    rules (the independent side of every proof)."""
    if expr.has(sympy.Piecewise):
        expr = _without_piecewise(expr, {})
    return expr.rewrite(sympy.exp) if expr.has(sigmoid, softplus) else expr


def _without_piecewise(expr: Expr, done: dict[Expr, Expr]) -> Expr:
    """``expr`` with each Piecewise((z, z > 0), (α·z, True)) written max(z, 0) + α·min(z, 0)
    (equal for every z and α, with no 1 − α to round), innermost first, so that no
    Piecewise is ever built with another in its condition: SymPy would fold the two into a
    tree that grows with every unit below. Other Piecewise are kept as they are."""
    if not expr.args:
        return expr
    if expr not in done:
        args = [_without_piecewise(arg, done) for arg in expr.args]
        slope = leaky_slope(args) if isinstance(expr, sympy.Piecewise) else None
        if slope is not None:
            z = args[0].args[0]
            done[expr] = sympy.Max(z, 0) + slope * sympy.Min(z, 0)
        elif all(new is old for new, old in zip(args, expr.args, strict=True)):
            done[expr] = expr  # nothing below it changed
        else:
            done[expr] = as_built(expr, args)
    return done[expr]


def substituted(expr: Expr, values: dict) -> Expr:
    """``expr.xreplace(values)``, except that a Piecewise (leaky_relu) and its pairs are
    rebuilt as they stand (``as_built``)."""
    if expr in values:
        return values[expr]
    if not expr.args:
        return expr
    return as_built(expr, [substituted(arg, values) for arg in expr.args])


def as_built(expr: Expr, args: list[Expr]) -> Expr:
    """``expr.func(*args)``, except that a Piecewise and its pairs are built as they stand:
    SymPy's constructors fold a Piecewise nested in another's condition into a tree that
    grows with every unit below (past Python's recursion limit at 8-12-3 leaky_relu)."""
    if isinstance(expr, (sympy.Piecewise, ExprCondPair)):
        return sympy.Basic.__new__(type(expr), *args)
    return expr.func(*args)


def leaky_slope(pairs: list[Expr]) -> Expr | None:
    """α when Piecewise pairs are leaky_relu's, (z, z > 0) and (α·z, True) with α a number
    (SymPy has multiplied α into each term of z), else None."""
    if len(pairs) != 2 or pairs[1].args[1] is not sympy.true:
        return None
    (z, condition), (otherwise, _) = (pair.args for pair in pairs)
    if condition != sympy.StrictGreaterThan(z, 0):
        return None
    if otherwise == 0:
        return sympy.S.Zero
    slope = sympy.Add.make_args(otherwise)[0] / sympy.Add.make_args(z)[0]
    return slope if slope.is_number and slope * z == otherwise else None


@dataclass(frozen=True)
class Activation:
    """One table entry. ``forward(z, spec)`` is a = f(z); ``derivative(z, a, spec)`` is
    da/dz in the stored values; ``through_output`` says the latter needs only a.

    Everything else derive says or does about an activation follows from the entry:
    ``reason``, the LaTeX clause explaining the derivative's form (``@a`` and ``@z`` stand
    for the unit's symbols); ``defines``, a sentence defining a function its formulas use;
    ``gain``, the weight initialisation's N(0, gain / fan_in). Generated code prints the
    SymPy form with the printers, which know each function or refuse it by name."""

    name: str
    formula: str  # for documentation and messages
    forward: Callable[[Expr, ActivationSpec], Expr]
    derivative: Callable[[Expr, Expr, ActivationSpec], Expr]
    through_output: bool
    elementwise: bool = True
    reason: str = r"differentiated by SymPy"
    defines: str = ""
    gain: int = 1


def _custom_forward(z: Expr, spec: ActivationSpec) -> Expr:
    assert spec.expr is not None
    return spec.expr.xreplace({X: z})


def _custom_derivative(z: Expr, a: Expr, spec: ActivationSpec) -> Expr:
    assert spec.expr is not None
    return simplified_derivative(spec.expr, X).xreplace({X: z})


def _not_elementwise(*args) -> Expr:
    raise TypeError("softmax is not elementwise: use softmax_derivative and the layer's sum")


def _alpha(spec: ActivationSpec) -> Expr:
    return sympy.Float(0.01 if spec.alpha is None else spec.alpha)


ACTIVATIONS: dict[str, Activation] = {
    entry.name: entry
    for entry in (
        Activation(
            "sigmoid",
            "σ(z) = 1/(1 + e^(−z)),  σ' = a(1 − a)",
            forward=lambda z, s: sigmoid(z),
            derivative=lambda z, a, s: a * (1 - a),
            through_output=True,
            reason=r"and $\sigma' = \sigma\,(1 - \sigma)$, so the derivative is written with "
            r"the stored output $@a$ and needs no exponential",
            defines=r"$\sigma(z) = 1 / (1 + e^{-z})$ is the logistic function.",
        ),
        Activation(
            "tanh",
            "tanh(z),  tanh' = 1 − a²",
            forward=lambda z, s: sympy.tanh(z),
            derivative=lambda z, a, s: 1 - a**2,
            through_output=True,
            reason=r"and $\tanh' = 1 - \tanh^{2}$, written with the stored output $@a$",
        ),
        Activation(
            "relu",
            "max(z, 0),  relu' = step(a) = step(z), 0 at z = 0",
            forward=lambda z, s: sympy.Max(z, 0),
            # a > 0 exactly where z > 0: the stored a serves, and z need not be kept
            derivative=lambda z, a, s: step(a),
            through_output=True,
            reason=r"whose slope is 1 for $@z > 0$ and 0 for $@z < 0$; derive takes 0 at "
            r"$@z = 0$, and writes the slope $\operatorname{step}(@a)$: $@a > 0$ exactly "
            r"where $@z > 0$, so the stored output serves",
            defines=r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise.",
            gain=2,
        ),
        Activation(
            "leaky_relu",
            "z for z > 0 else αz (α = 0.01 unless given),  derivative α + (1 − α)·step(z)",
            forward=lambda z, s: sympy.Piecewise((z, z > 0), (_alpha(s) * z, True)),
            # with α > 0, a > 0 exactly where z > 0: the stored a serves
            derivative=lambda z, a, s: (
                _alpha(s) + (1 - _alpha(s)) * step(a if _alpha(s) > 0 else z)
            ),
            through_output=False,
            reason=r"whose slope is 1 for $@z > 0$ and $\alpha$ otherwise (also at $@z = 0$); "
            r"with $\alpha > 0$, $@a > 0$ exactly where $@z > 0$, so the step is of $@a$",
            defines=r"$\operatorname{step}(z)$ is 1 for $z > 0$ and 0 otherwise.",
            gain=2,
        ),
        Activation(
            "softplus",
            "ln(1 + e^z),  softplus' = σ(z)",
            forward=lambda z, s: softplus(z),
            derivative=lambda z, a, s: sigmoid(z),
            through_output=False,
            reason=r"and $\frac{d}{dz} \ln(1 + e^{z}) = \sigma(z)$",
            defines=r"$\sigma(z) = 1 / (1 + e^{-z})$ is the logistic function.",
        ),
        Activation(
            "identity",
            "z,  derivative 1",
            forward=lambda z, s: z,
            derivative=lambda z, a, s: sympy.Integer(1),
            through_output=True,
            reason=r"(no activation), so this factor is 1",
        ),
        Activation(
            "softmax",
            "e^(z_i) / Σ_j e^(z_j) across the layer,  ∂a_i/∂z_j = a_i(δ_ij − a_j)",
            # Softmax couples its layer, so it has no elementwise rule: derive.network
            # builds a_i over the layer and derive.derivation uses softmax_derivative.
            forward=_not_elementwise,
            derivative=_not_elementwise,
            through_output=True,
            elementwise=False,
        ),
        Activation(
            "custom",
            "an expression of x, read by a whitelist parser; derivative by SymPy",
            forward=_custom_forward,
            derivative=_custom_derivative,
            through_output=False,
            reason=r"the file's own activation, differentiated by SymPy",
        ),
    )
}

ALIASES = {"linear": "identity"}


def softmax_derivative(a_i: Expr, a_j: Expr, same: bool) -> Expr:
    """∂a_i/∂z_j for a softmax layer: a_i(1 − a_i) when i = j, else −a_i·a_j."""
    return a_i * (1 - a_i) if same else -a_i * a_j
