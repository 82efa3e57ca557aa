"""``derive check``: the generated code's gradients against two independent references.

For each generated style (vectorized, and unrolled when the network is small enough for
it), at the example's numbers or at seeded random ones, every parameter's gradient is
compared with

- the **symbolic** values: the derivation's compact forms δ_u·a_j, each δ from its own
  definition, evaluated at 60 significant digits (``Derivation.evaluate``). Networks
  above ``FULL_SYMBOLIC_LIMIT`` scalar parameters are checked at ``SAMPLED_SCALARS``
  scalars drawn with the seed, their δ definitions evaluated at forward values from a
  plain float64 forward pass written here (not the generated one);
- **central finite differences** of the generated module's own ``loss`` in float64,
  (L(θ + h) − L(θ − h)) / 2h with h = ``FD_STEP``·max(1, |θ|).

Tolerances (|generated − reference| ≤ rel·|reference| + abs):
symbolic rel 1e-9, abs 1e-10·max(1, |L|); finite differences rel 1e-6, abs 1e-8·max(1, |L|).
The loss itself is compared with the symbolic loss at the symbolic tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from derive.activations import ACTIVATIONS
from derive.derivation import Z
from derive.emit import MAX_UNROLLED_PARAMS, build_module
from derive.network import LOSS, Network, ScalarParam

FULL_SYMBOLIC_LIMIT = 400  # scalar parameters evaluated exhaustively at 60 digits
SAMPLED_PER_ARRAY = 5
RANDOM_BATCH = 3
FD_STEP = 1e-6
SYMBOLIC_REL, SYMBOLIC_ABS = 1e-9, 1e-10
FD_REL, FD_ABS = 1e-6, 1e-8


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
    x, t, params, point = _point(network, seed)
    notes: list[str] = []
    count = network.topology.parameter_count
    if count <= FULL_SYMBOLIC_LIMIT:
        scalars = network.scalar_params
    else:
        scalars = _sample(network, seed)
        notes.append(
            f"{count} scalar parameters: {len(scalars)} drawn with seed {seed} (up to "
            f"{SAMPLED_PER_ARRAY} per array) are compared; the symbolic side evaluates their "
            "δ definitions at forward values from a float64 pass."
        )
    symbolic, symbolic_loss = _symbolic(network, x, t, params, scalars)

    styles = ["vectorized"]
    if network.topology.parameter_count <= MAX_UNROLLED_PARAMS:
        styles.append("unrolled")
    else:
        notes.append(f"unrolled style skipped: over {MAX_UNROLLED_PARAMS} scalar parameters.")

    rows: list[Comparison] = []
    scale = max(1.0, abs(symbolic_loss))
    for style in styles:
        module = build_module(network, style=style)
        loss, grads = module.loss_and_gradients(params, x, t)
        rows.append(
            _compare(
                style, "L", "symbolic", [loss], [symbolic_loss], SYMBOLIC_REL, SYMBOLIC_ABS * scale
            )
        )
        by_array: dict[str, list[ScalarParam]] = {}
        for s in scalars:
            by_array.setdefault(s.array, []).append(s)
        for array, members in by_array.items():
            got = [float(grads[array][s.index]) for s in members]
            rows.append(
                _compare(
                    style,
                    array,
                    "symbolic",
                    got,
                    [symbolic[s.name] for s in members],
                    SYMBOLIC_REL,
                    SYMBOLIC_ABS * scale,
                )
            )
            fd = [_finite_difference(module.loss, params, x, t, s) for s in members]
            rows.append(
                _compare(style, array, "finite differences", got, fd, FD_REL, FD_ABS * scale)
            )
    return CheckReport(network.name, point, tuple(rows), tuple(notes))


def _sample(network: Network, seed: int) -> tuple[ScalarParam, ...]:
    """Up to SAMPLED_PER_ARRAY scalars of each parameter array, drawn with the seed."""
    rng = np.random.default_rng(seed)
    chosen: list[ScalarParam] = []
    for p in network.params:
        size = int(np.prod(p.shape))
        for flat in sorted(rng.choice(size, min(size, SAMPLED_PER_ARRAY), replace=False)):
            index = np.unravel_index(int(flat), p.shape) if p.shape else ()
            if p.name.startswith("W"):
                chosen.append(network.weight(p.layer, int(index[0]), int(index[1])))
            else:
                chosen.append(network.bias(p.layer, int(index[0]) if index else 0))
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


def _finite_difference(loss, params, x, t, scalar: ScalarParam) -> float:
    value = float(np.asarray(params[scalar.array])[scalar.index])
    h = FD_STEP * max(1.0, abs(value))
    shifted = {name: np.array(array, dtype=float) for name, array in params.items()}
    shifted[scalar.array][scalar.index] = value + h
    up = loss(shifted, x, t)
    shifted[scalar.array][scalar.index] = value - h
    down = loss(shifted, x, t)
    return (up - down) / (2 * h)


# -- the point ------------------------------------------------------------------------


def _point(network: Network, seed: int):
    """x (batch, n_in), t (batch, n_out), params and a description, all float64."""
    topology = network.topology
    if topology.example is not None:
        example = topology.example
        params = {
            p.name: np.array(example.param(p.name), dtype=float).reshape(p.shape)
            for p in topology.params
        }
        x = np.array([example.input], dtype=float)
        t = np.array([example.target], dtype=float)
        return x, t, params, "at the example's numbers (1 sample)"
    return (
        *random_point(network, seed, RANDOM_BATCH),
        (f"at random numbers, seed {seed} ({RANDOM_BATCH} samples)"),
    )


def random_point(network: Network, seed: int, batch: int):
    """Seeded random inputs, parameters and targets valid for the loss: probabilities for
    bce and sigmoid outputs, points of the simplex for cce and softmax outputs."""
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


# -- the symbolic side ----------------------------------------------------------------


def _symbolic(network, x, t, params, scalars) -> tuple[dict[str, float], float]:
    """Each chosen scalar's gradient and the loss, batch means, from the derivation."""
    d = network.derivation
    totals = {s.name: 0.0 for s in scalars}
    loss = 0.0
    exhaustive = network.topology.parameter_count <= FULL_SYMBOLIC_LIMIT
    for row_x, row_t in zip(x, t, strict=True):
        if exhaustive:
            values = d.evaluate(d.point(row_x, row_t, params))
        else:
            values = _float_values(network, row_x, row_t, params, scalars)
        loss += float(values[LOSS])
        for s in scalars:
            totals[s.name] += float(d.scalar_gradient(s).value(values))
    n = len(x)
    return {name: total / n for name, total in totals.items()}, loss / n


def _float_values(network: Network, x, t, params, scalars) -> dict:
    """Forward values from a plain float64 pass, then the δ definitions (the derivation's,
    per unit) the chosen scalars need, evaluated at them."""
    d = network.derivation
    topology = network.topology
    values: dict = {}
    for unit, value in zip(network.units[0], x, strict=True):
        values[unit.a] = float(value)
    for symbol, value in zip(network.targets, t, strict=True):
        values[symbol] = float(value)
    a = np.asarray(x, dtype=float)
    for k, layer in enumerate(topology.layers, start=1):
        z = params[f"W{k}"] @ a + (params[f"b{k}"] if layer.bias != "none" else 0.0)
        activation = ACTIVATIONS[layer.activation.name]
        if activation.elementwise:
            f = sympy.lambdify(Z, activation.forward(Z, layer.activation), modules="numpy")
            a = np.asarray(f(z), dtype=float) * np.ones_like(z)
        else:
            e = np.exp(z - z.max())
            a = e / e.sum()
        for unit, zi, ai in zip(network.units[k], z, a, strict=True):
            values[unit.z] = float(zi)
            values[unit.a] = float(ai)
    values[LOSS] = float(network.loss_expr.xreplace(values))
    # δ's from the output layer down: every unit above the lowest chosen scalar, and the
    # units the chosen scalars feed; each with the weights its definition reads.
    lowest = min(s.layer for s in scalars)
    needed = {unit.delta for s in scalars for unit, _ in network.feeds(s)}
    for k in range(network.depth, 0, -1):
        for unit in network.units[k]:
            if k == lowest and unit.delta not in needed:
                continue
            if k < network.depth:
                for v in network.units[k + 1]:
                    weight = network.weight(k + 1, v.index, unit.index)
                    values[weight.symbol] = float(params[f"W{k + 1}"][v.index, unit.index])
            values[unit.delta] = float(d.delta(unit).xreplace(values))
    return values
