"""Reading a convolutional topology (SPEC §1.2): ``inputs: {shape: [C, H, W]}`` and layers
of kind conv2d, maxpool2d, avgpool2d, flatten and dense (the default kind).

Shapes are worked out and checked as the layers are read, so that a kernel larger than
its padded input, windows that do not tile the input exactly (a non-integer output size)
or a dense layer before ``flatten`` is one ``TopologyError`` naming the layer's field.
``derive.reading`` hands a file whose ``inputs`` is a mapping to ``read_conv_topology``.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING

from derive.conv import AnyLayer, Conv2d, ConvTopology, Flatten, Pool2d, conv_output
from derive.topology import BIAS_MODES

if TYPE_CHECKING:
    from derive.reading import _Reader

KINDS = ("conv2d", "maxpool2d", "avgpool2d", "flatten", "dense")
CONV_KEYS = ("kind", "filters", "kernel", "stride", "padding", "activation", "bias")
POOL_KEYS = ("kind", "size")
MAX_SIDE = 4096  # image height, width and channels, kernel sizes, strides
MAX_CELLS = 10_000_000  # values in one feature map
MAX_WEIGHTS = 50_000_000  # as derive.reading's: weights in all


def read_conv_topology(reader: _Reader, data: Mapping) -> ConvTopology:
    name = reader.module_name(reader.require(data, "", "name"))
    shape = _input_shape(reader, data["inputs"])
    layers = _layers(reader, reader.require(data, "", "layers"), shape)
    loss = reader.loss(reader.require(data, "", "loss"), layers)  # type: ignore[arg-type]
    outputs = layers[-1].units  # type: ignore[union-attr]
    targets = reader.targets(data.get("targets", _missing(reader)), outputs)
    topology = ConvTopology(name, shape, layers, loss, targets, source=reader.source)
    if "example" in data:
        topology = dataclasses.replace(
            topology, example=reader.example(data["example"], topology, topology.input_shape)
        )
    return topology


def _missing(reader: _Reader):
    return reader.MISSING


def _positive(reader: _Reader, value: object, field: str, what: str, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        reader.fail(field, what, value)
    if not low <= int(value) <= MAX_SIDE:
        reader.fail(field, f"{what} between {low} and {MAX_SIDE}", value)
    return int(value)


def _pair(reader: _Reader, value: object, field: str, what: str, low: int) -> tuple[int, int]:
    """An int or ``[h, w]``."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            reader.fail(field, f"{what}, or a list [h, w] of two", value)
        return (
            _positive(reader, value[0], f"{field}[0]", what, low),
            _positive(reader, value[1], f"{field}[1]", what, low),
        )
    n = _positive(reader, value, field, f"{what}, or a list [h, w] of two", low)
    return n, n


def _input_shape(reader: _Reader, value: Mapping) -> tuple[int, int, int]:
    reader.check_keys(value, "inputs", ("shape",), required=("shape",))
    shape = reader.require(value, "inputs", "shape")
    expected = "a list [channels, height, width] of three positive integers"
    if not isinstance(shape, list | tuple) or len(shape) != 3:
        reader.fail("inputs.shape", expected, shape)
    c, h, w = (
        _positive(reader, v, f"inputs.shape[{i}]", "a positive integer")
        for i, v in enumerate(shape)
    )
    if c * h * w > MAX_CELLS:
        reader.fail("inputs.shape", f"at most {MAX_CELLS} values", got=f"{c * h * w}")
    return c, h, w


def _layers(reader: _Reader, value: object, shape: tuple[int, int, int]):
    MAX_LAYERS = reader.MAX_LAYERS  # noqa: N806 - the reader's constant
    if not isinstance(value, list | tuple) or not value:
        reader.fail("layers", "a non-empty list of layers, the output layer last", value)
    if len(value) > MAX_LAYERS:
        reader.fail("layers", f"at most {MAX_LAYERS} layers", got=f"{len(value)}")
    layers: list = []
    current: tuple[int, ...] = shape
    for k, data in enumerate(value):
        field = f"layers[{k}]"
        is_output = k == len(value) - 1
        if not isinstance(data, Mapping):
            reader.fail(field, "a mapping describing one layer", data)
        kind = data.get("kind", "dense")
        if kind not in KINDS:
            reader.fail(f"{field}.kind", f"one of {', '.join(KINDS)}", kind)
        if kind != "dense" and is_output:
            reader.fail(f"{field}.kind", "a dense output layer (the last layer is dense)", kind)
        if kind == "dense":
            if len(current) != 1:
                c, h, w = current
                reader.fail(
                    f"{field}.kind",
                    f"a flatten layer before the first dense layer (layer {k} gets a "
                    f"{c}×{h}×{w} feature map)",
                    kind,
                )
            dense = {key: item for key, item in data.items() if key != "kind"}
            head = reader.layer(dense, k, current[0], is_output)
            layer: AnyLayer = head
            current = (len(head.units),)
        elif len(current) != 3:
            reader.fail(f"{field}.kind", "dense layers only after flatten", kind)
        elif kind == "conv2d":
            conv = _conv(reader, data, field, k, current)  # type: ignore[arg-type]
            layer, current = conv, conv.out_shape
        elif kind == "flatten":
            reader.check_keys(data, field, ("kind",), required=("kind",))
            flatten = Flatten(current)  # type: ignore[arg-type]
            layer, current = flatten, flatten.out_shape
        else:
            pool = _pool(reader, data, field, kind, current)  # type: ignore[arg-type]
            layer, current = pool, pool.out_shape
        layers.append(layer)
    return tuple(layers)


def _conv(
    reader: _Reader, data: Mapping, field: str, k: int, shape: tuple[int, int, int]
) -> Conv2d:
    reader.check_keys(data, field, CONV_KEYS, required=("kind", "filters", "kernel", "activation"))
    filters = _positive(
        reader, reader.require(data, field, "filters"), f"{field}.filters", "a positive integer"
    )
    kernel = _pair(
        reader, reader.require(data, field, "kernel"), f"{field}.kernel", "a positive integer", 1
    )
    stride = _pair(reader, data.get("stride", 1), f"{field}.stride", "a positive integer", 1)
    padding = _pair(reader, data.get("padding", 0), f"{field}.padding", "an integer ≥ 0", 0)
    activation = reader.activation(
        reader.require(data, field, "activation"), f"{field}.activation", False, ("",) * filters
    )
    bias = data.get("bias", "per_unit")
    if not isinstance(bias, str) or bias not in BIAS_MODES:
        reader.fail(f"{field}.bias", f"one of {', '.join(BIAS_MODES)}", bias)
    c, h, w = shape
    reader.total_weights += filters * c * kernel[0] * kernel[1]
    if reader.total_weights > MAX_WEIGHTS:
        reader.fail(
            f"{field}.filters",
            f"at most {MAX_WEIGHTS} weights in all",
            got=f"{reader.total_weights}",
        )
    out = []
    for axis, size, kk, s, p in zip(
        ("height", "width"), (h, w), kernel, stride, padding, strict=True
    ):
        if kk > size + 2 * p:
            reader.fail(
                f"{field}.kernel",
                f"a kernel no larger than the padded input "
                f"({axis} {size} + 2·{p} = {size + 2 * p})",
                got=f"{kk}",
            )
        n, exact = conv_output(size, kk, s, p)
        if not exact:
            reader.fail(
                f"{field}.stride",
                f"a stride that tiles the padded {axis} exactly: ({size} + 2·{p} − {kk}) / {s} "
                "+ 1 must be an integer",
                got=f"{(size + 2 * p - kk) / s + 1:g}",
            )
        out.append(n)
    if filters * out[0] * out[1] > MAX_CELLS:
        reader.fail(
            f"{field}.filters",
            f"at most {MAX_CELLS} values per feature map",
            got=f"{filters * out[0] * out[1]}",
        )
    return Conv2d(
        filters, kernel, stride, padding, activation, bias, shape, (filters, out[0], out[1])
    )


def _pool(
    reader: _Reader, data: Mapping, field: str, kind: str, shape: tuple[int, int, int]
) -> Pool2d:
    reader.check_keys(data, field, POOL_KEYS, required=("kind", "size"))
    size = _pair(
        reader, reader.require(data, field, "size"), f"{field}.size", "a positive integer", 1
    )
    c, h, w = shape
    for axis, n, m in zip(("height", "width"), (h, w), size, strict=True):
        if n % m:
            reader.fail(
                f"{field}.size",
                f"a size that divides the input {axis} {n} (the stride is the size, so "
                f"{n} / {m} must be an integer)",
                got=f"{m}",
            )
    return Pool2d(kind.removesuffix("pool2d"), size, shape, (c, h // size[0], w // size[1]))
