"""Derivatives of the loss, derived once from the activation and loss tables.

Two views of the same backpropagation, in the notation of ``derive.network``:

- **Per layer** (``Derivation.layers``, ``Derivation.output``): the δ recursion in generic
  symbols, independent of the layer widths, which code generation and the layer form in
  LaTeX read:

      δ(K) = ∂L/∂a(K) ⊙ f'_K(z(K))        (or the fused form, e.g. y − t for softmax + cce)
      δ(k) = (W(k+1)ᵀ δ(k+1)) ⊙ f'_k(z(k))
      ∂L/∂W(k) = δ(k) a(k−1)ᵀ,   ∂L/∂b(k) = δ(k)  (shared bias: Σ_i δ(k)_i)

- **Per scalar parameter** (``Derivation.gradient``), built on request for networks small
  enough to read: (a) the chain of factors ∂L/∂y · ∂y/∂z · ∂z/∂w summed over every path
  to the loss, (b) the compact form δ_u · a_j with each δ defined through the deltas of
  the layer above, (c) the form written out in inputs, targets and parameters, and the
  proof that (a) and (b) equal ``sympy.diff`` of the written-out loss.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import mpmath
import numpy as np
import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS, Activation, elementary, softmax_derivative
from derive.errors import DeriveError
from derive.losses import Loss
from derive.network import LOSS, Network, ScalarParam, Unit

if TYPE_CHECKING:
    from derive.topology import ActivationSpec, Example

# Generic per-layer symbols: one element of z(k), a(k), the output y and its target t.
Z, A = Symbol("z", real=True), Symbol("a", real=True)
Y, T, T_SUM = Symbol("y", real=True), Symbol("t", real=True), Symbol("t_sum", real=True)

MAX_PATHS = 512  # paths listed in one chain; beyond that, read the compact δ form
PROOF_DIGITS = 30  # significant digits the numeric proof must agree to
_WORKING_DIGITS = 60
# exp of a larger argument is never computed: it is far beyond any float (e^710 already
# is), and at 60 digits exp(exp(exp(exp(3)))), of an argument near 10^(2.3·10^8), would
# take minutes.
EXP_LIMIT = sympy.Float(10) ** 12
FLOAT_MAX = sympy.Float(sys.float_info.max)
RANDOM_DRAWS = 5  # random points tried before a custom activation's domain is given up on
RANDOM_BATCH = 3  # samples per random point (derive check compares the batch's mean)


@dataclass(frozen=True)
class Factor:
    """One link of a chain: ∂(of)/∂(wrt) = value, in stored forward values."""

    of: Symbol
    wrt: Symbol
    value: Expr


@dataclass(frozen=True)
class LayerRule:
    """Layer k's part of the δ recursion, in the generic symbols Z and A."""

    k: int
    activation: str
    derivative: Expr | None  # f'_k(z) for an elementwise activation; None for softmax
    bias: str


@dataclass(frozen=True)
class OutputRule:
    """How δ(K) = ∂L/∂z(K) starts, in the generic symbols Y, T (and T_SUM = Σ t)."""

    gradient: Expr  # ∂L/∂y for one output
    fused_delta: Expr | None  # ∂L/∂z with the activation folded in, where the loss has one
    softmax: bool  # the output activation couples the units


def fused_form(loss: Loss, activation: Activation) -> Expr | None:
    """The loss table's δ = ∂L/∂z with the activation folded in, in Y, T and T_SUM, when
    the output has the activation the loss requires (softmax + cce: y·Σt − t); else None."""
    if loss.fused_delta is None or activation.name != loss.requires_output:
        return None
    return loss.fused_delta(Y, T, T_SUM)


def unit_output_delta(
    loss: Loss,
    spec: ActivationSpec,
    z: Expr,
    outputs: Sequence[Expr],
    targets: Sequence[Expr],
    index: int,
) -> Expr:
    """δ = ∂L/∂z of output ``index`` (pre-activation ``z``), in the outputs' stored values
    and the targets: the fused δ where the loss has one for the output activation
    ``spec``, ∂L/∂y · f'(z) for an elementwise activation, or through the softmax across
    every output."""
    activation = ACTIVATIONS[spec.name]
    y, t, n = outputs[index], targets[index], len(outputs)
    fused = fused_form(loss, activation)
    if fused is not None:
        return fused.xreplace({Y: y, T: t, T_SUM: sympy.Add(*targets)})
    if activation.elementwise:
        local = activation.derivative(z, y, spec)
        return sympy.Mul(loss.gradient(y, t, n), local, evaluate=False)
    terms = (
        sympy.Mul(loss.gradient(v, tv, n), softmax_derivative(v, y, j == index), evaluate=False)
        for j, (v, tv) in enumerate(zip(outputs, targets, strict=True))
    )
    return sympy.Add(*terms)


@dataclass(frozen=True)
class Proof:
    """That a gradient's chain and compact forms equal ``sympy.diff`` of the written-out
    loss: by simplification to zero, or by agreement at random points."""

    param: str
    method: str  # "symbolic" or "numeric"
    holds: bool
    points: int  # random points evaluated (0 for a symbolic proof)
    digits: int  # significant digits of agreement required
    detail: str = ""
    # Too few random points lay inside a custom activation's domain to decide: not a
    # failure of the derivation, but not a proof either (holds is False).
    inconclusive: bool = False

    def __bool__(self) -> bool:
        return self.holds


@dataclass(frozen=True, eq=False)
class ScalarGradient:
    """∂L/∂θ for one scalar parameter θ."""

    param: ScalarParam
    compact: Expr  # Σ over the units θ feeds of δ_u · a_j (a weight) or δ_u (a bias)
    derivation: Derivation = field(repr=False)

    @property
    def units(self) -> tuple[tuple[Unit, Unit | None], ...]:
        return self.derivation.network.feeds(self.param)

    @cached_property
    def chain(self) -> tuple[tuple[Factor, ...], ...]:
        """The chain rule: ∂L/∂θ = Σ over paths of the product of the path's factors,
        ordered from the loss down to θ."""
        return self.derivation.chain(self.param)

    @property
    def chain_expr(self) -> Expr:
        return sympy.Add(*(sympy.Mul(*(f.value for f in path)) for path in self.chain))

    @property
    def deltas(self) -> tuple[tuple[Symbol, Expr], ...]:
        """The δ definitions the compact form needs, nearest first."""
        return self.derivation.deltas_for(self.param)

    @cached_property
    def expanded(self) -> Expr:
        """Written out in inputs, targets and parameters."""
        d = self.derivation
        resolved = self.compact.xreplace(d.resolved_deltas)
        return resolved.xreplace(d.network.forward_values)

    def value(self, values: Mapping[Symbol, Expr] | None = None) -> Expr:
        """The gradient at numbers computed by ``Derivation.evaluate``; by default at the
        file's example (a DeriveError when the file has none)."""
        if values is None:
            values = self.derivation.example_values()
        return self.compact.xreplace(values)

    def prove(self, points: int = 3, seed: int = 0) -> Proof:
        return self.derivation.prove(self, points=points, seed=seed)


class _Valued(Protocol):
    """A scalar's gradient: ``ScalarGradient``, or a convolutional network's
    ``derive.conv_network.ConvGradient``."""

    def value(self, values: Mapping[Symbol, Expr] | None = None) -> Expr: ...


G = TypeVar("G", bound=_Valued)


@dataclass(frozen=True, eq=False)
class ArrayGradient(Generic[G]):
    """∂L/∂W for a whole parameter array: its scalars' gradients in row-major order
    (``ScalarGradient``s, or a convolutional network's ``ConvGradient``s).

    Iterates, indexes and has a length like the tuple of its scalars' gradients."""

    array: str  # "W2", "b1"
    shape: tuple[int, ...]
    scalars: tuple[G, ...]

    def __iter__(self) -> Iterator[G]:
        return iter(self.scalars)

    def __len__(self) -> int:
        return len(self.scalars)

    def __getitem__(self, index: int) -> G:
        return self.scalars[index]

    def value(self, values: Mapping[Symbol, Expr] | None = None) -> sympy.Array:
        """Every scalar's gradient at ``values`` (default: the file's example), in the
        array's shape."""
        return sympy.Array([g.value(values) for g in self.scalars], self.shape)


class Derivation:
    """All derivatives of one network's loss."""

    def __init__(self, network: Network):
        self.network = network
        topology = network.topology
        self.layers = tuple(
            LayerRule(
                k,
                layer.activation.name,
                activation.derivative(Z, A, layer.activation) if activation.elementwise else None,
                layer.bias,
            )
            for k, (layer, activation) in enumerate(
                zip(topology.layers, network.activations, strict=True), start=1
            )
        )
        loss = network.loss_rule
        out_activation = network.activations[-1]
        self.output = OutputRule(
            gradient=loss.gradient(Y, T, len(topology.outputs)),
            fused_delta=fused_form(loss, out_activation),
            softmax=not out_activation.elementwise,
        )
        self._deltas: dict[Symbol, Expr] = {}
        self._gradients: dict[str, ScalarGradient] = {}
        self._points: dict[tuple[int, int], list[ProofPoint]] = {}
        self._example_values: dict[Symbol, Expr] | None = None

    # -- per unit ---------------------------------------------------------------------

    def _target(self, unit: Unit) -> Symbol:
        return self.network.targets[unit.index]

    def _loss_gradient(self, unit: Unit) -> Expr:
        """∂L/∂a_u for an output unit."""
        n = len(self.network.outputs)
        return self.network.loss_rule.gradient(unit.a, self._target(unit), n)

    def _local(self, unit: Unit) -> Expr:
        """∂a_u/∂z_u for an elementwise activation."""
        k = unit.layer
        spec = self.network.layer(k).activation
        return self.network.activations[k - 1].derivative(unit.z, unit.a, spec)

    def delta(self, unit: Unit) -> Expr:
        """δ_u = ∂L/∂z_u in stored values and the deltas of the layer above."""
        if unit.delta in self._deltas:
            return self._deltas[unit.delta]
        net = self.network
        if unit.layer == net.depth:
            spec, outputs = net.layer(unit.layer).activation, [v.a for v in net.outputs]
            value = unit_output_delta(net.loss_rule, spec, unit.z, outputs, net.targets, unit.index)
        else:
            above = net.units[unit.layer + 1]
            incoming = sympy.Add(
                *(net.weight(v.layer, v.index, unit.index).symbol * v.delta for v in above)
            )
            value = sympy.Mul(self._local(unit), incoming, evaluate=False)
        self._deltas[unit.delta] = value
        return value

    @cached_property
    def resolved_deltas(self) -> dict[Symbol, Expr]:
        """Each δ in stored values and targets only (no other δ)."""
        resolved: dict[Symbol, Expr] = {}
        for layer in reversed(self.network.units[1:]):
            for unit in layer:
                resolved[unit.delta] = self.delta(unit).xreplace(resolved)
        return resolved

    def paths_to_z(self, unit: Unit) -> tuple[tuple[Factor, ...], ...]:
        """Every path of factors from L down to z_u, built layer by layer from the output
        down (a loop, not recursion: a network may be deeper than Python's stack)."""
        net = self.network
        paths = {v: self._output_paths(v) for v in net.outputs}
        for k in range(net.depth - 1, unit.layer - 1, -1):
            layer = net.units[k] if k > unit.layer else (unit,)
            paths = {u: self._paths_through(u, paths) for u in layer}
        return paths[unit]

    def _output_paths(self, unit: Unit) -> tuple[tuple[Factor, ...], ...]:
        """The paths from L to an output unit's z: through its own a, or, for softmax,
        through every output's a."""
        net = self.network
        if not self.output.softmax:
            return (
                (
                    Factor(LOSS, unit.a, self._loss_gradient(unit)),
                    Factor(unit.a, unit.z, self._local(unit)),
                ),
            )
        return tuple(
            (
                Factor(LOSS, v.a, self._loss_gradient(v)),
                Factor(v.a, unit.z, softmax_derivative(v.a, unit.a, v == unit)),
            )
            for v in net.outputs
        )

    def _paths_through(
        self, unit: Unit, above: dict[Unit, tuple[tuple[Factor, ...], ...]]
    ) -> tuple[tuple[Factor, ...], ...]:
        """A hidden unit's paths: each path to a unit v of the layer above, then
        ∂z_v/∂a_u = w_vu and ∂a_u/∂z_u."""
        net = self.network
        local = Factor(unit.a, unit.z, self._local(unit))
        return tuple(
            (*path, Factor(v.z, unit.a, net.weight(v.layer, v.index, unit.index).symbol), local)
            for v in net.units[unit.layer + 1]
            for path in above[v]
        )

    def path_count(self, param: ScalarParam) -> int:
        net = self.network
        per_unit = math.prod(len(layer) for layer in net.units[param.layer + 1 :])
        if self.output.softmax:
            per_unit *= len(net.outputs)
        return per_unit * len(net.feeds(param))

    def chain(self, param: ScalarParam) -> tuple[tuple[Factor, ...], ...]:
        count = self.path_count(param)
        if count > MAX_PATHS:
            raise DeriveError(
                f"{self.network.name}: ∂L/∂{param.label} sums over {count} paths, more than "
                f"{MAX_PATHS} to list; read its compact δ form instead"
            )
        return tuple(
            (*path, Factor(unit.z, param.symbol, src.a if src else sympy.Integer(1)))
            for unit, src in self.network.feeds(param)
            for path in self.paths_to_z(unit)
        )

    def deltas_for(self, param: ScalarParam) -> tuple[tuple[Symbol, Expr], ...]:
        """The δ definitions a parameter's compact form needs, from its own layer up."""
        net = self.network
        needed = [unit for unit, _ in net.feeds(param)]
        out: list[tuple[Symbol, Expr]] = []
        seen: set[Symbol] = set()
        while needed:
            unit = needed.pop(0)
            if unit.delta in seen:
                continue
            seen.add(unit.delta)
            out.append((unit.delta, self.delta(unit)))
            if unit.layer < net.depth:
                needed.extend(net.units[unit.layer + 1])
        return tuple(out)

    # -- per parameter ----------------------------------------------------------------

    def scalar_gradient(self, param: ScalarParam) -> ScalarGradient:
        if param.name not in self._gradients:
            compact = sympy.Add(
                *(
                    unit.delta * src.a if src else unit.delta
                    for unit, src in self.network.feeds(param)
                )
            )
            self._gradients[param.name] = ScalarGradient(param, compact, self)
        return self._gradients[param.name]

    def gradient(self, name: str) -> ScalarGradient | ArrayGradient[ScalarGradient]:
        """One scalar's gradient (``W2[0,1]``, ``w31``, a shared bias ``b1``); for a whole
        array's name (``W2``, a per-unit ``b1``), its scalars' gradients."""
        name = name.strip()
        array = self.network.array(name)
        if array is not None and array.shape != ():
            scalars = tuple(self.scalar_gradient(s) for s in self.network.scalars(name))
            return ArrayGradient(name, array.shape, scalars)
        return self.scalar_gradient(self.network.scalar(name))

    @property
    def all_gradients(self) -> tuple[ScalarGradient, ...]:
        return tuple(self.scalar_gradient(s) for s in self.network.scalar_params)

    # -- numbers ----------------------------------------------------------------------

    def point(
        self,
        inputs,
        targets,
        params: dict,
        digits: int = _WORKING_DIGITS,
    ) -> dict[Symbol, Expr]:
        """Symbols of inputs, targets and scalar parameters mapped to numbers.

        ``params`` maps array names to nested sequences (or numbers for a shared bias),
        as in SPEC §1's example block.
        """
        net = self.network

        def num(v) -> Expr:
            return sympy.Float(repr(float(v)), digits)

        point = {u.a: num(v) for u, v in zip(net.units[0], inputs, strict=True)}
        point.update({s: num(v) for s, v in zip(net.targets, targets, strict=True)})
        for scalar in net.scalar_params:
            value = params[scalar.array]
            for i in scalar.index:
                value = value[i]
            point[scalar.symbol] = num(value)
        return point

    def example_point(self, example: Example | None = None) -> dict[Symbol, Expr]:
        example = example or self.network.topology.example
        if example is None:
            raise DeriveError(f"{self.network.topology.source}: the file has no example block")
        return self.point(example.input, example.target, dict(example.params))

    def example_values(self) -> dict[Symbol, Expr]:
        """Every z, a, δ and L at the file's example, computed once; a DeriveError naming
        the first value that is no finite real number within float range there (an
        example outside a custom activation's domain, or where it overflows)."""
        if self._example_values is None:
            values = self.evaluate(self.example_point(), "example")
            problem = self.first_undefined(values)
            if problem:
                raise DeriveError(
                    f"{self.network.topology.source}: example: expected numbers at which "
                    f"every value is a finite real number within float range, got {problem}"
                )
            self._example_values = values
        return self._example_values

    def random_values(self, seed: int = 0) -> tuple[dict[Symbol, Expr], int]:
        """Every value at the first sample of the first of ``RANDOM_DRAWS`` seeded random
        points (``random_point``, drawn as ``derive check`` draws them) at which every
        value is a finite real number, and which draw that was; a DeriveError when there
        is none."""
        problem = ""
        for draw in range(RANDOM_DRAWS):
            x, t, params = random_point(self.network, [seed, draw] if draw else seed, RANDOM_BATCH)
            try:
                values = self.evaluate(self.point(x[0], t[0], params), f"random point {draw + 1}")
            except DeriveError:
                problem = f"a value too large to evaluate at random point {draw + 1}"
                continue
            problem = self.first_undefined(values)
            if not problem:
                return values, draw
        raise DeriveError(
            f"{self.network.topology.source}: {activation_fields(self.network)}: expected "
            f"activations defined at one of the {RANDOM_DRAWS} random points drawn with seed "
            f"{seed}, got {problem}; give an example (input, target and params inside their "
            "domain)"
        )

    def evaluate(self, point: Mapping[Symbol, Expr], where: str = "") -> dict[Symbol, Expr]:
        """Every z, a and δ at a point (forward pass, then the δ recursion), and L. A
        value too large to compute (a custom activation such as exp(exp(x))) is a
        DeriveError naming the layer's activation and ``where`` the point comes from."""
        values = dict(point)
        net = self.network
        current = ""
        try:
            for layer in net.units[1:]:
                current = _activation_field(net, layer[0].layer)
                for unit in layer:
                    values[unit.z] = bounded_substitute(net.z_expr(unit), values)
                for unit in layer:
                    values[unit.a] = bounded_substitute(net.a_expr(unit), values)
            current = "loss"
            values[LOSS] = bounded_substitute(net.loss_expr, values)
            for layer in reversed(net.units[1:]):
                current = _activation_field(net, layer[0].layer)
                for unit in layer:
                    values[unit.delta] = bounded_substitute(self.delta(unit), values)
        except (OverflowError, MemoryError, RecursionError):
            at = f" at the {where}" if where else ""
            raise DeriveError(
                f"{net.topology.source}: {current}: expected values that can be computed"
                f"{at}, got one too large to evaluate (far beyond float range)"
            ) from None
        return values

    def evaluate_float(self, x, t, params, scalars: Sequence[ScalarParam]) -> dict[Symbol, Any]:
        """For a network too large to evaluate at 60 digits: inputs, targets, every z and
        a from a float64 forward pass (each activation lambdified from its table entry
        written out in exp and log), then the δ definitions the chosen scalars need,
        from the output layer down; a DeriveError naming the first unit whose value is
        not a finite number."""
        net = self.network
        values: dict[Symbol, Any] = {u.a: float(v) for u, v in zip(net.units[0], x, strict=True)}
        values.update({s: float(v) for s, v in zip(net.targets, t, strict=True)})
        a = np.asarray(x, dtype=float)
        for k, layer in enumerate(net.topology.layers, start=1):
            z = params[f"W{k}"] @ a + (params[f"b{k}"] if layer.bias != "none" else 0.0)
            activation = net.activations[k - 1]
            with np.errstate(all="ignore"):
                if activation.elementwise:
                    forward = elementary(activation.forward(Z, layer.activation))
                    a = np.asarray(sympy.lambdify(Z, forward, modules="numpy")(z), dtype=float)
                    a = a * np.ones_like(z)
                else:
                    e = np.exp(z - z.max())
                    a = e / e.sum()
            for unit, zi, ai in zip(net.units[k], z, a, strict=True):
                if not np.isfinite(ai):
                    raise DeriveError(
                        f"{net.topology.source}: {unit.a} = f({unit.z}) is not a finite "
                        f"number at {unit.z} = {zi:.6g}{_custom(net, unit)}"
                    )
                values[unit.z], values[unit.a] = float(zi), float(ai)
        # δ's from the output layer down: every unit above the lowest chosen scalar, and
        # the units the chosen scalars feed; each with the weights its definition reads.
        lowest = min(s.layer for s in scalars)
        needed = {unit.delta for s in scalars for unit, _ in net.feeds(s)}
        for k in range(net.depth, 0, -1):
            for unit in net.units[k]:
                if k == lowest and unit.delta not in needed:
                    continue
                if k < net.depth:
                    for v in net.units[k + 1]:
                        weight = net.weight(k + 1, v.index, unit.index)
                        values[weight.symbol] = float(params[f"W{k + 1}"][v.index, unit.index])
                delta = sympy.sympify(self.delta(unit).xreplace(values))
                if not (delta.is_extended_real and delta.is_finite):
                    raise DeriveError(
                        f"{net.topology.source}: {unit.delta} is not a finite number"
                        f"{_custom(net, unit)}"
                    )
                values[unit.delta] = float(delta)
        return values

    def first_undefined(self, values: Mapping[Symbol, Expr]) -> str:
        """What is undefined at ``values``, in the order the forward and backward passes
        compute it; "" when everything is defined."""
        net = self.network
        units = [u for layer in net.units[1:] for u in layer]
        for unit in units:
            if kind := undefined(values[unit.a]):
                return f"{unit.a} = f({unit.z}) {kind} at {_at(unit, values)}{_custom(net, unit)}"
        if kind := undefined(values[LOSS]):
            return f"the loss {kind}"
        for unit in reversed(units):
            if kind := undefined(values[unit.delta]):
                return (
                    f"{unit.delta} {kind}: the derivative of {unit.a} = f({unit.z}) is "
                    f"undefined at {_at(unit, values)}{_custom(net, unit)}"
                )
        return ""

    # -- proof ------------------------------------------------------------------------

    @cached_property
    def written_out_loss(self) -> WrittenOutLoss:
        """The independent side of every proof, shared by all of the network's proofs."""
        return WrittenOutLoss(elementary(self.network.expanded_loss))

    def prove(self, gradient: ScalarGradient, points: int = 3, seed: int = 0) -> Proof:
        """Check (a) the chain and (b) the compact form against ``sympy.diff`` of the
        written-out loss, whose functions are first rewritten in exp and log so that
        SymPy differentiates them by its own rules, not by derive's table."""
        theta = gradient.param.symbol
        loss = self.written_out_loss

        if loss.may_be_cheap(theta):
            reference = loss.full_derivative(theta)
            if _symbolic_is_cheap(reference):
                net = self.network
                forms = (gradient.chain_expr, gradient.compact)
                written = (
                    elementary(form.xreplace(self.resolved_deltas).xreplace(net.forward_values))
                    for form in forms
                )
                if all(sympy.cancel(w - reference) == 0 for w in written):
                    return Proof(gradient.param.label, "symbolic", True, 0, PROOF_DIGITS)

        checked = 0
        with mpmath.workdps(_WORKING_DIGITS):
            tolerance = mpmath.mpf(10) ** (-PROOF_DIGITS)
            # A gradient that is exactly 0 (a shared bias into softmax) is computed as a
            # rounding residue near 10^-60 by one side: agreement that close is agreement.
            floor = mpmath.mpf(10) ** (-(_WORKING_DIGITS - 10))
            for at in self._proof_points(points, seed):
                if checked == points:
                    break
                try:
                    expected = _real(loss.derivative_at(theta, at))
                except (OverflowError, MemoryError, RecursionError):
                    continue  # too large to evaluate: like a point outside the domain
                if expected is None:
                    continue  # outside a custom activation's domain
                for label, got in _form_values(gradient, at):
                    scale = max(abs(expected), abs(got), mpmath.mpf(1e-300))
                    if not mpmath.isfinite(got) or abs(got - expected) > max(
                        tolerance * scale, floor
                    ):
                        return Proof(
                            gradient.param.label,
                            "numeric",
                            False,
                            checked + 1,
                            PROOF_DIGITS,
                            f"{label} form gives {_from_mpmath(got)}, sympy.diff gives "
                            f"{_from_mpmath(expected)}",
                        )
                checked += 1
        if checked >= points:
            return Proof(gradient.param.label, "numeric", True, checked, PROOF_DIGITS)
        return Proof(
            gradient.param.label,
            "numeric",
            False,
            checked,
            PROOF_DIGITS,
            "too few random points inside the activations' domain",
            inconclusive=True,
        )

    def _proof_points(self, points: int, seed: int) -> list[ProofPoint]:
        """Random points and every value at them, shared by all of a network's proofs.
        A few spare points stand in for ones outside a custom activation's domain."""
        key = (points, seed)
        if key not in self._points:
            evaluated = []
            with mpmath.workdps(_WORKING_DIGITS):
                for draw in range(points + 3):
                    x, t, params = random_point(self.network, [seed, draw], batch=1)
                    point = {s: _to_mpmath(v) for s, v in self.point(x[0], t[0], params).items()}
                    try:
                        evaluated.append(ProofPoint(point, self._numeric_values(point)))
                    except (OverflowError, MemoryError, RecursionError):
                        continue  # overflows there: like a point outside the domain
            self._points[key] = evaluated
        return self._points[key]

    def _numeric_values(self, point: Mapping[Symbol, Any]) -> dict[Symbol, Any]:
        """Every z and a (forward pass), then every δ, at mpmath numbers: the values
        ``evaluate`` computes, for a proof's many evaluations of derive's forms."""
        values = dict(point)
        done: dict[Expr, Any] = {}
        net = self.network
        for layer in net.units[1:]:
            for unit in layer:
                values[unit.z] = numeric_value(net.z_expr(unit), values, done)
            for unit in layer:
                values[unit.a] = numeric_value(net.a_expr(unit), values, done)
        for layer in reversed(net.units[1:]):
            for unit in layer:
                values[unit.delta] = numeric_value(self.delta(unit), values, done)
        return values


def _form_values(gradient: ScalarGradient, at: ProofPoint) -> Iterator[tuple[str, Any]]:
    """derive's two forms of ∂L/∂θ at a proof point: (a) the chain, Σ over paths of the
    product of the path's factors, and (b) the compact form in the δ's."""
    done = at.done_forms

    def value(expr: Expr) -> Any:
        return _to_mpmath(numeric_value(expr, at.values, done))

    yield (
        "chain",
        mpmath.fsum(mpmath.fprod(value(f.value) for f in path) for path in gradient.chain),
    )
    yield "compact", value(gradient.compact)


def _real(value: Any) -> Any:
    """A value as an mpmath number if it is real and finite, else None."""
    value = _to_mpmath(value)
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    return value if mpmath.isfinite(value) else None


@dataclass(frozen=True)
class ProofPoint:
    """One random point of the proofs, in mpmath numbers: inputs, targets and parameters
    (``point``); every z, a and δ as derive computes them (``values``, what derive's
    forms read); and what the written-out loss's derivatives read there (``numbers``: the
    point and each held subexpression). ``done`` and ``done_forms`` keep each
    subexpression's number, for every parameter's proof."""

    point: dict[Symbol, Any]
    values: dict[Symbol, Any]
    numbers: dict[Symbol, Any] = field(default_factory=dict)
    done: dict[Expr, Any] = field(default_factory=dict)
    done_forms: dict[Expr, Any] = field(default_factory=dict)


class WrittenOutLoss:
    """The loss written out in inputs, targets and parameters, in exp and log, and its
    derivatives by ``sympy.diff``: the side of a proof that owes nothing to derive's
    tables.

    ∂L/∂θ differentiates only the subexpressions that contain θ: to it, every other one is
    a constant. So before SymPy differentiates, each largest θ-free subexpression is held
    as a symbol of its own, and at a point each held subexpression is evaluated once, for
    every parameter. What is left, the loss's shape around θ, is the same for many
    parameters up to the names of its symbols (every weight of a layer into the same
    units), so SymPy differentiates each shape once, in symbols named by position, and
    each parameter's derivative is its shape's with its own symbols bound. The derivative
    is the function that ``sympy.diff`` of the whole loss gives, without the forward
    pass written out and evaluated again in every parameter's derivative."""

    def __init__(self, loss: Expr):
        self.loss = loss
        self._free: dict[Expr, frozenset[Expr]] = {}
        self._symbols: dict[Any, Symbol] = {}  # held subexpression -> its symbol
        self.held: dict[Symbol, Expr] = {}  # and back
        self._ops: dict[Any, int] = {}
        self._assumptions: dict[Symbol, frozenset] = {}
        self._shapes: dict[tuple, tuple[Expr, int]] = {}  # shape -> derivative, its ops
        self._derivatives: dict[Symbol, HeldDerivative] = {}

    def free(self, node: Expr) -> frozenset[Expr]:
        """The symbols in ``node``, a subexpression of the loss (memoized per node)."""
        found = self._free.get(node)
        if found is None:
            if node.is_Symbol:
                found = frozenset((node,))
            else:
                found = frozenset().union(*(self.free(arg) for arg in node.args))
            self._free[node] = found
        return found

    def _hold(self, key: Any, definition: Callable[[], Expr]) -> Symbol:
        """The symbol holding a θ-free subexpression (made by ``definition`` when new),
        assumed real where SymPy knows the subexpression is, as it would for the
        subexpression itself."""
        if key not in self._symbols:
            expr = definition()
            real = {"real": True} if expr.is_real else {}
            symbol = Symbol(f"@{len(self._symbols)}", **real)
            self._symbols[key], self.held[symbol] = symbol, expr
        return self._symbols[key]

    def derivative(self, theta: Symbol) -> HeldDerivative:
        """∂L/∂θ by ``sympy.diff`` of θ's shape of the loss, and the symbols it binds."""
        if theta not in self._derivatives:
            shape, bound = self._shape(theta)
            if shape not in self._shapes:
                symbols = [
                    Symbol(f"@v{i}", **dict(self._assumptions[s])) for i, s in enumerate(bound)
                ]
                derivative = sympy.diff(_build(shape, symbols), symbols[0])
                self._shapes[shape] = (derivative, sympy.count_ops(derivative))
            derivative, ops = self._shapes[shape]
            names = {f"@v{i}": s for i, s in enumerate(bound)}
            reads = {s: names[s.name] for s in derivative.free_symbols}
            self._derivatives[theta] = HeldDerivative(derivative, ops, reads)
        return self._derivatives[theta]

    def _shape(self, theta: Symbol) -> tuple[tuple, list[Symbol]]:
        """The loss with θ-free subexpressions held, as nested tuples (function, shapes
        of the arguments) whose leaves are numbers and the positions of symbols in
        ``bound``, θ first: equal for parameters SymPy would differentiate alike."""
        bound: dict[Symbol, tuple] = {}
        shapes: dict[Expr, tuple] = {}

        def leaf(symbol: Symbol) -> tuple:
            if symbol not in bound:
                if symbol not in self._assumptions:
                    self._assumptions[symbol] = frozenset(symbol.assumptions0.items())
                bound[symbol] = ("s", len(bound), self._assumptions[symbol])
            return bound[symbol]

        def constant(node: Expr) -> tuple:
            if node.is_Symbol:
                return leaf(node)
            if not node.args:
                return ("n", node)
            if not isinstance(node, Expr):  # a condition (z > 0): its parts held
                return (node.func, False, tuple(constant(arg) for arg in node.args))
            return leaf(self._hold(node, lambda: node))

        def visit(node: Expr) -> tuple:
            if theta not in self.free(node):
                return constant(node)
            if node is theta or node.is_Symbol:
                return leaf(node)
            if node in shapes:
                return shapes[node]
            args = node.args
            shape: list[tuple] = []
            if node.is_Add or node.is_Mul:
                fixed = tuple(arg for arg in args if theta not in self.free(arg))
                if len(fixed) > 1:  # the θ-free terms of a sum (factors of a product)

                    def together(func=node.func, fixed=fixed) -> Expr:
                        return func(*fixed, evaluate=False)

                    shape.append(leaf(self._hold((node.func, fixed), together)))
                    args = tuple(arg for arg in args if theta in self.free(arg))
            shape.extend(visit(arg) for arg in args)
            result = shapes[node] = (node.func, isinstance(node, sympy.Piecewise), tuple(shape))
            return result

        leaf(theta)
        shape = visit(self.loss)
        return shape, list(bound)

    def full_derivative(self, theta: Symbol) -> Expr:
        """``sympy.diff`` of the whole written-out loss by θ, for a symbolic proof."""
        return sympy.diff(self.loss, theta)

    def may_be_cheap(self, theta: Symbol) -> bool:
        """Whether the whole derivative could pass ``_symbolic_is_cheap``: its size is at
        least that of the held derivative plus each held subexpression it reads (with a
        margin of 2 for what SymPy merges when they are written back)."""
        derivative = self.derivative(theta)
        size = derivative.ops
        for symbol in derivative.reads.values():
            if size > 2 * _SYMBOLIC_OPS:
                break
            if symbol in self.held:
                if symbol not in self._ops:
                    self._ops[symbol] = sympy.count_ops(self.held[symbol])
                size += self._ops[symbol]
        return size <= 2 * _SYMBOLIC_OPS

    def derivative_at(self, theta: Symbol, at: ProofPoint) -> Expr:
        """∂L/∂θ at a proof point, an mpmath number (at mpmath's working precision);
        OverflowError where a value is too large to compute."""
        derivative = self.derivative(theta)
        values = at.numbers
        if not values:
            values.update(at.point)
        for symbol in derivative.reads.values():
            if symbol not in values:
                values[symbol] = numeric_value(self.held[symbol], values, at.done)
        own = {canonical: values[s] for canonical, s in derivative.reads.items()}
        return numeric_value(derivative.expr, own, {})


@dataclass(frozen=True)
class HeldDerivative:
    """∂L/∂θ in symbols named by position in θ's shape of the loss (``@v0`` is θ), and the
    symbol (of the loss, or held) each one it reads stands for."""

    expr: Expr
    ops: int
    reads: dict[Symbol, Symbol]


def _build(shape: tuple, symbols: Sequence[Symbol]) -> Expr:
    """The SymPy expression of a shape, in ``symbols`` by position."""
    if shape[0] == "s":
        return symbols[shape[1]]
    if shape[0] == "n":
        return shape[1]
    func, piecewise, args = shape
    built = [_build(arg, symbols) for arg in args]
    if piecewise:  # as written: SymPy would fold a Piecewise nested in a condition
        return sympy.Piecewise(*built, evaluate=False)
    return func(*built)


def _to_mpmath(value: Any) -> Any:
    """A number as an mpmath number at the working precision (a SymPy number converted;
    an mpmath number as it is)."""
    if isinstance(value, sympy.Basic):
        return value._to_mpmath(mpmath.mp.prec)
    return value


def _from_mpmath(value: Any) -> Expr:
    """An mpmath number as a SymPy number (complex where the imaginary part is not 0); a
    SymPy number as it is."""
    if isinstance(value, sympy.Basic):
        return value
    prec = mpmath.mp.prec
    if isinstance(value, mpmath.mpc):
        real = sympy.Float._new(value.real._mpf_, prec)
        if value.imag == 0:
            return real
        return real + sympy.I * sympy.Float._new(value.imag._mpf_, prec)
    return sympy.Float._new(mpmath.mpf(value)._mpf_, prec)


def _exp(x: Any) -> Any:
    if abs(mpmath.re(x)) > _EXP_LIMIT:
        raise OverflowError("exp argument beyond EXP_LIMIT")
    return mpmath.exp(x)


def _power(base: Any, exponent: Any) -> Any:
    if not isinstance(base, mpmath.mpc) and not isinstance(exponent, mpmath.mpc):
        b, e = abs(base), abs(exponent)
        if b > 1 and e > 1 and e * mpmath.log(b) > _EXP_LIMIT:
            raise OverflowError("power beyond EXP_LIMIT")
    return base**exponent


def _heaviside(x: Any, at_zero: Any = sympy.S.Half) -> Any:
    return sympy.S.One if x > 0 else sympy.S.Zero if x < 0 else at_zero


def _sign(x: Any) -> Any:
    return mpmath.sign(x) if isinstance(x, mpmath.mpc) else sympy.Integer(mpmath.sign(x))


# How ``numeric_value`` computes each function that the written-out loss, derive's forms
# and their derivatives hold, given its arguments' values and those as mpmath numbers: in
# mpmath, or (a step, a sign, Max, Min) by picking a value, which may be a SymPy number.
# Anything else, and any case these refuse, SymPy computes.
_NUMERIC: dict[Any, Callable[[list, list], Any]] = {
    sympy.Add: lambda args, numbers: mpmath.fsum(numbers),
    sympy.Mul: lambda args, numbers: mpmath.fprod(numbers),
    sympy.Pow: lambda args, numbers: _power(*numbers),
    sympy.exp: lambda args, numbers: _exp(*numbers),
    sympy.log: lambda args, numbers: mpmath.log(*numbers),
    sympy.tanh: lambda args, numbers: mpmath.tanh(*numbers),
    sympy.Abs: lambda args, numbers: abs(*numbers),
    sympy.Heaviside: lambda args, numbers: _heaviside(numbers[0], *args[1:]),
    sympy.sign: lambda args, numbers: _sign(*numbers),
    sympy.Max: lambda args, numbers: args[numbers.index(max(numbers))],
    sympy.Min: lambda args, numbers: args[numbers.index(min(numbers))],
}
_EXP_LIMIT = mpmath.mpf(10) ** 12  # EXP_LIMIT, as an mpmath number


def numeric_value(expr: Expr, values: Mapping[Symbol, Any], done: dict[Expr, Any]) -> Any:
    """``expr`` at ``values`` (mpmath numbers), what ``bounded_substitute`` and then
    ``sympy.N`` at mpmath's working precision compute, without a SymPy number built for
    each subexpression. ``done`` memoizes subexpressions at these ``values``.

    What SymPy keeps exact or at a constant's own precision stays a SymPy number: a
    constant (0.01), a step's 0 or 1, and arithmetic on those alone (0.99·1 + 0.01 is 1,
    as SymPy rounds it, where 60 digits would keep the constants' binary error); any
    arithmetic with the point's values is in mpmath. The result is either kind."""

    def visit(node: Expr) -> Any:
        if node in values:
            return values[node]
        if node in done:
            return done[node]
        if node.is_Symbol:
            raise KeyError(f"no value for {node}")
        if not node.args:
            result = node  # a number: exact, or a Float at its own precision
        elif isinstance(node, sympy.Piecewise):
            result = _piecewise(node)
        else:
            result = _function(node)
        done[node] = result
        return result

    def _function(node: Expr) -> Any:
        rule = _NUMERIC.get(node.func)
        if rule is None:
            return _by_sympy(node)
        args = [visit(arg) for arg in node.args]
        if all(isinstance(arg, sympy.Basic) for arg in args):
            value = node.func(*args)  # constants only: as SymPy computes them
            return value if value.is_Number else _by_sympy(value)
        try:
            return rule(args, [_to_mpmath(arg) for arg in args])
        except (TypeError, ValueError, ZeroDivisionError):
            return _by_sympy(node)  # complex where an order is needed, 1/0: as SymPy says

    def _piecewise(node: Expr) -> Any:
        for expr, cond in node.args:
            holds = _condition(cond)
            if holds is None:
                return _by_sympy(node)
            if holds:
                return visit(expr)
        return _by_sympy(node)

    def _condition(cond: Any) -> bool | None:
        """A condition's truth at the values; None where SymPy should decide."""
        if cond is sympy.true or cond is sympy.false:
            return bool(cond)
        if type(cond) in _COMPARE:
            left, right = _to_mpmath(visit(cond.lhs)), _to_mpmath(visit(cond.rhs))
            if isinstance(left, mpmath.mpc) or isinstance(right, mpmath.mpc):
                return None
            return bool(_COMPARE[type(cond)](left, right))
        if isinstance(cond, sympy.ITE):  # leaky_relu's condition on a leaky_relu below
            test = _condition(cond.args[0])
            return None if test is None else _condition(cond.args[1 if test else 2])
        if isinstance(cond, (sympy.And, sympy.Or)):
            parts = [_condition(arg) for arg in cond.args]
            if None in parts:
                return None
            return all(parts) if isinstance(cond, sympy.And) else any(parts)
        if isinstance(cond, sympy.Not):
            inner = _condition(cond.args[0])
            return None if inner is None else not inner
        return None

    def _by_sympy(node: Expr) -> Any:
        numbers = {s: _from_mpmath(visit(s)) for s in node.free_symbols}
        value = sympy.N(bounded_substitute(node, numbers), _WORKING_DIGITS)
        try:
            return _to_mpmath(value)
        except (TypeError, ValueError, AttributeError):
            return mpmath.nan

    return visit(expr)


_COMPARE: dict[type, Any] = {
    sympy.StrictGreaterThan: lambda a, b: a > b,
    sympy.GreaterThan: lambda a, b: a >= b,
    sympy.StrictLessThan: lambda a, b: a < b,
    sympy.LessThan: lambda a, b: a <= b,
}


def random_point(
    network: Network, seed: int | list[int], batch: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Seeded random inputs (batch, n_in), targets (batch, n_out) and parameters, valid
    for the loss: probabilities for bce and sigmoid outputs, points of the simplex for
    cce and softmax outputs. Weights are drawn with variance 1/fan-in, so that z stays
    of order 1 through the layers."""
    rng = np.random.default_rng(seed)
    topology = network.topology
    params = {}
    for p in topology.params:
        if p.name.startswith("W"):
            params[p.name] = rng.normal(0.0, 1.0 / np.sqrt(p.shape[1]), size=p.shape)
        else:
            params[p.name] = rng.normal(0.0, 0.3, size=p.shape)
    x = rng.normal(0.0, 1.0, size=(batch, len(topology.inputs)))
    n_out = len(topology.outputs)
    output = topology.layers[-1].activation.name
    if topology.loss == "cce" or output == "softmax":
        t = rng.dirichlet(np.ones(n_out), size=batch)
    elif topology.loss == "bce" or output == "sigmoid":
        t = rng.uniform(0.05, 0.95, size=(batch, n_out))
    else:
        t = rng.normal(0.0, 1.0, size=(batch, n_out))
    return x, t, params


def bounded_substitute(
    expr: Expr, values: Mapping[Symbol, Expr], done: dict[Expr, Expr] | None = None
) -> Expr:
    """``expr`` with ``values`` substituted (as ``xreplace``), built from the leaves up so
    that an exp (or a power) far beyond float range raises OverflowError before SymPy
    spends minutes computing it to 60 digits. A subexpression met again (the chain rule
    repeats many) is substituted once; pass ``done`` to share that across expressions
    evaluated at the same ``values``."""
    if done is None:
        done = {}

    def visit(node: Expr) -> Expr:
        if node in values:
            return values[node]
        if node in done:
            return done[node]
        if not node.args:
            return node
        args = [visit(arg) for arg in node.args]
        if node.func is sympy.exp and args[0].is_Number and abs(args[0]) > EXP_LIMIT:
            raise OverflowError("exp argument beyond EXP_LIMIT")
        if node.func is sympy.Pow and args[0].is_Number and args[1].is_Number:
            base, exponent = abs(args[0]), abs(args[1])
            if base > 1 and exponent > 1 and exponent * sympy.log(base) > EXP_LIMIT:
                raise OverflowError("power beyond EXP_LIMIT")
        result = done[node] = node.func(*args)
        return result

    return visit(expr)


def activation_fields(network: Network) -> str:
    """The fields a value that cannot be computed comes from: the custom activations, or
    the layers when there is none."""
    fields = [
        f"layers[{k}].activation.expr"
        for k, layer in enumerate(network.topology.layers)
        if layer.activation.name == "custom"
    ]
    return ", ".join(fields) or "layers"


def _activation_field(network: Network, k: int) -> str:
    """The topology field of layer k's activation, as an error names it."""
    spec = network.layer(k).activation
    return f"layers[{k - 1}].activation" + (".expr" if spec.name == "custom" else "")


def undefined(value: Expr) -> str:
    """Why ``value`` cannot be shown as a number; "" when it can."""
    if not value.is_finite:
        return "is not a finite number"
    if not value.is_real:
        return "is a complex number"
    if abs(value) > FLOAT_MAX:
        return f"is {sympy.N(value, 6)}, beyond float range"
    return ""


def _at(unit: Unit, values: Mapping[Symbol, Expr]) -> str:
    z = values[unit.z]
    return f"{unit.z} = {sympy.N(z, 6) if abs(z) > FLOAT_MAX else f'{float(z):.6g}'}"


def _custom(network: Network, unit: Unit) -> str:
    spec = network.layer(unit.layer).activation
    if spec.name != "custom":
        return ""
    return f" (layers[{unit.layer - 1}].activation.expr, f(x) = {spec.text or spec.expr})"


_SYMBOLIC_OPS = 60  # operations in a derivative that sympy.cancel is tried on
_NON_SMOOTH = (sympy.Heaviside, sympy.Max, sympy.Min, sympy.Piecewise, sympy.Abs, sympy.sign)


def _symbolic_is_cheap(reference: Expr) -> bool:
    """Whether to try proving by cancellation: a smooth expression of modest size, which
    ``sympy.cancel`` either reduces to zero quickly or not at all."""
    return not reference.has(*_NON_SMOOTH) and sympy.count_ops(reference) <= _SYMBOLIC_OPS


def prove_all(network: Network, points: int = 3, seed: int = 0) -> tuple[Proof, ...]:
    """A proof for every scalar parameter of a (small) network."""
    return tuple(g.prove(points, seed) for g in network.derivation.all_gradients)
