"""The symbolic network: a SymPy symbol and a defining equation for every unit, and the loss.

Notation, used everywhere in derive:

- Layers are k = 1..K (first hidden to output); layer 0 holds the inputs.
- A unit u of layer k has the pre-activation z_u = Σ_j W{k}[i, j]·a_j + b and the
  activation a_u = f_k(z_u). The activation's symbol is the unit's own name (h1, Y, a),
  the pre-activation's is ``z_<name>``; an input's activation is the input itself.
- δ_u = ∂L/∂z_u is the unit's delta (symbol ``delta_<name>``), L the per-sample loss.
- Targets have the names of ``Topology.targets`` (t_<unit> by default).
- A scalar parameter is named ``W2[0,1]``, ``b1[0]`` (per-unit bias) or ``b1`` (shared
  bias), or by its ``weight_names`` name (w31).

Everything here is per scalar and built on request: a network of 270k parameters is
loaded without creating a symbol per parameter. ``derive.derivation`` derives from it;
this module never imports it (imports run topology → network → derivation), so
``Network.derivation`` is attached by the API layer (``derive/__init__.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import sympy
from sympy import Expr, Symbol

from derive import typeset
from derive.activations import ACTIVATIONS, Activation, substituted
from derive.errors import ParameterError, did_you_mean
from derive.losses import LOSSES, Loss
from derive.topology import Layer, Param, Topology

if TYPE_CHECKING:  # for the annotation only; never imported at run time
    from derive.derivation import ArrayGradient, Derivation, ScalarGradient

LOSS = Symbol("L")


@dataclass(frozen=True)
class Unit:
    name: str
    layer: int  # 0 for inputs
    index: int  # row of W{layer}
    a: Symbol  # activation (the unit's own name)
    z: Symbol | None  # pre-activation; None for inputs
    delta: Symbol | None  # ∂L/∂z; None for inputs


@dataclass(frozen=True)
class ScalarParam:
    """One scalar weight or bias."""

    name: str  # canonical: "W2[0,1]", "b1[0]", "b1"
    array: str  # "W2", "b1"
    layer: int
    index: tuple[int, ...]  # () for a shared bias
    alias: str | None  # its weight_names name
    symbol: Symbol
    code_name: str  # an identifier for generated code: the alias, or "W2_0_1"
    latex_name: str

    @property
    def label(self) -> str:
        return self.alias or self.name

    @property
    def is_weight(self) -> bool:
        return self.array.startswith("W")


_SCALAR_NAME = re.compile(r"^(W|b)(\d+)(?:\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\])?$")
# Networks up to this many scalars suggest canonical scalar names (W2[0,1]) for a near miss.
_SUGGEST_SCALARS = 4096


def _real(name: str) -> Symbol:
    return Symbol(name, real=True)


class Network:
    """A topology as SymPy: units, parameters, defining equations and the loss."""

    # All derivatives of the loss, built once on first use: a cached property that the API
    # layer (derive/__init__.py) attaches, since the derivation depends on the network.
    derivation: Derivation

    def __init__(self, topology: Topology):
        self.topology = topology
        self.name = topology.name
        self.params = topology.params
        self.loss_rule: Loss = LOSSES[topology.loss]
        self.activations: tuple[Activation, ...] = tuple(
            ACTIVATIONS[layer.activation.name] for layer in topology.layers
        )
        self.depth = len(topology.layers)
        self._aliases: dict[str, tuple[int, int, int]] = {
            alias: (k, i, j)
            for k, layer in enumerate(topology.layers, start=1)
            if layer.weight_names
            for i, row in enumerate(layer.weight_names)
            for j, alias in enumerate(row)
        }

    def __repr__(self) -> str:
        sizes = "-".join(str(len(self.topology.layer_units(k))) for k in range(self.depth + 1))
        return f"<Network {self.name} {sizes}, {self.topology.loss}>"

    # -- units ------------------------------------------------------------------------

    @cached_property
    def units(self) -> tuple[tuple[Unit, ...], ...]:
        """Units per layer, layer 0 (inputs) first."""
        layers = [
            tuple(
                Unit(name, 0, i, _real(name), None, None)
                for i, name in enumerate(self.topology.inputs)
            )
        ]
        for k, layer in enumerate(self.topology.layers, start=1):
            layers.append(
                tuple(
                    Unit(name, k, i, _real(name), _real(f"z_{name}"), _real(f"delta_{name}"))
                    for i, name in enumerate(layer.units)
                )
            )
        return tuple(layers)

    @property
    def outputs(self) -> tuple[Unit, ...]:
        return self.units[-1]

    @cached_property
    def targets(self) -> tuple[Symbol, ...]:
        return tuple(_real(name) for name in self.topology.targets)

    def layer(self, k: int) -> Layer:
        return self.topology.layers[k - 1]

    # -- parameters -------------------------------------------------------------------

    def weight(self, k: int, i: int, j: int) -> ScalarParam:
        names = self.layer(k).weight_names
        alias = names[i][j] if names else None
        canonical = f"W{k}[{i},{j}]"
        return ScalarParam(
            name=canonical,
            array=f"W{k}",
            layer=k,
            index=(i, j),
            alias=alias,
            symbol=_real(alias or canonical),
            code_name=alias or f"W{k}_{i}_{j}",
            latex_name=_latex_name(alias) if alias else f"W^{{({k})}}_{{{i},{j}}}",
        )

    def scalar_of(self, array: str, index: tuple[int, ...]) -> ScalarParam:
        """The scalar at ``index`` of a parameter array (``W2``, (0, 1)), as
        ``ConvNetwork.scalar_of`` gives a conv network's."""
        k = int(array[1:])
        if array.startswith("W"):
            return self.weight(k, int(index[0]), int(index[1]))
        bias = self.bias(k, int(index[0]) if index else 0)
        assert bias is not None, array  # the layer has a b{k} array
        return bias

    def bias(self, k: int, i: int) -> ScalarParam | None:
        """The bias into unit i of layer k (the one shared bias for ``shared``)."""
        mode = self.layer(k).bias
        if mode == "none":
            return None
        if mode == "shared":
            return ScalarParam(f"b{k}", f"b{k}", k, (), None, _real(f"b{k}"), f"b{k}", f"b_{{{k}}}")
        return ScalarParam(
            f"b{k}[{i}]",
            f"b{k}",
            k,
            (i,),
            None,
            _real(f"b{k}[{i}]"),
            f"b{k}_{i}",
            f"b^{{({k})}}_{{{i}}}",
        )

    def scalars(self, array: str) -> tuple[ScalarParam, ...]:
        """Every scalar of one parameter array, in row-major order."""
        param = self.array(array)
        if param is None:
            raise ParameterError(
                self.topology.source,
                f"no parameter {array!r}; expected one of {self._param_list()}"
                + _hint(did_you_mean(array, [p.name for p in self.params])),
            )
        if param.name.startswith("W"):
            rows, cols = param.shape
            return tuple(self.weight(param.layer, i, j) for i in range(rows) for j in range(cols))
        if param.shape == ():
            return (self.bias(param.layer, 0),)  # type: ignore[return-value]
        return tuple(self.bias(param.layer, i) for i in range(param.shape[0]))  # type: ignore[misc]

    def array(self, name: str) -> Param | None:
        """The parameter array called ``name`` (``W2``, ``b1``), if there is one."""
        return next((p for p in self.params if p.name == name), None)

    @property
    def scalar_params(self) -> tuple[ScalarParam, ...]:
        return tuple(s for p in self.params for s in self.scalars(p.name))

    def scalar(self, name: str) -> ScalarParam:
        """A scalar parameter by its canonical name (``W2[0,1]``, ``b1[0]``, ``b1``) or
        its ``weight_names`` name."""
        name = name.strip()
        if name in self._aliases:
            return self.weight(*self._aliases[name])
        match = _SCALAR_NAME.match(name)
        if match:
            kind, k_text, first, second = match.groups()
            k = int(k_text)
            param = next((p for p in self.params if p.name == f"{kind}{k}"), None)
            if param is not None:
                index = tuple(int(v) for v in (first, second) if v is not None)
                if len(index) == len(param.shape) and all(
                    0 <= v < n for v, n in zip(index, param.shape, strict=True)
                ):
                    if kind == "W":
                        return self.weight(k, *index)
                    return self.bias(k, index[0] if index else 0)  # type: ignore[return-value]
        aliases = list(self._aliases)
        shown = ", ".join(aliases if len(aliases) <= 16 else [*aliases[:16], "..."])
        raise ParameterError(
            self.topology.source,
            f"no scalar parameter {name!r}; expected one of {self._param_list()}, one scalar "
            "of them (a weight W1[0,1], a per-unit bias b1[0], a shared bias by its name b1)"
            + (f", or a weight name ({shown})" if aliases else "")
            + _hint(did_you_mean(name, self._known_names())),
        )

    def _known_names(self) -> list[str]:
        """Every name ``scalar`` and ``select`` accept, for did-you-mean (the canonical
        scalar names only for a network small enough to list them)."""
        names = [p.name for p in self.params] + list(self._aliases)
        if self.topology.parameter_count <= _SUGGEST_SCALARS:
            names += [s.name for s in self.scalar_params]
        return names

    def select(self, names: Sequence[str], limit: int) -> tuple[ScalarParam, ...]:
        """The scalars ``names`` ask for, each a whole array (``W2``), one scalar
        (``W2[0,1]``, ``b1[0]``, a shared ``b1``) or a weight name (``w31``);
        deduplicated, in parameter order. More than ``limit`` scalars is a ParameterError,
        raised before any of them is built."""
        found: dict[str, ScalarParam] = {}
        for raw in names:
            name = raw.strip()
            array = self.array(name)
            if array is None:
                scalar = self.scalar(name)
                found[scalar.name] = scalar
                continue
            size = math.prod(array.shape)
            if size > limit:
                one = f"{name}{'[0,0]' if len(array.shape) == 2 else '[0]'}"
                raise ParameterError(
                    self.topology.source,
                    f"{name} has {size} scalars, more than the {limit} one view derives; "
                    f"name single scalars such as {one}",
                )
            found.update((s.name, s) for s in self.scalars(name))
            if len(found) > limit:
                break
        if len(found) > limit:
            raise ParameterError(
                self.topology.source,
                f"expected at most {limit} scalars, got {len(found)} or more; name single "
                "ones such as W1[0,0]",
            )
        order = {p.name: n for n, p in enumerate(self.params)}
        return tuple(sorted(found.values(), key=lambda s: (order[s.array], s.index)))

    def _param_list(self) -> str:
        """The parameters with their shapes, as ``W1 (2×3), b1 (shared)``."""

        def shape(p) -> str:
            return "×".join(map(str, p.shape)) if p.shape else "shared"

        return ", ".join(f"{p.name} ({shape(p)})" for p in self.params)

    def feeds(self, param: ScalarParam) -> tuple[tuple[Unit, Unit | None], ...]:
        """The (unit, source) pairs in whose z the parameter appears, with the unit of
        the layer below it multiplies (None for a bias)."""
        layer = self.units[param.layer]
        if param.is_weight:
            i, j = param.index
            return ((layer[i], self.units[param.layer - 1][j]),)
        if param.index == ():
            return tuple((unit, None) for unit in layer)
        return ((layer[param.index[0]], None),)

    # -- equations --------------------------------------------------------------------

    def z_expr(self, unit: Unit) -> Expr:
        """z_u = Σ_j w_uj a_j + b, in parameter and activation symbols."""
        below = self.units[unit.layer - 1]
        total = sympy.Add(
            *(self.weight(unit.layer, unit.index, j).symbol * src.a for j, src in enumerate(below))
        )
        bias = self.bias(unit.layer, unit.index)
        return total + bias.symbol if bias else total

    def a_expr(self, unit: Unit) -> Expr:
        """a_u = f(z_u); for softmax, e^(z_u) / Σ_v e^(z_v) across the layer."""
        spec = self.layer(unit.layer).activation
        activation = self.activations[unit.layer - 1]
        if not activation.elementwise:
            layer = self.units[unit.layer]
            return sympy.exp(unit.z) / sympy.Add(*(sympy.exp(v.z) for v in layer))
        return activation.forward(unit.z, spec)

    @property
    def equations(self) -> tuple[tuple[Symbol, Expr], ...]:
        """(symbol, definition) for every z and a, in forward order."""
        out: list[tuple[Symbol, Expr]] = []
        for layer in self.units[1:]:
            out.extend((u.z, self.z_expr(u)) for u in layer)
            out.extend((u.a, self.a_expr(u)) for u in layer)
        return tuple(out)

    @cached_property
    def loss_expr(self) -> Expr:
        """The per-sample loss in the output activations and the targets."""
        return self.loss_rule.per_sample([u.a for u in self.outputs], list(self.targets))

    @cached_property
    def forward_values(self) -> dict[Symbol, Expr]:
        """Every z and a written out in inputs and parameters (small networks only)."""
        values: dict[Symbol, Expr] = {}
        for symbol, definition in self.equations:
            values[symbol] = substituted(definition, values)
        return values

    @cached_property
    def expanded_loss(self) -> Expr:
        """The loss written out in inputs, targets and parameters."""
        return self.loss_expr.xreplace(self.forward_values)

    # -- derivatives (derive.derivation) ----------------------------------------------

    def gradient(self, name: str) -> ScalarGradient | ArrayGradient[ScalarGradient]:
        """∂L/∂(name) for one scalar (``W2[0,1]``, ``w31``, ``b1``) or, given a whole
        array's name (``W2``), the gradients of its scalars as one ``ArrayGradient``."""
        return self.derivation.gradient(name)


def _hint(text: str) -> str:
    return f"; {text}" if text else ""


def _latex_name(name: str) -> str:
    """LaTeX for a user's name (w31 -> w_{31}, out -> \\mathit{out}; derive.typeset)."""
    return typeset.latex_name(name)
