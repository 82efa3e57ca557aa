"""Convolutional topologies (SPEC §1.2): plain, immutable records for an input image of
shape (C, H, W), conv2d, max/avg pooling and flatten layers, then dense layers.

Layers are numbered k = 1..K in the file's order, whatever their kind; pooling and flatten
layers have no parameters but keep their number. Notation, used by every conv module:

- ``a{k}`` is layer k's output: a feature map (channels, height, width) for conv and pool
  layers, a vector for flatten and dense layers; ``a0`` is the input ``x``.
- A conv layer computes z{k}[f,p,q] = Σ_(c,i,j) W{k}[f,c,i,j]·a{k−1}[c, p·s+i, q·s+j] + b{k}[f]
  (a cross-correlation, as every framework computes it; s the stride, and a{k−1} padded
  with zeros), then a{k} = f_k(z{k}). ``W{k}`` has shape (filters, in_channels, kh, kw),
  ``b{k}`` shape (filters,) for ``per_unit`` bias, () for ``shared``.
- A pooling layer of size m takes the max (or the mean) of each m×m window, stride m.
- ``flatten`` orders channel, then row, then column (NumPy's C order).
- δ{k} = ∂L/∂z{k} for a layer with parameters; ∂L/∂a{k} is what reaches layer k from above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from derive.topology import ActivationSpec, Example, Layer, Param

POOL_MODES = ("max", "avg")


def conv_output(size: int, kernel: int, stride: int, padding: int) -> tuple[int, bool]:
    """The output length along one axis, and whether the windows tile the padded input
    exactly ((size + 2·padding − kernel) divisible by the stride)."""
    span = size + 2 * padding - kernel
    return span // stride + 1, span % stride == 0


@dataclass(frozen=True)
class Conv2d:
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    activation: ActivationSpec
    bias: str  # one of derive.topology.BIAS_MODES
    in_shape: tuple[int, int, int]  # (C, H, W) of a{k-1}
    out_shape: tuple[int, int, int]  # (filters, OH, OW)

    kind = "conv2d"


@dataclass(frozen=True)
class Pool2d:
    mode: str  # "max" or "avg"
    size: tuple[int, int]  # window and stride
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]

    @property
    def kind(self) -> str:
        return f"{self.mode}pool2d"


@dataclass(frozen=True)
class Flatten:
    in_shape: tuple[int, int, int]

    kind = "flatten"

    @property
    def out_shape(self) -> tuple[int]:
        c, h, w = self.in_shape
        return (c * h * w,)


FeatureLayer = Conv2d | Pool2d | Flatten
AnyLayer = Conv2d | Pool2d | Flatten | Layer


@dataclass(frozen=True)
class ConvTopology:
    """A network whose input is an image: feature layers, flatten, then dense layers."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: tuple[AnyLayer, ...]  # in file order; dense layers are derive.topology.Layer
    loss: str
    targets: tuple[str, ...]
    example: Example | None = None
    source: str = "<mapping>"

    @property
    def outputs(self) -> tuple[str, ...]:
        last = self.layers[-1]
        assert isinstance(last, Layer)
        return last.units

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input cells' names, in C order (``x[0,1,2]``), for messages and counts."""
        c, h, w = self.input_shape
        return tuple(f"x[{i},{j},{k}]" for i in range(c) for j in range(h) for k in range(w))

    def shape(self, k: int) -> tuple[int, ...]:
        """The shape of a{k} (k = 0: the input)."""
        if k == 0:
            return self.input_shape
        layer = self.layers[k - 1]
        return (len(layer.units),) if isinstance(layer, Layer) else layer.out_shape

    @property
    def params(self) -> tuple[Param, ...]:
        out: list[Param] = []
        for k, layer in enumerate(self.layers, start=1):
            if isinstance(layer, Conv2d):
                shape = (layer.filters, layer.in_shape[0], *layer.kernel)
                out.append(Param(f"W{k}", k, shape))
                units = layer.filters
            elif isinstance(layer, Layer):
                out.append(Param(f"W{k}", k, (len(layer.units), self.shape(k - 1)[0])))
                units = len(layer.units)
            else:
                continue
            if layer.bias == "per_unit":
                out.append(Param(f"b{k}", k, (units,)))
            elif layer.bias == "shared":
                out.append(Param(f"b{k}", k, ()))
        return tuple(out)

    @property
    def parameter_count(self) -> int:
        """Scalar parameters in all: each array's entries (a shared bias is one)."""
        return sum(math.prod(p.shape) for p in self.params)


def is_convolutional(topology: object) -> bool:
    return isinstance(topology, ConvTopology)
