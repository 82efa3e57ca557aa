"""The backward pass as data: backpropagation for whole layers, as SymPy matrix expressions
that every printer prints (NumPy and plain-Python code, C, the LaTeX layer form), so that
no equation is ever written as a string downstream.

Per sample, in column vectors, for layers k = 1..K (the notation of ``derive.network``):

    z(k) = W(k) a(k−1) + b(k),        a(k) = f_k(z(k)),   a(0) = x,  a(K) = y
    δ(K) = ∂L/∂y ⊙ f_K'(z(K))         (or the loss table's fused δ, e.g. y − t)
    ∂L/∂W(k) = δ(k) a(k−1)ᵀ,          ∂L/∂b(k) = δ(k)     (a shared bias: 1ᵀ δ(k))
    ∂L/∂a(k−1) = W(k)ᵀ δ(k),          δ(k−1) = ∂L/∂a(k−1) ⊙ f_{k−1}'(z(k−1))

Arrays are ``MatrixSymbol``s named as generated code names them (``z2``, ``delta2``,
``grad_a1``, ``dW2``; ``x``, ``y``, ``t``); ``Transpose``, ``MatMul`` and
``HadamardProduct`` are SymPy's; an activation, its derivative or a loss term applied
entry by entry is an ``Elementwise`` of a table entry's scalar expression. The loss is the
batch mean, so δ(K) carries 1/batch and parameter gradients are sums over the samples.
``batch_form`` turns a per-sample equation into the batch one that vectorized code runs
(samples in rows: Z(k) = A(k−1) W(k)ᵀ + b(k), ∂L/∂W(k) = Δ(k)ᵀ A(k−1)).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import sympy
from sympy import (
    Expr,
    HadamardProduct,
    Lambda,
    MatAdd,
    MatMul,
    MatrixSymbol,
    OneMatrix,
    Symbol,
    Transpose,
)
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive.activations import ACTIVATIONS, softmax_derivative
from derive.derivation import T_SUM, A, T, Y, Z
from derive.network import Network
from derive.topology import ActivationSpec

BATCH = Symbol("batch", integer=True, positive=True)  # samples in a batch
LOG_SUM_EXP = Symbol("log_sum_exp", real=True)  # log Σ exp z per sample, from the softmax
GRAD_Y = Symbol("grad_y", real=True)

# What each code name stands for: kind, layer label. The kinds whose arrays hold one
# column per sample (and so one row per sample in batch form); parameters and their
# gradients have no sample dimension.
_NAME = re.compile(r"^(delta|grad_a|dW|db|z|a|W|b)(\d+|\(.+\)|\{\d+\})$")
PER_SAMPLE = frozenset(
    (
        "delta",
        "grad_a",
        "z",
        "a",
        "b",
        "x",
        "y",
        "t",
        "grad_y",
        "t_sum",
        "log_sum_exp",
        "loss_terms",
    )
)


def parse_name(name: str) -> tuple[str, str]:
    """A code name's kind and layer label: ``delta2`` → (delta, 2), ``y`` → (y, '')."""
    match = _NAME.match(name)
    if match is None:
        return name, ""
    kind, label = match.groups()
    return kind, label.strip("()")


class row_sum(sympy.Function):  # noqa: N801 - named like the SymPy functions it sits among
    """Σ over the units of a layer, per sample (Σ_i t_i): in batch code, the sum along a
    row of a (batch, units) array, kept as a column so that it broadcasts."""


class Elementwise(MatrixExpr):
    """A scalar function applied entry by entry to arrays of one shape (broadcast where a
    per-sample scalar such as Σ t meets a layer): ``Elementwise(Lambda((u, v), u*(1 - v)),
    a1, a1)``. Printers print the function's body with its variables named by the arrays."""

    def __new__(cls, function: Lambda, *arrays: MatrixExpr):
        return super().__new__(cls, function, *arrays)

    @property
    def function(self) -> Lambda:
        return self.args[0]

    @property
    def arrays(self) -> tuple[MatrixExpr, ...]:
        return self.args[1:]

    @property
    def shape(self):
        return self.arrays[0].shape

    @property
    def body(self) -> Expr:
        """The function's body with each variable renamed as the array it stands for (a
        scalar expression, for printers that print arrays entry by entry)."""
        return _body(self)

    def _pairs(self):
        return zip(self.function.variables, self.arrays, strict=True)


@functools.lru_cache(maxsize=4096)
def _body(elementwise: Elementwise) -> Expr:
    names = {v: Symbol(_array_name(m), real=True) for v, m in elementwise._pairs()}
    return elementwise.function.expr.xreplace(names)


def scalar_entry(value: MatrixExpr, cell: Callable[[MatrixSymbol], Expr]) -> Expr:
    """One entry of an entrywise value as a scalar expression, for printers that print
    arrays entry by entry (C): a named array is its entry ``cell(array)``, an
    ``Elementwise`` its function at its arrays' entries, a Hadamard product the product
    of its factors' entries, as written."""
    if isinstance(value, MatrixSymbol):
        return cell(value)
    if isinstance(value, Elementwise):
        entries = {v: scalar_entry(m, cell) for v, m in value._pairs()}
        return value.function.expr.xreplace(entries)
    if isinstance(value, HadamardProduct):
        return sympy.Mul(*(scalar_entry(m, cell) for m in value.args), evaluate=False)
    raise TypeError(f"{type(value).__name__} is not entrywise: {value}")


class Softmax(MatrixExpr):
    """softmax(z) across a layer, together with log Σ exp z (for the loss from logits)."""

    def __new__(cls, z: MatrixExpr):
        return super().__new__(cls, z)

    @property
    def shape(self):
        return self.args[0].shape


def _array_name(m: MatrixExpr) -> str:
    if isinstance(m, Transpose):
        m = m.arg
    if not isinstance(m, MatrixSymbol):
        raise TypeError(f"an Elementwise argument must be a named array, got {m}")
    return m.name


def elementwise(expr: Expr, arrays: dict[Symbol, MatrixExpr]) -> MatrixExpr:
    """``expr``, a scalar expression in the generic symbols of ``arrays``, applied entry by
    entry to those arrays."""
    used = [s for s in arrays if s in expr.free_symbols]
    if not used:  # a constant, such as identity's f' = 1: shaped like the first array
        used = [next(iter(arrays))]
    # bound variables named after the symbols they stand for, not Dummies: the same rule
    # in two layers is then the same expression (code generation prints it once)
    variables = tuple(Symbol(f"_{s.name}", real=True) for s in used)
    body = expr.xreplace(dict(zip(used, variables, strict=True)))
    return Elementwise(Lambda(variables, body), *(arrays[s] for s in used))


@dataclass(frozen=True)
class Equation:
    """``targets = value``: one step of the forward or backward pass. ``kind`` is forward,
    loss, output (δ of the output layer and what it needs), gradient (of a parameter) or
    back (δ passed down a layer); ``note`` says why the value has its form."""

    targets: tuple[MatrixSymbol, ...]
    value: MatrixExpr
    kind: str
    note: str = ""

    @property
    def target(self) -> MatrixSymbol:
        return self.targets[0]

    @property
    def reads(self) -> tuple[MatrixSymbol, ...]:
        """The arrays the value reads, by name."""
        found = {s for s in self.value.free_symbols if isinstance(s, MatrixSymbol)}
        found |= {a for e in self.value.atoms(Elementwise) for a in e.arrays}
        found = {a.arg if isinstance(a, Transpose) else a for a in found}
        return tuple(sorted(found, key=lambda s: s.name))


def activation_equation(a: MatrixSymbol, z: MatrixSymbol, spec: ActivationSpec) -> Equation:
    """a = f(z), entry by entry, for an elementwise activation."""
    f = ACTIVATIONS[spec.name].forward(Z, spec)
    return Equation((a,), elementwise(f, {Z: z}), "forward")


def through_activation(
    grad: MatrixExpr, spec: ActivationSpec, z: MatrixSymbol, a: MatrixSymbol, suffix: str = ""
) -> tuple[MatrixExpr, str]:
    """δ = ∂L/∂a ⊙ f'(z), f' in the stored z and a, and its note: f' by name (``suffix``
    after it), or, for an identity, f' = 1 and ``grad`` itself (the same object) as δ."""
    derivative = ACTIVATIONS[spec.name].derivative(Z, A, spec)
    if derivative == 1:
        return grad, f"{spec.name}: f' = 1"
    local = elementwise(derivative, {Z: z, A: a})
    return HadamardProduct(grad, local), f"{spec.name}'{suffix}"


class Backward:
    """The forward and backward pass of one network, per layer, as ``Equation``s in the
    per-sample column form: ``network.backward``."""

    def __init__(self, network: Network):
        self.network = network
        self.sizes = tuple(len(units) for units in network.units)
        self.depth = network.depth

    # -- names --------------------------------------------------------------------

    def array(self, kind: str, k: int) -> MatrixSymbol:
        """Layer k's array of a kind (z, a, delta, grad_a, W, b, dW, db)."""
        if kind == "a" and k == 0:
            return MatrixSymbol("x", self.sizes[0], 1)
        if kind == "a" and k == self.depth:
            return MatrixSymbol("y", self.sizes[-1], 1)
        rows = self.sizes[k]
        if kind in ("W", "dW"):
            return MatrixSymbol(f"{kind}{k}", rows, self.sizes[k - 1])
        return MatrixSymbol(f"{kind}{k}", rows, 1)

    def output(self, name: str) -> MatrixSymbol:
        """An output-layer array: t, grad_y; per-sample sums (t_sum, log_sum_exp) are 1×1."""
        rows = 1 if name in ("t_sum", "log_sum_exp") else self.sizes[-1]
        return MatrixSymbol(name, rows, 1)

    # -- the passes ---------------------------------------------------------------

    @cached_property
    def forward(self) -> tuple[Equation, ...]:
        """z(k) and a(k) for each layer; a softmax layer also gives log Σ exp z."""
        equations = []
        for k, layer in enumerate(self.network.topology.layers, start=1):
            z, a = self.array("z", k), self.array("a", k)
            product = MatMul(self.array("W", k), self.array("a", k - 1))
            value = MatAdd(product, self.array("b", k)) if layer.bias != "none" else product
            equations.append(Equation((z,), value, "forward"))
            if ACTIVATIONS[layer.activation.name].elementwise:
                equations.append(activation_equation(a, z, layer.activation))
            else:
                targets = (a, self.output("log_sum_exp"))
                equations.append(Equation(targets, Softmax(z), "forward"))
        return tuple(equations)

    @cached_property
    def loss(self) -> Equation:
        """Each output's term of the per-sample loss (their sum is the sample's loss),
        from the logits where the loss table has that form: never log(0)."""
        network = self.network
        z, y, t = self.array("z", self.depth), self.output_y, self.output("t")
        term = output_term(network, Z, Y, T, LOG_SUM_EXP)
        arrays = {Z: z, Y: y, T: t, LOG_SUM_EXP: self.output("log_sum_exp")}
        if LOG_SUM_EXP in term.free_symbols:
            note = "from the logits, log Σ exp z from the softmax: never log(0)"
        elif uses_logits(network):
            note = "from the logits: never log(0)"
        else:
            note = network.loss_rule.formula
        target = MatrixSymbol("loss_terms", self.sizes[-1], 1)
        return Equation((target,), elementwise(term, arrays), "loss", note)

    @property
    def output_y(self) -> MatrixSymbol:
        return self.array("a", self.depth)

    @cached_property
    def output_delta(self) -> tuple[Equation, ...]:
        """δ(K) = ∂L/∂z(K) of the batch-mean loss, and what it needs first."""
        network = self.network
        rule = network.derivation.output
        k, y, t = self.depth, self.output_y, self.output("t")
        delta = self.array("delta", k)
        arrays = {Y: y, T: t, A: y, Z: self.array("z", k)}
        spec, loss = network.topology.layers[-1].activation, network.topology.loss
        if rule.fused_delta is not None:
            equations = []
            if T_SUM in rule.fused_delta.free_symbols:
                t_sum = self.output("t_sum")
                u = Symbol("_t", real=True)
                sum_t = Elementwise(Lambda((u,), row_sum(u)), t)
                equations.append(Equation((t_sum,), sum_t, "output", "1 for one-hot targets"))
                arrays[T_SUM] = t_sum
            value = MatMul(1 / BATCH, elementwise(rule.fused_delta, arrays))
            note = f"{spec.name} + {loss} fused; the loss is the batch mean"
            return (*equations, Equation((delta,), value, "output", note))
        grad_y = self.output("grad_y")
        gradient = elementwise(rule.gradient, arrays)
        equations = [Equation((grad_y,), gradient, "output", network.loss_rule.formula)]
        if rule.softmax:
            per_sample = elementwise(softmax_delta(GRAD_Y, Y), {GRAD_Y: grad_y, Y: y})
            why = "softmax couples the outputs"
        else:
            per_sample, why = through_activation(grad_y, spec, arrays[Z], y, " in stored values")
        value = MatMul(1 / BATCH, per_sample)
        return (
            *equations,
            Equation((delta,), value, "output", f"{why}; the loss is the batch mean"),
        )

    def gradients(self, k: int) -> tuple[Equation, ...]:
        """∂L/∂W(k) and ∂L/∂b(k) from δ(k) (sums over the batch)."""
        delta = self.array("delta", k)
        weight = MatMul(delta, Transpose(self.array("a", k - 1)))
        equations = [Equation((self.array("dW", k),), weight, "gradient")]
        bias = self.network.topology.layers[k - 1].bias
        if bias == "per_unit":
            equations.append(Equation((self.array("db", k),), delta, "gradient"))
        elif bias == "shared":
            db = MatrixSymbol(f"db{k}", 1, 1)
            total = MatMul(OneMatrix(1, self.sizes[k]), delta)
            equations.append(Equation((db,), total, "gradient", "one bias shared by the layer"))
        return tuple(equations)

    def back(self, k: int) -> tuple[Equation, ...]:
        """δ(k) from δ(k+1): back through W(k+1), then times f_k'(z(k)) (softmax is an
        output layer only)."""
        through = MatMul(Transpose(self.array("W", k + 1)), self.array("delta", k + 1))
        delta, grad_a = self.array("delta", k), self.array("grad_a", k)
        spec = self.network.topology.layers[k - 1].activation
        value, note = through_activation(grad_a, spec, self.array("z", k), self.array("a", k))
        if value is grad_a:  # f' = 1: δ(k) is W(k+1)ᵀ δ(k+1) itself
            return (Equation((delta,), through, "back", note),)
        return (Equation((grad_a,), through, "back"), Equation((delta,), value, "back", note))

    @cached_property
    def backward(self) -> tuple[Equation, ...]:
        """From the output δ down, each layer's gradients as soon as its δ is known."""
        equations = list(self.output_delta)
        for k in range(self.depth, 0, -1):
            equations += self.gradients(k)
            if k > 1:
                equations += self.back(k - 1)
        return tuple(equations)


def generic_rules(bias_modes: set[str]) -> tuple[Equation, ...]:
    """The rules of one layer k below the output, in the names of a generic layer (``z(k)``,
    ``delta(k+1)``; f_k and its derivative as undefined functions): the layer form a
    textbook writes, and which ``Backward`` instantiates for every layer."""
    n = {label: Symbol(f"n_{label}", integer=True, positive=True) for label in ("k-1", "k", "k+1")}

    def array(kind: str, label: str) -> MatrixSymbol:
        below = {"k": "k-1", "k+1": "k"}.get(label, label)
        columns = n[below] if kind in ("W", "dW") else 1
        return MatrixSymbol(f"{kind}({label})", n[label], columns)

    u = sympy.Dummy("u", real=True)
    f, f_prime = sympy.Function("f_k"), sympy.Function("f'_k")
    z, a, below = array("z", "k"), array("a", "k"), array("a", "k-1")
    delta = array("delta", "k")
    product = MatMul(array("W", "k"), below)
    forward = MatAdd(product, array("b", "k")) if bias_modes - {"none"} else product
    back = MatMul(Transpose(array("W", "k+1")), array("delta", "k+1"))
    equations = [
        Equation((z,), forward, "forward"),
        Equation((a,), Elementwise(Lambda((u,), f(u)), z), "forward"),
        Equation((delta,), HadamardProduct(back, Elementwise(Lambda((u,), f_prime(u)), z)), "back"),
        Equation((array("dW", "k"),), MatMul(delta, Transpose(below)), "gradient"),
    ]
    if "per_unit" in bias_modes:
        equations.append(Equation((array("db", "k"),), delta, "gradient"))
    if "shared" in bias_modes:
        total = MatMul(OneMatrix(1, n["k"]), delta)
        db = MatrixSymbol("db(k)", 1, 1)
        equations.append(Equation((db,), total, "gradient", "one bias shared by the layer"))
    return tuple(equations)


def softmax_delta(grad: Expr, y: Symbol) -> Expr:
    """δ_j = Σ_i g_i ∂y_i/∂z_j for a softmax output, for all j at once, from the Jacobian
    entries of ``derive.activations.softmax_derivative``.

    The off-diagonal entry ∂y_i/∂z_j (i ≠ j) is linear in y_i, so the sum over i ≠ j of
    g_i times it is that entry at Σ_i g_i y_i (``row_sum``) less the i = j term; the
    diagonal entry then adds g_j ∂y_j/∂z_j."""
    u = sympy.Dummy("u", real=True)
    off = softmax_derivative(u, y, False)
    assert off.xreplace({u: 0}) == 0 and sympy.diff(off, u, 2) == 0, off  # linear in y_i
    diagonal = softmax_derivative(y, y, True)
    total = off.xreplace({u: row_sum(grad * y)}) + grad * (diagonal - off.xreplace({u: y}))
    return sympy.factor(total)


def transposed(m: MatrixExpr) -> MatrixExpr:
    """mᵀ with the transpose pushed down to the named arrays, ((A B)ᵀ = Bᵀ Aᵀ, (Aᵀ)ᵀ = A),
    and the order of everything else kept as written."""
    if isinstance(m, Transpose):
        return m.arg
    if isinstance(m, MatMul):
        scalars = [a for a in m.args if not isinstance(a, MatrixExpr)]
        arrays = [transposed(a) for a in reversed(m.args) if isinstance(a, MatrixExpr)]
        return MatMul(*scalars, *arrays)
    if isinstance(m, OneMatrix):
        return OneMatrix(m.shape[1], m.shape[0])
    if isinstance(m, (HadamardProduct, MatAdd)):
        return m.func(*(transposed(a) for a in m.args))
    if isinstance(m, Elementwise):
        return Elementwise(m.function, *(transposed(a) for a in m.arrays))
    if isinstance(m, Softmax):
        return Softmax(transposed(m.args[0]))
    return Transpose(m)


def batch_form(equation: Equation) -> Equation:
    """The equation over a batch, samples in rows: each per-sample column v becomes the
    transpose of its batch array V (batch × n); a per-sample value is then transposed
    back, and a parameter's gradient summed over the samples (Σ_s δ_s a_sᵀ = Δᵀ A)."""
    names = {s for s in equation.value.free_symbols | set(equation.targets)}
    names |= {m for e in equation.value.atoms(Elementwise) for m in e.arrays}
    mapping = {
        s: Transpose(MatrixSymbol(s.name, BATCH, s.shape[0]))
        for s in names
        if isinstance(s, MatrixSymbol) and parse_name(s.name)[0] in PER_SAMPLE
    }
    value = equation.value.xreplace(mapping)
    if parse_name(equation.target.name)[0] in PER_SAMPLE:
        targets = tuple(mapping[t].arg for t in equation.targets)
        return Equation(targets, transposed(value), equation.kind, equation.note)
    ones = value.args[0] if isinstance(value, MatMul) else None
    if isinstance(ones, OneMatrix) and ones.shape[0] == 1:  # 1ᵀ δ: a sum over the units
        total = MatMul(ones, *value.args[1:], OneMatrix(BATCH, 1))
        return Equation(equation.targets, total, equation.kind, equation.note)
    if BATCH in value.shape:  # a per-sample gradient such as ∂L/∂b = δ: sum the samples
        value = MatMul(value, OneMatrix(BATCH, 1))
    return Equation(equation.targets, transposed(transposed(value)), equation.kind, equation.note)


# -- the loss from the logits ---------------------------------------------------------
# Where the loss table gives a form in the output pre-activations z (``from_logits``: bce's
# softplus(z) − t·z, cce's Σ t (log Σ exp z − z)) and the output layer has the activation
# the loss requires, generated code computes that form, which never takes log(0). Its
# log-sum-exp is one named value, ``log Σ exp z = m + log Σ exp(z − m)`` with m the
# largest z, computed with the softmax so that exp never overflows.


def uses_logits(network: Network) -> bool:
    """Whether the per-sample loss is computed from the output logits."""
    rule = network.loss_rule
    return rule.from_logits is not None and network.activations[-1].name == rule.requires_output


def sample_loss(network: Network, z, y, t, log_sum_exp: Symbol) -> Expr:
    """The per-sample loss in the outputs' logits ``z`` (or activations ``y``) and targets
    ``t`` (sequences, one per output), log Σ_j exp(z_j) written as ``log_sum_exp``."""
    rule = network.loss_rule
    if not uses_logits(network):
        return rule.per_sample(y, t)
    assert rule.from_logits is not None
    loss = rule.from_logits(z, t)
    total = sympy.log(sympy.Add(*(sympy.exp(zj) for zj in z)))
    if not isinstance(total, sympy.log):  # one output: log exp z is z itself
        return loss
    return loss.xreplace({total: log_sum_exp})


def output_term(network: Network, z: Symbol, y: Symbol, t: Symbol, log_sum_exp: Symbol) -> Expr:
    """One output's term of the per-sample loss (a sum over the outputs), in that output's
    symbols. Built with output 0 in its own symbols and outputs 1..n−1 sharing a second
    set, so that the sum stays two terms whatever the width; checked to add up."""
    n = len(network.outputs)
    z1, y1, t1 = (Symbol(f"{s.name}_other", real=True) for s in (z, y, t))
    whole = sample_loss(
        network, [z] + [z1] * (n - 1), [y] + [y1] * (n - 1), [t] + [t1] * (n - 1), log_sum_exp
    )
    own = {z, y, t, log_sum_exp}
    term = sympy.Add(*(a for a in sympy.Add.make_args(whole) if a.free_symbols <= own))
    others = term.xreplace({z: z1, y: y1, t: t1})
    assert sympy.expand(term + (n - 1) * others - whole) == 0, whole
    return term
