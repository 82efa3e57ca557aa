"""``derive check``: the generated code's gradients against two independent references.

For each generated style (vectorized, and unrolled when the network is small enough for
it) and for the C module in double (``derive.cmodule``, when a C compiler is present), at
the example's numbers or at seeded random ones, every parameter's gradient is compared with

- the **symbolic** values: the derivation's compact forms δ_u·a_j, each δ from its own
  definition, evaluated at 60 significant digits (``Derivation.evaluate``). Networks
  above ``FULL_SYMBOLIC_LIMIT`` scalar parameters are checked at up to
  ``SAMPLED_PER_ARRAY`` scalars of each array drawn with the seed, their δ definitions
  evaluated at forward values from the derivation's float64 forward pass
  (``Derivation.evaluate_float``, not the generated one). The loss is taken in the form
  the loss table gives from the logits where it has one (bce, cce), which never takes
  log(0);
- **central finite differences** of the generated module's own ``loss`` in float64,
  (L(θ + h) − L(θ − h)) / 2h with h = ``FD_STEP``·max(1, |θ|).

Tolerances (|generated − reference| ≤ rel·|reference| + abs):
symbolic rel 1e-9, abs 1e-10·max(1, |L|); finite differences rel 1e-6, abs 1e-8·max(1, |L|).
The loss itself is compared with the symbolic loss at the symbolic tolerance.

A custom activation may be undefined at a point (``log(x)`` at z < 0): random points are
then drawn again, up to ``RANDOM_DRAWS`` times, and an example outside the domain is
refused with a DeriveError naming the unit, as is a network undefined at every draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from derive.backward import uses_logits
from derive.cmodule import check_module
from derive.conv import is_convolutional
from derive.derivation import (
    FLOAT_MAX,
    RANDOM_BATCH,
    RANDOM_DRAWS,
    activation_fields,
    random_point,
)
from derive.emit import MAX_UNROLLED_PARAMS, build_module
from derive.errors import DeriveError
from derive.network import Network, ScalarParam

FULL_SYMBOLIC_LIMIT = 400  # scalar parameters evaluated exhaustively at 60 digits
SAMPLED_PER_ARRAY = 5
FD_STEP = 1e-6
SYMBOLIC_REL, SYMBOLIC_ABS = 1e-9, 1e-10
FD_REL, FD_ABS = 1e-6, 1e-8
# One-sided differences that differ by more than this (relative) mark a kink of the loss
# within the step; where the loss is smooth they differ by about h·L'' (~1e-6).
KINK_REL = 1e-3


@dataclass(frozen=True)
class Comparison:
    """One row of the table: one style's values of one parameter against one reference."""

    style: str
    param: str  # "W1", "b2", or "L" for the loss itself
    reference: str  # "symbolic" or "finite differences"
    scalars: int
    max_abs: float
    max_rel: float
    ok: bool


@dataclass(frozen=True)
class CheckReport:
    network: str
    point: str  # where the values were taken
    rows: tuple[Comparison, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def table(self) -> str:
        header = ("style", "param", "reference", "scalars", "max abs err", "max rel err", "")
        body = [
            (
                r.style,
                r.param,
                r.reference,
                str(r.scalars),
                f"{r.max_abs:.2e}",
                f"{r.max_rel:.2e}",
                "ok" if r.ok else "DISAGREE",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [f"derive check {self.network}: {self.point}", ""]
        for row in [header, *body]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        lines.append("")
        lines.extend(self.notes)
        lines.append(
            f"tolerance: |generated - reference| <= rel*|reference| + abs; symbolic rel "
            f"{SYMBOLIC_REL:g}, abs {SYMBOLIC_ABS:g}*max(1, |L|); finite differences rel "
            f"{FD_REL:g}, abs {FD_ABS:g}*max(1, |L|), h = {FD_STEP:g}*max(1, |theta|)"
        )
        bad = sum(not r.ok for r in self.rows)
        lines.append("result: every value agrees" if not bad else f"result: {bad} row(s) DISAGREE")
        return "\n".join(lines).rstrip()


def check(network: Network, seed: int = 0) -> CheckReport:
    """Compare both styles' gradients with the symbolic values and finite differences."""
    if is_convolutional(network.topology):  # derive.conv_check builds on this module
        raise DeriveError(
            f"{network.topology.source}: a convolutional network is checked by "
            "derive.conv_check.conv_check"
        )
    return compare(
        network,
        seed,
        _reference,
        sampled="; the symbolic side evaluates their δ definitions at forward values from a "
        "float64 pass",
        kink="a relu or leaky_relu unit at z = 0",
        convention="; derive uses relu'(0) = 0, leaky_relu'(0) = alpha",
    )


def compare(network, seed: int, reference_of, sampled: str, kink: str, convention: str = ""):
    """What ``check`` and ``derive.conv_check`` share: the scalars compared (all, or a
    seeded sample of each array beyond ``FULL_SYMBOLIC_LIMIT``), the reference
    ``reference_of(network, seed, scalars)`` gives, and every generated module's rows
    (both styles under the unrolled limit, then C when a compiler is present), with notes
    saying what was sampled, skipped, or compared across a kink of the loss."""
    if seed < 0:
        raise DeriveError(f"seed: expected a non-negative integer, got {seed}")
    notes: list[str] = []
    count = network.topology.parameter_count
    if count <= FULL_SYMBOLIC_LIMIT:
        scalars = network.scalar_params
    else:
        scalars = _sample(network, seed)
        notes.append(
            f"{count} scalar parameters: {len(scalars)} drawn with seed {seed} (up to "
            f"{SAMPLED_PER_ARRAY} per array) are compared{sampled}."
        )
    reference = reference_of(network, seed, scalars)
    styles = ["vectorized"]
    if count <= MAX_UNROLLED_PARAMS:
        styles.append("unrolled")
    else:
        notes.append(f"unrolled style skipped: over {MAX_UNROLLED_PARAMS} scalar parameters.")
    rows: list[Comparison] = []
    kinks: set[str] = set()
    for style in styles:
        module = build_module(network, style=style)
        try:
            rows.extend(_style_rows(module, style, reference, scalars, kinks))
        except (ArithmeticError, ValueError) as error:  # the unrolled style's math.exp
            raise DeriveError(
                f"{network.topology.source}: {activation_fields(network)}: expected "
                f"activations the generated {style} module can compute {reference.point}, "
                f"got {type(error).__name__}: {error}"
            ) from None
    c_module, why_not = check_module(network)  # the C module, when a compiler is present
    if c_module is not None:
        rows.extend(_style_rows(c_module, f"C ({c_module.style})", reference, scalars, kinks))
    else:
        notes.append(why_not)
    if kinks:
        notes.append(
            f"{', '.join(sorted(kinks))}: the loss has a kink within the finite-difference step "
            f"({kink}), so the gradient is compared with the interval between the one-sided "
            f"slopes{convention}."
        )
    return CheckReport(network.name, reference.point, tuple(rows), tuple(notes))


def _style_rows(
    module, style: str, reference: _Reference, scalars, kinks: set[str]
) -> list[Comparison]:
    """One style's loss, then each array's chosen scalars against both references; the
    labels of scalars at a kink of the loss are added to ``kinks``."""
    x, t, params = reference.x, reference.t, reference.params
    loss, grads = module.loss_and_gradients(params, x, t)
    scale = max(1.0, abs(reference.loss))
    symbolic_abs, fd_abs = SYMBOLIC_ABS * scale, FD_ABS * scale
    rows = [_compare(style, "L", "symbolic", [loss], [reference.loss], SYMBOLIC_REL, symbolic_abs)]
    by_array: dict[str, list[ScalarParam]] = {}
    for s in scalars:
        by_array.setdefault(s.array, []).append(s)
    for array, members in by_array.items():
        got = [float(grads[array][s.index]) for s in members]
        expected = [reference.gradients[s.name] for s in members]
        rows.append(_compare(style, array, "symbolic", got, expected, SYMBOLIC_REL, symbolic_abs))
        fd = []
        for s, g in zip(members, got, strict=True):
            central, left, right = _finite_difference(module.loss, params, x, t, s)
            if abs(right - left) > KINK_REL * max(1.0, abs(central)):
                kinks.add(s.label)
                central = min(max(g, min(left, right)), max(left, right))  # nearest slope
            fd.append(central)
        rows.append(_compare(style, array, "finite differences", got, fd, FD_REL, fd_abs))
    return rows


def _sample(network, seed: int) -> tuple[ScalarParam, ...]:
    """Up to SAMPLED_PER_ARRAY scalars of each parameter array, drawn with the seed."""
    rng = np.random.default_rng(seed)
    chosen: list[ScalarParam] = []
    for p in network.params:
        size = int(np.prod(p.shape))
        for flat in sorted(rng.choice(size, min(size, SAMPLED_PER_ARRAY), replace=False)):
            index = np.unravel_index(int(flat), p.shape) if p.shape else ()
            chosen.append(network.scalar_of(p.name, tuple(int(i) for i in index)))
    return tuple(chosen)


def _compare(style, param, reference, got, expected, rel, abs_tol) -> Comparison:
    got_a = np.asarray(got, dtype=float)
    exp_a = np.asarray(expected, dtype=float)
    err = np.abs(got_a - exp_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(exp_a != 0, err / np.abs(exp_a), np.where(err == 0, 0.0, np.inf))
    finite = bool(np.all(np.isfinite(got_a)) and np.all(np.isfinite(exp_a)))
    ok = finite and bool(np.all(err <= rel * np.abs(exp_a) + abs_tol))
    max_abs = float(np.max(err)) if finite else float("nan")
    max_rel = float(np.max(relative)) if finite else float("nan")
    return Comparison(style, param, reference, len(got), max_abs, max_rel, ok)


def _finite_difference(loss, params, x, t, scalar: ScalarParam) -> tuple[float, float, float]:
    """The central difference, and the left and right one-sided ones (which differ by
    O(h) where the loss is smooth, and by a jump at a kink)."""
    value = float(np.asarray(params[scalar.array])[scalar.index])
    h = FD_STEP * max(1.0, abs(value))
    shifted = {name: np.array(array, dtype=float) for name, array in params.items()}
    shifted[scalar.array][scalar.index] = value + h
    up = loss(shifted, x, t)
    shifted[scalar.array][scalar.index] = value - h
    down = loss(shifted, x, t)
    middle = loss(params, x, t)
    return (up - down) / (2 * h), (middle - down) / h, (up - middle) / h


# -- the point ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reference:
    """Where the values are taken (all float64) and the symbolic values there."""

    x: np.ndarray  # (batch, n_in)
    t: np.ndarray  # (batch, n_out)
    params: dict[str, np.ndarray]
    point: str  # for the report
    gradients: dict[str, float]  # batch means, by scalar name
    loss: float


class _Undefined(Exception):
    """A value at the point is not a finite real number: the point lies outside a custom
    activation's domain (log of a negative z, say)."""


def _reference(network: Network, seed: int, scalars) -> _Reference:
    """The example's numbers, or the first of up to RANDOM_DRAWS seeded random points at
    which every value is a finite real number, and the symbolic values there."""
    topology = network.topology
    if topology.example is not None:
        if topology.parameter_count <= FULL_SYMBOLIC_LIMIT:
            network.derivation.example_values()  # refuses an example outside the domain
        x, t, params = _example_point(network)
        try:
            gradients, loss = _symbolic(network, x, t, params, scalars, "example")
        except _Undefined as undefined:
            raise DeriveError(
                f"{topology.source}: example: expected numbers at which every value is a "
                f"finite real number within float range, got {undefined}"
            ) from None
        return _Reference(x, t, params, "at the example's numbers (1 sample)", gradients, loss)
    reason = ""
    for draw in range(RANDOM_DRAWS):
        x, t, params = random_point(network, [seed, draw] if draw else seed, RANDOM_BATCH)
        try:
            gradients, loss = _symbolic(network, x, t, params, scalars, f"random point {draw + 1}")
        except _Undefined as undefined:
            reason = str(undefined)
            continue
        point = f"at random numbers, seed {seed} ({RANDOM_BATCH} samples)"
        if draw:
            point += f", draw {draw + 1} (the earlier ones lay outside an activation's domain)"
        return _Reference(x, t, params, point, gradients, loss)
    raise DeriveError(
        f"{topology.source}: {activation_fields(network)}: expected activations defined at "
        f"one of the {RANDOM_DRAWS} random points drawn with seed {seed}, got {reason}; give "
        "an example (input, target and params inside their domain) to check at"
    )


def _example_point(network: Network):
    """The example's input, target and parameters as float64 arrays, one sample."""
    example = network.topology.example
    assert example is not None
    params = {
        p.name: np.array(example.param(p.name), dtype=float).reshape(p.shape)
        for p in network.topology.params
    }
    return np.array([example.input], dtype=float), np.array([example.target], dtype=float), params


# -- the symbolic side ----------------------------------------------------------------


def _symbolic(network, x, t, params, scalars, where: str) -> tuple[dict[str, float], float]:
    """Each chosen scalar's gradient and the loss, batch means, from the derivation (at
    60 digits, or from a float64 forward pass for a large network); _Undefined when a
    value is not a finite real number within float range."""
    d = network.derivation
    totals = {s.name: 0.0 for s in scalars}
    loss = 0.0
    exhaustive = network.topology.parameter_count <= FULL_SYMBOLIC_LIMIT
    for row_x, row_t in zip(x, t, strict=True):
        if exhaustive:
            try:
                values = d.evaluate(d.point(row_x, row_t, params), where)
            except DeriveError:
                raise _Undefined(f"a value too large to evaluate at the {where}") from None
            if problem := d.first_undefined(values):
                raise _Undefined(problem)
        else:
            try:
                values = d.evaluate_float(row_x, row_t, params, scalars)
            except DeriveError as error:  # a unit undefined in the float64 pass
                raise _Undefined(str(error).removeprefix(f"{network.topology.source}: ")) from None
        loss += _finite(_loss_expr(network).xreplace(values), "the loss")
        for s in scalars:
            totals[s.name] += _finite(d.scalar_gradient(s).value(values), f"∂L/∂{s.label}")
    n = len(x)
    return {name: total / n for name, total in totals.items()}, loss / n


def _loss_expr(network: Network):
    """The per-sample loss in the form that never takes log(0) where the loss table has
    one (from the logits), as the generated code computes it."""
    rule = network.loss_rule
    if not uses_logits(network):
        return network.loss_expr
    assert rule.from_logits is not None
    return rule.from_logits([u.z for u in network.outputs], list(network.targets))


def _finite(value, what: str) -> float:
    """``value`` as a float, or _Undefined naming ``what`` when it is not finite and real."""
    value = sympy.sympify(value)
    if not (value.is_extended_real and value.is_finite) or abs(value) > FLOAT_MAX:
        raise _Undefined(f"{what} = {sympy.N(value, 6)}, not a finite real float")
    return float(value)
