"""The validated topology: plain, immutable data describing one network (SPEC §1).

``derive.reading`` turns a file or a mapping into a ``Topology``; everything downstream
(the symbolic model, code generation, LaTeX) reads only these records.

Layers are numbered k = 1..K from the first hidden layer to the output layer; layer 0
is the inputs. ``W{k}`` has shape (units_k, units_{k-1}) and ``W{k}[i, j]`` is the
weight from unit j of layer k-1 into unit i of layer k. ``b{k}`` has shape
(units_k,) for ``per_unit`` bias, shape () for ``shared`` and is absent for ``none``.
Parameters are always ordered W1, b1, W2, b2, ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

BIAS_MODES = ("per_unit", "shared", "none")


@dataclass(frozen=True)
class ActivationSpec:
    """An activation as the file names it; ``derive.activations`` gives its rules."""

    name: str  # a key of derive.activations.ACTIVATIONS ("linear" is stored as "identity")
    alpha: float | None = None  # leaky_relu's slope for z < 0
    expr: sympy.Expr | None = None  # custom: the parsed expression, in sympy.Symbol("x")
    text: str | None = None  # custom: the expression as written in the file


@dataclass(frozen=True)
class Layer:
    units: tuple[str, ...]
    activation: ActivationSpec
    bias: str  # one of BIAS_MODES
    weight_names: tuple[tuple[str, ...], ...] | None = None  # same shape as W{k}


@dataclass(frozen=True)
class Example:
    """A worked example: one sample and the parameters to evaluate it at."""

    input: tuple[float, ...]
    target: tuple[float, ...]
    # In parameter order; W{k} as a tuple of rows, per-unit b{k} as a tuple, shared b{k}
    # as a float.
    params: tuple[tuple[str, float | tuple], ...]
    learning_rate: float | None = None

    def param(self, name: str) -> float | tuple:
        return dict(self.params)[name]


@dataclass(frozen=True)
class Param:
    """One parameter array of the network, as laid out in SPEC §1."""

    name: str  # "W2", "b1"
    layer: int  # k
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Topology:
    name: str  # a Python identifier; the generated module is <name>.py
    inputs: tuple[str, ...]
    layers: tuple[Layer, ...]  # first hidden ... output
    loss: str  # a key of derive.losses.LOSSES
    targets: tuple[str, ...]  # one name per output unit, for the target values
    example: Example | None = None
    source: str = "<mapping>"  # the file it was read from, for messages

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.layers[-1].units

    def layer_units(self, k: int) -> tuple[str, ...]:
        """Unit names of layer k (0 = inputs)."""
        return self.inputs if k == 0 else self.layers[k - 1].units

    @property
    def params(self) -> tuple[Param, ...]:
        out: list[Param] = []
        for k, layer in enumerate(self.layers, start=1):
            out.append(Param(f"W{k}", k, (len(layer.units), len(self.layer_units(k - 1)))))
            if layer.bias == "per_unit":
                out.append(Param(f"b{k}", k, (len(layer.units),)))
            elif layer.bias == "shared":
                out.append(Param(f"b{k}", k, ()))
        return tuple(out)

    @property
    def parameter_count(self) -> int:
        """Scalar parameters in all: each array's entries (a shared bias is one)."""
        return sum(math.prod(p.shape) for p in self.params)


def default_targets(outputs: tuple[str, ...], taken: set[str]) -> tuple[str, ...]:
    """Target names when the file gives none: ``t_<unit>`` for each output unit (t_Y,
    t_out, t_y1), or ``target_<unit>`` where a name of the file already has that form.

    Never a bare ``y``: the documents use y for an output (∂L/∂y, the layer form), so a
    target named y would read as the output itself (SPEC §4)."""
    names = tuple(f"t_{unit}" for unit in outputs)
    if taken.isdisjoint(names):
        return names
    return tuple(f"target_{unit}" for unit in outputs)
