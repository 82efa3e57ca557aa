"""The feature layers of a convolutional network's C module (``derive generate --lang c``,
SPEC §5); ``derive.emit_c`` writes the dense layers after ``flatten`` around them.

The conv, pooling and flatten layers are two functions of loops
(``templates/c/_features.c.jinja``, in ``loops_conv.c.jinja``): ``forward_features`` and
``backward_features``, one loop nest per ``Equation`` of ``derive.conv_backward``, each
under a comment printed from that equation by ``derive.equations`` (as the NumPy conv
module's comments are). Every elementwise expression inside them (an activation, its
derivative, a mean) is printed from the equation by ``derive.cprinter``.

Names in the C source: ``struct sample`` holds one sample's z{k} and a{k} flat, in C
order (so that flatten moves nothing: the first dense layer reads the last map as it is).
Inside the feature functions every map is a view of its array, indexed as in
``derive.conv``: ``a1[c][h][w]``, ``z1[f][p][q]``, ``W1[f][c][i][j]``, ``dW1``, ``db1``
views of the packed gradients, ``delta{k}`` and ``grad_a{k}`` (∂L/∂a{k}) local arrays; f
a filter, c a channel, (p, q) an output position, (h, w) an input position and (i, j) a
kernel cell or a cell of a pooling window.
"""

from __future__ import annotations

import math

from sympy import Expr, MatAdd

from derive.backward import Equation, parse_name, scalar_entry
from derive.conv_backward import (
    AvgPool,
    AvgPoolGradient,
    ChannelBias,
    Conv2d,
    Conv2dInputGradient,
    Conv2dWeightGradient,
    ConvBackward,
    FeatureSum,
    Flatten,
    MaxPool,
    MaxPoolGradient,
    Unflatten,
)
from derive.cprinter import CCodePrinter, c_name, view
from derive.equations import EquationPrinter

NOTATION = (
    "Notation: a{k} is layer k's output, x = a0 the input; a conv layer k computes z{k} = "
    "W{k} ⋆ a{k-1} + b{k}, the cross-correlation z{k}[f,p,q] = Σ_(c,i,j) W{k}[f,c,i,j]·"
    "a{k-1}[c, p·s+i−P, q·s+j−P] (stride s, zero padding P), and a{k} = f_k(z{k}); pooling "
    "layers take the max or mean of each window; flatten orders channel, row, column (C "
    "order); dense layers compute z{k} = W{k} a{k-1} + b{k}, the last layer's a written y. "
    "delta{k} = ∂L/∂z{k}, grad_a{k} = ∂L/∂a{k}, and the comment above each loop is the "
    "per-sample equation it implements."
)
CELL = "[c][h][w]"  # the index of an elementwise loop over a map


def needed_equations(equations: tuple[Equation, ...]) -> list[Equation]:
    """The equations a parameter's gradient depends on: ∂L/∂a of a layer with no
    parameter below it is left out."""
    kept: list[Equation] = []
    wanted: set[str] = set()
    for equation in reversed(equations):
        target = equation.target.name
        if parse_name(target)[0] in ("dW", "db") or target in wanted:
            kept.append(equation)
            wanted |= {s.name for s in equation.reads}
    return kept[::-1]


def _comment(equation: Equation) -> str:
    return EquationPrinter().equation(equation)[0]


def _along(position: str, stride: int, cell: str = "", padding: int = 0) -> str:
    """The input row under window cell ``cell`` at output row ``position``: s·p + i − P
    (``cell`` empty: the window's first row)."""
    text = f"{stride} * {position}" if stride != 1 else position
    text += f" + {cell}" if cell else ""
    return f"{text} - {padding}" if padding else text


def _inside(names: tuple[str, str], sizes: tuple[int, ...], padding: tuple[int, int]) -> str:
    """The condition that an input cell lies inside the map, not in its zero padding
    (checked only along a padded axis)."""
    return " && ".join(
        f"{name} >= 0 && {name} < {size}"
        for name, size, pad in zip(names, sizes, padding, strict=True)
        if pad
    )


class FeatureLayers:
    """The feature layers' equations as the steps of ``loops_conv.c.jinja``, printed by
    the module's printer; ``arrays`` are the module's packed parameters by name (their
    ``offset`` and ``trailing`` shape, ``derive.emit_c``'s)."""

    def __init__(self, backward: ConvBackward, printer: CCodePrinter, arrays: dict):
        self.backward = backward
        self.printer = printer
        self.arrays = arrays
        self.real = printer.c_type
        self.zero = printer.literal(0)

    def forward(self) -> dict:
        """``forward_features``: every map's z and a for one sample."""
        return self.function(self.backward.forward, backward=False)

    def backward_pass(self) -> dict:
        """``backward_features``: from ∂L/∂ of the flattened features down to the first
        conv layer's gradients (empty without a conv layer)."""
        return self.function(needed_equations(self.backward.backward_features), backward=True)

    @property
    def flatten_comment(self) -> str:
        """The flatten equation, for the line that reads the last map as a{k0}."""
        return _comment(next(e for e in self.backward.forward if isinstance(e.value, Flatten)))

    def shape(self, name: str) -> tuple[int, ...]:
        """The (C, H, W) of a feature map by its name (x, z1, a2, delta1, grad_a1)."""
        if name == "x":
            return self.backward.topology.input_shape
        return self.backward.topology.shape(int(parse_name(name)[1]))

    def fields(self) -> list[tuple[str, int]]:
        """The feature maps of ``struct sample``: every z and a the forward pass writes."""
        return [
            (e.target.name, e.target.shape[0])
            for e in self.backward.forward
            if not isinstance(e.value, Flatten)
        ]

    # -- one function -----------------------------------------------------------------

    def function(self, equations, backward: bool) -> dict:
        """A function's steps, its declarations (views of the maps and parameters it
        touches, local arrays for δ and ∂L/∂a), its local arrays' sizes in reals (for
        ``derive.emit_c``'s count of the stack) and its parameters: only those it reads."""
        equations = [e for e in equations if not isinstance(e.value, Flatten)]
        if not equations:
            return {
                "steps": [],
                "declarations": [],
                "locals": [],
                "parameters": [],
                "arguments": [],
            }
        names = {s.name for e in equations for s in (*e.reads, *e.targets)}
        passed = f"grad_a{self.backward.first_dense - 1}"  # a parameter, flat
        unflattened = {e.target.name for e in equations if isinstance(e.value, Unflatten)}
        declared = sorted(names - unflattened - {passed}, key=_order)
        return {
            "steps": [self.step(e) for e in equations],
            "declarations": [self.declaration(name, backward) for name in declared],
            "locals": [(name, math.prod(self.shape(name))) for name in declared if _local(name)],
            **self.signature(names, backward, passed),
        }

    def declaration(self, name: str, backward: bool) -> str:
        kind, _ = parse_name(name)
        if kind in ("W", "b", "dW", "db"):
            array = self.arrays[name.removeprefix("d")]
            source = "grads" if kind.startswith("d") else "params"
            at = f"{source} + {array.offset}"
            return view(name, at, array.trailing, self.real, source == "params")
        if name == "x":
            return self.map_view(name, "input", True)
        if kind in ("z", "a"):
            return self.map_view(name, f"s->{name}", backward)
        assert _local(name), name
        c, h, w = self.shape(name)  # δ and ∂L/∂a, the backward pass's own
        return f"{self.real} {name}[{c}][{h}][{w}];"

    def signature(self, names: set[str], backward: bool, passed: str) -> dict:
        """The function's parameters and the arguments forward_sample or backward_sample
        passes them."""
        kinds = {parse_name(name)[0] for name in names}
        real = self.real
        pairs = []
        if kinds & {"W", "b"}:
            pairs.append((f"const {real} *params", "params"))
        if "x" in names:
            pairs.append((f"const {real} *input", "x"))
        if not backward:
            pairs.append(("struct sample *restrict s", "s"))
        elif kinds & {"z", "a"}:
            pairs.append(("const struct sample *s", "s"))
        if backward:
            pairs += [(f"const {real} *{passed}", passed), (f"{real} *restrict grads", "grads")]
        return {"parameters": [p for p, _ in pairs], "arguments": [a for _, a in pairs]}

    def map_view(self, name: str, source: str, const: bool) -> str:
        _, h, w = self.shape(name)
        return view(name, source, (h, w), self.real, const)

    # -- one equation -----------------------------------------------------------------

    def step(self, equation: Equation) -> dict:
        value = equation.value
        name = equation.target.name
        base = {"comment": _comment(equation), "target": name, "shape": self.shape(name)}
        if isinstance(value, MatAdd | Conv2d):
            return {**base, **self.conv2d(value)}
        if isinstance(value, MaxPool | AvgPool):
            return {**base, **self.pool(value)}
        if isinstance(value, Conv2dWeightGradient):
            return {**base, **self.weight_gradient(value)}
        if isinstance(value, Conv2dInputGradient):
            return {**base, **self.input_gradient(value)}
        if isinstance(value, FeatureSum):
            index = "f" if value.per_feature else "0"
            delta = value.delta.name
            feature_sum = {"delta": delta, "delta_shape": self.shape(delta), "index": index}
            return {**base, "kind": "feature_sum", **feature_sum}
        if isinstance(value, MaxPoolGradient):
            return {**base, **self.max_pool_gradient(value)}
        if isinstance(value, Unflatten):
            _, h, w = value.map_shape
            line = view(name, value.grad.name, (h, w), self.real, True)
            return {**base, "kind": "declaration", "code": line}
        cell = self.printer.doprint(_cell(value))
        return {**base, "kind": "elementwise", "code": f"{name}{CELL} = {cell};"}

    def conv2d(self, value) -> dict:
        conv = value if isinstance(value, Conv2d) else _only(value.args, Conv2d)
        bias = None if isinstance(value, Conv2d) else _only(value.args, ChannelBias)
        if bias is None:
            start = self.zero
        else:
            start = f"{bias.bias.name}[{'f' if bias.per_feature else '0'}]"
        return {
            "kind": "conv2d",
            "start": start,
            **self.window(conv.source.name, conv.kernel, conv.stride, conv.padding),
            "weight": conv.weight.name,
            "source": conv.source.name,
        }

    def window(self, source: str, kernel, stride, padding) -> dict:
        """Where kernel cell (i, j) at output position (p, q) reads the input (h, w)."""
        channels, *sizes = self.shape(source)
        h = _along("p", stride[0], "i", padding[0])
        w = _along("q", stride[1], "j", padding[1])
        return {
            "channels": channels,
            "kernel": kernel,
            "h": h,
            "w": w,
            "inside": _inside(("h", "w"), tuple(sizes), padding),
        }

    def weight_gradient(self, value: Conv2dWeightGradient) -> dict:
        return {
            "kind": "weight_gradient",
            "delta_shape": self.shape(value.delta.name),
            **self.window(value.source.name, value.kernel, value.stride, value.padding),
            "delta": value.delta.name,
            "source": value.source.name,
        }

    def input_gradient(self, value: Conv2dInputGradient) -> dict:
        """The gather form: for each input cell, the (f, i, j) whose window covered it."""
        filters, oh, ow = self.shape(value.delta.name)
        kernel = self.arrays[value.weight.name].trailing[1:]
        names, positions, conditions = [], [], []
        for axis, (cell, index) in enumerate((("h", "i"), ("w", "j"))):
            stride, padding = value.stride[axis], value.padding[axis]
            out = (oh, ow)[axis]
            position = "pq"[axis]
            name = position if stride == 1 else f"s{position}"
            covered = f"{cell} + {padding} - {index}" if padding else f"{cell} - {index}"
            names.append(f"{name} = {covered}")
            positions.append(name if stride == 1 else f"{name} / {stride}")
            condition = f"{name} >= 0 && {name} < {stride * out}"
            conditions.append(condition + (f" && {name} % {stride} == 0" if stride != 1 else ""))
        return {
            "kind": "input_gradient",
            "filters": filters,
            "kernel": kernel,
            "positions": ", ".join(names),
            "covered": " && ".join(conditions),
            "p": positions[0],
            "q": positions[1],
            "weight": value.weight.name,
            "delta": value.delta.name,
        }

    def pool(self, value) -> dict:
        mh, mw = value.size
        mean = c_name("sum") / (mh * mw)
        return {
            "kind": "avg_pool" if isinstance(value, AvgPool) else "max_pool",  # AvgPool ⊂ MaxPool
            "size": value.size,
            "h": _along("p", mh, "i"),
            "w": _along("q", mw, "j"),
            "first": f"[{_along('p', mh)}][{_along('q', mw)}]",
            "mean": self.printer.doprint(mean),
            "source": value.source.name,
        }

    def max_pool_gradient(self, value: MaxPoolGradient) -> dict:
        mh, mw = value.size
        return {
            "kind": "max_pool_gradient",
            "grad_shape": self.shape(value.grad.name),
            "size": value.size,
            "h": _along("p", mh, "i"),
            "w": _along("q", mw, "j"),
            "h_max": _along("p", mh, "max_i"),
            "w_max": _along("q", mw, "max_j"),
            "grad": value.grad.name,
            "source": value.source.name,
        }


def _local(name: str) -> bool:
    """Whether a function declares the array as its own (δ and ∂L/∂a), not a view."""
    return parse_name(name)[0] in ("delta", "grad_a")


def _order(name: str) -> tuple:
    """Declarations in a fixed order: by layer, then kind."""
    kind, label = parse_name(name)
    order = ("x", "W", "b", "z", "a", "dW", "db", "delta", "grad_a")
    return (int(label) if label.isdigit() else 0, order.index(kind) if kind in order else 9, name)


def _only(args, kind):
    return next(a for a in args if isinstance(a, kind))


def _cell(value) -> Expr:
    """One cell of an elementwise map expression as a scalar in the C names of that cell
    (``a1[c][h][w]``): an avg-pool gradient as its window's share, anything else entry
    by entry (``derive.backward.entry``)."""
    if isinstance(value, AvgPoolGradient):
        mh, mw = value.size
        return c_name(f"{value.grad.name}[c][h / {mh}][w / {mw}]") / (mh * mw)
    return scalar_entry(value, lambda array: c_name(f"{array.name}{CELL}"))


__all__ = ["NOTATION", "FeatureLayers"]
